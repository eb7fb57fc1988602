"""ProcessExecutor: rollouts in worker processes, records written by the parent."""

from __future__ import annotations

import json
import os
import pickle
import signal
import socket
import sys
from pathlib import Path

import anyio
import pytest

from react_eval.benchmarks.base import Benchmark, Verification
from react_eval.benchmarks.registry import get_benchmark
from react_eval.engine.config import validate_config
from react_eval.engine.executor import FatalRunError
from react_eval.engine.lines import EncodedRecord, RecordEncoder, RecordSink
from react_eval.engine.processes import ProcessExecutor, WorkerError
from react_eval.engine.results import RolloutFiles, load_results
from react_eval.engine.rollout import RolloutSpec
from react_eval.engine.run import EntryRunners, run_benchmark
from react_eval.types import Task
from tests.harbor_atif import validate_with_harbor
from tests.support.scripted_server import answer, http_error

CLI = [sys.executable, "-m", "react_eval.cli"]


class PidBenchmark(Benchmark):
    """Answers are graded by the process that ran the rollout, which signs its pid.
    The task named by ``kill_task`` kills its worker once, while ``marker`` does
    not exist (it creates the marker first, so a resumed run survives)."""

    name = "pid-bench"
    description = "test benchmark"

    def __init__(self, n: int = 8, kill_task: str | None = None, marker: str | None = None,
                 fail_elsewhere: bool = False):
        self.n, self.kill_task, self.marker = n, kill_task, marker
        self.fail_elsewhere, self.made_in = fail_elsewhere, os.getpid()

    def tool_sources(self):
        if self.fail_elsewhere and os.getpid() != self.made_in:
            raise RuntimeError("no tools in this process")
        return []

    def tasks(self) -> list[Task]:
        return [Task(id=f"p{i}", prompt=f"question {i}") for i in range(self.n)]

    async def verify(self, task, answer, env) -> Verification:
        if task.id == self.kill_task and self.marker and not os.path.exists(self.marker):
            Path(self.marker).touch()
            os.kill(os.getpid(), signal.SIGKILL)
        return Verification(reward=1.0 if answer.final_message == f"answer to {task.id}" else 0.0,
                            details={"pid": os.getpid()})


def config_for(srv, *, n: int = 8, workers: int = 2, max_concurrent: int = 4, **options):
    return validate_config({
        "services": {"model": {"type": "api", "base_url": srv.base_url, "model": "scripted", "max_concurrent": 6,
                               "max_attempts": 1}},
        "benchmarks": [{"name": "pid-bench", "workers": workers, "max_concurrent": max_concurrent,
                        "options": {"n": n, **options},
                        "solver": {"service": "model", "sandbox_tools": False}}],
    })


def answer_by_task(req):
    return answer("answer to p" + req.first_user_text.split()[-1])


@pytest.fixture(autouse=True)
def pid_benchmark(monkeypatch):
    from react_eval.benchmarks import registry

    registry.register(PidBenchmark.name, PidBenchmark)  # beside the built-ins, which stay
    yield
    registry.unregister(PidBenchmark.name)


async def run(config, out: Path, **kwargs):
    return await run_benchmark(config, config.benchmarks[0], out, run_id="r1", **kwargs)


def test_two_workers_run_every_rollout_once_in_two_other_processes(scripted_server, tmp_path):
    srv = scripted_server(answer_by_task)
    config = config_for(srv, n=12)
    anyio.run(run, config, tmp_path)
    rows = load_results(tmp_path / "results.jsonl")
    assert sorted(r.task_id for r in rows) == sorted(f"p{i}" for i in range(12))
    assert all(r.reward == 1.0 and r.error_kind is None for r in rows)
    pids = {r.verification["pid"] for r in rows}
    assert len(pids) == 2 and os.getpid() not in pids
    lines = (tmp_path / "trajectories.jsonl").read_text().splitlines()
    assert sorted(json.loads(x)["extra"]["task_id"] for x in lines) == sorted(r.task_id for r in rows)
    assert validate_with_harbor(json.loads(lines[0])) == []
    assert len(srv.requests) == 12


def test_results_match_the_in_process_executor(scripted_server, tmp_path):
    srv = scripted_server(answer_by_task)
    for workers in (1, 3):
        anyio.run(run, config_for(srv, n=9, workers=workers), tmp_path / str(workers))
    one, three = (load_results(tmp_path / w / "results.jsonl") for w in ("1", "3"))
    strip = {"started_at", "finished_at", "wall_ms", "model_latency_ms", "verification", "tool_latency_ms"}
    assert sorted((r.model_dump(exclude=strip) for r in one), key=str) == \
        sorted((r.model_dump(exclude=strip) for r in three), key=str)
    assert len({r.verification["pid"] for r in one}) == 1 and os.getpid() in {r.verification["pid"] for r in one}
    assert len({r.verification["pid"] for r in three}) == 3


def test_a_dead_worker_loses_only_its_rollouts_and_resume_finishes_the_run(scripted_server, tmp_path):
    srv = scripted_server(answer_by_task)
    marker = tmp_path / "killed-once"
    config = config_for(srv, n=10, max_concurrent=2, kill_task="p3", marker=str(marker))
    out = tmp_path / "out"
    with pytest.raises(WorkerError, match=r"died \(killed by signal 9\); 1 rollout\(s\).*p3#0.*--resume"):
        anyio.run(run, config, out)
    rows = load_results(out / "results.jsonl")
    assert sorted(r.task_id for r in rows) == sorted(f"p{i}" for i in range(10) if i != 3)
    assert (out / "eval.json").exists()  # the summary of what finished is still written

    from react_eval.engine.run import RunOptions

    anyio.run(lambda: run(config, out, options=RunOptions(resume=True)))
    rows = load_results(out / "results.jsonl")
    assert sorted(r.task_id for r in rows) == sorted(f"p{i}" for i in range(10))
    assert all(r.reward == 1.0 for r in rows)


def test_a_rejected_key_stops_every_worker(scripted_server, tmp_path):
    srv = scripted_server(lambda req: http_error(401, message="bad key"))
    config = config_for(srv, n=40, max_concurrent=4)
    with pytest.raises(FatalRunError, match="401"):
        anyio.run(run, config, tmp_path)
    rows = load_results(tmp_path / "results.jsonl")
    assert 1 <= len(rows) <= 4 and all(r.error_kind == "auth_error" for r in rows)
    assert len(srv.requests) <= 4


def test_a_worker_that_cannot_build_its_runner_fails_the_run_with_its_traceback(scripted_server, tmp_path):
    srv = scripted_server(answer_by_task)
    config = config_for(srv, n=4, fail_elsewhere=True)
    with pytest.raises(WorkerError, match=r"could not build its rollout runner:(.|\n)*no tools in this process"):
        anyio.run(run, config, tmp_path)


def test_run_wide_limits_are_split_among_the_runners(scripted_server, tmp_path):
    srv = scripted_server(answer_by_task)
    config = validate_config({
        "services": {"model": {"type": "api", "base_url": srv.base_url, "model": "m", "max_concurrent": 7}},
        "sandboxes": {"d": {"type": "docker", "concurrency": 5}},
        "benchmarks": [{"name": "pid-bench", "sandbox": "d", "solver": {"service": "model"}}],
    })
    factory = EntryRunners(config, config.benchmarks[0], "r", PidBenchmark())

    async def limits(share):
        runner = await factory.open(share)
        try:
            return runner.model.config.max_concurrent, runner.sandbox_provider.config.concurrency
        finally:
            await factory.close(runner)

    assert anyio.run(limits, (0, 1)) == (7, 5)
    assert anyio.run(limits, (1, 2)) == (4, 3)
    assert anyio.run(limits, (0, 8)) == (1, 1)


@pytest.mark.parametrize("name", ["smoke", "swe-mini", "humaneval", "humaneval+", "gym://127.0.0.1:9"])
def test_builtin_benchmarks_can_be_sent_to_workers(name, tmp_path):
    dataset = tmp_path / "rows.jsonl"
    dataset.write_text(json.dumps({"responses_create_params": {"input": "hello"}}) + "\n")
    options = {"dataset": str(dataset)} if name.startswith("gym") else {}
    config = validate_config({
        "services": {"model": {"type": "api", "base_url": "http://127.0.0.1:9/v1", "model": "m"}},
        "benchmarks": [{"name": name, "options": options, "solver": {"service": "model"}}],
    })
    bench = get_benchmark(name, **options)
    copy = pickle.loads(pickle.dumps(EntryRunners(config, config.benchmarks[0], "r", bench))).benchmark
    assert type(copy) is type(bench)
    if name != "humaneval+":  # its dataset is downloaded on first use
        assert [t.id for t in copy.tasks()] == [t.id for t in bench.tasks()]


def test_a_benchmarks_check_slots_are_divided_among_processes():
    bench = get_benchmark("humaneval", max_parallel_checks=5)
    copy = pickle.loads(pickle.dumps(bench))
    copy.share_limits(2)
    assert (bench._checks.limit, copy._checks.limit) == (5, 3)

    async def most_at_once() -> int:
        now = peak = 0

        async def check() -> None:
            nonlocal now, peak
            async with copy._checks:
                now += 1
                peak = max(peak, now)
                await anyio.sleep(0.01)
                now -= 1

        async with anyio.create_task_group() as tg:
            for _ in range(10):
                tg.start_soon(check)
        return peak

    assert anyio.run(most_at_once) == 3


def test_an_in_process_model_keeps_the_run_in_process(scripted_server, tmp_path):
    """A model object handed to run_benchmark cannot travel: workers: 2 then runs here, not in workers."""
    from react_eval.model.factory import build_model

    srv = scripted_server(answer_by_task)
    config = config_for(srv, n=6, workers=2)
    model = build_model(config.services["model"])

    async def go():
        try:
            await run(config, tmp_path, model=model)
        finally:
            await model.aclose()

    anyio.run(go)
    rows = load_results(tmp_path / "results.jsonl")
    assert len(rows) == 6 and {r.verification["pid"] for r in rows} == {os.getpid()}
    with pytest.raises(TypeError, match="cannot be sent to another process"):
        pickle.dumps(EntryRunners(config, config.benchmarks[0], "r", PidBenchmark(), model=model))


def test_the_cli_runs_a_sandboxed_benchmark_in_worker_processes(scripted_server, tmp_path):
    """smoke (local sandboxes, bash tools) through `react-eval run --workers 2` scores as in one process."""
    import subprocess

    from tests.test_e2e_smoke import smoke_policy

    srv = scripted_server(smoke_policy)
    scores = {}
    for workers in ("1", "2"):
        out = tmp_path / workers
        proc = subprocess.run([*CLI, "run", "--bench", "smoke", "--model-url", srv.base_url, "--model", "scripted",
                               "-n", "2", "--max-concurrent", "4", "--workers", workers, "-o", str(out),
                               "--no-progress"], capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        rows = load_results(out / "smoke" / "results.jsonl")
        scores[workers] = sorted((r.task_id, r.repeat, r.reward, r.error_kind) for r in rows)
        assert len(rows) == 12
    assert scores["1"] == scores["2"]
    assert sum(1 for *_, reward, _ in scores["2"] if reward == 1.0) == 10  # one task is answered wrongly on purpose


# ---- records travel as the lines to write --------------------------------------------------------


class PidTaggingEncoder(RecordEncoder):
    """Encodes as a run does, then signs the row with the encoding process's pid: a line that
    reaches the file with that pid was written as the worker sent it, not re-serialised."""

    def __call__(self, record):
        done = super().__call__(record)
        done.row = done.row[:-1] + b',"encoded_in":' + str(os.getpid()).encode() + b"}"
        return done


class BrokenEncoder(RecordEncoder):
    """Encodes wrongly on purpose: ``how`` says which way."""

    def __init__(self, how: str):
        super().__init__([])
        self.how = how

    def __call__(self, record):
        done = super().__call__(record)
        if self.how == "newline":
            done.row = done.row[:-1] + b',"x":1}\n{"task_id":"forged","repeat":0}'
        elif self.how == "not-json":
            done.row = b"not a row"
        elif self.how == "other-rollout":
            done.head["task_id"] = "someone-else"
        elif self.how == "raises":
            raise ValueError("cannot encode this one")
        return done


def run_with_sink(srv, tmp_path, encoder, *, n=6):
    """ProcessExecutor.run_all with ``encoder`` shipped to the workers; the parent appends
    what arrives to results.jsonl / trajectories.jsonl (as run_benchmark does)."""
    config = config_for(srv, n=n)
    entry = config.benchmarks[0]
    factory = EntryRunners(config, entry, "r1", PidBenchmark(n=n))
    specs = [RolloutSpec("r1", entry.name, t, 0) for t in PidBenchmark(n=n).tasks()]
    files = RolloutFiles(tmp_path)
    got: list[EncodedRecord] = []

    def write(done: EncodedRecord) -> None:
        got.append(done)
        files.add(done.trajectory, done.row)

    executor = ProcessExecutor(4, 2)
    try:
        anyio.run(executor.run_all, specs, factory, RecordSink(encoder, write))
    finally:
        files.close()
    return executor, got


def test_a_workers_lines_are_written_byte_for_byte(scripted_server, tmp_path):
    srv = scripted_server(answer_by_task)
    executor, got = run_with_sink(srv, tmp_path, PidTaggingEncoder([]))
    lines = (tmp_path / "results.jsonl").read_bytes().splitlines()
    assert sorted(lines) == sorted(d.row for d in got) and len(lines) == 6
    rows = [json.loads(x) for x in lines]
    assert {r["encoded_in"] for r in rows} == {r["verification"]["pid"] for r in rows}  # the worker that ran it
    assert os.getpid() not in {r["encoded_in"] for r in rows} and len({r["encoded_in"] for r in rows}) == 2
    assert all(r["reward"] == 1.0 for r in rows)
    trajectories = (tmp_path / "trajectories.jsonl").read_bytes().splitlines()
    assert sorted(trajectories) == sorted(d.trajectory for d in got)
    assert all(validate_with_harbor(json.loads(t)) == [] for t in trajectories)
    assert executor.startup_s is not None and executor.worker_cpu_s > 0  # the workers reported their CPU


@pytest.mark.parametrize("how, message", [
    ("newline", r"sent a row for p\d#0 that is not one JSON object line"),
    ("not-json", r"sent a row for p\d#0 that is not one JSON object line"),
    ("other-rollout", r"sent a record for someone-else#0, which it was not running"),
    ("raises", r"encoding the record of p\d#0:(.|\n)*cannot encode this one"),
])
def test_a_malformed_record_fails_the_run_and_is_never_written(scripted_server, tmp_path, how, message):
    srv = scripted_server(answer_by_task)
    with pytest.raises(WorkerError, match=message):
        run_with_sink(srv, tmp_path, BrokenEncoder(how))
    assert (tmp_path / "results.jsonl").read_bytes() == b""  # the first bad record stops the run, unwritten
    assert b"forged" not in (tmp_path / "trajectories.jsonl").read_bytes()


def test_a_message_that_does_not_unpickle_is_an_error():
    from react_eval.engine.processes import Malformed, _HEADER, _Link

    async def main() -> None:
        mine, theirs = socket.socketpair()
        link = await _Link.open(mine)
        theirs.sendall(_HEADER.pack(5) + b"junk!")
        with pytest.raises(Malformed, match="does not unpickle"):
            await link.receive()
        theirs.sendall(_HEADER.pack(100) + b"short")  # then the worker died half-way through a message
        theirs.close()
        assert await link.receive() is None
        await link.close()

    anyio.run(main)


def test_a_key_a_server_echoes_is_redacted_in_the_worker(scripted_server, tmp_path, monkeypatch):
    key = "sk-proc-test-" + "9" * 24
    monkeypatch.setenv("P16_TEST_KEY", key)
    srv = scripted_server(lambda req: http_error(400, message=f"Invalid request for API key {key}")
                          if req.first_user_text.endswith(" 1") else answer_by_task(req))
    config = config_for(srv, n=4)
    config.services["model"].api_key_env = "P16_TEST_KEY"
    anyio.run(run, config, tmp_path)
    text = (tmp_path / "results.jsonl").read_text()
    assert key not in text and key not in (tmp_path / "trajectories.jsonl").read_text()
    rows = {r.task_id: r for r in load_results(tmp_path / "results.jsonl")}
    assert rows["p1"].error_kind == "model_error" and "API key ***" in rows["p1"].error
    assert all(srv_req.headers["authorization"] == f"Bearer {key}" for srv_req in srv.requests)
    assert {r.verification.get("pid") for t, r in rows.items() if t != "p1"} - {None, os.getpid()}


def test_an_on_done_without_an_encoder_gets_the_records_themselves(scripted_server, tmp_path):
    from react_eval.engine.rollout import RolloutRecord

    srv = scripted_server(answer_by_task)
    config = config_for(srv, n=5)
    entry = config.benchmarks[0]
    specs = [RolloutSpec("r1", entry.name, t, 0) for t in PidBenchmark(n=5).tasks()]
    got: list = []
    anyio.run(ProcessExecutor(4, 2).run_all, specs, EntryRunners(config, entry, "r1", PidBenchmark(n=5)), got.append)
    assert all(isinstance(r, RolloutRecord) for r in got) and len(got) == 5
    assert sorted(r.result.task_id for r in got) == [f"p{i}" for i in range(5)]
    assert {r.result.verification["pid"] for r in got} - {os.getpid()} and all(r.result.reward == 1.0 for r in got)
