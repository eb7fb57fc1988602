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

from typing import Any

from react_eval.trajectories.atif import SUPPORTED_SCHEMA_VERSIONS, is_iso_timestamp

__all__ = ["surely_valid"]

_ROOT_KEYS = frozenset({"schema_version", "session_id", "agent", "steps", "notes", "final_metrics", "extra"})
_AGENT_KEYS = frozenset({"name", "version", "model_name", "tool_definitions", "extra"})
#: the keys of a system or user step, and of an agent step (a subset of the model's: others are left to it)
_PLAIN_STEP_KEYS = frozenset({"step_id", "timestamp", "source", "message", "extra"})
_AGENT_STEP_KEYS = _PLAIN_STEP_KEYS | {"model_name", "reasoning_content", "tool_calls", "observation", "metrics",
                                       "llm_call_count"}
_CALL_KEYS = frozenset({"tool_call_id", "function_name", "arguments", "extra"})
_RESULT_KEYS = frozenset({"source_call_id", "content", "extra"})
_METRICS_KEYS = frozenset({"prompt_tokens", "completion_tokens", "cached_tokens", "extra"})
_FINAL_KEYS = frozenset({"total_prompt_tokens", "total_completion_tokens", "total_cached_tokens", "total_steps",
                         "extra"})
_SOURCES = {"system": _PLAIN_STEP_KEYS, "user": _PLAIN_STEP_KEYS, "agent": _AGENT_STEP_KEYS}
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
    allowed = _SOURCES.get(source) if type(source) is str else None
    if allowed is None or not step.keys() <= allowed:  # also: agent-only fields only on agent steps
        return False
    if type(step.get("step_id")) is not int or step["step_id"] != index or type(step.get("message")) is not str:
        return False
    if "timestamp" in step and (type(step["timestamp"]) is not str or not is_iso_timestamp(step["timestamp"])):
        return False
    if "extra" in step and type(step["extra"]) is not dict:
        return False
    if allowed is _PLAIN_STEP_KEYS:  # a system or user step: nothing else to look at
        return True
    if "model_name" in step and type(step["model_name"]) is not str:
        return False
    if "reasoning_content" in step and type(step["reasoning_content"]) is not str:
        return False
    if "llm_call_count" in step:
        count = step["llm_call_count"]
        if type(count) is not int or count < 1:  # 0 has rules of its own: left to the models
            return False
    if "metrics" in step and not _counts_ok(step["metrics"], _METRICS_KEYS):
        return False
    call_ids = set()
    if "tool_calls" in step:
        calls = step["tool_calls"]
        if type(calls) is not list:
            return False
        for call in calls:
            if (type(call) is not dict or not call.keys() <= _CALL_KEYS or type(call.get("tool_call_id")) is not str
                    or type(call.get("function_name")) is not str or type(call.get("arguments")) is not dict
                    or ("extra" in call and type(call["extra"]) is not dict)):
                return False
            call_ids.add(call["tool_call_id"])
    if "observation" in step:
        observation = step["observation"]
        if type(observation) is not dict or observation.keys() != {"results"} or type(observation["results"]) is not list:
            return False
        for result in observation["results"]:
            if (type(result) is not dict or not result.keys() <= _RESULT_KEYS
                    or type(result.get("source_call_id")) is not str or result["source_call_id"] not in call_ids
                    or ("content" in result and type(result["content"]) is not str)
                    or ("extra" in result and type(result["extra"]) is not dict)):
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
