"""Render the red-team table of a tests/security run (attack x sandbox -> blocked / ESCAPED).

    python -m pytest tests/security                      # writes security-results.json
    python tools/security_table.py                       # print the table of that run
    python tools/security_table.py --write docs/RELIABILITY.md   # put it into the doc
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import Any

START = "<!-- security-table:start -->"
END = "<!-- security-table:end -->"
ROOT = Path(__file__).resolve().parents[1]
SANDBOXES = ("bwrap", "docker", "local", "harness")


def results_path() -> Path:
    return Path(os.environ.get("REACT_EVAL_SECURITY_OUT") or ROOT / "security-results.json")


def _grid(data: dict[str, Any]) -> tuple[list[str], dict[tuple[str, str], str]]:
    attacks: list[str] = []
    cells: dict[tuple[str, str], str] = {}
    for v in data["verdicts"]:
        if v["attack"] not in attacks:
            attacks.append(v["attack"])
        cells[(v["attack"], v["sandbox"])] = v["result"]
    return attacks, cells


def render(data: dict[str, Any]) -> str:
    attacks, cells = _grid(data)
    escaped = sum(1 for v in data["verdicts"] if v["result"] != "blocked")
    lines = [
        f"Red-team run of {data['generated_at']} on {data.get('host', '?')}, runner "
        f"{'as root' if data.get('as_root') else 'NOT as root'}: **{len(data['verdicts']) - escaped} of "
        f"{len(data['verdicts'])} attacks blocked**{f', **{escaped} ESCAPED**' if escaped else ''}. "
        "`local` is for trusted code only: only the file tools' race is in its scope; "
        "n/a = not applicable to that sandbox.",
        "",
        "| Attack | " + " | ".join(SANDBOXES) + " |",
        "| --- |" + " --- |" * len(SANDBOXES),
    ]
    for attack in attacks:
        row = [cells.get((attack, s), "n/a") for s in SANDBOXES]
        lines.append(f"| {attack} | " + " | ".join(f"**{c}**" if c == "ESCAPED" else c for c in row) + " |")
    return "\n".join(lines) + "\n"


def render_text(data: dict[str, Any]) -> str:
    attacks, cells = _grid(data)
    width = max(len(a) for a in attacks)
    out = [f"{'attack':<{width}}  " + "  ".join(f"{s:<8}" for s in SANDBOXES)]
    for attack in attacks:
        out.append(f"{attack:<{width}}  " + "  ".join(f"{cells.get((attack, s), 'n/a'):<8}" for s in SANDBOXES))
    return "\n".join(out)


def _write_doc(doc: Path, table: str) -> None:
    spec = importlib.util.spec_from_file_location("reliability_table", ROOT / "tools" / "reliability_table.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    module.START, module.END = START, END  # the same section writer, with this table's markers
    module.write_doc(doc, table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="?", type=Path, default=None)
    parser.add_argument("--write", type=Path, metavar="DOC", help="replace the security table section of DOC")
    args = parser.parse_args(argv)
    path = args.results or results_path()
    if not path.exists():
        print(f"{path}: no results; run `python -m pytest tests/security` first", file=sys.stderr)
        return 2
    data = json.loads(path.read_text())
    table = render(data)
    if args.write:
        _write_doc(args.write, table)
        print(f"wrote the table of {path} into {args.write}")
    else:
        print(table, end="")
    return 0 if all(v["result"] == "blocked" for v in data["verdicts"]) else 1


if __name__ == "__main__":
    sys.exit(main())
