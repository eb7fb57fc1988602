"""`react-eval validate` for humaneval+ and mbpp+ (on the bundled mini data files)
in every sandbox: oracle 1.0, empty and tampering 0.0, nothing unscored."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.benchmarks.test_swe_validate import run_cli

pytest.importorskip("evalplus", reason="evalplus is an extra: pip install 'react-eval[evalplus]'")

FIXTURES = Path(__file__).parent / "fixtures"
DATA = {"humaneval+": ("HUMANEVAL_OVERRIDE_PATH", FIXTURES / "humanevalplus_mini.jsonl"),
        "mbpp+": ("MBPP_OVERRIDE_PATH", FIXTURES / "mbppplus_mini.jsonl")}


def validate(bench: str, sandbox: str, out: Path, monkeypatch) -> str:
    var, path = DATA[bench]
    monkeypatch.setenv(var, str(path))
    proc = run_cli("validate", "--bench", bench, "--sandbox", sandbox, "-o", str(out), "--no-progress")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    n = sum(1 for line in path.read_text().splitlines() if line.strip())
    for phrase in (f"scores 1.0 on {n}/{n} tasks", f"empty answer scores above 0 on 0/{n}",
                   f"tampering policy scores above 0 on 0/{n}", f"no score (infrastructure or verifier error) on 0/{n}"):
        assert phrase in proc.stdout, proc.stdout[-3000:]
    return proc.stdout


@pytest.mark.parametrize("bench", sorted(DATA))
def test_validate_local(bench, tmp_path, monkeypatch):
    validate(bench, "local", tmp_path, monkeypatch)


@pytest.mark.parametrize("bench", sorted(DATA))
def test_validate_bwrap(bench, bwrap_available, tmp_path, monkeypatch):
    validate(bench, "bwrap", tmp_path, monkeypatch)


@pytest.mark.docker
@pytest.mark.parametrize("bench", sorted(DATA))
def test_validate_docker(bench, docker_engine, tmp_path, monkeypatch):
    validate(bench, "docker", tmp_path, monkeypatch)
