"""``client: fast`` against ``client: openai`` on the same scripted replies.

Every scenario runs once through the SDK client and once through the fast
client, each against its own scripted server with the same script; the two
must produce the same ModelResponse (bar the measured latency), send the same
request body, or fail with the same error type and message after the same
number of requests.
"""

from __future__ import annotations

import dataclasses
import re
import gzip
import time

import pytest

from react_eval.model.factory import build_model
from react_eval.model.sdk import SDKTransport
from react_eval.model.config import GenerationConfig, ModelConfig
from react_eval.model.errors import ModelError
from react_eval.model.transport import HTTPTransport
from tests.support.scripted_server import (
    answer,
    connection_reset,
    context_overflow,
    delay,
    empty_choices,
    http_error,
    partial_tool_call,
    raw,
    tool_call,
    tool_calls,
    truncated_body,
)

pytestmark = pytest.mark.anyio

TOOLS = [{"type": "function", "function": {"name": "bash", "parameters": {"type": "object"}}}]
MSGS = [{"role": "system", "content": "sys"}, {"role": "user", "content": "hi ünïcode"}]
COMPLETION = (
    b'{"id":"x","object":"chat.completion","model":"m","choices":[{"index":0,'
    b'"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}]}'
)


def config(srv, client: str, **kw) -> ModelConfig:
    cfg = dict(base_url=srv.base_url, model="scripted", retry_initial_wait=0.01, retry_max_wait=1.0, client=client)
    cfg.update(kw)
    return ModelConfig(**cfg)


async def outcome(scripted_server, client: str, script, *, tools=TOOLS, messages=MSGS, **kw):
    """(response fields or (error type, message), request bodies) for one client."""
    srv = scripted_server(list(script), strict=False)
    model = build_model(config(srv, client, **kw))
    assert isinstance(model.transport, HTTPTransport if client == "fast" else SDKTransport)
    try:
        resp = await model.complete(messages, tools)
        result = dataclasses.asdict(resp)
        assert result["usage"].pop("model_latency_ms") > 0
        result["assistant_message"] = resp.assistant_message()
    except ModelError as exc:
        cause = exc.__cause__
        def unported(text: str) -> str:  # each client has its own server
            return re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", text)

        result = (type(exc).__name__, unported(str(exc)), type(cause).__name__, unported(str(cause)),
                  getattr(cause, "status", None),
                  getattr(cause, "body", None))
    finally:
        await model.aclose()
    return result, [r.body for r in srv.requests]


SCENARIOS = {
    "answer": [answer("ANSWER: 4", reasoning="2+2", reasoning_field="reasoning_content")],
    "reasoning_field": [answer("x", reasoning="r", reasoning_field="reasoning")],
    "think_block": [answer("y", reasoning="hidden", reasoning_field="think")],
    "tool_calls": [tool_calls([("bash", {"command": "ls"}, "c1"), ("bash", '{"command": ', "c2"), ("bash", "", None)])],
    "usage": [tool_call("bash", {"command": "ls"}, "c1").with_usage(11, 7, cached_tokens=3, reasoning_tokens=2)],
    "length": [partial_tool_call("bash")],
    "empty_content": [answer(None)],
    "retry_429_then_ok": [http_error(429, headers={"Retry-After": "0.05"}), answer("ok")],
    "retry_5xx_reset_truncated_empty": [http_error(500), http_error(503, body="plain text", content_type="text/plain"),
                                        connection_reset(), truncated_body(), empty_choices(), answer("recovered")],
    "garbled_json_twice": [truncated_body(mode="json"), truncated_body(mode="json")],
    "not_json": [raw(200, b"<html>oops</html>", content_type="text/html"), raw(200, b"[1, 2]")],
    "no_message": [raw(200, b'{"choices":[{"index":0}]}'), raw(200, b'{"choices":[{"index":0,"message":"x"}]}')],
    "bad_request": [http_error(400, message="bad field"), answer("never")],
    "overflow_openai": [context_overflow(style="openai")],
    "overflow_vllm": [context_overflow(style="vllm")],
    "auth": [http_error(401)],
    "forbidden": [http_error(403, body={"detail": "no"})],
    "not_found": [http_error(404)],
    "unprocessable": [http_error(422, message="Input is too long for this model")],
    "retries_exhausted": [http_error(502), http_error(502)],
    "text_5xx_exhausted": [http_error(503, body="plain text", content_type="text/plain"),
                           http_error(503, body="plain text", content_type="text/plain")],
    "gzip_body": [raw(200, gzip.compress(COMPLETION), headers={"content-encoding": "gzip"})],
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
async def test_fast_client_matches_openai_client(scripted_server, name):
    script = SCENARIOS[name]
    ref, ref_bodies = await outcome(scripted_server, "openai", script, max_attempts=2 if "twice" in name or
                                    "exhausted" in name or "not_json" in name or "no_message" in name else 6)
    assert ref_bodies, "the scripted server saw no request"
    got, got_bodies = await outcome(scripted_server, "fast", script, max_attempts=2 if "twice" in name or
                                    "exhausted" in name or "not_json" in name or "no_message" in name else 6)
    assert got == ref
    assert got_bodies == ref_bodies
    assert len(got_bodies) >= 1


async def test_both_clients_send_generation_settings_and_extra_body_alike(scripted_server):
    gen = GenerationConfig(temperature=0.3, top_p=0.9, max_tokens=77, seed=5, stop=["END"], frequency_penalty=0.1,
                           presence_penalty=0.2, extra_body={"chat_template_kwargs": {"enable_thinking": False},
                                                             "top_k": 20})
    ref, ref_bodies = await outcome(scripted_server, "openai", [answer("x")], generation=gen)
    got, got_bodies = await outcome(scripted_server, "fast", [answer("x")], generation=gen)
    assert got == ref
    assert got_bodies == ref_bodies
    assert got_bodies[0]["chat_template_kwargs"] == {"enable_thinking": False} and got_bodies[0]["top_k"] == 20
    # no tools: no tools key at all, in both
    _, ref_bodies = await outcome(scripted_server, "openai", [answer("x")], tools=[])
    _, got_bodies = await outcome(scripted_server, "fast", [answer("x")], tools=[])
    assert "tools" not in got_bodies[0] and got_bodies == ref_bodies


async def test_timeouts_are_retried_then_fail_alike(scripted_server):
    results = []
    for client in ("openai", "fast"):
        srv = scripted_server([delay(2.0, answer("late")), delay(2.0, answer("late"))], strict=False)
        model = build_model(config(srv, client, request_timeout=0.3, max_attempts=2))
        t0 = time.perf_counter()
        with pytest.raises(ModelError) as info:
            await model.complete(MSGS, TOOLS)
        elapsed = time.perf_counter() - t0
        await model.aclose()
        assert len(srv.requests) == 2
        assert elapsed < 1.9, "the request deadline did not end the wait"
        results.append((type(info.value), re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", str(info.value))))
    assert results[0] == results[1]
    assert "ModelTimeoutError" in results[1][1]


async def test_fast_client_sends_the_key_and_reuses_connections(scripted_server, monkeypatch):
    monkeypatch.setenv("MY_TEST_KEY", "sk-secret-123")
    srv = scripted_server(lambda req: answer("ok"))
    model = build_model(config(srv, "fast", api_key_env="MY_TEST_KEY"))
    for _ in range(5):
        await model.complete(MSGS, TOOLS)
    await model.aclose()
    assert srv.requests[0].headers["authorization"] == "Bearer sk-secret-123"
    assert srv.requests[0].headers["content-type"] == "application/json"
    assert srv.connections_accepted == 1


async def test_fast_client_reconnects_after_the_server_closes(scripted_server):
    srv = scripted_server([raw(200, COMPLETION, headers={"connection": "close"}), answer("second")])
    model = build_model(config(srv, "fast"))
    first = await model.complete(MSGS, TOOLS)
    second = await model.complete(MSGS, TOOLS)
    await model.aclose()
    assert (first.content, second.content, first.attempts, second.attempts) == ("hi", "second", 1, 1)
    assert srv.connections_accepted == 2


async def test_fast_client_reads_chunked_bodies(scripted_server):
    chunks = [COMPLETION[i : i + 7] for i in range(0, len(COMPLETION), 7)]
    body = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"
    srv = scripted_server([raw(200, body, headers={"transfer-encoding": "chunked"}), answer("again")])
    model = build_model(config(srv, "fast"))
    first = await model.complete(MSGS, TOOLS)
    second = await model.complete(MSGS, TOOLS)  # the connection is still in step after the trailer
    await model.aclose()
    assert (first.content, second.content) == ("hi", "again")


async def test_fast_is_the_default_and_the_sdk_stays_selectable(scripted_server):
    srv = scripted_server([answer("x")])
    assert ModelConfig(base_url=srv.base_url, model="m").client == "fast"
    assert isinstance(build_model(ModelConfig(base_url=srv.base_url, model="m")).transport, HTTPTransport)
    assert isinstance(build_model(ModelConfig(base_url=srv.base_url, model="m", client="openai")).transport,
                      SDKTransport)


def proxy_heads(heads: list[list[bytes]]):
    """A one-request-per-connection HTTP proxy that answers COMPLETION and files the
    request's head (its lines) in ``heads``."""
    import anyio

    async def proxy(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            data = b""
            while b"\r\n\r\n" not in data:
                data += await stream.receive()
            head, _, body = data.partition(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            length = int(next(line.split(b":")[1] for line in lines if line.lower().startswith(b"content-length")))
            while len(body) < length:
                body += await stream.receive()
            heads.append(lines)
            await stream.send(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n"
                              b"content-length: %d\r\n\r\n%s" % (len(COMPLETION), COMPLETION))

    return proxy


async def complete_through_proxy(client: str, proxy_url: str, heads: list[list[bytes]], monkeypatch,
                                 calls: int = 1, no_proxy: str = "") -> None:
    """``calls`` completions of a model at model.invalid with HTTP_PROXY set to ``proxy_url``
    (its ``{port}`` filled in with a proxy serving :func:`proxy_heads`)."""
    import anyio

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    for var in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "no_proxy", "NO_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HTTP_PROXY", proxy_url.format(port=port))
    if no_proxy:
        monkeypatch.setenv("NO_PROXY", no_proxy)
    async with anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, proxy_heads(heads))
        model = build_model(ModelConfig(base_url="http://model.invalid:8000/v1", model="m", client=client,
                                        max_attempts=1))
        try:
            for _ in range(calls):
                assert (await model.complete(MSGS, TOOLS)).content == "hi"
        finally:
            await model.aclose()
        tg.cancel_scope.cancel()


@pytest.mark.parametrize("client", ["openai", "fast"])
async def test_both_clients_send_through_the_proxy_the_environment_names(client, monkeypatch):
    """HTTP_PROXY is honoured (resolved once per service by the fast client); NO_PROXY exempts a host."""
    heads: list[list[bytes]] = []
    await complete_through_proxy(client, "http://127.0.0.1:{port}", heads, monkeypatch, no_proxy="exempt.invalid")
    assert [h[0] for h in heads] == [b"POST http://model.invalid:8000/v1/chat/completions HTTP/1.1"]
    if client == "fast":
        monkeypatch.setenv("NO_PROXY", "model.invalid")
        cfg = ModelConfig(base_url="http://model.invalid:8000/v1", model="m", client=client, max_attempts=1)
        assert build_model(cfg).transport.proxy is None


@pytest.mark.parametrize("client", ["openai", "fast"])
async def test_proxy_credentials_in_the_environment_are_sent_to_the_proxy(client, monkeypatch):
    """HTTP_PROXY=http://user:pass@host: every request through it carries Proxy-Authorization
    (the fast client sets the proxy on its session once, not on each request)."""
    import base64

    heads: list[list[bytes]] = []
    await complete_through_proxy(client, "http://alice:s3cret@127.0.0.1:{port}", heads, monkeypatch, calls=2)
    auth = [next((line.split(b":", 1)[1].strip() for line in h if line.lower().startswith(b"proxy-authorization:")),
                 None) for h in heads]
    assert auth == [b"Basic " + base64.b64encode(b"alice:s3cret")] * 2


def python_output(code: str) -> str:
    """What ``code`` prints in a fresh interpreter (what a new process imports is the point)."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_the_engine_and_the_fast_client_do_not_import_the_sdk():
    """The SDK takes most of a second to import: the CLI and every worker process
    using ``client: fast`` start without it, failures included (it is imported by ``client: openai`` only)."""
    code = ("import sys, react_eval.cli, react_eval.engine.run, react_eval.engine.processes\n"
            "from react_eval.model.factory import build_model\n"
            "from react_eval.model.config import ModelConfig\n"
            "build_model(ModelConfig(base_url='http://127.0.0.1:9/v1', model='m'))\n"
            "print(sorted(m for m in ('openai', 'httpx') if m in sys.modules))\n"
            "build_model(ModelConfig(base_url='http://127.0.0.1:9/v1', model='m', client='openai'))\n"
            "print(sorted(m for m in ('openai', 'httpx') if m in sys.modules))\n")
    assert python_output(code).split("\n")[:2] == ["[]", "['httpx', 'openai']"]


def test_client_openai_without_the_sdk_is_a_config_error_naming_the_extra():
    """The SDK is an optional extra: asking for it without it fails at validation, saying what to install."""
    code = ("import sys\nsys.modules['openai'] = None  # as in an install without the extra\n"
            "from react_eval.model.config import ModelConfig\n"
            "ModelConfig(base_url='http://127.0.0.1:9/v1', model='m')\n"
            "try:\n    ModelConfig(base_url='http://127.0.0.1:9/v1', model='m', client='openai')\n"
            "except ValueError as exc:\n    print(exc)\n")
    out = python_output(code)
    assert "pip install 'react-eval[openai]'" in out and "client" in out
