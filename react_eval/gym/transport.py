"""HTTP to one NeMo Gym resources server: one keep-alive pool for the whole run.

Every rollout of a run talks to the same server, so they share one
``aiohttp`` connection pool (:class:`GymTransport`); what keeps their Gym
sessions apart is the cookie, which each rollout holds in its own
:class:`RolloutCookies` and sends as an explicit ``Cookie`` header (the pool's
own jar is disabled). Building a client, an SSL context and a cookie jar per
rollout cost about 15 ms of CPU each and most of the harness's memory; a pool
per server costs nothing per rollout.

To a plain ``http://`` server the requests go on a keep-alive pool framed by
httptools (:class:`~react_eval.http1.HTTP1Pool`, the model client's: a
quarter of aiohttp's CPU per request); to an ``https://`` one, on aiohttp.

Replies are read with a byte cap (``max_response_bytes``): a declared
``Content-Length`` over the cap is refused before the body is read, and a
streamed or compressed body is abandoned (its connection closed) as soon as
its decoded bytes pass the cap, so a runaway server (or a gzip bomb) cannot
fill the harness's memory.

Cookie rules: the jar talks to exactly one server, so it accepts and returns
every cookie that server sets, whatever its ``Domain`` and ``Secure``
attributes say (the standard library's rules drop a session cookie of
``localhost``, of ``Domain=127.0.0.1`` or a ``Secure`` one over plain HTTP);
``Path``, ``Max-Age`` and ``Expires`` still apply (RFC 6265).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from functools import partial
from typing import Any
from urllib.parse import urlencode

import aiohttp
from tenacity import RetryCallState, stop_after_attempt, wait_exponential
from yarl import URL

from react_eval.http1 import ConnectError, ExchangeError, HTTP1Pool, ReplyTooLarge, host_header
from react_eval.retrying import retrying_after
from react_eval.version import __version__

#: default cap on one reply's body (``max_response_bytes``)
DEFAULT_MAX_RESPONSE_BYTES = 16 << 20
#: idle keep-alive connections are dropped before a typical server drops them
#: (uvicorn: 5 s), so a request never goes out on a connection being closed
KEEPALIVE_SECONDS = 4.0


#: the request never reached the server: only these are retried (``connect_attempts``)
_CONNECT_ERRORS = (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError, ConnectError)


def _no_connection(exc: BaseException) -> bool:
    return isinstance(exc, _CONNECT_ERRORS)


class Unreachable(Exception):
    """Every connection attempt failed (the request never reached the server)."""


class ConnectionLost(aiohttp.ClientConnectionError):
    """The connection failed after the request went out (closed, reset, or not HTTP)."""


class ResponseTooLarge(Exception):
    """The reply's body is over ``max_response_bytes``; it was not read."""

    def __init__(self, status: int, limit: int, declared: int | None):
        size = f"declared {declared:,} bytes" if declared is not None else f"more than {limit:,} bytes"
        super().__init__(f"HTTP {status} reply of {size}, over the {limit:,}-byte cap (max_response_bytes)")
        self.status, self.limit, self.declared = status, limit, declared


@dataclass(slots=True)
class GymReply:
    """A whole reply, read within the cap."""

    status: int
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")


class RolloutCookies:
    """One rollout's cookies for its one server (see the module doc for the rules)."""

    __slots__ = ("_cookies", "_headers", "_requests", "_expiry", "_last")

    def __init__(self) -> None:
        #: (name, path) -> (value, expires at (time.time()) or None)
        self._cookies: dict[tuple[str, str], tuple[str, float | None]] = {}
        #: request path -> its Cookie header, valid until a cookie is stored or one expires
        self._headers: dict[str, str | None] = {}
        #: (request path, has a body) -> the request's headers, valid as long as ``_headers``
        self._requests: dict[tuple[str, bool], dict[str, str]] = {}
        #: the earliest expiry of a held cookie (None: none of them expires)
        self._expiry: float | None = None
        #: the last Set-Cookie header parsed and what it said (a server re-sends the same one on every reply)
        self._last: tuple[str, tuple[str, str | None, str, int | None, float | None] | None] | None = None

    def __iter__(self):
        return iter(self._cookies)

    def as_dict(self) -> dict[str, str]:
        self._expire()
        return {name: value for (name, _), (value, _) in self._cookies.items()}

    def store(self, set_cookie: str, request_path: str) -> None:
        """File one ``Set-Cookie`` header received for ``request_path``."""
        last = self._last
        if last is not None and last[0] == set_cookie:
            parsed = last[1]  # the same header again: what it says is known, only Max-Age is counted anew
        else:
            parsed = _parse_set_cookie(set_cookie)
            self._last = (set_cookie, parsed)
        if parsed is None:
            return  # RFC 6265 5.2: ignore a cookie without a name=value pair
        name, path, value, max_age, expires = parsed
        if max_age is not None:
            expires = time.time() + max_age
        key = (name, path or _default_path(request_path))
        held = self._cookies.get(key)
        if expires is not None and expires <= time.time():
            if self._cookies.pop(key, None) is not None:  # the server deletes it
                self._changed(headers=True)
        else:
            self._cookies[key] = (value, expires)
            # the same cookie again (Starlette re-sends it on every reply) leaves the headers as they are
            self._changed(headers=held is None or held[0] != value)

    def _changed(self, headers: bool) -> None:
        if headers:
            self._headers.clear()
            self._requests.clear()
        self._expiry = min((e for _, e in self._cookies.values() if e is not None), default=None)

    def header(self, request_path: str) -> str | None:
        """The ``Cookie`` header for a request to ``request_path`` (longest paths first),
        made once per path and cookie set: a rollout sends the same one on every request."""
        if not self._cookies:
            return None
        if self._expiry is not None and self._expiry <= time.time():
            self._expire()
        headers = self._headers
        try:
            return headers[request_path]
        except KeyError:
            pass
        matching = [(path, name, value) for (name, path), (value, _) in self._cookies.items()
                    if _path_matches(request_path, path)]
        matching.sort(key=lambda c: -len(c[0]))
        header = "; ".join(f"{name}={value}" for _, name, value in matching) or None
        if len(headers) < 64:  # paths with path parameters vary without end
            headers[request_path] = header
        return header

    def request_headers(self, request_path: str, has_body: bool) -> dict[str, str]:
        """The headers of a request to ``request_path``: its ``Cookie`` and, with a body, its
        content type; made once per path and cookie set (a rollout sends the same ones again
        and again). The dict is shared: callers must not change it (aiohttp copies it)."""
        if self._expiry is not None and self._expiry <= time.time():
            self._expire()
        key = (request_path, has_body)
        try:
            return self._requests[key]
        except KeyError:
            pass
        headers = {"content-type": "application/json"} if has_body else {}
        cookie = self.header(request_path)
        if cookie:
            headers["cookie"] = cookie
        if len(self._requests) < 64:  # paths with path parameters vary without end
            self._requests[key] = headers
        return headers

    def _expire(self) -> None:
        now = time.time()
        gone = [key for key, (_, expires) in self._cookies.items() if expires is not None and expires <= now]
        for key in gone:
            del self._cookies[key]
        if gone:
            self._changed(headers=True)


def _parse_set_cookie(set_cookie: str) -> tuple[str, str | None, str, int | None, float | None] | None:
    """(name, Path or None, value, Max-Age or None, Expires as a timestamp or None) of one
    ``Set-Cookie`` header, or None when it has no name=value pair."""
    first, _, attributes = set_cookie.partition(";")
    name, eq, value = first.partition("=")
    name, value = name.strip(), value.strip()
    if not eq or not name:
        return None
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    path, expires, max_age = None, None, None
    for attribute in attributes.split(";"):
        key, _, val = attribute.partition("=")
        key, val = key.strip().lower(), val.strip()
        if key == "path" and val.startswith("/"):
            path = val
        elif key == "max-age":
            try:
                max_age = int(val)
            except ValueError:
                pass
        elif key == "expires":
            try:
                expires = parsedate_to_datetime(val).timestamp()
            except (TypeError, ValueError, IndexError):
                pass
    return name, path, value, max_age, expires


def _default_path(request_path: str) -> str:
    path = request_path.split("?", 1)[0]
    if not path.startswith("/") or path.count("/") == 1:
        return "/"
    return path[: path.rfind("/")]


def _path_matches(request_path: str, cookie_path: str) -> bool:
    path = request_path.split("?", 1)[0] or "/"
    if path == cookie_path:
        return True
    return path.startswith(cookie_path) and (cookie_path.endswith("/") or path[len(cookie_path)] == "/")


def query_string(params: dict[str, Any]) -> str:
    """Query parameters as httpx renders them: booleans as ``true``/``false``,
    ``None`` as empty, lists as repeated keys."""

    def one(value: Any) -> str:
        if value is True or value is False:
            return "true" if value else "false"
        return "" if value is None else str(value)

    pairs = [(k, one(x)) for k, v in params.items() for x in (v if isinstance(v, (list, tuple)) else [v])]
    return urlencode(pairs)


class GymTransport:
    """The keep-alive pool to one server, shared by all rollouts of a run.

    The ``aiohttp`` session binds to the event loop it is first used on and is
    made again on another loop (worker processes unpickle the transport without
    it). ``max_connections`` bounds the connections to the server (0: no bound).
    """

    def __init__(self, url: str, *, connect_attempts: int = 3,
                 max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES, max_connections: int = 0):
        self.url = url.rstrip("/")
        self.connect_attempts = max(1, int(connect_attempts))
        self.max_response_bytes = int(max_response_bytes)
        self.max_connections = int(max_connections)
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._urls: dict[str, URL] = {}
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}
        self._backoff = wait_exponential(multiplier=0.2, max=2.0)  # 0.2 s, 0.4 s, ... at most 2 s
        self._stop = stop_after_attempt(self.connect_attempts)
        origin = URL(self.url)
        self._pool = None
        if origin.scheme == "http" and origin.host:
            self._pool = HTTP1Pool(origin.host, origin.port or 80, limit=self.max_connections)
            host = host_header(origin.host, origin.port)
            self._fixed = f"host: {host}\r\naccept-encoding: gzip, deflate\r\nuser-agent: react-eval/{__version__}\r\n"

    def __getstate__(self) -> dict[str, Any]:
        pool = self._pool and HTTP1Pool(self._pool.host, self._pool.port, limit=self.max_connections)
        return {**self.__dict__, "_session": None, "_loop": None, "_urls": {}, "_timeouts": {}, "_pool": pool}

    def _client(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._loop is not loop:
            connector = aiohttp.TCPConnector(limit=self.max_connections, limit_per_host=self.max_connections,
                                             keepalive_timeout=KEEPALIVE_SECONDS)
            # trust_env=False: a proxy from the environment must not sit between us and
            # the server; DummyCookieJar: cookies are the rollouts', never the pool's
            self._session = aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar(),
                                                  trust_env=False, auto_decompress=True, raise_for_status=False)
            self._loop = loop
        return self._session

    def _url(self, path: str) -> URL:
        url = self._urls.get(path)
        if url is None:
            url = URL(self.url + path)
            if len(self._urls) < 4096:  # paths with path parameters vary without end
                self._urls[path] = url
        return url

    def _timeout(self, seconds: float) -> aiohttp.ClientTimeout:
        timeout = self._timeouts.get(seconds)
        if timeout is None:
            timeout = aiohttp.ClientTimeout(total=seconds, connect=min(seconds, 10.0))
            if len(self._timeouts) < 64:
                self._timeouts[seconds] = timeout
        return timeout

    async def request(self, method: str, path: str, *, body: bytes | None, cookies: RolloutCookies,
                      timeout: float, query: dict[str, Any] | None = None) -> GymReply:
        """One request on the rollout's cookies, retried (by tenacity, with backoff)
        only while no connection can be made. Raises :class:`Unreachable`, :class:`ResponseTooLarge`,
        ``TimeoutError`` (over ``timeout`` seconds in all) or ``aiohttp.ClientError``."""
        if query:
            path = f"{path}?{query_string(query)}"
        headers = cookies.request_headers(path, body is not None)
        deadline = time.monotonic() + timeout  # asyncio's clock too
        send = self._attempt if self._pool is None else self._exchange
        try:  # the first attempt right here: nearly every request needs no other
            return await send(method, path, body, headers, cookies, deadline, timeout)
        except _CONNECT_ERRORS as exc:
            first: Exception = exc
        # tenacity takes over as if it had made that attempt; the attempt and the wait are methods
        # bound to their arguments, not closures; the stop rule is made once per transport
        attempt = partial(send, method, path, body, headers, cookies, deadline, timeout)
        try:
            return await retrying_after(first, attempt, retry=_no_connection, wait=partial(self._wait, deadline),
                                        stop=self._stop)
        except _CONNECT_ERRORS as exc:
            raise Unreachable(f"{method} {self.url}{path}: {self.connect_attempts} connection attempt(s) failed: "
                              f"{type(exc).__name__}: {exc}") from exc

    async def _attempt(self, method: str, path: str, body: bytes | None, headers: dict[str, str],
                       cookies: RolloutCookies, deadline: float, timeout: float) -> GymReply:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"{method} {path}: no answer within {timeout:g}s")
        async with self._client().request(method, self._url(path), data=body, headers=headers,
                                           allow_redirects=False,
                                           timeout=self._timeout(round(left, 1) or left)) as resp:
            for value in resp.headers.getall("set-cookie", ()):
                cookies.store(value, path)
            return GymReply(resp.status, await self._read(resp))

    async def _exchange(self, method: str, path: str, body: bytes | None, headers: dict[str, str],
                        cookies: RolloutCookies, deadline: float, timeout: float) -> GymReply:
        """One attempt on the plain-HTTP pool, with the errors of :meth:`_attempt`."""
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"{method} {path}: no answer within {timeout:g}s")
        lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        head = f"{method} {self._url(path).raw_path_qs} HTTP/1.1\r\n{self._fixed}{lines}".encode("latin-1")
        data = b"%scontent-length: %d\r\n\r\n%s" % (head, len(body), body) if body is not None else head + b"\r\n"
        assert self._pool is not None
        try:
            reply = await self._pool.exchange(data, deadline, max_bytes=self.max_response_bytes,
                                              connect_timeout=min(left, 10.0))
        except ReplyTooLarge as exc:
            raise ResponseTooLarge(exc.status, self.max_response_bytes, exc.declared) from None
        except ConnectError:
            raise
        except ExchangeError as exc:
            raise ConnectionLost(f"{method} {path}: {exc}") from exc
        for name, value in reply.raw_headers:
            if name.lower() == b"set-cookie":
                cookies.store(value.decode("latin-1"), path)
        return GymReply(reply.status, reply.content)

    def _wait(self, deadline: float, state: RetryCallState) -> float:
        """Backoff, within what is left of the deadline."""
        return min(self._backoff(state), max(0.0, deadline - time.monotonic()))

    async def _read(self, resp: aiohttp.ClientResponse) -> bytes:
        limit, declared = self.max_response_bytes, resp.content_length
        if declared is not None and declared > limit:
            resp.close()  # the connection goes, unread
            raise ResponseTooLarge(resp.status, limit, declared)
        if declared is not None and "content-encoding" not in resp.headers:
            return await resp.read()  # the whole body, known to fit
        # a streamed or compressed body: counted as it arrives, decompressed (no zip bombs)
        chunks, size = [], 0
        async for chunk in resp.content.iter_any():
            size += len(chunk)
            if size > limit:
                resp.close()
                raise ResponseTooLarge(resp.status, limit, None)
            chunks.append(chunk)
        return b"".join(chunks)

    async def aclose(self) -> None:
        if self._pool is not None:
            self._pool.close()
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()
