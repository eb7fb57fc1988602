#!/usr/bin/env python3
"""Regenerate trajectories/atif.schema.json and trajectories/reference/smoke_example.json.

    python tools/export_atif_schema.py          # rewrite both files
    python tools/export_atif_schema.py --check  # exit 1 if either is stale

The schema comes from ``react_eval.trajectories.atif.Trajectory``; the
reference trajectory is recorded with ``TrajectoryRecorder`` on a pinned clock,
so both outputs are deterministic. tests/trajectories/test_atif.py fails when
the committed files differ from what this script produces.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from react_eval.trajectories import Trajectory, TrajectoryRecorder, atif_json_schema  # noqa: E402
from react_eval.types import ToolCall, ToolResult, Usage  # noqa: E402

SCHEMA_PATH = REPO / "trajectories" / "atif.schema.json"
REFERENCE_PATH = REPO / "trajectories" / "reference" / "smoke_example.json"

TOOL_DEFINITIONS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "bash",
            "description": "Run a bash command in the sandbox's working directory.",
            "parameters": {
                "type": "object",
                "properties": {"command": {"type": "string"}},
                "required": ["command"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "str_replace_editor",
            "description": "View, create and edit files.",
            "parameters": {
                "type": "object",
                "properties": {
                    "command": {
                        "type": "string",
                        "enum": ["view", "create", "str_replace", "insert", "undo_edit"],
                    },
                    "path": {"type": "string"},
                    "old_str": {"type": "string"},
                    "new_str": {"type": "string"},
                    "file_text": {"type": "string"},
                    "insert_line": {"type": "integer"},
                },
                "required": ["command", "path"],
            },
        },
    },
]

SYSTEM_PROMPT = (
    "You are a software engineer working in a sandboxed repository. Use the bash "
    "and str_replace_editor tools to inspect and change files. When the task is "
    "done, reply with a short summary and no tool calls."
)

TASK = (
    "The test suite of this repository fails. Fix the bug in calc.py so that "
    "`python -m pytest -q` passes. Do not modify the tests."
)


class _PinnedClock:
    """Returns 2025-01-01T12:00:00Z, then one second later on every call."""

    def __init__(self) -> None:
        self._now = datetime(2025, 1, 1, 12, 0, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        current = self._now
        self._now += timedelta(seconds=1)
        return current


def _call(call_id: str, name: str, arguments: dict[str, Any]) -> ToolCall:
    return ToolCall(id=call_id, name=name, arguments_raw=json.dumps(arguments), arguments=arguments)


def build_reference_trajectory() -> Trajectory:
    """A small, realistic rollout: inspect, fix, verify, answer."""
    rec = TrajectoryRecorder(
        session_id="smoke-example-0001",
        agent_version="0.1.0",
        model_name="qwen3-coder-30b-a3b-instruct",
        tool_definitions=TOOL_DEFINITIONS,
        system_prompt=SYSTEM_PROMPT,
        extra={"benchmark": "smoke", "task_id": "smoke/fix-add", "sandbox": "docker"},
        clock=_PinnedClock(),
    )
    rec.system(SYSTEM_PROMPT)
    rec.user(TASK)

    run_tests = _call("call_1", "bash", {"command": "cat calc.py && python -m pytest -q"})
    s1 = rec.agent(
        message="Let me look at the code and run the tests first.",
        reasoning="I should see what calc.py does and which test fails before editing.",
        tool_calls=[run_tests],
        model_name="qwen3-coder-30b-a3b-instruct",
        usage=Usage(prompt_tokens=812, completion_tokens=64, cached_tokens=0,
                    reasoning_tokens=21, model_latency_ms=1432.5),
        finish_reason="tool_calls",
    )
    rec.observe(
        s1,
        "call_1",
        ToolResult(
            content=(
                "def add(a, b):\n    return a - b\n\n"
                "F                                                            [100%]\n"
                "FAILED test_calc.py::test_add - assert -1 == 5\n"
                "1 failed in 0.02s\n"
            ),
            is_error=True,
            exit_code=1,
            error_kind="nonzero_exit",
            latency_ms=611.0,
        ),
    )

    edit = _call(
        "call_2",
        "str_replace_editor",
        {
            "command": "str_replace",
            "path": "calc.py",
            "old_str": "    return a - b",
            "new_str": "    return a + b",
        },
    )
    rerun = _call("call_3", "bash", {"command": "python -m pytest -q"})
    s2 = rec.agent(
        message="`add` subtracts instead of adding. Fixing it and re-running the tests.",
        reasoning=None,
        tool_calls=[edit, rerun],
        model_name="qwen3-coder-30b-a3b-instruct",
        usage=Usage(prompt_tokens=1017, completion_tokens=118, cached_tokens=768,
                    reasoning_tokens=None, model_latency_ms=1876.25),
        finish_reason="tool_calls",
    )
    rec.observe(
        s2,
        "call_2",
        ToolResult(
            content="The file calc.py has been edited. Line 2 now reads: `    return a + b`.",
            latency_ms=18.0,
        ),
    )
    rec.observe(
        s2,
        "call_3",
        ToolResult(
            content=".                                                            [100%]\n1 passed in 0.01s\n",
            exit_code=0,
            latency_ms=540.0,
        ),
    )
    rec.event("turns_left", turns_left=2, notice_sent=False)

    rec.agent(
        message="Fixed `add` in calc.py to return `a + b`; `python -m pytest -q` now passes.",
        reasoning=None,
        tool_calls=[],
        model_name="qwen3-coder-30b-a3b-instruct",
        usage=Usage(prompt_tokens=1190, completion_tokens=27, cached_tokens=1024,
                    reasoning_tokens=None, model_latency_ms=702.0),
        finish_reason="stop",
    )
    return rec.finish(error_kind=None, extra={"turns_used": 3})


def schema_text() -> str:
    return json.dumps(atif_json_schema(), indent=2, ensure_ascii=False) + "\n"


def reference_text() -> str:
    return build_reference_trajectory().to_json_bytes(indent=True).decode() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report stale files")
    args = parser.parse_args(argv)

    stale = []
    for path, text in ((SCHEMA_PATH, schema_text()), (REFERENCE_PATH, reference_text())):
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        stale.append(path)
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    for path in stale:
        verb = "stale" if args.check else "wrote"
        print(f"{verb}: {path.relative_to(REPO)}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
