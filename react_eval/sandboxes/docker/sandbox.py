"""One rollout's container: the persistent shell, fresh ``run()`` commands, the
container's liveness, and its removal. Files are in :mod:`.files`."""

from __future__ import annotations

import posixpath
import secrets
import time
from typing import IO, TYPE_CHECKING, Any, Callable, Protocol

import anyio
from tenacity import AsyncRetrying, retry_if_result, stop_after_attempt, stop_after_delay, wait_fixed

from react_eval.sandboxes.base import ExecResult, SandboxInfo, SandboxLimits
from react_eval.sandboxes.docker.client import EngineError, NotFound
from react_eval.sandboxes.docker.config import DockerSandboxConfig
from react_eval.sandboxes.docker.control import RUN_BOOT, RUN_DRIVER, TAG_VAR, ControlShell
from react_eval.sandboxes.docker.files import ArchiveFiles
from react_eval.sandboxes.docker.local_api import attach_exec
from react_eval.sandboxes.docker.stream import ExecStream, stream_from_docker_socket
from react_eval.sandboxes.docker.transport import DockerShellTransport
from react_eval.sandboxes.shell import CappedBuffer, ShellSession
from react_eval.types import ErrorKind, RolloutError, SandboxError

if TYPE_CHECKING:
    from react_eval.sandboxes.docker.engines import Engine


class SandboxOwner(Protocol):
    """What a sandbox needs of its provider (:class:`~react_eval.sandboxes.docker.provider.DockerSandboxProvider`)."""

    config: DockerSandboxConfig
    limits: SandboxLimits
    bridge_sockets: bool

    async def _remove(self, sandbox: "DockerSandbox") -> None: ...

    def _forget(self, sandbox: "DockerSandbox") -> None: ...


def _running(state: dict[str, Any] | None) -> bool:
    return bool(state and state.get("Running"))


class DockerSandbox(ArchiveFiles):
    """One rollout's container: a persistent shell, archive file transfer."""

    def __init__(self, provider: SandboxOwner, engine: Engine, container_id: str, name: str, *,
                 image: str, workdir: str | None = None):
        self.provider = provider
        self.engine = engine
        self.config = provider.config
        self.limits = provider.limits
        self.container_id = container_id
        self.name = name
        self.workdir = posixpath.normpath(workdir or self.config.workdir)
        self.token = secrets.token_hex(8)
        self.info = SandboxInfo(
            provider="docker",
            ident=name,
            extra={"container_id": container_id, "image": image, "network": self.config.network,
                   "docker_host": engine.url},
        )
        self._closed = False
        self._removing = False
        self._dead: str | None = None
        self._runs = 0
        self._deadline = time.monotonic() + self.config.timeout if self.config.timeout else None
        self.owner = (0, 0)
        self._control = ControlShell(self)
        transport = DockerShellTransport(self, f"{self.token}.shell")
        self.shell = ShellSession(transport, cwd=self.workdir, max_output_bytes=self.limits.max_output_bytes)
        transport.pid_source = lambda: self.shell.shell_pid

    # ---- docker plumbing ----

    async def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run a blocking SDK call in a worker thread; an unreachable engine is a SandboxError."""
        return await self.engine.call(fn, *args, **kwargs)

    async def _attach(self, cmd: list[str], *, env: dict[str, str], workdir: str) -> ExecStream:
        engine = self.engine
        if engine.socket_path is not None and not self.provider.bridge_sockets:
            assert engine.api_version is not None
            try:
                exec_id, stream, received = await attach_exec(engine.socket_path, engine.api_version,
                                                              self.container_id, cmd, env=env, workdir=workdir)
            except EngineError as exc:
                raise SandboxError(await self._gone_message(f"docker exec failed: {exc.explanation}")) from exc
            except (OSError, anyio.EndOfStream, anyio.BrokenResourceError) as exc:
                raise self.engine.unreachable(exc) from exc
            return ExecStream(stream, exec_id, received)
        api = engine.api

        def start() -> tuple[str, Any]:
            ex = api.exec_create(self.container_id, cmd, stdin=True, stdout=True, stderr=True,
                                 tty=False, environment=env, workdir=workdir)
            return ex["Id"], api.exec_start(ex["Id"], socket=True)

        try:
            exec_id, raw = await self._call(start)
        except EngineError as exc:
            raise SandboxError(await self._gone_message(f"docker exec failed: {exc.explanation}")) from exc
        return ExecStream(await stream_from_docker_socket(raw, bridge=self.provider.bridge_sockets), exec_id)

    async def _exit_code(self, exec_id: str) -> int | None:
        """The exec's exit code; None if it still runs after 2 s (its stream ended,
        so the engine is only a moment from recording the exit)."""
        try:
            info = await AsyncRetrying(retry=retry_if_result(_running), wait=wait_fixed(0.01), stop=stop_after_delay(2),
                                       retry_error_callback=lambda state: state.outcome.result())(
                self.engine.inspect, "exec", exec_id)
        except EngineError:
            return None
        return None if _running(info) else info.get("ExitCode")

    async def _put_archive(self, where: str, data: bytes | IO[bytes]) -> None:
        """Extract the tar ``data`` at ``where`` in the container."""
        await self.engine.http("PUT", f"/containers/{self.container_id}/archive", params={"path": where},
                               body=data, content_type="application/x-tar")

    async def _state(self) -> dict[str, Any] | None:
        """The container's State, or None if it no longer exists."""
        try:
            return (await self.engine.inspect("containers", self.container_id)).get("State", {})
        except NotFound:
            return None

    async def _gone_message(self, what: str) -> str:
        """``what``, explained by the container's state when it is not running."""
        if self._dead:
            return self._dead
        try:
            state = await self._state()
        except SandboxError as exc:
            return str(exc)
        except Exception:
            return what
        if state is not None and state.get("Running") and not state.get("Paused"):
            return what
        if state is None:
            why = "no longer exists (removed from outside?)"
        else:
            why = f"is no longer running (status {state.get('Status')}, exit code {state.get('ExitCode')}"
            if state.get("OOMKilled"):
                why += f", killed for exceeding the memory limit {self.config.memory}"
            if state.get("Error"):
                why += f", error: {state['Error']}"
            why += ")"
        self._dead = f"the sandbox container {self.name} {why}"
        return self._dead

    async def _check_alive(self) -> None:
        if self._closed:
            raise SandboxError("the sandbox is closed")
        if self._dead:
            raise SandboxError(self._dead)
        state = await self._state()
        if state is None or not state.get("Running") or state.get("Paused"):
            raise SandboxError(await self._gone_message("the sandbox container is not running"))

    # ---- commands ----

    async def start(self) -> None:
        await self.shell.start()

    def _time_left(self) -> float | None:
        return None if self._deadline is None else self._deadline - time.monotonic()

    def _out_of_time(self) -> RolloutError:
        return RolloutError(
            f"the sandbox's wall-clock limit of {self.config.timeout:g}s is used up", kind=ErrorKind.timeout
        )

    async def exec(self, command: str, timeout: float) -> ExecResult:
        if self._closed:
            raise SandboxError("the sandbox is closed")
        if self._dead:
            raise SandboxError(self._dead)
        left = self._time_left()
        if left is not None and left <= 0:
            raise self._out_of_time()
        cut = left is not None and left < timeout
        result = await self.shell.exec(command, min(timeout, left) if cut and left is not None else timeout)
        if cut and result.timed_out:
            raise self._out_of_time()
        return result

    async def run(self, command: str, timeout: float, cwd: str | None = None) -> ExecResult:
        """Run ``command`` in a fresh bash (not the persistent shell); whatever
        it leaves running is killed when it exits, everything it started on a timeout."""
        if self._closed:
            raise SandboxError("the sandbox is closed")
        started = time.perf_counter()
        self._runs += 1
        tag = f"{self.token}.run.{self._runs}"
        workdir = self.resolve(cwd) if cwd else self.workdir
        stream = await self._attach(
            ["bash", "--noprofile", "--norc", "-c", RUN_BOOT, "react-eval-run", command, workdir, tag],
            env={TAG_VAR: tag},
            workdir="/",
        )
        out = CappedBuffer(self.limits.max_output_bytes)
        timed_out = False
        try:
            with anyio.move_on_after(max(timeout, 0.001)) as scope:
                await stream.send(RUN_DRIVER.encode() + b"\0")
                while chunk := await stream.receive():
                    out.add(chunk)
            if scope.cancelled_caught:
                timed_out = True
                with anyio.CancelScope(shield=True):
                    await self._control.kill(tag)
                    with anyio.move_on_after(2):
                        while chunk := await stream.receive():
                            out.add(chunk)
        finally:
            await stream.aclose()
        code = None if timed_out else await self._exit_code(stream.exec_id)
        if not timed_out and (code is None or code >= 128):
            # killed by a signal: by the command's own doing, or because the container died
            # (then graders must see an infrastructure error, not a failing test); the
            # engine records a container's death a moment after its processes die
            state = await AsyncRetrying(retry=retry_if_result(_running), wait=wait_fixed(0.05),
                                        stop=stop_after_attempt(10),
                                        retry_error_callback=lambda s: s.outcome.result())(self._state)
            if not _running(state):
                raise SandboxError(await self._gone_message("the container stopped during a command"))
            if code is None:
                raise SandboxError("a command's exit status could not be read")
        return ExecResult(
            output=out.text(),
            exit_code=code,
            timed_out=timed_out,
            dropped_chars=out.dropped,
            latency_ms=(time.perf_counter() - started) * 1000,
        )

    # ---- lifecycle ----

    async def close(self) -> None:
        """Remove the container (killing everything in it)."""
        if self._closed:
            return
        self._closed = True
        self._removing = True
        with anyio.CancelScope(shield=True):
            try:
                for step in (self.shell.close, self._control.aclose):
                    try:
                        await step()
                    except Exception:
                        pass  # the container goes next, with everything in it
                await self.provider._remove(self)
            finally:
                self.provider._forget(self)

