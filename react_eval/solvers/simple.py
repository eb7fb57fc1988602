"""``solver.type: simple`` (NeMo Evaluator's question-answer solver): one model call, no tools.

The prompt (and a system prompt only when one is configured or the task brings
one) goes to the model once; its reply is the answer. With ``protocol:
completions`` the client sends the same text as a raw prompt. The call is
recorded as one ATIF agent step, exactly as a ReAct turn would be, so rows,
trajectories and metrics are the same shape for both solvers.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from react_eval.loop import LoopConfig, LoopOutcome, ReActLoop
from react_eval.model.protocol import Model
from react_eval.model.config import GenerationConfig
from react_eval.tools.base import CompositeBackend
from react_eval.trajectories import TrajectoryRecorder
from react_eval.types import Task


class SimpleSolverConfig(BaseModel):
    """The fields the simple solver reads (``solver:`` with ``type: simple``)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["simple"] = "simple"
    service: str
    system_prompt: str | None = None
    generation: GenerationConfig | None = None
    rollout_timeout: float | None = Field(default=None, gt=0)


class SimpleSolver:
    """One model call without tools; same constructor and ``run`` as :class:`ReActLoop`."""

    def __init__(self, model: Model, tools: CompositeBackend, config: LoopConfig, recorder: TrajectoryRecorder):
        one_call = config.model_copy(update={"max_turns": 1, "turns_left_notice": 0})
        self._loop = ReActLoop(model, tools, one_call, recorder)

    async def run(self, task: Task, system_prompt: str, tool_defs: list[dict[str, Any]] | None = None) -> LoopOutcome:
        """A reply that asks for a tool anyway (none was offered) ends ``max_turns_exhausted``."""
        return await self._loop.run(task, system_prompt, [])
