"""A finished rollout as the two JSONL lines a run writes (result row, trajectory).

:class:`RecordEncoder` turns a :class:`~react_eval.engine.rollout.RolloutRecord`
into those lines: the row dumped from the validated result (text orjson refuses
becomes U+FFFD), API keys replaced by ``***`` in both lines. It pickles, so a
worker process encodes its own records and sends bytes the parent appends as
they are, instead of a pydantic object the parent would unpickle and dump again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import orjson

from react_eval.engine.results import RolloutResult
from react_eval.engine.rollout import RolloutRecord
from react_eval.jsonsafe import clean_json
from react_eval.types import ErrorKind

#: the fields of a row the parent needs without parsing it (progress, the fatal check)
HEAD_FIELDS = ("task_id", "repeat", "error_kind", "error", "passed", "reward")


@dataclass(slots=True)
class EncodedRecord:
    """One rollout's lines, ready to append, and the few row fields the parent reads."""

    head: dict[str, Any]
    row: bytes
    trajectory: bytes | None

    @property
    def fatal(self) -> bool:
        """A rejected key (see :func:`~react_eval.engine.executor.is_fatal`)."""
        return self.head.get("error_kind") == ErrorKind.auth_error.value


def redact(data: bytes | None, keys: list[bytes]) -> bytes | None:
    """``data`` with every key replaced by ``***`` (the same object when none occurs)."""
    if data is None or not any(k in data for k in keys):
        return data
    for k in keys:
        data = data.replace(k, b"***")
    return data


class RecordEncoder:
    """Encodes records the same way wherever they were produced; ``keys`` are the
    run's API keys as they appear in JSON (never written out)."""

    def __init__(self, keys: list[bytes]):
        self.keys = keys

    def __call__(self, record: RolloutRecord) -> EncodedRecord:
        """Also updates ``record.result`` when the row had to change (cleaned text, a
        redacted key), so that an error raised from it says what was written."""
        row = record.result.model_dump(mode="json")
        try:
            raw = data = orjson.dumps(row)
        except TypeError:  # text orjson refuses (a lone surrogate from some server): written as U+FFFD
            row = clean_json(row)
            raw = data = orjson.dumps(row)
            record.result = RolloutResult.model_validate(row)
        trajectory = record.trajectory
        if self.keys:  # a server may echo the key in an error message: it is never written out
            data, trajectory = redact(raw, self.keys), redact(trajectory, self.keys)
            if data is not raw:
                row = orjson.loads(data)
                record.result = RolloutResult.model_validate(row)  # e.g. the message of a fatal 401
        return EncodedRecord({k: row.get(k) for k in HEAD_FIELDS}, data, trajectory)


class RecordSink:
    """A run's ``on_done``: encodes a record (unless it arrives encoded) and hands
    the lines to ``write``. An executor whose rollouts run elsewhere may send
    ``encoder`` there and call the sink with the :class:`EncodedRecord` it got back."""

    def __init__(self, encoder: RecordEncoder, write: Callable[[EncodedRecord], None]):
        self.encoder = encoder
        self.write = write

    def __call__(self, record: RolloutRecord | EncodedRecord) -> None:
        self.write(record if isinstance(record, EncodedRecord) else self.encoder(record))
