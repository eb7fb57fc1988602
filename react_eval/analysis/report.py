"""``react-eval report RUN_DIR``: report.md and a self-contained report.html.

The metrics are recomputed from results.jsonl with :func:`react_eval.metrics.summarize`
(so an old eval.json does not matter); tool failures per tool and per turn come
from trajectories.jsonl. Infrastructure failures are left out of every score and
of the tool breakdown, and counted in the headline and the outcome table.

report.html holds its CSS and its charts (matplotlib SVG) inline and refers to
nothing on the network, so it opens offline. Its heatmap cells and table rows
link into the trajectory viewer written next to it (``viewer/index.html``).
"""

from __future__ import annotations

import html
from urllib.parse import quote, urlencode
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

from react_eval.analysis import charts
from react_eval.analysis.runs import RunData, load_run, tool_call_records, trajectory_key
from react_eval.analysis.viewer import write_viewer
from react_eval.analysis.why import outcome_label
from react_eval.metrics import INFRA_KINDS, summarize

#: where report.html finds the viewer (written next to it)
VIEWER = "viewer/index.html"


def viewer_list(**filters: str) -> str:
    """A link to the viewer's list with filters (``q``, ``kind``, ``tool``, ``outcome``, ...)."""
    return f"{VIEWER}#list?{urlencode(filters)}"


def viewer_rollout(task: str, repeat: int) -> str:
    return f"{VIEWER}#t/0/{repeat}/{quote(task, safe='')}"


@dataclass(frozen=True)
class Link:
    """A table cell that links somewhere (text only in markdown)."""

    text: Any
    href: str

    def __str__(self) -> str:
        return str(self.text)


@dataclass
class ToolBreakdown:
    """Tool calls and failures of the scored rollouts' trajectories."""

    by_tool: dict[str, dict[str, Any]] = field(default_factory=dict)
    by_turn: dict[int, dict[str, int]] = field(default_factory=dict)
    first_failure_by_tool: Counter = field(default_factory=Counter)
    trajectories: int = 0


def tool_breakdown(run: RunData) -> ToolBreakdown:
    scored = {(str(r["task_id"]), int(r.get("repeat", 0))) for r in run.scored_rows}
    out = ToolBreakdown()
    tools: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"calls": 0, "errors": 0, "error_kinds": Counter(), "exit_codes": Counter()})
    turns: dict[int, dict[str, int]] = defaultdict(lambda: {"calls": 0, "errors": 0})
    seen: set[tuple[str, int]] = set()
    for trajectory in run.trajectories():
        key = trajectory_key(trajectory)
        if key is None or key not in scored or key in seen:
            continue
        seen.add(key)
        out.trajectories += 1
        first = True
        for call in tool_call_records(trajectory):
            name = str(call["tool"])
            tools[name]["calls"] += 1
            turns[call["turn"]]["calls"] += 1
            if call["is_error"]:
                tools[name]["errors"] += 1
                tools[name]["error_kinds"][call["error_kind"] or "unspecified"] += 1
                if call["exit_code"] is not None:
                    tools[name]["exit_codes"][str(call["exit_code"])] += 1
                turns[call["turn"]]["errors"] += 1
                if first:
                    out.first_failure_by_tool[name] += 1
                    first = False
    if not out.trajectories:  # no trajectories file: fall back on the rows' per-tool counts
        for row in run.scored_rows:
            for name, counts in (row.get("tool_stats") or {}).items():
                tools[name]["calls"] += int(counts[0])
                tools[name]["errors"] += int(counts[1])
    out.by_tool = dict(sorted(tools.items()))
    out.by_turn = dict(sorted(turns.items()))
    return out


# ---------------------------------------------------------------- tables


@dataclass
class Table:
    headers: Sequence[str]
    rows: list[Sequence[Any]]

    def markdown(self) -> str:
        def cell(value: Any) -> str:
            return str(value).replace("|", "\\|").replace("\n", " ")

        lines = ["| " + " | ".join(map(cell, self.headers)) + " |", "|" + "---|" * len(self.headers)]
        lines += ["| " + " | ".join(map(cell, row)) + " |" for row in self.rows]
        return "\n".join(lines)

    def html(self, css: str = "") -> str:
        def cell(value: Any) -> str:
            if isinstance(value, Link):
                return f'<td><a href="{html.escape(value.href)}">{html.escape(str(value.text))}</a></td>'
            return f"<td>{html.escape(str(value))}</td>"

        head = "".join(f"<th>{html.escape(str(h))}</th>" for h in self.headers)
        body = "".join("<tr>" + "".join(cell(v) for v in row) + "</tr>" for row in self.rows)
        return f'<table class="{css}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _num(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _ci(pair: Sequence[float] | None) -> str:
    return f"[{pair[0]:.4f}, {pair[1]:.4f}]" if pair else "-"


def _count_kinds(kinds: dict[str, int]) -> str:
    return ", ".join(f"{k}={v}" for k, v in kinds.items()) or "none"


def headline_table(run: RunData, s: dict[str, Any]) -> Table:
    rows: list[Sequence[Any]] = [
        ("benchmark", run.benchmark),
        ("model", run.model or "-"),
        ("rollouts", s["rollouts"]),
        ("scored rollouts", s["scored_rollouts"]),
        ("infrastructure failures (excluded)", f"{s['infra_failures']} ({_count_kinds(s['infra_failures_by_kind'])})"),
        ("tasks", s["tasks"]),
    ]
    if s.get("repeats"):
        rep = s["repeats"]
        rows.append(("repeats per task", rep["min"] if rep["min"] == rep["max"] else f"{rep['min']}..{rep['max']}"))
    ci = s.get("ci95") or {}
    rows.append(("mean reward", _num(s["mean_reward"])))
    rows.append(("  SE across runs (repeats)", _num(s.get("mean_reward_se"))))
    rows.append(("  SE across tasks", _num(s.get("mean_reward_se_tasks"))))
    rows.append(("  bootstrap 95% CI (tasks)", _ci(ci.get("mean_reward"))))
    rows.append(("within-task variance", _num(s.get("within_task_variance"))))
    for prefix in ("pass@", "pass^", "majority@"):
        for key in _ks(s, prefix):
            rows.append((key, f"{_num(s[key])} {_ci(ci.get(key))}"))
    rows.append(("tasks always / sometimes / never pass",
                 f"{s.get('tasks_always_pass', 0)} / {s.get('tasks_sometimes_pass', 0)} / {s.get('tasks_never_pass', 0)}"))
    tokens = s.get("tokens") or {}
    if tokens:
        hit = tokens.get("cache_hit_rate")
        rows.append(("tokens prompt / completion / cached / reasoning",
                     f"{tokens['prompt']} / {tokens['completion']} / {tokens['cached']} / {tokens['reasoning']}"))
        rows.append(("prompt cache hit rate", f"{100 * hit:.1f}%" if hit is not None else "-"))
    return Table(("metric", "value"), rows)


def _ks(s: dict[str, Any], prefix: str) -> list[str]:
    return sorted((k for k in s if k.startswith(prefix) and k[len(prefix):].isdigit()), key=lambda k: int(k[len(prefix):]))


def pass_at_k_table(s: dict[str, Any]) -> Table:
    ci = s.get("ci95") or {}
    rows = []
    for key in _ks(s, "pass@"):
        k = key[5:]
        rows.append((k, _num(s[key]), _ci(ci.get(key)), _num(s.get(f"pass^{k}")), _num(s.get(f"majority@{k}"))))
    return Table(("k", "pass@k", "95% CI", "pass^k", "majority@k"), rows)


_DIST_LABELS = {
    "turns": "turns", "tool_calls": "tool calls", "tool_errors": "tool errors",
    "prompt_tokens": "prompt tokens", "completion_tokens": "completion tokens",
    "cached_tokens": "cached tokens", "reasoning_tokens": "reasoning tokens", "total_tokens": "total tokens",
    "model_latency_ms": "model latency (ms)", "tool_latency_ms": "tool latency (ms)", "wall_ms": "wall time (ms)",
}


def distribution_table(s: dict[str, Any]) -> Table:
    rows = []
    for name, dist in (s.get("distributions") or {}).items():
        if dist is None:
            continue
        rows.append((_DIST_LABELS.get(name, name), *(_num(dist[k], 1) for k in ("mean", "p50", "p90", "p99", "max")),
                     _num(dist["sum"], 0)))
    return Table(("per rollout", "mean", "p50", "p90", "p99", "max", "total"), rows)


def tool_table(tb: ToolBreakdown) -> Table:
    rows = []
    for name, st in sorted(tb.by_tool.items(), key=lambda item: (-item[1]["errors"], item[0])):
        rate = st["errors"] / st["calls"] if st["calls"] else 0.0
        rows.append((Link(name, viewer_list(tool=f"u:{name}")), st["calls"],
                     Link(st["errors"], viewer_list(tool=f"f:{name}")), f"{100 * rate:.1f}%", tb.first_failure_by_tool.get(name, 0),
                     _count_kinds(dict(st["error_kinds"].most_common())),
                     _count_kinds(dict(st["exit_codes"].most_common(5)))))
    return Table(("tool", "calls", "failed", "failure rate", "first failure of a rollout", "error kinds",
                  "exit codes"), rows)


def turn_table(tb: ToolBreakdown) -> Table:
    rows = [(turn, st["calls"], st["errors"], f"{100 * st['errors'] / st['calls']:.1f}%" if st["calls"] else "-")
            for turn, st in tb.by_turn.items()]
    return Table(("turn", "calls", "failed", "failure rate"), rows)


def outcome_counts(rows: list[dict[str, Any]]) -> dict[str, int]:
    """Rollouts by how they ended: ``passed``, ``failed (completed)`` -- no error, not
    passed -- and each error kind ("completed", never "ok", which reads as passed)."""
    counts: Counter[str] = Counter()
    for row in rows:
        kind = row.get("error_kind")
        if kind:
            counts[str(kind)] += 1
        else:
            counts["passed" if row.get("passed") else f"failed ({outcome_label(None)})"] += 1
    return dict(counts.most_common())


def error_kind_table(run: RunData) -> Table:
    total = len(run.rows) or 1
    rows = []
    for name, count in outcome_counts(run.rows).items():
        link = (viewer_list(outcome="pass") if name == "passed" else
                viewer_list(kind=outcome_label(None), outcome="fail") if name.startswith("failed") else
                viewer_list(kind=name))
        rows.append((Link(name, link), count, f"{100 * count / total:.1f}%", "no" if name in INFRA_KINDS else "yes"))
    return Table(("outcome", "rollouts", "share", "scored"), rows)


def per_task_table(s: dict[str, Any]) -> Table:
    rows = [(Link(task, viewer_list(q=task)), f"{t['passed']}/{t['n']}", f"{t['pass_rate']:.2f}", _num(t["mean_reward"]),
             _num(t["reward_variance"]), t["infra_failures"])
            for task, t in sorted(s["per_task"].items(), key=lambda item: (item[1]["pass_rate"], item[0]))]
    return Table(("task", "passed", "pass rate", "mean reward", "reward variance", "infra failures"), rows)


# ---------------------------------------------------------------- documents


@dataclass
class Section:
    title: str
    intro: str = ""
    tables: list[Table] = field(default_factory=list)
    charts: list[str | None] = field(default_factory=list)
    collapsed: bool = False


def build_sections(run: RunData, s: dict[str, Any], tb: ToolBreakdown) -> list[Section]:
    scored = run.scored_rows
    sections = [
        Section("Headline", tables=[headline_table(run, s)]),
        Section("pass@k", "Unbiased pass@k (Chen et al., 2021), pass^k (all k attempts pass) and majority@k "
                "(majority vote over k attempts' answers); 95% CIs by bootstrap over tasks.",
                [pass_at_k_table(s)], [charts.pass_at_k_curve(s)]),
        Section("Tasks", f"{s.get('tasks_sometimes_pass', 0)} task(s) pass only sometimes: "
                + (", ".join(s.get("sometimes_pass") or []) or "none") + ".",
                [], [charts.outcome_heatmap(run.rows, INFRA_KINDS, link=viewer_rollout)]),
        _distributions(scored, s),
        Section("Tool errors", f"From {tb.trajectories} trajectories of scored rollouts. A turn is one model call.",
                [tool_table(tb), turn_table(tb)],
                [charts.tool_errors_by_tool(tb.by_tool), charts.tool_errors_by_turn(tb.by_turn)]),
        Section("Outcomes", "How rollouts ended: passed, failed after completing without an error, or an error "
                "kind; infrastructure failures are excluded from every score.",
                [error_kind_table(run)], [charts.error_kinds(outcome_counts(run.rows), INFRA_KINDS)]),
        Section("Per task", "", [per_task_table(s)], collapsed=True),
    ]
    return sections


_HISTOGRAMS = (
    ("turns", "hist_turns", "turns per rollout", "turns", lambda r: r.get("turns"), True),
    ("wall time", "hist_wall", "wall time per rollout", "seconds", lambda r: (r.get("wall_ms") or 0) / 1000, False),
    ("model latency", "hist_model_latency", "model latency per rollout", "seconds",
     lambda r: (r.get("model_latency_ms") or 0) / 1000, False),
    ("tokens", "hist_tokens", "tokens per rollout (prompt + completion)", "tokens",
     lambda r: (r.get("prompt_tokens") or 0) + (r.get("completion_tokens") or 0), False),
    ("cached tokens", "hist_cached", "cached prompt tokens per rollout", "tokens",
     lambda r: r.get("cached_tokens") or 0, False),
)


def _distributions(scored: list[dict[str, Any]], s: dict[str, Any]) -> Section:
    """Histograms of the per-rollout numbers; an all-zero one is named, not drawn."""
    drawn, empty = [], []
    for label, name, title, xlabel, value, integer in _HISTOGRAMS:
        svg = charts.histogram([value(r) for r in scored], name=name, title=title, xlabel=xlabel, integer=integer)
        (drawn if svg else empty).append(svg or label)
    intro = "Over scored rollouts." + (f" Not drawn, all zero: {', '.join(empty)}." if empty and scored else "")
    return Section("Distributions", intro, [distribution_table(s)], drawn)


def _meta_lines(run: RunData) -> list[tuple[str, str]]:
    info = run.info
    meta = [("run", str(run.path)), ("run id", run.run_id or "-")]
    if info.get("started_at"):
        meta.append(("started", str(info["started_at"])))
    if info.get("finished_at"):
        meta.append(("finished", str(info["finished_at"])))
    meta.append(("report generated", datetime.now(timezone.utc).isoformat(timespec="seconds")))
    return meta


def render_markdown(run: RunData, sections: list[Section]) -> str:
    out = [f"# react-eval report: {run.benchmark}", ""]
    out += [f"- {k}: `{v}`" for k, v in _meta_lines(run)]
    out += ["", "Charts are in report.html next to this file; its links open the trajectories in viewer/index.html.", ""]
    for section in sections:
        out += [f"## {section.title}", ""]
        if section.intro:
            out += [section.intro, ""]
        for table in section.tables:
            out += [table.markdown(), ""]
    return "\n".join(out)


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d1f23;background:#f6f7f9}
main{max-width:1100px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 6px} h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #dde1e6;padding-bottom:4px}
.meta{color:#5f6670;font-size:13px} .meta code{background:#eceef1;padding:1px 4px;border-radius:3px}
table{border-collapse:collapse;background:#fff;font-size:13px;margin:8px 0 12px}
th,td{border:1px solid #dde1e6;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#eef1f5} td:not(:first-child){font-variant-numeric:tabular-nums}
.charts{display:flex;flex-wrap:wrap;gap:12px} .charts svg{background:#fff;border:1px solid #dde1e6;max-width:100%;height:auto}
p{font-size:14px} details summary{cursor:pointer;font-weight:600;margin:8px 0}
"""


def render_html(run: RunData, sections: list[Section]) -> str:
    esc = html.escape
    meta = " · ".join(f"{esc(k)}: <code>{esc(v)}</code>" for k, v in _meta_lines(run))
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>react-eval report: {esc(run.benchmark)}</title>",
        f"<style>{_CSS}</style></head><body><main>",
        f"<h1>react-eval report: {esc(run.benchmark)}</h1>",
        f'<div class="meta">{meta}</div>',
    ]
    for section in sections:
        anchor = section.title.lower().replace(" ", "-")
        body = []
        if section.intro:
            body.append(f"<p>{esc(section.intro)}</p>")
        drawn = [svg for svg in section.charts if svg]
        if drawn:
            body.append('<div class="charts">' + "".join(drawn) + "</div>")
        body += [t.html() for t in section.tables]
        if section.collapsed:
            parts.append(f'<h2 id="{anchor}">{esc(section.title)}</h2><details><summary>show</summary>'
                         + "".join(body) + "</details>")
        else:
            parts.append(f'<section id="{anchor}"><h2>{esc(section.title)}</h2>' + "".join(body) + "</section>")
    parts.append("</main></body></html>")
    return "\n".join(parts)


def write_report(run_dir: Path, *, bench: str | None = None, out_dir: Path | None = None) -> tuple[Path, Path]:
    """Write report.md, report.html and the viewer its links open (into the benchmark directory by default)."""
    run = load_run(run_dir, bench)
    summary = summarize(run.rows)
    sections = build_sections(run, summary, tool_breakdown(run))
    target = Path(out_dir) if out_dir is not None else run.path
    target.mkdir(parents=True, exist_ok=True)
    md_path, html_path = target / "report.md", target / "report.html"
    write_viewer([run.path], target / "viewer")  # what the report's links open
    md_path.write_text(render_markdown(run, sections), encoding="utf-8")
    html_path.write_text(render_html(run, sections), encoding="utf-8")
    return md_path, html_path
