"""NEL's config fields: each honoured, or refused with a message naming what to use instead."""

from __future__ import annotations

import pytest

from react_eval.benchmarks.registry import get_benchmark
from react_eval.engine.config import ConfigError, validate_config
from react_eval.engine.run import select_tasks
from tests.nel.helpers import DATA


def config(entry: dict | None = None, **top) -> dict:
    return {"services": {"m": {"type": "api", "url": "http://127.0.0.1:9/v1/chat/completions", "model": "x"}},
            "benchmarks": [{"name": "humaneval", "solver": {"type": "simple", "service": "m"}, **(entry or {})}],
            **top}


@pytest.mark.parametrize("data, message", [
    (config(cluster={"type": "slurm", "walltime": "02:00:00"}), r"cluster: type 'slurm'.*--shard i/N"),
    (config(output={"dir": "x", "export": ["wandb"]}), r"output.export.*react-eval report"),
    (config({"sandbox": {"type": "slurm"}}), r"sandbox.type: 'slurm'.*type docker"),
    (config({"sandbox": {"type": "apptainer"}}), r"'apptainer'.*use type: docker"),
    (config(sandboxes={"s": {"type": "ecs_fargate", "cluster": "c"}}), r"sandboxes.s.type: 'ecs_fargate'.*docker"),
    (config({"solver": {"type": "harbor", "service": "m", "agent": "openhands"}}), r"'harbor'.*tool_calling.*harbor:PATH"),
    (config({"solver": {"type": "gym_delegation", "service": "m"}}), r"'gym_delegation'.*resource_service"),
    (config({"name": "lm-eval://mmlu_generative"}), r"lm-evaluation-harness.*--bench qa --dataset"),
    (config({"name": "skills://gpqa"}), r"NeMo Skills.*gym://"),
    (config({"name": "harbor://swebench-verified@1.0"}), r"Harbor registry.*harbor:PATH"),
    ({"services": {"m": {"type": "vllm", "model": "x", "tensor_parallel_size": 4}},
      "benchmarks": [{"name": "gsm8k", "solver": {"type": "simple", "service": "m"}}]}, r"'vllm'.*type: api with its url"),
    ({"services": {"m": {"type": "api", "url": "http://h/v1", "model": "x",
                         "interceptors": [{"name": "turn_counter"}]}},
      "benchmarks": [{"name": "gsm8k", "solver": {"type": "simple", "service": "m"}}]}, r"interceptors.*max_turns"),
    (config({"solver": {"type": "simple", "service": "m", "sandbox_tools": True}}), r"use type: tool_calling"),
])
def test_refused_fields_name_the_alternative(data, message):
    with pytest.raises(ConfigError, match=message):
        validate_config(data)


def test_honoured_fields():
    cfg = validate_config(config(
        {"timeout": 42.0, "shuffle_seed": 3, "sandbox": {"type": "none"},
         "solver": {"type": "simple", "service": "m", "generation": {"top_p": 0, "max_tokens": 5}},
         "scoring": {"metrics": [{"type": "scorer", "name": "code_exec"}]}},
        cluster={"type": "local"}, output={"dir": "o", "export": []}))
    entry = cfg.benchmarks[0]
    assert entry.solver.rollout_timeout == 42.0 and entry.shuffle_seed == 3 and entry.sandbox is None
    assert entry.solver.generation.top_p == 0 and entry.scoring.metrics[0].name == "code_exec"
    assert cfg.output.dir == "o"
    assert any("timeout: 42.0s per problem" in n for n in cfg._nel_notes)


def test_a_named_none_sandbox_is_no_sandbox():
    cfg = validate_config(config({"sandbox": "nothing"}, sandboxes={"nothing": {"type": "none"}}))
    assert cfg.benchmarks[0].sandbox is None and cfg.sandboxes == {}


@pytest.mark.parametrize("nel, ours, note", [
    ("humaneval", "humaneval", None), ("mbpp", "mbpp+", "evalplus"), ("swebench-verified", "swebench", "--dataset"),
    ("swebench-multilingual", "swebench", "Multilingual"), ("mmlu", "mcq", "--dataset"), ("simpleqa", "qa", "--dataset"),
    ("gsm8k", "gsm8k", None),
])
def test_benchmark_names_are_mapped(nel, ours, note):
    cfg = validate_config(config({"name": nel}))
    assert cfg.benchmarks[0].name == ours
    notes = " ".join(cfg._nel_notes)
    assert (note in notes) if note else notes == ""


def test_gym_data_query_becomes_the_dataset():
    cfg = validate_config(config({"name": "gym://127.0.0.1:8000?data=/tmp/rows.jsonl",
                                  "solver": {"type": "tool_calling", "service": "m"}}))
    entry = cfg.benchmarks[0]
    assert entry.name == "gym://127.0.0.1:8000" and entry.options == {"dataset": "/tmp/rows.jsonl"}
    with pytest.raises(ConfigError, match=r"unknown query field\(s\) limit"):
        validate_config(config({"name": "gym://127.0.0.1:8000?data=x&limit=3"}))


def test_shuffle_seed_reorders_before_the_selection_reproducibly():
    def ids(seed):
        cfg = validate_config(config({"max_problems": 5, **({"shuffle_seed": seed} if seed is not None else {})}))
        return [t.id for t in select_tasks(get_benchmark("humaneval"), cfg.benchmarks[0])]

    plain, a, again, b = ids(None), ids(1), ids(1), ids(2)
    assert plain == [f"HumanEval/{i}" for i in range(5)]
    assert a == again and a != plain and a != b and len(set(a)) == 5


def test_scoring_refers_to_real_services():
    with pytest.raises(ConfigError, match=r"scoring.metrics.0.service: no service named 'judge'"):
        validate_config(config({"scoring": {"metrics": [{"type": "judge", "service": "judge"}]}}))
    with pytest.raises(ConfigError, match=r"nothing would grade"):
        validate_config(config({"scoring": {"include_defaults": False, "metrics": []}}))
    with pytest.raises(ConfigError, match=r"scoring.metrics.0.name"):
        validate_config(config({"scoring": {"metrics": [{"type": "scorer", "name": "bleu"}]}}))


def test_qa_dataset_errors_name_the_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "q", "answer": "a"}\n{"question": "no answer"}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:2: a row needs a question"):
        get_benchmark("qa", dataset=str(bad))
    assert [t.id for t in get_benchmark("gsm8k", dataset=str(DATA / "gsm8k_mini.jsonl")).tasks()] == \
        ["row-0", "row-1", "row-2"]


def test_nel_settings_enter_the_resume_hash_only_when_set():
    from react_eval.engine.manifest import config_hash, hashed_fields

    def digest(**entry):
        cfg = validate_config(config(entry))
        return config_hash(hashed_fields(cfg, cfg.benchmarks[0]))

    plain = digest()
    assert "generation" not in hashed_fields(validate_config(config()), validate_config(config()).benchmarks[0])["solver"]
    assert len({plain, digest(shuffle_seed=1), digest(shuffle_seed=2),
                digest(scoring={"metrics": [{"type": "scorer", "name": "exact_match"}]}),
                digest(solver={"type": "simple", "service": "m", "generation": {"seed": 1}})}) == 5
