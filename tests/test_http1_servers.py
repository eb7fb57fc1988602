"""The plain-HTTP pool (react_eval/http1.py) and its two users against the servers users
point them at: uvicorn serving Starlette (vLLM, SGLang, NIM, FastAPI Gym servers),
aiohttp.web, and raw asyncio servers for framings those do not produce."""

from __future__ import annotations

import asyncio
import socket
import threading
import zlib
from typing import Any

import orjson
import pytest
import uvicorn
from aiohttp import web
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from react_eval.gym.transport import ConnectionLost, GymTransport, RolloutCookies
from react_eval.http1 import ExchangeError, HTTP1Pool
from react_eval.model.config import ModelConfig
from react_eval.model.errors import ModelConnectionError, ModelTimeoutError
from react_eval.model.retry import is_retryable
from react_eval.model.transport import HTTPTransport
from tests.test_http1 import RawServer, deadline, ok, read_request

pytestmark = pytest.mark.anyio

BIG = bytes(range(256)) * (3 * 4096 + 7)  # ~3 MB: many reads on the wire, a large inflate


def request(path: str = "/x", body: bytes = b"{}", host: str = "t") -> bytes:
    return b"POST %s HTTP/1.1\r\nhost: %s\r\naccept-encoding: gzip, deflate\r\ncontent-length: %d\r\n\r\n%s" % (
        path.encode(), host.encode(), len(body), body)


class Uvicorn:
    """A real uvicorn on a loopback socket of its own, served from a thread."""

    def __init__(self, app: Any, host: str = "127.0.0.1", **config: Any):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.port = self.sock.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", **config))

    def __enter__(self) -> "Uvicorn":
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        for _ in range(500):
            if self.server.started:
                return self
            threading.Event().wait(0.01)
        raise RuntimeError("uvicorn did not start")

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


async def _echo(request: Request) -> Response:
    body = await request.body()
    return JSONResponse({"host": request.headers["host"], "n": len(body), "peer": request.client.port})


async def _big(request: Request) -> Response:
    await request.body()
    return Response(BIG, media_type="application/octet-stream")


async def _close(request: Request) -> Response:
    await request.body()
    return JSONResponse({"peer": request.client.port}, headers={"connection": "close"})


async def _strict(request: Request) -> Response:
    if int(request.headers.get("content-length", "0")) > 1024:  # refused before the body is read
        return JSONResponse({"error": "too large"}, status_code=413)
    return JSONResponse({"ok": True})


async def _latin(request: Request) -> Response:
    await request.body()
    response = JSONResponse({"ok": True})
    response.raw_headers.append((b"x-name", "café".encode("utf-8")))
    return response


async def _slow(request: Request) -> Response:
    async def drip():
        yield b'{"a": "'
        await asyncio.sleep(3)
        yield b'"}'
    return StreamingResponse(drip(), media_type="application/json")


APP = Starlette(routes=[Route(p, f, methods=["POST"]) for p, f in
                        [("/echo", _echo), ("/v1/chat/completions", _echo), ("/big", _big), ("/close", _close),
                         ("/strict", _strict), ("/latin", _latin), ("/slow", _slow)]],
                middleware=[Middleware(GZipMiddleware, minimum_size=500)])


@pytest.fixture(scope="module")
def uv():
    with Uvicorn(APP) as server:
        yield server


def model_config(base_url: str, **extra: Any) -> ModelConfig:
    return ModelConfig(base_url=base_url, model="m", api_key="k", client="fast", **extra)


# ---------------------------------------------------------------- uvicorn


async def test_a_gzipped_reply_of_megabytes_from_uvicorn_arrives_whole_on_one_connection(uv):
    pool = HTTP1Pool("127.0.0.1", uv.port)
    for _ in range(2):
        reply = await pool.exchange(request("/big"), deadline())
        assert reply.header(b"content-encoding") == "gzip"
        assert reply.content == BIG
    assert pool.connections_made == 1
    pool.close()


async def test_connection_close_from_uvicorn_sends_the_next_request_on_a_new_connection(uv):
    pool = HTTP1Pool("127.0.0.1", uv.port)
    peers = [orjson.loads((await pool.exchange(request("/close"), deadline())).content)["peer"] for _ in range(3)]
    assert pool.connections_made == 3 and len(set(peers)) == 3
    assert not pool._idle
    pool.close()


async def test_uvicorns_keepalive_timeout_closing_an_idle_connection_is_survived():
    with Uvicorn(APP, timeout_keep_alive=1) as server:
        pool = HTTP1Pool("127.0.0.1", server.port)  # our own keep-alive (4 s) is longer than the server's
        assert (await pool.exchange(request("/echo"), deadline())).status == 200
        await asyncio.sleep(1.6)
        assert (await pool.exchange(request("/echo"), deadline())).status == 200
        assert pool.connections_made == 2
        pool.close()


async def test_a_413_answered_before_a_large_body_is_read_reaches_the_caller(uv):
    pool = HTTP1Pool("127.0.0.1", uv.port)
    for _ in range(3):
        reply = await pool.exchange(request("/strict", b"x" * 4_000_000), deadline())
        assert reply.status == 413 and b"too large" in reply.content
    assert (await pool.exchange(request("/strict"), deadline())).status == 200
    pool.close()


async def test_a_non_ascii_header_value_keeps_its_bytes(uv):
    pool = HTTP1Pool("127.0.0.1", uv.port)
    reply = await pool.exchange(request("/latin"), deadline())
    assert dict(reply.raw_headers)[b"x-name"] == "café".encode("utf-8")
    assert reply.header(b"x-name").encode("latin-1") == "café".encode("utf-8")  # bytes kept, as latin-1
    pool.close()


async def test_a_timeout_mid_reply_from_uvicorn_leaves_the_model_client_usable(uv):
    transport = HTTPTransport(model_config(f"http://127.0.0.1:{uv.port}", request_timeout=0.5))
    with pytest.raises(ModelTimeoutError):
        await transport.post("/slow", {}, {})
    assert (await transport.post("/echo", {"a": 1}, {}))["n"] == 7
    await transport.aclose()


async def test_a_cancelled_call_mid_reply_leaves_the_pool_healthy(uv):
    pool = HTTP1Pool("127.0.0.1", uv.port)
    task = asyncio.ensure_future(pool.exchange(request("/slow"), deadline()))
    await asyncio.sleep(0.5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not pool._idle
    assert (await pool.exchange(request("/echo"), deadline())).status == 200
    pool.close()


@pytest.mark.parametrize("host", ["::1", "localhost"])
async def test_the_model_client_sends_a_correct_host_header_to_ipv6_literals_and_localhost(host):
    with Uvicorn(APP, host="::1" if host == "::1" else "127.0.0.1") as server:
        name = "[::1]" if host == "::1" else host
        transport = HTTPTransport(model_config(f"http://{name}:{server.port}/v1"))
        assert transport._pool is not None
        reply = await transport.post("/chat/completions", {"a": 1}, {})
        assert reply["host"] == f"{name}:{server.port}"
        await transport.aclose()


async def test_a_burst_of_connections_against_a_small_backlog_all_complete():
    # (a backlog of 2 against 150 at once makes the kernel reset some: aiohttp sees the same)
    with Uvicorn(APP, backlog=8) as server:
        pool = HTTP1Pool("127.0.0.1", server.port)
        replies = await asyncio.gather(*(pool.exchange(request("/echo"), deadline(60)) for _ in range(64)))
        assert [r.status for r in replies] == [200] * 64
        replies = await asyncio.gather(*(pool.exchange(request("/echo"), deadline(60)) for _ in range(64)))
        assert [r.status for r in replies] == [200] * 64
        assert pool.connections_made <= 64 + 8  # the second burst reuses the first's connections
        pool.close()


# ---------------------------------------------------------------- aiohttp.web


async def test_aiohttp_web_deflate_and_a_multi_megabyte_reply_in_many_chunks():
    async def deflated(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        resp.enable_compression(web.ContentCoding.deflate)
        await resp.prepare(request)
        for i in range(0, len(BIG), 16384):
            await resp.write(BIG[i:i + 16384])
        await resp.write_eof()
        return resp

    app = web.Application()
    app.router.add_post("/d", deflated)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        pool = HTTP1Pool("127.0.0.1", port)
        for _ in range(2):
            reply = await pool.exchange(request("/d"), deadline(30))
            assert reply.header(b"content-encoding") == "deflate" and reply.header(b"transfer-encoding") == "chunked"
            assert reply.content == BIG
        assert pool.connections_made == 1
        pool.close()
    finally:
        await runner.cleanup()


# ---------------------------------------------------------------- raw framings


async def test_a_chunked_reply_with_trailers_is_whole_and_its_connection_reused():
    chunked = (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ntrailer: x-check\r\n\r\n"
               b"3\r\n{\"a\r\n4\r\n\":1}\r\n0\r\nx-check: done\r\n\r\n")

    async def handler(reader, writer):
        while True:
            await read_request(reader)
            writer.write(chunked)

    async with RawServer(handler) as server:
        pool = server.pool()
        for _ in range(2):
            reply = await pool.exchange(request(), deadline())
            assert reply.status == 200 and reply.content == b'{"a":1}'
        assert server.connections == 1
        pool.close()


async def test_a_reply_with_both_content_length_and_chunked_is_refused_not_misframed():
    both = b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"

    async def handler(reader, writer):
        await read_request(reader)
        writer.write(both)
        await reader.read()

    async with RawServer(handler) as server:
        with pytest.raises(ExchangeError):
            await server.pool().exchange(request(), deadline())


async def test_a_truncated_gzip_body_is_an_error_not_a_short_reply():
    whole = zlib.compress(b'{"text": "%s"}' % (b"y" * 5000), wbits=31)
    cut = whole[: len(whole) // 2]

    async def handler(reader, writer):
        while True:
            await read_request(reader)
            writer.write(ok(cut, b"content-encoding: gzip\r\n"))

    async with RawServer(handler) as server:
        with pytest.raises(ExchangeError):
            await server.pool().exchange(request(), deadline())


def _closing_on_second_request():
    """Answers the first request with keep-alive, then closes the connection as the next
    arrives (a server dropping an idle connection just as we reuse it)."""

    async def handler(reader, writer):
        await read_request(reader)
        writer.write(ok())
        await writer.drain()
        await reader.readuntil(b"\r\n\r\n")

    return handler


async def test_a_server_closing_a_reused_connection_is_a_retryable_model_connection_error():
    async with RawServer(_closing_on_second_request()) as server:
        transport = HTTPTransport(model_config(f"http://127.0.0.1:{server.port}/v1"))
        assert await transport.post("/chat/completions", {}, {}) == {"a": 1}
        with pytest.raises(ModelConnectionError) as caught:
            await transport.post("/chat/completions", {}, {})
        assert is_retryable(caught.value)
        assert await transport.post("/chat/completions", {}, {}) == {"a": 1}  # a fresh connection
        await transport.aclose()


async def test_a_server_closing_a_reused_connection_is_connection_lost_for_a_gym_call():
    async with RawServer(_closing_on_second_request()) as server:
        transport = GymTransport(f"http://127.0.0.1:{server.port}")
        cookies = RolloutCookies()
        assert (await transport.request("POST", "/tool", body=b"{}", cookies=cookies, timeout=5)).status == 200
        with pytest.raises(ConnectionLost):
            await transport.request("POST", "/tool", body=b"{}", cookies=cookies, timeout=5)
        assert (await transport.request("POST", "/tool", body=b"{}", cookies=cookies, timeout=5)).status == 200


async def test_an_empty_body_marked_gzip_is_an_empty_reply():
    async def handler(reader, writer):
        while True:
            await read_request(reader)
            writer.write(b"HTTP/1.1 204 No Content\r\ncontent-encoding: gzip\r\n\r\n")

    async with RawServer(handler) as server:
        reply = await server.pool().exchange(request(), deadline())
        assert reply.status == 204 and reply.content == b""
