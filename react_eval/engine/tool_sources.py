"""The built-in tool sources as plugins (``tool_sources: [{type: ...}]`` of a
benchmark entry), and the list a benchmark entry's rollouts open."""

from __future__ import annotations

from typing import Any, Literal, Mapping

from pydantic import BaseModel, ConfigDict

from react_eval.tools.base import ToolSource


class SandboxToolsConfig(BaseModel):
    """bash, file_read, file_write and str_replace_editor in the rollout's sandbox."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["sandbox"] = "sandbox"


class GymToolsConfig(BaseModel):
    """The tools of a NeMo Gym resources server named in ``services:`` (a type: gym service)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["gym"] = "gym"
    service: str


def sandbox_tools(config: SandboxToolsConfig) -> ToolSource:
    from react_eval.tools.sandbox_source import SandboxToolSource

    return SandboxToolSource()


def gym_tools(config: GymToolsConfig, *, services: Mapping[str, Any]) -> ToolSource:
    """The Gym client (and its HTTP stack) load only when a run uses one."""
    from react_eval.gym.source import GymToolSource

    service = services.get(config.service)
    if service is None or getattr(service, "type", None) != "gym":
        raise ValueError(f"tool source gym: {config.service!r} must name a type: gym service")
    return GymToolSource(service)
