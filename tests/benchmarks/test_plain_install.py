"""`react-eval validate` as a new user runs it: a fresh venv from Debian's Python,
``pip install`` of this tree with no extras, the console script run from an
unrelated directory, as root, in every sandbox.

Every bundled benchmark must score 1.0 under the oracle and 0.0 under the empty
and the tampering policies, with no unscored task. The venv is built once per
test session. HumanEval runs its first 20 problems here (its 164 canonical
solutions are checked in test_humaneval.py); swe-mini and smoke run in full.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BASE_PYTHON = "/usr/bin/python3"
SUBSETS = {"humaneval": "0:20"}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def plain_install(tmp_path_factory) -> Path:
    """The ``react-eval`` console script of a fresh, extras-free install of this tree."""
    if not os.access(BASE_PYTHON, os.X_OK):
        pytest.skip(f"{BASE_PYTHON} (Debian's python3) is not installed")
    work = tmp_path_factory.mktemp("plain-install")
    src = work / "src"  # a copy: pip's in-tree build must not litter the checkout
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
        ".git", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", "eval_results", "node_modules"))
    venv = work / "venv"
    subprocess.run([BASE_PYTHON, "-m", "venv", str(venv)], check=True, timeout=300)
    proc = subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check", str(src)],
                          capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    script = venv / "bin" / "react-eval"
    assert script.exists()
    check = subprocess.run([str(venv / "bin" / "python"), "-c", "import pytest"], capture_output=True)
    assert check.returncode != 0, "the plain install must not have pytest: the grader may not rely on it"
    return script


def run_validate(script: Path, bench: str, sandbox: str, out: Path) -> str:
    args = [str(script), "validate", "--bench", bench, "--sandbox", sandbox, "-o", str(out), "--no-progress"]
    if bench in SUBSETS:
        args += ["--problem-range", SUBSETS[bench]]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["COLUMNS"] = "1000"
    # grading environments built by this install itself, once per session
    env["REACT_EVAL_ENV_CACHE"] = str(script.parents[2] / "envs")
    proc = subprocess.run(args, capture_output=True, text=True, timeout=1800, cwd=out.parent, env=env)
    text = " ".join(proc.stdout.split())
    assert proc.returncode == 0, text[-4000:] + proc.stderr[-3000:]
    return text


def _check(text: str, bench: str) -> None:
    m = re.search(r"scores 1\.0 on (\d+)/(\d+) tasks", text)
    assert m and m.group(1) == m.group(2) and int(m.group(2)) > 0, text[-2000:]
    n = m.group(2)
    assert f"empty answer scores above 0 on 0/{n} tasks" in text
    assert f"tampering policy scores above 0 on 0/{n} tasks" in text
    assert f"no score (infrastructure or verifier error) on 0/{n} tasks" in text
    assert "validation passed" in text
    if bench == "swe-mini":  # every planted file was caught and reported
        assert f"flagged as tampering on {n})" in text


BENCHES = ["smoke", "swe-mini", "humaneval"]


@pytest.mark.parametrize("bench", BENCHES)
def test_plain_install_validate_local(plain_install, tmp_path, bench):
    _check(run_validate(plain_install, bench, "local", tmp_path / "out"), bench)


@pytest.mark.parametrize("bench", BENCHES)
def test_plain_install_validate_bwrap(plain_install, bwrap_available, tmp_path, bench):
    _check(run_validate(plain_install, bench, "bwrap", tmp_path / "out"), bench)


@pytest.mark.docker
@pytest.mark.parametrize("bench", BENCHES)
def test_plain_install_validate_docker(plain_install, docker_engine, tmp_path, bench):
    _check(run_validate(plain_install, bench, "docker", tmp_path / "out"), bench)
