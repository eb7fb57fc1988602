"""Tool backends: the protocol, name routing, and the one place a call is run.

A backend is opened per rollout (it may hold a sandbox or an HTTP session) and
offers ``list_tools`` and ``call``; a backend of typed tools also offers
``typed_tools``. Every call, whoever makes it, goes through :func:`dispatch`:
the unknown-tool answer, the single argument check, the timeout guard and the
latency measurement live there and nowhere else. Errors the model can act on
come back as a ``ToolResult`` with ``is_error``; only a backend that cannot be
reached at all raises (``ToolInfraError``), because then the rollout cannot go on.
"""

from __future__ import annotations

import asyncio
import functools
import time
import types
from types import CoroutineType
from typing import Any, Awaitable, Coroutine, Generator, Mapping, Protocol, runtime_checkable

import orjson
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from react_eval.sandboxes.base import Sandbox
from react_eval.tools.schema_check import ArgumentValidator
from react_eval.tools.typed import SCHEMA_MISMATCH, InvalidArguments, Tool, ToolFailure
from react_eval.types import RolloutError, Task, ToolResult, ToolSpec

#: seconds past ``timeout`` the guard waits for a tool that stops itself at its timeout
TOOL_TIMEOUT_GRACE = 10.0


@runtime_checkable
class ToolBackend(Protocol):
    async def list_tools(self) -> list[ToolSpec]: ...

    async def call(self, name: str, arguments: dict[str, Any], *, timeout: float) -> ToolResult:
        """Run one tool (already checked against its schema). Should stop at
        ``timeout``; returns errors as results."""
        ...

    async def aclose(self) -> None: ...


@runtime_checkable
class ToolSource(Protocol):
    """Opens a fresh backend per rollout (e.g. a Gym session seeded with the task's
    row, or the sandbox tools bound to the rollout's sandbox)."""

    label: str

    async def open(self, task: Task, sandbox: Sandbox | None) -> ToolBackend: ...


async def dispatch(tools: Mapping[str, Tool], name: str, arguments: Any, timeout: float) -> ToolResult:
    """Run one call: the unknown-tool answer, the argument check, the timeout and the latency, once.

    A tool that stops itself at ``timeout`` (``own_timeout``) gets a grace
    period before the guard abandons it; any other tool is stopped at
    ``timeout``. ``RolloutError`` (the backend itself is gone) propagates;
    any other exception becomes an error result, never the end of the rollout.
    """
    tool = tools.get(name)
    if tool is None:
        known = ", ".join(sorted(tools)) or "(none)"
        return ToolResult.error(f"Error: unknown tool {name!r}; available tools: {known}", "unknown_tool")
    if not isinstance(arguments, dict):
        return ToolResult.error(f"Error: arguments must be a JSON object, got {type(arguments).__name__}",
                                "invalid_arguments")
    try:
        args = tool.parse(arguments)
    except InvalidArguments as exc:
        return ToolResult.error(f"Error: {exc}", "invalid_arguments")
    started = time.perf_counter()
    result: ToolResult | None = None
    limit = timeout + TOOL_TIMEOUT_GRACE if tool.own_timeout else timeout
    try:
        # The deadline guard (asyncio's own timeout: it cancels only this await) is set up
        # only when the tool suspends: its first step runs right here, and a tool that
        # finishes in it (an in-process tool that never waits) needed no timer, task or
        # cancellation to bound it. One that suspends is finished under the guard with the
        # deadline still counted from ``started`` (:func:`_finish_guarded`).
        run = tool.run(args, timeout)
        if type(run) is CoroutineType:
            try:
                yielded = run.send(None)
            except StopIteration as done:
                result = done.value
            else:
                result = await _finish_guarded(run, yielded, limit, started)
        else:  # some other awaitable: guarded from the start
            async with asyncio.timeout(limit):
                result = await run
    except RolloutError:
        raise  # infrastructure, not the model's doing
    except InvalidArguments as exc:  # a check that needs the tool's state
        result = ToolResult.error(f"Error: {exc}", "invalid_arguments")
    except ToolFailure as exc:
        result = ToolResult.error(str(exc), "tool_error")
    except TimeoutError:  # the guard's deadline or a tool's own (an OSError, not a file-system one)
        result = None
    except OSError as exc:
        result = ToolResult.error(describe_os_error(exc), "tool_error")
    except Exception as exc:  # a tool's bug must not end the rollout silently
        result = ToolResult.error(f"Error: {name} failed: {type(exc).__name__}: {exc}", "tool_error")
    if result is None:
        result = ToolResult.error(f"Error: {name} did not finish within {timeout:g}s and was abandoned.", "timeout")
    result.latency_ms = (time.perf_counter() - started) * 1000
    return result


async def _finish_guarded(run: Coroutine[Any, Any, ToolResult], yielded: Any, limit: float,
                          started: float) -> ToolResult:
    """The rest of ``run`` (stepped once: ``yielded`` is what that step gave the event loop),
    stopped ``limit`` seconds after ``started`` (a ``perf_counter`` reading): when it would
    have been had the guard been there from the start."""
    deadline = asyncio.get_running_loop().time() + limit - (time.perf_counter() - started)
    async with asyncio.timeout_at(deadline):
        return await _resumed(run, yielded)


@types.coroutine
def _resumed(run: Coroutine[Any, Any, ToolResult], yielded: Any) -> Generator[Any, Any, ToolResult]:
    """Awaits the rest of a coroutine already stepped once (``yielded`` is what that step gave
    the event loop): the task waits on it as the coroutine asked, then ``yield from`` delegates
    the rest (in C, as ``await`` would). Whatever is thrown in while that first wait lasts
    (the task's cancellation: the guard's deadline) reaches the coroutine too."""
    while True:
        try:
            yield yielded
        except GeneratorExit:
            run.close()
            raise
        except BaseException as exc:
            try:
                yielded = run.throw(exc)
            except StopIteration as done:
                return done.value
            continue  # it caught that and waits again
        return (yield from run)  # the event loop resumes with None, as ``await`` starts it


def describe_os_error(exc: OSError) -> str:
    """A file-system error as a sentence the model can act on."""
    where = exc.filename or (exc.args[0] if exc.args and isinstance(exc.args[0], str) else "")
    if isinstance(exc, PermissionError):
        return f"Permission denied: {exc.filename}" if exc.filename else f"Permission denied: {exc}"
    if isinstance(exc, FileNotFoundError):
        return f"No such file or directory: {where or exc}"
    if isinstance(exc, IsADirectoryError):
        return f"{where or 'the path'} is a directory, not a file; use `str_replace_editor` view or `ls` to list it"
    if isinstance(exc, NotADirectoryError):
        return f"A component of the path is not a directory: {where or exc}"
    if exc.errno is None:  # raised with a message of our own (e.g. a file over the read limit)
        return str(exc)
    return f"File operation failed: {exc}"


class SchemaTool(Tool):
    """A tool known only by its JSON schema (a Gym server's): checked against
    that schema, then run by its backend."""

    own_timeout = True  # backends honour the timeout they are given (the protocol says so)

    def __init__(self, spec: ToolSpec, backend: ToolBackend):
        self.spec = spec
        self.backend = backend
        self.validator = _validator_for(spec.parameters)

    def parse(self, arguments: dict[str, Any]) -> dict[str, Any]:
        validator = self.validator
        if validator is None or validator.is_valid(arguments):  # the common case, without collecting errors
            return arguments
        problems = sorted(validator.iter_errors(arguments), key=lambda e: list(e.path))
        lines = []
        for err in problems[:5]:
            where = "/".join(str(p) for p in err.absolute_path) or "(root)"
            lines.append(f"at {where}: {err.message}")
        raise InvalidArguments(SCHEMA_MISMATCH + "; ".join(lines))

    def run(self, args: dict[str, Any], timeout: float) -> Awaitable[ToolResult]:
        # the backend's own coroutine, not one more around it: the dispatcher steps it itself
        return self.backend.call(self.spec.name, args, timeout=timeout)


@runtime_checkable
class TypedBackend(Protocol):
    """A backend whose tools are :class:`Tool` objects the router can run directly."""

    def typed_tools(self) -> list[Tool]: ...


class DuplicateToolError(ValueError):
    """Two backends offer the same tool name: ambiguous routing, refused at start-up."""


class CompositeBackend:
    """Routes each call by tool name to the one backend that offers it."""

    def __init__(self, backends: dict[str, ToolBackend]):
        #: label -> backend; labels name backends in error messages
        self.backends = backends
        self._labels: dict[str, str] = {}
        self._tools: dict[str, Tool] = {}

    async def start(self) -> "CompositeBackend":
        """Discover every backend's tools and build the routing table."""
        for label, backend in self.backends.items():
            typed = getattr(backend, "typed_tools", None)  # a TypedBackend
            if typed is not None:
                tools = typed()
            else:
                tools = [SchemaTool(spec, backend) for spec in await backend.list_tools()]
            for tool in tools:
                if tool.name in self._tools:
                    raise DuplicateToolError(
                        f"tool {tool.name!r} is offered by both backend {self._labels[tool.name]!r} and "
                        f"backend {label!r}; tool names must be unique across backends"
                    )
                self._labels[tool.name] = label
                self._tools[tool.name] = tool
        return self

    async def list_tools(self) -> list[ToolSpec]:
        return [tool.spec for tool in self._tools.values()]

    def backend_label(self, name: str) -> str | None:
        return self._labels.get(name)

    def check_arguments(self, name: str, arguments: Any) -> str | None:
        """A readable reason when ``arguments`` do not fit tool ``name`` (None when they do)."""
        tool = self._tools.get(name)
        if tool is None:
            known = ", ".join(sorted(self._tools)) or "(none)"
            return f"unknown tool {name!r}; available tools: {known}"
        if not isinstance(arguments, dict):
            return f"arguments must be a JSON object, got {type(arguments).__name__}"
        try:
            tool.parse(arguments)
        except InvalidArguments as exc:
            return str(exc)
        return None

    def call(self, name: str, arguments: dict[str, Any], *, timeout: float) -> Awaitable[ToolResult]:
        """The call, as a coroutine to await (the dispatcher's own: no wrapper per call)."""
        return dispatch(self._tools, name, arguments, timeout)

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
    # compiled where proven equal, else regexes in linear time: the schema and the strings are untrusted
    return ArgumentValidator(schema)
