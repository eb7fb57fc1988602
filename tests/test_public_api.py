"""The public Python API: only names re-exported by ``react_eval`` are used here."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest

import react_eval

REPO = Path(__file__).resolve().parents[1]


def oracle_config(**entry) -> dict:
    return {"services": {"model": {"type": "api", "base_url": "oracle://reference", "model": "oracle"}},
            "benchmarks": [{"name": "smoke", "solver": {"service": "model"}, "max_problems": 2, **entry}]}


def test_importing_the_package_loads_nothing_heavy():
    code = ("import sys, react_eval; heavy = [m for m in ('pydantic', 'react_eval.engine', 'react_eval.plugins', "
            "'openai', 'httpx') if m in sys.modules]; print(heavy); react_eval.evaluate; "
            "print('react_eval.engine.run' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert proc.stdout.split("\n")[:2] == ["[]", "True"], proc.stdout + proc.stderr


def test_every_public_name_resolves_and_the_package_is_typed():
    for name in react_eval.__all__:
        assert getattr(react_eval, name) is not None, name
    assert set(react_eval.__all__) <= set(dir(react_eval))
    assert resources.files("react_eval").joinpath("py.typed").is_file()
    with pytest.raises(AttributeError):
        react_eval.no_such_name  # noqa: B018


def test_evaluate_a_mapping_and_read_the_results(tmp_path):
    result = react_eval.evaluate(oracle_config(repeats=2), output_dir=tmp_path)
    assert isinstance(result, react_eval.EvalResult) and result.ok and result.errors == {}
    summary = result.summaries["smoke"]
    assert summary["rollouts"] == 4 and summary["pass@1"] == 1.0
    rows = result.rows()
    assert len(rows) == 4 and {r["task_id"] for r in rows} == {r["task_id"] for r in result.rows("smoke")}
    assert (tmp_path / "smoke" / "results.jsonl").is_file()
    eval_json = json.loads((tmp_path / "smoke" / "eval.json").read_text())
    assert eval_json["config"]["benchmarks"][0]["solver"]["type"] == "tool_calling"


class Echo(react_eval.Benchmark):
    """Tasks whose answer is in the prompt; a Python model repeats it (or not)."""

    name = "echo"
    verification = "final_message"

    def __init__(self, count: int = 4):
        self.count = count

    def tasks(self) -> list[react_eval.Task]:
        return [react_eval.Task(id=f"t{i}", prompt=f"say {i}", metadata={"answer": str(i)})
                for i in range(self.count)]

    async def verify(self, task, answer, env) -> react_eval.Verification:
        return react_eval.Verification(reward=float(answer.final_message == task.metadata["answer"]))


class EvenOnly:
    """A model object (the Model protocol): right on even numbers, wrong on odd ones."""

    def __init__(self) -> None:
        self.config = react_eval.ModelConfig(base_url="http://unused.invalid/v1", model="even-only")
        self.calls = 0

    async def complete(self, messages, tools) -> react_eval.ModelResponse:
        self.calls += 1
        n = int(messages[-1]["content"].split()[-1])
        return react_eval.ModelResponse(content=str(n) if n % 2 == 0 else "no idea", finish_reason="stop")

    async def aclose(self) -> None:
        pass


@pytest.fixture
def echo_registered():
    react_eval.registry.register("benchmark", "echo", Echo)
    yield
    react_eval.registry.unregister("benchmark", "echo")


def test_a_registered_benchmark_and_a_python_model(tmp_path, echo_registered):
    model = EvenOnly()
    config = {"services": {"m": {"type": "api", "base_url": "http://unused.invalid/v1", "model": "even-only"}},
              "benchmarks": [{"name": "echo", "options": {"count": 6}, "solver": {"service": "m", "sandbox_tools": False}}]}
    result = react_eval.evaluate(config, output_dir=tmp_path, model=model)
    assert result.ok, result.errors
    assert result.summaries["echo"]["mean_reward"] == pytest.approx(0.5)
    assert model.calls == 6
    rows = result.rows("echo")
    assert {r["task_id"]: r["passed"] for r in rows} == {f"t{i}": i % 2 == 0 for i in range(6)}
    assert {r["model"] for r in rows} == {"even-only"}
    assert "smoke" in react_eval.registry.names("benchmark")  # the built-ins stay beside it


def test_aevaluate_in_an_event_loop_and_evaluate_refuses_one(tmp_path):
    async def main() -> react_eval.EvalResult:
        with pytest.raises(RuntimeError, match="aevaluate"):
            react_eval.evaluate(oracle_config(), output_dir=tmp_path / "no")
        return await react_eval.aevaluate(oracle_config(), output_dir=tmp_path / "yes")

    result = asyncio.run(main())
    assert result.summaries["smoke"]["pass@1"] == 1.0
    assert not (tmp_path / "no").exists()


def test_a_bad_config_is_a_config_error_naming_the_field(tmp_path):
    with pytest.raises(react_eval.ConfigError, match=r"benchmarks\.0\.repeats: Input should be greater than or equal to 1"):
        react_eval.evaluate(oracle_config(repeats=0), output_dir=tmp_path)
    with pytest.raises(react_eval.ConfigError, match="unknown solver 'nope'"):
        react_eval.evaluate(oracle_config(solver={"type": "nope", "service": "model"}), output_dir=tmp_path)
    path = tmp_path / "c.yaml"
    path.write_text("services: {m: {type: api, base_url: 'oracle://reference', model: oracle}}\n"
                    "benchmarks: [{name: smoke, max_problems: 1, solver: {service: m}}]\n")
    result = react_eval.evaluate(path, output_dir=tmp_path / "out", overrides=["benchmarks.0.repeats=2"])
    assert result.summaries["smoke"]["rollouts"] == 2


CONSUMER = """\
import react_eval


def pass_rate(path: str) -> float:
    result: react_eval.EvalResult = react_eval.evaluate(path, overrides=["benchmarks.0.repeats=2"])
    return float(result.summaries["smoke"]["pass@1"])


class Exact:
    async def verify(self, task: react_eval.Task, answer: react_eval.Answer,
                     env: react_eval.RolloutEnv) -> react_eval.Verification:
        return react_eval.Verification(reward=float(answer.final_message == task.metadata["answer"]))


grader: react_eval.Grader = Exact()
react_eval.registry.register("grader", "exact", Exact)
wrong: int = react_eval.evaluate("eval.yaml")  # the one planted error
"""


@pytest.mark.slow
def test_a_consumer_type_checks_against_the_public_api(tmp_path):
    """py.typed and the typed re-exports: mypy sees real types (it finds the planted error, and only it)."""
    pytest.importorskip("mypy", reason="mypy is in the dev extra: pip install -e '.[dev]'")
    (tmp_path / "consumer.py").write_text(CONSUMER)
    proc = subprocess.run([sys.executable, "-m", "mypy", "--follow-imports=silent", "--no-incremental",
                           "--cache-dir", str(tmp_path / "cache"), "consumer.py"], capture_output=True, text=True,
                          timeout=600, cwd=tmp_path, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    errors = [line for line in proc.stdout.splitlines() if ": error:" in line]
    planted = next(i for i, line in enumerate(CONSUMER.splitlines(), 1) if "planted" in line)
    assert len(errors) == 1 and f"consumer.py:{planted}:" in errors[0] and '"EvalResult"' in errors[0], proc.stdout
