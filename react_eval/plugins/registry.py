"""One registry for every pluggable part: benchmarks, sandboxes, tool sources,
solvers, graders and executors.

A plugin is a *name* bound to a *target* (a class or factory) and, for the kinds
configured in YAML, the target's pydantic *config class*. Three ways fill it:

- the built-ins (:mod:`react_eval.plugins.builtins`), one line each, by dotted
  path, so nothing is imported until a run asks for it;
- Python entry points of the groups ``react_eval.benchmarks``,
  ``react_eval.sandboxes``, ``react_eval.tool_sources``, ``react_eval.solvers``,
  ``react_eval.graders`` and ``react_eval.executors`` (read on first lookup, loaded on first use);
- a dotted class path written where a name would go (``class: pkg.mod.Name`` or
  ``type: pkg.mod.Name``), registered under that path the first time it is seen.

Adding a kind is one entry in :data:`KINDS`.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import importlib.metadata
import importlib.util
import inspect
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

from pydantic import BaseModel, ConfigDict

#: kind -> entry-point group (a new kind is one line here plus its built-ins)
KINDS: dict[str, str] = {
    "benchmark": "react_eval.benchmarks",
    "sandbox": "react_eval.sandboxes",
    "tool_source": "react_eval.tool_sources",
    "solver": "react_eval.solvers",
    "grader": "react_eval.graders",
    "executor": "react_eval.executors",
}


class PluginError(ValueError):
    """A plugin that cannot be found, imported or built (worded for the config's author)."""


class UnknownPlugin(PluginError):
    """A name no built-in, entry point or class path provides (the message lists the known ones)."""


class MissingExtra(ImportError):
    """A plugin needs an optional dependency that is not installed."""


class NoOptions(BaseModel):
    """The config of a plugin that declares none: only its ``type``."""

    model_config = ConfigDict(extra="forbid")

    type: str


def import_path(path: str) -> Any:
    """The object at ``pkg.mod:Name`` or ``pkg.mod.Name`` (nested ``A.B`` after a colon works too)."""
    if ":" in path:
        module_name, _, attrs = path.partition(":")
    else:
        module_name, _, attrs = path.rpartition(".")
    if not module_name or not attrs:
        raise PluginError(f"{path!r} is not a dotted class path (pkg.module.Name)")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise PluginError(f"cannot import {module_name!r} (from {path!r}): {exc}") from exc
    for attr in attrs.split("."):
        try:
            obj = getattr(obj, attr)
        except AttributeError:
            raise PluginError(f"module {module_name!r} has no attribute {attrs!r} (from {path!r})") from None
    return obj


def looks_like_path(name: str) -> bool:
    return ":" in name or ("." in name and all(p.isidentifier() for p in name.replace(":", ".").split(".")))


def needs_module(module: str, extra: str, factory: Callable[..., Any]) -> Callable[..., Any]:
    """``factory``, refusing with the pip command of ``extra`` while ``module`` is missing."""

    def make(*args: Any, **options: Any) -> Any:
        if importlib.util.find_spec(module) is None:
            raise MissingExtra(f"{getattr(factory, 'name', None) or factory.__name__} needs the optional package "
                               f"{module!r}: pip install 'react-eval[{extra}]'")
        return factory(*args, **options)

    functools.update_wrapper(make, factory, assigned=("__module__", "__name__", "__qualname__", "__doc__"),
                             updated=())
    make.__signature__ = inspect.signature(factory)  # type: ignore[attr-defined]
    for attr in ("name", "description", "verification", "env_var", "config_class"):
        if hasattr(factory, attr):
            setattr(make, attr, getattr(factory, attr))
    make.extra = extra  # type: ignore[attr-defined]
    make.missing = lambda: importlib.util.find_spec(module) is None  # type: ignore[attr-defined]
    return make


@dataclass
class Plugin:
    """One registered name: where its target and config class come from, loaded on first use."""

    kind: str
    name: str
    #: the class or factory, or its dotted path (``pkg.mod:Name``)
    target: Any
    #: its pydantic config class (or dotted path); None = the target's ``config_class``, if any
    config: Any = None
    #: "builtin", "entry point <dist>", "class path" or "register()"
    origin: str = "register()"
    #: (module, extra): the optional dependency the target needs
    needs: tuple[str, str] | None = None
    _loaded: Any = field(default=None, repr=False)
    _config_loaded: Any = field(default=None, repr=False)

    def __getstate__(self) -> dict[str, Any]:
        """Sent to worker processes by path where it has one (they import it themselves)."""
        state = dict(self.__dict__)
        if isinstance(self.target, str):
            state["_loaded"] = None
        if isinstance(self.config, str):
            state["_config_loaded"] = None
        return state

    def load(self) -> Any:
        if self._loaded is None:
            target = import_path(self.target) if isinstance(self.target, str) else self.target
            if self.needs is not None:
                target = needs_module(*self.needs, target)
            self._loaded = target
        return self._loaded

    def config_class(self) -> type[BaseModel]:
        """The pydantic model this plugin's YAML mapping is validated with."""
        if self._config_loaded is None:
            config = self.config
            if isinstance(config, str):
                config = import_path(config)
            if config is None:
                config = getattr(self.load(), "config_class", None) or NoOptions
            if not (isinstance(config, type) and issubclass(config, BaseModel)):
                raise PluginError(f"{self.kind} {self.name!r}: its config class {config!r} is not a pydantic model")
            self._config_loaded = config
        return self._config_loaded


class Registry:
    """Plugins by kind and name. Thread-safe; entry points are read once, lazily."""

    def __init__(self, builtins: list[Plugin] | None = None, *, entry_points: bool = True):
        self._plugins: dict[str, dict[str, Plugin]] = {kind: {} for kind in KINDS}
        self._by_config: dict[tuple[str, type], str] = {}
        self._lock = threading.RLock()
        self._entry_points_read = not entry_points
        for plugin in builtins or []:
            self._plugins[plugin.kind][plugin.name] = plugin

    # ------------------------------------------------------------ filling

    def register(self, kind: str, name: str, target: Any, *, config: Any = None,
                 needs: tuple[str, str] | None = None, origin: str = "register()") -> Plugin:
        """Add (or replace) ``name``; every other name, built-in or not, stays."""
        self._check_kind(kind)
        plugin = Plugin(kind, name, target, config, origin, needs)
        with self._lock:
            self._plugins[kind][name] = plugin
            self._by_config = {k: v for k, v in self._by_config.items() if k[0] != kind or v != name}
        return plugin

    def adopt(self, plugins: list[Plugin]) -> None:
        """Add plugins resolved by another process (e.g. class paths a worker has not seen); names kept."""
        with self._lock:
            for plugin in plugins:
                self._plugins[plugin.kind].setdefault(plugin.name, plugin)

    def unregister(self, kind: str, name: str) -> None:
        with self._lock:
            self._plugins[kind].pop(name, None)
            self._by_config = {k: v for k, v in self._by_config.items() if k[0] != kind or v != name}

    def _read_entry_points(self) -> None:
        """Entry points name their targets by path: nothing is imported here.
        A built-in keeps its name; a plugin that reuses one is skipped."""
        with self._lock:
            if self._entry_points_read:
                return
            self._entry_points_read = True
            found = importlib.metadata.entry_points()  # one scan of the installed distributions
            for kind, group in KINDS.items():
                for ep in found.select(group=group):
                    if ep.name in self._plugins[kind]:
                        continue
                    dist = getattr(ep.dist, "name", None) or "?"
                    self._plugins[kind][ep.name] = Plugin(kind, ep.name, ep.value, origin=f"entry point ({dist})")

    # ------------------------------------------------------------ lookup

    def names(self, kind: str) -> list[str]:
        """The names of ``kind`` one can choose: built-ins, entry points, register() (not class paths seen)."""
        self._check_kind(kind)
        self._read_entry_points()
        return sorted(n for n, p in self._plugins[kind].items() if p.origin != "class path")

    def plugins(self, kind: str) -> dict[str, Plugin]:
        self._read_entry_points()
        return dict(self._plugins[kind])

    def get(self, kind: str, name: str) -> Plugin:
        """The plugin of ``name``; a dotted class path is registered on first sight."""
        self._check_kind(kind)
        self._read_entry_points()
        plugin = self._plugins[kind].get(name)
        if plugin is not None:
            return plugin
        if looks_like_path(name):
            import_path(name)  # fails here, naming the module, when it cannot be imported
            with self._lock:
                return self._plugins[kind].setdefault(name, Plugin(kind, name, name, origin="class path"))
        known = self.names(kind)
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise UnknownPlugin(f"unknown {kind.replace('_', ' ')} {name!r}; {hint}known: {', '.join(known) or 'none'} "
                            "(or a class path: pkg.module.ClassName)")

    def load(self, kind: str, name: str) -> Any:
        return self.get(kind, name).load()

    def config_class(self, kind: str, name: str) -> type[BaseModel]:
        cls = self.get(kind, name).config_class()
        self._by_config.setdefault((kind, cls), name)
        return cls

    def name_of(self, kind: str, config: BaseModel) -> str:
        """The plugin name a validated config belongs to."""
        name = getattr(config, "type", None)
        plugins = self._plugins[kind]
        if isinstance(name, str) and name in plugins and plugins[name].config_class() is type(config):
            return name
        found = self._by_config.get((kind, type(config)))
        if found is not None:
            return found
        if isinstance(name, str) and name in plugins:
            return name
        for plugin_name, plugin in plugins.items():  # a config built in Python, not validated from data
            known = plugin._config_loaded or (plugin.config if isinstance(plugin.config, type) else None)
            if known is type(config):
                return plugin_name
        raise UnknownPlugin(f"{type(config).__name__} is not the config of any registered {kind.replace('_', ' ')}")

    def build(self, kind: str, config: BaseModel, **context: Any) -> Any:
        """Construct the plugin of ``config``: ``target(config, **context)``, passing only
        the context keywords (run_id, services, benchmark, ...) the target accepts."""
        target = self.load(kind, self.name_of(kind, config))
        return target(config, **accepted_keywords(target, context))

    @staticmethod
    def _check_kind(kind: str) -> None:
        if kind not in KINDS:
            raise PluginError(f"unknown plugin kind {kind!r}; kinds: {', '.join(KINDS)}")


def accepted_keywords(target: Any, context: dict[str, Any]) -> dict[str, Any]:
    try:
        params = inspect.signature(target).parameters.values()
    except (TypeError, ValueError):
        return {}
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return dict(context)
    names = {p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}
    return {k: v for k, v in context.items() if k in names}
