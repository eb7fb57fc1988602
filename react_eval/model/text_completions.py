"""``protocol: completions``: the legacy ``POST /completions`` API (base models).

The request carries a raw text ``prompt`` (no chat template applied by the
server) and no tools, so it serves ``solver.type: simple`` only: the prompt is
the system text, if any, then the user text, separated by a blank line (the
messages of a one-turn question). The reply's ``choices[0].text`` is the answer.
The transports, retries and error classes are the chat format's.
"""

from __future__ import annotations

from typing import Any

from react_eval.jsonsafe import as_count, clean_text
from react_eval.model.completion import ChatCompletions, as_text
from react_eval.model.errors import ModelError, UnusableReplyError
from react_eval.model.response import ModelResponse, split_reasoning


def render_prompt(messages: list[dict[str, Any]]) -> str:
    """The text prompt of a conversation without tool turns (system first)."""
    parts = []
    for msg in messages:
        content = msg.get("content")
        if isinstance(content, list):  # chat content parts: their text
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        if msg.get("role") == "tool" or msg.get("tool_calls"):
            raise ModelError("protocol: completions cannot carry tool calls; use solver.type: simple, "
                             "or protocol: chat_completions for tool_calling")
        if content:
            parts.append(str(content))
    return "\n\n".join(parts)


def first_choice(data: Any) -> dict[str, Any]:
    """The first choice of a text completion, or :class:`UnusableReplyError` (retryable)."""
    if not isinstance(data, dict):
        raise UnusableReplyError(f"the server's reply is not a text completion: {str(data)[:200]!r}")
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise UnusableReplyError("the server returned no choices")
    if not isinstance(choices[0].get("text"), str):
        raise UnusableReplyError("the server's first choice has no text (is this a /completions endpoint?)")
    return choices[0]


def parse_text_completion(data: Any, latency_ms: float, attempts: int) -> ModelResponse:
    choice = first_choice(data)
    content, reasoning = split_reasoning(as_text(choice.get("text")))
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    finish, model = choice.get("finish_reason"), data.get("model")
    return ModelResponse(
        content=content,
        reasoning=reasoning,
        finish_reason=clean_text(finish) if isinstance(finish, str) else None,
        prompt_tokens=as_count(usage.get("prompt_tokens")),
        completion_tokens=as_count(usage.get("completion_tokens")),
        latency_ms=latency_ms,
        model=clean_text(model) if isinstance(model, str) else None,
        attempts=attempts,
    )


class TextCompletions(ChatCompletions):
    """``POST /completions`` with a text prompt (the :class:`~react_eval.model.client.WireFormat`);
    the sampling settings are merged as the chat format merges them."""

    path = "/completions"
    check = staticmethod(first_choice)
    parse = staticmethod(parse_text_completion)

    def request(self, messages: list[dict[str, Any]],
                tools: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
        if tools:
            raise ModelError("protocol: completions cannot offer tools; use protocol: chat_completions "
                             "(or responses) for solver.type: tool_calling")
        return {**self._fields, "prompt": render_prompt(messages)}, self._extra_body
