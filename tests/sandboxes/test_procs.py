"""Finding a sandbox's processes (react_eval.sandboxes.procs): through its cgroup
when it has one, else by a /proc scan that runs off the event loop."""

from __future__ import annotations

import os
import subprocess
import threading

import anyio
import pytest

from react_eval.sandboxes import procs
from react_eval.sandboxes.local import LocalSandboxConfig, LocalSandboxProvider

pytestmark = pytest.mark.anyio


def _alive(pid: int) -> bool:
    st = procs._proc_stat(pid)
    return st is not None and st[0] not in ("Z", "X")


async def _dead(pid: int) -> bool:
    for _ in range(200):
        if not _alive(pid):
            return True
        await anyio.sleep(0.02)
    return False


def test_among_restricts_the_candidates():
    p = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        assert procs.find_processes(session=p.pid) == [p.pid]
        assert procs.find_processes(session=p.pid, among=[p.pid]) == [p.pid]
        assert procs.find_processes(session=p.pid, among=[]) == []
        assert procs.find_processes(session=p.pid, among=[os.getpid(), 1]) == []
    finally:
        p.kill()
        p.wait()


async def test_scan_without_members_runs_in_a_worker_thread(monkeypatch):
    p = subprocess.Popen(["sleep", "30"], start_new_session=True)
    threads = []
    real = procs.find_processes

    def spy(**match):
        threads.append(threading.current_thread() is threading.main_thread())
        return real(**match)

    monkeypatch.setattr(procs, "find_processes", spy)
    try:
        await procs.kill_processes(session=p.pid)
        assert await _dead(p.pid)
    finally:
        p.kill()
        p.wait()
    assert threads and not any(threads)  # every scan off the event loop's thread


async def test_a_sandbox_with_a_cgroup_never_scans_the_host(tmp_path, monkeypatch):
    provider = LocalSandboxProvider(LocalSandboxConfig(root=str(tmp_path)))
    sb = await provider.create(None, labels={})
    if sb.cgroup is None:
        await sb.close()
        pytest.skip("no cgroup can be created here (needs root or a delegated cgroup v2)")
    scans = []
    real = procs.find_processes

    def spy(**match):
        scans.append(match.get("among") is not None)
        return real(**match)

    monkeypatch.setattr(procs, "find_processes", spy)
    try:
        # a timed-out command's children (one left the session) are killed, the shell is spared
        r = await sb.exec("sleep 97 & echo $!; setsid sleep 98 & echo $!; sleep 99", 1)
        assert r.timed_out
        kids = [int(x) for x in r.output.split()[:2]]
        assert all([await _dead(pid) for pid in kids]), kids
        assert (await sb.exec("echo still here", 5)).output.strip() == "still here"
        # run(): a background job in its own process group is killed when bash exits
        r = await sb.run("set -m; sleep 96 >/dev/null 2>&1 & echo $!", 5)
        assert await _dead(int(r.output))
        # close(): everything left (env cleared and out of the session) dies
        r = await sb.exec("(env -i setsid sleep 95 >/dev/null 2>&1 & echo $!)", 5)
        stray = int(r.output)
        await anyio.sleep(0.05)
        assert _alive(stray)
    finally:
        await sb.close()
    assert await _dead(stray)
    assert scans and all(scans)  # only the cgroup's members were ever looked at
