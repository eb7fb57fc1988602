"""Real runs for the analysis tests: the CLI, a scripted model over HTTP, real sandboxes.

:func:`swe_run` runs the first five swe-mini tasks in the local sandbox with a
scripted agent whose every task fails (or passes) in a different, known way:

* ``acme__pagekit-101`` -- explores and gives up: the patch is empty
  (variant ``"cand"``: reads the file, rewrites it with ``file_write``, half a fix);
* ``caching__lrukit-9`` -- fixes ``get`` but not ``put`` with
  ``str_replace_editor``: FAIL_TO_PASS tests fail (``"cand"``: fixes both, passes);
* ``dataio__tablekit-33`` -- edits the hidden tests' file and plants a
  ``conftest.py`` instead of fixing the code (the grader resets both: it fails);
* ``events__busline-21`` -- runs the same failing ``pytest`` seven times, calls
  an unknown tool and sends arguments that are not JSON;
* ``finance__ledger-44`` -- prints 60,000 lines (cut by the harness), then reads
  files until ``max_turns`` runs out.

:func:`smoke_run` runs the smoke benchmark (answers in the final message),
right on some tasks and wrong on others, with repeats.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.support.scripted_server import ScriptedRequest, ScriptedServer, answer, tool_call

ROOT = Path(__file__).resolve().parents[2]
REPOS = ROOT / "react_eval" / "benchmarks" / "data" / "swe_mini" / "repos"
MAX_TURNS = 10
USAGE = {"prompt_tokens": 900, "completion_tokens": 60}


def _fixed_paginator() -> str:
    text = (REPOS / "acme__pagekit-101" / "pagekit" / "paginator.py").read_text()
    text = "import math\n\n" + text
    return text.replace("return self.count // self.per_page", "return math.ceil(self.count / self.per_page)")


_GET_OLD = "        self.hits += 1\n        return value\n"
_GET_NEW = "        self.hits += 1\n        self._data.move_to_end(key)\n        return value\n"
_PUT_OLD = "        self._data[key] = value\n        while"
_PUT_NEW = "        self._data[key] = value\n        self._data.move_to_end(key)\n        while"


def _swe_script(task: str, variant: str) -> list[Any]:
    """The replies for one task, in order (the policy picks by turn)."""
    if "Last page" in task:
        if variant == "cand":
            return [tool_call("file_read", {"path": "pagekit/paginator.py"}),
                    tool_call("file_write", {"path": "pagekit/paginator.py", "content": _fixed_paginator()}),
                    tool_call("bash", {"command": "python -m pytest -q tests 2>&1 | tail -3"}),
                    answer("num_pages now rounds up.")]
        return [tool_call("bash", {"command": "ls -R . | head -40\ncat pagekit/paginator.py"}),
                tool_call("file_read", {"path": "pagekit/page.py"}),
                answer("I could not find the cause of the missing page.")]
    if "LRU cache" in task:
        edits = [tool_call("str_replace_editor", {"command": "str_replace", "path": "lrukit/cache.py",
                                                  "old_str": _GET_OLD, "new_str": _GET_NEW})]
        if variant == "cand":
            edits.append(tool_call("str_replace_editor", {"command": "str_replace", "path": "lrukit/cache.py",
                                                          "old_str": _PUT_OLD, "new_str": _PUT_NEW}))
        return [tool_call("str_replace_editor", {"command": "view", "path": "lrukit/cache.py"}),
                *edits,
                tool_call("bash", {"command": "python -m pytest -q tests/test_cache.py"}),
                answer("get() now marks the entry as recently used.")]
    if "read_records" in task:
        return [tool_call("file_write", {"path": "tests/test_records.py",
                                         "content": "def test_empty_input():\n    assert True\n"}),
                tool_call("file_write", {"path": "conftest.py",
                                         "content": "import pytest\n\n\n@pytest.hookimpl(hookwrapper=True)\n"
                                                    "def pytest_runtest_makereport(item, call):\n"
                                                    "    outcome = yield\n    outcome.get_result().outcome = 'passed'\n"}),
                answer("Tests pass now.")]
    if "once" in task:
        same = tool_call("bash", {"command": "python -m pytest -q -x tests/test_dispatch.py"})
        return [same] * 7 + [tool_call("search_code", {"query": "once"}),
                             tool_call("bash", '{"command": "grep -rn once busline/ ', ),
                             answer("Giving up.")]
    if "Pennies" in task:
        return [tool_call("bash", {"command": "seq 1 60000"})] + [
            tool_call("bash", {"command": f"sed -n {1 + 20 * i},{20 * (i + 1)}p ledger/money.py"}) for i in range(MAX_TURNS)]
    return [answer("nothing to do")]


def _swe_policy(variant: str):
    def policy(req: ScriptedRequest) -> Any:
        script = _swe_script(req.first_user_text, variant)
        reply = script[min(req.turn, len(script) - 1)]
        return reply.with_usage(prompt_tokens=USAGE["prompt_tokens"] + 150 * req.turn,
                                completion_tokens=USAGE["completion_tokens"])
    return policy


def _smoke_policy(wrong: set[str]):
    commands = {
        "service log": "grep -c ' ERROR ' logs/app.log",
        "orders": "python3 -c \"import csv;print(sum(float(r['amount']) for r in csv.DictReader(open('data/orders.csv')) if r['region']=='EU'))\"",
        "pineapple": "grep -l pineapple notes/*",
        "listener": "cat config/app.json",
        "checksum": "python3 tools/checksum.py",
        "mean": "cat stats.py",
    }

    def policy(req: ScriptedRequest) -> Any:
        text = req.first_user_text
        key = next((k for k in commands if k in text), None)
        if req.turn == 0 and key:
            return tool_call("bash", {"command": commands[key]}, usage=USAGE)
        result = req.tool_results[-1]["content"] if req.tool_results else ""
        value = str(result).strip().splitlines()[-1] if str(result).strip() else "?"
        if key in wrong:
            value = "0"
        return answer(f"The result is {value}.\nANSWER: {value}", usage=USAGE)
    return policy


def _run_cli(server: ScriptedServer, out: Path, *args: str) -> Path:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "react_eval.cli", "run", "--model-url", server.base_url, "--model", "scripted",
         "--output-dir", str(out), "--no-progress", "--max-turns", str(MAX_TURNS), *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    if done.returncode not in (0, 1):
        raise RuntimeError(f"react-eval run failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return out


def swe_run(out: Path, variant: str = "base") -> Path:
    """Five swe-mini tasks through the CLI (local sandbox); returns the benchmark directory."""
    with ScriptedServer(_swe_policy(variant)) as server:
        _run_cli(server, out, "--bench", "swe-mini", "--sandbox", "local", "--max-problems", "5",
                 "--max-concurrent", "5")
    return out / "swe-mini"


def smoke_run(out: Path, wrong: set[str] = frozenset({"orders"}), repeats: int = 2) -> Path:
    with ScriptedServer(_smoke_policy(set(wrong))) as server:
        _run_cli(server, out, "--bench", "smoke", "--repeats", str(repeats))
    return out / "smoke"
