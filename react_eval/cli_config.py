"""The run configuration built from ``react-eval run`` flags (merged over a YAML config, if any)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from react_eval.engine.config import ConfigError, EvalConfig, apply_override, read_config_data, validate_config


MISSING_ENDPOINT = (
    "no model endpoint given: pass --model-url URL and --model NAME "
    "(e.g. --model-url http://127.0.0.1:8000/v1 --model my-model), "
    "or --config FILE with services.<name>.url and services.<name>.model"
)


def flags_config(
    *, bench: str | None, model_url: str | None, model: str | None, api_key_env: str | None,
    protocol: str | None, sandbox: str | None,
) -> dict[str, Any]:
    if not bench:
        raise ConfigError("no benchmark given: pass --bench NAME (see `react-eval list`) or --config FILE")
    if not model_url and model == "oracle":  # the built-in reference policy: no endpoint
        from react_eval.benchmarks.oracle import ORACLE_URL

        model_url = ORACLE_URL
    if not model_url:
        raise ConfigError(MISSING_ENDPOINT)
    if not model:
        raise ConfigError("no model name given: pass --model NAME (the id the endpoint serves)")
    service: dict[str, Any] = {"type": "api", "base_url": model_url, "model": model}
    if api_key_env:
        check_key_env(api_key_env)
        service["api_key_env"] = api_key_env
    if protocol:
        service["protocol"] = protocol
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
    if value == "local":
        return {"type": "local"}
    if value == "bwrap":
        return {"type": "local", "isolation": "bwrap"}
    if value == "docker":
        return {"type": "docker"}
    raise ConfigError(f"--sandbox must be local, bwrap or docker, got {value!r}")


def build_config(
    *, config: Path | None, overrides: list[str], bench: str | None, model_url: str | None, model: str | None,
    api_key_env: str | None, protocol: str | None, sandbox: str | None, repeats: int | None,
    max_concurrent: int | None, max_problems: int | None, problem_range: str | None, max_turns: int | None,
    output_dir: Path | None, dataset: Path | None = None, workers: int | None = None,
    max_infra_failures: str | None = None, solver: str | None = None,
) -> EvalConfig:
    """Merge a YAML config (if any) with command-line flags; flags win."""
    flag_overrides: list[str] = []
    for key, value in (
        ("repeats", repeats), ("max_concurrent", max_concurrent), ("max_problems", max_problems),
        ("solver.max_turns", max_turns), ("workers", workers), ("solver.type", solver),
    ):
        if value is not None:
            flag_overrides.append(f"{key}={value}")
    root = None
    if config is not None:
        data, root = read_config_data(config)
        for assignment in overrides:
            apply_override(data, assignment)
        for name, service in data.get("services", {}).items():
            if isinstance(service, dict) and service.get("type", "api") == "api":
                if model_url:
                    service.pop("url", None)
                    service["base_url"] = model_url
                if model:
                    service["model"] = model
                if api_key_env:
                    check_key_env(api_key_env)
                    service["api_key_env"] = api_key_env
        if bench:
            chosen = [b for b in data.get("benchmarks", []) if isinstance(b, dict) and b.get("name") == bench]
            if not chosen:
                raise ConfigError(f"--bench {bench}: no benchmark of that name in {config}")
            data["benchmarks"] = chosen
    else:
        data = flags_config(bench=bench, model_url=model_url, model=model, api_key_env=api_key_env,
                             protocol=protocol, sandbox=sandbox)
        for assignment in overrides:
            apply_override(data, assignment)
    for i in range(len(data.get("benchmarks") or [])):
        for assignment in flag_overrides:
            apply_override(data, f"benchmarks.{i}.{assignment}")
    if problem_range is not None:  # set as text: YAML would read "11:12" as the base-60 number 672
        for entry in data.get("benchmarks") or []:
            if isinstance(entry, dict):
                entry["problem_range"] = problem_range
    if dataset is not None:  # --dataset: the JSONL file of a gym:// benchmark
        for entry in data.get("benchmarks") or []:
            if isinstance(entry, dict):
                entry.setdefault("options", {})["dataset"] = str(dataset.expanduser().resolve())
    if output_dir is not None:
        data.setdefault("output", {})["dir"] = str(output_dir)
    if max_infra_failures is not None:
        data["max_infra_failures"] = max_infra_failures
    return validate_config(data, source=str(config) if config else "command line", root=root,
                           source_dir=config.resolve().parent if config else None)
