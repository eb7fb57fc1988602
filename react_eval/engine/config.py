"""The run configuration: NeMo-Evaluator-style YAML (services, sandboxes,
benchmarks, output), validated strictly, with ``${VAR}`` expansion, ``-O``
overrides and errors that name the field path and the YAML line."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Sequence

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from react_eval.engine.failures import parse_infra_limit
from react_eval.engine.variants import Variant, check_variants
from react_eval.envsubst import UnsetVariable, substitute
from react_eval.loop import LoopConfig
from react_eval.model.config import GenerationConfig, ModelConfig
from react_eval.nel_compat import NelConfigError, translate
from react_eval.plugins.configs import ExecutorConfig, GraderConfig, SandboxConfig, SandboxRef, ToolSourceConfig, plugin_config
from react_eval.scoring.config import ScoringConfig, check_scoring


class ConfigError(ValueError):
    """A configuration problem, worded for the person who wrote the file."""


class ApiService(ModelConfig):
    type: Literal["api"] = "api"


class GymService(BaseModel):
    """A NeMo Gym resources server (tools, seed_session and verify over HTTP)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["gym"] = "gym"
    url: str
    #: seconds for one HTTP request to the server (tool calls also obey tool_timeout)
    request_timeout: float = Field(default=300.0, gt=0)
    #: attempts for connection failures before a rollout ends with tool_infra_error
    connect_attempts: int = Field(default=3, ge=1)
    #: largest reply body read from the server (a larger one is an error, unread)
    max_response_bytes: int = Field(default=16 << 20, ge=1)


Service = Annotated[ApiService | GymService, Field(discriminator="type")]


class SolverConfig(LoopConfig):
    """``solver:`` of a benchmark: which services and tools the loop uses.

    The config of the built-in ``tool_calling`` solver (the ReAct loop), and the
    base every solver plugin's config subclasses (the engine reads these fields)."""

    #: the solver plugin: ``tool_calling`` (the ReAct loop), ``simple`` (one model
    #: call, no tools: NEL's question-answer solver), a registered name, or a class path
    type: str = "tool_calling"
    service: str
    resource_service: str | None = None
    #: offer bash/file tools in a sandbox; None = the benchmark's default (on, but
    #: off for gym://, whose tools are the server's, as in NeMo Evaluator)
    sandbox_tools: bool | None = None
    #: sampling settings merged over the service's ``generation`` for this benchmark
    generation: GenerationConfig | None = None

    @model_validator(mode="after")
    def _check_simple(self) -> "SolverConfig":
        if self.type == "simple":
            if self.sandbox_tools:
                raise ValueError("sandbox_tools: the simple solver makes one model call without tools; "
                                 "use type: tool_calling for sandbox tools")
            if self.resource_service:
                raise ValueError("resource_service: the simple solver offers no tools; use type: tool_calling")
        return self


if TYPE_CHECKING:
    SolverField = SolverConfig
else:
    #: ``benchmarks.<i>.solver``: a registered solver's config (``type:`` defaults to ``tool_calling``)
    SolverField = plugin_config("solver", default="tool_calling", base=SolverConfig)


class BenchmarkEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: a registered benchmark (see ``react-eval list``), a scheme (gym://, harbor:) or a class path
    name: str
    solver: SolverField
    #: a named sandbox from ``sandboxes:`` or an inline sandbox config
    sandbox: SandboxRef | None = None
    #: tool sources besides the solver's resource_service and sandbox tools (``{type: NAME, ...}``)
    tool_sources: list[ToolSourceConfig] = Field(default_factory=list)
    #: grade with this grader instead of the benchmark's own verifier
    grader: GraderConfig | None = None
    repeats: int = Field(default=1, ge=1)
    max_problems: int | None = Field(default=None, ge=1)
    #: ``a:b`` selects tasks a..b-1 (Python slice semantics) before max_problems
    problem_range: str | None = None
    max_concurrent: int = Field(default=8, ge=1)
    #: harness processes that share max_concurrent (and the service's and the
    #: sandbox's limits); more than 1 when one core cannot keep up with the model
    workers: int = Field(default=1, ge=1)
    #: NEL's ``scoring``: metrics (built-in scorers, LLM judges) that grade the answer
    scoring: ScoringConfig | None = None
    #: shuffle the benchmark's tasks with this seed before problem_range / max_problems
    shuffle_seed: int | None = None
    #: benchmark-specific options (e.g. ``dataset`` for gym:// benchmarks)
    options: dict[str, Any] = Field(default_factory=dict)
    #: harness variants run on the same tasks and compared (see engine/variants.py)
    variants: list[Variant] = Field(default_factory=list)
    #: the variant the others are compared against (default: the first)
    baseline: str | None = None

    @model_validator(mode="after")
    def _check_range(self) -> "BenchmarkEntry":
        if self.problem_range is not None:
            parse_range(self.problem_range)
        return self


class OutputConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dir: str = "./eval_results"


class EvalConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    services: dict[str, Service]
    sandboxes: dict[str, SandboxConfig] = Field(default_factory=dict)
    benchmarks: list[BenchmarkEntry] = Field(min_length=1)
    output: OutputConfig = Field(default_factory=OutputConfig)
    #: infrastructure failures a benchmark may have before the run exits non-zero:
    #: a count (3) or a fraction (0.1, "10%"); by default only a benchmark whose
    #: every rollout failed for infrastructure reasons fails the run
    max_infra_failures: int | float | str | None = None
    #: where the rollouts run: None = this machine (``workers`` processes per
    #: benchmark); ``{type: ray, address: ...}`` = a Ray cluster's nodes
    executor: ExecutorConfig | None = None
    #: the directory of the YAML file this came from (for provenance), if any
    _source_dir: Path | None = PrivateAttr(default=None)
    #: what was mapped from NeMo Evaluator's fields (printed once when a run starts)
    _nel_notes: list[str] = PrivateAttr(default_factory=list)

    @field_validator("max_infra_failures")
    @classmethod
    def _check_infra_limit(cls, value: Any) -> int | float | None:
        return parse_infra_limit(value)

    @model_validator(mode="after")
    def _check_references(self) -> "EvalConfig":
        for i, bench in enumerate(self.benchmarks):
            where = f"benchmarks.{i}.solver"
            service = self.services.get(bench.solver.service)
            if service is None:
                raise ValueError(f"{where}.service: no service named {bench.solver.service!r} in services")
            if not isinstance(service, ApiService):
                raise ValueError(f"{where}.service: {bench.solver.service!r} must be a type: api service")
            if service.protocol == "completions" and bench.solver.type != "simple":
                raise ValueError(f"{where}.service: {bench.solver.service!r} uses protocol: completions, which "
                                 "carries no tools; use solver.type: simple, or protocol: chat_completions")
            if bench.scoring is not None:
                check_scoring(bench.scoring, bench.solver.service, self.services, f"benchmarks.{i}")
            rs = bench.solver.resource_service
            if rs is not None and not isinstance(self.services.get(rs), GymService):
                raise ValueError(f"{where}.resource_service: {rs!r} must name a type: gym service")
            for j, source in enumerate(bench.tool_sources):
                named = getattr(source, "service", None) if getattr(source, "type", None) == "gym" else None
                if named is not None and not isinstance(self.services.get(named), GymService):
                    raise ValueError(f"benchmarks.{i}.tool_sources.{j}.service: {named!r} must name a type: gym service")
            if isinstance(bench.sandbox, str) and bench.sandbox not in self.sandboxes:
                raise ValueError(f"benchmarks.{i}.sandbox: no sandbox named {bench.sandbox!r} in sandboxes")
            check_variants(self, bench, f"benchmarks.{i}")
        return self

    def sandbox_for(self, bench: BenchmarkEntry) -> BaseModel | None:
        if isinstance(bench.sandbox, str):
            return self.sandboxes[bench.sandbox]
        return bench.sandbox

    def model_service(self, bench: BenchmarkEntry) -> ApiService:
        """The solver's model service (checked to be ``type: api`` when the config was validated)."""
        service = self.services[bench.solver.service]
        if not isinstance(service, ApiService):
            raise ConfigError(f"service {bench.solver.service!r} must be a type: api service")
        return service

    def redacted(self) -> dict[str, Any]:
        """The resolved config as data, with every secret shown as ``***``."""
        data = self.model_dump(mode="json")
        for service in data["services"].values():
            if service.get("api_key") is not None:
                service["api_key"] = "***"
        return data


def parse_range(text: str) -> slice:
    m = re.fullmatch(r"\s*(-?\d*)\s*:\s*(-?\d*)\s*", text)
    if not m:
        raise ValueError(f"problem_range must look like 'a:b', got {text!r}")
    a, b = (int(x) if x else None for x in m.groups())
    if a is not None and b is not None and (a >= 0) == (b >= 0) and b <= a:
        raise ValueError(f"problem_range {text!r} selects no task: the end must be greater than the start")
    return slice(a, b)


# ---------------------------------------------------------------- loading

def expand_env(value: Any, path: str = "") -> Any:
    """Replace ``${VAR}`` (or ``${VAR:-default}``) in every string; unset -> error."""
    if isinstance(value, dict):
        return {k: expand_env(v, f"{path}.{k}" if path else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v, f"{path}.{i}") for i, v in enumerate(value)]
    if isinstance(value, str):
        try:
            return substitute(value)
        except UnsetVariable as exc:
            raise ConfigError(f"{path}: {exc}") from None
    return value


def apply_override(data: dict[str, Any], assignment: str) -> None:
    """Apply one ``-O dot.path=value`` (value parsed as YAML; list items by index)."""
    if "=" not in assignment:
        raise ConfigError(f"override {assignment!r} must look like dot.path=value")
    path, _, raw = assignment.partition("=")
    keys = path.strip().split(".")
    value = yaml.safe_load(raw) if raw.strip() else ""
    node: Any = data
    for depth, key in enumerate(keys):
        last = depth == len(keys) - 1
        if isinstance(node, list):
            if not key.lstrip("-").isdigit() or not -len(node) <= int(key) < len(node):
                raise ConfigError(f"override {path!r}: {key!r} is not an index of the list at {'.'.join(keys[:depth]) or '(root)'}")
            if last:
                node[int(key)] = value
            else:
                node = node[int(key)]
            continue
        if not isinstance(node, dict):
            raise ConfigError(f"override {path!r}: {'.'.join(keys[:depth])} is not a mapping")
        if last:
            node[key] = value
        else:
            node = node.setdefault(key, {})


def _line_of(root: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """1-based line of the YAML node at ``loc`` (or of its nearest parent)."""
    node, line = root, None
    for key in loc:
        if node is None:
            break
        line = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == str(key)), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
        else:
            node = None
    if node is not None:
        line = node.start_mark.line + 1
    return line


def validate_config(data: Any, *, source: str = "config", root: yaml.Node | None = None,
                    source_dir: Path | None = None) -> EvalConfig:
    notes: list[str] = []
    if isinstance(data, dict):
        try:
            data, notes = translate(data)
        except NelConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None
    try:
        config = EvalConfig.model_validate(data)
        config._source_dir = source_dir
        config._nel_notes = notes
        return config
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p in {"api", "gym", "scorer", "judge"}))
            field = ".".join(str(p) for p in loc)
            line = _line_of(root, loc) if root is not None and loc else None  # not line 1 for a whole-config check
            where = f"{source}:{line}: " if line else f"{source}: "
            msg = err["msg"]
            if err["type"] == "extra_forbidden":
                msg = "unknown key (not allowed here)"
            elif err["type"] == "value_error" and "error" in err.get("ctx", {}):
                msg = str(err["ctx"]["error"])  # our own message, without pydantic's "Value error, "
            lines.append(f"{where}{field}: {msg}" if field else f"{where}{msg}")  # a whole-config check names its fields
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines)) from None


def read_config_data(path: str | Path) -> tuple[dict[str, Any], yaml.Node | None]:
    """Read a YAML config file and expand ``${VAR}``; returns the data and its node tree."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from None
    try:
        root = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise ConfigError(f"{where}: malformed YAML: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping with services and benchmarks")
    return expand_env(data), root


def load_config(path: str | Path, overrides: Sequence[str] = ()) -> EvalConfig:
    """Read, expand, override and validate a YAML config file."""
    data, root = read_config_data(path)
    for assignment in overrides:
        apply_override(data, assignment)
    return validate_config(data, source=str(path), root=root, source_dir=Path(path).resolve().parent)
