"""Scores computed from result rows (the summary printed after a run, eval.json).

Every number here is computed over *scored* rollouts: rows whose error kind is
an infrastructure failure (:data:`react_eval.types.INFRA_ERROR_KINDS`) say
nothing about the agent, so they are left out of every denominator and only
counted (``infra_failures``, ``infra_failures_by_kind``).

Definitions (``n`` scored rollouts of a task, ``c`` of them passed):

* ``pass@k`` -- the unbiased estimator of Chen et al. (2021),
  ``1 - C(n-c, k) / C(n, k)``: the chance that at least one of ``k`` attempts
  drawn without replacement passes. Averaged over tasks, for every
  ``k <= min n`` over tasks.
* ``pass^k`` -- ``C(c, k) / C(n, k)``: the chance that *all* ``k`` attempts
  pass (the tau-bench reliability measure), unbiased for ``p**k``.
* ``majority@k`` -- the chance that a majority vote over ``k`` attempts picks
  a passing answer. Each rollout votes with its :func:`answer_key`; rollouts
  without one do not vote; ties are broken uniformly at random; a subset with
  no vote scores 0. Computed exactly (multivariate hypergeometric over answer
  groups; closed form when all answers differ) or, when that sum is too large,
  by seeded Monte Carlo over subsets (at least 500 draws per task).
  See :func:`answer_key` for how a rollout's answer is extracted.
* ``mean_reward_se`` -- standard error of the mean reward across runs: the
  rollouts with repeat index ``r`` form run ``r``; ``stdev(run means)/sqrt(R)``
  (None with fewer than two repeats). ``mean_reward_se_tasks`` is the
  task-clustered standard error, ``stdev(task means)/sqrt(T)``.
* ``within_task_variance`` -- the mean over tasks (with two or more scored
  rollouts) of the sample variance of the reward.
* ``ci95`` -- percentile bootstrap 95% intervals, resampling tasks with
  replacement (seeded, so eval.json is reproducible).
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from itertools import combinations
from math import comb
from statistics import mean
from typing import Any, Iterable, Sequence

import numpy as np

from react_eval.benchmarks.answers import extract_answer, normalize
from react_eval.types import INFRA_ERROR_KINDS, Usage

INFRA_KINDS: frozenset[str] = frozenset(k.value for k in INFRA_ERROR_KINDS)

#: the per-rollout numbers whose distributions the summary reports
DISTRIBUTION_FIELDS: tuple[str, ...] = (
    "turns",
    "tool_calls",
    "tool_errors",
    *Usage.TOKEN_FIELDS,
    "total_tokens",
    *Usage.LATENCY_FIELDS,
    "wall_ms",
)

BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 0
_BOOTSTRAP_CHUNK = 1000
#: above this many answer-count vectors majority@k is estimated by Monte Carlo
_MAJORITY_EXACT_LIMIT = 256
_MAJORITY_SAMPLES = 4000


# ---------------------------------------------------------------- estimators


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of Chen et al. (2021): 1 - C(n-c, k) / C(n, k)."""
    _check(n, c, k)
    if n - c < k:
        return 1.0
    return 1.0 - comb(n - c, k) / comb(n, k)


def pass_hat_k(n: int, c: int, k: int) -> float:
    """pass^k: the chance that k attempts drawn from n (c passing) all pass, C(c, k) / C(n, k)."""
    _check(n, c, k)
    return comb(c, k) / comb(n, k)


def _check(n: int, c: int, k: int) -> None:
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if k > n:
        raise ValueError(f"pass@{k} needs at least {k} samples, got {n}")
    if not 0 <= c <= n:
        raise ValueError(f"the number passed must be within 0..{n}, got {c}")


def majority_at_k(keys: Sequence[str | None], passed: Sequence[bool], k: int, *, seed: int = 0) -> float:
    """The chance that a majority vote over k of these attempts picks a passing answer.

    ``keys[i]`` is attempt i's answer (None: it gave none and does not vote);
    ``passed[i]`` whether it passed. Attempts with the same key form a group; a
    drawn group's score is the share of its members that passed (the same for
    every member when the verifier judges the answer alone). Ties between the
    most common answers are broken uniformly at random.
    """
    _check(len(keys), sum(bool(p) for p in passed), k)
    return majority_curve(keys, passed, k, seed=seed)[k - 1]


def majority_curve(keys: Sequence[str | None], passed: Sequence[bool], kmax: int, *, seed: int = 0,
                   draws: int = _MAJORITY_SAMPLES) -> list[float]:
    """:func:`majority_at_k` for k = 1..kmax, sharing the work between the ks.

    Exact when every answer is distinct (each drawn voter ties with the others,
    so the score is the mean voter score times P(some voter is drawn)) or when
    the sum over how many attempts each answer group contributes is small;
    otherwise estimated from ``draws`` seeded random draws.
    """
    n = len(keys)
    if len(passed) != n:
        raise ValueError("keys and passed differ in length")
    _check(n, sum(bool(p) for p in passed), kmax)
    sizes: Counter[str | None] = Counter(keys)
    wins: Counter[str | None] = Counter(key for key, ok in zip(keys, passed) if ok)
    groups = [(size, wins[key] / size) for key, size in sizes.items() if key is not None]
    abstain = sizes.get(None, 0)
    if not groups:
        return [0.0] * kmax
    if all(size == 1 for size, _ in groups):
        voter_mean = sum(value for _, value in groups) / len(groups)
        return [voter_mean * (1 - comb(abstain, k) / comb(n, k)) for k in range(1, kmax + 1)]
    curve: list[float] = []
    sampled: list[float] | None = None
    for k in range(1, kmax + 1):
        cost = math.prod(min(size, k) + 1 for size, _ in groups) * (min(abstain, k) + 1)
        if cost <= _MAJORITY_EXACT_LIMIT:
            curve.append(_majority_exact(groups, abstain, n, k))
            continue
        if sampled is None:
            sampled = _majority_sampled(keys, passed, kmax, seed, draws)
        curve.append(sampled[k - 1])
    return curve


def _majority_exact(groups: list[tuple[int, float]], abstain: int, n: int, k: int) -> float:
    """Sum over count vectors x (x_g drawn from group g) of P(x) * vote value."""
    total = 0.0
    counts = [0] * len(groups)

    def visit(g: int, left: int, ways: int) -> None:
        nonlocal total
        if g == len(groups):
            if left > abstain:
                return
            ways *= comb(abstain, left)
            top = max(counts)
            if top == 0:
                return  # nobody voted
            winners = [groups[i][1] for i, x in enumerate(counts) if x == top]
            total += ways * sum(winners) / len(winners)
            return
        size = groups[g][0]
        for x in range(min(size, left) + 1):
            counts[g] = x
            visit(g + 1, left - x, ways * comb(size, x))
        counts[g] = 0

    visit(0, k, 1)
    return total / comb(n, k)


def _majority_sampled(keys: Sequence[str | None], passed: Sequence[bool], kmax: int, seed: int,
                      draws: int) -> list[float]:
    """Monte Carlo over random orders: the first k attempts of each order are a
    uniform k-subset, so one set of orders serves every k (vectorised)."""
    names = sorted({key for key in keys if key is not None})
    code = {key: i for i, key in enumerate(names)}
    groups, n = len(names), len(keys)
    codes = np.array([code[key] if key is not None else groups for key in keys])
    size = np.bincount(codes, minlength=groups + 1)[:groups]
    won = np.bincount(codes, weights=np.array(passed, dtype=float), minlength=groups + 1)[:groups]
    value = won / size
    rng = np.random.default_rng(seed)
    picked = codes[np.argsort(rng.random((draws, n)), axis=1)[:, :kmax]]
    onehot = np.zeros((draws, kmax, groups + 1), dtype=np.int16)
    onehot[np.arange(draws)[:, None], np.arange(kmax)[None, :], picked] = 1
    votes = onehot.cumsum(axis=1, dtype=np.int16)[:, :, :groups]  # draws x k x groups
    top = votes.max(axis=2, keepdims=True)
    tied = (votes == top) & (top > 0)
    ties = tied.sum(axis=2)
    scores = np.where(ties > 0, (tied @ value) / np.maximum(ties, 1), 0.0)
    return [float(x) for x in scores.mean(axis=0)]


def _vote(keys: Sequence[str | None], passed: Sequence[bool], chosen: Iterable[int]) -> float:
    """Expected score of one drawn subset (random tie break)."""
    votes: Counter[str] = Counter()
    ok: Counter[str] = Counter()
    for i in chosen:
        if keys[i] is not None:
            votes[keys[i]] += 1
            ok[keys[i]] += bool(passed[i])
    if not votes:
        return 0.0
    top = max(votes.values())
    winners = [ok[key] / count for key, count in votes.items() if count == top]
    return sum(winners) / len(winners)


def majority_at_k_bruteforce(keys: Sequence[str | None], passed: Sequence[bool], k: int) -> float:
    """majority@k by enumerating every k-subset (for tests and small n)."""
    subsets = list(combinations(range(len(keys)), k))
    return sum(_vote(keys, passed, s) for s in subsets) / len(subsets)


# ---------------------------------------------------------------- answers

_INDEX_LINE = re.compile(r"^index [0-9a-f]+\.\.[0-9a-f]+( \d+)?$")
_HUNK_HEADER = re.compile(r"^@@ -\d+(,\d+)? \+\d+(,\d+)? @@")


def normalize_patch(patch: str) -> str:
    """A unified diff reduced to what it changes: ``index`` lines, hunk line
    numbers, trailing whitespace and blank lines are dropped."""
    lines = []
    for line in patch.replace("\r\n", "\n").split("\n"):
        line = line.rstrip()
        if not line or _INDEX_LINE.match(line):
            continue
        lines.append(_HUNK_HEADER.sub("@@", line))
    return "\n".join(lines)


def answer_key(row: dict[str, Any]) -> str | None:
    """The answer a rollout votes with in majority@k, in this order:

    1. ``verification["extracted"]`` when the verifier reported one (normalised);
    2. the artifact (a patch: only collected in ``sandbox_artifact`` mode, where
       it and not the final message is the answer), via :func:`normalize_patch`;
    3. the last ``ANSWER:`` line of the final message, normalised;
    4. the whole final message, whitespace collapsed and lower-cased;
    5. None (the rollout does not vote).
    """
    extracted = (row.get("verification") or {}).get("extracted")
    if extracted is not None and str(extracted).strip():
        return "answer:" + normalize(str(extracted))
    artifact = row.get("artifact")
    if artifact is not None and artifact.strip():
        return "patch:" + normalize_patch(artifact)
    message = row.get("final_message") or ""
    line = extract_answer(message)
    if line is not None:
        return "answer:" + normalize(line)
    if message.strip():
        return "message:" + " ".join(message.lower().split())
    return None


# ---------------------------------------------------------------- helpers


def distribution(values: Iterable[float | None]) -> dict[str, float] | None:
    """count, mean, std (sample), min, p50, p90, p95, p99, max, sum; None when empty.

    Percentiles interpolate linearly between order statistics.
    """
    data = np.array([v for v in values if v is not None], dtype=float)
    if data.size == 0:
        return None
    p50, p90, p95, p99 = np.percentile(data, [50, 90, 95, 99])
    return {
        "count": int(data.size),
        "mean": float(data.mean()),
        "std": float(data.std(ddof=1)) if data.size > 1 else 0.0,
        "min": float(data.min()),
        "p50": float(p50),
        "p90": float(p90),
        "p95": float(p95),
        "p99": float(p99),
        "max": float(data.max()),
        "sum": float(data.sum()),
    }


def bootstrap_ci(
    task_values: np.ndarray, *, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED,
    level: float = 0.95,
) -> list[tuple[float, float]]:
    """Percentile bootstrap intervals of column means, resampling rows (tasks).

    ``task_values`` is tasks x metrics; returns one (low, high) per column.
    """
    values = np.asarray(task_values, dtype=float)
    if values.ndim == 1:
        values = values[:, None]
    tasks = values.shape[0]
    if tasks == 0:
        return []
    rng = np.random.default_rng(seed)
    uniform = np.full(tasks, 1.0 / tasks)
    chunks = []
    for start in range(0, resamples, _BOOTSTRAP_CHUNK):  # bounded memory for large runs
        weights = rng.multinomial(tasks, uniform, size=min(_BOOTSTRAP_CHUNK, resamples - start))
        chunks.append(weights @ values / tasks)
    means = np.concatenate(chunks)
    alpha = (1.0 - level) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha], axis=0)
    return [(float(a), float(b)) for a, b in zip(low, high)]


def as_dicts(rows: Iterable[Any]) -> list[dict[str, Any]]:
    return [r if isinstance(r, dict) else r.model_dump(mode="json") for r in rows]


def is_infra(row: dict[str, Any]) -> bool:
    return row.get("error_kind") in INFRA_KINDS


def _reward(row: dict[str, Any]) -> float:
    return float(row.get("reward") or 0.0)


# ---------------------------------------------------------------- summary


def summarize(rows: Iterable[Any], *, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED) -> dict[str, Any]:
    """Headline numbers over result rows (RolloutResult objects or dicts).

    Infrastructure failures are left out of every denominator and counted apart.
    Keys: rollouts, scored_rollouts, infra_failures, infra_failures_by_kind,
    tasks, repeats {min, max}, mean_reward, mean_reward_se, mean_reward_se_tasks,
    within_task_variance, error_kinds, ``pass@k``, ``pass^k`` and ``majority@k``
    for k = 1..min repeats, ci95 (bootstrap over tasks), tasks_always_pass,
    tasks_never_pass, tasks_sometimes_pass, sometimes_pass (task ids),
    per_task, tokens (totals and cache hit rate), distributions.
    """
    rows = as_dicts(rows)
    scored = [r for r in rows if not is_infra(r)]
    by_task: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in scored:
        by_task[r["task_id"]].append(r)
    for group in by_task.values():
        group.sort(key=lambda r: r.get("repeat", 0))
    infra_by_task = Counter(r["task_id"] for r in rows if is_infra(r))
    errors = Counter(r.get("error_kind") or "ok" for r in rows)
    summary: dict[str, Any] = {
        "rollouts": len(rows),
        "scored_rollouts": len(scored),
        "infra_failures": len(rows) - len(scored),
        "infra_failures_by_kind": dict(sorted(Counter(r["error_kind"] for r in rows if is_infra(r)).items())),
        "tasks": len(by_task),
        "repeats": {"min": min(map(len, by_task.values())), "max": max(map(len, by_task.values()))} if by_task else None,
        "mean_reward": mean(_reward(r) for r in scored) if scored else None,
        "mean_reward_se": _se_across_runs(scored),
        "mean_reward_se_tasks": None,
        "within_task_variance": None,
        "error_kinds": dict(sorted(errors.items())),
    }
    if not by_task:
        summary.update(_empty_sections())
        return summary

    task_ids = sorted(by_task)
    n_min = summary["repeats"]["min"]
    columns: dict[str, list[float]] = {"mean_reward": []}
    for k in range(1, n_min + 1):
        columns[f"pass@{k}"], columns[f"pass^{k}"], columns[f"majority@{k}"] = [], [], []
    per_task: dict[str, dict[str, Any]] = {}
    variances = []
    # Monte Carlo majority@k (many distinct answers): about 200k draws in all,
    # at least 500 per task; the error of the mean over tasks stays below ~0.01
    draws = min(_MAJORITY_SAMPLES, max(500, 200_000 // len(task_ids)))
    for task in task_ids:
        group = by_task[task]
        n, c = len(group), sum(bool(r.get("passed")) for r in group)
        rewards = [_reward(r) for r in group]
        keys = [answer_key(r) for r in group]
        flags = [bool(r.get("passed")) for r in group]
        columns["mean_reward"].append(mean(rewards))
        majority = majority_curve(keys, flags, n_min, seed=seed, draws=draws)
        for k in range(1, n_min + 1):
            columns[f"pass@{k}"].append(pass_at_k(n, c, k))
            columns[f"pass^{k}"].append(pass_hat_k(n, c, k))
            columns[f"majority@{k}"].append(majority[k - 1])
        variance = float(np.var(rewards, ddof=1)) if n > 1 else None
        if variance is not None:
            variances.append(variance)
        per_task[task] = {
            "n": n,
            "passed": c,
            "pass_rate": c / n,
            "mean_reward": mean(rewards),
            "reward_variance": variance,
            "infra_failures": infra_by_task.get(task, 0),
        }
    means = {name: mean(values) for name, values in columns.items()}
    # pass@k first (as before), then pass^k and majority@k
    for prefix in ("pass@", "pass^", "majority@"):
        for k in range(1, n_min + 1):
            summary[f"{prefix}{k}"] = means[f"{prefix}{k}"]
    task_means = columns["mean_reward"]
    if len(task_means) > 1:
        summary["mean_reward_se_tasks"] = float(np.std(task_means, ddof=1) / math.sqrt(len(task_means)))
    summary["within_task_variance"] = mean(variances) if variances else None
    names = list(columns)
    intervals = bootstrap_ci(np.array([columns[name] for name in names]).T, resamples=resamples, seed=seed)
    summary["ci95"] = {name: list(ci) for name, ci in zip(names, intervals)}
    summary["bootstrap"] = {"unit": "task", "resamples": resamples, "seed": seed, "method": "percentile"}
    always = [t for t in task_ids if per_task[t]["passed"] == per_task[t]["n"]]
    never = [t for t in task_ids if per_task[t]["passed"] == 0]
    sometimes = [t for t in task_ids if 0 < per_task[t]["passed"] < per_task[t]["n"]]
    summary["tasks_always_pass"] = len(always)
    summary["tasks_never_pass"] = len(never)
    summary["tasks_sometimes_pass"] = len(sometimes)
    summary["sometimes_pass"] = sometimes
    summary["per_task"] = per_task
    summary["tokens"] = _token_totals(scored)
    summary["distributions"] = distributions(scored)
    return summary


def _empty_sections() -> dict[str, Any]:
    return {
        "ci95": {},
        "tasks_always_pass": 0,
        "tasks_never_pass": 0,
        "tasks_sometimes_pass": 0,
        "sometimes_pass": [],
        "per_task": {},
        "tokens": _token_totals([]),
        "distributions": distributions([]),
    }


def _se_across_runs(scored: list[dict[str, Any]]) -> float | None:
    runs: dict[int, list[float]] = defaultdict(list)
    for r in scored:
        runs[int(r.get("repeat", 0))].append(_reward(r))
    if len(runs) < 2:
        return None
    run_means = [mean(v) for v in runs.values()]
    return float(np.std(run_means, ddof=1) / math.sqrt(len(run_means)))


def _token_totals(scored: list[dict[str, Any]]) -> dict[str, Any]:
    totals = {name.removesuffix("_tokens"): sum(int(r.get(name) or 0) for r in scored) for name in Usage.TOKEN_FIELDS}
    totals["total"] = totals["prompt"] + totals["completion"]
    totals["cache_hit_rate"] = totals["cached"] / totals["prompt"] if totals["prompt"] else None
    return totals


def distributions(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """:func:`distribution` of each of :data:`DISTRIBUTION_FIELDS` over ``rows``."""
    out: dict[str, Any] = {}
    for name in DISTRIBUTION_FIELDS:
        if name == "total_tokens":
            values = [(r.get("prompt_tokens") or 0) + (r.get("completion_tokens") or 0) for r in rows]
        else:
            values = [r.get(name) for r in rows]
        out[name] = distribution(values)
    return out
