"""The ``react-eval`` command line."""

from __future__ import annotations

import inspect
import os
import sys
from pathlib import Path
from typing import Any, Optional

import anyio
import typer
from rich.table import Table
from rich.text import Text

from react_eval.version import __version__
from react_eval import cli_options as opt
from react_eval.cli_console import console, out, say
from react_eval.cli_config import Endpoint, RunFlags, Selection, build_config, validation_data
from react_eval.cli_sandbox import sandbox_app
from react_eval.engine.config import ConfigError, EvalConfig
from react_eval.engine.failures import COMPLETED, INFRA_KINDS, over_limit

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Evaluate agentic tool-calling harnesses.")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"react-eval {__version__}")
        raise typer.Exit()


@app.callback()
def _main(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    """Evaluate agentic tool-calling harnesses."""


def _check_benchmarks(cfg: EvalConfig) -> None:
    """Benchmark names and options, checked before anything runs (one line each, no traceback)."""
    from react_eval.benchmarks.registry import BenchmarkOptionError, UnknownBenchmark, check_options

    for entry in cfg.benchmarks:
        try:
            check_options(entry.name, entry.options)
        except (UnknownBenchmark, BenchmarkOptionError) as exc:
            raise ConfigError(str(exc)) from None


@app.command()
def run(
    config: opt.Config = None,
    bench: opt.Bench = None,
    model_url: opt.ModelUrl = None,
    model: opt.Model = None,
    api_key_env: opt.ApiKeyEnv = None,
    protocol: opt.Protocol = None,
    solver: opt.Solver = None,
    sandbox: opt.Sandbox = None,
    max_infra_failures: opt.MaxInfraFailures = None,
    repeats: opt.Repeats = None,
    max_concurrent: opt.MaxConcurrent = None,
    workers: opt.Workers = None,
    ray_address: opt.RayAddress = None,
    max_problems: opt.MaxProblems = None,
    problem_range: opt.ProblemRange = None,
    max_turns: opt.MaxTurns = None,
    output_dir: opt.OutputDir = None,
    override: opt.Override = None,
    dataset: opt.Dataset = None,
    no_progress: opt.NoProgress = False,
    resume: opt.Resume = False,
    retry_errors: opt.RetryErrors = False,
    force: opt.Force = False,
    shard: opt.Shard = None,
    export_predictions: opt.ExportPredictions = None,
) -> None:
    """Run benchmarks through the ReAct loop and score them.

    Exit status: 0 done; 1 a benchmark could not run; 2 bad command line or
    config; 3 stopped (the endpoint refused the key); 4 too many infrastructure
    failures (see --max-infra-failures)."""
    from react_eval.engine.executor import FatalRunError
    from react_eval.engine.progress import Progress
    from react_eval.engine.run import run_eval

    try:
        sel = Selection(bench, sandbox, dataset, max_concurrent, max_problems, problem_range, output_dir,
                        override or [], ray_address)
        endpoint = Endpoint(model_url, model, api_key_env, protocol.value if protocol else None)
        cfg = build_config(config, sel, endpoint, RunFlags(repeats, workers, max_turns, max_infra_failures, solver))
        _check_benchmarks(cfg)
    except ConfigError as exc:
        say("error:", exc)
        raise typer.Exit(2) from None
    from react_eval.engine.run import RunOptions, parse_shard

    try:
        options = RunOptions(resume=resume, retry_errors=retry_errors, force=force,
                             shard=parse_shard(shard) if shard else None)
    except ValueError as exc:
        say("error:", exc)
        raise typer.Exit(2) from None
    progress = Progress(enabled=not no_progress)
    reference = _reference_policy_notice(cfg)
    try:
        runs = anyio.run(lambda: run_eval(cfg, progress=progress, options=options))
    except FatalRunError as exc:
        say("run stopped:", exc)
        raise typer.Exit(3) from None
    failed = over = False
    for bench_run in runs:
        if bench_run.error:
            failed = True
            say(f"{bench_run.name} failed:", bench_run.error)
            continue
        label = f"{bench_run.name} [{bench_run.variant}]" if bench_run.variant else bench_run.name
        _print_summary(label, bench_run.summary, bench_run.out_dir)
        _print_causes(bench_run.causes)
        reason = over_limit(bench_run.summary, cfg.max_infra_failures)
        if reason:
            over = True
            say(f"{label} failed:", f"{reason}; see the causes above and {bench_run.out_dir / 'results.jsonl'}")
    for group in dict.fromkeys(r.out_dir.parent for r in runs if r.variant):  # entries that list variants
        try:
            _print_variants(group)
        except Exception as exc:  # noqa: BLE001 - the runs are on disk; `react-eval variants DIR` retries
            failed = True
            say(f"cross-variant comparison of {group} failed:", f"{type(exc).__name__}: {exc}")
    if reference:
        out.print(f"note: {reference}", highlight=False)
    if export_predictions is not None:
        from react_eval.engine.predictions import export_predictions as export

        count = export([r.out_dir for r in runs if not r.error], export_predictions)
        out.print(f"wrote {count} SWE-bench predictions to {export_predictions}", highlight=False)
    if failed:
        raise typer.Exit(1)
    if over:
        raise typer.Exit(4)


def _print_causes(found: dict[str, tuple[int, str]]) -> None:
    """One line per error kind: how many rollouts, and the most frequent message."""
    for kind, (count, message) in found.items():
        style = "red" if kind in INFRA_KINDS else "yellow"
        say(f"{kind} x{count}:", message or "(no message)", style)


def _reference_policy_notice(cfg: EvalConfig) -> str | None:
    """Say plainly when a run is served by the built-in oracle, not a model."""
    from react_eval.benchmarks.oracle import ORACLE_NOTICE, is_reference_service

    if any(is_reference_service(s) for s in cfg.services.values() if hasattr(s, "base_url")):
        say("note:", ORACLE_NOTICE, "yellow")
        return ORACLE_NOTICE
    return None


def _print_summary(name: str, summary: dict[str, Any], out_dir: Path) -> None:
    table = Table(title=f"{name}: {out_dir}", show_header=True)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in ("rollouts", "scored_rollouts", "infra_failures", "tasks", "mean_reward"):
        value = summary.get(key)
        table.add_row(key, f"{value:.4f}" if isinstance(value, float) else str(value))
    for key, value in summary.items():
        if key.startswith("pass@"):
            table.add_row(key, f"{value:.4f}")
    errors = ", ".join(f"{COMPLETED if k == 'ok' else k}={v}" for k, v in summary.get("error_kinds", {}).items())
    table.add_row("outcomes", errors)
    out.print(table)


def _print_variants(group: Path, alpha: float = 0.05) -> None:
    """The cross-variant comparison: written beside the runs, printed ranked."""
    from react_eval.analysis.variants import compare_variants, table_rows, write_variants

    report = compare_variants(group, alpha=alpha)
    md_path, _ = write_variants(group, report)
    header, cells = table_rows(report)
    table = Table(title=f"variants of {report.benchmark}, ranked (baseline {report.baseline}): {md_path}")
    for col in header:
        table.add_column(col)
    for row in cells:
        table.add_row(*row)
    out.print(table)


@app.command()
def variants(
    group_dir: Path = typer.Argument(..., help="The directory of a benchmark run with variants (holds variants.plan.json)."),
    alpha: float = typer.Option(0.05, "--alpha", help="Significance level (Holm-adjusted across variants)."),
) -> None:
    """(Re)build the cross-variant comparison (variants.md, variants.json) of a run with variants."""
    from react_eval.analysis.runs import RunLoadError

    try:
        _print_variants(group_dir, alpha)
    except RunLoadError as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None


@app.command()
def merge(
    dirs: list[Path] = typer.Argument(..., help="Run or benchmark directories (e.g. one per shard)."),
    output_dir: Path = typer.Option(..., "--output-dir", "-o", help="Where the merged run goes (must be empty)."),
) -> None:
    """Join shards into one run; refuses shards run with different configs or overlapping rollouts."""
    from react_eval.engine.merge import MergeError, merge_runs

    try:
        summaries = merge_runs(dirs, output_dir)
    except MergeError as exc:
        say("error:", exc)
        raise typer.Exit(2) from None
    for name, summary in summaries.items():
        _print_summary(name, summary, output_dir / name)


@app.command("list")
def list_benchmarks() -> None:
    """Show the benchmarks with their sizes and verification mode (offline: nothing is downloaded)."""
    from react_eval.benchmarks.registry import BUNDLED, available

    table = Table(show_header=True)
    for col in ("benchmark", "tasks", "verification", "description"):
        table.add_column(col)
    for name, factory in sorted(available().items()):
        size = _offline_size(name, factory, name in BUNDLED)
        extra = getattr(factory, "extra", None)
        description = getattr(factory, "description", "")
        if extra and factory.missing():
            description += f" [needs pip install 'react-eval[{extra}]']"
        table.add_row(name, size, getattr(factory, "verification", ""), Text(description))
    out.print(table)
    out.print(Text("Also: harbor:PATH (Harbor task directories, --sandbox docker) and gym://HOST:PORT --dataset FILE."))


@app.command("plugins")
def list_plugins() -> None:
    """Show every registered benchmark, sandbox, tool source, solver and grader, and where each comes from."""
    from react_eval.plugins import KINDS, registry

    table = Table(show_header=True)
    for col in ("kind", "name", "from", "target"):
        table.add_column(col)
    for kind in KINDS:
        for name, plugin in sorted(registry.plugins(kind).items()):
            target = plugin.target if isinstance(plugin.target, str) else (
                f"{getattr(plugin.target, '__module__', '?')}:{getattr(plugin.target, '__qualname__', plugin.target)}")
            table.add_row(kind, name, plugin.origin, Text(target))
    out.print(table)
    out.print(Text("Add one with an entry point (group react_eval.<kind>s) or a class path in YAML "
                   "(class: pkg.module.Name); see docs/ARCHITECTURE.md."))


def _offline_size(name: str, factory: Any, bundled: bool) -> str:
    """The task count when it can be had from local files only, else where the data comes from."""
    var = getattr(factory, "env_var", None)  # e.g. HUMANEVAL_OVERRIDE_PATH: a local copy of downloaded data
    path = os.environ.get(var) if var else None
    if not bundled and not path:
        if var:
            return "downloaded on first run"
        try:
            takes_dataset = "dataset" in inspect.signature(factory).parameters
        except (TypeError, ValueError):
            takes_dataset = False
        return "n/a (its tasks come from --dataset FILE)" if takes_dataset else "see its data"
    if path and not os.path.isfile(path):
        return f"n/a ({var}={path} does not exist)"
    try:
        return str(factory().size())
    except Exception as exc:  # noqa: BLE001 - a broken install or file: say so in the row
        return f"n/a ({type(exc).__name__}: {exc})"


@app.command()
def validate(
    bench: opt.Bench = None,
    sandbox: opt.Sandbox = None,
    dataset: opt.Dataset = None,
    max_concurrent: opt.MaxConcurrent = None,
    ray_address: opt.RayAddress = None,
    max_problems: opt.MaxProblems = None,
    problem_range: opt.ProblemRange = None,
    output_dir: opt.OutputDir = None,
    override: opt.Override = None,
    no_progress: opt.NoProgress = False,
) -> None:
    """Check a benchmark: the reference (oracle) solution must score 1.0, and an empty answer and a tampering policy 0.0, on every task."""
    from react_eval.engine.progress import Progress
    from react_eval.engine.run import describe_error
    from react_eval.engine.validate import validate_benchmark

    try:
        cfg = validation_data(Selection(bench, sandbox, dataset, max_concurrent, max_problems, problem_range,
                                        output_dir, override or [], ray_address))
        _check_benchmarks(cfg)
    except ConfigError as exc:
        say("error:", exc)
        raise typer.Exit(2) from None
    console.print("[yellow]note:[/yellow] validate runs the built-in reference policies 'oracle' (replays each "
                  "task's reference solution), 'empty' (answers nothing) and 'tampering' (plants test "
                  "infrastructure, fixes nothing); they are not language models",
                  highlight=False)
    try:
        report = anyio.run(lambda: validate_benchmark(cfg, Path(output_dir or cfg.output.dir),
                                                      progress=Progress(enabled=not no_progress)))
    except Exception as exc:  # noqa: BLE001 - e.g. a benchmark that cannot load its tasks
        say("validate failed:", describe_error(exc))
        raise typer.Exit(1) from None
    n = len(report.tasks)
    table = Table(title=f"{report.benchmark}: reference-policy check ({report.out_dir})", show_header=True)
    for col in ("task", "oracle reward", "empty reward", "tampering reward", "problem"):
        table.add_column(col)
    for check in report.tasks:
        problems = check.problems()
        if problems:
            table.add_row(check.task_id, str(check.gold), str(check.empty), str(check.tampering), "; ".join(problems))
    if table.row_count:
        out.print(table)
    flagged = sum(t.tampering_flagged for t in report.tasks)
    out.print(f"{report.benchmark}: oracle (reference policy) scores 1.0 on "
              f"{n - len(report.gold_failures)}/{n} tasks ({report.rate('gold'):.0%}); "
              f"empty answer scores above 0 on {len(report.empty_passes)}/{n} tasks ({report.rate('empty'):.0%}); "
              f"tampering policy scores above 0 on {len(report.tampering_passes)}/{n} tasks "
              f"({report.rate('tampering'):.0%}; flagged as tampering on {flagged}); "
              f"no score (infrastructure or verifier error) on {len(report.unscored)}/{n} tasks",
              highlight=False)
    out.print("validation passed" if report.ok else "validation FAILED", highlight=False)
    if not report.ok:
        raise typer.Exit(1)


# ---------------------------------------------------------------- analysis (compare, report, view)


@app.command()
def compare(
    base: Path = typer.Argument(..., help="BASE run: a benchmark directory (or a run directory with one benchmark)."),
    cand: Path = typer.Argument(..., help="CAND run, the same benchmark with one thing varied."),
    bench: Optional[str] = typer.Option(None, "--bench", "-b", help="Benchmark to pick when a run holds several."),
    allow_partial: bool = typer.Option(False, "--allow-partial", help="Compare only the tasks both runs have."),
    max_drop: Optional[str] = typer.Option(None, "--max-drop", help="Largest tolerated drop in pass rate, e.g. 0.02 or 2%."),
    strict: bool = typer.Option(False, "--strict", help="Exit 1 when the drop exceeds --max-drop (for CI gates)."),
    fmt: opt.Format = opt.FormatChoice("text"),  # type: ignore[valid-type]
    alpha: float = typer.Option(0.05, "--alpha", help="Significance level."),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap and permutation draws."),
) -> None:
    """Compare two runs task by task: delta with CI, significance, fixed/broken/flaky tasks, config diff."""
    from react_eval.analysis.compare import CompareError, compare_runs, format_comparison, parse_fraction
    from react_eval.analysis.runs import RunLoadError, load_run

    try:
        drop = parse_fraction(max_drop) if max_drop is not None else None
        result = compare_runs(load_run(base, bench), load_run(cand, bench), allow_partial=allow_partial,
                              alpha=alpha, seed=seed, max_drop=drop)
    except (CompareError, RunLoadError, ValueError) as exc:
        say("error:", exc)
        raise typer.Exit(2) from None
    sys.stdout.write(format_comparison(result, fmt.value))
    if result.regression:
        say("regression:", f"pass rate dropped by {-result.delta:.2%}, more than --max-drop {result.max_drop:.2%}")
        if strict:
            raise typer.Exit(1)


@app.command()
def report(
    run_dir: Path = typer.Argument(..., help="A benchmark directory, or a run directory (one report per benchmark)."),
    bench: Optional[str] = typer.Option(None, "--bench", "-b", help="Only this benchmark."),
    out_dir: Optional[Path] = typer.Option(None, "--out", "-o", help="Where to write (default: the benchmark directory)."),
) -> None:
    """Write report.md and a self-contained report.html (inline SVG charts)."""
    from react_eval.analysis.report import write_report
    from react_eval.analysis.runs import RunLoadError, bench_dirs_with_variants

    try:
        # a run whose benchmark lists variants: <run>/<bench>/<variant>/, with the group's plan in <bench>/
        targets, groups = ([run_dir], []) if bench else bench_dirs_with_variants(run_dir)
        if not targets:
            raise RunLoadError(f"{run_dir}: no results.jsonl here or in a subdirectory")
        if out_dir is not None and len(targets) > 1:
            raise RunLoadError(f"{run_dir} holds several benchmarks: pass --bench NAME with --out")
        for target in targets:
            md_path, html_path = write_report(target, bench=bench, out_dir=out_dir)
            typer.echo(f"wrote {md_path} and {html_path}")
        if bench is None and out_dir is None:
            for group in groups:
                _print_variants(group)  # a run with variants: their comparison too
    except RunLoadError as exc:
        say("error:", exc)
        raise typer.Exit(2) from None


@app.command()
def view(
    run_dir: Path = typer.Argument(..., help="A benchmark directory, a run directory with one benchmark, or a run "
                                   "with variants (one viewer per variant)."),
    other_run_dir: Optional[Path] = typer.Argument(None, help="A second run: the same task is shown side by side."),
    bench: Optional[str] = typer.Option(None, "--bench", "-b", help="Benchmark to pick when a run holds several."),
    out_dir: Optional[Path] = typer.Option(None, "--out", "-o", help="Where to write (default: RUN_DIR/viewer)."),
    serve: bool = typer.Option(False, "--serve", help="Serve the viewer over HTTP on 127.0.0.1 until Ctrl-C."),
    port: int = typer.Option(8765, "--port", help="Port for --serve (0: any free port)."),
) -> None:
    """Write a static HTML trajectory viewer (opens from disk) and optionally serve it."""
    from react_eval.analysis.runs import RunLoadError, bench_dirs_with_variants
    from react_eval.analysis.viewer import serve as serve_dir, write_viewer

    try:
        # a run with variants (<run>/<bench>/<variant>/): one viewer per variant, in each variant's directory
        targets, groups = ([], []) if bench or other_run_dir is not None else bench_dirs_with_variants(run_dir)
        if not groups:
            dirs = [run_dir] + ([other_run_dir] if other_run_dir is not None else [])
            indexes = [write_viewer(dirs, out_dir, bench=bench)]
        elif out_dir is not None and len(targets) > 1:
            raise RunLoadError(f"{run_dir} holds {len(targets)} runs (variants each write their own viewer): "
                               "pass one variant's directory with --out, or two to see them side by side")
        else:
            indexes = [write_viewer([target], out_dir) for target in targets]
    except RunLoadError as exc:
        say("error:", exc)
        raise typer.Exit(2) from None
    for index in indexes:
        typer.echo(f"wrote {index}")
    if serve:
        root = Path(os.path.commonpath([index.parent for index in indexes]))

        def ready(url: str) -> None:
            base = url.removesuffix("index.html")
            for index in indexes:
                typer.echo(f"serving {base}{index.relative_to(root).as_posix()}")
            typer.echo("(Ctrl-C to stop)")

        serve_dir(root, port=port, ready=ready)


app.add_typer(sandbox_app, name="sandbox")


from react_eval.cli_slurm import slurm as _slurm  # noqa: E402

app.command("slurm")(_slurm)


def main() -> None:
    from react_eval.sandboxes.cleanup import install_signal_handlers

    install_signal_handlers()  # SIGINT/SIGTERM remove the sandboxes left (library code only registers them)
    try:
        app()
    except KeyboardInterrupt:
        console.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
