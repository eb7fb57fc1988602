"""The ReAct loop's limits and error paths, against the scripted model server.

The tools here are a small in-process backend (a real ToolBackend, not a mock):
``echo`` returns its text, ``sleepy`` ignores the timeout it is given.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from react_eval.loop import LoopConfig, ReActLoop, render_template
from react_eval.model.factory import build_model
from react_eval.model.config import ModelConfig
from react_eval.tools.base import CompositeBackend, DuplicateToolError
from react_eval.trajectories import TrajectoryRecorder
from react_eval.types import ErrorKind, Task, ToolResult, ToolSpec
from tests.harbor_atif import validate_with_harbor
from tests.support.scripted_server import answer, context_overflow, tool_call, tool_calls

pytestmark = pytest.mark.anyio


class EchoBackend:
    def __init__(self, names=("echo", "sleepy")):
        self.names = names

    async def list_tools(self) -> list[ToolSpec]:
        schema = {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"],
                  "additionalProperties": False}
        return [ToolSpec(name=n, description=f"{n} tool", parameters=schema) for n in self.names]

    async def call(self, name: str, arguments: dict[str, Any], *, timeout: float) -> ToolResult:
        if name == "sleepy":
            await anyio.sleep(3600)  # ignores its timeout on purpose
        return ToolResult(content=arguments["text"], exit_code=0)

    async def aclose(self) -> None:
        pass


async def run_loop(srv, task: Task, **loop_kw):
    model = build_model(ModelConfig(base_url=srv.base_url, model="scripted", retry_initial_wait=0.01, client="openai"))
    tools = await CompositeBackend({"echo": EchoBackend()}).start()
    defs = [s.to_openai() for s in await tools.list_tools()]
    recorder = TrajectoryRecorder(session_id="t", agent_version="test", model_name="scripted", tool_definitions=defs)
    try:
        return await ReActLoop(model, tools, LoopConfig(**loop_kw), recorder).run(task, "system prompt", defs)
    finally:
        await model.aclose()


def events(outcome) -> list[dict]:
    found = []
    for step in outcome.trajectory.steps:
        found += (step.extra or {}).get("events", [])
    return found


async def test_max_turns_ends_with_its_error_kind(scripted_server):
    srv = scripted_server(lambda req: tool_call("echo", {"text": f"turn {req.turn}"}))
    outcome = await run_loop(srv, Task(id="t", prompt="go"), max_turns=3)
    assert outcome.error_kind == ErrorKind.max_turns_exhausted
    assert outcome.turns == 3 and len(srv.requests) == 3
    assert validate_with_harbor(outcome.trajectory.to_json_dict()) == []


async def test_server_overflow_ends_with_context_overflow_without_retry(scripted_server):
    srv = scripted_server([tool_call("echo", {"text": "x"}), context_overflow(), answer("never")], strict=False)
    outcome = await run_loop(srv, Task(id="t", prompt="go"), max_turns=5)
    assert outcome.error_kind == ErrorKind.context_overflow
    assert len(srv.requests) == 2


async def test_schema_errors_and_bad_json_go_back_to_the_model(scripted_server):
    srv = scripted_server([
        tool_calls([("echo", {"txt": "wrong key"}, "a"), ("echo", '{"text": "unterminated', "b"), ("nope", {}, "c")]),
        answer("done"),
    ])
    outcome = await run_loop(srv, Task(id="t", prompt="go"))
    assert outcome.error_kind is None and outcome.final_message == "done"
    kinds = [r.error_kind for _, r in outcome.calls]
    assert kinds == ["invalid_arguments", "invalid_json", "unknown_tool"]
    assert "'text' is a required property" in outcome.calls[0][1].content
    # the model's own call is sent back verbatim, never rewritten
    sent = srv.requests[1].messages
    assert sent[2]["tool_calls"][1]["function"]["arguments"] == '{"text": "unterminated'
    assert [m["tool_call_id"] for m in sent[3:6]] == ["a", "b", "c"]


async def test_long_output_is_truncated_head_and_tail(scripted_server):
    text = "HEAD" + "x" * 5000 + "TAIL"
    srv = scripted_server([tool_call("echo", {"text": text}), answer("ok")])
    outcome = await run_loop(srv, Task(id="t", prompt="go"), max_output_chars=1000)
    result = outcome.calls[0][1]
    assert result.truncated and result.content.startswith("HEAD") and result.content.endswith("TAIL")
    assert "[... 4008 characters truncated ...]" in result.content
    obs = outcome.trajectory.steps[2].observation.results[0]
    assert obs.extra["truncated"] is True


async def test_turns_left_notice(scripted_server):
    srv = scripted_server(lambda req: tool_call("echo", {"text": "x"}) if req.turn < 3 else answer("fin"))
    outcome = await run_loop(srv, Task(id="t", prompt="go"), max_turns=4, turns_left_notice=2)
    notices = [m["content"] for m in srv.requests[-1].messages if m["role"] == "user"][1:]
    assert notices == ["You have 2 turns left. Finish your work and give your final answer.",
                       "You have 1 turn left. Finish your work and give your final answer."]
    assert outcome.final_message == "fin"


async def test_context_budget_drops_whole_old_turns(scripted_server):
    big = "y" * 4000
    calls = iter(range(100))

    def policy(req):  # counts calls itself: trimming hides old turns from req.turn
        n = next(calls)
        return tool_call("echo", {"text": big}, id=f"c{n}") if n < 6 else answer("end")

    srv = scripted_server(policy)
    outcome = await run_loop(srv, Task(id="t", prompt="first user message"), max_turns=10, prompt_budget_tokens=3000)
    assert outcome.final_message == "end"
    for req in srv.requests:
        msgs = req.messages
        assert msgs[0]["role"] == "system" and msgs[1]["content"] == "first user message"
        offered = {c["id"] for m in msgs if m["role"] == "assistant" for c in m.get("tool_calls") or []}
        answered = [m["tool_call_id"] for m in msgs if m["role"] == "tool"]
        assert set(answered) <= offered, "a tool message lost its call"
        assert msgs[2]["role"] == "assistant" if len(msgs) > 2 else True
    last = srv.requests[-1].messages
    assert len(last) < 2 + 2 * 6  # some turns were dropped
    drops = [e for e in events(outcome) if e["kind"] == "context_drop"]
    assert drops and all(d["dropped_messages"] % 2 == 0 for d in drops)  # whole turns only


async def test_rollout_timeout(scripted_server):
    srv = scripted_server(lambda req: tool_call("sleepy", {"text": "z"}))
    with anyio.fail_after(30):
        outcome = await run_loop(srv, Task(id="t", prompt="go"), rollout_timeout=0.5, tool_timeout=100)
    assert outcome.error_kind == ErrorKind.timeout


async def test_backend_ignoring_its_timeout_is_abandoned(scripted_server, monkeypatch):
    import react_eval.loop as loop_mod

    monkeypatch.setattr(loop_mod, "TOOL_TIMEOUT_GRACE", 0.2)
    srv = scripted_server([tool_call("sleepy", {"text": "z"}), answer("moved on")])
    with anyio.fail_after(30):
        outcome = await run_loop(srv, Task(id="t", prompt="go"), tool_timeout=0.3)
    assert outcome.final_message == "moved on"
    assert outcome.calls[0][1].error_kind == "timeout"


async def test_duplicate_tool_names_are_refused_naming_both():
    with pytest.raises(DuplicateToolError) as info:
        await CompositeBackend({"gym": EchoBackend(("echo",)), "sandbox": EchoBackend(("echo",))}).start()
    assert "'gym'" in str(info.value) and "'sandbox'" in str(info.value) and "'echo'" in str(info.value)


def test_system_prompt_template_fills_task_fields_and_keeps_json():
    task = Task(id="t1", prompt="p", metadata={"repo": "acme/x"})
    text = render_template('Task {id} in {metadata.repo}; reply {"a": 1} {unknown}', task)
    assert text == 'Task t1 in acme/x; reply {"a": 1} {unknown}'


async def test_tool_calls_past_the_per_turn_cap_are_not_run(scripted_server):
    calls = [("echo", {"text": f"call {i}"}, f"c{i}") for i in range(7)]
    srv = scripted_server([tool_calls(calls), answer("done")])
    outcome = await run_loop(srv, Task(id="t", prompt="go"), max_tool_calls_per_turn=3)
    assert outcome.final_message == "done"
    kinds = [result.error_kind for _, result in outcome.calls]
    assert kinds == [None] * 3 + ["too_many_calls"] * 4
    assert [result.content for _, result in outcome.calls[:3]] == ["call 0", "call 1", "call 2"]
    assert "at most 3 tool calls" in outcome.calls[3][1].content
    # every call still gets its observation, so the conversation stays well-formed
    tool_messages = [m for m in srv.requests[1].body["messages"] if m["role"] == "tool"]
    assert len(tool_messages) == 7


async def test_a_huge_argument_is_stored_cut_with_its_full_size(scripted_server):
    big = "y" * 3_000_000
    srv = scripted_server([tool_call("echo", {"text": big}), answer("done")])
    outcome = await run_loop(srv, Task(id="t", prompt="go"))
    call, result = outcome.calls[0]
    assert call.arguments["text"] == big and result.extra["dropped_chars"] > 2_900_000  # the tool got all of it
    stored = outcome.trajectory.to_json_dict()["steps"][2]["tool_calls"][0]
    assert stored["extra"]["arguments_truncated"] is True
    assert stored["extra"]["arguments_chars"] == len(call.arguments_raw) >= len(big)
    assert len(stored["arguments"]["text"]) < 100_000
    assert validate_with_harbor(outcome.trajectory.to_json_dict()) == []
