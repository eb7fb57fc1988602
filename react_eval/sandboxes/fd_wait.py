"""Reading a shell's pipe, and waiting for a pidfd, on the event loop's own readiness callbacks.

``anyio.wait_readable`` finds the running backend (sniffio), registers the
descriptor with the event loop and removes it again on every call: on a
shell's output pipe, read a few times per command, that costs more than the
read itself. Under asyncio an :class:`FdReader` registers its pipe once,
while someone reads, and reads from the loop's callback straight into the
waiting reader's future; under another anyio backend it falls back to
``anyio.wait_readable``.
"""

from __future__ import annotations

import asyncio
import os

import anyio

__all__ = ["FdReader", "wait_readable"]

#: most bytes one read returns (a pipe holds 64 KiB by default)
CHUNK = 1 << 16


class FdReader:
    """Reads a non-blocking descriptor (a pipe) from a running event loop.

    :meth:`read` always waits for the loop first (so a flood of output can
    neither starve other tasks nor dodge the caller's timeout), then returns
    what one ``read(2)`` gives. The descriptor stays registered with the loop
    between reads; when it turns readable with no reader waiting it is
    unregistered (the loop would otherwise call again on every turn) until
    the next :meth:`read`. :meth:`close` ends a waiting read with ``b""``;
    the owner closes the descriptor after it.
    """

    def __init__(self, fd: int):
        self.fd = fd
        self._loop: asyncio.AbstractEventLoop | None = None
        self._watching = False
        self._waiter: asyncio.Future[bytes] | None = None
        self._closed = False
        #: a read waiting through anyio (no asyncio loop), to be woken by close
        self._anyio_waiting = False

    async def read(self) -> bytes:
        """The next chunk; ``b""`` at end of stream, on an error, or once closed."""
        if self._closed:
            return b""
        loop = asyncio._get_running_loop()
        if loop is None:
            return await self._read_anyio()
        if loop is not self._loop:
            self._unwatch()
            self._loop = loop
        if not self._watching:
            loop.add_reader(self.fd, self._ready)
            self._watching = True
        waiter = self._waiter = loop.create_future()
        try:
            return await waiter
        finally:
            if self._waiter is waiter:
                self._waiter = None

    def _ready(self) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():  # nobody is reading (a read was cancelled)
            self._unwatch()
            return
        try:
            data = os.read(self.fd, CHUNK)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        self._waiter = None
        waiter.set_result(data)

    def _unwatch(self) -> None:
        if self._watching and self._loop is not None:
            self._watching = False
            self._loop.remove_reader(self.fd)

    async def _read_anyio(self) -> bytes:
        while not self._closed:
            self._anyio_waiting = True
            try:
                await anyio.wait_readable(self.fd)
            except (anyio.ClosedResourceError, anyio.BusyResourceError, OSError):
                return b""
            finally:
                self._anyio_waiting = False
            if self._closed:
                return b""  # closed (and the number maybe reused) while waiting
            try:
                return os.read(self.fd, CHUNK)
            except BlockingIOError:
                continue
            except OSError:
                return b""
        return b""

    def close(self) -> None:
        """Stop watching the descriptor and end a waiting read with ``b""``
        (before the owner closes the descriptor)."""
        self._closed = True
        self._unwatch()
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(b"")
        if self._anyio_waiting:
            anyio.notify_closing(self.fd)


async def wait_readable(fd: int) -> None:
    """Wait until ``fd`` is readable (a pidfd: the process exited)."""
    loop = asyncio._get_running_loop()
    if loop is None:
        await anyio.wait_readable(fd)
        return
    waiter = loop.create_future()
    loop.add_reader(fd, _wake, waiter)
    try:
        await waiter
    finally:
        loop.remove_reader(fd)


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
