"""The ``str_replace_editor`` tool: view, create, str_replace, insert, undo_edit.

Mistakes the model can fix (a non-unique ``old_str``, a line out of range, a
file that exists) come back as tool errors saying what to do instead.
"""

from __future__ import annotations

import shlex
from typing import Literal

from pydantic import Field, model_validator

from react_eval.sandboxes.shell import decode_output
from react_eval.tools.files import Arguments, FileTool, lines, lines_with_ends, numbered
from react_eval.tools.output import truncate_middle
from react_eval.tools.typed import ToolFailure
from react_eval.types import ToolResult

#: lines of context shown around an edit
SNIPPET_CONTEXT = 4

_NEEDS = {"create": ("file_text",), "str_replace": ("old_str",), "insert": ("insert_line", "new_str")}


class EditorArguments(Arguments):
    command: Literal["view", "create", "str_replace", "insert", "undo_edit"] = Field(
        description="The operation to perform.")
    path: str = Field(description="Path of the file or directory.")
    file_text: str | None = Field(None, description="For `create`: the content of the new file.")
    old_str: str | None = Field(
        None, description="For `str_replace`: the exact text to replace (must occur exactly once).")
    new_str: str | None = Field(
        None, description="For `str_replace`: the replacement text; for `insert`: the text to insert.")
    insert_line: int | None = Field(
        None, ge=0, description="For `insert`: the line after which to insert (0 = top of the file).")
    view_range: list[int] | None = Field(
        None, min_length=2, max_length=2,
        description="For `view` of a file: [start_line, end_line], 1-based; end_line -1 = end of file.")

    @model_validator(mode="after")
    def _command_needs(self) -> "EditorArguments":
        for name in _NEEDS.get(self.command, ()):
            if getattr(self, name) is None:
                raise ValueError(f"`{name}` is required for the {self.command} command")
        return self


class EditorTool(FileTool):
    name = "str_replace_editor"
    description = (
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
    )
    Params = EditorArguments

    async def run(self, args: EditorArguments, timeout: float) -> ToolResult:
        full = self.sandbox.resolve(args.path)
        if args.command == "view":
            return await self._view(full, args.view_range, timeout)
        if args.command == "create":
            return await self._create(full, args.file_text or "")
        if args.command == "str_replace":
            return await self._str_replace(full, args.old_str or "", args.new_str or "")
        if args.command == "insert":
            return await self._insert(full, args.insert_line or 0, args.new_str or "")
        return await self._undo(full)

    async def _view(self, full: str, view_range: list[int] | None, timeout: float) -> ToolResult:
        info = await self.sandbox.stat(full)
        if not info.exists:
            raise ToolFailure(f"The path {full} does not exist.")
        if info.is_dir:
            if view_range is not None:
                raise ToolFailure("view_range is only allowed when path is a file, not a directory")
            return await self._list_dir(full, timeout)
        data = await self.files.read(full, ranged=view_range is not None, hint="view")
        rows = lines(decode_output(data))
        total = len(rows)
        first, last = 1, total
        if view_range is not None:
            a, b = view_range
            if not 1 <= a <= total:
                raise ToolFailure(
                    f"Invalid view_range {view_range}: the first element must be between 1 and "
                    f"{total} (the file has {total} lines)"
                )
            if b != -1 and not a <= b <= total:
                raise ToolFailure(
                    f"Invalid view_range {view_range}: the second element must be -1 (end of file) "
                    f"or between {a} and {total} (the file has {total} lines)"
                )
            first, last = a, (total if b == -1 else b)
        body = numbered(rows[first - 1 : last], first)
        if len(body.encode()) > self.files.max_read_bytes:
            raise ToolFailure(
                f"lines {first}-{last} of {full} are over the {self.files.max_read_bytes}-byte limit "
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
            raise ToolFailure(f"listing {full} timed out")
        if r.exit_code != 0:
            raise ToolFailure(f"listing {full} failed (exit {r.exit_code}): {r.output.strip()}")
        listing, dropped = truncate_middle(r.output.rstrip("\n"), self.files.max_read_bytes)
        header = (
            f"Here are the files and directories up to 2 levels deep in {full}, "
            "excluding hidden items:\n"
        )
        return ToolResult(content=header + (listing or "(empty directory)") + "\n", truncated=dropped > 0)

    async def _create(self, full: str, text: str) -> ToolResult:
        info = await self.sandbox.stat(full)
        if info.exists:
            what = "A directory" if info.is_dir else "A file"
            raise ToolFailure(
                f"{what} already exists at {full}; `create` never overwrites. Use `str_replace` "
                "or `insert` to edit the file, or file_write to replace its whole content."
            )
        data = text.encode("utf-8", errors="surrogatepass")
        await self.sandbox.write_file(full, data)
        self.files.push(full, None)
        return ToolResult(content=f"File created successfully at: {full} ({len(data)} bytes)")

    async def _str_replace(self, full: str, old: str, new: str) -> ToolResult:
        if old == "":
            raise ToolFailure("old_str must not be empty; to add text use the `insert` command")
        raw, text = await self.files.read_text(full)
        positions = []
        at = text.find(old)
        while at != -1:
            positions.append(at)
            at = text.find(old, at + 1)
        if not positions:
            raise ToolFailure(
                f"No replacement was performed: old_str did not appear verbatim in {full}. "
                "Check whitespace and indentation, and view the file to copy the exact text."
            )
        if len(positions) > 1:
            line_numbers = [text.count("\n", 0, p) + 1 for p in positions]
            raise ToolFailure(
                f"No replacement was performed: old_str occurs {len(positions)} times in {full}, "
                f"at lines {', '.join(map(str, line_numbers))}. Include more surrounding context "
                "in old_str so that it matches exactly once."
            )
        at = positions[0]
        updated = text[:at] + new + text[at + len(old) :]
        self.files.push(full, raw)
        await self.sandbox.write_file(full, updated.encode("utf-8", errors="surrogatepass"))
        first = text.count("\n", 0, at) + 1
        return ToolResult(content=_edited(full, updated, first, first + new.count("\n")))

    async def _insert(self, full: str, line: int, new: str) -> ToolResult:
        raw, text = await self.files.read_text(full)
        rows = lines_with_ends(text)
        total = len(rows)
        if not 0 <= line <= total:
            raise ToolFailure(
                f"Invalid insert_line {line}: it must be between 0 and {total} "
                f"(the file has {total} lines; 0 inserts at the top)"
            )
        if line == total and rows and not rows[-1].endswith("\n"):
            rows[-1] += "\n"  # appending after a last line that had no newline
        block = new if new.endswith("\n") else new + "\n"
        updated = "".join(rows[:line]) + block + "".join(rows[line:])
        self.files.push(full, raw)
        await self.sandbox.write_file(full, updated.encode("utf-8", errors="surrogatepass"))
        return ToolResult(content=_edited(full, updated, line + 1, line + block.count("\n")))

    async def _undo(self, full: str) -> ToolResult:
        stack = self.files.history.get(full)
        if not stack:
            raise ToolFailure(f"No edit history for {full}: there is nothing to undo.")
        previous = stack.pop()
        if not stack:
            del self.files.history[full]
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
                    raise ToolFailure(f"could not remove {full} to undo its creation: {r.output.strip()}")
            return ToolResult(content=f"Undid the creation of {full}: the file was removed.")
        await self.sandbox.write_file(full, previous)
        rows = lines(decode_output(previous))
        snippet = numbered(rows[: 2 * SNIPPET_CONTEXT + 1], 1) if rows else "(empty file)"
        return ToolResult(
            content=f"Last edit to {full} undone; the file has {len(rows)} lines again. "
            f"Its first lines:\n{snippet}\n"
        )


def _edited(full: str, text: str, first: int, last: int) -> str:
    rows = lines(text)
    lo = max(1, first - SNIPPET_CONTEXT)
    hi = min(len(rows), max(last, first) + SNIPPET_CONTEXT)
    snippet = numbered(rows[lo - 1 : hi], lo)
    return (
        f"The file {full} has been edited. Here's the result of running `cat -n` on a "
        f"snippet of {full}:\n{snippet}\nReview the changes and make sure they are as "
        "expected; use `undo_edit` to revert."
    )
