"""Harness variants: checked at config time, run side by side in one command
against a scripted model, and compared in one ranked cross-variant table."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from react_eval.analysis.variants import holm
from react_eval.engine.config import ConfigError, validate_config
from tests.support.scripted_server import ScriptedRequest, answer
from tests.test_e2e_smoke import smoke_policy

LAZY = "Never use tools. Reply at once with ANSWER: <value>."
#: what the lazy variant 'knows': right for three tasks (one the baseline gets wrong), wrong for three
LAZY_ANSWERS = {"level ERROR": "98", "region is EU": "10745", "listener named 'public'": "8020",
                "pineapple": "notes.txt", "checksum.py": "0", "stats.mean": "44"}


def policy(req: ScriptedRequest):
    system = next((m.get("content") or "" for m in req.messages if m.get("role") == "system"), "")
    if LAZY in system:
        hint = next(k for k in LAZY_ANSWERS if k in req.first_user_text)
        return answer(f"ANSWER: {LAZY_ANSWERS[hint]}")
    return smoke_policy(req)


def config_data(url: str, out: Path, **entry_extra) -> dict:
    entry = {"name": "smoke", "repeats": 2, "solver": {"type": "tool_calling", "service": "m", "max_turns": 8},
             "variants": [{"name": "tools", "system_prompt": "Use the tools. End with ANSWER: <value>."},
                          {"name": "lazy", "system_prompt": LAZY, "max_turns": 2},
                          {"name": "warm", "system_prompt": "Use the tools. End with ANSWER: <value>.",
                           "generation": {"temperature": 0.5}}],
             **entry_extra}
    return {"services": {"m": {"type": "api", "base_url": url, "model": "scripted"}}, "benchmarks": [entry],
            "output": {"dir": str(out)}}


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "react_eval.cli", *args], capture_output=True, text=True,
                          timeout=600, env={**os.environ, "COLUMNS": "250"})


def test_variants_run_side_by_side_and_are_compared_to_the_baseline(scripted_server, tmp_path: Path):
    import yaml

    srv = scripted_server(policy)
    cfg = tmp_path / "variants.yaml"
    cfg.write_text(yaml.safe_dump(config_data(srv.base_url, tmp_path / "out")))
    proc = run_cli("run", "--config", str(cfg), "--no-progress")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    group = tmp_path / "out" / "smoke"

    # each variant ran the same 6 tasks x 2 repeats in its own directory, with its own config hash
    hashes = {}
    for name in ("tools", "lazy", "warm"):
        rows = [json.loads(l) for l in (group / name / "results.jsonl").read_text().splitlines()]
        assert len(rows) == 12 and {r["repeat"] for r in rows} == {0, 1}
        assert all(r["run_id"].endswith(f".{name}") for r in rows)
        hashes[name] = json.loads((group / name / "run.json").read_text())["config_hash"]
        bundle = json.loads((group / name / "eval.json").read_text())
        [entry] = bundle["config"]["benchmarks"]
        assert entry["variants"] == [] and entry["solver"]["service"] == ("m@warm" if name == "warm" else "m")
    assert len(set(hashes.values())) == 3
    assert {r.json.get("temperature") for r in srv.requests} == {None, 0.5}  # generation reached the server

    report = json.loads((group / "variants.json").read_text())
    assert report["baseline"] == "tools" and report["ks"] == [1, 2]
    assert report["ranking"] == ["tools", "warm", "lazy"]
    by = {v["name"]: v for v in report["variants"]}
    assert by["tools"]["is_baseline"] and by["tools"]["comparison"] is None
    assert by["tools"]["summary"]["pass@1"] == pytest.approx(5 / 6)
    assert by["lazy"]["summary"]["pass@1"] == pytest.approx(3 / 6)
    assert by["lazy"]["summary"]["pass@2"] == pytest.approx(3 / 6)
    lazy = by["lazy"]["comparison"]
    assert lazy["fixed"] == ["smoke-json-port"]
    assert sorted(lazy["broken"]) == ["smoke-find-file", "smoke-fix-mean", "smoke-run-script"]
    assert lazy["delta"] == pytest.approx(-2 / 6)
    lo, hi = lazy["delta_ci95"]
    assert lo <= lazy["delta"] <= hi
    # repeats: the task-clustered permutation test, exact over the 4 tasks that moved (10 of 16 sign patterns)
    assert lazy["test"]["name"] == "paired_permutation" and lazy["test"]["p_value"] == pytest.approx(10 / 16)
    assert {c["field"] for c in lazy["changed"]} == {"solver.system_prompt", "solver.max_turns"}
    warm = by["warm"]["comparison"]
    assert warm["delta"] == 0 and warm["fixed"] == [] and warm["broken"] == [] and warm["test"]["p_value"] == 1.0
    assert {c["field"] for c in warm["changed"]} == {"model.generation.temperature"}
    assert by["lazy"]["p_holm"] == pytest.approx(1.0) and by["warm"]["p_holm"] == pytest.approx(1.0)

    md = (group / "variants.md").read_text()
    assert "## Variants: smoke (baseline: tools)" in md
    assert "| 1 | tools (baseline) | 83.3% | 83.3% |" in md
    assert "| 3 | lazy | 50.0% | 50.0% | 0.5000 | -33.3 pp (" in md
    assert "- fixed (1): `smoke-json-port`" in md
    # the terminal summary shows the ranked table too
    said = proc.stdout
    assert "variants of smoke, ranked (baseline tools)" in said
    assert said.index("tools (baseline)") < said.index("│ warm") < said.index("│ lazy")

    # --resume: every variant is finished, nothing is re-run, the table is rebuilt
    before = len(srv.requests)
    (group / "variants.md").unlink()
    again = run_cli("run", "--config", str(cfg), "--no-progress", "--resume")
    assert again.returncode == 0, again.stdout + again.stderr
    assert len(srv.requests) == before and (group / "variants.md").read_text() == md
    # a changed variant is refused on resume (its own config hash), the others are not
    data = config_data(srv.base_url, tmp_path / "out")
    data["benchmarks"][0]["variants"][1]["max_turns"] = 3
    cfg.write_text(yaml.safe_dump(data))
    changed = run_cli("run", "--config", str(cfg), "--no-progress", "--resume")
    assert changed.returncode == 1
    assert "harness config changed (solver.max_turns)" in " ".join(changed.stderr.split())
    # and `react-eval variants DIR` rebuilds the table from the directories alone
    rebuilt = run_cli("variants", str(group))
    assert rebuilt.returncode == 0 and "lazy" in rebuilt.stdout
    reported = run_cli("report", str(group))
    assert reported.returncode == 0 and "variants of smoke, ranked" in reported.stdout
    assert all((group / name / "report.md").is_file() for name in ("tools", "lazy", "warm"))


@pytest.mark.parametrize("extra,message", [
    ({"baseline": "nope"}, "benchmarks.0.baseline: 'nope' is not one of the variants (tools, lazy, warm)"),
    ({"variants": [{"name": "a"}, {"name": "a"}]}, "names must be unique, repeated: a"),
    ({"variants": [{"name": "a", "max_turnz": 3}]}, "benchmarks.0.variants.0 (a): max_turnz: Extra inputs"),
    ({"variants": [{"name": "a", "max_turns": 0}]}, "benchmarks.0.variants.0 (a): max_turns: Input should be greater"),
    ({"variants": [{"name": "a", "generation": {"temperature": 9}}]}, "(a): generation.temperature"),
    ({"variants": [{"name": "a", "repeats": 3}]}, "'repeats' is the same for every variant"),
    ({"variants": [{"name": "a", "service": "other"}]}, "(a): service: no service named 'other'"),
    ({"variants": [{"name": "a b"}]}, "variants.0.name"),
    ({"variants": [{"name": "variants.md"}]}, "variants.0.name"),  # names are directories beside the table
    ({"variants": [], "baseline": "x"}, "baseline: set, but the entry has no variants"),
])
def test_bad_variants_are_refused_at_config_time(extra, message, tmp_path: Path):
    with pytest.raises(ConfigError) as info:
        validate_config(config_data("http://127.0.0.1:1/v1", tmp_path, **extra))
    assert message in str(info.value)


def test_holm_adjustment():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5]) == [0.5]
    assert holm([0.6, 0.9]) == pytest.approx([1.0, 1.0])


def test_the_readme_example_config_runs_as_written(tmp_path: Path):
    """docs/examples/variants-smoke.yaml (shown in the README) runs with the oracle it names."""
    example = Path(__file__).resolve().parents[2] / "docs" / "examples" / "variants-smoke.yaml"
    env = {k: v for k, v in os.environ.items() if k not in ("MODEL_URL", "MODEL")}
    proc = subprocess.run([sys.executable, "-m", "react_eval.cli", "run", "--config", str(example), "--no-progress",
                           "-o", str(tmp_path)], capture_output=True, text=True, timeout=600,
                          env={**env, "COLUMNS": "250"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads((tmp_path / "smoke" / "variants.json").read_text())
    assert report["baseline"] == "terse" and sorted(report["ranking"]) == ["careful", "terse"]
    careful = next(v for v in report["variants"] if v["name"] == "careful")
    assert careful["summary"]["pass@1"] == 1.0 and careful["comparison"]["delta"] == 0
    assert {c["field"] for c in careful["comparison"]["changed"]} == {
        "solver.system_prompt", "solver.max_turns", "model.generation.temperature"}
