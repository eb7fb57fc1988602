"""The Responses API protocol (``protocol: responses``).

The loop keeps its history as chat messages; this client maps them to Responses
input items (assistant tool calls -> ``function_call``, tool messages ->
``function_call_output``) and maps the output items back.
"""

from __future__ import annotations

from typing import Any

from react_eval.jsonsafe import as_count
from react_eval.model.chat import read_reply
from react_eval.model.completion import arguments_text, as_text, call_id_text, name_text
from react_eval.model.response import ModelResponse, make_tool_call, split_reasoning
from react_eval.model.sdk import OpenAIModelBase
from react_eval.model.retry import EmptyResponseError

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


class ResponsesModel(OpenAIModelBase):
    """``POST /responses`` with function tools."""

    async def complete(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> ModelResponse:
        gen = self.config.generation
        kwargs: dict[str, Any] = {}
        if gen.temperature is not None:
            kwargs["temperature"] = gen.temperature
        if gen.top_p is not None:
            kwargs["top_p"] = gen.top_p
        if gen.max_tokens is not None:
            kwargs["max_output_tokens"] = gen.max_tokens
        extra_body = dict(gen.extra_body)
        for name in _BODY_ONLY:
            value = getattr(gen, name)
            if value is not None:
                extra_body[name] = value
        if extra_body:
            kwargs["extra_body"] = extra_body
        if tools:
            kwargs["tools"] = chat_tools_to_responses(tools)
        items = chat_messages_to_input(messages)

        async def request():
            response = await self.client.responses.create(model=self.config.model, input=items, **kwargs)
            if not response.output:
                raise EmptyResponseError("the server returned no output items")
            return response

        response, latency_ms, attempts = await self._with_retries(request)
        return read_reply(self._parse, response, latency_ms, attempts)

    @staticmethod
    def _parse(response: Any, latency_ms: float, attempts: int) -> ModelResponse:
        texts: list[str] = []
        reasoning_parts: list[str] = []
        calls = []
        for item in response.output:
            kind = getattr(item, "type", None)
            if kind == "function_call":
                calls.append(make_tool_call(call_id_text(item.call_id), name_text(item.name), arguments_text(item.arguments), len(calls)))
            elif kind == "message":
                for part in item.content or []:
                    if getattr(part, "type", None) == "output_text":
                        texts.append(as_text(part.text) or "")
            elif kind == "reasoning":
                for part in list(getattr(item, "summary", None) or []) + list(getattr(item, "content", None) or []):
                    text = as_text(getattr(part, "text", None))
                    if text:
                        reasoning_parts.append(text)
        content, think = split_reasoning("".join(texts))
        reasoning = "\n".join(reasoning_parts) or think
        usage = response.usage
        in_details = getattr(usage, "input_tokens_details", None) if usage else None
        out_details = getattr(usage, "output_tokens_details", None) if usage else None
        model = as_text(getattr(response, "model", None))
        status = getattr(response, "status", None)
        incomplete = getattr(response, "incomplete_details", None)
        finish = "tool_calls" if calls else "stop"
        if status == "incomplete" and getattr(incomplete, "reason", None) == "max_output_tokens":
            finish = "length"
        return ModelResponse(
            content=content,
            tool_calls=calls,
            reasoning=reasoning,
            finish_reason=finish,
            prompt_tokens=as_count(getattr(usage, "input_tokens", None)),
            completion_tokens=as_count(getattr(usage, "output_tokens", None)),
            cached_tokens=as_count(getattr(in_details, "cached_tokens", None)),
            reasoning_tokens=as_count(getattr(out_details, "reasoning_tokens", None)),
            latency_ms=latency_ms,
            model=model if isinstance(model, str) else None,
            attempts=attempts,
        )
