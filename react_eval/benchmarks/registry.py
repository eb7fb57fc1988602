"""Benchmark names (and URI schemes) -> benchmark factories."""

from __future__ import annotations

import difflib
import functools
import importlib.util
import inspect
from typing import Any, Callable

from react_eval.benchmarks.base import Benchmark

Factory = Callable[..., Benchmark]


class UnknownBenchmark(ValueError):
    """A benchmark name that is not registered (the message names the closest one)."""


class BenchmarkOptionError(ValueError):
    """Options a benchmark does not take (e.g. ``--dataset`` for ``smoke``)."""


class MissingExtra(ImportError):
    """A benchmark needs an optional dependency that is not installed."""


def needs_module(module: str, extra: str, factory: Factory) -> Factory:
    """``factory``, refusing with the pip command of ``extra`` while ``module`` is missing."""

    def make(*args: Any, **options: Any) -> Benchmark:
        if importlib.util.find_spec(module) is None:
            raise MissingExtra(f"{getattr(factory, 'name', factory.__name__)} needs the optional package "
                               f"{module!r}: pip install 'react-eval[{extra}]'")
        return factory(*args, **options)

    functools.update_wrapper(make, factory, assigned=("__module__", "__name__", "__qualname__", "__doc__"),
                             updated=())
    make.__signature__ = inspect.signature(factory)  # type: ignore[attr-defined]
    for attr in ("name", "description", "verification", "env_var"):
        if hasattr(factory, attr):
            setattr(make, attr, getattr(factory, attr))
    make.extra = extra  # type: ignore[attr-defined]
    make.missing = lambda: importlib.util.find_spec(module) is None  # type: ignore[attr-defined]
    return make


#: benchmarks whose tasks are on this machine once installed (``react-eval list`` counts them offline)
BUNDLED = frozenset({"smoke", "swe-mini", "humaneval"})
_BENCHMARKS: dict[str, Factory] = {}
_SCHEMES: dict[str, Factory] = {}


def register(name: str, factory: Factory) -> None:
    _BENCHMARKS[name] = factory


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


def _ensure_builtins() -> None:
    if "gym" not in _SCHEMES:
        register_scheme("gym", _gym)
    if _BENCHMARKS:
        return
    from react_eval.benchmarks.smoke import SmokeBenchmark
    from react_eval.benchmarks.swe import SweMiniBenchmark
    from react_eval.benchmarks.swe_local import SweLocalBenchmark
    from react_eval.benchmarks.swebench_dataset import SWEbenchBenchmark

    register("smoke", SmokeBenchmark)
    register("swe-mini", SweMiniBenchmark)
    register("swe-local", SweLocalBenchmark)
    register("swebench", SWEbenchBenchmark)
    from react_eval.benchmarks.evalplus_bench import HumanEvalPlus, MbppPlus
    from react_eval.benchmarks.humaneval import HumanEvalBenchmark

    register("humaneval", HumanEvalBenchmark)
    from react_eval.benchmarks.qa import GSM8KBenchmark, MCQBenchmark, QABenchmark

    for qa in (QABenchmark, GSM8KBenchmark, MCQBenchmark):  # --dataset FILE: react-eval ships none
        register(qa.name, qa)
    register("humaneval+", needs_module("evalplus", "evalplus", HumanEvalPlus))
    register("mbpp+", needs_module("evalplus", "evalplus", MbppPlus))


def available() -> dict[str, Factory]:
    _ensure_builtins()
    return dict(_BENCHMARKS)


def factory_for(name: str) -> tuple[Factory, tuple[Any, ...]]:
    """The factory of ``name`` and its leading arguments, or :class:`UnknownBenchmark`."""
    _ensure_builtins()
    if name.startswith("harbor:"):  # harbor:PATH (harbor://PATH also works)
        return _harbor, (name[len("harbor:"):].removeprefix("//"),)
    if "://" in name:
        scheme, _, rest = name.partition("://")
        if scheme not in _SCHEMES:
            raise UnknownBenchmark(f"unknown benchmark scheme {scheme + '://'!r}; known: "
                                   f"{', '.join(s + '://' for s in sorted(_SCHEMES)) or 'none'}")
        return _SCHEMES[scheme], (rest,)
    if name not in _BENCHMARKS:
        close = difflib.get_close_matches(name, list(_BENCHMARKS), n=1, cutoff=0.5)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise UnknownBenchmark(f"unknown benchmark {name!r}; {hint}known: {', '.join(sorted(_BENCHMARKS))} "
                               "(see `react-eval list`)")
    return _BENCHMARKS[name], ()


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
