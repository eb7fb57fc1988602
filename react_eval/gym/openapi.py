"""Tool discovery from a NeMo Gym resources server's ``GET /openapi.json``.

Every ``POST`` operation becomes one tool, except the protocol endpoints
(:data:`RESERVED_PATHS`). The tool's JSON schema is the operation's JSON request
body with every ``$ref`` resolved into ``components``, so the model and the
argument checker see a self-contained schema.

Decisions worth knowing:

* **Recursion.** A ``$ref`` met again while it is still being expanded (a model
  that contains itself, directly or through others) is not expanded a second
  time. In its place goes a permissive schema: the target's own ``type`` when
  it declares one (``"object"`` for pydantic models), no constraint otherwise,
  plus its title and a ``description`` saying it has the same structure as the
  enclosing ``<Name>``. Values at that depth are therefore accepted unchecked
  and left for the server to validate. Expansion is also cut the same way past
  :data:`MAX_REF_DEPTH` nested references, so no schema can make it run away.
  Expansions that do not depend on an enclosing reference are memoised, so
  schemas that share components (the Responses API types) stay linear.
* **Names.** ``/increment_counter`` gives ``increment_counter`` (identical, as
  Gym's own agent posts to ``/{tool name}``); a nested path joins its segments
  with ``__`` (``/tree/sum`` -> ``tree__sum``); characters outside OpenAI's
  ``^[a-zA-Z0-9_-]{1,64}$`` become ``_``. A name that would be too long or that
  collides with another path's name gets a short hash of its path appended. The
  :class:`ToolCatalog` keeps the exact path of every name, so the mapping goes
  back without loss however the name was formed.
* **Request shape.** Arguments are sent as the JSON body, as Gym does. Path and
  query parameters, when an operation has them, become extra properties that
  are taken out of the arguments and put into the URL. A body that is not an
  object (an array, a scalar) is offered as a single ``body`` property.
* ``discriminator`` (OpenAPI-only, pointing into components) is dropped; data
  keywords (``const``, ``enum``, ``default``, ``example(s)``) are never walked.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote, unquote

from react_eval.types import ToolSpec

#: Paths that belong to the Gym protocol or to FastAPI itself, never tools.
RESERVED_PATHS: frozenset[str] = frozenset(
    {
        "/seed_session",
        "/verify",
        "/aggregate_metrics",
        "/run",
        "/health",
        # newer Gym versions: session lifecycle endpoints of the resources protocol
        "/close_session",
        "/sandbox_access",
        "/reverify_mode",
        # FastAPI's documentation routes
        "/docs",
        "/docs/oauth2-redirect",
        "/redoc",
        "/openapi.json",
    }
)

#: Nested ``$ref`` expansions allowed before a reference is cut like a recursive one.
MAX_REF_DEPTH = 32

_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_BAD_CHARS = re.compile(r"[^A-Za-z0-9_-]")
_DATA_KEYWORDS = frozenset({"const", "enum", "default", "example", "examples"})
_DROPPED_KEYWORDS = frozenset({"discriminator", "$defs", "definitions"})


class OpenAPIError(ValueError):
    """The document is not an OpenAPI description we can read."""


class PathParameterError(ValueError):
    """A path parameter's value would leave its path segment (``/``, ``.``, ``..``)
    or reach a protocol endpoint; the call is refused, never sent."""


def encode_path_value(name: str, value: Any) -> str:
    """``value`` as exactly one path segment: every byte but letters, digits,
    ``-``, ``_`` and ``~`` percent-encoded (dots too, so no client or proxy can
    take it for a dot segment); ``/``, empty, ``.`` and ``..`` are refused
    because a server decodes the segment before routing."""
    text = value if isinstance(value, str) else str(value)
    if text in ("", ".", "..") or "/" in text or "\\" in text or "\x00" in text:
        raise PathParameterError(
            f"path parameter {name!r} must be one non-empty path segment without '/', got {text!r}"
        )
    return quote(text, safe="").replace(".", "%2E")


# --------------------------------------------------------------------------- $ref


class SchemaResolver:
    """Expands local ``$ref``s of one OpenAPI (or JSON Schema) document."""

    def __init__(self, document: dict[str, Any]):
        self.document = document
        self._memo: dict[str, dict[str, Any]] = {}

    def resolve(self, schema: Any) -> Any:
        """``schema`` with every ``$ref`` replaced by what it points to (cycle-safe)."""
        return self._walk(schema, ())[0]

    def resolve_ref(self, ref: str) -> dict[str, Any]:
        """The fully expanded schema behind ``ref`` (e.g. ``#/components/schemas/X``)."""
        return self._walk({"$ref": ref}, ())[0]

    # Each walk returns (expanded, refs of enclosing expansions it was cut at):
    # an expansion that was cut only at refs it itself opened is context-free
    # and may be memoised.

    def _walk(self, node: Any, stack: tuple[str, ...]) -> tuple[Any, frozenset[str]]:
        if isinstance(node, list):
            out, cuts = [], frozenset()
            for item in node:
                value, c = self._walk(item, stack)
                out.append(value)
                cuts |= c
            return out, cuts
        if not isinstance(node, dict):
            return node, frozenset()
        ref = node.get("$ref")
        if isinstance(ref, str):
            return self._expand_ref(ref, node, stack)
        out: dict[str, Any] = {}
        cuts: frozenset[str] = frozenset()
        for key, value in node.items():
            if key in _DROPPED_KEYWORDS:
                continue
            if key in _DATA_KEYWORDS:
                out[key] = value
                continue
            if key == "properties" and isinstance(value, dict):
                props = {}
                for name, sub in value.items():  # property names are data, their values schemas
                    props[name], c = self._walk(sub, stack)
                    cuts |= c
                out[key] = props
                continue
            out[key], c = self._walk(value, stack)
            cuts |= c
        return out, cuts

    def _expand_ref(self, ref: str, node: dict[str, Any], stack: tuple[str, ...]) -> tuple[Any, frozenset[str]]:
        siblings = {k: v for k, v in node.items() if k != "$ref"}
        if not ref.startswith("#"):
            base: dict[str, Any] = {"description": f"(external reference {ref}; not resolved)"}
            cuts: frozenset[str] = frozenset()
        elif ref in stack or len(stack) >= MAX_REF_DEPTH:
            base, cuts = self._cut(ref, recursive=ref in stack), frozenset({ref} if ref in stack else set(stack))
        elif ref in self._memo:
            base, cuts = self._memo[ref], frozenset()
        else:
            target = self._lookup(ref)
            base, cuts = self._walk(target, stack + (ref,))
            cuts = cuts - {ref}
            if not cuts:
                self._memo[ref] = base
        if not siblings:
            return base, cuts
        extra, c = self._walk(siblings, stack)
        merged = dict(base) if isinstance(base, dict) else {"allOf": [base]}
        merged.update(extra)
        return merged, cuts | c

    def _cut(self, ref: str, *, recursive: bool) -> dict[str, Any]:
        target = self._lookup(ref) if ref.startswith("#") else {}
        name = target.get("title") or ref.rsplit("/", 1)[-1]
        stub: dict[str, Any] = {}
        if isinstance(target.get("type"), str):
            stub["type"] = target["type"]
        stub["title"] = name
        if recursive:
            stub["description"] = (
                f"Recursive: the same structure as the enclosing {name} (not expanded again here)."
            )
        else:
            stub["description"] = f"{name} (nested too deeply to expand here)."
        return stub

    def _lookup(self, ref: str) -> Any:
        node: Any = self.document
        pointer = ref[1:]
        if pointer in ("", "/"):
            return node
        for raw in pointer.lstrip("/").split("/"):
            part = unquote(raw).replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                raise OpenAPIError(f"$ref {ref!r} points at nothing in the document")
        return node


def contains_ref(value: Any) -> bool:
    """Whether a ``$ref`` key is left anywhere in ``value``."""
    if isinstance(value, dict):
        return "$ref" in value or any(contains_ref(v) for v in value.values())
    if isinstance(value, list):
        return any(contains_ref(v) for v in value)
    return False


# --------------------------------------------------------------------------- names


def base_tool_name(path: str) -> str:
    """The natural tool name of ``path``: segments joined by ``__``, unsafe characters ``_``."""
    segments = [s for s in path.split("/") if s]
    parts = [_BAD_CHARS.sub("_", s[1:-1] if s.startswith("{") and s.endswith("}") else s) for s in segments]
    return "__".join(parts) or "root"


def _hashed(name: str, path: str) -> str:
    digest = hashlib.sha1(path.encode()).hexdigest()[:8]
    return f"{name[:55]}_{digest}"


def assign_tool_names(paths: list[str]) -> dict[str, str]:
    """Unique, valid tool names for ``paths`` (path -> name), deterministic.

    A path whose natural name is valid and unclaimed keeps it; paths whose name
    is literally their only segment (``/x`` -> ``x``) win ties, so flat Gym
    tools keep their exact names.
    """
    natural = {p: base_tool_name(p) for p in paths}
    # flat, untransformed paths first, then the rest in order
    order = sorted(paths, key=lambda p: (natural[p] != p.strip("/"), paths.index(p)))
    taken: set[str] = set()
    names: dict[str, str] = {}
    for path in order:
        name = natural[path]
        if not _NAME_RE.match(name) or name in taken:
            name = _hashed(name, path)
            salt = 0
            while name in taken:  # astronomically unlikely; still never ambiguous
                salt += 1
                name = _hashed(natural[path], f"{path}#{salt}")
        taken.add(name)
        names[path] = name
    return {p: names[p] for p in paths}


# --------------------------------------------------------------------------- tools

BodyMode = Literal["object", "wrapped", "none"]


@dataclass(frozen=True)
class ToolRoute:
    """One discovered tool and how its arguments become an HTTP request."""

    name: str
    path: str  # the OpenAPI path (template), exactly as the server declares it
    description: str
    parameters: dict[str, Any]
    body: BodyMode = "object"
    path_params: tuple[str, ...] = ()
    query_params: tuple[str, ...] = ()

    def spec(self) -> ToolSpec:
        return ToolSpec(name=self.name, description=self.description, parameters=self.parameters)

    def request(self, arguments: dict[str, Any]) -> tuple[str, dict[str, Any], Any]:
        """(URL path, query parameters, JSON body or None) for one call."""
        args = dict(arguments)
        url = self.path
        for name in self.path_params:
            url = url.replace("{" + name + "}", encode_path_value(name, args.pop(name, "")))
        if unquote(url).rstrip("/") in RESERVED_PATHS:
            raise PathParameterError(f"the arguments of {self.name} would address {unquote(url)!r}, a protocol endpoint")
        query = {n: args.pop(n) for n in self.query_params if n in args}
        if self.body == "none":
            return url, query, None
        if self.body == "wrapped":
            return url, query, args.get("body")
        return url, query, args


@dataclass
class ToolCatalog:
    """The tools of one server: name -> route, plus what was left out and why."""

    routes: dict[str, ToolRoute] = field(default_factory=dict)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def specs(self) -> list[ToolSpec]:
        return [r.spec() for r in self.routes.values()]

    def route(self, name: str) -> ToolRoute | None:
        return self.routes.get(name)

    def path_for(self, name: str) -> str:
        return self.routes[name].path

    def name_for(self, path: str) -> str:
        for route in self.routes.values():
            if route.path == path:
                return route.name
        raise KeyError(path)


def _description(op: dict[str, Any]) -> str:
    summary = (op.get("summary") or "").strip()
    text = (op.get("description") or "").strip()
    if summary and text and summary not in text:
        return f"{summary}\n\n{text}"
    return text or summary


def _object_like(schema: Any) -> bool:
    if not isinstance(schema, dict):
        return False
    if schema.get("type") == "object" or "properties" in schema:
        return True
    branches = schema.get("anyOf") or schema.get("oneOf")
    if isinstance(branches, list) and branches:
        return all(_object_like(b) for b in branches)
    if isinstance(schema.get("allOf"), list) and schema["allOf"]:
        return any(_object_like(b) for b in schema["allOf"])
    return False


def discover_tools(document: dict[str, Any]) -> ToolCatalog:
    """Every non-reserved ``POST`` operation of ``document`` as a tool."""
    if not isinstance(document, dict) or not isinstance(document.get("paths"), dict):
        raise OpenAPIError("not an OpenAPI document: no 'paths' object")
    resolver = SchemaResolver(document)
    catalog = ToolCatalog()
    candidates: list[tuple[str, dict[str, Any]]] = []
    for path, item in document["paths"].items():
        if not isinstance(item, dict) or not isinstance(item.get("post"), dict):
            continue
        if path.rstrip("/") in RESERVED_PATHS or path in RESERVED_PATHS:
            continue
        candidates.append((path, item))
    names = assign_tool_names([p for p, _ in candidates])
    for path, item in candidates:
        op = item["post"]
        try:
            route = _route(names[path], path, item, op, resolver)
        except OpenAPIError as exc:
            catalog.skipped.append((path, str(exc)))
            continue
        catalog.routes[route.name] = route
    return catalog


def _route(name: str, path: str, item: dict[str, Any], op: dict[str, Any], resolver: SchemaResolver) -> ToolRoute:
    body_schema: Any = None
    body: BodyMode = "none"
    request_body = op.get("requestBody")
    if isinstance(request_body, dict) and "$ref" in request_body:
        request_body = resolver.resolve(request_body)
    if isinstance(request_body, dict):
        content = request_body.get("content") or {}
        json_media = next((v for k, v in content.items() if k.split(";")[0].strip() == "application/json"), None)
        if json_media is None:
            raise OpenAPIError(f"request body is not JSON (content types: {', '.join(content) or 'none'})")
        body_schema = resolver.resolve(json_media.get("schema") or {})
        body = "object" if _object_like(body_schema) else "wrapped"

    params: dict[str, tuple[str, dict[str, Any], bool]] = {}
    for raw in list(item.get("parameters") or []) + list(op.get("parameters") or []):
        p = resolver.resolve(raw)
        where = p.get("in")
        if where not in ("path", "query"):
            if p.get("required"):
                raise OpenAPIError(f"required {where} parameter {p.get('name')!r} cannot be sent by a tool call")
            continue
        schema = dict(p.get("schema") or {})
        if p.get("description") and "description" not in schema:
            schema["description"] = p["description"]
        params[p["name"]] = (where, schema, where == "path" or bool(p.get("required")))

    if body == "object" and not params:
        parameters = body_schema
    else:
        properties: dict[str, Any] = {}
        required: list[str] = []
        if body == "object":
            if "properties" not in body_schema:
                raise OpenAPIError("a union request body cannot be combined with path or query parameters")
            properties.update(body_schema.get("properties") or {})
            required.extend(body_schema.get("required") or [])
        elif body == "wrapped":
            properties["body"] = body_schema
            required.append("body")
        for pname, (_, schema, req) in params.items():
            if pname in properties:
                raise OpenAPIError(f"parameter {pname!r} has the same name as a body field")
            properties[pname] = schema
            if req:
                required.append(pname)
        parameters = {"type": "object", "properties": properties}
        if required:
            parameters["required"] = required
    if not parameters:
        parameters = {"type": "object", "properties": {}}
    return ToolRoute(
        name=name,
        path=path,
        description=_description(op),
        parameters=parameters,
        body=body,
        path_params=tuple(n for n, (w, _, _) in params.items() if w == "path"),
        query_params=tuple(n for n, (w, _, _) in params.items() if w == "query"),
    )
