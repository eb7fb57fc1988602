"""Running untrusted code for the coding benchmarks: one place, one protocol.

The harness never executes a model's code in its own process. A check is a
*job* (a dict) that :func:`run_job` pickles into a fresh GRADING sandbox (see
:mod:`react_eval.grading.sandbox`: a container under ``--sandbox docker``, a
bwrap jail under bwrap, a local workdir otherwise); this very file then runs
there as a script, with the grading environment's interpreter, under the
sandbox's wall-clock timeout. The worker loads and deletes the job file before
any untrusted code runs, and writes its verdict to a result file; the sandbox
is closed afterwards, which kills every process the job left behind.

Job kinds (see ``_KINDS``):

* ``evalplus_groundtruth``: run a task's canonical solution on its base and
  plus inputs through ``evalplus.gen.util.trusted_exec`` and return the
  expected outputs and reference times (pickled: the canonical solution is
  trusted dataset code, and the outputs keep their Python types).
* ``evalplus_check``: run a candidate through ``evalplus.eval.untrusted_check``
  on the base and then the plus inputs, with evalplus' own time limits.
* ``python_program``: execute a test program (HumanEval's
  ``prompt + solution + test + check(entry_point)``) under a time limit.

Results of the two check kinds are JSON, so a hostile solution can at worst
garble its own verdict, never make the harness unpickle something. The worker
marks the moment it starts running untrusted code by creating a file: when a
job ends without a result before that mark, the checker itself failed (an
infrastructure error); after it, the solution broke the checker (a failure).

When run as a script this file imports only the standard library (plus
evalplus for the evalplus kinds), so a check costs little more than the
interpreter's start; the harness-side imports are inside :func:`run_job`.
"""

from __future__ import annotations

import builtins
import contextlib
import functools
import io
import json
import os
import pickle
import signal
import sys
import time
import traceback
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from react_eval.grading.envs import EnvSpec
    from react_eval.grading.sandbox import GradingSandbox
    from react_eval.sandboxes.base import SandboxProvider

#: the worker script: this file
WORKER_PATH = os.path.abspath(__file__)
#: the worker's copy inside each job's sandbox (the installed file is not
#: visible in a jail or a container)
WORKER_FILE = "react_eval_worker.py"
JOB_FILE = "job.pkl"
RESULT_FILE = "result.out"
STARTED_FILE = "started"
#: how much of the worker's stderr is kept (a hostile solution may flood it)
LOG_LIMIT = 64 * 1024
#: largest file a check may write, in 512-byte blocks (ulimit -f): 256 MiB
FILE_LIMIT_BLOCKS = 512 * 1024
#: memory cap (address space) for a test program, as evalplus' default
DEFAULT_MEMORY_LIMIT = 4 * 1024**3


# ---- harness side ---------------------------------------------------------------


@dataclass
class JobOutcome:
    """What a job left behind once its sandbox process ended."""

    #: the raw result file, or None when the worker wrote none
    result: bytes | None
    #: the worker got as far as running the untrusted code
    started: bool
    timed_out: bool
    exit_code: int | None
    #: the worker's stderr (head and tail, capped)
    log: str
    seconds: float
    #: why the result file could not be read, when it exists but is unusable
    result_error: str | None = None
    #: where the check ran: the grading sandbox's provider (and isolation)
    sandbox: str = ""

    def describe(self) -> str:
        """One line on how the worker process ended (for result details)."""
        if self.timed_out:
            how = f"was killed after the {self.seconds:.1f}s wall-clock limit"
        else:
            how = f"exited with status {self.exit_code}"
        tail = self.log.strip()[-600:]
        return f"the checker process {how}" + (f"; its stderr ends with: {tail}" if tail else "")


@functools.cache
def _worker_source() -> bytes:
    with open(WORKER_PATH, "rb") as fh:
        return fh.read()


async def run_job(
    job: dict[str, Any],
    graded: GradingSandbox,
    *,
    timeout: float,
    max_result_bytes: int = 1 << 20,
) -> JobOutcome:
    """Run ``job`` in the grading sandbox ``graded`` with a wall-clock ``timeout``
    (the caller opens and closes the sandbox: one fresh sandbox per check)."""
    sandbox = graded.sandbox
    await sandbox.write_file(JOB_FILE, pickle.dumps(job, protocol=pickle.HIGHEST_PROTOCOL))
    await sandbox.write_file(WORKER_FILE, _worker_source())
    # stdout is dropped; stderr goes to a file capped by a file-size limit (a flood
    # fills no disk) whose tail is shown
    command = (f"(ulimit -f {FILE_LIMIT_BLOCKS}; exec {_quote(graded.python)} -I {WORKER_FILE} {JOB_FILE} "
               f"{RESULT_FILE} {STARTED_FILE} >/dev/null 2>worker.log); rc=$?; "
               f"tail -c {LOG_LIMIT} worker.log; exit $rc")
    started_at = time.perf_counter()
    res = await sandbox.run(command, timeout=timeout)
    seconds = time.perf_counter() - started_at
    started = (await sandbox.stat(STARTED_FILE)).exists
    result: bytes | None = None
    result_error = None
    try:
        result = await sandbox.read_file(RESULT_FILE, max_bytes=max_result_bytes)
    except FileNotFoundError:
        pass
    except OSError as exc:  # too large, a directory, a symlink out of the sandbox...
        result_error = f"{type(exc).__name__}: {exc}"
    return JobOutcome(
        result=result,
        started=started,
        timed_out=res.timed_out,
        exit_code=res.exit_code,
        log=res.output,
        seconds=seconds,
        result_error=result_error,
    )


async def run_check(
    job: dict[str, Any],
    provider: SandboxProvider | None,
    needs: EnvSpec,
    *,
    timeout: float,
    label: str = "",
    max_result_bytes: int = 1 << 20,
) -> JobOutcome:
    """Run ``job`` in a fresh grading sandbox from the run's ``provider`` with the
    environment ``needs`` (the one path every code check takes)."""
    from react_eval.grading.sandbox import grading_sandbox

    labels = {"task_id": f"check-{label}" if label else "check"}
    async with grading_sandbox(provider, None, needs, labels=labels) as graded:
        outcome = await run_job(job, graded, timeout=timeout, max_result_bytes=max_result_bytes)
    outcome.sandbox = graded.provider + (f":{graded.isolation}" if graded.isolation else "")
    return outcome


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def parse_json_result(outcome: JobOutcome) -> dict[str, Any] | None:
    """The result file as a JSON object, or None if missing or garbled."""
    if outcome.result is None:
        return None
    try:
        value = json.loads(outcome.result)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


# ---- worker side ------------------------------------------------------------------


class _Deadline(BaseException):
    """The test program's time limit passed (BaseException: `except Exception` in
    the candidate cannot swallow it)."""


class _Discard(io.TextIOBase):
    """A text sink for the candidate's prints."""

    def writable(self) -> bool:
        return True

    def write(self, s: str) -> int:
        return len(s)


def _failure_text(exc: BaseException, program: str) -> str:
    """``Type: message`` plus the program line that raised, capped."""
    try:
        text = f"{type(exc).__name__}: {exc}"
    except BaseException:
        text = type(exc).__name__
    try:
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == "<candidate>"]
        if frames and frames[-1].lineno:
            lines = program.splitlines()
            lineno = frames[-1].lineno
            if 0 < lineno <= len(lines):
                text += f" (line {lineno}: {lines[lineno - 1].strip()[:300]})"
    except BaseException:
        pass
    return text[:2000]


def _run_python_program(job: dict[str, Any], mark_started: Callable[[], None]) -> bytes:
    """Execute ``job["program"]`` with a time limit; pass means no exception."""
    import resource

    program: str = job["program"]
    limit = float(job["timeout"])
    memory = job.get("memory_limit_bytes", DEFAULT_MEMORY_LIMIT)
    scratch = os.path.abspath("scratch")
    os.makedirs(scratch, exist_ok=True)
    os.chdir(scratch)
    mark_started()
    if memory:
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        cap = memory if hard == resource.RLIM_INFINITY else min(memory, hard)
        resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    armed = [True]

    def on_alarm(signum: int, frame: Any) -> None:
        if armed[0]:
            raise _Deadline()

    status, error = "pass", None
    sink = _Discard()
    begin = time.perf_counter()
    signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            code = compile(program, "<candidate>", "exec")
            exec(code, {"__name__": "__candidate__", "__builtins__": builtins})
    except _Deadline:
        status, error = "timeout", f"the test program ran longer than {limit:g}s"
    except BaseException as exc:
        status, error = "fail", _failure_text(exc, program)
    finally:
        armed[0] = False
        signal.setitimer(signal.ITIMER_REAL, 0)
    elapsed = time.perf_counter() - begin
    return json.dumps({"status": status, "error": error, "seconds": round(elapsed, 4)}).encode()


def _evalplus_groundtruth(job: dict[str, Any], mark_started: Callable[[], None]) -> bytes:
    """Expected outputs and reference times from the canonical solution, as
    evalplus' own ``get_groundtruth`` computes them."""
    from evalplus.eval._special_oracle import MBPP_OUTPUT_NOT_NONE_TASKS
    from evalplus.gen.util import trusted_exec

    code = job["prompt"] + job["canonical_solution"]
    entry_point = job["entry_point"]
    output_not_none = job["dataset"] == "mbpp" and entry_point in MBPP_OUTPUT_NOT_NONE_TASKS
    out: dict[str, Any] = {}
    for split in ("base", "plus"):
        out[split], out[f"{split}_time"] = trusted_exec(
            code, job[f"{split}_input"], entry_point, record_time=True, output_not_none=output_not_none
        )
    return pickle.dumps(out, protocol=pickle.HIGHEST_PROTOCOL)


def _evalplus_check(job: dict[str, Any], mark_started: Callable[[], None]) -> bytes:
    """Base then plus tests through evalplus' ``untrusted_check`` (the function
    ``evalplus.evaluate.check_correctness`` calls), with evalplus' time limits."""
    from evalplus.eval import untrusted_check

    expected = job["expected"]
    verdict: dict[str, Any] = {}
    mark_started()
    for split in ("base", "plus"):
        inputs = job[f"{split}_input"]
        status, details = untrusted_check(
            job["dataset"],
            job["solution"],
            inputs,
            job["entry_point"],
            expected=expected[split],
            atol=job["atol"],
            ref_time=expected[f"{split}_time"],
            fast_check=job["fast_check"],
            min_time_limit=job["min_time_limit"],
            gt_time_limit_factor=job["gt_time_limit_factor"],
        )
        details = [bool(d) for d in details]
        verdict[split] = {
            "status": status,
            "passed": sum(details),
            "tested": len(details),
            "total": len(inputs),
        }
    return json.dumps(verdict).encode()


_KINDS: dict[str, Callable[[dict[str, Any], Callable[[], None]], bytes]] = {
    "python_program": _run_python_program,
    "evalplus_groundtruth": _evalplus_groundtruth,
    "evalplus_check": _evalplus_check,
}


def worker_main(argv: list[str]) -> int:
    """``code_exec.py JOB RESULT STARTED``: run the job, write the result file."""
    if len(argv) != 4:
        print("usage: code_exec.py JOB_FILE RESULT_FILE STARTED_FILE", file=sys.stderr)
        return 2
    job_path, result_path, started_path = (os.path.abspath(p) for p in argv[1:])
    with open(job_path, "rb") as f:
        job = pickle.load(f)
    os.unlink(job_path)  # expected outputs are not left where the candidate could read them
    kind = job.get("kind")
    if kind not in _KINDS:
        print(f"unknown job kind {kind!r}", file=sys.stderr)
        return 2

    def mark_started() -> None:
        with open(started_path, "wb"):
            pass

    payload = _KINDS[kind](job, mark_started)
    tmp = result_path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(payload)
    os.replace(tmp, result_path)
    return 0


if __name__ == "__main__":
    sys.exit(worker_main(sys.argv))
