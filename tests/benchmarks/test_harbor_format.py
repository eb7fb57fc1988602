"""Harbor task directories without Docker: task.toml read as Harbor reads it,
discovery, reward files, and refusals worded for the user."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from react_eval.benchmarks.harbor import HarborBenchmark, _parse_rewards
from react_eval.benchmarks.harbor_image import base_images, content_hash, image_tag
from react_eval.benchmarks.harbor_task import HarborTaskError, discover, parse_config
from react_eval.benchmarks.registry import get_benchmark
from react_eval.types import VerifyError
from tests.benchmarks.harbor_wheel import harbor_task_config

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "benchmarks" / "harbor-examples"

TRICKY_TOMLS = [
    # the legacy spellings Harbor still accepts: version, memory/storage as sizes
    'version = "1.0"\n[environment]\nmemory = "2G"\nstorage = "10G"\ncpus = 2\n',
    '[agent]\ntimeout_sec = 45.5\n[verifier]\ntimeout_sec = 30\n[verifier.env]\nA = "b"\n',
    '[environment]\nmemory_mb = 1536\nworkdir = "/srv"\nbuild_timeout_sec = 99\n[environment.env]\nX = "1"\n',
    '[metadata]\nauthor_name = "x"\ntags = ["a", "b"]\n[solution.env]\nK = "v"\n',
    "",
]


def _ours_vs_harbor(text: str) -> tuple[dict, dict]:
    harbor = harbor_task_config()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        theirs = harbor.TaskConfig.model_validate_toml(text)
    ours = parse_config(text, "task.toml")
    def view(c) -> dict:
        env, agent, verifier = c.environment, c.agent, c.verifier
        return {
            "agent_timeout": agent.timeout_sec, "verifier_timeout": verifier.timeout_sec,
            "verifier_env": dict(verifier.env), "solution_env": dict(c.solution.env),
            "build_timeout": env.build_timeout_sec, "cpus": env.cpus, "memory_mb": env.memory_mb,
            "storage_mb": env.storage_mb, "env": dict(env.env), "workdir": env.workdir,
            "docker_image": env.docker_image, "metadata": c.metadata,
            # Harbor fills in its current schema version when a file names none
            "schema_version": c.schema_version if "version" in text else None,
        }
    return view(ours), view(theirs)


@pytest.mark.parametrize("task_dir", sorted(p for p in EXAMPLES.iterdir() if p.is_dir()), ids=lambda p: p.name)
def test_example_task_tomls_read_the_same_with_harbors_models(task_dir: Path):
    ours, theirs = _ours_vs_harbor((task_dir / "task.toml").read_text())
    assert ours == theirs
    assert ours["verifier_timeout"] and ours["agent_timeout"] and ours["memory_mb"]


@pytest.mark.parametrize("text", TRICKY_TOMLS)
def test_tricky_task_tomls_read_the_same_with_harbors_models(text: str):
    ours, theirs = _ours_vs_harbor(text)
    assert ours == theirs


def test_example_tasks_are_discovered_with_their_settings():
    bench = get_benchmark(f"harbor:{EXAMPLES}")
    tasks = {t.id: t for t in bench.tasks()}
    assert sorted(tasks) == ["fix-word-count", "sales-summary", "write-settings"]
    settings = tasks["write-settings"]
    assert settings.timeout == 300.0 and settings.sandbox.cpus == 0.5 and settings.sandbox.memory_mb == 512
    assert settings.metadata["verifier_timeout_sec"] == 60.0
    assert settings.metadata["harbor_not_applied"] == []
    assert "settings.ini" in settings.prompt
    # one task directory works as well as a directory of tasks, and harbor:// too
    one = get_benchmark(f"harbor://{EXAMPLES / 'sales-summary'}")
    assert [t.id for t in one.tasks()] == ["sales-summary"]
    plan = bench.reference_solution(tasks["sales-summary"])
    assert plan.steps[0].arguments["path"] == "/solution/solve.sh"
    assert plan.steps[-1].name == "bash" and "bash /solution/solve.sh" in plan.steps[-1].arguments["command"]


def test_bad_task_directories_are_named(tmp_path: Path):
    with pytest.raises(HarborTaskError, match="no such directory"):
        discover(tmp_path / "nope")
    with pytest.raises(HarborTaskError, match="no Harbor task here"):
        discover(tmp_path)
    task = tmp_path / "t1"
    (task / "tests").mkdir(parents=True)
    (task / "instruction.md").write_text("do it")
    (task / "task.toml").write_text("[agent]\ntimeout_sec = 10\n")
    with pytest.raises(HarborTaskError, match="no tests/test.sh"):
        discover(tmp_path)
    (task / "tests" / "test.sh").write_text("exit 0\n")
    assert [t.name for t in discover(tmp_path)] == ["t1"]
    (task / "task.toml").write_text("[agent\n")
    with pytest.raises(HarborTaskError, match="not valid TOML"):
        discover(tmp_path)
    (task / "task.toml").write_text('[[steps]]\nname = "one"\n')
    with pytest.raises(HarborTaskError, match="multi-step"):
        discover(tmp_path)
    (task / "task.toml").write_text('[environment]\nos = "windows"\n')
    with pytest.raises(HarborTaskError, match="linux"):
        discover(tmp_path)
    (task / "task.toml").write_text('[environment]\nmemory = "lots"\n')
    with pytest.raises(HarborTaskError, match="2G"):
        discover(tmp_path)
    (task / "task.toml").write_text('[verifier]\ntimeout_sec = -1\n')
    with pytest.raises(HarborTaskError, match="verifier.timeout_sec"):
        discover(tmp_path)


def test_environment_variables_are_filled_from_the_host(tmp_path: Path, monkeypatch):
    task = tmp_path / "t"
    (task / "tests").mkdir(parents=True)
    (task / "tests" / "test.sh").write_text("exit 0\n")
    (task / "instruction.md").write_text("x")
    (task / "task.toml").write_text('[environment.env]\nTOKEN = "${I20_TOKEN}"\nMODE = "${I20_MODE:-fast}"\n')
    monkeypatch.setenv("I20_TOKEN", "abc")
    [t] = HarborBenchmark(str(task)).tasks()
    assert t.sandbox.env == {"TOKEN": "abc", "MODE": "fast"}
    monkeypatch.delenv("I20_TOKEN")
    with pytest.raises(HarborTaskError, match="I20_TOKEN is not set"):
        HarborBenchmark(str(task)).tasks()


@pytest.mark.parametrize("name,data,expected", [
    ("reward.txt", b"1\n", {"reward": 1.0}),
    ("reward.txt", b" 0.25 ", {"reward": 0.25}),
    ("reward.json", b'{"reward": 1, "style": 0.5}', {"reward": 1.0, "style": 0.5}),
])
def test_reward_files_are_read(name, data, expected):
    assert _parse_rewards(name, data, f"/logs/verifier/{name}") == expected


@pytest.mark.parametrize("name,data,why", [
    ("reward.txt", b"", "empty"),
    ("reward.txt", b"passed", "not a number"),
    ("reward.json", b"{", "not valid JSON"),
    ("reward.json", b"[1]", "JSON object"),
    ("reward.json", b"{}", "JSON object"),
    ("reward.json", b'{"reward": "1"}', "finite number"),
    ("reward.json", b'{"reward": true}', "finite number"),
    ("reward.json", b'{"reward": NaN}', "not valid JSON|finite number"),
])
def test_garbled_reward_files_are_verify_errors(name, data, why):
    with pytest.raises(VerifyError, match=why):
        _parse_rewards(name, data, f"/logs/verifier/{name}")


def test_the_main_reward_of_several():
    bench = HarborBenchmark(str(EXAMPLES))
    assert bench._main_key({"reward": 0.0, "a": 1.0}, "reward.json") == "reward"
    assert bench._main_key({"score": 0.5}, "reward.json") == "score"
    with pytest.raises(VerifyError, match="reward_key"):
        bench._main_key({"a": 1.0, "b": 0.0}, "reward.json")
    assert HarborBenchmark(str(EXAMPLES), reward_key="b")._main_key({"a": 1.0, "b": 0.0}, "reward.json") == "b"
    with pytest.raises(VerifyError, match="no key 'c'"):
        HarborBenchmark(str(EXAMPLES), reward_key="c")._main_key({"a": 1.0}, "reward.json")


def test_image_tags_follow_the_content(tmp_path: Path):
    env = tmp_path / "environment"
    env.mkdir()
    (env / "Dockerfile").write_text("FROM --platform=linux/amd64 react-eval-sandbox:latest AS base\nFROM base\n")
    assert base_images(env / "Dockerfile") == ["react-eval-sandbox:latest", "base"]
    first = content_hash(env, {"react-eval-sandbox:latest": "sha256:1"})
    assert first == content_hash(env, {"react-eval-sandbox:latest": "sha256:1"})
    assert first != content_hash(env, {"react-eval-sandbox:latest": "sha256:2"})  # a rebuilt base image
    (env / "data.txt").write_text("x")
    assert first != content_hash(env, {"react-eval-sandbox:latest": "sha256:1"})
    assert image_tag("My Task!", first) == f"react-eval-harbor/my-task:{first}"


def test_a_non_docker_sandbox_is_refused_clearly(tmp_path: Path):
    proc = subprocess.run([sys.executable, "-m", "react_eval.cli", "run", "--bench", f"harbor:{EXAMPLES}",
                           "--model", "oracle", "-o", str(tmp_path), "--no-progress"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    said = " ".join(proc.stderr.split())
    assert "--sandbox docker" in said and "environment image" in said and "3 selected task(s) have an image" in said
    assert not list(tmp_path.rglob("results.jsonl"))


def test_harbor_paths_are_mapped_only_where_they_are_paths(tmp_path: Path):
    from react_eval.benchmarks.harbor import _map_paths_command

    lines = {
        "bash /tests/test.sh": "bash R/tests/test.sh",
        "cd /tests && ls": "cd R/tests && ls",
        "echo 1 > '/logs/verifier/reward.txt'": "echo 1 > 'R/logs/verifier/reward.txt'",
        'open("/logs/verifier/reward.json", "w")': 'open("R/logs/verifier/reward.json", "w")',
        "A=/solution/x B=/tests": "A=R/solution/x B=R/tests",
        "/tests/a /tests/b": "R/tests/a R/tests/b",
        "/my/tests/x ~/tests $HOME/logs /testsuite /logsX data/tests": "/my/tests/x ~/tests $HOME/logs /testsuite /logsX data/tests",
    }
    target = tmp_path / "d"
    target.mkdir()
    (target / "f.sh").write_text("\n".join(lines) + "\n")
    subprocess.run(["bash", "-c", _map_paths_command(str(target), "R")], check=True)
    assert (target / "f.sh").read_text() == "\n".join(lines.values()) + "\n"


def test_a_task_without_an_image_validates_in_a_local_sandbox(tmp_path: Path):
    """No Dockerfile, no docker_image: the run's own sandbox will do, with Harbor's
    absolute paths mapped under the workdir (nothing is written to the host's /tests or /logs)."""
    task = tmp_path / "tasks" / "hello"
    (task / "tests").mkdir(parents=True)
    (task / "solution").mkdir()
    (task / "instruction.md").write_text("Write the word hello to out.txt in the working directory.\n")
    (task / "task.toml").write_text("[verifier]\ntimeout_sec = 60\n")
    (task / "tests" / "test.sh").write_text(
        "#!/bin/bash\nmkdir -p /logs/verifier\n"
        'if [ "$(cat out.txt 2>/dev/null)" = hello ] && [ -f /tests/test.sh ]; then echo 1; else echo 0; fi'
        " > /logs/verifier/reward.txt\n")
    (task / "solution" / "solve.sh").write_text("#!/bin/bash\ncp /solution/answer.txt out.txt\n")
    (task / "solution" / "answer.txt").write_text("hello\n")
    host_before = {p for p in ("/tests", "/logs/verifier", "/solution") if Path(p).exists()}
    proc = subprocess.run([sys.executable, "-m", "react_eval.cli", "validate", "--bench", f"harbor:{task.parent}",
                           "--sandbox", "local", "-o", str(tmp_path / "out"), "--no-progress"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "validation passed" in proc.stdout
    [gold] = (tmp_path / "out").glob("validate-*/*/oracle/results.jsonl")
    row = json.loads(gold.read_text())
    assert row["reward"] == 1.0 and row["verification"]["paths_mapped_to"].endswith("/.harbor")
    assert {p for p in ("/tests", "/logs/verifier", "/solution") if Path(p).exists()} == host_before


def test_settings_that_are_not_applied_are_named():
    from react_eval.benchmarks.harbor_task import not_applied

    config = parse_config('[environment]\nstorage_mb = 100\ngpus = 1\n[agent]\nuser = "agent"\n'
                          '[environment.healthcheck]\ncommand = "true"\n', "task.toml")
    assert not_applied(config) == ["environment.storage_mb", "environment.gpus", "environment.healthcheck",
                                   "agent.user"]
    assert not_applied(parse_config("[environment]\ncpus = 1\n", "task.toml")) == []


def test_an_unreachable_docker_engine_is_named(tmp_path: Path):
    proc = subprocess.run([sys.executable, "-m", "react_eval.cli", "run", "--bench", f"harbor:{EXAMPLES}",
                           "--model", "oracle", "--sandbox", "docker", "-O", "sandboxes.default.docker_host="
                           f"unix://{tmp_path}/no.sock", "-o", str(tmp_path / "out"), "--no-progress"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    said = " ".join(proc.stderr.split())
    assert "is unreachable" in said and f"unix://{tmp_path}/no.sock" in said
