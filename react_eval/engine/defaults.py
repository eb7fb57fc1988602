"""Safe defaults, and saying which ones differ from NeMo Evaluator's.

The agent gets a shell only when someone asked for one: sandbox tools need
``sandbox_tools: true`` (or a benchmark whose agent works in a sandbox) *and* a
sandbox. Nothing ever falls back to the bare host: a benchmark that needs a
sandbox and has none configured gets the announced default -- a bubblewrap jail
-- or, without bubblewrap, a message naming the choices. Every default that
differs from NEL's is printed once when the run starts.
"""

from __future__ import annotations

import shutil
import sys
from typing import Any

from react_eval.benchmarks.base import Benchmark
from react_eval.engine.config import BenchmarkEntry, EvalConfig
from react_eval.sandboxes.docker.config import DockerSandboxConfig
from react_eval.sandboxes.local import LocalSandboxConfig

#: the sandbox a benchmark that needs one gets when none is configured (announced)
DEFAULT_SANDBOX = LocalSandboxConfig(isolation="bwrap")
#: NEL's Docker sandbox defaults where react-eval's differ: field -> (NEL's value, why ours)
DOCKER_DIFFERENCES = {
    "network": ("bridge", "no network unless asked (network: bridge)"),
    "concurrency": (4, "more containers at once"),
}


class SandboxRequired(ValueError):
    """The benchmark (or solver.sandbox_tools) needs a sandbox and none can be had."""


class ResponseModeConflict(ValueError):
    """``response_mode: last_message`` (or the simple solver) on a benchmark that grades only a sandbox artifact."""


def check_response_mode(entry: BenchmarkEntry, benchmark: Benchmark) -> None:
    """An explicit ``response_mode`` is honoured; refuse the combinations that would
    leave nothing to grade (the last message, or the simple solver's one reply, on a
    benchmark that grades a sandbox's patch), rather than failing every rollout."""
    solver = entry.solver
    if benchmark.verification != "sandbox_artifact":
        return
    scoring = entry.scoring
    if scoring is not None and scoring.metrics and not scoring.include_defaults:
        return  # the listed metrics grade the last message
    if solver.type == "simple":
        raise ResponseModeConflict(
            f"{entry.name}: solver.type: simple makes one model call with no sandbox, but this benchmark "
            "grades the patch an agent leaves in its sandbox (sandbox_artifact): use solver.type: "
            "tool_calling (drop --solver simple), or grade the reply with scoring: "
            "{include_defaults: false, metrics: [...]}")
    if "response_mode" not in solver.model_fields_set or solver.response_mode != "last_message":
        return
    raise ResponseModeConflict(
        f"{entry.name}: response_mode: last_message, but this benchmark grades the sandbox's patch "
        "(sandbox_artifact) and nothing would grade the last message: drop response_mode (or set "
        "sandbox_artifact), or grade the message with scoring: {include_defaults: false, metrics: [...]}")


def wants_sandbox_tools(entry: BenchmarkEntry, benchmark: Benchmark | None) -> bool:
    """``solver.sandbox_tools``; when unset, off beside a ``resource_service`` (NEL's
    default) and else the benchmark's default (gym://: off); the simple solver never has tools."""
    if entry.solver.type == "simple":
        return False
    if entry.solver.sandbox_tools is not None:
        return entry.solver.sandbox_tools
    if entry.solver.resource_service:  # a Gym server's tools were asked for: those only, as in NEL
        return False
    return bool(getattr(benchmark, "sandbox_tools_default", True))


def resolve_sandbox(config: EvalConfig, entry: BenchmarkEntry,
                    benchmark: Benchmark) -> tuple[LocalSandboxConfig | DockerSandboxConfig | None, str | None]:
    """The sandbox of ``entry`` and a note when it is a default nobody wrote down."""
    configured = config.sandbox_for(entry)
    if configured is not None:
        return configured, None
    if entry.solver.type == "simple":
        return None, None  # no agent sandbox; code scorers grade in their own fresh sandboxes
    if entry.solver.sandbox_tools:
        raise SandboxRequired(
            f"{entry.name}: solver.sandbox_tools is true but no sandbox is configured (react-eval never hands "
            "the model a shell on the host unasked): add sandbox: {type: docker} (or type: local with "
            "isolation: bwrap), or pass --sandbox docker|bwrap|local")
    if not benchmark.needs_sandbox:
        return None, None
    if shutil.which("bwrap") is None:
        raise SandboxRequired(
            f"{entry.name}: the agent works in a sandbox and none is configured; the default jail needs "
            "bubblewrap (apt-get install bubblewrap), which is missing: pass --sandbox docker, or "
            "--sandbox local to run it on this host without isolation")
    return DEFAULT_SANDBOX, (f"{entry.name}: no sandbox configured, so the agent works in the default one: "
                             "local with isolation: bwrap (a jail, never the bare host); choose with "
                             "--sandbox docker|bwrap|local or sandbox:")


def nel_differences(config: EvalConfig, entry: BenchmarkEntry, benchmark: Benchmark,
                    sandbox: Any) -> list[str]:
    """The defaults in effect for ``entry`` that differ from NEL's (fields the user did not set)."""
    lines = []
    if entry.solver.type != "simple" and entry.solver.sandbox_tools is None and wants_sandbox_tools(entry, benchmark) \
            and sandbox is not None:
        lines.append(f"{entry.name}: sandbox tools on (this benchmark's default; NEL's: off unless "
                     "sandbox_tools: true); set solver.sandbox_tools: false to offer none")
    if isinstance(sandbox, DockerSandboxConfig):
        for field, (nel, why) in DOCKER_DIFFERENCES.items():
            if field not in sandbox.model_fields_set:
                lines.append(f"{entry.name}: docker {field}: {getattr(sandbox, field)} (NEL: {nel}; {why})")
    return lines


#: the notes said in this run (validate runs one benchmark three times: said once, not thrice)
_announced: set[str] = set()


def announce(lines: list[str]) -> None:
    """Print the notes not yet said in this run, before the first rollout."""
    new = [line for line in dict.fromkeys(lines) if line not in _announced]
    _announced.update(new)
    if new:
        print("react-eval: " + "\nreact-eval: ".join(new), file=sys.stderr)


def new_announcements() -> None:
    """A new run (or validation) starts: its notes are said again."""
    _announced.clear()
