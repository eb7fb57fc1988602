"""Undoing sandboxes when the process is told to stop (SIGINT, SIGTERM).

Library code never touches signal dispositions: a provider registers what must
be undone with :func:`on_stop` (the Docker provider: remove its containers), and
the program that owns the process -- the CLI, a worker process of the engine, a
script -- calls :func:`install_signal_handlers` once. A handler runs every hook,
then whatever handled the signal before (Python's KeyboardInterrupt for SIGINT),
or the default action, so the exit status still says which signal ended it.
"""

from __future__ import annotations

import os
import signal
import threading
from typing import Any, Callable

_hooks: list[Callable[[], None]] = []
_lock = threading.Lock()
_previous: dict[int, Any] = {}


def on_stop(hook: Callable[[], None]) -> None:
    """Run ``hook`` (blocking, best effort) when a handled signal arrives; once per hook."""
    with _lock:
        if hook not in _hooks:
            _hooks.append(hook)


def run_stop_hooks() -> None:
    with _lock:
        hooks = list(_hooks)
    for hook in hooks:
        try:
            hook()
        except Exception:  # noqa: BLE001 - the process is stopping; the next hook still runs
            pass


def _on_signal(signum: int, frame: Any) -> None:
    run_stop_hooks()
    previous = _previous.get(signum)
    if callable(previous):
        previous(signum, frame)
    elif previous != signal.SIG_IGN:  # SIG_DFL, or None (a handler not set from Python)
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)


def install_signal_handlers(signals: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM)) -> bool:
    """Chain the stop hooks in front of the current handlers of ``signals``.
    Idempotent; only possible from the main thread (returns False elsewhere)."""
    if threading.current_thread() is not threading.main_thread():
        return False
    for sig in signals:
        if sig in _previous:
            continue
        try:
            _previous[sig] = signal.getsignal(sig)
            signal.signal(sig, _on_signal)
        except (ValueError, OSError):
            _previous.pop(sig, None)
    return True
