"""A hostile agent against what a local provider hands from one sandbox to the next, part 2:
what stays charged to a reused cgroup and its limits, the shell pipe's event-loop reader,
the start-up probe sent with a later jail's first command, and forged end-of-command frames.
Part 1 (processes and the workdir) and the helpers are in test_reuse_attacks.py.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

import anyio
import pytest

from react_eval.sandboxes.local import LocalSandbox
from react_eval.types import SandboxError
from tests.sandboxes.test_reuse_attacks import BOTH, ROOT, create, make_provider

pytestmark = pytest.mark.anyio


def charged(sb: LocalSandbox) -> int:
    """Bytes still charged to ``sb``'s memory cgroup (v1 or v2)."""
    for path in sb.cgroup.paths:
        for name in ("memory.usage_in_bytes", "memory.current"):
            if os.path.exists(os.path.join(path, name)):
                with open(os.path.join(path, name)) as f:
                    return int(f.read())
    raise AssertionError(f"no memory cgroup in {sb.cgroup.paths}")


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
