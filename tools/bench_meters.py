"""The process meters every benchmark child uses: CPU, RSS now and at peak, an RSS sample later.

Standard library only, so NeMo Evaluator's interpreter (tools/bench_nel.py) reads
its process exactly as react-eval's children read theirs.
"""

from __future__ import annotations

import asyncio
import os
import resource


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


def sample_rss(at: float | None, into: list[int]) -> asyncio.Future | None:
    """Append this process's RSS to ``into`` ``at`` seconds from now (None: no sample)."""
    if not at:
        return None

    async def sample() -> None:
        await asyncio.sleep(at)
        into.append(rss_kb())

    return asyncio.ensure_future(sample())
