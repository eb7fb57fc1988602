"""The sandbox tools over a real local sandbox (real bash, real files)."""

from __future__ import annotations

import json
import os
import time

import pytest
from jsonschema import Draft202012Validator

from react_eval.sandboxes.base import SandboxLimits
from react_eval.sandboxes.local import LocalSandboxConfig, LocalSandboxProvider
from react_eval.tools.base import CompositeBackend, ToolBackend
from react_eval.tools.sandbox_tools import SandboxToolBackend, sandbox_tool_specs
from react_eval.types import SandboxError

pytestmark = pytest.mark.anyio


@pytest.fixture
async def sandbox(tmp_path):
    provider = LocalSandboxProvider(
        LocalSandboxConfig(root=str(tmp_path)), limits=SandboxLimits(max_output_bytes=20_000)
    )
    sb = await provider.create(None, labels={})
    yield sb
    await provider.aclose()


@pytest.fixture
def tools(sandbox) -> SandboxToolBackend:
    return SandboxToolBackend(sandbox, max_read_bytes=2_000)


def put(sandbox, rel: str, content: str | bytes) -> str:
    path = os.path.join(sandbox.workdir, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(content.encode() if isinstance(content, str) else content)
    return path


def get(sandbox, rel: str) -> str:
    with open(os.path.join(sandbox.workdir, rel), encoding="utf-8") as f:
        return f.read()


async def edit(tools, **args):
    return await tools.call("str_replace_editor", args, timeout=10)


# ---- definitions ----------------------------------------------------------------


async def test_specs(tools):
    specs = await tools.list_tools()
    assert [s.name for s in specs] == ["bash", "file_read", "file_write", "str_replace_editor"]
    assert specs == sandbox_tool_specs()
    for spec in specs:
        Draft202012Validator.check_schema(spec.parameters)
        assert len(spec.description) > 40
        json.dumps(spec.to_openai())
    editor = specs[3].parameters["properties"]["command"]["enum"]
    assert editor == ["view", "create", "str_replace", "insert", "undo_edit"]
    assert isinstance(tools, ToolBackend)
    composite = await CompositeBackend({"sandbox": tools}).start()
    assert composite.check_arguments("bash", {}) is not None
    assert composite.check_arguments("bash", {"command": "ls"}) is None


# ---- bash -----------------------------------------------------------------------


async def test_bash_output_and_state(tools, sandbox):
    r = await tools.call("bash", {"command": "mkdir -p p && cd p && echo hi"}, timeout=10)
    assert (r.content, r.exit_code, r.is_error, r.error_kind) == ("hi\n", 0, False, None)
    r = await tools.call("bash", {"command": "pwd"}, timeout=10)
    assert r.content == f"{sandbox.workdir}/p\n"
    r = await tools.call("bash", {"command": "true"}, timeout=10)
    assert r.content == "(no output)" and not r.is_error
    assert r.latency_ms > 0


async def test_bash_nonzero_exit(tools):
    r = await tools.call("bash", {"command": "echo oops >&2; exit 3"}, timeout=10)
    assert r.is_error and r.error_kind == "nonzero_exit" and r.exit_code == 3
    assert r.content.startswith("oops\n[exit code: 3]")
    assert "shell exited" in r.content  # the restart note reaches the model
    r = await tools.call("bash", {"command": "echo back"}, timeout=10)
    assert r.content == "back\n" and not r.is_error


async def test_bash_timeout(tools):
    start = time.monotonic()
    r = await tools.call("bash", {"command": "echo before; sleep 100"}, timeout=1)
    assert time.monotonic() - start < 4
    assert r.is_error and r.error_kind == "timeout" and r.exit_code is None
    assert r.content.startswith("before\n")
    assert "[command timed out after 1s and was killed]" in r.content


async def test_bash_truncated_flag(tools):
    r = await tools.call("bash", {"command": "seq 1 100000"}, timeout=10)
    assert r.truncated and r.exit_code == 0 and not r.is_error
    assert r.content.startswith("1\n2\n") and r.content.endswith("100000\n")
    assert r.extra["dropped_chars"] > 500_000


async def test_bash_bad_arguments(tools):
    r = await tools.call("bash", {}, timeout=10)
    assert r.error_kind == "invalid_arguments" and "command" in r.content
    r = await tools.call("bash", {"command": "   "}, timeout=10)
    assert r.error_kind == "invalid_arguments"
    r = await tools.call("nope", {}, timeout=10)
    assert r.error_kind == "unknown_tool"


async def test_dead_sandbox_raises(tools, sandbox):
    await sandbox.close()
    with pytest.raises(SandboxError):
        await tools.call("bash", {"command": "echo x"}, timeout=10)


# ---- file_read --------------------------------------------------------------------


async def test_file_read_whole_and_ranges(tools, sandbox):
    put(sandbox, "f.txt", "".join(f"line {i}\n" for i in range(1, 11)))
    r = await tools.call("file_read", {"path": "f.txt"}, timeout=10)
    assert r.content == get(sandbox, "f.txt") and not r.is_error
    r = await tools.call("file_read", {"path": "f.txt", "start_line": 3, "end_line": 4}, timeout=10)
    assert r.content == "line 3\nline 4\n"
    r = await tools.call("file_read", {"path": "f.txt", "start_line": 9, "end_line": -1}, timeout=10)
    assert r.content == "line 9\nline 10\n"
    r = await tools.call("file_read", {"path": "f.txt", "start_line": 10, "end_line": 50}, timeout=10)
    assert r.content == "line 10\n" and r.extra["total_lines"] == 10
    r = await tools.call("file_read", {"path": f"{sandbox.workdir}/f.txt", "end_line": 1}, timeout=10)
    assert r.content == "line 1\n"
    r = await tools.call("file_read", {"path": "f.txt", "start_line": 11}, timeout=10)
    assert r.error_kind == "tool_error" and "has 10 lines" in r.content
    r = await tools.call("file_read", {"path": "f.txt", "start_line": 5, "end_line": 2}, timeout=10)
    assert r.error_kind == "tool_error" and "end_line" in r.content


async def test_file_read_no_trailing_newline_and_empty(tools, sandbox):
    put(sandbox, "n.txt", "a\nb")
    r = await tools.call("file_read", {"path": "n.txt", "start_line": 2}, timeout=10)
    assert r.content == "b"
    put(sandbox, "e.txt", "")
    r = await tools.call("file_read", {"path": "e.txt"}, timeout=10)
    assert r.content == "(empty file)" and not r.is_error


async def test_file_read_size_cap(tools, sandbox):
    put(sandbox, "big.txt", "".join(f"{i:05d} {'x' * 40}\n" for i in range(1000)))
    r = await tools.call("file_read", {"path": "big.txt"}, timeout=10)
    assert r.is_error and r.error_kind == "tool_error"
    assert "2000-byte limit" in r.content
    assert "start_line" in r.content and "head -n" in r.content and "sed -n" in r.content
    r = await tools.call("file_read", {"path": "big.txt", "start_line": 500, "end_line": 502}, timeout=10)
    assert r.content.splitlines()[0].startswith("00499 ") and len(r.content.splitlines()) == 3
    r = await tools.call("file_read", {"path": "big.txt", "start_line": 1, "end_line": 900}, timeout=10)
    assert r.is_error and "fewer lines" in r.content


async def test_file_read_binary(tools, sandbox):
    put(sandbox, "b.bin", b"ok\x00\xff\xfeend")
    r = await tools.call("file_read", {"path": "b.bin"}, timeout=10)
    assert r.content == "ok\\0\ufffd\ufffdend"
    json.dumps(r.content)


async def test_file_read_errors(tools, sandbox):
    r = await tools.call("file_read", {"path": "missing.txt"}, timeout=10)
    assert r.error_kind == "tool_error" and "No such file" in r.content
    os.mkdir(os.path.join(sandbox.workdir, "adir"))
    r = await tools.call("file_read", {"path": "adir"}, timeout=10)
    assert r.error_kind == "tool_error" and "is a directory" in r.content


async def test_paths_outside_are_refused(tools, sandbox):
    for path in ("../../etc/passwd", "/etc/passwd"):
        r = await tools.call("file_read", {"path": path}, timeout=10)
        assert r.error_kind == "tool_error" and "outside the sandbox" in r.content
        assert "root:" not in r.content
    os.symlink("/etc", os.path.join(sandbox.workdir, "link"))
    r = await tools.call("file_read", {"path": "link/passwd"}, timeout=10)
    assert r.error_kind == "tool_error" and "outside" in r.content and "root:" not in r.content
    r = await tools.call("file_write", {"path": "link/evil", "content": "x"}, timeout=10)
    assert r.error_kind == "tool_error" and not os.path.exists("/etc/evil")
    r = await edit(tools, command="create", path="../escape.txt", file_text="x")
    assert r.error_kind == "tool_error"
    assert not os.path.exists(os.path.join(os.path.dirname(sandbox.workdir), "escape.txt"))


# ---- file_write ---------------------------------------------------------------------


async def test_file_write_creates_parents_and_keeps_content_verbatim(tools, sandbox):
    content = "#!/bin/sh\necho \"$(whoami)\" 'q' `date` \\\n$HOME\n"
    r = await tools.call("file_write", {"path": "a/b/c.sh", "content": content}, timeout=10)
    assert not r.is_error
    assert r.content == f"Wrote {len(content.encode())} bytes to {sandbox.workdir}/a/b/c.sh"
    assert get(sandbox, "a/b/c.sh") == content
    r = await tools.call("file_write", {"path": "a/b/c.sh", "content": "é"}, timeout=10)
    assert "Wrote 2 bytes" in r.content and get(sandbox, "a/b/c.sh") == "é"
    r = await tools.call("file_write", {"path": "a/b", "content": "x"}, timeout=10)
    assert r.error_kind == "tool_error" and "directory" in r.content


# ---- str_replace_editor ----------------------------------------------------------------


async def test_view_file_numbering_and_ranges(tools, sandbox):
    put(sandbox, "v.py", "a = 1\n\tb = 2\nc = 3\n")
    r = await edit(tools, command="view", path="v.py")
    assert not r.is_error
    assert r.content.endswith("     1\ta = 1\n     2\t\tb = 2\n     3\tc = 3\n")
    assert "cat -n" in r.content.splitlines()[0]
    r = await edit(tools, command="view", path="v.py", view_range=[2, 3])
    assert r.content.splitlines()[1:] == ["     2\t\tb = 2", "     3\tc = 3"]
    r = await edit(tools, command="view", path="v.py", view_range=[3, -1])
    assert r.content.splitlines()[1:] == ["     3\tc = 3"]


@pytest.mark.parametrize(
    "view_range, message",
    [
        ([0, 2], "first element must be between 1 and 3"),
        ([4, -1], "first element must be between 1 and 3"),
        ([2, 1], "second element must be -1 (end of file) or between 2 and 3"),
        ([1, 9], "second element must be -1 (end of file) or between 1 and 3"),
    ],
)
async def test_view_bad_range(tools, sandbox, view_range, message):
    put(sandbox, "v.py", "a\nb\nc\n")
    r = await edit(tools, command="view", path="v.py", view_range=view_range)
    assert r.is_error and r.error_kind == "tool_error"
    assert message in r.content


@pytest.mark.parametrize("view_range, message", [
    ([1], "at least 2 items"), (["1", 2], "`view_range.0`: input should be a valid integer"),
    ([1, 2, 3], "at most 2 items"), ([1, True], "`view_range.1`"),
])
async def test_view_range_of_the_wrong_shape_is_refused_by_the_schema(tools, sandbox, view_range, message):
    """Checked once, by the arguments model whose schema the model was shown (minItems 2, integers)."""
    put(sandbox, "v.py", "a\nb\nc\n")
    r = await edit(tools, command="view", path="v.py", view_range=view_range)
    assert r.error_kind == "invalid_arguments" and message in r.content, r.content


async def test_view_directory_depth_two_without_hidden(tools, sandbox):
    for rel in ("src/pkg/deep/x.py", "src/pkg/y.py", "src/.hidden/z", ".git/HEAD", "top.txt"):
        put(sandbox, rel, "x")
    r = await edit(tools, command="view", path=".")
    assert not r.is_error
    listed = r.content.splitlines()[1:]
    w = sandbox.workdir
    assert listed == [f"{w}/src", f"{w}/src/pkg", f"{w}/top.txt"]
    r = await edit(tools, command="view", path="src")
    assert r.content.splitlines()[1:] == [f"{w}/src/pkg", f"{w}/src/pkg/deep", f"{w}/src/pkg/y.py"]
    r = await edit(tools, command="view", path="src", view_range=[1, 2])
    assert r.error_kind == "tool_error"
    r = await edit(tools, command="view", path="nowhere")
    assert r.error_kind == "tool_error" and "does not exist" in r.content


async def test_view_directory_with_awkward_name(tools, sandbox):
    put(sandbox, "we ird $(x) 'q'/f.txt", "x")
    r = await edit(tools, command="view", path="we ird $(x) 'q'")
    assert not r.is_error and r.content.splitlines()[1].endswith("/we ird $(x) 'q'/f.txt")


async def test_view_large_file_needs_range(tools, sandbox):
    put(sandbox, "big.txt", "y" * 50 + "\n" * 1 + "z\n" * 3000)
    r = await edit(tools, command="view", path="big.txt")
    assert r.error_kind == "tool_error" and "view_range" in r.content
    r = await edit(tools, command="view", path="big.txt", view_range=[1, 2])
    assert r.content.splitlines()[1:] == ["     1\t" + "y" * 50, "     2\tz"]


async def test_create_and_refuse_overwrite(tools, sandbox):
    r = await edit(tools, command="create", path="new/dir/f.py", file_text="print('hi')\n")
    assert not r.is_error and "created" in r.content
    assert get(sandbox, "new/dir/f.py") == "print('hi')\n"
    r = await edit(tools, command="create", path="new/dir/f.py", file_text="other")
    assert r.error_kind == "tool_error" and "already exists" in r.content
    assert get(sandbox, "new/dir/f.py") == "print('hi')\n"
    r = await edit(tools, command="create", path="x.py")
    assert r.error_kind == "invalid_arguments" and "file_text" in r.content


async def test_str_replace(tools, sandbox):
    put(sandbox, "s.py", "".join(f"l{i}\n" for i in range(1, 21)).replace("l10\n", "def f():\n    return 1\n"))
    r = await edit(tools, command="str_replace", path="s.py", old_str="    return 1", new_str="    x = 2\n    return x")
    assert not r.is_error, r.content
    assert "    x = 2\n    return x\n" in get(sandbox, "s.py")
    snippet = r.content.splitlines()
    assert "    11\t    x = 2" in snippet and "    12\t    return x" in snippet
    assert "     7\tl7" in snippet and "    16\tl14" in snippet
    assert "     6\tl6" not in snippet and "    17\tl15" not in snippet


async def test_str_replace_not_found_and_not_unique(tools, sandbox):
    put(sandbox, "d.py", "x = 1\ny = 2\nx = 1\nz = 3\nx = 1\n")
    r = await edit(tools, command="str_replace", path="d.py", old_str="x = 1", new_str="x = 9")
    assert r.error_kind == "tool_error"
    assert "occurs 3 times" in r.content and "lines 1, 3, 5" in r.content
    r = await edit(tools, command="str_replace", path="d.py", old_str="w = 0", new_str="")
    assert r.error_kind == "tool_error" and "did not appear" in r.content
    r = await edit(tools, command="str_replace", path="d.py", old_str="", new_str="q")
    assert r.error_kind == "tool_error"
    assert get(sandbox, "d.py") == "x = 1\ny = 2\nx = 1\nz = 3\nx = 1\n"
    put(sandbox, "o.txt", "aaa\n")  # overlapping matches count too
    r = await edit(tools, command="str_replace", path="o.txt", old_str="aa", new_str="b")
    assert "occurs 2 times" in r.content
    r = await edit(tools, command="str_replace", path="missing.py", old_str="a", new_str="b")
    assert r.error_kind == "tool_error" and "No such file" in r.content


async def test_str_replace_refuses_non_utf8(tools, sandbox):
    put(sandbox, "bin.dat", b"abc\xff\n")
    r = await edit(tools, command="str_replace", path="bin.dat", old_str="abc", new_str="x")
    assert r.error_kind == "tool_error" and "UTF-8" in r.content
    assert open(os.path.join(sandbox.workdir, "bin.dat"), "rb").read() == b"abc\xff\n"


async def test_insert(tools, sandbox):
    put(sandbox, "i.txt", "a\nb\nc\n")
    r = await edit(tools, command="insert", path="i.txt", insert_line=0, new_str="top")
    assert not r.is_error and get(sandbox, "i.txt") == "top\na\nb\nc\n"
    assert "     1\ttop" in r.content.splitlines()
    await edit(tools, command="insert", path="i.txt", insert_line=2, new_str="mid1\nmid2\n")
    assert get(sandbox, "i.txt") == "top\na\nmid1\nmid2\nb\nc\n"
    await edit(tools, command="insert", path="i.txt", insert_line=6, new_str="end")
    assert get(sandbox, "i.txt") == "top\na\nmid1\nmid2\nb\nc\nend\n"
    put(sandbox, "nonl.txt", "x")
    await edit(tools, command="insert", path="nonl.txt", insert_line=1, new_str="y")
    assert get(sandbox, "nonl.txt") == "x\ny\n"
    r = await edit(tools, command="insert", path="i.txt", insert_line=8, new_str="z")
    assert r.error_kind == "tool_error" and "between 0 and 7" in r.content
    r = await edit(tools, command="insert", path="i.txt", insert_line=-1, new_str="z")  # the schema's minimum 0
    assert r.error_kind == "invalid_arguments" and "`insert_line`: input should be greater than or equal to 0" in r.content
    r = await edit(tools, command="insert", path="i.txt", new_str="z")
    assert r.error_kind == "invalid_arguments"
    assert get(sandbox, "i.txt") == "top\na\nmid1\nmid2\nb\nc\nend\n"


async def test_undo_history(tools, sandbox):
    r = await edit(tools, command="undo_edit", path="u.txt")
    assert r.error_kind == "tool_error" and "nothing to undo" in r.content
    await edit(tools, command="create", path="u.txt", file_text="one\n")
    await edit(tools, command="str_replace", path="u.txt", old_str="one", new_str="two")
    await edit(tools, command="insert", path="u.txt", insert_line=1, new_str="three")
    await tools.call("file_write", {"path": "u.txt", "content": "four\n"}, timeout=10)
    assert get(sandbox, "u.txt") == "four\n"
    r = await edit(tools, command="undo_edit", path="u.txt")
    assert not r.is_error and get(sandbox, "u.txt") == "two\nthree\n"
    await edit(tools, command="undo_edit", path="u.txt")
    assert get(sandbox, "u.txt") == "two\n"
    await edit(tools, command="undo_edit", path="u.txt")
    assert get(sandbox, "u.txt") == "one\n"
    r = await edit(tools, command="undo_edit", path="u.txt")
    assert "removed" in r.content and not os.path.exists(os.path.join(sandbox.workdir, "u.txt"))
    r = await edit(tools, command="undo_edit", path="u.txt")
    assert r.error_kind == "tool_error"


async def test_undo_of_file_write_that_created_a_file(tools, sandbox):
    await tools.call("file_write", {"path": "w/new.txt", "content": "x"}, timeout=10)
    r = await edit(tools, command="undo_edit", path="w/new.txt")
    assert not r.is_error and not os.path.exists(os.path.join(sandbox.workdir, "w/new.txt"))


async def test_editor_bad_command(tools):
    r = await edit(tools, command="delete", path="x")
    assert r.error_kind == "invalid_arguments" and "undo_edit" in r.content
    r = await tools.call("str_replace_editor", {"command": "view"}, timeout=10)
    assert r.error_kind == "invalid_arguments" and "path" in r.content
