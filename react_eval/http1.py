"""Plain-HTTP/1.1 exchanges for the model client and the Gym transport: a keep-alive
pool per origin whose replies are framed by httptools (llhttp, the parser uvicorn
serves with).

Why not aiohttp's ``ClientSession`` here: above the exchange itself (one send,
one receive, the parse) it costs about 100 µs of CPU per request in URL and
header objects, a writer task, stream readers and timers: measured 150 against
37 µs per request on the same server, body and process, which was a third of
a Gym rollout's CPU per turn inside the engine. Both callers send small
requests to one origin and read whole replies, so the pool does only that:
the request is one write of its rendered head and body, the reply's bytes go
to httptools, and one timer per request bounds it. Requests over TLS or
through a proxy stay on aiohttp (in :mod:`react_eval.model.transport` and
:mod:`react_eval.gym.transport`), whose job those are.

Framing rules kept (RFC 9112): a reply ends at its ``Content-Length``, at the
last chunk, or, with neither, when the server closes; 1xx interim replies are
skipped; a connection is reused only when the reply allows keep-alive, was
read whole and nothing followed it; a connection idle for ``keepalive``
seconds is dropped before a typical server drops it (uvicorn: 5 s). A
connection that dies, times out or is abandoned mid-exchange is closed, never
reused. A body can be capped (``max_bytes``): over the cap, declared or
counted as it arrives or while it is inflated, the reply is refused unread.
"""

from __future__ import annotations

import asyncio
import zlib
from collections import deque
from typing import Any

import httptools

#: idle keep-alive connections are dropped before a typical server drops them (uvicorn: 5 s)
KEEPALIVE_SECONDS = 4.0


class ExchangeError(Exception):
    """The reply did not come whole: no connection, the connection was lost or the reply is not HTTP."""


class ConnectError(ExchangeError):
    """No connection could be made: the request never left."""


class ReplyTooLarge(ExchangeError):
    """The reply's body is over the exchange's ``max_bytes`` (declared so, or counted
    as it came, or once decoded); the connection was dropped unread."""

    def __init__(self, status: int, declared: int | None):
        super().__init__(f"HTTP {status} reply over the byte cap")
        self.status, self.declared = status, declared


class _Connection(asyncio.Protocol):
    """One keep-alive connection; one exchange at a time."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[tuple[int, list[tuple[bytes, bytes]], list[bytes]]] | None = None
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.framed = False  # the reply declared its length (Content-Length or chunked)
        self.headers_done = False
        self.keep = False
        self.stray = False  # a reply began that no request was waiting for
        self.idle_since = 0.0
        self.max_bytes: int | None = None  # the cap on this exchange's body (None: none)
        self.size = 0

    # ------------------------------------------------------------ the exchange

    def send(self, data: bytes, loop: asyncio.AbstractEventLoop, max_bytes: int | None = None) -> asyncio.Future[Any]:
        self.headers, self.body, self.framed, self.headers_done, self.keep = [], [], False, False, False
        self.stray, self.max_bytes, self.size = False, max_bytes, 0
        self.waiter = waiter = loop.create_future()
        assert self.transport is not None
        self.transport.write(data)
        return waiter

    def expire(self) -> None:
        """The request's deadline passed: fail it and drop the connection."""
        self._fail(TimeoutError())
        self.abort()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()
            self.transport = None

    def _fail(self, exc: BaseException) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    # ------------------------------------------------------------ asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        waiter, self.waiter = self.waiter, None
        if waiter is None or waiter.done():
            return
        if exc is None and self.headers_done and not self.framed:  # delimited by a clean close: it is whole
            waiter.set_result((self.parser.get_status_code(), self.headers, self.body))
        else:
            why = f": {type(exc).__name__}: {exc}" if exc else ""
            waiter.set_exception(ExchangeError(f"the server closed the connection before the whole reply{why}"))

    def data_received(self, data: bytes) -> None:
        if self.waiter is None:  # bytes nobody asked for: the connection is out of step
            self.abort()
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ExchangeError(f"the reply is not HTTP/1.1: {exc}"))
            self.abort()
            return
        if self.stray:  # more came after the reply: the connection is out of step
            self.keep = False

    # ------------------------------------------------------------ httptools callbacks

    def on_message_begin(self) -> None:
        if self.waiter is None:
            self.stray = True

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.headers_done = True
        for name, value in self.headers:
            lower = name.lower()
            if lower == b"content-length":
                self.framed = True
                if self.max_bytes is not None and value.strip().isdigit() and int(value) > self.max_bytes:
                    self._too_large(int(value))
            elif lower == b"transfer-encoding" and b"chunked" in value.lower():
                self.framed = True

    def on_body(self, body: bytes) -> None:
        if self.max_bytes is not None:
            self.size += len(body)
            if self.size > self.max_bytes:
                self._too_large(None)
                return
        self.body.append(body)

    def _too_large(self, declared: int | None) -> None:
        """Refuse the reply unread: its connection goes."""
        self._fail(ReplyTooLarge(self.parser.get_status_code(), declared))
        self.max_bytes, self.body = None, []
        self.abort()

    def on_message_complete(self) -> None:
        status = self.parser.get_status_code()
        if 100 <= status < 200:  # an interim reply: the real one follows
            self.headers, self.body, self.framed, self.headers_done = [], [], False, False
            return
        self.keep = self.parser.should_keep_alive()
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result((status, self.headers, self.body))
        self.headers, self.body, self.framed, self.headers_done = [], [], False, False


class Reply:
    """A whole reply: status, raw headers and the body (decoded from gzip/deflate)."""

    __slots__ = ("status", "raw_headers", "content")

    def __init__(self, status: int, raw_headers: list[tuple[bytes, bytes]], content: bytes):
        self.status, self.raw_headers, self.content = status, raw_headers, content

    def header(self, name: bytes) -> str | None:
        """The last value of header ``name`` (lower case), or None."""
        found = None
        for key, value in self.raw_headers:
            if key.lower() == name:
                found = value
        return found.decode("latin-1") if found is not None else None

    @property
    def headers(self) -> dict[str, str]:
        """The headers, names in lower case (a repeated one keeps its last value)."""
        return {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in self.raw_headers}


def _decoded(body: bytes, encoding: str | None, status: int, max_bytes: int | None) -> bytes:
    """The body without its gzip or deflate coding; decoding stops past ``max_bytes``
    (a small bomb does not inflate in memory)."""
    if not body or not encoding or encoding.strip().lower() == "identity":  # (an empty body has no stream)
        return body
    kind = encoding.strip().lower()
    if kind not in ("gzip", "x-gzip", "deflate"):
        raise ExchangeError(f"the reply is {encoding}-encoded, which was not asked for")
    limit = 0 if max_bytes is None else max_bytes + 1
    for wbits in (47, -15):  # a gzip or zlib stream (told apart by its header); then raw deflate, as some send it
        inflate = zlib.decompressobj(wbits)
        try:
            out = inflate.decompress(body, limit)
        except zlib.error as exc:
            if kind == "deflate" and wbits == 47:
                continue
            raise ExchangeError(f"the {kind}-encoded reply is corrupt: {exc}") from None
        if max_bytes is not None and (len(out) > max_bytes or inflate.unconsumed_tail):
            raise ReplyTooLarge(status, None)
        if not inflate.eof:  # the stream stops short: a part of the body, not the body
            raise ExchangeError(f"the {kind}-encoded reply is cut short")
        return out
    raise AssertionError("unreachable")


class HTTP1Pool:
    """Keep-alive connections to one ``http://`` origin, made on demand, reused most
    recent first. Bound to the event loop it is first used on (another loop starts afresh)."""

    def __init__(self, host: str, port: int, *, keepalive: float = KEEPALIVE_SECONDS, limit: int = 0):
        self.host, self.port, self.keepalive, self.limit = host, port, keepalive, limit
        self._idle: deque[_Connection] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._slots: asyncio.Semaphore | None = None  # ``limit`` > 0: exchanges (so connections) at once
        self.connections_made = 0

    def _bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start afresh on ``loop``: another loop's connections cannot be used on it."""
        self._idle.clear()
        self._loop = loop
        self._slots = asyncio.Semaphore(self.limit) if self.limit > 0 else None

    def _take(self, loop: asyncio.AbstractEventLoop) -> _Connection | None:
        idle = self._idle
        if not idle:
            return None
        stale = loop.time() - self.keepalive
        while idle and idle[0].idle_since < stale:  # oldest first: those the server may be closing
            idle.popleft().abort()
        while idle:
            conn = idle.pop()
            if conn.transport is not None and not conn.transport.is_closing():
                return conn
        return None

    async def _connect(self, loop: asyncio.AbstractEventLoop, deadline: float, connect_timeout: float | None) -> _Connection:
        if connect_timeout is not None and loop.time() + connect_timeout < deadline:
            try:
                async with asyncio.timeout(connect_timeout):
                    _, conn = await loop.create_connection(_Connection, self.host, self.port)
            except TimeoutError as exc:
                raise ConnectError(f"no connection to {self.host}:{self.port} within {connect_timeout:g}s") from exc
            except OSError as exc:
                raise ConnectError(f"cannot connect to {self.host}:{self.port}: {type(exc).__name__}: {exc}") from exc
        else:
            try:
                async with asyncio.timeout_at(deadline):
                    _, conn = await loop.create_connection(_Connection, self.host, self.port)
            except OSError as exc:
                raise ConnectError(f"cannot connect to {self.host}:{self.port}: {type(exc).__name__}: {exc}") from exc
        self.connections_made += 1
        return conn

    async def exchange(self, request: bytes, deadline: float, *, max_bytes: int | None = None,
                       connect_timeout: float | None = None) -> Reply:
        """Send ``request`` (head and body) and read the whole reply by ``deadline`` (the
        loop's clock), its body at most ``max_bytes``. Raises ``TimeoutError``,
        :class:`ConnectError` (a new connection failed, within ``connect_timeout`` if
        given), :class:`ReplyTooLarge` or :class:`ExchangeError`."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._bind(loop)
        if self._slots is None:
            return await self._exchange(loop, request, deadline, max_bytes, connect_timeout)
        async with asyncio.timeout_at(deadline):  # waiting for a slot counts against the deadline
            await self._slots.acquire()
        try:
            return await self._exchange(loop, request, deadline, max_bytes, connect_timeout)
        finally:
            self._slots.release()

    async def _exchange(self, loop: asyncio.AbstractEventLoop, request: bytes, deadline: float,
                        max_bytes: int | None, connect_timeout: float | None) -> Reply:
        conn = self._take(loop) or await self._connect(loop, deadline, connect_timeout)
        waiter = conn.send(request, loop, max_bytes)
        timer = loop.call_at(deadline, conn.expire)
        try:
            status, headers, body = await waiter
        except BaseException:  # failed, timed out or cancelled mid-exchange: never reused
            conn.abort()
            raise
        finally:
            timer.cancel()
        if conn.keep and conn.transport is not None:
            conn.idle_since = loop.time()
            self._idle.append(conn)
        else:
            conn.abort()
        content = body[0] if len(body) == 1 else b"".join(body)
        reply = Reply(status, headers, content)
        for name, _ in headers:
            if name.lower() == b"content-encoding":
                reply.content = _decoded(content, reply.header(b"content-encoding"), status, max_bytes)
                break
        return reply

    def close(self) -> None:
        while self._idle:
            self._idle.pop().abort()


def host_header(host: str, port: int | None) -> str:
    """The ``Host`` header's value for ``host`` (an IPv6 literal in brackets) and ``port`` (left out when 80)."""
    name = f"[{host}]" if ":" in host else host
    return name if port in (None, 80) else f"{name}:{port}"


def request_head(method: str, target: str, host: str, headers: dict[str, Any]) -> bytes:
    """The fixed part of a request's head (its ``Content-Length`` and blank line follow);
    a header name or value that would break the framing is refused."""
    lines = [f"{method} {target} HTTP/1.1", f"host: {host}"]
    for name, value in headers.items():
        text = str(value)
        if any(c in name for c in ":\r\n \t") or "\r" in text or "\n" in text:
            raise ValueError(f"header {name!r} has a character that would break the request")
        lines.append(f"{name}: {text}")
    return ("\r\n".join(lines) + "\r\n").encode("latin-1")
