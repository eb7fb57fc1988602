"""Sandboxes on the host: a private working directory plus a persistent bash.

``isolation="none"`` (the default) is NOT a security boundary: commands run as
the harness' user with its full access to the host's files, network and
processes. Use it only for trusted code (your own tasks and models, or
development). It still confines the *file tools* to the workdir (race-free,
see :mod:`react_eval.sandboxes.safe_fs`) and keeps processes in their own
session so they can be killed.

``isolation="bwrap"`` runs every command under bubblewrap as a jail meant to
hold against a hostile agent even when the harness is root (see
:mod:`react_eval.sandboxes.bwrap`): unprivileged uid in a user namespace, no
capabilities, every namespace unshared (no network), only system directories
visible and read-only, the workdir the only writable host path, a size-capped
``/tmp``.

In both modes, when the harness may create cgroups (root, or a delegated
cgroup v2 subtree), every process of a sandbox runs in its own cgroup capped
at ``pids_limit`` processes and ``memory`` bytes (v1 or v2); at close every
member is killed, and the emptied cgroup (and an empty workdir) serves the
provider's next sandbox (:mod:`react_eval.sandboxes.cgroups`,
:mod:`react_eval.sandboxes.workdirs`); without that permission the caps are
skipped and ``info.extra`` says so.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import shutil
import signal
import stat as stat_mod
import subprocess
import tempfile
import time
from typing import Callable

import anyio

from react_eval.sandboxes.base import ExecResult, FileInfo, FileTooLargeError, SandboxInfo, SandboxLimits
from react_eval.sandboxes.bwrap import SANDBOX_PATH, bwrap_argv
from react_eval.sandboxes.cgroups import CgroupPool, SandboxCgroup, parse_bytes
from react_eval.sandboxes.lifecycle import prepare
from react_eval.sandboxes.local_config import LocalSandboxConfig
from react_eval.sandboxes.local_shell import LocalShellTransport, status_code
from react_eval.sandboxes.procs import TAG_VAR, _boot_ticks, find_processes, kill_processes, sigkill
from react_eval.sandboxes.safe_fs import Beneath
from react_eval.sandboxes.shell import CappedBuffer, ShellSession
from react_eval.sandboxes.workdirs import WorkdirPool
from react_eval.types import SandboxError, SandboxSpec

__all__ = ["TAG_VAR", "LocalSandbox", "LocalSandboxConfig", "LocalSandboxProvider", "find_processes", "kill_processes"]


# ---- the sandbox ---------------------------------------------------------------


class LocalSandbox:
    """One rollout's workdir on the host with a persistent shell.

    Not a security boundary unless ``isolation="bwrap"`` (see the module doc).
    File operations use Python's file APIs on paths confined by ``resolve``.
    ``close`` kills every process in the shell's session or carrying the
    sandbox's tag variable; without bwrap a process that both left the session
    and cleared its environment can outlive the sandbox.
    """

    def __init__(
        self,
        workdir: str,
        *,
        config: LocalSandboxConfig,
        limits: SandboxLimits,
        token: str,
        cgroup: SandboxCgroup | None = None,
        cgroups: CgroupPool | None = None,
        workdirs: WorkdirPool | None = None,
        resolved: bool = False,
    ):
        self.workdir = workdir
        self.config = config
        self.limits = limits
        self.token = token
        self.cgroup = cgroup
        #: the pool ``cgroup`` came from and goes back to at close (else it is removed)
        self.cgroups = cgroups
        #: where an empty workdir goes at close, for the next sandbox (else it is removed)
        self.workdirs = workdirs
        self.info = SandboxInfo(
            provider="local",
            ident=os.path.basename(workdir),
            extra={
                "workdir": workdir,
                "isolation": config.isolation,
                "pids_limit": _cap(config.pids_limit, cgroup, "pids"),
                "memory": _cap(config.memory, cgroup, "memory"),
            },
        )
        #: when the sandbox was made, in /proc's clock: none of its processes is older
        self._born = _boot_ticks()
        #: (``resolved``: the caller made ``workdir`` under a resolved root, so it is real already)
        self._real_workdir = workdir if resolved else os.path.realpath(workdir)
        #: every file operation goes through this descriptor of the workdir
        self._fs = Beneath(self._real_workdir)
        self._closed = False
        #: called once closed (the provider uses it to forget the sandbox)
        self.on_close: Callable[[LocalSandbox], None] | None = None
        #: called once the shell started (the provider learns a jail answered at create)
        self.on_started: Callable[[], None] | None = None
        env = self._env("shell")
        # unjailed, the shell joins the cgroup from here before it reads its
        # first command (one write per controller instead of a /bin/sh that
        # joins and execs bash); bwrap forks its jail at once, so it is started
        # as a member instead; so is a shell that would first run $BASH_ENV
        join = cgroup.join if cgroup is not None and config.isolation == "none" and "BASH_ENV" not in env else None
        shell = ["bash", "--noprofile", "--norc", "-s"]
        self._transport = LocalShellTransport(
            shell if join is not None else self._wrap(shell),
            cwd=workdir,
            env=env,
            tag_entry=f"{TAG_VAR}={token}.shell",
            members=self._members,
            wrapped=config.isolation == "bwrap",
            join=join,
        )
        # the start-up probe is read with the first command, not on its own: unjailed
        # the shell is bash alone, and under bwrap ``shell_ready`` tells the jail's
        # own processes from the first command's (see LocalShellTransport); the
        # provider has its first jails answer at create, so a host where bwrap
        # cannot make one fails there, before any model call
        self.shell = ShellSession(self._transport, cwd=workdir, max_output_bytes=limits.max_output_bytes,
                                  answer_with_first_call=True)

    @property
    def _members(self) -> Callable[[], list[int]] | None:
        return self.cgroup.pids if self.cgroup is not None else None

    def _wrap(self, argv: list[str], cwd: str | None = None) -> list[str]:
        if self.config.isolation == "bwrap":
            argv = bwrap_argv(
                argv,
                workdir=self.workdir,
                cwd=cwd,
                tmp_size=parse_bytes(self.config.tmp_size),
                ro_binds=self.config.ro_binds,
            )
        return self.cgroup.enter_argv(argv) if self.cgroup else argv

    def _env(self, role: str) -> dict[str, str]:
        """A small, predictable environment: the harness' secrets (API keys)
        are not passed to the model's commands."""
        jailed = self.config.isolation == "bwrap"
        env = {
            "PATH": SANDBOX_PATH if jailed else os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "HOME": "/tmp" if jailed else os.environ.get("HOME", self.workdir),
            "LANG": os.environ.get("LANG", "C.UTF-8"),
            "TERM": "dumb",
            "PAGER": "cat",
            "GIT_PAGER": "cat",
        }
        if "LC_ALL" in os.environ:
            env["LC_ALL"] = os.environ["LC_ALL"]
        env.update(self.config.env)
        if self.config.path_prepend:  # a declared environment comes first, whatever PATH says
            env["PATH"] = ":".join([*self.config.path_prepend, env["PATH"]])
        env[TAG_VAR] = f"{self.token}.{role}"
        return env

    # ---- commands ----

    async def place(self, spec: SandboxSpec) -> None:
        """Copy the task's repository and files into the workdir (before its setup command)."""
        if spec.repo_dir:
            repo = spec.repo_dir
            await anyio.to_thread.run_sync(
                lambda: shutil.copytree(repo, self.workdir, symlinks=True, dirs_exist_ok=True)
            )
        for rel, content in spec.files.items():
            try:
                await self.write_file(rel, content.encode("utf-8"))
            except PermissionError as exc:
                raise SandboxError(f"cannot place file {rel!r}: {exc}") from exc

    async def start(self) -> None:
        await self.shell.start()
        if self.on_started is not None:
            self.on_started()

    async def exec(self, command: str, timeout: float) -> ExecResult:
        return await self.shell.exec(command, timeout)

    async def run(self, command: str, timeout: float, cwd: str | None = None) -> ExecResult:
        """Run ``command`` in a fresh bash in its own session.

        The command ends when bash exits; any background process it left behind
        is killed then (so it cannot hold the output open), and a timeout kills
        the whole session.
        """
        if self._closed:
            raise SandboxError("the sandbox is closed")
        started = time.perf_counter()
        workdir = self.resolve(cwd) if cwd else self.workdir
        if not os.path.isdir(workdir):
            raise NotADirectoryError(errno.ENOTDIR, "No such directory", workdir)
        try:
            proc = await anyio.open_process(
                self._wrap(["bash", "--noprofile", "--norc", "-c", command], workdir),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                # under bwrap the jail enters ``workdir`` itself (--chdir): the host
                # side never follows a path the agent could have swapped
                cwd=self.workdir if self.config.isolation == "bwrap" else workdir,
                env=self._env("run"),
                start_new_session=True,
            )
        except OSError as exc:
            raise SandboxError(f"cannot start bash: {exc}") from exc
        out = CappedBuffer(self.limits.max_output_bytes)
        drained = anyio.Event()

        async def drain() -> None:
            assert proc.stdout is not None
            try:
                async for chunk in proc.stdout:
                    out.add(chunk)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                pass
            drained.set()

        timed_out = False
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(drain)
                with anyio.move_on_after(max(timeout, 0.001)) as scope:
                    await proc.wait()
                timed_out = scope.cancelled_caught
                with anyio.CancelScope(shield=True):
                    try:
                        os.killpg(proc.pid, signal.SIGKILL)
                    except (ProcessLookupError, PermissionError):
                        pass
                    await kill_processes(members=self._members, session=proc.pid)
                    await proc.wait()
                    with anyio.move_on_after(1):
                        await drained.wait()
                tg.cancel_scope.cancel()  # a setsid'd straggler may hold the pipe
        finally:
            with anyio.CancelScope(shield=True):
                await proc.aclose()
        return ExecResult(
            output=out.text(),
            exit_code=None if timed_out else status_code(proc.returncode),
            timed_out=timed_out,
            dropped_chars=out.dropped,
            latency_ms=(time.perf_counter() - started) * 1000,
        )

    # ---- files ----

    def resolve(self, path: str) -> str:
        """Absolute path for ``path`` inside the workdir.

        Relative paths are taken under the workdir; absolute ones must already
        point inside it. ``..`` that climbs out, or a symlink whose target is
        outside, raises PermissionError.
        """
        if not isinstance(path, str) or "\x00" in path:
            raise PermissionError(f"invalid path {path!r}")
        joined = path if os.path.isabs(path) else os.path.join(self.workdir, path)
        normal = os.path.normpath(joined)
        if not _inside(normal, self.workdir) and not _inside(normal, self._real_workdir):
            raise PermissionError(
                f"{path!r} is outside the sandbox working directory {self.workdir}; "
                "file tools only work on paths inside it"
            )
        real = os.path.realpath(normal)
        if not _inside(real, self._real_workdir):
            raise PermissionError(
                f"{path!r} resolves (through a symbolic link) to {real}, which is outside "
                f"the sandbox working directory {self.workdir}"
            )
        return normal

    def _relative(self, path: str) -> str:
        """``path`` (checked by ``resolve``) relative to the workdir."""
        normal = self.resolve(path)
        for root in (self._real_workdir, self.workdir):
            if _inside(normal, root):
                return os.path.relpath(normal, root)
        raise PermissionError(f"{path!r} is outside the sandbox working directory {self.workdir}")

    async def read_file(self, path: str, max_bytes: int | None = None) -> bytes:
        rel = self._relative(path)
        limit = self.limits.max_read_bytes if max_bytes is None else max_bytes
        return await anyio.to_thread.run_sync(
            lambda: self._fs.read(rel, limit, lambda size: FileTooLargeError(path, size, limit))
        )

    async def write_file(self, path: str, data: bytes, mode: int | None = None) -> None:
        rel = self._relative(path)
        await anyio.to_thread.run_sync(lambda: self._fs.write(rel, data, mode))

    async def remove_file(self, path: str) -> None:
        """Delete a file (never through a symlink; a symlink itself is removed)."""
        rel = self._relative(path)
        await anyio.to_thread.run_sync(self._fs.unlink, rel)

    async def stat(self, path: str) -> FileInfo:
        rel = self._relative(path)
        st = await anyio.to_thread.run_sync(self._fs.stat, rel)
        if st is None:
            return FileInfo(exists=False)
        is_dir = stat_mod.S_ISDIR(st.st_mode)
        return FileInfo(exists=True, is_dir=is_dir, size=0 if is_dir else st.st_size)

    # ---- lifecycle ----

    async def close(self) -> None:
        """Kill the shell and every process the sandbox started; remove the
        workdir unless ``keep`` is set."""
        if self._closed:
            return
        self._closed = True
        with anyio.CancelScope(shield=True):
            emptied = False
            if self.cgroup is not None:
                # every process the sandbox started is a member and cannot leave
                # (under bwrap; unjailed, a root agent could, but is trusted):
                # the shell's session goes first, then whatever is left in the
                # cgroup is killed until none is left; a jail's own processes
                # (its init, the shell) get SIGKILL at once, so that they die
                # while the shell is reaped rather than be waited for after it
                self._transport.owner_kills_strays = True
                killed = self.cgroup.pids() if self.config.isolation == "bwrap" else []
                sigkill(killed)
                try:
                    await self.shell.close()
                finally:
                    emptied = await self.cgroup.aempty(killed=killed)
            else:
                # the shell's session first (nothing new starts in it), then one
                # search for what is left: that session, or any of our tags
                session = self._transport.pid
                self._transport.owner_kills_strays = True
                await self.shell.close()
                await kill_processes(session=session, env_prefix=f"{TAG_VAR}={self.token}.".encode(),
                                     since_ticks=self._born)  # older processes cannot be ours
            # none of its processes is left when its cgroup was emptied: then an
            # empty workdir may serve the next sandbox
            await self._remove_workdir(reuse=emptied)
            if self.cgroup is not None:
                # the emptied group goes back to the provider's pool; with ``keep``
                # (debugging) the workdir's files stay charged to it, so it is removed
                if self.cgroups is not None:
                    await self.cgroups.release(self.cgroup, keep=emptied and not self.config.keep)
                else:
                    await self.cgroup.aremove()
        if self.on_close is not None:
            self.on_close(self)

    async def _remove_workdir(self, reuse: bool = False) -> None:
        """Close the workdir's descriptor and remove it (unless ``keep``): an
        empty one in place (or, ``reuse``, kept for the provider's next
        sandbox), a tree in a worker thread."""
        self._fs.close()
        if self.config.keep or (reuse and self.workdirs is not None and self.workdirs.keep(self.workdir)):
            return
        try:
            os.rmdir(self.workdir)
        except FileNotFoundError:
            pass
        except OSError:
            await anyio.to_thread.run_sync(_remove_tree, self.workdir)


def _cap(setting: object, cgroup: SandboxCgroup | None, controller: str) -> str:
    """How a cgroup limit stands, for ``info.extra``."""
    if not setting:
        return "none"
    return str(setting) if cgroup is not None and controller in cgroup.limits else "unavailable"


_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _remove_tree(path: str) -> None:
    def onerror(func, p, exc_info):  # read-only dirs left by the task: make them writable
        try:
            if p != path:  # never the directory the workdirs are in (the system's /tmp, say)
                os.chmod(os.path.dirname(p), 0o700)
            os.chmod(p, 0o700)
            func(p)
        except OSError:
            pass

    try:
        shutil.rmtree(path, onerror=onerror)
    except RecursionError:  # deeper than shutil (before Python 3.13) can recurse; rm does not recurse
        subprocess.run(["rm", "-rf", "--one-file-system", "--", path], stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)


class LocalSandboxProvider:
    """Creates :class:`LocalSandbox` es, one temp workdir per rollout."""

    name = "local"

    def __init__(
        self,
        config: LocalSandboxConfig | None = None,
        *,
        limits: SandboxLimits | None = None,
        setup_timeout: float = 900.0,
    ):
        self.config = config or LocalSandboxConfig()
        self.limits = limits or SandboxLimits()
        self.setup_timeout = setup_timeout
        self._open: set[LocalSandbox] = set()
        self._root: str | None = None  # resolved workdir root, once checked
        #: whether a jail of this provider answered at create (later ones answer with their first call)
        self._jailed_once = False
        #: set once the jail answering at create answered or failed (None: none is trying)
        self._jail_trial: anyio.Event | None = None
        memory = parse_bytes(self.config.memory) if self.config.memory else None
        #: every sandbox's cgroup, kept for the next one once emptied at close
        self.cgroups = CgroupPool(pids=self.config.pids_limit, memory=memory)
        #: empty workdirs of closed sandboxes, renamed for the next one
        self.workdirs = WorkdirPool()

    def _check_isolation(self) -> None:
        if self.config.isolation == "bwrap" and shutil.which("bwrap") is None:
            raise SandboxError(
                "isolation='bwrap' needs bubblewrap, but no `bwrap` is on PATH; install it "
                "(e.g. `apt-get install -y bubblewrap`) or use isolation='none'"
            )
        missing = [p for p in self.config.ro_binds if not os.path.exists(p)]
        if missing:
            raise SandboxError(f"ro_binds: {', '.join(missing)} does not exist on this host")

    def _prepare_root(self) -> str:
        """Checks and set-up every sandbox of this provider shares, done once:
        bwrap and ``ro_binds`` present, the workdir root made and resolved."""
        if self._root is None:
            self._check_isolation()
            root = self.config.root or tempfile.gettempdir()
            os.makedirs(root, exist_ok=True)
            self._root = os.path.realpath(root)
        return self._root

    async def create(self, spec: SandboxSpec | None, *, labels: dict[str, str]) -> LocalSandbox:
        """Make the workdir, copy the repo, place files, start the shell, run setup."""
        root = self._prepare_root()
        spec = spec or SandboxSpec()
        label = labels.get("task_id") or labels.get("react-eval.rollout") or ""
        hint = _UNSAFE_NAME.sub("_", label)[:40]  # names the workdir, for debugging
        eager, trial = await self._answer_at_create() if self.config.isolation == "bwrap" else (False, None)
        try:
            # under a resolved root, the new directory's path is already the real one
            workdir = self.workdirs.make(root, f"react-eval-{hint}-" if hint else "react-eval-")
            token = secrets.token_hex(8)
            try:
                cgroup = await self.cgroups.acquire()
            except BaseException:
                os.rmdir(workdir)
                raise
            sandbox = LocalSandbox(workdir, config=self.config, limits=self.limits, token=token, cgroup=cgroup,
                                   cgroups=self.cgroups, workdirs=self.workdirs, resolved=True)
            self._open.add(sandbox)
            sandbox.on_close = self._open.discard
            if eager:
                sandbox.shell.answer_with_first_call = False  # see LocalSandbox.__init__
                sandbox.on_started = self._jail_answered
            await prepare(sandbox, spec, setup_timeout=self.setup_timeout, what=f"the sandbox workdir {workdir}")
        finally:
            if trial is not None:  # answered (see _jail_answered) or failed: the sandboxes waiting go on
                if self._jail_trial is trial:
                    self._jail_trial = None
                trial.set()
        return sandbox

    async def _answer_at_create(self) -> tuple[bool, anyio.Event | None]:
        """Whether a new sandbox's jail answers at create, and the event to set
        once it answered or failed when it is the one the others wait for.

        Until one of this provider's jails has answered at create, a new jail
        answers at create too: a host where bwrap cannot make one fails there,
        before any model call. Sandboxes made meanwhile wait for that answer
        rather than all starting their jails the slower way."""
        if self.config.isolation != "bwrap" or self._jailed_once:
            return False, None
        if self._jail_trial is not None:
            await self._jail_trial.wait()
            if self._jailed_once:
                return False, None
        if self._jail_trial is None:
            self._jail_trial = anyio.Event()
            return True, self._jail_trial
        return True, None

    def _jail_answered(self) -> None:
        self._jailed_once = True
        if self._jail_trial is not None:
            self._jail_trial.set()

    async def aclose(self) -> None:
        """Close every sandbox this provider created that is still open."""
        for sandbox in list(self._open):
            await sandbox.close()
        self.cgroups.remove_all()
        self.workdirs.remove_all()
