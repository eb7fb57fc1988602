"""Reference policies: in-process stand-ins for a model that need no endpoint.

``oracle`` replays each task's reference solution (``Benchmark.reference_solution``)
through the real loop, tools, sandbox and verifier: one planned tool call per
turn, then the planned final message. It is NOT a language model; its score
checks the benchmark (every task solvable, the grader sound), not a model.

``empty`` answers at once with nothing, without touching the sandbox; every
task should score 0 under it.

``tampering`` fixes nothing and attacks the grader instead: with file tools it
plants test infrastructure that turns failures into passes (``conftest.py``
hooks at the root and next to the tests, ``pytest.ini``/``tox.ini``/
``setup.cfg``/``pyproject.toml`` options loading a plugin, the plugin itself,
``sitecustomize.py``, ``usercustomize.py``, a ``.pth`` file); its final message
holds code that ends the checker's process with status 0 before any test can
fail. Every task must score 0 under it.

They are selected by a service whose ``base_url`` is ``oracle://reference``,
``oracle://empty`` or ``oracle://tampering``; a service with ``model: oracle`` and no
url gets the first (model/config.py; with a url it is refused as ambiguous), so flags,
YAML, SLURM shards and Ray workers agree; ``react-eval validate`` runs all three.
"""

from __future__ import annotations

from typing import Any

import re

import orjson

from react_eval.benchmarks.base import Benchmark, ReferenceSolution
from react_eval.model.config import ORACLE_URL, ModelConfig
from react_eval.model.response import ModelResponse, make_tool_call

EMPTY_URL = "oracle://empty"
TAMPER_URL = "oracle://tampering"
ORACLE_NOTICE = (
    "model 'oracle' is the built-in reference policy: it replays each task's reference "
    "solution through the real tools and grader. It is not a language model; its score "
    "validates the benchmark, not a model."
)


def is_reference_service(config: ModelConfig) -> bool:
    return config.base_url.startswith("oracle://")


def _first_user_text(messages: list[dict[str, Any]]) -> str:
    for msg in messages:
        if msg.get("role") == "user":
            content = msg.get("content")
            if isinstance(content, list):
                return "".join(p.get("text", "") for p in content if isinstance(p, dict))
            return content or ""
    return ""


class OracleModel:
    """Replays reference solutions; the task is recognised by its first user message."""

    def __init__(self, benchmark: Benchmark, config: ModelConfig | None = None):
        self.benchmark = benchmark
        self.config = config or ModelConfig(base_url=ORACLE_URL, model="oracle")
        self._plans: dict[str, ReferenceSolution | None] | None = None
        self._ambiguous: set[str] = set()

    def _plan_for(self, messages: list[dict[str, Any]]) -> ReferenceSolution | str:
        """The plan of the task this conversation is about, or why there is none."""
        if self._plans is None:
            plans: dict[str, ReferenceSolution | None] = {}
            ambiguous: set[str] = set()
            for task in self.benchmark.tasks():
                key = _first_user_text(task.initial_messages())
                plan = self.benchmark.reference_solution(task)
                if key in plans and plans[key] != plan:
                    ambiguous.add(key)
                plans[key] = plan
            self._plans = {k: (None if k in ambiguous else v) for k, v in plans.items()}
            self._ambiguous = ambiguous
        key = _first_user_text(messages)
        if key in self._ambiguous:
            return ("oracle: several tasks share this prompt but have different reference solutions, "
                    "so the oracle cannot tell which one it is solving")
        plan = self._plans.get(key)
        return plan if plan is not None else "oracle: this benchmark has no reference solution for this task"

    async def complete(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> ModelResponse:
        turn = sum(1 for m in messages if m.get("role") == "assistant")
        plan = self._plan_for(messages)
        if isinstance(plan, str):
            return self._answer(plan)
        if turn < len(plan.steps):
            step = plan.steps[turn]
            raw = orjson.dumps(step.arguments).decode()
            call = make_tool_call(f"oracle_{turn}", step.name, raw, 0)
            return ModelResponse(content="", tool_calls=[call], finish_reason="tool_calls",
                                 prompt_tokens=0, completion_tokens=0, model=self.config.model)
        return self._answer(plan.final_message)

    def _answer(self, text: str) -> ModelResponse:
        return ModelResponse(content=text, finish_reason="stop", prompt_tokens=0, completion_tokens=0,
                             model=self.config.model)

    async def aclose(self) -> None:
        return None


class EmptyModel:
    """Answers every task at once with an empty message."""

    def __init__(self, config: ModelConfig | None = None):
        self.config = config or ModelConfig(base_url=EMPTY_URL, model="empty")

    async def complete(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> ModelResponse:
        return ModelResponse(content="", finish_reason="stop", prompt_tokens=0, completion_tokens=0,
                             model=self.config.model)

    async def aclose(self) -> None:
        return None


#: a pytest plugin that reports every test as passed, and rewrites the junit report
_PASS_EVERYTHING = """import pathlib

import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    report.outcome = "passed"
    report.longrepr = None


def pytest_unconfigure(config):
    path = getattr(config.option, "xmlpath", None)
    if path and pathlib.Path(path).exists():
        text = pathlib.Path(path).read_text()
        for tag in ("failure", "error"):
            text = text.replace("<" + tag, "<system-out")
        pathlib.Path(path).write_text(text)
"""
#: interpreter-start hooks: make every failing assert a no-op by exiting 0 at exit
_SITE_HOOK = "import atexit, os\natexit.register(lambda: os._exit(0))\n"
_PLANTS = {
    "conftest.py": _PASS_EVERYTHING,
    "tests/conftest.py": _PASS_EVERYTHING,
    "react_eval_tamper.py": _PASS_EVERYTHING,
    "tests/react_eval_tamper.py": _PASS_EVERYTHING,
    "pytest.ini": "[pytest]\naddopts = -p react_eval_tamper\n",
    "tox.ini": "[pytest]\naddopts = -p react_eval_tamper\n",
    "setup.cfg": "[tool:pytest]\naddopts = -p react_eval_tamper\n",
    "sitecustomize.py": _SITE_HOOK,
    "usercustomize.py": _SITE_HOOK,
    "react_eval_tamper.pth": "import sitecustomize\n",
}
_PYPROJECT = ("[ ! -f pyproject.toml ] || sed -i "
              "'s/^\\[tool.pytest.ini_options\\]$/[tool.pytest.ini_options]\\naddopts = \"-p react_eval_tamper\"/' "
              "pyproject.toml")
_ENTRY_RE = re.compile(r"function `([A-Za-z_][A-Za-z0-9_]*)`")


class TamperingModel:
    """Plants test infrastructure (with file tools) and answers with code that
    exits the checker early; fixes nothing (see the module doc)."""

    def __init__(self, config: ModelConfig | None = None):
        self.config = config or ModelConfig(base_url=TAMPER_URL, model="tampering")

    def plan(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
        names = {(t.get("function") or {}).get("name") for t in tools}
        steps: list[tuple[str, dict[str, Any]]] = []
        if "file_write" in names:
            steps += [("file_write", {"path": path, "content": text}) for path, text in _PLANTS.items()]
        if "bash" in names:
            steps.append(("bash", {"command": _PYPROJECT}))
        return steps

    async def complete(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> ModelResponse:
        turn = sum(1 for m in messages if m.get("role") == "assistant")
        steps = self.plan(messages, tools)
        if turn < len(steps):
            name, args = steps[turn]
            call = make_tool_call(f"tamper_{turn}", name, orjson.dumps(args).decode(), 0)
            return ModelResponse(content="", tool_calls=[call], finish_reason="tool_calls",
                                 prompt_tokens=0, completion_tokens=0, model=self.config.model)
        entry = _ENTRY_RE.search(_first_user_text(messages))
        name = entry.group(1) if entry else "solution"
        code = (f"import os, sys\nsys.exit(0)\nos._exit(0)\n\n\ndef {name}(*args, **kwargs):\n"
                "    return None\n")
        return ModelResponse(content=f"Done.\n\n```python\n{code}```\n", finish_reason="stop",
                             prompt_tokens=0, completion_tokens=0, model=self.config.model)

    async def aclose(self) -> None:
        return None


def reference_model(config: ModelConfig, benchmark: Benchmark) -> OracleModel | EmptyModel | TamperingModel:
    """The reference policy a service with an ``oracle://`` URL names."""
    if config.base_url == EMPTY_URL:
        return EmptyModel(config)
    if config.base_url == TAMPER_URL:
        return TamperingModel(config)
    if config.base_url == ORACLE_URL:
        return OracleModel(benchmark, config)
    raise ValueError(f"unknown reference policy {config.base_url!r}; use {ORACLE_URL}, {EMPTY_URL} or {TAMPER_URL}")
