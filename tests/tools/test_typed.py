"""Typed tools: the schema, the argument check and the messages all come from one pydantic model;
every call is checked once and run through one dispatcher (unknown tools, timeout, latency)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import anyio
import pytest
from jsonschema import Draft202012Validator
from pydantic import Field, field_validator

from react_eval.tools.base import TOOL_TIMEOUT_GRACE, CompositeBackend, dispatch
from react_eval.tools.files import Arguments
from react_eval.tools.sandbox_tools import sandbox_tool_specs
from react_eval.tools.typed import ToolFailure, TypedTool, tool_schema
from react_eval.types import ToolInfraError, ToolResult, ToolSpec

pytestmark = pytest.mark.anyio

GOLDEN = Path(__file__).with_name("sandbox_tool_schemas.json")


class CountArguments(Arguments):
    word: str = Field(description="The word to count.")
    times: int | None = Field(None, ge=1, description="How often.")
    mode: Literal["upper", "lower"] = Field("lower", description="Case of the answer.")
    widths: list[int] | None = Field(None, min_length=1, description="Column widths.")

    @field_validator("word")
    @classmethod
    def _seen(cls, word: str) -> str:
        CHECKED.append(word)
        if word == "forbidden":
            raise ValueError("that word is not allowed")
        return word


CHECKED: list[str] = []


class CountTool(TypedTool):
    name = "count"
    description = "Repeat a word."
    Params = CountArguments

    def __init__(self) -> None:
        self.runs: list[CountArguments] = []

    async def run(self, args: CountArguments, timeout: float) -> ToolResult:
        self.runs.append(args)
        if args.word == "boom":
            raise RuntimeError("a bug in the tool")
        if args.word == "oops":
            raise ToolFailure("the model can fix this")
        if args.word == "gone":
            raise ToolInfraError("the backend is unreachable")
        if args.word == "slow":
            await anyio.sleep(3600)
        text = " ".join([args.word] * (args.times or 1))
        return ToolResult(content=text.upper() if args.mode == "upper" else text)


class CountBackend:
    def __init__(self) -> None:
        self.tool = CountTool()

    def typed_tools(self):
        return [self.tool]

    async def list_tools(self):
        return [self.tool.spec]

    async def call(self, name, arguments, *, timeout):
        return await dispatch({self.tool.name: self.tool}, name, arguments, timeout)

    async def aclose(self):
        pass


class ServerBackend:
    """A backend known only by a server-given schema (as a Gym server's tools are)."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []

    async def list_tools(self):
        return [ToolSpec(name="lookup", parameters={
            "type": "object", "properties": {"key": {"type": "string", "pattern": "^[a-z]+$"}},
            "required": ["key"], "additionalProperties": False})]

    async def call(self, name, arguments, *, timeout):
        self.received.append(arguments)
        return ToolResult(content=f"value of {arguments['key']}")

    async def aclose(self):
        pass


def test_the_schema_comes_from_the_arguments_model():
    schema = CountTool.tool_spec().parameters
    assert schema == {
        "type": "object",
        "properties": {
            "word": {"type": "string", "description": "The word to count."},
            "times": {"type": "integer", "minimum": 1, "description": "How often."},
            "mode": {"type": "string", "enum": ["upper", "lower"], "description": "Case of the answer."},
            "widths": {"type": "array", "items": {"type": "integer"}, "minItems": 1, "description": "Column widths."},
        },
        "required": ["word"],
        "additionalProperties": False,
    }
    Draft202012Validator.check_schema(schema)
    assert tool_schema(CountArguments) == schema


def test_the_sandbox_tools_offer_the_schemas_they_always_offered():
    """The four schemas, generated from their models, equal the former hand-written ones, key order included."""
    golden = json.loads(GOLDEN.read_text())
    offered = [s.model_dump() for s in sandbox_tool_specs()]
    assert json.dumps(offered, indent=1) == json.dumps(golden, indent=1)


@pytest.mark.parametrize("arguments, message", [
    ({}, "`word` is required"),
    ({"word": "a", "extra": 1}, "`extra` is not an argument of this tool"),
    ({"word": 5}, "`word`: input should be a valid string, got 5"),
    ({"word": "a", "times": 0}, "`times`: input should be greater than or equal to 1, got 0"),
    ({"word": "a", "times": "2"}, "`times`: input should be a valid integer, got '2'"),
    ({"word": "a", "times": True}, "`times`: input should be a valid integer, got True"),
    ({"word": "a", "mode": "title"}, "`mode`: input should be 'upper' or 'lower', got 'title'"),
    ({"word": "forbidden"}, "`word`: that word is not allowed"),
])
async def test_wrong_arguments_come_back_to_the_model_with_what_to_fix(arguments, message):
    tools = await CompositeBackend({"c": CountBackend()}).start()
    result = await tools.call("count", arguments, timeout=5)
    assert result.error_kind == "invalid_arguments" and result.is_error
    assert result.content.startswith("Error: arguments do not match the tool's schema: ")
    assert message in result.content, result.content


async def test_an_integral_float_is_an_integer_as_in_json_schema():
    tools = await CompositeBackend({"c": CountBackend()}).start()
    result = await tools.call("count", {"word": "ab", "times": 3.0}, timeout=5)
    assert result.content == "ab ab ab" and not result.is_error


async def test_arguments_are_checked_exactly_once_per_call():
    backend = CountBackend()
    tools = await CompositeBackend({"c": backend}).start()
    CHECKED.clear()
    result = await tools.call("count", {"word": "hi", "times": 2, "mode": "upper"}, timeout=5)
    assert result.content == "HI HI"
    assert CHECKED == ["hi"]  # the router's check is the tool's only check
    assert isinstance(backend.tool.runs[0], CountArguments)  # the tool got the parsed model


async def test_server_schemas_are_checked_once_and_bad_calls_never_reach_the_server():
    backend = ServerBackend()
    tools = await CompositeBackend({"gym": backend}).start()
    bad = await tools.call("lookup", {"key": "UPPER"}, timeout=5)
    assert bad.error_kind == "invalid_arguments"
    assert bad.content == "Error: arguments do not match the tool's schema: at key: 'UPPER' does not match '^[a-z]+$'"
    assert backend.received == []
    good = await tools.call("lookup", {"key": "abc"}, timeout=5)
    assert good.content == "value of abc" and good.latency_ms > 0
    assert backend.received == [{"key": "abc"}]


async def test_unknown_tools_are_answered_in_one_place_naming_the_known_ones():
    tools = await CompositeBackend({"c": CountBackend(), "gym": ServerBackend()}).start()
    via_router = await tools.call("delete_everything", {}, timeout=5)
    via_backend = await CountBackend().call("delete_everything", {}, timeout=5)
    assert via_router.error_kind == via_backend.error_kind == "unknown_tool"
    assert via_router.content == "Error: unknown tool 'delete_everything'; available tools: count, lookup"
    assert via_backend.content == "Error: unknown tool 'delete_everything'; available tools: count"


async def test_failures_become_results_and_infrastructure_errors_propagate():
    tools = await CompositeBackend({"c": CountBackend()}).start()
    bug = await tools.call("count", {"word": "boom"}, timeout=5)
    assert bug.error_kind == "tool_error" and bug.content == "Error: count failed: RuntimeError: a bug in the tool"
    fixable = await tools.call("count", {"word": "oops"}, timeout=5)
    assert fixable.error_kind == "tool_error" and fixable.content == "the model can fix this"
    with pytest.raises(ToolInfraError):
        await tools.call("count", {"word": "gone"}, timeout=5)


async def test_the_timeout_is_enforced_once_with_grace_only_for_tools_that_stop_themselves():
    tools = await CompositeBackend({"c": CountBackend()}).start()
    with anyio.fail_after(30):
        r = await tools.call("count", {"word": "slow"}, timeout=0.2)
    assert r.error_kind == "timeout" and "did not finish within 0.2s" in r.content
    assert 150 <= r.latency_ms < 0.2 * 1000 + TOOL_TIMEOUT_GRACE * 1000  # stopped at its timeout, not after the grace
    assert not CountTool.own_timeout

    class Stubborn(CountTool):
        own_timeout = True  # claims to stop itself; the guard waits the grace period longer

    stubborn = Stubborn()
    with anyio.move_on_after(0.6) as scope:
        await dispatch({"count": stubborn}, "count", {"word": "slow"}, 0.2)
    assert scope.cancelled_caught  # still running past its own timeout: within the grace period
