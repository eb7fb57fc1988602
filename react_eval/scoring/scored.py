"""A benchmark graded by ``scoring.metrics``: its tasks, the configured metrics' grades.

The first metric gives the reward; every metric's value, the benchmark's own
grade (when ``include_defaults``) and the judge calls go into the row's
``verification.scoring`` (and from there into the trajectory's root ``extra``).
"""

from __future__ import annotations

from typing import Any

from react_eval.benchmarks.base import Answer, Benchmark, RolloutEnv, Verification
from react_eval.scoring.config import JudgeMetric, ScorerMetric, ScoringConfig
from react_eval.scoring.judge import Judge
from react_eval.scoring.scorers import SCORERS, Score, code_exec
from react_eval.types import Task

_CLASS_FIELDS = ("name", "description", "verification", "needs_sandbox", "default_system_prompt", "grading_env")


class ScoredBenchmark(Benchmark):
    def __init__(self, inner: Benchmark, scoring: ScoringConfig, judges: dict[str, Judge]):
        self.inner = inner
        self.scoring = scoring
        self.judges = judges
        for attr in _CLASS_FIELDS:
            setattr(self, attr, getattr(inner, attr))
        if hasattr(inner, "sandbox_tools_default"):
            self.sandbox_tools_default = inner.sandbox_tools_default

    def __getattr__(self, name: str) -> Any:  # benchmark-specific attributes (e.g. problems)
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def tasks(self) -> list[Task]:
        return self.inner.tasks()

    def preflight(self, tasks: list[Task]) -> None:
        self.inner.preflight(tasks)

    def tool_sources(self):  # type: ignore[no-untyped-def]
        return self.inner.tool_sources()

    async def prepare(self, tasks: list[Task], sandbox: Any) -> list[Task]:
        return await self.inner.prepare(tasks, sandbox)

    async def collect_artifact(self, task: Task, env: RolloutEnv) -> str | None:
        return await self.inner.collect_artifact(task, env)

    def reference_solution(self, task: Task):  # type: ignore[no-untyped-def]
        return self.inner.reference_solution(task)

    def size(self) -> int:
        return self.inner.size()

    def share_limits(self, count: int) -> None:
        self.inner.share_limits(count)

    async def verify(self, task: Task, answer: Answer, env: RolloutEnv) -> Verification:
        scores: dict[str, Any] = {}
        judge_calls = []
        primary: float | None = None
        for metric in self.scoring.metrics:
            score = await self._score(metric, task, answer, env)
            key = metric.name if metric.name not in scores else f"{metric.name}.{len(scores)}"
            call = score.details.pop("judge_call", None)
            if call is not None:
                judge_calls.append(call)
            scores[key] = {"score": score.value, **score.details}
            if primary is None:
                primary = score.value
        details: dict[str, Any] = {}
        if self.scoring.include_defaults:
            own = await self.inner.verify(task, answer, env)
            details = dict(own.details)
            scores["default"] = {"score": own.reward}
            if primary is None:
                primary = own.reward
        details["scoring"] = {"metrics": scores, "judge_calls": judge_calls}
        return Verification(reward=float(primary if primary is not None else 0.0), details=details)

    async def _score(self, metric: ScorerMetric | JudgeMetric, task: Task, answer: Answer, env: RolloutEnv) -> Score:
        if isinstance(metric, JudgeMetric):
            return await self.judges[metric.service].grade(task, answer.final_message, metric)
        if metric.name == "code_exec":
            return await code_exec(task, answer, metric, self.inner, env)
        return SCORERS[metric.name](task, answer, metric)

    async def aclose(self) -> None:
        for judge in self.judges.values():
            await judge.aclose()


def with_scoring(benchmark: Benchmark, entry: Any, config: Any) -> Benchmark:
    """``benchmark`` graded by ``entry.scoring`` when the entry has one."""
    scoring: ScoringConfig | None = getattr(entry, "scoring", None)
    if scoring is None:
        return benchmark
    judges = {m.service: Judge(m.service, config.services[m.service]) for _, m in scoring.judge_services()}
    return ScoredBenchmark(benchmark, scoring, judges)
