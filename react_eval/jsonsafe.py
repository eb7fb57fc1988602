"""Values that JSON (and orjson) can always write.

A server may send a lone UTF-16 surrogate (``"\\ud800"``): Python's ``json``
reads it into a ``str`` that no UTF-8 encoder accepts, so the first write of a
row, a trajectory or the next request would fail. Text from outside is
cleaned here once, as it comes in, and once more before anything is written.
This module imports nothing from react_eval: every layer may use it.
"""

from __future__ import annotations

import re
from typing import Any

_SURROGATE = re.compile("[\ud800-\udfff]")
#: integers orjson writes (64-bit); larger ones are not counts anyone sent on purpose
MAX_COUNT = 2**53


def clean_text(text: str) -> str:
    """``text`` with every unpaired surrogate replaced by U+FFFD (the same object when there is none)."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", text)


def clean_json(value: Any) -> Any:
    """``value`` with every string (keys too) cleaned, and integers beyond 64 bits written as text."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_text(k) if isinstance(k, str) else k: clean_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean_json(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**64:
        return str(value)
    return value


def as_count(value: Any) -> int | None:
    """A token count as servers send it (an int, a float such as ``12.0``, a
    numeric string), or None when it is missing, negative, absurd or not a number."""
    if type(value) is int:  # nearly always: one check (a bool is not of type int)
        return value if 0 <= value < MAX_COUNT else None
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")) or not value.is_integer():
            return None
        value = int(value)
    if isinstance(value, int) and 0 <= value < MAX_COUNT:
        return value
    return None
