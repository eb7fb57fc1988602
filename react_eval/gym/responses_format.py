"""Between the Responses API shapes Gym speaks and the chat shapes the loop speaks.

* Dataset rows hold a Responses-API request (``responses_create_params``): its
  ``input`` becomes chat messages and its function ``tools`` chat tools.
* ``/verify`` wants the rollout as one Responses API object: the model's
  ``function_call`` items, the ``function_call_output`` items answering them and
  the final assistant ``message``, in the order they happened.
  :func:`build_response` rebuilds that from the loop's chat history and calls.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Iterable

from react_eval.types import ToolCall, ToolResult


class ResponsesFormatError(ValueError):
    """A Responses-API value this evaluator cannot turn into chat form."""


# --------------------------------------------------------------------------- tools


def responses_tool_to_chat(tool: dict[str, Any]) -> dict[str, Any]:
    """One Responses-API tool (flat ``{"type": "function", "name": ...}``) as a chat tool."""
    if not isinstance(tool, dict):
        raise ResponsesFormatError(f"a tool must be an object, got {type(tool).__name__}")
    kind = tool.get("type", "function")
    if kind != "function":
        raise ResponsesFormatError(
            f"tool type {kind!r} is not a function tool; only function tools can be offered to the model"
        )
    if isinstance(tool.get("function"), dict):  # already chat-shaped
        return {"type": "function", "function": dict(tool["function"])}
    name = tool.get("name")
    if not isinstance(name, str) or not name:
        raise ResponsesFormatError("a function tool needs a non-empty 'name'")
    function: dict[str, Any] = {
        "name": name,
        "description": tool.get("description") or "",
        "parameters": tool.get("parameters") or {"type": "object", "properties": {}},
    }
    if isinstance(tool.get("strict"), bool):
        function["strict"] = tool["strict"]
    return {"type": "function", "function": function}


def responses_tools_to_chat(tools: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [responses_tool_to_chat(t) for t in tools]


def chat_tool_to_responses(tool: dict[str, Any]) -> dict[str, Any]:
    """A chat tool in the flat Responses-API form (for the ``tools`` of a Response)."""
    fn = tool.get("function") if isinstance(tool.get("function"), dict) else tool
    return {
        "type": "function",
        "name": fn["name"],
        "description": fn.get("description") or "",
        "parameters": fn.get("parameters") or {"type": "object", "properties": {}},
        "strict": bool(fn.get("strict", False)),
    }


# --------------------------------------------------------------------------- input


def _text_of(content: Any) -> str | list[dict[str, Any]]:
    """Responses content (a string or a list of parts) in chat form: plain text when
    every part is text, else chat content parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise ResponsesFormatError(f"message content must be a string or a list, got {type(content).__name__}")
    parts: list[dict[str, Any]] = []
    for part in content:
        if isinstance(part, str):
            parts.append({"type": "text", "text": part})
            continue
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("input_text", "output_text", "text", "summary_text", "reasoning_text"):
            parts.append({"type": "text", "text": part.get("text") or ""})
        elif kind == "refusal":
            parts.append({"type": "text", "text": part.get("refusal") or ""})
        elif kind == "input_image":
            url = part.get("image_url") or part.get("url")
            if not url:
                raise ResponsesFormatError("an input_image part without image_url cannot be sent as a chat message")
            parts.append({"type": "image_url", "image_url": {"url": url, "detail": part.get("detail") or "auto"}})
        else:
            raise ResponsesFormatError(f"content part type {kind!r} has no chat equivalent")
    if all(p["type"] == "text" for p in parts):
        return "".join(p["text"] for p in parts)
    return parts


def responses_input_to_messages(value: Any) -> list[dict[str, Any]]:
    """``responses_create_params.input`` as chat messages.

    A string is one user message. Message items keep their role, except
    ``developer`` which becomes ``system``. ``function_call`` items become an
    assistant message with ``tool_calls`` (consecutive calls share one), and
    ``function_call_output`` items tool messages. Reasoning items are dropped.
    """
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    if not isinstance(value, list):
        raise ResponsesFormatError(f"input must be a string or a list of items, got {type(value).__name__}")
    messages: list[dict[str, Any]] = []
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise ResponsesFormatError(f"input[{i}] must be an object, got {type(item).__name__}")
        kind = item.get("type", "message")
        if kind == "message":
            role = item.get("role")
            if role not in ("user", "assistant", "system", "developer"):
                raise ResponsesFormatError(f"input[{i}] has unknown role {role!r}")
            messages.append({"role": "system" if role == "developer" else role, "content": _text_of(item.get("content"))})
        elif kind == "function_call":
            call = {
                "id": item.get("call_id") or item.get("id") or f"call_{i}",
                "type": "function",
                "function": {"name": item.get("name", ""), "arguments": item.get("arguments") or "{}"},
            }
            last = messages[-1] if messages else None
            if last and last["role"] == "assistant" and "tool_calls" in last:
                last["tool_calls"].append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            output = item.get("output")
            messages.append({
                "role": "tool",
                "tool_call_id": item.get("call_id", ""),
                "content": output if isinstance(output, str) else _text_of(output),
            })
        elif kind == "reasoning":
            continue
        else:
            raise ResponsesFormatError(f"input[{i}] has item type {kind!r}, which has no chat equivalent")
    return messages


# --------------------------------------------------------------------------- response


def _message_item(text: str, item_id: str, *, status: str = "completed") -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "message",
        "role": "assistant",
        "status": status,
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }


def _call_items(call: ToolCall, result: ToolResult) -> tuple[dict[str, Any], dict[str, Any]]:
    fc = {
        "id": f"fc_{call.id}",
        "type": "function_call",
        "call_id": call.id,
        "name": call.name,
        "arguments": call.arguments_raw,
        "status": "completed",
    }
    out = {
        "id": f"fco_{call.id}",
        "type": "function_call_output",
        "call_id": call.id,
        "output": result.content,
        "status": "completed",
    }
    return fc, out


def build_output(
    messages: list[dict[str, Any]],
    calls: list[tuple[ToolCall, ToolResult]],
    *,
    prompt_messages: int,
    id_base: str | None = None,
) -> tuple[list[dict[str, Any]], bool]:
    """The ``output`` items of a rollout, and whether it ended with a final message.

    ``messages`` is the loop's chat history, of which the first
    ``prompt_messages`` were the prompt. Tool calls are taken from ``calls``
    (the loop's complete record, in order), aligned with the assistant messages
    from the end: if the history was trimmed to fit the context, the calls of
    the dropped turns still come first, so no ``function_call`` is ever lost.
    Each turn gives its text (if any) as a message, then its ``function_call``
    items, then their ``function_call_output`` items; a last assistant message
    without calls is the final answer. Message items are ``msg_<id_base>_<n>``
    (one random base per rollout: unique, without a random draw per item).
    """
    base = id_base or uuid.uuid4().hex
    texts = 0

    def message(text: str) -> dict[str, Any]:
        nonlocal texts
        texts += 1
        return _message_item(text, f"msg_{base}_{texts}")

    region = messages[prompt_messages:]
    turns = [m for m in region if m.get("role") == "assistant"]
    seen = sum(len(m.get("tool_calls") or ()) for m in turns)
    seen = min(seen, len(calls))
    missing = len(calls) - seen
    output: list[dict[str, Any]] = []
    for call, result in calls[:missing]:
        fc, out = _call_items(call, result)
        output += [fc, out]
    cursor = missing
    final = False
    for i, msg in enumerate(turns):
        text = msg.get("content")
        text = text if isinstance(text, str) else (_text_of(text) if text else "")
        n_calls = len(msg.get("tool_calls") or ())
        if n_calls:
            if isinstance(text, str) and text.strip():
                output.append(message(text))
            pairs = [_call_items(c, r) for c, r in calls[cursor : cursor + n_calls]]
            cursor += n_calls
            output += [fc for fc, _ in pairs] + [out for _, out in pairs]
        elif i == len(turns) - 1:
            output.append(message(text if isinstance(text, str) else ""))
            final = True
        elif isinstance(text, str) and text.strip():
            output.append(message(text))
    return output, final


def build_response(
    *,
    messages: list[dict[str, Any]],
    calls: list[tuple[ToolCall, ToolResult]],
    prompt_messages: int,
    model: str | None,
    tools: list[dict[str, Any]],
    create_params: dict[str, Any] | None = None,
    response_id: str | None = None,
    created_at: float | None = None,
) -> dict[str, Any]:
    """A complete Responses API object for one rollout, as ``/verify`` expects it.

    ``tools`` are the tools the model was offered (Responses or chat form);
    ``create_params`` (the row's ``responses_create_params``) supplies
    ``parallel_tool_calls``, ``tool_choice`` and sampling fields when present.
    A rollout that stopped without a final message (turn limit, timeout) is
    ``status: "incomplete"``.
    """
    params = create_params or {}
    token = uuid.uuid4().hex
    output, final = build_output(messages, calls, prompt_messages=prompt_messages, id_base=token)
    created = created_at if created_at is not None else time.time()
    return {
        "id": response_id or f"resp_{token}",
        "object": "response",
        "created_at": created,
        "model": model or params.get("model") or "unknown",
        "status": "completed" if final else "incomplete",
        "error": None,
        "incomplete_details": None,
        "instructions": params.get("instructions"),
        "metadata": params.get("metadata"),
        "output": output,
        "parallel_tool_calls": bool(params.get("parallel_tool_calls", True)),
        "tool_choice": params.get("tool_choice", "auto"),
        "tools": [chat_tool_to_responses(t) for t in tools],
        "temperature": params.get("temperature"),
        "top_p": params.get("top_p"),
        "max_output_tokens": params.get("max_output_tokens"),
        "previous_response_id": None,
        "reasoning": params.get("reasoning"),
        "text": params.get("text"),
        "truncation": params.get("truncation"),
        "usage": None,
        "user": params.get("user"),
    }
