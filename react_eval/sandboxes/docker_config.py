"""Settings of the Docker sandbox (kept apart from the provider so that loading a
config never imports the docker SDK)."""

from __future__ import annotations

import os
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

#: the image built by sandboxes/build_image.sh; REACT_EVAL_SANDBOX_IMAGE overrides it
#: (build_image.sh honours the same variable), e.g. to test a rebuilt image under its own tag
DEFAULT_IMAGE = os.environ.get("REACT_EVAL_SANDBOX_IMAGE") or "react-eval-sandbox:latest"

#: image label naming the unprivileged user the agent runs as when ``user`` is unset
AGENT_USER_LABEL = "react-eval.agent-user"

#: the capabilities a *root* shell that installs packages and changes file owners needs
#: (Docker's default set minus MKNOD, NET_RAW, SYS_CHROOT, AUDIT_WRITE, SETFCAP, SETPCAP).
#: A non-root agent gets none: capabilities only ever serve root in the container.
DEFAULT_CAPS = ("CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "NET_BIND_SERVICE")


class DockerSandboxConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["docker"] = "docker"
    image: str = DEFAULT_IMAGE
    workdir: str = "/workspace"
    env: dict[str, str] = Field(default_factory=dict)
    #: wall-clock limit for the rollout's use of the sandbox, seconds, counted from
    #: container start: each bash call is cut to the time left, and once it is spent
    #: bash ends the rollout with error kind ``timeout``. Graders (run(), file
    #: transfers) are not limited, so the rollout can still be scored. Independent of
    #: the solver's ``rollout_timeout`` (model calls included); the first one hit wins.
    timeout: float | None = Field(default=None, gt=0)
    #: memory limit in docker's notation (e.g. "2g")
    memory: str | None = "4g"
    #: CPUs the container may use (NanoCpus; NEL's default is 2); None = no cap
    cpus: float | None = Field(default=2.0, gt=0)
    pids_limit: int | None = Field(default=512, gt=0)
    #: the user everything in the container runs as: "root", "sandbox", "1000:1000".
    #: None = the user named by the image's ``react-eval.agent-user`` label when the
    #: image sets no USER of its own (react-eval-sandbox: ``sandbox``, uid 1000), else
    #: the image's own user. Files react-eval puts in are owned by this user.
    user: str | None = None
    #: capabilities kept: every other one is dropped (``--cap-drop ALL --cap-add ...``).
    #: None = DEFAULT_CAPS when the agent runs as root, none at all otherwise
    cap_add: list[str] | None = None
    #: make the image's root file system read-only; the workdir becomes an anonymous
    #: volume and /tmp a tmpfs of ``tmp_size`` (which the file tools cannot see: the
    #: archive API reads the container's layers, not its tmpfs mounts). Without it
    #: /tmp is part of the container's writable layer, bounded only by the host's disk
    read_only: bool = False
    tmp_size: str = "1g"
    network: Literal["none", "bridge", "host"] = "none"
    #: maximum number of live containers for this run
    concurrency: int = Field(default=16, ge=1)
    #: containers kept started ahead of need (each serves one rollout, then goes);
    #: they come on top of ``concurrency`` (see react_eval/sandboxes/docker_pool.py)
    warm_pool: int = Field(default=0, ge=0)
    #: the engine to talk to (None = the environment's DOCKER_HOST or the local socket)
    docker_host: str | None = None
