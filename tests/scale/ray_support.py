"""A Ray cluster of several nodes on this machine, for the Ray executor's tests and benchmark.

Every node is a real raylet with its own worker processes (``ray.cluster_utils.Cluster``),
sized for a 2-core machine: one CPU and an 80 MB object store each, no dashboard.
:meth:`LocalRayCluster.shutdown` ends every process the cluster started and
returns those that would not end."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
NODE_ARGS: dict[str, Any] = {"num_cpus": 1, "object_store_memory": 80 << 20}


class LocalRayCluster:
    def __init__(self) -> None:
        import psutil
        import ray
        from ray.cluster_utils import Cluster

        # the nodes' workers import react_eval and the tests' benchmarks from this tree
        path = os.environ.get("PYTHONPATH", "")
        if str(REPO) not in path.split(os.pathsep):
            os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), path) if p)
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        self._before = {p.pid for p in psutil.Process().children(recursive=True)}
        self.cluster = Cluster(initialize_head=True, connect=True,
                               head_node_args={**NODE_ARGS, "include_dashboard": False,
                                               # a killed node is declared dead in ~3 s, not ~30 s
                                               "_system_config": {"health_check_period_ms": 1000,
                                                                  "health_check_failure_threshold": 3}})
        self.ray = ray

    @property
    def address(self) -> str:
        return self.cluster.address

    def add_node(self) -> Any:
        node = self.cluster.add_node(**NODE_ARGS)
        self.cluster.wait_for_nodes()
        return node

    def remove_node(self, node: Any) -> None:
        """Kill the node's processes (raylet, object store, workers) and wait until the
        cluster has declared it dead, so the next run does not place actors on it."""
        import time

        self.cluster.remove_node(node, allow_graceful=False)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if not any(n["NodeID"] == node.node_id and n["Alive"] for n in self.ray.nodes()):
                return
            time.sleep(0.2)
        raise TimeoutError(f"Ray still reports node {node.node_id} alive 60 s after it was killed")

    def shutdown(self) -> list[int]:
        """Stop Ray; the pids of this cluster's processes still alive after 30 s (should be none)."""
        import psutil

        started = [p for p in psutil.Process().children(recursive=True) if p.pid not in self._before]
        self.ray.shutdown()
        self.cluster.shutdown()
        _, alive = psutil.wait_procs(started, timeout=30)
        for proc in alive:  # reported by the caller; not left behind either way
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                pass
        return [p.pid for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
