"""Harness variants: one benchmark entry run several ways in one command.

A benchmark entry may list ``variants:``, each a ``name`` plus overrides::

    benchmarks:
      - name: smoke
        repeats: 3
        solver: {type: tool_calling, service: model, max_turns: 20}
        baseline: terse            # default: the first variant
        variants:
          - name: terse
            system_prompt: "Answer fast. End with ANSWER: <value>."
          - name: careful
            system_prompt: "Check twice. End with ANSWER: <value>."
            max_turns: 30                  # any solver setting: max_turns, sandbox_tools, ...
            generation: {temperature: 0.7} # sampling settings of the solver's service

Every variant runs the same task selection and repeats, in its own directory
(``<out>/<bench>/<variant>/``) with its own config hash (so ``--resume`` works
per variant), and its own run id (``<run id>.<variant>``). ``variants.plan.json``
in the group directory records the names and the baseline, from which
:mod:`react_eval.analysis.variants` builds the cross-variant comparison.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

PLAN = "variants.plan.json"
#: a variant's name is its directory's: no dots, so it never meets variants.md/.json
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
#: entry keys a variant cannot change: they would make the runs incomparable
FIXED_KEYS = ("name", "repeats", "max_problems", "problem_range", "options")


class Variant(BaseModel):
    """A named set of overrides; keys other than these are solver settings."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(pattern=_NAME.pattern)
    description: str | None = None
    #: overrides of the solver's service's ``generation`` (temperature, top_p, max_tokens, ...)
    generation: dict[str, Any] = Field(default_factory=dict)

    @property
    def solver_overrides(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


@dataclass
class PlannedVariant:
    """One variant, ready for ``run_benchmark``."""

    name: str
    config: Any  # EvalConfig holding only this variant's entry (and its service)
    entry: Any  # BenchmarkEntry with the overrides applied and no variants
    out_dir: Path
    run_id: str


def baseline_of(entry: Any) -> str:
    return entry.baseline or entry.variants[0].name


def _apply(config: Any, entry: Any, variant: Variant) -> tuple[Any, Any]:
    """The config and entry of one variant (raises ValueError naming the bad key)."""
    solver_data = {**entry.solver.model_dump(), **variant.solver_overrides}
    for key in FIXED_KEYS:
        if key in variant.solver_overrides and key not in type(entry.solver).model_fields:
            raise ValueError(f"{key!r} is the same for every variant (it selects the tasks); set it on the entry")
    try:
        solver = type(entry.solver).model_validate(solver_data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ValueError(problems) from None
    services = dict(config.services)
    if solver.service not in services:
        raise ValueError(f"service: no service named {solver.service!r} in services")
    if variant.generation:
        service = services[solver.service]
        if not hasattr(service, "generation"):
            raise ValueError(f"generation: service {solver.service!r} is not a model (type: api) service")
        merged = {**service.generation.model_dump(exclude_unset=True), **variant.generation}
        try:
            generation = type(service.generation).model_validate(merged)
        except ValidationError as exc:
            problems = "; ".join(f"generation.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise ValueError(problems) from None
        name = f"{solver.service}@{variant.name}"
        services[name] = service.model_copy(update={"generation": generation})
        solver = solver.model_copy(update={"service": name})
    new_entry = entry.model_copy(update={"solver": solver, "variants": [], "baseline": None})
    new_config = config.model_copy(update={"services": services, "benchmarks": [new_entry]})
    return new_config, new_entry


def check_variants(config: Any, entry: Any, where: str) -> None:
    """Config-time checks: unique names, a baseline that exists, overrides that validate."""
    if not entry.variants:
        if entry.baseline is not None:
            raise ValueError(f"{where}.baseline: set, but the entry has no variants")
        return
    names = [v.name for v in entry.variants]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"{where}.variants: names must be unique, repeated: {', '.join(dupes)}")
    if entry.baseline is not None and entry.baseline not in names:
        raise ValueError(f"{where}.baseline: {entry.baseline!r} is not one of the variants ({', '.join(names)})")
    for i, variant in enumerate(entry.variants):
        try:
            _apply(config, entry, variant)
        except ValueError as exc:
            raise ValueError(f"{where}.variants.{i} ({variant.name}): {exc}") from None


def plan_variants(config: Any, entry: Any, group_dir: Path, run_id: str) -> list[PlannedVariant]:
    """Each variant's config, entry, directory and run id; writes the group's plan file."""
    planned = []
    for variant in entry.variants:
        v_config, v_entry = _apply(config, entry, variant)
        planned.append(PlannedVariant(variant.name, v_config, v_entry, group_dir / variant.name,
                                      f"{run_id}.{variant.name}"))
    group_dir.mkdir(parents=True, exist_ok=True)
    plan = {
        "benchmark": entry.name,
        "baseline": baseline_of(entry),
        "variants": [{"name": v.name, "description": v.description,
                      "overrides": {**v.solver_overrides, **({"generation": v.generation} if v.generation else {})}}
                     for v in entry.variants],
        "run_id": run_id,
    }
    tmp = group_dir / (PLAN + ".tmp")
    tmp.write_bytes(orjson.dumps(plan, option=orjson.OPT_INDENT_2))
    tmp.replace(group_dir / PLAN)
    return planned


def plan_entry(config: Any, entry: Any, out_dir: Path, run_id: str) -> list[PlannedVariant]:
    """The runs of one benchmark entry: one per variant, or the entry itself
    (named "") in ``out_dir`` when it lists none."""
    if not entry.variants:
        return [PlannedVariant("", config, entry, out_dir, run_id)]
    return plan_variants(config, entry, out_dir, run_id)
