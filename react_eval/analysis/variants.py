"""The cross-variant comparison: every variant against the baseline, ranked.

Reads a variant group directory (``<out>/<bench>/`` with ``variants.plan.json``
and one benchmark directory per variant, see :mod:`react_eval.engine.variants`)
and pairs each variant with the baseline through :func:`compare_runs` (McNemar's
exact test, or the task-clustered permutation test with repeats; a bootstrap
CI of the delta). With several variants the p-values are also Holm-adjusted,
so "significant" holds for the family of comparisons, not one at a time.

Writes ``variants.json`` (everything) and ``variants.md`` (the table, then the
per-variant task lists and what each variant changed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from react_eval.analysis.compare import CompareError, Comparison, compare_runs
from react_eval.analysis.runs import RESULTS, RunData, RunLoadError, load_run
from react_eval.engine.variants import PLAN
from react_eval.metrics import summarize


@dataclass
class VariantRow:
    name: str
    is_baseline: bool
    path: str
    summary: dict[str, Any]
    overrides: dict[str, Any] = field(default_factory=dict)
    comparison: dict[str, Any] | None = None
    p_holm: float | None = None
    error: str | None = None

    @property
    def pass_rate(self) -> float | None:
        return self.summary.get("pass@1")

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "is_baseline": self.is_baseline, "path": self.path, "overrides": self.overrides,
                "summary": self.summary, "comparison": self.comparison, "p_holm": self.p_holm, "error": self.error}


@dataclass
class VariantsReport:
    benchmark: str
    baseline: str
    alpha: float
    rows: list[VariantRow]
    ks: list[int]

    def ranked(self) -> list[VariantRow]:
        """Best first: pass@1, then mean reward; variants without results last."""
        def key(row: VariantRow) -> tuple[float, float]:
            return (-(row.pass_rate if row.pass_rate is not None else -1.0),
                    -(row.summary.get("mean_reward") or 0.0))
        return sorted(self.rows, key=key)

    def as_dict(self) -> dict[str, Any]:
        return {"benchmark": self.benchmark, "baseline": self.baseline, "alpha": self.alpha, "ks": self.ks,
                "ranking": [r.name for r in self.ranked()], "variants": [r.as_dict() for r in self.rows]}


def holm(p_values: list[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (step-down, monotone, capped at 1)."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted = [1.0] * len(p_values)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def read_plan(group_dir: Path) -> dict[str, Any]:
    path = Path(group_dir) / PLAN
    if not path.is_file():
        raise RunLoadError(f"{group_dir}: no {PLAN} here; is this the directory of a benchmark run with variants?")
    return orjson.loads(path.read_bytes())


def _slim(c: Comparison) -> dict[str, Any]:
    """What the table needs from a comparison (the task lists stay, details go)."""
    return {
        "paired_tasks": c.paired_tasks, "base_pass_rate": c.base_pass_rate, "cand_pass_rate": c.cand_pass_rate,
        "delta": c.delta, "delta_ci95": list(c.delta_ci95), "reward_delta": c.reward_delta,
        "reward_delta_ci95": list(c.reward_delta_ci95), "test": c.test, "significant": c.significant,
        "fixed": c.fixed, "broken": c.broken, "improved": [i["task_id"] for i in c.improved],
        "regressed": [i["task_id"] for i in c.regressed], "flaky": [i["task_id"] for i in c.flaky],
        "changed": [{"field": ch.field, "base": ch.base, "cand": ch.cand} for ch in c.config_diff if ch.counted],
        "warnings": c.warnings,
    }


def compare_variants(group_dir: Path, *, alpha: float = 0.05, seed: int = 0) -> VariantsReport:
    """Every variant of a group directory against its baseline."""
    group_dir = Path(group_dir)
    plan = read_plan(group_dir)
    baseline = plan["baseline"]
    runs: dict[str, RunData] = {}
    rows: list[VariantRow] = []
    for item in plan["variants"]:
        name = item["name"]
        path = group_dir / name
        row = VariantRow(name, name == baseline, str(path), {}, item.get("overrides") or {})
        if (path / RESULTS).is_file():
            runs[name] = load_run(path)
            row.summary = summarize(runs[name].rows)
        else:
            row.error = "no results (the variant did not run)"
        rows.append(row)
    base = runs.get(baseline)
    for row in rows:
        if row.is_baseline or row.name not in runs:
            continue
        if base is None:
            row.error = f"baseline {baseline!r} has no results to compare with"
            continue
        try:
            row.comparison = _slim(compare_runs(base, runs[row.name], allow_partial=True, alpha=alpha, seed=seed))
        except CompareError as exc:
            row.error = str(exc)
    compared = [r for r in rows if r.comparison is not None]
    for row, p in zip(compared, holm([r.comparison["test"]["p_value"] for r in compared])):
        row.p_holm = p
    ks = sorted({int(k.split("@")[1]) for r in rows for k in r.summary if k.startswith("pass@")})
    return VariantsReport(plan["benchmark"], baseline, alpha, rows, ks)


# ---------------------------------------------------------------- output


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def table_rows(report: VariantsReport) -> tuple[list[str], list[list[str]]]:
    """Header and cells of the ranked table (shared by markdown and the terminal)."""
    header = ["rank", "variant"] + [f"pass@{k}" for k in report.ks] + [
        "mean reward", "Δ pass@1 vs baseline (95% CI)", "test p", "p (Holm)", "fixed", "broken", "scored / infra"]
    cells = []
    for rank, row in enumerate(report.ranked(), 1):
        s, c = row.summary, row.comparison
        name = row.name + (" (baseline)" if row.is_baseline else "")
        passes = [_pct(s.get(f"pass@{k}")) for k in report.ks]
        reward = "-" if s.get("mean_reward") is None else f"{s['mean_reward']:.4f}"
        if c is not None:
            lo, hi = c["delta_ci95"]
            delta = f"{100 * c['delta']:+.1f} pp ({100 * lo:+.1f} .. {100 * hi:+.1f})"
            mark = " *" if row.p_holm is not None and row.p_holm < report.alpha else ""
            test = f"{c['test']['p_value']:.3g} ({'McNemar' if c['test']['name'] == 'mcnemar_exact' else 'perm.'})"
            extra = [delta, test, f"{row.p_holm:.3g}{mark}", str(len(c["fixed"])), str(len(c["broken"]))]
        elif row.is_baseline:
            extra = ["—", "—", "—", "—", "—"]
        else:
            extra = [row.error or "-", "-", "-", "-", "-"]
        counts = f"{s.get('scored_rollouts', 0)} / {s.get('infra_failures', 0)}" if s else "-"
        cells.append([str(rank), name] + passes + [reward] + extra + [counts])
    return header, cells


def format_markdown(report: VariantsReport) -> str:
    header, cells = table_rows(report)
    out = [f"## Variants: {report.benchmark} (baseline: {report.baseline})", "",
           "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in cells]
    out += ["", f"`*`: significant at α = {report.alpha} after Holm's correction for "
            f"{sum(r.comparison is not None for r in report.rows)} comparison(s). Pairs are by task; "
            "infrastructure failures are left out.", ""]
    for row in report.rows:
        out.append(f"### {row.name}{' (baseline)' if row.is_baseline else ''}")
        if row.overrides:
            out.append("overrides: " + ", ".join(f"`{k}` = {_brief(v)}" for k, v in row.overrides.items()))
        c = row.comparison
        if c is not None:
            changed = ", ".join(f"`{ch['field']}`" for ch in c["changed"]) or "nothing that counts"
            out.append(f"changed vs the baseline: {changed}")
            for title in ("fixed", "broken", "improved", "regressed"):
                out.append(f"- {title} ({len(c[title])}): {', '.join(f'`{t}`' for t in c[title]) or '-'}")
            out += [f"> warning: {w}" for w in c["warnings"]]
        if row.error:
            out.append(f"> {row.error}")
        out.append("")
    return "\n".join(out)


def _brief(value: Any, limit: int = 70) -> str:
    text = " ".join(str(value).split())
    return (text[: limit - 3] + "...") if len(text) > limit else text


def write_variants(group_dir: Path, report: VariantsReport) -> tuple[Path, Path]:
    group_dir = Path(group_dir)
    md, js = group_dir / "variants.md", group_dir / "variants.json"
    md.write_text(format_markdown(report))
    js.write_bytes(orjson.dumps(report.as_dict(), option=orjson.OPT_INDENT_2))
    return md, js
