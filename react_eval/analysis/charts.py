"""Charts for the run report, rendered by matplotlib's SVG backend.

Each function returns one ``<svg>`` element as text, ready to be inlined into
HTML: no XML prolog, no metadata block, text kept as text, and element ids
salted with the chart's name so several charts can share one page. Figures are
built with :class:`matplotlib.figure.Figure` and an SVG canvas: no pyplot, no
global backend switch and no figure registry to leak into.
"""

from __future__ import annotations

import functools
import io
import re
from typing import Any, Callable, Sequence

import matplotlib
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle
from matplotlib.ticker import MaxNLocator

PASS_COLOR = "#2e9d57"
FAIL_COLOR = "#d64541"
INFRA_COLOR = "#9aa0a6"
MISSING_COLOR = "#ffffff"
ACCENT = "#3b6fd4"

_PROLOG = re.compile(r"^.*?(?=<svg)", re.S)
_METADATA = re.compile(r"<metadata>.*?</metadata>\s*", re.S)


#: chart text in points; an SVG point is 1.33 CSS px, so ticks read at about 13 px
TEXT = {"font.size": 10, "axes.titlesize": 11, "axes.labelsize": 10, "xtick.labelsize": 9.5,
        "ytick.labelsize": 9.5, "legend.fontsize": 9.5}
#: the smallest font any chart uses (tests hold the SVGs to it)
MIN_FONT_PT = 9.5


def _render(fig: Figure, name: str) -> str:
    FigureCanvasSVG(fig)
    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": f"react-eval-{name}"}):
        fig.savefig(buffer, format="svg", metadata={"Date": None})
    svg = _METADATA.sub("", _PROLOG.sub("", buffer.getvalue(), count=1), count=1)
    return svg.replace("<svg ", f'<svg class="chart" data-chart="{name}" role="img" ', 1)


def _figure(width: float = 6.0, height: float = 3.2) -> Figure:
    fig = Figure(figsize=(width, height), dpi=100)
    fig.set_layout_engine("constrained")
    return fig


def _styled(draw: Callable[..., str | None]) -> Callable[..., str | None]:
    """Draw with the charts' text sizes (rc settings are read as artists are made and drawn)."""
    @functools.wraps(draw)
    def wrapper(*args: Any, **kwargs: Any) -> str | None:
        with matplotlib.rc_context(TEXT):
            return draw(*args, **kwargs)
    return wrapper


@_styled
def pass_at_k_curve(summary: dict[str, Any]) -> str | None:
    """pass@k, pass^k and majority@k against k, each point with its bootstrap 95% CI
    as an error bar (the three series nudged apart so their bars do not overlap)."""
    ks = sorted(int(key[5:]) for key in summary if key.startswith("pass@") and key[5:].isdigit())
    if not ks:
        return None
    fig = _figure(6.4, 3.6)
    ax = fig.add_subplot()
    ci = summary.get("ci95") or {}
    series = (("pass@", "pass@k (≥1 of k passes)", ACCENT, "o", -0.08),
              ("pass^", "pass^k (all k pass)", FAIL_COLOR, "s", 0.0),
              ("majority@", "majority@k", PASS_COLOR, "^", 0.08))
    for prefix, label, color, marker, nudge in series:
        values = [summary.get(f"{prefix}{k}") for k in ks]
        if any(v is None for v in values):
            continue
        xs = [k + nudge for k in ks]
        bands = [ci.get(f"{prefix}{k}") for k in ks]
        if all(b is not None for b in bands):
            low = [max(0.0, v - b[0]) for v, b in zip(values, bands)]
            high = [max(0.0, b[1] - v) for v, b in zip(values, bands)]
            ax.errorbar(xs, values, yerr=[low, high], color=color, marker=marker, label=label, linewidth=1.8,
                        markersize=5, capsize=4, elinewidth=1.2)
        else:
            ax.plot(xs, values, marker=marker, color=color, label=label, linewidth=1.8, markersize=5)
    ax.set_xlabel("k (attempts per task)")
    ax.set_ylabel("score")
    ax.set_ylim(-0.02, 1.05)
    ax.set_xticks(ks)
    ax.set_xlim(ks[0] - 0.5, ks[-1] + 0.5)
    ax.grid(True, alpha=0.3)
    fig.legend(loc="outside lower center", ncol=3, frameon=False)
    ax.set_title("pass@k, pass^k, majority@k (bars: 95% CI over tasks)")
    return _render(fig, "pass_at_k")


@_styled
def outcome_heatmap(rows: Sequence[dict[str, Any]], infra_kinds: frozenset[str],
                    link: Callable[[str, int], str] | None = None) -> str | None:
    """Tasks (rows, best first) by repeats (columns): passed, failed, infra failure,
    missing; with ``link(task, repeat)`` each cell is a link (into the viewer)."""
    if not rows:
        return None
    cells: dict[str, dict[int, int]] = {}
    for row in rows:
        value = 0 if row.get("error_kind") in infra_kinds else (2 if row.get("passed") else 1)
        cells.setdefault(str(row["task_id"]), {})[int(row.get("repeat", 0))] = value
    repeats = sorted({r for task in cells.values() for r in task})
    column = {r: i for i, r in enumerate(repeats)}

    def rate(task: str) -> float:
        scored = [v for v in cells[task].values() if v > 0]
        return sum(v == 2 for v in scored) / len(scored) if scored else -1.0

    tasks = sorted(cells, key=lambda t: (-rate(t), t))
    height = min(16.0, 1.6 + 0.22 * len(tasks))
    width = min(10.0, 4.2 + 0.4 * len(repeats))
    fig = _figure(width, height)
    ax = fig.add_subplot()
    colors = {0: INFRA_COLOR, 1: FAIL_COLOR, 2: PASS_COLOR}
    for i, task in enumerate(tasks):
        for r, value in cells[task].items():
            cell = Rectangle((column[r] - 0.5, i - 0.5), 1, 1, facecolor=colors[value], edgecolor="white", linewidth=1)
            if link is not None:
                cell.set_url(link(task, r))
            ax.add_patch(cell)
    ax.set_xlim(-0.5, len(repeats) - 0.5)
    ax.set_ylim(len(tasks) - 0.5, -0.5)
    ax.set_xticks(range(len(repeats)), [str(r) for r in repeats])
    ax.set_xlabel("repeat")
    if len(tasks) <= 60:
        ax.set_yticks(range(len(tasks)), [t if len(t) <= 32 else t[:29] + "..." for t in tasks])
    else:
        ax.set_yticks([])
        ax.set_ylabel(f"{len(tasks)} tasks, best first")
    legend = [Patch(color=PASS_COLOR, label="passed"), Patch(color=FAIL_COLOR, label="failed"),
              Patch(color=INFRA_COLOR, label="infra failure")]
    fig.legend(handles=legend, loc="outside lower center", ncol=3, frameon=False)
    ax.set_title("outcome per task and repeat" + (" (click a cell)" if link else ""))
    return _render(fig, "heatmap")


@_styled
def histogram(values: Sequence[float], *, name: str, title: str, xlabel: str, integer: bool = False) -> str | None:
    """None when there is nothing to show: no values, or all of them zero (e.g. a
    server that reports no cached tokens)."""
    data = [float(v) for v in values if v is not None]
    if not data or not any(data):
        return None
    fig = _figure(4.2, 2.8)
    ax = fig.add_subplot()
    low, high = min(data), max(data)
    if integer and high - low <= 40:
        bins: Any = [x - 0.5 for x in range(int(low), int(high) + 2)]
    else:
        bins = min(30, max(5, len(set(data))))
    ax.hist(data, bins=bins, color=ACCENT, edgecolor="white", linewidth=0.5)
    if integer:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("rollouts")
    ax.grid(True, axis="y", alpha=0.3)
    return _render(fig, name)


@_styled
def tool_errors_by_tool(stats: dict[str, dict[str, int]]) -> str | None:
    """Calls and failed calls per tool (horizontal bars)."""
    if not stats:
        return None
    names = sorted(stats, key=lambda n: (stats[n]["calls"], n))
    fig = _figure(5.5, min(8.0, 1.2 + 0.35 * len(names)))
    ax = fig.add_subplot()
    positions = range(len(names))
    ax.barh(positions, [stats[n]["calls"] for n in names], color="#c9d6f2", label="calls")
    ax.barh(positions, [stats[n]["errors"] for n in names], color=FAIL_COLOR, label="failed calls")
    ax.set_yticks(list(positions), names)
    ax.set_xlabel("tool calls")
    fig.legend(frameon=False, loc="outside lower center", ncol=2)
    ax.set_title("tool calls and failures per tool")
    ax.grid(True, axis="x", alpha=0.3)
    return _render(fig, "tool_errors_by_tool")


@_styled
def tool_errors_by_turn(stats: dict[int, dict[str, int]]) -> str | None:
    """Failed tool calls per turn, with the share of that turn's calls that failed
    (None when no call failed: an all-zero chart says nothing)."""
    if not stats or not any(s["errors"] for s in stats.values()):
        return None
    turns = sorted(stats)
    fig = _figure(6.0, 2.8)
    ax = fig.add_subplot()
    ax.bar(turns, [stats[t]["errors"] for t in turns], color=FAIL_COLOR, label="failed calls")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("turn (model call)")
    ax.set_ylabel("failed calls")
    rate_ax = ax.twinx()
    rate_ax.plot(turns, [stats[t]["errors"] / stats[t]["calls"] if stats[t]["calls"] else 0 for t in turns],
                 color="#333333", marker=".", linewidth=1, label="failure rate")
    rate_ax.set_ylim(0, 1.05)
    rate_ax.set_ylabel("failure rate")
    ax.set_title("tool failures per turn")
    return _render(fig, "tool_errors_by_turn")


@_styled
def error_kinds(counts: dict[str, int], infra_kinds: frozenset[str]) -> str | None:
    """How rollouts ended: ``counts`` maps an outcome to rollouts -- "passed", "failed"
    (completed without an error, not passed) and error kinds (infrastructure in grey)."""
    counts = {name: n for name, n in counts.items() if n}
    if not counts:
        return None
    names = sorted(counts, key=lambda n: (counts[n], n))
    colors = [PASS_COLOR if n == "passed" else INFRA_COLOR if n in infra_kinds else FAIL_COLOR for n in names]
    fig = _figure(5.6, min(6.0, 1.3 + 0.38 * len(names)))
    ax = fig.add_subplot()
    bars = ax.barh(range(len(names)), [counts[n] for n in names], color=colors)
    ax.bar_label(bars, padding=3)
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("rollouts")
    ax.set_xlim(0, max(counts.values()) * 1.15)
    ax.set_title("how rollouts ended (grey: infrastructure, not scored)")
    ax.grid(True, axis="x", alpha=0.3)
    return _render(fig, "error_kinds")
