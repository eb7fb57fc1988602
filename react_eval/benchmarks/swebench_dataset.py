"""``swebench``: real SWE-bench datasets run through the ReAct loop.

``--bench swebench --dataset FILE`` reads a SWE-bench JSONL (or JSON array) file
with the official field names (instance_id, repo, base_commit, problem_statement,
patch, test_patch, FAIL_TO_PASS, PASS_TO_PASS, version, ...). Each instance runs
in its own pre-built evaluation image. A row that carries its own ``image``
field (current SWE-bench releases) uses it; otherwise the name follows
SWE-bench's convention, ``{namespace}/sweb.eval.{arch}.{id}:latest`` where
``{id}`` is the lower-cased instance id with ``__`` written ``_1776_``. The
namespace depends on the dataset (``dataset_kind``, guessed from the file name:
``swebench`` for full/Lite/Verified/Multilingual/Multimodal, ``starryzhang`` for
SWE-bench Live) and can be set (``image_namespace``); ``image_template`` names
images outright. Those images are x86_64 only: an arm64 host gets the x86_64
names (run under emulation, with a warning) unless ``arch`` is set. The
repository is at ``/testbed`` (``repo_path``); its HEAD at setup is tagged
``react-eval-base`` and the agent's patch is captured against it.

Grading (``grading``):

* ``swebench`` (default): the installed ``swebench`` package's own eval script
  and log parser decide (``pip install 'react-eval[swebench]'``), in a fresh
  sandbox with the model patch applied as the official harness applies it.
  swebench 5 grades rows that carry ``eval_script``/``log_parser``/``eval_type``
  (the current dataset form); swebench 4 grades classic rows from its tables,
  offline (see :mod:`react_eval.benchmarks.swebench_harness`). Before the first
  rollout every selected row is checked (:meth:`SWEbenchBenchmark.preflight`);
  a row that cannot be graded stops the run with one message saying what to do.
  The test output goes to a file in the sandbox and is read back whole (up to
  ``max_log_bytes``, 64 MiB); a log that cannot be read whole is a verify_error.
* ``junit``: react-eval's own pytest junit grading (pytest repositories only),
  with ``env_setup`` activating the image's environment; skips and xfails count
  as swebench counts them.

``--export-predictions PATH`` on ``react-eval run`` writes the captured patches as
SWE-bench predictions for the official harness.
"""

from __future__ import annotations

import logging
import os
import platform
import tempfile
from pathlib import Path
from typing import Any

import anyio

from react_eval.benchmarks.base import DatasetMissing, PreflightError, Verification
from react_eval.benchmarks.grading_log import MAX_LOG_BYTES, run_logged
from react_eval.benchmarks.patches import apply_patch, setup_command, write_scratch
from react_eval.benchmarks.swe import SweBenchmark, SweInstance, load_instances
from react_eval.benchmarks.swebench_harness import MISSING_SWEBENCH, Harness, Ungradable, load_harness
from react_eval.sandboxes.base import Sandbox
from react_eval.types import SandboxSpec, Task, VerifyError

__all__ = ["MISSING_SWEBENCH", "SWEbenchBenchmark", "image_name", "instance_image_key"]

log = logging.getLogger(__name__)

DEFAULT_IMAGE_TEMPLATE = "{namespace}/sweb.eval.{arch}.{id}:latest"
#: Docker Hub namespaces of each dataset's published instance images
IMAGE_NAMESPACES = {
    "full": "swebench", "lite": "swebench", "verified": "swebench",
    "multilingual": "swebench", "multimodal": "swebench", "live": "starryzhang",
}
#: every namespace above publishes x86_64 images only
X86_ONLY_NAMESPACES = frozenset(IMAGE_NAMESPACES.values())
#: where SWE-bench's images hold the repository (their eval scripts assume it)
TESTBED = "/testbed"
CONDA_ENV_SETUP = "source /opt/miniconda3/bin/activate && conda activate testbed"


def instance_image_key(instance_id: str) -> str:
    """SWE-bench's image-safe form of an instance id: lower case, ``__`` -> ``_1776_``."""
    return instance_id.lower().replace("__", "_1776_")


def host_arch() -> str:
    return "arm64" if platform.machine() in {"aarch64", "arm64"} else "x86_64"


def guess_dataset_kind(dataset: str | None) -> str:
    """The SWE-bench dataset a file is, from its name (``..._Live...`` -> live)."""
    name = Path(dataset or "").name.lower().replace("-", "_")
    for kind in ("live", "multilingual", "multimodal", "verified", "lite"):
        if kind in name:
            return kind
    return "full"


def image_name(inst: SweInstance, template: str | None, arch: str, namespace: str = "swebench") -> str:
    """The image an instance runs in: ``template`` filled in, else the row's own
    ``image`` field, else SWE-bench's naming in ``namespace``."""
    extra = inst.model_extra or {}
    if template is None and isinstance(extra.get("image"), str) and extra["image"]:
        return extra["image"]
    return (template or DEFAULT_IMAGE_TEMPLATE).format(
        namespace=namespace,
        arch=arch,
        id=instance_image_key(inst.instance_id),
        instance_id=inst.instance_id,
        repo=inst.repo.replace("/", "__"),
        version=inst.version,
    )


# ---------------------------------------------------------------- the benchmark


class SWEbenchBenchmark(SweBenchmark):
    name = "swebench"
    description = "SWE-bench datasets (--dataset FILE.jsonl) in per-instance images; graded by the swebench harness"

    def __init__(
        self,
        dataset: str | None = None,
        *,
        image_template: str | None = None,
        image_namespace: str | None = None,
        dataset_kind: str | None = None,
        arch: str | None = None,
        repo_path: str = TESTBED,
        grading: str = "swebench",
        python: str = "python",
        env_setup: str | None = CONDA_ENV_SETUP,
        test_timeout: float = 1800.0,
        max_patch_bytes: int = 8 << 20,
        max_log_bytes: int = MAX_LOG_BYTES,
        fuzz: int = 5,
    ):
        super().__init__(python=python, env_setup=env_setup, test_timeout=test_timeout,
                         max_patch_bytes=max_patch_bytes, fuzz=fuzz)
        if grading not in ("swebench", "junit"):
            raise ValueError(f"grading must be 'swebench' or 'junit', got {grading!r}")
        kind = dataset_kind or guess_dataset_kind(dataset)
        if kind not in IMAGE_NAMESPACES:
            raise ValueError(f"dataset_kind must be one of {', '.join(IMAGE_NAMESPACES)}, got {kind!r}")
        self.dataset = dataset
        self.dataset_kind = kind
        self.image_template = image_template
        self.image_namespace = image_namespace or IMAGE_NAMESPACES[kind]
        self.platform_note: str | None = None
        if arch is None:  # the published images are x86_64 only: name images that exist
            arch = host_arch()
            if arch == "arm64" and image_template is None and self.image_namespace in X86_ONLY_NAMESPACES:
                arch = "x86_64"
                self.platform_note = (
                    f"this host is arm64 and the {self.image_namespace}/ images are published for x86_64 only: "
                    "they run under emulation (qemu binfmt), slowly; set arch: arm64 with an image_namespace "
                    "holding arm64 builds (swebench's build_images --arch arm64) to run natively")
        self.arch = arch
        self.repo = repo_path
        self.grading = grading
        self.max_log_bytes = int(max_log_bytes)
        self._harness: Harness | None = None

    def instances(self) -> list[SweInstance]:
        if not self.dataset:
            raise DatasetMissing("swebench needs a dataset: pass --dataset FILE.jsonl (SWE-bench rows, official field names)")
        path = Path(self.dataset).expanduser()
        if not path.is_file():
            raise DatasetMissing(f"swebench dataset {path} is not a file")
        return load_instances(path.read_bytes(), source=str(path))

    def harness(self) -> Harness:
        if self._harness is None:
            self._harness = load_harness()
        return self._harness

    def image(self, inst: SweInstance) -> str:
        return image_name(inst, self.image_template, self.arch, self.image_namespace)

    def sandbox_spec(self, inst: SweInstance) -> SandboxSpec:
        return SandboxSpec(image=self.image(inst), setup=setup_command(self.repo, init=False))

    def _spec(self, inst: SweInstance) -> Any:
        return self.harness().spec(inst.row(), image=self.image(inst), arch=self.arch)

    def preflight(self, tasks: list[Task]) -> None:
        """Before any rollout: every selected row must be gradable with the
        installed swebench, else one message saying what to do."""
        if self.platform_note:
            log.warning("swebench: %s", self.platform_note)
        if self.grading != "swebench":
            return
        try:
            harness = self.harness()
        except RuntimeError as exc:
            raise PreflightError(str(exc)) from None
        problems: dict[str, str] = {}
        for task in tasks:
            inst = self.instance(task.id)
            if not self.image(inst):
                problems[inst.instance_id] = "no image name (set image_template or image_namespace)"
                continue
            try:
                self._spec(inst)
            except Ungradable as exc:
                problems[inst.instance_id] = str(exc)
        if problems:
            raise PreflightError(_preflight_message(harness, problems, len(tasks)))

    async def grade(self, inst: SweInstance, patch: str, sandbox: Sandbox, details: dict[str, Any]) -> Verification:
        if self.grading == "junit":
            return await super().grade(inst, patch, sandbox, details)
        try:
            harness = self.harness()
            spec = self._spec(inst)
        except (RuntimeError, Ungradable) as exc:
            raise VerifyError(f"swebench cannot grade {inst.instance_id}: {exc}") from exc
        details["grader"] = f"swebench {harness.version}"
        applied = await apply_patch(sandbox, patch, self.repo, fuzz=self.fuzz, chain=harness.apply_chain)
        details["apply_method"] = applied.method
        details["apply_output"] = applied.output[-4000:]
        if not applied.ok:
            details["error"] = "the patch does not apply to the base commit"
            details["resolved"] = False
            return Verification(reward=0.0, details=details)
        script = spec.eval_script
        if self.repo.rstrip("/") != TESTBED:
            script = script.replace(TESTBED, self.repo.rstrip("/"))
        rel = await write_scratch(sandbox, self.repo, "eval.sh", script)
        run = await run_logged(sandbox, self._in_repo(f"bash {rel}"), repo=self.repo, timeout=self.test_timeout,
                               max_bytes=self.max_log_bytes)
        text = run.output + (f"\n{harness.timeout_marker}\n" if run.timed_out else "")
        details["test_exit_code"] = run.exit_code
        details["test_log_bytes"] = run.size
        details["test_output"] = text[-4000:]
        if run.timed_out:
            details["error"] = f"the tests timed out after {self.test_timeout:g}s"
        prediction = {"instance_id": inst.instance_id, "model_name_or_path": "react-eval", "model_patch": patch}
        report = await anyio.to_thread.run_sync(_report, harness, spec, prediction, text)
        return _verdict(inst, report.get(inst.instance_id, {}), details)


def _verdict(inst: SweInstance, entry: dict[str, Any], details: dict[str, Any]) -> Verification:
    """The reward and per-test details of swebench's report for one instance."""
    details["swebench_report"] = entry
    status = entry.get("tests_status") or {}
    tests: dict[str, str] = {}
    for group in ("FAIL_TO_PASS", "PASS_TO_PASS"):
        for test in status.get(group, {}).get("success", []):
            tests[test] = "passed"
        for test in status.get(group, {}).get("failure", []):
            tests[test] = "failed"
    for test in list(inst.FAIL_TO_PASS) + list(inst.PASS_TO_PASS):
        tests.setdefault(test, "missing")
    details["tests"] = tests
    resolved = bool(entry.get("resolved"))
    details["resolved"] = resolved
    details["fail_to_pass"] = {"passed": [t for t in inst.FAIL_TO_PASS if tests[t] == "passed"],
                               "failed": [t for t in inst.FAIL_TO_PASS if tests[t] != "passed"]}
    details["pass_to_pass"] = {"passed": [t for t in inst.PASS_TO_PASS if tests[t] == "passed"],
                               "failed": [t for t in inst.PASS_TO_PASS if tests[t] != "passed"]}
    return Verification(reward=1.0 if resolved else 0.0, details=details)


def _preflight_message(harness: Harness, problems: dict[str, str], total: int) -> str:
    """One message: how many rows, why (grouped), and what to do."""
    reasons: dict[str, list[str]] = {}
    for instance_id, reason in problems.items():
        reasons.setdefault(reason, []).append(instance_id)
    lines = [f"{len(problems)} of the {total} selected SWE-bench rows cannot be graded with the installed "
             f"swebench {harness.version}; nothing was run:"]
    for reason, ids in reasons.items():
        shown = ", ".join(ids[:5]) + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")
        lines.append(f"  - {shown}: {reason}")
    if harness.generation >= 5:
        fix = ("use the current form of the dataset (rows with eval_script, log_parser and eval_type, as "
               "SWE-bench/SWE-bench_Verified on the Hugging Face hub now ships), or grade classic rows with "
               "swebench 4: pip install 'swebench>=4.1,<5'")
    else:
        fix = ("swebench 4 grades only the repositories and versions in its tables: for rows it does not know "
               "(e.g. SWE-bench Live, Multilingual) install swebench 5 (pip install 'swebench>=5') and use "
               "rows with eval_script, log_parser and eval_type")
    lines.append(f"To grade them: {fix}; or grade with react-eval's own junit grading "
                 "(-O benchmarks.0.options.grading=junit, pytest repositories only).")
    return "\n".join(lines)


def _report(harness: Harness, spec: Any, prediction: dict[str, Any], text: str) -> dict[str, Any]:
    fd, path = tempfile.mkstemp(prefix="react-eval-swebench-", suffix=".log")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors="replace") as fh:
            fh.write(text)
        return harness.report(spec, prediction, path)
    finally:
        os.unlink(path)
