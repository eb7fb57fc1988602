"""Grade every fixture case twice, with the swebench this interpreter has:

* **official**: what swebench's own harness concludes. Its spec comes from
  swebench's ``make_test_spec`` (4.x: with the environment-script step, which
  downloads requirement files, stubbed out; it does not touch the eval script),
  the log is the fixture, and the verdict is ``get_eval_report``'s (reading the
  log with ``get_logs_eval``). A patch that does not apply or a run that times
  out raises inside ``run_instance`` before any report: unresolved.
* **react-eval**: :class:`SWEbenchBenchmark.grade` in a real sandbox (local or
  Docker) holding a small repository: the patch chain, the test run writing
  its log to a file, the read-back, the timeout handling and the report. Only
  the eval script's body is replaced, by one that prints the fixture log.

Run as ``python -m tests.benchmarks.swebench_agreement --sandbox local OUT.json``
with an interpreter that has swebench; writes one JSON row per case.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any

import anyio

from react_eval.benchmarks.patches import setup_command
from react_eval.benchmarks.swebench_dataset import SWEbenchBenchmark
from react_eval.types import SandboxSpec, VerifyError
from tests.benchmarks.fixtures.swebench_logs import BAD_PATCH, DIALECTS, GOOD_PATCH, REPO_FILES, SCENARIOS, make_log, row

TIMEOUT = 4.0


def docker_case(parser: str, scenario: str) -> bool:
    """What also runs in Docker (the log path there; every case runs locally)."""
    return parser in ("django", "pytest") and (scenario.startswith("big") or scenario in ("gold", "timeout"))


def official_spec(harness_generation: int, data: dict[str, Any], image: str) -> Any:
    if harness_generation >= 5:
        from swebench.harness.utils import make_test_spec

        return make_test_spec({**data, "image": data.get("image") or image})
    import swebench.harness.test_spec.test_spec as ts

    real = ts.make_env_script_list
    ts.make_env_script_list = lambda *a, **k: []  # the network-only part (requirement downloads)
    try:
        return ts.make_test_spec(data, namespace="swebench")
    finally:
        ts.make_env_script_list = real


def official_verdict(spec: Any, scenario: Any, log: str, iid: str) -> dict[str, Any]:
    from swebench.harness.grading import get_eval_report

    if scenario.bad_patch or scenario.timeout:  # run_instance raises before grading: no report
        return {"resolved": False, "f2p_success": [], "p2p_success": []}
    with tempfile.NamedTemporaryFile("w", suffix=".log", delete=False) as fh:
        fh.write(log)
    try:
        report = get_eval_report(spec, {"instance_id": iid, "model_name_or_path": "m", "model_patch": "x"},
                                 fh.name, True)[iid]
    finally:
        os.unlink(fh.name)
    status = report.get("tests_status") or {}
    return {"resolved": bool(report["resolved"]),
            "f2p_success": status.get("FAIL_TO_PASS", {}).get("success", []),
            "p2p_success": status.get("PASS_TO_PASS", {}).get("success", [])}


async def react_eval_verdict(provider: Any, bench: SWEbenchBenchmark, scenario: Any, log: str) -> dict[str, Any]:
    (inst,) = bench.instances()
    real_spec = bench._spec

    def spec_printing_the_fixture(i: Any) -> Any:
        spec = real_spec(i)
        body = ["cat .git/fixture.log"] + (["sleep 60"] if scenario.timeout else [])
        return dataclasses.replace(spec, eval_script_list=body)

    bench._spec = spec_printing_the_fixture  # type: ignore[method-assign]
    sandbox = await provider.create(SandboxSpec(files=REPO_FILES, setup=setup_command(".", init=True)), labels={})
    try:
        await sandbox.write_file(".git/fixture.log", log.encode())
        details: dict[str, Any] = {}
        try:
            v = await bench.grade(inst, BAD_PATCH if scenario.bad_patch else GOOD_PATCH, sandbox, details)
        except VerifyError as exc:
            return {"resolved": "verify_error", "error": str(exc)}
        return {"resolved": v.reward == 1.0, "f2p_success": v.details.get("fail_to_pass", {}).get("passed", []),
                "p2p_success": v.details.get("pass_to_pass", {}).get("passed", []),
                "apply_method": details.get("apply_method"), "log_bytes": details.get("test_log_bytes")}
    finally:
        await sandbox.close()


async def main(sandbox_kind: str, out: Path, run_id: str) -> None:
    import swebench

    from react_eval.benchmarks.swebench_harness import load_harness

    harness = load_harness()
    if sandbox_kind == "docker":
        from react_eval.sandboxes.docker import DockerSandboxProvider
        from react_eval.sandboxes.docker.config import DockerSandboxConfig

        provider: Any = DockerSandboxProvider(DockerSandboxConfig(memory="512m"), run_id=run_id)
    else:
        from react_eval.sandboxes.local import LocalSandboxConfig, LocalSandboxProvider

        provider = LocalSandboxProvider(LocalSandboxConfig(root=tempfile.mkdtemp(prefix="agreement-")))
    rows = []
    work = Path(tempfile.mkdtemp(prefix="agreement-rows-"))
    try:
        for dialect in DIALECTS.values():
            current = harness.generation >= 5
            data = row(dialect, current=current, with_image=dialect.name != "sympy")  # sympy: image derived
            dataset = work / f"{dialect.name}.jsonl"
            dataset.write_text(json.dumps(data) + "\n")
            bench = SWEbenchBenchmark(str(dataset), repo_path=".", test_timeout=TIMEOUT, arch="x86_64")
            (inst,) = bench.instances()
            ours = bench._spec(inst)
            theirs = official_spec(harness.generation, data, bench.image(inst))
            for scenario in SCENARIOS:
                if sandbox_kind == "docker" and not docker_case(dialect.name, scenario.name):
                    continue
                log = make_log(dialect, scenario, harness.generation)
                case = {"generation": harness.generation, "swebench": swebench.__version__, "parser": dialect.name,
                        "scenario": scenario.name, "sandbox": sandbox_kind, "log_bytes": len(log.encode()),
                        "eval_script_identical": ours.eval_script == theirs.eval_script}
                try:
                    case["official"] = official_verdict(theirs, scenario, log, inst.instance_id)
                    case["react_eval"] = await react_eval_verdict(
                        provider, SWEbenchBenchmark(str(dataset), repo_path=".", test_timeout=TIMEOUT, arch="x86_64"),
                        scenario, log)
                except Exception:  # noqa: BLE001 - reported per case
                    case["crash"] = traceback.format_exc()
                rows.append(case)
        rows.append(preflight_checks(harness.generation, work))
    finally:
        await provider.aclose()
    out.write_text("".join(json.dumps(r) + "\n" for r in rows))


def preflight_checks(generation: int, work: Path) -> dict[str, Any]:
    """What the pre-flight says about rows this swebench can and cannot grade."""
    from react_eval.benchmarks.base import PreflightError

    def message(rows: list[dict[str, Any]], name: str) -> str | None:
        dataset = work / name
        dataset.write_text("".join(json.dumps(r) + "\n" for r in rows))
        bench = SWEbenchBenchmark(str(dataset))
        try:
            bench.preflight(bench.tasks())
        except PreflightError as exc:
            return str(exc)
        return None

    django = DIALECTS["django"]
    good = [row(d, current=generation >= 5) for d in DIALECTS.values()]
    if generation >= 5:
        bad = {**row(django, current=False), "instance_id": "django__django-90002"}  # classic: no eval_script
    else:
        bad = row(dataclasses.replace(django, repo="starryzhang/unknown-repo"), current=True)  # not in 4.x's tables
    bad = [bad]
    return {"scenario": "preflight", "generation": generation, "gradable": message(good, "good.jsonl"),
            "ungradable": message(good + bad, "bad.jsonl")}


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--sandbox", choices=("local", "docker"), default="local")
    parser.add_argument("--run-id", default=f"agreement-{os.getpid()}")
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    anyio.run(main, args.sandbox, args.out, args.run_id)
    sys.exit(0)
