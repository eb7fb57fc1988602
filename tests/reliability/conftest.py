"""The reliability suite: the test benchmark, and the fault table of this run.

A plugin registered here records the outcome of every test of the session;
at the end it joins them with the rows of :mod:`tests.reliability.rows`,
writes the result to ``$REACT_EVAL_RELIABILITY_OUT`` (default
``reliability-results.json`` at the repository root) and prints the table
in the terminal summary, so a CI log shows the results of that very run.
``tools/reliability_table.py`` renders the file as Markdown (``--write
docs/RELIABILITY.md`` puts it into the doc).
"""

from __future__ import annotations

import json
import os
import platform
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.bench import register
from tests.support.tool_scripts import load_tool_script
from tests.reliability.rows import COMMON, ROWS

register()

_ROOT = Path(__file__).resolve().parents[2]


def _table_module():
    return load_tool_script("reliability_table")


class ReliabilityRecorder:
    """Outcomes by node id (re-exported tests under their original id)."""

    def __init__(self) -> None:
        self.outcomes: dict[str, dict[str, Any]] = {}
        self.alias: dict[str, str] = {}
        self.started = time.monotonic()
        self.data: dict[str, Any] | None = None

    # -- collection: a test imported into this suite from elsewhere runs once

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, session: pytest.Session, config: pytest.Config, items: list) -> None:
        ids = {item.nodeid for item in items}
        keep, drop = [], []
        for item in items:
            original = self._original_id(item, config)
            if original is not None:
                self.alias[item.nodeid] = original
                if original in ids:
                    drop.append(item)
                    continue
            keep.append(item)
        if drop:
            config.hook.pytest_deselected(items=drop)
            items[:] = keep

    @staticmethod
    def _original_id(item: Any, config: pytest.Config) -> str | None:
        fn = getattr(item, "function", None)
        if fn is None or not item.nodeid.startswith("tests/reliability/"):
            return None
        source = Path(fn.__code__.co_filename).resolve()
        if source == Path(item.path).resolve():
            return None
        try:
            rel = source.relative_to(Path(config.rootpath).resolve())
        except ValueError:
            return None
        return f"{rel.as_posix()}::{item.name}"

    # -- outcomes

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        nodeid = self.alias.get(report.nodeid, report.nodeid)
        entry = self.outcomes.setdefault(nodeid, {"nodeid": nodeid, "outcome": "not run", "duration": 0.0})
        if report.when == "call":
            entry["outcome"] = report.outcome
            entry["duration"] = round(report.duration, 2)
        elif report.failed:  # setup or teardown
            entry["outcome"] = "error"
        elif report.skipped and report.when == "setup":
            entry["outcome"] = "skipped"

    def _matching(self, ref: str) -> list[dict[str, Any]]:
        return [o for nid, o in sorted(self.outcomes.items()) if nid == ref or nid.startswith(ref + "[")]

    def build(self) -> dict[str, Any] | None:
        rows = []
        for row in ROWS:
            outcomes = [o for ref in row.tests for o in self._matching(ref)]
            states = {o["outcome"] for o in outcomes}
            if not outcomes:
                result = "not run"
            elif states == {"passed"}:
                result = "passed"
            elif states & {"failed", "error"}:
                result = "failed"
            else:
                result = "skipped"
            if any(not self._matching(ref) for ref in row.tests) and result == "passed":
                result = "incomplete"  # a referenced test did not run
            rows.append({"area": row.area, "fault": row.fault, "expected": row.expected, "tests": list(row.tests),
                         "outcomes": outcomes, "result": result})
        if not any(r["outcomes"] for r in rows):
            return None  # no reliability test ran in this session
        return {
            "generated_at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "host": f"{platform.system()} {platform.release()}, {os.cpu_count()} CPUs",
            "python": platform.python_version(),
            "duration_s": round(time.monotonic() - self.started, 1),
            "common": COMMON,
            "rows": rows,
        }

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        self.data = self.build()
        if self.data is None:
            return
        out = Path(os.environ.get("REACT_EVAL_RELIABILITY_OUT") or _ROOT / "reliability-results.json")
        out.write_text(json.dumps(self.data, indent=1) + "\n")

    def pytest_terminal_summary(self, terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
        data = self.data or self.build()
        if data is None:
            return
        table = _table_module()
        terminalreporter.section("reliability: fault table of this run")
        terminalreporter.write_line(table.render(data))
        terminalreporter.write_line(table.render_text(data).splitlines()[-1])


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.has_plugin("react-eval-reliability"):
        config.pluginmanager.register(ReliabilityRecorder(), "react-eval-reliability")
