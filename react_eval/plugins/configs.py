"""Config fields whose type comes from the registry.

``sandbox: {type: docker, ...}`` or ``{class: mypkg.mod.MyProvider, ...}``: the
field's validator looks the type up in the registry and validates the rest of
the mapping with that plugin's own pydantic config class, so a plugin's fields
get the same field-path errors (``sandboxes.x.memory: ...``) as a built-in's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from pydantic import (BaseModel, SerializeAsAny, SerializerFunctionWrapHandler, ValidationError,
                      ValidatorFunctionWrapHandler, WrapSerializer, WrapValidator)
from pydantic_core import InitErrorDetails, PydanticCustomError

from react_eval.plugins import registry
from react_eval.plugins.registry import PluginError


def _type_error(name: Any, message: str) -> ValidationError:
    detail = InitErrorDetails(type=PydanticCustomError("plugin_type", message), loc=("type",), input=name)
    return ValidationError.from_exception_data("plugin", [detail])


def validate_plugin_config(kind: str, value: Any, default: str | None = None,
                           base: type[BaseModel] = BaseModel) -> BaseModel:
    """``value`` (a mapping with ``type:`` or ``class:``) as its plugin's config object."""
    if isinstance(value, base):
        registry.name_of(kind, value)  # a config object of a registered plugin, or an error
        return value
    if not isinstance(value, dict):
        raise PydanticCustomError("plugin_config", "expected a mapping with type: NAME or class: pkg.module.Name")
    data = dict(value)
    path, name = data.pop("class", None), data.pop("type", None)
    if path is not None and name is not None:
        raise _type_error(name, "give type: or class:, not both")
    name = path if path is not None else name if name is not None else default
    if not isinstance(name, str) or not name:
        raise _type_error(name, f"required: one of {', '.join(registry.names(kind))} (or class: pkg.module.Name)")
    try:
        config_class = registry.config_class(kind, name)
    except PluginError as exc:
        raise _type_error(name, str(exc)) from None
    if not issubclass(config_class, base):
        raise _type_error(name, f"{kind.replace('_', ' ')} {name!r}: its config class {config_class.__name__} must "
                                f"subclass {base.__module__}.{base.__name__}")
    type_field = config_class.model_fields.get("type")
    if type_field is not None and (type_field.annotation is str or type_field.default == name):
        data["type"] = name
    return config_class.model_validate(data)


def dump_plugin_config(kind: str, value: BaseModel, handler: SerializerFunctionWrapHandler) -> Any:
    """The config as data that validates back to the same plugin (``type:``/``class:`` kept)."""
    data = handler(value)
    if not isinstance(data, dict):
        return data
    name = registry.name_of(kind, value)
    if registry.get(kind, name).origin == "class path" and data.get("type") != name:
        data.pop("type", None)
        return {"class": name, **data}
    return {"type": name, **{k: v for k, v in data.items() if k != "type"}}


def plugin_config(kind: str, default: str | None = None, base: type[BaseModel] = BaseModel, *,
                  named: bool = False) -> Any:
    """The annotated type of a config field holding a ``kind`` plugin's config
    (an instance of ``base``, which plugin config classes must subclass);
    ``named``: a string (the name of a config defined elsewhere) passes as is."""

    def validate(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        if named and isinstance(value, str):
            return value
        return validate_plugin_config(kind, value, default, base)

    def dump(value: Any, handler: SerializerFunctionWrapHandler) -> Any:
        return value if isinstance(value, str) else dump_plugin_config(kind, value, handler)

    if named:
        return Annotated[str | SerializeAsAny[base], WrapValidator(validate), WrapSerializer(dump)]  # type: ignore[valid-type,misc]
    return Annotated[SerializeAsAny[base], WrapValidator(validate), WrapSerializer(dump)]  # type: ignore[valid-type,misc]


if TYPE_CHECKING:  # what type checkers see: the config objects' common base
    SandboxConfig = BaseModel
    SandboxRef = str | BaseModel
    ToolSourceConfig = BaseModel
    GraderConfig = BaseModel
    ExecutorConfig = BaseModel
else:
    #: ``sandboxes.<name>`` and ``benchmarks.<i>.sandbox``
    SandboxConfig = plugin_config("sandbox")
    #: ``benchmarks.<i>.sandbox``: a name from ``sandboxes:`` or an inline sandbox config
    SandboxRef = plugin_config("sandbox", named=True)
    #: ``benchmarks.<i>.tool_sources[]``
    ToolSourceConfig = plugin_config("tool_source")
    #: ``benchmarks.<i>.grader``
    GraderConfig = plugin_config("grader")
    #: ``executor`` (``type:`` defaults to ``ray``, the one built in)
    ExecutorConfig = plugin_config("executor", default="ray")
