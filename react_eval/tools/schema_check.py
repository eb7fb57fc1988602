"""JSON Schema checking of tool arguments whose regexes run in linear time.

Tool schemas come from a server (a Gym ``/openapi.json``) and the strings come
from the model: both are untrusted. ``jsonschema`` matches ``pattern`` and
``patternProperties`` with Python's backtracking ``re``, so ``^(a+)+$`` against
thirty ``a``s and a ``b`` stalls the event loop (and every rollout on it) for
minutes. Here those keywords use RE2 (``google-re2``), which never backtracks.
A pattern RE2 cannot compile (look-around, back-references) is not checked
here; the server still validates its own input. Without the ``google-re2``
wheel, patterns are likewise left to the server, never run on the loop.
"""

from __future__ import annotations

import functools
from typing import Any

from jsonschema import Draft202012Validator, ValidationError, validators

try:
    import re2 as _re2
except ImportError:  # pragma: no cover - google-re2 is a core dependency
    _re2 = None


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
