"""The run configuration built from ``react-eval run``/``validate`` flags (merged over a YAML config, if any)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from react_eval.engine.config import ConfigError, EvalConfig, apply_override, read_config_data, validate_config
from react_eval.sandboxes.registry import sandbox_flag as registry_sandbox_flag


MISSING_ENDPOINT = (
    "no model endpoint given: pass --model-url URL and --model NAME "
    "(e.g. --model-url http://127.0.0.1:8000/v1 --model my-model), "
    "or --config FILE with services.<name>.url and services.<name>.model"
)


@dataclass
class Selection:
    """The flags ``run`` and ``validate`` share: which benchmark and tasks, where they run, where results go."""

    bench: str | None = None
    sandbox: str | None = None
    dataset: Path | None = None
    max_concurrent: int | None = None
    max_problems: int | None = None
    problem_range: str | None = None
    output_dir: Path | None = None
    overrides: list[str] = field(default_factory=list)
    #: --ray-address: the rollouts run on a Ray cluster ("local": a private one)
    ray_address: str | None = None


@dataclass
class Endpoint:
    """The model flags of ``run`` (they patch every ``type: api`` service of a YAML config)."""

    model_url: str | None = None
    model: str | None = None
    api_key_env: str | None = None
    protocol: str | None = None


@dataclass
class RunFlags:
    """The flags only ``run`` takes that shape its config."""

    repeats: int | None = None
    workers: int | None = None
    max_turns: int | None = None
    max_infra_failures: str | None = None
    #: --solver: the solver type of every entry (tool_calling, simple, a plugin's)
    solver: str | None = None


def flags_config(bench: str | None, endpoint: Endpoint, sandbox: str | None) -> dict[str, Any]:
    """Config data for a run given by flags alone (no --config)."""
    if not bench:
        raise ConfigError("no benchmark given: pass --bench NAME (see `react-eval list`) or --config FILE")
    model_url, model = endpoint.model_url, endpoint.model
    if not model_url and model == "oracle":  # the built-in reference policy: no endpoint
        from react_eval.benchmarks.oracle import ORACLE_URL

        model_url = ORACLE_URL
    if not model_url:
        raise ConfigError(MISSING_ENDPOINT)
    if not model:
        raise ConfigError("no model name given: pass --model NAME (the id the endpoint serves)")
    service: dict[str, Any] = {"type": "api", "base_url": model_url, "model": model}
    if endpoint.api_key_env:
        check_key_env(endpoint.api_key_env)
        service["api_key_env"] = endpoint.api_key_env
    if endpoint.protocol:
        service["protocol"] = endpoint.protocol
    entry: dict[str, Any] = {"name": bench, "solver": {"type": "tool_calling", "service": "model"}}
    data: dict[str, Any] = {"services": {"model": service}, "benchmarks": [entry]}
    if sandbox:
        data["sandboxes"] = {"default": sandbox_flag(sandbox)}
        entry["sandbox"] = "default"
    return data


def check_key_env(name: str) -> None:
    """``--api-key-env NAME`` must name a variable that is set: silently sending no key helps nobody."""
    if not os.environ.get(name):
        raise ConfigError(f"--api-key-env {name}: the environment variable {name} is not set (or empty); "
                          f"export {name}=<key>, or leave --api-key-env out for a server without auth")


def sandbox_flag(value: str) -> dict[str, Any]:
    """The sandbox config of ``--sandbox VALUE`` (a registered sandbox type or a preset such as bwrap)."""
    try:
        return registry_sandbox_flag(value)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _patch_endpoint(data: dict[str, Any], endpoint: Endpoint) -> None:
    """--model-url, --model and --api-key-env replace those of every ``type: api`` service of a YAML config."""
    for service in data.get("services", {}).values():
        if isinstance(service, dict) and service.get("type", "api") == "api":
            if endpoint.model_url:
                service.pop("url", None)
                service["base_url"] = endpoint.model_url
            if endpoint.model:
                service["model"] = endpoint.model
            if endpoint.api_key_env:
                check_key_env(endpoint.api_key_env)
                service["api_key_env"] = endpoint.api_key_env


def apply_selection(data: dict[str, Any], sel: Selection, entry_values: dict[str, Any] | None = None) -> None:
    """Set the shared flags (and ``entry_values``, e.g. repeats) on every benchmark entry; flags win over the config."""
    values = {"max_concurrent": sel.max_concurrent, "max_problems": sel.max_problems, **(entry_values or {})}
    entries = [e for e in data.get("benchmarks") or [] if isinstance(e, dict)]
    for i in range(len(data.get("benchmarks") or [])):
        for key, value in values.items():
            if value is not None:
                apply_override(data, f"benchmarks.{i}.{key}={value}")
    for entry in entries:
        if sel.problem_range is not None:  # set as text: YAML would read "11:12" as the base-60 number 672
            entry["problem_range"] = sel.problem_range
        if sel.dataset is not None:  # --dataset: e.g. the JSONL file of a gym:// benchmark
            entry.setdefault("options", {})["dataset"] = str(sel.dataset.expanduser().resolve())
    if sel.output_dir is not None:
        data.setdefault("output", {})["dir"] = str(sel.output_dir)


def build_config(config: Path | None, sel: Selection, endpoint: Endpoint | None = None,
                 run: RunFlags | None = None) -> EvalConfig:
    """Merge a YAML config (if any) with command-line flags; flags win."""
    endpoint, run = endpoint or Endpoint(), run or RunFlags()
    root = None
    if config is not None:
        data, root = read_config_data(config)
        for assignment in sel.overrides:
            apply_override(data, assignment)
        _patch_endpoint(data, endpoint)
        if sel.bench:
            chosen = [b for b in data.get("benchmarks", []) if isinstance(b, dict) and b.get("name") == sel.bench]
            if not chosen:
                raise ConfigError(f"--bench {sel.bench}: no benchmark of that name in {config}")
            data["benchmarks"] = chosen
    else:
        data = flags_config(sel.bench, endpoint, sel.sandbox)
        for assignment in sel.overrides:
            apply_override(data, assignment)
    apply_selection(data, sel, {"repeats": run.repeats, "solver.max_turns": run.max_turns, "workers": run.workers,
                                "solver.type": run.solver})
    if run.max_infra_failures is not None:
        data["max_infra_failures"] = run.max_infra_failures
    cfg = validate_config(data, source=str(config) if config else "command line", root=root,
                          source_dir=config.resolve().parent if config else None)
    return with_ray(cfg, sel.ray_address)


def with_ray(cfg: EvalConfig, address: str | None) -> EvalConfig:
    """``--ray-address``: the run's executor is a Ray cluster (the config's ray settings kept)."""
    if address is None:
        return cfg
    from pydantic import ValidationError

    from react_eval.engine.ray_executor import RayExecutorConfig

    settings = cfg.executor.model_dump() if isinstance(cfg.executor, RayExecutorConfig) else {}
    try:  # validated: without the ray extra this is a config error, before anything runs
        cfg.executor = RayExecutorConfig.model_validate({**settings, "address": None if address == "local" else address})
    except ValidationError as exc:
        raise ConfigError(f"--ray-address {address}: {exc.errors()[0]['msg'].removeprefix('Value error, ')}") from None
    return cfg


def validation_data(sel: Selection) -> EvalConfig:
    """The config of ``react-eval validate``: one benchmark, served by the reference policies."""
    from react_eval.engine.validate import validation_config

    if not sel.bench:
        raise ConfigError("no benchmark given: pass --bench NAME (see `react-eval list`)")
    data = validation_config(sel.bench, sandbox=sandbox_flag(sel.sandbox) if sel.sandbox else None)
    for assignment in sel.overrides:
        apply_override(data, assignment)
    apply_selection(data, sel)
    return with_ray(validate_config(data, source="command line"), sel.ray_address)
