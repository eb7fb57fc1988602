"""``runtime_stats.json`` and ``failure_analysis.json``, computed from result rows."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from react_eval.metrics import distribution
from react_eval.types import INFRA_ERROR_KINDS

_INFRA = {k.value for k in INFRA_ERROR_KINDS}


def runtime_stats(rows: list[dict[str, Any]]) -> dict[str, Any]:
    if rows:
        starts = [datetime.fromisoformat(r["started_at"]) for r in rows]
        ends = [datetime.fromisoformat(r["finished_at"]) for r in rows]
        span = (max(ends) - min(starts)).total_seconds()
    else:
        span = 0.0
    model_calls = [r["model_latency_ms"] / r["turns"] for r in rows if r.get("turns")]
    return {
        "rollouts": len(rows),
        "wall_seconds": span,
        "rollouts_per_second": len(rows) / span if span > 0 else None,
        "turns_per_second": sum(r["turns"] for r in rows) / span if span > 0 else None,
        "rollout_wall_ms": distribution(r["wall_ms"] for r in rows),
        "model_latency_ms_per_rollout": distribution(r["model_latency_ms"] for r in rows),
        "model_latency_ms_per_call": distribution(model_calls),
        "tool_latency_ms_per_rollout": distribution(r["tool_latency_ms"] for r in rows),
        "turns": distribution(r["turns"] for r in rows),
        "tool_calls": distribution(r["tool_calls"] for r in rows),
        "prompt_tokens": distribution(r["prompt_tokens"] for r in rows),
        "completion_tokens": distribution(r["completion_tokens"] for r in rows),
        "cached_tokens": distribution(r["cached_tokens"] for r in rows),
        "reasoning_tokens": distribution(r["reasoning_tokens"] for r in rows),
    }


def describe_failure(failure: dict[str, Any]) -> str:
    """``bash() failed on turn 3 with exit code 1`` and the like."""
    what = f"{failure['tool']}() failed on turn {failure['turn']}"
    if failure.get("exit_code") is not None:
        return f"{what} with exit code {failure['exit_code']}"
    kind = failure.get("error_kind") or "error"
    return f"{what} ({kind.replace('_', ' ')})"


def failure_analysis(rows: list[dict[str, Any]], examples_per_kind: int = 3) -> dict[str, Any]:
    kinds = Counter(r.get("error_kind") or "ok" for r in rows)
    tools: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r in rows:
        for name, (calls, errors) in (r.get("tool_stats") or {}).items():
            tools[name][0] += calls
            tools[name][1] += errors
    examples: dict[str, list[dict[str, Any]]] = defaultdict(list)
    first_failures = []
    for r in rows:
        kind = r.get("error_kind") or ("failed" if not r.get("passed") else None)
        failure = r.get("first_tool_failure")
        if failure:
            first_failures.append({"task_id": r["task_id"], "repeat": r["repeat"], "rollout_id": r["rollout_id"],
                                   "summary": describe_failure(failure), **failure})
        if kind and len(examples[kind]) < examples_per_kind:
            examples[kind].append({
                "task_id": r["task_id"], "repeat": r["repeat"], "rollout_id": r["rollout_id"],
                "error": r.get("error"), "reward": r.get("reward"),
                "first_tool_failure": describe_failure(failure) if failure else None,
            })
    return {
        "rollouts": len(rows),
        "error_kinds": dict(sorted(kinds.items())),
        "infra_failures": sum(v for k, v in kinds.items() if k in _INFRA),
        "tools": {
            name: {"calls": c, "errors": e, "error_rate": e / c if c else 0.0}
            for name, (c, e) in sorted(tools.items())
        },
        "first_failing_call": first_failures,
        "examples": dict(examples),
    }


def write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2))
    tmp.replace(path)


def write_run_artifacts(out_dir: Path, rows: list[dict[str, Any]]) -> None:
    write_json(out_dir / "runtime_stats.json", runtime_stats(rows))
    write_json(out_dir / "failure_analysis.json", failure_analysis(rows))
