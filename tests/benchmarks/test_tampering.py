"""The tampering reference policy against the SWE grader: every planted file is
reset and recorded, the rollout is flagged and scores 0 -- and the same plants
score 1.0 when the reset is switched off, so the defence is what stops them."""

from __future__ import annotations

from pathlib import Path

import pytest

from react_eval.benchmarks import swe
from react_eval.benchmarks.swe_integrity import Tampering, read_pytest_output, reason_to_reset
from react_eval.engine.results import load_results
from react_eval.engine.validate import TaskCheck, ValidationReport
from tests.benchmarks.test_swe_validate import run_cli

pytestmark = pytest.mark.anyio

PLANTED = {"conftest.py", "tests/conftest.py", "pytest.ini", "tox.ini", "setup.cfg", "sitecustomize.py",
           "usercustomize.py", "react_eval_tamper.pth", "pyproject.toml", "tests/react_eval_tamper.py"}


def _rows(out: Path, policy: str):
    (bench_dir,) = list(out.glob(f"validate-*/*/{policy}"))
    return load_results(bench_dir / "results.jsonl")


def test_tampering_policy_scores_zero_and_is_flagged(tmp_path: Path):
    proc = run_cli("validate", "--bench", "swe-mini", "--problem-range", "0:2", "-o", str(tmp_path), "--no-progress")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "tampering policy scores above 0 on 0/2 tasks (0%; flagged as tampering on 2)" in proc.stdout
    for row in _rows(tmp_path, "tampering"):
        assert row.reward == 0.0 and row.error_kind is None
        details = row.verification
        assert details["flags"] == ["tampering"]
        reset = {r["path"]: r for r in details["tampering"]}
        assert set(reset) >= PLANTED, set(reset)
        assert reset["pyproject.toml"]["action"] == "restored" and reset["conftest.py"]["action"] == "removed"
        assert details["fail_to_pass"]["passed"] == []  # the real tests ran, and the unfixed ones failed


def test_without_the_reset_the_same_plants_would_score(tmp_path: Path, monkeypatch):
    """Proof that the tampering policy is a real attack: with the reset disabled
    (in-process run of the same validate) the planted hooks turn failures into passes."""
    import anyio

    from react_eval.engine.config import validate_config
    from react_eval.engine.validate import validate_benchmark, validation_config

    async def no_reset(*args, **kwargs):
        return Tampering()

    monkeypatch.setattr(swe, "reset_test_infrastructure", no_reset)
    data = validation_config("swe-mini", sandbox={"type": "local"})
    data["benchmarks"][0]["problem_range"] = "0:1"
    report = anyio.run(validate_benchmark, validate_config(data, source="test"), tmp_path)
    (check,) = report.tasks
    assert check.gold == 1.0 and check.empty == 0.0
    assert check.tampering == 1.0 and not report.ok and report.tampering_passes == [check]


def test_an_unscored_empty_rollout_is_not_an_empty_pass():
    errored = TaskCheck("t1", gold=1.0, empty=None, tampering=0.0,
                        empty_error="verify_error: the grading interpreter cannot run `import pytest`")
    fine = TaskCheck("t2", gold=1.0, empty=0.0, tampering=0.0)
    report = ValidationReport("x", Path("."), [errored, fine])
    assert report.empty_passes == [] and report.rate("empty") == 0.0
    assert report.unscored == [errored] and not report.ok
    assert errored.problems() == ["empty: no score, verify_error: the grading interpreter cannot run `import pytest`"]
    assert fine.problems() == [] and ValidationReport("x", Path("."), [fine]).ok


@pytest.mark.parametrize("path,expected", [
    ("conftest.py", True), ("pkg/sub/conftest.py", True), ("pytest.ini", True), ("tox.ini", True),
    ("lib/sitecustomize.py", True), ("usercustomize.py", True), ("x.pth", True),
    ("tests/helpers.py", True), ("src/pkg/module.py", False), ("django/test/utils.py", False),
])
def test_which_paths_are_test_infrastructure(path, expected):
    assert (reason_to_reset(path, {"tests"}) is not None) is expected


def test_the_report_comes_only_from_the_tokened_section():
    token = "abc123"
    forged = "abc-REPORT\nPHRleHQ+\n"
    text = f"pytest log {forged}\n{token}-REPORT\nPHRlc3RzdWl0ZS8+\n{token}-EXIT 1\n"
    result = read_pytest_output(text, token)
    assert result.junit == b"<testsuite/>" and result.exit_code == 1 and result.problem is None
    assert read_pytest_output("no markers at all", token).problem
    assert read_pytest_output(f"\n{token}-REPORT\nnone\n{token}-EXIT 4\n", token).junit is None
