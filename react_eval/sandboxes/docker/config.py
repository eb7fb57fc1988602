"""Settings of the Docker sandbox (kept apart from the provider so that loading a
config never imports the docker SDK)."""

from __future__ import annotations

import os
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

#: the image built by sandboxes/build_image.sh; REACT_EVAL_SANDBOX_IMAGE overrides it
#: (build_image.sh honours the same variable), e.g. to test a rebuilt image under its own tag
DEFAULT_IMAGE = os.environ.get("REACT_EVAL_SANDBOX_IMAGE") or "react-eval-sandbox:latest"

#: image label naming the unprivileged user the agent runs as when ``user`` is unset
AGENT_USER_LABEL = "react-eval.agent-user"

#: the capabilities a *root* shell that installs packages and changes file owners needs
#: (Docker's default set minus MKNOD, NET_RAW, SYS_CHROOT, AUDIT_WRITE, SETFCAP, SETPCAP).
#: A non-root agent gets none: capabilities only ever serve root in the container.
DEFAULT_CAPS = ("CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "NET_BIND_SERVICE")


_BYTE_UNITS = {"b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def byte_count(text: str) -> int:
    """Bytes of a size in docker's notation ("512m", "4g", "1.5g", "2gb", "1024"):
    units b, k, m, g of 1024; raises ValueError otherwise."""
    s = text.strip().lower()
    if len(s) > 1 and s.endswith("b") and s[-2] in _BYTE_UNITS:
        s = s[:-1]
    unit = s[-1:] if s[-1:] in _BYTE_UNITS else "b"
    digits = s[:-1] if s[-1:] in _BYTE_UNITS else s
    try:
        value = float(digits)
    except ValueError:
        raise ValueError(f"{text!r} is not a size (a number with a unit b, k, m or g, e.g. '4g')") from None
    if value < 0:
        raise ValueError(f"{text!r} is negative")
    return int(value * _BYTE_UNITS[unit])


class DockerTLS(BaseModel):
    """TLS to a ``tcp://`` engine (``dockerd --tlsverify``): file paths on this machine."""

    model_config = ConfigDict(extra="forbid")

    #: CA certificate that signed the engine's certificate
    ca: str | None = None
    #: client certificate and key (both or neither), for engines that verify clients
    cert: str | None = None
    key: str | None = None
    #: check the engine's certificate against ``ca`` (the system's CAs when ``ca`` is unset)
    verify: bool = True

    @model_validator(mode="after")
    def _pair(self) -> "DockerTLS":
        if (self.cert is None) != (self.key is None):
            raise ValueError("give both cert and key, or neither")
        return self


class DockerHost(BaseModel):
    """One Docker engine that sandboxes may be placed on."""

    model_config = ConfigDict(extra="forbid")

    #: the engine's address: unix:///var/run/docker.sock, tcp://10.0.0.2:2376, ssh://user@host
    url: str
    tls: DockerTLS | None = None
    #: live containers of this run on this engine at most (None = only ``concurrency`` bounds it)
    max_containers: int | None = Field(default=None, ge=1)

    @field_validator("url")
    @classmethod
    def _scheme(cls, url: str) -> str:
        if not url.startswith(("unix://", "tcp://", "ssh://", "http://", "https://")):
            raise ValueError(f"{url!r} is not a Docker engine address (unix://, tcp://, ssh://)")
        return url


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
    #: they come on top of ``concurrency`` (see react_eval/sandboxes/docker/pool.py)
    warm_pool: int = Field(default=0, ge=0)
    #: the engine to talk to (None = the environment's DOCKER_HOST or the local socket)
    docker_host: str | None = None
    #: several engines: each rollout goes to the least-loaded one that is up (within
    #: its ``max_containers``); an address alone is a host with the defaults below.
    #: Exclusive with ``docker_host``
    hosts: list[DockerHost] = Field(default_factory=list)
    #: the per-engine limit of hosts that set none (None = only ``concurrency``)
    max_containers_per_host: int | None = Field(default=None, ge=1)

    @field_validator("memory")
    @classmethod
    def _size(cls, size: str | None) -> str | None:
        if size is not None:
            byte_count(size)
        return size

    @field_validator("hosts", mode="before")
    @classmethod
    def _addresses(cls, hosts: object) -> object:
        if isinstance(hosts, list):
            return [{"url": h} if isinstance(h, str) else h for h in hosts]
        return hosts

    @model_validator(mode="after")
    def _one_way(self) -> "DockerSandboxConfig":
        if self.hosts and self.docker_host:
            raise ValueError("give either docker_host or hosts, not both")
        urls = [h.url for h in self.hosts]
        if len(set(urls)) != len(urls):
            raise ValueError("hosts lists an engine twice")
        return self

    def engines(self) -> list[DockerHost]:
        """The engines to use: ``hosts``, else the single ``docker_host`` (or the
        environment's engine, url "")."""
        if self.hosts:
            return [h if h.max_containers else h.model_copy(update={"max_containers": self.max_containers_per_host})
                    for h in self.hosts]
        return [DockerHost.model_construct(url=self.docker_host or "", tls=None,
                                           max_containers=self.max_containers_per_host)]
