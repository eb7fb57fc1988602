"""SWE-style tasks: fix a repository so that hidden tests pass (sandbox_artifact mode).

A task is a repository snapshot at a base state, an issue-like problem
statement, the ids of the tests that must go from failing to passing
(FAIL_TO_PASS) and of those that must keep passing (PASS_TO_PASS), a test patch
that adds or changes those tests, and a gold patch that fixes the issue. Rows
use SWE-bench's field names; FAIL_TO_PASS/PASS_TO_PASS may be lists or
JSON-encoded lists (as in SWE-bench's own files).

After the loop the agent's change is captured as a git patch against the base
(see :mod:`react_eval.benchmarks.patches` for the contract), and graded in a
FRESH sandbox built from the same base by the run's provider:

1. apply the patch as the official SWE-bench harness does (``git apply``,
   ``--3way``, ``--reject``, then ``patch --fuzz=5``; the method is kept);
2. put back (or remove) every test-infrastructure file the agent added or
   changed (conftest.py, pytest/tox config, sitecustomize, .pth, files next
   to the tests; see :mod:`react_eval.benchmarks.swe_integrity`), recording
   each in ``details["tampering"]`` and flagging the rollout;
3. put every file the test patch touches back to the base (``git checkout base
   -- FILES``, and delete files it creates), so edits the agent made to the
   tests count for nothing, then apply the test patch;
4. run the test files with pytest under pinned options, with the benchmark's
   declared grading environment (``grading_env``: swe-mini needs a Python with
   pytest), and read per-test outcomes from a junit report written outside the
   repository at an unguessable path.

The reward is 1 only if every FAIL_TO_PASS and PASS_TO_PASS test passed. The
details keep the per-test outcomes, the apply method and the patch. The agent's
sandbox is closed once its patch is captured, before the grader's sandbox is
made, so a rollout never holds two sandboxes.

``swe-local`` (:mod:`react_eval.benchmarks.swe_local`) grades rows of your own
over git repositories on this machine the same way.

``swe-mini`` is the bundled offline suite (stdlib-only Python projects). In it
``base_commit`` is the symbolic tag ``react-eval-base``: the sandbox setup
initialises git in the workdir, commits the files and tags that commit.
"""

from __future__ import annotations

import shlex
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any

from react_eval.benchmarks.base import (
    Answer,
    Benchmark,
    PlannedCall,
    ReferenceSolution,
    RolloutEnv,
    Verification,
)
from react_eval.benchmarks.grading_log import MAX_LOG_BYTES, run_logged
from react_eval.benchmarks.patches import (
    BASE_REF,
    GIT,
    SCRATCH,
    CaptureResult,
    apply_patch,
    capture_patch,
    outcomes_for,
    parse_junit,
    parse_patch_files,
    repo_path,
    reset_command,
    setup_command,
    test_files,
)
from react_eval.benchmarks.swe_integrity import pytest_run, read_pytest_output, reset_test_infrastructure, test_dirs
from react_eval.benchmarks.swe_rows import DatasetError, SweInstance, load_instances
from react_eval.grading.envs import EnvSpec
from react_eval.grading.sandbox import GradingSandbox, grading_sandbox
from react_eval.sandboxes.base import Sandbox
from react_eval.types import SandboxError, SandboxSpec, Task, VerifyError

#: SweInstance, load_instances and DatasetError live in swe_rows; kept importable from here
__all__ = ["DatasetError", "PYTEST_ENV", "SweBenchmark", "SweInstance", "SweMiniBenchmark", "load_instances"]

#: what the bundled SWE tasks' tests need: a Python with pytest (the default
#: Docker sandbox image has Debian's python3-pytest)
PYTEST_ENV = EnvSpec(name="pytest", requirements=("pytest",), imports=("pytest",), image_python="python3")

SWE_SYSTEM_PROMPT = (
    "You are an expert software engineer working in a sandbox through tools: bash (a persistent "
    "shell), file_read, file_write and str_replace_editor. A git repository is checked out for you. "
    "Resolve the issue the user describes by changing the repository's source code: explore the "
    "code, reproduce the problem, make the fix, and run the relevant tests. Hidden tests are run on "
    "your changes afterwards, and edits to existing tests do not count. Your work is collected from "
    "the working tree as a diff, so leave the fix in place (no need to commit). When you are done, "
    "reply with a short summary of the change and no tool call."
)

_PROMPT = """<issue>
{problem_statement}
</issue>

The repository{repo_name} is checked out in {location}, at the commit where this issue was reported. \
Make changes to the non-test files so that the issue is resolved, and check your fix by running the tests."""


class SweBenchmark(Benchmark):
    """Shared machinery: prompt, capture, grading in a fresh sandbox, oracle plan."""

    verification = "sandbox_artifact"
    needs_sandbox = True
    default_system_prompt = SWE_SYSTEM_PROMPT
    #: where the repository is inside the sandbox ("." = the workdir)
    repo: str = "."
    #: let pytest load plugins from installed entry points (a task image's own)
    autoload_plugins: bool = False
    #: the most bytes of test output (or junit report) a grade reads; more is a verify_error
    max_log_bytes: int = MAX_LOG_BYTES

    def __init__(self, *, python: str = "python3", env_setup: str | None = None, test_timeout: float = 900.0,
                 max_patch_bytes: int = 8 << 20, fuzz: int = 5):
        self.python = python
        #: shell commands run before the tests, e.g. activating a virtualenv
        self.env_setup = env_setup
        self.test_timeout = float(test_timeout)
        self.max_patch_bytes = int(max_patch_bytes)
        self.fuzz = int(fuzz)
        self._captures: dict[int, CaptureResult] = {}

    # ---- what subclasses provide

    def instances(self) -> list[SweInstance]:
        raise NotImplementedError

    def sandbox_spec(self, inst: SweInstance) -> SandboxSpec:
        raise NotImplementedError

    def base_ref(self, inst: SweInstance) -> str:
        """The base commit as the sandbox's repository names it (test files are reset to it)."""
        return inst.base_commit or BASE_REF

    @property
    def repo_location(self) -> str:
        return "the current working directory" if self.repo in ("", ".") else self.repo

    # ---- tasks

    @cached_property
    def _by_id(self) -> dict[str, SweInstance]:
        found: dict[str, SweInstance] = {}
        for inst in self.instances():
            if inst.instance_id in found:
                raise ValueError(f"duplicate instance_id {inst.instance_id!r}")
            found[inst.instance_id] = inst
        return found

    def instance(self, task_id: str) -> SweInstance:
        return self._by_id[task_id]

    def make_task(self, inst: SweInstance) -> Task:
        prompt = _PROMPT.format(
            problem_statement=inst.problem_statement.strip(),
            repo_name=f" {inst.repo}" if inst.repo else "",
            location=self.repo_location,
        )
        return Task(
            id=inst.instance_id,
            prompt=prompt,
            metadata={
                "instance_id": inst.instance_id,
                "repo": inst.repo,
                "base_commit": inst.base_commit,
                "version": inst.version,
                "FAIL_TO_PASS": list(inst.FAIL_TO_PASS),
                "PASS_TO_PASS": list(inst.PASS_TO_PASS),
            },
            sandbox=self.sandbox_spec(inst),
        )

    def tasks(self) -> list[Task]:
        return [self.make_task(inst) for inst in self._by_id.values()]

    # ---- the agent side

    async def collect_artifact(self, task: Task, env: RolloutEnv) -> str | None:
        if env.sandbox is None:
            raise SandboxError("SWE tasks need a sandbox, and this rollout has none")
        capture = await capture_patch(env.sandbox, self.repo, max_bytes=self.max_patch_bytes)
        self._captures[id(env)] = capture
        return capture.patch

    # ---- grading

    async def verify(self, task: Task, answer: Answer, env: RolloutEnv) -> Verification:
        inst = self.instance(task.id)
        capture = self._captures.pop(id(env), None)
        patch = answer.artifact
        # the commit graded against, as resolved (swe-local: the full SHA of a short SHA, tag or branch)
        details: dict[str, Any] = {"instance_id": inst.instance_id, "base_commit": inst.base_commit, "patch": patch}
        if capture is not None and capture.all_binary:
            details["patch_all_binary"] = True
        if patch is None:
            details["capture_error"] = capture.error if capture is not None else "no patch was captured"
            details["apply_method"] = None
            return Verification(reward=0.0, details=details)
        if env.provider is None:
            raise VerifyError("SWE grading needs the run's sandbox provider (RolloutEnv.provider)")
        if env.sandbox is not None:
            try:  # its patch is captured: free it before the grader's sandbox is made
                await env.sandbox.close()
            except Exception as exc:  # noqa: BLE001 - the engine closes it again and records problems
                details["agent_sandbox_close_error"] = f"{type(exc).__name__}: {exc}"
        labels = {"task_id": task.id}
        async with grading_sandbox(env.provider, task.sandbox, self.grading_env, labels=labels,
                                   python=self.python, probe=True) as graded:
            details["grading_python"] = graded.python
            return await self.grade(inst, patch, graded, details)

    async def grade(self, inst: SweInstance, patch: str, sandbox: Sandbox,
                    details: dict[str, Any]) -> Verification:
        """Apply ``patch``, reset and apply the test patch, run the tests (junit)."""
        applied = await apply_patch(sandbox, patch, self.repo, fuzz=self.fuzz)
        details["apply_method"] = applied.method
        details["apply_output"] = applied.output[-4000:]
        if not applied.ok:
            details["error"] = "the patch does not apply to the base commit"
            return Verification(reward=0.0, details=details)
        problem = await self.prepare_tests(inst, sandbox, details)
        if problem is not None:
            details["error"] = problem
            return Verification(reward=0.0, details=details)
        return await self.run_tests(inst, sandbox, details)

    async def prepare_tests(self, inst: SweInstance, sandbox: Sandbox,
                            details: dict[str, Any] | None = None) -> str | None:
        """Reset test infrastructure the agent touched, reset the files the test
        patch touches to the base and apply it; a message saying what went
        wrong, or None. Resets are recorded in ``details["tampering"]``."""
        base = self.base_ref(inst)
        ids = list(inst.FAIL_TO_PASS) + list(inst.PASS_TO_PASS)
        keep = {c.path for c in parse_patch_files(inst.test_patch)} | {
            c.old_path for c in parse_patch_files(inst.test_patch) if c.old_path}
        try:
            tampering = await reset_test_infrastructure(sandbox, self.repo, base, keep=keep,
                                                        tests_in=test_dirs(test_files(ids)))
        except RuntimeError as exc:
            raise VerifyError(f"could not reset the test infrastructure: {exc}") from exc
        if tampering and details is not None:
            details["tampering"] = tampering.reset
            details.setdefault("flags", []).append("tampering")
        if not inst.test_patch.strip():
            return None
        reset = reset_command(inst.test_patch, base)
        if reset is not None:
            r = await sandbox.run(self._in_repo(reset), timeout=120)
            if r.timed_out or r.exit_code != 0:
                return f"could not reset the test files to the base commit: {r.output[-2000:]}"
        await sandbox.write_file(repo_path(self.repo, f"{SCRATCH}/test.patch"), inst.test_patch.encode("utf-8"))
        r = await sandbox.run(self._in_repo(f"{GIT} apply --verbose --whitespace=nowarn {SCRATCH}/test.patch"),
                              timeout=120)
        if r.timed_out or r.exit_code != 0:
            return f"the test patch does not apply after resetting the test files: {r.output[-2000:]}"
        return None

    def test_command(self, files: list[str], python: str | None = None):
        """The pinned pytest run of ``files`` (see :func:`swe_integrity.pytest_run`)."""
        return pytest_run(shlex.quote(python) if python else self.python, files,
                          env_setup=self.env_setup, autoload_plugins=self.autoload_plugins)

    async def run_tests(self, inst: SweInstance, sandbox: Sandbox, details: dict[str, Any]) -> Verification:
        ids = list(inst.FAIL_TO_PASS) + [t for t in inst.PASS_TO_PASS if t not in inst.FAIL_TO_PASS]
        if not ids:
            raise VerifyError(f"{inst.instance_id} lists no FAIL_TO_PASS or PASS_TO_PASS tests")
        python = sandbox.python if isinstance(sandbox, GradingSandbox) else None
        run = self.test_command(test_files(ids), python)
        # the report comes back through a log file read whole, never a capped exec buffer
        r = await run_logged(sandbox, self._in_repo(run.command), repo=self.repo,
                             timeout=self.test_timeout, max_bytes=self.max_log_bytes)
        if r.timed_out:
            details["test_exit_code"] = None
            details["test_output"] = r.output[-4000:]
            details["error"] = f"the tests timed out after {self.test_timeout:g}s"
            details["tests"] = {t: "missing" for t in ids}
            return self._score(inst, details)
        result = read_pytest_output(r.output, run.token)
        details["test_exit_code"] = result.exit_code
        details["test_output"] = result.output[-4000:]
        if result.problem:
            raise VerifyError(f"{inst.instance_id}: {result.problem}: {r.output[-1000:]}")
        junit_outcomes: dict = {}
        if result.junit is None:
            details["error"] = "pytest wrote no junit report (it could not start, or the run was tampered with)"
        else:
            try:
                junit_outcomes = parse_junit(result.junit)
            except Exception as exc:  # noqa: BLE001 - a corrupt report is the run's fault, not ours
                details["error"] = f"unreadable junit report: {type(exc).__name__}: {exc}"
        details["tests"] = outcomes_for(ids, junit_outcomes)
        bad = [o for o in junit_outcomes.values() if o in ("failed", "error")]
        code = result.exit_code
        if code not in (0, None) and not bad and details["tests"] and code != 5:
            # pytest said something failed, yet the report shows no failure: the
            # report does not describe the run (e.g. a conftest rewrote it)
            details["error"] = f"pytest exited {code} but its junit report shows no failure"
            details["tests"] = {t: ("error" if o == "passed" else o) for t, o in details["tests"].items()}
        return self._score(inst, details)

    @staticmethod
    def _score(inst: SweInstance, details: dict[str, Any]) -> Verification:
        """Resolved when every FAIL_TO_PASS test passed and every PASS_TO_PASS test
        was maintained, as swebench (5.x) grades: an xfailed test counts as
        passed, a skipped one as maintained but never as a fix."""
        tests = details["tests"]
        f2p = {t: tests.get(t, "missing") for t in inst.FAIL_TO_PASS}
        p2p = {t: tests.get(t, "missing") for t in inst.PASS_TO_PASS}
        details["fail_to_pass"] = _split(f2p, FIXED)
        details["pass_to_pass"] = _split(p2p, MAINTAINED)
        resolved = not details["fail_to_pass"]["failed"] and not details["pass_to_pass"]["failed"]
        details["resolved"] = resolved
        return Verification(reward=1.0 if resolved else 0.0, details=details)

    def _in_repo(self, command: str) -> str:
        return command if self.repo in ("", ".") else f"cd {shlex.quote(self.repo)} && {command}"

    # ---- the oracle

    def reference_solution(self, task: Task) -> ReferenceSolution | None:
        """Write the gold patch with file_write (inside .git, outside the working
        tree), then ``git apply`` it with bash."""
        inst = self.instance(task.id)
        if not inst.patch.strip():
            return None
        path = repo_path(self.repo, ".git/react-eval-oracle.patch")
        return ReferenceSolution(
            steps=[
                PlannedCall("file_write", {"path": path, "content": inst.patch}),
                PlannedCall("bash", {"command": self._in_repo("git apply --verbose .git/react-eval-oracle.patch")}),
            ],
            final_message="Applied the reference (gold) patch.",
        )


#: outcomes that count for a FAIL_TO_PASS test, and for a PASS_TO_PASS test
#: (swebench's test_passed and test_maintained)
FIXED = frozenset({"passed", "xfailed"})
MAINTAINED = frozenset({"passed", "xfailed", "skipped"})


def _split(outcomes: dict[str, str], good: frozenset[str]) -> dict[str, list[str]]:
    return {
        "passed": [t for t, o in outcomes.items() if o in good],
        "failed": [t for t, o in outcomes.items() if o not in good],
    }


# ---------------------------------------------------------------- swe-mini

_DATA = "data/swe_mini"


def _data_root() -> Path:
    root = resources.files("react_eval.benchmarks").joinpath(_DATA)
    if not isinstance(root, Path):  # e.g. imported from a zip: repo_dir needs real files
        raise RuntimeError(f"swe-mini needs its data as files on disk, got {root!r}")
    return root


class SweMiniBenchmark(SweBenchmark):
    name = "swe-mini"
    description = "offline SWE-style tasks: fix small stdlib-only Python repos; graded by hidden tests (junit)"
    grading_env = PYTEST_ENV

    def instances(self) -> list[SweInstance]:
        root = _data_root()
        return load_instances((root / "instances.jsonl").read_bytes(), source=str(root / "instances.jsonl"))

    def sandbox_spec(self, inst: SweInstance) -> SandboxSpec:
        repo_dir = _data_root() / "repos" / inst.instance_id
        return SandboxSpec(repo_dir=str(repo_dir), setup=setup_command(".", init=True))
