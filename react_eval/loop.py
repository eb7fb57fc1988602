"""The ReAct loop (the ``tool_calling`` solver): model -> tool calls -> observations.

One call to :func:`run_loop` is one rollout's conversation. Everything the
model can get wrong (bad JSON, unknown tools, schema violations, failing
commands) goes back to it as an error observation; only infrastructure
failures and the limits below end a rollout early, each with its error kind.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Any, Literal, Sequence

from pydantic import BaseModel, ConfigDict, Field

from react_eval.events import HarnessNote, LoopEvent, LoopObserver, MessageAdded, ModelReplied, ToolAnswered
from react_eval.model.protocol import Model
from react_eval.tools.base import TOOL_TIMEOUT_GRACE, CompositeBackend
from react_eval.tools.output import truncate_middle
from react_eval.trajectories import Trajectory, TrajectoryRecorder
from react_eval.trajectories.document import trajectory_bytes
from react_eval.types import ErrorKind, RolloutError, Task, ToolCall, ToolResult, Usage

__all__ = ["DEFAULT_SYSTEM_PROMPT", "TOOL_TIMEOUT_GRACE", "LoopConfig", "LoopOutcome", "ReActLoop", "render_template"]

DEFAULT_SYSTEM_PROMPT = (
    "You are a capable agent working in a sandbox through tools. Think step by step, "
    "use the tools to inspect and act, and check your work. When you are done, reply "
    "with your final answer and no tool call."
)


class LoopConfig(BaseModel):
    """Options of the tool_calling solver that shape one rollout."""

    model_config = ConfigDict(extra="forbid")

    max_turns: int = Field(default=50, ge=1)
    tool_timeout: float = Field(default=180.0, gt=0)
    max_output_chars: int = Field(default=16384, ge=256)
    response_mode: Literal["last_message", "sandbox_artifact"] = "last_message"
    #: a template; ``{id}``, ``{prompt}`` and ``{metadata.KEY}`` are filled from the task
    system_prompt: str | None = None
    #: tell the model how many turns remain, once this many or fewer are left (0 = never)
    turns_left_notice: int = Field(default=0, ge=0)
    #: drop the oldest whole turns when the prompt would exceed this many tokens
    prompt_budget_tokens: int | None = Field(default=None, gt=0)
    #: wall-clock limit for the whole rollout, in seconds
    rollout_timeout: float | None = Field(default=None, gt=0)
    #: most tool calls run from one model response; the rest get an error observation
    max_tool_calls_per_turn: int = Field(default=32, ge=1)


class LoopOutcome:
    """What a rollout's conversation produced, for verification and results.

    ``trajectory`` is given as the validated :class:`Trajectory` or as its JSON bytes
    (what :meth:`TrajectoryRecorder.finish_json` returns: valid ATIF, proven without
    building the models); :attr:`trajectory` is the model either way (made from the
    bytes on first use) and :meth:`trajectory_json` the bytes a run writes."""

    __slots__ = ("final_message", "messages", "turns", "_trajectory", "_trajectory_json", "error_kind", "error",
                 "calls", "call_turns", "usage")

    def __init__(self, final_message: str, messages: list[dict[str, Any]], turns: int, trajectory: Trajectory | bytes,
                 error_kind: ErrorKind | None = None, error: str | None = None,
                 calls: list[tuple[ToolCall, ToolResult]] | None = None, call_turns: list[int] | None = None,
                 usage: Usage | None = None):
        self.final_message = final_message
        self.messages = messages
        self.turns = turns
        self._trajectory: Trajectory | None = None if isinstance(trajectory, bytes) else trajectory
        self._trajectory_json: bytes | None = trajectory if isinstance(trajectory, bytes) else None
        self.error_kind = error_kind
        self.error = error
        self.calls: list[tuple[ToolCall, ToolResult]] = calls if calls is not None else []
        #: the turn (1-based model call) of each entry of ``calls``
        self.call_turns: list[int] = call_turns if call_turns is not None else []
        #: the model calls' and tool calls' tokens and latencies, summed
        self.usage = usage if usage is not None else Usage()

    @property
    def trajectory(self) -> Trajectory:
        if self._trajectory is None:
            assert self._trajectory_json is not None
            self._trajectory = Trajectory.model_validate_json(self._trajectory_json)
            object.__setattr__(self._trajectory, "_raw", self._trajectory_json)  # as finish() does
        return self._trajectory

    @trajectory.setter
    def trajectory(self, value: Trajectory) -> None:
        self._trajectory, self._trajectory_json = value, None

    def trajectory_json(self) -> bytes:
        """The trajectory as the JSON bytes a run writes (text orjson refuses as U+FFFD)."""
        if self._trajectory_json is None:
            assert self._trajectory is not None
            self._trajectory_json = trajectory_bytes(self._trajectory)
        return self._trajectory_json

    def __repr__(self) -> str:
        return (f"LoopOutcome(final_message={self.final_message!r}, turns={self.turns}, "
                f"error_kind={self.error_kind!r}, error={self.error!r}, calls={len(self.calls)})")


class _Tally:
    """The outcome's record of a rollout, kept from the loop's events."""

    __slots__ = ("turns", "calls", "call_turns", "usage", "tool_ms")

    def __init__(self) -> None:
        self.turns = 0
        self.calls: list[tuple[ToolCall, ToolResult]] = []
        self.call_turns: list[int] = []
        self.usage = Usage()
        self.tool_ms = 0.0

    def on_event(self, event: LoopEvent) -> None:
        if type(event) is ToolAnswered:
            self.calls.append((event.call, event.result))
            self.call_turns.append(event.turn)
            self.tool_ms += event.result.latency_ms
        elif type(event) is ModelReplied:
            self.turns = event.turn
            self.usage += event.response.usage

    def outcome(self, final_message: str, messages: list[dict[str, Any]], trajectory: Trajectory | bytes,
                error: tuple[ErrorKind, str] | None) -> LoopOutcome:
        return LoopOutcome(
            final_message=final_message, messages=messages, turns=self.turns, trajectory=trajectory,
            error_kind=error[0] if error else None, error=error[1] if error else None,
            calls=self.calls, call_turns=self.call_turns,
            usage=self.usage + Usage(tool_latency_ms=self.tool_ms),
        )


@dataclass(slots=True)
class _End:
    """How the conversation ended: the final message, and the error when a limit was hit."""

    final_message: str
    error: tuple[ErrorKind, str] | None = None


_FIELD_RE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)\}")


def render_template(template: str, task: Task) -> str:
    """Fill ``{field}`` placeholders from the task; unknown braces stay literal
    (so JSON examples in a prompt survive)."""
    values: dict[str, Any] = {"id": task.id, "prompt": task.prompt or "", "metadata": task.metadata}

    def lookup(match: re.Match[str]) -> str:
        node: Any = values
        for part in match.group(1).split("."):
            if isinstance(node, dict) and part in node:
                node = node[part]
            else:
                return match.group(0)
        return str(node)

    return _FIELD_RE.sub(lookup, template)


class _Conversation:
    """The message history plus the bookkeeping needed to trim it safely.

    The history's size in characters is kept as a running total (each message
    is measured once, when added), so estimating and calibrating the prompt
    size costs nothing per turn however long the conversation grows."""

    def __init__(self, messages: list[dict[str, Any]], measured: bool = True):
        """``measured=False``: nothing will read the size (no prompt budget), so none is kept
        and the loop appends to ``messages`` itself."""
        self.messages = messages
        self.chars_per_token = 3.5  # recalibrated from the server's own counts
        self._sizes = [_message_chars(m) for m in messages] if measured else []
        self.chars = sum(self._sizes)

    def add(self, msg: dict[str, Any]) -> None:
        size = _message_chars(msg)
        self.messages.append(msg)
        self._sizes.append(size)
        self.chars += size

    def head_len(self) -> int:
        """Messages up to and including the first user message are never dropped."""
        for i, msg in enumerate(self.messages):
            if msg.get("role") == "user":
                return i + 1
        return len(self.messages)

    def estimate_tokens(self) -> int:
        return int(self.chars / self.chars_per_token)

    def calibrate(self, prompt_tokens: int | None) -> None:
        if prompt_tokens:
            self.chars_per_token = max(1.0, self.chars / prompt_tokens)

    def trim_to(self, budget: int) -> int:
        """Drop the oldest whole turns (assistant message + its tool results and
        notices) after the first user message; keep the latest turn. Returns the
        number of messages dropped."""
        dropped = 0
        head = self.head_len()
        while self.estimate_tokens() > budget:
            starts = [i for i in range(head, len(self.messages)) if self.messages[i].get("role") == "assistant"]
            if len(starts) < 2:
                break
            end = starts[1]
            dropped += end - starts[0]
            self.chars -= sum(self._sizes[starts[0] : end])
            del self.messages[starts[0] : end]
            del self._sizes[starts[0] : end]
        return dropped


def _message_chars(msg: dict[str, Any]) -> int:
    n = len(msg.get("content") or "") if isinstance(msg.get("content"), str) else 0
    for call in msg.get("tool_calls") or ():
        n += len(call["function"]["arguments"]) + len(call["function"]["name"]) + 16
    return n + 8


class ReActLoop:
    """Drives one rollout: holds the model, the routed tools and the recorder.

    Every step is emitted as an event (:mod:`react_eval.events`) to the
    recorder, to the outcome's tally and to any ``observers`` given."""

    def __init__(self, model: Model, tools: CompositeBackend, config: LoopConfig, recorder: TrajectoryRecorder,
                 observers: Sequence[LoopObserver] = ()):
        self.model = model
        self.tools = tools
        self.config = config
        self.recorder = recorder
        self.observers = list(observers)

    async def run(self, task: Task, system_prompt: str, tool_defs: list[dict[str, Any]]) -> LoopOutcome:
        tally = _Tally()
        listeners = [self.recorder.on_event, tally.on_event] + [o.on_event for o in self.observers]

        def emit(event: LoopEvent) -> None:
            for listener in listeners:
                listener(event)

        history = [{"role": "system", "content": system_prompt}] if system_prompt else []
        history += task.initial_messages()
        convo = _Conversation(history, measured=self.config.prompt_budget_tokens is not None)
        for msg in history:
            emit(MessageAdded("system" if msg["role"] == "system" else "user", msg.get("content") or ""))
        end = _End("")
        limit = self.config.rollout_timeout
        try:
            if limit is None:  # no guard to set up and tear down on every rollout
                end = await self._turns(convo, tool_defs, emit)
            else:
                end = await self._turns_within(limit, convo, tool_defs, emit)
        except RolloutError as exc:
            end = _End("", (exc.kind, str(exc)))
        if end.error is not None:
            emit(HarnessNote("error", {"error_kind": end.error[0].value, "message": end.error[1]}))
        extra: dict[str, Any] = {"turns": tally.turns}
        if end.error is not None:
            extra["error"] = end.error[1]
        trajectory = self.recorder.finish_json(error_kind=end.error[0].value if end.error else None, extra=extra)
        return tally.outcome(end.final_message, convo.messages, trajectory, end.error)

    async def _turns_within(self, limit: float, convo: _Conversation, tool_defs: list[dict[str, Any]],
                            emit: Any) -> _End:
        """:meth:`_turns` under the rollout's wall-clock limit (asyncio's own timeout: the
        transports are asyncio-only, and it cancels only this await)."""
        guard = asyncio.timeout(limit)
        try:
            async with guard:
                return await self._turns(convo, tool_defs, emit)
        except TimeoutError:
            if not guard.expired():
                raise  # not the limit's: a bug elsewhere, reported as one
            return _End("", (ErrorKind.timeout, f"rollout exceeded its {limit:g}s wall-clock limit"))

    async def _turns(self, convo: _Conversation, tool_defs: list[dict[str, Any]], emit: Any) -> _End:
        """Run turns until the model answers or max_turns is reached."""
        cfg = self.config
        budgeted = cfg.prompt_budget_tokens is not None
        # without a prompt budget nothing reads the history's size: plain appends
        add = convo.add if budgeted else convo.messages.append
        for turn in range(1, cfg.max_turns + 1):
            if budgeted:
                self._manage_context(convo, emit)
            response = await self.model.complete(convo.messages, tool_defs)
            if budgeted:
                convo.calibrate(response.prompt_tokens)
            add(response.assistant_message())
            emit(ModelReplied(turn, response))
            calls = response.tool_calls
            if not calls:
                return _End(response.content)
            for index, call in enumerate(calls):
                if index < cfg.max_tool_calls_per_turn:
                    result = await self._dispatch(call)
                else:
                    result = ToolResult.error(
                        f"Error: not run: one turn may make at most {cfg.max_tool_calls_per_turn} tool calls "
                        f"and this one made {len(calls)}. Send fewer calls per turn.",
                        "too_many_calls",
                    )
                add({"role": "tool", "tool_call_id": call.id, "content": result.content})
                emit(ToolAnswered(turn, call, result))
            left = cfg.max_turns - turn
            if cfg.turns_left_notice and 0 < left <= cfg.turns_left_notice:
                notice = f"You have {left} turn{'s' if left != 1 else ''} left. Finish your work and give your final answer."
                add({"role": "user", "content": notice})
                emit(MessageAdded("user", notice, {"kind": "turns_left_notice", "turns_left": left}))
        return _End(_last_assistant_text(convo.messages),
                    (ErrorKind.max_turns_exhausted, f"no final answer within max_turns={cfg.max_turns}"))

    def _manage_context(self, convo: _Conversation, emit: Any) -> None:
        budget = self.config.prompt_budget_tokens
        if budget is None or convo.estimate_tokens() <= budget:
            return
        before = convo.estimate_tokens()
        dropped = convo.trim_to(budget)
        if dropped:
            emit(HarnessNote("context_drop", {
                "dropped_messages": dropped,
                "estimated_tokens_before": before,
                "estimated_tokens_after": convo.estimate_tokens(),
                "budget": budget,
            }))

    async def _dispatch(self, call: ToolCall) -> ToolResult:
        """Run one call (the router checks, times and guards it); a reply the
        model could not parse, and output over the cap, are the loop's part."""
        if call.parse_error is not None:
            return ToolResult.error(
                f"Error: could not parse the arguments of {call.name or '(no name)'}: {call.parse_error}. "
                "Send the arguments as one JSON object.",
                "invalid_json",
            )
        result = await self.tools.call(call.name, call.arguments or {}, timeout=self.config.tool_timeout)
        text, dropped = truncate_middle(result.content, self.config.max_output_chars)
        if dropped:
            result.content, result.truncated = text, True
            result.extra["dropped_chars"] = result.extra.get("dropped_chars", 0) + dropped
        return result


def _last_assistant_text(messages: list[dict[str, Any]]) -> str:
    for msg in reversed(messages):
        if msg.get("role") == "assistant" and msg.get("content"):
            return str(msg["content"])
    return ""
