"""``react-eval validate``: check a benchmark with reference policies.

Three built-in policies run every task through the full pipeline (the real
loop, tools, sandbox and verifier): ``oracle`` replays each task's reference
solution and must score 1.0; ``empty`` answers at once with nothing and must
score 0.0; ``tampering`` fixes nothing but plants test infrastructure and
answers with code that exits the checker early, and must score 0.0 too. A
rollout that ends in an infrastructure or verifier error has no score: it is
reported as such, never counted as a policy scoring above 0 (or below 1).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from react_eval.benchmarks.oracle import EMPTY_URL, ORACLE_URL, TAMPER_URL
from react_eval.engine.config import BenchmarkEntry, EvalConfig
from react_eval.engine.defaults import new_announcements
from react_eval.engine.progress import Progress
from react_eval.engine.results import read_jsonl
from react_eval.engine.run import bench_dir_name, new_run_id, run_benchmark

POLICIES = {"oracle": ORACLE_URL, "empty": EMPTY_URL, "tampering": TAMPER_URL}
#: policies that must score 0 (the oracle must score 1)
ZERO_POLICIES = ("empty", "tampering")


def validation_config(bench: str, *, options: dict[str, Any] | None = None,
                      sandbox: dict[str, Any] | None = None) -> dict[str, Any]:
    """Config data with one service per reference policy and one benchmark entry
    (served by the oracle; the empty run swaps the service)."""
    entry: dict[str, Any] = {"name": bench, "solver": {"type": "tool_calling", "service": "oracle"}}
    if options:
        entry["options"] = dict(options)
    data: dict[str, Any] = {
        "services": {name: {"type": "api", "base_url": url, "model": name} for name, url in POLICIES.items()},
        "benchmarks": [entry],
    }
    if sandbox is not None:
        data["sandboxes"] = {"default": sandbox}
        entry["sandbox"] = "default"
    return data


@dataclass
class TaskCheck:
    task_id: str
    gold: float | None = None
    empty: float | None = None
    tampering: float | None = None
    gold_error: str | None = None
    empty_error: str | None = None
    tampering_error: str | None = None
    gold_details: dict[str, Any] = field(default_factory=dict)
    #: the grader flagged the tampering policy's rollout (e.g. reset a conftest.py)
    tampering_flagged: bool = False

    @property
    def gold_ok(self) -> bool:
        return self.gold is not None and self.gold >= 1.0

    def scored_above_zero(self, policy: str) -> bool:
        value = getattr(self, policy)
        return value is not None and value > 0.0

    def unscored(self, policy: str) -> bool:
        """The policy's rollout ended without a score (an infrastructure or verifier error)."""
        return getattr(self, policy) is None

    @property
    def empty_ok(self) -> bool:
        return self.empty is not None and self.empty <= 0.0

    @property
    def tampering_ok(self) -> bool:
        return self.tampering is not None and self.tampering <= 0.0

    def problems(self) -> list[str]:
        out = []
        for policy in ("gold", *ZERO_POLICIES):
            value, error = getattr(self, policy), getattr(self, f"{policy}_error")
            why = f" ({error})" if error else ""
            if value is None:
                out.append(f"{policy}: no score, {error or 'the rollout has no reward'}")
            elif policy == "gold" and not self.gold_ok:
                out.append(f"gold scores {value}{why}")
            elif policy != "gold" and value > 0.0:
                out.append(f"{policy} scores {value}{why}")
        return out


@dataclass
class ValidationReport:
    benchmark: str
    out_dir: Path
    tasks: list[TaskCheck]

    @property
    def gold_failures(self) -> list[TaskCheck]:
        return [t for t in self.tasks if not t.gold_ok]

    @property
    def empty_passes(self) -> list[TaskCheck]:
        """Tasks where the empty answer earned a reward above 0 (errors are not passes)."""
        return [t for t in self.tasks if t.scored_above_zero("empty")]

    @property
    def tampering_passes(self) -> list[TaskCheck]:
        return [t for t in self.tasks if t.scored_above_zero("tampering")]

    @property
    def unscored(self) -> list[TaskCheck]:
        """Tasks where some policy's rollout ended in an infrastructure or verifier error."""
        return [t for t in self.tasks if any(t.unscored(p) for p in ("gold", *ZERO_POLICIES))]

    @property
    def ok(self) -> bool:
        return bool(self.tasks) and not any(t.problems() for t in self.tasks)

    def rate(self, which: str) -> float:
        """Share of tasks at 1.0 under the oracle ("gold"), or above 0.0 under
        the empty or tampering policy."""
        if not self.tasks:
            return 0.0
        if which == "gold":
            return sum(t.gold_ok for t in self.tasks) / len(self.tasks)
        return sum(t.scored_above_zero(which) for t in self.tasks) / len(self.tasks)


def _why(row: dict[str, Any]) -> str | None:
    if row.get("error_kind") and row.get("reward") is None:
        return f"{row['error_kind']}: {row.get('error') or ''}".strip()
    details = row.get("verification") or {}
    return details.get("error") or details.get("capture_error") or row.get("error")


async def validate_benchmark(config: EvalConfig, out_root: Path, *, progress: Progress | None = None) -> ValidationReport:
    """Run the oracle, the empty and the tampering policy over ``config.benchmarks[0]``."""
    entry: BenchmarkEntry = config.benchmarks[0]
    run_id = new_run_id()
    new_announcements()
    out_dir = Path(out_root) / f"validate-{run_id}" / bench_dir_name(entry.name)
    checks: dict[str, TaskCheck] = {}
    for policy in POLICIES:
        if progress is not None and progress.enabled:  # else its pass rate reads as a result (0% is right for two)
            expected = "1.0" if policy == "oracle" else "0"
            print(f"[{entry.name}] policy {policy!r} (must score {expected} on every task)", file=progress.stream,
                  flush=True)
        policy_entry = entry.model_copy(update={"solver": entry.solver.model_copy(update={"service": policy}),
                                                "repeats": 1})
        run = await run_benchmark(config, policy_entry, out_dir / policy, run_id=f"{run_id}-{policy}",
                                  progress=progress)
        if run.error:
            raise RuntimeError(f"the {policy} run failed: {run.error}")
        field_name = "gold" if policy == "oracle" else policy
        for row in read_jsonl(out_dir / policy / "results.jsonl"):
            check = checks.setdefault(row["task_id"], TaskCheck(row["task_id"]))
            setattr(check, field_name, row.get("reward"))
            setattr(check, f"{field_name}_error", _why(row))
            details = row.get("verification") or {}
            if policy == "oracle":
                check.gold_details = details
            if policy == "tampering":
                check.tampering_flagged = "tampering" in (details.get("flags") or [])
    return ValidationReport(entry.name, out_dir, sorted(checks.values(), key=lambda c: c.task_id))
