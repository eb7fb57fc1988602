"""A sandbox type: local sandboxes whose workdir starts with files from the config.

    sandboxes:
      seeded: {type: seeded, files: {NOTES.md: "read me first"}}
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from react_eval import Sandbox, SandboxSpec
from react_eval.sandboxes.local import LocalSandboxConfig, LocalSandboxProvider


class SeededSandboxConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: files placed in every rollout's workdir (relative path -> text); a task's own files win
    files: dict[str, str] = Field(default_factory=dict)
    #: environment variables of the sandbox's commands
    env: dict[str, str] = Field(default_factory=dict)
    #: where the workdirs are made (default: the system tempdir)
    root: str | None = None


class SeededSandboxProvider:
    """Creates local sandboxes, each seeded with the configured files."""

    config_class = SeededSandboxConfig
    name = "seeded"

    def __init__(self, config: SeededSandboxConfig, *, run_id: str):
        self.config = config
        self.run_id = run_id
        self._local = LocalSandboxProvider(LocalSandboxConfig(root=config.root, env=config.env))

    async def create(self, spec: SandboxSpec | None, *, labels: dict[str, str]) -> Sandbox:
        spec = spec or SandboxSpec()
        seeded = spec.model_copy(update={"files": {**self.config.files, **spec.files}})
        return await self._local.create(seeded, labels=labels)

    async def aclose(self) -> None:
        await self._local.aclose()
