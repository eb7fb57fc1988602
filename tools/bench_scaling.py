"""Scale-out benchmark: rollouts/s with 1 and 2 Ray nodes on the same work.

    python tools/bench_scaling.py            # 240 rollouts per measurement
    python tools/bench_scaling.py --rollouts 120 --repeat 1

A Ray cluster of one or two nodes is started on this machine
(``ray.cluster_utils.Cluster``: a raylet, object store and workers per node, one
CPU each), with ``executor: {type: ray}`` placing one rollout actor per node.
The model is ``tools/bench_server.py`` in its own process (a one-turn answer per
rollout). Two workloads, each with the same ``max_concurrent`` for 1 and 2 nodes:

* ``cpu``: every grade spends ``--work-ms`` of CPU (a grader's work): one node's
  actor is one process on one core, two nodes' actors are two processes;
* ``latency``: the model answers after ``--latency-ms``, nothing else costs CPU:
  the cluster-wide limit holds, so two nodes should not be faster, only not slower.

rollouts/s counts from the first rollout dealt to the last record written
(actor start-up, printed separately, excluded). On a machine with 2 cores shared
by the model server, the driver and both nodes, two nodes cannot reach 2x.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import anyio  # noqa: E402

from react_eval.benchmarks import registry  # noqa: E402
from react_eval.engine.config import validate_config  # noqa: E402
from react_eval.engine.run import run_benchmark  # noqa: E402
from tests.scale.node_bench import NodeBenchmark  # noqa: E402
from tests.scale.ray_support import LocalRayCluster  # noqa: E402


def start_server() -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen([sys.executable, str(ROOT / "tools" / "bench_server.py"), "--port", "0"],
                            stdout=subprocess.PIPE, text=True)
    port = json.loads(proc.stdout.readline())["port"]
    return proc, port


def control(port: int, **settings) -> None:
    import urllib.request

    req = urllib.request.Request(f"http://127.0.0.1:{port}/control", data=json.dumps(settings).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    urllib.request.urlopen(req, timeout=10).read()


def measure(cluster: LocalRayCluster, port: int, rollouts: int, work_ms: float, max_concurrent: int) -> dict:
    config = validate_config({
        "services": {"model": {"type": "api", "base_url": f"http://127.0.0.1:{port}/v1", "model": "bench",
                               "max_concurrent": max_concurrent, "max_attempts": 1}},
        "executor": {"type": "ray", "address": cluster.address},
        "benchmarks": [{"name": "node-bench", "max_concurrent": max_concurrent,
                        "options": {"n": rollouts, "work_ms": work_ms},
                        "solver": {"service": "model", "sandbox_tools": False}}],
    })
    executor = config.executor.build(max_concurrent)
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        run = anyio.run(lambda: run_benchmark(config, config.benchmarks[0], Path(out), run_id="bench",
                                              executor=executor))
        wall = time.perf_counter() - t0
    assert run.summary["rollouts"] == rollouts, run.summary
    busy = wall - (executor.startup_s or 0.0)
    return {"rollouts_per_s": rollouts / busy, "startup_s": executor.startup_s,
            "nodes_used": len(set(executor.placements.values()))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rollouts", type=int, default=240)
    parser.add_argument("--work-ms", type=float, default=20.0, help="CPU per grade in the cpu workload")
    parser.add_argument("--latency-ms", type=float, default=100.0, help="model latency in the latency workload")
    parser.add_argument("--max-concurrent", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=2, help="measurements per cell (the best is printed)")
    args = parser.parse_args()
    registry.register(NodeBenchmark.name, NodeBenchmark)
    server, port = start_server()
    cluster = LocalRayCluster()
    results: dict[tuple[str, int], dict] = {}
    try:
        extra = None
        for nodes in (1, 2):
            if nodes == 2:
                extra = cluster.add_node()
            for workload, latency, work in (("cpu", 0.0, args.work_ms), ("latency", args.latency_ms, 0.0)):
                control(port, latency_ms=latency, turns=1)
                runs = [measure(cluster, port, args.rollouts, work, args.max_concurrent) for _ in range(args.repeat)]
                best = max(runs, key=lambda r: r["rollouts_per_s"])
                results[(workload, nodes)] = best
                each = ", ".join(f"{r['rollouts_per_s']:.1f}" for r in runs)
                print(f"{workload:8s} nodes={nodes} rollouts/s={best['rollouts_per_s']:.1f} (all: {each}) "
                      f"actor start-up {best['startup_s']:.2f} s, nodes used {best['nodes_used']}", flush=True)
        if extra is not None:
            cluster.remove_node(extra)
    finally:
        left = cluster.shutdown()
        server.terminate()
        server.wait()
    print(f"\nmachine: {os.cpu_count()} CPUs (shared); {args.rollouts} rollouts per run, "
          f"max_concurrent {args.max_concurrent} cluster-wide; cpu: {args.work_ms:g} ms CPU per grade, "
          f"latency: {args.latency_ms:g} ms per model reply")
    print("| workload | 1 node rollouts/s | 2 nodes rollouts/s | 2 / 1 |")
    print("|---|---:|---:|---:|")
    for workload in ("cpu", "latency"):
        one, two = results[(workload, 1)]["rollouts_per_s"], results[(workload, 2)]["rollouts_per_s"]
        print(f"| {workload} | {one:.1f} | {two:.1f} | {two / one:.2f}x |")
    if left:
        print(f"warning: Ray processes left running: {left}", file=sys.stderr)


if __name__ == "__main__":
    main()
