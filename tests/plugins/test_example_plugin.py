"""The example plugin package (examples/react_eval_example_plugin), used from
outside react-eval as its users would: ``pip install`` into a venv, then the
``react-eval`` CLI finds each part by its entry point; and, not installed at
all, by class paths in the YAML.

Each part is one file of the example plus a YAML line; the model is the
built-in oracle (it replays the benchmark's reference solution through the
real tools, sandbox, solver and grader), so no endpoint is needed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "react_eval_example_plugin"
PKG = "react_eval_example_plugin"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def venv_python(tmp_path_factory) -> Path:
    """A venv over this interpreter's packages with the example pip-installed (a real wheel, entry points and all)."""
    work = tmp_path_factory.mktemp("example-plugin")
    src = work / "src"  # a copy: the build must not litter the checkout
    shutil.copytree(EXAMPLE, src, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True, timeout=300)
    proc = subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check",
                           "--no-deps", str(src)], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return venv / "bin" / "python"


def react_eval(python: Path | str, *args: str, cwd: Path, pythonpath: str = str(REPO)) -> subprocess.CompletedProcess:
    """The react-eval CLI of ``python`` on this checkout."""
    env = {**os.environ, "PYTHONPATH": pythonpath, "COLUMNS": "250"}
    env.pop("VIRTUAL_ENV", None)
    proc = subprocess.run([str(python), "-m", "react_eval.cli", *args], capture_output=True, text=True,
                          timeout=600, cwd=cwd, env=env)
    return proc


def rows(bench_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (bench_dir / "results.jsonl").read_text().splitlines() if line]


def trajectories(bench_dir: Path) -> str:
    return (bench_dir / "trajectories.jsonl").read_text()


ORACLE = 'services:\n  model: {type: api, base_url: "oracle://reference", model: oracle}\n'


def test_every_entry_point_is_listed_with_its_distribution(venv_python, tmp_path):
    proc = react_eval(venv_python, "plugins", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    origin = "entry point (react-eval-example-plugin)"
    for kind, name in [("benchmark", "arithmetic"), ("sandbox", "seeded"), ("tool_source", "calculator"),
                       ("solver", "reminder"), ("grader", "tolerance")]:
        line = next((ln for ln in proc.stdout.splitlines() if f" {name} " in ln), "")
        assert kind in line and origin in line, proc.stdout


def test_each_plugin_runs_by_its_entry_point_name(venv_python, tmp_path):
    config = tmp_path / "plugins.yaml"
    config.write_text(ORACLE + textwrap.dedent("""\
        sandboxes:
          seeded: {type: seeded, files: {SEEDED_BY_PLUGIN.txt: "hello"}}   # the sandbox
        benchmarks:
          - name: arithmetic                                  # the benchmark
            options: {count: 2, seed: 1}
            solver: {service: model, sandbox_tools: false}
            tool_sources: [{type: calculator}]                # the tool source
          - name: arithmetic
            options: {count: 2, seed: 2, check_with: bash}
            sandbox: seeded
            solver: {service: model}
          - name: arithmetic
            options: {count: 1, seed: 3}
            solver: {type: reminder, service: model, reminder: REMINDER FROM THE PLUGIN}   # the solver
            tool_sources: [{type: calculator}]
          - name: arithmetic
            options: {count: 2, seed: 4}
            solver: {service: model}
            grader: {type: tolerance, tolerance: 0.001}       # the grader
    """))
    out = tmp_path / "out"
    proc = react_eval(venv_python, "run", "-c", str(config), "-o", str(out), "--no-progress", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    tools, sandbox, solver, grader = (out / d for d in ("arithmetic", "arithmetic.2", "arithmetic.3", "arithmetic.4"))
    for bench_dir in (tools, sandbox, solver, grader):
        results = rows(bench_dir)
        assert results and all(r["reward"] == 1.0 and r["error_kind"] is None for r in results), results
    # the calculator answered the oracle's calls (without it they are unknown-tool errors)
    assert all(r["tool_stats"] == {"calculate": [1, 0]} for r in rows(tools))
    # bash ran in the plugin's sandbox: its seeded file is in the listing
    assert all(r["tool_stats"] == {"bash": [1, 0]} for r in rows(sandbox))
    assert trajectories(sandbox).count("SEEDED_BY_PLUGIN.txt") >= 2
    # the plugin's solver sent its reminder; the others did not
    assert "REMINDER FROM THE PLUGIN" in trajectories(solver)
    assert "REMINDER FROM THE PLUGIN" not in trajectories(tools)
    # the plugin's grader, not the benchmark's verifier, scored the last entry
    assert all(r["verification"]["grader"] == "tolerance" for r in rows(grader))
    assert all("grader" not in r["verification"] for r in rows(tools))


def test_a_plugin_sandbox_is_a_sandbox_flag_choice(venv_python, tmp_path):
    proc = react_eval(venv_python, "run", "--bench", "arithmetic", "--model", "oracle", "--sandbox", "seeded",
                      "-O", "benchmarks.0.options.check_with=bash", "-o", str(tmp_path / "out"), "--no-progress",
                      cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = rows(tmp_path / "out" / "arithmetic")
    assert len(results) == 5 and all(r["reward"] == 1.0 for r in results)
    proc = react_eval(venv_python, "run", "--bench", "arithmetic", "--model", "oracle", "--sandbox", "seedd",
                      "-o", str(tmp_path / "out2"), cwd=tmp_path)
    assert proc.returncode == 2
    assert "--sandbox must be one of bwrap, docker, local, seeded, got 'seedd'" in proc.stderr


def test_class_paths_need_no_installation(tmp_path):
    """This interpreter has no example installed: only its directory is importable
    (also in the worker processes, which get the plugins the parent resolved)."""
    config = tmp_path / "classes.yaml"
    config.write_text(ORACLE + textwrap.dedent(f"""\
        sandboxes:
          seeded: {{class: {PKG}.sandbox.SeededSandboxProvider, files: {{SEEDED_BY_PLUGIN.txt: hi}}}}
        benchmarks:
          - name: {PKG}.benchmark.ArithmeticBenchmark
            options: {{count: 2, seed: 5, check_with: bash}}
            workers: 2                      # worker processes resolve the class paths too
            sandbox: seeded
            solver: {{class: {PKG}.solver.ReminderLoop, service: model, reminder: CLASS PATH REMINDER}}
            tool_sources: [{{class: {PKG}.tools.CalculatorToolSource}}]
            grader: {{class: {PKG}.grader.ToleranceGrader}}
    """))
    out = tmp_path / "out"
    pythonpath = f"{REPO}{os.pathsep}{EXAMPLE}"
    listing = react_eval(sys.executable, "plugins", cwd=tmp_path, pythonpath=pythonpath)
    assert listing.returncode == 0 and " seeded " not in listing.stdout  # no entry points here
    proc = react_eval(sys.executable, "run", "-c", str(config), "-o", str(out), "--no-progress", cwd=tmp_path,
                      pythonpath=pythonpath)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (bench_dir,) = [p for p in out.iterdir() if p.is_dir()]
    results = rows(bench_dir)
    assert len(results) == 2 and all(r["reward"] == 1.0 for r in results)
    assert all(r["verification"]["grader"] == "tolerance" for r in results)
    text = trajectories(bench_dir)
    assert "CLASS PATH REMINDER" in text and "SEEDED_BY_PLUGIN.txt" in text and '"calculate"' in text
    saved = json.loads((bench_dir / "eval.json").read_text())["config"]["benchmarks"][0]
    assert saved["sandbox"] == "seeded" and saved["grader"]["class"] == f"{PKG}.grader.ToleranceGrader"
