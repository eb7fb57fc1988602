"""Per-rollout result rows and the append-only files they stream into.

Each finished rollout appends one line to ``trajectories.jsonl`` and one to
``results.jsonl``. :class:`RolloutFiles` writes them from a background thread
in batches (within ``flush_interval`` seconds, sooner when much is queued), so
the event loop never waits on the disk; in every batch the trajectories are
written and flushed before the results lines, so a row there always has its
trajectory. A process killed mid-write leaves at most a torn last line, which
:func:`read_jsonl` drops (and a kill loses at most the last batch: those
rollouts are re-run by ``--resume``).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any, Iterator

import orjson
from pydantic import BaseModel, Field

from react_eval.types import INFRA_ERROR_KINDS, ErrorKind


class RolloutResult(BaseModel):
    """One row of results.jsonl."""

    run_id: str
    benchmark: str
    task_id: str
    repeat: int
    rollout_id: str
    reward: float | None = None
    passed: bool = False
    error_kind: ErrorKind | None = None
    error: str | None = None
    turns: int = 0
    tool_calls: int = 0
    tool_errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    model_latency_ms: float = 0.0
    tool_latency_ms: float = 0.0
    wall_ms: float = 0.0
    started_at: str
    finished_at: str
    model: str | None = None
    final_message: str = ""
    artifact: str | None = None
    verification: dict[str, Any] = Field(default_factory=dict)
    #: tool name -> [calls, errors]
    tool_stats: dict[str, list[int]] = Field(default_factory=dict)
    #: the first tool call that failed: tool, turn, exit_code, error_kind, message
    first_tool_failure: dict[str, Any] | None = None

    @property
    def is_infra_failure(self) -> bool:
        return self.error_kind in INFRA_ERROR_KINDS

    def key(self) -> tuple[str, int]:
        return self.task_id, self.repeat


class JsonlAppender:
    """An append-only JSONL file, flushed after every line."""

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        _drop_torn_tail(path)
        self._fh = open(path, "ab")

    def append(self, row: bytes | dict[str, Any]) -> None:
        data = row if isinstance(row, bytes) else orjson.dumps(row)
        self._fh.write(data + b"\n")
        self._fh.flush()

    def write_lines(self, lines: list[bytes]) -> None:
        """Append several lines with one write, then flush."""
        self._fh.write(b"\n".join(lines) + b"\n")
        self._fh.flush()

    def sync(self) -> None:
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        if not self._fh.closed:
            self.sync()
            self._fh.close()


class RolloutFiles:
    """``trajectories.jsonl`` and ``results.jsonl`` of a run, appended off the event loop.

    :meth:`add` only queues the two lines (no system call, no thread woken); a
    writer thread appends what is queued every ``flush_interval``, trajectories
    first, each file flushed after its batch. While nothing is queued its timer
    backs off (doubling, up to ``IDLE_WAITS`` intervals), so that a slow run
    (one rollout a second) is not woken five times a second by it; the first
    batch after a pause goes out within that longer wait. A write error is
    raised by the next :meth:`add` or by :meth:`close`.
    """

    #: the longest wait of an idle writer, in flush intervals
    IDLE_WAITS = 10

    def __init__(self, out_dir: Path, *, flush_interval: float = 0.2, max_pending: int = 1 << 20):
        self.trajectories = JsonlAppender(out_dir / "trajectories.jsonl")
        self.results = JsonlAppender(out_dir / "results.jsonl")
        self.flush_interval = flush_interval
        self.max_pending = max_pending
        self.batches = 0  # flushes done (for tests and the benchmark)
        self._traj: list[bytes] = []
        self._rows: list[bytes] = []
        self._pending = 0
        self._closing = False
        self._error: BaseException | None = None
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="react-eval-writer", daemon=True)
        self._thread.start()

    def add(self, trajectory: bytes | None, row: bytes | dict[str, Any]) -> None:
        """Queue one rollout's trajectory (if any) and result row."""
        if self._error is not None:
            raise OSError(f"writing {self.results.path.parent} failed: {self._error}") from self._error
        data = row if isinstance(row, bytes) else orjson.dumps(row)
        with self._cond:
            if self._closing:
                raise ValueError("RolloutFiles is closed")
            if trajectory is not None:
                self._traj.append(trajectory)
                self._pending += len(trajectory)
            self._rows.append(data)
            self._pending += len(data)
            if self._pending >= self.max_pending:
                self._cond.notify()

    def _run(self) -> None:
        wait = self.flush_interval
        while True:
            with self._cond:
                if not self._closing and self._pending < self.max_pending:
                    self._cond.wait(wait)
                # lines queued: the next batch an interval from now; none: wait longer
                wait = self.flush_interval if self._rows else min(wait * 2, self.flush_interval * self.IDLE_WAITS)
                traj, rows = self._traj, self._rows
                self._traj, self._rows, self._pending = [], [], 0
                closing = self._closing
            if traj or rows:
                try:
                    if traj:
                        self.trajectories.write_lines(traj)
                    self.results.write_lines(rows)
                    self.batches += 1
                except BaseException as exc:  # keep the first error for add()/close()
                    self._error = self._error or exc
            if closing:
                return

    def close(self) -> None:
        """Write everything queued, fsync both files and stop the writer."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        self._thread.join()
        try:
            self.trajectories.close()
            self.results.close()
        except OSError as exc:
            self._error = self._error or exc
        if self._error is not None:
            raise OSError(f"writing {self.results.path.parent} failed: {self._error}") from self._error


def _drop_torn_tail(path: Path) -> None:
    """Cut a last line that has no newline (a write interrupted by a crash)."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with open(path, "rb+") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        fh.seek(max(0, size - 1))
        if fh.read(1) == b"\n":
            return
        # find the last newline and truncate after it
        block = 1 << 16
        pos = size
        while pos > 0:
            start = max(0, pos - block)
            fh.seek(start)
            chunk = fh.read(pos - start)
            idx = chunk.rfind(b"\n")
            if idx >= 0:
                fh.truncate(start + idx + 1)
                return
            pos = start
        fh.truncate(0)


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """Rows of a JSONL file; a torn final line is skipped, a corrupt inner line raises."""
    if not path.exists():
        return
    with open(path, "rb") as fh:
        lines = fh.read().split(b"\n")
    last = len(lines) - 1
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            yield orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            if number - 1 == last:  # no newline after it: torn by a crash
                return
            raise ValueError(f"{path}:{number}: corrupt JSON line: {exc}") from None


def load_results(path: Path) -> list[RolloutResult]:
    return [RolloutResult.model_validate(row) for row in read_jsonl(path)]
