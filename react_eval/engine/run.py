"""``react-eval run``: every benchmark of a config, rollouts streamed to disk."""

from __future__ import annotations

import os
import random
import sys
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson

from react_eval.version import __version__
from react_eval.benchmarks.base import Benchmark, DatasetMissing, PreflightError
from react_eval.benchmarks.qa import QADatasetError
from react_eval.benchmarks.oracle import is_reference_service, reference_model
from react_eval.benchmarks.swe_rows import DatasetError
from react_eval.benchmarks.registry import BenchmarkOptionError, MissingExtra, UnknownBenchmark, get_benchmark
from react_eval.engine.config import ApiService, BenchmarkEntry, EvalConfig, parse_range
from react_eval.engine.defaults import (
    ResponseModeConflict,
    SandboxRequired,
    announce,
    check_response_mode,
    new_announcements,
    nel_differences,
    resolve_sandbox,
    wants_sandbox_tools,
)
from react_eval.engine.failures import causes
from react_eval.engine.lines import EncodedRecord, RecordEncoder, RecordSink
from react_eval.engine.lock import OutputLocked, output_lock
from react_eval.engine.executor import Executor, FatalRunError, LocalExecutor
from react_eval.engine.processes import ProcessExecutor
from react_eval.engine.ray_executor import NodeLostError, RayMissing, RayStartError
from react_eval.engine.progress import Progress
from react_eval.engine.artifacts import write_run_artifacts
from react_eval.engine.manifest import Manifest, config_hash, diff_fields, hashed_fields
from react_eval.engine.provenance import config_git_sha, package_versions
from react_eval.engine.results import RolloutFiles, read_jsonl
from react_eval.engine.resume import reconcile
from react_eval.engine.variants import plan_entry
from react_eval.engine.rollout import RolloutRunner, RolloutSpec
from react_eval.grading.envs import EnvError, EnvSpec
from react_eval.grading.sandbox import rollout_config
from react_eval.metrics import summarize
from react_eval.model.factory import build_model
from react_eval.model.protocol import Model
from react_eval.engine.tool_sources import GymToolsConfig, SandboxToolsConfig
from react_eval.plugins import Plugin, registry
from react_eval.sandboxes.local import LocalSandboxConfig
from react_eval.sandboxes.registry import SandboxConfig, make_provider
from react_eval.scoring.scored import with_scoring
from react_eval.tools.base import ToolSource


@dataclass
class BenchmarkRun:
    name: str
    out_dir: Path
    summary: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    #: the variant this run is, when its entry lists variants (out_dir.parent holds them all)
    variant: str | None = None
    #: error kind -> (rollouts, its most frequent one-line message)
    causes: dict[str, tuple[int, str]] = field(default_factory=dict)
    #: a gym:// server's own /aggregate_metrics reply (also in server_aggregate_metrics.json)
    server_metrics: dict[str, Any] | None = None


class EmptySelection(ValueError):
    """The task selection (problem_range, max_problems, shard) leaves nothing to run."""


def new_run_id() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]


def select_tasks(benchmark: Benchmark, entry: BenchmarkEntry) -> list:
    tasks = all_tasks = benchmark.tasks()
    if entry.shuffle_seed is not None:  # NEL's shuffle_seed: a reproducible order, then the selection
        tasks = list(tasks)
        random.Random(entry.shuffle_seed).shuffle(tasks)
    if entry.problem_range:
        tasks = tasks[parse_range(entry.problem_range)]
    if entry.max_problems is not None:
        tasks = tasks[: entry.max_problems]
    if not tasks:
        what = f"problem_range {entry.problem_range!r}" if entry.problem_range else "the selection"
        raise EmptySelection(f"{entry.name}: {what} selects no task of its {len(all_tasks)} "
                             f"(valid indices 0..{len(all_tasks) - 1})" if all_tasks else
                             f"{entry.name}: the benchmark has no tasks")
    return tasks


def bench_dir_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def tool_source_configs(entry: BenchmarkEntry, has_sandbox: bool, benchmark: Benchmark | None = None) -> list[Any]:
    """The configured tool sources of an entry: the solver's resource_service, the
    entry's ``tool_sources:``, then the sandbox tools when wanted and possible."""
    configs: list[Any] = []
    if entry.solver.resource_service:
        configs.append(GymToolsConfig(service=entry.solver.resource_service))
    configs += entry.tool_sources
    if wants_sandbox_tools(entry, benchmark) and has_sandbox and not any(
            isinstance(c, SandboxToolsConfig) for c in configs):
        configs.append(SandboxToolsConfig())
    return configs


def tool_sources(config: EvalConfig, entry: BenchmarkEntry, has_sandbox: bool,
                 benchmark: Benchmark | None = None) -> list[ToolSource]:
    """Every tool source of an entry's rollouts, each built by its registered plugin;
    a benchmark's own (e.g. a gym:// server) come after the configured ones, whose label wins."""
    if entry.solver.type == "simple":  # one model call, no tools
        return []
    sources: list[ToolSource] = [registry.build("tool_source", c, services=config.services)
                                 for c in tool_source_configs(entry, has_sandbox, benchmark)]
    if benchmark is not None:
        own = [s for s in benchmark.tool_sources() if s.label not in {x.label for x in sources}]
        sandbox_at = next((i for i, s in enumerate(sources) if s.label == "sandbox"), len(sources))
        sources[sandbox_at:sandbox_at] = own
    return sources


def plugins_of(config: EvalConfig, entry: BenchmarkEntry) -> list[Plugin]:
    """The registered plugins an entry's configs name (solver, sandbox, tool sources, grader)."""
    named: list[tuple[str, Any]] = [("solver", entry.solver), ("sandbox", config.sandbox_for(entry)),
                                    ("grader", entry.grader), *(("tool_source", c) for c in entry.tool_sources)]
    return [registry.get(kind, registry.name_of(kind, c)) for kind, c in named if c is not None]


@dataclass
class EntryRunners:
    """The :class:`RunnerFactory` of one benchmark entry: builds the model
    client, the sandbox provider and the tool sources where the rollouts run.

    It pickles (config, entry, run id and the benchmark object) so that worker
    processes, or machines, build their own runner; a ``model`` object passed
    in (tests, in-process models) cannot travel and keeps the run in-process."""

    config: EvalConfig
    entry: BenchmarkEntry
    run_id: str
    benchmark: Benchmark
    model: Model | None = None
    #: the entry's sandbox as resolved at start (engine/defaults.py: e.g. the announced
    #: default); None = the configured one, if any
    sandbox: SandboxConfig | None = None
    #: the plugins the entry's configs name, resolved where the run started
    plugins: list[Plugin] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.plugins = self.plugins or plugins_of(self.config, self.entry)

    def __getstate__(self) -> dict[str, Any]:
        if self.model is not None:
            raise TypeError("a model object given to run_benchmark cannot be sent to another process")
        return self.__dict__

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        registry.adopt(self.plugins)  # a worker process knows the class paths the parent resolved

    async def open(self, share: tuple[int, int] = (0, 1)) -> RolloutRunner:
        config, entry = self.config, self.entry
        service = config.model_service(entry)
        count = share[1]
        sandbox_cfg = self.sandbox or config.sandbox_for(entry)
        if entry.solver.generation is not None:  # the solver's sampling settings over the service's
            merged = {**service.generation.model_dump(exclude_unset=True),
                      **entry.solver.generation.model_dump(exclude_unset=True)}
            service = service.model_copy(update={"generation": type(service.generation).model_validate(merged)})
        if count > 1:  # run-wide limits are split among the runners
            self.benchmark.share_limits(count)
            service = service.model_copy(update={"max_concurrent": -(-service.max_concurrent // count)})
            if sandbox_cfg is not None and hasattr(sandbox_cfg, "concurrency"):
                sandbox_cfg = sandbox_cfg.model_copy(update={"concurrency": -(-sandbox_cfg.concurrency // count)})
        model = self.model
        if model is None and is_reference_service(service):
            model = reference_model(service, self.benchmark)  # oracle / empty: in-process, no endpoint
        model = model or build_model(service)
        if isinstance(sandbox_cfg, LocalSandboxConfig) and self.benchmark.grading_env is not None:
            sandbox_cfg = await _with_declared_env(sandbox_cfg, self.benchmark.grading_env)
        provider = None
        try:
            provider = make_provider(sandbox_cfg, run_id=self.run_id) if sandbox_cfg is not None else None
            return RolloutRunner(
                benchmark=self.benchmark,
                model=model,
                loop_config=entry.solver,
                solver=registry.load("solver", registry.name_of("solver", entry.solver)),
                grader=registry.build("grader", entry.grader, benchmark=self.benchmark) if entry.grader else None,
                sandbox_provider=provider,
                tool_sources=tool_sources(config, entry, provider is not None, self.benchmark),
            )
        except BaseException:
            if model is not self.model:
                await model.aclose()
            if provider is not None:
                await provider.aclose()
            raise

    async def close(self, runner: RolloutRunner) -> None:
        try:
            if runner.model is not self.model:
                await runner.model.aclose()
        finally:
            for source in runner.tool_sources:  # e.g. a Gym server's connection pool
                close = getattr(source, "aclose", None)
                if close is not None:
                    await close()
            if runner.sandbox_provider is not None:
                await runner.sandbox_provider.aclose()
            close_benchmark = getattr(self.benchmark, "aclose", None)  # e.g. a judge's client
            if close_benchmark is not None:
                await close_benchmark()


async def _with_declared_env(config: LocalSandboxConfig, needs: EnvSpec) -> LocalSandboxConfig:
    """The agent's local/bwrap sandbox gets the benchmark's declared environment
    (Docker images carry their own). When it cannot be provisioned the run goes
    on without it: each grade then ends ``verify_error`` with the reason."""
    try:
        return await rollout_config(config, needs)
    except EnvError as exc:
        print(f"react-eval: warning: the agent's sandbox runs without the declared environment "
              f"{needs.name!r}: {exc}", file=sys.stderr)
        return config


class ResumeRefused(RuntimeError):
    """The directory holds results made with a different harness config."""


@dataclass
class RunOptions:
    """How to run (not what): resume, retries, sharding."""

    resume: bool = False
    retry_errors: bool = False
    force: bool = False
    shard: tuple[int, int] | None = None  # (index, count), 0-based


def parse_shard(text: str) -> tuple[int, int]:
    try:
        index, count = (int(x) for x in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard must look like i/N (e.g. 0/4), got {text!r}") from None
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"--shard {text}: need 0 <= i < N")
    return index, count


def _prepare_dir(out_dir: Path, manifest: Manifest, options: RunOptions) -> tuple[str, set[tuple[str, int]]]:
    """Check the directory against the config; return the run id and finished keys."""
    existing = Manifest.read(out_dir)
    has_rows = (out_dir / "results.jsonl").exists() and (out_dir / "results.jsonl").stat().st_size > 0
    if not (options.resume or options.retry_errors):
        if has_rows:
            raise ResumeRefused(
                f"{out_dir} already holds results; pass --resume to continue that run, "
                "--retry-errors to re-run its infrastructure failures, or choose another --output-dir"
            )
        manifest.write(out_dir)
        return manifest.run_id, set()
    if existing is not None and existing.config_hash != manifest.config_hash and not options.force:
        changed = ", ".join(diff_fields(existing.fields, manifest.fields)) or "unknown fields"
        raise ResumeRefused(
            f"cannot resume {out_dir}: the harness config changed ({changed}); "
            "pass --force to resume anyway, or use a new --output-dir"
        )
    if existing is not None:
        manifest.run_id = existing.run_id
    manifest.write(out_dir)
    rows = reconcile(out_dir, drop_infra=options.retry_errors)
    return manifest.run_id, {(r["task_id"], int(r["repeat"])) for r in rows}


async def run_benchmark(
    config: EvalConfig,
    entry: BenchmarkEntry,
    out_dir: Path,
    *,
    run_id: str,
    model: Model | None = None,
    executor: Executor | None = None,
    progress: Progress | None = None,
    options: RunOptions | None = None,
) -> BenchmarkRun:
    """Run one benchmark entry; results and trajectories stream into ``out_dir``
    (locked against a second writer meanwhile)."""
    with output_lock(out_dir):
        return await _run_benchmark(config, entry, out_dir, run_id=run_id, model=model, executor=executor,
                                    progress=progress, options=options)


async def _run_benchmark(config: EvalConfig, entry: BenchmarkEntry, out_dir: Path, *, run_id: str,
                         model: Model | None, executor: Executor | None, progress: Progress | None,
                         options: RunOptions | None) -> BenchmarkRun:
    options = options or RunOptions()
    service = config.model_service(entry)
    benchmark = with_scoring(get_benchmark(entry.name, **entry.options), entry, config)
    check_response_mode(entry, benchmark)
    sandbox, note = resolve_sandbox(config, entry, benchmark)
    announce(([note] if note else []) + nel_differences(config, entry, benchmark, sandbox))
    tasks = select_tasks(benchmark, entry)
    if options.shard is not None:
        index, count = options.shard
        tasks = [t for i, t in enumerate(tasks) if i % count == index]
        if not tasks:
            raise EmptySelection(f"{entry.name}: shard {index}/{count} holds no task (fewer tasks than shards)")
    benchmark.preflight(tasks)  # e.g. every row gradable: fail before the first rollout
    tasks = await benchmark.prepare(tasks, sandbox)  # e.g. build task images
    fields = hashed_fields(config, entry)
    manifest = Manifest(run_id=run_id, config_hash=config_hash(fields), fields=fields,
                        shard=f"{options.shard[0]}/{options.shard[1]}" if options.shard else None,
                        react_eval_version=__version__)
    run_id, finished = _prepare_dir(out_dir, manifest, options)
    specs = [RolloutSpec(run_id, entry.name, task, r) for task in tasks for r in range(entry.repeats)]
    specs = [s for s in specs if (s.task.id, s.repeat) not in finished]
    runners = EntryRunners(config, entry, run_id, benchmark, model, sandbox)
    files = RolloutFiles(out_dir)  # results.jsonl + trajectories.jsonl, written off the event loop
    started = datetime.now(timezone.utc).isoformat()
    if progress:
        progress.start(entry.name, len(specs))

    def write(done: EncodedRecord) -> None:
        files.add(done.trajectory, done.row)
        if progress:
            progress.advance(done.head)

    on_done = RecordSink(RecordEncoder(_secret_bytes(config)), write)  # workers encode with it too

    bench_run = BenchmarkRun(entry.name, out_dir)
    if executor is None and config.executor is not None and model is None:
        executor = registry.build("executor", config.executor, max_concurrent=entry.max_concurrent)  # e.g. Ray
    if executor is None:  # a model object handed in stays in this process
        executor = (ProcessExecutor(entry.max_concurrent, entry.workers) if entry.workers > 1 and model is None
                    else LocalExecutor(entry.max_concurrent))
    try:
        await executor.run_all(specs, runners, on_done)
    except FatalRunError as exc:  # say where the refused key came from, so it can be fixed
        raise FatalRunError(f"{exc} {_key_source(entry.solver.service, service)}") from None
    finally:
        files.close()
        if progress:
            progress.stop()
        rows = list(read_jsonl(out_dir / "results.jsonl"))
        bench_run.summary = summarize(rows)
        await _server_aggregate(benchmark, rows, out_dir, bench_run)
        bench_run.causes = causes(rows)
        write_run_artifacts(out_dir, rows)
        _write_eval_json(out_dir, config, entry, run_id, started, bench_run.summary, benchmark, manifest)
    return bench_run


async def _server_aggregate(benchmark: Benchmark, rows: list[dict[str, Any]], out_dir: Path,
                            bench_run: BenchmarkRun) -> None:
    """A gym:// server's own ``/aggregate_metrics`` (when it has one), kept beside ours."""
    aggregate = getattr(benchmark, "aggregate_metrics", None)
    if aggregate is None or not rows:
        return
    result = await aggregate(rows)
    if result is not None:
        (out_dir / "server_aggregate_metrics.json").write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
        bench_run.server_metrics = result


def _secret_bytes(config: EvalConfig) -> list[bytes]:
    """The API keys a run sends, as they would appear in JSON (placeholders and
    keys shorter than 8 characters are left alone: replacing them would garble data)."""
    found: set[bytes] = set()
    for service in config.services.values():
        if isinstance(service, ApiService):
            key = service.resolved_api_key()
            if len(key) >= 8:
                found.update({key.encode(), orjson.dumps(key)[1:-1]})
    return sorted(found, key=len, reverse=True)


def _key_source(name: str, service: ApiService) -> str:
    """Where the API key sent to ``service`` came from (never the key itself)."""
    if service.api_key is not None:
        return f"The key sent was services.{name}.api_key of the config."
    var = service.api_key_env
    if var and os.environ.get(var):
        return f"The key sent was read from the environment variable {var} (services.{name}.api_key_env / --api-key-env)."
    if var:
        return (f"The environment variable {var} (services.{name}.api_key_env / --api-key-env) is not set, so no "
                f"real key was sent: set {var}, or name another variable with --api-key-env.")
    return f"No API key is configured for services.{name}: set api_key or api_key_env (--api-key-env)."


def _write_eval_json(out_dir: Path, config: EvalConfig, entry: BenchmarkEntry, run_id: str, started: str,
                     summary: dict[str, Any], benchmark: Benchmark, manifest: Manifest) -> None:
    bundle = {
        "run_id": run_id,
        "config_hash": manifest.config_hash,
        "shard": manifest.shard,
        "versions": package_versions(),
        "git_sha": config_git_sha(config._source_dir),
        "benchmark": entry.name,
        "verification": benchmark.verification,
        "react_eval_version": __version__,
        "python": sys.version.split()[0],
        "started_at": started,
        "finished_at": datetime.now(timezone.utc).isoformat(),
        "model": config.model_service(entry).model,
        "config": config.redacted(),
        "metrics": summary,
    }
    tmp = out_dir / "eval.json.tmp"
    tmp.write_bytes(orjson.dumps(bundle, option=orjson.OPT_INDENT_2))
    tmp.replace(out_dir / "eval.json")


_CLEAR_ERRORS = (QADatasetError, DatasetMissing, DatasetError, PreflightError, ResponseModeConflict,
                 SandboxRequired, EmptySelection, OutputLocked, ResumeRefused, UnknownBenchmark,
                 BenchmarkOptionError, MissingExtra, RayMissing, RayStartError, NodeLostError)


def describe_error(exc: BaseException) -> str:
    """One line for a benchmark that could not run: errors worded for the user as they are,
    anything else with its class name (a bug's kind is worth seeing)."""
    return str(exc) if isinstance(exc, _CLEAR_ERRORS) else f"{type(exc).__name__}: {exc}"


async def run_eval(config: EvalConfig, *, output_dir: Path | None = None, progress: Progress | None = None,
                   model: Model | None = None, options: RunOptions | None = None) -> list[BenchmarkRun]:
    """Run every benchmark in sequence; one crashing does not stop the others."""
    root = Path(output_dir or config.output.dir)
    run_id = new_run_id()
    new_announcements()
    announce(config._nel_notes)
    runs = []
    used: dict[str, int] = {}
    for entry in config.benchmarks:
        base = bench_dir_name(entry.name)
        used[base] = used.get(base, 0) + 1
        out_dir = root / (base if used[base] == 1 else f"{base}.{used[base]}")
        for one in plan_entry(config, entry, out_dir, run_id):  # one run per variant, if it lists any
            try:
                run = await run_benchmark(one.config, one.entry, one.out_dir, run_id=one.run_id, model=model,
                                          progress=progress, options=options)
            except FatalRunError:
                raise
            except Exception as exc:
                run = BenchmarkRun(entry.name, one.out_dir, error=describe_error(exc))
            run.variant = one.name or None
            runs.append(run)
    return runs
