"""Built-in scorers (NEL's ``type: scorer`` metrics): answer text -> score in [0, 1].

* ``exact_match``: the answer (an ``ANSWER:`` line if there is one, else the
  last non-empty line) equals the reference, case/space/thousands-insensitive;
* ``numeric_match``: the last number in the response equals the reference
  number (GSM8K's rule; ``#### 72`` references are read too);
* ``mcq_extract``: the chosen letter (``Answer: C``, ``(C)``, a lone ``C``)
  equals the reference letter;
* ``code_exec``: the Python code of the response passes the task's tests,
  run by :mod:`react_eval.benchmarks.code_exec` in a fresh grading sandbox.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from react_eval.benchmarks.answers import extract_answer, normalize
from react_eval.benchmarks.base import Answer, Benchmark, RolloutEnv
from react_eval.scoring.config import ScorerMetric
from react_eval.types import Task, VerifyError

_NUMBER_RE = re.compile(r"-?\$?\d[\d,]*(?:\.\d+)?|-?\.\d+")
_LETTER_PATTERNS = (
    re.compile(r"answer\s*(?:is|:)?\s*\**\s*\(?([A-J])\)?(?![A-Za-z])", re.IGNORECASE),
    re.compile(r"^\s*\(?([A-J])[).:]?\s*$", re.MULTILINE),
    re.compile(r"\(([A-J])\)"),
)


@dataclass
class Score:
    value: float
    details: dict[str, Any] = field(default_factory=dict)


def reference(task: Task, metric_field: str) -> str:
    value = task.metadata.get(metric_field)
    if value is None:
        raise VerifyError(f"{task.id}: the task has no reference answer in metadata.{metric_field}, which "
                          "this metric needs (set answer_field to the field that holds it)")
    return str(value)


def last_number(text: str) -> str | None:
    found = _NUMBER_RE.findall(text or "")
    if not found:
        return None
    return found[-1].replace("$", "").replace(",", "").rstrip(".")


def numbers_equal(a: str, b: str) -> bool:
    try:
        return abs(float(a) - float(b)) < 1e-9 * max(1.0, abs(float(b)))
    except ValueError:
        return False


def choice_letter(text: str) -> str | None:
    for pattern in _LETTER_PATTERNS:
        found = pattern.findall(text or "")
        if found:
            return found[-1].upper()
    return None


def exact_match(task: Task, answer: Answer, metric: ScorerMetric) -> Score:
    expected = reference(task, metric.answer_field)
    text = answer.final_message or ""
    got = extract_answer(text)
    if got is None:
        lines = [line for line in text.strip().splitlines() if line.strip()]
        got = lines[-1].strip() if lines else ""
    return Score(float(normalize(got) == normalize(expected)), {"extracted": got, "expected": expected})


def numeric_match(task: Task, answer: Answer, metric: ScorerMetric) -> Score:
    expected_text = reference(task, metric.answer_field)
    expected = last_number(expected_text.rpartition("####")[2] if "####" in expected_text else expected_text)
    if expected is None:
        raise VerifyError(f"{task.id}: the reference answer {expected_text[:80]!r} holds no number")
    got = last_number(answer.final_message)
    return Score(float(got is not None and numbers_equal(got, expected)), {"extracted": got, "expected": expected})


def mcq_extract(task: Task, answer: Answer, metric: ScorerMetric) -> Score:
    expected = reference(task, metric.answer_field).strip().upper()
    got = choice_letter(answer.final_message)
    return Score(float(got == expected), {"extracted": got, "expected": expected})


async def code_exec(task: Task, answer: Answer, metric: ScorerMetric, benchmark: Benchmark, env: RolloutEnv) -> Score:
    """Run the response's code against the task's tests (``metadata.test`` with an
    optional ``entry_point`` for ``check(...)``, or the benchmark's own test program)."""
    from react_eval.benchmarks.code_exec import parse_json_result, run_check
    from react_eval.benchmarks.evalplus_bench import extract_code
    from react_eval.benchmarks.humaneval import PYTHON_ENV, WORKER_SLACK

    entry_point = task.metadata.get("entry_point") or ""
    code = await extract_code(answer.final_message, entry_point) if entry_point else _code_block(answer.final_message)
    if not code.strip():
        return Score(0.0, {"note": "no Python code found in the response"})
    test = task.metadata.get("test")
    if isinstance(test, str):
        program = f"{task.metadata.get('code_prompt', '')}\n\n{code}\n\n\n{test}\n"
        if entry_point:
            program += f"\ncheck({entry_point})\n"
    elif hasattr(benchmark, "test_program") and task.id in getattr(benchmark, "problems", {}):
        program = benchmark.test_program(benchmark.problems[task.id], code)  # type: ignore[attr-defined]
    else:
        raise VerifyError(f"{task.id}: code_exec needs the task's tests (metadata.test), and this benchmark has none")
    job = {"kind": "python_program", "program": program, "timeout": metric.timeout,
           "memory_limit_bytes": 1 << 30}
    outcome = await run_check(job, env.provider, PYTHON_ENV, timeout=metric.timeout + WORKER_SLACK,
                              label=task.id)
    result = parse_json_result(outcome)
    if result is None and not outcome.started:
        raise VerifyError(f"{task.id}: the test runner failed before running the code: {outcome.describe()}")
    status = (result or {}).get("status") or ("timeout" if outcome.timed_out else "fail")
    return Score(float(status == "pass"), {"status": status, "check_sandbox": outcome.sandbox})


def _code_block(text: str) -> str:
    blocks = re.findall(r"```(?:python|py)?\s*\n(.*?)```", text or "", re.DOTALL)
    return max(blocks, key=len) if blocks else ""


SCORERS = {"exact_match": exact_match, "numeric_match": numeric_match, "mcq_extract": mcq_extract}
