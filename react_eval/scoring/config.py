"""``scoring:`` of a benchmark (NeMo Evaluator's field): which metrics grade the answer.

``metrics`` lists built-in scorers (``type: scorer``) and LLM judges
(``type: judge`` on a second service). The first metric listed gives the
reward; the others, and the benchmark's own verifier when ``include_defaults``
is true (the default), are recorded beside it in the row's verification.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

#: scorer names (NEL's spelling first, react-eval's aliases after)
SCORER_NAMES = ("exact_match", "numeric_match", "mcq_extract", "code_exec")


class ScorerMetric(BaseModel):
    """A built-in scoring function applied to the final answer."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["scorer"] = "scorer"
    name: Literal["exact_match", "numeric_match", "mcq_extract", "code_exec"]
    #: the task metadata field holding the expected answer (default: ``answer``)
    answer_field: str = "answer"
    #: code_exec: seconds one test program may run
    timeout: float = Field(default=10.0, gt=0)


class JudgeMetric(BaseModel):
    """An LLM judge: a second model service grades the answer against the reference."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["judge"] = "judge"
    name: str = "correctness"
    #: a ``type: api`` service of ``services:``; not the solver's own unless allow_self_judge
    service: str
    allow_self_judge: bool = False
    #: the judge prompt; ``{question}``, ``{reference}`` and ``{response}`` are filled in
    prompt: str | None = None
    answer_field: str = "answer"


Metric = Annotated[ScorerMetric | JudgeMetric, Field(discriminator="type")]


class ScoringConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: also run the benchmark's own verifier (recorded as ``default``)
    include_defaults: bool = True
    metrics: list[Metric] = Field(default_factory=list)

    def judge_services(self) -> list[tuple[int, JudgeMetric]]:
        return [(i, m) for i, m in enumerate(self.metrics) if isinstance(m, JudgeMetric)]


def check_scoring(scoring: ScoringConfig, solver_service: str, services: dict[str, Any], where: str) -> None:
    """Every judge names a model service, and not the solver's own unless allowed (NEL's guard)."""
    if not scoring.metrics and not scoring.include_defaults:
        raise ValueError(f"{where}.scoring: include_defaults is false and no metric is listed: nothing would grade")
    for i, metric in scoring.judge_services():
        at = f"{where}.scoring.metrics.{i}.service"
        service = services.get(metric.service)
        if service is None:
            raise ValueError(f"{at}: no service named {metric.service!r} in services")
        if getattr(service, "type", None) != "api":
            raise ValueError(f"{at}: {metric.service!r} must be a type: api (model) service")
        same = metric.service == solver_service or (
            getattr(service, "model", None) == getattr(services.get(solver_service), "model", None)
            and getattr(service, "base_url", None) == getattr(services.get(solver_service), "base_url", None)
            and getattr(service, "endpoint", None) == getattr(services.get(solver_service), "endpoint", None))
        if same and not metric.allow_self_judge:
            raise ValueError(f"{at}: the judge {metric.service!r} is the solver's own model, which would grade "
                             "itself; name a different service, or set allow_self_judge: true on this metric")
