"""Rollouts/s of the Docker sandbox provider with 1 and with 2 Docker engines, on the same work.

A rollout here is what a sandbox sees of one: a container created (with the
control shell and the persistent bash), ``--turns`` bash commands with a
``--think`` pause before each (the model's time), then removal. ``--rollouts``
of them run ``--concurrency`` at a time through one ``DockerSandboxProvider``
whose config lists one engine, then two (``hosts:``). Both engines are private
dockerds started by this script (tests/support/private_dockerd.py: own socket,
data root, exec root, network namespace), loaded with the sandbox image from the
shared engine, and removed at the end; the shared engine is only read from.

On one machine both engines share its cores, so this measures what a second
engine buys when one dockerd's own serialisation (not the CPU) is the limit;
on separate machines each engine brings its cores too. Needs root.

    python tools/bench_docker_hosts.py [--rollouts 48] [--concurrency 16] [--turns 3] [--think 0.2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from react_eval.sandboxes.docker import DockerSandboxConfig, DockerSandboxProvider  # noqa: E402
from react_eval.sandboxes.docker.config import DEFAULT_IMAGE  # noqa: E402
from tests.support.private_dockerd import PrivateDockerd  # noqa: E402


async def workload(hosts: list[str], args: argparse.Namespace) -> dict[str, float]:
    config = DockerSandboxConfig(hosts=hosts, concurrency=args.concurrency, memory="256m", cpus=1)
    provider = DockerSandboxProvider(config, run_id=f"bench-hosts-{uuid.uuid4().hex[:8]}")
    await provider.connect()
    placed: dict[str, int] = {}
    failed = 0
    limit = anyio.Semaphore(args.concurrency)

    async def rollout(i: int) -> None:
        nonlocal failed
        async with limit:
            try:
                box = await provider.create(None, labels={})
                try:
                    placed[box.info.extra["docker_host"]] = placed.get(box.info.extra["docker_host"], 0) + 1
                    for turn in range(args.turns):
                        await anyio.sleep(args.think)
                        r = await box.exec(f"echo r{i}t{turn}", 60)
                        if r.output != f"r{i}t{turn}\n":
                            failed += 1
                finally:
                    await box.close()
            except Exception as exc:  # noqa: BLE001 - counted and shown
                failed += 1
                print(f"  rollout {i}: {type(exc).__name__}: {exc}", file=sys.stderr)

    t0, c0 = time.perf_counter(), time.process_time()
    async with anyio.create_task_group() as tg:
        for i in range(args.rollouts):
            tg.start_soon(rollout, i)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    await provider.aclose()
    return {"rollouts_per_s": args.rollouts / wall, "wall_s": wall, "cpu_ms_per_rollout": 1000 * cpu / args.rollouts,
            "failed": failed, "placed": sorted(placed.values())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rollouts", type=int, default=48)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--turns", type=int, default=3)
    parser.add_argument("--think", type=float, default=0.2, help="seconds before each command (the model)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per setting; the median is reported")
    parser.add_argument("--image", default=DEFAULT_IMAGE)
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root (it starts two private dockerds)")
    root = Path(tempfile.mkdtemp(prefix="bench-hosts-", dir="/tmp"))
    engines = [PrivateDockerd(root / f"e{i}") for i in range(2)]
    try:
        for engine in engines:
            engine.start()
            engine.load_image(args.image)
        results: dict[int, list[dict[str, float]]] = {1: [], 2: []}
        for _ in range(args.repeats):  # interleaved, so drifting load hits both settings alike
            for count in (1, 2):
                r = anyio.run(workload, [e.host for e in engines[:count]], args)
                results[count].append(r)
                print(f"{count} host(s): {r['rollouts_per_s']:.2f} rollouts/s, {r['cpu_ms_per_rollout']:.1f} ms CPU "
                      f"per rollout, placed {r['placed']}, failed {r['failed']}", file=sys.stderr)
        print(f"\n{args.rollouts} rollouts, {args.concurrency} at once, {args.turns} bash calls each after "
              f"{args.think:g} s of model time; median of {args.repeats}; `{' '.join(sys.argv[1:]) or 'defaults'}`\n")
        print("| Docker hosts | rollouts/s | × 1 host | client CPU per rollout | failed |")
        print("| ---: | ---: | ---: | ---: | ---: |")
        base = statistics.median(r["rollouts_per_s"] for r in results[1])
        for count in (1, 2):
            rate = statistics.median(r["rollouts_per_s"] for r in results[count])
            cpu = statistics.median(r["cpu_ms_per_rollout"] for r in results[count])
            print(f"| {count} | {rate:.2f} | {rate / base:.2f}× | {cpu:.1f} ms | "
                  f"{sum(r['failed'] for r in results[count])} |")
    finally:
        for engine in engines:
            engine.close()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
