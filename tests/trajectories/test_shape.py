"""The recorder's quick proof of validity (``surely_valid``) never accepts what the models refuse.

``TrajectoryRecorder.finish_json`` writes a document without building the ATIF models
when :func:`~react_eval.trajectories.shape.surely_valid` says it is valid. These tests
hold that check to the models and to Harbor's validator: on recorded documents, on
every mutation hypothesis can think of, and on recorders fed odd values.
"""

from __future__ import annotations

import copy
import enum
from datetime import datetime, timezone
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from react_eval.trajectories import Trajectory, TrajectoryRecorder
from react_eval.trajectories.document import json_bytes
from react_eval.trajectories.shape import surely_valid
from react_eval.types import ToolCall, ToolResult, Usage
from tests.harbor_atif import validate_with_harbor
from tests.trajectories.test_atif import BROKEN_RECORDINGS, _call, _recorded_then, _text_only_rollout


def _models_accept(raw: bytes) -> bool:
    try:
        Trajectory.model_validate_json(raw)
    except ValidationError:
        return False
    return True


def _document(rec: TrajectoryRecorder, **finish: Any) -> dict[str, Any]:
    """The document finish_json would write, as the dicts it checks."""
    return orjson.loads(rec.finish_json(**finish))


class Kind(enum.IntEnum):
    one = 1


#: values of every kind a field could be handed: wrong types, subclasses, Nones, odd text and numbers
ODD = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**65), max_value=2**65), st.floats(allow_nan=True),
    st.text(max_size=8), st.sampled_from(["", "Z", "2024-01-02T03:04:05Z", "2024-13-45T99:99:99+00:00",
                                          "2024-01-02", "yesterday", "system", "agent", "user", "ATIF-v1.0"]),
    st.just(Kind.one), st.just(datetime(2024, 1, 2, tzinfo=timezone.utc)),
    st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.just({"results": []}), st.just([{"tool_call_id": "c1", "function_name": "f", "arguments": {}}]),
)


def _paths(node: Any, here: tuple = ()) -> list[tuple]:
    """Every place in a JSON document (dict keys and list items), depth first."""
    found = [here]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, here + (key,))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, here + (index,))
    return found


def _at(doc: Any, path: tuple) -> Any:
    for part in path:
        doc = doc[part]
    return doc


BASE = orjson.loads(_text_only_rollout().finish_json(extra={"reward": 1.0}))
BASE_PATHS = _paths(BASE)[1:]


def test_recorded_documents_are_proven_without_the_models():
    """The hot path: a recorded rollout (calls, a bad call, cut arguments, events, extras)
    is proven valid by shape, and its bytes are those finish() validates and writes."""
    rec = _text_only_rollout()
    raw = rec.finish_json(error_kind="model_error", extra={"reward": 1.0})
    assert surely_valid(orjson.loads(raw))
    assert raw == rec.finish(error_kind="model_error", extra={"reward": 1.0}).to_json_bytes()
    assert validate_with_harbor(raw) == []
    empty = TrajectoryRecorder(session_id="s", agent_version="1", model_name=None, tool_definitions=None)
    assert surely_valid(_document(empty, error_kind="timeout"))  # the placeholder step


@pytest.mark.parametrize("mutate", BROKEN_RECORDINGS)
def test_finish_json_refuses_what_the_models_refuse(mutate):
    """The same broken recordings test_atif feeds finish(): finish_json refuses them too."""
    rec = _recorded_then(mutate)
    with pytest.raises((ValidationError, TypeError)):
        rec.finish_json()


def test_what_only_the_models_accept_is_still_accepted():
    """A float count the models read as an int is not proven by shape; the models accept it."""
    rec = _recorded_then(lambda steps: steps[1]["metrics"].update(prompt_tokens=12.0))
    assert not surely_valid(_document(rec))
    assert orjson.loads(rec.finish_json()) == rec.finish().to_json_dict()


#: one of each kind of value for the exhaustive single edits below
SAMPLES = [None, True, 0, -1, 7, 2**64 - 1, 1.5, 12.0, float("nan"), "", "x", "Z", "2024-01-02T03:04:05Z",
           "2024-13-45T99:99:99+00:00", "yesterday", "system", "user", "agent", "ATIF-v1.0", "c1", Kind.one,
           [], [1], {}, {"k": 1}, {"results": []}, [{"tool_call_id": "c1", "function_name": "f", "arguments": {}}]]
EXTRA_KEYS = ["colour", "trajectory_id", "is_copied_context", "cost_usd", "reasoning_effort", "model_name",
              "metrics", "tool_calls", "observation", "llm_call_count", "extra", "timestamp", "subagent_trajectory_ref",
              "total_cost_usd", "logprobs"]


def _edits() -> list[tuple[tuple, str, Any]]:
    edits: list[tuple[tuple, str, Any]] = []
    for path in BASE_PATHS:
        edits.append((path, "drop", None))
        edits += [(path, "set", value) for value in SAMPLES]
    for path in [()] + BASE_PATHS:
        if isinstance(_at(BASE, path), dict):
            edits += [(path + (key,), "set", value) for key in EXTRA_KEYS for value in SAMPLES]
    return edits


def test_no_single_edit_is_accepted_that_the_models_refuse():
    """Every one-place change of a recorded document, exhaustively: each field dropped, set to
    each sample value, each known and unknown key added with each. Where surely_valid still
    says yes, the models and Harbor accept; and it does say no to some of each kind."""
    accepted = refused = 0
    for path, action, value in _edits():
        doc = copy.deepcopy(BASE)
        parent = _at(doc, path[:-1])
        if action == "drop":
            del parent[path[-1]]
        else:
            parent[path[-1]] = value
        raw = json_bytes(doc)
        if raw is None:
            continue
        if surely_valid(doc):
            accepted += 1
            assert _models_accept(raw), (path, action, value)
            assert validate_with_harbor(raw) == [], (path, action, value)
        else:
            refused += 1
    assert accepted > 100 and refused > 1000


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_no_mutation_is_accepted_that_the_models_refuse(data):
    """Change, drop or add anything anywhere in a recorded document (up to three edits):
    whenever surely_valid still says yes, our models and Harbor's validator agree."""
    doc = copy.deepcopy(BASE)
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(BASE_PATHS))
        try:
            parent = _at(doc, path[:-1])
            parent[path[-1]]
        except (KeyError, IndexError, TypeError):
            continue  # an earlier edit removed it
        action = data.draw(st.sampled_from(["set", "drop", "add"]))
        if action == "set":
            parent[path[-1]] = data.draw(ODD)
        elif action == "drop":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[data.draw(st.sampled_from(["colour", "trajectory_id", "is_copied_context", "cost_usd",
                                              "reasoning_effort", "model_name", "metrics", "tool_calls",
                                              "observation", "llm_call_count", "extra", "timestamp"]))] = data.draw(ODD)
        else:
            parent.append(data.draw(ODD))
    raw = json_bytes(doc)
    assume(raw is not None)
    if surely_valid(doc):
        assert _models_accept(raw), doc
        assert validate_with_harbor(raw) == [], doc


@settings(max_examples=300, deadline=None)
@given(message=ODD, reasoning=ODD, model_name=ODD, call_id=ODD, name=ODD, content=ODD, prompt=ODD,
       session=ODD, when=st.one_of(st.none(), st.just(datetime(2024, 1, 2, 3, 4, 5))))
def test_a_recorder_fed_odd_values_writes_what_finish_validates(message, reasoning, model_name, call_id, name,
                                                               content, prompt, session, when):
    """Whatever a model, a tool or a caller hands the recorder: finish_json either gives the
    bytes of the trajectory finish() validates, or fails as finish() does."""
    def record(rec: TrajectoryRecorder) -> None:
        rec.system("sys")
        sid = rec.agent(message=message, reasoning=reasoning, model_name=model_name,
                        tool_calls=[ToolCall(id=call_id, name=name, arguments_raw="{}", arguments={})],
                        usage=Usage(prompt_tokens=prompt, completion_tokens=3), timestamp=when)
        result = ToolResult(content="ok")
        result.content = content  # changed after it was checked, as nothing in the package does
        rec.observe(sid, call_id, result)

    def outcome(finish: Any) -> Any:
        rec = TrajectoryRecorder(session_id=session, agent_version="1", model_name="m", tool_definitions=[])
        try:
            record(rec)
            return orjson.loads(finish(rec))
        except Exception as exc:  # noqa: BLE001 - compared below
            return type(exc)

    fast = outcome(lambda rec: rec.finish_json())
    slow = outcome(lambda rec: rec.finish().to_json_bytes())
    if isinstance(fast, dict) and isinstance(slow, dict):
        for a, b in zip(fast["steps"], slow["steps"]):  # stamped twice
            a.pop("timestamp"), b.pop("timestamp")
    if fast != slow:  # only text orjson refuses: finish_json writes it as U+FFFD, as the runner did
        assert slow is TypeError and isinstance(fast, dict) and _models_accept(orjson.dumps(fast))


def test_a_real_rollout_step_is_proven(tmp_path):
    """The ReAct loop's own steps take the quick path (nothing in them is left to the models)."""
    rec = TrajectoryRecorder(session_id="s", agent_version="1", model_name="m", tool_definitions=[{"type": "x"}],
                             system_prompt="sys", extra={"task_id": "t"})
    rec.system("sys")
    rec.user("go")
    sid = rec.agent(message="", reasoning="think", tool_calls=[_call("c1", command="ls")], model_name="m",
                    usage=Usage(10, 2, 0, 0, 1.5), finish_reason="tool_calls")
    rec.observe(sid, "c1", ToolResult(content="a\n", exit_code=0, latency_ms=0.2))
    rec.agent(message="done", reasoning=None, tool_calls=[], model_name="m", usage=Usage(12, 1), finish_reason="stop")
    assert surely_valid(_document(rec, extra={"turns": 2}))
