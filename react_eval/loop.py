"""The ReAct loop (the ``tool_calling`` solver): model -> tool calls -> observations.

One call to :func:`run_loop` is one rollout's conversation. Everything the
model can get wrong (bad JSON, unknown tools, schema violations, failing
commands) goes back to it as an error observation; only infrastructure
failures and the limits below end a rollout early, each with its error kind.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

import anyio
from pydantic import BaseModel, ConfigDict, Field

from react_eval.model.protocol import Model
from react_eval.model.response import ModelResponse
from react_eval.tools.base import CompositeBackend
from react_eval.tools.output import truncate_middle
from react_eval.trajectories import Trajectory, TrajectoryRecorder
from react_eval.types import ErrorKind, RolloutError, Task, ToolCall, ToolResult

#: seconds past tool_timeout after which a backend that ignores its timeout is abandoned
TOOL_TIMEOUT_GRACE = 10.0

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


@dataclass
class LoopOutcome:
    """What a rollout's conversation produced, for verification and results."""

    final_message: str
    messages: list[dict[str, Any]]
    turns: int
    trajectory: Trajectory
    error_kind: ErrorKind | None = None
    error: str | None = None
    calls: list[tuple[ToolCall, ToolResult]] = field(default_factory=list)
    #: the turn (1-based model call) of each entry of ``calls``
    call_turns: list[int] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    model_latency_ms: float = 0.0
    tool_latency_ms: float = 0.0


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

    def __init__(self, messages: list[dict[str, Any]]):
        self.messages = messages
        self.chars_per_token = 3.5  # recalibrated from the server's own counts
        self._sizes = [_message_chars(m) for m in messages]
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
    """Drives one rollout: holds the model, the routed tools and the recorder."""

    def __init__(self, model: Model, tools: CompositeBackend, config: LoopConfig, recorder: TrajectoryRecorder):
        self.model = model
        self.tools = tools
        self.config = config
        self.recorder = recorder

    async def run(self, task: Task, system_prompt: str, tool_defs: list[dict[str, Any]]) -> LoopOutcome:
        history = [{"role": "system", "content": system_prompt}] if system_prompt else []
        history += task.initial_messages()
        convo = _Conversation(history)
        outcome = LoopOutcome(final_message="", messages=history, turns=0, trajectory=None)  # type: ignore[arg-type]
        for msg in history:
            if msg["role"] == "system":
                self.recorder.system(msg["content"])
            else:
                self.recorder.user(msg.get("content") or "")
        try:
            with anyio.move_on_after(self.config.rollout_timeout) as scope:
                await self._turns(convo, tool_defs, outcome)
            if scope.cancelled_caught:
                limit = self.config.rollout_timeout
                self._fail(outcome, ErrorKind.timeout, f"rollout exceeded its {limit:g}s wall-clock limit")
        except RolloutError as exc:
            self._fail(outcome, exc.kind, str(exc))
        outcome.messages = convo.messages
        outcome.trajectory = self.recorder.finish(
            error_kind=outcome.error_kind.value if outcome.error_kind else None,
            extra={"turns": outcome.turns, "error": outcome.error} if outcome.error else {"turns": outcome.turns},
        )
        return outcome

    def _fail(self, outcome: LoopOutcome, kind: ErrorKind, message: str) -> None:
        outcome.error_kind, outcome.error = kind, message
        self.recorder.event("error", error_kind=kind.value, message=message)

    async def _turns(self, convo: _Conversation, tool_defs: list[dict[str, Any]], outcome: LoopOutcome) -> None:
        cfg = self.config
        for turn in range(1, cfg.max_turns + 1):
            self._manage_context(convo)
            response = await self._call_model(convo, tool_defs, outcome)
            outcome.turns = turn
            convo.add(response.assistant_message())
            step_id = self.recorder.agent(
                message=response.content,
                reasoning=response.reasoning,
                tool_calls=response.tool_calls,
                model_name=response.model,
                prompt_tokens=response.prompt_tokens,
                completion_tokens=response.completion_tokens,
                cached_tokens=response.cached_tokens,
                reasoning_tokens=response.reasoning_tokens,
                latency_ms=response.latency_ms,
                finish_reason=response.finish_reason,
                extra={"attempts": response.attempts} if response.attempts > 1 else None,
            )
            if not response.tool_calls:
                outcome.final_message = response.content
                return
            for index, call in enumerate(response.tool_calls):
                if index < cfg.max_tool_calls_per_turn:
                    result = await self._dispatch(call)
                else:
                    result = ToolResult.error(
                        f"Error: not run: one turn may make at most {cfg.max_tool_calls_per_turn} tool calls "
                        f"and this one made {len(response.tool_calls)}. Send fewer calls per turn.",
                        "too_many_calls",
                    )
                outcome.calls.append((call, result))
                outcome.call_turns.append(turn)
                outcome.tool_latency_ms += result.latency_ms
                convo.add({"role": "tool", "tool_call_id": call.id, "content": result.content})
                self.recorder.observe(step_id, call.id, result)
            left = cfg.max_turns - turn
            if cfg.turns_left_notice and 0 < left <= cfg.turns_left_notice:
                notice = f"You have {left} turn{'s' if left != 1 else ''} left. Finish your work and give your final answer."
                convo.add({"role": "user", "content": notice})
                self.recorder.user(notice, extra={"kind": "turns_left_notice", "turns_left": left})
        outcome.final_message = _last_assistant_text(convo.messages)
        self._fail(outcome, ErrorKind.max_turns_exhausted, f"no final answer within max_turns={cfg.max_turns}")

    async def _call_model(self, convo: _Conversation, tool_defs: list[dict[str, Any]], outcome: LoopOutcome) -> ModelResponse:
        response = await self.model.complete(convo.messages, tool_defs)
        convo.calibrate(response.prompt_tokens)
        outcome.prompt_tokens += response.prompt_tokens or 0
        outcome.completion_tokens += response.completion_tokens or 0
        outcome.cached_tokens += response.cached_tokens or 0
        outcome.reasoning_tokens += response.reasoning_tokens or 0
        outcome.model_latency_ms += response.latency_ms
        return response

    def _manage_context(self, convo: _Conversation) -> None:
        budget = self.config.prompt_budget_tokens
        if budget is None or convo.estimate_tokens() <= budget:
            return
        before = convo.estimate_tokens()
        dropped = convo.trim_to(budget)
        if dropped:
            self.recorder.event(
                "context_drop",
                dropped_messages=dropped,
                estimated_tokens_before=before,
                estimated_tokens_after=convo.estimate_tokens(),
                budget=budget,
            )

    async def _dispatch(self, call: ToolCall) -> ToolResult:
        """Run one call; every model mistake becomes an error observation."""
        if call.parse_error is not None:
            return ToolResult.error(
                f"Error: could not parse the arguments of {call.name or '(no name)'}: {call.parse_error}. "
                "Send the arguments as one JSON object.",
                "invalid_json",
            )
        reason = self.tools.check_arguments(call.name, call.arguments)
        if reason is not None:
            kind = "unknown_tool" if self.tools.backend_label(call.name) is None else "invalid_arguments"
            return ToolResult.error(f"Error: {reason}", kind)
        timeout = self.config.tool_timeout
        result: ToolResult | None = None
        # backends enforce the timeout themselves; this outer guard catches one that does not
        try:
            with anyio.move_on_after(timeout + TOOL_TIMEOUT_GRACE):
                result = await self.tools.call(call.name, call.arguments or {}, timeout=timeout)
        except RolloutError:
            raise  # the backend itself is gone: infrastructure, not the model's doing
        except Exception as exc:  # a backend bug must not end the rollout silently
            return ToolResult.error(f"Error: {call.name} failed: {type(exc).__name__}: {exc}", "tool_error")
        if result is None:
            return ToolResult.error(f"Error: {call.name} did not finish within {timeout:g}s and was abandoned.", "timeout")
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
