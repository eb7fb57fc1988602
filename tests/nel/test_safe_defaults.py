"""No default hands the model a host shell; defaults that differ from NEL's are said once."""

from __future__ import annotations

import pytest

from react_eval.benchmarks.registry import get_benchmark
from react_eval.engine.config import validate_config
from react_eval.engine.defaults import SandboxRequired, nel_differences, resolve_sandbox
from react_eval.sandboxes.docker.config import DockerSandboxConfig
from tests.nel.helpers import run_config
from tests.support.scripted_server import answer, tool_call


def smoke(model_url: str, **solver) -> dict:
    return {"services": {"m": {"type": "api", "base_url": model_url, "model": "x", "max_attempts": 1}},
            "benchmarks": [{"name": "smoke", "max_problems": 1,
                            "solver": {"type": "tool_calling", "service": "m", "max_turns": 3, **solver}}]}


def test_a_sandbox_benchmark_without_a_sandbox_gets_the_announced_jail(scripted_server, tmp_path, capfd,
                                                                       bwrap_available):
    secret = tmp_path / "host-secret.txt"
    secret.write_text("HOST-FILE-READ")

    def policy(req):
        if req.turn == 0:
            return tool_call("bash", {"command": f"cat {secret} || echo NOT-VISIBLE"})
        return answer("ANSWER: 0")

    srv = scripted_server(policy)
    run, rows, _ = run_config(smoke(srv.base_url), tmp_path / "out")
    assert run.error is None and rows[0]["error_kind"] is None
    observation = next(m["content"] for m in srv.requests[1].messages if m["role"] == "tool")
    assert "HOST-FILE-READ" not in observation and "NOT-VISIBLE" in observation
    assert "no sandbox configured, so the agent works in the default one: local with isolation: bwrap" \
        in capfd.readouterr().err


def test_without_bubblewrap_the_run_is_refused_not_run_on_the_host(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no bwrap to be found
    cfg = validate_config(smoke("http://127.0.0.1:9/v1"))
    with pytest.raises(SandboxRequired, match=r"--sandbox docker, or --sandbox local"):
        resolve_sandbox(cfg, cfg.benchmarks[0], get_benchmark("smoke"))


def test_sandbox_tools_without_a_sandbox_are_refused(scripted_server, tmp_path):
    srv = scripted_server([])
    data = smoke(srv.base_url, sandbox_tools=True)
    data["benchmarks"][0]["name"] = "humaneval"
    run, rows, _ = run_config(data, tmp_path)
    assert "sandbox_tools is true but no sandbox is configured" in run.error and rows == []
    assert srv.requests == []


def test_a_benchmark_that_needs_no_sandbox_offers_no_tools_without_one(scripted_server, tmp_path):
    srv = scripted_server(lambda req: answer("```python\ndef has_close_elements(n, t):\n    return False\n```"))
    data = smoke(srv.base_url)
    data["benchmarks"][0]["name"] = "humaneval"
    run, rows, _ = run_config(data, tmp_path)
    assert run.error is None and len(rows) == 1
    assert srv.requests[0].tool_names == []


def test_docker_defaults_that_differ_from_nels_are_listed_unless_set():
    cfg = validate_config(smoke("http://127.0.0.1:9/v1"))
    entry, bench = cfg.benchmarks[0], get_benchmark("smoke")
    lines = nel_differences(cfg, entry, bench, DockerSandboxConfig())
    assert any("docker network: none (NEL: bridge" in line for line in lines)
    assert any("docker concurrency: 16 (NEL: 4" in line for line in lines)
    assert any("sandbox tools on" in line for line in lines)
    chosen = DockerSandboxConfig(network="bridge", concurrency=4)
    assert not any("docker" in line for line in nel_differences(cfg, entry, bench, chosen))


def test_response_mode_from_the_config_is_honoured_or_refused(scripted_server, tmp_path):
    srv = scripted_server([])
    data = smoke(srv.base_url, response_mode="last_message")
    data["benchmarks"][0]["name"] = "swe-mini"
    data["benchmarks"][0]["sandbox"] = {"type": "local", "isolation": "bwrap"}
    run, rows, _ = run_config(data, tmp_path)
    assert "response_mode: last_message, but this benchmark grades the sandbox's patch" in run.error
    assert srv.requests == [] and rows == []
