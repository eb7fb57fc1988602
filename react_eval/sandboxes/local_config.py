"""The settings of the local sandbox provider (isolation, caps, paths); see :mod:`react_eval.sandboxes.local`,
which re-exports :class:`LocalSandboxConfig`."""

from __future__ import annotations

import os
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from react_eval.sandboxes.cgroups import parse_bytes

__all__ = ["LocalSandboxConfig"]


class LocalSandboxConfig(BaseModel):
    """Settings of the local sandbox provider."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["local"] = "local"
    #: directory under which per-rollout workdirs are created (default: the system tempdir)
    root: str | None = None
    #: keep workdirs after close (for debugging)
    keep: bool = False
    #: extra environment variables for the sandbox's commands
    env: dict[str, str] = Field(default_factory=dict)
    #: "bwrap" runs commands in a bubblewrap jail (see react_eval.sandboxes.bwrap);
    #: "none" is for trusted code only
    isolation: Literal["none", "bwrap"] = "none"
    #: most processes the sandbox may have at once (a pids cgroup; None = no cap)
    pids_limit: int | None = Field(default=1024, gt=0)
    #: most memory the sandbox's processes may use, /tmp included (a memory
    #: cgroup; docker's notation, e.g. "4g"; None = no cap)
    memory: str | None = "4g"
    #: size of the private /tmp under bwrap (docker's notation)
    tmp_size: str = "1g"
    #: host paths shown read-only at the same path under bwrap (e.g. a provisioned
    #: interpreter for graders); each must exist. Without bwrap they are visible anyway.
    ro_binds: list[str] = Field(default_factory=list)
    #: host directories put first on the commands' PATH (e.g. a provisioned
    #: environment's ``bin``, so ``python`` and ``pytest`` are that environment's);
    #: under bwrap each must also be visible (in ``ro_binds`` or a system directory)
    path_prepend: list[str] = Field(default_factory=list)

    @field_validator("memory", "tmp_size")
    @classmethod
    def _size(cls, value: str | None) -> str | None:
        if value is not None:
            parse_bytes(value)
        return value

    @field_validator("ro_binds", "path_prepend")
    @classmethod
    def _absolute(cls, value: list[str], info) -> list[str]:
        for path in value:
            if not os.path.isabs(path) or "\x00" in path or (":" in path and info.field_name == "path_prepend"):
                raise ValueError(f"{info.field_name} entries must be absolute host paths, got {path!r}")
        return [os.path.normpath(p) for p in value]
