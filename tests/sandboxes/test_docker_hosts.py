"""Several Docker engines behind one sandbox provider: placement on the
least-loaded engine within per-host limits, cleanup on each, and a whole run in
which one engine goes away mid-run -- its rollouts become infrastructure errors,
the rest go to the engine that is up, and ``--retry-errors`` completes the run
with every (task, repeat) exactly once.

Both engines are private dockerds of this module (each in its own network
namespace, with its own socket, data root and exec root; see
tests/support/private_dockerd.py), loaded with the sandbox image from the shared
engine, which is left as it was."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator

import anyio
import pytest

from react_eval.sandboxes.docker import DockerSandboxConfig, DockerSandboxProvider, prune_containers
from react_eval.types import INFRA_ERROR_KINDS, SandboxError
from tests.reliability.bench import task, task_of, write_tasks
from tests.reliability.harness import (REPO, cli, cli_started, config, last_output, marked_processes, new_marker,
                                      wait_for, write_yaml)
from tests.support.private_dockerd import PrivateDockerd, host_processes, shared_engine_pid, start_private_engine
from tests.support.scripted_server import ScriptedServer, answer, tool_call

pytestmark = [pytest.mark.docker]


@pytest.fixture(scope="module")
def engines(docker_engine: str, tmp_path_factory) -> Iterator[list[PrivateDockerd]]:
    """Two private engines with the sandbox image."""
    started: list[PrivateDockerd] = []
    try:
        for _ in range(2):
            engine = start_private_engine(tmp_path_factory)
            started.append(engine)
            engine.load_image(docker_engine)
        yield started
    finally:
        for engine in started:
            engine.close()


def containers_of(engine: PrivateDockerd, run_id: str) -> list[str]:
    out = engine.docker("ps", "-aq", "--filter", f"label=react-eval.run={run_id}")
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def provider(run_id: str, **config) -> DockerSandboxProvider:
    return DockerSandboxProvider(DockerSandboxConfig(memory="256m", cpus=1, **config), run_id=run_id)


# ---- placement and cleanup ---------------------------------------------------------------


@pytest.mark.anyio
async def test_sandboxes_go_to_the_least_loaded_engine_within_its_limit(engines):
    a, b = engines
    run_id = f"hosts-{uuid.uuid4().hex[:8]}"
    p = provider(run_id, hosts=[{"url": a.host, "max_containers": 1}, b.host], max_containers_per_host=2)
    try:
        boxes = [await p.create(None, labels={}) for _ in range(3)]
        where = [box.info.extra["docker_host"] for box in boxes]
        assert sorted(where) == sorted([a.host, b.host, b.host])  # A holds 1 at most, B 2
        assert len(containers_of(a, run_id)) == 1 and len(containers_of(b, run_id)) == 2
        # each sandbox really runs on the engine it names
        for box in boxes:
            engine = a if box.info.extra["docker_host"] == a.host else b
            assert box.container_id in engine.docker("ps", "-q", "--no-trunc").stdout
            assert (await box.exec("echo ok", 10)).output == "ok\n"

        # every engine is full: a fourth waits until one closes, then takes its place
        fourth: list = []

        async def create_fourth() -> None:
            fourth.append(await p.create(None, labels={}))

        async with anyio.create_task_group() as tg:
            tg.start_soon(create_fourth)
            await anyio.sleep(1.5)
            assert fourth == []  # still waiting for room
            await boxes[where.index(a.host)].close()
        assert fourth[0].info.extra["docker_host"] == a.host
        assert len(containers_of(a, run_id)) == 1
    finally:
        await p.aclose()
    assert containers_of(a, run_id) == [] and containers_of(b, run_id) == []


def test_prune_removes_leftovers_on_every_engine(engines):
    a, b = engines
    run_id = f"hosts-{uuid.uuid4().hex[:8]}"
    for engine in (a, b, b):
        made = engine.docker("create", "--label", f"react-eval.run={run_id}", "--label", "react-eval.rollout=left",
                             "react-eval-sandbox:latest", "sleep", "infinity")
        assert made.returncode == 0, made.stderr
    listed = prune_containers(run_id=run_id, dry_run=True, hosts=[a.host, b.host])
    assert sorted(c.host for c in listed) == sorted([a.host, b.host, b.host]) and not any(c.removed for c in listed)
    proc = subprocess.run([sys.executable, "-m", "react_eval.cli", "sandbox", "prune", "--run", run_id,
                           "--docker-host", a.host, "--docker-host", b.host], capture_output=True, text=True,
                          cwd=REPO, timeout=120)
    assert proc.returncode == 0 and "3 container(s) removed" in proc.stderr, proc.stdout + proc.stderr
    assert containers_of(a, run_id) == [] and containers_of(b, run_id) == []


def test_hosts_config_is_checked():
    with pytest.raises(ValueError, match="either docker_host or hosts"):
        DockerSandboxConfig(docker_host="unix:///a.sock", hosts=["unix:///b.sock"])
    with pytest.raises(ValueError, match="not a Docker engine address"):
        DockerSandboxConfig(hosts=["/var/run/docker.sock"])
    with pytest.raises(ValueError, match="both cert and key"):
        DockerSandboxConfig(hosts=[{"url": "tcp://10.0.0.2:2376", "tls": {"cert": "c.pem"}}])
    cfg = DockerSandboxConfig(hosts=["unix:///a.sock", {"url": "tcp://h:2376", "max_containers": 3,
                                                        "tls": {"ca": "ca.pem", "cert": "c", "key": "k"}}],
                              max_containers_per_host=5)
    assert [(h.url, h.max_containers) for h in cfg.engines()] == [("unix:///a.sock", 5), ("tcp://h:2376", 3)]


# ---- an engine goes away mid-run ----------------------------------------------------------


def test_an_engine_killed_mid_run_fails_only_its_rollouts_and_retry_errors_reruns_them_on_the_other(
        engines, tmp_path):
    """Ten rollouts, four at once, over engines A and B. The first two that land
    on B start a long command; then B is stopped for good. Those two end as
    ``sandbox_error`` and every later rollout runs on A; the run completes.
    ``--retry-errors`` (B still down) re-runs exactly those two, on A. Then every
    task has one row, scored 1, and no container of the run is left on A; B's
    stopped leftovers are pruned once B is back."""
    a, b = engines
    shared_pid = shared_engine_pid()
    had_bridge = os.path.exists("/sys/class/net/docker0")
    needle = f"4000.{uuid.uuid4().int % 10**6:06d}"
    ids = [f"t{i}" for i in range(10)]
    lock = threading.Lock()
    where: dict[str, list[str]] = {t: [] for t in ids}  # engine of each attempt, in order
    victims: list[str] = []
    state = {"killed": False}

    def engine_of(output: str) -> str:
        for name, engine in (("A", a), ("B", b)):
            if str(engine.root) in output:
                return name
        raise AssertionError(f"no engine root in {output!r}")

    def policy(req):
        tid = task_of(req.first_user_text)
        if req.turn == 0:  # the data root of the engine, from the container's root mount
            return tool_call("bash", {"command": "head -1 /proc/self/mountinfo"})
        if req.turn == 1:
            name = engine_of(last_output(req))
            with lock:
                where[tid].append(name)
                victim = name == "B" and not state["killed"] and len(victims) < 2
                if victim:
                    victims.append(tid)
            if victim:
                return tool_call("bash", {"command": f"sleep {needle}; echo never"})
            return tool_call("bash", {"command": f"echo tok-{tid}"})
        return answer(f"ANSWER: {last_output(req).strip()}")

    tasks = write_tasks(tmp_path / "tasks.json", [task(t, f"tok-{t}") for t in ids])
    marker = new_marker()
    out = tmp_path / "out" / "reliability"
    with ScriptedServer(policy, strict=False) as srv:
        data = config(srv.base_url, tasks, marker=marker, max_concurrent=4, out=tmp_path / "out",
                      sandbox={"type": "docker", "memory": "256m", "cpus": 1, "hosts": [a.host, b.host]},
                      solver={"tool_timeout": 600})
        cfg = write_yaml(tmp_path / "eval.yaml", data)
        child = cli_started("run", "--config", str(cfg), "--no-progress")
        try:
            assert wait_for(lambda: len(host_processes(needle)) == 2, within=180), \
                f"two rollouts on B are not running their long command (placed: {where})"
            b.stop()  # SIGTERM, and it stays down: its containers stop, its socket goes
            with lock:
                state["killed"] = True
            stdout, stderr = child.communicate(timeout=600)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
        assert child.returncode == 0, stdout + stderr  # 2 of 10 infrastructure failures: measured, not fatal
        rows = {json.loads(line)["task_id"]: json.loads(line) for line in
                out.joinpath("results.jsonl").read_text().splitlines()}
        assert sorted(rows) == ids
        assert len(victims) == 2
        for tid in ids:
            if tid in victims:
                assert rows[tid]["error_kind"] == "sandbox_error" and rows[tid]["reward"] is None, rows[tid]
                assert rows[tid]["error_kind"] in {k.value for k in INFRA_ERROR_KINDS}
            else:
                assert rows[tid]["reward"] == 1.0 and rows[tid]["error_kind"] is None, rows[tid]
        first_pass = {t: list(w) for t, w in where.items()}
        assert "A" in sum(first_pass.values(), []) and all(first_pass[v] == ["B"] for v in victims)
        run_id = rows[ids[0]]["run_id"]

        again = cli("run", "--config", str(cfg), "--no-progress", "--retry-errors")
        assert again.returncode == 0, again.stdout + again.stderr
    lines = out.joinpath("results.jsonl").read_text().splitlines()
    final = [json.loads(line) for line in lines]
    assert sorted(r["task_id"] for r in final) == ids  # each exactly once
    assert all(r["reward"] == 1.0 and r["error_kind"] is None for r in final), \
        [(r["task_id"], r["error_kind"], r["error"]) for r in final]
    trajectories = [json.loads(line)["extra"]["task_id"] for line in
                    out.joinpath("trajectories.jsonl").read_text().splitlines()]
    assert sorted(trajectories) == ids
    for tid in ids:  # the re-runs, and only they, ran again -- on A
        assert where[tid] == (["B", "A"] if tid in victims else first_pass[tid]), (tid, where[tid])
    assert containers_of(a, run_id) == []
    assert marked_processes(marker) == []

    b.start()  # B is back: its stopped containers of the run are still there, and prune removes them
    assert len(containers_of(b, run_id)) == 2
    removed = prune_containers(run_id=run_id, hosts=[a.host, b.host])
    assert len(removed) == 2 and all(c.removed and c.host == b.host for c in removed)
    assert containers_of(b, run_id) == []
    assert shared_engine_pid() == shared_pid, "the shared engine was restarted"
    assert os.path.exists("/sys/class/net/docker0") == had_bridge, "the shared engine's docker0 bridge was removed"


@pytest.mark.anyio
async def test_no_engine_up_is_a_sandbox_error_naming_each(tmp_path):
    missing = [f"unix://{tmp_path}/none-{i}.sock" for i in range(2)]
    p = provider("hosts-none", hosts=missing)
    with pytest.raises(SandboxError, match="none of the 2 Docker engines answers") as info:
        await p.create(None, labels={})
    assert all(m in str(info.value) for m in missing)
    await p.aclose()


@pytest.mark.anyio
async def test_an_engine_that_accepts_but_never_answers_is_a_sandbox_error_in_bounded_time(tmp_path, monkeypatch):
    """Calls on a local engine have the SDK's per-step timeout too: a hung daemon
    ends the call with a SandboxError naming it, rather than never."""
    import socket as socketlib

    from react_eval.sandboxes.docker import engines

    path = str(tmp_path / "mute.sock")
    server = socketlib.socket(socketlib.AF_UNIX)
    server.bind(path)
    server.listen(8)  # connections are accepted by the kernel; nothing is ever read or written
    monkeypatch.setattr(engines, "CALL_TIMEOUT", 0.5)
    p = provider("hosts-mute", docker_host=f"unix://{path}")
    try:
        with anyio.fail_after(30):
            with pytest.raises(SandboxError, match=f"the Docker daemon at unix://{path} did not answer GET /version within 0.5s"):
                await p.create(None, labels={})
    finally:
        await p.aclose()
        server.close()
