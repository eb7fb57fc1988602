"""The command line's output: results on stdout, messages on stderr, one line each."""

from __future__ import annotations

from rich.console import Console
from rich.text import Text

__all__ = ["console", "out", "say"]

console = Console(stderr=True, soft_wrap=True)
out = Console()


def say(label: str, message: str, style: str = "red") -> None:
    """``label message`` on stderr; the message is never read as rich markup
    (errors name things like ``[swebench]`` that markup would swallow)."""
    console.print(Text.assemble((label, style), " ", str(message)), highlight=False)
