"""What a solver and a grader plugin provide (the other kinds' protocols live
with their users: :class:`~react_eval.sandboxes.base.SandboxProvider`,
:class:`~react_eval.tools.base.ToolSource`, :class:`~react_eval.benchmarks.base.Benchmark`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from react_eval.benchmarks.base import Answer, RolloutEnv, Verification
    from react_eval.loop import LoopOutcome
    from react_eval.model.protocol import Model
    from react_eval.tools.base import CompositeBackend
    from react_eval.trajectories import TrajectoryRecorder
    from react_eval.types import Task


@runtime_checkable
class Solver(Protocol):
    """One rollout's conversation: drives the model and the tools, records every
    turn in the recorder, and returns the outcome the engine grades and reports."""

    async def run(self, task: Task, system_prompt: str, tool_defs: list[dict[str, Any]]) -> LoopOutcome: ...


class SolverFactory(Protocol):
    """A solver class: built per rollout with the model, the rollout's tools, the
    solver's config (a :class:`~react_eval.engine.config.SolverConfig`) and the recorder."""

    def __call__(self, model: Model, tools: CompositeBackend, config: Any, recorder: TrajectoryRecorder) -> Solver: ...


@runtime_checkable
class Grader(Protocol):
    """Scores a rollout's answer; a benchmark is its own default grader."""

    async def verify(self, task: Task, answer: Answer, env: RolloutEnv) -> Verification: ...
