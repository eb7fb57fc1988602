"""Timestamps of steps and rows (react_eval.timestamps): datetime's own ISO 8601 forms, made without a datetime."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from react_eval import timestamps
from react_eval.trajectories import TrajectoryRecorder


@pytest.mark.parametrize("ns", [0, 1_700_000_000_000_000_000, 1_700_000_000_123_456_789, 1_700_000_000_000_001_000,
                                1_700_000_059_999_999_999, 1_700_000_060_000_000_000, 4_102_444_799_500_000_000])
def test_stamp_is_what_isoformat_writes(monkeypatch, ns):
    monkeypatch.setattr(timestamps.time, "time_ns", lambda: ns)
    expected = datetime.fromtimestamp(ns // 1000 / 1e6, timezone.utc).replace(
        microsecond=(ns // 1000) % 1_000_000).isoformat()
    assert timestamps.utc_now_iso() == expected
    assert timestamps.utc_now_iso_ms() == datetime.fromisoformat(expected).isoformat(timespec="milliseconds")


def test_steps_of_one_second_share_the_formatted_second_but_not_the_fraction(monkeypatch):
    clock = iter([1_700_000_000_000_001_000, 1_700_000_000_900_000_000, 1_700_000_001_000_000_000])
    monkeypatch.setattr(timestamps.time, "time_ns", lambda: next(clock))
    stamps = [timestamps.utc_now_iso() for _ in range(3)]
    assert stamps == ["2023-11-14T22:13:20.000001+00:00", "2023-11-14T22:13:20.900000+00:00",
                      "2023-11-14T22:13:21+00:00"]


def test_default_clock_stamps_steps_now_and_a_given_clock_still_wins():
    before = datetime.now(timezone.utc)
    rec = TrajectoryRecorder(session_id="s", agent_version="1", model_name=None, tool_definitions=[])
    rec.user("hi")
    stamp = datetime.fromisoformat(rec.finish().steps[0].timestamp)
    assert before <= stamp <= datetime.now(timezone.utc)
    pinned = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    rec = TrajectoryRecorder(session_id="s", agent_version="1", model_name=None, tool_definitions=[],
                             clock=lambda: pinned)
    rec.user("hi")
    assert rec.finish().steps[0].timestamp == "2024-01-02T03:04:05+00:00"
