"""gym:// end to end: scripted model -> engine/CLI -> ReAct loop -> real Gym servers -> /verify.

The scripted policies read the real tool observations, so a reward of 1.0 is
earned by the session state on the server being right; each positive case has
a negative one that must score 0 (or fail) to show the check can fail.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from react_eval.engine.config import validate_config
from react_eval.engine.results import load_results
from react_eval.engine.run import bench_dir_name, run_eval
from react_eval.gym.benchmark import GymBenchmark
from react_eval.gym.session import GymSession
from react_eval.gym.source import GymToolSource, seed_row
from react_eval.sandboxes.local import LocalSandboxConfig
from tests.gym.servers import closed_port, counter_app, multistep_app, tree_app, word_code
from tests.harbor_atif import validate_with_harbor
from tests.support.scripted_server import ScriptedRequest, answer, tool_call

pytestmark = pytest.mark.anyio


# --------------------------------------------------------------------------- helpers


def write_rows(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def gym_config(model_url: str, address: str, dataset: Path, *, repeats: int = 1, max_concurrent: int = 8,
               solver: dict | None = None, services: dict | None = None, options: dict | None = None):
    data = {
        "services": {"model": {"type": "api", "base_url": model_url, "model": "scripted", "max_attempts": 1},
                     **(services or {})},
        "benchmarks": [{
            "name": f"gym://{address}", "repeats": repeats, "max_concurrent": max_concurrent,
            "solver": {"type": "tool_calling", "service": "model", "sandbox_tools": False, "max_turns": 12,
                       **(solver or {})},
            "options": {"dataset": str(dataset), **(options or {})},
        }],
    }
    return validate_config(data)


async def run(cfg, out: Path):
    runs = await run_eval(cfg, output_dir=out)
    assert runs[0].error is None, runs[0].error
    bench_out = out / bench_dir_name(cfg.benchmarks[0].name)
    results = load_results(bench_out / "results.jsonl")
    lines = (bench_out / "trajectories.jsonl").read_text().splitlines() if (bench_out / "trajectories.jsonl").exists() else []
    trajectories = [json.loads(line) for line in lines]
    for trajectory in trajectories:
        assert validate_with_harbor(trajectory) == []
    return results, trajectories, runs[0].summary


def peak_open_sessions(log) -> int:
    """How many sessions were between their seed and their verify at the same time."""
    open_now, peak = set(), 0
    for entry in log.entries:
        if entry.path == "/seed_session":
            open_now.add(entry.session_id)
        elif entry.path == "/verify":
            open_now.discard(entry.session_id)
        peak = max(peak, len(open_now))
    return peak


# --------------------------------------------------------------------------- counter


def counter_rows(n: int = 8, *, expected: bool = True) -> list[dict]:
    rows = []
    for i in range(n):
        steps = [i + 1, 2 * i + 5] + ([7] if i % 2 else [])
        prompt = "The counter was seeded for you. " + ", then ".join(f"add {s}" for s in steps) + \
            ", then read the counter and report its value."
        row = {"id": f"counter-{i}", "responses_create_params": {"input": [{"role": "user", "content": prompt}]},
               "initial_count": 10 * i + 3, "tags": ["counter", i], "meta": {"steps": steps}}
        if expected:
            row["expected_count"] = 10 * i + 3 + sum(steps)
        rows.append(row)
    return rows


def counter_policy(req: ScriptedRequest):
    steps = [int(x) for x in re.findall(r"add (\d+)", req.first_user_text)]
    turn = req.turn - (1 if "bash" in req.tool_names else 0)
    if "bash" in req.tool_names and req.turn == 0:  # sandbox tools offered too: use one of them first
        return tool_call("bash", {"command": "echo sandbox-ok"})
    if turn < len(steps):
        return tool_call("increment_counter", {"count": steps[turn]})
    if turn == len(steps):
        return tool_call("get_counter_value", {})
    count = json.loads(req.tool_results[-1]["content"])["count"]
    return answer(f"The counter value is {count}.")


async def test_counter_8_rows_x_4_repeats_at_concurrency_8_every_reward_is_1(gym_server, scripted_server, tmp_path):
    gym = gym_server(counter_app())
    model = scripted_server(counter_policy, latency=0.005)
    rows = counter_rows(8)
    cfg = gym_config(model.base_url, gym.address, write_rows(tmp_path / "rows.jsonl", rows), repeats=4, max_concurrent=8)
    results, trajectories, summary = await run(cfg, tmp_path / "out")

    assert len(results) == 32 and len(trajectories) == 32
    assert sorted((r.task_id, r.repeat) for r in results) == sorted((f"counter-{i}", k) for i in range(8) for k in range(4))
    for r in results:
        assert r.error_kind is None and r.reward == 1.0 and r.passed, (r.task_id, r.error, r.verification)
        row = rows[int(r.task_id.split("-")[1])]
        # the verifier's own fields and everything else it answered are kept
        assert r.verification["count"] == row["expected_count"] == r.verification["expected_count"]
        assert r.verification["response"]["object"] == "response"
    assert summary["mean_reward"] == 1.0 and summary["pass@1"] == 1.0 and summary["infra_failures"] == 0

    # the server's view: 32 separate sessions, each on one cookie from seed to verify
    sessions = {s: es for s, es in gym.log.by_session().items() if es[0].path == "/seed_session"}
    assert len(sessions) == 32
    for entries in sessions.values():
        paths = [e.path for e in entries if e.path != "/openapi.json"]
        seed = entries[0].json()
        n_steps = len(seed["meta"]["steps"])
        assert paths == ["/seed_session"] + ["/increment_counter"] * n_steps + ["/get_counter_value", "/verify"]
        assert entries[0].cookie is None and entries[0].new_session
        assert all(e.cookie and e.cookie_headers == 1 and not e.new_session for e in entries[1:])
        assert seed == rows[int(seed["id"].split("-")[1])]  # the whole row was the seed body
        verify = entries[-1].json()
        row = rows[int(verify["id"].split("-")[1])]
        assert {k: verify[k] for k in row} == row  # every row field, lists and objects included
        calls = [o for o in verify["response"]["output"] if o["type"] == "function_call"]
        assert [json.loads(c["arguments"]).get("count") for c in calls] == row["meta"]["steps"] + [None]
        assert verify["response"]["output"][-1]["type"] == "message"
    assert len(gym.log.for_path("/openapi.json")) == 1  # discovered once, not once per rollout
    assert 1 < peak_open_sessions(gym.log) <= 8
    # the model was offered exactly the discovered tools (no sandbox tools in a gym-only run)
    assert {tuple(req.tool_names) for req in model.requests} == {("increment_counter", "get_counter_value")}


class SharedSessionSource(GymToolSource):
    """Deliberately broken: every rollout gets the same session (one cookie jar)."""

    def __init__(self, endpoint):
        super().__init__(endpoint)
        self.shared = _Unclosable(self.endpoint, self.catalog)

    async def open(self, task, sandbox):
        await self.shared.seed(seed_row(task))
        return self.shared


class _Unclosable(GymSession):
    async def aclose(self) -> None:  # shared across rollouts: closed by the test
        pass


async def test_a_shared_session_is_caught_negative_control(gym_server, scripted_server, tmp_path, monkeypatch):
    gym = gym_server(counter_app())
    model = scripted_server(counter_policy, latency=0.005)
    cfg = gym_config(model.base_url, gym.address, write_rows(tmp_path / "rows.jsonl", counter_rows(8)), repeats=2)
    holder: list[SharedSessionSource] = []

    def shared_sources(self):
        if not holder:
            holder.append(SharedSessionSource(self.endpoint))
        return holder

    monkeypatch.setattr(GymBenchmark, "tool_sources", shared_sources)
    try:
        results, _, summary = await run(cfg, tmp_path / "out")
    finally:
        await GymSession.aclose(holder[0].shared)
    rewards = [r.reward for r in results]
    assert len(rewards) == 16 and all(r.error_kind is None for r in results)
    assert rewards.count(1.0) < len(rewards) // 2, rewards  # cross-talk shows up as wrong counts
    assert summary["mean_reward"] < 0.5
    # the server saw far fewer sessions than rollouts: once the shared jar held a
    # cookie, every rollout's requests landed in the same session
    assert len(gym.log.for_path("/seed_session")) == 16
    assert len({e.session_id for e in gym.log.entries if e.path != "/aggregate_metrics"}) <= 8  # the run-end call has its own
    assert len({e.session_id for e in gym.log.for_path("/verify")}) == 1


# --------------------------------------------------------------------------- multi-step

WORDS = [["apple", "river"], ["stone", "cloud", "amber"], ["quartz", "ember"], ["lantern", "moss", "tide", "harbor"]]
MULTI_TOOLS = [
    {"type": "function", "name": "lookup_code", "description": "Get the code of one word.", "strict": True,
     "parameters": {"type": "object", "properties": {"word": {"type": "string"}}, "required": ["word"],
                    "additionalProperties": False}},
    {"type": "function", "name": "submit_codes", "description": "Submit the codes in order.", "strict": True,
     "parameters": {"type": "object", "properties": {"codes": {"type": "array", "items": {"type": "integer"}}},
                    "required": ["codes"], "additionalProperties": False}},
]


def multistep_rows() -> list[dict]:
    return [{
        "id": i,
        "responses_create_params": {"input": [
            {"role": "developer", "content": "You are a code extraction agent. Look up each word, then submit the codes in order."},
            {"role": "user", "content": "Words: " + ", ".join(words)},
        ], "tools": MULTI_TOOLS},
        "words": words,
        "expected_codes": [word_code(w) for w in words],
    } for i, words in enumerate(WORDS)]


def multistep_policy(mode: str):
    def policy(req: ScriptedRequest):
        words = req.first_user_text.removeprefix("Words: ").split(", ")
        if req.turn < len(words):
            return tool_call("lookup_code", {"word": words[req.turn]})
        outputs = [m["content"] for m in req.messages if m.get("role") == "tool"]
        codes = [json.loads(o)["code"] for o in outputs[: len(words)]]
        if req.turn == len(words):
            return tool_call("submit_codes", {"codes": list(reversed(codes)) if mode == "reversed" else codes})
        if mode == "lookup_after_submit" and req.turn == len(words) + 1:
            return tool_call("lookup_code", {"word": words[0]})
        return answer("I submitted the codes.")
    return policy


@pytest.mark.parametrize("mode, expected", [("correct", 1.0), ("reversed", 0.0), ("lookup_after_submit", 0.0)])
async def test_multi_step_verify_reads_the_last_function_call(gym_server, scripted_server, tmp_path, mode, expected):
    gym = gym_server(multistep_app())
    model = scripted_server(multistep_policy(mode))
    cfg = gym_config(model.base_url, gym.address, write_rows(tmp_path / "rows.jsonl", multistep_rows()), max_concurrent=4)
    results, trajectories, _ = await run(cfg, tmp_path / "out")
    assert sorted(r.task_id for r in results) == ["0", "1", "2", "3"]  # ids from the rows' id field
    for r in results:
        assert r.error_kind is None and r.reward == expected, (mode, r.verification)
        codes = [word_code(w) for w in WORDS[int(r.task_id)]]
        if mode == "reversed":
            assert r.verification["submitted_codes"] == list(reversed(codes))
        if mode == "lookup_after_submit":
            assert r.verification["last_call"] == "lookup_code"
    # the model saw the row's tools (converted to chat form) and its developer message as the system prompt
    first = model.requests[0]
    assert first.tool_names == ["lookup_code", "submit_codes"] and first.tools[0]["function"]["strict"] is True
    assert first.messages[0] == {"role": "system", "content": multistep_rows()[0]["responses_create_params"]["input"][0]["content"]}
    assert trajectories[0]["agent"]["tool_definitions"][0]["function"]["name"] == "lookup_code"
    # the verify body lists calls and their outputs in order, paired by call_id
    verify = gym.log.for_path("/verify")[0].json()
    output = verify["response"]["output"]
    for fc, out in zip(output[0::2], output[1::2]):
        if fc["type"] == "message":
            break
        assert fc["type"] == "function_call" and out["type"] == "function_call_output" and fc["call_id"] == out["call_id"]
    assert verify["response"]["tools"] == MULTI_TOOLS


# --------------------------------------------------------------------------- recursive / nested / errors

TREE = {"value": 5, "children": [{"value": 7, "children": [{"value": 11}, {"value": 13, "children": [{"value": 17}]}]},
                                 {"value": 19}]}
FOLDER = {"name": "root", "entries": [{"file": "a"}, {"folder": {"name": "sub", "entries": [
    {"file": "b"}, {"folder": {"name": "deeper", "entries": [{"file": "c"}, {"file": "d"}]}}]}}]}


def tree_policy(req: ScriptedRequest):
    script = [
        tool_call("tree__sum", {"tree": TREE}),
        tool_call("fs__v1_0__count_files", FOLDER),
        tool_call("items__item_id__tag", {"item_id": "widget 7", "tag": "done", "upper": True}),
        tool_call("echo__status", {"status": 404, "message": "no widget 8"}),
        tool_call("echo__status", {"status": 500, "message": "widget store crashed"}),
        tool_call("slow", {"seconds": 5}),
    ]
    if req.turn < len(script):
        return script[req.turn]
    total = json.loads(next(m["content"] for m in req.messages if m.get("role") == "tool"))["total"]
    return answer(f"The total is {total}.")


async def test_recursive_schema_nested_paths_and_tool_errors(gym_server, scripted_server, tmp_path):
    gym = gym_server(tree_app())
    model = scripted_server(tree_policy)
    rows = [{"id": "tree", "responses_create_params": {"input": "Sum the tree."}, "expected_total": 72}]
    cfg = gym_config(model.base_url, gym.address, write_rows(tmp_path / "rows.jsonl", rows),
                     solver={"tool_timeout": 0.5})
    results, trajectories, _ = await run(cfg, tmp_path / "out")
    (r,) = results
    assert r.error_kind is None and r.reward == 1.0 and r.verification["final_text"] == "The total is 72."
    assert r.tool_calls == 6 and r.tool_errors == 3  # 404, 500 and the timeout, counted
    by_path = {e.path: e for e in gym.log.entries}
    assert by_path["/tree/sum"].json() == {"tree": TREE} and by_path["/tree/sum"].status == 200
    assert by_path["/fs/v1.0/count_files"].json() == FOLDER
    assert by_path["/items/widget 7/tag"].query == "upper=true" and by_path["/items/widget 7/tag"].json() == {"tag": "done"}
    observations = [res for step in trajectories[0]["steps"] if step.get("observation")
                    for res in step["observation"]["results"]]
    contents = [o["content"] for o in observations]
    assert json.loads(contents[0]) == {"total": 72} and json.loads(contents[1]) == {"files": 4}
    assert json.loads(contents[2]) == {"item_id": "widget 7", "tag": "DONE"}
    kinds = [o["extra"].get("error_kind") for o in observations]
    assert kinds == [None, None, None, "http_4xx", "http_5xx", "timeout"]
    assert "no widget 8" in contents[3] and "widget store crashed" in contents[4]
    names = {d["function"]["name"] for d in trajectories[0]["agent"]["tool_definitions"]}
    assert names == {"tree__sum", "fs__v1_0__count_files", "items__item_id__tag", "echo__status", "slow"}


# --------------------------------------------------------------------------- infrastructure failures


async def test_verify_422_becomes_verify_error_with_the_servers_message(gym_server, scripted_server, tmp_path):
    gym = gym_server(counter_app())
    model = scripted_server(counter_policy)
    cfg = gym_config(model.base_url, gym.address, write_rows(tmp_path / "rows.jsonl", counter_rows(2, expected=False)))
    results, trajectories, summary = await run(cfg, tmp_path / "out")
    assert len(trajectories) == 2
    for r in results:
        assert r.error_kind == "verify_error" and r.reward is None and not r.passed
        assert "HTTP 422" in r.error and "body.expected_count: Field required" in r.error
    assert summary["infra_failures"] == 2 and summary["scored_rollouts"] == 0 and summary["mean_reward"] is None


async def test_unreachable_server_is_tool_infra_error_and_excluded_from_the_score(scripted_server, tmp_path):
    model = scripted_server(counter_policy)
    cfg = gym_config(model.base_url, f"127.0.0.1:{closed_port()}", write_rows(tmp_path / "rows.jsonl", counter_rows(3)),
                     repeats=2, options={"connect_attempts": 2})
    results, _, summary = await run(cfg, tmp_path / "out")
    assert len(results) == 6
    for r in results:
        assert r.error_kind == "tool_infra_error" and r.reward is None and "unreachable" in r.error
    assert summary["infra_failures"] == 6 and summary["scored_rollouts"] == 0
    assert summary["error_kinds"] == {"tool_infra_error": 6}
    assert model.requests == []  # the model was never asked: no rollout got past seeding


async def test_server_gone_mid_rollout_ends_it_with_tool_infra_error(gym_server, scripted_server, tmp_path):
    gym = gym_server(counter_app())

    def policy(req: ScriptedRequest):
        gym.stop()  # the resources server dies while the model is thinking
        return counter_policy(req)

    model = scripted_server(policy)
    cfg = gym_config(model.base_url, gym.address, write_rows(tmp_path / "rows.jsonl", counter_rows(1)),
                     options={"connect_attempts": 2})
    results, trajectories, summary = await run(cfg, tmp_path / "out")
    (r,) = results
    assert r.error_kind == "tool_infra_error" and r.reward is None and "increment_counter" in r.error
    assert summary["infra_failures"] == 1 and len(trajectories) == 1  # the trajectory up to the failure is kept
    events = [e for step in trajectories[0]["steps"] for e in (step.get("extra") or {}).get("events", [])]
    assert [e["error_kind"] for e in events if e["kind"] == "error"] == ["tool_infra_error"]
    assert gym.log.for_path("/verify") == []  # no verdict is asked for when the infrastructure failed


# --------------------------------------------------------------------------- CLI and YAML


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "react_eval.cli", *args], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "COLUMNS": "400"})


def test_cli_gym_only_run_needs_no_sandbox(gym_server, scripted_server, tmp_path):
    gym = gym_server(counter_app())
    model = scripted_server(counter_policy)
    dataset = write_rows(tmp_path / "rows.jsonl", counter_rows(3))
    proc = run_cli("run", "--bench", f"gym://{gym.address}", "--dataset", str(dataset), "--model-url", model.base_url,
                   "--model", "scripted", "-n", "2", "--max-concurrent", "4", "-o", str(tmp_path / "out"),
                   "--no-progress")  # the default: the server's tools only, no sandbox
    assert proc.returncode == 0, proc.stderr + proc.stdout
    out = tmp_path / "out" / bench_dir_name(f"gym://{gym.address}")
    results = load_results(out / "results.jsonl")
    assert len(results) == 6 and all(r.reward == 1.0 for r in results)
    assert {tuple(req.tool_names) for req in model.requests} == {("increment_counter", "get_counter_value")}
    for line in (out / "trajectories.jsonl").read_text().splitlines():
        assert validate_with_harbor(json.loads(line)) == []
    bundle = json.loads((out / "eval.json").read_text())
    assert bundle["verification"] == "gym" and bundle["config"]["benchmarks"][0]["options"]["dataset"] == str(dataset)


def test_cli_dataset_errors_name_the_flag_and_the_line(gym_server, tmp_path):
    gym = gym_server(counter_app())
    common = ("--model-url", "http://127.0.0.1:9/v1", "--model", "m", "-o", str(tmp_path / "out"), "--no-progress")
    proc = run_cli("run", "--bench", f"gym://{gym.address}", *common)
    assert proc.returncode != 0 and "--dataset" in proc.stderr + proc.stdout
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(counter_rows(1)[0]) + "\n{not json\n")
    proc = run_cli("run", "--bench", f"gym://{gym.address}", "--dataset", str(bad), *common, "-o", str(tmp_path / "o2"))
    assert proc.returncode != 0 and f"{bad}:2: corrupt JSON line" in proc.stderr + proc.stdout
    assert gym.log.entries == []  # nothing was sent to the server


@pytest.mark.parametrize("sandbox_tools", [False, True])
async def test_yaml_gym_service_as_resource_service_alone_or_with_sandbox_tools(
        gym_server, scripted_server, tmp_path, sandbox_tools):
    gym = gym_server(counter_app())
    model = scripted_server(counter_policy)
    cfg = gym_config(model.base_url, gym.address, write_rows(tmp_path / "rows.jsonl", counter_rows(3)), repeats=2,
                     services={"counter": {"type": "gym", "url": gym.url(), "connect_attempts": 2}},
                     solver={"resource_service": "counter", "sandbox_tools": sandbox_tools})
    if sandbox_tools:  # sandbox tools need a configured sandbox (never a host shell by default)
        cfg.benchmarks[0].sandbox = LocalSandboxConfig(isolation="bwrap")
    results, trajectories, _ = await run(cfg, tmp_path / "out")
    assert len(results) == 6 and all(r.reward == 1.0 and r.error_kind is None for r in results), \
        [(r.error, r.verification) for r in results]
    # the configured service and the benchmark's own server share the label: one session per rollout
    assert len(gym.log.for_path("/seed_session")) == 6
    names = set(model.requests[0].tool_names)
    if sandbox_tools:
        assert {"increment_counter", "get_counter_value", "bash"} <= names
        bash_outputs = [m["content"] for req in model.requests for m in req.messages if m.get("role") == "tool"
                        and "sandbox-ok" in str(m.get("content"))]
        assert bash_outputs
    else:
        assert names == {"increment_counter", "get_counter_value"}
