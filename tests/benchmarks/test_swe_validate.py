"""`react-eval validate` and the oracle policy, through the CLI, on the bundled suites.

validate runs each task's reference solution (the oracle), an empty answer and
the tampering policy through the real loop, sandbox tools and grader: swe-mini
and smoke must score 100% under the oracle and 0% under the other two. Run once over every
swe-mini task with the local sandbox, and over two tasks with Docker.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from react_eval.benchmarks.swe import SweMiniBenchmark, load_instances
from react_eval.engine.results import load_results

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    """The CLI in a subprocess; stdout/stderr with rich's line wrapping undone."""
    proc = subprocess.run([sys.executable, "-m", "react_eval.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "COLUMNS": "1000"})
    proc.stdout, proc.stderr = " ".join(proc.stdout.split()), " ".join(proc.stderr.split())
    return proc


def _runs(out: Path, policy: str) -> list:
    (bench_dir,) = [p for p in out.glob(f"validate-*/*/{policy}")]
    return load_results(bench_dir / "results.jsonl")


@pytest.mark.slow
def test_validate_swe_mini_local(tmp_path: Path):
    proc = run_cli("validate", "--bench", "swe-mini", "--sandbox", "local", "-o", str(tmp_path), "--no-progress")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    n = len(SweMiniBenchmark().tasks())
    assert f"scores 1.0 on {n}/{n} tasks (100%)" in proc.stdout
    assert f"above 0 on 0/{n} tasks (0%)" in proc.stdout and "validation passed" in proc.stdout
    assert "not language models" in proc.stderr
    gold = _runs(tmp_path, "oracle")
    assert len(gold) == n and all(r.reward == 1.0 and r.model == "oracle" for r in gold)
    # the oracle went through the tools: file_write of the gold patch, then git apply with bash
    assert all(r.tool_calls == 2 and r.tool_errors == 0 for r in gold)
    assert {r.verification["apply_method"] for r in gold} == {"git_apply"}
    empty = _runs(tmp_path, "empty")
    assert all(r.reward == 0.0 and r.artifact == "" for r in empty)
    # every FAIL_TO_PASS test really failed without the fix, every PASS_TO_PASS passed
    for r in empty:
        assert r.verification["fail_to_pass"]["passed"] == []
        assert r.verification["pass_to_pass"]["failed"] == []


def test_validate_smoke(tmp_path: Path):
    proc = run_cli("validate", "--bench", "smoke", "-o", str(tmp_path), "--no-progress")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "scores 1.0 on 6/6 tasks (100%)" in proc.stdout and "above 0 on 0/6" in proc.stdout


def test_validate_reports_tasks_whose_gold_fails(tmp_path: Path):
    """A dataset whose gold patch does not fix the bug (and one whose tests pass
    without any fix) must be reported, and validate must exit non-zero."""
    bench = SweMiniBenchmark()
    good = bench.instance("caching__lrukit-9")
    bad_gold = good.model_copy(update={"instance_id": "broken__gold-1",
                                       "problem_statement": good.problem_statement + "\n(broken gold)\n",
                                       "patch": good.patch.replace("move_to_end(key)", "get(key)")})
    data = tmp_path / "data"
    (data / "repos").mkdir(parents=True)
    rows = [bad_gold.row()]
    # no test patch and PASS_TO_PASS only: an empty answer "solves" it
    trivial = good.model_copy(update={"instance_id": "broken__trivial-2", "test_patch": "",
                                      "FAIL_TO_PASS": good.PASS_TO_PASS[:1], "PASS_TO_PASS": []})
    rows.append(trivial.row())
    import shutil

    src = ROOT / "react_eval" / "benchmarks" / "data" / "swe_mini" / "repos" / good.instance_id
    for row in rows:
        shutil.copytree(src, data / "repos" / row["instance_id"])
    (data / "instances.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert [i.instance_id for i in load_instances((data / "instances.jsonl").read_bytes())] == [
        "broken__gold-1", "broken__trivial-2"]
    # run the real validate command on this data through a registered test benchmark
    script = tmp_path / "run_validate.py"
    script.write_text(
        "import sys\n"
        "from pathlib import Path\n"
        "from react_eval.benchmarks import swe\n"
        "from react_eval.benchmarks.registry import available, register\n"
        f"swe._data_root = lambda: Path({str(data)!r})\n"
        "available()\n"
        "register('swe-broken', swe.SweMiniBenchmark)\n"
        "from react_eval.cli import main\n"
        "sys.argv = ['react-eval', *sys.argv[1:]]\n"
        "main()\n"
    )
    proc = subprocess.run([sys.executable, str(script), "validate", "--bench", "swe-broken", "-o",
                           str(tmp_path / "out"), "--no-progress"], capture_output=True, text=True, timeout=600,
                          cwd=ROOT, env={**os.environ, "COLUMNS": "1000"})
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "validation FAILED" in proc.stdout
    assert "scores 1.0 on 1/2 tasks" in proc.stdout and "above 0 on 1/2 tasks" in proc.stdout
    assert "broken__gold-1" in proc.stdout and "broken__trivial-2" in proc.stdout


def test_run_with_model_oracle_needs_no_endpoint(tmp_path: Path):
    pred = tmp_path / "preds.jsonl"
    proc = run_cli("run", "--bench", "swe-mini", "--model", "oracle", "--problem-range", "1:3",
                   "-o", str(tmp_path), "--no-progress", "--export-predictions", str(pred))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "reference policy" in proc.stdout and "not a language model" in proc.stdout
    rows = load_results(tmp_path / "swe-mini" / "results.jsonl")
    assert [r.reward for r in rows] == [1.0, 1.0] and {r.model for r in rows} == {"oracle"}
    preds = [json.loads(line) for line in pred.read_text().splitlines()]
    bench = SweMiniBenchmark()
    assert [p["instance_id"] for p in preds] == ["caching__lrukit-9", "dataio__tablekit-33"]
    for p in preds:
        assert p["model_name_or_path"] == "oracle"
        # the captured patch is the gold change (same files, same +/- lines)
        gold = bench.instance(p["instance_id"]).patch
        changed = lambda text: sorted(l for l in text.splitlines() if l[:1] in "+-" and l[:3] not in ("+++", "---"))
        assert changed(p["model_patch"]) == changed(gold)
    assert f"wrote 2 SWE-bench predictions to {pred}" in proc.stdout


def test_packaged_swe_mini_matches_its_sources():
    """The wheel's copy (instances.jsonl + repos/) is what build.py makes of benchmarks/swe-mini/."""
    spec = importlib.util.spec_from_file_location("swe_mini_build", ROOT / "benchmarks" / "swe-mini" / "build.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    sources = sorted(p for p in (ROOT / "benchmarks" / "swe-mini").iterdir() if (p / "meta.json").exists())
    assert len(sources) >= 12
    packaged = build.PACKAGE
    rows = [json.loads(line) for line in (packaged / "instances.jsonl").read_text().splitlines()]
    assert [r["instance_id"] for r in rows] == [p.name for p in sources]
    for src, row in zip(sources, rows, strict=True):
        assert row == build.row_for(src, json.loads((src / "meta.json").read_text()))
        assert list(row) == list(build.ROW_FIELDS)
        assert isinstance(row["FAIL_TO_PASS"], str) and json.loads(row["FAIL_TO_PASS"])  # JSON-encoded, non-empty
        assert (build.base_repo(src) / "tests").is_dir(), src.name  # its base repository ships in the wheel


@pytest.mark.docker
def test_validate_swe_mini_docker(docker_engine, tmp_path: Path):
    proc = run_cli("validate", "--bench", "swe-mini", "--sandbox", "docker", "--problem-range", "0:2",
                   "-o", str(tmp_path), "--no-progress")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "scores 1.0 on 2/2 tasks (100%)" in proc.stdout and "above 0 on 0/2" in proc.stdout
    gold = _runs(tmp_path, "oracle")
    assert all(r.verification["apply_method"] == "git_apply" for r in gold)
