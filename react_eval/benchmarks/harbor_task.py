"""Harbor task directories: the layout and ``task.toml``, read without Harbor.

A task directory (Harbor's format, as Terminal-Bench and many adapted
benchmarks ship it) holds::

    instruction.md            the prompt
    task.toml                 [metadata], [agent], [verifier], [environment], [solution]
    environment/Dockerfile    the image the agent works in (the build context is environment/)
    tests/test.sh             run after the agent; writes /logs/verifier/reward.txt or reward.json
    solution/solve.sh         the reference solution (the oracle)

Only the settings react-eval acts on are modelled here; every other key is
accepted and kept in ``raw`` (a test parses the same files with the models of
the ``harbor`` wheel, so this reading stays Harbor's). Multi-step tasks
(``steps``) and Windows containers are refused with a clear error.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from react_eval.envsubst import UnsetVariable, substitute

INSTRUCTION = "instruction.md"
CONFIG = "task.toml"


class HarborTaskError(ValueError):
    """A task directory that is not a usable Harbor task, worded for its author."""


def _size_to_mb(text: str) -> int:
    """Harbor's legacy size strings ("2G", "512M", "1024K") in megabytes."""
    value = text.strip().upper()
    units = {"G": 1024.0, "M": 1.0, "K": 1 / 1024}
    if not value or value[-1] not in units:
        raise ValueError(f"size {text!r} must look like 2G, 512M or 1024K")
    return int(float(value[:-1]) * units[value[-1]])


class _Section(BaseModel):
    model_config = ConfigDict(extra="allow")


class AgentSection(_Section):
    timeout_sec: float | None = Field(default=None, gt=0)


class VerifierSection(_Section):
    timeout_sec: float = Field(default=600.0, gt=0)
    env: dict[str, str] = Field(default_factory=dict)


class SolutionSection(_Section):
    env: dict[str, str] = Field(default_factory=dict)


class EnvironmentSection(_Section):
    build_timeout_sec: float = Field(default=600.0, gt=0)
    docker_image: str | None = None
    os: str = "linux"
    cpus: float | None = Field(default=None, gt=0)
    memory_mb: int | None = Field(default=None, gt=0)
    storage_mb: int | None = Field(default=None, gt=0)
    gpus: int | None = Field(default=None, ge=0)
    env: dict[str, str] = Field(default_factory=dict)
    workdir: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _legacy_sizes(cls, data: Any) -> Any:
        """Older tasks write ``memory = "2G"`` / ``storage = "10G"``."""
        if isinstance(data, dict):
            data = dict(data)
            for old, new in (("memory", "memory_mb"), ("storage", "storage_mb")):
                if isinstance(data.get(old), str):
                    mb = _size_to_mb(data.pop(old))
                    if data.get(new) not in (None, mb):
                        raise ValueError(f"{old} and {new} disagree ({mb} MB vs {data[new]} MB)")
                    data[new] = mb
        return data


class HarborTaskConfig(_Section):
    """The parts of ``task.toml`` that decide how a task is run and graded."""

    schema_version: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    agent: AgentSection = Field(default_factory=AgentSection)
    verifier: VerifierSection = Field(default_factory=VerifierSection)
    environment: EnvironmentSection = Field(default_factory=EnvironmentSection)
    solution: SolutionSection = Field(default_factory=SolutionSection)
    steps: list[dict[str, Any]] | None = None

    @model_validator(mode="before")
    @classmethod
    def _legacy_version(cls, data: Any) -> Any:
        """Older tasks write ``version`` for ``schema_version``."""
        if isinstance(data, dict) and "version" in data:
            data = dict(data)
            data.setdefault("schema_version", data.pop("version"))
        return data


#: settings react-eval reads but does not apply (reported in each task's metadata)
NOT_APPLIED = {
    "environment": ("storage_mb", "gpus", "gpu_types", "tpu", "healthcheck", "mcp_servers", "skills_dir",
                    "network_mode", "allowed_hosts", "allow_internet"),
    "agent": ("user", "network_mode", "allowed_hosts"),
    "verifier": ("user", "network_mode", "allowed_hosts", "environment", "environment_mode", "collect"),
}


def not_applied(config: HarborTaskConfig) -> list[str]:
    """The task's settings that this run ignores, as ``section.key`` (e.g. ``environment.gpus``)."""
    found = []
    for section, keys in NOT_APPLIED.items():
        data = getattr(config, section).model_dump(exclude_unset=True)
        found += [f"{section}.{k}" for k in keys if data.get(k) not in (None, [], {})]
    return found


def resolve_env(values: dict[str, str], where: str) -> dict[str, str]:
    """Fill ``${VAR}`` / ``${VAR:-default}`` from the host's environment, as Harbor does."""
    try:
        return {str(k): substitute(str(v)) for k, v in values.items()}
    except UnsetVariable as exc:
        raise HarborTaskError(f"{where}: {exc}") from None


@dataclass
class HarborTask:
    """One task directory, read and checked."""

    path: Path
    instruction: str
    config: HarborTaskConfig

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def environment_dir(self) -> Path:
        return self.path / "environment"

    @property
    def dockerfile(self) -> Path | None:
        found = self.environment_dir / "Dockerfile"
        return found if found.is_file() else None

    @property
    def tests_dir(self) -> Path:
        return self.path / "tests"

    @property
    def solve_script(self) -> Path | None:
        found = self.path / "solution" / "solve.sh"
        return found if found.is_file() else None


def parse_config(text: str, source: str) -> HarborTaskConfig:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise HarborTaskError(f"{source}: not valid TOML: {exc}") from None
    try:
        config = HarborTaskConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(top)'}: {e['msg']}" for e in exc.errors())
        raise HarborTaskError(f"{source}: {problems}") from None
    if config.steps:
        raise HarborTaskError(f"{source}: multi-step tasks ([[steps]]) are not supported; run single-step tasks")
    if config.environment.os.lower() != "linux":
        raise HarborTaskError(f"{source}: environment.os = {config.environment.os!r}; only linux containers run here")
    return config


def load_task(path: Path) -> HarborTask:
    """Read one task directory; a missing part is named in the error."""
    path = path.resolve()
    instruction, config_path = path / INSTRUCTION, path / CONFIG
    if not instruction.is_file():
        raise HarborTaskError(f"{path}: no {INSTRUCTION} (the task's prompt)")
    config = parse_config(config_path.read_text(), str(config_path)) if config_path.is_file() \
        else HarborTaskConfig()
    task = HarborTask(path, instruction.read_text(), config)
    if not (task.tests_dir / "test.sh").is_file():
        raise HarborTaskError(f"{path}: no tests/test.sh (it grades the agent's work)")
    return task


def is_task_dir(path: Path) -> bool:
    return (path / INSTRUCTION).is_file() and ((path / CONFIG).is_file() or (path / "tests").is_dir())


def discover(root: Path) -> list[HarborTask]:
    """``root`` is one task directory, or a directory of them (sorted by name)."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise HarborTaskError(f"{root}: no such directory (harbor:PATH takes a task directory or a directory of tasks)")
    if is_task_dir(root):
        return [load_task(root)]
    found = [load_task(child) for child in sorted(root.iterdir()) if child.is_dir() and is_task_dir(child)]
    if not found:
        raise HarborTaskError(f"{root}: no Harbor task here (a task directory holds {INSTRUCTION} and {CONFIG})")
    return found
