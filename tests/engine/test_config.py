"""Config loading: errors name the field (and the line), env expansion, overrides, suites."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from react_eval.engine.config import ConfigError, load_config
from react_eval.engine.results import load_results
from tests.test_e2e_smoke import smoke_policy

GOOD = """\
services:
  model:
    type: api
    url: http://127.0.0.1:9/v1
    model: m
benchmarks:
  - name: smoke
    solver:
      type: tool_calling
      service: model
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cfg.yaml"
    path.write_text(text)
    return path


def error_of(tmp_path: Path, text: str, overrides=()) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text), list(overrides))
    return str(info.value)


def test_unknown_key_names_field_and_line(tmp_path):
    msg = error_of(tmp_path, GOOD.replace("      service: model\n", "      service: model\n      max_turn: 5\n"))
    assert "benchmarks.0.solver.max_turn: unknown key" in msg
    assert "cfg.yaml:11:" in msg


def test_wrong_type_names_field(tmp_path):
    msg = error_of(tmp_path, GOOD.replace("      service: model\n", "      service: model\n      max_turns: lots\n"))
    assert "benchmarks.0.solver.max_turns" in msg and "integer" in msg and "cfg.yaml:11:" in msg


def test_unset_env_var_names_field_and_variable(tmp_path, monkeypatch):
    monkeypatch.delenv("SURELY_UNSET_KEY", raising=False)
    msg = error_of(tmp_path, GOOD.replace("    model: m\n", "    model: m\n    api_key: ${SURELY_UNSET_KEY}\n"))
    assert "services.model.api_key" in msg and "SURELY_UNSET_KEY is not set" in msg


def test_dangling_reference_and_malformed_yaml(tmp_path):
    assert "no service named 'nope'" in error_of(tmp_path, GOOD.replace("service: model", "service: nope"))
    msg = error_of(tmp_path, "services: [unclosed\n")
    assert "malformed YAML" in msg and "cfg.yaml:" in msg


def test_overrides_and_env_defaults(tmp_path, monkeypatch):
    monkeypatch.setenv("THE_KEY", "sk-1")
    text = GOOD.replace("    model: m\n", "    model: m\n    api_key: ${THE_KEY}\n    request_timeout: ${TO:-42}\n")
    cfg = load_config(write(tmp_path, text), ["benchmarks.0.solver.max_turns=7", "output.dir=/tmp/x"])
    assert cfg.benchmarks[0].solver.max_turns == 7 and cfg.output.dir == "/tmp/x"
    assert cfg.services["model"].request_timeout == 42
    assert cfg.services["model"].api_key.get_secret_value() == "sk-1"
    assert cfg.redacted()["services"]["model"]["api_key"] == "***"
    assert "bad index" not in error_of(tmp_path, GOOD, ["benchmarks.5.repeats=2"])  # names the list position
    assert "is not an index" in error_of(tmp_path, GOOD, ["benchmarks.5.repeats=2"])


def test_suite_runs_each_benchmark_in_its_own_dir_and_isolates_failures(scripted_server, tmp_path):
    srv = scripted_server(smoke_policy)
    cfg = write(tmp_path, f"""\
services:
  model: {{type: api, url: {srv.base_url}, model: scripted}}
benchmarks:
  - name: smoke
    max_problems: 2
    solver: {{type: tool_calling, service: model}}
  - name: smoke
    problem_range: "100:200"
    solver: {{type: tool_calling, service: model}}
  - name: smoke
    problem_range: "4:6"
    solver: {{type: tool_calling, service: model, max_turns: 9}}
output:
  dir: {tmp_path / 'out'}
""")
    proc = subprocess.run([sys.executable, "-m", "react_eval.cli", "run", "-c", str(cfg), "--no-progress"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1  # one benchmark failed ...
    assert "smoke failed: smoke: problem_range '100:200' selects no task of its 6" in proc.stderr, proc.stderr
    # ... but the others ran, each in its own directory (a repeated name gets a suffix)
    rows = load_results(tmp_path / "out" / "smoke" / "results.jsonl")
    assert {r.task_id for r in rows} == {"smoke-log-errors", "smoke-csv-sum"}
    rows = load_results(tmp_path / "out" / "smoke.3" / "results.jsonl")
    assert {r.task_id for r in rows} == {"smoke-run-script", "smoke-fix-mean"}


def test_responses_protocol_end_to_end(scripted_server, tmp_path):
    srv = scripted_server(smoke_policy)
    proc = subprocess.run([sys.executable, "-m", "react_eval.cli", "run", "--bench", "smoke", "--model-url",
                           srv.base_url, "--model", "scripted", "--protocol", "responses", "-o", str(tmp_path),
                           "--no-progress"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    rewards = {r.task_id: r.reward for r in load_results(tmp_path / "smoke" / "results.jsonl")}
    assert rewards["smoke-fix-mean"] == 1.0 and rewards["smoke-json-port"] == 0.0
    assert sum(rewards.values()) == 5.0
    assert all(r.endpoint == "responses" for r in srv.requests)
    items = srv.requests[-1].body["input"]
    assert any(i.get("type") == "function_call_output" for i in items)
    assert json.loads((tmp_path / "smoke" / "eval.json").read_text())["config"]["services"]["model"]["protocol"] == "responses"
