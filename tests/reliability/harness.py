"""Helpers of the reliability suite: whole runs (in-process or through the CLI),
the scripted model per task, and the checks every fault row makes -- the run
finished, nothing was lost, nothing leaked."""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio

from react_eval.engine.config import validate_config
from react_eval.engine.results import RolloutResult, load_results
from react_eval.engine.run import RunOptions, bench_dir_name, run_eval
from tests.reliability.bench import NAME, task_of, write_tasks
from tests.support.scripted_server import Reply, ScriptedRequest, answer, tool_call

REPO = Path(__file__).resolve().parents[2]
#: every sandbox of a reliability run gets this variable (with a per-run value)
#: in its environment, so the processes it started can be found on the host
MARKER_VAR = "REACT_EVAL_RELIABILITY"


# ---------------------------------------------------------------- the scripted model


def last_output(req: ScriptedRequest) -> str:
    """The content of the last tool result the model was sent ("" if none)."""
    if not req.tool_results:
        return ""
    last = req.tool_results[-1]
    return last["content"] if "content" in last else last["output"]


def echo_answer(req: ScriptedRequest) -> Any:
    """Answer with the last tool output as the ANSWER line."""
    return answer(f"ANSWER: {last_output(req).strip()}")


def echo_steps(token: str) -> list[Any]:
    """A bash call that prints ``token``, then an answer read from its output:
    the reward is 1 only if the tool really ran after whatever came before."""
    return [tool_call("bash", {"command": f"echo {token}"}), echo_answer]


class ByTask:
    """A policy with one FIFO of replies per task (the ``[task:<id>]`` of the
    prompt); an entry may be a callable of the request. Deterministic under any
    interleaving, and a retried request takes the next entry."""

    def __init__(self, scripts: dict[str, Sequence[Any]]):
        self.queues = {k: collections.deque(v) for k, v in scripts.items()}
        self.requests: dict[str, list[ScriptedRequest]] = collections.defaultdict(list)
        self._lock = threading.Lock()

    def __call__(self, req: ScriptedRequest) -> Any:
        key = task_of(req.first_user_text)
        with self._lock:
            self.requests[key].append(req)
            queue = self.queues.get(key)
            if not queue:
                raise AssertionError(f"no reply left for task {key!r} (turn {req.turn})")
            reply = queue.popleft()
        while callable(reply) and not isinstance(reply, Reply):  # an entry may return another callable
            reply = reply(req)
        return reply

    def unused(self) -> dict[str, int]:
        with self._lock:
            return {k: len(q) for k, q in self.queues.items() if q}


# ---------------------------------------------------------------- configs and runs


def new_marker() -> str:
    return "m" + uuid.uuid4().hex[:12]  # starts with a letter: stays a string in YAML


def config(model_url: str, tasks_file: Path, *, sandbox: dict[str, Any] | None = None, marker: str | None = None,
           service: dict[str, Any] | None = None, solver: dict[str, Any] | None = None, repeats: int = 1,
           max_concurrent: int = 8, out: Path | None = None) -> dict[str, Any]:
    """A run config of the ``reliability`` benchmark (a dict, for YAML or validate_config)."""
    sb = dict(sandbox or {"type": "local"})
    if marker is not None:
        sb["env"] = {**sb.get("env", {}), MARKER_VAR: marker}
    data = {
        "services": {"model": {"type": "api", "base_url": model_url, "model": "scripted", "max_attempts": 3,
                               "retry_initial_wait": 0.05, "retry_max_wait": 2.0, **(service or {})}},
        "sandboxes": {"box": sb},
        "benchmarks": [{"name": NAME, "repeats": repeats, "max_concurrent": max_concurrent, "sandbox": "box",
                        "options": {"tasks": str(tasks_file)},
                        "solver": {"type": "tool_calling", "service": "model", "max_turns": 8,
                                   "tool_timeout": 20, **(solver or {})}}],
    }
    if out is not None:
        data["output"] = {"dir": str(out)}
    return data


@dataclass
class Run:
    """A finished run of one benchmark: its rows and trajectories, by task id."""

    out_dir: Path
    summary: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def results(self) -> list[RolloutResult]:
        return load_results(self.out_dir / "results.jsonl")

    def rows(self) -> dict[str, RolloutResult]:
        """Rows by task id (repeats 1 only)."""
        rows = self.results
        out = {r.task_id: r for r in rows}
        assert len(out) == len(rows), "several rows per task: use .results"
        return out

    def trajectories(self) -> dict[tuple[str, int], dict[str, Any]]:
        path = self.out_dir / "trajectories.jsonl"
        out = {}
        for line in path.read_text().splitlines() if path.exists() else []:
            doc = json.loads(line)
            key = (doc["extra"]["task_id"], doc["extra"]["repeat"])
            assert key not in out, f"two trajectories for {key}"
            out[key] = doc
        return out

    def trajectory(self, task_id: str, repeat: int = 0) -> dict[str, Any]:
        return self.trajectories()[(task_id, repeat)]


def run_in_process(data: dict[str, Any], out: Path, *, options: RunOptions | None = None) -> Run:
    """Run a config through the engine in this process (``run_eval``)."""
    cfg = validate_config(data)
    runs = anyio.run(lambda: run_eval(cfg, output_dir=out, options=options))
    (bench,) = runs
    return Run(out / bench_dir_name(NAME), bench.summary, bench.error)


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """The real ``react-eval`` CLI in a subprocess (with ``reliability`` registered)."""
    return subprocess.run([sys.executable, "-m", "tests.reliability.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO, env={**os.environ, "COLUMNS": "400", **(env or {})})


def cli_started(*args: str) -> subprocess.Popen:
    """The real CLI as :func:`cli` runs it, started and not waited for (a test acts while it runs)."""
    return subprocess.Popen([sys.executable, "-m", "tests.reliability.cli", *args], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def write_yaml(path: Path, data: dict[str, Any]) -> Path:
    import yaml

    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


# ---------------------------------------------------------------- the checks of every row


def assert_complete(run: Run, keys: Iterable[tuple[str, int]]) -> None:
    """Nothing lost, nothing doubled: one result row and one trajectory per
    (task, repeat), and nothing else."""
    expected = sorted(keys)
    rows = sorted(r.key() for r in run.results)
    assert rows == expected, f"result rows {rows} != expected {expected}"
    assert sorted(run.trajectories()) == expected


def observations(trajectory: dict[str, Any]) -> list[dict[str, Any]]:
    """Every tool result of a trajectory, in order."""
    return [res for step in trajectory["steps"] if step.get("observation")
            for res in step["observation"]["results"]]


def error_events(trajectory: dict[str, Any]) -> list[dict[str, Any]]:
    events = list((trajectory.get("extra") or {}).get("events", []))
    for step in trajectory["steps"]:
        events += (step.get("extra") or {}).get("events", [])
    return [e for e in events if e.get("kind") == "error"]


def _proc_state(pid: str) -> str | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0].decode()
    except (OSError, IndexError):
        return None


def marked_processes(marker: str) -> list[str]:
    """Live host processes (container and namespace members included) whose
    environment holds ``REACT_EVAL_RELIABILITY=<marker>``: "pid cmdline" each."""
    needle = f"{MARKER_VAR}={marker}".encode()
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                if needle not in f.read().split(b"\0"):
                    continue
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if _proc_state(pid) not in (None, "Z", "X"):
            found.append(f"{pid} {cmd}")
    return found


def child_processes() -> list[str]:
    """Processes whose parent is this test process (zombies included: unreaped is leaked)."""
    me = str(os.getpid())
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if fields[2].decode() == me:
            found.append(f"{pid} state={fields[0].decode()}")
    return found


def labelled_containers(run_id: str) -> list[str]:
    out = subprocess.run(["docker", "ps", "-a", "--filter", f"label=react-eval.run={run_id}",
                          "--format", "{{.ID}} {{.Status}}"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()


def wait_for(check: Callable[[], Any], within: float = 30.0, every: float = 0.1) -> Any:
    """Poll ``check`` until it returns a truthy value or ``within`` seconds pass;
    returns the last value (a bounded wait, never a timing assertion)."""
    import time

    deadline = time.monotonic() + within
    value = check()
    while not value and time.monotonic() < deadline:
        time.sleep(every)
        value = check()
    return value


def assert_no_leaks(marker: str, *, run_id: str | None = None, children_before: Iterable[str] = ()) -> None:
    """No process of the run's sandboxes is alive, no child of this test is left
    (or unreaped), and no container of the run exists."""
    wait_for(lambda: not marked_processes(marker), within=5)  # the kernel may take a moment to reap
    left = marked_processes(marker)
    assert left == [], f"sandbox processes left behind: {left}"
    before = {c.split()[0] for c in children_before}
    extra = [c for c in child_processes() if c.split()[0] not in before]
    assert extra == [], f"child processes of the test left behind: {extra}"
    if run_id is not None:
        assert labelled_containers(run_id) == [], f"containers of run {run_id} left behind"


__all__ = [
    "ByTask", "MARKER_VAR", "REPO", "Run", "assert_complete", "assert_no_leaks", "child_processes", "cli", "config",
    "echo_answer", "echo_steps", "error_events", "labelled_containers", "last_output", "marked_processes",
    "new_marker", "observations", "run_in_process", "wait_for", "write_tasks", "write_yaml",
]
