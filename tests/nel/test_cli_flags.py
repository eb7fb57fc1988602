"""The NEL surface from the command line: --solver simple, --protocol completions, NEL names."""

from __future__ import annotations

from tests.nel.helpers import DATA, cli, read_jsonl
from tests.support.scripted_server import answer


def test_simple_solver_over_completions_from_flags(scripted_server, tmp_path):
    srv = scripted_server(lambda req: answer("The answer: 6" if "baker" in req.first_user_text else "0"))
    proc = cli("run", "--bench", "gsm8k", "--solver", "simple", "--protocol", "completions",
               "--model-url", srv.base_url, "--model", "base-model", "--dataset", str(DATA / "gsm8k_mini.jsonl"),
               "-o", str(tmp_path), "--no-progress")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = read_jsonl(tmp_path / "gsm8k" / "results.jsonl")
    assert sorted(r["reward"] for r in rows) == [0.0, 0.0, 1.0]
    assert {r.path for r in srv.requests} == {"/v1/completions"}
    assert all("prompt" in r.body and "tools" not in r.body for r in srv.requests)


def test_nel_benchmark_names_from_flags(tmp_path):
    proc = cli("run", "--bench", "swebench-verified", "--model-url", "http://127.0.0.1:9/v1", "--model", "m",
               "-o", str(tmp_path), "--no-progress")
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "NEL's 'swebench-verified' runs as react-eval's 'swebench'" in out and "--dataset" in out


def test_completions_with_the_tool_calling_solver_is_refused(tmp_path):
    proc = cli("run", "--bench", "smoke", "--protocol", "completions", "--model-url", "http://127.0.0.1:9/v1",
               "--model", "m", "-o", str(tmp_path), "--no-progress")
    assert proc.returncode == 2 and "use solver.type: simple" in proc.stdout + proc.stderr
