"""What the viewer's list knows about each rollout without loading its trajectory.

One summary per rollout (task, repeat, outcome, the "why" line, the first
failing call, the tools used and the error kinds of failed calls, tokens, ...)
is embedded in index.html; the text of every call's arguments and output goes
to a separate full-text search index, loaded only when the user searches.
"""

from __future__ import annotations

from typing import Any

import orjson

from react_eval.analysis.runs import tool_call_records
from react_eval.analysis.why import explain
from react_eval.metrics import INFRA_KINDS

#: characters of arguments and outputs kept per rollout in the search index
SEARCH_CHARS = 24_000
#: longer artifacts (patches) are cut in the chunk files
ARTIFACT_LIMIT = 200_000

_RESULT_FIELDS = ("task_id", "repeat", "rollout_id", "run_id", "model", "reward", "passed", "error_kind", "error",
                  "turns", "tool_calls", "tool_errors", "prompt_tokens", "completion_tokens", "cached_tokens",
                  "reasoning_tokens", "model_latency_ms", "tool_latency_ms", "wall_ms", "started_at", "finished_at",
                  "final_message", "verification")


def first_failure(trajectory: dict[str, Any] | None, row: dict[str, Any]) -> tuple[dict[str, Any] | None, list[str]]:
    """The first failing tool call and the names of every tool that failed."""
    if trajectory is None:
        failure = row.get("first_tool_failure")
        if failure:
            keep = {k: failure.get(k) for k in ("tool", "turn", "exit_code", "error_kind")}
            return keep, [str(failure.get("tool"))]
        return None, []
    first = None
    failed: list[str] = []
    for call in tool_call_records(trajectory):
        if not call["is_error"]:
            continue
        if first is None:
            first = {k: call[k] for k in ("tool", "turn", "exit_code", "error_kind", "step_id", "call_id")}
        if call["tool"] not in failed:
            failed.append(str(call["tool"]))
    return first, failed


def _calls(trajectory: dict[str, Any] | None, row: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Tools used and the error kinds of failed calls."""
    if trajectory is None:
        stats = row.get("tool_stats") or {}
        kinds = [str((row.get("first_tool_failure") or {}).get("error_kind") or "")]
        return sorted(stats), [k for k in kinds if k]
    used: set[str] = set()
    kinds: set[str] = set()
    for call in tool_call_records(trajectory):
        used.add(str(call["tool"]))
        if call["is_error"]:
            kinds.add(str(call["error_kind"] or "error"))
    return sorted(used), sorted(kinds)


def outcome(row: dict[str, Any]) -> str:
    if row.get("error_kind") in INFRA_KINDS:
        return "infra"
    return "pass" if row.get("passed") else "fail"


def summary(index: int, run_index: int, row: dict[str, Any], trajectory: dict[str, Any] | None,
            chunk: str) -> dict[str, Any]:
    first, failed = first_failure(trajectory, row)
    used, kinds = _calls(trajectory, row)
    why = explain(row, first)
    return {
        "i": index,
        "run": run_index,
        "task": str(row["task_id"]),
        "rep": int(row.get("repeat", 0)),
        "reward": row.get("reward"),
        "passed": bool(row.get("passed")),
        "outcome": outcome(row),
        "ek": row.get("error_kind"),
        "why": why.text,
        "wc": why.code,
        "turns": row.get("turns", 0),
        "tc": row.get("tool_calls", 0),
        "te": row.get("tool_errors", 0),
        "ff": first,
        "ft": failed,
        "tu": used,
        "ck": kinds,
        "tok": (row.get("prompt_tokens") or 0) + (row.get("completion_tokens") or 0),
        "cached": row.get("cached_tokens") or 0,
        "wall": row.get("wall_ms") or 0,
        "traj": trajectory is not None,
        "chunk": chunk,
    }


def result_payload(row: dict[str, Any]) -> dict[str, Any]:
    """The result row as a chunk holds it (a very long patch is cut, and says so)."""
    payload = {k: row.get(k) for k in _RESULT_FIELDS}
    artifact = row.get("artifact")
    if artifact is not None and len(artifact) > ARTIFACT_LIMIT:
        artifact = artifact[:ARTIFACT_LIMIT] + f"\n[... {len(artifact) - ARTIFACT_LIMIT} more characters cut]"
    payload["artifact"] = artifact
    return payload


def search_text(row: dict[str, Any], trajectory: dict[str, Any] | None) -> str:
    """Lower-cased text to search: messages, call arguments first, then outputs (capped)."""
    parts: list[str] = [str(row.get("final_message") or ""), str(row.get("error") or "")]
    outputs: list[str] = []
    for step in (trajectory or {}).get("steps") or ():
        if step.get("source") != "agent":
            continue
        message = step.get("message")
        if isinstance(message, str):
            parts.append(message)
        for call in step.get("tool_calls") or ():
            parts.append(str(call.get("function_name")))
            args = call.get("arguments")
            parts.append(args if isinstance(args, str) else orjson.dumps(args).decode())
        for result in (step.get("observation") or {}).get("results") or ():
            content = result.get("content")
            outputs.append(content if isinstance(content, str) else orjson.dumps(content).decode())
    text = "\n".join(parts)
    if len(text) < SEARCH_CHARS:
        text += "\n" + "\n".join(outputs)[: SEARCH_CHARS - len(text)]
    return text[:SEARCH_CHARS].lower()
