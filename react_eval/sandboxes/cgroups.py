"""A per-sandbox cgroup that caps processes (pids) and memory, on cgroup v1 or v2.

A provider's sandboxes draw their cgroups from a :class:`CgroupPool`: a
sandbox that closes has every member killed, and once the group is empty (and
little memory, or few dead processes, are still charged to it: see
:meth:`CgroupPool.release`) it is kept for the provider's next sandbox instead of being removed and made
again (creating a memory cgroup and removing it are the costliest steps of a
short sandbox's life); the pool removes its groups when the provider closes.
A group keeps its member lists open for writing while it lives (joining is
one ``write(2)`` per directory), and a kept group's mtime, which tells other
harnesses' sweeps it is in use, is refreshed every ten minutes rather than at
every reuse. On cgroup v1 a
sandbox gets one directory per controller (``/sys/fs/cgroup/pids/<name>``,
``/sys/fs/cgroup/memory/<name>``); on v2 one directory with both limits. Every
sandbox process joins before it starts anything: a jailed or one-shot command
joins before it execs (see :meth:`SandboxCgroup.enter_argv`), the unjailed
persistent shell is moved in by the harness before it reads its first command
(:meth:`SandboxCgroup.join`). Children inherit the limits and cannot leave
them (the cgroup files are not writable from inside a sandbox). Memory written
to a tmpfs by a member is charged to its cgroup as well, so ``/tmp`` cannot
spill into the host's RAM.
"""

from __future__ import annotations

import functools
import os
import re
import secrets
import shlex
import subprocess
import time

import anyio

from react_eval.sandboxes.procs import sigkill, wait_exits

V1_ROOT = "/sys/fs/cgroup"
_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


@functools.lru_cache(maxsize=64)
def parse_bytes(text: str | int) -> int:
    """``"4g"``, ``"512m"``, ``"1.5G"``, ``"2048"`` (docker's notation) as bytes."""
    if isinstance(text, int):
        return text
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([bkmgt]?)i?b?\s*", str(text).lower())
    if not m:
        raise ValueError(f"not a size: {text!r} (use e.g. 512m, 4g or a number of bytes)")
    return int(float(m.group(1)) * _UNITS[m.group(2)])


#: how old (mtime) an empty ``react-eval-*`` group must be before any harness's sweep removes it
SWEEP_AGE = 3600.0
#: how often a kept group's mtime is refreshed while the pool uses it, and how
#: long after a refresh it is known to be there (no sweep can have removed it)
REFRESH_EVERY = 600.0
TRUSTED_FOR = 1800.0

#: cgroup roots already swept of stale groups, and root sets a member has
#: joined, in this process: both are done once, not for every sandbox
_swept: set[str] = set()
_joinable: set[tuple[str, ...]] = set()


def _v2_controllers(root: str) -> set[str]:
    try:
        with open(os.path.join(root, "cgroup.subtree_control")) as f:
            return set(f.read().split())
    except OSError:
        return set()


@functools.lru_cache(maxsize=8)
def _plans(controllers: tuple[str, ...]) -> tuple[tuple[tuple[str, str], ...], ...]:
    """The ways to make a group with ``controllers`` on this host, in order
    (v1 hierarchies, then v2), each as (controller root, controller) pairs:
    the hierarchies are mounted once for the process's life, so looked at once."""
    attempts = []
    v1 = tuple((os.path.join(V1_ROOT, c), c) for c in controllers
               if os.path.exists(os.path.join(V1_ROOT, c, "cgroup.procs")))
    if v1:
        attempts.append(v1)
    v2 = _v2_controllers(V1_ROOT)
    if set(controllers) & v2:
        attempts.append(tuple((V1_ROOT, c) for c in controllers if c in v2))
    return tuple(attempts)


#: controller root -> (its memory limit file, its swap limit file or ""), as the first group under it has them
_memory_layout: dict[str, tuple[str, str]] = {}


def _memory_files(root: str, group: str) -> tuple[str, str]:
    """Which memory limit files groups under ``root`` have (v1 or v2; swap
    accounting on or off), looked at in the first group made there."""
    layout = _memory_layout.get(root)
    if layout is None:
        if os.path.exists(os.path.join(group, "memory.max")):
            swap = "memory.swap.max"
            layout = ("memory.max", swap if os.path.exists(os.path.join(group, swap)) else "")
        else:
            swap = "memory.memsw.limit_in_bytes"
            layout = ("memory.limit_in_bytes", swap if os.path.exists(os.path.join(group, swap)) else "")
        _memory_layout[root] = layout
    return layout


def _members(path: str) -> bytes:
    """The member list of the cgroup directory ``path`` (b"" if unreadable)."""
    try:
        with open(os.path.join(path, "cgroup.procs"), "rb") as f:
            return f.read().strip()
    except OSError:
        return b""


def _close_all(fds: list[int]) -> None:
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


def _write(path: str, value: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)  # one write(2), as cgroupfs wants; no file object
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def may_block(*, pids: int | None, memory: int | None) -> bool:
    """Whether making a group with these limits may take long on the event
    loop: the first group under a cgroup root sweeps it, and the first under a
    set of roots tests joining in a subprocess (both once per process)."""
    wanted = tuple(k for k, v in (("pids", pids), ("memory", memory)) if v)
    plans = _plans(wanted) if wanted else ()
    if not plans:
        return False
    roots = {root for root, _ in plans[0]}  # the first way: once known to work, it is the one taken
    return not roots <= _swept or tuple(sorted(roots)) not in _joinable


class SandboxCgroup:
    """The cgroup (one directory per v1 controller, or one v2 directory) of one sandbox."""

    def __init__(self, paths: list[str], limits: dict[str, int]):
        self.paths = paths
        #: each directory's member list (read and written for every sandbox)
        self._procs = [os.path.join(p, "cgroup.procs") for p in paths]
        #: controller -> the limit applied (``pids``: processes, ``memory``: bytes)
        self.limits = limits
        #: each directory's member list open for writing, kept while the group
        #: lives: a join is one write(2) per directory
        self._joins: list[int] | None = None
        #: when the directories' mtimes were last refreshed (time.monotonic)
        self.touched = time.monotonic()

    @property
    def path(self) -> str:
        return self.paths[0]

    @classmethod
    def create(cls, name: str, *, pids: int | None, memory: int | None) -> SandboxCgroup | None:
        """A new cgroup ``name`` with the limits that are not None, or None when
        this process may not create and join one (not root, no delegation)."""
        wanted = {k: v for k, v in (("pids", pids), ("memory", memory)) if v}
        if not wanted:
            return None
        attempts = _plans(tuple(wanted))
        for plan in attempts:
            group = cls._try(name, plan, wanted)
            if group is not None:
                return group
        return None

    @classmethod
    def _try(cls, name: str, plan: list[tuple[str, str]], wanted: dict[str, int]) -> SandboxCgroup | None:
        dirs: dict[str, str] = {}
        for root, _ in plan:
            dirs.setdefault(root, os.path.join(root, name))
        group = cls(list(dirs.values()), {})
        try:
            for root in dirs:
                if root not in _swept:
                    cls._sweep(root)
                    _swept.add(root)
                os.mkdir(dirs[root])
        except OSError:
            group.remove()
            return None
        try:
            for root, controller in plan:
                group._limit(dirs[root], controller, wanted[controller])
                group.limits[controller] = wanted[controller]
            # joining may need more rights than creating (v2): try it once per
            # set of roots (the rights are the same for every group under them)
            roots = tuple(sorted(dirs))
            if roots in _joinable:
                return group
            probe = subprocess.run(group.enter_argv(["true"]), capture_output=True, timeout=10)
            if probe.returncode == 0:
                _joinable.add(roots)
                return group
        except (OSError, subprocess.SubprocessError):
            pass
        group.remove()
        return None

    @staticmethod
    def _limit(path: str, controller: str, value: int) -> None:
        if controller == "pids":
            _write(os.path.join(path, "pids.max"), str(value))
            return
        files = _memory_files(os.path.dirname(path), path)
        if files[0] == "memory.max":  # v2
            _write(os.path.join(path, "memory.max"), str(value))
            if files[1]:
                _write(os.path.join(path, files[1]), "0")
            return
        _write(os.path.join(path, "memory.limit_in_bytes"), str(value))  # v1
        if files[1]:  # memory + swap: no swapping past the limit either
            try:
                _write(os.path.join(path, files[1]), str(value))
            except OSError:
                pass

    @staticmethod
    def _sweep(root: str, min_age: float = SWEEP_AGE) -> None:
        """Delete empty ``react-eval-*`` cgroups older than ``min_age`` seconds,
        left by harness processes that were killed (a live sandbox's cgroup
        always holds its shell; rmdir refuses a non-empty cgroup anyway)."""
        try:
            names = [n for n in os.listdir(root) if n.startswith("react-eval-")]
        except OSError:
            return
        now = time.time()
        for n in names:
            path = os.path.join(root, n)
            try:
                if now - os.stat(path).st_mtime > min_age and not _members(path):
                    os.rmdir(path)
            except OSError:
                pass

    def enter_argv(self, argv: list[str]) -> list[str]:
        """``argv`` run as a member of this cgroup (a shell joins, then execs)."""
        procs = " ".join(shlex.quote(os.path.join(p, "cgroup.procs")) for p in self.paths)
        return ["/bin/sh", "-c", f'for f in {procs}; do echo $$ > "$f" || exit 125; done; exec "$@"', "sh", *argv]

    def join(self, pid: int) -> None:
        """Move ``pid`` into this cgroup (raises OSError if it may not join).
        Only safe for a process that has started nothing yet (its children
        stay where they are): a shell still waiting for its first command."""
        if self._joins is None:
            self._joins = self._open_all(os.O_WRONLY)
        data = str(pid).encode()
        for fd in self._joins:
            os.write(fd, data)  # one write(2) per member list, as cgroupfs wants

    def _open_all(self, flags: int) -> list[int]:
        """``cgroup.procs`` of every directory, opened with ``flags``."""
        fds: list[int] = []
        try:
            for procs in self._procs:
                fds.append(os.open(procs, flags | os.O_CLOEXEC))
        except OSError:
            _close_all(fds)
            raise
        return fds

    def close_files(self) -> None:
        """Close the member lists this group keeps open for joining."""
        joins, self._joins = self._joins, None
        _close_all(joins or [])

    def pids(self) -> list[int]:
        # opened afresh each time: a v1 member list read again through the same
        # descriptor may be the kernel's cached list of up to a second ago
        found: set[int] = set()
        for procs in self._procs:
            try:
                fd = os.open(procs, os.O_RDONLY | os.O_CLOEXEC)  # no file object: a few µs less per read
            except OSError:  # removed (by a sweep, or this group's own removal)
                continue
            try:
                data = b""
                while chunk := os.read(fd, 65536):
                    data += chunk
            except OSError:
                continue
            finally:
                os.close(fd)
            found.update(map(int, data.split()))
        return sorted(found)

    def remove(self) -> None:
        """SIGKILL every member until none is left, then delete the cgroup
        (blocking: sleeps while members exit)."""
        for _ in range(200):
            if self._kill_or_remove():
                return
            time.sleep(0.01)
        self.close_files()

    async def aempty(self, limit: float = 2.0, *, killed: list[int] | None = None) -> bool:
        """SIGKILL every member until none is left (up to ``limit`` seconds);
        True once the group is empty. The killed members' exits are awaited
        on pidfds (the loop wakes once they are gone, instead of timers
        polling for it); a member still listed after its exit was seen, or a
        host without pidfds, is polled with ``anyio.sleep`` as :meth:`aremove` does.
        ``killed``: members the caller already sent SIGKILL, awaited first."""
        deadline = None
        delay = 0.001
        seen: set[int] = set()
        if killed and await wait_exits(killed, limit):
            seen.update(killed)
        while True:
            pids = self.pids()
            if not pids:
                return True
            now = time.monotonic()
            if deadline is None:
                deadline = now + limit
            elif now >= deadline:
                return False
            sigkill(pids)
            new = [p for p in pids if p not in seen]
            if new and await wait_exits(new, deadline - now):
                seen.update(new)
                continue
            await anyio.sleep(delay)
            delay = min(delay * 2, 0.02)

    def charged(self, controller: str) -> int:
        """What is still charged to the group once its members are gone (0
        without ``controller``): ``memory``, bytes its processes left in a tmpfs
        or in shared memory; ``pids``, its dead processes nobody reaped yet
        (reparented to an init that reaps late, or never)."""
        if controller not in self.limits:
            return 0
        names = ("pids.current",) if controller == "pids" else ("memory.usage_in_bytes", "memory.current")
        for path in self.paths:
            for name in names:
                try:
                    fd = os.open(os.path.join(path, name), os.O_RDONLY | os.O_CLOEXEC)
                except OSError:
                    continue
                try:
                    return int(os.read(fd, 64))
                except (OSError, ValueError):
                    return 0
                finally:
                    os.close(fd)
        return 0

    def rmdir(self) -> bool:
        """Delete the group's directories; False when one is refused (members left)."""
        self.close_files()
        left = False
        for path in self.paths:
            try:
                os.rmdir(path)
            except FileNotFoundError:
                pass
            except OSError:
                left = True
        return not left

    def exists(self) -> bool:
        return all(os.path.isdir(p) for p in self.paths)

    async def aremove(self) -> None:
        """:meth:`remove` on the event loop: every step is a few reads, kills
        and rmdirs of cgroupfs files (no disk, no waiting in the kernel), and
        the waits for members to exit are ``anyio.sleep`` s, so no worker
        thread is needed."""
        delay, waited = 0.001, 0.0
        while not self._kill_or_remove():
            if waited >= 2.0:
                self.close_files()
                return
            await anyio.sleep(delay)
            waited += delay
            delay = min(delay * 2, 0.02)

    def _kill_or_remove(self) -> bool:
        """One step of removal: True once every directory is gone; else the
        members still alive got SIGKILL (or are still exiting)."""
        pids = self.pids()
        if not pids:
            return self.rmdir()  # refused: members still exiting
        sigkill(pids)
        return False


class CgroupPool:
    """The cgroups of one provider's sandboxes, each reused once emptied.

    :meth:`acquire` hands out an empty group with the provider's limits (a
    kept one, or a new one); :meth:`release` takes back a closed
    sandbox's group once :meth:`SandboxCgroup.aempty` killed every member
    (so none of a sandbox's processes outlives its ``close``) and keeps it
    for the next sandbox. A group that cannot be emptied is removed as before (which keeps
    killing its members); :meth:`remove_all` removes the kept ones.
    """

    def __init__(self, *, pids: int | None, memory: int | None):
        self.pids = pids
        self.memory = memory
        self._free: list[SandboxCgroup] = []
        #: whether one group was made (sweeping and the join test are done then)
        self._checked = False
        #: set once the first group, made in a worker thread, is made (or failed)
        self._checking: anyio.Event | None = None

    @property
    def kept(self) -> tuple[SandboxCgroup, ...]:
        """The empty groups waiting for a sandbox."""
        return tuple(self._free)

    async def acquire(self) -> SandboxCgroup | None:
        """An empty group for a new sandbox, or None when none can be made."""
        while self._free:
            group = self._free.pop()
            # another harness's sweep may have removed a group idle for an hour;
            # one refreshed less than half an hour ago is surely still there
            if time.monotonic() - group.touched < TRUSTED_FOR or group.exists():
                return group
            group.close_files()
        make = lambda: SandboxCgroup.create(  # noqa: E731
            f"react-eval-{secrets.token_hex(8)}", pids=self.pids, memory=self.memory
        )
        # sandboxes made while the first group is being made wait for it: then
        # theirs are made on the loop, not each in a worker thread of its own
        while self._checking is not None:
            await self._checking.wait()
        if self._checked or not may_block(pids=self.pids, memory=self.memory):
            self._checked = True
            return make()  # a few mkdirs and writes in cgroupfs
        checking = self._checking = anyio.Event()
        try:
            return await anyio.to_thread.run_sync(make)  # may sweep stale groups and probe joining
        finally:
            self._checked = True
            self._checking = None
            checking.set()

    async def release(self, group: SandboxCgroup, *, keep: bool) -> None:
        """Keep ``group`` (emptied by :meth:`SandboxCgroup.aempty`) for the
        next sandbox when ``keep``, else remove it (killing what is left).
        A group still charged with much of a limit is removed too, so that
        the next sandbox gets (nearly) its whole caps and nothing piles up from
        sandbox to sandbox: more than a sixteenth of its memory (files its
        processes left in a tmpfs such as /dev/shm, System V shared memory:
        they outlive the processes), more than a quarter of its processes
        (dead ones not reaped yet by an init that reaps late, or never: each
        jail's own init is one; usually gone a moment later)."""
        if keep and ((self.memory and group.charged("memory") > self.memory // 16)
                     or (self.pids and group.charged("pids") > self.pids // 4)):
            keep = False
        if keep:
            now = time.monotonic()
            if now - group.touched > REFRESH_EVERY:  # a fresh mtime: another harness's sweep leaves it alone
                group.touched = now
                for path in group.paths:
                    try:
                        os.utime(path)
                    except OSError:
                        pass
            self._free.append(group)
            return
        await group.aremove()

    def remove_all(self) -> None:
        """Remove every kept group (blocking; they are empty, so at once:
        removed without reading their members first, which only a group that
        is not empty after all, and refuses, has read and killed)."""
        free, self._free = self._free, []
        for group in free:
            if not group.rmdir():
                group.remove()
