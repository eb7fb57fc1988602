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
"""

from __future__ import annotations

import os
import signal
import subprocess
from typing import Callable

import anyio
from anyio.abc import Process

from react_eval.sandboxes.procs import _boot_ticks, command_name, descendants, kill_processes, pid_namespace
from react_eval.sandboxes.shell import ABORT_SIGNUM, ShellTransportError


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
    ):
        self.argv = argv
        self.cwd = cwd
        self.env = env
        self.tag = tag_entry.encode()
        self.members = members
        self.wrapped = wrapped
        self._proc: Process | None = None
        self._shell_pids: set[int] = set()
        #: the bash process itself (host pid), which gets ABORT_SIGNAL
        self._bash: int | None = None
        #: the jail's pid namespace (under bwrap): everything in it is the sandbox's
        self._pidns: str | None = None
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
        try:
            self._proc = await anyio.open_process(
                self.argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                cwd=self.cwd,
                env=self.env,
                start_new_session=True,
            )
        except OSError as exc:
            raise ShellTransportError(f"cannot start {self.argv[0]}: {exc}") from exc
        self._shell_pids = {self._proc.pid}
        self._bash = None if self.wrapped else self._proc.pid
        self._born = self._mark = born
        self._pidns = None

    async def send(self, data: bytes) -> None:
        if self._proc is None or self._proc.stdin is None:
            raise ShellTransportError("the shell is not running")
        try:
            await self._proc.stdin.send(data)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
            raise ShellTransportError(f"the shell's stdin is closed: {exc!r}") from exc

    async def receive(self) -> bytes:
        if self._proc is None or self._proc.stdout is None:
            return b""
        try:
            return await self._proc.stdout.receive(1 << 16)
        except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
            return b""

    def shell_ready(self) -> None:
        # under bwrap the shell is bwrap, its pid-1 helper (in a new session)
        # and bash: all alive now is "the shell" and is spared by interrupt();
        # unwrapped, bash is alone and nothing need be searched
        if self._proc is None or not self.wrapped:
            return
        inner = descendants(self._proc.pid)
        self._shell_pids = {self._proc.pid, *inner}
        self._bash = next((p for p in reversed(inner) if command_name(p) == "bash"), None)
        self._pidns = pid_namespace(self._bash) if self._bash is not None else None
        if self._pidns is not None and self._pidns == pid_namespace(os.getpid()):
            self._pidns = None  # not a namespace of its own: matching it would match the host

    def mark_command_start(self) -> None:
        # /proc start times and this clock are both boot-time ticks rounded
        # down, so every process the command starts has start >= mark (a job
        # started in the same 10 ms tick before the command is caught too)
        self._mark = _boot_ticks()

    def _match(self) -> dict:
        assert self._proc is not None
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
        if self._bash is not None:
            try:  # first, so the shell cannot go on to the rest of the command
                os.kill(self._bash, ABORT_SIGNUM)
            except (ProcessLookupError, PermissionError):
                pass
        await kill_processes(since_ticks=self._mark, exclude=self._shell_pids, **self._match())

    async def exit_status(self) -> int | None:
        if self._proc is None:
            return None
        with anyio.move_on_after(2):
            await self._proc.wait()
        return status_code(self._proc.returncode)

    async def close(self) -> None:
        if self._proc is None:
            return
        match = self._match()
        proc, self._proc = self._proc, None
        match["since_ticks"] = self._born
        with anyio.CancelScope(shield=True):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            if not self.owner_kills_strays:
                await kill_processes(**match)
            with anyio.move_on_after(5):
                await proc.wait()
            await proc.aclose()
