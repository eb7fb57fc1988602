"""Argument checking with linear-time regexes (react_eval.tools.schema_check)."""

from __future__ import annotations

import time

import pytest

from react_eval.tools.base import CompositeBackend
from react_eval.tools.schema_check import LinearValidator, linear_search
from react_eval.types import ToolResult, ToolSpec

EVIL = "^(a+)+$"


class PatternBackend:
    async def list_tools(self):
        return [ToolSpec(name="t", description="", parameters={
            "type": "object",
            "properties": {"s": {"type": "string", "pattern": EVIL}, "code": {"type": "string", "pattern": "^[A-Z]{3}$"}},
            "patternProperties": {"^(x+x+)+y$": {"type": "integer"}},
        })]

    async def call(self, name, arguments, *, timeout):
        return ToolResult(content="ok")

    async def aclose(self):
        pass


def test_catastrophic_pattern_is_decided_at_once():
    started = time.process_time()
    for n in (24, 30, 5000):
        assert linear_search(EVIL, "a" * n + "b") is False  # backtracking re: 1.25 s at 24, x4 per 2 more
    assert linear_search(EVIL, "a" * 40) is True
    assert time.process_time() - started < 5  # generous: Python's re would need years here


def test_unsupported_constructs_are_left_to_the_server():
    assert linear_search("(?=a)a", "a") is None
    assert LinearValidator({"type": "string", "pattern": "(?=x)y"}).is_valid("anything")


@pytest.mark.anyio
async def test_the_router_checks_patterns_without_stalling():
    tools = await CompositeBackend({"p": PatternBackend()}).start()
    assert tools.check_arguments("t", {"s": "a" * 40}) is None
    reason = tools.check_arguments("t", {"s": "a" * 60 + "!", "code": "ABC"})
    assert reason is not None and "does not match" in reason
    assert "does not match" in tools.check_arguments("t", {"code": "abcd"})
    assert "is not of type 'integer'" in tools.check_arguments("t", {"x" * 40 + "y": "str"})
    assert tools.check_arguments("t", {"x" * 40 + "z": "str"}) is None  # no pattern property matched
