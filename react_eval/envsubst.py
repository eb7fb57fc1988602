"""``${VAR}`` and ``${VAR:-default}`` in configuration text, filled from the
host's environment (the syntax of docker compose and Harbor's task.toml)."""

from __future__ import annotations

import os
import re

PATTERN = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class UnsetVariable(ValueError):
    """A ``${VAR}`` without a default names a variable the environment does not set."""


def substitute(text: str) -> str:
    """``text`` with every ``${VAR}`` / ``${VAR:-default}`` filled in; other braces stay."""

    def fill(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in os.environ:
            return os.environ[name]
        if default is not None:
            return default
        raise UnsetVariable(f"environment variable {name} is not set (used as ${{{name}}})")

    return PATTERN.sub(fill, text)
