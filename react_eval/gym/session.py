"""One rollout's session with a NeMo Gym resources server.

A Gym server keeps per-rollout state under a signed session cookie (Starlette's
``SessionMiddleware``), so ``/seed_session``, every tool call and ``/verify``
of one rollout must carry the same cookie, and concurrent rollouts must never
share one. A :class:`GymSession` holds its rollout's cookies
(:class:`~react_eval.gym.transport.RolloutCookies`) and sends its requests on
the run's one connection pool to that server
(:class:`~react_eval.gym.transport.GymTransport`), so a rollout costs no
client, SSL context or connection of its own.

Failures map onto the failure taxonomy:

* connection refused/unreachable (after ``connect_attempts`` tries) or a
  connection lost mid-request -> :class:`~react_eval.types.ToolInfraError`;
* a tool's 4xx/5xx -> an error observation with the server's body
  (``http_4xx``/``http_5xx``); a slow tool -> a ``timeout`` observation; a
  reply over ``max_response_bytes`` -> a ``tool_error`` observation, unread;
* ``/verify`` failing in any way (422, 5xx, unreachable, slow, not JSON, over
  the cap) -> :class:`~react_eval.types.VerifyError` carrying the server's message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Awaitable, Callable

import aiohttp
import anyio
import orjson

from react_eval.gym.openapi import OpenAPIError, ToolCatalog, discover_tools
from react_eval.gym.transport import (DEFAULT_MAX_RESPONSE_BYTES, GymReply, GymTransport, ResponseTooLarge,
                                      RolloutCookies, Unreachable)
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
    #: largest reply body read from the server; a larger one is refused unread
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES

    @classmethod
    def of(cls, service: Any) -> "GymEndpoint":
        """The endpoint of a ``GymEndpoint`` or of anything with the same fields."""
        return cls(url=str(service.url), request_timeout=float(service.request_timeout),
                   connect_attempts=int(service.connect_attempts),
                   max_response_bytes=int(getattr(service, "max_response_bytes", DEFAULT_MAX_RESPONSE_BYTES)))

    def transport(self) -> GymTransport:
        return GymTransport(self.url, connect_attempts=self.connect_attempts,
                            max_response_bytes=self.max_response_bytes)


class CatalogCache:
    """The discovered tools of one server, fetched once and shared by its sessions."""

    def __init__(self) -> None:
        self._catalog: ToolCatalog | None = None
        #: the catalog's tools as specs, made once: every rollout of the run lists the same ones
        self.specs: tuple[ToolSpec, ...] = ()
        self._lock = anyio.Lock()
        self.fetches = 0

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_lock": None}  # anyio locks do not pickle

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, _lock=anyio.Lock())

    @property
    def loaded(self) -> ToolCatalog | None:
        """The catalog once fetched (None before)."""
        return self._catalog

    async def get(self, fetch: Callable[[], Awaitable[dict[str, Any]]]) -> ToolCatalog:
        if self._catalog is not None:
            return self._catalog
        async with self._lock:
            if self._catalog is None:
                document = await fetch()
                self.fetches += 1
                try:
                    catalog = discover_tools(document)
                except OpenAPIError as exc:
                    raise ToolInfraError(f"cannot read the server's /openapi.json: {exc}") from exc
                self.specs = tuple(catalog.specs())
                self._catalog = catalog
            return self._catalog


def server_message(response: GymReply) -> str:
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
    """A :class:`~react_eval.tools.base.ToolBackend` bound to one rollout's Gym session.

    Sessions of one :class:`~react_eval.gym.source.GymToolSource` share its
    transport; a session made on its own owns one and closes it."""

    def __init__(self, endpoint: GymEndpoint | Any, catalog: CatalogCache | None = None,
                 transport: GymTransport | None = None):
        self.endpoint = endpoint if type(endpoint) is GymEndpoint else GymEndpoint.of(endpoint)
        self._catalogs = catalog or CatalogCache()
        self._owns_transport = transport is None
        self.transport = transport or self.endpoint.transport()
        self.jar = RolloutCookies()
        self.seed_response: dict[str, Any] | None = None
        self._closed = False

    @property
    def url(self) -> str:
        return self.endpoint.url.rstrip("/")

    def cookies(self) -> dict[str, str]:
        """The session's cookies as the jar holds them (name -> value)."""
        return self.jar.as_dict()

    async def _send(self, method: str, path: str, *, body: Any = None, has_body: bool = False,
                    params: dict[str, Any] | None = None, timeout: float) -> GymReply:
        return await self.transport.request(method, path, body=orjson.dumps(body) if has_body else None,
                                            cookies=self.jar, timeout=timeout, query=params)

    def _infra(self, what: str, exc: Exception) -> ToolInfraError:
        return ToolInfraError(f"Gym resources server {self.url}: {what}: {type(exc).__name__}: {exc}")

    # ---------------------------------------------------------------- protocol

    async def _protocol(self, method: str, path: str, body: dict[str, Any] | None, error: type[RolloutError],
                        during: str) -> GymReply:
        """A protocol request (seed, discovery, verify) within request_timeout; a
        server that cannot be reached, does not answer or answers too much raises ``error``."""
        t = self.endpoint.request_timeout
        try:
            return await self._send(method, path, body=body, has_body=body is not None, timeout=t)
        except Unreachable as exc:
            raise error(f"Gym resources server unreachable {during}: {exc}") from exc
        except TimeoutError as exc:
            raise error(f"Gym resources server {self.url}: {path} did not answer within {t:g}s") from exc
        except ResponseTooLarge as exc:
            raise error(f"Gym resources server {self.url}: {method} {path} answered too much: {exc}") from exc
        except aiohttp.ClientError as exc:
            raise error(f"Gym resources server {self.url}: {method} {path} failed: {type(exc).__name__}: {exc}") from exc

    async def seed(self, row: dict[str, Any]) -> dict[str, Any]:
        """``POST /seed_session`` with the whole dataset row (as Gym's own agent does)."""
        resp = await self._protocol("POST", "/seed_session", row, ToolInfraError, "while seeding the session")
        if resp.status >= 300:
            raise ToolInfraError(
                f"Gym resources server {self.url}: POST /seed_session answered HTTP {resp.status}: "
                f"{server_message(resp)}"
            )
        try:
            data = orjson.loads(resp.content) if resp.content else {}
        except orjson.JSONDecodeError:
            data = {"raw": resp.text}
        self.seed_response = data if isinstance(data, dict) else {"value": data}
        return self.seed_response

    async def _fetch_openapi(self) -> dict[str, Any]:
        resp = await self._protocol("GET", "/openapi.json", None, ToolInfraError, "while discovering tools")
        return self._json_object(resp, "GET /openapi.json", ToolInfraError)

    def _json_object(self, resp: GymReply, request: str, error: type[RolloutError]) -> dict[str, Any]:
        """The JSON object a protocol endpoint answered with, or ``error`` saying what came instead."""
        where = f"Gym resources server {self.url}: {request}"
        if resp.status != 200:
            raise error(f"{where} answered HTTP {resp.status}: {server_message(resp)}")
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
        await self.catalog()
        return list(self._catalogs.specs)

    async def call(self, name: str, arguments: dict[str, Any], *, timeout: float) -> ToolResult:
        """``POST /{path}`` of the tool, on this session's cookie (latency is measured by
        :func:`react_eval.tools.base.dispatch`, the one place that times tool calls)."""
        route = (self._catalogs.loaded or await self.catalog()).routes.get(name)
        if route is None:
            return ToolResult.error(f"Error: the Gym server offers no tool named {name!r}", "unknown_tool")
        path, query, body = route.request(arguments)
        limit = min(timeout, self.endpoint.request_timeout)
        try:
            resp = await self._send("POST", path, body=body, has_body=route.body != "none",
                                    params=query, timeout=limit)
        except Unreachable as exc:
            raise ToolInfraError(f"Gym resources server unreachable during tool {name!r}: {exc}") from exc
        except TimeoutError:
            return ToolResult.error(f"Error: {name} did not finish within {limit:g}s and was abandoned.", "timeout")
        except ResponseTooLarge as exc:
            return ToolResult.error(f"Error: {name} answered too much and its reply was dropped: {exc}.",
                                    "tool_error", extra={"status": exc.status, "path": path})
        except aiohttp.ClientError as exc:
            raise self._infra(f"connection lost during tool {name!r} (POST {path})", exc) from exc
        extra = {"status": resp.status, "path": path}
        if 200 <= resp.status < 300:
            return ToolResult(content=resp.text, extra=extra)
        message = f"Error: {name} failed: HTTP {resp.status} from POST {path}: {server_message(resp)}"
        if resp.status >= 500:
            return ToolResult.error(message, "http_5xx", extra=extra)
        if resp.status >= 400:
            return ToolResult.error(message, "http_4xx", extra=extra)
        return ToolResult.error(message, "tool_error", extra=extra)

    async def verify(self, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /verify``; the server's JSON answer, or :class:`VerifyError`."""
        resp = await self._protocol("POST", "/verify", body, VerifyError, "for /verify")
        return self._json_object(resp, "POST /verify", VerifyError)

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            if self._owns_transport:
                await self.transport.aclose()
