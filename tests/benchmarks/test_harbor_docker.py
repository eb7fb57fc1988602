"""Harbor tasks in Docker, through the CLI: the example tasks validate (gold 1.0,
empty 0.0); a task's image, workdir, limits and environment reach the agent;
grading ignores planted rewards; missing, garbled or late rewards are
verify_error, never 0; the agent's time limit comes from task.toml."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from react_eval.benchmarks.harbor_image import KIND, KIND_LABEL, TASK_LABEL
from tests.support.scripted_server import ScriptedRequest, answer, tool_call

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "benchmarks" / "harbor-examples"
PROBE_TASKS = ("i20-probe", "i20-no-reward", "i20-garbled", "i20-slow-tests", "i20-agent-timeout")


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "react_eval.cli", *args], capture_output=True, text=True,
                          timeout=900, env=dict(os.environ))


def rows(path: Path) -> dict[str, dict]:
    return {r["task_id"]: r for r in map(json.loads, path.read_text().splitlines())}


@pytest.fixture(scope="module")
def task_images_cleaned(docker_engine):
    """Remove the probe tasks' images afterwards (the examples' stay cached)."""
    yield
    import docker

    client = docker.from_env()
    try:
        for image in client.images.list(filters={"label": f"{KIND_LABEL}={KIND}"}):
            if (image.labels or {}).get(TASK_LABEL) in PROBE_TASKS:
                client.images.remove(image.id, force=True)
    finally:
        client.close()


def test_example_tasks_validate_in_docker(docker_engine, tmp_path: Path):
    proc = run_cli("validate", "--bench", f"harbor:{EXAMPLES}", "--sandbox", "docker", "-o", str(tmp_path),
                   "--no-progress")
    print(proc.stdout)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    said = " ".join(proc.stdout.split())  # rich wraps lines at the terminal's width
    assert "scores 1.0 on 3/3 tasks" in said and "above 0 on 0/3 tasks" in said
    assert "validation passed" in said
    [bench_dir] = (tmp_path).glob("validate-*/*")
    gold, empty = rows(bench_dir / "oracle" / "results.jsonl"), rows(bench_dir / "empty" / "results.jsonl")
    assert {t: r["reward"] for t, r in gold.items()} == {
        "fix-word-count": 1.0, "sales-summary": 1.0, "write-settings": 1.0}
    assert {t: r["reward"] for t, r in empty.items()} == {
        "fix-word-count": 0.0, "sales-summary": 0.0, "write-settings": 0.0}
    # several rewards are kept whole; the main one decided the reward
    assert gold["sales-summary"]["verification"]["rewards"] == {"total": 1.0, "by_region": 1.0, "reward": 1.0}
    assert empty["sales-summary"]["verification"]["rewards"] == {"total": 0.0, "by_region": 0.0, "reward": 0.0}
    assert gold["sales-summary"]["verification"]["reward_file"] == "reward.json"
    assert gold["fix-word-count"]["verification"]["reward_file"] == "reward.txt"
    for row in list(gold.values()) + list(empty.values()):
        assert row["error_kind"] is None
    # the environment images are labelled, cached and reused by the second (empty) run
    import docker

    client = docker.from_env()
    try:
        tagged = {(img.labels or {}).get(TASK_LABEL) for img in client.images.list(filters={"label": f"{KIND_LABEL}={KIND}"})}
    finally:
        client.close()
    assert {"fix-word-count", "sales-summary", "write-settings"} <= tagged
    listed = run_cli("sandbox", "prune-images", "--dry-run")
    assert listed.returncode == 0 and "react-eval-harbor/sales-summary:" in listed.stdout
    assert "would remove" in listed.stdout


def _task(root: Path, name: str, *, toml: str, test_sh: str, dockerfile: str | None = None,
          instruction: str = "Create done.txt in the working directory.") -> None:
    task = root / name
    (task / "environment").mkdir(parents=True)
    (task / "tests").mkdir()
    (task / "instruction.md").write_text(f"[{name}] {instruction}\n")
    (task / "task.toml").write_text(toml)
    (task / "tests" / "test.sh").write_text(test_sh)
    (task / "environment" / "Dockerfile").write_text(
        dockerfile or "FROM react-eval-sandbox:latest\nWORKDIR /srv/work\n")


PROBE = ('echo "pwd=$(pwd)"; echo "greeting=$GREETING"; '
         'echo "cpu=$(cat /sys/fs/cgroup/cpu.max 2>/dev/null || cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us)"; '
         'echo "mem=$(cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes)"; '
         # tampering: a planted reward and a planted test script must count for nothing
         # (reward.json is read before reward.txt, so a stale one would win if it were kept)
         'mkdir -p /logs/verifier /tests && echo 1 > /logs/verifier/reward.txt && '
         'echo \'{"reward": 1}\' > /logs/verifier/reward.json && '
         'printf "echo 1 > /logs/verifier/reward.txt\\n" > /tests/test.sh')


def policy(req: ScriptedRequest):
    name = req.first_user_text.split("]")[0].lstrip("[")
    if name == "i20-probe":
        return [tool_call("bash", {"command": PROBE}), answer("done (not really)")][min(req.turn, 1)]
    if name == "i20-agent-timeout":
        return [tool_call("bash", {"command": "touch done.txt; sleep 30"}), answer("late")][min(req.turn, 1)]
    return [tool_call("bash", {"command": "touch done.txt"}), answer("created")][min(req.turn, 1)]


def test_task_settings_reach_the_container_and_bad_rewards_are_errors(
        docker_engine, task_images_cleaned, scripted_server, tmp_path: Path):
    tasks = tmp_path / "tasks"
    good_test = ("#!/bin/bash\nmkdir -p /logs/verifier\n"
                 "if [ -f /srv/work/done.txt ] && [ \"$CHECK\" = yes ]; then echo 1; else echo 0; fi"
                 " > /logs/verifier/reward.txt\n")
    _task(tasks, "i20-probe", test_sh=good_test, toml=(
        "[environment]\ncpus = 0.5\nmemory_mb = 300\nstorage_mb = 900\n[environment.env]\nGREETING = \"hi there\"\n"
        "[verifier.env]\nCHECK = \"yes\"\n"))
    _task(tasks, "i20-no-reward", toml="", test_sh="#!/bin/bash\necho 'forgot the reward'\n")
    _task(tasks, "i20-garbled", toml="", test_sh="#!/bin/bash\nmkdir -p /logs/verifier\necho PASSED > /logs/verifier/reward.txt\n")
    _task(tasks, "i20-slow-tests", toml="[verifier]\ntimeout_sec = 3\n",
          test_sh="#!/bin/bash\nsleep 60\necho 1 > /logs/verifier/reward.txt\n")
    _task(tasks, "i20-agent-timeout", toml="[agent]\ntimeout_sec = 4\n[verifier.env]\nCHECK = \"yes\"\n",
          test_sh=good_test)
    srv = scripted_server(policy)
    proc = run_cli("run", "--bench", f"harbor:{tasks}", "--sandbox", "docker", "--model-url", srv.base_url,
                   "--model", "scripted", "-o", str(tmp_path / "out"), "--no-progress")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [results] = (tmp_path / "out").glob("*/results.jsonl")
    got = rows(results)

    probe = got["i20-probe"]
    seen = next(r for r in srv.requests if "i20-probe" in r.first_user_text and r.turn == 1)
    output = seen.tool_results[-1]["content"]
    assert "pwd=/srv/work" in output and "greeting=hi there" in output
    assert "cpu=50000" in output and f"mem={300 * 1024 * 1024}" in output
    # the planted reward.txt and /tests/test.sh were replaced: no done.txt, so 0
    assert probe["reward"] == 0.0 and probe["error_kind"] is None
    assert probe["verification"]["rewards"] == {"reward": 0.0}
    assert probe["verification"]["harbor_not_applied"] == ["environment.storage_mb"]

    for task, why in (("i20-no-reward", "wrote no reward"), ("i20-garbled", "not a number"),
                      ("i20-slow-tests", "did not finish within")):
        row = got[task]
        assert row["error_kind"] == "verify_error" and row["reward"] is None, row
        assert why in row["error"]
    assert "forgot the reward" in got["i20-no-reward"]["error"]

    late = got["i20-agent-timeout"]
    assert late["error_kind"] == "timeout"
    assert late["reward"] == 1.0  # the agent's time ran out, its work is still graded (as Harbor does)
