"""The Docker sandbox provider: one container per rollout, on one engine or
spread over several (see :mod:`.engines`), with the configured limits and the
hardened defaults."""

from __future__ import annotations

import contextlib
import logging
import posixpath
import re
import secrets
from typing import Any

import anyio
import orjson

from react_eval.sandboxes.base import SandboxLimits
from react_eval.sandboxes.docker.client import EngineError, ImageNotFound, NotFound, image_error
from react_eval.sandboxes.docker.config import AGENT_USER_LABEL, DEFAULT_CAPS, DockerSandboxConfig, byte_count
from react_eval.sandboxes.docker.engines import Engine, Placement
from react_eval.sandboxes.docker.files import is_root
from react_eval.sandboxes.docker.prune import ROLLOUT_LABEL, RUN_LABEL
from react_eval.sandboxes.docker.reaper import REAPER
from react_eval.sandboxes.docker.sandbox import DockerSandbox
from react_eval.sandboxes.lifecycle import closed_on_failure, prepare
from react_eval.types import SandboxError, SandboxSpec

#: PID 1 of every container (see the package doc); "$0" names it in `ps`
_IDLE = 'trap "" TERM INT HUP QUIT USR1 USR2 PIPE; while :; do sleep 2147483647 & wait; done'
_NAME_RE = re.compile(r"[^a-zA-Z0-9_.-]+")
_log = logging.getLogger(__name__)


class DockerSandboxProvider:
    """Creates one :class:`DockerSandbox` per rollout (at most ``concurrency`` live,
    and at most each engine's ``max_containers`` on it)."""

    name = "docker"

    def __init__(
        self,
        config: DockerSandboxConfig | None = None,
        *,
        run_id: str,
        limits: SandboxLimits | None = None,
        setup_timeout: float = 900.0,
        bridge_sockets: bool = False,
    ):
        self.config = config or DockerSandboxConfig()
        self.run_id = run_id
        self.limits = limits or SandboxLimits()
        self.setup_timeout = setup_timeout
        #: pump exec sockets through threads even when they could be used directly
        self.bridge_sockets = bridge_sockets
        threads = min(64, 2 * self.config.concurrency + 4)
        self.limiter = anyio.CapacityLimiter(threads)
        self._slots = anyio.Semaphore(self.config.concurrency)
        self.engines = [Engine(h, limiter=self.limiter, pool=threads) for h in self.config.engines()]
        self.placement = Placement(self.engines, run_id)
        self._connected = False
        self._connect_lock = anyio.Lock()
        self._open: set[DockerSandbox] = set()

    @property
    def api(self) -> Any:
        """The SDK client of the first engine (single-engine use; made on first use)."""
        return self.engines[0].api

    async def connect(self) -> None:
        """Reach the engines (once); raises SandboxError if none answers."""
        async with self._connect_lock:
            if not self._connected:
                await self.placement.connect()
                self._connected = True

    async def _agent_user(self, engine: Engine, image: str) -> str | None:
        """The configured user, else the image's ``react-eval.agent-user`` label
        (when the image sets no USER of its own), else the image's own user."""
        if self.config.user:
            return self.config.user
        if image not in engine.users:
            try:
                conf = (await engine.inspect("images", image)).get("Config") or {}
            except NotFound as exc:
                raise image_error(image, exc) from exc
            own = conf.get("User") or None
            label = (conf.get("Labels") or {}).get(AGENT_USER_LABEL)  # "" = root, on purpose
            engine.users[image] = own or label or None
            if own is None and label is None:
                _log.warning("docker image %s names no unprivileged user (label %s): the agent runs as "
                             "root in it; set the sandbox option `user` to choose one", image, AGENT_USER_LABEL)
        return engine.users[image]

    def _container_config(self, image: str, labels: dict[str, str], spec: SandboxSpec | None = None,
                          user: str | None = None) -> dict[str, Any]:
        """The body of ``POST /containers/create`` (the engine API's own field names)."""
        cfg = self.config
        spec = spec or SandboxSpec()
        env = {"TERM": "dumb", "PAGER": "cat", "GIT_PAGER": "cat", **cfg.env, **spec.env}
        workdir = posixpath.normpath(spec.workdir or cfg.workdir)
        cpus = spec.cpus or cfg.cpus  # a task's own settings win over the run's
        memory = f"{spec.memory_mb}m" if spec.memory_mb else cfg.memory
        # hardened by default: no capability beyond what a root shell needs (none for
        # another user), no setuid escalation, a CPU cap, no host mount of any kind
        caps = cfg.cap_add if cfg.cap_add is not None else (list(DEFAULT_CAPS) if is_root(user) else [])
        host: dict[str, Any] = {
            "NetworkMode": cfg.network,
            "CapDrop": ["ALL"],
            "SecurityOpt": ["no-new-privileges:true"],
        }
        if memory:
            host["Memory"] = byte_count(memory)
        if cpus:
            host["NanoCpus"] = int(cpus * 1e9)
        if cfg.pids_limit:
            host["PidsLimit"] = cfg.pids_limit
        if caps:
            host["CapAdd"] = list(caps)
        config: dict[str, Any] = {
            "Image": image,
            "Entrypoint": ["bash", "-c", _IDLE],  # replaces any entrypoint of the image
            "Cmd": ["react-eval-idle"],
            "Hostname": "sandbox",
            "WorkingDir": workdir,
            "Env": [f"{k}={v}" for k, v in env.items()],
            "Labels": labels,
            "AttachStdin": False, "AttachStdout": False, "AttachStderr": False,
            "Tty": False, "OpenStdin": False, "StdinOnce": False, "NetworkDisabled": False,
            "HostConfig": host,
        }
        if user:
            config["User"] = user
        if cfg.read_only:
            host["ReadonlyRootfs"] = True
            host["Tmpfs"] = {"/tmp": f"rw,nosuid,nodev,size={cfg.tmp_size},mode=1777"}
            config["Volumes"] = {workdir: {}}  # anonymous, removed with the container (v=1)
        return config

    async def create(self, spec: SandboxSpec | None, *, labels: dict[str, str]) -> DockerSandbox:
        """Start a container, place the task's repo and files, start the shell, run setup."""
        spec = spec or SandboxSpec()
        await self.connect()
        image = spec.image or self.config.image
        rollout = labels.get(ROLLOUT_LABEL) or secrets.token_hex(8)
        all_labels = {str(k): str(v) for k, v in labels.items()}
        all_labels.update({RUN_LABEL: self.run_id, ROLLOUT_LABEL: rollout})
        name = _NAME_RE.sub("_", f"react-eval-{rollout}")[:48] + "-" + secrets.token_hex(3)
        await self._slots.acquire()
        try:
            engine = await self.placement.acquire()
        except BaseException:
            self._slots.release()
            raise
        created: list[str] = []
        try:
            user = await self._agent_user(engine, image)
            config = self._container_config(image, all_labels, spec, user)
            try:
                await self._start(engine, name, config, created)
            except ImageNotFound as exc:
                raise image_error(image, exc) from exc
            except EngineError as exc:
                raise SandboxError(f"cannot start a container from {image!r}: {exc.explanation}") from exc
            sandbox = DockerSandbox(self, engine, created[0], name, image=image, workdir=spec.workdir)
            self._open.add(sandbox)
        except BaseException as exc:  # the container never became a sandbox: undo by hand
            with anyio.CancelScope(shield=True):
                if created:
                    with contextlib.suppress(Exception):
                        await engine.remove(created[0])
                    REAPER.discard(created[0])
                self.placement.release(engine)
                self._slots.release()
            if isinstance(exc, OSError):
                raise SandboxError(f"cannot prepare the sandbox container: {exc}") from exc
            raise
        # from here on, closing the sandbox releases the slot, the engine and the container
        async with closed_on_failure(sandbox, "the sandbox container"):
            await sandbox._control.start()
            await sandbox._take_ownership(user)
            sandbox.info.extra["user"] = user or "root"
        await prepare(sandbox, spec, setup_timeout=self.setup_timeout, what="the sandbox container")
        return sandbox

    @staticmethod
    async def _start(engine: Engine, name: str, config: dict[str, Any], created: list[str]) -> None:
        """Create and start the container (remembered by the reaper from the moment it exists)."""
        reply = await engine.http("POST", "/containers/create", params={"name": name}, body=orjson.dumps(config))
        created.append(orjson.loads(reply)["Id"])
        REAPER.add(created[0], engine.host)
        await engine.http("POST", f"/containers/{created[0]}/start")

    async def _remove(self, sandbox: DockerSandbox) -> None:
        try:
            await sandbox.engine.remove(sandbox.container_id)
        except EngineError as exc:
            if "already in progress" not in str(exc):
                raise SandboxError(f"could not remove container {sandbox.name}: {exc.explanation}") from exc
        REAPER.discard(sandbox.container_id)

    def _forget(self, sandbox: DockerSandbox) -> None:
        if sandbox in self._open:
            self._open.discard(sandbox)
            self.placement.release(sandbox.engine)
            self._slots.release()

    async def aclose(self) -> None:
        """Remove every container this provider created that is still open."""
        errors = []
        for sandbox in list(self._open):
            try:
                await sandbox.close()
            except Exception as exc:
                errors.append(exc)
        for engine in self.engines:
            engine.close()
        self._connected = False
        if errors:
            raise errors[0]
