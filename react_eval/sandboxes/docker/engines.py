"""The Docker engines a provider places sandboxes on, and the choice among them.

Each :class:`Engine` is one daemon with its own way in (its unix socket, or an
SDK client for tcp:// and ssh://), caches and count of this run's live containers. :class:`Placement` puts each new sandbox on the
least-loaded engine that is up and under its ``max_containers`` (waiting for
room when all are full). An engine that stops answering is marked down on the
first failed call: the rollouts on it end as ``sandbox_error`` (an
infrastructure error, re-run by ``--retry-errors``), new sandboxes go to the
others, and it is tried again every :data:`PROBE_SECONDS` (at once when no
engine is up), so an engine that comes back takes work again.
"""

from __future__ import annotations

import sys
import time
from typing import IO, Any, Callable
from urllib.parse import quote, urlencode

import anyio
import anyio.to_thread
import orjson

from react_eval.sandboxes.docker.client import (EngineError, NotFound, api_client, default_host, from_sdk, reaching,
                                                unreachable_error)
from react_eval.sandboxes.docker.config import DockerHost
from react_eval.sandboxes.docker.local_api import BodyTooLarge, Reply, api_error, request, unix_socket_path
from react_eval.sandboxes.docker.prune import RUN_LABEL
from react_eval.types import SandboxError

#: seconds between attempts to reach an engine that went away
PROBE_SECONDS = 5.0
#: how long such an attempt may take
PROBE_TIMEOUT = 5
#: seconds an engine call may take for each step (connecting, sending, the answer), as the
#: SDK's timeout on the other path
CALL_TIMEOUT = 120.0
#: the engine API version used when a local engine does not say its own
_FALLBACK_API = "1.41"


class Engine:
    """One Docker daemon as the provider uses it.

    Every engine API call goes through :meth:`send`: on a local engine
    (``socket_path`` set) over the unix socket on the event loop, without the
    SDK (which is then never imported); on tcp:// and ssh:// engines through the
    SDK's HTTP session in a worker thread (TLS, proxies and ssh are its job)."""

    def __init__(self, host: DockerHost, *, limiter: anyio.CapacityLimiter, pool: int):
        self.host = host
        #: the address, as messages and ``SandboxInfo.extra["docker_host"]`` show it
        self.url = host.url or default_host()
        self.limit = host.max_containers
        #: the engine's unix socket, where execs are attached without the SDK (None: tcp, ssh)
        self.socket_path = unix_socket_path(host.url)
        self.limiter = limiter
        self._pool = pool
        self._api: Any = None
        #: the engine API version requests use (set by connect)
        self.api_version: str | None = None
        #: this provider's containers on the engine, counted from placement to removal
        self.live = 0
        #: why the engine is not used now (None: it is up)
        self.down: str | None = None
        self._probe_at = 0.0
        self._lock = anyio.Lock()
        #: image -> the user its containers run as (None = the image's own: root)
        self.users: dict[str, str | None] = {}

    @property
    def api(self) -> Any:
        """The engine's SDK client (made on first use on a local engine: image
        builds and tests use it; sandboxes there do not)."""
        assert self.api_version is not None, "connect() first"
        if self._api is None:
            self._api = api_client(self.host, timeout=int(CALL_TIMEOUT), pool=self._pool)
        return self._api

    @property
    def up(self) -> bool:
        return self.api_version is not None and self.down is None

    def has_room(self) -> bool:
        return self.limit is None or self.live < self.limit

    def load(self) -> float:
        return self.live / self.limit if self.limit else float(self.live)

    def mark_down(self, why: SandboxError) -> None:
        if self.down is None:
            self.down = str(why)
        self._probe_at = time.monotonic() + PROBE_SECONDS

    def unreachable(self, exc: BaseException) -> SandboxError:
        """The error of a call that could not reach the engine (which is marked down)."""
        error = unreachable_error(self.url, exc)
        self.mark_down(error)
        return error

    async def send(self, method: str, path: str, *, params: dict[str, str] | None = None,
                   body: bytes | IO[bytes] = b"", content_type: str = "application/json",
                   limit: int | None = None, version: bool = True, timeout: float | None = None) -> Reply:
        """One engine API call (``path`` under the API version unless ``version``
        is False), whatever the answer's status; an unreachable engine is a
        SandboxError (and the engine is marked down), and so is one that takes
        longer than ``timeout`` (default :data:`CALL_TIMEOUT`) for a step; a body
        past ``limit`` raises :class:`~.local_api.BodyTooLarge`."""
        target = (f"/v{self.api_version}" if version else "") + path + (f"?{urlencode(params)}" if params else "")
        if self.socket_path is not None:
            try:
                return await request(self.socket_path, method, target, body, content_type, limit=limit,
                                     timeout=timeout or CALL_TIMEOUT)
            except TimeoutError:
                raise SandboxError(f"the Docker daemon at {self.url} did not answer {method} {path} "
                                   f"within {timeout or CALL_TIMEOUT:g}s") from None
            except (OSError, anyio.EndOfStream, anyio.BrokenResourceError) as exc:
                raise self.unreachable(exc) from exc
        api = self._api

        def call() -> Reply:
            res = api.request(method, api.base_url + target, data=body, headers={"Content-Type": content_type},
                              timeout=api.timeout, stream=limit is not None)
            if limit is None:
                return Reply(res.status_code, {k.lower(): v for k, v in res.headers.items()}, res.content)
            data = bytearray()
            try:
                for chunk in res.iter_content(1 << 16):
                    data += chunk
                    if len(data) > limit:
                        raise BodyTooLarge(len(data))
            finally:
                res.close()
            return Reply(res.status_code, {k.lower(): v for k, v in res.headers.items()}, bytes(data))

        return await self.call(call)

    async def http(self, method: str, path: str, *, params: dict[str, str] | None = None,
                   body: bytes | IO[bytes] = b"", content_type: str = "application/json",
                   limit: int | None = None) -> bytes:
        """:meth:`send`, the body of a successful answer; an error answer raises
        :class:`~.client.EngineError` (NotFound, ImageNotFound)."""
        reply = await self.send(method, path, params=params, body=body, content_type=content_type, limit=limit)
        if reply.status >= 400:
            raise api_error(reply.status, reply.body)
        return reply.body

    async def inspect(self, kind: str, name: str) -> dict[str, Any]:
        """``GET /{kind}/{name}/json`` (containers, images, exec), parsed."""
        return orjson.loads(await self.http("GET", f"/{kind}/{quote(name, safe='')}/json"))

    async def remove(self, container_id: str) -> None:
        """Force-remove a container with its anonymous volumes (gone already: fine)."""
        try:
            await self.http("DELETE", f"/containers/{quote(container_id, safe='')}", params={"force": "1", "v": "1"})
        except NotFound:
            pass

    def _reaching(self) -> Any:
        return reaching(self.url, on_unreachable=self.mark_down)

    async def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """A blocking SDK call in a worker thread; an unreachable engine is a
        SandboxError (and the engine is marked down), an error answer an
        :class:`~.client.EngineError`."""
        with self._reaching():
            try:
                return await anyio.to_thread.run_sync(lambda: fn(*args, **kwargs), limiter=self.limiter)
            except Exception as exc:
                errors = sys.modules.get("docker.errors")  # (imported: the SDK made the call)
                if errors is not None and isinstance(exc, errors.APIError):
                    raise from_sdk(exc) from exc  # the engine answered
                raise

    async def _version(self, timeout: float) -> str:
        """The API version a local engine speaks (``GET /version``)."""
        reply = await self.send("GET", "/version", version=False, timeout=timeout)
        if reply.status >= 400:
            raise api_error(reply.status, reply.body)
        return str(orjson.loads(reply.body).get("ApiVersion") or _FALLBACK_API)

    async def connect(self, run_id: str) -> None:
        """Reach the engine (raises SandboxError if it does not answer), then remove
        stopped containers of ``run_id`` that an earlier attempt left on it."""
        async with self._lock:
            if self.api_version is not None:
                return
            try:
                if self.socket_path is not None:
                    version = await self._version(CALL_TIMEOUT)
                else:
                    with self._reaching():
                        self._api = await anyio.to_thread.run_sync(
                            lambda: api_client(self.host, timeout=int(CALL_TIMEOUT), pool=self._pool),
                            limiter=self.limiter)
                    version = self._api.api_version
            except SandboxError:
                raise
            except Exception as exc:
                error = SandboxError(f"cannot talk to the Docker daemon at {self.url}: {exc}")
                self.mark_down(error)
                raise error from exc
            self.api_version = version
            self.down = None
            await self._remove_stopped(run_id)

    async def _remove_stopped(self, run_id: str) -> None:
        """Remove stopped containers of this run id left by an earlier attempt
        (a daemon restart stops every container, and they cannot be removed
        while it is down; ``--resume``/``--retry-errors`` reuse the run id).
        Running ones may belong to a live process and are left alone."""
        filters = orjson.dumps({"label": [f"{RUN_LABEL}={run_id}"], "status": ["exited", "dead"]}).decode()
        try:
            stale = orjson.loads(await self.http("GET", "/containers/json", params={"all": "1", "filters": filters}))
            for c in stale:
                await self.remove(c["Id"])
        except (SandboxError, EngineError, orjson.JSONDecodeError):  # best effort: `react-eval sandbox prune` too
            return

    async def probe(self, run_id: str, *, now: bool = False) -> None:
        """Try a down engine again (when its probe time has come, or ``now``)."""
        if self.up or (not now and time.monotonic() < self._probe_at):
            return
        async with self._lock:
            if self.up or (not now and time.monotonic() < self._probe_at):
                return
            try:
                if self.socket_path is not None:
                    await self._version(PROBE_TIMEOUT)
                else:
                    with self._reaching():
                        await anyio.to_thread.run_sync(
                            lambda: api_client(self.host, timeout=PROBE_TIMEOUT).close(), limiter=self.limiter)
            except Exception as exc:  # noqa: BLE001 - still down
                self.mark_down(exc if isinstance(exc, SandboxError) else SandboxError(str(exc)))
                return
        if self.api_version is None:
            await self.connect(run_id)
        else:
            self.down = None

    def close(self) -> None:
        api, self._api = self._api, None
        self.api_version = None
        if api is not None:
            api.close()


class Placement:
    """Chooses the engine of each new sandbox (see the module doc)."""

    def __init__(self, engines: list[Engine], run_id: str):
        self.engines = engines
        self.run_id = run_id
        self._freed: anyio.Event | None = None

    async def connect(self) -> None:
        """Reach every engine; raises SandboxError only when none answers."""
        errors: list[SandboxError] = []

        async def one(engine: Engine) -> None:
            try:
                await engine.connect(self.run_id)
            except SandboxError as exc:
                errors.append(exc)

        async with anyio.create_task_group() as tg:
            for engine in self.engines:
                tg.start_soon(one, engine)
        if not any(e.up for e in self.engines):
            raise self._none_up(errors)

    def _none_up(self, errors: list[SandboxError] | None = None) -> SandboxError:
        if len(self.engines) == 1:
            return (errors or [SandboxError(self.engines[0].down or "the Docker engine is down")])[0]
        why = "; ".join(f"{e.url}: {e.down}" for e in self.engines)
        return SandboxError(f"none of the {len(self.engines)} Docker engines answers ({why})")

    async def acquire(self) -> Engine:
        """An engine with room for one more container, counted as taken."""
        while True:
            for engine in self.engines:
                await engine.probe(self.run_id)
            up = [e for e in self.engines if e.up]
            if not up:
                for engine in self.engines:
                    await engine.probe(self.run_id, now=True)
                up = [e for e in self.engines if e.up]
                if not up:
                    raise self._none_up()
            free = [e for e in up if e.has_room()]
            if free:
                engine = min(free, key=lambda e: (e.load(), self.engines.index(e)))
                engine.live += 1
                return engine
            if self._freed is None:
                self._freed = anyio.Event()
            with anyio.move_on_after(PROBE_SECONDS):  # a down engine may come back meanwhile
                await self._freed.wait()

    def release(self, engine: Engine) -> None:
        engine.live -= 1
        freed, self._freed = self._freed, None
        if freed is not None:
            freed.set()
