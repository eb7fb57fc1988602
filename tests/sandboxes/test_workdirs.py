"""A local provider's workdirs (react_eval.sandboxes.workdirs): an empty one is
renamed for the next sandbox, anything a sandbox changed is removed instead."""

from __future__ import annotations

import os
import stat

import pytest

from react_eval.sandboxes.local import LocalSandboxConfig, LocalSandboxProvider
from react_eval.sandboxes.workdirs import WorkdirPool

pytestmark = pytest.mark.anyio

# installed by sandboxes/ensure_bwrap.sh when missing (the bwrap_available fixture); skipped only when it cannot be had
needs_bwrap = pytest.mark.usefixtures("bwrap_available")


async def _closed_workdir(provider: LocalSandboxProvider, command: str) -> tuple[str, int]:
    sb = await provider.create(None, labels={"task_id": "first"})
    if sb.cgroup is None:
        await sb.close()
        pytest.skip("no cgroup can be created here (needs root or a delegated cgroup v2)")
    ino = os.stat(sb.workdir).st_ino
    r = await sb.exec(command, 10)
    assert r.exit_code == 0, r.output
    await sb.close()
    return sb.workdir, ino


async def test_an_empty_workdir_is_renamed_for_the_next_sandbox_and_removed_with_the_provider(tmp_path):
    provider = LocalSandboxProvider(LocalSandboxConfig(root=str(tmp_path)))
    try:
        old, ino = await _closed_workdir(provider, "touch a b; mkdir d; rm -r a b d; sleep 60 &")
        assert provider.workdirs.kept == (old,)
        nxt = await provider.create(None, labels={"task_id": "second"})
        assert os.stat(nxt.workdir).st_ino == ino and nxt.workdir != old and not os.path.exists(old)
        assert os.path.basename(nxt.workdir).startswith("react-eval-second-")  # a fresh name, this task's hint
        assert os.listdir(nxt.workdir) == [] and stat.S_IMODE(os.stat(nxt.workdir).st_mode) == 0o700
        r = await nxt.exec("pwd; ls -A | wc -l", 10)
        assert r.output == f"{nxt.workdir}\n0\n"
        await nxt.close()
    finally:
        await provider.aclose()
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("command", ["echo left > file", "chmod 755 .", "mkdir sub",
                                     "python3 -c \"import os; os.setxattr('.', 'user.mark', b'1')\""])
async def test_a_workdir_the_sandbox_left_changed_is_removed_not_reused(tmp_path, command):
    provider = LocalSandboxProvider(LocalSandboxConfig(root=str(tmp_path)))
    try:
        old, ino = await _closed_workdir(provider, command)
        assert provider.workdirs.kept == () and not os.path.exists(old)
        nxt = await provider.create(None, labels={})
        assert os.listdir(nxt.workdir) == [] and stat.S_IMODE(os.stat(nxt.workdir).st_mode) == 0o700
        await nxt.close()
    finally:
        await provider.aclose()


async def test_without_a_cgroup_no_workdir_is_reused(tmp_path):
    # a process that left the session and cleared its environment may outlive such a sandbox
    provider = LocalSandboxProvider(LocalSandboxConfig(root=str(tmp_path), pids_limit=None, memory=None))
    try:
        sb = await provider.create(None, labels={})
        await sb.close()
        assert provider.workdirs.kept == () and not os.path.exists(sb.workdir)
    finally:
        await provider.aclose()


@needs_bwrap
async def test_a_jailed_agent_cannot_reach_the_next_sandbox_through_a_reused_workdir(tmp_path):
    provider = LocalSandboxProvider(LocalSandboxConfig(root=str(tmp_path), isolation="bwrap"))
    try:
        # a background job keeps its cwd (the workdir) and waits to write into whatever comes next
        old, ino = await _closed_workdir(
            provider, "(cd . && sleep 1; echo planted > planted.txt) >/dev/null 2>&1 & setsid sleep 60 & echo ok")
        nxt = await provider.create(None, labels={})
        assert os.stat(nxt.workdir).st_ino == ino  # reused: every process of the first sandbox is dead
        r = await nxt.exec("sleep 1.5; ls -A", 10)
        assert r.output == "" and os.listdir(nxt.workdir) == []
        await nxt.close()
    finally:
        await provider.aclose()


def test_a_kept_directory_replaced_behind_the_pools_back_is_not_handed_out(tmp_path):
    pool = WorkdirPool()
    first = pool.make(str(tmp_path), "w-")
    assert pool.keep(first)
    os.rmdir(first)
    os.mkdir(first)  # another directory under the same name
    nxt = pool.make(str(tmp_path), "w-")
    assert nxt != first and os.path.isdir(nxt) and os.path.isdir(first)  # a new one; the stranger is left alone
    assert not pool.keep(str(tmp_path / "missing"))
