"""``compare``: statistics, pairing, refusal, the CI gate and the config diff."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from react_eval.analysis.compare import (
    CompareError,
    compare_runs,
    format_comparison,
    mcnemar_exact,
    paired_permutation_test,
    parse_fraction,
    task_categories,
)
from react_eval.analysis.runs import load_run
from tests.analysis.synth import INFRA, F, P, config_data, write_run

ROOT = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------- statistics


@pytest.mark.parametrize(
    ("broken", "fixed", "expected"),
    [
        (0, 0, 1.0),
        (0, 6, 2 / 64),
        (1, 9, 2 * (1 + 10) / 1024),
        (5, 5, 1.0),
        (3, 0, 0.25),
    ],
)
def test_mcnemar_exact_known_values(broken, fixed, expected):
    assert mcnemar_exact(broken, fixed) == pytest.approx(expected)


def test_mcnemar_matches_scipy_binomtest():
    stats = pytest.importorskip("scipy.stats")
    for b in range(0, 10):
        for c in range(0, 10):
            if b + c:
                assert mcnemar_exact(b, c) == pytest.approx(stats.binomtest(b, b + c, 0.5).pvalue, rel=1e-9)


def test_permutation_test_exact_small_case():
    # three tasks all +1: of the 8 sign patterns only all-plus and all-minus reach |mean| = 1
    result = paired_permutation_test([1.0, 1.0, 1.0])
    assert result["exact"] and result["p_value"] == pytest.approx(2 / 8)
    assert paired_permutation_test([0.0, 0.0])["p_value"] == 1.0
    # zeros do not change the pattern count but dilute the statistic equally
    assert paired_permutation_test([0.5, 0.5, 0.0])["p_value"] == pytest.approx(2 / 4)


def test_permutation_test_monte_carlo():
    rng = random.Random(1)
    shifted = [rng.choice([0.2, 0.4, 0.6, -0.2]) for _ in range(60)]
    result = paired_permutation_test(shifted, permutations=4000, seed=2)
    assert not result["exact"] and result["p_value"] < 0.01
    null = [rng.choice([0.2, -0.2, 0.4, -0.4]) for _ in range(60)]
    null = null[:30] + [-x for x in null[:30]]  # symmetric: mean 0
    assert paired_permutation_test(null, permutations=4000, seed=2)["p_value"] > 0.5


def test_parse_fraction():
    assert parse_fraction("0.05") == 0.05
    assert parse_fraction("2%") == pytest.approx(0.02)
    for bad in ("x", "150%", "-0.1"):
        with pytest.raises(ValueError):
            parse_fraction(bad)


# ---------------------------------------------------------------- synthetic runs


def _single(tmp_path: Path, name: str, passing: set[int], tasks: int = 40, **kw) -> Path:
    return write_run(tmp_path / name, {f"t{i:02d}": [P() if i in passing else F()] for i in range(tasks)}, **kw)


def test_single_repeat_significant_difference(tmp_path):
    base = _single(tmp_path, "base", set(range(10)))
    cand = _single(tmp_path, "cand", set(range(30)))  # fixes t10..t29, breaks nothing
    c = compare_runs(load_run(base), load_run(cand))
    assert c.test["name"] == "mcnemar_exact"
    assert (c.test["fixed"], c.test["broken"]) == (20, 0)
    assert c.test["p_value"] == pytest.approx(2 / 2**20)
    assert c.significant
    assert c.delta == pytest.approx(0.5) and c.base_pass_rate == 0.25 and c.cand_pass_rate == 0.75
    assert c.delta_ci95[0] > 0.3 and c.delta_ci95[1] <= 0.7
    assert c.fixed == [f"t{i:02d}" for i in range(10, 30)] and c.broken == []
    assert c.flaky == []


def test_single_repeat_null_difference(tmp_path):
    # same pass rate, five tasks fixed and five broken: nothing to see
    base = _single(tmp_path, "base", set(range(20)))
    cand = _single(tmp_path, "cand", set(range(5, 25)))
    c = compare_runs(load_run(base), load_run(cand))
    assert c.delta == 0.0 and c.test["p_value"] == 1.0 and not c.significant
    assert len(c.fixed) == 5 and len(c.broken) == 5
    assert c.delta_ci95[0] < 0 < c.delta_ci95[1]


def _repeated(tmp_path: Path, name: str, rate: float, seed: int, tasks: int = 30, repeats: int = 5) -> Path:
    rng = random.Random(seed)
    outcomes = {}
    for i in range(tasks):
        difficulty = (i % 5) / 10  # tasks differ, the same in both runs
        outcomes[f"t{i:02d}"] = [P() if rng.random() < rate - difficulty + 0.2 else F() for _ in range(repeats)]
    return write_run(tmp_path / name, outcomes, trajectories=False)


def test_repeats_significant_difference(tmp_path):
    c = compare_runs(load_run(_repeated(tmp_path, "base", 0.3, seed=1)), load_run(_repeated(tmp_path, "cand", 0.8, seed=2)))
    assert c.test["name"] == "paired_permutation" and c.test["clusters"] == "task"
    assert c.significant and c.test["p_value"] < 0.001
    assert c.delta > 0.3 and c.delta_ci95[0] > 0.2
    assert c.flaky  # with rates strictly between 0 and 1 some tasks pass only sometimes
    assert all(0 < f["base_rate"] < 1 or 0 < f["cand_rate"] < 1 for f in c.flaky)


def test_repeats_null_difference(tmp_path):
    c = compare_runs(load_run(_repeated(tmp_path, "base", 0.5, seed=3)), load_run(_repeated(tmp_path, "cand", 0.5, seed=4)))
    assert not c.significant and c.test["p_value"] > 0.05
    assert c.delta_ci95[0] < 0 < c.delta_ci95[1]


def test_fixed_broken_improved_regressed_flaky_with_repeats(tmp_path):
    base = write_run(tmp_path / "base", {
        "fix": [F(), F(), F()], "brk": [P(), P(), P()], "up": [F(), P(), F()], "down": [P(), P(), F()],
        "same": [P(), P(), P()], "wobble": [P(), F(), P()],
    })
    cand = write_run(tmp_path / "cand", {
        "fix": [P(), P(), P()], "brk": [F(), F(), F()], "up": [P(), P(), F()], "down": [F(), F(), P()],
        "same": [P(), P(), P()], "wobble": [F(), P(), P()],
    })
    c = compare_runs(load_run(base), load_run(cand))
    assert c.fixed == ["fix"] and c.broken == ["brk"]
    assert [i["task_id"] for i in c.improved] == ["up"] and [i["task_id"] for i in c.regressed] == ["down"]
    # each task in one list: a sometimes-passing task whose rate moved is improved or regressed, not flaky too
    assert [i["task_id"] for i in c.flaky] == ["wobble"]
    listed = c.fixed + c.broken + [i["task_id"] for i in c.improved + c.regressed + c.flaky]
    assert len(listed) == len(set(listed))
    text = format_comparison(c, "text")
    assert text.count("wobble") == 1 and text.count("  up:") == 1
    assert task_categories(c, {"fix", "brk", "up", "down", "same", "wobble"}) == {
        "fix": "fixed", "brk": "broken", "up": "improved", "down": "regressed", "same": "same", "wobble": "flaky"}


def test_different_benchmarks_are_refused(tmp_path):
    base = _single(tmp_path, "base", {1}, tasks=3)
    other = _single(tmp_path, "other", {1}, tasks=3)
    info = json.loads((other / "eval.json").read_text())
    info["benchmark"] = "other-bench"
    (other / "eval.json").write_text(json.dumps(info))
    with pytest.raises(CompareError, match="different benchmarks \\(synth vs other-bench\\)"):
        compare_runs(load_run(base), load_run(other), allow_partial=True)
    refused = _invoke(str(base), str(other))
    assert refused.exit_code == 2 and "different benchmarks" in refused.stderr


def test_infra_failures_are_excluded_and_counted(tmp_path):
    base = write_run(tmp_path / "base", {"a": [P(), INFRA()], "b": [F(), F()], "c": [INFRA(), INFRA()]})
    cand = write_run(tmp_path / "cand", {"a": [P(), P()], "b": [F(), P()], "c": [P(), P()]})
    c = compare_runs(load_run(base), load_run(cand))
    assert c.paired_tasks == 2 and c.dropped_tasks == ["c"]
    assert c.base["infra_failures"] == 3
    assert any("infrastructure" in w for w in c.warnings)
    assert c.base_pass_rate == pytest.approx((1.0 + 0.0) / 2)  # a: 1/1 scored, b: 0/2


def test_different_task_sets_are_refused_unless_partial(tmp_path):
    base = _single(tmp_path, "base", {1, 2}, tasks=10)
    cand = _single(tmp_path, "cand", {1, 2, 3}, tasks=12)
    with pytest.raises(CompareError, match="task sets differ.*--allow-partial"):
        compare_runs(load_run(base), load_run(cand))
    c = compare_runs(load_run(base), load_run(cand), allow_partial=True)
    assert c.paired_tasks == 10 and c.only_cand == ["t10", "t11"]
    assert any("--allow-partial" in w for w in c.warnings)


def test_config_diff_warns_when_several_settings_changed(tmp_path):
    base = _single(tmp_path, "base", {1}, tasks=4, config=config_data("model-a", "prompt v1"))
    one = _single(tmp_path, "one", {1}, tasks=4, config=config_data("model-a", "prompt v2"))
    c = compare_runs(load_run(base), load_run(one))
    assert [(ch.field, ch.base, ch.cand) for ch in c.config_diff] == [("solver.system_prompt", "prompt v1", "prompt v2")]
    assert not any("settings differ" in w for w in c.warnings)

    several_cfg = config_data("model-b", "prompt v2", max_turns=7)
    several_cfg["services"]["model"]["max_concurrent"] = 3  # operational: listed, not counted
    several = _single(tmp_path, "several", {1}, tasks=4, model="model-b", config=several_cfg)
    c = compare_runs(load_run(base), load_run(several))
    fields = {ch.field: ch.counted for ch in c.config_diff}
    assert fields == {"model.model": True, "solver.system_prompt": True, "solver.max_turns": True,
                      "model.max_concurrent": False}
    warning = next(w for w in c.warnings if "settings differ" in w)
    assert "3 settings differ" in warning and "one thing at a time" in warning


def test_config_diff_sees_the_tool_set(tmp_path):
    base = _single(tmp_path, "base", {1}, tasks=3)
    cand = _single(tmp_path, "cand", {1}, tasks=3)
    path = cand / "trajectories.jsonl"
    lines = path.read_text().splitlines()
    first = json.loads(lines[0])
    first["agent"]["tool_definitions"] = first["agent"]["tool_definitions"][:1]
    path.write_text("\n".join([json.dumps(first)] + lines[1:]) + "\n")
    c = compare_runs(load_run(base), load_run(cand))
    assert [(ch.field, ch.cand) for ch in c.config_diff] == [("tools", ["bash"])]


def test_formats(tmp_path):
    c = compare_runs(load_run(_single(tmp_path, "base", set(range(10)))), load_run(_single(tmp_path, "cand", set(range(30)))))
    text = format_comparison(c, "text")
    assert "McNemar exact test: fixed 20, broken 0" in text and "significantly better" in text
    md = format_comparison(c, "markdown")
    assert "| pass rate | 25.0% | 75.0% | +50.0 pp" in md
    data = json.loads(format_comparison(c, "json"))
    assert data["significant"] is True and data["test"]["name"] == "mcnemar_exact" and len(data["fixed"]) == 20


# ---------------------------------------------------------------- the CLI


def _subprocess(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "react_eval.cli", "compare", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def _invoke(*args: str):
    from typer.testing import CliRunner

    from react_eval.cli import app

    return CliRunner().invoke(app, ["compare", *args])


def test_cli_strict_max_drop_gate_exit_code(tmp_path):
    """Through a real process, as a CI job would run it."""
    base = _single(tmp_path, "base", set(range(30)))
    worse = _single(tmp_path, "worse", set(range(20)))  # pass rate 75% -> 50%
    gated = _subprocess(str(base), str(worse), "--max-drop", "0.05", "--strict")
    assert gated.returncode == 1, gated.stderr
    assert "regression" in gated.stderr and "REGRESSION" in gated.stdout
    tolerated = _subprocess(str(base), str(worse), "--max-drop", "30%", "--strict")
    assert tolerated.returncode == 0, tolerated.stderr
    assert "gate --max-drop 30.0%: ok" in tolerated.stdout


def test_cli_gate_variants(tmp_path):
    base = _single(tmp_path, "base", set(range(30)))
    worse = _single(tmp_path, "worse", set(range(20)))
    warned = _invoke(str(base), str(worse), "--max-drop", "5%")  # without --strict: reported, exit 0
    assert warned.exit_code == 0 and "regression" in warned.stderr
    better = _invoke(str(worse), str(base), "--max-drop", "0", "--strict", "--format", "json")
    assert better.exit_code == 0 and json.loads(better.stdout)["regression"] is False
    bad = _invoke(str(base), str(worse), "--max-drop", "lots")
    assert bad.exit_code == 2 and not bad.stdout.strip() and "fraction" in bad.stderr


def test_cli_refuses_different_task_sets(tmp_path):
    base = _single(tmp_path, "base", {1}, tasks=5)
    cand = _single(tmp_path, "cand", {1}, tasks=6)
    refused = _invoke(str(base), str(cand))
    assert refused.exit_code == 2 and "task sets differ" in refused.stderr
    partial = _invoke(str(base), str(cand), "--allow-partial", "--format", "markdown")
    assert partial.exit_code == 0 and "## Compare: synth" in partial.stdout
    missing = _invoke(str(base), str(tmp_path / "nowhere"))
    assert missing.exit_code == 2 and "no such directory" in missing.stderr
