"""LLM-as-judge (NEL's ``type: judge`` metric): a second model grades the answer.

The judge sees the question, the reference answer and the response, and ends
its reply with ``GRADE: CORRECT`` or ``GRADE: INCORRECT``. Every call (prompt,
reply, tokens, latency) is kept for the trajectory. A judge that cannot be
reached, or whose reply carries no grade, makes the rollout a ``verify_error``
(infrastructure): the reward is unknown, never a 0.
"""

from __future__ import annotations

import re
from typing import Any

from react_eval.model.factory import build_model
from react_eval.model.protocol import Model
from react_eval.model.config import ModelConfig
from react_eval.scoring.config import JudgeMetric
from react_eval.scoring.scorers import Score, reference
from react_eval.types import RolloutError, Task, VerifyError

DEFAULT_JUDGE_PROMPT = """\
Grade a response against the reference answer of a question.

Question:
{question}

Reference answer:
{reference}

Response:
{response}

The response is CORRECT when its final answer means the same as the reference answer \
(wording, formatting and extra explanation do not matter) and INCORRECT otherwise, \
including when it gives no answer or several contradicting ones.
End your reply with one line: GRADE: CORRECT or GRADE: INCORRECT"""

_GRADE_RE = re.compile(r"GRADE\s*:\s*\**\s*(CORRECT|INCORRECT)\b", re.IGNORECASE)


def parse_grade(text: str) -> bool | None:
    found = _GRADE_RE.findall(text or "")
    return found[-1].upper() == "CORRECT" if found else None


class Judge:
    """One judge service; its client is made on first use in the process that grades."""

    def __init__(self, service_name: str, service: ModelConfig):
        self.service_name = service_name
        self.service = service
        self._model: Model | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_model": None}  # a client does not travel to worker processes

    async def grade(self, task: Task, response: str, metric: JudgeMetric) -> Score:
        template = metric.prompt or DEFAULT_JUDGE_PROMPT
        question = task.prompt or "\n\n".join(str(m.get("content") or "") for m in task.initial_messages())
        try:
            prompt = template.format(question=question, reference=reference(task, metric.answer_field),
                                     response=response)
        except (KeyError, IndexError) as exc:
            raise VerifyError(f"judge {metric.name}: the prompt template has an unknown field {exc}") from None
        if self._model is None:
            self._model = build_model(self.service)
        call: dict[str, Any] = {"metric": metric.name, "service": self.service_name, "model": self.service.model,
                                "prompt": prompt}
        try:
            reply = await self._model.complete([{"role": "user", "content": prompt}], [])
        except RolloutError as exc:  # unreachable, refused, garbled: the grade is unknown
            raise VerifyError(f"judge {metric.name} ({self.service_name}) failed: {exc}") from exc
        call.update(reply=reply.content, latency_ms=round(reply.latency_ms, 3), prompt_tokens=reply.prompt_tokens,
                    completion_tokens=reply.completion_tokens, finish_reason=reply.finish_reason)
        grade = parse_grade(reply.content)
        if grade is None:
            raise VerifyError(f"judge {metric.name} ({self.service_name}) gave no grade (no 'GRADE: CORRECT' or "
                              f"'GRADE: INCORRECT' line); its reply began: {reply.content[:200]!r}")
        call["grade"] = "CORRECT" if grade else "INCORRECT"
        return Score(float(grade), {"judge_call": call})

    async def aclose(self) -> None:
        if self._model is not None:
            await self._model.aclose()
            self._model = None
