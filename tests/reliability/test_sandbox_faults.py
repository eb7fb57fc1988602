"""Sandbox faults in whole runs: a container killed mid-rollout, a missing image,
dockerd restarted mid-run, a full disk. Real Docker engine, real containers,
real tmpfs; the only stand-in is the model."""

from __future__ import annotations

import json
import os
import subprocess
import uuid

import pytest

from tests.reliability.bench import task, task_of, write_tasks
from tests.reliability.harness import (
    ByTask,
    assert_complete,
    assert_no_leaks,
    child_processes,
    cli,
    cli_started,
    config,
    echo_answer,
    echo_steps,
    error_events,
    labelled_containers,
    last_output,
    marked_processes,
    new_marker,
    observations,
    run_in_process,
    wait_for,
    write_yaml,
)
from tests.support.private_dockerd import host_processes, private_dockerd, shared_engine_pid  # noqa: F401 - a fixture
from tests.support.scripted_server import ScriptedServer, answer, tool_call

pytestmark = pytest.mark.docker

MISSING_IMAGE = "react-eval-missing-image:never"


def docker_api():
    import docker

    return docker.from_env().api


# ---------------------------------------------------------------- killed container, missing image


@pytest.fixture(scope="module")
def docker_faults(docker_engine, tmp_path_factory):
    """Four rollouts at once in Docker: one's container is killed from outside
    between two of its tool calls, one asks for an image that does not exist,
    two are ordinary."""
    tmp = tmp_path_factory.mktemp("docker-faults")

    def victim_kill(req):
        cid = last_output(req).strip().split("/")[-1]
        assert len(cid) == 64, f"no container id in {last_output(req)!r}"
        docker_api().kill(cid)  # from outside, as an OOM killer or an operator would
        return tool_call("bash", {"command": "echo still-here"})

    policy = ByTask({
        "ok1": echo_steps("tok-ok1"),
        "ok2": [tool_call("bash", {"command": "sleep 1; echo tok-ok2"}), echo_answer],
        # the container's id, from the mounts docker made for it
        "victim": [tool_call("bash", {"command": r"grep -o 'containers/[0-9a-f]\{64\}' /proc/self/mountinfo | head -1"}),
                   victim_kill, answer("ANSWER: never")],
        "noimage": [answer("ANSWER: never")],
    })
    tasks = write_tasks(tmp / "tasks.json", [
        task("ok1", "tok-ok1"), task("ok2", "tok-ok2"), task("victim", "never"),
        task("noimage", "never", image=MISSING_IMAGE)])
    marker = new_marker()
    children = child_processes()
    with ScriptedServer(policy, strict=False) as srv:
        run = run_in_process(config(srv.base_url, tasks, marker=marker, max_concurrent=4,
                                    sandbox={"type": "docker", "memory": "512m"}), tmp / "out")
    assert run.error is None, run.error
    return run, policy, marker, children


def _check_docker_run(run, marker, children) -> None:
    """The run is complete, the ordinary rollouts scored 1, nothing leaked."""
    assert_complete(run, [(t, 0) for t in ("ok1", "ok2", "victim", "noimage")])
    rows = run.rows()
    assert rows["ok1"].reward == rows["ok2"].reward == 1.0 and rows["ok1"].error_kind is None
    assert run.summary["infra_failures"] == 2 and run.summary["scored_rollouts"] == 2
    assert_no_leaks(marker, run_id=rows["ok1"].run_id, children_before=children)


def test_a_container_killed_mid_rollout_is_a_sandbox_error_and_the_other_rollouts_continue(docker_faults):
    run, policy, marker, children = docker_faults
    _check_docker_run(run, marker, children)
    victim = run.rows()["victim"]
    assert victim.error_kind == "sandbox_error" and victim.reward is None
    assert "is no longer running" in victim.error and "exit code 137" in victim.error, victim.error
    assert [e["error_kind"] for e in error_events(run.trajectory("victim"))] == ["sandbox_error"]
    assert len(policy.requests["victim"]) == 2  # the model was not asked again after the sandbox died


def test_a_missing_image_is_a_sandbox_error_saying_how_to_get_it(docker_faults):
    run, policy, marker, children = docker_faults
    _check_docker_run(run, marker, children)
    noimage = run.rows()["noimage"]
    assert noimage.error_kind == "sandbox_error" and noimage.reward is None
    assert f"docker image {MISSING_IMAGE!r} not found" in noimage.error and "docker pull" in noimage.error
    assert policy.requests["noimage"] == []  # no model call for a rollout without a sandbox
    assert [e["error_kind"] for e in error_events(run.trajectory("noimage"))] == ["sandbox_error"]


# ---------------------------------------------------------------- dockerd restarted mid-run


def test_dockerd_restarted_mid_run_fails_the_rollouts_in_flight_and_retry_errors_completes_them(
        docker_engine, private_dockerd, tmp_path, monkeypatch):
    """Two rollouts finish; two are inside a long command when the engine is
    stopped (SIGTERM, live-restore off: it stops every container) and started
    again. The two end as sandbox_error, the run itself completes;
    ``--retry-errors`` then runs exactly those two, and no container of the run
    is left. The engine is a private dockerd of this test (its own socket,
    data root, exec root and containerd namespace): the shared engine, and its
    containers, are left as they were."""
    shared_pid = shared_engine_pid()
    had_bridge = os.path.exists("/sys/class/net/docker0")
    private_dockerd.load_image(docker_engine)
    monkeypatch.setenv("DOCKER_HOST", private_dockerd.host)  # the CLI runs and the harness's docker checks
    needle = f"3000.{uuid.uuid4().int % 10**6:06d}"
    restarted = {"done": False}

    def victim(req):
        if restarted["done"]:  # the re-run
            return [tool_call("bash", {"command": f"echo tok-{task_of(req.first_user_text)}"}),
                    echo_answer][req.turn]
        return tool_call("bash", {"command": f"sleep {needle}; echo never"})

    policy = ByTask({"early1": echo_steps("tok-early1"), "early2": echo_steps("tok-early2"),
                     "victim1": [victim] * 4, "victim2": [victim] * 4})
    ids = ["early1", "early2", "victim1", "victim2"]
    tasks = write_tasks(tmp_path / "tasks.json", [task(t, f"tok-{t}") for t in ids])
    marker = new_marker()
    out = tmp_path / "out" / "reliability"
    with ScriptedServer(policy, strict=False) as srv:
        data = config(srv.base_url, tasks, marker=marker, max_concurrent=4, out=tmp_path / "out",
                      sandbox={"type": "docker", "memory": "512m", "docker_host": private_dockerd.host},
                      solver={"tool_timeout": 600})
        cfg = write_yaml(tmp_path / "eval.yaml", data)
        child = cli_started("run", "--config", str(cfg), "--no-progress")
        try:
            rows_done = lambda: out.joinpath("results.jsonl").exists() and \
                len(out.joinpath("results.jsonl").read_text().splitlines()) >= 2
            assert wait_for(rows_done, within=120), "the two early rollouts did not finish"
            assert wait_for(lambda: len(host_processes(needle)) == 2, within=60), \
                "the two victims' commands are not running"
            private_dockerd.stop()  # SIGTERM: stops every container of this engine (live-restore is off)
            private_dockerd.start()
            restarted["done"] = True
            stdout, stderr = child.communicate(timeout=300)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
        # two of four rollouts failed for infrastructure reasons: measured, so exit 0 (not all failed)
        assert child.returncode == 0, stdout + stderr
        assert "first sandbox_error" in stderr and "sandbox_error x2:" in stderr, stderr
        rows = {json.loads(line)["task_id"]: json.loads(line) for line in
                out.joinpath("results.jsonl").read_text().splitlines()}
        assert sorted(rows) == ids
        assert rows["early1"]["reward"] == rows["early2"]["reward"] == 1.0
        for tid in ("victim1", "victim2"):
            assert rows[tid]["error_kind"] == "sandbox_error" and rows[tid]["reward"] is None, rows[tid]
            assert "Docker daemon" in rows[tid]["error"] or "no longer running" in rows[tid]["error"], \
                rows[tid]["error"]
        run_id = rows["early1"]["run_id"]
        assert marked_processes(marker) == []  # the containers' processes died with them
        leftovers = labelled_containers(run_id)

        again = cli("run", "--config", str(cfg), "--no-progress", "--retry-errors")
        assert again.returncode == 0, again.stdout + again.stderr
    rows = [json.loads(line) for line in out.joinpath("results.jsonl").read_text().splitlines()]
    assert sorted(r["task_id"] for r in rows) == ids  # each exactly once
    assert all(r["reward"] == 1.0 and r["error_kind"] is None for r in rows), \
        [(r["task_id"], r["reward"], r["error_kind"], r["error"], r["final_message"]) for r in rows]
    assert sorted(json.loads(l)["extra"]["task_id"] for l in out.joinpath("trajectories.jsonl").read_text().splitlines()) == ids
    assert leftovers == [] or all("Exited" in c for c in leftovers), leftovers
    assert labelled_containers(run_id) == []
    assert_no_leaks(marker, run_id=run_id)
    monkeypatch.delenv("DOCKER_HOST")
    assert shared_engine_pid() == shared_pid, "the shared engine was restarted"
    # a private dockerd with --bridge=none run in the host's network namespace deletes docker0
    assert os.path.exists("/sys/class/net/docker0") == had_bridge, "the shared engine's docker0 bridge was removed"


# ---------------------------------------------------------------- the disk fills up


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MiB tmpfs for the sandboxes' working directories."""
    mount = tmp_path / "disk"
    mount.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0755", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, f"cannot mount a tmpfs (the suite needs root): {proc.stderr}"
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_a_full_sandbox_disk_is_a_clear_tool_error_and_the_run_goes_on(small_disk, tmp_path):
    """The sandboxes live on a 4 MiB disk. One agent fills it: bash and
    file_write both report 'No space left on device' as ordinary tool errors,
    the agent frees space and carries on; the rollouts before and after it are
    unaffected and the disk is empty afterwards."""

    def filler(req):
        outs = [r["content"] for r in req.messages if r.get("role") == "tool"]
        steps = [
            tool_call("bash", {"command": "head -c 16M /dev/zero > fill.bin; echo exit=$?"}),
            tool_call("file_write", {"path": "notes.txt", "content": "x" * 200_000}),
            tool_call("bash", {"command": "rm fill.bin && echo freed"}),
            tool_call("file_write", {"path": "notes.txt", "content": "x" * 200_000}),
        ]
        if req.turn < len(steps):
            return steps[req.turn]
        ok = ("No space left on device" in outs[0] and "exit=1" in outs[0]
              and "No space left on device" in outs[1] and "freed" in outs[2] and "Wrote 200000 bytes" in outs[3])
        return answer("ANSWER: " + ("handled" if ok else f"unexpected {outs!r}"))

    policy = ByTask({"before": echo_steps("tok-before"), "filler": [filler] * 5, "after": echo_steps("tok-after")})
    tasks = write_tasks(tmp_path / "tasks.json", [task("before", "tok-before"), task("filler", "handled"),
                                                  task("after", "tok-after")])
    marker = new_marker()
    children = child_processes()
    with ScriptedServer(policy) as srv:
        run = run_in_process(config(srv.base_url, tasks, marker=marker, max_concurrent=1,
                                    sandbox={"type": "local", "root": str(small_disk)}), tmp_path / "out")
    assert run.error is None, run.error
    assert_complete(run, [(t, 0) for t in ("before", "filler", "after")])
    rows = run.rows()
    assert all(r.reward == 1.0 and r.error_kind is None for r in rows.values()), \
        {t: (r.final_message, r.error) for t, r in rows.items()}
    obs = observations(run.trajectory("filler"))
    assert "No space left on device" in obs[0]["content"] and "exit=1" in obs[0]["content"]  # bash: the command's own error
    assert obs[1]["extra"]["error_kind"] == "tool_error" and "No space left on device" in obs[1]["content"]
    assert os.listdir(small_disk) == []  # every workdir removed, the space given back
    assert_no_leaks(marker, children_before=children)
