"""``react-eval slurm``: a SLURM job array of shards and a dependent merge job.

Array task *i* runs ``react-eval run --shard i/N --resume`` into ``shards/i``
of the output directory; the merge job, submitted with a dependency on the
whole array, joins the shards into ``merged``. Both scripts are plain sbatch
files written under ``slurm/`` so they can be read, edited and submitted by
hand.

Re-submitting is safe: every shard resumes (finished (task, repeat) pairs are
skipped, a changed config is refused by the run's manifest check) and the
merge rebuilds ``merged`` from scratch. The plan (shard count, config,
overrides) is kept in ``slurm/plan.json``; a different shard count over
existing shards is refused, since the shards would overlap.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class SlurmError(RuntimeError):
    """The plan cannot be written or submitted (worded for the user)."""


class SlurmOptions(BaseModel):
    """How the job array is laid out and what it asks SLURM for."""

    model_config = ConfigDict(extra="forbid")

    shards: int = Field(ge=1)
    job_name: str = "react-eval"
    partition: str | None = None
    account: str | None = None
    time: str | None = None  # e.g. 04:00:00
    cpus_per_task: int | None = Field(default=None, ge=1)
    mem: str | None = None  # e.g. 8G
    #: array tasks running at once (SLURM's %K)
    max_parallel: int | None = Field(default=None, ge=1)
    #: further ``#SBATCH`` options for both jobs, e.g. ["--qos=low", "--constraint=docker"]
    sbatch_args: list[str] = Field(default_factory=list)
    #: the interpreter on the compute nodes (default: this one, for a shared filesystem)
    python: str = Field(default_factory=lambda: sys.executable)
    #: afterok: merge only when every shard succeeded (a failed shard is re-submitted
    #: first); afterany: merge whatever the shards wrote
    merge_after: Literal["afterok", "afterany"] = "afterok"


@dataclass
class SlurmPlan:
    root: Path  # the run's output directory

    @property
    def dir(self) -> Path:
        return self.root / "slurm"

    @property
    def array_script(self) -> Path:
        return self.dir / "array.sbatch"

    @property
    def merge_script(self) -> Path:
        return self.dir / "merge.sbatch"

    @property
    def plan_file(self) -> Path:
        return self.dir / "plan.json"

    def shard_dir(self, index: int) -> Path:
        return self.root / "shards" / str(index)

    @property
    def merged(self) -> Path:
        return self.root / "merged"


def write_plan(config: Path, overrides: list[str], options: SlurmOptions, root: Path,
               workdir: Path | None = None) -> SlurmPlan:
    """Write ``array.sbatch``, ``merge.sbatch`` and ``plan.json`` under ``root/slurm``."""
    config, root = config.resolve(), root.resolve()
    workdir = (workdir or Path.cwd()).resolve()
    plan = SlurmPlan(root)
    _check_previous(plan, options, config, overrides)
    (plan.dir / "logs").mkdir(parents=True, exist_ok=True)
    plan.array_script.write_text(_array_script(plan, config, overrides, options, workdir))
    plan.merge_script.write_text(_merge_script(plan, options, workdir))
    plan.plan_file.write_text(json.dumps({"shards": options.shards, "config": str(config),
                                          "overrides": list(overrides), "options": options.model_dump()}, indent=2))
    return plan


def _check_previous(plan: SlurmPlan, options: SlurmOptions, config: Path, overrides: list[str]) -> None:
    if not plan.plan_file.exists():
        return
    old = json.loads(plan.plan_file.read_text())
    has_shards = (plan.root / "shards").exists() and any((plan.root / "shards").iterdir())
    if old.get("shards") != options.shards and has_shards:
        raise SlurmError(f"{plan.root} holds shards of a {old.get('shards')}-way split; re-submit with "
                         f"--shards {old.get('shards')} (resuming them), or choose another output directory")
    if (old.get("config"), old.get("overrides")) != (str(config), list(overrides)) and has_shards:
        raise SlurmError(f"{plan.root} holds shards of {old.get('config')} with overrides {old.get('overrides')}; "
                         "choose another output directory for a different config")


def _header(options: SlurmOptions, name: str, log: Path, workdir: Path) -> list[str]:
    lines = ["#!/bin/bash", f"#SBATCH --job-name={name}", f"#SBATCH --output={log}", f"#SBATCH --chdir={workdir}"]
    for flag, value in (("partition", options.partition), ("account", options.account), ("time", options.time),
                        ("mem", options.mem)):
        if value is not None:
            lines.append(f"#SBATCH --{flag}={value}")
    return lines + [f"#SBATCH {arg}" for arg in options.sbatch_args]


def _array_script(plan: SlurmPlan, config: Path, overrides: list[str], options: SlurmOptions,
                  workdir: Path) -> str:
    n = options.shards
    lines = _header(options, options.job_name, plan.dir / "logs" / "shard-%a.log", workdir)
    limit = f"%{options.max_parallel}" if options.max_parallel else ""
    lines.insert(2, f"#SBATCH --array=0-{n - 1}{limit}")
    if options.cpus_per_task:
        lines.append(f"#SBATCH --cpus-per-task={options.cpus_per_task}")
    command = [options.python, "-m", "react_eval.cli", "run", "--config", str(config)]
    for assignment in overrides:
        command += ["-O", assignment]
    out = shlex.quote(str(plan.root / "shards"))
    lines += [
        "# react-eval: array task i runs shard i of the config (written by `react-eval slurm`);",
        "# --resume makes a re-submitted task run only the rollouts its shard lacks.",
        "set -euo pipefail",
        'i="${SLURM_ARRAY_TASK_ID:?submit this script with sbatch (or set SLURM_ARRAY_TASK_ID)}"',
        f"exec {shlex.join(command)} --shard \"$i/{n}\" --output-dir {out}/\"$i\" --resume --no-progress",
    ]
    return "\n".join(lines) + "\n"


def _merge_script(plan: SlurmPlan, options: SlurmOptions, workdir: Path) -> str:
    lines = _header(options, f"{options.job_name}-merge", plan.dir / "logs" / "merge.log", workdir)
    lines.append("#SBATCH --kill-on-invalid-dep=yes")  # a failed shard (afterok) cancels it instead of leaving it pending
    shards = " ".join(shlex.quote(str(plan.shard_dir(i))) for i in range(options.shards))
    tmp, merged = shlex.quote(str(plan.merged) + ".tmp"), shlex.quote(str(plan.merged))
    lines += [
        "# react-eval: join the shards of the array job into one run (rebuilt on every submission)",
        "set -euo pipefail",
        f"rm -rf {tmp}",
        f"{shlex.quote(options.python)} -m react_eval.cli merge {shards} --output-dir {tmp}",
        f"rm -rf {merged}",
        f"mv {tmp} {merged}",
    ]
    return "\n".join(lines) + "\n"


def submit(plan: SlurmPlan, merge_after: str, sbatch: str = "sbatch") -> tuple[str, str]:
    """Submit the array, then the merge job depending on it; returns both job ids."""
    array_id = _sbatch([sbatch, "--parsable", str(plan.array_script)])
    merge_id = _sbatch([sbatch, "--parsable", f"--dependency={merge_after}:{array_id}", str(plan.merge_script)])
    record = json.loads(plan.plan_file.read_text())
    record.setdefault("submissions", []).append({"array_job": array_id, "merge_job": merge_id})
    plan.plan_file.write_text(json.dumps(record, indent=2))
    return array_id, merge_id


def _sbatch(command: list[str]) -> str:
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=120)
    except FileNotFoundError:
        raise SlurmError(f"{command[0]} not found: run on a SLURM login node, or submit the scripts by hand") from None
    if proc.returncode != 0:
        raise SlurmError(f"{shlex.join(command)} failed: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout.strip().split(";")[0]  # --parsable: "id" or "id;cluster"
