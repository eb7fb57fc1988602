"""The finished trajectory's document: final metrics, the models' field order, JSON bytes.

Split from :mod:`react_eval.trajectories.recorder`, whose :meth:`~react_eval.trajectories.recorder.TrajectoryRecorder.finish`
uses these once per rollout (and :data:`AFTER_OBSERVATION` per observation).
"""

from __future__ import annotations

from enum import Enum
from typing import Any

import orjson
from pydantic_core import to_jsonable_python

from react_eval.jsonsafe import clean_json
from react_eval.trajectories.atif import FinalMetrics, Step, Trajectory

__all__ = ["AFTER_OBSERVATION", "FINAL_FIELDS", "ROOT_FIELDS", "document_of", "final_metrics_of", "json_bytes", "ordered", "plain",
           "trajectory_bytes"]


def plain(value: Any) -> Any:
    """Enum members become their values so extras read naturally in JSON."""
    return value.value if isinstance(value, Enum) else value


ROOT_FIELDS = tuple(Trajectory.model_fields)
STEP_FIELDS = tuple(Step.model_fields)
#: a step's fields that come after its ``observation``, in order
AFTER_OBSERVATION = STEP_FIELDS[STEP_FIELDS.index("observation") + 1:]
FINAL_FIELDS = tuple(FinalMetrics.model_fields)


def ordered(data: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    """``data``'s fields in the model's order, None left out (free-form values untouched)."""
    return {key: data[key] for key in fields if data.get(key) is not None}


#: values orjson would write its own way go to :func:`_jsonable` instead, as pydantic writes them
_PASSTHROUGH = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_SUBCLASS


def _jsonable(value: Any) -> Any:
    return to_jsonable_python(value, fallback=str)


def json_bytes(document: dict[str, Any]) -> bytes | None:
    """``document`` as JSON, every value JSON cannot hold as pydantic's JSON mode gives it
    (``str()`` where it has no form); None when orjson refuses the data itself."""
    try:
        return orjson.dumps(document, default=_jsonable, option=_PASSTHROUGH)
    except TypeError:  # orjson.JSONEncodeError
        return None


def trajectory_bytes(trajectory: Trajectory) -> bytes:
    """The trajectory as JSON; text orjson refuses (a lone surrogate) is written as U+FFFD."""
    try:
        return trajectory.to_json_bytes()
    except TypeError:  # orjson.JSONEncodeError
        return orjson.dumps(clean_json(trajectory.to_json_dict()))


def document_of(data: dict[str, Any]) -> dict[str, Any] | None:
    """Validated recorder data as ``Trajectory.to_json_dict`` would dump it, or None.

    The recorder builds every step, tool call, result and metrics dict with the
    model's fields in the model's order and no None field (:meth:`TrajectoryRecorder.observe`
    puts a step's observation in its place), and validation refused any other
    key; free-form ``extra`` and ``arguments`` keep their Nones, as pydantic's
    ``exclude_none`` does. So only the root and the final metrics need ordering.
    Content-part messages (whose parts carry None fields) are left to the models.
    """
    for step in data["steps"]:
        if type(step["message"]) is not str:
            return None
    root = ordered(data, ROOT_FIELDS)
    if "final_metrics" in root:
        root["final_metrics"] = ordered(root["final_metrics"], FINAL_FIELDS)
    return root


def final_metrics_of(steps: list[dict[str, Any]], error_kind: str | None) -> dict[str, Any]:
    """The trajectory's ``final_metrics``: token totals over the recorded steps, and tool-call counts in ``extra``."""
    prompt = completion = cached = reasoning_total = None
    latency_total = 0.0
    agent_steps = calls = invalid_json_calls = results = errors = 0
    calls_by_tool: dict[str, int] = {}
    errors_by_kind: dict[str, int] = {}

    for step in steps:
        if step["source"] != "agent":
            continue
        agent_steps += 1
        metrics = step.get("metrics")
        if metrics is not None:
            value = metrics.get("prompt_tokens")
            if value is not None:
                prompt = (prompt or 0) + value
            value = metrics.get("completion_tokens")
            if value is not None:
                completion = (completion or 0) + value
            value = metrics.get("cached_tokens")
            if value is not None:
                cached = (cached or 0) + value
            m_extra = metrics.get("extra")
            if m_extra:
                value = m_extra.get("reasoning_tokens")
                if value is not None:
                    reasoning_total = (reasoning_total or 0) + value
                value = m_extra.get("latency_ms")
                if value is not None:
                    latency_total += value
        tool_calls = step.get("tool_calls")
        if tool_calls:
            for call in tool_calls:
                calls += 1
                name = call["function_name"]
                calls_by_tool[name] = calls_by_tool.get(name, 0) + 1
                call_extra = call.get("extra")
                if call_extra and "parse_error" in call_extra:
                    invalid_json_calls += 1
        observation = step.get("observation")
        if observation is not None:
            for result in observation["results"]:
                results += 1
                r_extra = result.get("extra")
                if r_extra and r_extra.get("is_error"):
                    errors += 1
                    kind = str(r_extra.get("error_kind") or "unspecified")
                    errors_by_kind[kind] = errors_by_kind.get(kind, 0) + 1

    return {
        "total_prompt_tokens": prompt,
        "total_completion_tokens": completion,
        "total_cached_tokens": cached,
        "total_steps": len(steps),
        "extra": {
            "error_kind": plain(error_kind),
            "total_reasoning_tokens": reasoning_total,
            "total_model_latency_ms": latency_total,
            "agent_steps": agent_steps,
            "tool_calls": calls,
            "tool_calls_by_name": calls_by_tool,
            "tool_calls_invalid_json": invalid_json_calls,
            "tool_results": results,
            "tool_errors": errors,
            "tool_errors_by_kind": errors_by_kind,
        },
    }
