"""Sandbox configs by ``type`` and the provider each one builds."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from react_eval.sandboxes.base import SandboxProvider
from react_eval.sandboxes.docker.config import DockerSandboxConfig
from react_eval.sandboxes.local import LocalSandboxConfig

SandboxConfig = Annotated[LocalSandboxConfig | DockerSandboxConfig, Field(discriminator="type")]


def make_provider(config: LocalSandboxConfig | DockerSandboxConfig, *, run_id: str) -> SandboxProvider:
    """The provider for a config; the docker SDK is imported only when used."""
    if isinstance(config, DockerSandboxConfig):
        if config.warm_pool:
            from react_eval.sandboxes.docker.pool import WarmDockerProvider

            return WarmDockerProvider(config, run_id=run_id)
        from react_eval.sandboxes.docker import DockerSandboxProvider

        return DockerSandboxProvider(config, run_id=run_id)
    from react_eval.sandboxes.local import LocalSandboxProvider

    return LocalSandboxProvider(config)
