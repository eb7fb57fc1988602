"""RolloutFiles: batched, off-loop writes that keep the files' guarantees."""

from __future__ import annotations

import time

import orjson
import pytest

from react_eval.engine.results import RolloutFiles, read_jsonl


def traj(i: int) -> bytes:
    return orjson.dumps({"session_id": f"s{i}", "steps": [{"step_id": 1}]})


def row(i: int) -> dict:
    return {"task_id": f"t{i}", "repeat": 0}


def test_everything_added_is_written_in_order_and_in_few_batches(tmp_path):
    files = RolloutFiles(tmp_path, flush_interval=60.0)  # only close() or a full buffer flushes
    for i in range(500):
        files.add(traj(i), row(i))
    files.add(None, row(500))  # a rollout without a trajectory
    assert not (tmp_path / "results.jsonl").read_bytes()  # nothing written on the caller's thread
    files.close()
    assert [r["task_id"] for r in read_jsonl(tmp_path / "results.jsonl")] == [f"t{i}" for i in range(501)]
    assert [t["session_id"] for t in read_jsonl(tmp_path / "trajectories.jsonl")] == [f"s{i}" for i in range(500)]
    assert files.batches == 1


def test_lines_reach_the_disk_without_close(tmp_path):
    files = RolloutFiles(tmp_path, flush_interval=0.05)
    files.add(traj(1), row(1))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not (tmp_path / "results.jsonl").read_bytes():
        time.sleep(0.01)
    assert list(read_jsonl(tmp_path / "results.jsonl")) == [row(1)]
    assert [t["session_id"] for t in read_jsonl(tmp_path / "trajectories.jsonl")] == ["s1"]
    files.close()


def test_a_full_buffer_is_written_at_once(tmp_path):
    files = RolloutFiles(tmp_path, flush_interval=60.0, max_pending=1000)
    for i in range(200):
        files.add(traj(i), row(i))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and files.batches == 0:
        time.sleep(0.01)
    assert files.batches >= 1  # written long before the 60 s interval
    files.close()
    assert len(list(read_jsonl(tmp_path / "results.jsonl"))) == 200


def test_a_results_row_never_precedes_its_trajectory(tmp_path, monkeypatch):
    """Whenever a results line is written, every trajectory queued with it is already on disk."""
    files = RolloutFiles(tmp_path, flush_interval=0.01, max_pending=200)
    seen: list[tuple[int, int]] = []
    write = type(files.results).write_lines

    def checked(appender, lines):
        if appender is files.results:
            on_disk = len(list(read_jsonl(tmp_path / "trajectories.jsonl")))
            seen.append((on_disk, len(lines)))
        write(appender, lines)

    monkeypatch.setattr(type(files.results), "write_lines", checked)
    for i in range(300):
        files.add(traj(i), row(i))
        if i % 50 == 0:
            time.sleep(0.02)
    files.close()
    written = 0
    for on_disk, n in seen:
        written += n
        assert on_disk >= written
    assert written == 300 and len(seen) > 1


def test_write_errors_surface(tmp_path):
    files = RolloutFiles(tmp_path, flush_interval=60.0)
    files.add(traj(1), row(1))
    files.results._fh.close()  # the next write fails
    with pytest.raises(OSError):
        files.close()


def test_an_idle_writers_timer_backs_off_and_a_queued_line_resets_it(tmp_path, monkeypatch):
    """A slow run is not woken every interval by the writer: its waits double while
    nothing is queued (up to IDLE_WAITS intervals); a line still goes out within one."""
    import threading

    from react_eval.engine import results

    waits: list[float] = []

    class Recording(threading.Condition):
        def wait(self, timeout=None):
            if threading.current_thread().name == "react-eval-writer":  # not Thread.start's own Event
                waits.append(timeout)
            return super().wait(timeout)

    monkeypatch.setattr(results.threading, "Condition", Recording)
    files = RolloutFiles(tmp_path, flush_interval=0.01)
    time.sleep(0.4)  # forty intervals with nothing queued
    assert waits[:5] == [0.01, 0.02, 0.04, 0.08, 0.1] and set(waits[5:]) <= {0.1}
    assert len(waits) < 10
    before = len(waits)
    files.add(traj(1), row(1))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (files.batches == 0 or len(waits) < before + 3):
        time.sleep(0.01)
    assert list(read_jsonl(tmp_path / "results.jsonl")) == [row(1)]
    assert 0.01 in waits[before : before + 2]  # written: the next batch an interval later again
    files.close()
