"""The per-sandbox memory + pids cgroup (react_eval.sandboxes.cgroups), v1 or v2."""

from __future__ import annotations

import os

import pytest

from react_eval.sandboxes.cgroups import SandboxCgroup, parse_bytes
from react_eval.sandboxes.local import LocalSandboxConfig, LocalSandboxProvider


@pytest.mark.parametrize("text, value", [("4g", 4 << 30), ("512m", 512 << 20), ("1.5G", 3 << 29), ("2048", 2048),
                                         ("64k", 64 << 10), ("1gb", 1 << 30), (123, 123)])
def test_parse_bytes(text, value):
    assert parse_bytes(text) == value


@pytest.mark.parametrize("bad", ["", "lots", "4x", "-1g"])
def test_parse_bytes_refuses_nonsense(bad):
    with pytest.raises(ValueError, match="not a size"):
        parse_bytes(bad)


def test_config_checks_sizes_and_ro_binds():
    with pytest.raises(ValueError):
        LocalSandboxConfig(memory="much")
    with pytest.raises(ValueError, match="absolute"):
        LocalSandboxConfig(ro_binds=["relative/path"])
    assert LocalSandboxConfig(ro_binds=["/usr/lib/../lib"]).ro_binds == ["/usr/lib"]


def _limit(group: SandboxCgroup, controller: str) -> int:
    for path in group.paths:
        for name in {"pids": ("pids.max",), "memory": ("memory.max", "memory.limit_in_bytes")}[controller]:
            if os.path.exists(os.path.join(path, name)):
                return int(open(os.path.join(path, name)).read())
    raise AssertionError(f"no {controller} limit file in {group.paths}")


@pytest.mark.anyio
async def test_each_sandbox_gets_its_own_capped_cgroup_emptied_on_close(tmp_path):
    provider = LocalSandboxProvider(LocalSandboxConfig(root=str(tmp_path), memory="300m", pids_limit=77))
    sb = await provider.create(None, labels={})
    group = sb.cgroup
    if group is None:
        assert sb.info.extra["memory"] == "unavailable"
        pytest.skip("no cgroup can be created here (needs root or a delegated cgroup v2)")
    try:
        assert sb.info.extra["memory"] == "300m" and sb.info.extra["pids_limit"] == "77"
        assert _limit(group, "memory") == 300 << 20 and _limit(group, "pids") == 77
        r = await sb.exec("echo $$", 10)
        assert int(r.output) in group.pids()  # the shell is a member of every hierarchy
        r = await sb.exec("python3 -c 'b = bytearray(600 << 20); print(len(b))'; echo rc=$?", 60)
        assert "rc=137" in r.output  # killed by the cgroup's OOM killer, not the host's
        other = await provider.create(None, labels={})
        assert other.cgroup.paths != group.paths  # in use: never shared
        await other.close()
    finally:
        await sb.close()
        await provider.aclose()
    assert not any(os.path.exists(p) for p in group.paths + other.cgroup.paths)


@pytest.mark.anyio
async def test_a_closed_sandboxs_cgroup_is_emptied_then_reused_and_removed_with_the_provider(tmp_path):
    provider = LocalSandboxProvider(LocalSandboxConfig(root=str(tmp_path), pids_limit=40))
    sb = await provider.create(None, labels={})
    group = sb.cgroup
    if group is None:
        await sb.close()
        pytest.skip("no cgroup can be created here (needs root or a delegated cgroup v2)")
    try:
        r = await sb.exec("sleep 60 & env -i setsid sleep 61 & nohup sleep 62 >/dev/null 2>&1 & echo started", 10)
        assert r.output.strip() == "started" and len(group.pids()) >= 4
        left = group.pids()
        await sb.close()
        assert group.pids() == [] and all(os.path.isdir(p) for p in group.paths)  # emptied, kept
        for pid in left:
            assert not os.path.exists(f"/proc/{pid}") or b") Z" in open(f"/proc/{pid}/stat", "rb").read()
        again = await provider.create(None, labels={})
        assert again.cgroup is group  # the next sandbox gets the emptied group, limits and all
        assert _limit(group, "pids") == 40
        r = await again.exec("echo $$", 10)
        assert group.pids() == [int(r.output)]  # only the new shell: nothing of the last sandbox
        await again.close()
    finally:
        await provider.aclose()
    assert not any(os.path.exists(p) for p in group.paths)


@pytest.mark.anyio
async def test_a_kept_workdirs_cgroup_is_removed_not_reused(tmp_path):
    provider = LocalSandboxProvider(LocalSandboxConfig(root=str(tmp_path), keep=True))
    sb = await provider.create(None, labels={})
    group = sb.cgroup
    await sb.close()
    if group is None:
        pytest.skip("no cgroup can be created here (needs root or a delegated cgroup v2)")
    assert not any(os.path.exists(p) for p in group.paths)  # its files stay charged to it: not for reuse
    await provider.aclose()


def test_joining_is_probed_once_per_process(monkeypatch):
    from react_eval.sandboxes import cgroups

    first = SandboxCgroup.create("react-eval-probe-a", pids=50, memory=None)
    if first is None:
        pytest.skip("no cgroup can be created here (needs root or a delegated cgroup v2)")
    calls = []
    real = cgroups.subprocess.run
    monkeypatch.setattr(cgroups.subprocess, "run", lambda *a, **k: calls.append(a) or real(*a, **k))
    second = SandboxCgroup.create("react-eval-probe-b", pids=50, memory=None)
    try:
        assert second is not None and second.paths != first.paths
        assert calls == []  # the same roots were joined already: no probe process
    finally:
        first.remove()
        if second is not None:
            second.remove()
    assert not any(os.path.exists(p) for p in first.paths + second.paths)


@pytest.mark.anyio
async def test_groups_wanted_at_once_wait_for_the_first_and_are_made_on_the_loop(monkeypatch):
    """Only the first group of a process may sweep and probe (a worker thread);
    sandboxes created meanwhile wait for it instead of each taking a thread."""
    import anyio

    from react_eval.sandboxes import cgroups

    monkeypatch.setattr(cgroups, "_swept", set())
    monkeypatch.setattr(cgroups, "_joinable", set())  # as in a fresh process
    hops = []
    real = cgroups.anyio.to_thread.run_sync
    monkeypatch.setattr(cgroups.anyio.to_thread, "run_sync", lambda fn, *a, **k: hops.append(fn) or real(fn, *a, **k))
    pool = cgroups.CgroupPool(pids=50, memory=None)
    groups: list = []

    async def one() -> None:
        groups.append(await pool.acquire())

    async with anyio.create_task_group() as tg:
        for _ in range(6):
            tg.start_soon(one)
    try:
        if groups[0] is None:
            pytest.skip("no cgroup can be created here (needs root or a delegated cgroup v2)")
        assert len(hops) == 1  # the first; the five others were made on the loop once it was done
        assert None not in groups and len({g.path for g in groups}) == 6
        assert not cgroups.may_block(pids=50, memory=None)  # a later provider makes its first on the loop too
    finally:
        for g in groups:
            if g is not None:
                g.remove()


@pytest.mark.anyio
async def test_emptying_a_group_awaits_its_members_exits_without_polling(monkeypatch):
    """aempty kills every member and wakes when they are gone (pidfds), not on
    timers; members that are zombies (not reaped by their parent yet) count as gone."""
    import subprocess

    from react_eval.sandboxes import cgroups

    group = SandboxCgroup.create("react-eval-aempty-test", pids=50, memory=None)
    if group is None:
        pytest.skip("no cgroup can be created here (needs root or a delegated cgroup v2)")
    procs = [subprocess.Popen(["sleep", "60"]) for _ in range(3)]
    sleeps: list[float] = []
    real_sleep = cgroups.anyio.sleep
    monkeypatch.setattr(cgroups.anyio, "sleep", lambda d: sleeps.append(d) or real_sleep(d))
    try:
        for p in procs:
            group.join(p.pid)
        assert sorted(group.pids()) == sorted(p.pid for p in procs)
        assert await group.aempty() is True
        assert group.pids() == [] and sleeps == []  # not reaped yet, but out of the group
        assert [p.wait(5) for p in procs] == [-9, -9, -9]
    finally:
        for p in procs:
            p.kill()
            p.wait()
        group.remove()


@pytest.mark.anyio
async def test_everything_the_unjailed_shell_starts_is_in_its_cgroup_and_dies_with_it(tmp_path):
    provider = LocalSandboxProvider(LocalSandboxConfig(root=str(tmp_path), pids_limit=64))
    sb = await provider.create(None, labels={})
    if sb.cgroup is None:
        await sb.close()
        pytest.skip("no cgroup can be created here (needs root or a delegated cgroup v2)")
    group = sb.cgroup
    try:
        assert sb.shell.transport.argv[0] == "bash"  # joined from the harness, no wrapper process
        r = await sb.exec("sleep 60 & setsid sleep 61 & env -i setsid sleep 62 & sleep 0.3; jobs -p | wc -l", 10)
        assert r.output.strip() == "3"
        members = group.pids()
        started = [p for p in members if open(f"/proc/{p}/cmdline", "rb").read().startswith(b"sleep\0")]
        assert len(started) == 3  # the setsid'd and the env -i one too
    finally:
        await sb.close()
    for pid in started:
        assert not os.path.exists(f"/proc/{pid}") or b") Z" in open(f"/proc/{pid}/stat", "rb").read()
    assert group.pids() == []
    await provider.aclose()
    assert not any(os.path.exists(p) for p in group.paths)


@pytest.mark.anyio
async def test_a_shell_that_cannot_join_its_cgroup_is_killed_not_left_running(tmp_path):
    from react_eval.sandboxes.local_shell import LocalShellTransport
    from react_eval.sandboxes.shell import ShellTransportError

    seen: list[int] = []

    def refuse(pid: int) -> None:
        seen.append(pid)
        raise PermissionError(13, "Permission denied", "cgroup.procs")

    transport = LocalShellTransport(["bash", "--noprofile", "--norc", "-s"], cwd=str(tmp_path),
                                    env={"PATH": os.environ["PATH"]}, tag_entry="X=1", join=refuse)
    with pytest.raises(ShellTransportError, match="cgroup"):
        await transport.start()
    assert seen and not os.path.exists(f"/proc/{seen[0]}")  # killed and reaped
    assert transport.pid is None


def _open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def test_a_group_keeps_its_member_lists_open_for_joining_and_closes_them_when_removed():
    import subprocess

    before = _open_fds()
    group = SandboxCgroup.create("react-eval-joinfds", pids=50, memory=None)
    if group is None:
        pytest.skip("no cgroup can be created here (needs root or a delegated cgroup v2)")
    procs = [subprocess.Popen(["sleep", "30"]) for _ in range(2)]
    try:
        group.join(procs[0].pid)
        kept = list(group._joins or [])
        group.join(procs[1].pid)
        assert group._joins == kept and kept  # opened once, written for every join
        assert sorted(group.pids()) == sorted(p.pid for p in procs)
    finally:
        group.remove()  # kills the members, closes the lists, removes the directories
        for p in procs:
            p.wait()
    assert not any(os.path.exists(p) for p in group.paths)
    assert _open_fds() <= before  # nothing left open


@pytest.mark.anyio
async def test_a_kept_group_is_checked_again_only_when_it_may_have_been_swept(tmp_path, monkeypatch):
    from react_eval.sandboxes import cgroups

    provider = LocalSandboxProvider(LocalSandboxConfig(root=str(tmp_path), pids_limit=40))
    sb = await provider.create(None, labels={})
    group = sb.cgroup
    await sb.close()
    if group is None:
        pytest.skip("no cgroup can be created here (needs root or a delegated cgroup v2)")
    try:
        utimes: list[str] = []
        real_utime = os.utime
        monkeypatch.setattr(cgroups.os, "utime", lambda p, *a, **k: utimes.append(p) or real_utime(p, *a, **k))
        assert provider.cgroups.kept == (group,)
        again = await provider.create(None, labels={})
        assert again.cgroup is group  # refreshed a moment ago: no need to look
        await again.close()
        assert utimes == []  # its mtime is fresh: not refreshed at every release
        group.touched -= cgroups.REFRESH_EVERY + 1
        third = await provider.create(None, labels={})
        await third.close()
        assert sorted(utimes) == sorted(group.paths)  # refreshed once it is due
        # idle for longer than a sweep's age: it is looked for, and a removed one is not handed out
        group.touched -= cgroups.TRUSTED_FOR + 1
        group.remove()
        fresh = await provider.create(None, labels={})
        assert fresh.cgroup is not None and fresh.cgroup is not group and fresh.cgroup.exists()
        await fresh.close()
    finally:
        await provider.aclose()
