"""The model clients against the scripted server, through the real openai SDK."""

from __future__ import annotations

import time

import anyio
import pytest
from hypothesis import given, strategies as st

from react_eval.model.factory import build_model
from react_eval.model.protocol import Model
from react_eval.model.config import GenerationConfig, ModelConfig
from react_eval.model.errors import AuthError, ContextOverflowError, ModelError
from react_eval.jsonsafe import MAX_COUNT, as_count
from react_eval.model.response import split_reasoning
from tests.support.scripted_server import (
    answer,
    connection_reset,
    context_overflow,
    conversations,
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


@given(st.text())
def test_text_without_think_tags_is_left_whole(text):
    """The shortcut for replies with no tag: whatever the text, no tag means no split."""
    if "<think>" not in text and "</think>" not in text:
        assert split_reasoning(text) == (text or "", None)
    for tagged in (f"<think>{text}</think>rest", f"{text}</think>rest"):
        if "think>" not in text:
            assert split_reasoning(tagged) == ("rest", text.strip())


@given(st.integers(min_value=-(2**70), max_value=2**70))
def test_a_token_count_is_read_the_same_whatever_its_type(n):
    """An int is read by the shortcut, its float and string spellings by the general
    path: all to the same count (or all to unknown: negative or beyond 2**53)."""
    expected = n if 0 <= n < MAX_COUNT else None
    assert as_count(n) == expected
    if abs(n) < MAX_COUNT:  # exact as a float
        assert as_count(float(n)) == expected and as_count(str(n)) == expected and as_count(f"{n}.0") == expected
    assert as_count(n == 1) is None  # a bool is not a count


@pytest.mark.parametrize("client", ["fast", "openai"])
async def test_max_concurrent_bounds_the_requests_in_flight(scripted_server, client):
    """Six calls at once through a service limited to two: the server sees them in waves of two."""
    srv = scripted_server(lambda req: delay(0.4, answer("ok")))
    model = make(srv, client=client, max_concurrent=2)
    async with anyio.create_task_group() as tg:
        for _ in range(6):
            tg.start_soon(model.complete, MSGS, [])
    await model.aclose()
    arrivals = sorted(r.arrival for r in srv.requests)
    assert len(arrivals) == 6
    # a third request can start only when one of the first two has had its whole 0.4 s reply
    assert arrivals[2] - arrivals[0] >= 0.35 and arrivals[4] - arrivals[2] >= 0.35, arrivals


@pytest.mark.parametrize("client", ["fast", "openai"])
async def test_a_retry_waits_outside_the_services_slot(scripted_server, client):
    """One slot: while A waits out its 429's Retry-After, B's call goes through."""
    srv = scripted_server(conversations({"A": [http_error(429, headers={"Retry-After": "1.0"}), answer("a")],
                                         "B": [answer("b")]}))
    model = make(srv, client=client, max_concurrent=1)
    replies: dict[str, str] = {}

    async def call(who: str) -> None:
        replies[who] = (await model.complete([{"role": "user", "content": who}], [])).content

    async with anyio.create_task_group() as tg:
        tg.start_soon(call, "A")
        await anyio.sleep(0.2)
        tg.start_soon(call, "B")
    await model.aclose()
    assert replies == {"A": "a", "B": "b"}
    assert [r.first_user_text for r in sorted(srv.requests, key=lambda r: r.arrival)] == ["A", "B", "A"]


@pytest.mark.parametrize("client", ["fast", "openai"])
async def test_a_call_cancelled_while_waiting_for_a_slot_gives_it_back(scripted_server, client):
    """A caller cancelled in the slot's queue takes no slot with it: the next call still runs."""
    srv = scripted_server(lambda req: delay(0.3, answer(req.first_user_text)))
    model = make(srv, client=client, max_concurrent=1)
    async with anyio.create_task_group() as tg:
        tg.start_soon(model.complete, [{"role": "user", "content": "first"}], [])
        await anyio.sleep(0.05)
        with anyio.move_on_after(0.05):
            await model.complete([{"role": "user", "content": "cancelled"}], [])
    with anyio.fail_after(10):
        resp = await model.complete([{"role": "user", "content": "after"}], [])
    await model.aclose()
    assert resp.content == "after"
    assert [r.first_user_text for r in srv.requests] == ["first", "after"]


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
