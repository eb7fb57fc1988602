"""A scripted, OpenAI-compatible HTTP server for tests.

The LLM is the only stand-in the project's tests may use.  This module provides
it: a small HTTP/1.1 server on 127.0.0.1 (ephemeral port, background thread,
own asyncio loop) that answers ``POST /v1/chat/completions``,
``POST /v1/responses`` and ``GET /v1/models`` with predetermined replies, so
the code under test talks to it through the real ``openai`` SDK over real HTTP.

Why a raw asyncio server rather than uvicorn + FastAPI: the fault replies
(connection reset with an RST, a body shorter than its Content-Length, a
request that never gets an answer) need control of the socket that an ASGI
app does not have, and the per-request cost of a raw server is a fraction of
an ASGI stack's, which matters for the benchmark that runs through it.

Two ways to program it::

    # (b) FIFO: one reply per request, in order
    with ScriptedServer([tool_call("ls", {"path": "."}), answer("done")]) as srv:
        client = AsyncOpenAI(base_url=srv.base_url, api_key="x")

    # (a) policy: a function of the request, deterministic under concurrency
    def policy(req: ScriptedRequest) -> Reply:
        if req.turn == 0:
            return tool_call("lookup", {"q": req.first_user_text})
        return answer("final: " + req.first_user_text)

    with ScriptedServer(policy, latency=0.01) as srv: ...

    # or: a FIFO per conversation, keyed by the first user message
    with ScriptedServer(conversations({"task A": [http_error(429), answer("a")],
                                       "task B": [answer("b")]})) as srv: ...

Every request is recorded in ``srv.requests`` (a thread-safe snapshot).
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import inspect
import itertools
import socket
import struct
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from http import HTTPStatus
from typing import Any, Literal, Union

import orjson

__all__ = [
    "ScriptedServer",
    "ScriptedRequest",
    "ScriptedServerError",
    "Reply",
    "Completion",
    "ToolCallSpec",
    "Usage",
    "HttpError",
    "Delay",
    "Hang",
    "TruncatedBody",
    "ConnectionReset",
    "EmptyChoices",
    "Raw",
    "answer",
    "tool_call",
    "tool_calls",
    "partial_tool_call",
    "http_error",
    "context_overflow",
    "delay",
    "hang",
    "truncated_body",
    "connection_reset",
    "empty_choices",
    "raw",
    "conversations",
]

DEFAULT_MODEL = "scripted-model"

# --------------------------------------------------------------------------- #
# Replies
# --------------------------------------------------------------------------- #

ReasoningField = Literal["reasoning_content", "reasoning", "think"]


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts reported with a reply; mapped onto both APIs' usage shapes."""

    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @classmethod
    def coerce(cls, value: "Usage | Mapping[str, int] | None") -> "Usage | None":
        if value is None or isinstance(value, Usage):
            return value
        v = dict(value)
        # accept the Responses API's names too
        if "input_tokens" in v:
            v["prompt_tokens"] = v.pop("input_tokens")
        if "output_tokens" in v:
            v["completion_tokens"] = v.pop("output_tokens")
        v.pop("total_tokens", None)
        return cls(**v)


class Reply:
    """Base class of everything a script or policy may return."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class ToolCallSpec:
    name: str
    arguments: str  # sent verbatim (already JSON text, or deliberately malformed)
    id: str | None = None


@dataclass(frozen=True, slots=True)
class Completion(Reply):
    """A normal 200 answer: text and/or tool calls, optional reasoning."""

    content: str | None = None
    tool_calls: tuple[ToolCallSpec, ...] = ()
    reasoning: str | None = None
    reasoning_field: ReasoningField = "reasoning_content"
    finish_reason: str | None = None  # default: "tool_calls" if tool calls else "stop"
    usage: Usage | None = None  # default: a cheap estimate from byte lengths
    model: str | None = None  # default: the model named in the request

    def with_usage(
        self,
        prompt_tokens: int,
        completion_tokens: int,
        cached_tokens: int = 0,
        reasoning_tokens: int = 0,
    ) -> "Completion":
        return dataclasses.replace(
            self, usage=Usage(prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens)
        )

    def with_finish_reason(self, finish_reason: str) -> "Completion":
        return dataclasses.replace(self, finish_reason=finish_reason)


@dataclass(frozen=True, slots=True)
class EmptyChoices(Reply):
    """200 with ``choices: []`` (chat) / ``output: []`` (responses)."""

    usage: Usage | None = None


@dataclass(frozen=True, slots=True)
class HttpError(Reply):
    status: int
    body: Any = None  # dict -> JSON; str/bytes -> verbatim; None -> an OpenAI-style error
    headers: Mapping[str, str] = field(default_factory=dict)
    content_type: str | None = None


@dataclass(frozen=True, slots=True)
class Raw(Reply):
    """Any status/body/headers, sent as given (dict bodies are JSON-encoded)."""

    status: int = 200
    body: Any = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    content_type: str = "application/json"


@dataclass(frozen=True, slots=True)
class Delay(Reply):
    seconds: float
    then: Reply


@dataclass(frozen=True, slots=True)
class Hang(Reply):
    """Never answer (until the client gives up or the server stops)."""


@dataclass(frozen=True, slots=True)
class TruncatedBody(Reply):
    """``mode="close"``: send the headers with the full Content-Length, half the
    bytes, then close.  ``mode="json"``: a complete HTTP message whose JSON body
    is cut in half (Content-Length matches the bytes sent)."""

    reply: Reply | None = None
    mode: Literal["close", "json"] = "close"


@dataclass(frozen=True, slots=True)
class ConnectionReset(Reply):
    """Abort the TCP connection with an RST (SO_LINGER 0) after sending
    ``after_bytes`` bytes of a would-be 200 response (0: nothing at all)."""

    after_bytes: int = 0


ReplyLike = Union[Reply, str]
Policy = Callable[["ScriptedRequest"], Any]


def _args_text(arguments: Mapping[str, Any] | str) -> str:
    if isinstance(arguments, str):
        return arguments
    return orjson.dumps(arguments).decode()


def answer(
    text: str | None,
    reasoning: str | None = None,
    reasoning_field: ReasoningField = "reasoning_content",
    *,
    finish_reason: str | None = None,
    usage: Usage | Mapping[str, int] | None = None,
    model: str | None = None,
) -> Completion:
    """A final text answer.  ``reasoning`` goes to ``message.reasoning_content``
    (or ``message.reasoning``; or with ``reasoning_field="think"`` into the
    content as a ``<think>...</think>`` prefix).  ``text`` is sent verbatim, so it
    may itself carry a ``<think>`` block."""
    return Completion(
        content=text,
        reasoning=reasoning,
        reasoning_field=reasoning_field,
        finish_reason=finish_reason,
        usage=Usage.coerce(usage),
        model=model,
    )


def tool_call(
    name: str,
    arguments: Mapping[str, Any] | str | None = None,
    id: str | None = None,
    *,
    content: str | None = None,
    reasoning: str | None = None,
    reasoning_field: ReasoningField = "reasoning_content",
    finish_reason: str | None = None,
    usage: Usage | Mapping[str, int] | None = None,
    model: str | None = None,
) -> Completion:
    """One tool call.  A ``str`` ``arguments`` is sent verbatim (malformed JSON ok)."""
    spec = ToolCallSpec(name, _args_text({} if arguments is None else arguments), id)
    return Completion(
        content=content,
        tool_calls=(spec,),
        reasoning=reasoning,
        reasoning_field=reasoning_field,
        finish_reason=finish_reason,
        usage=Usage.coerce(usage),
        model=model,
    )


CallLike = Union[Completion, ToolCallSpec, tuple]


def tool_calls(
    calls: Iterable[CallLike],
    *,
    content: str | None = None,
    reasoning: str | None = None,
    reasoning_field: ReasoningField = "reasoning_content",
    finish_reason: str | None = None,
    usage: Usage | Mapping[str, int] | None = None,
    model: str | None = None,
) -> Completion:
    """Several tool calls in one assistant turn.  Items: ``tool_call(...)``
    results, ``ToolCallSpec``s, or ``(name, arguments[, id])`` tuples."""
    specs: list[ToolCallSpec] = []
    for c in calls:
        if isinstance(c, Completion):
            specs.extend(c.tool_calls)
        elif isinstance(c, ToolCallSpec):
            specs.append(c)
        elif isinstance(c, tuple) and 2 <= len(c) <= 3:
            specs.append(ToolCallSpec(c[0], _args_text(c[1]), c[2] if len(c) == 3 else None))
        else:
            raise TypeError(f"not a tool call: {c!r}")
    return Completion(
        content=content,
        tool_calls=tuple(specs),
        reasoning=reasoning,
        reasoning_field=reasoning_field,
        finish_reason=finish_reason,
        usage=Usage.coerce(usage),
        model=model,
    )


def partial_tool_call(
    name: str,
    arguments: Mapping[str, Any] | str = '{"path": "/tmp/out.txt", "content": "def f(x):\\n    ret',
    id: str | None = None,
    *,
    usage: Usage | Mapping[str, int] | None = None,
) -> Completion:
    """A half-written tool call cut off by the token limit: ``finish_reason="length"``.
    A dict ``arguments`` is serialised and cut in half; a str is sent verbatim."""
    if not isinstance(arguments, str):
        full = _args_text(arguments)
        arguments = full[: max(1, len(full) // 2)]
    return Completion(
        tool_calls=(ToolCallSpec(name, arguments, id),),
        finish_reason="length",
        usage=Usage.coerce(usage),
    )


_DEFAULT_ERRORS: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "permission_denied"),
    404: ("invalid_request_error", "model_not_found"),
    408: ("timeout", None),
    409: ("invalid_request_error", "conflict"),
    422: ("invalid_request_error", None),
    429: ("requests", "rate_limit_exceeded"),
}


def http_error(
    status: int,
    body: Mapping[str, Any] | str | bytes | None = None,
    headers: Mapping[str, str] | None = None,
    *,
    message: str | None = None,
    content_type: str | None = None,
) -> HttpError:
    """An HTTP error reply, e.g. ``http_error(429, headers={"Retry-After": "0.2"})``.
    Without ``body`` an OpenAI-style ``{"error": {...}}`` body is generated."""
    if body is None:
        etype, code = _DEFAULT_ERRORS.get(status, ("server_error" if status >= 500 else "error", None))
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "Error"
        body = {
            "error": {
                "message": message or f"scripted {status} {phrase}",
                "type": etype,
                "param": None,
                "code": code,
            }
        }
    return HttpError(status, body, dict(headers or {}), content_type)


def context_overflow(
    max_context: int = 4096,
    requested: int = 5000,
    *,
    style: Literal["openai", "vllm"] = "openai",
    param: str = "messages",
) -> HttpError:
    """400 for a prompt beyond the context window, in OpenAI's or vLLM's shape."""
    if style == "vllm":
        msg = (
            f"This model's maximum context length is {max_context} tokens. However, you requested "
            f"{requested} tokens ({requested - 256} in the messages, 256 in the completion). "
            "Please reduce the length of the messages or completion."
        )
        body: dict[str, Any] = {
            "object": "error",
            "message": msg,
            "type": "BadRequestError",
            "param": None,
            "code": 400,
        }
    else:
        msg = (
            f"This model's maximum context length is {max_context} tokens. However, you requested "
            f"{requested} tokens ({requested - 256} in the messages, 256 in the completion). "
            "Please reduce the length of the messages or completion."
        )
        body = {
            "error": {
                "message": msg,
                "type": "invalid_request_error",
                "param": param,
                "code": "context_length_exceeded",
            }
        }
    return HttpError(400, body, {})


def delay(seconds: float, then: ReplyLike | None = None) -> Delay:
    """Wait ``seconds`` (without blocking other requests), then send ``then``."""
    return Delay(seconds, _coerce_reply(then if then is not None else answer("ok")))


def hang() -> Hang:
    return Hang()


def truncated_body(reply: ReplyLike | None = None, mode: Literal["close", "json"] = "close") -> TruncatedBody:
    return TruncatedBody(None if reply is None else _coerce_reply(reply), mode)


def connection_reset(after_bytes: int = 0) -> ConnectionReset:
    return ConnectionReset(after_bytes)


def empty_choices(usage: Usage | Mapping[str, int] | None = None) -> EmptyChoices:
    return EmptyChoices(Usage.coerce(usage))


def raw(
    status: int = 200,
    body: Any = b"",
    headers: Mapping[str, str] | None = None,
    content_type: str = "application/json",
) -> Raw:
    return Raw(status, body, dict(headers or {}), content_type)


def _coerce_reply(r: Any) -> Reply:
    if isinstance(r, Reply):
        return r
    if isinstance(r, str):
        return answer(r)
    raise TypeError(f"a scripted reply must be a Reply (or a str for answer()), got {type(r).__name__}: {r!r}")


def conversations(
    scripts: Mapping[str, Sequence[ReplyLike]],
    *,
    key: Callable[["ScriptedRequest"], str] | None = None,
    default: Policy | None = None,
) -> Policy:
    """A policy with one FIFO per conversation, keyed by the first user message
    (or ``key(request)``).  Deterministic under any interleaving of concurrent
    conversations, and retries (after a fault) naturally take the next entry."""
    queues = {k: collections.deque(v) for k, v in scripts.items()}
    lock = threading.Lock()
    keyfn = key or (lambda r: r.first_user_text)

    def policy(req: "ScriptedRequest") -> Any:
        k = keyfn(req)
        with lock:
            q = queues.get(k)
            if q:
                return q.popleft()
        if default is not None:
            return default(req)
        if q is None:
            raise ScriptedServerError(f"no script for conversation {k!r} (known: {sorted(queues)[:10]})")
        raise ScriptedServerError(f"script for conversation {k!r} is exhausted (turn {req.turn})")

    policy.queues = queues  # type: ignore[attr-defined]  # for assertions: all consumed?
    return policy


# --------------------------------------------------------------------------- #
# Requests
# --------------------------------------------------------------------------- #


class ScriptedServerError(AssertionError):
    """A request the script could not answer (policy raised, FIFO exhausted,
    unknown route).  Raised on ``__exit__``/``stop(check=True)``."""


def _text_of(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for p in content:
            if isinstance(p, str):
                parts.append(p)
            elif isinstance(p, dict) and isinstance(p.get("text"), str):
                parts.append(p["text"])
        return "".join(parts)
    return str(content)


class ScriptedRequest:
    """One received request.  Derived views (messages, turn, ...) are lazy."""

    __slots__ = (
        "index",
        "method",
        "path",
        "endpoint",
        "raw_headers",
        "headers",
        "raw_body",
        "arrival",
        "arrival_wall",
        "reply",
        "status",
        "__dict__",
    )

    def __init__(
        self,
        index: int,
        method: str,
        path: str,
        raw_headers: list[tuple[str, str]],
        raw_body: bytes,
    ) -> None:
        self.index = index
        self.method = method
        self.path = path
        p = path.split("?", 1)[0].rstrip("/")
        if p.startswith("/v1"):
            p = p[3:]
        self.endpoint = {
            "/chat/completions": "chat",
            "/responses": "responses",
            "/completions": "completions",  # the legacy text API: ``prompt`` in, ``choices[].text`` out
        }.get(p, "models" if p.startswith("/models") else "other")
        self.raw_headers = raw_headers
        self.headers = {k.lower(): v for k, v in raw_headers}
        self.raw_body = raw_body
        self.arrival = time.monotonic()
        self.arrival_wall = time.time()
        self.reply: Reply | None = None
        self.status: int | None = None

    def __repr__(self) -> str:
        return f"<ScriptedRequest #{self.index} {self.method} {self.path} turn={self.turn if self.body else '-'}>"

    @cached_property
    def body(self) -> dict[str, Any]:
        if not self.raw_body:
            return {}
        try:
            b = orjson.loads(self.raw_body)
        except orjson.JSONDecodeError:
            return {}
        return b if isinstance(b, dict) else {"_": b}

    @property
    def json(self) -> dict[str, Any]:
        return self.body

    @property
    def model(self) -> str | None:
        return self.body.get("model")

    @cached_property
    def messages(self) -> list[dict[str, Any]]:
        """Chat: ``messages``.  Responses: ``instructions`` (as a system message)
        followed by the ``input`` items (a str input becomes one user message)."""
        b = self.body
        if self.endpoint == "completions":
            return [{"role": "user", "content": b.get("prompt")}] if isinstance(b.get("prompt"), str) else []
        if self.endpoint != "responses":
            m = b.get("messages")
            return m if isinstance(m, list) else []
        out: list[dict[str, Any]] = []
        if b.get("instructions"):
            out.append({"role": "system", "content": b["instructions"]})
        inp = b.get("input")
        if isinstance(inp, str):
            out.append({"role": "user", "content": inp})
        elif isinstance(inp, list):
            out.extend(i for i in inp if isinstance(i, dict))
        return out

    @cached_property
    def tools(self) -> list[dict[str, Any]]:
        t = self.body.get("tools")
        return t if isinstance(t, list) else []

    @cached_property
    def tool_names(self) -> list[str]:
        names = []
        for t in self.tools:
            if not isinstance(t, dict):
                continue
            fn = t.get("function")
            name = fn.get("name") if isinstance(fn, dict) else t.get("name")
            if name:
                names.append(name)
        return names

    @cached_property
    def turn(self) -> int:
        """Assistant turns already in the conversation.  Chat: assistant messages.
        Responses: runs of consecutive assistant items (assistant messages,
        ``function_call`` and ``reasoning`` items)."""
        if self.endpoint != "responses":
            return sum(1 for m in self.messages if isinstance(m, dict) and m.get("role") == "assistant")
        n, in_run = 0, False
        for it in self.messages:
            assistantish = it.get("role") == "assistant" or it.get("type") in ("function_call", "reasoning")
            if assistantish and not in_run:
                n += 1
            in_run = assistantish
        return n

    @cached_property
    def first_user_text(self) -> str:
        for m in self.messages:
            if m.get("role") == "user":
                return _text_of(m.get("content"))
        return ""

    @cached_property
    def last_user_text(self) -> str:
        for m in reversed(self.messages):
            if m.get("role") == "user":
                return _text_of(m.get("content"))
        return ""

    @cached_property
    def tool_results(self) -> list[dict[str, Any]]:
        """The tool results after the last assistant turn: chat ``role: tool``
        messages / responses ``function_call_output`` items."""
        out: list[dict[str, Any]] = []
        for m in reversed(self.messages):
            if m.get("role") == "tool" or m.get("type") == "function_call_output":
                out.append(m)
            else:
                break
        out.reverse()
        return out

    @property
    def last_message(self) -> dict[str, Any] | None:
        return self.messages[-1] if self.messages else None


# --------------------------------------------------------------------------- #
# Rendering
# --------------------------------------------------------------------------- #


def _estimate_usage(req: ScriptedRequest, c: Completion | None) -> Usage:
    prompt = max(1, len(req.raw_body) // 4)
    if c is None:
        return Usage(prompt, 0)
    n = len(c.content or "")
    for t in c.tool_calls:
        n += len(t.name) + len(t.arguments)
    r = len(c.reasoning or "") // 4
    return Usage(prompt, max(1, n // 4) + r, 0, r)


class _Ids:
    def __init__(self) -> None:
        self._c = itertools.count(1)

    def next(self) -> int:
        return next(self._c)  # itertools.count is atomic under the GIL


def _chat_usage(u: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "total_tokens": u.total_tokens,
        "prompt_tokens_details": {"cached_tokens": u.cached_tokens},
        "completion_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
    }


def _responses_usage(u: Usage) -> dict[str, Any]:
    return {
        "input_tokens": u.prompt_tokens,
        "output_tokens": u.completion_tokens,
        "total_tokens": u.total_tokens,
        # cache_write_tokens: required by newer SDKs' InputTokensDetails
        "input_tokens_details": {"cached_tokens": u.cached_tokens, "cache_write_tokens": 0},
        "output_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
    }


def _render_chat(req: ScriptedRequest, reply: Completion | EmptyChoices, n: int, model: str) -> dict[str, Any]:
    created = int(time.time())
    if isinstance(reply, EmptyChoices):
        return {
            "id": f"chatcmpl-scripted{n}",
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [],
            "usage": _chat_usage(reply.usage or _estimate_usage(req, None)),
        }
    content = reply.content
    msg: dict[str, Any] = {"role": "assistant", "content": content}
    if reply.reasoning is not None:
        if reply.reasoning_field == "think":
            msg["content"] = f"<think>{reply.reasoning}</think>{content or ''}"
        else:
            msg[reply.reasoning_field] = reply.reasoning
    if reply.tool_calls:
        msg["tool_calls"] = [
            {
                "id": t.id or f"call_scripted{n}_{i}",
                "type": "function",
                "function": {"name": t.name, "arguments": t.arguments},
            }
            for i, t in enumerate(reply.tool_calls)
        ]
    finish = reply.finish_reason or ("tool_calls" if reply.tool_calls else "stop")
    return {
        "id": f"chatcmpl-scripted{n}",
        "object": "chat.completion",
        "created": created,
        "model": reply.model or model,
        "choices": [{"index": 0, "message": msg, "logprobs": None, "finish_reason": finish}],
        "usage": _chat_usage(reply.usage or _estimate_usage(req, reply)),
    }


def _render_text_completion(req: ScriptedRequest, reply: Completion | EmptyChoices, n: int,
                            model: str) -> dict[str, Any]:
    """A legacy ``/completions`` reply: the content as ``choices[0].text`` (tool calls cannot be sent)."""
    choices = [] if isinstance(reply, EmptyChoices) else [
        {"index": 0, "text": reply.content or "", "logprobs": None, "finish_reason": reply.finish_reason or "stop"}]
    usage = _chat_usage(reply.usage or _estimate_usage(req, None if isinstance(reply, EmptyChoices) else reply))
    return {"id": f"cmpl-scripted{n}", "object": "text_completion", "created": int(time.time()),
            "model": model, "choices": choices, "usage": usage}


def _render_responses(req: ScriptedRequest, reply: Completion | EmptyChoices, n: int, model: str) -> dict[str, Any]:
    b = req.body
    output: list[dict[str, Any]] = []
    status, incomplete = "completed", None
    if isinstance(reply, EmptyChoices):
        usage = reply.usage or _estimate_usage(req, None)
    else:
        usage = reply.usage or _estimate_usage(req, reply)
        model = reply.model or model
        truncated = reply.finish_reason == "length"
        item_status = "incomplete" if truncated else "completed"
        if truncated:
            status, incomplete = "incomplete", {"reason": "max_output_tokens"}
        elif reply.finish_reason == "content_filter":
            status, incomplete = "incomplete", {"reason": "content_filter"}
        content = reply.content
        if reply.reasoning is not None:
            if reply.reasoning_field == "think":
                content = f"<think>{reply.reasoning}</think>{content or ''}"
            else:
                output.append(
                    {
                        "type": "reasoning",
                        "id": f"rs_scripted{n}",
                        "summary": [],
                        "content": [{"type": "reasoning_text", "text": reply.reasoning}],
                        "status": "completed",
                    }
                )
        if content is not None:
            output.append(
                {
                    "type": "message",
                    "id": f"msg_scripted{n}",
                    "role": "assistant",
                    "status": item_status,
                    "content": [{"type": "output_text", "text": content, "annotations": []}],
                }
            )
        for i, t in enumerate(reply.tool_calls):
            output.append(
                {
                    "type": "function_call",
                    "id": f"fc_scripted{n}_{i}",
                    "call_id": t.id or f"call_scripted{n}_{i}",
                    "name": t.name,
                    "arguments": t.arguments,
                    "status": item_status,
                }
            )
    now = time.time()
    return {
        "id": f"resp_scripted{n}",
        "object": "response",
        "created_at": now,
        "completed_at": now,
        "status": status,
        "error": None,
        "incomplete_details": incomplete,
        "instructions": b.get("instructions"),
        "max_output_tokens": b.get("max_output_tokens"),
        "model": model,
        "output": output,
        "parallel_tool_calls": b.get("parallel_tool_calls", True),
        "previous_response_id": b.get("previous_response_id"),
        "reasoning": b.get("reasoning") or {"effort": None, "summary": None},
        "store": b.get("store", False),
        "temperature": b.get("temperature", 1.0),
        "text": b.get("text") or {"format": {"type": "text"}},
        "tool_choice": b.get("tool_choice", "auto"),
        "tools": b.get("tools", []),
        "top_p": b.get("top_p", 1.0),
        "truncation": b.get("truncation", "disabled"),
        "usage": _responses_usage(usage),
        "metadata": b.get("metadata") or {},
    }


def _error_body(message: str, etype: str = "scripted_server_error", code: Any = None) -> bytes:
    return orjson.dumps({"error": {"message": message, "type": etype, "param": None, "code": code}})


_REASONS = {s.value: s.phrase for s in HTTPStatus}


def _head(status: int, content_type: str | None, length: int, extra: Mapping[str, str], n: int, close: bool) -> bytes:
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}\r\n"]
    if content_type:
        lines.append(f"content-type: {content_type}\r\n")
    if not any(k.lower() == "transfer-encoding" for k in extra):  # never both (RFC 9112 6.3)
        lines.append(f"content-length: {length}\r\n")
    lines.append(f"x-request-id: req_scripted{n}\r\n")
    for k, v in extra.items():
        lines.append(f"{k}: {v}\r\n")
    lines.append("connection: close\r\n\r\n" if close else "connection: keep-alive\r\n\r\n")
    return "".join(lines).encode("latin-1")


def _encode_body(body: Any, content_type: str | None) -> tuple[bytes, str]:
    if isinstance(body, bytes):
        return body, content_type or "application/json"
    if isinstance(body, str):
        return body.encode(), content_type or "text/plain; charset=utf-8"
    return orjson.dumps(body), content_type or "application/json"


# --------------------------------------------------------------------------- #
# The server
# --------------------------------------------------------------------------- #


class _Close(Exception):
    pass


class ScriptedServer:
    """See the module docstring.

    ``script``: a policy callable ``(ScriptedRequest) -> Reply | str`` (may be
    ``async``), or an iterable of replies served first-in first-out (an item may
    itself be a callable of the request), or ``None`` (empty FIFO; ``enqueue``).
    ``latency``: seconds added before every reply (non-blocking).
    ``strict``: raise ``ScriptedServerError`` on exit if any request could not be
    answered from the script (policy raised, FIFO exhausted, unknown route).
    """

    def __init__(
        self,
        script: Policy | Iterable[Any] | None = None,
        *,
        latency: float = 0.0,
        model: str = DEFAULT_MODEL,
        host: str = "127.0.0.1",
        port: int = 0,
        strict: bool = True,
        chat_paths: Iterable[str] = (),
    ) -> None:
        #: extra paths answered as chat completions (e.g. a non-standard ``/experimental/generate``)
        self.chat_paths = frozenset(chat_paths)
        self._policy: Policy | None = None
        self._fifo: collections.deque[Any] = collections.deque()
        if callable(script):
            self._policy = script
        elif script is not None:
            self._fifo.extend(script)
        self.latency = float(latency)
        self.model = model
        self.host = host
        self._port_req = port
        self.strict = strict
        self._lock = threading.Lock()
        self._requests: list[ScriptedRequest] = []
        self._errors: list[str] = []
        self._ids = _Ids()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._conns: set[asyncio.Task] = set()
        self._n_connections = 0
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self.port: int = 0

    # ---- lifecycle --------------------------------------------------------

    def start(self) -> "ScriptedServer":
        if self._thread is not None:
            raise RuntimeError("ScriptedServer already started")
        self._thread = threading.Thread(target=self._run, name="scripted-llm-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("ScriptedServer did not start within 10 s")
        if self._startup_error is not None:
            raise RuntimeError("ScriptedServer failed to start") from self._startup_error
        return self

    def stop(self, check: bool | None = None) -> None:
        """Stop the server (idempotent).  With ``check`` (default: ``strict``),
        raise ``ScriptedServerError`` if a request could not be answered."""
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None and thread.is_alive():
            try:
                fut = asyncio.run_coroutine_threadsafe(self._shutdown(), loop)
                fut.result(10)
            except Exception:
                pass
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
        if self.strict if check is None else check:
            self.check()

    close = stop

    def check(self) -> None:
        """Raise ``ScriptedServerError`` if any request could not be answered."""
        with self._lock:
            errs = list(self._errors)
        if errs:
            more = f" (+{len(errs) - 1} more)" if len(errs) > 1 else ""
            raise ScriptedServerError(f"scripted server: {errs[0]}{more}")

    def __enter__(self) -> "ScriptedServer":
        return self.start()

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        # never mask the test's own exception with ours
        self.stop(check=self.strict and exc_type is None)

    async def __aenter__(self) -> "ScriptedServer":
        return self.start()

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.stop(check=self.strict and exc_type is None)

    # ---- public API -------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @property
    def requests(self) -> list[ScriptedRequest]:
        """A snapshot of every request received so far, in arrival order."""
        with self._lock:
            return list(self._requests)

    @property
    def last_request(self) -> ScriptedRequest | None:
        with self._lock:
            return self._requests[-1] if self._requests else None

    @property
    def errors(self) -> list[str]:
        with self._lock:
            return list(self._errors)

    @property
    def connections_accepted(self) -> int:
        """TCP connections accepted so far (keep-alive reuse keeps this low)."""
        return self._n_connections

    @property
    def pending(self) -> int:
        """Replies still queued in FIFO mode."""
        with self._lock:
            return len(self._fifo)

    def enqueue(self, *replies: Any) -> None:
        with self._lock:
            self._fifo.extend(replies)

    def set_policy(self, policy: Policy | None) -> None:
        with self._lock:
            self._policy = policy

    def reset(self) -> None:
        """Forget recorded requests and errors."""
        with self._lock:
            self._requests.clear()
            self._errors.clear()

    def async_client(self, **kwargs: Any) -> Any:
        """An ``openai.AsyncOpenAI`` pointed at this server (caller closes it)."""
        import openai

        kwargs.setdefault("api_key", "sk-scripted")
        kwargs.setdefault("base_url", self.base_url)
        return openai.AsyncOpenAI(**kwargs)

    # ---- internals --------------------------------------------------------

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            self._server = loop.run_until_complete(
                asyncio.start_server(
                    self._on_connect, self.host, self._port_req, limit=1 << 20, backlog=1024, reuse_address=True
                )
            )
            self.port = self._server.sockets[0].getsockname()[1]
        except BaseException as e:  # pragma: no cover - startup failure
            self._startup_error = e
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            try:
                pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
                for t in pending:
                    t.cancel()
                if pending:
                    loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for t in list(self._conns):
            t.cancel()
        if self._conns:
            await asyncio.gather(*self._conns, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    def _error(self, msg: str) -> None:
        with self._lock:
            self._errors.append(msg)

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._conns.add(task)
        self._n_connections += 1
        try:
            await self._serve_connection(reader, writer)
        except (_Close, ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        except Exception:  # a bug here must not kill the loop; report it
            self._error("server bug:\n" + traceback.format_exc())
        finally:
            self._conns.discard(task)
            if not writer.is_closing():
                writer.close()

    async def _serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                return  # clean EOF between requests
            except asyncio.LimitOverrunError:
                writer.write(_head(431, "application/json", 0, {}, 0, True))
                return
            lines = head.decode("latin-1").split("\r\n")
            try:
                method, target, version = lines[0].split(" ", 2)
            except ValueError:
                body = _error_body("bad request line")
                writer.write(_head(400, "application/json", len(body), {}, 0, True) + body)
                return
            raw_headers: list[tuple[str, str]] = []
            clen = 0
            chunked = False
            conn_hdr = ""
            expect = ""
            for line in lines[1:]:
                if not line:
                    continue
                k, _, v = line.partition(":")
                v = v.strip()
                raw_headers.append((k, v))
                kl = k.lower()
                if kl == "content-length":
                    clen = int(v)
                elif kl == "transfer-encoding":
                    chunked = "chunked" in v.lower()
                elif kl == "connection":
                    conn_hdr = v.lower()
                elif kl == "expect":
                    expect = v.lower()
            if expect == "100-continue":
                writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            if chunked:
                body_bytes = await self._read_chunked(reader)
            elif clen:
                body_bytes = await reader.readexactly(clen)
            else:
                body_bytes = b""
            close = conn_hdr == "close" or (version == "HTTP/1.0" and conn_hdr != "keep-alive")

            n = self._ids.next()
            req = ScriptedRequest(n, method, target, raw_headers, body_bytes)
            if req.endpoint == "other" and target.split("?", 1)[0] in self.chat_paths:
                req.endpoint = "chat"
            with self._lock:
                self._requests.append(req)
            await self._respond(req, writer, close)
            if close:
                await writer.drain()
                return

    @staticmethod
    async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
        parts = []
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                # trailers until empty line
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass
                return b"".join(parts)
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)

    async def _choose(self, req: ScriptedRequest) -> tuple[Reply | None, str]:
        """Pick the reply for ``req``; on a scripting error record it and return (None, message)."""
        try:
            with self._lock:
                policy = self._policy
                item = None
                if policy is None:
                    if not self._fifo:
                        raise ScriptedServerError(
                            f"FIFO exhausted: request #{req.index} {req.method} {req.path} "
                            f"(turn {req.turn}, first user text {req.first_user_text[:60]!r}) has no reply"
                        )
                    item = self._fifo.popleft()
            r = policy(req) if policy is not None else item
            if callable(r) and not isinstance(r, Reply):
                r = r(req)
            if inspect.isawaitable(r):
                r = await r
            return _coerce_reply(r), ""
        except Exception as e:
            msg = e.args[0] if isinstance(e, ScriptedServerError) and e.args else (
                f"policy raised on request #{req.index} {req.path}: {type(e).__name__}: {e}\n"
                + traceback.format_exc()
            )
            self._error(msg)
            return None, msg

    async def _respond(self, req: ScriptedRequest, writer: asyncio.StreamWriter, close: bool) -> None:
        n = req.index
        ep = req.endpoint
        if ep == "models" and req.method == "GET":
            rest = req.path.split("?", 1)[0].rstrip("/").split("/models", 1)[1].lstrip("/")
            mdl = {"id": rest or self.model, "object": "model", "created": 0, "owned_by": "scripted"}
            body = orjson.dumps(mdl if rest else {"object": "list", "data": [mdl]})
            req.status = 200
            writer.write(_head(200, "application/json", len(body), {}, n, close) + body)
            return
        if ep not in ("chat", "responses", "completions") or req.method != "POST":
            status = 404 if ep == "other" else 405
            self._error(f"unexpected request #{n}: {req.method} {req.path}")
            body = _error_body(f"scripted server: no route for {req.method} {req.path}", "invalid_request_error")
            req.status = status
            writer.write(_head(status, "application/json", len(body), {}, n, close) + body)
            return
        if req.body.get("stream"):
            self._error(f"request #{n} asked for stream=true, which the scripted server does not support")
            body = _error_body("scripted server: stream=true is not supported", "invalid_request_error")
            req.status = 400
            writer.write(_head(400, "application/json", len(body), {}, n, close) + body)
            return

        reply, errmsg = await self._choose(req)
        req.reply = reply
        if self.latency > 0:
            await asyncio.sleep(self.latency)
        if reply is None:
            body = _error_body("scripted server: " + errmsg.splitlines()[0])
            req.status = 500
            # x-should-retry: false keeps the SDK from retrying a scripting error
            writer.write(_head(500, "application/json", len(body), {"x-should-retry": "false"}, n, close) + body)
            return
        await self._send_reply(req, reply, writer, close)

    async def _send_reply(self, req: ScriptedRequest, reply: Reply, writer: asyncio.StreamWriter, close: bool) -> None:
        n = req.index
        while isinstance(reply, Delay):
            await asyncio.sleep(reply.seconds)
            reply = reply.then
        if writer.is_closing():
            raise _Close()
        if isinstance(reply, Hang):
            await asyncio.Event().wait()  # until cancelled by the client closing or stop()
            return
        if isinstance(reply, (Completion, EmptyChoices)):
            data = self._render(req, reply, n)
            req.status = 200
            writer.write(_head(200, "application/json", len(data), {}, n, close) + data)
            return
        if isinstance(reply, HttpError):
            data, ctype = _encode_body(reply.body, reply.content_type)
            req.status = reply.status
            writer.write(_head(reply.status, ctype, len(data), reply.headers, n, close) + data)
            return
        if isinstance(reply, Raw):
            data, ctype = _encode_body(reply.body, reply.content_type)
            req.status = reply.status
            writer.write(_head(reply.status, ctype, len(data), reply.headers, n, close) + data)
            return
        if isinstance(reply, TruncatedBody):
            inner = reply.reply or answer("this body will be cut short " * 8)
            if isinstance(inner, (Completion, EmptyChoices)):
                data = self._render(req, inner, n)
            else:
                data, _ = _encode_body(getattr(inner, "body", b"{}"), None)
            cut = data[: max(1, len(data) // 2)]
            req.status = 200
            if reply.mode == "json":
                writer.write(_head(200, "application/json", len(cut), {}, n, close) + cut)
                return
            writer.write(_head(200, "application/json", len(data), {}, n, True) + cut)
            await writer.drain()
            writer.close()
            raise _Close()
        if isinstance(reply, ConnectionReset):
            req.status = 0
            if reply.after_bytes:
                data = self._render(req, answer("reset " * 64), n)
                full = _head(200, "application/json", len(data), {}, n, False) + data
                writer.write(full[: reply.after_bytes])
                await writer.drain()
            sock = writer.get_extra_info("socket")
            if sock is not None:
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                except OSError:
                    pass
            writer.transport.abort()
            raise _Close()
        raise TypeError(f"unknown reply type {type(reply).__name__}")  # pragma: no cover

    def _render(self, req: ScriptedRequest, reply: Completion | EmptyChoices, n: int) -> bytes:
        model = req.body.get("model") or self.model
        if req.endpoint == "responses":
            return orjson.dumps(_render_responses(req, reply, n, model))
        if req.endpoint == "completions":
            return orjson.dumps(_render_text_completion(req, reply, n, model))
        return orjson.dumps(_render_chat(req, reply, n, model))
