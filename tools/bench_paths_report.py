"""The pure side of tools/bench_paths.py: row sizes, repeats' medians and ranges, the Markdown.

Kept apart from the runner so it can be tested and re-rendered (``--from-json``)
without starting a server.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any

START, END = "<!-- paths:start -->", "<!-- paths:end -->"
LABELS = {"inprocess": "in-process tool", "gym": "Gym resources server", "local": "local sandbox bash",
          "bwrap": "bwrap sandbox bash", "docker": "Docker sandbox bash",
          "docker+warm": "Docker sandbox bash, warm pool", "gym+local": "Gym + local sandbox"}

def row_label(row: dict[str, Any]) -> str:
    """The path's name; a row whose react-eval ran in worker processes says how many."""
    label = LABELS.get(row["path"], row["path"])
    return f"{label}, **workers: {row['workers']}**" if row.get("workers", 1) > 1 else label


def peak_rss(row: dict[str, Any]) -> str:
    """react-eval's peak RSS; with worker processes, the parent's and each worker's."""
    e = row["engine"]
    parent = f"{fmt(e['peak_rss_kb'] / 1024, 0)} MiB"
    if row.get("workers", 1) > 1:
        return f"{parent} + {row['workers']}× {fmt(e.get('worker_peak_rss_kb', 0) / 1024, 0)} MiB"
    return parent


def workers_note(runs: list[dict[str, Any]]) -> list[str]:
    """What a ``workers: N`` row measures, with its workers' start-up."""
    rows = [r for r in runs if r.get("workers", 1) > 1 and "error" not in r["engine"]]
    if not rows:
        return []
    starts = ", ".join(f"{LABELS.get(r['path'], r['path'])} {fmt(r['engine'].get('startup_s', 0.0) * 1000, 0)} ms"
                       for r in rows)
    return ["", "Rows marked **workers: N** run react-eval's engine with `workers: N` (`ProcessExecutor`: N worker "
            "processes forked from a fork server that preloads the engine; records come back as the lines to "
            "write). Their CPU / turn counts every process of the client: the parent's own CPU, each worker's "
            "(reported by the worker as it exits) and the fork server's (from /proc), over the same turns. The "
            "fork server starts during the warm-up run (its imports are not measured, as the one-process client's "
            "are not); forking the workers and building their runners is measured, in the CPU and in the wall "
            f"time (the rollouts/s). Workers' start-up (run start to every worker ready): {starts}."]


def per_turn(r: dict[str, Any]) -> float:
    return r["cpu_s"] / max(1, r["turns"]) * 1000


def children_per_turn(r: dict[str, Any]) -> float:
    """CPU per turn of the client's sandbox processes (bash, bwrap), apart from its own."""
    return max(0.0, r.get("children_cpu_s", 0.0)) / max(1, r["turns"]) * 1000  # older runs: a difference


def rate(r: dict[str, Any]) -> float:
    return r["rollouts"] / r["wall_s"] if r.get("wall_s") else 0.0


def median_rate(r: dict[str, Any]) -> float:
    """Rollouts/s: the median over repeats (``median_run``), else the one run's."""
    return r.get("rate_median", rate(r))


def rollouts_for(conc: int, latency: float, path: str, turns: int, quick: bool) -> int:
    """Rollouts of one matrix row: enough turns for a steady CPU figure (at least 400 in
    --quick, 1,200 in full, or every slot filled once), a time budget at C = 1 with a slow
    model (8 s of model time in --quick, 24 s in full); Docker rows by containers made."""
    if path.startswith("docker"):
        if conc == 1:
            return (10 if quick else 30) if latency == 0 else (4 if quick else 10)
        return max(conc * 2, 32)
    if conc == 1 and latency > 0:
        return max(1, round((8.0 if quick else 24.0) / (turns * latency / 1000)))
    return max(conc, math.ceil((400 if quick else 1200) / turns))


def warmup_for(conc: int, path: str) -> int:
    """Rollouts of the short warm-up run each client makes before the measured one, in the same
    process and at a 0 ms model, so imports, first connections and caches are not measured."""
    return min(conc, 2 if path.startswith("docker") else 16)


def median_run(reps: list[dict[str, Any]]) -> dict[str, Any]:
    """The repeat with the median CPU per turn, with the spread of all repeats."""
    good = [r for r in reps if "error" not in r]
    if not good:
        return reps[0]
    good.sort(key=per_turn)
    out = dict(good[(len(good) - 1) // 2])
    out["cpu_range"] = [per_turn(good[0]), per_turn(good[-1])]
    rates = sorted(rate(r) for r in good)
    out["rate_range"] = [rates[0], rates[-1]]
    out["rate_median"] = statistics.median(rates)
    out["repeats"] = len(good)
    return out


def pair_ratios(row: dict[str, Any], kind: str, other: str) -> list[float]:
    """CPU per turn of ``kind`` over ``other``, repeat by repeat (each pair ran back to back)."""
    return [per_turn(a) / per_turn(b) for a, b in zip(row.get("reps", {}).get(kind, []), row.get("reps", {}).get(other, []))
            if "error" not in a and "error" not in b and per_turn(b) > 0]


def summary(row: dict[str, Any]) -> str:
    e, b = row["engine"], row["bare"]
    if "error" in e or "error" in b:
        return f"ERROR engine={e.get('error', '')[-300:]} bare={b.get('error', '')[-300:]}"
    out = (f"cpu/turn {per_turn(e):.3f} vs {per_turn(b):.3f} ms ({per_turn(e) / per_turn(b):.2f}x), "
           f"rollouts/s {rate(e):.1f} vs {rate(b):.1f} ({rate(e) / rate(b) * 100:.0f}%), "
           f"failed {e['failed']}+{e['dropped']} / {b['failed']}, errors {e.get('errors') or b.get('errors')}")
    n = row.get("nel")
    if n is not None:
        out += (f"; nel ERROR {n['error'][-300:]}" if "error" in n else
                f"; nel cpu/turn {per_turn(n):.3f} ms ({per_turn(e) / per_turn(n):.2f}x of it), "
                f"rollouts/s {rate(n):.1f}, failed {n['failed']}, errors {n.get('errors')}")
    return out


def fmt(x: float, digits: int = 2) -> str:
    return f"{x:,.{digits}f}"


def spread(value: str, lo: float, hi: float, digits: int, repeats: int, unit: str = "") -> str:
    """``value`` and, over several repeats, the range it came from."""
    return value if repeats < 2 else f"{value} ({fmt(lo, digits)}–{fmt(hi, digits)}{unit})"


def nel_cells(row: dict[str, Any]) -> tuple[str, str]:
    """The NEL CPU per turn and react-eval's multiple of it, or dashes where NEL has no mode."""
    n, e = row.get("nel"), row["engine"]
    if n is None:
        return "–", "–"
    if "error" in n:
        return "error", "–"
    ratios = sorted(pair_ratios(row, "engine", "nel")) or [per_turn(e) / per_turn(n)]
    cpu = spread(f"{fmt(per_turn(n), 3)} ms", *n.get("cpu_range", [0, 0]), 3, n.get("repeats", 1))
    return cpu, spread(f"{fmt(statistics.median(ratios))}×", ratios[0], ratios[-1], 2, len(ratios), "×")


def nel_note(nel: dict[str, Any] | None) -> list[str]:
    if nel is None:
        return []
    if "error" in nel:
        return [f"NeMo Evaluator: no NEL column in this run: {nel['error']}", ""]
    return [f"NEL is nemo-evaluator {nel['version']}'s `tool_calling` loop (`ReActSolver`, its `ModelClient` and "
            "`HttpToolBackend`) in its own interpreter, driven by `tools/bench_nel.py` with the same rows and HTTP "
            "sequence; it has a like-for-like mode on the Gym path only (no in-process tools; its local sandbox runs "
            "a new shell per command and has no bubblewrap jail). × NEL is react-eval's CPU per turn over NEL's.", ""]


def render(r: dict[str, Any], m: dict[str, str], quick: bool) -> str:
    turns = r["turns"]
    repeat = r.get("repeat", 1)
    lines = [
        f"Machine: `{m['uname']}`, {m['cpus']}, {m['memory']}; Python {m['python']}.",
        f"Date: {m['date']}. Commit: `{m['commit']}`. Mode: {'--quick' if quick else 'full'}"
        + (f", each row {repeat}× interleaved" if repeat > 1 else "") + ". "
        f"{turns} model calls per rollout ({turns - 1} tool calls, then the answer).",
        "",
        "Every row is react-eval's engine and, in the next process, the bare aiohttp loop sending the same HTTP "
        "sequence and shell commands (`tools/bench_path_loops.py`). Each client first makes a short warm-up run "
        "in the same process (0 ms model), so imports and first connections are not measured. CPU is the client "
        "process's own (its sandbox processes -- bash, bwrap -- are the next column, react-eval's then the bare "
        "loop's, measured the same way for both); × bare compares CPU per turn, \"of bare\" compares rollouts/s. Efficiency is rollouts/s "
        "against the ideal C/(L·T) (200 ms rows only)."
        + (f" Figures are the median of {repeat} repeats, run interleaved, with their range in brackets; "
           "the ratios are medians of the repeat-by-repeat ratios." if repeat > 1 else ""),
        "",
        *nel_note(r.get("nel")),
        "| path | C | model | rollouts | CPU / turn | bare | × bare | sandbox procs / turn (bare) | NEL | × NEL "
        "| rollouts/s | bare | of bare | efficiency | failed + dropped (bare) | peak RSS |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
        "| ---: |",
    ]
    for row in r["runs"]:
        e, b = row["engine"], row["bare"]
        head = f"| {row_label(row)} | {row['concurrency']} | {row['latency_ms']:g} ms | {row['rollouts']} "
        if "error" in e or "error" in b:
            lines.append(head + "| error | | | | | | | | | | | |")
            continue
        reps = e.get("repeats", 1)
        ideal = row["concurrency"] / (row["latency_ms"] / 1000 * turns) if row["latency_ms"] else None
        eff = f"{fmt(median_rate(e) / ideal * 100, 1)}%" if ideal else "–"
        ratios = sorted(pair_ratios(row, "engine", "bare")) if "reps" in row else []
        ratios = ratios or [per_turn(e) / per_turn(b)]
        x_bare = spread(f"{fmt(statistics.median(ratios))}×", ratios[0], ratios[-1], 2, len(ratios), "×")
        nel_cpu, x_nel = nel_cells(row)
        kids = (f"{fmt(children_per_turn(e), 3)} ms ({fmt(children_per_turn(b), 3)} ms)"
                if max(children_per_turn(e), children_per_turn(b)) >= 0.0005 else "–")
        lines.append(head + f"| {spread(fmt(per_turn(e), 3) + ' ms', *e.get('cpu_range', [0, 0]), 3, reps)} "
                     f"| {spread(fmt(per_turn(b), 3) + ' ms', *b.get('cpu_range', [0, 0]), 3, reps)} | {x_bare} "
                     f"| {kids} | {nel_cpu} | {x_nel} "
                     f"| {spread(fmt(median_rate(e), 1), *e.get('rate_range', [0, 0]), 1, reps)} | {fmt(median_rate(b), 1)} "
                     f"| {fmt(median_rate(e) / median_rate(b) * 100, 0)}% | {eff} "
                     f"| {e['failed'] + e['dropped']} ({b['failed'] + b['dropped']}) | {peak_rss(row)} |")
    lines += workers_note(r["runs"])
    lines += ["", "RSS per in-flight rollout: each client first makes a warm-up run in the same process, then "
              "N rollouts park on a slow model's first reply; per rollout = (RSS parked − RSS after the warm-up) "
              "/ N, so one-off imports and pools are not counted per rollout. RSS of the client process; the "
              "sandboxes' own processes are not included.", "",
              "| path | in flight | react-eval RSS after warm-up → parked | per rollout | bare loop per rollout "
              "| NEL per rollout |",
              "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for path, x in r["memory"].items():
        e, b, n = x.get("engine", {}), x.get("bare", {}), x.get("nel")
        if "error" in e:
            lines.append(f"| {LABELS.get(path, path)} | | error | | | |")
            continue
        bare = f"{fmt(b['per_rollout_kib'], 0)} KiB" if "per_rollout_kib" in b else "–"
        nel = "–" if n is None else f"{fmt(n['per_rollout_kib'], 0)} KiB" if "per_rollout_kib" in n else "error"
        lines.append(f"| {LABELS.get(path, path)} | {e['concurrency']} | {fmt(e['rss0_mb'], 0)} → {fmt(e['rss_mid_mb'], 0)} MiB "
                     f"| {fmt(e['per_rollout_kib'], 0)} KiB | {bare} | {nel} |")
    lc = r.get("lifecycle")
    if lc and "error" not in lc:
        lines += ["", "Docker sandbox lifecycle (`DockerSandboxProvider`, k sandboxes created at once; "
                  "create = container started, shells answering; p50 / max per sandbox):", "",
                  "| k | create | first command | close | all k ready | all k closed |",
                  "| ---: | ---: | ---: | ---: | ---: | ---: |"]
        for k, x in lc.items():
            if k == "warm":
                continue
            lines.append(f"| {k} | {fmt(x['create']['p50'], 0)} / {fmt(x['create']['max'], 0)} ms "
                         f"| {fmt(x['first']['p50'], 1)} / {fmt(x['first']['max'], 1)} ms "
                         f"| {fmt(x['close']['p50'], 0)} / {fmt(x['close']['max'], 0)} ms "
                         f"| {fmt(x['all_ready_s'])} s | {fmt(x['all_closed_s'])} s |")
        w = lc.get("warm")
        if w:
            lines += ["", f"Warm pool (`warm_pool: {w['size']}`, at steady state): rollout start (the provider's "
                      f"`create`) to first tool result p50 {fmt(w['p50_ms'], 1)} ms, p90 {fmt(w['p90_ms'], 1)} ms "
                      f"over {w['n']} rollouts ({w['hits']} served warm)."]
    elif lc:
        lines += ["", f"Docker lifecycle: error: {lc['error'][-300:]}"]
    return "\n".join(lines) + "\n"


def write_doc(path: Path, body: str) -> None:
    block = (f"{START}\n## Every tool path beside a bare loop\n\n<!-- written by tools/bench_paths.py; edit the "
             f"script, not this block -->\n\n{body}{END}")
    text = path.read_text() if path.exists() else "# Performance\n\n"
    if START in text and END in text:
        head, _, rest = text.partition(START)
        text = head + block + rest.partition(END)[2]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text)
