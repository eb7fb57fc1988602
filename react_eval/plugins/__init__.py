"""Plugins: the registry of benchmarks, sandboxes, tool sources, solvers and graders.

    from react_eval.plugins import registry
    registry.register("sandbox", "mine", "mypkg.sandbox:MyProvider")
    registry.names("sandbox")  # ['docker', 'local', 'mine', ...]
"""

from __future__ import annotations

from react_eval.plugins.builtins import BUILTINS
from react_eval.plugins.registry import (
    KINDS,
    MissingExtra,
    NoOptions,
    Plugin,
    PluginError,
    Registry,
    UnknownPlugin,
    import_path,
    needs_module,
)

#: the process-wide registry the engine, the config and the CLI use
registry = Registry(list(BUILTINS))

__all__ = ["KINDS", "MissingExtra", "NoOptions", "Plugin", "PluginError", "Registry", "UnknownPlugin",
           "import_path", "needs_module", "registry"]
