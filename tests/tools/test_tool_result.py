"""ToolResult is checked where it is made (a slots dataclass, no longer a pydantic
model): every wrong type a model refused is refused, with a message naming the field,
and a tool that makes a bad one gets an error observation, not a crash."""

from __future__ import annotations

import pytest

from react_eval.tools.base import dispatch
from react_eval.tools.typed import Tool
from react_eval.types import TOOL_ERROR_KINDS, ToolResult, ToolSpec


@pytest.mark.parametrize("fields, field", [
    ({"content": 12345}, "content"),
    ({"content": None}, "content"),
    ({"content": b"bytes"}, "content"),
    ({"is_error": "yes"}, "is_error"),
    ({"truncated": 1}, "truncated"),
    ({"exit_code": "0"}, "exit_code"),
    ({"exit_code": 1.5}, "exit_code"),
    ({"exit_code": True}, "exit_code"),
    ({"latency_ms": "3"}, "latency_ms"),
    ({"error_kind": "made_up"}, "error_kind"),
    ({"extra": [1, 2]}, "extra"),
])
def test_wrong_types_are_refused_naming_the_field(fields, field):
    with pytest.raises(TypeError, match=f"invalid ToolResult: {field} must be"):
        ToolResult(**fields)


def test_good_values_are_kept_and_an_int_latency_becomes_a_float():
    r = ToolResult(content="x", is_error=True, exit_code=2, latency_ms=3, truncated=False,
                   error_kind="nonzero_exit", extra={"k": 1})
    assert (r.content, r.is_error, r.exit_code, r.error_kind, r.extra) == ("x", True, 2, "nonzero_exit", {"k": 1})
    assert r.latency_ms == 3.0 and type(r.latency_ms) is float
    assert ToolResult() == ToolResult(content="", extra={})
    assert ToolResult().extra is not ToolResult().extra  # each its own dict
    for kind in TOOL_ERROR_KINDS:
        assert ToolResult.error("m", kind).error_kind == kind


def test_a_str_subclass_is_accepted():
    class Text(str):
        pass

    assert ToolResult(content=Text("hi")).content == "hi"


@pytest.mark.anyio
async def test_a_tool_that_makes_a_bad_result_gets_an_error_observation():
    class Sloppy(Tool):
        spec = ToolSpec(name="sloppy")

        async def run(self, args, timeout):
            return ToolResult(content=None)

    r = await dispatch({"sloppy": Sloppy()}, "sloppy", {}, 5)
    assert r.is_error and r.error_kind == "tool_error"
    assert r.content.startswith("Error: sloppy failed: TypeError: invalid ToolResult: content must be text")
