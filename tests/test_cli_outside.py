"""What a user met trying main from outside (plain install, README commands), each through the real CLI."""

from __future__ import annotations

import os

import pytest

from tests.test_cli_honest import cli


def test_validate_with_a_misspelled_benchmark_is_a_bad_command_line(tmp_path):
    proc = cli("validate", "--bench", "humanevl", "-o", str(tmp_path))
    assert proc.returncode == 2, proc.stderr  # as `run` does: README's 2 for an unknown name
    assert "unknown benchmark 'humanevl'; did you mean 'humaneval'?" in proc.stderr
    assert "UnknownBenchmark" not in proc.stderr and "Traceback" not in proc.stderr
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("command, args, expected", [
    ("run", ["--bench", "swe-local", "--model", "oracle"], "swe-local failed: swe-local needs a dataset"),
    ("run", ["--bench", "swe-local", "--model", "oracle", "--dataset", "nope.jsonl"],
     "swe-local failed: swe-local dataset "),
    ("validate", ["--bench", "swe-local", "--dataset", "nope.jsonl"], "validate failed: swe-local dataset "),
    ("run", ["--bench", "swebench", "--model", "oracle"], "swebench failed: swebench needs a dataset"),
    ("run", ["--bench", "gym://127.0.0.1:9", "--model", "oracle"], "failed: gym://127.0.0.1:9 needs a dataset"),
])
def test_a_missing_dataset_is_said_in_words_not_a_class_name(tmp_path, command, args, expected):
    proc = cli(command, *args, "-o", str(tmp_path / "out"), "--no-progress", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert expected in proc.stderr
    assert "ValueError" not in proc.stderr and "Traceback" not in proc.stderr


def test_a_bad_swe_local_file_is_listed_without_a_class_name(tmp_path):
    (tmp_path / "tasks.jsonl").write_text('{"instance_id": "x"}\nnot json\n')
    proc = cli("run", "--bench", "swe-local", "--dataset", str(tmp_path / "tasks.jsonl"), "--model", "oracle",
               "--sandbox", "local", "-o", str(tmp_path / "out"), "--no-progress")
    assert proc.returncode == 1, proc.stderr
    assert "swe-local failed: " + str(tmp_path / "tasks.jsonl") + ": " in proc.stderr
    assert ":2: not a JSON object" in proc.stderr
    assert "DatasetError" not in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("bench", ["swe-mini", "swe-local"])
def test_the_simple_solver_on_a_patch_graded_benchmark_is_refused_before_any_rollout(tmp_path, bench):
    """It used to run every rollout and end each as a sandbox_error (exit 4: 'SWE tasks need a sandbox')."""
    extra = ["--dataset", "nope.jsonl"] if bench == "swe-local" else []
    proc = cli("run", "--bench", bench, *extra, "--solver", "simple", "--model", "m",
               "--model-url", "http://127.0.0.1:9/v1", "-o", str(tmp_path / "out"), "--no-progress", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert f"{bench}: solver.type: simple makes one model call with no sandbox" in proc.stderr
    assert "sandbox_error" not in proc.stdout + proc.stderr and "Traceback" not in proc.stderr
    assert not list((tmp_path / "out").rglob("results.jsonl"))


def test_a_whole_config_check_is_one_line_without_pydantic_wording(tmp_path):
    proc = cli("run", "--bench", "humaneval", "--model", "m", "--model-url", "http://127.0.0.1:9/v1",
               "--protocol", "completions", "-o", str(tmp_path))
    assert proc.returncode == 2, proc.stderr
    assert ("command line: benchmarks.0.solver.service: 'model' uses protocol: completions, which carries no "
            "tools; use solver.type: simple") in proc.stderr
    assert "Value error" not in proc.stderr and "(top level)" not in proc.stderr


@pytest.fixture(scope="module")
def variants_run(tmp_path_factory):
    """docs/examples/variants-smoke.yaml run once: <out>/smoke/{terse,careful}/."""
    from tests.test_cli_honest import REPO

    out = tmp_path_factory.mktemp("variants") / "out"
    proc = cli("run", "--config", str(REPO / "docs" / "examples" / "variants-smoke.yaml"), "-o", str(out),
               "--no-progress")
    assert proc.returncode == 0, proc.stderr
    return out


def test_report_on_a_run_directory_with_variants_writes_each_variant_and_the_table(variants_run):
    """README: `react-eval report DIR` writes each variant's report and the table; on the run's own
    output directory (<out>/smoke/<variant>/) it used to find no results.jsonl and exit 2."""
    out = variants_run
    proc = cli("report", str(out))
    assert proc.returncode == 0, proc.stderr
    for variant in ("terse", "careful"):
        assert (out / "smoke" / variant / "report.html").is_file()
        assert f"wrote {out / 'smoke' / variant / 'report.md'}" in proc.stdout
    assert "variants of smoke, ranked (baseline terse)" in proc.stdout


def test_a_self_judge_in_a_file_is_one_line_naming_the_field_not_line_1(tmp_path):
    config = tmp_path / "eval.yaml"
    config.write_text("services:\n  model: {type: api, url: http://127.0.0.1:9/v1, model: m}\n"
                      "benchmarks:\n  - name: humaneval\n    solver: {type: simple, service: model}\n"
                      "    scoring:\n      metrics:\n        - {type: judge, service: model}\n")
    proc = cli("run", "--config", str(config), "-o", str(tmp_path / "out"))
    assert proc.returncode == 2, proc.stderr
    assert (f"{config}: benchmarks.0.scoring.metrics.0.service: the judge 'model' is the solver's own model"
            in proc.stderr)
    assert "Value error" not in proc.stderr and f"{config}:1:" not in proc.stderr


def test_validate_progress_names_the_policy_each_pass_rate_belongs_to(tmp_path):
    """Three passes of progress lines ended with 'pass 0% of 6 scored' and no word of which policy it was."""
    proc = cli("validate", "--bench", "smoke", "--sandbox", "local", "-o", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("[smoke] policy ")]
    assert [lines[i] for i in starts] == ["[smoke] policy 'oracle' (must score 1.0 on every task)",
                                          "[smoke] policy 'empty' (must score 0 on every task)",
                                          "[smoke] policy 'tampering' (must score 0 on every task)"]
    for start, end in zip(starts, starts[1:] + [len(lines)]):  # each label heads its own pass
        assert "[smoke] 6 rollouts" in lines[start + 1:end]
    # the notes said once for the validation, not once per policy
    assert sum("react-eval: smoke: sandbox tools on" in line for line in lines) == 1


@pytest.mark.parametrize("where", ["run", "group"])
def test_view_on_a_run_with_variants_writes_one_viewer_per_variant(variants_run, where):
    """`view <out>` said "no results.jsonl" on a run with variants, where `report` descends into them."""
    import json
    import re

    target = variants_run if where == "run" else variants_run / "smoke"
    proc = cli("view", str(target))
    assert proc.returncode == 0, proc.stderr
    for variant in ("terse", "careful"):
        index = variants_run / "smoke" / variant / "viewer" / "index.html"
        assert f"wrote {index}" in proc.stdout
        html = index.read_text()
        data = json.loads(re.search(r'"runs":\s*(\[.*?\])', html).group(1))
        assert [run["path"] for run in data] == [str(variants_run / "smoke" / variant)]
        assert data[0]["rollouts"] > 0
    proc = cli("view", str(target), "--out", str(variants_run / "one-viewer"))
    assert proc.returncode == 2 and "pass one variant's directory with --out" in proc.stderr
    proc = cli("view", str(variants_run / "smoke" / "terse"), str(variants_run / "smoke" / "careful"),
               "--out", str(variants_run / "side-by-side"))
    assert proc.returncode == 0, proc.stderr  # two variants side by side: the viewer's comparison
    assert (variants_run / "side-by-side" / "index.html").is_file()


def test_view_serve_on_a_run_with_variants_serves_each_viewer(variants_run):
    import subprocess
    import urllib.request

    from tests.test_cli_honest import CLI, REPO

    proc = subprocess.Popen([*CLI, "view", str(variants_run), "--serve", "--port", "0"], cwd=REPO, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        urls = []
        while len(urls) < 2:
            line = proc.stdout.readline()
            assert line, proc.stderr.read()
            if line.startswith("serving "):
                urls.append(line.split()[1])
        assert [u.rsplit("/", 3)[1:] for u in urls] == [["careful", "viewer", "index.html"],
                                                         ["terse", "viewer", "index.html"]]
        for url in urls:
            with urllib.request.urlopen(url, timeout=30) as reply:
                assert b"react-eval viewer" in reply.read()
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def without_ray(*args: str, cwd) -> "subprocess.CompletedProcess[str]":
    """The real CLI in an install without the ray extra (ray hidden from the import system)."""
    import subprocess
    import sys

    from tests.test_cli_honest import REPO

    code = ("import sys\nsys.modules['ray'] = None  # as in a plain install: no ray extra\n"
            "from react_eval.cli import main\nsys.argv = ['react-eval', *sys.argv[1:]]\nmain()\n")
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300, cwd=cwd,
                          env={**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"})


@pytest.mark.parametrize("command", ["run", "validate"])
def test_ray_address_without_the_ray_extra_is_a_config_error_before_anything_runs(tmp_path, command):
    """It used to print the start notes, then fail in the executor with exit 1."""
    model = ["--model", "oracle"] if command == "run" else []
    proc = without_ray(command, "--bench", "smoke", *model, "--ray-address", "local", "-o", str(tmp_path / "out"),
                       "--no-progress", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert ("error: --ray-address local: executor type ray needs Ray, which is not installed: "
            "pip install 'react-eval[ray]'") in " ".join(proc.stderr.split())
    assert "note:" not in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()


def test_executor_type_ray_in_a_config_without_the_extra_is_a_config_error(tmp_path):
    (tmp_path / "eval.yaml").write_text("services:\n  model: {type: api, model: oracle}\nexecutor: {type: ray}\n"
                                        "benchmarks:\n  - {name: smoke, solver: {service: model}}\n")
    proc = without_ray("run", "--config", "eval.yaml", "-o", str(tmp_path / "out"), "--no-progress", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "pip install 'react-eval[ray]'" in proc.stderr and "note:" not in proc.stderr
    assert not (tmp_path / "out").exists()
