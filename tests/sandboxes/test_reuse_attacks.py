"""A hostile agent against what a local provider hands from one sandbox to the next.

A closed sandbox's emptied cgroup and its empty workdir serve the provider's
next sandbox (react_eval.sandboxes.cgroups / workdirs), and a grading sandbox
comes from the same provider as the rollouts it grades. Each test plays the
agent of one sandbox, as root as CI runs it, unjailed ("none") where the
property is claimed for it and under bwrap, and then looks from the host at
what the next sandbox got: its workdir, its cgroup, the processes left, the
harness' own descriptors.

Covered here and in test_reuse_attacks_harness.py (not in test_workdirs,
test_cgroups or the red-team suites):
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

import errno
import fcntl
import os
import stat
import struct
import subprocess
import tempfile
import time

import anyio
import pytest

from react_eval.sandboxes.local import LocalSandbox, LocalSandboxConfig, LocalSandboxProvider

pytestmark = pytest.mark.anyio

#: the repository (the harness subprocesses of test_reuse_attacks_harness.py import it from here)
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
