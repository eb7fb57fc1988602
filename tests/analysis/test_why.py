"""The one-line reason of a rollout (``analysis.why``), over the verifier details real benchmarks write."""

from __future__ import annotations

from react_eval.analysis.why import explain, outcome_label, patch_test_files

PATCH = ("diff --git a/lrukit/cache.py b/lrukit/cache.py\n--- a/lrukit/cache.py\n+++ b/lrukit/cache.py\n"
         "@@ -1 +1 @@\n-a\n+b\n")
PLANTED = ("diff --git a/conftest.py b/conftest.py\nnew file mode 100644\n--- /dev/null\n+++ b/conftest.py\n"
           "@@ -0,0 +1 @@\n+x\ndiff --git a/tests/test_records.py b/tests/test_records.py\n"
           "--- a/tests/test_records.py\n+++ b/tests/test_records.py\n@@ -1 +1 @@\n-a\n+b\n")


def swe(**v) -> dict:
    return {"instance_id": "x", "patch": PATCH, "apply_method": "git_apply", **v}


def test_answer_benchmarks():
    wrong = explain({"passed": False, "reward": 0.0, "verification": {"extracted": "41", "expected": "42"}})
    assert (wrong.code, wrong.text) == ("wrong_answer", "answer 41 ≠ expected 42")
    none = explain({"passed": False, "verification": {"extracted": None, "expected": "42"}})
    assert none.code == "no_answer" and none.text == "no answer found (expected 42)"
    right = explain({"passed": True, "verification": {"extracted": "42", "expected": "42"}})
    assert (right.code, right.text) == ("passed", "answer 42 matches")
    code = explain({"passed": False, "verification": {"base_status": "fail", "plus_status": "fail",
                                                      "note": "no Python code found in the final message"}})
    assert code.text == "base tests fail, plus tests fail, no Python code found in the final message"


def test_swe_reasons():
    failing = explain({"passed": False, "verification": swe(
        fail_to_pass={"passed": ["t.py::a"], "failed": ["t.py::b", "t.py::c", "t.py::d", "t.py::e"]},
        pass_to_pass={"passed": [], "failed": ["t.py::keep"]})})
    assert failing.code == "tests_failed"
    assert failing.parts == ["FAIL_TO_PASS still fail 4/5: b, c, d +1 more", "PASS_TO_PASS broke 1/1: keep"]
    empty = explain({"passed": False, "verification": {"instance_id": "x", "patch": "", "apply_method": "empty",
                                                       "fail_to_pass": {"passed": [], "failed": ["t.py::b"]}}})
    assert empty.code == "patch_empty" and empty.parts[0] == "patch empty: the agent changed no file"
    bad = explain({"passed": False, "verification": swe(
        error="the patch does not apply to the base commit", apply_output="error: patch failed: a.py:3\n")})
    assert bad.code == "patch_not_applied" and bad.text == "patch did not apply: error: patch failed: a.py:3"
    reset = explain({"passed": False, "verification": swe(tampering=[{"path": "conftest.py", "action": "removed", "why": "a pytest conftest"}])})
    assert reset.code == "tampering" and reset.text == "tampering reset by the grader: conftest.py"


def test_a_pass_that_plants_test_infrastructure_is_suspect():
    why = explain({"passed": True, "verification": {**swe(), "patch": PLANTED,
                                                    "fail_to_pass": {"passed": ["t.py::a"], "failed": []}}})
    assert why.code == "suspect"
    assert why.touched_tests == ["conftest.py", "tests/test_records.py"]
    assert why.parts[0] == "patch changes test infrastructure: conftest.py, tests/test_records.py"
    assert patch_test_files(PATCH) == []


def test_errors_and_infrastructure():
    infra = explain({"passed": False, "error_kind": "model_error", "error": "HTTP 503\nretries exhausted"})
    assert (infra.code, infra.text) == ("infra", "infrastructure: model_error: HTTP 503 retries exhausted")
    turns = explain({"passed": False, "error_kind": "max_turns_exhausted", "error": "no final answer within max_turns=10",
                     "verification": {"extracted": None, "expected": "7"}})
    assert turns.code == "max_turns_exhausted"
    assert turns.text == "max_turns_exhausted: no final answer within max_turns=10; no answer found (expected 7)"
    tool = explain({"passed": False, "reward": 0.0}, {"tool": "bash", "turn": 3, "exit_code": 2, "error_kind": "nonzero_exit"})
    assert tool.text == "first failing call: bash at turn 3 (exit 2)"
    assert outcome_label(None) == outcome_label("ok") == "completed" and outcome_label("timeout") == "timeout"
