"""A benchmark whose grades say where they ran: the Ray node and the process."""

from __future__ import annotations

import os
import time

from react_eval.benchmarks.base import Benchmark, Verification
from react_eval.types import Task


def where() -> dict[str, object]:
    node = None
    try:
        import ray

        if ray.is_initialized():
            node = ray.get_runtime_context().get_node_id()
    except ImportError:
        pass
    return {"pid": os.getpid(), "node": node}


class NodeBenchmark(Benchmark):
    """Task ``q<i>`` asks "question i"; the answer "answer to q<i>" scores 1."""

    name = "node-bench"
    description = "test benchmark: grades name the Ray node that ran them"

    def __init__(self, n: int = 8, work_ms: float = 0.0, fail_elsewhere: bool = False):
        self.n = n
        #: building the runner fails in any process but the one that made the benchmark
        self.fail_elsewhere, self.made_in = fail_elsewhere, os.getpid()
        #: CPU time each grade spends (a stand-in for a grader's work; tools/bench_scaling.py)
        self.work_ms = work_ms

    def tool_sources(self):
        if self.fail_elsewhere and os.getpid() != self.made_in:
            raise RuntimeError(f"no tools in process {os.getpid()}")
        return []

    def tasks(self) -> list[Task]:
        return [Task(id=f"q{i}", prompt=f"question {i}") for i in range(self.n)]

    async def verify(self, task, answer, env) -> Verification:
        if self.work_ms:
            end = time.thread_time() + self.work_ms / 1000
            while time.thread_time() < end:
                pass
        return Verification(reward=1.0 if answer.final_message == f"answer to {task.id}" else 0.0, details=where())


def answer_by_task(req):
    from tests.support.scripted_server import answer

    return answer("answer to q" + req.first_user_text.split()[-1])


def node_config(srv, *, address: str | None, n: int, repeats: int = 1, max_concurrent: int = 4,
                max_retries: int = 1) -> dict:
    return {
        "services": {"model": {"type": "api", "base_url": srv.base_url, "model": "scripted",
                               "max_concurrent": max_concurrent, "max_attempts": 1}},
        "executor": {"type": "ray", "address": address, "max_retries": max_retries},
        "benchmarks": [{"name": "node-bench", "repeats": repeats, "max_concurrent": max_concurrent,
                        "options": {"n": n}, "solver": {"service": "model", "sandbox_tools": False}}],
    }
