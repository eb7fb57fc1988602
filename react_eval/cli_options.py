"""The options of ``react-eval run`` and ``react-eval validate``, each declared once.

A command lists the ones it takes as ``name: Alias = None``; the flags both
commands share build a :class:`~react_eval.cli_config.Selection`."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional, get_args

import typer

from react_eval.model.config import ModelConfig


def _choices(name: str, values: tuple[str, ...]) -> type[Enum]:
    """A str Enum of ``values`` (typer shows and checks them as choices)."""
    return Enum(name, {v: v for v in values}, type=str)  # type: ignore[return-value]


if TYPE_CHECKING:
    ProtocolChoice = FormatChoice = Enum
else:
    #: --protocol choices: the model config's own Literal, so the two never disagree
    ProtocolChoice = _choices("ProtocolChoice", get_args(ModelConfig.model_fields["protocol"].annotation))
    FormatChoice = _choices("FormatChoice", ("text", "markdown", "md", "json"))

# ---------------------------------------------------------------- shared by run and validate
Config = Annotated[Optional[Path], typer.Option("--config", "-c", help="YAML config (NeMo-Evaluator-style layout).")]
Bench = Annotated[Optional[str], typer.Option(
    "--bench", "-b", help="Benchmark name (see `react-eval list`), gym://HOST:PORT, harbor:PATH or a class path.")]
Sandbox = Annotated[Optional[str], typer.Option(
    "--sandbox", help="docker, bwrap, local (the host itself, trusted code only) or a sandbox plugin's type (see "
    "`react-eval plugins`). A benchmark that needs a sandbox and has none gets bwrap, announced (never the bare host).")]
Dataset = Annotated[Optional[Path], typer.Option(
    "--dataset", help="Dataset file of a benchmark that takes one: gym://host:port, swebench, swe-local (sets options.dataset).")]
RayAddress = Annotated[Optional[str], typer.Option(
    "--ray-address", help="Run the rollouts as actors on a Ray cluster's nodes (executor: {type: ray}): 'auto' for "
    "the cluster this machine belongs to, host:port of its head, ray://host:10001, or 'local' to start a private "
    "one here. Needs the ray extra.")]
MaxConcurrent = Annotated[Optional[int], typer.Option("--max-concurrent", help="Rollouts at once.")]
MaxProblems = Annotated[Optional[int], typer.Option("--max-problems", help="Only the first N tasks.")]
ProblemRange = Annotated[Optional[str], typer.Option("--problem-range", help="Tasks a:b (slice).")]
OutputDir = Annotated[Optional[Path], typer.Option(
    "--output-dir", "-o", help="Where results go (default ./eval_results).")]
Override = Annotated[Optional[list[str]], typer.Option("-O", help="Override a config value: dot.path=value.")]
NoProgress = Annotated[bool, typer.Option("--no-progress", help="No progress bar or progress lines.")]

# ---------------------------------------------------------------- run only
ModelUrl = Annotated[Optional[str], typer.Option(
    "--model-url", help="OpenAI-compatible base URL, e.g. http://host:8000/v1 (a full endpoint URL such as "
    ".../v1/chat/completions or .../v1/responses is accepted too).")]
Model = Annotated[Optional[str], typer.Option(
    "--model", "-m", help="Model id served by the endpoint. 'oracle' needs no endpoint: the built-in reference "
    "policy replays each task's reference solution (a first run without a model: --bench smoke --model oracle).")]
ApiKeyEnv = Annotated[Optional[str], typer.Option(
    "--api-key-env", help="Environment variable holding the API key (must be set).")]
Protocol = Annotated[Optional[ProtocolChoice], typer.Option(  # type: ignore[valid-type]
    "--protocol", help="The endpoint's API (default chat_completions; completions with --solver simple).")]
Solver = Annotated[Optional[str], typer.Option(
    "--solver", help="tool_calling (default: the ReAct loop), simple (one model call, no tools) or a solver "
    "plugin's type (see `react-eval plugins`).")]
MaxInfraFailures = Annotated[Optional[str], typer.Option(
    "--max-infra-failures", help="Infrastructure failures a benchmark may have before the run exits 4: a count "
    "(3) or a fraction (0.1, 10%). Default: exit 4 only when every rollout failed for infrastructure reasons.")]
Repeats = Annotated[Optional[int], typer.Option("--repeats", "-n", help="Rollouts per task.")]
Workers = Annotated[Optional[int], typer.Option(
    "--workers", help="Harness processes sharing --max-concurrent (default 1); for hundreds of rollouts "
    "in flight against a fast model, about one per CPU core.")]
MaxTurns = Annotated[Optional[int], typer.Option("--max-turns", help="Model calls per rollout.")]
Resume = Annotated[bool, typer.Option(
    "--resume", help="Continue a run in --output-dir: skip finished (task, repeat) pairs.")]
RetryErrors = Annotated[bool, typer.Option(
    "--retry-errors", help="Re-run only the infrastructure-failed rollouts of an existing run.")]
Force = Annotated[bool, typer.Option("--force", help="Resume even though the harness config changed.")]
Shard = Annotated[Optional[str], typer.Option(
    "--shard", help="Run only shard i of N (0-based, e.g. 0/4); join with `react-eval merge`.")]
ExportPredictions = Annotated[Optional[Path], typer.Option(
    "--export-predictions",
    help="Also write SWE-bench predictions JSONL (instance_id, model_name_or_path, model_patch).")]

# ---------------------------------------------------------------- compare
Format = Annotated[FormatChoice, typer.Option("--format", "-f", help="Output format.")]  # type: ignore[valid-type]
