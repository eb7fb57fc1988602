"""Killing inside the container: the bash kill function (builtins only), the
``run()`` driver built on it, and the *control shell*, a long-lived root exec that
runs it on request -- so killing works even while a fork bomb holds every PID."""

from __future__ import annotations

import os
import shlex
import time
from typing import Protocol

import anyio

from react_eval.sandboxes.docker.stream import ExecStream
from react_eval.sandboxes.shell_transport import ABORT_SIGNAL, ShellTransportError
from react_eval.types import SandboxError

#: environment entry that marks the processes of one sandbox role (shell, run #n)
TAG_VAR = "REACT_EVAL_SANDBOX"
_CLK_TCK = os.sysconf("SC_CLK_TCK")


def boot_ticks() -> int:
    """Now, in the clock /proc/<pid>/stat uses for process start times."""
    return int(time.clock_gettime(time.CLOCK_BOOTTIME) * _CLK_TCK)


def _local_boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:
        return ""


# The kill function shared by the control shell and the run() driver. Builtins
# only (no fork), so it still works when a fork bomb holds every free PID.
KILL_FN = r"""
__re_kill() {
    local want="REACT_EVAL_SANDBOX=$1" sid=$2 mark=$3 round p d st e t killed=0
    local -a f env hit
    local -A skip=([1]=1 [$$]=1)
    shift 3
    for p; do skip[$p]=1; done
    for ((round = 0; round < 400; round++)); do
        hit=()
        for d in /proc/[0-9]*; do
            p=${d#/proc/}
            [[ -n ${skip[$p]} ]] && continue
            { read -r st < "$d/stat"; } 2>/dev/null || continue
            f=(${st##*) })
            [[ ${f[0]} == [ZX] ]] && continue
            (( ${f[19]:-0} >= mark )) || continue
            if [[ $sid != 0 && ${f[3]} == "$sid" ]]; then hit+=("$p"); continue; fi
            { mapfile -d '' -t env < "$d/environ"; } 2>/dev/null || continue
            # tagged with $1 or, when a command's start is given, with no tag at all
            # (started since then and cleared its environment to escape)
            t=none
            for e in "${env[@]}"; do
                [[ $e == "$want"* ]] && { t=want; break; }
                [[ $e == REACT_EVAL_SANDBOX=* ]] && t=other
            done
            [[ $t == want || ( $t == none && $mark != 0 ) ]] && hit+=("$p")
        done
        (( ${#hit[@]} )) || break
        kill -9 "${hit[@]}" 2>/dev/null
        killed=$((killed + ${#hit[@]}))
    done
    builtin echo "$killed"
}
"""

# run(): the exec reads this script from stdin up to a NUL (so no output can
# arrive before the attach is wrapped, and `ps` shows a short command line),
# runs the command in a child bash, then kills what it left behind.
RUN_BOOT = 'IFS= read -r -d "" __s; eval "$__s"'
RUN_DRIVER = (
    KILL_FN
    + r"""
exec 2>&1
cd -- "$2" || exit 1
bash --noprofile --norc -c "$1" </dev/null
__rc=$?
__re_kill "$3" "$$" 0 >/dev/null
exit "$__rc"
"""
)



class ExecHost(Protocol):
    """What the control shell and the shell transport need of their sandbox
    (:class:`~react_eval.sandboxes.docker.sandbox.DockerSandbox`)."""

    workdir: str
    _removing: bool
    _control: "ControlShell"

    async def _attach(self, cmd: list[str], *, env: dict[str, str], workdir: str) -> ExecStream: ...

    async def _gone_message(self, what: str) -> str: ...

    async def _exit_code(self, exec_id: str) -> int | None: ...


class ControlShell:
    """A long-lived bash in the container (as its user: root, or the agent's,
    whose processes are all it must kill) that kills processes on request."""

    def __init__(self, sandbox: ExecHost):
        self.sandbox = sandbox
        self._stream: ExecStream | None = None
        self._lock = anyio.Lock()
        self._pending = bytearray()
        self._seq = 0
        #: add to a host boot-time tick count to get the container's
        self.tick_offset = 0
        #: (uid, gid) the container's processes run as: the agent's (None until started)
        self.user: tuple[int, int] | None = None
        #: whether the agent's user and group owned the workdir when the container started
        self.owns_workdir = False

    async def _start(self) -> None:
        if self._stream is not None:
            await self._stream.aclose()
        self._pending.clear()
        self._stream = await self.sandbox._attach(["bash", "--noprofile", "--norc", "-s"], env={}, workdir="/")
        workdir = shlex.quote(self.sandbox.workdir).encode()
        await self._stream.send(
            KILL_FN.encode()
            + b'read -r __b < /proc/sys/kernel/random/boot_id; read -r __u _ < /proc/uptime; __o=0; '
            + b"[[ -d " + workdir + b" && -O " + workdir + b" && -G " + workdir + b" ]] && __o=1; "
            + b'builtin echo "__re_ready $__b $__u $EUID ${GROUPS[0]} $__o"\n'
        )
        line = await self._line(b"__re_ready ")
        received = boot_ticks()
        parts = line.split()
        if len(parts) == 6 and parts[3].isdigit() and parts[4].isdigit():
            self.user = (int(parts[3]), int(parts[4]))
            self.owns_workdir = parts[5] == b"1"
            parts = parts[:3]
        boot_id = parts[1].decode() if len(parts) == 3 else ""
        if boot_id and boot_id == _local_boot_id():
            self.tick_offset = 0  # the same kernel: the same clock
        else:  # a remote engine: map host ticks to container ticks (errs towards killing more)
            try:
                self.tick_offset = int(float(parts[-1]) * _CLK_TCK) - received
            except ValueError:
                self.tick_offset = 0

    async def _line(self, prefix: bytes) -> bytes:
        assert self._stream is not None
        while True:
            i = self._pending.find(prefix)
            if i >= 0:
                j = self._pending.find(b"\n", i)
                if j >= 0:
                    line = bytes(self._pending[i:j])
                    del self._pending[: j + 1]
                    return line
            chunk = await self._stream.receive()
            if not chunk:
                raise ShellTransportError("the control shell exited")
            self._pending += chunk

    async def kill(self, tag: str, *, sid: int | None = None, mark: int | None = None,
                   exclude: tuple[int, ...] = (), timeout: float = 30.0, abort: int | None = None) -> None:
        """SIGKILL the container's processes tagged ``tag`` (entry prefix), in
        session ``sid`` or untagged that started at or after host tick ``mark``;
        first send ABORT_SIGNAL to the shell ``abort`` (see shell.py)."""
        container_mark = 0 if mark is None else max(mark + self.tick_offset, 0)
        async with self._lock:
            for attempt in (1, 2):
                try:
                    with anyio.fail_after(timeout):
                        if self._stream is None or self._stream.closed:
                            await self._start()
                        assert self._stream is not None
                        self._seq += 1
                        args = " ".join(str(p) for p in exclude)
                        done = f"__re_done {self._seq} ".encode()
                        first = f"builtin kill -s {ABORT_SIGNAL} {abort} 2>/dev/null; " if abort else ""
                        await self._stream.send(
                            f"{first}__re_kill {tag} {sid or 0} {container_mark} {args}; "
                            f'builtin echo "__re_done {self._seq} $?"\n'.encode()
                        )
                        await self._line(done)
                        return
                except ShellTransportError:
                    await self.aclose()  # a fresh control shell on the next attempt
                    if attempt == 2:
                        raise SandboxError(await self.sandbox._gone_message("the control shell stopped answering"))
                except TimeoutError:
                    await self.aclose()  # its loop is bounded; a new one starts next time
                    raise SandboxError(
                        await self.sandbox._gone_message(f"processes in the container could not be killed within {timeout:g}s")
                    ) from None

    async def start(self) -> None:
        """Start the control shell now (while PIDs are surely free) and learn the clock."""
        async with self._lock:
            if self._stream is None:
                try:
                    await self._start()
                except ShellTransportError as exc:
                    raise SandboxError(await self.sandbox._gone_message(f"the control shell did not start: {exc}")) from exc

    async def aclose(self) -> None:
        if self._stream is not None:
            await self._stream.aclose()
            self._stream = None

