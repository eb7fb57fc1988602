"""gym:// benchmarks: datasets, tasks, engine wiring and verify edge cases."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from react_eval.sandboxes.local import LocalSandboxConfig

from react_eval.benchmarks.base import Answer, RolloutEnv
from react_eval.benchmarks.registry import get_benchmark
from react_eval.engine.config import validate_config
from react_eval.engine.run import EntryRunners, tool_sources
from react_eval.gym.benchmark import GymBenchmark, GymDatasetError, server_url
from react_eval.gym.source import GymToolSource
from react_eval.tools.base import CompositeBackend
from react_eval.types import ToolCall, ToolResult, VerifyError
from tests.gym.servers import tree_app


def write(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(line + "\n" for line in lines))
    return path


ROW = {"responses_create_params": {"input": "hello"}}


def test_rows_become_tasks(tmp_path):
    rows = [
        {"id": 7, "responses_create_params": {"input": [
            {"role": "developer", "content": "Rules."}, {"role": "system", "content": "More rules."},
            {"role": "user", "content": "Do it."}],
            "tools": [{"type": "function", "name": "act", "parameters": {"type": "object", "properties": {}}}]},
         "expected": [1, {"a": 2}]},
        {"responses_create_params": {"input": "plain question"}},
    ]
    path = write(tmp_path, *(json.dumps(r) for r in rows), "")
    bench = get_benchmark("gym://127.0.0.1:8000", dataset=str(path))
    assert isinstance(bench, GymBenchmark) and bench.url == "http://127.0.0.1:8000" and bench.verification == "gym"
    first, second = bench.tasks()
    assert first.id == "7" and second.id == "row-1"
    assert first.system_prompt == "Rules.\n\nMore rules." and first.messages == [{"role": "user", "content": "Do it."}]
    assert first.prompt == "Do it." and first.metadata["row"] == rows[0]
    assert first.tools == [{"type": "function", "function": {"name": "act", "description": "",
                                                             "parameters": {"type": "object", "properties": {}}}}]
    assert second.initial_messages() == [{"role": "user", "content": "plain question"}] and second.tools is None
    assert second.system_prompt is None
    (source,) = bench.tool_sources()
    assert isinstance(source, GymToolSource) and source.label == "gym" and source.endpoint.url == bench.url


@pytest.mark.parametrize("lines, message", [
    ([json.dumps(ROW), "{oops"], "rows.jsonl:2: corrupt JSON line"),
    ([json.dumps(ROW), "", "[1, 2]"], "rows.jsonl:3: a row must be a JSON object"),
    ([json.dumps({"expected": 1})], "rows.jsonl:1: the row has no 'responses_create_params' object"),
    ([json.dumps({"responses_create_params": {"tools": []}})], "rows.jsonl:1: responses_create_params has no 'input'"),
    ([json.dumps({"responses_create_params": {"input": "x", "tools": [{"type": "web_search"}]}})],
     "rows.jsonl:1: tool type 'web_search' is not a function tool"),
    ([json.dumps({**ROW, "id": "a"}), json.dumps({**ROW, "id": "b"}), json.dumps({**ROW, "id": "a"})],
     "rows.jsonl:3: row id 'a' was already used on line 1"),
    ([""], "has no rows"),
])
def test_bad_datasets_name_the_file_and_line(tmp_path, lines, message):
    path = write(tmp_path, *lines)
    with pytest.raises(GymDatasetError) as err:
        GymBenchmark("127.0.0.1:8000", dataset=str(path))
    assert message in str(err.value) and str(path.parent) in str(err.value)


def test_missing_dataset_options_and_addresses(tmp_path):
    with pytest.raises(ValueError, match="--dataset"):
        get_benchmark("gym://127.0.0.1:8000")
    with pytest.raises(GymDatasetError, match="dataset file not found: .*nope.jsonl.*--dataset"):
        get_benchmark("gym://127.0.0.1:8000", dataset=str(tmp_path / "nope.jsonl"))
    with pytest.raises(ValueError, match="unknown option.*datset"):
        get_benchmark("gym://127.0.0.1:8000", datset="x")
    for bad in ("127.0.0.1", "127.0.0.1:http", "http://h:1", ":80"):
        with pytest.raises(ValueError, match="gym://"):
            server_url(bad)
    assert server_url("localhost:9000/prefix/") == "http://localhost:9000/prefix"


def _config(tmp_path, *, resource: bool, sandbox_tools: bool | None, url: str = "http://127.0.0.1:1"):
    solver = {"service": "m"} if sandbox_tools is None else {"service": "m", "sandbox_tools": sandbox_tools}
    data = {"services": {"m": {"type": "api", "base_url": "http://127.0.0.1:9/v1", "model": "x"}},
            "benchmarks": [{"name": "gym://127.0.0.1:8000", "options": {"dataset": str(write(tmp_path, json.dumps(ROW)))},
                            "solver": solver}]}
    if resource:
        data["services"]["g"] = {"type": "gym", "url": url, "request_timeout": 5}
        data["benchmarks"][0]["solver"]["resource_service"] = "g"
    return validate_config(data)


@pytest.mark.parametrize("resource, sandbox_tools, labels, url", [
    (False, False, ["gym"], "http://127.0.0.1:8000"),
    (True, False, ["gym"], "http://127.0.0.1:1"),  # the configured service wins; no second session
    (True, True, ["gym", "sandbox"], "http://127.0.0.1:1"),
    (False, True, ["gym", "sandbox"], "http://127.0.0.1:8000"),
])
def test_engine_opens_the_benchmarks_gym_source_deduped_by_label(tmp_path, resource, sandbox_tools, labels, url):
    cfg = _config(tmp_path, resource=resource, sandbox_tools=sandbox_tools)
    entry = cfg.benchmarks[0]
    bench = get_benchmark(entry.name, **entry.options)
    sources = tool_sources(cfg, entry, sandbox_tools, bench)
    assert [s.label for s in sources] == labels
    assert sources[0].endpoint.url == url


@pytest.mark.anyio
@pytest.mark.parametrize("sandbox_tools, labels", [(None, ["gym"]), (False, ["gym"]), (True, ["gym", "sandbox"])])
async def test_gym_offers_its_tools_only_and_starts_no_sandbox_unless_sandbox_tools_is_true(
        tmp_path, sandbox_tools, labels):
    cfg = _config(tmp_path, resource=False, sandbox_tools=sandbox_tools)
    entry = cfg.benchmarks[0]
    if sandbox_tools:  # sandbox tools need a configured sandbox: there is no host default (engine/defaults.py)
        entry.sandbox = LocalSandboxConfig(isolation="bwrap")
    runners = EntryRunners(cfg, entry, "run-x", get_benchmark(entry.name, **entry.options))
    runner = await runners.open()
    try:
        assert [s.label for s in runner.tool_sources] == labels
        assert (runner.sandbox_provider is not None) == bool(sandbox_tools)
    finally:
        await runners.close(runner)


@pytest.mark.anyio
async def test_verify_needs_a_session_a_reward_and_an_unmasked_sample(gym_server, tmp_path):
    srv = gym_server(tree_app())
    rows = [{"id": "ok", "responses_create_params": {"input": "sum"}, "expected_total": 3},
            {"id": "masked", "responses_create_params": {"input": "sum"}, "expected_total": 3, "mask": True},
            {"id": "noreward", "responses_create_params": {"input": "sum"}, "expected_total": 3, "omit_reward": True}]
    bench = GymBenchmark(srv.address, dataset=str(write(tmp_path, *(json.dumps(r) for r in rows))))
    call = ToolCall(id="c1", name="tree__sum", arguments_raw='{"tree": {"value": 3}}', arguments={"tree": {"value": 3}})
    answer = Answer(final_message="It is 3.", model_name="m", calls=[(call, ToolResult(content='{"total":3}'))],
                    messages=[{"role": "system", "content": "s"}, {"role": "user", "content": "sum"},
                              {"role": "assistant", "content": None, "tool_calls": [
                                  {"id": "c1", "type": "function", "function": {"name": "tree__sum", "arguments": call.arguments_raw}}]},
                              {"role": "tool", "tool_call_id": "c1", "content": '{"total":3}'},
                              {"role": "assistant", "content": "It is 3."}])
    source = bench.tool_sources()[0]
    verdicts = {}
    for task in bench.tasks():
        session = await source.open(task, None)
        env = RolloutEnv(sandbox=None, tools=await CompositeBackend({"gym": session}).start(), backends={"gym": session})
        try:
            verdicts[task.id] = await bench.verify(task, answer, env)
        except VerifyError as exc:
            verdicts[task.id] = exc
        finally:
            await session.aclose()
    assert verdicts["ok"].reward == 1.0 and verdicts["ok"].details["final_text"] == "It is 3."
    assert verdicts["ok"].details["expected_total"] == 3 and "reward" not in verdicts["ok"].details
    assert "masked" in str(verdicts["masked"]) and "the tree store was down" in str(verdicts["masked"])
    assert "without a numeric reward" in str(verdicts["noreward"])
    body = srv.log.for_path("/verify")[0].json()
    assert body["response"]["output"][0]["name"] == "tree__sum"
    assert {t["name"] for t in body["response"]["tools"]} >= {"tree__sum", "slow"}  # discovered tools, Responses form
    with pytest.raises(VerifyError, match="no Gym session"):
        await bench.verify(bench.tasks()[0], answer, RolloutEnv(sandbox=None, tools=CompositeBackend({}), backends={}))
