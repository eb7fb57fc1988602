"""The process meters every benchmark child uses: CPU, RSS now and at peak, an RSS sample later.

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
