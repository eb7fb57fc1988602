"""``reliability``: a benchmark whose tasks come from a JSON file, for the fault tests.

Each task is ``{"id", "prompt", "answer"}`` plus optional sandbox ``files``,
``image`` and ``setup``; a rollout earns 1.0 when its final message has an
``ANSWER: <answer>`` line. The tests script the model per task (the task id is
in the prompt as ``[task:<id>]``), so one run can hold a fault for one task
next to tasks that must succeed. Registered in-process by the conftest and in
the CLI subprocess by :mod:`tests.reliability.cli`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from react_eval.benchmarks.answers import extract_answer, normalize
from react_eval.benchmarks.base import Answer, Benchmark, RolloutEnv, Verification
from react_eval.types import SandboxSpec, Task

NAME = "reliability"
_TASK_RE = re.compile(r"\[task:([A-Za-z0-9_.-]+)\]")


def task_of(text: str) -> str:
    """The task id named in a prompt (``[task:<id>]``)."""
    m = _TASK_RE.search(text or "")
    if not m:
        raise AssertionError(f"no [task:<id>] in the prompt {text[:120]!r}")
    return m.group(1)


def task(id: str, answer: str, prompt: str = "", **sandbox: Any) -> dict[str, Any]:
    """A task row: ``sandbox`` may hold ``files``, ``image`` and ``setup``."""
    return {"id": id, "prompt": f"[task:{id}] {prompt or 'Use the tools, then give your answer.'}",
            "answer": answer, **sandbox}


def write_tasks(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps(rows, indent=1))
    return path


class ScriptedTasks(Benchmark):
    name = NAME
    description = "tasks from a JSON file (tests/reliability)"
    verification = "final_message"
    needs_sandbox = True

    def __init__(self, tasks: str):
        self._tasks = []
        for row in json.loads(Path(tasks).read_text()):
            spec = None
            if any(k in row for k in ("files", "image", "setup")):
                spec = SandboxSpec(files=row.get("files") or {}, image=row.get("image"), setup=row.get("setup"))
            self._tasks.append(Task(id=row["id"], prompt=row["prompt"], metadata={"answer": row["answer"]},
                                    sandbox=spec))

    def tasks(self) -> list[Task]:
        return list(self._tasks)

    async def verify(self, task: Task, answer: Answer, env: RolloutEnv) -> Verification:
        got = extract_answer(answer.final_message)
        expected = str(task.metadata["answer"])
        ok = got is not None and normalize(got) == normalize(expected)
        return Verification(reward=1.0 if ok else 0.0, details={"extracted": got, "expected": expected})


def register() -> None:
    """Make ``reliability`` a benchmark name of this process (after the built-ins)."""
    from react_eval.benchmarks import registry

    registry.register(NAME, ScriptedTasks)
