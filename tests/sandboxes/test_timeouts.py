"""Whole-command timeouts in every sandbox (local, bwrap, Docker).

A timed-out call must stop everything it started -- the rest of the command
(the shell's own builtins), its children and their trees, background jobs,
``nohup`` and ``setsid`` escapes, a process that also cleared its environment
-- while the shell keeps its state and the jobs of earlier calls live on.
Checked on the host's process table (bwrap's and Docker's processes are
visible there) and in the workdir, through ``Sandbox.exec`` and through the
bash tool.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import anyio
import pytest

from react_eval.sandboxes.local import LocalSandboxConfig, LocalSandboxProvider
from react_eval.tools.sandbox_tools import SandboxToolBackend
from tests.sandboxes.test_docker import provider_for, run_id  # noqa: F401 (run_id: a fixture)
from tests.sandboxes.test_tool_suite import host_processes

pytestmark = pytest.mark.anyio

#: "local-nocgroup": the local sandbox as a user who may not create cgroups runs it
KINDS = ["local", "local-nocgroup", "bwrap", "docker"]


@pytest.fixture(params=KINDS)
async def sandbox(request, tmp_path) -> AsyncIterator:
    kind = request.param
    if kind == "docker":
        request.getfixturevalue("docker_engine")
        provider = provider_for(request.getfixturevalue("run_id"), pids_limit=300, memory="512m")
    else:
        if kind == "bwrap":
            request.getfixturevalue("bwrap_available")
        caps = {"pids_limit": None, "memory": None} if kind == "local-nocgroup" else {}
        provider = LocalSandboxProvider(
            LocalSandboxConfig(root=str(tmp_path), isolation="bwrap" if kind == "bwrap" else "none", **caps)
        )
    sb = await provider.create(None, labels={"react-eval.rollout": f"timeouts-{kind}"})
    sb.kind = kind
    try:
        yield sb
    finally:
        await provider.aclose()


def escapes_caught(sb) -> bool:
    """Whether a process that left the session AND cleared its environment is
    caught: always in a container or a pid namespace; on the bare host only
    when the sandbox has its own cgroup (root, as CI runs)."""
    return not sb.kind.startswith("local") or sb.cgroup is not None


async def until(check, within: float = 5.0) -> bool:
    with anyio.move_on_after(within):
        while not check():
            await anyio.sleep(0.05)
        return True
    return False


async def test_the_rest_of_a_timed_out_command_never_runs(sandbox):
    r = await sandbox.exec("mkdir -p w && cd w && export KEPT=yes && f() { echo fn; }", 10)
    assert r.exit_code == 0, r.output
    r = await sandbox.exec("sleep 3; echo LATE > late.txt", 1)
    assert r.timed_out and r.exit_code is None
    await anyio.sleep(3)  # past the point where the rest of the command would have run
    assert not (await sandbox.stat("w/late.txt")).exists
    r = await sandbox.exec("ls -A; echo \"$KEPT\"; f; basename \"$PWD\"", 10)
    assert r.output == "yes\nfn\nw\n" and r.exit_code == 0 and r.note is None, "the shell keeps its state"


async def test_the_rest_of_a_function_and_a_loop_are_skipped_too(sandbox):
    r = await sandbox.exec(
        "g() { sleep 3; echo G > g.txt; }; for i in 1 2; do g; echo L$i > loop$i.txt; done; echo END > end.txt", 1
    )
    assert r.timed_out
    await anyio.sleep(3)
    r = await sandbox.exec("ls -A; echo done", 10)
    assert r.output == "done\n", "nothing after the killed sleep ran"


async def test_children_trees_background_jobs_and_setsid_escapes_are_killed(sandbox):
    n = f"{secrets.randbelow(10**6):06d}"
    r = await sandbox.exec(f"sleep 6{n} & echo started", 10)  # an earlier call's job: not the timed-out command
    assert r.output == "started\n"
    await anyio.sleep(0.05)  # /proc start times have 10 ms resolution: a job of the same tick counts as the command's
    command = (
        f"sleep 1{n} & "  # a background job
        f"nohup sleep 5{n} >/dev/null 2>&1 & "
        f"setsid sleep 2{n} & "  # a new session, still tagged
        f"bash -c 'bash -c \"sleep 3{n} & wait\" & wait' & "  # a tree of children
        f"env -i setsid sh -c 'exec sleep 4{n}' & "  # a new session and no environment
        f"sleep 7{n}; echo LATE > late.txt"  # the foreground process
    )
    names = [f"sleep {i}{n}" for i in (1, 2, 3, 4, 5, 7)]
    result = {}

    async def call() -> None:
        result["r"] = await sandbox.exec(command, 6)

    async with anyio.create_task_group() as tg:
        tg.start_soon(call)
        # the positive control: every one of them runs before the timeout
        running = await until(lambda: all(host_processes(name) for name in names), within=5.5)
    assert running, [name for name in names if not host_processes(name)]
    assert result["r"].timed_out
    expected_dead = names if escapes_caught(sandbox) else [x for x in names if x != f"sleep 4{n}"]
    assert await until(lambda: not any(host_processes(name) for name in expected_dead), within=3), [
        name for name in expected_dead if host_processes(name)
    ]
    assert host_processes(f"sleep 6{n}"), "a background job of an earlier call survives the timeout"
    assert not (await sandbox.stat("late.txt")).exists
    r = await sandbox.exec("echo next", 10)
    assert r.output == "next\n" and r.exit_code == 0


async def test_a_busy_builtin_loop_is_stopped_by_restarting_the_shell_in_its_cwd(sandbox):
    await sandbox.exec("mkdir -p loop && cd loop", 10)
    r = await sandbox.exec("while :; do :; done; echo LATE > late.txt", 1)
    assert r.timed_out and r.note and "restarted" in r.note
    r = await sandbox.exec("basename \"$PWD\"; ls -A", 10)
    assert r.output == "loop\n", "the new shell starts in the last cwd; the rest never ran"


async def test_the_bash_tool_with_a_timeout_stops_the_whole_command(sandbox):
    tools = SandboxToolBackend(sandbox)
    n = f"{secrets.randbelow(10**6):06d}"
    r = await tools.call("bash", {"command": f"setsid sleep 8{n} & sleep 3; echo LATE > late.txt"}, timeout=1)
    assert r.error_kind == "timeout" and "timed out after 1s" in r.content
    await anyio.sleep(3)
    assert not host_processes(f"sleep 8{n}")
    r = await tools.call("bash", {"command": "ls -A; echo ok"}, timeout=10)
    assert r.content == "ok\n" and r.error_kind is None


async def test_close_kills_every_process_the_sandbox_started(sandbox):
    n = f"{secrets.randbelow(10**6):06d}"
    r = await sandbox.exec(f"sleep 1{n} & nohup sleep 2{n} >/dev/null 2>&1 & setsid sleep 3{n} & echo started", 10)
    assert r.output == "started\n"
    names = [f"sleep {i}{n}" for i in (1, 2, 3)]
    assert await until(lambda: all(host_processes(name) for name in names))
    await sandbox.close()
    assert await until(lambda: not any(host_processes(name) for name in names)), [
        name for name in names if host_processes(name)
    ]
