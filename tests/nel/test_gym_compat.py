"""gym:// as Gym's own collection runs it: the rows' own ids, /aggregate_metrics, no prompt of ours."""

from __future__ import annotations

import json

from react_eval.gym.aggregate import verify_responses
from react_eval.gym.benchmark import row_task
from tests.gym.servers import counter_app
from tests.gym.test_e2e_gym import counter_policy, counter_rows
from tests.nel.helpers import run_config


def evalplus_row(task_id: str | None) -> dict:
    row = {"responses_create_params": {"input": [{"role": "user", "content": "complete the code"}]}}
    if task_id:
        row["verifier_metadata"] = {"task_id": task_id}
    return row


def test_rows_keep_their_own_ids():
    assert row_task(evalplus_row("HumanEval/0"), 0, "f:1").id == "HumanEval/0"
    assert row_task({**evalplus_row(None), "id": 7}, 3, "f:4").id == "7"
    assert row_task({**evalplus_row(None), "instance_id": "x__y-1"}, 3, "f:4").id == "x__y-1"
    assert row_task(evalplus_row(None), 4, "f:5").id == "row-4"


def test_verify_responses_carry_gyms_index_keys_and_skip_unscored_rows():
    rows = [{"task_id": "a", "repeat": 1, "reward": 1.0, "verification": {"count": 3}},
            {"task_id": "b", "repeat": 0, "reward": None, "error_kind": "tool_infra_error"}]
    assert verify_responses(rows, {"a": 5, "b": 6}) == [
        {"count": 3, "reward": 1.0, "_ng_task_index": 5, "_ng_rollout_index": 1}]


def test_run_ends_with_the_servers_aggregate_metrics(gym_server, scripted_server, tmp_path):
    gym = gym_server(counter_app())
    rows_file = tmp_path / "rows.jsonl"
    rows_file.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "id"} |
                                            {"verifier_metadata": {"task_id": f"Counter/{i}"}}) + "\n"
                                 for i, r in enumerate(counter_rows(2))))
    model = scripted_server(counter_policy)
    run, rows, _ = run_config({
        "services": {"m": {"type": "api", "base_url": model.base_url, "model": "x", "max_attempts": 1}},
        "benchmarks": [{"name": f"gym://{gym.address}?data={rows_file}", "repeats": 2,
                        "solver": {"type": "tool_calling", "service": "m"}}]}, tmp_path / "out")
    assert run.error is None
    assert sorted({r["task_id"] for r in rows}) == ["Counter/0", "Counter/1"]
    assert all(r["reward"] == 1.0 for r in rows)
    (call,) = gym.log.for_path("/aggregate_metrics")
    sent = call.json()["verify_responses"]
    assert sorted((v["_ng_task_index"], v["_ng_rollout_index"]) for v in sent) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert run.server_metrics == {}
    assert all(req.messages[0]["role"] == "user" for req in model.requests)  # no system prompt of ours
