"""A quick proof that a recorder's document is valid ATIF, without building the models.

:func:`surely_valid` looks at the few fields of a document whose values came from
outside the recorder (text and counts from the model, the tools and the caller) and
at the shape the recorder built around them, and answers True only for a document
that the ATIF models (and so Harbor's) certainly accept once it is written as JSON.
It is conservative: anything it does not know for sure (a None where a value is
optional, a field the recorder never writes, an int subclass, content parts) makes
it answer False, and the caller then validates with the models, which decide.
So it never accepts more than the models: the tests hold it to that with
hypothesis, against our models and Harbor's validator.

Free-form values (``extra``, tool-call ``arguments``, ``tool_definitions`` entries)
are any JSON object in ATIF (``dict[str, Any]``); the document is written with
orjson, which refuses non-text keys, so a ``dict`` there is always valid and is not
looked into. The rules beyond types are the models' own: sequential step ids, the
agent-only fields, results that name a call of their step, ISO 8601 timestamps
(checked by the models' function, :func:`~react_eval.trajectories.atif.is_iso_timestamp`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from react_eval.trajectories.atif import SUPPORTED_SCHEMA_VERSIONS, is_iso_timestamp

__all__ = ["surely_valid"]

_ROOT_KEYS = frozenset({"schema_version", "session_id", "agent", "steps", "notes", "final_metrics", "extra"})
_AGENT_KEYS = frozenset({"name", "version", "model_name", "tool_definitions", "extra"})
#: the keys of a system or user step, and of an agent step (a subset of the model's: others are left to
#: it), each with the one type it may have here
_PLAIN_TYPES: dict[str, type] = {"step_id": int, "timestamp": str, "source": str, "message": str, "extra": dict}
_AGENT_TYPES: dict[str, type] = {**_PLAIN_TYPES, "model_name": str, "reasoning_content": str, "tool_calls": list,
                                 "observation": dict, "metrics": dict, "llm_call_count": int}
_CALL_TYPES: dict[str, type] = {"tool_call_id": str, "function_name": str, "arguments": dict, "extra": dict}
_RESULT_TYPES: dict[str, type] = {"source_call_id": str, "content": str, "extra": dict}
_METRICS_KEYS = frozenset({"prompt_tokens", "completion_tokens", "cached_tokens", "extra"})
_FINAL_KEYS = frozenset({"total_prompt_tokens", "total_completion_tokens", "total_cached_tokens", "total_steps",
                         "extra"})
_TYPES_BY_SOURCE = {"system": _PLAIN_TYPES, "user": _PLAIN_TYPES, "agent": _AGENT_TYPES}
_VERSIONS = frozenset(SUPPORTED_SCHEMA_VERSIONS)


def surely_valid(document: dict[str, Any]) -> bool:
    """True only if ``document``, written as JSON by orjson, is valid ATIF (see the module's note)."""
    if type(document) is not dict or not document.keys() <= _ROOT_KEYS:
        return False
    version = document.get("schema_version")
    if type(version) is not str or version not in _VERSIONS:
        return False
    for key in ("session_id", "notes"):
        if key in document and type(document[key]) is not str:
            return False
    if "extra" in document and type(document["extra"]) is not dict:
        return False
    agent = document.get("agent")
    if type(agent) is not dict or not agent.keys() <= _AGENT_KEYS or not _agent_ok(agent):
        return False
    if "final_metrics" in document and not _counts_ok(document["final_metrics"], _FINAL_KEYS):
        return False
    steps = document.get("steps")
    if type(steps) is not list or not steps:
        return False
    for index, step in enumerate(steps, 1):
        if type(step) is not dict or not _step_ok(step, index):
            return False
    return True


def _agent_ok(agent: dict[str, Any]) -> bool:
    if type(agent.get("name")) is not str or type(agent.get("version")) is not str:
        return False
    if "model_name" in agent and type(agent["model_name"]) is not str:
        return False
    if "extra" in agent and type(agent["extra"]) is not dict:
        return False
    if "tool_definitions" in agent:
        tools = agent["tool_definitions"]
        if type(tools) is not list or any(type(tool) is not dict for tool in tools):
            return False
    return True


def _step_ok(step: dict[str, Any], index: int) -> bool:
    source = step.get("source")
    types = _TYPES_BY_SOURCE.get(source) if type(source) is str else None
    if types is None:
        return False
    for key, value in step.items():  # only known keys (agent-only ones on agent steps), each of its type
        if types.get(key) is not type(value):
            return False
    if step.get("step_id") != index or "message" not in step:
        return False
    stamp = step.get("timestamp")
    if stamp is not None:
        if "Z" in stamp:
            if not is_iso_timestamp(stamp):
                return False
        else:  # the models' rule, whose "Z" -> "+00:00" changes nothing here
            try:
                datetime.fromisoformat(stamp)
            except ValueError:
                return False
    if types is _PLAIN_TYPES:  # a system or user step: nothing else to look at
        return True
    if step.get("llm_call_count", 1) < 1:  # 0 has rules of its own: left to the models
        return False
    metrics = step.get("metrics")
    if metrics is not None and not _counts_ok(metrics, _METRICS_KEYS):
        return False
    calls = step.get("tool_calls")
    call_ids = set()
    if calls is not None:
        for call in calls:
            if type(call) is not dict or not _typed(call, _CALL_TYPES) or len(call) - ("extra" in call) != 3:
                return False  # not exactly an id, a name, the arguments (and an extra)
            call_ids.add(call["tool_call_id"])
    observation = step.get("observation")
    if observation is not None:
        results = observation.get("results")
        if len(observation) != 1 or type(results) is not list:
            return False
        for result in results:
            if (type(result) is not dict or not _typed(result, _RESULT_TYPES)
                    or result.get("source_call_id") not in call_ids):
                return False
    return True


def _typed(data: dict[str, Any], types: dict[str, type]) -> bool:
    """Every key of ``data`` is one of ``types``, its value of that type."""
    for key, value in data.items():
        if types.get(key) is not type(value):
            return False
    return True


def _counts_ok(metrics: Any, allowed: frozenset[str]) -> bool:
    """Metrics or final metrics: only ints (never negative: ``total_steps`` has a floor) and ``extra``."""
    if type(metrics) is not dict or not metrics.keys() <= allowed:
        return False
    for key, value in metrics.items():
        if key == "extra":
            if type(value) is not dict:
                return False
        elif type(value) is not int or value < 0:
            return False
    return True
