"""The typed result of one model call, independent of the wire protocol."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

from react_eval.types import ToolCall, Usage


@dataclass(slots=True, init=False)
class ModelResponse:
    content: str  # answer text, with any <think> block removed
    tool_calls: list[ToolCall]
    reasoning: str | None
    finish_reason: str | None
    #: tokens and this call's latency (``model_latency_ms``)
    usage: Usage
    model: str | None
    #: how many attempts the call took (1 = no retry)
    attempts: int

    def __init__(self, content: str, tool_calls: list[ToolCall] | None = None, reasoning: str | None = None,
                 finish_reason: str | None = None, usage: Usage | None = None, model: str | None = None,
                 attempts: int = 1, *, prompt_tokens: int | None = None, completion_tokens: int | None = None,
                 cached_tokens: int | None = None, reasoning_tokens: int | None = None, latency_ms: float = 0.0):
        """``usage``, or (the older spelling, still accepted) its parts as keywords."""
        self.content, self.tool_calls, self.reasoning = content, tool_calls or [], reasoning
        self.finish_reason, self.model, self.attempts = finish_reason, model, attempts
        self.usage = usage if usage is not None else Usage(prompt_tokens, completion_tokens, cached_tokens,
                                                           reasoning_tokens, latency_ms)

    @property
    def prompt_tokens(self) -> int | None:
        return self.usage.prompt_tokens

    @property
    def completion_tokens(self) -> int | None:
        return self.usage.completion_tokens

    @property
    def cached_tokens(self) -> int | None:
        return self.usage.cached_tokens

    @property
    def reasoning_tokens(self) -> int | None:
        return self.usage.reasoning_tokens

    @property
    def latency_ms(self) -> float:
        return self.usage.model_latency_ms or 0.0

    def assistant_message(self) -> dict[str, Any]:
        """The chat message to append to the history: the model's calls verbatim."""
        msg: dict[str, Any] = {"role": "assistant", "content": self.content or None}
        if self.tool_calls:
            msg["tool_calls"] = [
                {
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.name, "arguments": c.arguments_raw},
                }
                for c in self.tool_calls
            ]
        elif msg["content"] is None:
            msg["content"] = ""
        return msg


_THINK_RE = re.compile(r"^\s*<think>(.*?)</think>\s*", re.DOTALL)


def split_reasoning(content: str | None) -> tuple[str, str | None]:
    """Split a leading ``<think>…</think>`` block off ``content``.

    Also handles templates that emit only the closing tag (the opening one is
    part of the prompt), and an unclosed block from a response cut by length.
    """
    if not content:
        return content or "", None
    if "think>" not in content:  # the common case: no <think> nor </think>, nothing to split
        return content, None
    m = _THINK_RE.match(content)
    if m:
        return content[m.end() :], m.group(1).strip()
    stripped = content.lstrip()
    if stripped.startswith("<think>"):  # cut off before </think>
        return "", stripped[len("<think>") :].strip()
    if "</think>" in content and "<think>" not in content:
        before, _, after = content.partition("</think>")
        return after.lstrip(), before.strip()
    return content, None


def parse_arguments(raw: str | None) -> tuple[dict[str, Any] | None, str | None]:
    """Parse a tool call's argument string; return (object, None) or (None, reason)."""
    if raw is None or raw.strip() == "":
        return {}, None  # no arguments is a valid call of a tool without parameters
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return None, f"arguments are not valid JSON ({exc}); got: {raw[:200]!r}"
    if not isinstance(value, dict):
        return None, f"arguments must be a JSON object, got {type(value).__name__}: {raw[:200]!r}"
    return value, None


def make_tool_call(call_id: str | None, name: str, raw_arguments: str | None, index: int) -> ToolCall:
    args, err = parse_arguments(raw_arguments)
    return ToolCall(
        id=call_id or f"call_{index}",
        name=name or "",
        arguments_raw=raw_arguments or "",
        arguments=args,
        parse_error=err,
    )
