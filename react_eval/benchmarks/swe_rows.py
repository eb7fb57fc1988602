"""SWE-bench rows: the instance model and the dataset reader every SWE benchmark shares.

A dataset is a JSONL file (one row a line) or a JSON array of rows, with
SWE-bench's field names. Reading never stops at the first bad row: every bad
line (not JSON) and every bad row (a missing or ill-typed field) is collected,
each named by its line or row and its field, and raised together as one
:class:`DatasetError`, so a user fixes the file in one pass.
"""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from react_eval.benchmarks.patches import BASE_REF

#: the most problems one DatasetError message lists (all are kept in ``problems``)
SHOWN_PROBLEMS = 20


class SweInstance(BaseModel):
    """One task in SWE-bench's field layout (extra fields are kept)."""

    model_config = ConfigDict(extra="allow")

    instance_id: str
    repo: str = ""
    base_commit: str = BASE_REF
    problem_statement: str
    hints_text: str = ""
    created_at: str = ""
    version: str = ""
    patch: str = ""
    test_patch: str = ""
    FAIL_TO_PASS: list[str]
    PASS_TO_PASS: list[str] = []
    environment_setup_commit: str = ""

    @field_validator("FAIL_TO_PASS", "PASS_TO_PASS", mode="before")
    @classmethod
    def _json_list(cls, value: Any) -> Any:
        """SWE-bench stores the test lists as JSON-encoded strings."""
        if isinstance(value, str):
            value = orjson.loads(value) if value.strip() else []
        return value

    def row(self, *, encode_lists: bool = True) -> dict[str, Any]:
        """The instance as a SWE-bench row (test lists JSON-encoded, like its files)."""
        data = self.model_dump()
        if encode_lists:
            for key in ("FAIL_TO_PASS", "PASS_TO_PASS"):
                data[key] = orjson.dumps(data[key]).decode()
        return data


class DatasetError(ValueError):
    """Bad lines or rows of a dataset file: every one, each naming where it is and which field."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = list(problems)
        shown = "\n".join(f"  {p}" for p in problems[:SHOWN_PROBLEMS])
        more = f"\n  ... and {len(problems) - SHOWN_PROBLEMS} more" if len(problems) > SHOWN_PROBLEMS else ""
        super().__init__(f"{source}: {len(problems)} problem(s); the file is unchanged and nothing was run:\n"
                         f"{shown}{more}")


def where(source: str, number: int, line: int | None, row: Any = None) -> str:
    """``FILE: row N (line L, instance_id 'x')``: how a problem names its row."""
    bits = [f"line {line}"] if line is not None else []
    if isinstance(row, dict) and isinstance(row.get("instance_id"), str):
        bits.append(f"instance_id {row['instance_id']!r}")
    return f"{source}: row {number}" + (f" ({', '.join(bits)})" if bits else "")


def read_rows(data: bytes, source: str, problems: list[str]) -> list[tuple[int | None, Any]]:
    """The rows of a JSONL file or JSON array as ``(line number or None, row)``;
    lines that are not JSON are added to ``problems``."""
    text = data.strip()
    if text.startswith(b"["):
        try:
            return [(None, row) for row in orjson.loads(text)]
        except orjson.JSONDecodeError as exc:
            problems.append(f"{source}: not a JSON array: {exc}")
            return []
    rows: list[tuple[int | None, Any]] = []
    for number, line in enumerate(data.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append((number, orjson.loads(line)))
        except orjson.JSONDecodeError as exc:
            problems.append(f"{source}:{number}: not a JSON object: {exc}")
    return rows


def field_problems(exc: ValidationError) -> list[str]:
    """One ``field: message`` per error of a row that is not a SWE-bench instance."""
    out = []
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"]) or "(the row)"
        out.append(f"{field}: {error['msg']}")
    return out


def parse_instances(data: bytes, source: str, problems: list[str]) -> list[tuple[str, dict, SweInstance]]:
    """Every good row as ``(where it is, raw row, instance)``; every bad one into ``problems``."""
    found: list[tuple[str, dict, SweInstance]] = []
    seen: dict[str, int] = {}
    for number, (line, row) in enumerate(read_rows(data, source, problems), 1):
        at = where(source, number, line, row)
        if not isinstance(row, dict):
            problems.append(f"{at}: is a JSON {type(row).__name__}, not an object with SWE-bench's fields")
            continue
        try:
            inst = SweInstance.model_validate(row)
        except ValidationError as exc:
            problems.extend(f"{at} is not a SWE-bench instance: {p}" for p in field_problems(exc))
            continue
        if inst.instance_id in seen:
            problems.append(f"{at}: instance_id: duplicate of row {seen[inst.instance_id]}")
            continue
        seen[inst.instance_id] = number
        found.append((at, row, inst))
    return found


def load_instances(data: bytes, source: str = "dataset") -> list[SweInstance]:
    """Rows of a JSONL file, or of a JSON array; :class:`DatasetError` naming every bad one."""
    problems: list[str] = []
    found = parse_instances(data, source, problems)
    if problems:
        raise DatasetError(source, problems)
    return [inst for _, _, inst in found]
