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


# ---- the compiled fast path: never more lenient than LinearValidator ------------------------

import json  # noqa: E402
from pathlib import Path  # noqa: E402

from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402
from jsonschema import Draft202012Validator  # noqa: E402
from jsonschema.exceptions import SchemaError  # noqa: E402

from react_eval.gym.openapi import discover_tools  # noqa: E402
from react_eval.tools.base import SchemaTool  # noqa: E402
from react_eval.tools.schema_check import ArgumentValidator, compiled_subset  # noqa: E402

REFERENCE = Path("/work/shared/reference/nemo-gym")
GOLDEN = Path(__file__).with_name("sandbox_tool_schemas.json")
NAMES = ["a", "b", "c", "d"]

numbers = st.one_of(
    st.integers(-10, 10),
    st.integers(-(2**70), 2**70),  # past 64 bits: Python ints are unbounded
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.sampled_from([0.0, -0.0, 1.0, 2.0, 0.1, 0.3, 1e308, 2.0**64, 2.0**53 + 1]),
)
#: values at the edges where validators tend to differ, drawn often so that they meet the schemas' constants
EDGES = [0, 1, -1, 2, 1.0, 0.3, 0.7, 7.5, 2**64, 2**70, 1e308, "", "a", "٣", "\U0001f600", True, False, None]
scalars = st.one_of(st.sampled_from(EDGES), st.none(), st.booleans(), numbers,
                    st.text(st.sampled_from("ab1٣ \U0001f600\u00e9"), max_size=5))
json_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4),
    st.dictionaries(st.sampled_from(NAMES + ["x"]), inner, max_size=4)), max_leaves=12)
types = st.sampled_from(["string", "integer", "number", "boolean", "null", "array", "object"])
small = st.integers(0, 4)


def schemas(depth: int = 2):
    sub = st.deferred(lambda: schemas(depth - 1)) if depth > 0 else st.just({})
    keyword = st.one_of(
        st.tuples(st.just("type"), st.one_of(types, st.lists(types, min_size=1, max_size=3, unique=True))),
        st.tuples(st.just("enum"), st.lists(json_values, min_size=1, max_size=3)),
        st.tuples(st.just("const"), json_values),
        st.tuples(st.sampled_from(["minLength", "maxLength", "minItems", "maxItems", "minProperties",
                                   "maxProperties"]), small),
        st.tuples(st.sampled_from(["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"]), numbers),
        st.tuples(st.just("multipleOf"), st.one_of(st.integers(1, 5), st.sampled_from([0.1, 0.5, 2.5, 2**64]))),
        st.tuples(st.just("uniqueItems"), st.booleans()),
        st.tuples(st.just("required"), st.lists(st.sampled_from(NAMES), max_size=3, unique=True)),
        st.tuples(st.just("dependentRequired"), st.dictionaries(st.sampled_from(NAMES),
                                                                st.lists(st.sampled_from(NAMES), unique=True))),
        st.tuples(st.just("format"), st.sampled_from(["email", "date-time", "uri", "ipv4", "regex"])),
        st.tuples(st.sampled_from(["title", "description"]), st.text(max_size=3)),
        st.tuples(st.just("pattern"), st.sampled_from(["^\\d$", "a+", "^[a-z]*$", "(?=a)"])),
        st.tuples(st.just("patternProperties"), st.dictionaries(st.sampled_from(["^a", "\\d"]), sub, max_size=1)),
        st.tuples(st.sampled_from(["items", "additionalProperties", "not", "if", "then", "else", "contains",
                                   "propertyNames", "unevaluatedProperties"]), sub),
        st.tuples(st.sampled_from(["allOf", "anyOf", "oneOf", "prefixItems"]), st.lists(sub, min_size=1,
                                                                                         max_size=3)),
        st.tuples(st.sampled_from(["properties", "dependentSchemas"]),
                  st.dictionaries(st.sampled_from(NAMES), sub, max_size=3)),
        st.tuples(st.just("$ref"), st.sampled_from(["#", "#/$defs/n", "#/properties/a", "#/nowhere"])),
        st.tuples(st.just("$defs"), st.fixed_dictionaries({"n": sub})),
    )
    return st.one_of(st.booleans(), st.lists(keyword, max_size=4).map(dict))


def _check_schema_or_none(schema):
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError:
        return None
    return schema


@settings(max_examples=1500, deadline=None, suppress_health_check=list(HealthCheck))
@given(schema=schemas(), instances=st.lists(st.one_of(st.sampled_from(EDGES), json_values), min_size=1, max_size=12))
def test_fast_check_decides_exactly_as_the_linear_one(schema, instances):
    if _check_schema_or_none(schema) is None:
        return  # the router passes such a schema through unchecked, whichever validator
    fast, linear = ArgumentValidator(schema), LinearValidator(schema)
    for instance in instances:
        expected = _outcome(linear.is_valid, instance)
        assert _outcome(fast.is_valid, instance) == expected, (schema, instance)
        if fast.compiled is not None:  # where it answers, the compiled check agrees both ways
            assert fast.compiled.is_valid(instance) == linear.is_valid(instance), (schema, instance)


NUMBERS = [e for e in EDGES if type(e) in (int, float)]
GRID_SCHEMAS = (
    [{"type": t} for t in ("string", "integer", "number", "boolean", "null", "array", "object")]
    + [{"enum": [e]} for e in EDGES] + [{"const": e} for e in EDGES] + [{"const": [1]}, {"const": {"a": 1}}]
    + [{k: n} for k in ("minLength", "maxLength", "minItems", "maxItems", "minProperties", "maxProperties")
       for n in (0, 1, 2)]
    + [{k: n} for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum") for n in NUMBERS]
    + [{"multipleOf": n} for n in (1, 2, 3, 2**64, 0.1, 0.5, 2.5)]
    + [{"uniqueItems": True}, {"required": ["a"]}, {"dependentRequired": {"a": ["b"]}},
       {"format": "email"}, {"format": "date-time"}, {"contains": {"const": 1}, "minContains": 2}]
)
GRID_INSTANCES = (EDGES + [[e] for e in EDGES] + [{"a": e} for e in EDGES]
                  + [[1, 1.0], [1, True], [0, False], [{"a": 1}, {"a": 1.0}], [[1], [True]], [1, 1], {"a": 1, "b": 2}])


def test_each_keyword_decides_exactly_as_the_linear_check_at_the_edges():
    compiled = 0
    for schema in GRID_SCHEMAS:
        fast, linear = ArgumentValidator(schema), LinearValidator(schema)
        compiled += fast.compiled is not None
        for instance in GRID_INSTANCES:
            expected = linear.is_valid(instance)
            assert fast.is_valid(instance) == expected, (schema, instance)
            if fast.compiled is not None:
                assert fast.compiled.is_valid(instance) == expected, (schema, instance)
    assert compiled >= len(GRID_SCHEMAS) - 3  # only the fractional multipleOf schemas stay linear


def _outcome(check, instance):
    """True/False, or the exception's type (a broken reference fails the same way on both paths)."""
    try:
        return check(instance)
    except Exception as exc:  # noqa: BLE001
        return type(exc)


def _tool_schemas() -> list[dict]:
    found = [tool["parameters"] for tool in json.loads(GOLDEN.read_text())]
    for path in sorted(REFERENCE.glob("*.openapi.json")):
        found += [spec.parameters for spec in discover_tools(json.loads(path.read_text())).specs()]
    return found


def test_our_tool_schemas_take_the_compiled_path():
    schemas_ = _tool_schemas()
    assert len(schemas_) >= 4
    for schema in schemas_:
        assert compiled_subset(schema), schema
        assert ArgumentValidator(schema).compiled is not None


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(index=st.integers(0, 1000), instance=st.one_of(
    json_values, st.dictionaries(st.sampled_from(["command", "path", "text", "count", "synonym", "synonym_values",
                                                  "old_str", "new_str", "view_range", "content", "x"]),
                                 json_values, max_size=4)))
def test_our_tool_schemas_decide_exactly_as_before(index, instance):
    schemas_ = _tool_schemas()
    schema = schemas_[index % len(schemas_)]
    fast, linear = ArgumentValidator(schema), LinearValidator(schema)
    assert fast.compiled.is_valid(instance) == linear.is_valid(instance), (schema, instance)


def test_schemas_outside_the_proven_subset_stay_linear():
    for schema in ({"type": "string", "pattern": "^\\d$"}, {"patternProperties": {"^a": {}}},
                   {"$id": "https://example.com/s", "type": "object"}, {"$ref": "https://example.com/s.json"},
                   {"multipleOf": 0.1}, {"unevaluatedProperties": False},
                   {"properties": {"a": {"$ref": "#/nowhere"}}}, {"$ref": "#"},
                   {"$defs": {"n": {"items": {"$ref": "#/$defs/n"}}}, "$ref": "#/$defs/n"}):
        assert not compiled_subset(schema), schema
        assert ArgumentValidator(schema).compiled is None
    # jsonschema-rs finds 0.3 a multiple of 0.1 (float division does not): left to the linear check
    assert not ArgumentValidator({"multipleOf": 0.1}).is_valid(0.3)
    assert not ArgumentValidator({"type": "string", "pattern": "^\\d$"}).is_valid("٣")
    # a property named like a keyword is still just a property
    assert compiled_subset({"type": "object", "properties": {"pattern": {"type": "string"}}})


def test_wrong_arguments_get_the_same_message_as_before():
    spec = ToolSpec(name="t", parameters={"type": "object", "properties": {"text": {"type": "string"}},
                                          "required": ["text"], "additionalProperties": False})
    tool = SchemaTool(spec, PatternBackend())
    assert tool.validator.compiled is not None
    with pytest.raises(Exception) as info:
        tool.parse({"text": 1, "more": True})
    assert str(info.value) == ("arguments do not match the tool's schema: at (root): Additional properties are "
                               "not allowed ('more' unexpected); at text: 1 is not of type 'string'")
    assert tool.parse({"text": "x"}) == {"text": "x"}
