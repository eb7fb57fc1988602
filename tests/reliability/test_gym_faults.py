"""NeMo Gym resources server faults, in whole gym:// runs against real servers.

The server is a FastAPI app run by uvicorn on 127.0.0.1 (tests/gym/servers.py):
a per-session counter, a slow tool, a tool that always answers 500, and a
/verify that answers 500 for rows that ask for it. The scripted agent adds to
the counter and reports it, so a reward of 1 means the session state on the
server is right.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from pathlib import Path

import pytest
import uvicorn
from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from react_eval.engine.config import validate_config
from react_eval.engine.run import RunOptions, bench_dir_name, run_eval
from react_eval.types import INFRA_ERROR_KINDS
from tests.gym.servers import GymApp, RunningServer, VerifyRequest, closed_port, echo, gym_app, sid
from tests.reliability.harness import ByTask, Run, assert_complete, error_events, last_output, observations, wait_for
from tests.support.scripted_server import ScriptedServer, answer, tool_call

import anyio

TOOL_TIMEOUT = 3.0  # generous: the ordinary tools must never hit it


class Add(BaseModel):
    count: int


class Sleep(BaseModel):
    seconds: float


class FaultVerify(VerifyRequest):
    expected_count: int
    verify_500: bool = False


def fault_app() -> GymApp:
    g = gym_app("faults")
    counts: dict[str, int] = g.state.setdefault("counts", {})

    @g.app.post("/seed_session")
    async def seed_session(request: Request, body: dict) -> dict:
        counts[sid(request)] = int(body.get("initial_count", 0))
        return {}

    @g.app.post("/add")
    async def add(request: Request, body: Add) -> dict:
        """Add `count` to this session's counter."""
        counts[sid(request)] = counts.get(sid(request), 0) + body.count
        return {"ok": True}

    @g.app.post("/get")
    async def get(request: Request) -> dict:
        """Read this session's counter."""
        return {"count": counts.get(sid(request), 0)}

    @g.app.post("/slow")
    async def slow(body: Sleep) -> dict:
        """Wait, then answer."""
        await asyncio.sleep(body.seconds)
        return {"slept": body.seconds}

    @g.app.post("/flaky")
    async def flaky() -> JSONResponse:
        """Always fails."""
        return JSONResponse({"detail": "the flaky backend crashed (scripted)"}, status_code=500)

    @g.app.post("/verify")
    async def verify(request: Request, body: FaultVerify) -> JSONResponse:
        if body.verify_500:
            return JSONResponse({"detail": "verifier database unavailable (scripted)"}, status_code=500)
        count = counts.get(sid(request))
        return JSONResponse(echo(body, reward=float(count == body.expected_count), count=count))

    return g


class PortServer(RunningServer):
    """A :class:`RunningServer` on a given port (to bring a server back where it was)."""

    def __init__(self, gym: GymApp, port: int):
        self.gym, self.log, self.state = gym, gym.log, gym.state
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(("127.0.0.1", port))
        self._sock, self.port = sock, port
        self._server = uvicorn.Server(uvicorn.Config(gym.app, log_level="critical", access_log=False, lifespan="off",
                                                     timeout_graceful_shutdown=1))
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)


def rows(ids: list[str], **extra: dict) -> list[dict]:
    out = []
    for i, tid in enumerate(ids):
        prompt = f"[task:{tid}] The counter starts at {10 * i}. Add 5, read it and report the value."
        out.append({"id": tid, "responses_create_params": {"input": [{"role": "user", "content": prompt}]},
                    "initial_count": 10 * i, "expected_count": 10 * i + 5, **extra.get(tid, {})})
    return out


def counter_steps(before: list = ()) -> list:
    """Optional faulty calls, then add 5, read, report."""
    return [*before, tool_call("add", {"count": 5}), tool_call("get", {}),
            lambda req: answer(f"The counter is {json.loads(last_output(req))['count']}.")]


def run_gym(model_url: str, address: str, dataset: Path, out: Path, *, max_concurrent: int = 8,
            options: RunOptions | None = None, connect_attempts: int = 2, tool_timeout: float = TOOL_TIMEOUT) -> Run:
    cfg = validate_config({
        "services": {"model": {"type": "api", "base_url": model_url, "model": "scripted", "max_attempts": 1}},
        "benchmarks": [{"name": f"gym://{address}", "max_concurrent": max_concurrent,
                        "options": {"dataset": str(dataset), "connect_attempts": connect_attempts},
                        "solver": {"type": "tool_calling", "service": "model", "sandbox_tools": False,
                                   "max_turns": 8, "tool_timeout": tool_timeout}}],
    })
    (bench,) = anyio.run(lambda: run_eval(cfg, output_dir=out, options=options))
    return Run(out / bench_dir_name(f"gym://{address}"), bench.summary, bench.error)


def write_rows(path: Path, data: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in data))
    return path


# ---------------------------------------------------------------- slow tool, 500 tool, /verify 500


@pytest.fixture(scope="module")
def faults_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gym-faults")
    gym = RunningServer(fault_app()).start()
    ids = ["ok", "slow_tool", "tool_500", "verify_500"]
    policy = ByTask({
        "ok": counter_steps(),
        "slow_tool": counter_steps([tool_call("slow", {"seconds": 30})]),
        "tool_500": counter_steps([tool_call("flaky", {})]),
        "verify_500": counter_steps(),
    })
    dataset = write_rows(tmp / "rows.jsonl", rows(ids, verify_500={"verify_500": True}))
    try:
        with ScriptedServer(policy) as model:
            run = run_gym(model.base_url, gym.address, dataset, tmp / "out")
    finally:
        gym.stop()
    assert run.error is None, run.error
    assert policy.unused() == {}
    assert_complete(run, [(t, 0) for t in ids])
    return run, gym


def test_a_tool_slower_than_tool_timeout_is_a_timeout_observation_and_the_rollout_goes_on(faults_run):
    run, gym = faults_run
    row = run.rows()["slow_tool"]
    assert row.error_kind is None and row.reward == 1.0 and row.tool_errors == 1
    first = observations(run.trajectory("slow_tool"))[0]
    assert first["extra"]["error_kind"] == "timeout"
    assert f"did not finish within {TOOL_TIMEOUT:g}s" in first["content"]
    assert run.rows()["ok"].reward == 1.0


def test_a_tool_answering_500_is_an_error_observation_with_the_servers_message(faults_run):
    run, gym = faults_run
    row = run.rows()["tool_500"]
    assert row.error_kind is None and row.reward == 1.0 and row.tool_errors == 1
    first = observations(run.trajectory("tool_500"))[0]
    assert first["extra"]["error_kind"] == "http_5xx" and first["extra"]["status"] == 500
    assert "HTTP 500" in first["content"] and "the flaky backend crashed" in first["content"]


def test_verify_500_is_a_verify_error_with_the_servers_message_never_a_silent_0(faults_run):
    run, gym = faults_run
    row = run.rows()["verify_500"]
    assert row.error_kind == "verify_error" and row.error_kind in INFRA_ERROR_KINDS
    assert row.reward is None and not row.passed
    assert "POST /verify answered HTTP 500" in row.error and "verifier database unavailable" in row.error
    assert run.summary["infra_failures"] == 1 and run.summary["scored_rollouts"] == 3
    assert len(gym.log.for_path("/verify")) == 4  # the others were verified


# ---------------------------------------------------------------- down at the start


def test_server_down_at_the_start_then_retry_errors_completes_the_run(tmp_path):
    port = closed_port()
    address = f"127.0.0.1:{port}"
    ids = ["a", "b", "c"]
    dataset = write_rows(tmp_path / "rows.jsonl", rows(ids))
    policy = ByTask({t: counter_steps() for t in ids})
    with ScriptedServer(policy) as model:
        run = run_gym(model.base_url, address, dataset, tmp_path / "out")
        assert run.error is None, run.error  # the run itself finished
        assert_complete(run, [(t, 0) for t in ids])
        for row in run.results:
            assert row.error_kind == "tool_infra_error" and row.reward is None
            assert "unreachable" in row.error and address in row.error and "seeding" in row.error
        assert run.summary["infra_failures"] == 3 and run.summary["scored_rollouts"] == 0
        assert model.requests == []  # no model call was wasted on rollouts without their tools

        gym = PortServer(fault_app(), port).start()  # the server comes up
        try:
            again = run_gym(model.base_url, address, dataset, tmp_path / "out", options=RunOptions(retry_errors=True))
        finally:
            gym.stop()
    assert again.error is None, again.error
    assert_complete(again, [(t, 0) for t in ids])
    assert all(r.error_kind is None and r.reward == 1.0 for r in again.results)
    assert len(gym.log.for_path("/seed_session")) == 3


# ---------------------------------------------------------------- dying mid-run


def test_server_dying_mid_run_fails_the_rollouts_it_hits_and_retry_errors_completes_them(tmp_path):
    """Rollouts run one at a time: two finish, the server dies while the third
    waits on a tool call, the fourth finds it gone. Both failures are
    tool_infra_error, the finished ones are kept; with the server back on its
    port, ``--retry-errors`` runs exactly the two failed ones."""
    port = closed_port()
    address = f"127.0.0.1:{port}"
    ids = ["a", "b", "victim", "after"]
    dataset = write_rows(tmp_path / "rows.jsonl", rows(ids))
    first = {"gym": PortServer(fault_app(), port).start()}
    killed = threading.Event()

    def kill_during_slow_call() -> None:
        gym = first["gym"]
        wait_for(lambda: gym.log.for_path("/slow"), within=30)  # the call is in flight
        gym.stop()
        killed.set()

    rerun = threading.Event()

    def victim(req):
        if rerun.is_set():  # the server is back: add, read, report
            return counter_steps()[req.turn]
        if req.turn == 0:
            threading.Thread(target=kill_during_slow_call, daemon=True).start()
            return tool_call("slow", {"seconds": 60})  # cut off by the server's death, not by tool_timeout
        return tool_call("get", {})

    scripts = {t: counter_steps() for t in ids}
    scripts["victim"] = [victim] * 8
    try:
        with ScriptedServer(ByTask(scripts)) as model:
            run = run_gym(model.base_url, address, dataset, tmp_path / "out", max_concurrent=1, tool_timeout=120)
            assert killed.is_set()
            assert run.error is None, run.error
            assert_complete(run, [(t, 0) for t in ids])
            got = run.rows()
            assert got["a"].reward == got["b"].reward == 1.0 and got["a"].error_kind is None
            for tid in ("victim", "after"):
                assert got[tid].error_kind == "tool_infra_error" and got[tid].reward is None, got[tid].error
                assert address in got[tid].error
            # the call in flight was cut off (uvicorn answers 500 as it dies, or the connection drops) ...
            victim = got["victim"]
            assert "'slow'" in victim.error or victim.first_tool_failure["tool"] == "slow", victim
            assert "unreachable" in victim.error or "connection lost" in victim.error  # ... then the server is gone
            assert [e["error_kind"] for e in error_events(run.trajectory("victim"))] == ["tool_infra_error"]

            rerun.set()
            second = PortServer(fault_app(), port).start()
            try:
                again = run_gym(model.base_url, address, dataset, tmp_path / "out", max_concurrent=1,
                                tool_timeout=120, options=RunOptions(retry_errors=True))
            finally:
                second.stop()
    finally:
        first["gym"].stop()
    assert again.error is None
    assert_complete(again, [(t, 0) for t in ids])
    assert all(r.error_kind is None and r.reward == 1.0 for r in again.results)
    assert sorted(json.loads(e.body)["id"] for e in second.log.for_path("/seed_session")) == ["after", "victim"]
