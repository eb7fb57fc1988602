"""The agent's own sandbox gets the benchmark's declared environment.

swe-mini declares a Python with pytest (``grading_env``). Under the local and
bwrap sandboxes react-eval provisions it (the cache the graders use) and puts
it first on the agent's PATH, so ``python``, ``python3`` and ``pytest`` in the
agent's shell are that environment's, not Debian's (no pytest) nor the
harness' own. Under bwrap the jail still hides /work, /root and the harness.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from react_eval.benchmarks.swe import PYTEST_ENV
from react_eval.engine.results import load_results
from react_eval.grading.envs import provision
from react_eval.grading.sandbox import with_env
from react_eval.sandboxes.local import LocalSandboxConfig
from tests.benchmarks.test_swe_e2e import run_cli
from tests.support.scripted_server import ScriptedRequest, answer, tool_call

PROBES = [
    "python -m pytest --version 2>&1; echo rc=$?",
    "which python3 python pytest; python3 -c 'import sys; print(\"prefix=\" + sys.prefix)'",
    "ls /work 2>&1; echo work_rc=$?; ls /root 2>&1; echo root_rc=$?; "
    "python3 -c 'import react_eval' 2>&1 | tail -n 1; echo harness_rc=$?",
]


def probe_policy(req: ScriptedRequest):
    if req.turn < len(PROBES):
        return tool_call("bash", {"command": PROBES[req.turn]})
    return answer("probed")


def tool_outputs(run_dir: Path) -> list[str]:
    """Every tool observation of the run's one trajectory, in order."""
    (line,) = (run_dir / "trajectories.jsonl").read_text().splitlines()
    outputs = []
    for step in json.loads(line)["steps"]:
        for result in (step.get("observation") or {}).get("results") or []:
            content = result.get("content")
            outputs.append(content if isinstance(content, str) else json.dumps(content))
    return outputs


def run_probes(scripted_server, tmp_path: Path, *sandbox: str) -> list[str]:
    srv = scripted_server(probe_policy)
    proc = run_cli("run", "--bench", "swe-mini", "--model-url", srv.base_url, "--model", "scripted",
                   "--problem-range", "1:2", *sandbox, "-o", str(tmp_path), "--no-progress")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    (row,) = load_results(tmp_path / "swe-mini" / "results.jsonl")
    assert row.error_kind is None and row.turns == len(PROBES) + 1, row
    outputs = tool_outputs(tmp_path / "swe-mini")
    assert len(outputs) == len(PROBES), outputs
    return outputs


def assert_env_is_first(outputs: list[str]) -> None:
    env = provision(PYTEST_ENV)  # cached: the one the run provisioned
    version, which = outputs[0], outputs[1]
    assert "pytest " in version and "rc=0" in version, version
    assert which.splitlines()[:3] == [f"{env.path}/bin/python3", f"{env.path}/bin/python", f"{env.path}/bin/pytest"], which
    assert f"prefix={env.path}" in which, which


def test_local_rollout_runs_the_declared_pytest(scripted_server, tmp_path: Path):
    assert_env_is_first(run_probes(scripted_server, tmp_path))


def test_bwrap_rollout_runs_the_declared_pytest_and_still_hides_the_host(scripted_server, tmp_path: Path,
                                                                         bwrap_available):
    outputs = run_probes(scripted_server, tmp_path, "--sandbox", "bwrap")
    assert_env_is_first(outputs)
    hidden = outputs[2]
    assert "work_rc=0" not in hidden and "root_rc=0" not in hidden, hidden
    assert "No such file or directory" in hidden, hidden
    assert "ModuleNotFoundError" in hidden, hidden  # the harness (and its answer keys) stay out of reach


@pytest.mark.parametrize("isolation", ["none", "bwrap"])
def test_with_env_puts_the_env_first_and_binds_it_only_in_the_jail(isolation):
    env = provision(PYTEST_ENV)
    config = LocalSandboxConfig(isolation=isolation, path_prepend=["/opt/tools/bin"])
    got = with_env(config, env)
    assert got.path_prepend == [f"{env.path}/bin", "/opt/tools/bin"]
    assert (str(env.path) in got.ro_binds) == (isolation == "bwrap")
    assert with_env(got, env) is got  # already there: nothing added twice
    assert config.path_prepend == ["/opt/tools/bin"] and config.ro_binds == []  # the original is untouched


def test_path_prepend_must_be_absolute():
    with pytest.raises(ValueError, match="path_prepend"):
        LocalSandboxConfig(path_prepend=["relative/bin"])
    with pytest.raises(ValueError, match="path_prepend"):
        LocalSandboxConfig(path_prepend=["/a:/b"])


def test_an_environment_that_cannot_be_provisioned_warns_and_grades_verify_error(scripted_server, tmp_path: Path,
                                                                                monkeypatch):
    monkeypatch.setenv("REACT_EVAL_BASE_PYTHON", str(tmp_path / "no-such-python"))
    srv = scripted_server([answer("nothing to do")])
    proc = run_cli("run", "--bench", "swe-mini", "--model-url", srv.base_url, "--model", "scripted",
                   "--problem-range", "1:2", "-o", str(tmp_path / "out"), "--no-progress")
    assert "runs without the declared environment 'pytest'" in proc.stderr, proc.stderr
    (row,) = load_results(tmp_path / "out" / "swe-mini" / "results.jsonl")
    assert row.error_kind == "verify_error" and row.reward is None, row
    assert "no-such-python" in row.error, row.error
