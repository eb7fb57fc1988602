"""The model clients against the scripted server, through the real openai SDK."""

from __future__ import annotations

import time

import pytest

from react_eval.model.factory import build_model
from react_eval.model.protocol import Model
from react_eval.model.config import GenerationConfig, ModelConfig
from react_eval.model.errors import AuthError, ContextOverflowError, ModelError
from react_eval.model.response import split_reasoning
from tests.support.scripted_server import (
    answer,
    connection_reset,
    context_overflow,
    delay,
    empty_choices,
    http_error,
    tool_call,
    tool_calls,
    truncated_body,
)

pytestmark = pytest.mark.anyio

TOOLS = [{"type": "function", "function": {"name": "bash", "parameters": {"type": "object"}}}]
MSGS = [{"role": "user", "content": "hi"}]


def make(srv, **kw) -> Model:
    cfg = dict(base_url=srv.base_url, model="scripted", retry_initial_wait=0.01, retry_max_wait=2.0, client="openai")
    cfg.update(kw)
    return build_model(ModelConfig(**cfg))


async def test_tool_calls_are_typed_with_raw_and_parsed_arguments(scripted_server):
    srv = scripted_server([tool_calls([("bash", {"command": "ls"}, "c1"), ("bash", '{"command": ', "c2")])])
    model = make(srv)
    resp = await model.complete(MSGS, TOOLS)
    await model.aclose()
    assert [c.id for c in resp.tool_calls] == ["c1", "c2"]
    assert resp.tool_calls[0].arguments == {"command": "ls"}
    assert resp.tool_calls[0].arguments_raw == '{"command":"ls"}'
    bad = resp.tool_calls[1]
    assert bad.arguments is None and "not valid JSON" in bad.parse_error
    assert bad.arguments_raw == '{"command": '  # never rewritten
    assert resp.finish_reason == "tool_calls"
    assert resp.prompt_tokens and resp.completion_tokens is not None
    assert resp.latency_ms > 0
    # the assistant message for the history carries the raw argument string
    assert resp.assistant_message()["tool_calls"][1]["function"]["arguments"] == '{"command": '


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning", "think"])
async def test_reasoning_is_captured_from_each_place(scripted_server, field):
    srv = scripted_server([answer("ANSWER: 4", reasoning="2+2 is 4", reasoning_field=field)])
    model = make(srv)
    resp = await model.complete(MSGS, [])
    await model.aclose()
    assert resp.reasoning == "2+2 is 4"
    assert resp.content == "ANSWER: 4"


def test_split_reasoning_variants():
    assert split_reasoning("<think>a</think>\nb") == ("b", "a")
    assert split_reasoning("only closing</think> answer") == ("answer", "only closing")
    assert split_reasoning("<think>cut off by length") == ("", "cut off by length")
    assert split_reasoning("plain") == ("plain", None)


async def test_generation_settings_are_sent(scripted_server):
    srv = scripted_server([answer("x")])
    gen = GenerationConfig(temperature=0.3, top_p=0.9, max_tokens=77, seed=5, stop=["END"],
                           frequency_penalty=0.1, presence_penalty=0.2)
    model = make(srv, generation=gen)
    await model.complete(MSGS, TOOLS)
    await model.aclose()
    body = srv.requests[0].body
    for key, value in dict(temperature=0.3, top_p=0.9, max_tokens=77, seed=5, stop=["END"],
                           frequency_penalty=0.1, presence_penalty=0.2).items():
        assert body[key] == value
    assert body["tools"] == TOOLS


async def test_429_honours_retry_after(scripted_server):
    srv = scripted_server([http_error(429, headers={"Retry-After": "0.5"}), answer("ok")])
    model = make(srv, retry_initial_wait=0.0)
    t0 = time.perf_counter()
    resp = await model.complete(MSGS, [])
    elapsed = time.perf_counter() - t0
    await model.aclose()
    assert resp.content == "ok" and resp.attempts == 2
    assert len(srv.requests) == 2
    gap = srv.requests[1].arrival - srv.requests[0].arrival
    assert gap >= 0.45, f"retried after {gap:.3f}s, server asked for 0.5s"
    assert elapsed >= 0.45


@pytest.mark.parametrize("fault", [http_error(500), http_error(502), http_error(503), connection_reset(),
                                   truncated_body(), empty_choices()])
async def test_transient_failures_are_retried(scripted_server, fault):
    srv = scripted_server([fault, answer("recovered")])
    model = make(srv)
    resp = await model.complete(MSGS, [])
    await model.aclose()
    assert resp.content == "recovered"
    assert len(srv.requests) == 2


async def test_timeout_is_retried_then_gives_model_error(scripted_server):
    srv = scripted_server([delay(2.0), delay(2.0)], strict=False)
    model = make(srv, request_timeout=0.3, max_attempts=2)
    with pytest.raises(ModelError) as info:
        await model.complete(MSGS, [])
    await model.aclose()
    assert "after 2 attempts" in str(info.value)
    assert len(srv.requests) == 2


async def test_other_4xx_is_not_retried(scripted_server):
    srv = scripted_server([http_error(400, message="bad field"), answer("never")], strict=False)
    model = make(srv)
    with pytest.raises(ModelError) as info:
        await model.complete(MSGS, [])
    await model.aclose()
    assert type(info.value) is ModelError
    assert "not retried" in str(info.value) and "bad field" in str(info.value)
    assert len(srv.requests) == 1


@pytest.mark.parametrize("style", ["openai", "vllm"])
async def test_context_overflow_has_its_own_error(scripted_server, style):
    srv = scripted_server([context_overflow(style=style), answer("never")], strict=False)
    model = make(srv)
    with pytest.raises(ContextOverflowError) as info:
        await model.complete(MSGS, [])
    await model.aclose()
    assert info.value.kind.value == "context_overflow"
    assert len(srv.requests) == 1


async def test_401_is_an_auth_error_not_retried(scripted_server):
    srv = scripted_server([http_error(401), answer("never")], strict=False)
    model = make(srv)
    with pytest.raises(AuthError):
        await model.complete(MSGS, [])
    await model.aclose()
    assert len(srv.requests) == 1


async def test_api_key_from_named_env_var(scripted_server, monkeypatch):
    monkeypatch.setenv("MY_TEST_KEY", "sk-secret-123")
    srv = scripted_server([answer("x")])
    model = make(srv, api_key_env="MY_TEST_KEY")
    await model.complete(MSGS, [])
    await model.aclose()
    assert srv.requests[0].headers["authorization"] == "Bearer sk-secret-123"
    assert "sk-secret-123" not in repr(model.config) and "sk-secret-123" not in model.config.model_dump_json()


async def test_responses_protocol_maps_calls_and_outputs(scripted_server):
    srv = scripted_server([tool_call("bash", {"command": "ls"}, "call_9"), answer("done", reasoning="r")])
    model = build_model(ModelConfig(base_url=srv.base_url, model="scripted", protocol="responses"))
    first = await model.complete(MSGS, TOOLS)
    assert first.tool_calls[0].id == "call_9" and first.tool_calls[0].arguments == {"command": "ls"}
    history = MSGS + [first.assistant_message(), {"role": "tool", "tool_call_id": "call_9", "content": "a.txt"}]
    second = await model.complete(history, TOOLS)
    await model.aclose()
    assert second.content == "done"
    assert srv.requests[1].path.endswith("/responses")
    items = srv.requests[1].body["input"]
    kinds = [i.get("type") or i.get("role") for i in items]
    assert kinds == ["user", "function_call", "function_call_output"]
    assert items[1]["call_id"] == "call_9" and items[2]["output"] == "a.txt"
    assert srv.requests[1].body["tools"][0]["name"] == "bash"
