"""``grader: {type: answer_match}``: grade any benchmark's final message by its
``ANSWER: <value>`` line against a task metadata field."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from react_eval.benchmarks.answers import extract_answer, normalize
from react_eval.benchmarks.base import Answer, RolloutEnv, Verification
from react_eval.types import Task


class AnswerMatchConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: str = "answer_match"
    #: the task metadata key holding the expected answer
    field: str = "answer"
    #: compare case-, space- and number-format-insensitively (1,000 == 1000.0)
    normalize: bool = True
    #: without an ``ANSWER:`` line, compare the whole final message
    whole_message: bool = False


class AnswerMatch:
    """Reward 1.0 when the stated answer equals the task's expected one."""

    config_class = AnswerMatchConfig

    def __init__(self, config: AnswerMatchConfig):
        self.config = config

    async def verify(self, task: Task, answer: Answer, env: RolloutEnv) -> Verification:
        if self.config.field not in task.metadata:
            raise KeyError(f"task {task.id!r} has no metadata field {self.config.field!r} to grade against")
        expected = str(task.metadata[self.config.field])
        got = extract_answer(answer.final_message)
        if got is None and self.config.whole_message:
            got = answer.final_message.strip()
        same = self._same(got, expected) if got is not None else False
        details: dict[str, Any] = {"extracted": got, "expected": expected, "grader": "answer_match"}
        return Verification(reward=1.0 if same else 0.0, details=details)

    def _same(self, got: str, expected: str) -> bool:
        return normalize(got) == normalize(expected) if self.config.normalize else got == expected
