"""Tools as typed objects: arguments declared once, as a pydantic model.

A :class:`TypedTool` declares its arguments as a pydantic model (``Params``);
the JSON schema offered to the model, the parsing of the model's arguments and
the messages sent back when they are wrong all come from that one model. A
:class:`Tool` is what the dispatcher (:func:`react_eval.tools.base.dispatch`)
runs: tools whose schema comes from elsewhere (a Gym server's
``/openapi.json``) are Tools too, checked against that schema instead.

A new tool is one class::

    class GrepArguments(BaseModel):
        model_config = ConfigDict(extra="forbid", strict=True)
        pattern: str = Field(description="The regular expression.")
        max_hits: int | None = Field(None, ge=1, description="Stop after this many.")

    class GrepTool(TypedTool):
        name = "grep"
        description = "Search the files for a pattern."
        Params = GrepArguments

        async def run(self, args: GrepArguments, timeout: float) -> ToolResult:
            ...

and a backend offers it with ``typed_tools()``. ``run`` raises
:class:`ToolFailure` for a mistake the model can fix; the dispatcher turns it,
a timeout or any other exception into an error observation.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ValidationError

from react_eval.types import ToolResult, ToolSpec


class ToolFailure(Exception):
    """A mistake the model can correct (a wrong path, an ambiguous edit): a ``tool_error`` result."""


class InvalidArguments(Exception):
    """Arguments that do not fit the tool: an ``invalid_arguments`` result."""


class Tool:
    """One tool the model can call: its spec, how its arguments are checked, how it runs."""

    spec: ToolSpec
    #: the tool stops itself at ``timeout`` and reports what it got so far (bash,
    #: an HTTP request); the dispatcher's guard then waits a grace period longer
    own_timeout: ClassVar[bool] = False

    @property
    def name(self) -> str:
        return self.spec.name

    def parse(self, arguments: dict[str, Any]) -> Any:
        """The arguments in the form :meth:`run` takes; raises :class:`InvalidArguments`."""
        return arguments

    async def run(self, args: Any, timeout: float) -> ToolResult:
        raise NotImplementedError


class TypedTool(Tool):
    """A tool whose arguments are the pydantic model ``Params``.

    Subclasses set ``name``, ``description`` and ``Params`` and implement
    ``run(params, timeout)``; ``spec`` is built from them once per class.
    """

    name: ClassVar[str]  # type: ignore[assignment]
    description: ClassVar[str]
    Params: ClassVar[type[BaseModel]]
    _specs: ClassVar[dict[type, ToolSpec]] = {}

    @classmethod
    def tool_spec(cls) -> ToolSpec:
        """The spec built from the class (shared: callers must not change it)."""
        spec = TypedTool._specs.get(cls)
        if spec is None:
            spec = TypedTool._specs[cls] = ToolSpec(name=cls.name, description=cls.description,
                                                    parameters=tool_schema(cls.Params))
        return spec

    @property
    def spec(self) -> ToolSpec:  # type: ignore[override]
        return type(self).tool_spec()

    def parse(self, arguments: dict[str, Any]) -> BaseModel:
        try:
            return self.Params.model_validate(arguments)
        except ValidationError as exc:
            raise InvalidArguments(describe_errors(exc)) from None


# ---- the schema the model sees -------------------------------------------------------

#: key order of a property in the offered schema (then any other key, as pydantic gives it)
_KEY_ORDER = ("type", "enum", "items", "minItems", "maxItems", "minimum", "maximum", "minLength", "maxLength",
              "description")


def tool_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The JSON schema of a tool's arguments, as a model reads it best.

    pydantic's schema is reshaped into the plain form tool-calling models are
    trained on: no titles, no ``default``, and an optional field (``X | None``,
    meaning "leave it out") shown as plain ``X`` rather than ``anyOf [X, null]``.
    """
    raw = model.model_json_schema()
    properties = {name: _plain(prop) for name, prop in raw.get("properties", {}).items()}
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if raw.get("required"):
        schema["required"] = list(raw["required"])
    if model.model_config.get("extra") == "forbid":
        schema["additionalProperties"] = False
    return schema


def _plain(prop: dict[str, Any]) -> dict[str, Any]:
    prop = {k: v for k, v in prop.items() if k not in ("title", "default")}
    options = prop.pop("anyOf", None)
    if options is not None:
        kept = [o for o in options if o != {"type": "null"}]
        if len(kept) == 1:
            prop = {**kept[0], **prop}
        else:
            prop["anyOf"] = kept
    if isinstance(prop.get("items"), dict):
        prop["items"] = _plain(prop["items"])
    ordered = {k: prop[k] for k in _KEY_ORDER if k in prop}
    ordered.update((k, v) for k, v in prop.items() if k not in ordered)
    return ordered


# ---- messages for the model ----------------------------------------------------------


#: how every argument-check message starts, whatever checked the arguments
SCHEMA_MISMATCH = "arguments do not match the tool's schema: "


def describe_errors(exc: ValidationError, limit: int = 5) -> str:
    """A ValidationError as one line the model can act on."""
    return SCHEMA_MISMATCH + "; ".join(_describe(err) for err in exc.errors(include_url=False)[:limit])


def _describe(err: Any) -> str:
    where = ".".join(str(p) for p in err["loc"])
    kind = err["type"]
    if kind == "missing":
        return f"`{where}` is required"
    if kind == "extra_forbidden":
        return f"`{where}` is not an argument of this tool"
    if kind == "value_error":  # a check of ours, already in the model's words
        message = str(err["ctx"]["error"])
        return f"`{where}`: {message}" if where else message
    got = repr(err.get("input"))
    got = got if len(got) <= 80 else got[:77] + "..."
    return f"`{where}`: {err['msg'][0].lower()}{err['msg'][1:]}, got {got}" if where else f"{err['msg']}, got {got}"
