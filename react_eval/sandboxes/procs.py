"""Finding and killing a sandbox's processes through Linux ``/proc``.

A sandbox's processes are found by their session (the shell is a session
leader) or by a tag variable in their environment, so strays that called
``setsid`` are still found; start times keep a command's processes apart from
the shell's own.

When the sandbox has its own cgroup, its members (``cgroup.procs``) are the
only candidates (``among``): a few reads instead of a scan of every process on
the host. Otherwise the scan of ``/proc`` runs in a worker thread, since
reading another process's ``environ`` can block for tens of milliseconds and
would stall every other rollout on the event loop.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterable
from functools import partial

import anyio

#: environment variable that marks every process a sandbox starts, so stray
#: processes (even ones that left the session with setsid) can be found and killed
TAG_VAR = "REACT_EVAL_SANDBOX"

_CLK_TCK = os.sysconf("SC_CLK_TCK")


def _boot_ticks() -> int:
    """Now, in the clock /proc/<pid>/stat uses for process start times."""
    return int(time.clock_gettime(time.CLOCK_BOOTTIME) * _CLK_TCK)


def _proc_stat(pid: int) -> tuple[str, int, int] | None:
    """(state, session id, start time in ticks) of a process, or None if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rfind(b")") + 2 :].split()
    try:
        return fields[0].decode(), int(fields[3]), int(fields[19])
    except (IndexError, ValueError):
        return None


def _has_env_entry(pid: int, prefix: bytes) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            data = f.read()
    except OSError:
        return False
    return any(entry.startswith(prefix) for entry in data.split(b"\0"))


def find_processes(
    *,
    session: int | None = None,
    env_prefix: bytes | None = None,
    since_ticks: int | None = None,
    exclude: frozenset[int] | set[int] = frozenset(),
    among: Iterable[int] | None = None,
) -> list[int]:
    """Live processes in ``session`` or carrying an env entry starting with
    ``env_prefix``, started at or after ``since_ticks``; only those of
    ``among`` when given, else every process on the host."""
    me = os.getpid()
    found = []
    candidates = among if among is not None else (int(n) for n in os.listdir("/proc") if n.isdigit())
    for pid in candidates:
        if pid == me or pid in exclude:
            continue
        st = _proc_stat(pid)
        if st is None or st[0] in ("Z", "X"):
            continue
        if since_ticks is not None and st[2] < since_ticks:
            continue
        if (session is not None and st[1] == session) or (
            env_prefix is not None and _has_env_entry(pid, env_prefix)
        ):
            found.append(pid)
    return found


def sigkill(pids: list[int]) -> None:
    """SIGKILL each of ``pids``, ignoring those already gone."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


async def kill_processes(*, members: Callable[[], Iterable[int]] | None = None, **match) -> None:
    """SIGKILL every process ``find_processes(**match)`` reports, until none is left
    (repeated because a dying process may have forked in the meantime).

    ``members`` (e.g. ``SandboxCgroup.pids``) lists the only candidates; without
    it the host-wide scan runs off the event loop."""
    for _ in range(50):
        if members is not None:
            pids = find_processes(among=members(), **match)
        else:
            pids = await anyio.to_thread.run_sync(partial(find_processes, **match))
        if not pids:
            return
        sigkill(pids)
        await anyio.sleep(0.005)


