"""``react-eval slurm``: write (and with --submit, submit) a SLURM job array of shards plus a merge job."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def slurm(
    config: Path = typer.Argument(..., help="YAML config to run (as `react-eval run --config`)."),
    shards: int = typer.Option(..., "--shards", "-N", min=1, help="Array tasks: task i runs --shard i/N."),
    output_dir: Optional[Path] = typer.Option(
        None, "--output-dir", "-o", help="Run directory (default: output.dir of the config); shards go to "
        "shards/<i>, the merged run to merged/, the scripts to slurm/."),
    override: list[str] = typer.Option([], "-O", help="Override a config value: dot.path=value (passed to every shard)."),
    submit: bool = typer.Option(False, "--submit", help="Submit with sbatch (otherwise only write the scripts)."),
    job_name: str = typer.Option("react-eval", "--job-name", help="SLURM job name (the merge job adds -merge)."),
    partition: Optional[str] = typer.Option(None, "--partition", "-p", help="SLURM partition."),
    account: Optional[str] = typer.Option(None, "--account", "-A", help="SLURM account."),
    time: Optional[str] = typer.Option(None, "--time", "-t", help="Time limit per array task, e.g. 04:00:00."),
    cpus_per_task: Optional[int] = typer.Option(None, "--cpus-per-task", "-c", help="CPUs per array task."),
    mem: Optional[str] = typer.Option(None, "--mem", help="Memory per array task, e.g. 8G."),
    max_parallel: Optional[int] = typer.Option(None, "--max-parallel", help="Array tasks running at once (%K)."),
    sbatch_arg: list[str] = typer.Option([], "--sbatch-arg", help="Another #SBATCH option for both jobs, e.g. --qos=low."),
    python: Optional[str] = typer.Option(None, "--python", help="Interpreter on the compute nodes (default: this one)."),
    merge_after: str = typer.Option(
        "afterok", "--merge-after", help="afterok (default): merge only when every shard succeeded -- re-submit to "
        "finish failed shards; afterany: merge whatever the shards wrote."),
) -> None:
    """Run a config as a SLURM job array (task i = shard i/N) and merge the shards in a dependent job.

    Re-submitting the same command is safe: each shard resumes, so only missing
    rollouts run again, and the merge is rebuilt."""
    from pydantic import ValidationError

    from react_eval.engine.config import ConfigError, load_config
    from react_eval.engine.slurm import SlurmError, SlurmOptions, submit as submit_plan, write_plan

    try:
        cfg = load_config(config, override)  # fail here, not in N array tasks
        options = SlurmOptions(shards=shards, job_name=job_name, partition=partition, account=account, time=time,
                               cpus_per_task=cpus_per_task, mem=mem, max_parallel=max_parallel,
                               sbatch_args=sbatch_arg, merge_after=merge_after,
                               **({"python": python} if python else {}))
        plan = write_plan(config, override, options, Path(output_dir or cfg.output.dir))
    except (ConfigError, SlurmError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    except ValidationError as exc:
        typer.echo(f"error: {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"wrote {plan.array_script} and {plan.merge_script}")
    if not submit:
        typer.echo("submit with:\n"
                   f"  jid=$(sbatch --parsable {plan.array_script})\n"
                   f"  sbatch --dependency={options.merge_after}:$jid {plan.merge_script}")
        return
    try:
        array_id, merge_id = submit_plan(plan, options.merge_after)
    except SlurmError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"submitted array job {array_id} ({shards} shards) and merge job {merge_id}; "
               f"the merged run will be in {plan.merged}")
