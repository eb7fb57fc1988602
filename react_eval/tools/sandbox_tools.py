"""The four sandbox tools the model uses: bash, file_read, file_write, str_replace_editor.

File content always travels through ``Sandbox.read_file``/``write_file``, never
on a command line, so any bytes are safe. Mistakes the model can fix (a wrong
path, a non-unique ``old_str``, a file too large) come back as tool errors with
a message saying what to do; only a dead sandbox raises ``SandboxError``.
"""

from __future__ import annotations

import errno
import re
import shlex
import time
from typing import Any

import anyio

from react_eval.sandboxes.base import FileTooLargeError, Sandbox
from react_eval.sandboxes.shell import decode_output
from react_eval.tools.output import truncate_middle
from react_eval.types import ToolResult, ToolSpec

#: default cap on what file_read / editor view return in one call
DEFAULT_MAX_READ_BYTES = 100_000
#: lines of context shown around an edit
SNIPPET_CONTEXT = 4
#: undo steps kept per file
DEFAULT_HISTORY_DEPTH = 20

_BASH = ToolSpec(
    name="bash",
    description=(
        "Run a command in a persistent bash shell in the sandbox. The working directory, "
        "exported variables and shell functions persist between calls. stdout and stderr are "
        "merged; stdin is /dev/null, so nothing can wait for keyboard input (use non-interactive "
        "flags such as `apt-get -y`). Each call has a time limit: a command that runs longer is "
        "killed. Run servers in the background (`cmd > log.txt 2>&1 &`). Very long output is "
        "cut in the middle, so filter it (grep, head, tail) when you expect a lot."
    ),
    parameters={
        "type": "object",
        "properties": {
            "command": {
                "type": "string",
                "description": "The bash command(s) to run; may span several lines.",
            }
        },
        "required": ["command"],
        "additionalProperties": False,
    },
)

_FILE_READ = ToolSpec(
    name="file_read",
    description=(
        "Read a text file from the sandbox and return its content verbatim (no line numbers). "
        "Relative paths are relative to the sandbox working directory. Large files must be "
        "read in parts with start_line/end_line."
    ),
    parameters={
        "type": "object",
        "properties": {
            "path": {"type": "string", "description": "Path of the file to read."},
            "start_line": {
                "type": "integer",
                "minimum": 1,
                "description": "First line to return (1-based). Default: 1.",
            },
            "end_line": {
                "type": "integer",
                "minimum": -1,
                "description": "Last line to return (inclusive); -1 means the end of the file. Default: -1.",
            },
        },
        "required": ["path"],
        "additionalProperties": False,
    },
)

_FILE_WRITE = ToolSpec(
    name="file_write",
    description=(
        "Write a file in the sandbox, replacing it if it exists and creating missing parent "
        "directories. The content is written exactly as given."
    ),
    parameters={
        "type": "object",
        "properties": {
            "path": {"type": "string", "description": "Path of the file to write."},
            "content": {"type": "string", "description": "The complete new content of the file."},
        },
        "required": ["path", "content"],
        "additionalProperties": False,
    },
)

_EDITOR = ToolSpec(
    name="str_replace_editor",
    description=(
        "View and edit files in the sandbox.\n"
        "* `view`: show a file with line numbers (like `cat -n`), optionally only `view_range` "
        "[start, end] (1-based, inclusive, end -1 = end of file); for a directory, list the "
        "files up to 2 levels deep, excluding hidden ones.\n"
        "* `create`: create a new file with `file_text`; refuses to overwrite an existing file.\n"
        "* `str_replace`: replace `old_str` with `new_str` (default empty). `old_str` must match "
        "exactly one place in the file, including whitespace and indentation; add surrounding "
        "lines to make it unique.\n"
        "* `insert`: insert `new_str` after line `insert_line` (0 = at the top of the file).\n"
        "* `undo_edit`: revert the last change made to the file by this tool or by file_write "
        "(undoing a `create` deletes the file)."
    ),
    parameters={
        "type": "object",
        "properties": {
            "command": {
                "type": "string",
                "enum": ["view", "create", "str_replace", "insert", "undo_edit"],
                "description": "The operation to perform.",
            },
            "path": {"type": "string", "description": "Path of the file or directory."},
            "file_text": {"type": "string", "description": "For `create`: the content of the new file."},
            "old_str": {
                "type": "string",
                "description": "For `str_replace`: the exact text to replace (must occur exactly once).",
            },
            "new_str": {
                "type": "string",
                "description": "For `str_replace`: the replacement text; for `insert`: the text to insert.",
            },
            "insert_line": {
                "type": "integer",
                "minimum": 0,
                "description": "For `insert`: the line after which to insert (0 = top of the file).",
            },
            "view_range": {
                "type": "array",
                "items": {"type": "integer"},
                "minItems": 2,
                "maxItems": 2,
                "description": "For `view` of a file: [start_line, end_line], 1-based; end_line -1 = end of file.",
            },
        },
        "required": ["command", "path"],
        "additionalProperties": False,
    },
)


def sandbox_tool_specs() -> list[ToolSpec]:
    """The tool definitions of :class:`SandboxToolBackend` (no sandbox needed)."""
    return [spec.model_copy(deep=True) for spec in (_BASH, _FILE_READ, _FILE_WRITE, _EDITOR)]


class _ToolError(Exception):
    """A mistake the model can correct: becomes a ``tool_error`` result."""


class _ArgError(Exception):
    """Arguments of the wrong shape: becomes an ``invalid_arguments`` result."""


def _lines(text: str) -> list[str]:
    """Lines split on ``\\n`` only (``splitlines`` would also split on \\r, \\f, ...)."""
    if not text:
        return []
    parts = text.split("\n")
    if parts[-1] == "":
        parts.pop()
    return parts


def _lines_with_ends(text: str) -> list[str]:
    """Lines each keeping its ``\\n`` (the last one may lack it)."""
    return _LINE.findall(text)


_LINE = re.compile(r"[^\n]*\n|[^\n]+\Z")


def _numbered(lines: list[str], first: int) -> str:
    """``cat -n`` style: 6-wide right-aligned number, a tab, the line."""
    return "\n".join(f"{n:6}\t{line}" for n, line in enumerate(lines, start=first))


class SandboxToolBackend:
    """ToolBackend over one rollout's sandbox.

    Keeps a per-file undo history (content before each create, str_replace,
    insert or file_write; at most ``history_depth`` steps per file). Undoing a
    ``create`` (or a file_write that created the file) deletes the file. The
    sandbox is closed by ``aclose`` only when ``owns_sandbox`` is set.
    """

    def __init__(
        self,
        sandbox: Sandbox,
        *,
        max_read_bytes: int = DEFAULT_MAX_READ_BYTES,
        history_depth: int = DEFAULT_HISTORY_DEPTH,
        owns_sandbox: bool = False,
    ):
        self.sandbox = sandbox
        self.max_read_bytes = max_read_bytes
        self.history_depth = history_depth
        self.owns_sandbox = owns_sandbox
        self._history: dict[str, list[bytes | None]] = {}

    async def list_tools(self) -> list[ToolSpec]:
        return sandbox_tool_specs()

    async def aclose(self) -> None:
        self._history.clear()
        if self.owns_sandbox:
            await self.sandbox.close()

    async def call(self, name: str, arguments: dict[str, Any], *, timeout: float) -> ToolResult:
        started = time.perf_counter()
        try:
            if not isinstance(arguments, dict):
                raise _ArgError(f"arguments must be a JSON object, got {type(arguments).__name__}")
            if name == "bash":
                result = await self._bash(arguments, timeout)
            else:
                handler = {
                    "file_read": self._file_read,
                    "file_write": self._file_write,
                    "str_replace_editor": self._editor,
                }.get(name)
                if handler is None:
                    known = ", ".join(s.name for s in sandbox_tool_specs())
                    return ToolResult.error(f"unknown tool {name!r}; available: {known}", "unknown_tool")
                with anyio.fail_after(timeout):
                    result = await handler(arguments, timeout)
        except TimeoutError:
            result = ToolResult.error(f"{name} did not finish within {timeout:g}s", "timeout")
        except _ArgError as exc:
            result = ToolResult.error(str(exc), "invalid_arguments")
        except _ToolError as exc:
            result = ToolResult.error(str(exc), "tool_error")
        except OSError as exc:
            result = ToolResult.error(_describe_os_error(exc), "tool_error")
        result.latency_ms = (time.perf_counter() - started) * 1000
        return result

    # ---- bash ----

    async def _bash(self, args: dict[str, Any], timeout: float) -> ToolResult:
        command = _str(args, "command", required=True)
        if not command.strip():
            raise _ArgError("`command` is empty")
        r = await self.sandbox.exec(command, timeout)
        text = r.output
        trailer = []
        if r.timed_out:
            trailer.append(f"[command timed out after {timeout:g}s and was killed]")
        elif r.exit_code not in (0, None):
            trailer.append(f"[exit code: {r.exit_code}]")
        if r.note:
            trailer.append(f"[note: {r.note}]")
        if trailer:
            if text and not text.endswith("\n"):
                text += "\n"
            text += "\n".join(trailer)
        if not text:
            text = "(no output)"
        kind = "timeout" if r.timed_out else ("nonzero_exit" if r.exit_code != 0 else None)
        return ToolResult(
            content=text,
            is_error=kind is not None,
            error_kind=kind,
            exit_code=r.exit_code,
            truncated=r.dropped_chars > 0,
            extra={"dropped_chars": r.dropped_chars} if r.dropped_chars else {},
        )

    # ---- file_read / file_write ----

    async def _file_read(self, args: dict[str, Any], timeout: float) -> ToolResult:
        path = _str(args, "path", required=True)
        start = _int(args, "start_line")
        end = _int(args, "end_line")
        ranged = start is not None or end is not None
        data = await self._read(path, ranged=ranged, hint="file_read")
        text = decode_output(data)
        if not ranged:
            return ToolResult(content=text if text else "(empty file)")
        lines = _lines_with_ends(text)
        total = len(lines)
        start = 1 if start is None else start
        end = -1 if end is None else end
        if start < 1:
            raise _ToolError(f"start_line must be >= 1, got {start}")
        if end != -1 and end < start:
            raise _ToolError(f"end_line must be -1 or >= start_line ({start}), got {end}")
        if start > max(total, 1):
            raise _ToolError(f"start_line {start} is past the end of {path}, which has {total} lines")
        stop = total if end == -1 else min(end, total)
        chunk = "".join(lines[start - 1 : stop])
        if len(chunk.encode()) > self.max_read_bytes:
            raise _ToolError(
                f"lines {start}-{stop} of {path} are {len(chunk.encode())} bytes, over the "
                f"{self.max_read_bytes}-byte limit of one read; request fewer lines"
            )
        return ToolResult(content=chunk, extra={"start_line": start, "end_line": stop, "total_lines": total})

    async def _file_write(self, args: dict[str, Any], timeout: float) -> ToolResult:
        path = _str(args, "path", required=True)
        content = _str(args, "content", required=True)
        full = self.sandbox.resolve(path)
        await self._remember(full)
        data = content.encode("utf-8", errors="surrogatepass")
        await self.sandbox.write_file(full, data)
        return ToolResult(content=f"Wrote {len(data)} bytes to {full}")

    # ---- the editor ----

    async def _editor(self, args: dict[str, Any], timeout: float) -> ToolResult:
        command = _str(args, "command", required=True)
        path = _str(args, "path", required=True)
        full = self.sandbox.resolve(path)
        if command == "view":
            return await self._view(full, args.get("view_range"), timeout)
        if command == "create":
            return await self._create(full, _str(args, "file_text", required=True))
        if command == "str_replace":
            old = _str(args, "old_str", required=True)
            new = _str(args, "new_str") or ""
            return await self._str_replace(full, old, new)
        if command == "insert":
            line = _int(args, "insert_line")
            if line is None:
                raise _ArgError("`insert_line` is required for the insert command")
            new = _str(args, "new_str")
            if new is None:
                raise _ArgError("`new_str` is required for the insert command")
            return await self._insert(full, line, new)
        if command == "undo_edit":
            return await self._undo(full)
        raise _ArgError(
            f"unknown command {command!r}; use one of view, create, str_replace, insert, undo_edit"
        )

    async def _view(self, full: str, view_range: Any, timeout: float) -> ToolResult:
        info = await self.sandbox.stat(full)
        if not info.exists:
            raise _ToolError(f"The path {full} does not exist.")
        if info.is_dir:
            if view_range is not None:
                raise _ToolError("view_range is only allowed when path is a file, not a directory")
            return await self._list_dir(full, timeout)
        rng = None
        if view_range is not None:
            if (
                not isinstance(view_range, list)
                or len(view_range) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) for v in view_range)
            ):
                raise _ToolError(f"view_range must be a list of two integers, got {view_range!r}")
            rng = (view_range[0], view_range[1])
        data = await self._read(full, ranged=rng is not None, hint="view")
        lines = _lines(decode_output(data))
        total = len(lines)
        first, last = 1, total
        if rng is not None:
            a, b = rng
            if not 1 <= a <= total:
                raise _ToolError(
                    f"Invalid view_range {list(rng)}: the first element must be between 1 and "
                    f"{total} (the file has {total} lines)"
                )
            if b != -1 and not a <= b <= total:
                raise _ToolError(
                    f"Invalid view_range {list(rng)}: the second element must be -1 (end of file) "
                    f"or between {a} and {total} (the file has {total} lines)"
                )
            first, last = a, (total if b == -1 else b)
        body = _numbered(lines[first - 1 : last], first)
        if len(body.encode()) > self.max_read_bytes:
            raise _ToolError(
                f"lines {first}-{last} of {full} are over the {self.max_read_bytes}-byte limit "
                "of one view; use a smaller view_range"
            )
        if total == 0:
            return ToolResult(content=f"{full} is empty.")
        return ToolResult(content=f"Here's the result of running `cat -n` on {full}:\n{body}\n")

    async def _list_dir(self, full: str, timeout: float) -> ToolResult:
        q = shlex.quote(full)
        r = await self.sandbox.run(
            f"find {q} -mindepth 1 -maxdepth 2 -name '.*' -prune -o -print | LC_ALL=C sort",
            timeout=timeout,
        )
        if r.timed_out:
            raise _ToolError(f"listing {full} timed out")
        if r.exit_code != 0:
            raise _ToolError(f"listing {full} failed (exit {r.exit_code}): {r.output.strip()}")
        listing, dropped = truncate_middle(r.output.rstrip("\n"), self.max_read_bytes)
        header = (
            f"Here are the files and directories up to 2 levels deep in {full}, "
            "excluding hidden items:\n"
        )
        return ToolResult(content=header + (listing or "(empty directory)") + "\n", truncated=dropped > 0)

    async def _create(self, full: str, text: str) -> ToolResult:
        info = await self.sandbox.stat(full)
        if info.exists:
            what = "A directory" if info.is_dir else "A file"
            raise _ToolError(
                f"{what} already exists at {full}; `create` never overwrites. Use `str_replace` "
                "or `insert` to edit the file, or file_write to replace its whole content."
            )
        data = text.encode("utf-8", errors="surrogatepass")
        await self.sandbox.write_file(full, data)
        self._push(full, None)
        return ToolResult(content=f"File created successfully at: {full} ({len(data)} bytes)")

    async def _str_replace(self, full: str, old: str, new: str) -> ToolResult:
        if old == "":
            raise _ToolError("old_str must not be empty; to add text use the `insert` command")
        raw, text = await self._read_text(full)
        positions = []
        at = text.find(old)
        while at != -1:
            positions.append(at)
            at = text.find(old, at + 1)
        if not positions:
            raise _ToolError(
                f"No replacement was performed: old_str did not appear verbatim in {full}. "
                "Check whitespace and indentation, and view the file to copy the exact text."
            )
        if len(positions) > 1:
            line_numbers = [text.count("\n", 0, p) + 1 for p in positions]
            raise _ToolError(
                f"No replacement was performed: old_str occurs {len(positions)} times in {full}, "
                f"at lines {', '.join(map(str, line_numbers))}. Include more surrounding context "
                "in old_str so that it matches exactly once."
            )
        at = positions[0]
        updated = text[:at] + new + text[at + len(old) :]
        self._push(full, raw)
        await self.sandbox.write_file(full, updated.encode("utf-8", errors="surrogatepass"))
        first = text.count("\n", 0, at) + 1
        last = first + new.count("\n")
        return ToolResult(content=self._edited(full, updated, first, last))

    async def _insert(self, full: str, line: int, new: str) -> ToolResult:
        raw, text = await self._read_text(full)
        lines = _lines_with_ends(text)
        total = len(lines)
        if not 0 <= line <= total:
            raise _ToolError(
                f"Invalid insert_line {line}: it must be between 0 and {total} "
                f"(the file has {total} lines; 0 inserts at the top)"
            )
        if line == total and lines and not lines[-1].endswith("\n"):
            lines[-1] += "\n"  # appending after a last line that had no newline
        block = new if new.endswith("\n") else new + "\n"
        updated = "".join(lines[:line]) + block + "".join(lines[line:])
        self._push(full, raw)
        await self.sandbox.write_file(full, updated.encode("utf-8", errors="surrogatepass"))
        return ToolResult(content=self._edited(full, updated, line + 1, line + block.count("\n")))

    async def _undo(self, full: str) -> ToolResult:
        stack = self._history.get(full)
        if not stack:
            raise _ToolError(f"No edit history for {full}: there is nothing to undo.")
        previous = stack.pop()
        if not stack:
            del self._history[full]
        if previous is None:
            remove = getattr(self.sandbox, "remove_file", None)
            if remove is not None:  # the sandbox removes it itself, race-free (local, bwrap)
                try:
                    await remove(full)
                except FileNotFoundError:
                    pass
            else:  # inside the sandbox (docker): as the agent, so it can reach nothing the agent cannot
                r = await self.sandbox.run(f"rm -f -- {shlex.quote(full)}", timeout=30)
                if r.exit_code != 0:
                    raise _ToolError(f"could not remove {full} to undo its creation: {r.output.strip()}")
            return ToolResult(content=f"Undid the creation of {full}: the file was removed.")
        await self.sandbox.write_file(full, previous)
        lines = _lines(decode_output(previous))
        snippet = _numbered(lines[: 2 * SNIPPET_CONTEXT + 1], 1) if lines else "(empty file)"
        return ToolResult(
            content=f"Last edit to {full} undone; the file has {len(lines)} lines again. "
            f"Its first lines:\n{snippet}\n"
        )

    # ---- helpers ----

    def _edited(self, full: str, text: str, first: int, last: int) -> str:
        lines = _lines(text)
        lo = max(1, first - SNIPPET_CONTEXT)
        hi = min(len(lines), max(last, first) + SNIPPET_CONTEXT)
        snippet = _numbered(lines[lo - 1 : hi], lo)
        return (
            f"The file {full} has been edited. Here's the result of running `cat -n` on a "
            f"snippet of {full}:\n{snippet}\nReview the changes and make sure they are as "
            "expected; use `undo_edit` to revert."
        )

    async def _read(self, path: str, *, ranged: bool, hint: str) -> bytes:
        """Whole file under the per-call cap, or (for line ranges) under the
        sandbox's own cap, with messages that say how to read less."""
        try:
            if ranged:
                return await self.sandbox.read_file(path)
            return await self.sandbox.read_file(path, max_bytes=self.max_read_bytes)
        except FileTooLargeError as exc:
            q = shlex.quote(path)
            if ranged:
                raise _ToolError(
                    f"{path} is {exc.size} bytes, too large to load here; use bash instead, e.g. "
                    f"`sed -n '100,200p' {q}` or `grep -n PATTERN {q}`"
                ) from None
            how = "start_line/end_line" if hint == "file_read" else "view_range"
            raise _ToolError(
                f"{path} is {exc.size} bytes, over the {exc.limit}-byte limit of one read. Read "
                f"part of it with {how} (e.g. lines 1-200), or use bash: `head -n 200 {q}`, "
                f"`sed -n '200,400p' {q}`, `grep -n PATTERN {q}`"
            ) from None

    async def _read_text(self, full: str) -> tuple[bytes, str]:
        try:
            raw = await self.sandbox.read_file(full)
        except FileTooLargeError as exc:
            raise _ToolError(f"{full} is {exc.size} bytes, too large to edit here; use bash (e.g. sed)") from None
        try:
            return raw, raw.decode("utf-8")
        except UnicodeDecodeError:
            raise _ToolError(
                f"{full} is not valid UTF-8 text, so it cannot be edited safely with this tool; use bash"
            ) from None

    async def _remember(self, full: str) -> None:
        """Record ``full``'s current content (None if absent) before a write."""
        info = await self.sandbox.stat(full)
        if info.is_dir:
            raise IsADirectoryError(errno.EISDIR, "Is a directory", full)
        if not info.exists:
            self._push(full, None)
            return
        try:
            self._push(full, await self.sandbox.read_file(full))
        except FileTooLargeError:
            self._history.pop(full, None)  # cannot keep it: no undo past this write

    def _push(self, full: str, content: bytes | None) -> None:
        stack = self._history.setdefault(full, [])
        stack.append(content)
        if len(stack) > self.history_depth:
            del stack[0]


def _str(args: dict[str, Any], key: str, *, required: bool = False) -> str | None:
    value = args.get(key)
    if value is None:
        if required:
            raise _ArgError(f"`{key}` is required")
        return None
    if not isinstance(value, str):
        raise _ArgError(f"`{key}` must be a string, got {type(value).__name__}")
    return value


def _int(args: dict[str, Any], key: str) -> int | None:
    value = args.get(key)
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise _ArgError(f"`{key}` must be an integer, got {value!r}")
    return value


def _describe_os_error(exc: OSError) -> str:
    """A file-system error as a sentence the model can act on."""
    where = exc.filename or (exc.args[0] if exc.args and isinstance(exc.args[0], str) else "")
    if isinstance(exc, FileTooLargeError):
        return str(exc)
    if isinstance(exc, PermissionError):
        return f"Permission denied: {exc.filename}" if exc.filename else f"Permission denied: {exc}"
    if isinstance(exc, FileNotFoundError):
        return f"No such file or directory: {where or exc}"
    if isinstance(exc, IsADirectoryError):
        return f"{where or 'the path'} is a directory, not a file; use `str_replace_editor` view or `ls` to list it"
    if isinstance(exc, NotADirectoryError):
        return f"A component of the path is not a directory: {where or exc}"
    return f"File operation failed: {exc}"
