"""``evaluate(config)``: a whole run from Python, as ``react-eval run`` does it.

    import react_eval
    result = react_eval.evaluate("eval.yaml", output_dir="out")
    print(result.summaries)        # {"smoke": {"rollouts": 6, "pass@1": 0.83, ...}}
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import anyio

from react_eval.engine.config import ConfigError, EvalConfig, apply_override, load_config, validate_config
from react_eval.engine.progress import Progress
from react_eval.engine.results import read_jsonl
from react_eval.engine.run import BenchmarkRun, RunOptions, run_eval
from react_eval.model.protocol import Model

ConfigLike = EvalConfig | Mapping[str, Any] | str | Path


@dataclass
class EvalResult:
    """What a run produced: one :class:`BenchmarkRun` per benchmark entry (and variant)."""

    runs: list[BenchmarkRun]
    output_dir: Path

    @property
    def ok(self) -> bool:
        """Every benchmark ran (its rollouts may still have failed; see each summary)."""
        return all(run.error is None for run in self.runs)

    @property
    def summaries(self) -> dict[str, dict[str, Any]]:
        """The metrics of each benchmark (``name`` or ``name[variant]``): pass@k, mean reward, error kinds, ..."""
        return {self._label(run): run.summary for run in self.runs}

    @property
    def errors(self) -> dict[str, str]:
        """The benchmarks that could not run, with why."""
        return {self._label(run): run.error for run in self.runs if run.error is not None}

    def rows(self, name: str | None = None) -> list[dict[str, Any]]:
        """The result rows (one per rollout) of benchmark ``name`` (default: the only one)."""
        run = self._run(name)
        return list(read_jsonl(run.out_dir / "results.jsonl"))

    def _run(self, name: str | None) -> BenchmarkRun:
        if name is None:
            if len(self.runs) != 1:
                raise KeyError(f"the run holds {len(self.runs)} benchmarks: name one of {list(self.summaries)}")
            return self.runs[0]
        for run in self.runs:
            if self._label(run) == name or run.name == name:
                return run
        raise KeyError(f"no benchmark {name!r} in this run; it holds {list(self.summaries)}")

    @staticmethod
    def _label(run: BenchmarkRun) -> str:
        return f"{run.name}[{run.variant}]" if run.variant else run.name


def as_config(config: ConfigLike, overrides: Sequence[str] = ()) -> EvalConfig:
    """An :class:`EvalConfig` from a config object, a mapping (the YAML's data) or a YAML file path."""
    if isinstance(config, EvalConfig):
        if overrides:
            return as_config(config.model_dump(mode="json"), overrides)
        return config
    if isinstance(config, (str, Path)):
        return load_config(config, list(overrides))
    if isinstance(config, Mapping):
        data = dict(config)
        for assignment in overrides:
            apply_override(data, assignment)
        return validate_config(data, source="evaluate()")
    raise ConfigError(f"evaluate() takes an EvalConfig, a mapping or a YAML path, not {type(config).__name__}")


async def aevaluate(config: ConfigLike, *, output_dir: str | Path | None = None, model: Model | None = None,
                    overrides: Sequence[str] = (), progress: bool = False, resume: bool = False,
                    retry_errors: bool = False) -> EvalResult:
    """:func:`evaluate` inside a running event loop (asyncio or trio)."""
    cfg = as_config(config, overrides)
    root = Path(output_dir) if output_dir is not None else Path(cfg.output.dir)
    runs = await run_eval(cfg, output_dir=root, model=model, progress=Progress(enabled=progress),
                          options=RunOptions(resume=resume, retry_errors=retry_errors))
    return EvalResult(runs, root)


def evaluate(config: ConfigLike, *, output_dir: str | Path | None = None, model: Model | None = None,
             overrides: Sequence[str] = (), progress: bool = False, resume: bool = False,
             retry_errors: bool = False) -> EvalResult:
    """Run every benchmark of ``config`` (an :class:`EvalConfig`, its YAML data as a
    mapping, or a YAML file) and return the summaries and where the rows are.

    ``model`` replaces the configured endpoint with a :class:`Model` object (it
    keeps the run in this process); ``overrides`` are ``dot.path=value`` like
    ``-O``. Raises :class:`ConfigError` for a bad config, and
    :class:`~react_eval.engine.executor.FatalRunError` when the endpoint
    refuses the key; a benchmark that cannot run is in :attr:`EvalResult.errors`."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise RuntimeError("evaluate() was called inside an event loop: use `await react_eval.aevaluate(...)`")

    async def main() -> EvalResult:
        return await aevaluate(config, output_dir=output_dir, model=model, overrides=overrides, progress=progress,
                               resume=resume, retry_errors=retry_errors)

    return anyio.run(main)
