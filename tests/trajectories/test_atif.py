"""ATIF models, the trajectory recorder, the committed schema, and parity with Harbor."""

from __future__ import annotations

import copy
import dataclasses
import importlib.util
import json
import time
import typing
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest
from pydantic import ValidationError

from react_eval.trajectories import (
    ATIF_SCHEMA_VERSION,
    SUPPORTED_SCHEMA_VERSIONS,
    Step,
    Trajectory,
    TrajectoryRecorder,
    atif_json_schema,
)
from react_eval.trajectories.document import ROOT_FIELDS, json_bytes, ordered
from react_eval.types import ErrorKind, ToolCall, ToolResult, Usage
from tests.harbor_atif import HarborUnavailable, load_harbor, validate_with_harbor

REPO = Path(__file__).resolve().parents[2]
SCHEMA_PATH = REPO / "trajectories" / "atif.schema.json"
REFERENCE_PATH = REPO / "trajectories" / "reference" / "smoke_example.json"

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "bash",
            "description": "run a command",
            "parameters": {"type": "object", "properties": {"command": {"type": "string"}}},
        },
    }
]


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------


def _export_module():
    spec = importlib.util.spec_from_file_location(
        "export_atif_schema", REPO / "tools" / "export_atif_schema.py"
    )
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def _call(call_id: str, name: str = "bash", **arguments: Any) -> ToolCall:
    return ToolCall(id=call_id, name=name, arguments_raw=json.dumps(arguments), arguments=arguments)


def _bad_call(call_id: str, raw: str = '{"command": "ls', error: str = "Unterminated string") -> ToolCall:
    return ToolCall(id=call_id, name="bash", arguments_raw=raw, arguments=None, parse_error=error)


def _agent(rec: TrajectoryRecorder, tool_calls: list[ToolCall], **overrides: Any) -> int:
    kwargs: dict[str, Any] = dict(
        message="working on it",
        reasoning=None,
        tool_calls=tool_calls,
        model_name="test-model",
        prompt_tokens=100,
        completion_tokens=10,
        cached_tokens=40,
        reasoning_tokens=3,
        latency_ms=12.5,
        finish_reason="tool_calls" if tool_calls else "stop",
    )
    kwargs.update(overrides)
    usage = Usage(*(kwargs.pop(name) for name in Usage.TOKEN_FIELDS), kwargs.pop("latency_ms"))
    return rec.agent(usage=usage, **kwargs)


def _recorder(**overrides: Any) -> TrajectoryRecorder:
    kwargs: dict[str, Any] = dict(
        session_id="sess-1",
        agent_version="0.1.0",
        model_name="test-model",
        tool_definitions=TOOLS,
        system_prompt="be brief",
    )
    kwargs.update(overrides)
    return TrajectoryRecorder(**kwargs)


def _full_rollout() -> Trajectory:
    """Exercises every recorder feature in one trajectory."""
    rec = _recorder(extra={"task_id": "t-1"})
    rec.event("sandbox_ready", image="python:3.11-slim")  # before any step -> root extra
    rec.system("be brief")
    rec.user(
        [
            {"type": "text", "text": "what is in this picture?"},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
        ]
    )
    s1 = _agent(rec, [_call("c1", command="ls"), _bad_call("c2")], reasoning="look around")
    rec.observe(s1, "c1", ToolResult(content="a.py\n", exit_code=0, latency_ms=5.0))
    rec.observe(
        s1,
        "c2",
        ToolResult.error("arguments are not valid JSON", "invalid_json", extra={"hint": "retry"}),
    )
    rec.event("context_drop", dropped_steps=[3])
    s2 = _agent(rec, [_call("c3", command="false")], reasoning_tokens=None, cached_tokens=None)
    rec.observe(
        s2, "c3", ToolResult(content="", is_error=True, exit_code=1, error_kind="nonzero_exit")
    )
    rec.event("turns_left", turns_left=1)
    rec.user("You have 1 turn left.")
    _agent(rec, [], message="done", prompt_tokens=None)
    return rec.finish(error_kind=None, extra={"reward": 1.0})


@pytest.fixture(scope="module")
def harbor_models():
    try:
        models, _ = load_harbor()
    except HarborUnavailable as exc:
        pytest.skip(f"Harbor ATIF code unavailable: {exc}")
    return models


# --------------------------------------------------------------------------
# recorder -> valid trajectories (ours and Harbor's)
# --------------------------------------------------------------------------


def test_recorder_trajectory_is_valid_for_our_models():
    traj = _full_rollout()
    assert isinstance(traj, Trajectory)
    assert traj.schema_version == ATIF_SCHEMA_VERSION
    # re-validating the serialized form must also pass (finish() is not lenient)
    again = Trajectory.from_json(traj.to_json_bytes())
    assert again == traj
    assert [s.step_id for s in traj.steps] == list(range(1, 7))


def test_recorder_trajectory_is_valid_for_harbor():
    traj = _full_rollout()
    assert validate_with_harbor(traj.to_json_dict()) == []
    assert validate_with_harbor(traj.to_json_bytes()) == []


def test_harbor_reads_our_output_back_identically(harbor_models):
    data = _full_rollout().to_json_dict()
    theirs = harbor_models.Trajectory.model_validate(copy.deepcopy(data))
    assert theirs.to_json_dict() == data


def _text_only_rollout() -> TrajectoryRecorder:
    """Every recorder feature but content parts: the shapes the fast dump handles itself."""
    rec = _recorder(extra={"task_id": "t-1", "where": Path("/tmp/x"), "nothing": None, "kind": ErrorKind.timeout})
    rec.event("sandbox_ready", image="python:3.11-slim", missing=None)
    rec.system("be brief", extra={"origin": "harness"})
    rec.user("fix the bug", extra={"empty": None})
    s1 = _agent(rec, [_call("c1", command="ls", flag=None), _bad_call("c2")], reasoning="look around")
    rec.event("tool_started", name="bash")  # the step's extra before its observation
    rec.observe(s1, "c1", ToolResult(content="a.py\n", exit_code=0, latency_ms=5.0, extra={"n": None}))
    rec.observe(s1, "c2", ToolResult.error("arguments are not valid JSON", "invalid_json"))
    rec.event("context_drop", dropped_steps=[3])
    rec.max_argument_chars = 400  # the next call's arguments are stored cut
    s2 = _agent(rec, [_call("c3", command="x" * 600)], reasoning_tokens=None, cached_tokens=None,
                extra={"attempts": 2})
    rec.observe(s2, "c3", ToolResult(content="", is_error=True, exit_code=1, error_kind="nonzero_exit"))
    _agent(rec, [], message="done", prompt_tokens=None, completion_tokens=None, cached_tokens=None,
           reasoning_tokens=None, latency_ms=None, finish_reason=None)
    return rec


@pytest.mark.parametrize("case", ["text_only", "no_steps", "content_parts"])
def test_written_document_is_exactly_the_models_dump(case):
    """finish() hands the validated data to the writer instead of dumping the models again;
    the bytes written must be the models' own dump, key order and all, and valid for Harbor."""
    if case == "text_only":
        traj = _text_only_rollout().finish(error_kind=ErrorKind.model_error, extra={"reward": 1.0, "x": None})
        assert getattr(traj, "_raw", None) is not None  # the fast path was taken
    elif case == "no_steps":
        traj = _recorder(model_name=None, tool_definitions=None).finish(error_kind="timeout")
        assert getattr(traj, "_raw", None) is not None
    else:
        traj = _full_rollout()
        assert getattr(traj, "_document", None) is None  # content parts: dumped by the models
    dumped = traj.model_dump(mode="json", exclude_none=True)
    assert orjson.dumps(traj.to_json_dict()) == orjson.dumps(dumped)
    assert traj.to_json_bytes(indent=True) == orjson.dumps(dumped, option=orjson.OPT_INDENT_2)
    assert traj.to_json_bytes() == orjson.dumps(dumped)  # the bytes finish() made on the way, when it did
    assert validate_with_harbor(traj.to_json_bytes()) == []
    assert Trajectory.from_json(traj.to_json_bytes()) == traj


def test_recorded_layout():
    traj = _full_rollout()
    system, user, a1, a2, notice, final = traj.steps
    assert (system.source, user.source, a1.source, a2.source, notice.source, final.source) == (
        "system", "user", "agent", "agent", "user", "agent"
    )  # fmt: skip

    # root extra: system prompt, constructor extra, pre-step events, finish extra
    assert traj.extra["system_prompt"] == "be brief"
    assert traj.extra["task_id"] == "t-1"
    assert traj.extra["reward"] == 1.0
    assert [e["kind"] for e in traj.extra["events"]] == ["sandbox_ready"]
    assert traj.agent.name == "react-eval"
    assert traj.agent.tool_definitions == TOOLS
    assert traj.session_id == "sess-1"

    # multimodal user message: text kept, URL image kept, inline data replaced
    parts = user.message
    assert isinstance(parts, list)
    assert [p.type for p in parts] == ["text", "image", "text"]
    assert parts[1].source.path == "https://example.com/cat.png"
    assert parts[1].source.media_type == "image/png"
    assert user.extra["omitted_content_parts"][0]["index"] == 2

    # agent step: tool calls, metrics, observations, events
    assert a1.reasoning_content == "look around"
    assert a1.llm_call_count == 1
    assert a1.tool_calls[0].arguments == {"command": "ls"}
    assert a1.tool_calls[0].extra is None
    assert a1.metrics.prompt_tokens == 100
    assert a1.metrics.cached_tokens == 40
    assert a1.metrics.extra == {"latency_ms": 12.5, "reasoning_tokens": 3, "finish_reason": "tool_calls"}
    ok, bad = a1.observation.results
    assert ok.source_call_id == "c1" and ok.content == "a.py\n"
    assert ok.extra == {"is_error": False, "exit_code": 0, "latency_ms": 5.0, "truncated": False}
    assert bad.extra["error_kind"] == "invalid_json"
    assert bad.extra["is_error"] is True
    assert bad.extra["hint"] == "retry"
    assert a1.extra["events"][0]["kind"] == "context_drop"
    assert a1.extra["events"][0]["dropped_steps"] == [3]
    assert a2.observation.results[0].extra["exit_code"] == 1
    assert a2.extra["events"][0] == {
        "kind": "turns_left", "timestamp": a2.extra["events"][0]["timestamp"], "turns_left": 1
    }  # fmt: skip
    assert final.tool_calls is None and final.observation is None
    assert final.metrics.prompt_tokens is None
    assert final.metrics.extra["finish_reason"] == "stop"

    fm = traj.final_metrics
    assert fm.total_steps == len(traj.steps) == 6
    assert fm.total_prompt_tokens == 200  # the final step reported none
    assert fm.total_completion_tokens == 30
    assert fm.total_cached_tokens == 80
    assert fm.extra["total_reasoning_tokens"] == 6
    assert fm.extra["error_kind"] is None
    assert fm.extra["agent_steps"] == 3
    assert fm.extra["tool_calls"] == 3
    assert fm.extra["tool_calls_by_name"] == {"bash": 3}
    assert fm.extra["tool_calls_invalid_json"] == 1
    assert fm.extra["tool_results"] == 3
    assert fm.extra["tool_errors"] == 2
    assert fm.extra["tool_errors_by_kind"] == {"invalid_json": 1, "nonzero_exit": 1}

    # serialized form leaves out None fields
    data = orjson.loads(traj.to_json_bytes())
    assert "tool_calls" not in data["steps"][0]
    assert "reasoning_content" not in data["steps"][3]
    assert "notes" not in data


def test_timestamps_are_iso8601_utc():
    rec = _recorder()
    rec.system("s")
    rec.user("u")
    naive = datetime(2025, 3, 1, 10, 0, 0)
    other_zone = datetime(2025, 3, 1, 12, 0, 0, tzinfo=timezone(timedelta(hours=2)))
    _agent(rec, [], timestamp=naive)
    _agent(rec, [], timestamp=other_zone)
    traj = rec.finish()
    for step in traj.steps:
        moment = datetime.fromisoformat(step.timestamp)
        assert moment.utcoffset() == timedelta(0), step.timestamp
    assert datetime.fromisoformat(traj.steps[2].timestamp) == naive.replace(tzinfo=timezone.utc)
    assert datetime.fromisoformat(traj.steps[3].timestamp) == datetime(
        2025, 3, 1, 10, 0, 0, tzinfo=timezone.utc
    )


def test_malformed_json_tool_call_is_recorded_validly():
    rec = _recorder()
    rec.user("do it")
    sid = _agent(rec, [_bad_call("bad-1", raw='{"command": "ls"', error="Expecting '}'")])
    rec.observe(
        sid, "bad-1", ToolResult.error("Your arguments are not valid JSON: Expecting '}'", "invalid_json")
    )
    _agent(rec, [], message="giving up")
    traj = rec.finish(error_kind=ErrorKind.max_turns_exhausted)

    call = traj.steps[1].tool_calls[0]
    assert call.arguments == {}
    assert call.extra == {"arguments_raw": '{"command": "ls"', "parse_error": "Expecting '}'"}
    result = traj.steps[1].observation.results[0]
    assert result.source_call_id == "bad-1"
    assert result.extra["error_kind"] == "invalid_json"
    assert traj.final_metrics.extra["tool_calls_invalid_json"] == 1
    assert traj.final_metrics.extra["error_kind"] == "max_turns_exhausted"
    assert validate_with_harbor(traj.to_json_dict()) == []


def test_parse_failure_without_message_still_explained():
    rec = _recorder()
    _agent(rec, [ToolCall(id="x", name="bash", arguments_raw="[1, 2]", arguments=None)])
    call = rec.finish().steps[0].tool_calls[0]
    assert call.arguments == {}
    assert call.extra["arguments_raw"] == "[1, 2]"
    assert call.extra["parse_error"]


def test_observe_rejects_unknown_targets():
    rec = _recorder()
    user = rec.user("hi")
    sid = _agent(rec, [_call("c1", command="ls")])
    with pytest.raises(ValueError, match="no tool call"):
        rec.observe(sid, "nope", ToolResult(content="x"))
    with pytest.raises(ValueError, match="no tool call"):
        rec.observe(user, "c1", ToolResult(content="x"))
    with pytest.raises(ValueError, match="no step"):
        rec.observe(99, "c1", ToolResult(content="x"))


def test_finish_without_steps_is_still_valid():
    rec = _recorder()
    rec.event("error", message="sandbox did not start")
    traj = rec.finish(error_kind=ErrorKind.sandbox_error)
    assert len(traj.steps) == 1 and traj.steps[0].source == "system"
    assert traj.notes
    assert traj.extra["events"][0]["kind"] == "error"
    assert traj.final_metrics.extra["error_kind"] == "sandbox_error"
    assert traj.final_metrics.total_prompt_tokens is None
    assert validate_with_harbor(traj.to_json_dict()) == []


def test_system_prompt_resolution_and_metrics_without_usage():
    rec = _recorder(system_prompt=None)
    rec.system("from the task")
    _agent(
        rec, [], prompt_tokens=None, completion_tokens=None, cached_tokens=None,
        reasoning_tokens=None, latency_ms=None, finish_reason=None, model_name=None,
    )  # fmt: skip
    traj = rec.finish()
    assert traj.extra["system_prompt"] == "from the task"
    assert traj.steps[1].metrics is None
    assert traj.steps[1].model_name is None
    assert traj.final_metrics.total_prompt_tokens is None
    assert traj.final_metrics.extra["total_reasoning_tokens"] is None


def test_non_json_values_do_not_break_finish():
    rec = _recorder(extra={"workdir": Path("/work"), "kind": ErrorKind.timeout})
    rec.user("hi", extra={"seen": {1}})
    rec.event("error", exc=RuntimeError("boom"), where=Path("/tmp/x"))
    traj = rec.finish(extra={"obj": object()})
    data = orjson.loads(traj.to_json_bytes())
    assert data["extra"]["workdir"] == "/work"
    assert data["extra"]["kind"] == "timeout"
    assert data["steps"][0]["extra"]["seen"] == [1]
    assert data["steps"][0]["extra"]["events"][0]["exc"] == "boom"
    assert isinstance(data["extra"]["obj"], str)
    assert validate_with_harbor(data) == []


def test_steps_property_and_finish_is_repeatable():
    rec = _recorder()
    rec.user("hi")
    sid = _agent(rec, [_call("c1", command="ls")])
    assert [s.step_id for s in rec.steps] == [1, 2]
    assert all(isinstance(s, Step) for s in rec.steps)
    first = rec.finish()
    rec.observe(sid, "c1", ToolResult(content="ok"))
    second = rec.finish()
    assert first.steps[1].observation is None
    assert second.steps[1].observation.results[0].content == "ok"


def test_recording_is_cheap():
    """Thousands of steps record quickly; validation happens once, in finish()."""
    rec = _recorder()
    rec.system("s")
    rec.user("u")
    start = time.perf_counter()
    for i in range(2000):
        sid = _agent(rec, [_call(f"c{i}", command="echo hi")])
        rec.observe(sid, f"c{i}", ToolResult(content="hi\n", exit_code=0))
    recording = time.perf_counter() - start
    traj = rec.finish()
    assert len(traj.steps) == 2002
    assert recording < 5.0, f"recording 2000 steps took {recording:.2f}s"


# --------------------------------------------------------------------------
# negative cases: our models reject them, and so does Harbor
# --------------------------------------------------------------------------


def _minimal() -> dict[str, Any]:
    return {
        "schema_version": ATIF_SCHEMA_VERSION,
        "session_id": "s",
        "agent": {"name": "a", "version": "1"},
        "steps": [
            {"step_id": 1, "source": "user", "message": "hi"},
            {
                "step_id": 2,
                "source": "agent",
                "message": "",
                "tool_calls": [{"tool_call_id": "c1", "function_name": "bash", "arguments": {}}],
                "observation": {"results": [{"source_call_id": "c1", "content": "ok"}]},
            },
        ],
    }


def _broken(kind: str) -> dict[str, Any]:
    doc = _minimal()
    if kind == "non_sequential_step_id":
        doc["steps"][1]["step_id"] = 3
    elif kind == "tool_calls_on_user_step":
        doc["steps"][0]["tool_calls"] = [
            {"tool_call_id": "u1", "function_name": "bash", "arguments": {}}
        ]
    elif kind == "metrics_on_system_step":
        doc["steps"][0]["source"] = "system"
        doc["steps"][0]["metrics"] = {"prompt_tokens": 1}
    elif kind == "unmatched_source_call_id":
        doc["steps"][1]["observation"]["results"][0]["source_call_id"] = "c2"
    elif kind == "unknown_root_field":
        doc["reward"] = 1.0
    elif kind == "unknown_step_field":
        doc["steps"][1]["latency_ms"] = 3.0
    elif kind == "unknown_tool_call_field":
        doc["steps"][1]["tool_calls"][0]["arguments_raw"] = "{}"
    elif kind == "unknown_metrics_field":
        doc["steps"][1]["metrics"] = {"reasoning_tokens": 4}
    elif kind == "non_object_arguments":
        doc["steps"][1]["tool_calls"][0]["arguments"] = "{}"
    elif kind == "bad_timestamp":
        doc["steps"][0]["timestamp"] = "yesterday"
    elif kind == "no_steps":
        doc["steps"] = []
    elif kind == "unknown_schema_version":
        doc["schema_version"] = "ATIF-v9.9"
    elif kind == "llm_call_count_zero_with_metrics":
        doc["steps"][1]["llm_call_count"] = 0
        doc["steps"][1]["metrics"] = {"prompt_tokens": 1}
    elif kind == "image_part_without_source":
        doc["steps"][0]["message"] = [{"type": "image"}]
    else:  # pragma: no cover
        raise AssertionError(kind)
    return doc


BROKEN_KINDS = [
    "non_sequential_step_id",
    "tool_calls_on_user_step",
    "metrics_on_system_step",
    "unmatched_source_call_id",
    "unknown_root_field",
    "unknown_step_field",
    "unknown_tool_call_field",
    "unknown_metrics_field",
    "non_object_arguments",
    "bad_timestamp",
    "no_steps",
    "unknown_schema_version",
    "llm_call_count_zero_with_metrics",
    "image_part_without_source",
]


def test_minimal_document_is_valid_for_both():
    Trajectory.model_validate(_minimal())
    assert validate_with_harbor(_minimal()) == []


@pytest.mark.parametrize("kind", BROKEN_KINDS)
def test_our_models_reject(kind):
    with pytest.raises(ValidationError):
        Trajectory.model_validate(_broken(kind))


@pytest.mark.parametrize("kind", BROKEN_KINDS)
def test_harbor_rejects_the_same(kind):
    assert validate_with_harbor(_broken(kind)) != []


def test_rejection_messages_are_specific():
    with pytest.raises(ValidationError, match="expected"):
        Trajectory.model_validate(_broken("non_sequential_step_id"))
    with pytest.raises(ValidationError, match="only on agent steps"):
        Trajectory.model_validate(_broken("tool_calls_on_user_step"))
    with pytest.raises(ValidationError, match="matches none of the step's tool calls"):
        Trajectory.model_validate(_broken("unmatched_source_call_id"))
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        Trajectory.model_validate(_broken("unknown_step_field"))


def test_richer_documents_accepted_by_both():
    """Fields our recorder never writes are still modelled like Harbor's."""
    doc = _minimal()
    doc["schema_version"] = "ATIF-v1.0"
    doc["trajectory_id"] = "root"
    doc["continued_trajectory_ref"] = "part2.json"
    doc["steps"][0]["message"] = [
        {"type": "text", "text": "look"},
        {"type": "image", "source": {"media_type": "image/png", "path": "https://x/y.png"}},
        {"type": "audio", "source": {"media_type": "audio/mp3", "path": "https://x/a.mp3", "duration_sec": 2}},
    ]
    doc["steps"][1].update(
        reasoning_effort="high",
        is_copied_context=False,
        llm_call_count=2,
        metrics={"cost_usd": 0.01, "prompt_token_ids": [1, 2], "completion_token_ids": [3], "logprobs": [-0.1]},
    )
    doc["steps"][1]["observation"]["results"].append(
        {"content": "sub done", "subagent_trajectory_ref": [{"trajectory_id": "sub-1"}]}
    )
    sub = _minimal()
    sub["trajectory_id"] = "sub-1"
    doc["subagent_trajectories"] = [sub]
    doc["final_metrics"] = {"total_cost_usd": 0.01, "total_steps": 2}
    ours = Trajectory.model_validate(doc)
    assert ours.steps[0].message[2].source.media_type == "audio/mpeg"  # alias normalized
    assert validate_with_harbor(doc) == []


def test_content_part_type_must_match_source():
    doc = _minimal()
    doc["steps"][0]["message"] = [
        {"type": "audio", "source": {"media_type": "image/png", "path": "x.png"}}
    ]
    with pytest.raises(ValidationError, match="not an audio type"):
        Trajectory.model_validate(doc)
    assert validate_with_harbor(doc) != []


def test_subagents_need_unique_ids():
    doc = _minimal()
    doc["subagent_trajectories"] = [_minimal()]
    with pytest.raises(ValidationError, match="needs a trajectory_id"):
        Trajectory.model_validate(doc)
    doc["subagent_trajectories"] = [
        {**_minimal(), "trajectory_id": "x"},
        {**_minimal(), "trajectory_id": "x"},
    ]
    with pytest.raises(ValidationError, match="used twice"):
        Trajectory.model_validate(doc)


# --------------------------------------------------------------------------
# schema version, committed schema and reference file
# --------------------------------------------------------------------------


def test_schema_version_is_newest_harbor_accepts(harbor_models):
    field = harbor_models.Trajectory.model_fields["schema_version"]
    harbor_versions = typing.get_args(field.annotation)
    assert set(harbor_versions) == set(SUPPORTED_SCHEMA_VERSIONS)
    newest = max(harbor_versions, key=lambda v: tuple(int(x) for x in v.split("-v")[1].split(".")))
    assert ATIF_SCHEMA_VERSION == newest


def test_committed_schema_matches_models():
    committed = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    assert committed == atif_json_schema(), (
        "trajectories/atif.schema.json is stale: run `python tools/export_atif_schema.py`"
    )
    assert SCHEMA_PATH.read_text(encoding="utf-8") == _export_module().schema_text()


def test_committed_reference_matches_recorder():
    module = _export_module()
    assert REFERENCE_PATH.read_text(encoding="utf-8") == module.reference_text(), (
        "trajectories/reference/smoke_example.json is stale: "
        "run `python tools/export_atif_schema.py`"
    )


def test_reference_trajectory_content():
    doc = json.loads(REFERENCE_PATH.read_text(encoding="utf-8"))
    traj = Trajectory.model_validate(doc)
    sources = [s.source for s in traj.steps]
    assert sources[:2] == ["system", "user"]
    assert sources[2:] == ["agent"] * (len(sources) - 2) and len(sources) >= 5
    names = {c.function_name for s in traj.steps for c in s.tool_calls or ()}
    assert names == {"bash", "str_replace_editor"}
    exit_codes = [
        r.extra.get("exit_code")
        for s in traj.steps
        if s.observation
        for r in s.observation.results
    ]
    assert any(code not in (None, 0) for code in exit_codes)
    assert traj.steps[-1].tool_calls is None  # final answer
    assert traj.final_metrics is not None and traj.final_metrics.total_steps == len(traj.steps)
    assert validate_with_harbor(REFERENCE_PATH) == []


def test_json_schema_accepts_recorded_trajectories():
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for doc in (
        json.loads(REFERENCE_PATH.read_text(encoding="utf-8")),
        _full_rollout().to_json_dict(),
    ):
        errors = [e.message for e in validator.iter_errors(doc)]
        assert errors == []
    bad = _minimal()
    bad["steps"][0]["surprise"] = True
    assert list(validator.iter_errors(bad))


@pytest.mark.parametrize("odd", [2**70, {1: "non-text key"}, "lone \ud800 surrogate"])
def test_values_orjson_refuses_take_the_models_path_and_still_finish(odd):
    """finish() writes its bytes with orjson on the way; data orjson refuses (an int past
    64 bits, a non-text key, a lone surrogate) is made JSON data by pydantic instead, as before."""
    rec = _recorder()
    rec.user("hi", extra={"odd": odd, "when": datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)})
    traj = rec.finish()
    assert getattr(traj, "_raw", None) is None
    step_extra = traj.steps[0].extra
    assert step_extra["when"] == "2024-01-02T03:04:05Z"  # pydantic's JSON form, on both paths
    if isinstance(odd, dict):
        assert step_extra["odd"] == {"1": "non-text key"}
    else:
        assert step_extra["odd"] == odd


def test_both_paths_make_the_same_json_of_odd_values():
    """A datetime, a dataclass, a str subclass, a set, bytes, a Path: the same JSON whether
    finish() took the orjson path or the models' one."""
    @dataclasses.dataclass
    class Point:
        x: int

    class Label(str):
        pass

    values = {"when": datetime(2024, 1, 2, tzinfo=timezone.utc), "point": Point(3), "label": Label("l"),
              "set": {2}, "bytes": b"ab", "path": Path("/p"), "kind": ErrorKind.timeout, "nan": 1.5}
    fast = _recorder()
    fast.user("hi", extra=values)
    slow = _recorder()
    slow.user("hi", extra={**values, "force_models_path": {1: "a non-text key"}})
    fast_traj, slow_traj = fast.finish(), slow.finish()
    assert fast_traj._raw is not None and getattr(slow_traj, "_raw", None) is None
    fast_extra = orjson.loads(fast_traj.to_json_bytes())["steps"][0]["extra"]
    slow_extra = orjson.loads(slow_traj.to_json_bytes())["steps"][0]["extra"]
    slow_extra.pop("force_models_path")
    assert fast_extra == slow_extra
    assert fast_extra["point"] == {"x": 3} and fast_extra["set"] == [2] and fast_extra["bytes"] == "ab"


def _recorded_then(mutate: Any) -> TrajectoryRecorder:
    rec = _recorder()
    rec.user("hi")
    sid = _agent(rec, [_call("c1", command="ls")])
    rec.observe(sid, "c1", ToolResult(content="a.py\n", exit_code=0))
    mutate(rec._steps)
    return rec


#: recordings broken after the fact, each in a way the models refuse
BROKEN_RECORDINGS = [
    lambda steps: steps[1].update(step_id=7),  # ids must run 1, 2, ...
    lambda steps: steps[0].update(model_name="m"),  # an agent-only field on a user step
    lambda steps: steps[0].update(timestamp="yesterday"),
    lambda steps: steps[0].update(colour="red"),  # an unknown key
    lambda steps: steps[1]["metrics"].update(prompt_tokens="12x"),
    lambda steps: steps[1]["metrics"].update(prompt_tokens=1.5),
    lambda steps: steps[1].update(source="robot"),
    lambda steps: steps[1]["observation"]["results"][0].update(source_call_id="nope"),
    lambda steps: steps[1].update(llm_call_count=-1),
    lambda steps: steps[1]["tool_calls"][0].update(arguments=["not", "an", "object"]),
]


@pytest.mark.parametrize("mutate", BROKEN_RECORDINGS)
def test_finish_refuses_what_the_models_refuse(mutate):
    """finish() validates the JSON bytes it writes (pydantic's JSON mode): whatever the
    models refuse as Python data, it refuses too; no more lenient."""
    rec = _recorded_then(mutate)
    data = orjson.loads(json_bytes(ordered({"schema_version": ATIF_SCHEMA_VERSION, "session_id": "s",
                                              "agent": rec._agent, "steps": rec._steps}, ROOT_FIELDS)))
    with pytest.raises(ValidationError):
        Trajectory.model_validate(data)
    with pytest.raises((ValidationError, TypeError)):  # TypeError: a text count cannot even be summed
        rec.finish()


def test_finish_accepts_and_reads_what_the_models_accept():
    rec = _recorded_then(lambda steps: steps[1]["metrics"].update(prompt_tokens=12.0, completion_tokens=3.0))
    data = orjson.loads(rec.finish().to_json_bytes())
    assert Trajectory.model_validate(data) == rec.finish()
