"""react-eval: an evaluator for agentic tool-calling harnesses.

The public Python API (the CLI's twin)::

    import react_eval

    result = react_eval.evaluate("eval.yaml")          # or a mapping, or an EvalConfig
    result.summaries["smoke"]["pass@1"]

    react_eval.registry.register("sandbox", "mine", "mypkg.sandbox:MyProvider")

Names load on first use, so ``import react_eval`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from react_eval.version import __version__

#: public name -> the module that defines it
_EXPORTS: dict[str, str] = {
    # running
    "evaluate": "react_eval.api",
    "aevaluate": "react_eval.api",
    "EvalResult": "react_eval.api",
    "BenchmarkRun": "react_eval.engine.run",
    # configuration
    "EvalConfig": "react_eval.engine.config",
    "SolverConfig": "react_eval.engine.config",
    "ConfigError": "react_eval.engine.config",
    "load_config": "react_eval.engine.config",
    "LoopConfig": "react_eval.loop",
    "ModelConfig": "react_eval.model.config",
    # protocols and base classes of the pluggable parts
    "Model": "react_eval.model.protocol",
    "ModelResponse": "react_eval.model.response",
    "Sandbox": "react_eval.sandboxes.base",
    "SandboxProvider": "react_eval.sandboxes.base",
    "ExecResult": "react_eval.sandboxes.base",
    "ToolSource": "react_eval.tools.base",
    "ToolBackend": "react_eval.tools.base",
    "Benchmark": "react_eval.benchmarks.base",
    "Answer": "react_eval.benchmarks.base",
    "RolloutEnv": "react_eval.benchmarks.base",
    "Verification": "react_eval.benchmarks.base",
    "ReferenceSolution": "react_eval.benchmarks.base",
    "PlannedCall": "react_eval.benchmarks.base",
    "Solver": "react_eval.plugins.protocols",
    "SolverFactory": "react_eval.plugins.protocols",
    "Grader": "react_eval.plugins.protocols",
    "ReActLoop": "react_eval.loop",
    "LoopOutcome": "react_eval.loop",
    "Task": "react_eval.types",
    "SandboxSpec": "react_eval.types",
    "ToolSpec": "react_eval.types",
    "ToolResult": "react_eval.types",
    "ToolCall": "react_eval.types",
    "ErrorKind": "react_eval.types",
    "Usage": "react_eval.types",
    # the plugin registry
    "registry": "react_eval.plugins",
    "Registry": "react_eval.plugins",
    "Plugin": "react_eval.plugins",
    "PluginError": "react_eval.plugins",
    "UnknownPlugin": "react_eval.plugins",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'react_eval' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:  # what type checkers and IDEs see
    from react_eval.api import EvalResult, aevaluate, evaluate
    from react_eval.benchmarks.base import Answer, Benchmark, PlannedCall, ReferenceSolution, RolloutEnv, Verification
    from react_eval.engine.config import ConfigError, EvalConfig, SolverConfig, load_config
    from react_eval.engine.run import BenchmarkRun
    from react_eval.loop import LoopConfig, LoopOutcome, ReActLoop
    from react_eval.model.protocol import Model
    from react_eval.model.config import ModelConfig
    from react_eval.model.response import ModelResponse
    from react_eval.plugins import Plugin, PluginError, Registry, UnknownPlugin, registry
    from react_eval.plugins.protocols import Grader, Solver, SolverFactory
    from react_eval.sandboxes.base import ExecResult, Sandbox, SandboxProvider
    from react_eval.tools.base import ToolBackend, ToolSource
    from react_eval.types import ErrorKind, SandboxSpec, Task, ToolCall, ToolResult, ToolSpec, Usage
