"""The benchmark protocol: tasks in, a reward per rollout out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import anyio
from pydantic import BaseModel, Field

from react_eval.grading.envs import EnvSpec
from react_eval.sandboxes.base import Sandbox, SandboxProvider
from react_eval.tools.base import CompositeBackend, ToolBackend, ToolSource
from react_eval.types import Task, ToolCall, ToolResult

VerificationMode = Literal["final_message", "sandbox_artifact", "gym"]


class Verification(BaseModel):
    """A verifier's verdict: the reward plus whatever explains it."""

    reward: float
    details: dict[str, Any] = Field(default_factory=dict)


@dataclass
class Answer:
    """What a rollout produced, handed to the verifier."""

    final_message: str
    artifact: str | None = None  # e.g. a git patch in sandbox_artifact mode
    messages: list[dict[str, Any]] = field(default_factory=list)
    calls: list[tuple[ToolCall, ToolResult]] = field(default_factory=list)
    error_kind: str | None = None
    model_name: str | None = None


@dataclass
class RolloutEnv:
    """The live resources of one rollout, open while it is verified."""

    sandbox: Sandbox | None
    tools: CompositeBackend
    #: backends by label (e.g. a Gym session the verifier must reuse)
    backends: dict[str, ToolBackend] = field(default_factory=dict)
    #: the run's sandbox provider, for verifiers that grade in a fresh sandbox
    provider: SandboxProvider | None = None


@dataclass
class PlannedCall:
    """One tool call of a reference solution."""

    name: str
    arguments: dict[str, Any]


@dataclass
class ReferenceSolution:
    """What the built-in ``oracle`` policy replays for a task: tool calls in
    order, one per turn, then ``final_message`` as the answer."""

    steps: list[PlannedCall] = field(default_factory=list)
    final_message: str = ""


class CheckSlots:
    """A limit on a benchmark's parallel CPU-bound checks (test runs) in one process.

    The semaphore is made on first use and left out of pickles (anyio's do not
    pickle, and a copy in a worker process needs its own); when the rollouts
    are shared by several processes, :meth:`Benchmark.share_limits` divides
    the limit so the machine as a whole runs no more checks than configured."""

    def __init__(self, limit: int):
        self.limit = max(1, limit)
        self._slots: anyio.Semaphore | None = None

    def divide(self, count: int) -> None:
        self.limit = max(1, -(-self.limit // count))
        self._slots = None

    def __getstate__(self) -> dict[str, Any]:
        return {"limit": self.limit, "_slots": None}

    async def __aenter__(self) -> None:
        if self._slots is None:
            self._slots = anyio.Semaphore(self.limit)
        await self._slots.acquire()

    async def __aexit__(self, *exc: object) -> None:
        assert self._slots is not None
        self._slots.release()


class DatasetMissing(ValueError):
    """A benchmark that reads its tasks from a file got none, or a path that is not a file
    (the message says which option to pass)."""


class PreflightError(ValueError):
    """The selected tasks cannot be run or graded as configured; raised before
    any rollout, with a message saying what to do."""


class Benchmark:
    """Base class: subclasses provide tasks and verify answers.

    A benchmark object is pickled to worker processes when a run uses several
    (``workers:``), so it should hold data and settings, not open resources."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    verification: ClassVar[VerificationMode] = "final_message"
    #: whether tasks need a sandbox (for files, tools or grading)
    needs_sandbox: ClassVar[bool] = False
    default_system_prompt: ClassVar[str | None] = None
    #: the interpreter environment the checks need (e.g. a Python with pytest).
    #: react-eval provisions it for local and bwrap sandboxes, the graders' AND
    #: the agent's (first on PATH), so the agent runs the tests with what grades
    #: them; None: nothing declared (a Docker image or the task brings its own)
    grading_env: EnvSpec | None = None

    def tasks(self) -> list[Task]:
        raise NotImplementedError

    def preflight(self, tasks: list[Task]) -> None:
        """Check, before the first rollout, that ``tasks`` (the selected ones) can
        be run and graded; raise :class:`PreflightError` saying what to do."""

    def tool_sources(self) -> list[ToolSource]:
        """Tool sources this benchmark brings itself (e.g. the Gym server of a
        ``gym://`` benchmark), opened per rollout next to the configured ones."""
        return []

    async def prepare(self, tasks: list[Task], sandbox: Any) -> list[Task]:
        """Called once per run before any rollout, with the selected tasks and the
        run's sandbox config (None = the default): make what the tasks need (e.g.
        their images) and return them as they should run; raise to refuse the run."""
        return tasks

    async def collect_artifact(self, task: Task, env: RolloutEnv) -> str | None:
        """Capture the sandbox artifact after the loop (sandbox_artifact mode)."""
        return None

    async def verify(self, task: Task, answer: Answer, env: RolloutEnv) -> Verification:
        raise NotImplementedError

    def reference_solution(self, task: Task) -> ReferenceSolution | None:
        """The task's known-good solution as tool calls plus a final message, for
        the ``oracle`` policy of ``react-eval validate``; None if there is none."""
        return None

    def size(self) -> int:
        return len(self.tasks())

    def share_limits(self, count: int) -> None:
        """This copy runs one of ``count`` shares of the rollouts: divide its
        process-wide limits (every :class:`CheckSlots` attribute)."""
        for value in vars(self).values():
            if isinstance(value, CheckSlots):
                value.divide(count)
