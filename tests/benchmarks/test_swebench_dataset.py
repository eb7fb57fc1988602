"""The ``swebench`` benchmark: SWE-bench JSONL loading, image naming, predictions,
and grading through the swebench package (when it is installed).

Real SWE-bench images cannot be pulled here, so loading and naming are tested
on a small fixture, and grading on a swe-mini task dressed as a SWE-bench row
(its own eval script in SWE-bench's shape) in a local sandbox.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from react_eval.benchmarks.base import PreflightError
from react_eval.benchmarks.patches import reset_command, setup_command
from react_eval.benchmarks.swe import SweInstance, SweMiniBenchmark, load_instances
from react_eval.benchmarks.swebench_dataset import (
    MISSING_SWEBENCH,
    SWEbenchBenchmark,
    image_name,
    instance_image_key,
)
from react_eval.engine.predictions import export_predictions, predictions_from_results
from react_eval.sandboxes.local import LocalSandboxConfig, LocalSandboxProvider

FIXTURE = Path(__file__).parent / "fixtures" / "swebench_sample.jsonl"
HAVE_SWEBENCH = importlib.util.find_spec("swebench") is not None


def test_loads_official_fields_with_json_encoded_or_plain_lists():
    first, second = load_instances(FIXTURE.read_bytes(), source=str(FIXTURE))
    assert first.FAIL_TO_PASS == ["tests/test_size.py::test_clamp_upper"]  # was a JSON-encoded string
    assert first.PASS_TO_PASS == ["tests/test_size.py::test_clamp_lower", "tests/test_size.py::test_clamp_inside"]
    assert second.FAIL_TO_PASS == ["tests/test_io.py::test_read_utf8"] and second.PASS_TO_PASS == []  # plain lists
    assert first.base_commit.startswith("3f9c2b7e") and first.environment_setup_commit == first.base_commit
    assert second.model_extra == {"image": "registry.example.test/custom/gadget-77:v2"}
    # a JSON array works as well, and rows go back out JSON-encoded like SWE-bench's files
    again = load_instances(json.dumps([first.row(), second.row(encode_lists=False)]).encode())
    assert [i.instance_id for i in again] == ["Acme__Widgets-4242", "tools__gadget-77"]
    assert first.row()["FAIL_TO_PASS"] == '["tests/test_size.py::test_clamp_upper"]'


def test_bad_rows_name_the_row():
    with pytest.raises(ValueError, match="row 1"):
        load_instances(b'{"instance_id": "x__y-1"}\n')
    with pytest.raises(ValueError, match=":2: not a JSON object"):
        load_instances(b'{"instance_id": "a"}\nnot json\n', source="f.jsonl")


def test_image_names_follow_swebench_convention():
    first, second = load_instances(FIXTURE.read_bytes())
    assert instance_image_key("Acme__Widgets-4242") == "acme_1776_widgets-4242"
    assert image_name(first, None, "x86_64") == "swebench/sweb.eval.x86_64.acme_1776_widgets-4242:latest"
    assert image_name(first, None, "arm64") == "swebench/sweb.eval.arm64.acme_1776_widgets-4242:latest"
    # a row that names its image keeps it, unless a template is given
    assert image_name(second, None, "x86_64") == "registry.example.test/custom/gadget-77:v2"
    template = "mirror.local/{repo}/{instance_id}:{version}"
    assert image_name(second, template, "x86_64") == "mirror.local/tools__gadget/tools__gadget-77:0.9"


def test_tasks_run_in_the_instance_image_with_testbed_repo():
    bench = SWEbenchBenchmark(str(FIXTURE), grading="junit", arch="x86_64")
    tasks = bench.tasks()
    assert [t.id for t in tasks] == ["Acme__Widgets-4242", "tools__gadget-77"]
    task = tasks[0]
    assert task.sandbox.image == "swebench/sweb.eval.x86_64.acme_1776_widgets-4242:latest"
    assert task.sandbox.setup == setup_command("/testbed", init=False) and "tag -f react-eval-base" in task.sandbox.setup
    assert "clamp() ignores the upper bound" in task.prompt and "/testbed" in task.prompt
    assert task.metadata["FAIL_TO_PASS"] == ["tests/test_size.py::test_clamp_upper"]
    assert "patch" not in task.metadata  # the gold patch never reaches the model
    plan = bench.reference_solution(task)
    assert plan.steps[0].arguments["path"] == "/testbed/.git/react-eval-oracle.patch"
    assert plan.steps[1].arguments["command"].startswith("cd /testbed && git apply")


def test_dataset_is_required_and_grading_checked(tmp_path):
    with pytest.raises(ValueError, match="--dataset"):
        SWEbenchBenchmark().tasks()
    with pytest.raises(ValueError, match="not a file"):
        SWEbenchBenchmark(str(tmp_path / "nope.jsonl"), grading="junit").tasks()
    with pytest.raises(ValueError, match="grading"):
        SWEbenchBenchmark(str(FIXTURE), grading="vibes")


@pytest.mark.skipif(HAVE_SWEBENCH, reason="swebench is installed: the missing-package message cannot show")
def test_missing_swebench_package_says_how_to_install():
    bench = SWEbenchBenchmark(str(FIXTURE))
    tasks = bench.tasks()  # listing the tasks needs no grader
    with pytest.raises(PreflightError) as info:
        bench.preflight(tasks)
    assert str(info.value) == MISSING_SWEBENCH and "react-eval[swebench]" in MISSING_SWEBENCH
    assert "grading=junit" in MISSING_SWEBENCH
    SWEbenchBenchmark(str(FIXTURE), grading="junit").preflight(tasks)  # junit grading needs no swebench


@pytest.mark.skipif(HAVE_SWEBENCH, reason="swebench is installed: the missing-package message cannot show")
def test_a_run_without_swebench_stops_before_any_rollout(tmp_path, scripted_server):
    srv = scripted_server([], strict=False)
    proc = subprocess.run([sys.executable, "-m", "react_eval.cli", "run", "--bench", "swebench", "--dataset",
                           str(FIXTURE), "--model-url", srv.base_url, "--model", "m", "-o", str(tmp_path / "out"),
                           "--no-progress"], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "COLUMNS": "400"})
    assert proc.returncode == 1
    assert MISSING_SWEBENCH in " ".join((proc.stdout + proc.stderr).split())
    assert srv.requests == []


def test_list_shows_the_swe_benchmarks():
    proc = subprocess.run([sys.executable, "-m", "react_eval.cli", "list"], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "COLUMNS": "200"})
    assert proc.returncode == 0, proc.stderr
    lines = {line.split("│")[1].strip(): line for line in proc.stdout.splitlines() if line.count("│") > 3}
    assert "sandbox_artifact" in lines["swe-mini"] and str(len(SweMiniBenchmark().tasks())) in lines["swe-mini"]
    assert "n/a" in lines["swebench"] and "--dataset" in lines["swebench"]


def test_predictions_only_from_artifact_benchmarks(tmp_path):
    swe, smoke = tmp_path / "swe", tmp_path / "smoke"
    for d, mode in ((swe, "sandbox_artifact"), (smoke, "final_message")):
        d.mkdir()
        (d / "eval.json").write_text(json.dumps({"verification": mode}))
    rows = [
        {"task_id": "Acme__Widgets-4242", "repeat": 1, "model": "m", "artifact": "second"},
        {"task_id": "Acme__Widgets-4242", "repeat": 0, "model": "m", "artifact": "first"},
        {"task_id": "tools__gadget-77", "repeat": 0, "model": "m", "artifact": None},
    ]
    (swe / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (smoke / "results.jsonl").write_text(json.dumps({"task_id": "s", "repeat": 0, "artifact": None}) + "\n")
    assert predictions_from_results(smoke) == []
    out = tmp_path / "p" / "preds.jsonl"
    assert export_predictions([swe, smoke], out) == 2
    assert [json.loads(line) for line in out.read_text().splitlines()] == [
        {"instance_id": "Acme__Widgets-4242", "model_name_or_path": "m", "model_patch": "first"},
        {"instance_id": "tools__gadget-77", "model_name_or_path": "m", "model_patch": ""},
    ]


# ---------------------------------------------------------------- grading in a sandbox


def _swe_mini_as_swebench_row(inst: SweInstance) -> dict:
    """A swe-mini instance as a current SWE-bench row: eval_script in SWE-bench's
    shape (reset test files, apply the test patch from a heredoc, tests between
    the output markers), log_parser, eval_type and image."""
    files = sorted({t.split("::")[0] for t in inst.FAIL_TO_PASS + inst.PASS_TO_PASS})
    reset = reset_command(inst.test_patch).split(" && ")
    script = "\n".join([
        "#!/bin/bash",
        "set -uxo pipefail",
        "cd /testbed",
        *reset,
        "git apply -v - <<'EOF_SWE_MINI'",
        inst.test_patch.rstrip("\n"),
        "EOF_SWE_MINI",
        ": '>>>>> Start Test Output'",
        f"PYTHONDONTWRITEBYTECODE=1 {sys.executable} -m pytest -rA -p no:cacheprovider " + " ".join(files),
        ": '>>>>> End Test Output'",
        *reset,
    ]) + "\n"
    row = inst.row()
    row.update(eval_script=script, log_parser="parse_log_pytest", eval_type="pass_and_fail",
               image="react-eval-sandbox:latest")
    return row


@pytest.fixture
async def provider(tmp_path):
    p = LocalSandboxProvider(LocalSandboxConfig(root=str(tmp_path / "sandboxes")))
    yield p
    await p.aclose()


async def _grade(bench: SWEbenchBenchmark, mini: SweMiniBenchmark, inst: SweInstance, patch: str, provider):
    sandbox = await provider.create(mini.sandbox_spec(mini.instance(inst.instance_id)), labels={})
    try:
        details: dict = {}
        return await bench.grade(inst, patch, sandbox, details)
    finally:
        await sandbox.close()


@pytest.mark.anyio
async def test_junit_grading_of_a_swebench_row(tmp_path, provider):
    mini = SweMiniBenchmark()
    dataset = tmp_path / "rows.jsonl"
    dataset.write_text(json.dumps(mini.instance("ops__confkit-7").row()) + "\n")
    bench = SWEbenchBenchmark(str(dataset), grading="junit", repo_path=".", python=sys.executable, env_setup=None)
    (inst,) = bench.instances()
    good = await _grade(bench, mini, inst, inst.patch, provider)
    assert good.reward == 1.0 and good.details["apply_method"] == "git_apply"
    bad = await _grade(bench, mini, inst, "", provider)
    assert bad.reward == 0.0 and bad.details["fail_to_pass"]["passed"] == []


@pytest.mark.anyio
@pytest.mark.skipif(not HAVE_SWEBENCH, reason="the swebench package is not installed (pip install 'react-eval[swebench]')")
async def test_swebench_harness_grading(tmp_path, provider):
    """The swebench package's own test spec and log parser decide the reward."""
    mini = SweMiniBenchmark()
    source = mini.instance("caching__lrukit-9")
    dataset = tmp_path / "rows.jsonl"
    dataset.write_text(json.dumps(_swe_mini_as_swebench_row(source)) + "\n")
    bench = SWEbenchBenchmark(str(dataset), repo_path=".")
    assert bench.tasks()[0].sandbox.image == "react-eval-sandbox:latest"  # the row's own image
    (inst,) = bench.instances()
    good = await _grade(bench, mini, inst, inst.patch, provider)
    assert good.details["grader"].startswith("swebench ")
    assert good.reward == 1.0, good.details.get("test_output")
    report = good.details["swebench_report"]
    assert report["resolved"] is True
    assert sorted(report["tests_status"]["FAIL_TO_PASS"]["success"]) == sorted(source.FAIL_TO_PASS)
    bad = await _grade(bench, mini, inst, "", provider)
    assert bad.reward == 0.0 and bad.details["swebench_report"]["resolved"] is False
    assert sorted(bad.details["fail_to_pass"]["failed"]) == sorted(source.FAIL_TO_PASS)
    assert bad.details["pass_to_pass"]["failed"] == []


@pytest.mark.skipif(HAVE_SWEBENCH, reason="swebench is installed here: the test above ran in this interpreter")
@pytest.mark.parametrize("release", ["4.1.0", "5.0.2"])
def test_swebench_harness_grading_with_each_release(release):
    """The test above, in a cached venv holding swebench ``release`` (see
    tests/support/swebench_venvs.py), so it runs whether or not this interpreter
    has the extra. swebench 4 builds no spec for this made-up repository, so
    there the row is refused with the reason, as the pre-flight would."""
    from tests.benchmarks.test_swebench_agreement import _venv

    python = _venv(release)
    repo = Path(__file__).resolve().parents[2]
    proc = subprocess.run([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           f"{__file__}::test_swebench_harness_grading"], cwd=repo, capture_output=True, text=True,
                          timeout=900, env={**os.environ, "PYTHONPATH": str(repo)})
    if release.startswith("5"):
        assert proc.returncode == 0 and "1 passed" in proc.stdout, proc.stdout[-3000:] + proc.stderr[-2000:]
    else:
        assert proc.returncode == 1 and "tables have no repository entry for caching/lrukit" in proc.stdout, (
            proc.stdout[-3000:])
