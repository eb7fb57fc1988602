"""tools/bench_paths_report.py: row sizes, repeats' medians and ranges, the NEL column."""

from __future__ import annotations

import pytest

from tests.support.tool_scripts import load_tool_script

report = load_tool_script("bench_paths_report")
MACHINE = {"uname": "Linux t", "cpus": "2 cpus", "memory": "1 GiB", "python": "3.11", "date": "d", "commit": "abc"}


def run(cpu_s: float, turns: int = 400, wall_s: float = 2.0, rollouts: int = 100, failed: int = 0,
        children_cpu_s: float = 0.0) -> dict:
    return {"cpu_s": cpu_s, "turns": turns, "wall_s": wall_s, "rollouts": rollouts, "failed": failed, "dropped": 0,
            "peak_rss_kb": 80 * 1024, "children_cpu_s": children_cpu_s}


def row(path: str, reps: dict[str, list[dict]]) -> dict:
    out = {"path": path, "concurrency": 16, "latency_ms": 0.0, "rollouts": 100, "reps": reps}
    for kind, runs in reps.items():
        out[kind] = report.median_run(runs)
    return out


def table_line(text: str, label: str) -> list[str]:
    line = next(ln for ln in text.splitlines() if ln.startswith(f"| {label} |"))
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_rows_have_enough_turns_for_a_steady_cpu_figure():
    for conc in (1, 16, 256, 1000):
        for path in ("inprocess", "gym", "local", "bwrap", "gym+local"):
            n = report.rollouts_for(conc, 0.0, path, turns=4, quick=True)
            assert n * 4 >= 400 and n >= conc
    # C = 1 with a slow model: a time budget (8 s of model time in --quick), not a fixed 3 rollouts
    assert report.rollouts_for(1, 200.0, "gym", turns=4, quick=True) == 10
    assert report.rollouts_for(1, 200.0, "gym", turns=4, quick=False) == 30
    assert report.warmup_for(1000, "gym") == 16 and report.warmup_for(1, "gym") == 1
    assert report.warmup_for(16, "docker+warm") == 2


def test_median_run_keeps_the_median_and_the_spread():
    runs = [run(0.30, wall_s=1.0), run(0.10, wall_s=4.0), run(0.20, wall_s=0.5), {"error": "boom"}]
    med = report.median_run(runs)
    assert med["cpu_s"] == 0.20 and med["repeats"] == 3
    assert med["cpu_range"] == pytest.approx([0.25, 0.75])  # ms per turn, 400 turns
    # rollouts/s is its own median (100 rollouts in 4, 1, 0.5 s), not the CPU-median run's 200/s
    assert report.median_rate(med) == 100.0 and med["rate_range"] == [25.0, 200.0]
    assert report.median_run([{"error": "boom"}]) == {"error": "boom"}


def test_nel_column_gives_react_evals_multiple_of_nel_pair_by_pair():
    gym = row("gym", {"engine": [run(0.40), run(0.60), run(0.50)], "bare": [run(0.20)] * 3,
                      "nel": [run(0.40), run(0.30), run(1.00)]})
    local = row("local", {"engine": [run(0.8)], "bare": [run(0.2)]})
    text = report.render({"turns": 4, "repeat": 3, "runs": [gym, local], "memory": {},
                          "nel": {"python": "/x/python", "version": "0.3.0"}}, MACHINE, True)
    cells = table_line(text, "Gym resources server")
    # CPU / turn: median 1.25 ms of 1.0–1.5; × bare: median of 2.0, 3.0, 2.5; NEL: median 1.0 ms of 0.75–2.5;
    # × NEL: pairs 0.40/0.40, 0.60/0.30, 0.50/1.00 -> 1.0, 2.0, 0.5 -> median 1.00 (0.50–2.00)
    assert cells[4] == "1.250 ms (1.000–1.500)"
    assert cells[6] == "2.50× (2.00–3.00×)"
    assert cells[7] == "–"  # no sandbox processes on the Gym path
    assert cells[8] == "1.000 ms (0.750–2.500)"
    assert cells[9] == "1.00× (0.50–2.00×)"
    assert "nemo-evaluator 0.3.0" in text
    local_cells = table_line(text, "local sandbox bash")
    assert local_cells[8:10] == ["–", "–"] and local_cells[6] == "4.00×"


def test_a_missing_nel_venv_is_said_not_hidden():
    gym = row("gym", {"engine": [run(0.4)], "bare": [run(0.2)]})
    text = report.render({"turns": 4, "runs": [gym], "memory": {},
                          "nel": {"error": "no Python >= 3.12 found"}}, MACHINE, True)
    assert "no NEL column in this run: no Python >= 3.12 found" in text
    assert table_line(text, "Gym resources server")[8:10] == ["–", "–"]


def test_old_results_without_repeats_still_render():
    old = {"path": "gym", "concurrency": 16, "latency_ms": 200.0, "rollouts": 32,
           "engine": run(0.4, turns=128, rollouts=32), "bare": run(0.2, turns=128, rollouts=32)}
    text = report.render({"turns": 4, "runs": [old], "memory": {"gym": {
        "engine": {"concurrency": 1000, "rss0_mb": 80, "rss_mid_mb": 110, "per_rollout_kib": 30.7},
        "bare": {"per_rollout_kib": 20.0}}}}, MACHINE, True)
    cells = table_line(text, "Gym resources server")
    assert cells[4] == "3.125 ms" and cells[6] == "2.00×"
    assert "| Gym resources server | 1000 | 80 → 110 MiB | 31 KiB | 20 KiB | – |" in text


def test_sandbox_processes_are_their_own_column_for_both_clients():
    # the client's own CPU stays in "CPU / turn"; bash's (RUSAGE_CHILDREN) is reported beside it for both
    local = row("local", {"engine": [run(0.8, children_cpu_s=0.4)], "bare": [run(0.2, children_cpu_s=0.1)]})
    cells = table_line(report.render({"turns": 4, "runs": [local], "memory": {}}, MACHINE, True), "local sandbox bash")
    assert cells[4] == "2.000 ms" and cells[6] == "4.00×"
    assert cells[7] == "1.000 ms (0.250 ms)"
    # no sandbox processes (or a float's noise from an older run): a dash, not "-0.000 ms"
    gym = row("gym", {"engine": [run(0.8, children_cpu_s=-1e-7)], "bare": [run(0.2)]})
    assert table_line(report.render({"turns": 4, "runs": [gym], "memory": {}}, MACHINE, True),
                      "Gym resources server")[7] == "–"


def test_a_workers_row_is_labelled_and_says_what_it_counts():
    one = row("inprocess", {"engine": [run(0.8)], "bare": [run(0.4)]})
    two = row("inprocess", {"engine": [dict(run(1.0, wall_s=1.0), workers=2, startup_s=0.125,
                                            worker_peak_rss_kb=60 * 1024)], "bare": [run(0.4)]})
    two["workers"] = 2
    text = report.render({"turns": 4, "runs": [one, two], "memory": {}}, MACHINE, True)
    plain, workers = table_line(text, "in-process tool"), table_line(text, "in-process tool, **workers: 2**")
    assert (plain[4], plain[6]) == ("2.000 ms", "2.00×")
    assert (workers[4], workers[6]) == ("2.500 ms", "2.50×")  # CPU / turn as the row's run reported it
    assert workers[10] == "100.0" and workers[12] == "200%"  # 100 rollouts in 1 s, against the bare 50/s
    assert (plain[15], workers[15]) == ("80 MiB", "80 MiB + 2× 60 MiB")  # the workers' memory is not hidden
    assert "workers' start-up (run start to every worker ready): in-process tool 125 ms" in text.lower()
    assert "**workers: N**" not in report.render({"turns": 4, "runs": [one], "memory": {}}, MACHINE, True)
