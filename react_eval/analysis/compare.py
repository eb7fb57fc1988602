"""``react-eval compare BASE CAND``: is a difference between two runs real?

Both runs should be the same benchmark with one thing varied (a harness
prompt, a model, a tool set). Results are paired by task; infrastructure
failures are left out.

Statistics (on the pass rate; the mean reward is reported alongside):

* one scored rollout per task in both runs: McNemar's exact test -- under the
  null hypothesis the discordant tasks (fixed ``c``, broken ``b``) split
  Binomial(b + c, 1/2); two-sided p = min(1, 2 * P[X <= min(b, c)]);
* repeats: a paired, task-clustered permutation test -- swapping the two runs'
  labels for all rollouts of a task flips the sign of that task's difference
  ``d_t = rate_cand - rate_base``; the statistic is ``mean(d_t)``, the p-value
  two-sided, exact (all 2^m sign patterns of the m non-zero d_t) when m <= 16,
  else from seeded Monte Carlo draws, ``(1 + hits) / (1 + draws)``;
* the delta's 95% CI: a paired percentile bootstrap resampling tasks.

Task lists, each task in at most one: *fixed* -- never passed in BASE, always
in CAND; *broken* -- the reverse; *improved* / *regressed* -- any other change
of pass rate; *flaky* -- passed sometimes (0 < rate < 1) in either run with no
change of pass rate. Runs of different benchmarks are refused.
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import asdict, dataclass, field
from math import comb
from statistics import mean
from typing import Any

import numpy as np

from react_eval.analysis.config_diff import ConfigChange, diff_configs
from react_eval.analysis.runs import RunData
from react_eval.metrics import bootstrap_ci

EXACT_PERMUTATION_LIMIT = 16
PERMUTATIONS = 10_000
BOOTSTRAP_RESAMPLES = 10_000


class CompareError(ValueError):
    """The two runs cannot be compared as asked (e.g. different task sets)."""


@dataclass
class TaskPair:
    task_id: str
    base_n: int
    base_passed: int
    cand_n: int
    cand_passed: int
    base_reward: float
    cand_reward: float

    @property
    def base_rate(self) -> float:
        return self.base_passed / self.base_n

    @property
    def cand_rate(self) -> float:
        return self.cand_passed / self.cand_n

    @property
    def delta(self) -> float:
        return self.cand_rate - self.base_rate

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "base_rate": self.base_rate, "cand_rate": self.cand_rate, "delta": self.delta}


@dataclass
class Comparison:
    benchmark: str
    base: dict[str, Any]
    cand: dict[str, Any]
    paired_tasks: int
    only_base: list[str]
    only_cand: list[str]
    dropped_tasks: list[str]
    base_pass_rate: float
    cand_pass_rate: float
    delta: float
    delta_ci95: tuple[float, float]
    base_mean_reward: float
    cand_mean_reward: float
    reward_delta: float
    reward_delta_ci95: tuple[float, float]
    test: dict[str, Any]
    alpha: float
    significant: bool
    fixed: list[str]
    broken: list[str]
    improved: list[dict[str, Any]]
    regressed: list[dict[str, Any]]
    flaky: list[dict[str, Any]]
    config_diff: list[ConfigChange]
    warnings: list[str] = field(default_factory=list)
    max_drop: float | None = None
    regression: bool = False

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["delta_ci95"] = list(self.delta_ci95)
        data["reward_delta_ci95"] = list(self.reward_delta_ci95)
        return data


# ---------------------------------------------------------------- statistics


def mcnemar_exact(broken: int, fixed: int) -> float:
    """Two-sided exact McNemar p-value from the two discordant counts."""
    n = broken + fixed
    if n == 0:
        return 1.0
    tail = sum(comb(n, i) for i in range(min(broken, fixed) + 1)) / 2**n
    return min(1.0, 2.0 * tail)


def paired_permutation_test(
    deltas: list[float] | np.ndarray, *, permutations: int = PERMUTATIONS, seed: int = 0,
) -> dict[str, Any]:
    """Two-sided sign-flip test of mean(deltas) == 0 (clusters = tasks)."""
    d = np.asarray(deltas, dtype=float)
    observed = float(d.mean()) if d.size else 0.0
    nonzero = d[d != 0]
    m = nonzero.size
    tol = 1e-12
    if m == 0:
        return {"p_value": 1.0, "exact": True, "draws": 1, "statistic": observed}
    total = float(d.size)
    if m <= EXACT_PERMUTATION_LIMIT:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=m)))
        stats = signs @ nonzero / total
        hits = int(np.sum(np.abs(stats) >= abs(observed) - tol))
        return {"p_value": hits / len(stats), "exact": True, "draws": len(stats), "statistic": observed}
    rng = np.random.default_rng(seed)
    hits = 0
    done = 0
    while done < permutations:
        size = min(1000, permutations - done)
        signs = rng.choice((-1.0, 1.0), size=(size, m))
        stats = signs @ nonzero / total
        hits += int(np.sum(np.abs(stats) >= abs(observed) - tol))
        done += size
    return {"p_value": (1 + hits) / (1 + permutations), "exact": False, "draws": permutations, "statistic": observed}


# ---------------------------------------------------------------- pairing


def _by_task(run: RunData) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in run.scored_rows:
        groups.setdefault(str(row["task_id"]), []).append(row)
    return groups


def _reward(row: dict[str, Any]) -> float:
    return float(row.get("reward") or 0.0)


def _describe(run: RunData) -> dict[str, Any]:
    scored = run.scored_rows
    return {
        "path": str(run.path),
        "run_id": run.run_id,
        "model": run.model,
        "benchmark": run.benchmark,
        "rollouts": len(run.rows),
        "scored_rollouts": len(scored),
        "infra_failures": len(run.rows) - len(scored),
        "tasks": len(run.task_ids),
    }


def compare_runs(
    base: RunData,
    cand: RunData,
    *,
    allow_partial: bool = False,
    alpha: float = 0.05,
    seed: int = 0,
    resamples: int = BOOTSTRAP_RESAMPLES,
    permutations: int = PERMUTATIONS,
    max_drop: float | None = None,
) -> Comparison:
    """Pair two runs by task and test the difference in pass rate."""
    warnings: list[str] = []
    check_same_benchmark(base, cand)
    only_base = sorted(base.task_ids - cand.task_ids)
    only_cand = sorted(cand.task_ids - base.task_ids)
    if (only_base or only_cand) and not allow_partial:
        raise CompareError(
            "the task sets differ: "
            f"{len(only_base)} task(s) only in BASE ({_preview(only_base)}), "
            f"{len(only_cand)} only in CAND ({_preview(only_cand)}); "
            "compare the same tasks, or pass --allow-partial to use the tasks both ran"
        )
    if only_base or only_cand:
        warnings.append(
            f"--allow-partial: comparing the {len(base.task_ids & cand.task_ids)} common tasks "
            f"({len(only_base)} only in BASE, {len(only_cand)} only in CAND left out)"
        )
    base_groups, cand_groups = _by_task(base), _by_task(cand)
    common = sorted(base.task_ids & cand.task_ids)
    pairs: list[TaskPair] = []
    dropped: list[str] = []
    for task in common:
        b, c = base_groups.get(task), cand_groups.get(task)
        if not b or not c:
            dropped.append(task)  # every rollout of the task failed for infrastructure reasons
            continue
        pairs.append(TaskPair(
            task, len(b), sum(bool(r.get("passed")) for r in b), len(c), sum(bool(r.get("passed")) for r in c),
            mean(map(_reward, b)), mean(map(_reward, c)),
        ))
    if dropped:
        warnings.append(f"{len(dropped)} task(s) left out: no scored rollout in one of the runs ({_preview(dropped)})")
    for name, run in (("BASE", base), ("CAND", cand)):
        infra = len(run.rows) - len(run.scored_rows)
        if infra:
            warnings.append(f"{name}: {infra} rollout(s) failed for infrastructure reasons and are excluded")
    if not pairs:
        raise CompareError("no task has scored rollouts in both runs: nothing to compare")

    base_rates = np.array([p.base_rate for p in pairs])
    cand_rates = np.array([p.cand_rate for p in pairs])
    deltas = cand_rates - base_rates
    reward_deltas = np.array([p.cand_reward - p.base_reward for p in pairs])
    single = all(p.base_n == 1 and p.cand_n == 1 for p in pairs)
    fixed = [p.task_id for p in pairs if p.base_passed == 0 and p.cand_passed == p.cand_n]
    broken = [p.task_id for p in pairs if p.base_passed == p.base_n and p.cand_passed == 0]
    if single:
        p_value = mcnemar_exact(len(broken), len(fixed))
        test = {"name": "mcnemar_exact", "p_value": p_value, "fixed": len(fixed), "broken": len(broken),
                "discordant": len(fixed) + len(broken)}
    else:
        result = paired_permutation_test(deltas, permutations=permutations, seed=seed)
        test = {"name": "paired_permutation", "clusters": "task", **result}
    ci = bootstrap_ci(np.column_stack([deltas, reward_deltas]), resamples=resamples, seed=seed)
    moved = {p.task_id for p in pairs if p.task_id in fixed or p.task_id in broken}
    improved = [p.as_dict() for p in sorted(pairs, key=lambda p: -p.delta) if p.delta > 0 and p.task_id not in moved]
    regressed = [p.as_dict() for p in sorted(pairs, key=lambda p: p.delta) if p.delta < 0 and p.task_id not in moved]
    flaky = [p.as_dict() for p in pairs
             if p.delta == 0 and p.task_id not in moved and (0 < p.base_rate < 1 or 0 < p.cand_rate < 1)]

    config_diff = diff_configs(base, cand)
    counted = [c.field for c in config_diff if c.counted]
    if len(counted) > 1:
        warnings.append(
            f"{len(counted)} settings differ ({', '.join(counted)}): vary one thing at a time, "
            "or the difference cannot be attributed to any one of them"
        )
    if not base.info or not cand.info:
        warnings.append("eval.json missing for " + (" and ".join(
            n for n, r in (("BASE", base), ("CAND", cand)) if not r.info)) + ": configs not compared")

    delta = float(deltas.mean())
    comparison = Comparison(
        benchmark=cand.benchmark,
        base=_describe(base),
        cand=_describe(cand),
        paired_tasks=len(pairs),
        only_base=only_base,
        only_cand=only_cand,
        dropped_tasks=dropped,
        base_pass_rate=float(base_rates.mean()),
        cand_pass_rate=float(cand_rates.mean()),
        delta=delta,
        delta_ci95=ci[0],
        base_mean_reward=mean(p.base_reward for p in pairs),
        cand_mean_reward=mean(p.cand_reward for p in pairs),
        reward_delta=float(reward_deltas.mean()),
        reward_delta_ci95=ci[1],
        test=test,
        alpha=alpha,
        significant=test["p_value"] < alpha,
        fixed=fixed,
        broken=broken,
        improved=improved,
        regressed=regressed,
        flaky=flaky,
        config_diff=config_diff,
        warnings=warnings,
        max_drop=max_drop,
    )
    if max_drop is not None and delta < -max_drop:
        comparison.regression = True
    return comparison


def check_same_benchmark(base: RunData, cand: RunData) -> None:
    """Refuse two runs of different benchmarks: their tasks pair by name only by accident."""
    if base.benchmark != cand.benchmark:
        raise CompareError(f"the runs are of different benchmarks ({base.benchmark} vs {cand.benchmark}): "
                           "compare runs of the same benchmark")


def task_categories(c: Comparison, tasks: set[str]) -> dict[str, str]:
    """Each task's list (fixed, broken, improved, regressed, flaky), ``same`` when
    paired and in none, ``unpaired`` when not compared (in one run only, or no
    scored rollout in one of them)."""
    out = {t: "unpaired" for t in tasks}
    paired = set(tasks) - set(c.only_base) - set(c.only_cand) - set(c.dropped_tasks)
    out.update({t: "same" for t in paired})
    out.update({t: "fixed" for t in c.fixed})
    out.update({t: "broken" for t in c.broken})
    for name in ("improved", "regressed", "flaky"):
        out.update({item["task_id"]: name for item in getattr(c, name)})
    return out


def _preview(items: list[str], limit: int = 5) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f", ... (+{len(items) - limit})" if len(items) > limit else "")


def parse_fraction(text: str) -> float:
    """``0.05`` or ``5%`` -> 0.05 (for --max-drop)."""
    value = text.strip()
    try:
        number = float(value[:-1]) / 100 if value.endswith("%") else float(value)
    except ValueError:
        raise ValueError(f"expected a fraction like 0.05 or a percentage like 5%, got {text!r}") from None
    if not 0 <= number <= 1:
        raise ValueError(f"expected a value between 0 and 1 (or 0% and 100%), got {text!r}")
    return number


# ---------------------------------------------------------------- output


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def _signed_pct(value: float) -> str:
    return f"{100 * value:+.1f} pp"


def _short(value: Any, limit: int = 60) -> str:
    """A one-line preview; a long text also gets its length and a digest, so two
    long prompts that start alike still read as different."""
    text = value if isinstance(value, str) else repr(value)
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    digest = hashlib.sha1(text.encode()).hexdigest()[:8]
    return f"{flat[: limit - 3]}... [{len(text)} chars, sha1 {digest}]"


def _verdict(c: Comparison) -> str:
    p = c.test["p_value"]
    if c.significant:
        way = "better" if c.delta > 0 else "worse"
        return f"CAND is significantly {way} (p = {p:.4g} < {c.alpha})"
    return f"no significant difference (p = {p:.4g} >= {c.alpha})"


def _test_line(c: Comparison) -> str:
    t = c.test
    if t["name"] == "mcnemar_exact":
        return f"McNemar exact test: fixed {t['fixed']}, broken {t['broken']}, p = {t['p_value']:.4g}"
    how = "exact" if t["exact"] else f"{t['draws']} random sign flips"
    return f"paired task-clustered permutation test ({how}): p = {t['p_value']:.4g}"


def format_text(c: Comparison) -> str:
    lines = [
        f"compare {c.benchmark}: {c.paired_tasks} paired tasks",
        f"  BASE {c.base['path']}  model={c.base['model']}  scored={c.base['scored_rollouts']}"
        f"  infra excluded={c.base['infra_failures']}",
        f"  CAND {c.cand['path']}  model={c.cand['model']}  scored={c.cand['scored_rollouts']}"
        f"  infra excluded={c.cand['infra_failures']}",
        "",
        f"pass rate   {_pct(c.base_pass_rate)} -> {_pct(c.cand_pass_rate)}   delta {_signed_pct(c.delta)}"
        f"  (95% CI {_signed_pct(c.delta_ci95[0])} .. {_signed_pct(c.delta_ci95[1])})",
        f"mean reward {c.base_mean_reward:.4f} -> {c.cand_mean_reward:.4f}   delta {c.reward_delta:+.4f}"
        f"  (95% CI {c.reward_delta_ci95[0]:+.4f} .. {c.reward_delta_ci95[1]:+.4f})",
        _test_line(c),
        _verdict(c),
    ]
    if c.max_drop is not None:
        state = "REGRESSION" if c.regression else "ok"
        lines.append(f"gate --max-drop {_pct(c.max_drop)}: {state}")
    lines += ["", f"fixed ({len(c.fixed)}): {_preview(c.fixed, 20) or '-'}",
              f"broken ({len(c.broken)}): {_preview(c.broken, 20) or '-'}"]
    for title, items in (("improved", c.improved), ("regressed", c.regressed), ("flaky", c.flaky)):
        lines.append(f"{title} ({len(items)}):" + ("" if items else " -"))
        for item in items[:20]:
            lines.append(f"  {item['task_id']}: {item['base_passed']}/{item['base_n']} -> "
                         f"{item['cand_passed']}/{item['cand_n']}")
        if len(items) > 20:
            lines.append(f"  ... (+{len(items) - 20})")
    lines.append("")
    if c.config_diff:
        lines.append("config differences:")
        for change in c.config_diff:
            mark = "" if change.counted else "  (operational)"
            lines.append(f"  {change.field}: {_short(change.base)} -> {_short(change.cand)}{mark}")
    else:
        lines.append("config differences: none")
    for warning in c.warnings:
        lines.append(f"warning: {warning}")
    return "\n".join(lines) + "\n"


def _md_cell(value: Any) -> str:
    return _short(value, 80).replace("|", "\\|")


def format_markdown(c: Comparison) -> str:
    out = [
        f"## Compare: {c.benchmark}",
        "",
        "| | BASE | CAND | delta (95% CI) |",
        "|---|---|---|---|",
        f"| run | `{c.base['path']}` | `{c.cand['path']}` | |",
        f"| model | {c.base['model']} | {c.cand['model']} | |",
        f"| scored rollouts (infra excluded) | {c.base['scored_rollouts']} ({c.base['infra_failures']})"
        f" | {c.cand['scored_rollouts']} ({c.cand['infra_failures']}) | |",
        f"| pass rate | {_pct(c.base_pass_rate)} | {_pct(c.cand_pass_rate)} | {_signed_pct(c.delta)}"
        f" ({_signed_pct(c.delta_ci95[0])} .. {_signed_pct(c.delta_ci95[1])}) |",
        f"| mean reward | {c.base_mean_reward:.4f} | {c.cand_mean_reward:.4f} | {c.reward_delta:+.4f}"
        f" ({c.reward_delta_ci95[0]:+.4f} .. {c.reward_delta_ci95[1]:+.4f}) |",
        "",
        f"{_test_line(c)} over {c.paired_tasks} paired tasks. **{_verdict(c)}**",
        "",
    ]
    if c.max_drop is not None:
        out += [f"Gate `--max-drop {_pct(c.max_drop)}`: **{'REGRESSION' if c.regression else 'ok'}**", ""]
    out += [f"- fixed ({len(c.fixed)}): {', '.join(f'`{t}`' for t in c.fixed) or '-'}",
            f"- broken ({len(c.broken)}): {', '.join(f'`{t}`' for t in c.broken) or '-'}"]
    for title, items in (("improved", c.improved), ("regressed", c.regressed), ("flaky", c.flaky)):
        listed = ", ".join(f"`{i['task_id']}` {i['base_passed']}/{i['base_n']}→{i['cand_passed']}/{i['cand_n']}"
                           for i in items)
        out.append(f"- {title} ({len(items)}): {listed or '-'}")
    out.append("")
    if c.config_diff:
        out += ["| config field | BASE | CAND | counted |", "|---|---|---|---|"]
        out += [f"| `{ch.field}` | {_md_cell(ch.base)} | {_md_cell(ch.cand)} | {'yes' if ch.counted else 'no'} |"
                for ch in c.config_diff]
    else:
        out.append("No config differences.")
    if c.warnings:
        out += [""] + [f"> **warning:** {w}" for w in c.warnings]
    return "\n".join(out) + "\n"


def format_comparison(c: Comparison, fmt: str) -> str:
    if fmt == "json":
        import orjson

        return orjson.dumps(c.as_dict(), option=orjson.OPT_INDENT_2).decode() + "\n"
    if fmt in ("md", "markdown"):
        return format_markdown(c)
    if fmt == "text":
        return format_text(c)
    raise ValueError(f"unknown format {fmt!r}: text, markdown or json")
