"""One rollout's session with a NeMo Gym resources server.

A Gym server keeps per-rollout state under a signed session cookie (Starlette's
``SessionMiddleware``), so ``/seed_session``, every tool call and ``/verify``
of one rollout must carry the same cookie, and concurrent rollouts must never
share one. :class:`GymSession` therefore owns one ``httpx.AsyncClient`` with its
own cookie jar per rollout.

Cookie handling: the standard library's cookie rules (which httpx uses) treat
local hosts specially. For a host without a dot such as ``localhost`` the jar
files cookies under ``localhost.local``; a cookie whose ``Domain`` is
``localhost`` is stored but never sent back, one with ``Domain=127.0.0.1`` is
refused when the server is addressed as ``localhost``, and a ``Secure``
cookie is never sent over plain HTTP. A plain jar then silently drops the
session and every tool call lands in a fresh, empty one. Because a session's
client only ever talks to its one server, :class:`SessionCookiePolicy` accepts
and returns every cookie that server sets, whatever its ``Domain`` and
``Secure`` attributes say (expiry and path still apply), and only for that
host. httpx applies a jar's policy when it stores cookies but sends from a
default-policy copy of the jar, so the session computes the ``Cookie`` header
from its own jar for every request.

Failures map onto the failure taxonomy:

* connection refused/unreachable (after ``connect_attempts`` tries) or a
  connection lost mid-request -> :class:`~react_eval.types.ToolInfraError`;
* a tool's 4xx/5xx -> an error observation with the server's body
  (``http_4xx``/``http_5xx``); a slow tool -> a ``timeout`` observation;
* ``/verify`` failing in any way (422, 5xx, unreachable, slow, not JSON) ->
  :class:`~react_eval.types.VerifyError` carrying the server's message.
"""

from __future__ import annotations

import http.cookiejar
import time
import urllib.request
from dataclasses import dataclass
from typing import Any, Awaitable, Callable
from urllib.parse import urlsplit

import anyio
import httpx
import orjson

from react_eval.gym.openapi import OpenAPIError, ToolCatalog, discover_tools
from react_eval.types import RolloutError, ToolInfraError, ToolResult, ToolSpec, VerifyError

#: characters of a server's error body quoted in error messages
MAX_ERROR_BODY = 4000


@dataclass(frozen=True)
class GymEndpoint:
    """Where a resources server is and how patiently to talk to it (the same
    fields as the engine's ``type: gym`` service, which may be used instead)."""

    url: str
    request_timeout: float = 300.0
    connect_attempts: int = 3


class SessionCookiePolicy(http.cookiejar.DefaultCookiePolicy):
    """Cookie rules for a jar that talks to exactly one server (see the module doc)."""

    def __init__(self, host: str):
        super().__init__()
        self.host = host.lower()

    def _ours(self, request: Any) -> bool:
        return (urlsplit(request.get_full_url()).hostname or "").lower() == self.host

    def set_ok_domain(self, cookie: http.cookiejar.Cookie, request: Any) -> bool:
        return True if self._ours(request) else super().set_ok_domain(cookie, request)

    def return_ok_domain(self, cookie: http.cookiejar.Cookie, request: Any) -> bool:
        return True if self._ours(request) else super().return_ok_domain(cookie, request)

    def return_ok_secure(self, cookie: http.cookiejar.Cookie, request: Any) -> bool:
        return True if self._ours(request) else super().return_ok_secure(cookie, request)

    def domain_return_ok(self, domain: str, request: Any) -> bool:
        return True if self._ours(request) else super().domain_return_ok(domain, request)


def session_client(endpoint: GymEndpoint) -> httpx.AsyncClient:
    """A fresh client with an empty cookie jar bound to ``endpoint``'s host."""
    url = endpoint.url.rstrip("/")
    host = urlsplit(url).hostname or ""
    jar = http.cookiejar.CookieJar(policy=SessionCookiePolicy(host))
    return httpx.AsyncClient(
        base_url=url,
        cookies=jar,
        timeout=httpx.Timeout(endpoint.request_timeout, connect=min(endpoint.request_timeout, 10.0)),
        follow_redirects=False,
        trust_env=False,  # a proxy from the environment must not sit between us and a local server
    )


class CatalogCache:
    """The discovered tools of one server, fetched once and shared by its sessions."""

    def __init__(self) -> None:
        self._catalog: ToolCatalog | None = None
        self._lock = anyio.Lock()
        self.fetches = 0

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_lock": None}  # anyio locks do not pickle

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, _lock=anyio.Lock())

    async def get(self, fetch: Callable[[], Awaitable[dict[str, Any]]]) -> ToolCatalog:
        if self._catalog is not None:
            return self._catalog
        async with self._lock:
            if self._catalog is None:
                document = await fetch()
                self.fetches += 1
                try:
                    self._catalog = discover_tools(document)
                except OpenAPIError as exc:
                    raise ToolInfraError(f"cannot read the server's /openapi.json: {exc}") from exc
            return self._catalog


class _Unreachable(Exception):
    """Every connection attempt failed (the request never reached the server)."""


def server_message(response: httpx.Response) -> str:
    """The server's explanation of an error response, readable and bounded.

    FastAPI's 422 body (``{"detail": [{"loc": [...], "msg": ...}]}``) is
    summarised as ``loc: msg`` lines, followed by the raw body.
    """
    raw = response.text
    summary = ""
    try:
        data = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("detail"), list):
        lines = []
        for err in data["detail"][:20]:
            if isinstance(err, dict):
                loc = ".".join(str(p) for p in err.get("loc") or ())
                lines.append(f"{loc}: {err.get('msg', '')}" if loc else str(err.get("msg", "")))
        summary = "; ".join(lines)
    elif isinstance(data, dict) and isinstance(data.get("detail"), str):
        summary = data["detail"]
    body = raw if len(raw) <= MAX_ERROR_BODY else raw[:MAX_ERROR_BODY] + f"... ({len(raw) - MAX_ERROR_BODY} more chars)"
    return f"{summary} | body: {body}" if summary else body


class GymSession:
    """A :class:`~react_eval.tools.base.ToolBackend` bound to one rollout's Gym session."""

    def __init__(self, endpoint: GymEndpoint | Any, catalog: CatalogCache | None = None,
                 client: httpx.AsyncClient | None = None):
        self.endpoint = GymEndpoint(
            url=str(endpoint.url), request_timeout=float(endpoint.request_timeout),
            connect_attempts=int(endpoint.connect_attempts),
        )
        self._catalogs = catalog or CatalogCache()
        self.client = client or session_client(self.endpoint)
        self.jar: http.cookiejar.CookieJar = self.client.cookies.jar
        self.seed_response: dict[str, Any] | None = None
        self._closed = False

    @property
    def url(self) -> str:
        return self.endpoint.url.rstrip("/")

    def cookies(self) -> dict[str, str]:
        """The session's cookies as the jar holds them (name -> value)."""
        return {c.name: c.value or "" for c in self.jar}

    def _cookie_header(self, path: str) -> str | None:
        """The Cookie header for ``path``, by this jar's own policy."""
        probe = urllib.request.Request(self.url + path)
        self.jar.add_cookie_header(probe)
        return probe.get_header("Cookie")

    # ---------------------------------------------------------------- transport

    async def _send(self, method: str, path: str, *, body: Any = None, has_body: bool = False,
                    params: dict[str, Any] | None = None, timeout: float) -> httpx.Response:
        """One request, retried only while the connection cannot be made."""
        content = orjson.dumps(body) if has_body else None
        headers = {"content-type": "application/json"} if has_body else {}
        cookie = self._cookie_header(path)
        if cookie:
            headers["cookie"] = cookie  # httpx then adds no Cookie header of its own
        httpx_timeout = httpx.Timeout(timeout, connect=min(timeout, 10.0))
        attempts = self.endpoint.connect_attempts
        last: Exception | None = None
        for attempt in range(1, attempts + 1):
            try:
                return await self.client.request(method, path, content=content, headers=headers,
                                                 params=params or None, timeout=httpx_timeout)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                last = exc
                if attempt < attempts:
                    await anyio.sleep(min(0.2 * 2 ** (attempt - 1), 2.0))
        raise _Unreachable(f"{method} {self.url}{path}: {attempts} connection attempt(s) failed: "
                           f"{type(last).__name__}: {last}")

    def _infra(self, what: str, exc: Exception) -> ToolInfraError:
        return ToolInfraError(f"Gym resources server {self.url}: {what}: {type(exc).__name__}: {exc}")

    # ---------------------------------------------------------------- protocol

    async def _protocol_post(self, path: str, body: dict[str, Any], error: type[RolloutError],
                             during: str) -> httpx.Response:
        """POST a protocol endpoint (seed, verify) within request_timeout; a
        server that cannot be reached or does not answer raises ``error``."""
        t = self.endpoint.request_timeout
        try:
            with anyio.fail_after(t):
                return await self._send("POST", path, body=body, has_body=True, timeout=t)
        except _Unreachable as exc:
            raise error(f"Gym resources server unreachable {during}: {exc}") from exc
        except TimeoutError as exc:
            raise error(f"Gym resources server {self.url}: {path} did not answer within {t:g}s") from exc
        except httpx.TransportError as exc:
            raise error(f"Gym resources server {self.url}: {path} failed: {type(exc).__name__}: {exc}") from exc

    async def seed(self, row: dict[str, Any]) -> dict[str, Any]:
        """``POST /seed_session`` with the whole dataset row (as Gym's own agent does)."""
        resp = await self._protocol_post("/seed_session", row, ToolInfraError, "while seeding the session")
        if resp.status_code >= 300:
            raise ToolInfraError(
                f"Gym resources server {self.url}: POST /seed_session answered HTTP {resp.status_code}: "
                f"{server_message(resp)}"
            )
        try:
            data = orjson.loads(resp.content) if resp.content else {}
        except orjson.JSONDecodeError:
            data = {"raw": resp.text}
        self.seed_response = data if isinstance(data, dict) else {"value": data}
        return self.seed_response

    async def _fetch_openapi(self) -> dict[str, Any]:
        t = self.endpoint.request_timeout
        try:
            with anyio.fail_after(t):
                resp = await self._send("GET", "/openapi.json", timeout=t)
        except _Unreachable as exc:
            raise ToolInfraError(f"Gym resources server unreachable while discovering tools: {exc}") from exc
        except TimeoutError as exc:
            raise ToolInfraError(f"Gym resources server {self.url}: /openapi.json did not answer within {t:g}s") from exc
        except httpx.TransportError as exc:
            raise self._infra("GET /openapi.json failed", exc) from exc
        return self._json_object(resp, "GET /openapi.json", ToolInfraError)

    def _json_object(self, resp: httpx.Response, request: str, error: type[RolloutError]) -> dict[str, Any]:
        """The JSON object a protocol endpoint answered with, or ``error`` saying what came instead."""
        where = f"Gym resources server {self.url}: {request}"
        if resp.status_code != 200:
            raise error(f"{where} answered HTTP {resp.status_code}: {server_message(resp)}")
        try:
            data = orjson.loads(resp.content)
        except orjson.JSONDecodeError as exc:
            raise error(f"{where} answered non-JSON ({exc}): {resp.text[:500]!r}") from exc
        if not isinstance(data, dict):
            raise error(f"{where} answered {type(data).__name__}, not a JSON object")
        return data

    async def catalog(self) -> ToolCatalog:
        return await self._catalogs.get(self._fetch_openapi)

    async def list_tools(self) -> list[ToolSpec]:
        return (await self.catalog()).specs()

    async def call(self, name: str, arguments: dict[str, Any], *, timeout: float) -> ToolResult:
        """``POST /{path}`` of the tool, on this session's cookie."""
        route = (await self.catalog()).route(name)
        if route is None:
            return ToolResult.error(f"Error: the Gym server offers no tool named {name!r}", "unknown_tool")
        path, query, body = route.request(arguments)
        limit = min(timeout, self.endpoint.request_timeout)
        started = time.perf_counter()
        resp: httpx.Response | None = None
        try:
            with anyio.move_on_after(limit):
                resp = await self._send("POST", path, body=body, has_body=route.body != "none",
                                        params=query, timeout=limit)
        except _Unreachable as exc:
            raise ToolInfraError(f"Gym resources server unreachable during tool {name!r}: {exc}") from exc
        except httpx.TimeoutException:
            resp = None
        except httpx.TransportError as exc:
            raise self._infra(f"connection lost during tool {name!r} (POST {path})", exc) from exc
        latency = (time.perf_counter() - started) * 1000
        if resp is None:
            return ToolResult.error(
                f"Error: {name} did not finish within {limit:g}s and was abandoned.", "timeout", latency_ms=latency,
            )
        extra = {"status": resp.status_code, "path": path}
        if 200 <= resp.status_code < 300:
            return ToolResult(content=resp.text, latency_ms=latency, extra=extra)
        message = f"Error: {name} failed: HTTP {resp.status_code} from POST {path}: {server_message(resp)}"
        if resp.status_code >= 500:
            return ToolResult.error(message, "http_5xx", latency_ms=latency, extra=extra)
        if resp.status_code >= 400:
            return ToolResult.error(message, "http_4xx", latency_ms=latency, extra=extra)
        return ToolResult.error(message, "tool_error", latency_ms=latency, extra=extra)

    async def verify(self, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /verify``; the server's JSON answer, or :class:`VerifyError`."""
        resp = await self._protocol_post("/verify", body, VerifyError, "for /verify")
        return self._json_object(resp, "POST /verify", VerifyError)

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            await self.client.aclose()
