"""What a :class:`~react_eval.sandboxes.shell.ShellSession` needs from the place its bash runs.

A transport carries bytes to and from one bash process and stops the processes
a timed-out command started (first sending the shell :data:`ABORT_SIGNAL`);
the session's protocol (framing, markers, restarts) is in
:mod:`react_eval.sandboxes.shell`, which re-exports these names.
"""

from __future__ import annotations

import signal
from typing import Protocol, runtime_checkable

__all__ = ["ABORT_SIGNAL", "ABORT_SIGNUM", "ShellTransport", "ShellTransportError"]

#: the signal (bash's name) whose trap makes the shell skip the rest of a
#: timed-out command; a real-time signal, which programs rarely trap
ABORT_SIGNAL = "RTMIN+3"
#: its number for ``os.kill`` on this host (bash and Python share the C library's SIGRTMIN)
ABORT_SIGNUM = signal.SIGRTMIN + 3


class ShellTransportError(Exception):
    """The byte stream to the shell broke (the shell cannot be reached)."""


@runtime_checkable
class ShellTransport(Protocol):
    """Where a :class:`~react_eval.sandboxes.shell.ShellSession`'s bash runs, and how to stop its processes.

    The shell must be ``bash`` reading commands from the stream written by
    ``send``, with stdout (and ideally stderr) coming back through ``receive``.
    """

    async def start(self) -> None:
        """Start a fresh shell, killing any previous one and its processes."""
        ...

    async def send(self, data: bytes) -> None:
        """Write to the shell's stdin; raise ShellTransportError if it is gone."""
        ...

    async def receive(self) -> bytes:
        """Next chunk of the shell's output; ``b""`` at end of stream."""
        ...

    def shell_ready(self) -> None:
        """Called once the shell answered its first command (a good moment to
        note which processes make up the shell itself)."""
        ...

    def mark_command_start(self) -> None:
        """Called right before each command: processes started after this
        belong to the command (``interrupt`` may use it)."""
        ...

    async def interrupt(self) -> None:
        """Stop the running command: send the shell :data:`ABORT_SIGNAL` (so it
        skips the rest of the command), then kill every process the command
        started, sparing the shell when possible (then it keeps its state)."""
        ...

    async def exit_status(self) -> int | None:
        """After end of stream: the shell's exit status (128+N for signal N)."""
        ...

    async def close(self) -> None:
        """Kill the shell and everything it started; release the stream."""
        ...
