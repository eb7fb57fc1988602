"""What the file tools share: reads under a cap, the per-file undo history, line helpers.

File content always travels through ``Sandbox.read_file``/``write_file``, never
on a command line, so any bytes are safe.
"""

from __future__ import annotations

import errno
import re
import shlex
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

from react_eval.sandboxes.base import FileTooLargeError, Sandbox
from react_eval.tools.typed import ToolFailure, TypedTool

#: default cap on what file_read / editor view return in one call
DEFAULT_MAX_READ_BYTES = 100_000
#: undo steps kept per file
DEFAULT_HISTORY_DEPTH = 20


class Arguments(BaseModel):
    """Base of the sandbox tools' argument models: unknown keys refused, no
    coercion of strings to numbers; an integral float (``3.0``) is an integer,
    as JSON Schema has it."""

    model_config = ConfigDict(extra="forbid", strict=True)

    @model_validator(mode="before")
    @classmethod
    def _integral_floats(cls, data: Any) -> Any:
        if isinstance(data, dict) and any(isinstance(v, (float, list)) for v in data.values()):
            return {k: _integral(v) for k, v in data.items()}
        return data


def _integral(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_integral(v) for v in value]
    return value


class SandboxFiles:
    """One rollout's sandbox as the file tools see it.

    Keeps a per-file undo history (content before each create, str_replace,
    insert or file_write; at most ``history_depth`` steps per file); None in
    the history means the file did not exist.
    """

    def __init__(self, sandbox: Sandbox, *, max_read_bytes: int = DEFAULT_MAX_READ_BYTES,
                 history_depth: int = DEFAULT_HISTORY_DEPTH):
        self.sandbox = sandbox
        self.max_read_bytes = max_read_bytes
        self.history_depth = history_depth
        self.history: dict[str, list[bytes | None]] = {}

    async def read(self, path: str, *, ranged: bool, hint: str) -> bytes:
        """Whole file under the per-call cap, or (for line ranges) under the
        sandbox's own cap, with messages that say how to read less."""
        try:
            if ranged:
                return await self.sandbox.read_file(path)
            return await self.sandbox.read_file(path, max_bytes=self.max_read_bytes)
        except FileTooLargeError as exc:
            q = shlex.quote(path)
            if ranged:
                raise ToolFailure(
                    f"{path} is {exc.size} bytes, too large to load here; use bash instead, e.g. "
                    f"`sed -n '100,200p' {q}` or `grep -n PATTERN {q}`"
                ) from None
            how = "start_line/end_line" if hint == "file_read" else "view_range"
            raise ToolFailure(
                f"{path} is {exc.size} bytes, over the {exc.limit}-byte limit of one read. Read "
                f"part of it with {how} (e.g. lines 1-200), or use bash: `head -n 200 {q}`, "
                f"`sed -n '200,400p' {q}`, `grep -n PATTERN {q}`"
            ) from None

    async def read_text(self, full: str) -> tuple[bytes, str]:
        """A file to edit: its bytes and its text (UTF-8 only, so an edit loses nothing)."""
        try:
            raw = await self.sandbox.read_file(full)
        except FileTooLargeError as exc:
            raise ToolFailure(f"{full} is {exc.size} bytes, too large to edit here; use bash (e.g. sed)") from None
        try:
            return raw, raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ToolFailure(
                f"{full} is not valid UTF-8 text, so it cannot be edited safely with this tool; use bash"
            ) from None

    async def remember(self, full: str) -> None:
        """Record ``full``'s current content (None if absent) before a write."""
        info = await self.sandbox.stat(full)
        if info.is_dir:
            raise IsADirectoryError(errno.EISDIR, "Is a directory", full)
        if not info.exists:
            self.push(full, None)
            return
        try:
            self.push(full, await self.sandbox.read_file(full))
        except FileTooLargeError:
            self.history.pop(full, None)  # cannot keep it: no undo past this write

    def push(self, full: str, content: bytes | None) -> None:
        stack = self.history.setdefault(full, [])
        stack.append(content)
        if len(stack) > self.history_depth:
            del stack[0]


class FileTool(TypedTool):
    """A typed tool working on the rollout's files (sharing their undo history)."""

    def __init__(self, files: SandboxFiles):
        self.files = files
        self.sandbox = files.sandbox


def lines(text: str) -> list[str]:
    """Lines split on ``\\n`` only (``splitlines`` would also split on \\r, \\f, ...)."""
    if not text:
        return []
    parts = text.split("\n")
    if parts[-1] == "":
        parts.pop()
    return parts


_LINE = re.compile(r"[^\n]*\n|[^\n]+\Z")


def lines_with_ends(text: str) -> list[str]:
    """Lines each keeping its ``\\n`` (the last one may lack it)."""
    return _LINE.findall(text)


def numbered(rows: list[str], first: int) -> str:
    """``cat -n`` style: 6-wide right-aligned number, a tab, the line."""
    return "\n".join(f"{n:6}\t{line}" for n, line in enumerate(rows, start=first))
