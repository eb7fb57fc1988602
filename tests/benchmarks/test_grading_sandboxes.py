"""Checks run where the run's sandbox provider says: Docker -> a container,
bwrap -> a jail, local -> the host; proven from the outside (the checker's
process as the host sees it) and from the inside (what the solution sees)."""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path

import anyio
import pytest

from react_eval.benchmarks.base import Answer, RolloutEnv
from react_eval.benchmarks.evalplus_bench import HumanEvalPlus
from react_eval.benchmarks.humaneval import HumanEvalBenchmark
from react_eval.grading.envs import EnvSpec
from react_eval.grading.sandbox import grading_sandbox
from react_eval.sandboxes.local import LocalSandboxConfig, LocalSandboxProvider
from react_eval.tools.base import CompositeBackend
from react_eval.types import VerifyError

pytestmark = pytest.mark.anyio

HE_PLUS = Path(__file__).parent / "fixtures" / "humanevalplus_mini.jsonl"


def env_with(provider) -> RolloutEnv:
    return RolloutEnv(sandbox=None, tools=CompositeBackend({}), provider=provider)


def docker_provider(run_id: str):
    from react_eval.sandboxes.docker import DockerSandboxProvider
    from react_eval.sandboxes.docker.config import DockerSandboxConfig

    return DockerSandboxProvider(DockerSandboxConfig(memory="1g"), run_id=run_id)


def host_processes_with(needle: str) -> dict[int, str]:
    """Host pids whose command line holds ``needle`` -> their cgroup file."""
    found = {}
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{name}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            if needle in cmdline:
                found[int(name)] = Path(f"/proc/{name}/cgroup").read_text()
        except OSError:
            continue
    return found


def in_container_solution(entry: str, body: str, marker: str | None = None) -> str:
    """A solution that is right only inside the sandbox container (its hostname
    is "sandbox"), and holds the check for a while; with ``marker``, it also
    leaves a file of that name in /tmp (evalplus' guard forbids open())."""
    touch = f"    open('/tmp/{marker}', 'w').write('x')\n    time.sleep(2)\n" if marker else ""
    return (
        "```python\nimport os, time\n"
        f"def {entry}(*args):\n{touch}"
        "    if os.uname().nodename != 'sandbox':\n"
        "        return None\n"
        f"{body}\n```\n"
    )


async def verify_watching(bench, task, answer: Answer, provider) -> tuple:
    """Grade ``answer`` while watching the host for the checker's processes:
    (the verification, {pid: cgroup} of every checker process seen)."""
    seen: dict[int, str] = {}
    stop = anyio.Event()

    async def watch() -> None:
        while not stop.is_set():
            seen.update(host_processes_with("react_eval_worker.py"))
            await anyio.sleep(0.05)

    async with anyio.create_task_group() as tg:
        tg.start_soon(watch)
        try:
            v = await bench.verify(task, answer, env_with(provider))
        finally:
            stop.set()
    return v, seen


@pytest.mark.docker
async def test_humaneval_checks_under_docker_run_in_a_container(docker_engine, sandbox_run_id):
    bench = HumanEvalBenchmark(timeout=20, max_parallel_checks=1)
    task = next(t for t in bench.tasks() if t.id == "HumanEval/0")
    marker = f"react-eval-check-{uuid.uuid4().hex}"
    body = ("    numbers, threshold = args\n"
            "    return any(abs(a - b) < threshold for i, a in enumerate(numbers) for b in numbers[i + 1:])")
    answer = Answer(final_message=in_container_solution("has_close_elements", body, marker))
    provider = docker_provider(f"{sandbox_run_id}-he")
    try:
        v, seen = await verify_watching(bench, task, answer, provider)
    finally:
        await provider.aclose()
    assert v.reward == 1.0, v.details  # right only where the hostname is the container's
    assert v.details["check_sandbox"] == "docker"
    assert not Path(f"/tmp/{marker}").exists()  # the host's /tmp was never touched
    assert seen, "the checker process was never seen"
    assert all("docker" in cgroup for cgroup in seen.values()), seen  # every checker process was in a container

    # the same solution graded with no sandbox configured runs on the host: found outside any container
    v, seen = await verify_watching(bench, task, answer, None)
    assert v.reward == 0.0 and v.details["check_sandbox"] == "local:none"
    assert Path(f"/tmp/{marker}").exists()
    os.unlink(f"/tmp/{marker}")
    assert seen and not any("docker" in cgroup for cgroup in seen.values())


@pytest.mark.docker
async def test_evalplus_checks_under_docker_run_in_a_container(docker_engine, sandbox_run_id, monkeypatch):
    monkeypatch.setenv("HUMANEVAL_OVERRIDE_PATH", str(HE_PLUS))
    bench = HumanEvalPlus(max_parallel_checks=1, min_time_limit=10.0)
    task = next(t for t in bench.tasks() if t.id == "FixturePlus/1")  # mean
    body = "    (numbers,) = args\n    return sum(numbers) / len(numbers)"
    answer = Answer(final_message=in_container_solution("mean", body))
    provider = docker_provider(f"{sandbox_run_id}-ep")
    try:
        v, seen = await verify_watching(bench, task, answer, provider)
    finally:
        await provider.aclose()
    assert v.details["check_sandbox"] == "docker"
    assert v.reward == 1.0, v.details  # right only where the hostname is the container's
    assert seen and all("docker" in cgroup for cgroup in seen.values()), seen
    v = await bench.verify(task, answer, env_with(None))  # no sandbox configured: on the host, wrong
    assert v.reward == 0.0 and v.details["check_sandbox"] == "local:none"


async def test_a_missing_runner_is_a_verify_error_with_its_reason(tmp_path, monkeypatch):
    """An environment whose declared module does not exist cannot be built: the
    check ends in VerifyError naming the module, never in a score."""
    monkeypatch.setenv("REACT_EVAL_ENV_CACHE", str(tmp_path / "envs"))
    provider = LocalSandboxProvider(LocalSandboxConfig(root=str(tmp_path / "sb")))
    needs = EnvSpec(name="broken", imports=("no_such_test_runner_xyz",))
    with pytest.raises(VerifyError, match="no_such_test_runner_xyz"):
        async with grading_sandbox(provider, None, needs, labels={}, probe=True):
            pass
    assert not any((tmp_path / "envs").glob("broken-*/bin"))  # no half-built environment left in the cache
    await provider.aclose()


async def test_environments_are_built_once_and_shared_by_parallel_checks(tmp_path, monkeypatch):
    from react_eval.grading import envs

    monkeypatch.setenv("REACT_EVAL_ENV_CACHE", str(tmp_path / "envs"))
    spec = EnvSpec(name="bare", imports=("json",))
    results = []

    async def one() -> None:
        results.append(await anyio.to_thread.run_sync(envs.provision, spec))

    async with anyio.create_task_group() as tg:
        for _ in range(4):
            tg.start_soon(one)
    assert len({str(e.path) for e in results}) == 1
    built = results[0].path
    assert (built / envs.READY).exists() and built.parent == tmp_path / "envs"
    assert [p.name for p in (tmp_path / "envs").iterdir() if not p.name.startswith(".")] == [built.name]
    assert os.path.realpath(results[0].python) != os.path.realpath(sys.executable)


async def test_the_job_file_is_gone_before_the_candidate_runs(tmp_path):
    """Expected outputs travel in the job file: the worker deletes it before any
    candidate code runs, so a candidate cannot read the answer key from it."""
    from react_eval.benchmarks.code_exec import parse_json_result, run_check
    from react_eval.benchmarks.humaneval import PYTHON_ENV

    program = ("import os\n"
               "assert os.path.exists('../react_eval_worker.py'), os.listdir('..')\n"  # the right directory
               "assert not os.path.exists('../job.pkl') and not os.path.exists('job.pkl'), os.listdir('..')\n")
    provider = LocalSandboxProvider(LocalSandboxConfig(root=str(tmp_path)))
    try:
        outcome = await run_check({"kind": "python_program", "program": program, "timeout": 10}, provider,
                                  PYTHON_ENV, timeout=60)
    finally:
        await provider.aclose()
    assert parse_json_result(outcome)["status"] == "pass", outcome.describe()


async def test_the_rollout_sandbox_holds_no_test_patch_or_gold_patch(tmp_path):
    from react_eval.benchmarks.swe import SweMiniBenchmark

    bench = SweMiniBenchmark()
    task = bench.tasks()[0]
    inst = bench.instance(task.id)
    # the hidden tests the test patch adds (by name), and the gold patch itself
    secrets_ = [line[1:].split("(")[0].strip() for line in inst.test_patch.splitlines() if line.startswith("+def test_")]
    assert secrets_, "the task's test patch adds no test function"
    secrets_.append(inst.patch.strip())
    provider = LocalSandboxProvider(LocalSandboxConfig(root=str(tmp_path)))
    sandbox = await provider.create(task.sandbox, labels={})
    try:
        everything = []
        for root, _dirs, files in os.walk(sandbox.workdir):
            for name in files:
                everything.append(Path(root, name).read_bytes().decode("utf-8", "replace"))
        blob = "\n".join(everything)
        leaked = [s for s in secrets_ if s in blob]
        assert leaked == [], leaked
    finally:
        await sandbox.close()
        await provider.aclose()


NO_PYTEST_IMAGE = "react-eval-sandbox:i15-no-pytest"


@pytest.mark.docker
def test_an_image_without_pytest_makes_every_swe_rollout_a_verify_error(docker_engine, tmp_path):
    """The user's image lacks the test runner: validate reports every task as
    unscored (verify_error naming pytest), never as a 0 or a failed gold."""
    import subprocess

    from react_eval.engine.config import validate_config
    from react_eval.engine.validate import validate_benchmark, validation_config

    build = subprocess.run(
        ["docker", "build", "--network", "none", "-q", "-t", NO_PYTEST_IMAGE, "-"],
        input=(f"FROM {docker_engine}\nRUN rm -rf /usr/lib/python3/dist-packages/pytest* "
               "/usr/lib/python3/dist-packages/_pytest /usr/lib/python3/dist-packages/py.py\n"),
        capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr
    data = validation_config("swe-mini", sandbox={"type": "docker", "image": NO_PYTEST_IMAGE})
    data["benchmarks"][0]["problem_range"] = "0:1"
    report = anyio.run(validate_benchmark, validate_config(data, source="test"), tmp_path)
    (check,) = report.tasks
    assert check.gold is None and check.empty is None and check.tampering is None
    for error in (check.gold_error, check.empty_error, check.tampering_error):
        assert error.startswith("verify_error:") and "import pytest" in error and "No module named" in error, error
    assert report.empty_passes == [] and report.unscored == [check] and not report.ok
