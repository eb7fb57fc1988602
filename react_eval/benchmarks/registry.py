"""Benchmark names (and URI schemes) -> benchmark factories."""

from __future__ import annotations

import inspect
import warnings
from typing import Any, Callable

from react_eval.benchmarks.base import Benchmark
from react_eval.plugins import MissingExtra, PluginError, needs_module, registry

__all__ = ["BUNDLED", "BenchmarkOptionError", "MissingExtra", "UnknownBenchmark", "available", "check_options",
           "factory_for", "get_benchmark", "needs_module", "register", "register_scheme", "unregister"]

Factory = Callable[..., Benchmark]


class UnknownBenchmark(ValueError):
    """A benchmark name that is not registered (the message names the closest one)."""


class BenchmarkOptionError(ValueError):
    """Options a benchmark does not take (e.g. ``--dataset`` for ``smoke``)."""


#: benchmarks whose tasks are on this machine once installed (``react-eval list`` counts them offline)
BUNDLED = frozenset({"smoke", "swe-mini", "humaneval"})
_SCHEMES: dict[str, Factory] = {}


def register(name: str, factory: Factory | str) -> None:
    """Add a benchmark (a class, a factory or its dotted path); every other one stays."""
    registry.register("benchmark", name, factory)


def unregister(name: str) -> None:
    registry.unregister("benchmark", name)


def register_scheme(scheme: str, factory: Factory) -> None:
    """``scheme://rest`` names resolve through ``factory(rest, **options)``."""
    _SCHEMES[scheme] = factory


def _gym(address: str, **options: Any) -> Benchmark:
    """``gym://host:port``: the Gym client (and httpx) load only when one is asked for."""
    from react_eval.gym.benchmark import GymBenchmark

    return GymBenchmark(address, **options)


def _harbor(path: str, **options: Any) -> Benchmark:
    """``harbor:PATH``: a Harbor task directory, or a directory of them."""
    from react_eval.benchmarks.harbor import HarborBenchmark

    return HarborBenchmark(path, **options)


register_scheme("gym", _gym)


def available() -> dict[str, Factory]:
    """Every registered benchmark (built-ins, entry points, register()) by name, loaded."""
    found = {}
    for name, plugin in registry.plugins("benchmark").items():
        if plugin.origin == "class path":
            continue
        try:
            found[name] = plugin.load()
        except PluginError as exc:  # a broken plugin must not hide the others
            warnings.warn(f"benchmark {name!r} ({plugin.origin}) cannot be loaded: {exc}", stacklevel=2)
    return found


def factory_for(name: str) -> tuple[Factory, tuple[Any, ...]]:
    """The factory of ``name`` and its leading arguments, or :class:`UnknownBenchmark`."""
    if name.startswith("harbor:"):  # harbor:PATH (harbor://PATH also works)
        return _harbor, (name[len("harbor:"):].removeprefix("//"),)
    if "://" in name:
        scheme, _, rest = name.partition("://")
        if scheme not in _SCHEMES:
            raise UnknownBenchmark(f"unknown benchmark scheme {scheme + '://'!r}; known: "
                                   f"{', '.join(s + '://' for s in sorted(_SCHEMES)) or 'none'}")
        return _SCHEMES[scheme], (rest,)
    try:
        return registry.load("benchmark", name), ()
    except PluginError as exc:
        raise UnknownBenchmark(f"{exc}; see `react-eval list`") from None


def check_options(name: str, options: dict[str, Any]) -> None:
    """Refuse options the benchmark's factory does not take, naming the ones it does."""
    factory, args = factory_for(name)
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):
        return
    try:
        signature.bind(*args, **options)
    except TypeError:
        accepted = [p.name for p in list(signature.parameters.values())[len(args):]
                    if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        unknown = sorted(set(options) - set(accepted))
        takes = f"it takes: {', '.join(accepted)}" if accepted else "it takes none"
        flag = " (--dataset)" if "dataset" in unknown else ""
        raise BenchmarkOptionError(f"benchmark {name!r} does not take the option(s) {', '.join(unknown) or '?'}"
                                   f"{flag}; {takes}") from None


def get_benchmark(name: str, **options: Any) -> Benchmark:
    factory, args = factory_for(name)
    check_options(name, options)
    return factory(*args, **options)
