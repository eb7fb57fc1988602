"""Tool backends: the protocol, name routing, and argument checking.

A backend is opened per rollout (it may hold a sandbox or an HTTP session) and
offers ``list_tools`` and ``call``. Errors the model can act on come back as a
``ToolResult`` with ``is_error``; only a backend that cannot be reached at all
raises (``ToolInfraError``), because then the rollout cannot go on.
"""

from __future__ import annotations

import functools
import time
from typing import Any, Protocol, runtime_checkable

import orjson
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from react_eval.sandboxes.base import Sandbox
from react_eval.tools.schema_check import LinearValidator
from react_eval.types import Task, ToolResult, ToolSpec


@runtime_checkable
class ToolBackend(Protocol):
    async def list_tools(self) -> list[ToolSpec]: ...

    async def call(self, name: str, arguments: dict[str, Any], *, timeout: float) -> ToolResult:
        """Run one tool. Must honour ``timeout`` and return errors as results."""
        ...

    async def aclose(self) -> None: ...


@runtime_checkable
class ToolSource(Protocol):
    """Opens a fresh backend per rollout (e.g. a Gym session seeded with the task's
    row, or the sandbox tools bound to the rollout's sandbox)."""

    label: str

    async def open(self, task: Task, sandbox: Sandbox | None) -> ToolBackend: ...


class DuplicateToolError(ValueError):
    """Two backends offer the same tool name: ambiguous routing, refused at start-up."""


class CompositeBackend:
    """Routes each call by tool name to the one backend that offers it."""

    def __init__(self, backends: dict[str, ToolBackend]):
        #: label -> backend; labels name backends in error messages
        self.backends = backends
        self._routes: dict[str, tuple[str, ToolBackend]] = {}
        self._specs: list[ToolSpec] = []
        self._validators: dict[str, Any] = {}

    async def start(self) -> "CompositeBackend":
        """Discover every backend's tools and build the routing table."""
        for label, backend in self.backends.items():
            for spec in await backend.list_tools():
                if spec.name in self._routes:
                    other = self._routes[spec.name][0]
                    raise DuplicateToolError(
                        f"tool {spec.name!r} is offered by both backend {other!r} and "
                        f"backend {label!r}; tool names must be unique across backends"
                    )
                self._routes[spec.name] = (label, backend)
                self._specs.append(spec)
                self._validators[spec.name] = _validator_for(spec.parameters)
        return self

    async def list_tools(self) -> list[ToolSpec]:
        return list(self._specs)

    def backend_label(self, name: str) -> str | None:
        route = self._routes.get(name)
        return route[0] if route else None

    def check_arguments(self, name: str, arguments: Any) -> str | None:
        """Return a readable reason when ``arguments`` fail the tool's schema."""
        if name not in self._routes:
            known = ", ".join(sorted(self._routes)) or "(none)"
            return f"unknown tool {name!r}; available tools: {known}"
        if not isinstance(arguments, dict):
            return f"arguments must be a JSON object, got {type(arguments).__name__}"
        validator = self._validators.get(name)
        if validator is None:
            return None
        if validator.is_valid(arguments):  # the common case, without collecting errors
            return None
        problems = sorted(validator.iter_errors(arguments), key=lambda e: list(e.path))
        if not problems:
            return None
        lines = []
        for err in problems[:5]:
            where = "/".join(str(p) for p in err.absolute_path) or "(root)"
            lines.append(f"at {where}: {err.message}")
        return "arguments do not match the tool's schema: " + "; ".join(lines)

    async def call(self, name: str, arguments: dict[str, Any], *, timeout: float) -> ToolResult:
        route = self._routes.get(name)
        if route is None:
            return ToolResult.error(self.check_arguments(name, arguments) or "", "unknown_tool")
        started = time.perf_counter()
        result = await route[1].call(name, arguments, timeout=timeout)
        if not result.latency_ms:
            result.latency_ms = (time.perf_counter() - started) * 1000
        return result

    async def aclose(self) -> None:
        for backend in self.backends.values():
            await backend.aclose()


def _validator_for(schema: dict[str, Any]) -> Any:
    """A validator for ``schema``, shared by every rollout whose tools have that
    schema (checking a schema costs more than a whole turn; validators are stateless)."""
    try:
        key = orjson.dumps(schema, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # not JSON data: cannot be a shared key, check it afresh
        return _make_validator(schema)
    return _cached_validator(key)


@functools.lru_cache(maxsize=1024)
def _cached_validator(key: bytes) -> Any:
    return _make_validator(orjson.loads(key))


def _make_validator(schema: dict[str, Any]) -> Any:
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError:
        return None  # a schema we cannot check is passed through unchecked
    return LinearValidator(schema)  # regexes in linear time: the schema and the strings are untrusted
