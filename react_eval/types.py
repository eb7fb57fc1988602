"""Core types shared by every layer: tools, tool results, error kinds, tasks.

This module imports nothing from the rest of react_eval, so every other module
may depend on it (imports flow one way: CLI -> engine -> loop -> tools,
sandboxes, model, trajectories -> types).
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dc_field
from enum import Enum
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field


class ErrorKind(str, Enum):
    """How a rollout ended when it did not end normally (see the failure taxonomy)."""

    model_error = "model_error"  # model call failed after retries were exhausted
    context_overflow = "context_overflow"  # the server said the prompt is too long
    max_turns_exhausted = "max_turns_exhausted"
    tool_infra_error = "tool_infra_error"  # a tool server could not be reached
    sandbox_error = "sandbox_error"  # the sandbox died or could not be created
    verify_error = "verify_error"  # the verifier itself failed
    timeout = "timeout"  # the rollout's wall-clock limit was hit
    auth_error = "auth_error"  # 401/403 from the model: fatal for the whole run
    harness_error = "harness_error"  # react-eval itself raised (a bug): the traceback is in the trajectory


#: Error kinds caused by infrastructure rather than by the agent: excluded from
#: score denominators and re-run by ``--retry-errors``.
INFRA_ERROR_KINDS: frozenset[ErrorKind] = frozenset(
    {
        ErrorKind.model_error,
        ErrorKind.tool_infra_error,
        ErrorKind.sandbox_error,
        ErrorKind.verify_error,
        ErrorKind.auth_error,
        ErrorKind.harness_error,
    }
)


class RolloutError(Exception):
    """Ends a rollout early with a given error kind (control flow, not a bug)."""

    kind: ErrorKind = ErrorKind.model_error

    def __init__(self, message: str, kind: ErrorKind | None = None):
        super().__init__(message)
        if kind is not None:
            self.kind = kind


class ToolInfraError(RolloutError):
    """A tool backend is unreachable: the rollout cannot go on meaningfully."""

    kind = ErrorKind.tool_infra_error


class SandboxError(RolloutError):
    """The sandbox died, could not be created or stopped answering."""

    kind = ErrorKind.sandbox_error


class VerifyError(RolloutError):
    """The verifier failed; the reward is unknown, never a silent 0."""

    kind = ErrorKind.verify_error


class ToolSpec(BaseModel):
    """A tool as the model sees it: a name, a description and a JSON schema."""

    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    parameters: dict[str, Any] = Field(
        default_factory=lambda: {"type": "object", "properties": {}}
    )

    def to_openai(self) -> dict[str, Any]:
        """The chat-completions ``tools`` entry."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            },
        }

    def to_responses(self) -> dict[str, Any]:
        """The Responses API ``tools`` entry (flat function tool)."""
        return {
            "type": "function",
            "name": self.name,
            "description": self.description,
            "parameters": self.parameters,
            "strict": False,
        }


def _add(a: float | None, b: float | None) -> Any:
    """Sum where None means "not reported": absent + absent stays absent."""
    if a is None:
        return b
    if b is None:
        return a
    return a + b


@dataclass(slots=True)
class Usage:
    """What model calls and tool calls cost: tokens and latencies, adding up with ``+``.

    One model response, one tool call, one rollout and a whole run are all a
    ``Usage``; totals are sums. A field is None when nobody reported it (a
    server that sends no ``usage``), so "unknown" stays distinguishable from 0
    until a result row needs a number (:meth:`row`). A value: ``+`` returns a
    new one and nothing changes one in place (not frozen only because a frozen
    dataclass costs four times as much to make, on every turn).
    """

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int | None = None
    reasoning_tokens: int | None = None
    model_latency_ms: float | None = None
    tool_latency_ms: float | None = None

    #: the token fields, in result-row order
    TOKEN_FIELDS: ClassVar[tuple[str, ...]] = ("prompt_tokens", "completion_tokens", "cached_tokens", "reasoning_tokens")
    #: the latency fields, in result-row order
    LATENCY_FIELDS: ClassVar[tuple[str, ...]] = ("model_latency_ms", "tool_latency_ms")

    def __add__(self, other: "Usage") -> "Usage":
        if not isinstance(other, Usage):
            return NotImplemented
        return Usage(
            _add(self.prompt_tokens, other.prompt_tokens),
            _add(self.completion_tokens, other.completion_tokens),
            _add(self.cached_tokens, other.cached_tokens),
            _add(self.reasoning_tokens, other.reasoning_tokens),
            _add(self.model_latency_ms, other.model_latency_ms),
            _add(self.tool_latency_ms, other.tool_latency_ms),
        )

    def __radd__(self, other: Any) -> "Usage":
        if other == 0:  # sum(usages) starts from 0
            return self
        return NotImplemented

    @property
    def total_tokens(self) -> int:
        return (self.prompt_tokens or 0) + (self.completion_tokens or 0)

    def row(self) -> dict[str, int | float]:
        """The result-row columns: every field, unknown as 0."""
        # spelled out (one per rollout): the keys are TOKEN_FIELDS + LATENCY_FIELDS, in order (tests/test_usage.py)
        return {
            "prompt_tokens": self.prompt_tokens or 0,
            "completion_tokens": self.completion_tokens or 0,
            "cached_tokens": self.cached_tokens or 0,
            "reasoning_tokens": self.reasoning_tokens or 0,
            "model_latency_ms": float(self.model_latency_ms or 0.0),
            "tool_latency_ms": float(self.tool_latency_ms or 0.0),
        }


#: Why a tool call produced an error observation (recorded in the trajectory).
ToolErrorKind = Literal[
    "invalid_json",  # the model's argument string is not a JSON object
    "unknown_tool",  # no backend offers that name
    "invalid_arguments",  # the arguments fail the tool's JSON schema
    "tool_error",  # the tool ran and reported a failure (e.g. editor misuse)
    "nonzero_exit",  # bash ran and exited non-zero
    "timeout",  # the call exceeded tool_timeout
    "http_4xx",  # a resources server rejected the call
    "http_5xx",  # a resources server failed
    "infra",  # the backend could not be reached at all
    "too_many_calls",  # past the solver's per-turn cap on tool calls: not run
]


#: every :data:`ToolErrorKind`, for the check where a result is made
TOOL_ERROR_KINDS: frozenset[str] = frozenset(ToolErrorKind.__args__)  # type: ignore[attr-defined]


@dataclass(slots=True)
class ToolResult:
    """The typed result of one tool call, before it is fed back to the model.

    A slots dataclass, not a pydantic model: one is made (and its latency set) on
    every tool call. It is checked where it is made, as strictly as a model would
    (:meth:`__post_init__`: wrong types raise ``TypeError``, which the dispatcher
    turns into an error observation like any other tool bug)."""

    content: str = ""
    is_error: bool = False
    exit_code: int | None = None
    latency_ms: float = 0.0
    truncated: bool = False
    error_kind: ToolErrorKind | None = None
    extra: dict[str, Any] = dc_field(default_factory=dict)

    def __post_init__(self) -> None:
        # the common case in one line: exact types (what every tool in the package passes)
        if (type(self.content) is str and type(self.is_error) is bool and type(self.truncated) is bool
                and type(self.extra) is dict and (self.exit_code is None or type(self.exit_code) is int)
                and type(self.latency_ms) is float and (self.error_kind is None or self.error_kind in TOOL_ERROR_KINDS)):
            return
        _check_tool_result(self)

    @classmethod
    def error(cls, message: str, kind: ToolErrorKind, **kw: Any) -> "ToolResult":
        return cls(content=message, is_error=True, error_kind=kind, **kw)


def _check_tool_result(result: ToolResult) -> None:
    """The slow path of :meth:`ToolResult.__post_init__`: subclasses and ints where a
    float is due are accepted (as pydantic would), anything else is refused."""
    problems = []
    if not isinstance(result.content, str):
        problems.append(f"content must be text, got {type(result.content).__name__}")
    for name in ("is_error", "truncated"):
        if not isinstance(getattr(result, name), bool):
            problems.append(f"{name} must be a bool, got {type(getattr(result, name)).__name__}")
    if result.exit_code is not None and (not isinstance(result.exit_code, int) or isinstance(result.exit_code, bool)):
        problems.append(f"exit_code must be an int or None, got {type(result.exit_code).__name__}")
    if isinstance(result.latency_ms, int) and not isinstance(result.latency_ms, bool):
        result.latency_ms = float(result.latency_ms)
    elif not isinstance(result.latency_ms, float):
        problems.append(f"latency_ms must be a number, got {type(result.latency_ms).__name__}")
    if result.error_kind is not None and result.error_kind not in TOOL_ERROR_KINDS:
        problems.append(f"error_kind must be one of {sorted(TOOL_ERROR_KINDS)} or None, got {result.error_kind!r}")
    if not isinstance(result.extra, dict):
        problems.append(f"extra must be a dict, got {type(result.extra).__name__}")
    if problems:
        raise TypeError("invalid ToolResult: " + "; ".join(problems))


@dataclass(slots=True)
class ToolCall:
    """One tool call as the model emitted it.

    ``arguments_raw`` is kept verbatim so the history is never rewritten;
    ``arguments`` holds the parsed object, or None with ``parse_error`` set.
    Made only by the reply parsers (:func:`react_eval.model.response.make_tool_call`),
    from text they have already cleaned, so it is a plain slots dataclass.
    """

    id: str
    name: str
    arguments_raw: str
    arguments: dict[str, Any] | None = None
    parse_error: str | None = None


class SandboxSpec(BaseModel):
    """What a task needs from its sandbox before the agent starts."""

    model_config = ConfigDict(extra="forbid")

    image: str | None = None
    #: files to place, path (relative to the workdir) -> text content
    files: dict[str, str] = Field(default_factory=dict)
    #: a directory on the host whose contents are copied into the workdir
    repo_dir: str | None = None
    #: a shell command run in the workdir after files are placed
    setup: str | None = None
    #: per-task overrides of the sandbox settings (e.g. from a Harbor task.toml);
    #: None keeps the provider's own; providers that cannot apply one ignore it
    workdir: str | None = None
    cpus: float | None = Field(default=None, gt=0)
    memory_mb: int | None = Field(default=None, gt=0)
    env: dict[str, str] = Field(default_factory=dict)


class Task(BaseModel):
    """One problem of a benchmark."""

    id: str
    prompt: str | None = None
    messages: list[dict[str, Any]] | None = None
    system_prompt: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    sandbox: SandboxSpec | None = None
    #: row-level tool definitions (chat format) that replace discovered ones
    tools: list[dict[str, Any]] | None = None
    #: wall-clock limit of the agent's part of this task, seconds (e.g. Harbor's
    #: ``[agent] timeout_sec``); the solver's ``rollout_timeout`` wins when smaller
    timeout: float | None = Field(default=None, gt=0)

    def initial_messages(self) -> list[dict[str, Any]]:
        if self.messages:
            return [dict(m) for m in self.messages]
        return [{"role": "user", "content": self.prompt or ""}]
