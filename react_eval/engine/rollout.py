"""One rollout end to end: sandbox, tools, loop, artifact, verification.

``RolloutRunner.run`` takes a :class:`RolloutSpec` and returns the result row and
the trajectory; it holds only what rollouts share (model client, sandbox
provider, tool sources, benchmark). An executor decides where and how many run
at once, so a distributed executor can call the same method elsewhere.
"""

from __future__ import annotations

import hashlib
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

import orjson

from react_eval.version import __version__
from react_eval.benchmarks.base import Answer, Benchmark, RolloutEnv, Verification
from react_eval.loop import DEFAULT_SYSTEM_PROMPT, LoopConfig, LoopOutcome, render_template
from react_eval.model.protocol import Model
from react_eval.plugins import registry
from react_eval.plugins.protocols import Grader, SolverFactory
from react_eval.engine.results import RolloutResult
from react_eval.jsonsafe import clean_json, clean_text
from react_eval.sandboxes.base import Sandbox, SandboxProvider
from react_eval.timestamps import utc_now_iso_ms
from react_eval.tools.base import CompositeBackend, ToolBackend, ToolSource
from react_eval.trajectories import TrajectoryRecorder
from react_eval.trajectories.document import trajectory_bytes
from react_eval.types import ErrorKind, RolloutError, SandboxError, Task, VerifyError


@dataclass(frozen=True)
class RolloutSpec:
    run_id: str
    benchmark: str
    task: Task
    repeat: int
    #: a stable id from the fields above (made with the spec: they never change, and a
    #: ``cached_property`` takes a lock on every read in Python 3.11)
    rollout_id: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        digest = hashlib.sha1(f"{self.run_id}/{self.benchmark}/{self.task.id}/{self.repeat}".encode()).hexdigest()
        object.__setattr__(self, "rollout_id", digest[:16])


@dataclass
class RolloutRecord:
    result: RolloutResult
    trajectory: bytes | None


@dataclass
class _Attempt:
    """What one rollout has produced so far (kept when it fails half-way)."""

    row: dict[str, Any]
    recorder: TrajectoryRecorder | None = None
    outcome: LoopOutcome | None = None
    trajectory: bytes | None = None


def minimal_trajectory(spec: RolloutSpec, kind: ErrorKind, message: str,
                       extra: dict[str, Any] | None = None) -> bytes | None:
    """A valid trajectory holding only the error, for a rollout of which nothing else can be recorded."""
    try:
        recorder = TrajectoryRecorder(session_id=f"{spec.run_id}-{spec.rollout_id}", agent_version=__version__,
                                      model_name=None, tool_definitions=[],
                                      extra={"task_id": spec.task.id, "repeat": spec.repeat,
                                             "benchmark": spec.benchmark})
        recorder.event("error", error_kind=kind.value, message=clean_text(message))
        return trajectory_bytes(recorder.finish(error_kind=kind.value,
                                                extra=clean_json({"turns": 0, "error": message, **(extra or {})})))
    except Exception:  # noqa: BLE001 - the row still carries the error
        return None


def harness_failure_record(spec: RolloutSpec, exc: BaseException, model: str | None, *,
                           started_at: str | None = None) -> RolloutRecord:
    """The row and trajectory of a rollout whose harness failed outside the runner's
    own guard (an executor calls this; it cannot fail on the rollout's data)."""
    message = clean_text(f"harness error: {type(exc).__name__}: {exc}")[:2000]
    tb = clean_text("".join(traceback.format_exception(exc)))[-20_000:]
    now = _now()
    result = RolloutResult(run_id=spec.run_id, benchmark=spec.benchmark, task_id=spec.task.id, repeat=spec.repeat,
                           rollout_id=spec.rollout_id, model=model, error_kind=ErrorKind.harness_error,
                           error=message, started_at=started_at or now, finished_at=now)
    return RolloutRecord(result, minimal_trajectory(spec, ErrorKind.harness_error, message, {"traceback": tb}))


_now = utc_now_iso_ms  # when a rollout started and finished


class RolloutRunner:
    def __init__(
        self,
        *,
        benchmark: Benchmark,
        model: Model,
        loop_config: LoopConfig,
        sandbox_provider: SandboxProvider | None,
        tool_sources: list[ToolSource],
        pass_threshold: float = 1.0,
        solver: SolverFactory | None = None,
        grader: Grader | None = None,
    ):
        self.benchmark = benchmark
        self.model = model
        self.loop_config = loop_config
        #: the loop class (the registry's ``solver.type``; default the ReAct loop, ``tool_calling``)
        self.solver: SolverFactory = solver or registry.load("solver", getattr(loop_config, "type", None) or "tool_calling")
        #: grades the answers (default: the benchmark's own verifier)
        self.grader: Grader = grader or benchmark
        self.sandbox_provider = sandbox_provider
        self.tool_sources = tool_sources
        self.pass_threshold = pass_threshold

    @property
    def simple(self) -> bool:
        """``solver.type: simple``: one model call, no tools, no agent sandbox."""
        return getattr(self.loop_config, "type", None) == "simple"

    def system_prompt(self, task: Task) -> str:
        """The configured prompt, else the task's, else the benchmark's; a benchmark
        whose default is ``""`` (gym://, as Gym's own agent) and the simple solver send none."""
        template = self.loop_config.system_prompt or task.system_prompt
        if not template:
            template = self.benchmark.default_system_prompt
            if template is None:
                template = "" if self.simple else DEFAULT_SYSTEM_PROMPT
        return render_template(template, task) if template else ""

    async def run(self, spec: RolloutSpec) -> RolloutRecord:
        """Run one rollout; whatever happens, return its row and trajectory.

        This is the rollout boundary: a :class:`RolloutError` ends the rollout
        with its kind, and any other exception (a bug in reply handling, a tool
        backend, recording or verification) ends it as ``harness_error`` with
        the exception in the row and the traceback in the trajectory. Only the
        executor decides to stop a whole run (a rejected key)."""
        started_at, t0 = _now(), time.perf_counter()
        attempt = _Attempt(row={
            "run_id": spec.run_id,
            "benchmark": spec.benchmark,
            "task_id": spec.task.id,
            "repeat": spec.repeat,
            "rollout_id": spec.rollout_id,
            "model": self.model.config.model,
        })
        try:
            await self._run(spec, attempt)
        except Exception as exc:  # noqa: BLE001 - the rollout boundary
            self._harness_failure(spec, attempt, exc)
        row = attempt.row
        row["started_at"], row["finished_at"] = started_at, _now()
        row["wall_ms"] = (time.perf_counter() - t0) * 1000
        try:
            return RolloutRecord(RolloutResult.model_validate(row), attempt.trajectory)
        except Exception as exc:  # noqa: BLE001 - a row the harness cannot even build
            return harness_failure_record(spec, exc, self.model.config.model, started_at=started_at)

    async def _run(self, spec: RolloutSpec, attempt: "_Attempt") -> None:
        task, row = spec.task, attempt.row
        sandbox: Sandbox | None = None
        backends: dict[str, ToolBackend] = {}
        try:
            sandbox = None if self.simple else await self._open_sandbox(spec)
            for source in self.tool_sources:
                backends[source.label] = await source.open(task, sandbox)
            tools = await CompositeBackend(backends).start()
            tool_defs = [] if self.simple else task.tools or [s.to_openai() for s in await tools.list_tools()]
            system_prompt = self.system_prompt(task)
            attempt.recorder = self._recorder(spec, system_prompt, tool_defs)
            outcome = await self.solver(self.model, tools, self._loop_config(task), attempt.recorder).run(
                task, system_prompt, tool_defs)
            attempt.outcome = outcome
            attempt.trajectory = outcome.trajectory_json()
            row.update(_outcome_fields(outcome))
            env = RolloutEnv(sandbox=sandbox, tools=tools, backends=backends, provider=self.sandbox_provider)
            verification = await self._verify(task, outcome, env, row)
            if verification is not None:
                row["reward"] = verification.reward
                row["passed"] = verification.reward >= self.pass_threshold
                row["verification"] = verification.details
                if "scoring" in verification.details:  # metric values and judge calls, in the trajectory too
                    attempt.trajectory = _with_root_extra(attempt.trajectory, "scoring",
                                                          verification.details["scoring"])
        except RolloutError as exc:
            row["error_kind"], row["error"] = exc.kind, str(exc)
            if attempt.outcome is None:  # failed before the conversation (sandbox, tools): still one trajectory per row
                attempt.trajectory = self._setup_failure_trajectory(spec, exc.kind, str(exc))
        finally:
            await self._close(backends, sandbox, row)

    def _harness_failure(self, spec: RolloutSpec, attempt: "_Attempt", exc: Exception) -> None:
        """End the rollout as ``harness_error``: the exception in the row, the
        traceback at the root of its trajectory (the conversation so far kept)."""
        message = clean_text(f"{type(exc).__name__}: {exc}")[:2000]
        tb = clean_text(traceback.format_exc())[-20_000:]
        row = attempt.row
        row["error_kind"], row["error"] = ErrorKind.harness_error, f"harness error: {message}"
        row["passed"], row["reward"] = False, None
        extra = {"error": row["error"], "traceback": tb}
        trajectory = None
        try:
            if attempt.trajectory is not None:  # the conversation was recorded: the failure came after it
                doc = orjson.loads(attempt.trajectory)
                doc.setdefault("extra", {}).update(extra, error_kind=ErrorKind.harness_error.value)
                trajectory = orjson.dumps(doc)
            elif attempt.recorder is not None:  # inside the conversation: keep the steps so far
                attempt.recorder.event("error", error_kind=ErrorKind.harness_error.value, message=row["error"])
                trajectory = trajectory_bytes(attempt.recorder.finish(error_kind=ErrorKind.harness_error.value,
                                                                      extra=extra))
        except Exception:  # noqa: BLE001 - the recorder itself may be what broke
            trajectory = None
        attempt.trajectory = trajectory or self._setup_failure_trajectory(
            spec, ErrorKind.harness_error, row["error"], extra=extra)

    def _loop_config(self, task: Task) -> LoopConfig:
        """The solver's settings, with the task's own time limit when it is tighter."""
        limit = self.loop_config.rollout_timeout
        if task.timeout is None or (limit is not None and limit <= task.timeout):
            return self.loop_config
        return self.loop_config.model_copy(update={"rollout_timeout": task.timeout})

    def _recorder(self, spec: RolloutSpec, system_prompt: str, tool_defs: list[dict[str, Any]]) -> TrajectoryRecorder:
        return TrajectoryRecorder(
            session_id=f"{spec.run_id}-{spec.rollout_id}",
            agent_version=__version__,
            model_name=self.model.config.model,
            tool_definitions=tool_defs,
            system_prompt=system_prompt,
            extra={"task_id": spec.task.id, "repeat": spec.repeat, "benchmark": spec.benchmark},
        )

    def _setup_failure_trajectory(self, spec: RolloutSpec, kind: ErrorKind, message: str,
                                  extra: dict[str, Any] | None = None) -> bytes | None:
        """The prompt and the error of a rollout that failed before its first model call."""
        try:
            system_prompt = self.system_prompt(spec.task)
            recorder = self._recorder(spec, system_prompt, [])
            if system_prompt:
                recorder.system(system_prompt)
            for msg in spec.task.initial_messages():
                if msg.get("role") == "system":
                    recorder.system(msg.get("content") or "")
                else:
                    recorder.user(msg.get("content") or "")
            recorder.event("error", error_kind=kind.value, message=message)
            return trajectory_bytes(recorder.finish(error_kind=kind.value,
                                                    extra={"turns": 0, "error": message, **(extra or {})}))
        except Exception:  # noqa: BLE001 - e.g. a task whose prompt cannot be rendered
            return minimal_trajectory(spec, kind, message, extra)

    async def _open_sandbox(self, spec: RolloutSpec) -> Sandbox | None:
        if self.sandbox_provider is None:
            return None
        labels = {"react-eval.run": spec.run_id, "react-eval.rollout": spec.rollout_id}
        try:
            return await self.sandbox_provider.create(spec.task.sandbox, labels=labels)
        except RolloutError:
            raise
        except Exception as exc:
            raise SandboxError(f"could not create the sandbox: {type(exc).__name__}: {exc}") from exc

    async def _verify(self, task: Task, outcome: LoopOutcome, env: RolloutEnv, row: dict[str, Any]) -> Verification | None:
        """Grade even a rollout that hit a limit: its answer or patch still counts.

        In sandbox_artifact mode a rollout cut short by a model error is captured
        and graded too (the work in the sandbox is real; the row keeps its
        model_error kind); only a dead sandbox or tool backend, or a rejected
        key, leaves nothing to grade."""
        if "response_mode" in self.loop_config.model_fields_set:  # the config's choice wins (as in NEL)
            artifact_mode = self.loop_config.response_mode == "sandbox_artifact"
        else:
            artifact_mode = self.benchmark.verification == "sandbox_artifact"
        ungradable = {ErrorKind.auth_error, ErrorKind.tool_infra_error, ErrorKind.sandbox_error}
        if not artifact_mode:
            ungradable.add(ErrorKind.model_error)  # no answer: the reward would say nothing about the agent
        if outcome.error_kind in ungradable:
            return None
        artifact = None
        try:
            if artifact_mode:
                artifact = await self.benchmark.collect_artifact(task, env)
                row["artifact"] = artifact
            answer = Answer(
                final_message=outcome.final_message,
                artifact=artifact,
                messages=outcome.messages,
                calls=outcome.calls,
                error_kind=outcome.error_kind.value if outcome.error_kind else None,
                model_name=self.model.config.model,
            )
            return await self.grader.verify(task, answer, env)
        except RolloutError:
            raise
        except Exception as exc:
            raise VerifyError(f"verifier failed: {type(exc).__name__}: {exc}") from exc

    @staticmethod
    async def _close(backends: dict[str, ToolBackend], sandbox: Sandbox | None, row: dict[str, Any]) -> None:
        for label, backend in backends.items():
            try:
                await backend.aclose()
            except Exception as exc:  # cleanup problems are recorded, never fatal
                row.setdefault("verification", {}).setdefault("cleanup_errors", []).append(f"{label}: {exc}")
        if sandbox is not None:
            try:
                await sandbox.close()
            except Exception as exc:
                row.setdefault("verification", {}).setdefault("cleanup_errors", []).append(f"sandbox: {exc}")


def _with_root_extra(trajectory: bytes | None, key: str, value: Any) -> bytes | None:
    """``trajectory`` with ``extra[key] = value`` at its root (ATIF allows any extra)."""
    if trajectory is None:
        return None
    doc = orjson.loads(trajectory)
    doc.setdefault("extra", {})[key] = value
    return orjson.dumps(clean_json(doc))


def _outcome_fields(outcome: LoopOutcome) -> dict[str, Any]:
    """The row's columns from the conversation: counts, usage, per-tool call/error counts and
    the first failing call (for failure analysis), in one pass over the calls."""
    stats: dict[str, list[int]] = {}
    first = None
    errors = 0
    for (call, result), turn in zip(outcome.calls, outcome.call_turns):
        counts = stats.get(call.name)
        if counts is None:
            counts = stats[call.name] = [0, 0]
        counts[0] += 1
        if result.is_error:
            counts[1] += 1
            errors += 1
            if first is None:
                first = {
                    "tool": call.name,
                    "turn": turn,
                    "exit_code": result.exit_code,
                    "error_kind": result.error_kind,
                    "message": result.content[:300],
                }
    return {
        "error_kind": outcome.error_kind,
        "error": outcome.error,
        "turns": outcome.turns,
        "tool_calls": len(outcome.calls),
        "tool_errors": errors,
        **outcome.usage.row(),
        "final_message": outcome.final_message,
        "tool_stats": stats,
        "first_tool_failure": first,
    }
