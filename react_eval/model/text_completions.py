"""``protocol: completions``: the legacy ``POST /completions`` API (base models).

The request carries a raw text ``prompt`` (no chat template applied by the
server) and no tools, so it serves ``solver.type: simple`` only: the prompt is
the system text, if any, then the user text, separated by a blank line (the
messages of a one-turn question). The reply's ``choices[0].text`` is the answer.
The transport, retries and error classes are the fast chat client's.
"""

from __future__ import annotations

from typing import Any

import orjson

from react_eval.jsonsafe import as_count, clean_json, clean_text
from react_eval.model.completion import as_text
from react_eval.model.errors import ModelError
from react_eval.model.fast import FastChatModel
from react_eval.model.response import ModelResponse, split_reasoning
from react_eval.model.retry import EmptyResponseError


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
    """The first choice of a text completion, or :class:`EmptyResponseError` (retryable)."""
    if not isinstance(data, dict):
        raise EmptyResponseError(f"the server's reply is not a text completion: {str(data)[:200]!r}")
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise EmptyResponseError("the server returned no choices")
    if not isinstance(choices[0].get("text"), str):
        raise EmptyResponseError("the server's first choice has no text (is this a /completions endpoint?)")
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


class TextCompletionsModel(FastChatModel):
    """``POST /completions`` (or the configured ``endpoint``) with a text prompt."""

    path = "/completions"
    check_reply = staticmethod(first_choice)
    parse_reply = staticmethod(parse_text_completion)

    def encode(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> bytes:
        if tools:
            raise ModelError("protocol: completions cannot offer tools; use protocol: chat_completions "
                             "(or responses) for solver.type: tool_calling")
        payload: dict[str, Any] = {"model": self.config.model, "prompt": render_prompt(messages), **self._kwargs}
        payload.update(self._extra_body)
        try:
            return orjson.dumps(payload)
        except TypeError:
            return orjson.dumps(clean_json(payload))
