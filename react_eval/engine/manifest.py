"""``run.json``: what a benchmark directory was produced with, for resume and merge.

The config hash covers everything that changes what a rollout does (model and
generation settings, solver limits and prompt, tools, sandbox, benchmark and its
options), and nothing that only changes how fast or where a run goes
(concurrency, output dir, repeats, problem selection, shards).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson

from react_eval.engine.config import BenchmarkEntry, EvalConfig

MANIFEST = "run.json"


def hashed_fields(config: EvalConfig, entry: BenchmarkEntry) -> dict[str, Any]:
    """The harness settings a rollout's behaviour depends on, as plain data."""
    service = config.services[entry.solver.service].model_dump(mode="json")
    model_fields = {k: service.get(k) for k in ("base_url", "model", "protocol", "generation")}
    # NEL-compatibility settings count only when set, so the hashes of runs made without them stay the same
    if service.get("endpoint"):
        model_fields["endpoint"] = service["endpoint"]
    solver = entry.solver.model_dump(mode="json")
    if solver.get("generation") is None:
        solver.pop("generation", None)
    resource = None
    if entry.solver.resource_service:
        resource = config.services[entry.solver.resource_service].model_dump(mode="json")
    sandbox = config.sandbox_for(entry)
    return {
        "model": model_fields,
        "solver": solver,
        "resource_service": resource,
        "sandbox": sandbox.model_dump(mode="json") if sandbox is not None else None,
        "benchmark": {"name": entry.name, "options": entry.options,
                      **({"scoring": entry.scoring.model_dump(mode="json")} if entry.scoring is not None else {}),
                      **({"shuffle_seed": entry.shuffle_seed} if entry.shuffle_seed is not None else {})},
    }


def config_hash(fields: dict[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


def diff_fields(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    """Dot paths whose values differ between two nested mappings."""
    paths = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        path = f"{prefix}{key}"
        if isinstance(a, dict) and isinstance(b, dict):
            paths += diff_fields(a, b, path + ".")
        elif a != b:
            paths.append(path)
    return paths


@dataclass
class Manifest:
    run_id: str
    config_hash: str
    fields: dict[str, Any]
    shard: str | None = None
    created_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat())
    react_eval_version: str = ""

    def write(self, out_dir: Path) -> None:
        out_dir.mkdir(parents=True, exist_ok=True)
        tmp = out_dir / (MANIFEST + ".tmp")
        tmp.write_bytes(orjson.dumps(self.__dict__, option=orjson.OPT_INDENT_2))
        tmp.replace(out_dir / MANIFEST)

    @classmethod
    def read(cls, out_dir: Path) -> "Manifest | None":
        path = out_dir / MANIFEST
        if not path.exists():
            return None
        return cls(**orjson.loads(path.read_bytes()))
