"""The local sandbox's :class:`ShellTransport`: bash as a subprocess on the host.

How a timed-out command is stopped (see :mod:`react_eval.sandboxes.shell`):
the shell gets :data:`ABORT_SIGNAL`, then every process the command started
since it began is killed -- found, in order of strength, as

* members of the sandbox's cgroup (root or a delegated cgroup): all of them
  except the shell, earlier background jobs and ``run()``'s processes (each
  carries its own tag); a process that cleared its environment and called
  ``setsid`` is caught because it carries no tag at all;
* processes in the jail's pid namespace (bwrap): every one but the shell's;
* without either (``isolation="none"`` as a non-root user): processes in the
  shell's session or carrying its tag variable. ``nohup`` and ``setsid``
  keep the tag; only a process that both left the session and cleared its
  environment escapes, and that mode is for trusted code only.

The shell is started by :func:`~react_eval.sandboxes.spawn.spawn` and its
pipes are plain non-blocking descriptors written directly and read from the
event loop's readiness callback (:mod:`react_eval.sandboxes.fd_wait`; any
anyio backend), and its exit is awaited on a pidfd: no subprocess transport,
stream wrappers or child-watcher thread per shell, which cost more CPU than
the shell's own work on a short command.
"""

from __future__ import annotations

import functools
import os
import shutil
import signal
from typing import Callable

import anyio

from react_eval.sandboxes.fd_wait import FdReader, wait_readable
from react_eval.sandboxes.procs import (
    _boot_ticks,
    children,
    command_name,
    descendants,
    kill_processes,
    ns_pids,
    own_pid_namespace,
    pid_namespace,
    pidfd_open,
)
from react_eval.sandboxes.shell_transport import ABORT_SIGNUM, ShellTransportError
from react_eval.sandboxes.spawn import ShellProcess, spawn


def status_code(returncode: int | None) -> int | None:
    """subprocess' -N (killed by signal N) as the shell's 128+N."""
    if returncode is None:
        return None
    return 128 - returncode if returncode < 0 else returncode


class LocalShellTransport:
    """Bash as a local subprocess in its own session (start_new_session).

    The shell is the session leader, so every process it starts is in its
    session and can be found; the tag environment entry catches the ones that
    called setsid. Killing never touches the harness' own process group.
    ``members`` lists the sandbox cgroup's processes, the only ones searched
    when given; ``wrapped`` says the shell runs under a wrapper (bwrap, in its
    own pid namespace) whose helper processes share its session.
    """

    def __init__(
        self,
        argv: list[str],
        *,
        cwd: str,
        env: dict[str, str],
        tag_entry: str,
        members: Callable[[], list[int]] | None = None,
        wrapped: bool = False,
        join: Callable[[int], None] | None = None,
    ):
        self.argv = argv
        self.cwd = cwd
        self.env = env
        self.tag = tag_entry.encode()
        self.members = members
        self.wrapped = wrapped
        #: moves the new shell into the sandbox's cgroup before it reads a
        #: command (instead of a wrapper that joins and execs the shell)
        self.join = join
        self._proc: ShellProcess | None = None
        #: our ends of the shell's stdin and stdout (non-blocking), and its pidfd
        self._in: int | None = None
        self._out: int | None = None
        self._pidfd: int | None = None
        #: reads the shell's output (registered with the event loop while the shell runs)
        self._reader: FdReader | None = None
        #: our descriptors a send is waiting on (close must wake it)
        self._waiting: set[int] = set()
        self._shell_pids: set[int] = set()
        #: the bash process itself (host pid), which gets ABORT_SIGNAL
        self._bash: int | None = None
        #: the jail's pid namespace (under bwrap): everything in it is the sandbox's
        self._pidns: str | None = None
        #: the jail's pid-1 helper, while its bash and namespace are not looked up yet
        self._helper: int | None = None
        self._mark: int | None = None
        self._born: int | None = None
        #: set by an owner that kills the shell's strays itself after ``close``
        #: (the sandbox's own close: one search for everything, not two)
        self.owner_kills_strays = False

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    async def start(self) -> None:
        await self.close()
        born = _boot_ticks()  # none of this shell's processes is older
        executable = _executable(self.argv[0], self.env.get("PATH"))
        try:
            if executable is None:
                raise FileNotFoundError(2, "not found on the sandbox's PATH", self.argv[0])
            proc = spawn(self.argv, executable=executable, cwd=self.cwd, env=self.env)
        except OSError as exc:
            raise ShellTransportError(f"cannot start {self.argv[0]}: {exc}") from exc
        if self.join is not None:
            # bash has read nothing yet, so it has started nothing: once it is a
            # member, so is everything it will ever start
            try:
                self.join(proc.pid)
            except OSError as exc:
                proc.kill()
                proc.wait()
                proc.close_pipes()
                raise ShellTransportError(f"cannot move the shell into the sandbox's cgroup: {exc}") from exc
        self._proc = proc
        self._in, self._out = proc.stdin, proc.stdout
        os.set_blocking(self._in, False)
        os.set_blocking(self._out, False)
        self._reader = FdReader(self._out)
        self._pidfd = _pidfd_open(proc.pid)
        self._shell_pids = {proc.pid}
        self._bash = None if self.wrapped else proc.pid
        self._born = self._mark = born
        self._pidns = None
        self._helper = None

    async def send(self, data: bytes) -> None:
        fd = self._in
        if fd is None:
            raise ShellTransportError("the shell is not running")
        view = memoryview(data)
        try:
            while view:
                try:
                    view = view[os.write(fd, view):]
                except BlockingIOError:  # the shell is not reading: wait for room
                    self._waiting.add(fd)
                    try:
                        await anyio.wait_writable(fd)
                    finally:
                        self._waiting.discard(fd)
                    if self._in != fd:
                        raise ShellTransportError("the shell was closed")
        except (anyio.ClosedResourceError, anyio.BusyResourceError, OSError) as exc:
            raise ShellTransportError(f"the shell's stdin is closed: {exc!r}") from exc

    async def receive(self) -> bytes:
        reader = self._reader
        return await reader.read() if reader is not None else b""

    def shell_ready(self) -> None:
        # under bwrap the shell is bwrap, its pid-1 helper (in a new session)
        # and bash, pid 2 of the jail's pid namespace: those three are "the
        # shell" and spared by interrupt(). The first command may already run
        # (its probe is read with the first call), but its processes are
        # bash's children, or orphans adopted by the helper with higher pids
        # in the jail. Unwrapped, bash is alone and nothing need be searched.
        if self._proc is None or not self.wrapped:
            return
        outer = self._proc.pid
        helpers = children(outer)
        if len(helpers) == 1:
            # the tree bwrap makes: bash, pid 2 of the helper's namespace for
            # as long as it lives, is looked up when first needed (a timeout,
            # a close without a cgroup), which most sandboxes never have
            self._shell_pids = {outer, helpers[0]}
            self._helper = helpers[0]
            return
        # not the tree bwrap makes: all alive now is the shell, as when nothing had been sent
        inner = descendants(outer)
        self._shell_pids = {outer, *inner}
        self._bash = next((p for p in reversed(inner) if command_name(p) == "bash"), None)
        self._set_pidns(self._bash)

    def _find_shell(self) -> None:
        """The jail's bash and pid namespace, once, from the helper shell_ready found."""
        helper, self._helper = self._helper, None
        if helper is None:
            return
        shell = next((p for p in children(helper) if ns_pids(p)[-1:] == [2]), None)
        if shell is not None:
            self._shell_pids.add(shell)
            self._bash = shell
        self._set_pidns(helper)  # the helper is pid 1 of the jail's namespace

    def _set_pidns(self, pid: int | None) -> None:
        self._pidns = pid_namespace(pid) if pid is not None else None
        if self._pidns is not None and self._pidns == own_pid_namespace():
            self._pidns = None  # not a namespace of its own: matching it would match the host

    def mark_command_start(self) -> None:
        # /proc start times and this clock are both boot-time ticks rounded
        # down, so every process the command starts has start >= mark (a job
        # started in the same 10 ms tick before the command is caught too)
        self._mark = _boot_ticks()

    def _match(self) -> dict:
        assert self._proc is not None
        self._find_shell()
        return {
            "members": self.members,
            "session": self._proc.pid,
            "env_prefix": self.tag,
            "pidns": self._pidns,
            "untagged": self.members is not None,
        }

    async def interrupt(self) -> None:
        if self._proc is None:
            return
        self._find_shell()
        if self._bash is not None:
            try:  # first, so the shell cannot go on to the rest of the command
                os.kill(self._bash, ABORT_SIGNUM)
            except (ProcessLookupError, PermissionError):
                pass
        match = self._match()  # (first: it may find the shell's pids)
        await kill_processes(since_ticks=self._mark, exclude=self._shell_pids, **match)

    async def exit_status(self) -> int | None:
        if self._proc is None:
            return None
        await self._reap(self._proc, self._pidfd, 2)
        return status_code(self._proc.returncode)

    @staticmethod
    async def _reap(proc: ShellProcess, pidfd: int | None, timeout: float) -> None:
        """Wait up to ``timeout`` s for ``proc`` to exit, and reap it."""
        delay = 0.001
        with anyio.move_on_after(timeout):
            while proc.poll() is None:
                if pidfd is not None:
                    try:
                        await wait_readable(pidfd)  # readable once the process exited
                        continue
                    except (anyio.ClosedResourceError, anyio.BusyResourceError, OSError, ValueError):
                        pidfd = None
                await anyio.sleep(delay)  # no pidfd on this kernel: poll
                delay = min(delay * 2, 0.05)

    async def close(self) -> None:
        if self._proc is None:
            return
        # (an owner that kills the strays itself needs no search: none is made)
        match = None if self.owner_kills_strays else {**self._match(), "since_ticks": self._born}
        proc, pidfd, fd, reader = self._proc, self._pidfd, self._in, self._reader
        self._proc = self._pidfd = self._in = self._out = self._reader = None
        with anyio.CancelScope(shield=True):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            if reader is not None:
                reader.close()  # a receive() waiting on it returns b""
            if fd in self._waiting:  # wakes a send() waiting on it
                anyio.notify_closing(fd)
            proc.close_pipes()
            if match is not None:
                await kill_processes(**match)
            await self._reap(proc, pidfd, 5)
            if pidfd is not None:
                os.close(pidfd)


@functools.lru_cache(maxsize=64)
def _executable(name: str, path: str | None) -> str | None:
    """Where ``name`` is on ``path`` (looked up once per process, not by each
    spawn trying every directory), or None when it is on none of them."""
    return name if os.sep in name else shutil.which(name, path=os.defpath if path is None else path)


def _pidfd_open(pid: int) -> int | None:
    """A descriptor that becomes readable when ``pid`` exits, or None (poll instead)."""
    try:
        return pidfd_open(pid)
    except ProcessLookupError:  # our own child, not reaped yet: cannot be missing, but poll if it is
        return None
