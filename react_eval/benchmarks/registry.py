"""Benchmark names (and URI schemes) -> benchmark factories."""

from __future__ import annotations

from typing import Any, Callable

from react_eval.benchmarks.base import Benchmark

Factory = Callable[..., Benchmark]
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
    from react_eval.benchmarks.swebench_dataset import SWEbenchBenchmark

    register("smoke", SmokeBenchmark)
    register("swe-mini", SweMiniBenchmark)
    register("swebench", SWEbenchBenchmark)
    from react_eval.benchmarks.evalplus_bench import HumanEvalPlus, MbppPlus
    from react_eval.benchmarks.humaneval import HumanEvalBenchmark

    register("humaneval", HumanEvalBenchmark)
    register("humaneval+", HumanEvalPlus)
    register("mbpp+", MbppPlus)


def available() -> dict[str, Factory]:
    _ensure_builtins()
    return dict(_BENCHMARKS)


def get_benchmark(name: str, **options: Any) -> Benchmark:
    _ensure_builtins()
    if name.startswith("harbor:"):  # harbor:PATH (harbor://PATH also works)
        return _harbor(name[len("harbor:"):].removeprefix("//"), **options)
    if "://" in name:
        scheme, _, rest = name.partition("://")
        if scheme not in _SCHEMES:
            raise KeyError(f"unknown benchmark scheme {scheme!r}; known: {', '.join(sorted(_SCHEMES)) or 'none'}")
        return _SCHEMES[scheme](rest, **options)
    if name not in _BENCHMARKS:
        raise KeyError(f"unknown benchmark {name!r}; known: {', '.join(sorted(_BENCHMARKS))}")
    return _BENCHMARKS[name](**options)
