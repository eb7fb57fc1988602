"""Honest exit status and messages, and a newcomer's first commands (issue 13):
each problem a new user met has a test here, run through the real CLI."""

from __future__ import annotations

import fcntl
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from react_eval import __version__
from react_eval.engine.progress import Progress
from tests.support.scripted_server import answer, http_error

REPO = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "react_eval.cli"]


def cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=300, cwd=cwd or REPO,
                          env={**os.environ, "COLUMNS": "200", "PYTHONPATH": str(REPO), **(env or {})})


def smoke_answer(req):
    return answer("ANSWER: 42")


# ---------------------------------------------------------------- runs that measured nothing


def test_an_unreachable_endpoint_exits_4_and_says_why(tmp_path):
    proc = cli("run", "--bench", "smoke", "--model", "m", "--model-url", "http://127.0.0.1:9/v1", "-o",
               str(tmp_path), "--no-progress", "-O", "services.model.max_attempts=1")
    assert proc.returncode == 4, proc.stderr
    assert "first model_error: " in proc.stderr and "POST http://127.0.0.1:9/v1/chat/completions" in proc.stderr
    assert "model_error x6: model call failed" in proc.stderr
    assert "all 6 rollouts failed for infrastructure reasons" in proc.stderr


def test_a_url_answering_404_exits_4_with_a_hint(scripted_server, tmp_path):
    srv = scripted_server(lambda req: http_error(404), strict=False)
    proc = cli("run", "--bench", "smoke", "--model", "m", "--model-url", srv.base_url, "-o", str(tmp_path),
               "--no-progress")
    assert proc.returncode == 4, proc.stderr
    assert "HTTP 404" in proc.stderr and "base URL" in proc.stderr


@pytest.mark.parametrize("endpoint, path", [("/chat/completions", "/v1/chat/completions"),
                                            ("/responses", "/v1/responses")])
def test_a_full_endpoint_url_is_accepted(scripted_server, tmp_path, endpoint, path):
    srv = scripted_server(smoke_answer)
    proc = cli("run", "--bench", "smoke", "--model", "m", "--model-url", srv.base_url + endpoint, "-o",
               str(tmp_path), "--no-progress", "--max-problems", "2")
    assert proc.returncode == 0, proc.stderr
    assert {r.path for r in srv.requests} == {path}  # never the doubled .../chat/completions/chat/completions


def test_max_infra_failures_sets_the_limit(scripted_server, tmp_path):
    def one_fails(req):
        return http_error(500) if "log" in req.first_user_text else smoke_answer(req)

    srv = scripted_server(one_fails, strict=False)
    common = ["run", "--bench", "smoke", "--model", "m", "--model-url", srv.base_url, "--no-progress",
              "-O", "services.model.max_attempts=1"]
    strict = cli(*common, "-o", str(tmp_path / "a"), "--max-infra-failures", "0")
    assert strict.returncode == 4 and "more than --max-infra-failures 0" in strict.stderr, strict.stderr
    lenient = cli(*common, "-o", str(tmp_path / "b"), "--max-infra-failures", "50%")
    assert lenient.returncode == 0, lenient.stderr
    assert "model_error x1:" in lenient.stderr  # the cause is still told


# ---------------------------------------------------------------- the live status


def test_the_live_pass_rate_leaves_infra_failures_out_and_the_bar_is_not_cut():
    buf = io.StringIO()
    progress = Progress(console=Console(file=buf, width=80, force_terminal=True, color_system=None))
    progress.start("swe-mini", 4)
    progress.advance({"task_id": "a", "repeat": 0, "passed": True})
    progress.advance({"task_id": "b", "repeat": 0, "error_kind": "sandbox_error",
                      "error": "docker image 'x' not found [swebench]"})
    progress.advance({"task_id": "c", "repeat": 0, "passed": False})
    progress.advance({"task_id": "d", "repeat": 0, "error_kind": "sandbox_error", "error": "again"})
    assert progress.status() == "pass 50% of 2 scored | infra failures 2: sandbox_error 2"
    progress.stop()
    text = " ".join(buf.getvalue().split())
    assert "pass 50% of 2 scored" in text and "sandbox_error 2" in text  # folded, not cut at 80 columns
    assert "first sandbox_error: b#0: docker image 'x' not found [swebench]" in text  # once, markup intact
    assert text.count("first sandbox_error") == 1


def test_the_word_for_no_error_is_completed(tmp_path):
    proc = cli("run", "--bench", "smoke", "--model", "oracle", "-o", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "completed=6" in proc.stdout and "ok=" not in proc.stdout
    lines = [ln for ln in proc.stderr.splitlines() if "/6 " in ln]
    assert lines and all(" completed " in ln for ln in lines), proc.stderr


# ---------------------------------------------------------------- bad input: one clear line


@pytest.mark.parametrize("args, expected", [
    (["--bench", "smok", "--model", "oracle"], "unknown benchmark 'smok'; did you mean 'smoke'?"),
    (["--bench", "smoke", "--model", "oracle", "--dataset", "x.jsonl"],
     "benchmark 'smoke' does not take the option(s) dataset (--dataset)"),
    (["--bench", "smoke", "--model", "oracle", "--problem-range", "5:2"], "selects no task"),
    (["--bench", "smoke", "--model", "m", "--model-url", "http://127.0.0.1:9/v1", "--api-key-env",
      "REACT_EVAL_TEST_UNSET_KEY"], "the environment variable REACT_EVAL_TEST_UNSET_KEY is not set"),
    (["--bench", "[swebench]", "--model", "oracle"], "unknown benchmark '[swebench]'"),
])
def test_bad_input_is_one_clear_line(tmp_path, args, expected):
    proc = cli("run", *args, "-o", str(tmp_path))
    assert proc.returncode == 2, proc.stderr
    assert expected in proc.stderr
    assert "Traceback" not in proc.stderr and "KeyError" not in proc.stderr and "TypeError" not in proc.stderr
    assert not list(tmp_path.iterdir())  # nothing ran


def test_a_range_past_the_end_is_an_error_not_an_empty_run(tmp_path):
    proc = cli("run", "--bench", "smoke", "--model", "oracle", "--problem-range", "100:200", "-o", str(tmp_path))
    assert proc.returncode == 1
    assert "problem_range '100:200' selects no task of its 6" in proc.stderr


# ---------------------------------------------------------------- one writer per output directory


def test_a_directory_being_written_is_refused_and_a_stale_lock_is_taken_over(tmp_path):
    bench_dir = tmp_path / "smoke"
    bench_dir.mkdir()
    lock = bench_dir / ".react-eval.lock"
    with open(lock, "w") as fh:  # a live writer: this process holds the lock
        fh.write(f"{os.getpid()}\n")
        fh.flush()
        fcntl.flock(fh, fcntl.LOCK_EX)
        proc = cli("run", "--bench", "smoke", "--model", "oracle", "-o", str(tmp_path), "--no-progress")
    assert proc.returncode == 1
    assert f"is being written by another react-eval run (pid {os.getpid()})" in proc.stderr
    assert not (bench_dir / "results.jsonl").exists()
    lock.write_text("999999999\n")  # left by a run that died: nobody holds it
    proc = cli("run", "--bench", "smoke", "--model", "oracle", "-o", str(tmp_path), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert len((bench_dir / "results.jsonl").read_text().splitlines()) == 6


# ---------------------------------------------------------------- the newcomer's first hour


def test_version():
    proc = cli("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"react-eval {__version__}"


def test_help_tells_about_the_oracle():
    proc = cli("run", "--help")
    assert "oracle" in proc.stdout and "--max-infra-failures" in proc.stdout


def test_the_first_run_needs_no_model_then_report_and_view(tmp_path):
    run = cli("run", "--bench", "smoke", "--model", "oracle", "-o", str(tmp_path / "first"), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    report = cli("report", str(tmp_path / "first"), cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    assert (tmp_path / "first" / "smoke" / "report.html").exists()
    view = cli("view", str(tmp_path / "first" / "smoke"), cwd=tmp_path)
    assert view.returncode == 0, view.stderr
    assert Path(view.stdout.split("wrote ")[-1].strip()).exists()


_NO_NETWORK = """
import socket
_connect = socket.socket.connect
def _refuse(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in ("127.0.0.1", "::1", "localhost"):
        raise OSError("network access attempted: %r" % (address,))
    return _connect(self, address)
socket.socket.connect = _refuse
"""


def test_list_never_touches_the_network(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(_NO_NETWORK)
    home = tmp_path / "home"  # no cached datasets either
    home.mkdir()
    proc = cli("list", env={"PYTHONPATH": f"{site}:{REPO}", "HOME": str(home), "XDG_CACHE_HOME": str(home)})
    assert proc.returncode == 0, proc.stderr
    assert "network access attempted" not in proc.stdout + proc.stderr
    rows = {line.split()[1]: line for line in proc.stdout.splitlines() if line.startswith("│ ")}
    assert {"smoke", "swe-mini", "humaneval", "humaneval+", "mbpp+"} <= set(rows)
    assert " 6 " in rows["smoke"] and " 14 " in rows["swe-mini"] and " 164 " in rows["humaneval"]


_NO_EVALPLUS = "import sys\nsys.modules['evalplus'] = None\n"


def test_without_the_evalplus_extra_humaneval_works_and_humaneval_plus_names_the_extra(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(_NO_EVALPLUS)
    env = {"PYTHONPATH": f"{site}:{REPO}"}
    plus = cli("run", "--bench", "humaneval+", "--model", "oracle", "-o", str(tmp_path / "plus"), "--no-progress",
               env=env)
    assert plus.returncode == 1
    assert "pip install 'react-eval[evalplus]'" in plus.stderr and "Traceback" not in plus.stderr
    base = cli("run", "--bench", "humaneval", "--model", "oracle", "--max-problems", "3", "-o",
               str(tmp_path / "base"), "--no-progress", env=env)
    assert base.returncode == 0, base.stderr
    rows = [json.loads(x) for x in (tmp_path / "base" / "humaneval" / "results.jsonl").read_text().splitlines()]
    assert [r["reward"] for r in rows] == [1.0, 1.0, 1.0], [(r["error"], r["verification"]) for r in rows]


@pytest.mark.docker
def test_a_sandbox_image_that_is_not_built_exits_4_naming_it(docker_engine, tmp_path):
    proc = cli("run", "--bench", "smoke", "--model", "oracle", "--sandbox", "docker", "-O",
               "sandboxes.default.image=react-eval-missing-image:never", "-o", str(tmp_path), "--no-progress")
    assert proc.returncode == 4, proc.stderr
    assert "sandbox_error x6:" in proc.stderr and "react-eval-missing-image:never" in proc.stderr
    assert "all 6 rollouts failed for infrastructure reasons" in proc.stderr
