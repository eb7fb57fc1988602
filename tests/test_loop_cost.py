"""The loop's per-turn work must not grow with the length of the conversation.

Counted, not timed: how often a message is measured for the prompt-size
estimate, and that trimming keeps the running total exact.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

import react_eval.loop as loop_module
from react_eval.loop import LoopConfig, ReActLoop, _Conversation, _message_chars
from react_eval.model.factory import build_model
from react_eval.model.config import ModelConfig
from react_eval.tools.base import CompositeBackend
from react_eval.trajectories import TrajectoryRecorder
from react_eval.types import Task, ToolResult, ToolSpec
from tests.support.scripted_server import answer, tool_call

pytestmark = pytest.mark.anyio


class Echo:
    async def list_tools(self) -> list[ToolSpec]:
        return [ToolSpec(name="echo", parameters={"type": "object", "properties": {"text": {"type": "string"}}})]

    async def call(self, name: str, arguments: dict[str, Any], *, timeout: float) -> ToolResult:
        return ToolResult(content=arguments.get("text", ""), exit_code=0)

    async def aclose(self) -> None:
        pass


async def run(srv, turns: int, **loop_kw):
    model = build_model(ModelConfig(base_url=srv.base_url, model="scripted"))
    tools = await CompositeBackend({"echo": Echo()}).start()
    defs = [s.to_openai() for s in await tools.list_tools()]
    recorder = TrajectoryRecorder(session_id="t", agent_version="test", model_name="scripted", tool_definitions=defs)
    try:
        return await ReActLoop(model, tools, LoopConfig(max_turns=turns + 1, **loop_kw), recorder).run(
            Task(id="t", prompt="go"), "system prompt", defs)
    finally:
        await model.aclose()


def policy(turns: int):
    """Tool calls, then the answer on request ``turns`` (counted here: trimming
    removes turns from the history the server sees)."""
    seen = itertools.count(1)

    def reply(req):
        n = next(seen)
        return tool_call("echo", {"text": f"out {n} " + "x" * 40}) if n < turns else answer("done")

    return reply


@pytest.mark.parametrize("budget", [None, 10**9])
async def test_each_message_is_measured_once(scripted_server, monkeypatch, budget):
    calls = {"n": 0}

    def counting(msg):
        calls["n"] += 1
        return _message_chars(msg)

    monkeypatch.setattr(loop_module, "_message_chars", counting)
    turns = 40
    outcome = await run(scripted_server(policy(turns)), turns, prompt_budget_tokens=budget)
    assert outcome.final_message == "done" and outcome.turns == turns
    assert len(outcome.messages) == 2 + turns + (turns - 1)
    if budget is None:  # nothing reads the history's size: nothing is measured
        assert calls["n"] == 0
    else:  # system + user + one assistant per turn + one tool result per tool turn: measured once each
        assert calls["n"] == len(outcome.messages)


async def test_trimming_keeps_the_running_size_exact(scripted_server):
    turns = 30
    outcome = await run(scripted_server(policy(turns)), turns, prompt_budget_tokens=120)
    assert outcome.final_message == "done"
    drops = [e for s in outcome.trajectory.steps for e in (s.extra or {}).get("events", []) if e["kind"] == "context_drop"]
    assert drops, "the budget never made the loop drop a turn"
    assert len(outcome.messages) < 2 + turns + (turns - 1)


def test_conversation_total_matches_a_recount_after_adds_and_trims():
    convo = _Conversation([{"role": "system", "content": "s" * 50}, {"role": "user", "content": "u" * 30}])
    for i in range(20):
        convo.add({"role": "assistant", "content": "a" * i, "tool_calls": [
            {"id": f"c{i}", "type": "function", "function": {"name": "echo", "arguments": '{"text": "%s"}' % ("t" * i)}}]})
        convo.add({"role": "tool", "tool_call_id": f"c{i}", "content": "r" * (3 * i)})
        assert convo.chars == sum(_message_chars(m) for m in convo.messages)
    dropped = convo.trim_to(100)
    assert dropped > 0
    assert convo.chars == sum(_message_chars(m) for m in convo.messages)
    assert convo.messages[0]["role"] == "system" and convo.messages[1]["role"] == "user"
