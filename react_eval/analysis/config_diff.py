"""Which settings differ between two runs (``compare``'s config diff).

The settings are read from each run's eval.json (the solver's model service,
solver, Gym resources service, sandbox and benchmark entry) and the tool names
its first trajectory offered the model. Operational settings (where and how fast
a run was carried out) are listed but not counted as a varied thing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from react_eval.analysis.runs import RunData

#: config fields that change how a run is carried out but not what is measured:
#: listed in the diff, not counted as a varied thing
OPERATIONAL_FIELDS = frozenset({
    "model.base_url",
    "model.max_concurrent",
    "model.request_timeout",
    "model.max_attempts",
    "model.retry_initial_wait",
    "model.retry_max_wait",
    "model.api_key",
    "model.api_key_env",
    "benchmark.max_concurrent",
    "benchmark.repeats",
    "benchmark.max_problems",
    "benchmark.problem_range",
})


@dataclass
class ConfigChange:
    field: str
    base: Any
    cand: Any
    counted: bool


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, dict) and value:
        for key, item in value.items():
            _flatten(f"{prefix}.{key}", item, out)
    else:
        out[prefix] = value


def effective_config(run: RunData) -> dict[str, Any]:
    """The settings that shaped this benchmark's rollouts, as flat dot paths.

    ``model.*`` (the solver's service), ``solver.*``, ``resources.*`` (a gym
    service), ``sandbox.*``, ``benchmark.*`` (repeats, options, ...) and
    ``tools`` (the tool names the first trajectory offered the model).
    """
    flat: dict[str, Any] = {}
    config = run.info.get("config") or {}
    entries = [e for e in config.get("benchmarks") or [] if isinstance(e, dict)]
    entry = next((e for e in entries if e.get("name") == run.benchmark), entries[0] if len(entries) == 1 else {})
    services = config.get("services") or {}
    solver = dict(entry.get("solver") or {})
    service_name = solver.pop("service", None)
    resource_name = solver.pop("resource_service", None)
    if service_name in services:
        _flatten("model", services[service_name], flat)
    _flatten("solver", solver, flat)
    if resource_name in services:
        _flatten("resources", services[resource_name], flat)
    sandbox = entry.get("sandbox")
    if isinstance(sandbox, str):
        sandbox = (config.get("sandboxes") or {}).get(sandbox)
    if sandbox:
        _flatten("sandbox", sandbox, flat)
    _flatten("benchmark", {k: v for k, v in entry.items() if k not in ("name", "solver", "sandbox")}, flat)
    tools = _tool_names(run)
    if tools is not None:
        flat["tools"] = tools
    return flat


def _tool_names(run: RunData) -> list[str] | None:
    for trajectory in run.trajectories():
        definitions = (trajectory.get("agent") or {}).get("tool_definitions")
        if definitions is None:
            return None
        names = []
        for item in definitions:
            function = item.get("function") if isinstance(item, dict) else None
            names.append(str((function or item).get("name")) if isinstance(function or item, dict) else str(item))
        return sorted(names)
    return None


def diff_configs(base: RunData, cand: RunData) -> list[ConfigChange]:
    a, b = effective_config(base), effective_config(cand)
    changes = []
    for key in sorted(set(a) | set(b)):
        if a.get(key) != b.get(key):
            changes.append(ConfigChange(key, a.get(key), b.get(key), key not in OPERATIONAL_FIELDS))
    return changes
