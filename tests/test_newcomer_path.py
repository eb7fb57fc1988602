"""The newcomer's set-up path: README's two commands, CI running exactly them,
heavy dependencies kept out of a plain install, and no collection-time skips
that hide a test a fixture could make runnable."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
INSTALL = "python3 -m venv .venv && .venv/bin/pip install -e '.[dev]'"
TEST = ".venv/bin/python -m pytest"


def _commands(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.startswith("    ")]


def test_readme_installs_in_a_venv_and_ci_runs_the_same_commands():
    readme = (REPO / "README.md").read_text()
    setup = readme[readme.index("## Set-up"):readme.index("## First run")]
    assert _commands(setup)[:2] == [INSTALL, TEST]
    ci = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()]
    assert any(line.startswith(INSTALL.replace("pip install", "pip install --quiet")) for line in ci)
    assert any(line == TEST or line.startswith(TEST + " ||") for line in ci)
    assert not any(re.match(r"python3 -m pip install", line) for line in ci)  # PEP 668 refuses it on Debian


def test_the_first_run_in_the_readme_needs_no_model():
    readme = (REPO / "README.md").read_text()
    first = readme[readme.index("## First run"):]
    assert "react-eval run --bench smoke --model oracle" in first
    assert "react-eval report" in first and "react-eval view" in first


def test_evalplus_is_an_extra_and_dev_includes_it():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    core = " ".join(project["dependencies"])
    for heavy in ("evalplus", "transformers", "datasets", "torch"):
        assert heavy not in core
    assert any(d.startswith("evalplus") for d in project["optional-dependencies"]["evalplus"])
    assert "react-eval[evalplus]" in project["optional-dependencies"]["dev"]
    assert any(d.startswith("hypothesis") for d in project["optional-dependencies"]["dev"])


def test_no_test_is_skipped_at_collection_for_a_missing_bwrap():
    """bubblewrap tests take the bwrap_available fixture (it installs bwrap when it can)."""
    offenders = []
    for path in sorted(set((REPO / "tests").rglob("*.py")) - {Path(__file__).resolve()}):
        for lineno, line in enumerate(path.read_text().splitlines(), 1):
            if "skipif" in line and "bwrap" in line or re.search(r"which\(['\"]bwrap['\"]\)", line):
                offenders.append(f"{path.relative_to(REPO)}:{lineno}")
    assert offenders == []
