"""``humaneval+`` and ``mbpp+``: EvalPlus through evalplus' own loaders and checker.

* Data: ``evalplus.data.get_human_eval_plus`` / ``get_mbpp_plus``. They download
  the release files from GitHub into evalplus' cache unless
  ``HUMANEVAL_OVERRIDE_PATH`` / ``MBPP_OVERRIDE_PATH`` names a local copy
  (read at load time here; evalplus itself reads them only when imported).
* Extraction: the final message's Python code block (the last one defining the
  entry point) through ``evalplus.sanitize.sanitize(code, entrypoint=...)``.
* Expected outputs: the canonical solution run through evalplus'
  ``trusted_exec`` (what ``evalplus.evaluate.get_groundtruth`` does), once per
  task, in a sandbox process.
* Checking: ``evalplus.eval.untrusted_check`` on the base and plus inputs with
  evalplus' time limits (``DEFAULT_MIN_TIME_LIMIT``,
  ``DEFAULT_GT_TIME_LIMIT_FACTOR``), run in a fresh grading sandbox from the
  run's provider (see :mod:`react_eval.benchmarks.code_exec`), never in the
  harness, with a provisioned environment holding the same evalplus, numpy
  and psutil versions as the harness (:func:`evalplus_env`).

The reward is the plus verdict: 1.0 iff the base and the plus tests pass.
evalplus is imported lazily: its data package pulls in ``datasets``, which
takes seconds and is not needed to list or configure benchmarks.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import os
import pickle
import re
import socket
import sys
from functools import cached_property
from typing import Any, ClassVar

import anyio

from react_eval.benchmarks.base import Answer, Benchmark, CheckSlots, ReferenceSolution, RolloutEnv, Verification
from react_eval.benchmarks.code_exec import JobOutcome, parse_json_result, run_check
from react_eval.grading.envs import EnvSpec
from react_eval.types import Task, VerifyError

#: evalplus' per-check cap on the summed time limits (EVALPLUS_TIMEOUT_PER_TASK's default)
EVALPLUS_TIMEOUT_PER_TASK = 60.0
#: interpreter start, imports and process bookkeeping on top of the test time
WORKER_SLACK = 30.0
STATUSES = ("pass", "fail", "timeout")

CODING_SYSTEM_PROMPT = (
    "You are an expert Python programmer solving a coding task. If tools are available, you may use "
    "them (bash, file_read, file_write, str_replace_editor) to write your code to a file and test it "
    "before answering. Only your final message, sent without a tool call, is graded: it must contain "
    "the complete function, with the imports and helper functions it needs, in a single ```python "
    "code block."
)


class DatasetUnavailable(RuntimeError):
    """The benchmark's data cannot be loaded (e.g. offline without an override)."""


def default_parallel_checks() -> int:
    """Checks at once: half the CPUs, as evalplus' own evaluator (time limits
    are wall-clock, so oversubscribing the CPUs would fail correct solutions)."""
    return max(1, (os.cpu_count() or 2) // 2)


# ---- code extraction ----------------------------------------------------------------

_FENCE_RE = re.compile(r"^[ \t]*```[ \t]*([A-Za-z0-9_+.-]*)[^\n]*\n(.*?)^[ \t]*```[ \t]*$", re.DOTALL | re.MULTILINE)
_PYTHON_LANGS = {"", "python", "py", "python3", "py3"}


def select_code(message: str, entry_point: str) -> str:
    """The text to sanitize: the last Python code block that defines
    ``entry_point``, else the last Python code block, else the whole message."""
    blocks = [body for lang, body in _FENCE_RE.findall(message or "") if lang.lower() in _PYTHON_LANGS]
    if not blocks:
        return message or ""
    defines = re.compile(rf"^\s*(?:async\s+)?def\s+{re.escape(entry_point)}\s*\(", re.MULTILINE)
    defining = [b for b in blocks if defines.search(b)]
    return (defining or blocks)[-1]


def _sanitize(code: str, entry_point: str) -> str:
    try:
        from evalplus.sanitize import sanitize
    except ImportError:  # a plain install (no react-eval[evalplus]): the stdlib sanitizer
        from react_eval.benchmarks.pysanitize import sanitize as plain

        return plain(code, entry_point)
    return sanitize(code, entrypoint=entry_point)


async def extract_code(message: str, entry_point: str) -> str:
    """The candidate program, as evalplus' sanitizer makes it (imports plus the
    definitions reachable from ``entry_point``). Runs in a thread: the
    sanitizer is CPU-bound and its first import is slow."""
    text = select_code(message, entry_point)
    if not text.strip():
        return ""
    return await anyio.to_thread.run_sync(_sanitize, text, entry_point)


@functools.cache
def evalplus_env() -> EnvSpec:
    """The environment evalplus' checker needs in the grading sandbox: the
    harness' own evalplus version (without its model-SDK dependencies) and the
    numpy and psutil its ``evalplus.eval`` imports, at the harness' versions."""
    from importlib.metadata import PackageNotFoundError, version

    def pinned(name: str) -> str:
        try:
            return f"{name}=={version(name)}"
        except PackageNotFoundError:
            return name

    return EnvSpec(
        name="evalplus",
        requirements=(pinned("numpy"), pinned("psutil")),
        no_deps=(pinned("evalplus"),),
        imports=("evalplus.eval", "evalplus.gen.util", "evalplus.eval._special_oracle"),
    )


def canonical_reference(prompt: str, canonical_solution: str) -> ReferenceSolution:
    """The dataset's reference solution (prompt + canonical_solution) as the
    final message of a ``python`` code block; no tool calls."""
    code = prompt + canonical_solution
    if not code.endswith("\n"):
        code += "\n"
    return ReferenceSolution(final_message=f"```python\n{code}```")


# ---- the benchmarks -----------------------------------------------------------------


class EvalPlusBenchmark(Benchmark):
    """Shared machinery of HumanEval+ and MBPP+ (``dataset`` picks evalplus' oracles)."""

    verification = "final_message"
    needs_sandbox = False
    default_system_prompt = CODING_SYSTEM_PROMPT

    #: evalplus' dataset name for ``untrusted_check`` ("humaneval" or "mbpp")
    dataset: ClassVar[str] = ""
    label: ClassVar[str] = ""
    env_var: ClassVar[str] = ""
    loader_module: ClassVar[str] = ""
    loader_name: ClassVar[str] = ""
    #: evalplus' dataset name for ``get_dataset_metadata`` (the cache file name)
    release_name: ClassVar[str] = ""
    version_attr: ClassVar[str] = ""
    intro: ClassVar[str] = ""

    def __init__(
        self,
        *,
        path: str | None = None,
        max_parallel_checks: int | None = None,
        min_time_limit: float | None = None,
        gt_time_limit_factor: float | None = None,
        noextreme: bool = False,
        groundtruth_timeout: float = 900.0,
    ):
        self.path = path
        self.min_time_limit = min_time_limit
        self.gt_time_limit_factor = gt_time_limit_factor
        self.noextreme = noextreme
        self.groundtruth_timeout = groundtruth_timeout
        self._checks = CheckSlots(max_parallel_checks or default_parallel_checks())
        self._groundtruth: dict[str, dict[str, Any]] = {}
        self._groundtruth_locks: dict[str, anyio.Lock] = {}

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_groundtruth_locks"] = {}  # anyio locks do not pickle; a worker process makes its own
        return state

    # ---- data ----

    def _load(self) -> dict[str, dict[str, Any]]:
        module = importlib.import_module(self.loader_module)
        override = self.path or os.environ.get(self.env_var) or None
        # evalplus reads the variable once, when the module is imported: set it
        # to what holds now, so a later change of the environment is honoured
        setattr(module, self.env_var, override)
        loader = getattr(module, self.loader_name)
        previous_timeout = socket.getdefaulttimeout()
        socket.setdefaulttimeout(60)  # its download has no timeout of its own
        try:
            with contextlib.redirect_stdout(sys.stderr):  # download chatter stays off stdout
                problems = loader(noextreme=self.noextreme)
        except Exception as exc:
            raise DatasetUnavailable(self._unavailable_message(override, exc)) from exc
        finally:
            socket.setdefaulttimeout(previous_timeout)
        if not problems:
            raise DatasetUnavailable(f"{self.label}: the data file {override or ''} holds no tasks")
        return problems

    def _unavailable_message(self, override: str | None, exc: Exception) -> str:
        why = f"{type(exc).__name__}: {exc}"
        if override:
            return f"{self.label}: cannot load the data file {override!r} named by {self.env_var} ({why})"
        cache = ""
        try:
            from evalplus.data.utils import get_dataset_metadata

            version = getattr(importlib.import_module(self.loader_module), self.version_attr)
            url, cache_path = get_dataset_metadata(self.release_name, version, False, self.noextreme)
            cache = f", or put the decompressed release file ({url}) at {cache_path}, evalplus' cache"
        except Exception:
            pass
        return (
            f"{self.label} data is not available: evalplus could not download it ({why}). "
            f"Offline, set {self.env_var}=/path/to/{self.release_name}.jsonl to a local copy{cache}"
        )

    @cached_property
    def problems(self) -> dict[str, dict[str, Any]]:
        return self._load()

    def tasks(self) -> list[Task]:
        return [self._task(p) for p in self.problems.values()]

    def _task(self, problem: dict[str, Any]) -> Task:
        entry_point = problem["entry_point"]
        prompt = (
            f"{self.intro}\n\n```python\n{problem['prompt'].rstrip()}\n```\n\n"
            f"Your final message must contain the complete, self-contained function `{entry_point}` "
            "(with the imports and helper functions it needs) in a ```python code block."
        )
        return Task(
            id=problem["task_id"],
            prompt=prompt,
            metadata={"entry_point": entry_point, "dataset": self.name},
        )

    def reference_solution(self, task: Task) -> ReferenceSolution | None:
        """The canonical solution (prompt + canonical_solution) as the final message."""
        problem = self.problems.get(task.id)
        return canonical_reference(problem["prompt"], problem["canonical_solution"]) if problem else None

    # ---- grading ----

    def _limits(self) -> tuple[float, float]:
        from evalplus.config import DEFAULT_GT_TIME_LIMIT_FACTOR, DEFAULT_MIN_TIME_LIMIT

        return (
            DEFAULT_MIN_TIME_LIMIT if self.min_time_limit is None else self.min_time_limit,
            DEFAULT_GT_TIME_LIMIT_FACTOR if self.gt_time_limit_factor is None else self.gt_time_limit_factor,
        )

    async def expected_outputs(self, problem: dict[str, Any], env: RolloutEnv) -> dict[str, Any]:
        """Base/plus expected outputs and reference times, computed once per task."""
        task_id = problem["task_id"]
        if task_id in self._groundtruth:
            return self._groundtruth[task_id]
        lock = self._groundtruth_locks.setdefault(task_id, anyio.Lock())
        async with lock:
            if task_id not in self._groundtruth:
                job = {
                    "kind": "evalplus_groundtruth",
                    "dataset": self.dataset,
                    **{k: problem[k] for k in ("prompt", "canonical_solution", "entry_point", "base_input", "plus_input")},
                }
                outcome = await run_check(job, env.provider, evalplus_env(), timeout=self.groundtruth_timeout,
                                          max_result_bytes=1 << 30, label=task_id)
                if outcome.result is None:
                    raise VerifyError(f"{task_id}: computing the expected outputs failed: {outcome.describe()}")
                # trusted: only the dataset's canonical solution ran in that process
                self._groundtruth[task_id] = pickle.loads(outcome.result)
        return self._groundtruth[task_id]

    def check_timeout(self, expected: dict[str, Any]) -> float:
        """Wall-clock budget of a check: evalplus' own per-split limit
        (min(60, sum of per-input limits) + its join margins) for base and plus."""
        min_limit, factor = self._limits()
        total = WORKER_SLACK
        for split in ("base", "plus"):
            limits = [max(min_limit, factor * t) for t in expected[f"{split}_time"]]
            total += min(EVALPLUS_TIMEOUT_PER_TASK, sum(limits)) + 3.0
        return total

    async def verify(self, task: Task, answer: Answer, env: RolloutEnv) -> Verification:
        problem = self.problems[task.id]
        entry_point = problem["entry_point"]
        code = await extract_code(answer.final_message, entry_point)
        details: dict[str, Any] = {"extracted_model_code": code}
        if not code.strip():
            details.update(base_status="fail", plus_status="fail", is_correct=False, is_correct_plus=False,
                           note="no Python code found in the final message")
            return Verification(reward=0.0, details=details)
        expected = await self.expected_outputs(problem, env)
        min_limit, factor = self._limits()
        job = {
            "kind": "evalplus_check",
            "dataset": self.dataset,
            "solution": code,
            "entry_point": entry_point,
            "atol": problem["atol"],
            "base_input": problem["base_input"],
            "plus_input": problem["plus_input"],
            "expected": expected,
            "fast_check": True,  # evalplus' default (stop at the first failing input)
            "min_time_limit": min_limit,
            "gt_time_limit_factor": factor,
        }
        async with self._checks:
            outcome = await run_check(job, env.provider, evalplus_env(), timeout=self.check_timeout(expected),
                                      label=task.id)
        details.update(self._statuses(task.id, outcome))
        details["is_correct"] = details["base_status"] == "pass"
        details["is_correct_plus"] = details["base_status"] == "pass" and details["plus_status"] == "pass"
        details["check_seconds"] = round(outcome.seconds, 3)
        details["check_sandbox"] = outcome.sandbox
        return Verification(reward=1.0 if details["is_correct_plus"] else 0.0, details=details)

    @staticmethod
    def _statuses(task_id: str, outcome: JobOutcome) -> dict[str, Any]:
        result = parse_json_result(outcome)
        if result is not None:
            out: dict[str, Any] = {}
            for split in ("base", "plus"):
                part = result.get(split) if isinstance(result.get(split), dict) else {}
                status = part.get("status")
                out[f"{split}_status"] = status if status in STATUSES else "fail"
                out[f"{split}_tests"] = {k: part.get(k) for k in ("passed", "tested", "total") if isinstance(part.get(k), int)}
            return out
        if not outcome.started:
            raise VerifyError(f"{task_id}: the evalplus checker failed before running the solution: {outcome.describe()}")
        status = "timeout" if outcome.timed_out else "fail"
        return {"base_status": status, "plus_status": status, "note": outcome.describe()}


class HumanEvalPlus(EvalPlusBenchmark):
    name = "humaneval+"
    description = "HumanEval+ (EvalPlus): base + plus tests; needs HUMANEVAL_OVERRIDE_PATH offline"
    dataset = "humaneval"
    label = "HumanEval+"
    env_var = "HUMANEVAL_OVERRIDE_PATH"
    loader_module = "evalplus.data.humaneval"
    loader_name = "get_human_eval_plus"
    release_name = "HumanEvalPlus"
    version_attr = "HUMANEVAL_PLUS_VERSION"
    intro = "Complete the following Python function."


class MbppPlus(EvalPlusBenchmark):
    name = "mbpp+"
    description = "MBPP+ (EvalPlus): base + plus tests; needs MBPP_OVERRIDE_PATH offline"
    dataset = "mbpp"
    label = "MBPP+"
    env_var = "MBPP_OVERRIDE_PATH"
    loader_module = "evalplus.data.mbpp"
    loader_name = "get_mbpp_plus"
    release_name = "MbppPlus"
    version_attr = "MBPP_PLUS_VERSION"
    intro = "Write a Python function for the following task (the example shows how it is called)."
