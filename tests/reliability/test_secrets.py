"""The API key never leaves the process: not into any output file, log or
trajectory, not into the sandbox, not even when the server echoes it back.

Two runs through the CLI: the key from ``--api-key-env`` (bwrap sandbox), and
from ``api_key: ${VAR}`` in a YAML config (Docker sandbox). In each, one task
prints the sandbox's whole environment, one gets a model error whose message
quotes the key, one succeeds.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path


from tests.reliability.bench import task, write_tasks
from tests.reliability.harness import (
    MARKER_VAR,
    ByTask,
    assert_no_leaks,
    cli,
    config,
    echo_answer,
    echo_steps,
    new_marker,
    write_yaml,
)
from tests.support.scripted_server import ScriptedServer, http_error, tool_call

ENV_DUMP = ("env | sort; echo ---; cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n' | sort -u; "
            "echo ---; cat /proc/1/cmdline 2>/dev/null | tr '\\0' ' '")


def scripts(key: str) -> dict:
    return {
        "ok": echo_steps("tok-ok"),
        "env": [tool_call("bash", {"command": ENV_DUMP}), echo_answer],
        # a server that quotes the key it was sent in its error (some gateways do)
        "echo_error": [http_error(400, message=f"Invalid request for API key {key}: unsupported field 'x'")],
    }


def check_no_key(key: str, out: Path, proc, srv, marker: str) -> None:
    files = [p for p in out.rglob("*") if p.is_file()]
    names = {p.name for p in files}
    assert {"results.jsonl", "trajectories.jsonl", "eval.json", "run.json", "runtime_stats.json",
            "failure_analysis.json"} <= names, names
    for path in files:
        assert key not in path.read_text(errors="replace"), f"the key is in {path}"
    assert key not in proc.stdout and key not in proc.stderr, "the key is in the CLI's output"
    # it was really used: every request carried it, in the header only
    assert srv.requests and all(r.headers["authorization"] == f"Bearer {key}" for r in srv.requests)
    for r in srv.requests:
        assert key.encode() not in r.raw_body, f"the key reached the model in request #{r.index}"
    # the sandbox's environment went to the model (positive control) -- without the key
    env_dump = [m["content"] for r in srv.requests for m in r.messages if m.get("role") == "tool"
                and f"{MARKER_VAR}={marker}" in m["content"]]
    assert env_dump, "the environment dump never reached the model"
    rows = {json.loads(line)["task_id"]: json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()}
    assert rows["ok"]["reward"] == 1.0 and rows["env"]["error_kind"] is None
    echo = rows["echo_error"]
    assert echo["error_kind"] == "model_error" and "Invalid request for API key ***" in echo["error"]
    assert sorted(rows) == ["echo_error", "env", "ok"]


def secret_run(tmp_path: Path) -> tuple[str, ByTask, Path, str]:
    """A fresh key, the scripts that use it, the three tasks and a leak marker."""
    key = f"sk-reliability-{secrets.token_hex(16)}"
    tasks = write_tasks(tmp_path / "tasks.json", [task("ok", "tok-ok"), task("env", "anything"),
                                                  task("echo_error", "never")])
    return key, ByTask(scripts(key)), tasks, new_marker()


def test_key_from_api_key_env_appears_nowhere(bwrap_available, tmp_path):
    key, policy, tasks, marker = secret_run(tmp_path)
    with ScriptedServer(policy) as srv:
        proc = cli("run", "--bench", "reliability", "--model-url", srv.base_url, "--model", "scripted",
                   "--api-key-env", "RELIABILITY_SECRET", "--sandbox", "bwrap", "-o", str(tmp_path / "out"),
                   "-O", f"benchmarks.0.options.tasks={tasks}", "-O", f"sandboxes.default.env.{MARKER_VAR}={marker}",
                   "-O", "services.model.max_attempts=1",
                   env={"RELIABILITY_SECRET": key})  # progress lines on: they are logs too
        assert proc.returncode == 0, proc.stdout + proc.stderr
        out = tmp_path / "out" / "reliability"
        check_no_key(key, out, proc, srv, marker)
    bundle = json.loads((out / "eval.json").read_text())
    service = bundle["config"]["services"]["model"]
    assert service["api_key"] is None and service["api_key_env"] == "RELIABILITY_SECRET"  # the name, never the value
    assert_no_leaks(marker)


def test_key_from_yaml_env_expansion_appears_nowhere_and_the_config_shows_stars(docker_engine, tmp_path):
    key, policy, tasks, marker = secret_run(tmp_path)
    with ScriptedServer(policy) as srv:
        data = config(srv.base_url, tasks, marker=marker, out=tmp_path / "out",
                      sandbox={"type": "docker", "memory": "512m"},
                      service={"api_key": "${RELIABILITY_SECRET}", "max_attempts": 1})
        cfg = write_yaml(tmp_path / "eval.yaml", data)
        assert key not in cfg.read_text()
        proc = cli("run", "--config", str(cfg), env={"RELIABILITY_SECRET": key})
        assert proc.returncode == 0, proc.stdout + proc.stderr
        out = tmp_path / "out" / "reliability"
        check_no_key(key, out, proc, srv, marker)
    bundle = json.loads((out / "eval.json").read_text())
    assert bundle["config"]["services"]["model"]["api_key"] == "***"
    run_id = json.loads((out / "results.jsonl").read_text().splitlines()[0])["run_id"]
    assert_no_leaks(marker, run_id=run_id)
