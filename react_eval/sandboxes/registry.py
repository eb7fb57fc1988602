"""Sandbox configs by ``type`` (from the plugin registry) and the provider each one builds."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel

from react_eval.plugins import registry
from react_eval.plugins.configs import SandboxConfig
from react_eval.sandboxes.base import SandboxProvider

if TYPE_CHECKING:
    from react_eval.sandboxes.docker.config import DockerSandboxConfig
    from react_eval.sandboxes.local import LocalSandboxConfig

__all__ = ["SandboxConfig", "docker_provider", "local_provider", "make_provider", "sandbox_choices"]

#: ``--sandbox`` names that are a built-in type with settings (every registered type is a choice too)
PRESETS: dict[str, dict[str, str]] = {"bwrap": {"type": "local", "isolation": "bwrap"}}


def make_provider(config: BaseModel, *, run_id: str) -> SandboxProvider:
    """The provider of a sandbox config, built by its registered plugin."""
    provider: SandboxProvider = registry.build("sandbox", config, run_id=run_id)
    return provider


def local_provider(config: "LocalSandboxConfig") -> SandboxProvider:
    from react_eval.sandboxes.local import LocalSandboxProvider

    return LocalSandboxProvider(config)


def docker_provider(config: "DockerSandboxConfig", *, run_id: str) -> SandboxProvider:
    """The docker SDK is imported only when a run uses Docker."""
    if config.warm_pool:
        from react_eval.sandboxes.docker.pool import WarmDockerProvider

        return WarmDockerProvider(config, run_id=run_id)
    from react_eval.sandboxes.docker import DockerSandboxProvider

    return DockerSandboxProvider(config, run_id=run_id)


def sandbox_choices() -> list[str]:
    """What ``--sandbox`` accepts: every registered sandbox type plus the presets."""
    return sorted(set(registry.names("sandbox")) | set(PRESETS))


def sandbox_flag(value: str) -> dict[str, str]:
    """The config mapping of ``--sandbox VALUE``; ValueError listing the choices."""
    if value in PRESETS:
        return dict(PRESETS[value])
    if value in registry.names("sandbox"):
        return {"type": value}
    raise ValueError(f"--sandbox must be one of {', '.join(sandbox_choices())}, got {value!r}")
