"""The plain-HTTP keep-alive pool (react_eval/http1.py) against raw servers on
127.0.0.1 that answer with exactly the bytes each test scripts: framing, reuse, and
that a connection in doubt is never reused."""

from __future__ import annotations

import asyncio
import gzip
import socket
import struct
from typing import Awaitable, Callable

import pytest

from react_eval.http1 import ConnectError, ExchangeError, HTTP1Pool, ReplyTooLarge, request_head

pytestmark = pytest.mark.anyio

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
REQUEST = b"POST /x HTTP/1.1\r\nhost: t\r\ncontent-length: 2\r\n\r\n{}"


def ok(body: bytes = b'{"a":1}', extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n%s\r\n%s" % (len(body), extra, body)


class RawServer:
    """Serves each connection with ``handler``; counts connections and closes."""

    def __init__(self, handler: Handler):
        self.handler, self.connections, self.closed = handler, 0, 0
        self.server: asyncio.base_events.Server | None = None

    async def __aenter__(self) -> "RawServer":
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            try:
                await self.handler(reader, writer)
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
            finally:
                self.closed += 1
                writer.close()

        self.server = await asyncio.start_server(serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    def pool(self, **kw) -> HTTP1Pool:
        return HTTP1Pool("127.0.0.1", self.port, **kw)


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")), 0)
    return head + await reader.readexactly(length)


def answering(*replies: bytes, then_close: bool = False) -> Handler:
    """A handler that reads requests and sends ``replies`` in turn (the last one again after)."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        n = 0
        while True:
            await read_request(reader)
            writer.write(replies[min(n, len(replies) - 1)])
            await writer.drain()
            n += 1
            if then_close:
                return

    return handler


def deadline(seconds: float = 5.0) -> float:
    return asyncio.get_running_loop().time() + seconds


async def test_requests_reuse_one_connection_and_bodies_arrive_whole():
    chunked = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\n{\"a\r\n4\r\n\":2}\r\n0\r\n\r\n"
    async with RawServer(answering(ok(), chunked, ok(b"[]"))) as srv:
        pool = srv.pool()
        bodies = [(await pool.exchange(REQUEST, deadline())).content for _ in range(4)]
        pool.close()
    assert bodies == [b'{"a":1}', b'{"a":2}', b"[]", b"[]"]
    assert srv.connections == 1 and pool.connections_made == 1


async def test_a_reply_delimited_by_the_close_is_whole_and_its_connection_is_not_reused():
    async with RawServer(answering(b"HTTP/1.1 200 OK\r\n\r\n{\"eof\":true}", then_close=True)) as srv:
        pool = srv.pool()
        first = await pool.exchange(REQUEST, deadline())
        second = await pool.exchange(REQUEST, deadline())
        pool.close()
    assert first.content == second.content == b'{"eof":true}'
    assert srv.connections == 2


async def test_a_reset_ends_no_reply_even_one_delimited_by_the_close():
    async def reset_mid_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\n\r\n{\"partial\"")
        await writer.drain()
        await asyncio.sleep(0.05)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close with a RST
        writer.transport.abort()

    async with RawServer(reset_mid_body) as srv:
        pool = srv.pool()
        with pytest.raises(ExchangeError, match="before the whole reply.*ConnectionResetError"):
            await pool.exchange(REQUEST, deadline())
        pool.close()


async def test_a_body_cut_short_by_the_close_is_an_error_not_a_reply():
    async with RawServer(answering(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{\"cut", then_close=True)) as srv:
        pool = srv.pool()
        with pytest.raises(ExchangeError, match="before the whole reply"):
            await pool.exchange(REQUEST, deadline())
        pool.close()


async def test_an_interim_1xx_reply_is_skipped():
    async with RawServer(answering(b"HTTP/1.1 100 Continue\r\n\r\n" + ok(b'{"final":1}'))) as srv:
        pool = srv.pool()
        reply = await pool.exchange(REQUEST, deadline())
        again = await pool.exchange(REQUEST, deadline())
        pool.close()
    assert (reply.status, reply.content, again.content) == (200, b'{"final":1}', b'{"final":1}')
    assert srv.connections == 1


async def test_connection_close_and_http_1_0_replies_end_their_connection():
    replies = (ok(extra=b"connection: close\r\n"), ok().replace(b"HTTP/1.1", b"HTTP/1.0"), ok())
    async with RawServer(answering(*replies, then_close=False)) as srv:
        pool = srv.pool()
        for _ in range(2):
            await pool.exchange(REQUEST, deadline())
        pool.close()
    assert srv.connections == 2  # the first reply said close


async def test_bytes_after_the_reply_put_the_connection_out_of_service():
    async with RawServer(answering(ok() + b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")) as srv:
        pool = srv.pool()
        first = await pool.exchange(REQUEST, deadline())
        second = await pool.exchange(REQUEST, deadline())
        pool.close()
    assert first.content == second.content == b'{"a":1}'
    assert srv.connections == 2  # the out-of-step connection was not reused


async def test_an_idle_connection_past_keepalive_is_replaced():
    async with RawServer(answering(ok())) as srv:
        pool = srv.pool(keepalive=0.05)
        await pool.exchange(REQUEST, deadline())
        await asyncio.sleep(0.15)
        await pool.exchange(REQUEST, deadline())
        await pool.exchange(REQUEST, deadline())
        pool.close()
    assert srv.connections == 2


async def test_a_reply_that_does_not_come_times_out_and_its_connection_goes():
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await reader.read()  # until the client closes

    async with RawServer(silent) as srv:
        pool = srv.pool()
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(TimeoutError):
            await pool.exchange(REQUEST, loop.time() + 0.2)
        assert loop.time() - started < 2.0
        for _ in range(50):
            if srv.closed:
                break
            await asyncio.sleep(0.02)
        pool.close()
    assert srv.closed == 1 and not pool._idle


async def test_a_cancelled_exchange_closes_its_connection():
    gate = asyncio.Event()

    async def slow_then_fast(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        if not gate.is_set():
            gate.set()
            await reader.read()
            return
        writer.write(ok())
        await writer.drain()
        await reader.read()

    async with RawServer(slow_then_fast) as srv:
        pool = srv.pool()
        task = asyncio.ensure_future(pool.exchange(REQUEST, deadline()))
        await gate.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        reply = await pool.exchange(REQUEST, deadline())
        pool.close()
    assert reply.content == b'{"a":1}' and srv.connections == 2


async def test_a_refused_connection_is_a_connect_error():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ConnectError, match=f"127.0.0.1:{port}"):
        await HTTP1Pool("127.0.0.1", port).exchange(REQUEST, deadline())


async def test_a_reply_that_is_not_http_is_an_error():
    async with RawServer(answering(b"SSH-2.0-OpenSSH_9.2\r\n\r\n")) as srv:
        pool = srv.pool()
        with pytest.raises(ExchangeError, match="not HTTP"):
            await pool.exchange(REQUEST, deadline())
        pool.close()


async def test_the_byte_cap_refuses_declared_streamed_and_inflated_bodies():
    big = b"x" * 5000
    bomb = gzip.compress(b"0" * 1_000_000)
    replies = (
        b"HTTP/1.1 200 OK\r\ncontent-length: 100000000\r\n\r\n",  # declared over the cap: not read at all
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(big), big),
        b"HTTP/1.1 200 OK\r\ncontent-encoding: gzip\r\ncontent-length: %d\r\n\r\n%s" % (len(bomb), bomb),
        b"HTTP/1.1 200 OK\r\ncontent-encoding: gzip\r\ncontent-length: %d\r\n\r\n%s"
        % (len(gzip.compress(b"small")), gzip.compress(b"small")),
    )

    served = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal served
        while True:  # a refused reply's connection is dropped by the client; a whole one may be reused
            await read_request(reader)
            served += 1
            writer.write(replies[served - 1])
            await writer.drain()

    async with RawServer(serve) as srv:
        pool = srv.pool()
        errors = []
        for _ in range(3):
            with pytest.raises(ReplyTooLarge) as info:
                await pool.exchange(REQUEST, deadline(), max_bytes=4096)
            errors.append(info.value.declared)
        reply = await pool.exchange(REQUEST, deadline(), max_bytes=4096)
        pool.close()
    assert errors == [100_000_000, None, None] and reply.content == b"small"
    assert srv.connections == 3  # the bomb came whole within the cap on the wire: its connection was kept


async def test_the_limit_bounds_the_connections_in_use():
    in_flight = peak = 0

    async def counting(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal in_flight, peak
        while True:
            await read_request(reader)
            in_flight += 1
            peak = max(peak, in_flight)
            await asyncio.sleep(0.02)
            in_flight -= 1
            writer.write(ok())
            await writer.drain()

    async with RawServer(counting) as srv:
        pool = srv.pool(limit=2)
        await asyncio.gather(*(pool.exchange(REQUEST, deadline()) for _ in range(8)))
        pool.close()
    assert peak == 2 and srv.connections == 2


def test_a_header_that_would_break_the_framing_is_refused():
    assert request_head("POST", "/v1/x", "h:1", {"authorization": "Bearer k"}) == (
        b"POST /v1/x HTTP/1.1\r\nhost: h:1\r\nauthorization: Bearer k\r\n")
    for headers in ({"authorization": "Bearer k\r\nx-evil: 1"}, {"bad name": "v"}, {"x\n": "v"}):
        with pytest.raises(ValueError, match="would break the request"):
            request_head("POST", "/", "h", headers)
