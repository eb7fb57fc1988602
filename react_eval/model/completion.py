"""The chat completions wire format: the request, and the reply as servers
really send it, read into a :class:`ModelResponse`.

Both transports (``fast`` and ``openai``) hand the reply's JSON to
:func:`parse_completion`, so they accept the same shapes and refuse the same
ones. Accepted beyond the typed schema, because real servers and proxies send
them: content as a list of parts (``[{"type": "text", "text": ...}]``) or as a
number, ``function.arguments`` as a JSON object instead of a string, a single
tool call instead of a list, token counts as strings or floats, and null,
negative or absurd counts (read as unknown). Every string is cleaned of
unpaired surrogates before it reaches the history, a row or a trajectory.
A reply without a first choice holding a message is refused (retried, then a
``model_error``); everything else is read as well as it can be.
"""

from __future__ import annotations

from typing import Any

import orjson

from react_eval.jsonsafe import as_count, clean_json, clean_text
from react_eval.model.response import ModelResponse, make_tool_call, split_reasoning
from react_eval.model.config import ModelConfig
from react_eval.model.errors import UnusableReplyError
from react_eval.types import Usage

#: keys of a content part that hold its text (chat ``text``, Responses-style ``output_text``...)
_TEXT_KEYS = ("text", "content", "output_text", "refusal")


def as_text(value: Any) -> str | None:
    """Message text from whatever a server put there: a string, parts, a number."""
    if value is None:
        return None
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, list):
        texts = [t for t in (_part_text(p) for p in value) if t]
        return "".join(texts)
    if isinstance(value, dict):
        return _part_text(value) or _json_text(value)
    return _json_text(value)  # a number or a boolean: its JSON spelling


def _part_text(part: Any) -> str | None:
    if isinstance(part, str):
        return clean_text(part)
    if isinstance(part, dict):
        for key in _TEXT_KEYS:
            if isinstance(part.get(key), str):
                return clean_text(part[key])
        return None
    if isinstance(part, (int, float)) and not isinstance(part, bool):
        return _json_text(part)
    return None


def _json_text(value: Any) -> str:
    return orjson.dumps(clean_json(value), option=orjson.OPT_NON_STR_KEYS).decode()


def arguments_text(value: Any) -> str | None:
    """``function.arguments`` as the history keeps it: the string as sent, or the
    JSON text of an object a server sent unencoded."""
    if value is None or isinstance(value, str):
        return clean_text(value) if value is not None else None
    return _json_text(value)


def name_text(value: Any) -> str:
    if isinstance(value, str):
        return clean_text(value)
    return "" if value is None else _json_text(value)


def call_id_text(value: Any) -> str | None:
    if isinstance(value, str) and value:
        return clean_text(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _json_text(value)
    return None


def first_message(data: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The first choice and its message, or :class:`UnusableReplyError` (retryable)."""
    if not isinstance(data, dict):
        raise UnusableReplyError(f"the server's reply is not a chat completion: {str(data)[:200]!r}")
    choices = data.get("choices")
    if isinstance(choices, dict):  # a single choice not wrapped in a list
        choices = [choices]
    if not isinstance(choices, list) or not choices:
        raise UnusableReplyError("the server returned no choices")
    choice = choices[0]
    if not isinstance(choice, dict) or not isinstance(choice.get("message"), dict):
        raise UnusableReplyError("the server's first choice has no message")
    return choice, choice["message"]


def parse_completion(data: Any, latency_ms: float, attempts: int) -> ModelResponse:
    """A chat completion as plain JSON -> ModelResponse (never raises for a reply
    that passed :func:`first_message`). Every value is read by the helpers above; the
    shape nearly every server sends (ASCII text, calls with text fields, int counts)
    is taken as it is, without a call per value, which gives the same result."""
    choice, message = first_message(data)
    reasoning_content, reasoning_field = message.get("reasoning_content"), message.get("reasoning")
    if reasoning_content is None and reasoning_field is None:
        reasoning = None
    else:
        reasoning = as_text(reasoning_content) or as_text(reasoning_field) or None
    text = message.get("content")
    content, think = split_reasoning(text if type(text) is str and text.isascii() else as_text(text))
    if think and not reasoning:
        reasoning = think
    raw_calls = message.get("tool_calls")
    if isinstance(raw_calls, dict):
        raw_calls = [raw_calls]
    calls = []
    for tc in raw_calls if isinstance(raw_calls, list) else ():
        fn = tc.get("function") if isinstance(tc, dict) else None
        if isinstance(fn, dict):
            call_id, name, arguments = tc.get("id"), fn.get("name"), fn.get("arguments")
            if not (type(call_id) is str and call_id.isascii() and call_id):
                call_id = call_id_text(call_id)
            if not (type(name) is str and name.isascii()):
                name = name_text(name)
            if not (type(arguments) is str and arguments.isascii()):
                arguments = arguments_text(arguments)
            calls.append(make_tool_call(call_id, name, arguments, len(calls)))
    usage = data.get("usage")
    usage = usage if isinstance(usage, dict) else {}
    prompt_details = usage.get("prompt_tokens_details")
    completion_details = usage.get("completion_tokens_details")
    finish = choice.get("finish_reason")
    model = data.get("model")
    return ModelResponse(
        content,
        calls,
        reasoning,
        clean_text(finish) if isinstance(finish, str) else None,
        Usage(
            as_count(usage.get("prompt_tokens")),
            as_count(usage.get("completion_tokens")),
            as_count(prompt_details.get("cached_tokens")) if isinstance(prompt_details, dict) else None,
            as_count(completion_details.get("reasoning_tokens")) if isinstance(completion_details, dict) else None,
            latency_ms,
        ),
        clean_text(model) if isinstance(model, str) else None,
        attempts,
    )


class ChatCompletions:
    """``POST /chat/completions`` with tools (the :class:`~react_eval.model.client.WireFormat`).

    The sampling settings are merged once, at start; ``extra_body`` goes last,
    as the SDK merges it."""

    path = "/chat/completions"
    check = staticmethod(first_message)
    parse = staticmethod(parse_completion)

    def __init__(self, config: ModelConfig):
        kwargs = config.generation.request_kwargs()
        self._extra_body: dict[str, Any] = kwargs.pop("extra_body", {})
        self._fields = {"model": config.model, **kwargs}

    def request(self, messages: list[dict[str, Any]],
                tools: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
        fields = {**self._fields, "messages": messages}
        if tools:
            fields["tools"] = tools
        return fields, self._extra_body
