"""A grader's test run whose whole output is kept: written to a file in the
sandbox and read back in full, never a shell buffer capped in the middle.

Sandboxes keep only the head and tail of a command's output (1 MiB by default),
which is right for what the model sees and wrong for a grader: a SWE-bench log
can hold megabytes of ``git show`` before the test markers, and a log cut in the
middle loses the markers and grades a correct patch unresolved. So the test
command's output goes to a file whose name is random (and, where the sandbox
allows it, outside the repository), and the grader reads that file with a cap
far above any real log. If anything is lost anyway (over the cap, the file gone
or shorter than it was) the run raises :class:`~react_eval.types.VerifyError`
naming it: the verdict is unknown, never a silent "unresolved".
"""

from __future__ import annotations

import secrets
import shlex
from dataclasses import dataclass

from react_eval.benchmarks.patches import SCRATCH, repo_path
from react_eval.sandboxes.base import FileTooLargeError, Sandbox
from react_eval.sandboxes.shell import decode_output
from react_eval.types import VerifyError

#: the default cap on a test log a grader reads (real SWE-bench logs are < 10 MiB)
MAX_LOG_BYTES = 64 << 20


@dataclass
class TestLog:
    """The full output of one test command."""

    __test__ = False  # not a pytest class

    output: str
    exit_code: int | None
    timed_out: bool
    size: int
    #: where the log was written in the sandbox
    path: str


def log_path(sandbox: Sandbox, repo: str) -> str:
    """A fresh, unguessable log path: under /tmp when the sandbox lets files
    live outside the workdir (Docker), else in the repository's .git scratch
    directory (outside the working tree)."""
    token = secrets.token_hex(12)
    try:
        return sandbox.resolve(f"/tmp/react-eval-grader-{token}/test-output.log")
    except PermissionError:
        return sandbox.resolve(repo_path(repo, f"{SCRATCH}/test-output-{token}.log"))


async def run_logged(sandbox: Sandbox, command: str, *, repo: str, timeout: float,
                     max_bytes: int = MAX_LOG_BYTES) -> TestLog:
    """Run ``command`` (a shell command line) with stdout and stderr going to a
    log file, then read the whole file back."""
    path = log_path(sandbox, repo)
    quoted = shlex.quote(path)
    wrapped = f"mkdir -p {shlex.quote(path.rsplit('/', 1)[0])} && {{ {command}\n}} > {quoted} 2>&1"
    r = await sandbox.run(wrapped, timeout=timeout)
    data = await read_whole(sandbox, path, max_bytes=max_bytes, what="the test log")
    return TestLog(decode_output(data), r.exit_code, r.timed_out, len(data), path)


async def read_whole(sandbox: Sandbox, path: str, *, max_bytes: int, what: str) -> bytes:
    """Every byte of ``path``, or a VerifyError saying what would be lost."""
    try:
        info = await sandbox.stat(path)
        data = await sandbox.read_file(path, max_bytes=max_bytes)
    except FileTooLargeError as exc:
        raise VerifyError(
            f"{what} is {exc.size} bytes, over the {max_bytes}-byte cap (the max_log_bytes option): "
            "it was not graded rather than graded from part of it") from None
    except FileNotFoundError:
        raise VerifyError(f"{what} ({path}) disappeared before it could be read: the test run removed "
                          "it, or was tampered with") from None
    if info.exists and len(data) < info.size:
        raise VerifyError(f"only {len(data)} of the {info.size} bytes of {what} could be read: "
                          f"{info.size - len(data)} bytes were dropped")
    return data
