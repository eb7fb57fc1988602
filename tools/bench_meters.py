"""The process meters every benchmark child uses: CPU, RSS now and at peak, an RSS sample later;
and, for the per-call benchmarks, the best of fresh children alternating.

Standard library only, so NeMo Evaluator's interpreter (tools/bench_nel.py) reads
its process exactly as react-eval's children read theirs.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import urllib.request


def cpu_s() -> float:
    """This process's CPU time, user + system (exact to the microsecond on Linux)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def children_cpu_s() -> float:
    """CPU time of this process's finished, waited-for children (a sandbox's bash, bwrap): reported
    beside the client's own, the same way for every client, so work moved into them still shows."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def rss_kb() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)


def peak_rss_kb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def parked_on_model(spec: dict) -> tuple[str, int]:
    """For ``sample_rss``: the scripted model's /stats, and how many first calls park every rollout."""
    return f"http://127.0.0.1:{spec['model_port']}/stats", spec["concurrency"]


def sample_rss(at: float | None, into: list[int], stats_url: str = "", expect: int = 0) -> asyncio.Future | None:
    """Append this process's RSS to ``into`` once the rollouts are parked: with ``stats_url``
    (the scripted model's ``/stats``), when it has seen ``expect`` more requests than now,
    then ``at``/10 s more (each rollout's first call is waiting on the slow model; a
    fixed delay could sample while, on a loaded machine, rollouts are still connecting);
    without it, ``at`` seconds from now. None for ``at``: no sample."""
    if not at:
        return None

    def requests() -> int:
        with urllib.request.urlopen(stats_url, timeout=10) as resp:
            return int(json.loads(resp.read())["requests"])

    async def sample() -> None:
        if stats_url and expect:
            loop = asyncio.get_running_loop()
            start, deadline = await loop.run_in_executor(None, requests), loop.time() + 120
            while await loop.run_in_executor(None, requests) < start + expect and loop.time() < deadline:
                await asyncio.sleep(0.05)
            await asyncio.sleep(at / 10)
        else:
            await asyncio.sleep(at)
        into.append(rss_kb())

    return asyncio.ensure_future(sample())


def print_per_call_table(script: str, spec: dict, concurrency: str, reps: int, root: str, unit: str) -> None:
    """One markdown row per concurrency: the least µs per ``unit`` of react-eval's child and of
    the bare loop's (``python script --child SPEC``, a fresh process each time, the two
    alternating, ``reps`` times each: CPU per call is steadier in its minimum than in its mean
    on a shared machine), their difference and their ratio."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": root}
    print(f"| C | react-eval µs/{unit} | bare µs/{unit} | react-eval − bare | react-eval ÷ bare |\n"
          "| ---: | ---: | ---: | ---: | ---: |")
    for conc in (int(c) for c in concurrency.split(",")):
        best: dict[str, float] = {}
        for _ in range(reps):
            for kind in ("engine", "bare"):
                child = json.dumps({**spec, "concurrency": conc, "kind": kind})
                out = subprocess.run([sys.executable, script, "--child", child], capture_output=True, text=True,
                                     env=env, cwd=root, timeout=600)
                if out.returncode != 0:
                    raise SystemExit(f"{kind} child failed:\n{out.stderr[-2000:]}")
                us = json.loads(out.stdout.strip().splitlines()[-1])["us"]
                best[kind] = min(best.get(kind, us), us)
        engine, bare = best["engine"], best["bare"]
        print(f"| {conc} | {engine:.1f} | {bare:.1f} | {engine - bare:+.1f} | {engine / bare:.2f} |", flush=True)


def add_rep_options(parser) -> None:
    """The options of a per-call benchmark's repeats, and its hidden ``--child SPEC``."""
    parser.add_argument("--rounds", type=int, default=3, help="rounds per process; the best is kept")
    parser.add_argument("--reps", type=int, default=3, help="fresh processes per client and concurrency")
    import argparse

    parser.add_argument("--child", help=argparse.SUPPRESS)  # one child: a JSON object of measure()'s arguments


def print_child_us(spec: str, measure) -> None:
    """A child's whole work: ``measure(**SPEC)`` (a coroutine function), printed as ``{"us": …}``."""
    print(json.dumps({"us": asyncio.run(measure(**json.loads(spec)))}))
