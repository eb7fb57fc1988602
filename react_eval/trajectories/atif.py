"""Pydantic v2 models of ATIF, the Agent Trajectory Interchange Format.

ATIF is the trajectory format of Harbor (RFC 0001). These models are our own
statement of it, kept field-for-field and rule-for-rule compatible with the
reference models shipped in the ``harbor`` package (0.25.0), so that anything
these models accept, Harbor's ``TrajectoryValidator`` accepts too (the tests
check this against the real Harbor code).

Every object forbids unknown keys; free-form data belongs in the ``extra``
dictionaries that most objects carry.

Rules enforced beyond plain types:

* ``steps[i].step_id == i + 1`` (sequential from 1);
* ``model_name``, ``reasoning_effort``, ``reasoning_content``, ``tool_calls``
  and ``metrics`` appear only on ``source == "agent"`` steps;
* an agent step with ``llm_call_count == 0`` carries no ``metrics`` and no
  ``reasoning_content``;
* every non-null ``observation.results[*].source_call_id`` names a
  ``tool_calls[*].tool_call_id`` of the same step;
* ``timestamp`` parses as ISO 8601;
* content parts carry exactly the payload their ``type`` calls for;
* embedded subagent trajectories each have a unique ``trajectory_id``, and a
  subagent reference names a ``trajectory_id`` or a ``trajectory_path``.

The content parts (text, image, audio) are in
:mod:`react_eval.trajectories.atif_content`, re-exported here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import orjson
from pydantic import Field, field_validator, model_validator

from react_eval.trajectories.atif_content import AudioSource, ContentPart, ImageSource, Strict

__all__ = [
    "ATIF_SCHEMA_VERSION",
    "SUPPORTED_SCHEMA_VERSIONS",
    "Agent",
    "AudioSource",
    "ContentPart",
    "FinalMetrics",
    "ImageSource",
    "Metrics",
    "Observation",
    "ObservationResult",
    "Step",
    "SubagentTrajectoryRef",
    "ToolCall",
    "Trajectory",
    "atif_json_schema",
]

#: The version we write: the newest one Harbor 0.25.0 accepts. We rely on
#: features from v1.7 (``extra`` on tool calls and observation results,
#: ``llm_call_count``), so nothing older would describe our files honestly.
ATIF_SCHEMA_VERSION = "ATIF-v1.8"

SchemaVersion = Literal[
    "ATIF-v1.0",
    "ATIF-v1.1",
    "ATIF-v1.2",
    "ATIF-v1.3",
    "ATIF-v1.4",
    "ATIF-v1.5",
    "ATIF-v1.6",
    "ATIF-v1.7",
    "ATIF-v1.8",
]

#: Every version string a reader accepts (the same set as Harbor 0.25.0).
SUPPORTED_SCHEMA_VERSIONS: tuple[str, ...] = SchemaVersion.__args__  # type: ignore[attr-defined]

# Step fields that only make sense when the agent (an LLM) produced the step.
_AGENT_ONLY_FIELDS = (
    "model_name",
    "reasoning_effort",
    "reasoning_content",
    "tool_calls",
    "metrics",
)


def iso_timestamp_problem(value: str) -> str | None:
    """Why ``value`` is not an ISO 8601 timestamp as ATIF reads them (``Z`` for UTC
    allowed), or None when it is one: the rule of :attr:`Step.timestamp`."""
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        return str(exc)
    return None


def is_iso_timestamp(value: str) -> bool:
    return iso_timestamp_problem(value) is None


# --------------------------------------------------------------------------
# Actions and their results
# --------------------------------------------------------------------------


class ToolCall(Strict):
    """One function/tool invocation made by the agent in a step."""

    tool_call_id: str = Field(description="Identifier of this call, unique within the run.")
    function_name: str = Field(description="Name of the tool that was called.")
    arguments: dict[str, Any] = Field(
        description="The call's arguments as a JSON object (possibly empty)."
    )
    extra: dict[str, Any] | None = Field(
        default=None, description="Producer-defined data about the call (ATIF-v1.7)."
    )


class SubagentTrajectoryRef(Strict):
    """Points at the trajectory of a subagent the agent delegated to."""

    trajectory_id: str | None = Field(
        default=None,
        description="trajectory_id of an entry of the root's subagent_trajectories.",
    )
    session_id: str | None = Field(
        default=None,
        description="The subagent's run id; informational, never used to resolve.",
    )
    trajectory_path: str | None = Field(
        default=None, description="Location (path or URL) of an external trajectory file."
    )
    extra: dict[str, Any] | None = Field(
        default=None, description="Producer-defined data about the delegation."
    )

    @model_validator(mode="after")
    def _resolvable(self) -> "SubagentTrajectoryRef":
        if self.trajectory_id is None and self.trajectory_path is None:
            raise ValueError(
                "a subagent trajectory reference needs 'trajectory_id' or "
                "'trajectory_path' ('session_id' alone cannot be resolved)"
            )
        return self


class ObservationResult(Strict):
    """What the environment returned for one tool call (or other action)."""

    source_call_id: str | None = Field(
        default=None,
        description=(
            "tool_call_id of the call in the same step that produced this result; "
            "null for results not tied to a tool call."
        ),
    )
    content: str | list[ContentPart] | None = Field(
        default=None, description="The result: text, or a list of content parts."
    )
    subagent_trajectory_ref: list[SubagentTrajectoryRef] | None = Field(
        default=None, description="Trajectories of subagents this result came from."
    )
    extra: dict[str, Any] | None = Field(
        default=None, description="Producer-defined data about the result (ATIF-v1.7)."
    )


class Observation(Strict):
    """Feedback from the environment after a step's actions."""

    results: list[ObservationResult] = Field(description="One entry per result.")


# --------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------


class Metrics(Strict):
    """Token usage and other measurements of the LLM call behind an agent step."""

    prompt_tokens: int | None = Field(
        default=None, description="Input tokens, cached ones included."
    )
    completion_tokens: int | None = Field(default=None, description="Generated tokens.")
    cached_tokens: int | None = Field(
        default=None, description="The part of prompt_tokens served from a cache."
    )
    cost_usd: float | None = Field(default=None, description="Cost of the call in USD.")
    prompt_token_ids: list[int] | None = Field(
        default=None, description="Token ids of the full prompt."
    )
    completion_token_ids: list[int] | None = Field(
        default=None, description="Token ids of the completion."
    )
    logprobs: list[float] | None = Field(
        default=None, description="Log probability of each generated token."
    )
    extra: dict[str, Any] | None = Field(
        default=None, description="Further producer-defined measurements."
    )


class FinalMetrics(Strict):
    """Totals over the whole trajectory."""

    total_prompt_tokens: int | None = Field(
        default=None, description="Sum of prompt tokens over all steps (cached included)."
    )
    total_completion_tokens: int | None = Field(
        default=None, description="Sum of completion tokens over all steps."
    )
    total_cached_tokens: int | None = Field(
        default=None, description="Sum of cached tokens over all steps."
    )
    total_cost_usd: float | None = Field(
        default=None, description="Total cost in USD, subagents included."
    )
    total_steps: int | None = Field(
        default=None,
        ge=0,
        description="Number of steps; explain in 'notes' if it differs from len(steps).",
    )
    extra: dict[str, Any] | None = Field(
        default=None, description="Further producer-defined totals."
    )


# --------------------------------------------------------------------------
# Steps, agent, trajectory
# --------------------------------------------------------------------------


class Step(Strict):
    """One turn of the interaction: a system, user or agent message."""

    step_id: int = Field(ge=1, description="1-based position of the step in 'steps'.")
    timestamp: str | None = Field(
        default=None, description="When the step happened, as an ISO 8601 string."
    )
    source: Literal["system", "user", "agent"] = Field(description="Who produced the step.")
    model_name: str | None = Field(
        default=None,
        description="Model used for this step; when absent, agent.model_name applies.",
    )
    reasoning_effort: str | float | None = Field(
        default=None, description="Reasoning effort setting used for the step."
    )
    message: str | list[ContentPart] = Field(
        description="The step's message: text, or a list of content parts."
    )
    reasoning_content: str | None = Field(
        default=None, description="The agent's reasoning text, when exposed."
    )
    tool_calls: list[ToolCall] | None = Field(
        default=None, description="Tool calls the agent made in this step."
    )
    observation: Observation | None = Field(
        default=None, description="What the environment returned for this step's actions."
    )
    metrics: Metrics | None = Field(
        default=None, description="Measurements of the LLM call behind this step."
    )
    is_copied_context: bool | None = Field(
        default=None,
        description="True when the step was copied from an earlier trajectory as context.",
    )
    llm_call_count: int | None = Field(
        default=None,
        ge=0,
        description="How many LLM calls the step stands for; 0 = deterministic dispatch.",
    )
    extra: dict[str, Any] | None = Field(
        default=None, description="Producer-defined data about the step."
    )

    @field_validator("timestamp")
    @classmethod
    def _iso_timestamp(cls, value: str | None) -> str | None:
        if value is None:
            return value
        problem = iso_timestamp_problem(value)
        if problem is not None:
            raise ValueError(f"timestamp {value!r} is not ISO 8601: {problem}")
        return value

    @model_validator(mode="after")
    def _source_specific_fields(self) -> "Step":
        if self.source != "agent":
            for name in _AGENT_ONLY_FIELDS:
                if getattr(self, name) is not None:
                    raise ValueError(
                        f"field '{name}' is allowed only on agent steps "
                        f"(this step's source is '{self.source}')"
                    )
        elif self.llm_call_count == 0:
            for name in ("metrics", "reasoning_content"):
                if getattr(self, name) is not None:
                    raise ValueError(
                        f"field '{name}' must be absent on an agent step with "
                        "llm_call_count == 0 (no LLM was called)"
                    )
        return self


class Agent(Strict):
    """The agent system that produced the trajectory."""

    name: str = Field(description="Name of the agent system.")
    version: str = Field(description="Version of the agent system.")
    model_name: str | None = Field(
        default=None, description="Default model of the trajectory's agent steps."
    )
    tool_definitions: list[dict[str, Any]] | None = Field(
        default=None,
        description="Tools offered to the agent, in OpenAI function-calling format.",
    )
    extra: dict[str, Any] | None = Field(
        default=None, description="Producer-defined agent configuration."
    )


class Trajectory(Strict):
    """A complete ATIF trajectory document."""

    schema_version: SchemaVersion = Field(
        default=ATIF_SCHEMA_VERSION, description="ATIF version the document follows."
    )
    session_id: str | None = Field(
        default=None,
        description="Id of the run; shared by a trajectory, its subagents and continuations.",
    )
    trajectory_id: str | None = Field(
        default=None,
        description="Id unique to this document; required on embedded subagent trajectories.",
    )
    agent: Agent = Field(description="The agent that produced the trajectory.")
    steps: list[Step] = Field(min_length=1, description="The interaction, in order.")
    notes: str | None = Field(default=None, description="Free-form remarks.")
    final_metrics: FinalMetrics | None = Field(
        default=None, description="Totals over the trajectory."
    )
    continued_trajectory_ref: str | None = Field(
        default=None, description="Location of the file that continues this trajectory."
    )
    extra: dict[str, Any] | None = Field(
        default=None, description="Producer-defined data about the run."
    )
    subagent_trajectories: list[Trajectory] | None = Field(
        default=None,
        description="Complete trajectories of subagents, each with its own trajectory_id.",
    )

    @model_validator(mode="after")
    def _sequential_step_ids(self) -> "Trajectory":
        for index, step in enumerate(self.steps):
            if step.step_id != index + 1:
                raise ValueError(
                    f"steps[{index}] has step_id {step.step_id}; step ids must run "
                    f"1, 2, 3, ... so {index + 1} was expected"
                )
        return self

    @model_validator(mode="after")
    def _observations_reference_own_calls(self) -> "Trajectory":
        for step in self.steps:
            if step.observation is None:
                continue
            call_ids = {call.tool_call_id for call in step.tool_calls or ()}
            for result in step.observation.results:
                if result.source_call_id is not None and result.source_call_id not in call_ids:
                    raise ValueError(
                        f"step {step.step_id}: observation result source_call_id "
                        f"{result.source_call_id!r} matches none of the step's tool calls"
                    )
        return self

    @model_validator(mode="after")
    def _subagents_identified(self) -> "Trajectory":
        seen: set[str] = set()
        for index, sub in enumerate(self.subagent_trajectories or ()):
            if sub.trajectory_id is None:
                raise ValueError(
                    f"subagent_trajectories[{index}] needs a trajectory_id "
                    f"(agent {sub.agent.name!r})"
                )
            if sub.trajectory_id in seen:
                raise ValueError(
                    f"subagent_trajectories[{index}]: trajectory_id "
                    f"{sub.trajectory_id!r} is used twice"
                )
            seen.add(sub.trajectory_id)
        return self

    # -- serialization ------------------------------------------------------

    #: the document this object was validated from, already in :meth:`to_json_dict`'s form,
    #: set only by a producer that builds exactly that form (the recorder): the rollout's hot
    #: path then dumps plain data once instead of walking the models again. A slot, not a
    #: field or private attribute: equality, copies and pickles ignore it (and fall back to
    #: the models' own dump), and validating costs nothing more.
    #: ``_raw``: the document as JSON bytes, when the producer validated exactly those (the
    #: recorder does); :meth:`to_json_bytes` returns them and :meth:`to_json_dict` parses them once.
    __slots__ = ("_document", "_raw")

    def to_json_dict(self) -> dict[str, Any]:
        """A JSON-ready dict, fields that are None left out."""
        document = getattr(self, "_document", None)
        if document is not None:
            return document
        raw = getattr(self, "_raw", None)
        if raw is not None:
            document = orjson.loads(raw)
            object.__setattr__(self, "_document", document)
            return document
        return self.model_dump(mode="json", exclude_none=True)

    def to_json_bytes(self, *, indent: bool = False) -> bytes:
        """The document as UTF-8 JSON (orjson), fields that are None left out."""
        if not indent:
            raw = getattr(self, "_raw", None)
            if raw is not None:
                return raw
        option = orjson.OPT_INDENT_2 if indent else 0
        return orjson.dumps(self.to_json_dict(), option=option)

    @classmethod
    def from_json(cls, data: bytes | str) -> "Trajectory":
        """Parse and validate a JSON document."""
        return cls.model_validate(orjson.loads(data))


def atif_json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of :class:`Trajectory`.

    The cross-field rules (sequential step ids, agent-only fields, call-id
    references) are model validators and cannot be expressed in the schema;
    validate with the pydantic models to enforce them.
    """
    schema = Trajectory.model_json_schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$comment": (
            f"ATIF ({ATIF_SCHEMA_VERSION}) as modelled by react_eval.trajectories.atif; "
            "generated by tools/export_atif_schema.py - do not edit by hand."
        ),
        **schema,
    }
