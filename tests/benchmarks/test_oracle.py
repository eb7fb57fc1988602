"""The reference policies as Models: what the oracle sends, turn by turn."""

from __future__ import annotations

import json

import pytest

from react_eval.benchmarks.base import Benchmark, PlannedCall, ReferenceSolution
from react_eval.benchmarks.oracle import (
    EMPTY_URL,
    ORACLE_URL,
    EmptyModel,
    OracleModel,
    is_reference_service,
    reference_model,
)
from react_eval.benchmarks.smoke import SmokeBenchmark
from react_eval.model.config import ModelConfig
from react_eval.types import Task

pytestmark = pytest.mark.anyio


class TwoTasks(Benchmark):
    """Three tasks, two of which share a prompt but not a solution."""

    name = "two"

    def tasks(self) -> list[Task]:
        return [Task(id="a", prompt="fix A"), Task(id="b", prompt="same"), Task(id="c", prompt="same"),
                Task(id="d", prompt="no plan")]

    def reference_solution(self, task: Task) -> ReferenceSolution | None:
        if task.id == "d":
            return None
        steps = [PlannedCall("file_write", {"path": "x.txt", "content": task.id}),
                 PlannedCall("bash", {"command": "cat x.txt"})]
        return ReferenceSolution(steps=steps, final_message=f"done {task.id}")


def convo(prompt: str, assistant_turns: int) -> list[dict]:
    messages = [{"role": "system", "content": "s"}, {"role": "user", "content": prompt}]
    for i in range(assistant_turns):
        messages += [{"role": "assistant", "content": "", "tool_calls": []}, {"role": "tool", "content": str(i)}]
    return messages


async def test_oracle_replays_the_plan_then_answers():
    model = OracleModel(TwoTasks())
    first = await model.complete(convo("fix A", 0), [])
    assert [(c.name, json.loads(c.arguments_raw)) for c in first.tool_calls] == [
        ("file_write", {"path": "x.txt", "content": "a"})]
    second = await model.complete(convo("fix A", 1), [])
    assert second.tool_calls[0].name == "bash" and second.tool_calls[0].arguments == {"command": "cat x.txt"}
    last = await model.complete(convo("fix A", 2), [])
    assert last.tool_calls == [] and last.content == "done a"
    assert model.config.model == "oracle" and is_reference_service(model.config)


async def test_oracle_refuses_ambiguous_or_unknown_tasks():
    model = OracleModel(TwoTasks())
    ambiguous = await model.complete(convo("same", 0), [])
    assert ambiguous.tool_calls == [] and "cannot tell" in ambiguous.content
    unknown = await model.complete(convo("never seen", 0), [])
    assert "no reference solution" in unknown.content
    planless = await model.complete(convo("no plan", 0), [])
    assert "no reference solution" in planless.content


async def test_empty_policy_and_factory():
    empty = EmptyModel()
    reply = await empty.complete(convo("fix A", 0), [])
    assert reply.content == "" and reply.tool_calls == []
    bench = SmokeBenchmark()
    assert isinstance(reference_model(ModelConfig(base_url=EMPTY_URL, model="empty"), bench), EmptyModel)
    oracle = reference_model(ModelConfig(base_url=ORACLE_URL, model="oracle"), bench)
    task = bench.tasks()[0]
    answer = await oracle.complete([{"role": "user", "content": task.prompt}], [])
    assert answer.content == f"ANSWER: {task.metadata['answer']}"
    with pytest.raises(ValueError):
        reference_model(ModelConfig(base_url="oracle://nope", model="x"), bench)
    assert not is_reference_service(ModelConfig(base_url="http://127.0.0.1:8000/v1", model="m"))
    # model: oracle is the reference policy in every path (flags, YAML, shards) and needs no url; with a url
    # it is ambiguous (a served model named "oracle"?) and refused, never silently one or the other
    for spelling in ({}, {"url": ORACLE_URL}, {"base_url": ORACLE_URL}):
        service = ModelConfig.model_validate({"model": "oracle", **spelling})
        assert service.base_url == ORACLE_URL and service.endpoint is None and is_reference_service(service)
    for spelling in ({"base_url": "http://127.0.0.1:8000/v1"}, {"url": "http://127.0.0.1:8000/v1/chat/completions"}):
        with pytest.raises(ValueError, match="drop (base_url|url) to run the reference policy"):
            ModelConfig.model_validate({"model": "oracle", **spelling})
