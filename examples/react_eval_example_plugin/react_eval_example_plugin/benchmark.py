"""A benchmark: arithmetic word problems, generated from a seed, answered on an ``ANSWER:`` line.

    benchmarks:
      - name: arithmetic
        options: {count: 5, seed: 1, check_with: calculate}
"""

from __future__ import annotations

import random
import re

from react_eval import Answer, Benchmark, PlannedCall, ReferenceSolution, RolloutEnv, Task, Verification

_ANSWER = re.compile(r"ANSWER:\s*(-?[\d.]+)", re.IGNORECASE)


class ArithmeticBenchmark(Benchmark):
    name = "arithmetic"
    description = "arithmetic problems, generated from a seed; check with the calculate tool or bash"
    verification = "final_message"

    def __init__(self, count: int = 5, seed: int = 0, check_with: str = "calculate"):
        if count < 1:
            raise ValueError("count must be at least 1")
        if check_with not in ("calculate", "bash"):
            raise ValueError(f"check_with must be calculate or bash, not {check_with!r}")
        self.count, self.seed, self.check_with = count, seed, check_with

    def tasks(self) -> list[Task]:
        rng = random.Random(self.seed)
        tasks = []
        for i in range(self.count):
            a, b, c = rng.randint(10, 99), rng.randint(10, 99), rng.randint(1, 999)
            expression = f"{a} * {b} + {c}"
            tasks.append(Task(id=f"arith-{self.seed}-{i}",
                              prompt=f"What is {expression}? Check with a tool, then end with ANSWER: <number>.",
                              metadata={"expression": expression, "answer": a * b + c}))
        return tasks

    def reference_solution(self, task: Task) -> ReferenceSolution:
        expression = task.metadata["expression"]
        step = (PlannedCall("calculate", {"expression": expression}) if self.check_with == "calculate"
                else PlannedCall("bash", {"command": f"ls; python3 -c 'print({expression})'"}))
        return ReferenceSolution(steps=[step], final_message=f"ANSWER: {task.metadata['answer']}")

    async def verify(self, task: Task, answer: Answer, env: RolloutEnv) -> Verification:
        found = _ANSWER.findall(answer.final_message or "")
        got = found[-1] if found else None
        ok = got is not None and float(got) == float(task.metadata["answer"])
        return Verification(reward=1.0 if ok else 0.0, details={"extracted": got, "expected": task.metadata["answer"]})
