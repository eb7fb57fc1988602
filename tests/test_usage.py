"""One Usage value: tokens and latencies that add up, from the model response to the row and the metrics;
the loop's events, observed by the recorder, the outcome and any other observer."""

from __future__ import annotations

import dataclasses

import pytest

from react_eval.engine.results import RolloutResult
from react_eval.events import HarnessNote, MessageAdded, ModelReplied, ToolAnswered
from react_eval.loop import LoopConfig, ReActLoop
from react_eval.metrics import DISTRIBUTION_FIELDS, distributions
from react_eval.model.config import ModelConfig
from react_eval.model.response import ModelResponse
from react_eval.model.factory import build_model
from react_eval.tools.base import CompositeBackend
from react_eval.trajectories import TrajectoryRecorder
from react_eval.types import Task, ToolResult, ToolSpec, Usage
from tests.support.scripted_server import answer, tool_call


def test_usage_adds_up_field_by_field():
    a = Usage(prompt_tokens=100, completion_tokens=10, cached_tokens=64, reasoning_tokens=3, model_latency_ms=12.5)
    b = Usage(prompt_tokens=200, completion_tokens=20, cached_tokens=None, reasoning_tokens=None,
              model_latency_ms=7.5, tool_latency_ms=4.0)
    total = a + b
    assert total == Usage(300, 30, 64, 3, 20.0, 4.0)
    assert total.total_tokens == 330
    assert sum([a, b, Usage()]) == total  # sum() starts from 0
    assert a + Usage() == a and Usage() + a == a


def test_unknown_stays_unknown_until_a_row_needs_a_number():
    unknown = Usage() + Usage()
    assert unknown == Usage() and unknown.prompt_tokens is None and unknown.total_tokens == 0
    assert unknown.row() == {"prompt_tokens": 0, "completion_tokens": 0, "cached_tokens": 0, "reasoning_tokens": 0,
                             "model_latency_ms": 0.0, "tool_latency_ms": 0.0}
    with pytest.raises(TypeError):
        Usage() + 1  # noqa: B018


def test_one_declaration_feeds_the_row_and_the_metrics():
    names = tuple(f.name for f in dataclasses.fields(Usage))
    assert names == Usage.TOKEN_FIELDS + Usage.LATENCY_FIELDS
    row = Usage(1, 2, 3, 4, 5, 6.5).row()  # every field, in that order, latencies as floats
    assert tuple(row) == names and list(row.values()) == [1, 2, 3, 4, 5.0, 6.5]
    assert type(row["model_latency_ms"]) is float
    assert set(names) <= set(RolloutResult.model_fields)
    assert set(names) <= set(DISTRIBUTION_FIELDS)
    rows = [Usage(10, 2, 0, 1, 5.0, 1.0).row(), Usage(30, 4, 8, 0, 7.0, 3.0).row()]
    dist = distributions(rows)
    assert dist["prompt_tokens"]["mean"] == 20 and dist["total_tokens"]["max"] == 34


def test_model_response_carries_one_usage_and_reads_the_older_keywords():
    r = ModelResponse(content="x", prompt_tokens=5, completion_tokens=2, latency_ms=3.5)
    assert r.usage == Usage(prompt_tokens=5, completion_tokens=2, model_latency_ms=3.5)
    assert (r.prompt_tokens, r.completion_tokens, r.cached_tokens, r.latency_ms) == (5, 2, None, 3.5)
    u = Usage(1, 1, 0, 0, 2.0)
    assert ModelResponse(content="y", usage=u).usage is u


class EchoBackend:
    async def list_tools(self):
        return [ToolSpec(name="echo", parameters={"type": "object", "properties": {"text": {"type": "string"}},
                                                   "required": ["text"]})]

    async def call(self, name, arguments, *, timeout):
        return ToolResult(content=arguments["text"])

    async def aclose(self):
        pass


class Log:
    def __init__(self) -> None:
        self.events: list = []

    def on_event(self, event) -> None:
        self.events.append(event)


@pytest.mark.anyio
async def test_the_outcome_row_and_trajectory_agree_because_they_observe_the_same_events(scripted_server):
    srv = scripted_server([tool_call("echo", {"text": "a"}), tool_call("nope", {}), answer("done")])
    model = build_model(ModelConfig(base_url=srv.base_url, model="scripted", retry_initial_wait=0.01, client="openai"))
    tools = await CompositeBackend({"e": EchoBackend()}).start()
    defs = [s.to_openai() for s in await tools.list_tools()]
    recorder = TrajectoryRecorder(session_id="u", agent_version="t", model_name="scripted", tool_definitions=defs)
    log = Log()
    try:
        outcome = await ReActLoop(model, tools, LoopConfig(), recorder, observers=[log]).run(
            Task(id="t", prompt="go"), "sys", defs)
    finally:
        await model.aclose()
    kinds = [type(e) for e in log.events]
    assert kinds == [MessageAdded, MessageAdded, ModelReplied, ToolAnswered, ModelReplied, ToolAnswered, ModelReplied]
    replies = [e.response for e in log.events if isinstance(e, ModelReplied)]
    answered = [e.result for e in log.events if isinstance(e, ToolAnswered)]
    expected = sum(r.usage for r in replies) + Usage(tool_latency_ms=sum(r.latency_ms for r in answered))
    assert outcome.usage == expected and outcome.usage.prompt_tokens > 0
    assert outcome.turns == 3 and [c.name for c, _ in outcome.calls] == ["echo", "nope"]
    fm = outcome.trajectory.final_metrics
    assert fm.total_prompt_tokens == outcome.usage.prompt_tokens
    assert fm.total_completion_tokens == outcome.usage.completion_tokens
    assert fm.extra["total_model_latency_ms"] == pytest.approx(outcome.usage.model_latency_ms)
    assert outcome.trajectory.final_metrics.extra["tool_errors_by_kind"] == {"unknown_tool": 1}
    assert not any(isinstance(e, HarnessNote) for e in log.events)  # ended normally: no error note
