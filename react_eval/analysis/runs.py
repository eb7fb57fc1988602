"""Loading a finished (or partial) benchmark directory for analysis.

A run writes ``<out>/<bench>/{results.jsonl, trajectories.jsonl, eval.json}``.
The commands accept either a benchmark directory or the run's output directory
when it holds exactly one benchmark (or ``bench`` names which).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import orjson

from react_eval.engine.results import read_jsonl
from react_eval.engine.variants import PLAN
from react_eval.metrics import INFRA_KINDS

RESULTS = "results.jsonl"
TRAJECTORIES = "trajectories.jsonl"
EVAL_JSON = "eval.json"


class RunLoadError(ValueError):
    """A directory that holds no (single) benchmark run, worded for the user."""


def bench_dirs(path: Path) -> list[Path]:
    """The benchmark directories at ``path``: itself, or its children with results."""
    path = Path(path)
    if (path / RESULTS).is_file():
        return [path]
    if not path.is_dir():
        raise RunLoadError(f"{path}: no such directory")
    return sorted(child for child in path.iterdir() if (child / RESULTS).is_file())


def variant_groups(path: Path) -> list[Path]:
    """The benchmark runs with variants at ``path`` (``<out>/<bench>/`` holding the plan, one directory per
    variant beneath): ``path`` itself, or its children."""
    path = Path(path)
    if (path / PLAN).is_file():
        return [path]
    if not path.is_dir():
        return []
    return sorted(child for child in path.iterdir() if (child / PLAN).is_file())


def bench_dirs_with_variants(path: Path) -> tuple[list[Path], list[Path]]:
    """Every benchmark directory under a run's output directory, each variant's included, and the variant
    groups found: what ``report`` and ``view`` act on when no single benchmark is named."""
    path = Path(path)
    groups = variant_groups(path)
    found = [] if groups == [path] else bench_dirs(path)
    for group in groups:
        found += bench_dirs(group)
    return found, groups


def resolve_bench_dir(path: Path, bench: str | None = None) -> Path:
    """The one benchmark directory ``path`` means (``bench`` picks one of several)."""
    found = bench_dirs(path)
    if bench is not None:
        chosen = [d for d in found if d.name == bench or _eval_info(d).get("benchmark") == bench]
        if not chosen:
            names = ", ".join(d.name for d in found) or "none"
            raise RunLoadError(f"{path}: no benchmark {bench!r} here (found: {names})")
        return chosen[0]
    if not found:
        raise RunLoadError(f"{path}: no {RESULTS} here or in a subdirectory; is this a run's output directory?")
    if len(found) > 1:
        names = ", ".join(d.name for d in found)
        raise RunLoadError(f"{path} holds several benchmarks ({names}): pass --bench NAME or the benchmark's directory")
    return found[0]


def _eval_info(directory: Path) -> dict[str, Any]:
    path = directory / EVAL_JSON
    if not path.is_file():
        return {}
    try:
        data = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise RunLoadError(f"{path}: not valid JSON ({exc})") from None
    return data if isinstance(data, dict) else {}


@dataclass
class RunData:
    """One benchmark's results: rows (one per task and repeat) and eval.json."""

    path: Path
    rows: list[dict[str, Any]]
    info: dict[str, Any] = field(default_factory=dict)
    #: result rows dropped because an earlier row had the same (task, repeat)
    duplicates: int = 0

    @property
    def benchmark(self) -> str:
        if self.info.get("benchmark"):
            return str(self.info["benchmark"])
        if self.rows:
            return str(self.rows[0].get("benchmark") or self.path.name)
        return self.path.name

    @property
    def model(self) -> str | None:
        if self.info.get("model"):
            return str(self.info["model"])
        models = {r.get("model") for r in self.rows if r.get("model")}
        return ", ".join(sorted(models)) if models else None

    @property
    def run_id(self) -> str | None:
        if self.info.get("run_id"):
            return str(self.info["run_id"])
        return str(self.rows[0]["run_id"]) if self.rows and self.rows[0].get("run_id") else None

    @property
    def label(self) -> str:
        return str(self.path)

    @property
    def scored_rows(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if r.get("error_kind") not in INFRA_KINDS]

    @property
    def task_ids(self) -> set[str]:
        return {str(r["task_id"]) for r in self.rows}

    @property
    def trajectories_path(self) -> Path:
        return self.path / TRAJECTORIES

    def trajectories(self) -> Iterator[dict[str, Any]]:
        """Each trajectory as a dict, streamed (a torn last line is skipped)."""
        yield from iter_jsonl(self.trajectories_path)


def load_run(path: Path, bench: str | None = None) -> RunData:
    directory = resolve_bench_dir(Path(path), bench)
    rows: list[dict[str, Any]] = []
    seen: set[tuple[str, int]] = set()
    duplicates = 0
    for row in read_jsonl(directory / RESULTS):
        key = (str(row["task_id"]), int(row.get("repeat", 0)))
        if key in seen:  # the engine's reconcile keeps the first as well
            duplicates += 1
            continue
        seen.add(key)
        rows.append(row)
    return RunData(directory, rows, _eval_info(directory), duplicates)


def iter_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """Stream a JSONL file line by line; a torn (unterminated, unparsable) last line is skipped."""
    if not path.is_file():
        return
    with open(path, "rb") as fh:
        number = 0
        for line in fh:
            number += 1
            if not line.strip():
                continue
            try:
                yield orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                if not line.endswith(b"\n"):
                    return
                raise ValueError(f"{path}:{number}: corrupt JSON line: {exc}") from None


def trajectory_key(trajectory: dict[str, Any]) -> tuple[str, int] | None:
    """(task_id, repeat) from a trajectory's root ``extra``."""
    extra = trajectory.get("extra") or {}
    if "task_id" not in extra or "repeat" not in extra:
        return None
    try:
        return str(extra["task_id"]), int(extra["repeat"])
    except (TypeError, ValueError):
        return None


def tool_call_records(trajectory: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every tool call of a trajectory with its turn and its observation.

    ``turn`` counts agent steps from 1 (one model call each). Yields dicts with
    turn, step_id, tool, call_id, is_error, exit_code, error_kind, latency_ms,
    truncated.
    """
    turn = 0
    for step in trajectory.get("steps") or ():
        if step.get("source") != "agent":
            continue
        turn += 1
        results = {}
        for result in (step.get("observation") or {}).get("results") or ():
            results[result.get("source_call_id")] = result.get("extra") or {}
        for call in step.get("tool_calls") or ():
            extra = results.get(call.get("tool_call_id"), {})
            yield {
                "turn": turn,
                "step_id": step.get("step_id"),
                "tool": call.get("function_name"),
                "call_id": call.get("tool_call_id"),
                "is_error": bool(extra.get("is_error")),
                "exit_code": extra.get("exit_code"),
                "error_kind": extra.get("error_kind"),
                "latency_ms": extra.get("latency_ms"),
                "truncated": bool(extra.get("truncated")),
                "observed": call.get("tool_call_id") in results,
            }
