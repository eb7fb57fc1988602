"""The bytes of an attached ``docker exec``: the hijacked connection made into an
async stream (directly, or bridged through a socket pair by two threads), and
docker's stdout/stderr framing taken off it."""

from __future__ import annotations

import socket
import threading
from typing import Any, Callable

import anyio
from anyio.abc import ByteStream, SocketStream

from react_eval.sandboxes.shell_transport import ShellTransportError

async def stream_from_docker_socket(raw: Any, *, bridge: bool = False) -> ByteStream:
    """An async byte stream over the connection ``exec_start(socket=True)`` returned.

    A plain socket (unix:// or tcp:// engines) is detached from the SDK's
    objects and wrapped directly. Anything else (TLS, ssh) -- or ``bridge=True``
    -- is pumped by two threads through a local socket pair.
    """
    inner = raw._sock if isinstance(raw, socket.SocketIO) else raw
    if not bridge and type(inner) is socket.socket:
        fd = inner.detach()  # we own the descriptor now; the SDK's objects cannot close it
        raw.close()
        return await SocketStream.from_socket(fd)
    ours, theirs = socket.socketpair()

    def pump(src: socket.socket, dst: socket.socket, *cleanup: Callable[[], object]) -> None:
        """Copy ``src`` to ``dst`` until EOF or an error, then run ``cleanup`` (errors ignored)."""
        try:
            while True:
                data = src.recv(1 << 16)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for close in cleanup:
                try:
                    close()
                except OSError:
                    pass

    # engine -> us; then us -> engine, which holds ``raw`` so the SDK cannot close the socket
    inward = (inner, theirs, lambda: theirs.shutdown(socket.SHUT_WR))
    outward = (theirs, inner, lambda: inner.shutdown(socket.SHUT_RDWR), raw.close, inner.close, theirs.close)
    threading.Thread(target=pump, args=inward, name="react-eval-docker-in", daemon=True).start()
    threading.Thread(target=pump, args=outward, name="react-eval-docker-out", daemon=True).start()
    return await SocketStream.from_socket(ours)


class ExecStream:
    """The stdin/stdout of one attached exec, with docker's stream framing removed.

    Without a TTY the engine sends ``[stream, 0, 0, 0, size (4 bytes, big
    endian)]`` before each block of stdout (1) or stderr (2); both are returned
    in arrival order.
    """

    def __init__(self, stream: ByteStream, exec_id: str, received: bytes = b""):
        self.stream = stream
        self.exec_id = exec_id
        self._buf = bytearray(received)  # what was read with the response head, if anything
        self._left = 0  # payload bytes of the current frame not yet returned
        self._eof = False
        self.closed = False

    async def send(self, data: bytes) -> None:
        if self.closed:
            raise ShellTransportError("the exec stream is closed")
        try:
            await self.stream.send(data)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
            raise ShellTransportError(f"the exec's stdin is closed: {exc!r}") from exc

    def _take(self) -> bytes:
        buf, out = self._buf, bytearray()
        while buf:
            if self._left == 0:
                if len(buf) < 8:
                    break
                self._left = int.from_bytes(buf[4:8], "big")
                del buf[:8]
                continue
            n = min(self._left, len(buf))
            out += buf[:n]
            del buf[:n]
            self._left -= n
        return bytes(out)

    async def receive(self) -> bytes:
        """Next payload bytes; ``b""`` at end of stream."""
        while True:
            out = self._take()
            if out:
                return out
            if self._eof or self.closed:
                return b""
            try:
                self._buf += await self.stream.receive(1 << 16)
            except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                self._eof = True

    async def aclose(self) -> None:
        if self.closed:
            return
        self.closed = True
        with anyio.CancelScope(shield=True):
            try:
                await self.stream.aclose()
            except (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
                pass

