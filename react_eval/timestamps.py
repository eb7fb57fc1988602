"""Timestamps for records written on every step: now in UTC, in the ISO 8601 form
``datetime.now(timezone.utc).isoformat()`` writes, at a fraction of its cost.

A step's timestamp was a ``datetime`` built and formatted each time; here the
date and time of day are formatted once a second (steps of one second share
them) and only the fraction is added per call.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone

__all__ = ["utc_now_iso", "utc_now_iso_ms"]

#: (a Unix second, its ISO 8601 form up to the seconds); swapped whole, so threads may share it
_last_second: tuple[int, str] = (0, "1970-01-01T00:00:00")


def _second(second: int) -> str:
    global _last_second
    last = _last_second
    if last[0] != second:
        last = _last_second = (second, datetime.fromtimestamp(second, timezone.utc).isoformat()[:19])
    return last[1]


def utc_now_iso() -> str:
    """Now, as ``datetime.now(timezone.utc).isoformat()`` (microseconds; none written when 0)."""
    second, micro = divmod(time.time_ns() // 1000, 1_000_000)
    head = _second(second)
    return f"{head}.{micro:06d}+00:00" if micro else f"{head}+00:00"


def utc_now_iso_ms() -> str:
    """Now, as ``datetime.now(timezone.utc).isoformat(timespec="milliseconds")``."""
    second, milli = divmod(time.time_ns() // 1_000_000, 1000)
    return f"{_second(second)}.{milli:03d}+00:00"
