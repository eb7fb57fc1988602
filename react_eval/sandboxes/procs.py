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

from react_eval.sandboxes.fd_wait import wait_readable

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


def _environ(pid: int) -> list[bytes] | None:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return None


def _has_env_entry(pid: int, prefix: bytes) -> bool:
    entries = _environ(pid)
    return entries is not None and any(entry.startswith(prefix) for entry in entries)


def _untagged(pid: int) -> bool:
    """True when the process carries no sandbox tag at all: every process the
    harness starts has one, so inside a sandbox's own cgroup a process without
    it cleared its environment to escape (``env -i setsid ...``)."""
    entries = _environ(pid)
    tag = TAG_VAR.encode() + b"="
    return entries is not None and not any(entry.startswith(tag) for entry in entries)


def pid_namespace(pid: int) -> str | None:
    """The pid namespace of a process (``pid:[inode]``), or None if gone."""
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return None


def _read(path: str) -> bytes | None:
    """A small /proc file's content (no file object), or None if it is gone."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        return os.read(fd, 65536)
    except OSError:
        return None
    finally:
        os.close(fd)


def own_pid_namespace() -> str | None:
    """This process's pid namespace (looked up once per process)."""
    pid = os.getpid()
    if _own_ns[0] != pid:
        _own_ns[:] = [pid, pid_namespace(pid)]
    return _own_ns[1]


_own_ns: list = [None, None]


def children(pid: int) -> list[int]:
    """The live children of ``pid`` (a single-threaded parent: bwrap, bash), [] if unknown."""
    data = _read(f"/proc/{pid}/task/{pid}/children")
    try:
        return [int(n) for n in data.split()] if data else []
    except ValueError:
        return []


def ns_pids(pid: int) -> list[int]:
    """``pid`` as each pid namespace it is in sees it, outermost first (the
    ``NSpid`` line of its status), or [] if it is gone."""
    data = _read(f"/proc/{pid}/status") or b""
    start = data.find(b"\nNSpid:")
    if start < 0:
        return []
    line = data[start + 7 : data.find(b"\n", start + 1)]
    try:
        return [int(n) for n in line.split()]
    except ValueError:
        return []


def descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (children, their children, ...), through
    ``/proc/<pid>/task/<pid>/children`` (single-threaded parents, as bwrap and
    bash are), or a scan of parent pids where the kernel lacks that file."""
    found: list[int] = []
    todo = [pid]
    while todo:
        parent = todo.pop()
        try:
            with open(f"/proc/{parent}/task/{parent}/children", "rb") as f:
                kids = [int(n) for n in f.read().split()]
        except FileNotFoundError:
            if os.path.exists(f"/proc/{parent}"):
                return _descendants_by_scan(pid)
            kids = []
        except (OSError, ValueError):
            kids = []
        found += kids
        todo += kids
    return found


def _descendants_by_scan(pid: int) -> list[int]:
    parents: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat", "rb") as f:
                    data = f.read()
                ppid = int(data[data.rfind(b")") + 2 :].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            parents.setdefault(ppid, []).append(int(name))
    found: list[int] = []
    todo = [pid]
    while todo:
        kids = parents.get(todo.pop(), [])
        found += kids
        todo += kids
    return found


def command_name(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/comm", "rb") as f:
            return f.read().strip().decode(errors="replace")
    except OSError:
        return None


def find_processes(
    *,
    session: int | None = None,
    env_prefix: bytes | None = None,
    since_ticks: int | None = None,
    exclude: frozenset[int] | set[int] = frozenset(),
    among: Iterable[int] | None = None,
    pidns: str | None = None,
    untagged: bool = False,
) -> list[int]:
    """Live processes started at or after ``since_ticks`` that are in
    ``session``, carry an env entry starting with ``env_prefix``, live in pid
    namespace ``pidns`` (see :func:`pid_namespace`), or (``untagged``) carry
    no sandbox tag at all; only those of ``among`` when given, else every
    process on the host."""
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
        if (
            (session is not None and st[1] == session)
            or (pidns is not None and pid_namespace(pid) == pidns)
            or (env_prefix is not None and _has_env_entry(pid, env_prefix))
            or (untagged and _untagged(pid))
        ):
            found.append(pid)
    return found


def pidfd_open(pid: int) -> int | None:
    """A descriptor that becomes readable when ``pid`` exits (Linux 5.3+), or
    None when this host has none (no syscall, a seccomp filter, out of descriptors).
    Raises ProcessLookupError when there is no such process."""
    opener = getattr(os, "pidfd_open", None)
    if opener is None:
        return None
    try:
        return opener(pid)
    except ProcessLookupError:
        raise
    except OSError:
        return None


async def wait_exits(pids: Iterable[int], timeout: float) -> bool:
    """Wait up to ``timeout`` s until every process of ``pids`` has exited
    (gone, or a zombie), each on its pidfd: the event loop wakes once they are
    gone instead of polling for it with timers. False (nothing waited for)
    where pidfds cannot be had."""
    fds: list[int] = []
    try:
        for pid in pids:
            try:
                fd = pidfd_open(pid)
            except ProcessLookupError:
                continue  # gone already
            if fd is None:
                return False
            fds.append(fd)
        with anyio.move_on_after(timeout):
            for fd in fds:
                await wait_readable(fd)
        return True
    finally:
        for fd in fds:
            os.close(fd)


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


