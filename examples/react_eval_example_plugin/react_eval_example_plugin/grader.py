"""A grader: the last number of the final message, within a relative tolerance of the task's answer.

    grader: {type: tolerance, tolerance: 0.01}
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field

from react_eval import Answer, RolloutEnv, Task, Verification

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


class ToleranceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: relative tolerance: |got - expected| <= tolerance * |expected|
    tolerance: float = Field(default=1e-6, ge=0)
    #: the task metadata key holding the expected number
    field: str = "answer"


class ToleranceGrader:
    config_class = ToleranceConfig

    def __init__(self, config: ToleranceConfig):
        self.config = config

    async def verify(self, task: Task, answer: Answer, env: RolloutEnv) -> Verification:
        expected = float(task.metadata[self.config.field])
        numbers = _NUMBER.findall((answer.final_message or "").replace(",", ""))
        got = float(numbers[-1]) if numbers else None
        ok = got is not None and abs(got - expected) <= self.config.tolerance * abs(expected)
        return Verification(reward=1.0 if ok else 0.0,
                            details={"grader": "tolerance", "got": got, "expected": expected,
                                     "tolerance": self.config.tolerance})
