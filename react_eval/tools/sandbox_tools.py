"""The four sandbox tools the model uses: bash, file_read, file_write, str_replace_editor.

Each tool declares its arguments as a pydantic model, from which its schema,
its argument check and its messages come (see :mod:`react_eval.tools.typed`);
running a call (the unknown-tool answer, the timeout, the latency) is
:func:`react_eval.tools.base.dispatch`'s job. Mistakes the model can fix (a
wrong path, a non-unique ``old_str``, a file too large) come back as tool
errors with a message saying what to do; only a dead sandbox raises
``SandboxError``.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from react_eval.sandboxes.base import Sandbox
from react_eval.sandboxes.shell import decode_output
from react_eval.tools.base import dispatch
from react_eval.tools.editor import SNIPPET_CONTEXT, EditorTool
from react_eval.tools.files import (
    DEFAULT_HISTORY_DEPTH,
    DEFAULT_MAX_READ_BYTES,
    Arguments,
    FileTool,
    SandboxFiles,
    lines_with_ends,
)
from react_eval.tools.typed import Tool, ToolFailure, TypedTool
from react_eval.types import ToolResult, ToolSpec

__all__ = ["DEFAULT_HISTORY_DEPTH", "DEFAULT_MAX_READ_BYTES", "SNIPPET_CONTEXT", "SandboxToolBackend",
           "sandbox_tool_specs"]


class BashArguments(Arguments):
    command: str = Field(description="The bash command(s) to run; may span several lines.")

    @field_validator("command")
    @classmethod
    def _not_blank(cls, command: str) -> str:
        if not command.strip():
            raise ValueError("must not be empty")
        return command


class BashTool(TypedTool):
    name = "bash"
    description = (
        "Run a command in a persistent bash shell in the sandbox. The working directory, "
        "exported variables and shell functions persist between calls. stdout and stderr are "
        "merged; stdin is /dev/null, so nothing can wait for keyboard input (use non-interactive "
        "flags such as `apt-get -y`). Each call has a time limit: a command that runs longer is "
        "killed. Run servers in the background (`cmd > log.txt 2>&1 &`). Very long output is "
        "cut in the middle, so filter it (grep, head, tail) when you expect a lot."
    )
    Params = BashArguments
    own_timeout = True  # the sandbox kills the command at the timeout and returns its output so far

    def __init__(self, sandbox: Sandbox):
        self.sandbox = sandbox

    async def run(self, args: BashArguments, timeout: float) -> ToolResult:
        r = await self.sandbox.exec(args.command, timeout)
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


class FileReadArguments(Arguments):
    path: str = Field(description="Path of the file to read.")
    start_line: int | None = Field(None, ge=1, description="First line to return (1-based). Default: 1.")
    end_line: int | None = Field(
        None, ge=-1, description="Last line to return (inclusive); -1 means the end of the file. Default: -1.")


class FileReadTool(FileTool):
    name = "file_read"
    description = (
        "Read a text file from the sandbox and return its content verbatim (no line numbers). "
        "Relative paths are relative to the sandbox working directory. Large files must be "
        "read in parts with start_line/end_line."
    )
    Params = FileReadArguments

    async def run(self, args: FileReadArguments, timeout: float) -> ToolResult:
        path = args.path
        ranged = args.start_line is not None or args.end_line is not None
        text = decode_output(await self.files.read(path, ranged=ranged, hint="file_read"))
        if not ranged:
            return ToolResult(content=text if text else "(empty file)")
        rows = lines_with_ends(text)
        total = len(rows)
        start = 1 if args.start_line is None else args.start_line
        end = -1 if args.end_line is None else args.end_line
        if end != -1 and end < start:
            raise ToolFailure(f"end_line must be -1 or >= start_line ({start}), got {end}")
        if start > max(total, 1):
            raise ToolFailure(f"start_line {start} is past the end of {path}, which has {total} lines")
        stop = total if end == -1 else min(end, total)
        chunk = "".join(rows[start - 1 : stop])
        size = len(chunk.encode())
        if size > self.files.max_read_bytes:
            raise ToolFailure(
                f"lines {start}-{stop} of {path} are {size} bytes, over the "
                f"{self.files.max_read_bytes}-byte limit of one read; request fewer lines"
            )
        return ToolResult(content=chunk, extra={"start_line": start, "end_line": stop, "total_lines": total})


class FileWriteArguments(Arguments):
    path: str = Field(description="Path of the file to write.")
    content: str = Field(description="The complete new content of the file.")


class FileWriteTool(FileTool):
    name = "file_write"
    description = (
        "Write a file in the sandbox, replacing it if it exists and creating missing parent "
        "directories. The content is written exactly as given."
    )
    Params = FileWriteArguments

    async def run(self, args: FileWriteArguments, timeout: float) -> ToolResult:
        full = self.sandbox.resolve(args.path)
        await self.files.remember(full)
        data = args.content.encode("utf-8", errors="surrogatepass")
        await self.sandbox.write_file(full, data)
        return ToolResult(content=f"Wrote {len(data)} bytes to {full}")


_TOOL_CLASSES = (BashTool, FileReadTool, FileWriteTool, EditorTool)


def sandbox_tool_specs() -> list[ToolSpec]:
    """The tool definitions of :class:`SandboxToolBackend` (no sandbox needed)."""
    return [cls.tool_spec().model_copy(deep=True) for cls in _TOOL_CLASSES]


class SandboxToolBackend:
    """The sandbox tools bound to one rollout's sandbox.

    Keeps a per-file undo history shared by the editor and file_write (at most
    ``history_depth`` steps per file); undoing a ``create`` (or a file_write
    that created the file) deletes the file. The sandbox is closed by
    ``aclose`` only when ``owns_sandbox`` is set.
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
        self.owns_sandbox = owns_sandbox
        self.files = SandboxFiles(sandbox, max_read_bytes=max_read_bytes, history_depth=history_depth)
        self._tools: dict[str, Tool] = {
            tool.name: tool
            for tool in (BashTool(sandbox), FileReadTool(self.files), FileWriteTool(self.files),
                         EditorTool(self.files))
        }

    def typed_tools(self) -> list[Tool]:
        return list(self._tools.values())

    async def list_tools(self) -> list[ToolSpec]:
        return sandbox_tool_specs()

    async def call(self, name: str, arguments: dict[str, Any], *, timeout: float) -> ToolResult:
        return await dispatch(self._tools, name, arguments, timeout)

    async def aclose(self) -> None:
        self.files.history.clear()
        if self.owns_sandbox:
            await self.sandbox.close()
