"""``react-eval slurm``: a job array of shards and a dependent merge, on a real one-node
SLURM cluster started by the test (Debian's slurm-wlm + munge), and re-submission that
re-runs only what is missing."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import orjson
import pytest

from react_eval.benchmarks.oracle import ORACLE_URL
from react_eval.engine.results import read_jsonl
from tests.scale.slurm_cluster import SlurmCluster, SlurmUnavailable, ensure_installed

CLI = [sys.executable, "-m", "react_eval.cli"]


@pytest.fixture(scope="module")
def slurm_cluster():
    try:
        ensure_installed()
        cluster = SlurmCluster().start()
    except SlurmUnavailable as exc:
        if os.environ.get("CI") or os.environ.get("REACT_EVAL_REQUIRE_SANDBOXES"):
            pytest.fail(f"SLURM must run in CI: {exc}")
        pytest.skip(f"no SLURM on this machine: {exc}")
    try:
        yield cluster
    finally:
        assert cluster.stop() == [], "a SLURM daemon had to be killed"


def write_config(tmp_path: Path, repeats: int = 2, service: str = f"base_url: '{ORACLE_URL}', ") -> Path:
    path = tmp_path / "eval.yaml"
    path.write_text(
        "services:\n"
        f"  model: {{type: api, {service}model: oracle}}\n"
        "benchmarks:\n"
        f"  - {{name: smoke, repeats: {repeats}, max_concurrent: 4, solver: {{service: model}}}}\n")
    return path


def rows_of(path: Path) -> list[dict]:
    return list(read_jsonl(path))


def check_merged(out: Path, tasks: int = 6, repeats: int = 2) -> list[dict]:
    rows = rows_of(out / "merged" / "smoke" / "results.jsonl")
    keys = Counter((r["task_id"], r["repeat"]) for r in rows)
    assert len(keys) == tasks * repeats and set(keys.values()) == {1}
    assert all(r["reward"] == 1.0 for r in rows)
    trajectories = rows_of(out / "merged" / "smoke" / "trajectories.jsonl")
    assert Counter((t["extra"]["task_id"], t["extra"]["repeat"]) for t in trajectories) == keys
    return rows


def slurm_cli(cluster: SlurmCluster, *args: str) -> subprocess.CompletedProcess:
    return cluster.run([*CLI, "slurm", *args], check=False, timeout=300)


def test_the_array_runs_each_shard_and_the_dependent_job_merges_them(slurm_cluster, tmp_path):
    config, out = write_config(tmp_path), tmp_path / "run"
    proc = slurm_cli(slurm_cluster, str(config), "--shards", "3", "-o", str(out), "--submit", "--time", "00:20:00")
    assert proc.returncode == 0, proc.stderr
    array_id, merge_id = re.search(r"submitted array job (\d+) \(3 shards\) and merge job (\d+)", proc.stdout).groups()
    assert slurm_cluster.wait_done(merge_id) == {merge_id: "COMPLETED"}, (out / "slurm/logs/merge.log").read_text()
    assert slurm_cluster.job_state(array_id) == {f"{array_id}_{i}": "COMPLETED" for i in range(3)}
    rows = check_merged(out)
    shard_rows = [rows_of(out / "shards" / str(i) / "smoke" / "results.jsonl") for i in range(3)]
    assert sorted(len(s) for s in shard_rows) == [4, 4, 4]  # 6 tasks over 3 shards, 2 repeats each
    assert sorted(r["task_id"] for s in shard_rows for r in s) == sorted(r["task_id"] for r in rows)
    bundle = orjson.loads((out / "merged" / "smoke" / "eval.json").read_bytes())
    assert sorted(bundle["shards"]) == ["0/3", "1/3", "2/3"]

    # a lost rollout (as after a node failure): re-submitting re-runs only it, and merges again
    lost_path = out / "shards" / "1" / "smoke" / "results.jsonl"
    kept = lost_path.read_bytes().splitlines(keepends=True)
    lost = orjson.loads(kept.pop())
    lost_path.write_bytes(b"".join(kept))
    others = {i: (out / "shards" / str(i) / "smoke" / "results.jsonl").read_bytes() for i in (0, 2)}
    proc = slurm_cli(slurm_cluster, str(config), "--shards", "3", "-o", str(out), "--submit")
    assert proc.returncode == 0, proc.stderr
    merge_id = re.search(r"merge job (\d+)", proc.stdout).group(1)
    assert slurm_cluster.wait_done(merge_id) == {merge_id: "COMPLETED"}, (out / "slurm/logs/merge.log").read_text()
    check_merged(out)
    assert {i: (out / "shards" / str(i) / "smoke" / "results.jsonl").read_bytes() for i in (0, 2)} == others
    again = lost_path.read_bytes().splitlines(keepends=True)
    assert again[:-1] == kept  # the finished rollouts were not run again
    redone = orjson.loads(again[-1])
    assert (redone["task_id"], redone["repeat"]) == (lost["task_id"], lost["repeat"])
    assert redone["started_at"] != lost["started_at"]


def test_a_different_shard_count_over_existing_shards_is_refused(tmp_path):
    config, out = write_config(tmp_path), tmp_path / "run"
    assert subprocess.run([*CLI, "slurm", str(config), "--shards", "2", "-o", str(out)],
                          capture_output=True, text=True).returncode == 0
    (out / "shards" / "0").mkdir(parents=True)
    proc = subprocess.run([*CLI, "slurm", str(config), "--shards", "3", "-o", str(out)], capture_output=True, text=True)
    assert proc.returncode == 2 and "holds shards of a 2-way split; re-submit with --shards 2" in proc.stderr


def run_array_by_hand(out: Path, shards: int) -> list[subprocess.CompletedProcess]:
    """Each array task's steps, as SLURM runs them (bash with SLURM_ARRAY_TASK_ID set), then the merge job's."""
    steps = [subprocess.run(["bash", str(out / "slurm" / "array.sbatch")], capture_output=True, text=True,
                            env={**os.environ, "SLURM_ARRAY_TASK_ID": str(i)}, timeout=300) for i in range(shards)]
    steps.append(subprocess.run(["bash", str(out / "slurm" / "merge.sbatch")], capture_output=True, text=True,
                                timeout=300))
    return steps


def test_model_oracle_is_the_reference_policy_in_every_shard_as_in_a_plain_run(tmp_path):
    """A service with model: oracle needs no url in YAML (it used to require one, which the shards then called,
    so each array task ended in connection errors where `run --model oracle` used the reference policy)."""
    config, out = write_config(tmp_path, repeats=1, service=""), tmp_path / "run"
    proc = subprocess.run([*CLI, "slurm", str(config), "--shards", "2", "-o", str(out)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    *shard_steps, merge = run_array_by_hand(out, 2)
    for step in shard_steps:
        assert step.returncode == 0, step.stderr
        assert "model_error" not in step.stdout + step.stderr
        assert "model 'oracle' is the built-in reference policy" in " ".join(step.stderr.split())
    assert merge.returncode == 0, merge.stderr
    rows = check_merged(out, repeats=1)  # every rollout scored 1.0 by the reference policy
    assert {r["error_kind"] for r in rows} == {None}
    plain = subprocess.run([*CLI, "run", "--config", str(config), "-o", str(tmp_path / "plain"), "--no-progress"],
                           capture_output=True, text=True, timeout=300)
    assert plain.returncode == 0, plain.stderr
    assert {r["reward"] for r in rows_of(tmp_path / "plain" / "smoke" / "results.jsonl")} == {1.0}


def test_model_oracle_with_a_url_is_refused_as_ambiguous(tmp_path):
    config = write_config(tmp_path, repeats=1, service="url: 'http://127.0.0.1:9/v1', ")
    proc = subprocess.run([*CLI, "run", "--config", str(config), "-o", str(tmp_path / "o"), "--no-progress"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "drop url to run the reference policy" in " ".join(proc.stderr.split())
    assert not (tmp_path / "o").exists()


def test_the_written_scripts_run_by_hand_with_the_array_index(tmp_path):
    """What each array task and the merge job do, run by bash with SLURM_ARRAY_TASK_ID set
    (the scripts are meant to be readable and runnable outside SLURM too)."""
    config, out = write_config(tmp_path, repeats=1), tmp_path / "run"
    proc = subprocess.run([*CLI, "slurm", str(config), "--shards", "2", "-o", str(out), "--max-parallel", "1",
                           "--partition", "gpu", "--sbatch-arg=--qos=low"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    script = (out / "slurm" / "array.sbatch").read_text()
    for line in ("#SBATCH --array=0-1%1", "#SBATCH --partition=gpu", "#SBATCH --qos=low"):
        assert line in script.splitlines()
    assert "--shard \"$i/2\"" in script and "--resume" in script
    bare = subprocess.run(["bash", str(out / "slurm" / "array.sbatch")], capture_output=True, text=True)
    assert bare.returncode != 0 and "submit this script with sbatch" in bare.stderr
    for i in range(2):
        step = subprocess.run(["bash", str(out / "slurm" / "array.sbatch")], capture_output=True, text=True,
                              env={**os.environ, "SLURM_ARRAY_TASK_ID": str(i)}, timeout=300)
        assert step.returncode == 0, step.stderr
    merge = subprocess.run(["bash", str(out / "slurm" / "merge.sbatch")], capture_output=True, text=True, timeout=300)
    assert merge.returncode == 0, merge.stderr
    check_merged(out, repeats=1)
