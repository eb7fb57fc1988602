"""The Responses API wire format (``protocol: responses``).

The loop keeps its history as chat messages; they are mapped to Responses
input items (assistant tool calls -> ``function_call``, tool messages ->
``function_call_output``), and the reply's output items, read from its JSON
as tolerantly as :mod:`react_eval.model.completion` reads a chat completion,
are mapped back. Either transport carries it.
"""

from __future__ import annotations

from typing import Any

from react_eval.jsonsafe import as_count, clean_text
from react_eval.model.completion import arguments_text, as_text, call_id_text, name_text
from react_eval.model.config import ModelConfig
from react_eval.model.errors import UnusableReplyError
from react_eval.model.response import ModelResponse, make_tool_call, split_reasoning

#: parameters the Responses endpoint does not take by name; sent in extra_body
_BODY_ONLY = ("seed", "stop", "frequency_penalty", "presence_penalty")


def chat_tools_to_responses(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for tool in tools:
        fn = tool.get("function", tool)
        out.append(
            {
                "type": "function",
                "name": fn["name"],
                "description": fn.get("description", ""),
                "parameters": fn.get("parameters", {"type": "object", "properties": {}}),
                "strict": False,
            }
        )
    return out


def chat_messages_to_input(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Chat history -> Responses ``input`` items, in order."""
    items: list[dict[str, Any]] = []
    for msg in messages:
        role = msg.get("role")
        if role == "tool":
            items.append(
                {"type": "function_call_output", "call_id": msg["tool_call_id"], "output": msg.get("content") or ""}
            )
            continue
        if role == "assistant":
            if msg.get("content"):
                items.append({"role": "assistant", "content": msg["content"]})
            for call in msg.get("tool_calls") or []:
                items.append(
                    {
                        "type": "function_call",
                        "call_id": call["id"],
                        "name": call["function"]["name"],
                        "arguments": call["function"]["arguments"],
                    }
                )
            continue
        items.append({"role": role, "content": msg.get("content") or ""})
    return items


def _get(value: Any, key: str) -> Any:
    return value.get(key) if isinstance(value, dict) else None


def _items(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [value]
    return value if isinstance(value, list) else []


class Responses:
    """``POST /responses`` with function tools (the :class:`~react_eval.model.client.WireFormat`)."""

    path = "/responses"

    def __init__(self, config: ModelConfig):
        gen = self.generation = config.generation
        fields: dict[str, Any] = {"model": config.model}
        if gen.temperature is not None:
            fields["temperature"] = gen.temperature
        if gen.top_p is not None:
            fields["top_p"] = gen.top_p
        if gen.max_tokens is not None:
            fields["max_output_tokens"] = gen.max_tokens
        extra_body = dict(gen.extra_body)
        for name in _BODY_ONLY:
            value = getattr(gen, name)
            if value is not None:
                extra_body[name] = value
        self._fields, self._extra_body = fields, extra_body

    def request(self, messages: list[dict[str, Any]],
                tools: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
        fields = {**self._fields, "input": chat_messages_to_input(messages)}
        if tools:
            fields["tools"] = chat_tools_to_responses(tools)
        return fields, self._extra_body

    @staticmethod
    def check(data: Any) -> None:
        if not isinstance(data, dict):
            raise UnusableReplyError(f"the server's reply is not a Responses object: {str(data)[:200]!r}")
        if not _items(data.get("output")):
            raise UnusableReplyError("the server returned no output items")

    @staticmethod
    def parse(data: Any, latency_ms: float, attempts: int) -> ModelResponse:
        texts: list[str] = []
        reasoning_parts: list[str] = []
        calls = []
        for item in _items(_get(data, "output")):
            kind = _get(item, "type")
            if kind == "function_call":
                calls.append(make_tool_call(call_id_text(item.get("call_id")), name_text(item.get("name")),
                                            arguments_text(item.get("arguments")), len(calls)))
            elif kind == "message":
                for part in _items(item.get("content")):
                    if _get(part, "type") in ("output_text", "text"):
                        texts.append(as_text(part.get("text")) or "")
            elif kind == "reasoning":
                for part in _items(item.get("summary")) + _items(item.get("content")):
                    text = as_text(_get(part, "text"))
                    if text:
                        reasoning_parts.append(text)
        content, think = split_reasoning("".join(texts))
        reasoning = "\n".join(reasoning_parts) or think
        usage = _get(data, "usage")
        model = _get(data, "model")
        finish = "tool_calls" if calls else "stop"
        if _get(data, "status") == "incomplete" and _get(_get(data, "incomplete_details"), "reason") == "max_output_tokens":
            finish = "length"
        return ModelResponse(
            content=content,
            tool_calls=calls,
            reasoning=reasoning,
            finish_reason=finish,
            prompt_tokens=as_count(_get(usage, "input_tokens")),
            completion_tokens=as_count(_get(usage, "output_tokens")),
            cached_tokens=as_count(_get(_get(usage, "input_tokens_details"), "cached_tokens")),
            reasoning_tokens=as_count(_get(_get(usage, "output_tokens_details"), "reasoning_tokens")),
            latency_ms=latency_ms,
            model=clean_text(model) if isinstance(model, str) else None,
            attempts=attempts,
        )
