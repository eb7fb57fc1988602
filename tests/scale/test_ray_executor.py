"""The Ray executor on a real multi-node Ray cluster on this machine, with a scripted
model over real HTTP: rollouts spread over the nodes, every (task, repeat) written
once by the driver, and a node killed mid-run."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from datetime import datetime
from pathlib import Path

import anyio
import pytest

from react_eval.engine.config import validate_config
from react_eval.engine.executor import FatalRunError
from react_eval.engine.ray_executor import NodeLostError, RayExecutor, RayStartError
from react_eval.engine.results import load_results
from react_eval.engine.run import RunOptions, run_benchmark
from tests.harbor_atif import validate_with_harbor
from tests.scale.node_bench import NodeBenchmark, answer_by_task, node_config
from tests.support.scripted_server import http_error

if not os.environ.get("CI"):  # CI installs the dev extra, which brings ray: there the tests must run
    pytest.importorskip("ray", reason="the ray extra is not installed (pip install -e '.[dev]' installs it)")


@pytest.fixture(autouse=True)
def node_benchmark(monkeypatch):
    from react_eval.benchmarks import registry

    registry.register(NodeBenchmark.name, NodeBenchmark)  # beside the built-ins, which stay
    yield
    registry.unregister(NodeBenchmark.name)


def check_exactly_once(out: Path, n: int, repeats: int) -> list:
    rows = load_results(out / "results.jsonl")
    keys = Counter((r.task_id, r.repeat) for r in rows)
    assert keys == Counter({(f"q{i}", r): 1 for i in range(n) for r in range(repeats)})
    assert all(r.reward == 1.0 and r.error_kind is None for r in rows)
    trajectories = [json.loads(x) for x in (out / "trajectories.jsonl").read_text().splitlines()]
    assert Counter((t["extra"]["task_id"], t["extra"]["repeat"]) for t in trajectories) == keys
    for t in trajectories[:3] + trajectories[-3:]:
        assert validate_with_harbor(t) == []
    return rows


def peak_in_flight(rows) -> int:
    """The most rollouts running at one moment, from their start and end times."""
    events = sorted([(datetime.fromisoformat(r.started_at), 1) for r in rows] +
                    [(datetime.fromisoformat(r.finished_at), -1) for r in rows], key=lambda e: (e[0], e[1]))
    peak = current = 0
    for _, step in events:
        current += step
        peak = max(peak, current)
    return peak


def run_with(config, out: Path, executor: RayExecutor, options: RunOptions | None = None):
    return run_benchmark(config, config.benchmarks[0], out, run_id="r1", executor=executor, options=options)


def test_rollouts_spread_over_two_nodes_and_are_written_once(ray_cluster, scripted_server, tmp_path):
    worker = ray_cluster.add_node()
    try:
        srv = scripted_server(answer_by_task, latency=0.05)
        config = validate_config(node_config(srv, address=ray_cluster.address, n=12, repeats=2))
        executor = config.executor.build(config.benchmarks[0].max_concurrent)
        anyio.run(run_with, config, tmp_path, executor)
        rows = check_exactly_once(tmp_path, 12, 2)
        nodes = {r.verification["node"] for r in rows}
        assert nodes == {ray_cluster.cluster.head_node.node_id, worker.node_id}
        assert {r.verification["node"] for r in rows} == set(executor.placements.values())
        assert all(executor.placements[(r.task_id, r.repeat)] == r.verification["node"] for r in rows)
        assert len(srv.requests) == 24 and executor.reruns == [] and executor.dead_nodes == set()
        # max_concurrent (4) holds for the cluster, not per node: 2 slots per node's actor
        assert 2 < peak_in_flight(rows) <= 4
    finally:
        ray_cluster.remove_node(worker)


def run_killing(ray_cluster, node, srv, after_requests: int, config, out: Path, executor) -> NodeLostError | None:
    """Run, killing ``node`` once the model has had ``after_requests`` requests and ``node`` has written a
    rollout (so its actor is up and, with work left, has the next rollouts in flight: on a loaded machine
    the worker's actor can start after the head has taken the first requests); returns the
    NodeLostError the run ended with, if any."""
    async def killer():
        while len(srv.requests) < after_requests or node.node_id not in executor.placements.values():
            await anyio.sleep(0.02)
        await anyio.to_thread.run_sync(ray_cluster.remove_node, node)

    async def main():
        raised = None
        async with anyio.create_task_group() as tg:
            tg.start_soon(killer)
            try:
                await run_with(config, out, executor)
            except NodeLostError as exc:
                raised = exc
            tg.cancel_scope.cancel()  # a run that ended before the kill: the asserts say so
        return raised

    return anyio.run(main)


def test_a_node_killed_mid_run_has_its_rollouts_rerun_once_elsewhere(ray_cluster, scripted_server, tmp_path):
    worker = ray_cluster.add_node()
    srv = scripted_server(answer_by_task, latency=0.25)
    config = validate_config(node_config(srv, address=ray_cluster.address, n=20, repeats=2))
    executor = config.executor.build(config.benchmarks[0].max_concurrent)
    assert run_killing(ray_cluster, worker, srv, 8, config, tmp_path, executor) is None
    rows = check_exactly_once(tmp_path, 20, 2)
    head = ray_cluster.cluster.head_node.node_id
    assert executor.dead_nodes == {worker.node_id}
    assert executor.reruns, "the killed node had rollouts in flight: they must have been re-run"
    assert all(executor.placements[key] == head for key in executor.reruns)
    on_worker = [r for r in rows if r.verification["node"] == worker.node_id]
    assert 0 < len(on_worker) < 40 and len(rows) - len(on_worker) > len(executor.reruns)
    eval_json = json.loads((tmp_path / "eval.json").read_text())
    assert eval_json["metrics"]["rollouts"] == 40


def test_with_no_retries_the_lost_rollouts_are_named_and_resume_runs_only_them(ray_cluster, scripted_server,
                                                                               tmp_path):
    worker = ray_cluster.add_node()
    srv = scripted_server(answer_by_task, latency=0.25)
    config = validate_config(node_config(srv, address=ray_cluster.address, n=32, max_retries=0))
    executor = config.executor.build(config.benchmarks[0].max_concurrent)

    raised = run_killing(ray_cluster, worker, srv, 6, config, tmp_path, executor)
    assert raised is not None
    assert re.search(r"rollout\(s\) have no row \(q\d+#0.*max_retries \(0\) used up.*--resume", str(raised))
    first = load_results(tmp_path / "results.jsonl")
    assert 0 < len(first) < 32 and len({r.task_id for r in first}) == len(first)
    before = len(srv.requests)
    executor = config.executor.build(config.benchmarks[0].max_concurrent)
    anyio.run(lambda: run_with(config, tmp_path, executor, RunOptions(resume=True)))
    check_exactly_once(tmp_path, 32, 1)
    assert len(srv.requests) - before == 32 - len(first)  # only the missing rollouts ran again
    assert set(executor.placements.values()) == {ray_cluster.cluster.head_node.node_id}


def test_a_rejected_key_stops_the_run_on_every_node(ray_cluster, scripted_server, tmp_path):
    worker = ray_cluster.add_node()
    try:
        srv = scripted_server(lambda req: http_error(401, message="bad key"), latency=0.05)
        config = validate_config(node_config(srv, address=ray_cluster.address, n=40))
        executor = config.executor.build(config.benchmarks[0].max_concurrent)
        with pytest.raises(FatalRunError, match="401"):
            anyio.run(run_with, config, tmp_path, executor)
        rows = load_results(tmp_path / "results.jsonl")
        assert 1 <= len(rows) <= 4 and all(r.error_kind == "auth_error" for r in rows)
        assert len(srv.requests) <= 4  # nothing more was dealt once the key was refused
    finally:
        ray_cluster.remove_node(worker)


def test_a_runner_that_cannot_be_built_on_a_node_fails_the_run_with_its_traceback(ray_cluster, scripted_server,
                                                                                   tmp_path):
    srv = scripted_server(answer_by_task)
    data = node_config(srv, address=ray_cluster.address, n=4)
    data["benchmarks"][0]["options"]["fail_elsewhere"] = True
    config = validate_config(data)
    executor = config.executor.build(config.benchmarks[0].max_concurrent)
    with pytest.raises(RayStartError, match=r"could not build its rollout runner:(.|\n)*no tools in process"):
        anyio.run(run_with, config, tmp_path, executor)
    assert srv.requests == [] and not (tmp_path / "results.jsonl").read_bytes()


def test_the_cli_flag_runs_a_builtin_benchmark_on_the_cluster(ray_cluster, tmp_path):
    worker = ray_cluster.add_node()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "react_eval.cli", "run", "--bench", "smoke", "--model", "oracle",
             "--ray-address", ray_cluster.address, "-o", str(tmp_path), "--no-progress"],
            capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert f"Connecting to existing Ray cluster at address: {ray_cluster.address}" in proc.stderr
        rows = load_results(tmp_path / "smoke" / "results.jsonl")
        assert len(rows) == 6 and len({r.task_id for r in rows}) == 6
        assert all(r.reward == 1.0 for r in rows)
        eval_json = json.loads((tmp_path / "smoke" / "eval.json").read_text())
        assert eval_json["config"]["executor"]["type"] == "ray"
        assert eval_json["config"]["executor"]["address"] == ray_cluster.address
    finally:
        ray_cluster.remove_node(worker)


def test_without_ray_the_error_names_the_extra(tmp_path):
    code = ("import sys; sys.modules['ray'] = None\n"
            "from react_eval.engine.config import ConfigError, validate_config\n"  # refused at load, before a run
            "try:\n    validate_config({'services': {'m': {'type': 'api', 'base_url': 'http://127.0.0.1:9/v1', "
            "'model': 'x'}}, 'executor': {'type': 'ray'}, 'benchmarks': [{'name': 'smoke', "
            "'solver': {'service': 'm'}}]})\n"
            "except ConfigError as exc:\n    print(exc)\n"
            "from react_eval.engine.ray_executor import import_ray\n"
            "import_ray()\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "executor: executor type ray needs Ray, which is not installed: pip install 'react-eval[ray]'" in proc.stdout
    assert "RayMissing: executor type ray needs Ray, which is not installed: pip install 'react-eval[ray]'" \
        in proc.stderr
