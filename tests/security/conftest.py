"""The red-team suite: its verdict table (attack x sandbox -> blocked / ESCAPED).

Each test records what it saw on the host with the ``verdict`` fixture; at the
end of the session the table is printed in the terminal summary and written
to ``$REACT_EVAL_SECURITY_OUT`` (default ``security-results.json`` at the
repository root). ``tools/security_table.py --write docs/RELIABILITY.md``
puts it into the doc.
"""

from __future__ import annotations

import json
import os
import platform
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.bench import register
from tests.support.tool_scripts import load_tool_script

register()

_ROOT = Path(__file__).resolve().parents[2]
_VERDICTS: dict[tuple[str, str], dict[str, Any]] = {}


def _table():
    return load_tool_script("security_table")


@pytest.fixture
def verdict(request):
    """``verdict(attack, sandbox, blocked, detail)``: record, then assert, a host-side finding."""

    def record(attack: str, sandbox: str, blocked: bool, detail: str = "") -> None:
        _VERDICTS[(attack, sandbox)] = {"attack": attack, "sandbox": sandbox,
                                        "result": "blocked" if blocked else "ESCAPED",
                                        "detail": detail[:500], "test": request.node.nodeid}
        assert blocked, f"{attack} escaped the {sandbox} sandbox: {detail}"

    return record


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not _VERDICTS:
        return
    table = _table()
    data = {
        "generated_at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "host": f"{platform.system()} {platform.release()}",
        "as_root": os.geteuid() == 0,
        "verdicts": list(_VERDICTS.values()),
    }
    out = Path(os.environ.get("REACT_EVAL_SECURITY_OUT") or _ROOT / "security-results.json")
    try:
        out.write_text(json.dumps(data, indent=1))
    except OSError:
        pass
    terminalreporter.write_sep("=", "red-team table (attack x sandbox)")
    terminalreporter.write_line(table.render_text(data))
