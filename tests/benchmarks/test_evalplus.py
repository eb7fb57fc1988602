"""humaneval+ / mbpp+ through evalplus' real loader, sanitizer and checker.

The data are small evalplus-format files written for these tests
(fixtures/*.jsonl), loaded through ``HUMANEVAL_OVERRIDE_PATH`` /
``MBPP_OVERRIDE_PATH`` and evalplus' own ``get_human_eval_plus`` /
``get_mbpp_plus``; every check runs in a real sandbox subprocess.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from react_eval.benchmarks.base import Answer, RolloutEnv
from react_eval.benchmarks.evalplus_bench import (
    DatasetUnavailable,
    HumanEvalPlus,
    MbppPlus,
    extract_code,
    select_code,
)
from react_eval.benchmarks.registry import get_benchmark
from react_eval.engine.results import load_results
from react_eval.tools.base import CompositeBackend
from tests.support.scripted_server import ScriptedRequest, answer, tool_call

pytestmark = pytest.mark.anyio

FIXTURES = Path(__file__).parent / "fixtures"
HE_PLUS = FIXTURES / "humanevalplus_mini.jsonl"
MBPP_PLUS = FIXTURES / "mbppplus_mini.jsonl"

NAIVE_IS_PRIME = "def is_prime(n):\n    return all(n % k for k in range(2, n))\n"  # wrong for 0 and 1
GOOD_MEAN = "def mean(numbers):\n    total = 0.0\n    for x in numbers:\n        total += x\n    return total / len(numbers)\n"
GOOD_DEDUPE = "def dedupe(items):\n    return list(dict.fromkeys(items))\n"
SORTED_DEDUPE = "def dedupe(items):\n    return sorted(set(items))\n"  # right only for sorted input


def block(code: str, before: str = "Here is my solution:", after: str = "") -> str:
    return f"{before}\n\n```python\n{code}```\n{after}"


def no_env() -> RolloutEnv:
    return RolloutEnv(sandbox=None, tools=CompositeBackend({}))


@pytest.fixture
def he_plus(monkeypatch) -> HumanEvalPlus:
    monkeypatch.setenv("HUMANEVAL_OVERRIDE_PATH", str(HE_PLUS))
    return HumanEvalPlus(max_parallel_checks=2)


@pytest.fixture
def mbpp_plus(monkeypatch) -> MbppPlus:
    monkeypatch.setenv("MBPP_OVERRIDE_PATH", str(MBPP_PLUS))
    return MbppPlus(max_parallel_checks=2)


async def grade(bench, task_id: str, message: str):
    task = next(t for t in bench.tasks() if t.id == task_id)
    return await bench.verify(task, Answer(final_message=message), no_env())


# ---- data -------------------------------------------------------------------------


def test_tasks_come_from_evalplus_loader_via_override(he_plus):
    import evalplus.data.humaneval as he_module

    tasks = he_plus.tasks()
    assert [t.id for t in tasks] == ["FixturePlus/0", "FixturePlus/1", "FixturePlus/2"]
    assert he_module.HUMANEVAL_OVERRIDE_PATH == str(HE_PLUS)  # the loader was pointed at the fixture
    prime = tasks[0]
    assert prime.metadata == {"entry_point": "is_prime", "dataset": "humaneval+"}
    assert "def is_prime(n: int) -> bool:" in prime.prompt and "```python" in prime.prompt
    assert he_plus.problems["FixturePlus/0"]["plus_input"] == [[0], [1], [97], [221], [7919], [104729]]
    assert "```python" in HumanEvalPlus.default_system_prompt and "final message" in HumanEvalPlus.default_system_prompt
    assert not HumanEvalPlus.needs_sandbox and HumanEvalPlus.verification == "final_message"


def test_mbpp_inputs_are_deserialized_by_evalplus(mbpp_plus):
    # evalplus turns the JSON lists of Mbpp/2 into tuples: they must survive to the checker
    assert mbpp_plus.problems["Mbpp/2"]["base_input"][0] == [(3, 4, 5, 6), (5, 7, 4, 10)]
    assert [t.id for t in mbpp_plus.tasks()] == ["Mbpp/2", "Mbpp/901"]


def test_registered_names_resolve(monkeypatch):
    monkeypatch.setenv("MBPP_OVERRIDE_PATH", str(MBPP_PLUS))
    assert isinstance(get_benchmark("humaneval+"), HumanEvalPlus)
    assert get_benchmark("mbpp+").size() == 2


def test_missing_override_file_names_the_variable(monkeypatch, tmp_path):
    missing = tmp_path / "nope.jsonl"
    monkeypatch.setenv("HUMANEVAL_OVERRIDE_PATH", str(missing))
    with pytest.raises(DatasetUnavailable) as info:
        HumanEvalPlus().tasks()
    assert "HUMANEVAL_OVERRIDE_PATH" in str(info.value) and str(missing) in str(info.value)


def test_failed_download_names_the_variable(monkeypatch, tmp_path):
    import evalplus.data.mbpp as mbpp_module
    import evalplus.data.utils as data_utils

    monkeypatch.delenv("MBPP_OVERRIDE_PATH", raising=False)
    monkeypatch.setattr(data_utils, "CACHE_DIR", str(tmp_path))  # nothing cached
    # a release that does not exist: the download fails offline and online alike
    monkeypatch.setattr(mbpp_module, "MBPP_PLUS_VERSION", "v0.0.0-react-eval-missing")
    with pytest.raises(DatasetUnavailable) as info:
        MbppPlus().tasks()
    message = str(info.value)
    assert "MBPP_OVERRIDE_PATH" in message and "could not download" in message
    assert str(tmp_path) in message  # where evalplus' cache file would go


def test_list_shows_unavailable_benchmarks_instead_of_crashing(tmp_path):
    env = {**os.environ, "HUMANEVAL_OVERRIDE_PATH": str(tmp_path / "missing.jsonl"),
           "MBPP_OVERRIDE_PATH": str(MBPP_PLUS), "COLUMNS": "400"}
    proc = subprocess.run([sys.executable, "-m", "react_eval.cli", "list"], capture_output=True, text=True,
                          timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    rows = {line.split("│")[1].strip(): line for line in proc.stdout.splitlines() if line.count("│") > 2}
    assert "HUMANEVAL_OVERRIDE_PATH" in rows["humaneval+"] and "n/a" in rows["humaneval+"]
    assert rows["mbpp+"].split("│")[2].strip() == "2"
    assert rows["humaneval"].split("│")[2].strip() == "164"


# ---- extraction ----------------------------------------------------------------------


async def test_extraction_uses_the_block_defining_the_entry_point():
    message = (
        "First a helper test:\n```python\nprint(is_prime(5))\n```\n"
        "Draft:\n```python\ndef is_prime(n):\n    return False\n```\n"
        "Final:\n```python\nimport math\n\ndef _limit(n):\n    return math.isqrt(n)\n\n"
        "def unused():\n    return 1\n\ndef is_prime(n):\n    if n < 2:\n        return False\n"
        "    return all(n % k for k in range(2, _limit(n) + 1))\n\nprint(is_prime(7))\n```\nDone."
    )
    assert "_limit" in select_code(message, "is_prime")
    code = await extract_code(message, "is_prime")
    # evalplus' sanitizer keeps imports and what the entry point reaches, drops the rest
    assert "import math" in code and "def _limit" in code and "def is_prime" in code
    assert "unused" not in code and "print(" not in code
    assert await extract_code("I could not solve it.", "is_prime") == "I could not solve it."
    assert await extract_code("", "is_prime") == ""


# ---- grading -------------------------------------------------------------------------


async def test_reference_solutions_pass_base_and_plus(he_plus, mbpp_plus):
    for bench in (he_plus, mbpp_plus):
        for task in bench.tasks():
            ref = bench.reference_solution(task).final_message
            assert ref.startswith("```python\n") and ref.endswith("```")
            v = await bench.verify(task, Answer(final_message=ref), no_env())
            assert v.reward == 1.0, (task.id, v.details)
            d = v.details
            assert d["base_status"] == d["plus_status"] == "pass" and d["is_correct"] and d["is_correct_plus"]
            assert d["plus_tests"]["passed"] == d["plus_tests"]["total"] == len(bench.problems[task.id]["plus_input"])


async def test_passes_base_but_fails_plus_gives_zero(he_plus):
    v = await grade(he_plus, "FixturePlus/0", block(NAIVE_IS_PRIME))
    d = v.details
    assert d["extracted_model_code"].strip() == NAIVE_IS_PRIME.strip()
    assert d["base_status"] == "pass" and d["is_correct"] is True
    assert d["plus_status"] == "fail" and d["is_correct_plus"] is False
    assert v.reward == 0.0
    # fast_check (evalplus' default) stops at the first failing plus input: is_prime(0)
    assert d["plus_tests"] == {"passed": 0, "tested": 1, "total": 6}

    v = await grade(he_plus, "FixturePlus/2", block(SORTED_DEDUPE))
    assert (v.details["base_status"], v.details["plus_status"], v.reward) == ("pass", "fail", 0.0)


async def test_float_answers_are_compared_with_atol(he_plus):
    v = await grade(he_plus, "FixturePlus/1", block(GOOD_MEAN))
    assert v.reward == 1.0, v.details
    off = "def mean(numbers):\n    return sum(numbers) / len(numbers) + 1e-3\n"
    v = await grade(he_plus, "FixturePlus/1", block(off))
    assert v.details["base_status"] == "fail" and v.reward == 0.0


async def test_wrong_and_empty_answers_score_zero(he_plus):
    v = await grade(he_plus, "FixturePlus/0", block("def is_prime(n):\n    return True\n"))
    assert (v.details["base_status"], v.reward) == ("fail", 0.0)
    v = await grade(he_plus, "FixturePlus/0", "")
    assert v.reward == 0.0 and v.details["extracted_model_code"] == "" and v.details["base_status"] == "fail"
    v = await grade(he_plus, "FixturePlus/0", block("def something_else(n):\n    return n\n"))
    assert v.reward == 0.0 and v.details["base_status"] == "fail"


async def test_mbpp_tuple_inputs_reach_the_solution(mbpp_plus):
    needs_tuples = ("def similar_elements(a, b):\n    assert isinstance(a, tuple) and isinstance(b, tuple)\n"
                    "    return [x for x in a if x in b]\n")
    v = await grade(mbpp_plus, "Mbpp/2", block(needs_tuples))
    # the set-equality oracle of Mbpp/2 accepts a list in another order than the reference tuple
    assert v.reward == 1.0, v.details
    v = await grade(mbpp_plus, "Mbpp/901", block("def sum_squares(nums):\n    return sum(nums) ** 2\n"))
    assert v.reward == 0.0


async def test_expected_outputs_are_computed_once_per_task(he_plus):
    task = he_plus.tasks()[1]
    await he_plus.verify(task, Answer(final_message=block(GOOD_MEAN)), no_env())
    first = he_plus._groundtruth[task.id]
    assert first["base"] == [2.0, 4.0, 3.0] and len(first["plus_time"]) == 3
    await he_plus.verify(task, Answer(final_message=block(GOOD_MEAN)), no_env())
    assert he_plus._groundtruth[task.id] is first


# ---- hostile solutions ----------------------------------------------------------------


async def test_hostile_solutions_are_contained(he_plus):
    spin = ("import signal\ndef mean(numbers):\n    signal.signal(signal.SIGALRM, signal.SIG_IGN)\n"
            "    while True:\n        pass\n    return 0.0\n")
    crash = "import os\ndef mean(numbers):\n    os._exit(0)\n    return 0.0\n"
    flood = ("import os, sys\ndef mean(numbers):\n    while True:\n        os.write(1, b'x' * 65536)\n"
             "        os.write(2, b'y' * 65536)\n        print('z' * 4096)\n    return 0.0\n")
    for code, statuses in ((spin, {"timeout"}), (crash, {"timeout", "fail"}), (flood, {"fail", "timeout"})):
        start = time.monotonic()
        v = await grade(he_plus, "FixturePlus/1", block(code))
        elapsed = time.monotonic() - start
        assert v.reward == 0.0, v.details
        assert v.details["base_status"] in statuses and v.details["plus_status"] in statuses, v.details
        # evalplus' own limits: 3 inputs -> min(60, 3 x 1 s) + margins per split
        assert elapsed < 30, (code, elapsed)


# ---- end to end ------------------------------------------------------------------------


def plus_policy(req: ScriptedRequest):
    """Tries its is_prime in the sandbox first (agentic mode), then answers."""
    prompt, turn = req.first_user_text, req.turn
    if "def is_prime" in prompt:
        if turn == 0:
            return tool_call("file_write", {"path": "sol.py", "content": NAIVE_IS_PRIME})
        if turn == 1:
            return tool_call("bash", {"command": "python3 -c 'from sol import is_prime; print(is_prime(7), is_prime(8))'"})
        out = req.tool_results[-1]["content"]
        assert "True False" in out, out
        return answer(block(NAIVE_IS_PRIME, before=f"My tests print {out.strip()}; here it is:"))
    if "def mean" in prompt:
        return answer(block(GOOD_MEAN))
    if "def dedupe" in prompt:
        return answer(block(GOOD_DEDUPE, after="It keeps the first occurrence of each item."))
    raise AssertionError(f"unexpected prompt {prompt[:80]}")


def test_scripted_run_through_the_cli(scripted_server, tmp_path: Path):
    srv = scripted_server(plus_policy)
    env = {**os.environ, "HUMANEVAL_OVERRIDE_PATH": str(HE_PLUS)}
    proc = subprocess.run(
        [sys.executable, "-m", "react_eval.cli", "run", "--bench", "humaneval+", "--model-url", srv.base_url,
         "--model", "scripted", "-o", str(tmp_path), "--no-progress", "--max-concurrent", "3",
         "--sandbox", "local"],  # the agent's bash: asked for (no benchmark gets a host shell by default)
        capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    results = {r.task_id: r for r in load_results(tmp_path / "humaneval_" / "results.jsonl")}
    assert {k: r.reward for k, r in results.items()} == {"FixturePlus/0": 0.0, "FixturePlus/1": 1.0, "FixturePlus/2": 1.0}
    prime = results["FixturePlus/0"]
    assert prime.tool_calls == 2 and prime.tool_errors == 0
    assert prime.verification["base_status"] == "pass" and prime.verification["plus_status"] == "fail"
    assert prime.verification["is_correct"] is True and prime.verification["is_correct_plus"] is False
    assert "def is_prime" in prime.verification["extracted_model_code"]
    assert results["FixturePlus/2"].verification["is_correct_plus"] is True
    first = srv.requests[0]
    assert "```python" in first.messages[0]["content"] and "bash" in first.tool_names
    bundle = json.loads((tmp_path / "humaneval_" / "eval.json").read_text())
    assert bundle["metrics"]["mean_reward"] == pytest.approx(2 / 3)
