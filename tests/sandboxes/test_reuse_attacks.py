"""A hostile agent against what a local provider hands from one sandbox to the next.

A closed sandbox's emptied cgroup and its empty workdir serve the provider's
next sandbox (react_eval.sandboxes.cgroups / workdirs), and a grading sandbox
comes from the same provider as the rollouts it grades. Each test plays the
agent of one sandbox, as root as CI runs it, unjailed ("none") where the
property is claimed for it and under bwrap, and then looks from the host at
what the next sandbox got: its workdir, its cgroup, the processes left, the
harness' own descriptors.

Covered here (not in test_workdirs / test_cgroups / the red-team suites):
processes that double-fork, setsid, clear their environment, ignore every
signal, stop themselves, sleep in the kernel on a FIFO, exit their main thread
or fork while the sandbox closes, each holding the workdir to write into it
later; inode flags (chattr), immutable and append-only workdirs, default ACLs,
setgid and sticky modes, symlinks, hard links, FIFOs and sockets planted in the
workdir; a tree too deep for shutil; memory left charged to the cgroup (tmpfs
files, System V shared memory); the cgroup's limits attacked from inside the
jail; a sandbox closed mid-command and the shell pipe's event-loop reader; a
later jail that cannot start while its first command rides with its start-up
probe; end-of-command frames forged by a command and carried to another sandbox.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import os
import stat
import struct
import subprocess
import sys
import tempfile
import time

import anyio
import pytest

from react_eval.sandboxes.local import LocalSandbox, LocalSandboxConfig, LocalSandboxProvider
from react_eval.types import SandboxError
from tests.sandboxes.test_shell_local import alive

pytestmark = pytest.mark.anyio

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

BOTH = pytest.mark.parametrize("isolation", ["none", "bwrap"])

_FS_IOC_GETFLAGS, _FS_IOC_SETFLAGS = 0x80086601, 0x40086602
#: inode flags the agent tries to leave on its workdir: sync (S), no atime (A), no dump (d)
_AGENT_FLAGS = {"S": 0x8, "A": 0x80, "d": 0x40}


def make_provider(request, tmp_path, isolation: str, **settings) -> LocalSandboxProvider:
    if isolation == "bwrap":
        request.getfixturevalue("bwrap_available")
    root = tmp_path / "root"
    root.mkdir(exist_ok=True)
    return LocalSandboxProvider(LocalSandboxConfig(root=str(root), isolation=isolation, **settings))


async def create(provider: LocalSandboxProvider) -> LocalSandbox:
    sb = await provider.create(None, labels={})
    if sb.cgroup is None:
        await sb.close()
        pytest.skip("no cgroup can be created here (needs root or a delegated cgroup v2)")
    return sb


def flags_of(path: str, directory: bool = True) -> int | None:
    """The inode flags (lsattr) of ``path``, None where the filesystem has none."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | (os.O_DIRECTORY if directory else 0))
    try:
        return struct.unpack("i", fcntl.ioctl(fd, _FS_IOC_GETFLAGS, b"\0" * 8)[:4])[0]
    except OSError as exc:
        if exc.errno in (errno.ENOTTY, errno.EOPNOTSUPP, errno.EINVAL):
            return None
        raise
    finally:
        os.close(fd)


def set_flags_command(names: str) -> str:
    """A command that sets each flag of ``names`` on its cwd, one by one, and prints those that stuck."""
    bits = {n: _AGENT_FLAGS.get(n, {"i": 0x10, "a": 0x20}.get(n)) for n in names}
    return (
        "python3 -c \"import fcntl, os, struct\n"
        "fd = os.open('.', os.O_RDONLY)\n"
        f"for name, bit in {bits!r}.items():\n"
        "    got = struct.unpack('i', fcntl.ioctl(fd, 0x80086601, bytes(8))[:4])[0]\n"
        "    try:\n"
        "        fcntl.ioctl(fd, 0x40086602, struct.pack('i', got | bit) + bytes(4)); print('set', name)\n"
        "    except OSError as e:\n"
        "        print('refused', name, e.errno)\n\""
    )


def running(pid: int) -> bool:
    """Whether any thread of process ``pid`` can still run code: not a zombie (a
    zombie leader may have live threads) and not past the start of its exit
    (PF_EXITING: a dying pid-namespace init waits there for its children to be
    reaped, but has no files or memory left to act with)."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return False
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if fields[0] not in (b"Z", b"X") and not int(fields[6]) & 0x4:  # PF_EXITING
            return True
    return False


def charged(sb: LocalSandbox) -> int:
    """Bytes still charged to ``sb``'s memory cgroup (v1 or v2)."""
    for path in sb.cgroup.paths:
        for name in ("memory.usage_in_bytes", "memory.current"):
            if os.path.exists(os.path.join(path, name)):
                with open(os.path.join(path, name)) as f:
                    return int(f.read())
    raise AssertionError(f"no memory cgroup in {sb.cgroup.paths}")


# ---- processes that try to outlive close and write into the next sandbox ------------------

#: each piece arms a process that, ~1.5 s from now, writes into the workdir it holds
#: (its cwd, or a descriptor of it) -- after the sandbox is closed and its workdir reused;
#: ``{scratch}`` is a directory outside the workdir for their own bookkeeping
_DODGERS = {
    # double fork, new session, every catchable signal ignored
    "ignorer": "python3 -c \"import os, signal, time\n"
               "if os.fork(): os._exit(0)\n"
               "os.setsid()\n"
               "if os.fork(): os._exit(0)\n"
               "for s in range(1, 32):\n"
               "    try: signal.signal(s, signal.SIG_IGN)\n"
               "    except (OSError, ValueError): pass\n"
               "fd = os.open('.', os.O_RDONLY)\n"
               "time.sleep(1.5)\n"
               "os.close(os.open('planted-ignorer', os.O_CREAT | os.O_WRONLY, dir_fd=fd))\n\" "
               ">/dev/null 2>&1 &",
    # holds a descriptor of the workdir, then stops itself (SIGCONT-ed by its sibling later)
    "stopped": "(env -i setsid python3 -c \"import os, signal\n"
               "fd = os.open('.', os.O_RDONLY)\n"
               "open('{scratch}/stopped.pid', 'w').write(str(os.getpid()))\n"
               "os.kill(os.getpid(), signal.SIGSTOP)\n"
               "os.close(os.open('planted-stopped', os.O_CREAT | os.O_WRONLY, dir_fd=fd))\n\" "
               ">/dev/null 2>&1 &) ; (sleep 1.5; kill -CONT $(cat {scratch}/stopped.pid)) >/dev/null 2>&1 &",
    # asleep in the kernel, opening a FIFO nobody writes yet, with the workdir as its cwd
    "fifo": "d={scratch} && mkfifo $d/f && (setsid sh -c \"cat $d/f >/dev/null; echo x > planted-fifo\" "
            ">/dev/null 2>&1 &) ; (sleep 1.5; echo go > $d/f) >/dev/null 2>&1 &",
    # keeps forking short-lived children while the sandbox closes, each meaning to write later
    "forker": "(while :; do (sleep 1.5; echo x > planted-fork-$BASHPID) & sleep 0.02; done) >/dev/null 2>&1 &",
    # its main thread exits (a zombie leader, listed as such) while another thread goes on
    "zombie-leader": "python3 -c \"import ctypes, os, threading, time\n"
                     "fd = os.open('.', os.O_RDONLY)\n"
                     "def later():\n"
                     "    time.sleep(1.5)\n"
                     "    os.close(os.open('planted-thread', os.O_CREAT | os.O_WRONLY, dir_fd=fd))\n"
                     "threading.Thread(target=later).start()\n"
                     "ctypes.CDLL(None).pthread_exit(None)\" >/dev/null 2>&1 &",
    # nohup, no tag in its environment, SIGTERM and SIGHUP ignored
    "nohup": "env -i nohup sh -c 'trap \"\" HUP TERM INT; sleep 1.5; echo x > planted-nohup' >/dev/null 2>&1 &",
}


@BOTH
async def test_processes_that_dodge_the_kill_never_write_into_the_next_sandboxs_workdir(request, tmp_path, isolation):
    provider = make_provider(request, tmp_path, isolation)
    try:
        warm = await create(provider)  # under bwrap the first jail answers at create ...
        await warm.close()
        sb = await create(provider)  # ... so this one's first command goes out with its start-up probe
        started = time.monotonic()
        scratch = "/tmp" if isolation == "bwrap" else tempfile.mkdtemp(dir=tmp_path)  # the jail's /tmp is its own
        r = await sb.exec("\n".join(_DODGERS.values()).format(scratch=scratch) + "\nsleep 0.3; echo armed", 10)
        assert r.output.endswith("armed\n"), r.output
        members = sb.cgroup.pids()
        assert len(members) >= 6, members  # every dodger runs, and is a member of the cgroup
        assert os.listdir(sb.workdir) == []  # nothing written yet: the workdir is kept at close
        inode, group = os.stat(sb.workdir).st_ino, sb.cgroup
        await sb.close()
        for pid in members:
            assert not running(pid), f"{pid} ({open(f'/proc/{pid}/comm').read().strip()}) outlived close"
        nxt = await create(provider)
        assert os.stat(nxt.workdir).st_ino == inode and nxt.cgroup is group  # both were reused
        await anyio.sleep(max(0.0, started + 2.5 - time.monotonic()))  # past every dodger's write
        assert os.listdir(nxt.workdir) == []
        r = await nxt.exec("ls -A; echo end", 10)
        assert r.output == "end\n"
        shell = 1 if isolation == "none" else 3  # bash, or bwrap + the jail's pid 1 + bash
        assert len(nxt.cgroup.pids()) == shell  # nothing of the last sandbox in its group
        await nxt.close()
    finally:
        await provider.aclose()
    leftovers = [os.path.join(d, f) for d, _, files in os.walk(tmp_path) for f in files if f.startswith("planted")]
    assert leftovers == []


# ---- the workdir's inode: flags, ACLs, modes, planted entries --------------------------


@BOTH
async def test_inode_flags_the_agent_sets_on_its_workdir_do_not_reach_the_next_sandbox(request, tmp_path, isolation):
    provider = make_provider(request, tmp_path, isolation)
    fresh = tempfile.mkdtemp(dir=tmp_path / "root")
    baseline = flags_of(fresh)
    os.rmdir(fresh)
    if baseline is None:
        pytest.skip(f"{tmp_path} has no inode flags (lsattr) to set")
    try:
        sb = await create(provider)
        # (unjailed root could set +i and +a as well: tested on their own below)
        r = await sb.exec(set_flags_command("SAdia" if isolation == "bwrap" else "SAd"), 10)
        set_ = {line.split()[1] for line in r.output.splitlines() if line.startswith("set ")}
        assert set_ & set(_AGENT_FLAGS), r.output  # the filesystem took at least one of them
        assert not set_ & {"i", "a"}, r.output  # no CAP_LINUX_IMMUTABLE in the jail
        await sb.close()
        nxt = await create(provider)
        assert flags_of(nxt.workdir) == baseline, (r.output, hex(flags_of(nxt.workdir)), hex(baseline))
        r = await nxt.exec("echo data > f && echo ok", 10)
        assert r.output == "ok\n" and flags_of(os.path.join(nxt.workdir, "f"), directory=False) & 0xC8 == 0
        await nxt.close()
    finally:
        await provider.aclose()


async def test_an_immutable_or_append_only_workdir_is_not_handed_on_and_its_root_keeps_its_mode(request, tmp_path):
    """Unjailed, a root agent may make its workdir immutable (``chattr +i``) or
    append-only: the next sandbox must still get a workdir it can write and
    clean, and removing the refused one must not touch the directory above it."""
    provider = make_provider(request, tmp_path, "none")
    root = tmp_path / "root"
    root.chmod(0o1777)
    if flags_of(str(root)) is None:
        pytest.skip(f"{tmp_path} has no inode flags (lsattr) to set")
    stuck: list[str] = []
    try:
        for flag in "ia":
            sb = await create(provider)
            r = await sb.exec(set_flags_command(flag), 10)
            if r.output.strip() != f"set {flag}":
                pytest.skip(f"cannot set +{flag} here: {r.output}")
            stuck.append(sb.workdir)
            await sb.close()
            nxt = await create(provider)
            r = await nxt.exec("echo data > f && rm f && echo ok", 10)
            assert r.output == "ok\n", (flag, r.output)
            assert stat.S_IMODE(os.stat(root).st_mode) == 0o1777
            await nxt.close()
    finally:
        await provider.aclose()
        for path in stuck:  # the harness cannot remove them; the test does
            if os.path.isdir(path):
                fd = os.open(path, os.O_RDONLY)
                fcntl.ioctl(fd, _FS_IOC_SETFLAGS, struct.pack("i", flags_of(path) & ~0x30) + bytes(4))
                os.close(fd)
                os.rmdir(path)


#: an ACL that gives everyone everything on what is made in the directory (system.posix_acl_default)
_DEFAULT_ACL = "b'\\x02\\0\\0\\0' + b''.join(struct.pack('<HHI', tag, 7, 0xFFFFFFFF) for tag in (1, 4, 0x20))"

_PLANTS = {
    "default-acl": f"python3 -c \"import os, struct; os.setxattr('.', 'system.posix_acl_default', {_DEFAULT_ACL})\"",
    "setgid": "chmod 2700 .",
    "sticky": "chmod 1700 .",
    # (a hard link to a host file: only unjailed, where the canary is on the same filesystem and visible)
    "links": "{{ ln {canary}/secret.txt hard 2>/dev/null || true; }} && "
             "ln -s {canary} link && ln -s {canary}/secret.txt flink && mkfifo fifo && "
             "python3 -c \"import socket; socket.socket(socket.AF_UNIX).bind('sock')\" && "
             "mkdir -p locked/deep && ln -s {canary} locked/deep/l && chmod 000 locked/deep locked",
}


@BOTH
@pytest.mark.parametrize("plant", sorted(_PLANTS))
async def test_what_the_agent_plants_in_its_workdir_reaches_neither_the_host_nor_the_next_sandbox(
        request, tmp_path, isolation, plant):
    canary = tmp_path / "canary"
    canary.mkdir(mode=0o755)
    (canary / "secret.txt").write_text("original\n")
    os.chmod(canary / "secret.txt", 0o644)
    provider = make_provider(request, tmp_path, isolation)
    root_mode = stat.S_IMODE(os.stat(tmp_path / "root").st_mode)
    try:
        sb = await create(provider)
        r = await sb.exec(_PLANTS[plant].format(canary=canary) + " && echo planted", 10)
        assert r.output.endswith("planted\n"), r.output
        if plant == "links" and isolation == "none":
            assert os.stat(canary / "secret.txt").st_nlink == 2  # the hard link is there
        await sb.close()
        assert not os.path.exists(sb.workdir) and provider.workdirs.kept == ()  # removed, not kept
        nxt = await create(provider)
        st = os.stat(nxt.workdir)
        assert os.listdir(nxt.workdir) == [] and stat.S_IMODE(st.st_mode) == 0o700 and st.st_uid == os.geteuid()
        assert os.listxattr(nxt.workdir) == []
        r = await nxt.exec("umask 077; mkdir sub; echo x > f; stat -c '%a %g' sub f", 10)
        gid = os.getegid() if isolation == "none" else 1000
        assert r.output == f"700 {gid}\n600 {gid}\n", r.output  # no inherited ACL, group or sticky bit
        await nxt.close()
    finally:
        await provider.aclose()
    assert sorted(os.listdir(canary)) == ["secret.txt"] and (canary / "secret.txt").read_text() == "original\n"
    assert os.stat(canary / "secret.txt").st_nlink == 1  # a hard link the agent made went with its workdir
    assert stat.S_IMODE(os.stat(canary).st_mode) == 0o755
    assert stat.S_IMODE(os.stat(canary / "secret.txt").st_mode) == 0o644
    assert stat.S_IMODE(os.stat(tmp_path / "root").st_mode) == root_mode and os.listdir(tmp_path / "root") == []


@BOTH
async def test_a_tree_deeper_than_pythons_recursion_limit_is_removed_at_close(request, tmp_path, isolation):
    provider = make_provider(request, tmp_path, isolation)
    try:
        sb = await create(provider)
        r = await sb.exec("python3 -c \"import os\nfor _ in range(1500): os.mkdir('d'); os.chdir('d')\n"
                          "open('bottom', 'w').write('x')\" && echo deep", 30)
        assert r.output == "deep\n", r.output
        group = sb.cgroup
        await sb.close()  # must not raise, nor leave the tree (or the cgroup) behind
        assert not os.path.exists(sb.workdir)
        assert provider.cgroups.kept == (group,) and group.pids() == []
        nxt = await create(provider)
        assert nxt.cgroup is group and os.listdir(nxt.workdir) == []
        await nxt.close()
    finally:
        await provider.aclose()
        if os.listdir(tmp_path / "root"):  # left by a failure: too deep for pytest's own clean-up too
            subprocess.run(["rm", "-rf", "--one-file-system", str(tmp_path / "root")], check=False)
    assert os.listdir(tmp_path / "root") == []
    assert not any(os.path.exists(p) for p in group.paths)


# ---- the cgroup: what is still charged to it, and its limits --------------------------------

_SYSV_SHM = ("python3 -c \"import ctypes\n"
             "libc = ctypes.CDLL(None, use_errno=True); libc.shmat.restype = ctypes.c_void_p\n"
             "n = 100 << 20; sid = libc.shmget(0, ctypes.c_size_t(n), 0o1600); addr = libc.shmat(sid, None, 0)\n"
             "ctypes.memset(addr, 1, n); libc.shmdt(ctypes.c_void_p(addr)); print('shmid', sid)\"")


@BOTH
async def test_memory_a_closed_sandbox_left_charged_does_not_shrink_the_next_sandboxs_cap(request, tmp_path, isolation):
    """Files in a tmpfs (/dev/shm, a tmpfs /tmp) and System V shared memory
    outlive their processes and stay charged to the cgroup that made them; the
    next sandbox must still get its whole memory cap (here a grader that needs 200 MB of 300)."""
    name = f"react-eval-reuse-{os.getpid()}-{time.monotonic_ns()}"
    provider = make_provider(request, tmp_path, isolation, memory="300m")
    shmids: list[int] = []
    try:
        sb = await create(provider)
        r = await sb.exec(f"head -c 100M /dev/zero > /dev/shm/{name} && {_SYSV_SHM}", 30)
        shmids += [int(line.split()[1]) for line in r.output.splitlines() if line.startswith("shmid ")]
        assert shmids and charged(sb) >= 190 << 20, r.output
        await sb.close()
        nxt = await create(provider)
        assert charged(nxt) <= (300 << 20) // 16
        r = await nxt.exec("python3 -c 'print(len(bytearray(200 << 20)))'", 30)
        assert r.output == f"{200 << 20}\n", r.output
        await nxt.close()
    finally:
        await provider.aclose()
        if isolation == "none":  # unjailed they are the host's: the test removes them
            if os.path.exists(f"/dev/shm/{name}"):
                os.unlink(f"/dev/shm/{name}")
            for sid in shmids:
                os.system(f"ipcrm -m {sid} 2>/dev/null")


#: a harness under an init that never reaps (a container whose pid 1 is the harness
#: itself, or a shell): sandboxes one after another, each leaving one dead process
#: behind (under bwrap the jail's own init; unjailed a ``setsid`` orphan), then one
#: sandbox that starts 12 processes at once; prints what it saw
_UNREAPED = """
import anyio, ctypes, sys
from react_eval.sandboxes.local import LocalSandboxConfig, LocalSandboxProvider
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER: orphans come here, and are never reaped

async def main():
    provider = LocalSandboxProvider(LocalSandboxConfig(root=sys.argv[1], isolation=sys.argv[2], pids_limit=24))
    try:
        groups = set()
        for _ in range(12):
            sb = await provider.create(None, labels={})
            groups.add(id(sb.cgroup))
            await sb.exec("(setsid sleep 60 &); echo ok", 10)
            await sb.close()
        sb = await provider.create(None, labels={})
        r = await sb.exec("python3 -c \\"import subprocess\\n"
                          "ps = [subprocess.Popen(['sleep', '0.5']) for _ in range(12)]\\n"
                          "print('started', sum(p.wait() == 0 for p in ps))\\"", 20)
        print(r.output.strip().splitlines()[-1], "groups", len(groups))
        await sb.close()
    finally:
        await provider.aclose()

anyio.run(main)
"""


@BOTH
async def test_dead_processes_nobody_reaps_do_not_pile_up_in_a_reused_cgroup(request, tmp_path, isolation):
    """Each dead process stays charged to its cgroup's process cap until its
    parent (here an init that never reaps) reaps it; handed from sandbox to
    sandbox, a group would collect them until no sandbox can fork."""
    if isolation == "bwrap":
        request.getfixturevalue("bwrap_available")
    (tmp_path / "root").mkdir()
    proc = subprocess.run([sys.executable, "-c", _UNREAPED, str(tmp_path / "root"), isolation],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": ROOT})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("started 12 groups "), proc.stdout + proc.stderr[-2000:]


async def test_a_jailed_agent_cannot_change_the_limits_its_cgroup_carries_to_the_next_sandbox(request, tmp_path):
    """The agent looks for its cgroup's limit files anywhere it can reach (and
    tries to mount cgroupfs) to raise them for whoever gets the group next.
    It only ever aims at its own group, with raised values, so that even a
    broken jail leaves every other cgroup of the host as it was."""
    provider = make_provider(request, tmp_path, "bwrap", pids_limit=48)  # (searching / charges the group a little)
    try:
        sb = await create(provider)
        group = sb.cgroup
        name = os.path.basename(group.path)
        before = {os.path.join(p, n): open(os.path.join(p, n)).read() for p in group.paths for n in os.listdir(p)
                  if n in ("pids.max", "memory.limit_in_bytes", "memory.max", "memory.memsw.limit_in_bytes")}
        assert len(before) >= 2, before
        r = await sb.exec(
            "for m in 'cgroup -o pids' 'cgroup -o memory' cgroup2; do mkdir -p /tmp/cg && "
            "mount -t $m none /tmp/cg 2>/dev/null && echo MOUNTED $m; done; "
            f"files=$(find / -path /proc -prune -o -path '*/{name}/*' \\( -name pids.max -o "
            "-name 'memory.*limit_in_bytes' -o -name memory.max \\) -print 2>/dev/null); "
            "for f in $files $files; do case $f in *pids.max) v=4096;; *) v=8589934592;; esac; "  # memsw before memory
            "echo $v > $f 2>/dev/null && echo WROTE $f; done; "
            "ls /sys/fs/cgroup 2>&1 | head -3; cat /proc/self/cgroup | head -3; echo end", 20)
        assert "MOUNTED" not in r.output and "WROTE" not in r.output and r.output.endswith("end\n"), r.output
        await sb.close()
        nxt = await create(provider)
        assert nxt.cgroup is group
        assert {path: open(path).read() for path in before} == before
        await nxt.close()
    finally:
        await provider.aclose()


# ---- the harness' side: the shell's pipe, the start-up probe -----------------------------------


@BOTH
async def test_a_sandbox_closed_mid_command_leaves_no_reader_on_the_pipe_the_next_sandbox_gets(
        request, tmp_path, isolation):
    """The shell's pipe stays registered with the event loop between reads: once
    its sandbox closes under a running command, the descriptor number (reused by
    the next sandbox's pipe at once) must be the next sandbox's alone."""
    provider = make_provider(request, tmp_path, isolation)
    loop = asyncio.get_running_loop()
    try:
        sb = await create(provider)
        await sb.exec("echo warm", 5)
        old = sb.shell.transport._out
        failed: list[BaseException] = []

        async def long_command() -> None:
            try:
                await sb.exec("yes | head -c 100000; sleep 30", 60)
            except SandboxError as exc:
                failed.append(exc)

        async with anyio.create_task_group() as tg:
            tg.start_soon(long_command)
            await anyio.sleep(0.5)
            await sb.close()
        assert failed and "closed" in str(failed[0])
        boxes = [await create(provider) for _ in range(2)]
        fds = {b.shell.transport._out for b in boxes}
        for b in boxes:
            r = await b.exec("head -c 300000 /dev/zero | tr '\\0' x; echo; echo $((6*7))", 10)
            assert r.output == "x" * 300000 + "\n42\n" and r.exit_code == 0
        for fd in fds | {old}:
            reader = _registered(loop, fd)
            assert reader is None or any(reader is b.shell.transport._reader for b in boxes), (fd, reader)
        for b in boxes:
            await b.close()
    finally:
        await provider.aclose()


def _registered(loop: asyncio.AbstractEventLoop, fd: int):
    """The FdReader whose callback the loop runs when ``fd`` is readable, if any."""
    try:
        key = loop._selector.get_key(fd)  # type: ignore[attr-defined]
    except (KeyError, ValueError):
        return None
    handle = key.data[0]
    return getattr(getattr(handle, "_callback", None), "__self__", handle) if handle is not None else None


async def test_a_later_jail_that_cannot_start_never_runs_its_first_command_anywhere(request, tmp_path, monkeypatch):
    """After the provider's first jail answered at create, a new jail's first
    command is sent together with its start-up probe, before any answer: when
    that jail cannot start, the command must run neither on the host nor in a
    shell outside the jail, and the sandbox closes clean."""
    from react_eval.sandboxes import local as local_mod

    provider = make_provider(request, tmp_path, "bwrap")
    canary = tmp_path / "ran-on-the-host"
    try:
        first = await create(provider)
        await first.close()
        real = local_mod.bwrap_argv
        # a jail whose bwrap refuses its command line after starting: nothing behind it reads stdin
        monkeypatch.setattr(local_mod, "bwrap_argv", lambda argv, **kw: [*real(argv, **kw)[:1], "--no-such-flag",
                                                                          *real(argv, **kw)[1:]])
        sb = await create(provider)
        assert sb.shell.answer_with_first_call
        sb.shell.start_timeout = 5
        with pytest.raises(SandboxError, match="shell"):
            await sb.exec(f"touch {canary}; echo RAN", 5)
        assert not canary.exists()
        group = sb.cgroup
        await sb.close()
        assert group.pids() == []
        monkeypatch.setattr(local_mod, "bwrap_argv", real)
        nxt = await create(provider)
        r = await nxt.exec(f"touch {canary} 2>&1; id -u; echo $$", 5)
        assert r.output.splitlines()[-2:] == ["1000", "2"] and not canary.exists()  # jailed: the host path is not there
        await nxt.close()
    finally:
        await provider.aclose()


#: prints, for the calling shell, an end-of-command frame with status 0 for call ``$1``: the
#: nonce is read back from the frame's own function (``declare -f``), as any command can
_FORGE = ("read -r _ _ _ a b _ <<< \"$(declare -f __re_end | grep printf)\"; "
          "printf '\\037%s%s:%s:%d:%s\\036%s%s' $a $b SEQ 0 \"$PWD\" $b $a")


@BOTH
async def test_a_forged_end_of_command_frame_is_plain_output_in_the_next_sandbox(request, tmp_path, isolation):
    """A command can rebuild its own shell's end-of-command frame (the nonce is in
    the shell's function that prints it) and end its own call early, which gains
    it nothing a background job would not. Carried to another sandbox (in a file of
    the repository or a patch, which graders read), such a frame must be output like
    any other: each shell has its own nonce."""
    provider = make_provider(request, tmp_path, isolation)
    try:
        sb = await create(provider)
        await sb.exec("true", 5)
        r = await sb.exec(_FORGE.replace("SEQ", str(sb.shell._seq + 1)) + "; echo after-the-forged-end; false", 5)
        assert (r.exit_code, r.output) == (0, "")  # its own call: ended early, as the command wanted
        forged = (await sb.exec(_FORGE.replace("SEQ", "3") + " > frame.bin; echo ok", 5)).output
        assert forged.endswith("ok\n")
        data = await sb.read_file("frame.bin")
        assert b"\x1f" in data and b"\x1e" in data
        await sb.close()
        nxt = await create(provider)
        await nxt.write_file("carried.bin", data)  # as a repository or a patch would carry it
        await nxt.exec("true", 5)
        assert nxt.shell._seq + 1 == 3  # the very call the frame names
        r = await nxt.exec("cat carried.bin; echo; echo real-end; exit 5", 5)
        assert r.exit_code == 5 and r.output.endswith("real-end\n") and "\x1f" in r.output, r
        await nxt.close()
    finally:
        await provider.aclose()
