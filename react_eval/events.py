"""What the ReAct loop tells its observers, one event per thing that happened.

The loop does not keep the trajectory and the rollout's totals itself: it
emits these events, and each observer (the trajectory recorder, the outcome's
tally, anything a plugin adds) keeps its own record from them, so the records
cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, Union

from react_eval.model.response import ModelResponse
from react_eval.types import ToolCall, ToolResult


@dataclass(slots=True)
class MessageAdded:
    """A system or user message the harness put into the conversation
    (the prompt, a turns-left notice)."""

    role: str
    content: Any
    extra: dict[str, Any] | None = None


@dataclass(slots=True)
class ModelReplied:
    """One model call's response (``turn`` counts model calls from 1)."""

    turn: int
    response: ModelResponse


@dataclass(slots=True)
class ToolAnswered:
    """The observation of one tool call of the latest model response."""

    turn: int
    call: ToolCall
    result: ToolResult


@dataclass(slots=True)
class HarnessNote:
    """Something the harness did or met (a context drop, an error that ends the rollout)."""

    kind: str
    data: dict[str, Any] = field(default_factory=dict)


LoopEvent = Union[MessageAdded, ModelReplied, ToolAnswered, HarnessNote]


class LoopObserver(Protocol):
    def on_event(self, event: LoopEvent) -> None: ...
