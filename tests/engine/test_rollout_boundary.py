"""The rollout boundary: an exception inside one rollout (a tool backend, the
recorder, the model client) ends that rollout as ``harness_error`` with its own
row and a Harbor-valid trajectory holding the traceback; the run goes on, in
this process and in worker processes alike."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest

from react_eval.benchmarks.base import Benchmark, Verification
from react_eval.engine.config import validate_config
from react_eval.engine.results import load_results
from react_eval.engine.run import run_benchmark
from react_eval.model.config import ModelConfig
from react_eval.model.response import ModelResponse
from react_eval.types import Task, ToolResult, ToolSpec
from tests.harbor_atif import validate_with_harbor
from tests.support.scripted_server import answer, tool_call


class _BrokenBackend:
    """A tool backend with a bug: its result's content is a number, not text."""

    async def list_tools(self) -> list[ToolSpec]:
        return [ToolSpec(name="probe", parameters={"type": "object", "properties": {}})]

    async def call(self, name: str, arguments: dict[str, Any], *, timeout: float) -> Any:
        result = ToolResult(content="")
        result.content = 12345  # type: ignore[assignment]  # changed after the check, as a buggy backend might
        return result

    async def aclose(self) -> None:
        pass


class _FineBackend(_BrokenBackend):
    async def call(self, name: str, arguments: dict[str, Any], *, timeout: float) -> ToolResult:
        return ToolResult(content="probed")


class _Source:
    label = "probe"

    async def open(self, task: Task, sandbox: Any) -> Any:
        if task.id == "setup-bug":
            raise KeyError("a bug while opening the tools")
        return _BrokenBackend() if task.id == "tool-bug" else _FineBackend()


class BoundaryBench(Benchmark):
    """Six tasks; ``tool-bug`` and ``setup-bug`` hit harness bugs, ``verify-bug`` a broken grader."""

    name = "boundary-bench"
    description = "test benchmark"

    def tool_sources(self):
        return [_Source()]

    def tasks(self) -> list[Task]:
        return [Task(id=t, prompt=f"task {t}") for t in ("ok1", "tool-bug", "ok2", "setup-bug", "ok3", "verify-bug")]

    async def verify(self, task, answer, env) -> Verification:
        if task.id == "verify-bug":
            raise ZeroDivisionError("grader bug")
        return Verification(reward=1.0 if answer.final_message == "done" else 0.0)


@pytest.fixture(autouse=True)
def boundary_benchmark(monkeypatch):
    from react_eval.benchmarks import registry

    registry.register(BoundaryBench.name, BoundaryBench)  # beside the built-ins, which stay
    yield
    registry.unregister(BoundaryBench.name)


def policy(req):
    return tool_call("probe", {}) if req.turn == 0 else answer("done")


def _config(srv, workers: int):
    return validate_config({
        "services": {"model": {"type": "api", "base_url": srv.base_url, "model": "scripted", "max_attempts": 1}},
        "benchmarks": [{"name": BoundaryBench.name, "workers": workers, "max_concurrent": 3,
                        "solver": {"service": "model", "sandbox_tools": False}}],
    })


def _check(out: Path) -> None:
    rows = {r.task_id: r for r in load_results(out / "results.jsonl")}
    assert sorted(rows) == sorted(t.id for t in BoundaryBench().tasks())
    for ok in ("ok1", "ok2", "ok3"):
        assert rows[ok].reward == 1.0 and rows[ok].error_kind is None
    for bug, exc_type in (("tool-bug", "TypeError"), ("setup-bug", "KeyError")):
        assert rows[bug].error_kind == "harness_error" and rows[bug].reward is None
        assert rows[bug].error.startswith(f"harness error: {exc_type}: "), rows[bug].error
    assert rows["verify-bug"].error_kind == "verify_error" and "ZeroDivisionError" in rows["verify-bug"].error
    docs = {}
    for line in (out / "trajectories.jsonl").read_text().splitlines():
        doc = json.loads(line)
        docs[doc["extra"]["task_id"]] = doc
    assert sorted(docs) == sorted(rows)
    for bug in ("tool-bug", "setup-bug"):
        doc = docs[bug]
        assert validate_with_harbor(doc) == []
        assert "Traceback (most recent call last)" in doc["extra"]["traceback"]
        assert doc["extra"]["error"] == rows[bug].error
    # the conversation before the bug is kept: the agent step that called the broken tool
    assert any(s.get("tool_calls") for s in docs["tool-bug"]["steps"])
    assert json.loads((out / "eval.json").read_text())["metrics"]["error_kinds"]["harness_error"] == 2


@pytest.mark.parametrize("workers", [1, 2])
def test_a_harness_bug_ends_only_its_rollout(scripted_server, tmp_path, workers):
    srv = scripted_server(policy)
    cfg = _config(srv, workers)
    anyio.run(lambda: run_benchmark(cfg, cfg.benchmarks[0], tmp_path, run_id="r1"))
    _check(tmp_path)


class _CrashingModel:
    """An in-process model whose client raises a plain TypeError on its second call."""

    config = ModelConfig(base_url="http://127.0.0.1:9/v1", model="crashy")

    async def complete(self, messages, tools) -> ModelResponse:
        if len(messages) > 2:
            raise TypeError("client bug")
        return ModelResponse(content="", tool_calls=[], finish_reason="stop") if "ok" in messages[-1]["content"] \
            else _call()

    async def aclose(self) -> None:
        pass


def _call() -> ModelResponse:
    from react_eval.model.response import make_tool_call

    return ModelResponse(content="", tool_calls=[make_tool_call("c1", "probe", "{}", 0)])


def test_a_model_client_bug_mid_conversation_keeps_the_steps_so_far(scripted_server, tmp_path):
    srv = scripted_server(policy)
    cfg = _config(srv, 1)
    anyio.run(lambda: run_benchmark(cfg, cfg.benchmarks[0], tmp_path, run_id="r1", model=_CrashingModel()))
    rows = {r.task_id: r for r in load_results(tmp_path / "results.jsonl")}
    assert len(rows) == 6
    assert rows["verify-bug"].error_kind == "harness_error" and "TypeError: client bug" in rows["verify-bug"].error
    doc = next(json.loads(x) for x in (tmp_path / "trajectories.jsonl").read_text().splitlines()
               if json.loads(x)["extra"]["task_id"] == "verify-bug")
    assert validate_with_harbor(doc) == []
    assert "raise TypeError" in doc["extra"]["traceback"]
    assert [s["source"] for s in doc["steps"]][:3] == ["system", "user", "agent"] or \
        [s["source"] for s in doc["steps"]][:2] == ["user", "agent"]
