"""Model endpoint faults, injected for real by the scripted server, in whole runs.

One run through the engine holds one task per fault next to a control task;
every task's script ends with a bash call whose output the answer must repeat,
so a reward of 1 proves the rollout really carried on after the fault. The
401 case stops the whole run, so it runs through the CLI on its own.
"""

from __future__ import annotations

import json

import pytest

from react_eval.types import INFRA_ERROR_KINDS
from tests.reliability.bench import task, task_of, write_tasks
from tests.reliability.harness import (
    ByTask,
    Run,
    assert_complete,
    assert_no_leaks,
    child_processes,
    cli,
    config,
    echo_answer,
    echo_steps,
    error_events,
    new_marker,
    observations,
    run_in_process,
    write_yaml,
)
from tests.support.scripted_server import (
    ScriptedServer,
    answer,
    connection_reset,
    context_overflow,
    delay,
    empty_choices,
    http_error,
    partial_tool_call,
    tool_call,
    truncated_body,
)

REQUEST_TIMEOUT = 3.0  # generous: an ordinary reply must never hit it
RETRY_AFTER = 1.0

#: faults the client retries; the rollout then goes on and must succeed
TRANSIENT = {
    "r429_retry_after": [http_error(429, headers={"Retry-After": f"{RETRY_AFTER:g}"})],
    "r429": [http_error(429)],
    "r500": [http_error(500)],
    "r502": [http_error(502)],
    "r503": [http_error(503)],
    "reset": [connection_reset(after_bytes=40)],  # headers and part of a body, then an RST
    "slow": [delay(REQUEST_TIMEOUT + 3, answer("too late"))],
    "truncated": [truncated_body(mode="json"), truncated_body(mode="close")],
    "empty_choices": [empty_choices()],
}
#: model mistakes: an error observation goes back, the rollout continues
MISTAKES = {
    "length": [partial_tool_call("file_write")],  # finish_reason=length, half-written arguments
    "bad_json": [tool_call("bash", '{"command": "echo never"')],
    "unknown_tool": [tool_call("delete_everything", {"path": "/"})],
}
#: faults that end the rollout
FINAL = {
    "overflow": [context_overflow(4096, 5000)],
    "exhausted_503": [http_error(503)] * 3,
    "exhausted_timeout": [delay(REQUEST_TIMEOUT + 3, answer("too late"))] * 3,
}


def token(tid: str) -> str:
    return f"tok-{tid}"


class ModelRun:
    def __init__(self, run: Run, policy: ByTask, marker: str, children: list[str]):
        self.run, self.policy, self.marker, self.children = run, policy, marker, children
        self.rows = run.rows()


@pytest.fixture(scope="module")
def model_run(tmp_path_factory) -> ModelRun:
    tmp = tmp_path_factory.mktemp("model-faults")
    scripts = {"control": echo_steps(token("control"))}
    for tid, faults in {**TRANSIENT, **MISTAKES}.items():
        scripts[tid] = [*faults, *echo_steps(token(tid))]
    scripts.update(FINAL)
    policy = ByTask(scripts)
    tasks = write_tasks(tmp / "tasks.json", [task(tid, token(tid)) for tid in scripts])
    marker = new_marker()
    children = child_processes()
    with ScriptedServer(policy) as srv:
        data = config(srv.base_url, tasks, marker=marker, max_concurrent=len(scripts),
                      service={"request_timeout": REQUEST_TIMEOUT})
        run = run_in_process(data, tmp / "out")
    assert run.error is None, run.error
    assert policy.unused() == {}, f"scripted replies never asked for: {policy.unused()}"
    return ModelRun(run, policy, marker, children)


def _check_run(m: ModelRun) -> None:
    """The run finished, every rollout is there once, nothing leaked."""
    assert_complete(m.run, [(tid, 0) for tid in m.policy.queues])
    assert_no_leaks(m.marker, children_before=m.children)


def test_the_run_finishes_with_every_rollout_once_and_infra_failures_excluded_from_the_score(model_run):
    _check_run(model_run)
    s = model_run.run.summary
    assert s["rollouts"] == len(model_run.policy.queues)
    assert s["infra_failures"] == 2
    assert s["error_kinds"] == {"ok": len(model_run.rows) - 3, "context_overflow": 1, "model_error": 2}
    assert s["scored_rollouts"] == s["rollouts"] - 2  # the two model_error rows do not count
    assert model_run.rows["control"].reward == 1.0


@pytest.mark.parametrize("tid", sorted(TRANSIENT))
def test_transient_fault_is_retried_and_the_rollout_succeeds(model_run, tid):
    _check_run(model_run)
    row = model_run.rows[tid]
    assert row.error_kind is None and row.error is None and row.reward == 1.0, (row.error, row.verification)
    faults = len(TRANSIENT[tid])
    requests = model_run.policy.requests[tid]
    assert len(requests) == faults + 2  # the failed attempts, then the two turns
    assert all(r.turn == 0 for r in requests[: faults + 1])  # the same request, retried
    first_step = next(s for s in model_run.run.trajectory(tid)["steps"] if s["source"] == "agent")
    assert first_step["extra"]["attempts"] == faults + 1  # the retries are on record


def test_429_retry_after_is_honoured(model_run):
    requests = model_run.policy.requests["r429_retry_after"]
    waited = requests[1].arrival - requests[0].arrival
    assert waited >= RETRY_AFTER * 0.9, f"retried {waited:.3f}s after a Retry-After of {RETRY_AFTER}s"


@pytest.mark.parametrize("tid, kind, text", [
    ("length", "invalid_json", "could not parse the arguments of file_write"),
    ("bad_json", "invalid_json", "not valid JSON"),
    ("unknown_tool", "unknown_tool", "unknown tool 'delete_everything'"),
], ids=["length", "bad_json", "unknown_tool"])
def test_model_mistake_becomes_an_error_observation_and_the_rollout_continues(model_run, tid, kind, text):
    _check_run(model_run)
    row = model_run.rows[tid]
    assert row.error_kind is None and row.reward == 1.0 and row.tool_errors == 1
    first = observations(model_run.run.trajectory(tid))[0]
    assert first["extra"]["is_error"] and first["extra"]["error_kind"] == kind
    assert text in first["content"]
    assert row.first_tool_failure["error_kind"] == kind
    # the model was shown the error as the result of its call
    assert text in model_run.policy.requests[tid][1].tool_results[0]["content"]
    if tid == "length":
        agent = [s for s in model_run.run.trajectory(tid)["steps"] if s["source"] == "agent"][0]
        assert agent["metrics"]["extra"]["finish_reason"] == "length"


def test_context_overflow_is_not_retried_and_ends_the_rollout_with_its_kind(model_run):
    _check_run(model_run)
    row = model_run.rows["overflow"]
    assert row.error_kind == "context_overflow" and row.error_kind not in INFRA_ERROR_KINDS
    assert "context overflow reported by the server" in row.error and "maximum context length is 4096" in row.error
    assert len(model_run.policy.requests["overflow"]) == 1  # never retried
    assert row.reward == 0.0  # graded like any answerless rollout: the agent's context, not the infrastructure
    assert [e["error_kind"] for e in error_events(model_run.run.trajectory("overflow"))] == ["context_overflow"]


@pytest.mark.parametrize("tid, text", [
    ("exhausted_503", "model call failed after 3 attempts: HTTP 503"),
    ("exhausted_timeout", "model call failed after 3 attempts: ModelTimeoutError"),
], ids=["exhausted_503", "exhausted_timeout"])
def test_retries_exhausted_is_a_model_error_excluded_from_the_score(model_run, tid, text):
    _check_run(model_run)
    row = model_run.rows[tid]
    assert row.error_kind == "model_error" and text in row.error, row.error
    assert row.reward is None and not row.passed
    assert len(model_run.policy.requests[tid]) == 3
    assert [e["error_kind"] for e in error_events(model_run.run.trajectory(tid))] == ["model_error"]


# ---------------------------------------------------------------- 401: the whole run stops


def test_401_stops_the_whole_run_naming_the_key_variable_and_retry_errors_completes_it(tmp_path):
    """The key is revoked mid-run: the next model call gets a 401. The run stops
    at once (exit 3, no retry, no new rollout) with a message naming the
    variable the key came from; the rollouts finished before are kept; with a
    valid key ``--retry-errors`` runs exactly the missing and failed ones."""
    ids = [f"t{i}" for i in range(6)]
    state = {"key": "sk-reliability-first-0123456789", "finished": 0, "denied": 0}

    def policy(req):
        if req.headers.get("authorization") != f"Bearer {state['key']}":
            state["denied"] += 1
            return http_error(401, message="Incorrect API key provided.")
        if req.turn == 0:
            return tool_call("bash", {"command": f"echo tok-{task_of(req.first_user_text)}"})
        state["finished"] += 1
        if state["finished"] == 2:
            state["key"] = "sk-reliability-rotated-9876543210"  # revoked: later calls with the old key fail
        return echo_answer(req)

    tasks = write_tasks(tmp_path / "tasks.json", [task(t, f"tok-{t}") for t in ids])
    marker = new_marker()
    with ScriptedServer(policy) as srv:
        data = config(srv.base_url, tasks, marker=marker, max_concurrent=2, out=tmp_path / "out",
                      service={"api_key_env": "RELIABILITY_KEY"})
        cfg = write_yaml(tmp_path / "eval.yaml", data)
        first = cli("run", "--config", str(cfg), "--no-progress", env={"RELIABILITY_KEY": "sk-reliability-first-0123456789"})
        assert first.returncode == 3, first.stdout + first.stderr
        assert "run stopped" in first.stderr and "HTTP 401" in first.stderr
        assert "RELIABILITY_KEY" in first.stderr, first.stderr  # names the variable to fix
        assert state["denied"] <= 2  # one refused call per rollout in flight, none retried, none started after
        out = tmp_path / "out" / "reliability"
        rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
        done = {r["task_id"]: r for r in rows}
        assert {"t0", "t1"} <= set(done) and done["t0"]["reward"] == done["t1"]["reward"] == 1.0  # kept
        failed = {t for t, r in done.items() if r["error_kind"]}
        assert failed and failed <= {"t2", "t3"} and all(done[t]["error_kind"] == "auth_error" for t in failed)
        assert "HTTP 401" in done[sorted(failed)[0]]["error"]
        assert not {"t4", "t5"} & set(done)  # never started
        assert_no_leaks(marker)

        second = cli("run", "--config", str(cfg), "--no-progress", "--retry-errors",
                     env={"RELIABILITY_KEY": "sk-reliability-rotated-9876543210"})
        assert second.returncode == 0, second.stdout + second.stderr
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert sorted(r["task_id"] for r in rows) == ids  # each exactly once
    assert all(r["reward"] == 1.0 and r["error_kind"] is None for r in rows)
    assert sorted(json.loads(line)["extra"]["task_id"] for line in (out / "trajectories.jsonl").read_text().splitlines()) == ids
    assert_no_leaks(marker)
