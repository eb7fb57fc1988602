"""Synthetic benchmark runs on disk: results.jsonl, real ATIF trajectories, eval.json.

A rollout is described by :class:`Outcome`; :func:`write_run` turns a mapping
``task_id -> [Outcome per repeat]`` into the files a real run writes. Every
trajectory is recorded with the project's :class:`TrajectoryRecorder`: a system
and a user step, a first turn that lists files (``bash ls``, exit 0), optionally
a turn whose tool call fails, and a final answer.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson

from react_eval.engine.config import EvalConfig
from react_eval.engine.results import RolloutResult
from react_eval.trajectories import TrajectoryRecorder
from react_eval.types import ToolCall, ToolResult, Usage

T0 = datetime(2025, 1, 1, 12, 0, 0, tzinfo=timezone.utc)

TOOL_DEFS = [
    {"type": "function", "function": {"name": name, "description": f"the {name} tool",
                                      "parameters": {"type": "object", "properties": {}}}}
    for name in ("bash", "file_read", "str_replace_editor")
]


@dataclass
class Outcome:
    passed: bool = False
    #: an ErrorKind value, e.g. "model_error" (infrastructure) or "max_turns_exhausted"
    error_kind: str | None = None
    #: a tool whose call fails on turn 2: (tool name, exit code or None, tool error kind)
    fail: tuple[str, int | None, str] | None = None
    answer: str | None = None
    turns: int | None = None
    prompt_tokens: int = 1000
    cached_tokens: int = 200
    wall_ms: float = 5000.0


def P(**kw: Any) -> Outcome:
    return Outcome(passed=True, **kw)


def F(**kw: Any) -> Outcome:
    kw.setdefault("fail", ("bash", 1, "nonzero_exit"))
    return Outcome(passed=False, **kw)


def INFRA(kind: str = "model_error") -> Outcome:
    return Outcome(passed=False, error_kind=kind)


def config_data(model: str = "model-a", system_prompt: str | None = None, **solver: Any) -> dict[str, Any]:
    return {
        "services": {"model": {"type": "api", "base_url": "http://127.0.0.1:9/v1", "model": model}},
        "sandboxes": {"local": {"type": "local"}},
        "benchmarks": [{"name": "synth", "repeats": 1, "sandbox": "local",
                        "solver": {"type": "tool_calling", "service": "model", "system_prompt": system_prompt,
                                   **solver}}],
    }


def _trajectory(run_id: str, rollout_id: str, task: str, repeat: int, o: Outcome, model: str) -> bytes:
    tick = iter(range(10_000))
    recorder = TrajectoryRecorder(
        session_id=f"{run_id}-{rollout_id}", agent_version="0.1.0", model_name=model, tool_definitions=TOOL_DEFS,
        system_prompt="You are a careful agent.", extra={"task_id": task, "repeat": repeat, "benchmark": "synth"},
        clock=lambda: T0 + timedelta(seconds=next(tick)),
    )
    recorder.system("You are a careful agent.")
    recorder.user(f"Solve task {task}. End with ANSWER: <value>.")
    if o.error_kind in ("model_error", "auth_error"):
        return recorder.finish(error_kind=o.error_kind).to_json_bytes()

    def turn(message: str, calls: list[tuple[ToolCall, ToolResult]], reasoning: str | None = None) -> None:
        step = recorder.agent(
            message=message, reasoning=reasoning, tool_calls=[c for c, _ in calls], model_name=model,
            usage=Usage(prompt_tokens=o.prompt_tokens // 2, completion_tokens=40, cached_tokens=o.cached_tokens // 2,
                        reasoning_tokens=10, model_latency_ms=800.0),
            finish_reason="tool_calls" if calls else "stop",
        )
        for call, result in calls:
            recorder.observe(step, call.id, result)

    turn("Let me look around.", [(
        ToolCall(id="c1", name="bash", arguments_raw='{"command": "ls -la"}', arguments={"command": "ls -la"}),
        ToolResult(content="data.txt\nsolve.py\n", exit_code=0, latency_ms=35.0),
    )], reasoning=f"First I list the files of {task}.")
    if o.fail is not None:
        tool, exit_code, kind = o.fail
        args = {"command": "python solve.py --check"} if tool == "bash" else {"path": "missing.txt"}
        content = "Traceback (most recent call last):\n  ValueError: bad input\n" + "x" * 300
        turn("Running the checker.", [(
            ToolCall(id="c2", name=tool, arguments_raw=orjson.dumps(args).decode(), arguments=args),
            ToolResult.error(content, kind, exit_code=exit_code, latency_ms=120.0, truncated=True),
        )])
    answer = o.answer if o.answer is not None else ("42" if o.passed else "41")
    turn(f"Done.\nANSWER: {answer}", [])
    return recorder.finish(error_kind=o.error_kind).to_json_bytes()


def write_run(
    directory: Path,
    outcomes: dict[str, list[Outcome]],
    *,
    model: str = "model-a",
    config: dict[str, Any] | None = None,
    trajectories: bool = True,
    run_id: str = "run-1",
) -> Path:
    """Write a benchmark directory ``directory`` (created) and return it."""
    directory.mkdir(parents=True, exist_ok=True)
    rows, trajs = [], []
    repeats = max(len(v) for v in outcomes.values())
    for task, per_repeat in outcomes.items():
        for repeat, o in enumerate(per_repeat):
            rollout_id = hashlib.sha1(f"{run_id}/{task}/{repeat}".encode()).hexdigest()[:16]
            infra = o.error_kind in ("model_error", "auth_error", "sandbox_error", "tool_infra_error", "verify_error")
            answer = o.answer if o.answer is not None else ("42" if o.passed else "41")
            turns = o.turns if o.turns is not None else (0 if infra else 2 + (o.fail is not None))
            row = RolloutResult(
                run_id=run_id, benchmark="synth", task_id=task, repeat=repeat, rollout_id=rollout_id,
                reward=None if infra else (1.0 if o.passed else 0.0), passed=o.passed, error_kind=o.error_kind,
                error="model unreachable" if infra else None, turns=turns,
                tool_calls=0 if infra else 1 + (o.fail is not None), tool_errors=int(o.fail is not None and not infra),
                prompt_tokens=0 if infra else o.prompt_tokens, completion_tokens=0 if infra else 40 * turns,
                cached_tokens=0 if infra else o.cached_tokens, reasoning_tokens=0 if infra else 10 * turns,
                model_latency_ms=800.0 * turns, tool_latency_ms=155.0, wall_ms=o.wall_ms,
                started_at=T0.isoformat(), finished_at=(T0 + timedelta(milliseconds=o.wall_ms)).isoformat(),
                model=model, final_message="" if infra else f"Done.\nANSWER: {answer}",
                verification={} if infra else {"extracted": answer, "expected": "42"},
            )
            rows.append(orjson.dumps(row.model_dump(mode="json")))
            if trajectories:
                trajs.append(_trajectory(run_id, rollout_id, task, repeat, o, model))
    (directory / "results.jsonl").write_bytes(b"\n".join(rows) + b"\n")
    if trajectories:
        (directory / "trajectories.jsonl").write_bytes(b"\n".join(trajs) + b"\n")
    data = config if config is not None else config_data(model)
    data["benchmarks"][0]["repeats"] = repeats
    bundle = {
        "run_id": run_id, "benchmark": "synth", "verification": "final_message", "model": model,
        "started_at": T0.isoformat(), "finished_at": (T0 + timedelta(hours=1)).isoformat(),
        "config": EvalConfig.model_validate(data).redacted(), "metrics": {},
    }
    (directory / "eval.json").write_bytes(orjson.dumps(bundle, option=orjson.OPT_INDENT_2))
    return directory
