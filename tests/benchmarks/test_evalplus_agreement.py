"""Agreement with EvalPlus itself: the same samples through ``evalplus.evaluate``
(its own process pool, ground truth and checker) and through react-eval's
humaneval+ grader must get identical base and plus verdicts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from react_eval.benchmarks.base import Answer, RolloutEnv
from react_eval.benchmarks.evalplus_bench import HumanEvalPlus
from react_eval.tools.base import CompositeBackend

pytest.importorskip("evalplus", reason="evalplus is an extra: pip install 'react-eval[evalplus]'")

HE_PLUS = Path(__file__).parent / "fixtures" / "humanevalplus_mini.jsonl"

KINDS = {
    "wrong": "def {entry}(*args):\n    return None\n",
    "hanging": "def {entry}(*args):\n    while True:\n        pass\n",
    "raising": "def {entry}(*args):\n    raise ValueError('no')\n",
    "syntax error": "def {entry}(*args)\n    return (\n",
}
#: right on the base inputs only (EvalPlus' plus inputs catch them)
BASE_ONLY = {
    "is_prime": "def is_prime(n):\n    return all(n % k for k in range(2, n))\n",
    "dedupe": "def dedupe(items):\n    return sorted(set(items))\n",
}


def samples() -> list[dict]:
    out = []
    for line in HE_PLUS.read_text().splitlines():
        problem = json.loads(line)
        entry = problem["entry_point"]
        out.append({"task_id": problem["task_id"], "kind": "canonical",
                    "solution": problem["prompt"] + problem["canonical_solution"]})
        for kind, template in KINDS.items():
            out.append({"task_id": problem["task_id"], "kind": kind, "solution": template.format(entry=entry)})
        if entry in BASE_ONLY:
            out.append({"task_id": problem["task_id"], "kind": "passes base only", "solution": BASE_ONLY[entry]})
    return out


def evalplus_verdicts(tmp_path: Path, rows: list[dict]) -> list[tuple[str, str]]:
    """Base/plus status per sample, from evalplus' own evaluate in a subprocess."""
    path = tmp_path / "samples.jsonl"
    path.write_text("".join(json.dumps({"task_id": r["task_id"], "solution": r["solution"]}) + "\n" for r in rows))
    env = {**os.environ, "HUMANEVAL_OVERRIDE_PATH": str(HE_PLUS), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    code = ("from evalplus.evaluate import evaluate\n"
            f"evaluate('humaneval', samples={str(path)!r}, parallel=2, i_just_wanna_run=True)\n")
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    results = json.loads((tmp_path / "samples_eval_results.json").read_text())["eval"]
    verdicts = []
    index: dict[str, int] = {}
    for r in rows:  # evalplus keeps each task's samples in input order
        i = index.get(r["task_id"], 0)
        index[r["task_id"]] = i + 1
        entry = results[r["task_id"]][i]
        assert entry["solution"] == r["solution"]
        verdicts.append((entry["base_status"], entry["plus_status"]))
    return verdicts


def react_eval_verdicts(rows: list[dict]) -> list[tuple[str, str]]:
    os.environ["HUMANEVAL_OVERRIDE_PATH"] = str(HE_PLUS)
    bench = HumanEvalPlus(max_parallel_checks=2)
    tasks = {t.id: t for t in bench.tasks()}
    env = RolloutEnv(sandbox=None, tools=CompositeBackend({}))
    out: list[tuple[str, str] | None] = [None] * len(rows)

    async def one(i: int, row: dict) -> None:
        v = await bench.verify(tasks[row["task_id"]], Answer(final_message=f"```python\n{row['solution']}```"), env)
        out[i] = (v.details["base_status"], v.details["plus_status"])

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            for i, row in enumerate(rows):
                tg.start_soon(one, i, row)

    anyio.run(main)
    return out  # type: ignore[return-value]


def test_identical_verdicts_to_evalplus_evaluate(tmp_path, monkeypatch):
    monkeypatch.setenv("HUMANEVAL_OVERRIDE_PATH", str(HE_PLUS))
    rows = samples()
    theirs = evalplus_verdicts(tmp_path, rows)
    ours = react_eval_verdicts(rows)
    table = [(r["task_id"], r["kind"], t, o) for r, t, o in zip(rows, theirs, ours)]
    assert [t for t in theirs] == [o for o in ours], "\n".join(map(str, table))
    # the samples cover what they claim: canonical passes, base-only fails plus, the rest fail base
    by_kind = {(r["kind"], r["task_id"]): v for r, v in zip(rows, ours)}
    assert all(v == ("pass", "pass") for (k, _), v in by_kind.items() if k == "canonical")
    assert all(v[0] == "pass" and v[1] == "fail" for (k, _), v in by_kind.items() if k == "passes base only")
    assert all(v[0] in ("fail", "timeout") for (k, _), v in by_kind.items() if k in KINDS)
