"""Run progress: a rich bar on a terminal, plain log lines otherwise.

The live pass rate counts only scored rollouts (infrastructure failures are
shown apart, as the final summary treats them), and the first message of each
new error kind is printed when it happens, so a run that is going wrong says
so at once rather than in results.jsonl afterwards.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from typing import Any, TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress as RichProgress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Column
from rich.text import Text

from react_eval.engine.failures import COMPLETED, INFRA_KINDS, one_line


class Progress:
    """Counts rollouts done, the live pass rate of scored rollouts and errors, with an ETA."""

    def __init__(self, *, enabled: bool = True, stream: TextIO | None = None, console: Console | None = None):
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.console = console
        self.rich = enabled and (console is not None or self.stream.isatty())
        self._bar: RichProgress | None = None
        self._task = None
        self.total = self.done = self.passed = self.infra = 0
        self.errors: Counter[str] = Counter()
        self.name = ""
        self._t0 = 0.0

    def start(self, name: str, total: int) -> None:
        self.name, self.total, self.done, self.passed, self.infra = name, total, 0, 0, 0
        self.errors.clear()
        self._t0 = time.monotonic()
        if self.rich:
            self._bar = RichProgress(
                TextColumn("[bold]{task.description}"),
                BarColumn(bar_width=20),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                # the status last, folded onto further lines rather than cut at the terminal's width
                TextColumn("{task.fields[status]}", markup=False, table_column=Column(overflow="fold", ratio=1)),
                console=self.console or Console(file=self.stream),
                transient=False,
                expand=True,
            )
            self._bar.start()
            self._task = self._bar.add_task(name, total=total, status="")
        elif self.enabled:
            print(f"[{name}] {total} rollouts", file=self.stream, flush=True)

    def status(self) -> str:
        scored = self.done - self.infra
        rate = f"pass {self.passed / scored:.0%} of {scored} scored" if scored else "pass -"
        infra = ", ".join(f"{k} {v}" for k, v in sorted(self.errors.items()) if k in INFRA_KINDS)
        other = ", ".join(f"{k} {v}" for k, v in sorted(self.errors.items()) if k not in INFRA_KINDS)
        return rate + (f" | infra failures {self.infra}: {infra}" if infra else "") + (f" | {other}" if other else "")

    def advance(self, row: dict[str, Any]) -> None:
        self.done += 1
        kind = row.get("error_kind")
        if kind in INFRA_KINDS:
            self.infra += 1
        else:
            self.passed += bool(row.get("passed"))
        if kind:
            if kind not in self.errors:
                self._say(f"[{self.name}] first {kind}: {row['task_id']}#{row['repeat']}: {one_line(row.get('error'))}")
            self.errors[kind] += 1
        if self._bar is not None:
            self._bar.update(self._task, advance=1, status=self.status())
        elif self.enabled:
            elapsed = time.monotonic() - self._t0
            eta = elapsed / self.done * (self.total - self.done)
            print(
                f"[{self.name}] {self.done}/{self.total} {row['task_id']}#{row['repeat']} "
                f"reward={row.get('reward')} {kind or COMPLETED} | {self.status()} | eta {eta:.0f}s",
                file=self.stream,
                flush=True,
            )

    def _say(self, line: str) -> None:
        """A message above the bar (never parsed as markup: task ids and errors hold brackets)."""
        if self._bar is not None:
            self._bar.console.print(Text(line, style="yellow"))
        else:  # said even without progress lines: it is what went wrong, not progress
            print(line, file=self.stream, flush=True)

    def stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
