"""JSON Schema checking of tool arguments whose regexes run in linear time.

Tool schemas come from a server (a Gym ``/openapi.json``) and the strings come
from the model: both are untrusted. ``jsonschema`` matches ``pattern`` and
``patternProperties`` with Python's backtracking ``re``, so ``^(a+)+$`` against
thirty ``a``s and a ``b`` stalls the event loop (and every rollout on it) for
minutes. Here those keywords use RE2 (``google-re2``), which never backtracks.
A pattern RE2 cannot compile (look-around, back-references) is not checked
here; the server still validates its own input. Without the ``google-re2``
wheel, patterns are likewise left to the server, never run on the loop.

Checking is on every tool call, so :class:`ArgumentValidator` first asks a
compiled validator (``jsonschema-rs``, Draft 2020-12, no network) and only
when it says no, or cannot decide, asks :data:`LinearValidator`, whose answer
and messages are then the ones given. The compiled one is used only for
schemas built from keywords on which the two are proven to agree
(:func:`compiled_subset`, tests/tools/test_schema_check.py); any other schema
(a ``pattern``: another regex engine; ``$id``; a remote ``$ref``; a
fractional ``multipleOf``, which the two decide differently) is checked by ``LinearValidator`` alone. So the
answer is never more lenient than ``LinearValidator``'s.
"""

from __future__ import annotations

import functools
from typing import Any

from jsonschema import Draft202012Validator, ValidationError, validators
from referencing import Registry
from referencing.jsonschema import DRAFT202012

try:
    import re2 as _re2
except ImportError:  # pragma: no cover - google-re2 is a core dependency
    _re2 = None

try:
    import jsonschema_rs as _rs
except ImportError:  # pragma: no cover - jsonschema-rs is a core dependency
    _rs = None


@functools.lru_cache(maxsize=4096)
def _compiled(pattern: str) -> Any | None:
    """The RE2 program for ``pattern``, or None when RE2 cannot run it."""
    if _re2 is None or not isinstance(pattern, str):
        return None
    options = _re2.Options()
    options.log_errors = False
    try:
        return _re2.compile(pattern, options)
    except Exception:  # re2.error: a construct RE2 does not support
        return None


def linear_search(pattern: str, text: str) -> bool | None:
    """Whether ``pattern`` matches somewhere in ``text``; None when it cannot
    be decided in linear time (then the caller must not reject)."""
    program = _compiled(pattern)
    if program is None:
        return None
    return program.search(text) is not None


def _pattern(validator, pattern, instance, schema):
    if validator.is_type(instance, "string") and linear_search(pattern, instance) is False:
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _matches_any(patterns, name: str) -> bool:
    return any(linear_search(p, name) is not False for p in patterns)


def _pattern_properties(validator, pattern_properties, instance, schema):
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in pattern_properties.items():
        for key, value in instance.items():
            if linear_search(pattern, key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _additional_properties(validator, additional, instance, schema):
    if not validator.is_type(instance, "object"):
        return
    known = schema.get("properties", {})
    patterns = list(schema.get("patternProperties", {}))
    extras = [k for k in instance if k not in known and not (patterns and _matches_any(patterns, k))]
    if validator.is_type(additional, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], additional, path=extra)
    elif not additional and extras:
        yield ValidationError(
            "Additional properties are not allowed (" + ", ".join(repr(e) for e in sorted(extras)) + " unexpected)"
        )


LinearValidator = validators.extend(
    Draft202012Validator,
    {
        "pattern": _pattern,
        "patternProperties": _pattern_properties,
        "additionalProperties": _additional_properties,
    },
)


# ---- the compiled fast path -------------------------------------------------------------

#: keywords whose value is data (or an annotation), on which both validators agree
_DATA_KEYWORDS = frozenset({
    "type", "enum", "const", "required", "dependentRequired", "minLength", "maxLength", "minimum", "maximum",
    "exclusiveMinimum", "exclusiveMaximum", "minItems", "maxItems", "uniqueItems", "minProperties",
    "maxProperties", "minContains", "maxContains", "format", "title", "description", "default", "examples",
    "deprecated", "readOnly", "writeOnly", "$comment",
})
#: keywords whose value is one subschema
_SCHEMA_KEYWORDS = frozenset({"items", "additionalProperties", "not", "if", "then", "else", "contains",
                              "propertyNames"})
#: keywords whose value is a list of subschemas
_SCHEMA_LIST_KEYWORDS = frozenset({"allOf", "anyOf", "oneOf", "prefixItems"})
#: keywords whose value maps names to subschemas
_SCHEMA_MAP_KEYWORDS = frozenset({"properties", "$defs", "definitions", "dependentSchemas"})
#: keys that change how references resolve: anywhere in a schema, they leave it to LinearValidator
_RESOLUTION_KEYS = frozenset({"$id", "$schema", "$anchor", "$dynamicAnchor", "$dynamicRef", "$recursiveRef",
                              "$recursiveAnchor", "$vocabulary"})


def compiled_subset(schema: Any) -> bool:
    """Whether ``schema`` uses only keywords on which jsonschema-rs decides as :data:`LinearValidator` does.

    Left out: ``pattern`` and ``patternProperties`` (two regex engines whose
    dialects are not proven equal), ``multipleOf`` by a fraction (jsonschema-rs
    finds 0.3 a multiple of 0.1; float division here does not), ``unevaluated*``, ``content*``, any
    ``$ref`` that is not a pointer into the schema itself, any key that
    changes resolution, references that lead back to themselves (recursive
    types), and keywords not listed here.
    """
    if _has_resolution_key(schema):
        return False
    done: set[int] = set()  # subschemas already found fine
    open_: set[int] = set()  # subschemas being walked: meeting one again is a reference cycle

    def walk(node: Any) -> bool:
        if isinstance(node, bool) or id(node) in done:
            return True
        if not isinstance(node, dict) or id(node) in open_:
            return False
        open_.add(id(node))
        for key, value in node.items():
            if key in _DATA_KEYWORDS:
                continue
            if key in _SCHEMA_KEYWORDS:
                ok = walk(value)
            elif key in _SCHEMA_LIST_KEYWORDS:
                ok = isinstance(value, list) and all(walk(v) for v in value)
            elif key in _SCHEMA_MAP_KEYWORDS:
                ok = isinstance(value, dict) and all(walk(v) for v in value.values())
            elif key == "multipleOf":
                ok = type(value) is int
            elif key == "$ref":
                ok = isinstance(value, str) and walk(_pointer(schema, value))
            else:
                ok = False
            if not ok:
                return False
        open_.discard(id(node))
        done.add(id(node))
        return True

    return walk(schema)


def _has_resolution_key(node: Any) -> bool:
    if isinstance(node, dict):
        return any(k in _RESOLUTION_KEYS or _has_resolution_key(v) for k, v in node.items())
    if isinstance(node, list):
        return any(_has_resolution_key(v) for v in node)
    return False


def _pointer(root: Any, ref: str) -> Any:
    """The subschema ``ref`` (``#`` or ``#/a/b``) points to in ``root``, found as jsonschema
    itself finds it (``referencing``); None when it points elsewhere or at nothing."""
    if not ref.startswith("#"):
        return None
    try:
        return DRAFT202012.create_resource(root).pointer(ref[1:], Registry().resolver()).contents
    except Exception:  # PointerToNowhere, or a path through something that is not a schema
        return None


def _compiled_validator(schema: Any) -> Any | None:
    if _rs is None or not compiled_subset(schema):
        return None
    try:
        return _rs.Draft202012Validator(schema, validate_formats=False, offline=True,
                                        pattern_options=_rs.RegexOptions())
    except Exception:  # a schema it refuses: LinearValidator alone
        return None


class ArgumentValidator:
    """A tool's argument check: the compiled validator's yes, else :data:`LinearValidator`'s answer.

    ``is_valid`` is True exactly when ``LinearValidator`` says so (the compiled
    one only answers for schemas of :func:`compiled_subset`, where they agree);
    ``iter_errors`` is ``LinearValidator``'s, so messages are unchanged."""

    __slots__ = ("schema", "compiled", "linear")

    def __init__(self, schema: Any):
        self.schema = schema
        self.compiled = _compiled_validator(schema)
        self.linear = LinearValidator(schema)

    def is_valid(self, instance: Any) -> bool:
        compiled = self.compiled
        if compiled is not None:
            try:
                if compiled.is_valid(instance):
                    return True
            except Exception:  # a value it cannot take (e.g. not JSON data): the linear check decides
                pass
        return self.linear.is_valid(instance)

    def iter_errors(self, instance: Any) -> Any:
        return self.linear.iter_errors(instance)
