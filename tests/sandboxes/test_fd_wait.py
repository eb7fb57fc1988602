"""FdReader and wait_readable: reads from the loop's callback, always yielding, woken by close."""

from __future__ import annotations

import asyncio
import os

import anyio
import pytest

from react_eval.sandboxes.fd_wait import FdReader, wait_readable

pytestmark = pytest.mark.anyio


@pytest.fixture
def pipe():
    r, w = os.pipe()
    os.set_blocking(r, False)
    yield r, w
    for fd in (r, w):
        try:
            os.close(fd)
        except OSError:
            pass


def registered(fd: int) -> bool:
    return fd in asyncio.get_running_loop()._selector.get_map()  # type: ignore[attr-defined]


async def test_reads_chunks_and_end_of_stream(pipe):
    r, w = pipe
    reader = FdReader(r)
    os.write(w, b"one")
    assert await reader.read() == b"one"
    assert registered(r)  # stays registered between reads
    os.write(w, b"two")
    assert await reader.read() == b"two"
    os.close(w)
    assert await reader.read() == b""
    reader.close()
    assert not registered(r)


async def test_a_read_yields_even_when_data_is_ready(pipe):
    """A flood of output must not starve other tasks: every read waits for the loop."""
    r, w = pipe
    reader = FdReader(r)
    others = 0

    async def other():
        nonlocal others
        while True:
            others += 1
            await anyio.sleep(0)

    async with anyio.create_task_group() as tg:
        tg.start_soon(other)
        for _ in range(20):
            os.write(w, b"x" * 100)
            await reader.read()
        tg.cancel_scope.cancel()
    assert others >= 10
    reader.close()


async def closed_while_waiting(reader: FdReader, read, check=lambda: None) -> list[bytes]:
    """What a ``read()`` waiting on ``reader`` returns when the reader is closed under it."""
    got: list[bytes] = []

    async def waiting():
        got.append(await read())

    async with anyio.create_task_group() as tg:
        tg.start_soon(waiting)
        await anyio.sleep(0.01)
        check()
        reader.close()
    return got


async def test_close_ends_a_waiting_read_and_unregisters(pipe):
    r, _ = pipe
    reader = FdReader(r)

    def is_registered():
        assert registered(r)

    assert await closed_while_waiting(reader, reader.read, is_registered) == [b""]
    assert not registered(r)
    assert await reader.read() == b""  # closed: no waiting, no registration
    assert not registered(r)


async def test_a_cancelled_read_loses_nothing(pipe):
    """Output arriving after a read was cancelled stays in the pipe for the next read,
    and the descriptor is not watched while nobody reads."""
    r, w = pipe
    reader = FdReader(r)
    with anyio.move_on_after(0.01):
        await reader.read()
    os.write(w, b"late")
    await anyio.sleep(0.01)  # the loop sees it readable with nobody reading: it stops watching
    assert not registered(r)
    assert await reader.read() == b"late"
    reader.close()


async def test_the_anyio_path_reads_and_is_woken_by_close(pipe):
    """Without an asyncio loop (another anyio backend) it waits through anyio."""
    r, w = pipe
    reader = FdReader(r)
    os.write(w, b"data")
    assert await reader._read_anyio() == b"data"
    assert await closed_while_waiting(reader, reader._read_anyio) == [b""]


async def test_wait_readable_on_a_pidfd(tmp_path):
    proc = await asyncio.create_subprocess_exec("sleep", "0.05")
    try:
        pidfd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        pytest.skip("no pidfd on this kernel")
    try:
        with anyio.fail_after(5):
            await wait_readable(pidfd)
        assert not registered(pidfd)
    finally:
        os.close(pidfd)
        await proc.wait()
