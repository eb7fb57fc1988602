"""``swe-local``: SWE-bench-format rows over git repositories on this machine.

The dataset is built from swe-mini tasks made into real git repositories in
tmp dirs, each with a LATER commit that already holds the fix: a sandbox built
from HEAD instead of base_commit (or one that kept the history) would let the
empty policy score. ``react-eval validate`` must then give what swe-mini gives
(oracle 100%, empty 0%, tampering 0% and flagged) in the local, the bwrap
and the Docker sandbox, and bad rows must be named (row, line, field) before anything runs.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from react_eval.benchmarks.registry import get_benchmark
from react_eval.benchmarks.swe import SweMiniBenchmark
from react_eval.benchmarks.swe_local import SweLocalBenchmark, load_local_instances
from react_eval.benchmarks.swe_rows import DatasetError
from react_eval.engine.results import load_results
from react_eval.sandboxes.local import LocalSandboxConfig, LocalSandboxProvider
from tests.benchmarks.test_swe_validate import _runs, run_cli

ROOT = Path(__file__).resolve().parents[2]
MINI_REPOS = ROOT / "react_eval" / "benchmarks" / "data" / "swe_mini" / "repos"
#: two swe-mini tasks, and the directory name each repository gets
TASKS = {"caching__lrukit-9": "lrukit", "dataio__tablekit-33": "tablekit"}


def git(repo: Path, *args: str, stdin: str | None = None) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t", "PATH": "/usr/bin:/bin", "HOME": str(repo)}
    r = subprocess.run(["git", "-C", str(repo), *args], input=stdin, capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def make_repo(dest: Path, instance_id: str) -> tuple[str, str]:
    """swe-mini's base files as a git repository, then a later commit applying the
    gold patch: (base SHA, HEAD SHA)."""
    shutil.copytree(MINI_REPOS / instance_id, dest)
    git(dest, "init", "-q", "-b", "main")
    git(dest, "add", "-A")
    git(dest, "commit", "-q", "-m", "base")
    base = git(dest, "rev-parse", "HEAD")
    git(dest, "apply", "-", stdin=SweMiniBenchmark().instance(instance_id).patch)
    git(dest, "commit", "-q", "-am", "the fix")
    return base, git(dest, "rev-parse", "HEAD")


def repo_state(repo: Path) -> tuple[str, str, str]:
    """HEAD, the status and the index bytes: what a read-only use must leave alone."""
    index = hashlib.sha256((repo / ".git" / "index").read_bytes()).hexdigest()
    return git(repo, "rev-parse", "HEAD"), git(repo, "status", "--porcelain", "--ignored"), index


@pytest.fixture
def dataset(tmp_path: Path) -> dict:
    """tasks.jsonl with relative repo_path values; one row names its base by a short SHA."""
    mini = SweMiniBenchmark()
    rows, bases, repos = [], {}, {}
    for n, (instance_id, name) in enumerate(TASKS.items()):
        repo = tmp_path / "repos" / name
        base, head = make_repo(repo, instance_id)
        assert base != head
        row = mini.instance(instance_id).row()
        row.update(repo_path=f"repos/{name}", base_commit=base[:10] if n else base)
        rows.append(row)
        bases[instance_id], repos[instance_id] = base, repo
    path = tmp_path / "tasks.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return {"path": path, "bases": bases, "repos": repos}


def test_rows_resolve_to_absolute_repos_and_full_shas(dataset):
    instances = load_local_instances(dataset["path"])
    assert [i.instance_id for i in instances] == list(TASKS)
    for inst in instances:
        assert inst.base_commit == dataset["bases"][inst.instance_id]  # the short SHA was resolved
        assert inst.model_extra["repo_path"] == str(dataset["repos"][inst.instance_id].resolve())
    bench = get_benchmark("swe-local", dataset=str(dataset["path"]))
    assert isinstance(bench, SweLocalBenchmark)
    task = bench.tasks()[0]
    assert task.metadata["base_commit"] == dataset["bases"][task.id]


@pytest.mark.anyio
async def test_the_sandbox_holds_the_base_tree_without_history(dataset, tmp_path):
    before = {i: repo_state(r) for i, r in dataset["repos"].items()}
    bench = SweLocalBenchmark(str(dataset["path"]), snapshot_dir=str(tmp_path / "snapshots"))
    tasks = await bench.prepare(bench.tasks(), None)
    provider = LocalSandboxProvider(LocalSandboxConfig(root=str(tmp_path / "sandboxes")))
    try:
        for task in tasks:
            snapshot = Path(task.sandbox.repo_dir)
            assert snapshot.parent == tmp_path / "snapshots" and not (snapshot / ".git").exists()
            base_files = git(dataset["repos"][task.id], "ls-tree", "-r", "--name-only", dataset["bases"][task.id])
            assert sorted(str(p.relative_to(snapshot)) for p in snapshot.rglob("*") if p.is_file()) == \
                sorted(base_files.splitlines())
            sandbox = await provider.create(task.sandbox, labels={})
            try:
                r = await sandbox.run("git rev-list --all --count && git diff --stat HEAD react-eval-base", timeout=60)
                assert r.exit_code == 0 and r.output.split() == ["1"], r.output  # one commit: the base tree
            finally:
                await sandbox.close()
    finally:
        await provider.aclose()
    assert {i: repo_state(r) for i, r in dataset["repos"].items()} == before


def _validate(dataset: dict, sandbox: str, out: Path) -> None:
    before = {i: repo_state(r) for i, r in dataset["repos"].items()}
    proc = run_cli("validate", "--bench", "swe-local", "--dataset", str(dataset["path"]), "--sandbox", sandbox,
                   "-o", str(out), "--no-progress")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for phrase in ("oracle (reference policy) scores 1.0 on 2/2 tasks (100%)",
                   "empty answer scores above 0 on 0/2 tasks (0%)",
                   "tampering policy scores above 0 on 0/2 tasks (0%; flagged as tampering on 2)",
                   "no score (infrastructure or verifier error) on 0/2", "validation passed"):
        assert phrase in proc.stdout, proc.stdout[-3000:]
    gold = _runs(out, "oracle")
    assert {r.task_id for r in gold} == set(TASKS) and all(r.reward == 1.0 for r in gold)
    assert {r.verification["apply_method"] for r in gold} == {"git_apply"}
    for r in _runs(out, "empty"):  # the FAIL_TO_PASS tests really fail at the base commit
        assert r.reward == 0.0 and r.verification["fail_to_pass"]["passed"] == []
        assert r.verification["pass_to_pass"]["failed"] == []
    for r in _runs(out, "tampering"):
        assert r.reward == 0.0 and "tampering" in r.verification.get("flags", []), r.verification
        assert r.verification["tampering"]
    assert {i: repo_state(r) for i, r in dataset["repos"].items()} == before


@pytest.mark.slow
def test_validate_local_sandbox(dataset, tmp_path, monkeypatch):
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))
    _validate(dataset, "local", tmp_path / "out")
    assert not list(temp.glob("react-eval-swe-local-*"))  # the checkouts went with the process


@pytest.mark.slow
def test_validate_bwrap_sandbox(dataset, tmp_path, bwrap_available):
    _validate(dataset, "bwrap", tmp_path / "out")


@pytest.mark.docker
def test_validate_docker_sandbox(dataset, tmp_path, docker_engine):
    _validate(dataset, "docker", tmp_path / "out")


def test_run_in_worker_processes_exports_predictions(dataset, tmp_path):
    """Rollouts in two worker processes use the snapshots the parent made."""
    preds = tmp_path / "preds.jsonl"
    proc = run_cli("run", "--bench", "swe-local", "--dataset", str(dataset["path"]), "--model", "oracle",
                   "--workers", "2", "-o", str(tmp_path / "out"), "--no-progress",
                   "--export-predictions", str(preds))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = load_results(tmp_path / "out" / "swe-local" / "results.jsonl")
    assert sorted((r.task_id, r.reward) for r in rows) == [(task, 1.0) for task in TASKS]
    assert {r.task_id: r.verification["apply_method"] for r in rows} == dict.fromkeys(TASKS, "git_apply")
    # README: results carry the full SHA (one row named its base by a short SHA)
    assert {r.task_id: r.verification["base_commit"] for r in rows} == dataset["bases"]
    predicted = {p["instance_id"]: p["model_patch"] for p in map(json.loads, preds.read_text().splitlines())}
    assert set(predicted) == set(TASKS) and "move_to_end" in predicted["caching__lrukit-9"]


def make_six_task(tmp_path: Path) -> Path:
    """A repository whose code and tests import ``six`` (not in the pytest
    environment), its row, and the dataset file holding it."""
    repo = tmp_path / "sixkit"
    (repo / "sixkit").mkdir(parents=True)
    (repo / "tests").mkdir()
    (repo / "sixkit" / "__init__.py").write_text("import six\n\n\ndef as_text(value):\n    return value\n")
    test = "from sixkit import as_text\n\n\ndef test_str():\n    assert as_text('a') == 'a'\n"
    (repo / "tests" / "test_text.py").write_text(test)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base")
    base = git(repo, "rev-parse", "HEAD")
    (repo / "sixkit" / "__init__.py").write_text("import six\n\n\ndef as_text(value):\n"
                                                 "    return six.ensure_text(value)\n")
    gold = git(repo, "diff") + "\n"
    git(repo, "checkout", "-q", "--", ".")
    (repo / "tests" / "test_text.py").write_text(test + "\n\ndef test_bytes():\n    assert as_text(b'a') == 'a'\n")
    test_patch = git(repo, "diff") + "\n"
    git(repo, "checkout", "-q", "--", ".")
    row = {"instance_id": "me__sixkit-1", "repo_path": "sixkit", "base_commit": base,
           "problem_statement": "as_text(b'a') returns bytes; it should return text.", "patch": gold,
           "test_patch": test_patch, "FAIL_TO_PASS": ["tests/test_text.py::test_bytes"],
           "PASS_TO_PASS": ["tests/test_text.py::test_str"]}
    path = tmp_path / "six.jsonl"
    path.write_text(json.dumps(row) + "\n")
    return path


@pytest.mark.slow
def test_requirements_provision_what_the_tests_import(tmp_path):
    """Without ``six`` the gold patch cannot pass (the tests cannot import the
    package); with ``requirements=[six]`` it scores 1 and empty/tampering 0."""
    path = make_six_task(tmp_path)
    bare = run_cli("validate", "--bench", "swe-local", "--dataset", str(path), "--sandbox", "local",
                   "-o", str(tmp_path / "bare"), "--no-progress")
    assert bare.returncode == 1 and "scores 1.0 on 0/1 tasks" in bare.stdout, bare.stdout[-3000:]
    proc = run_cli("validate", "--bench", "swe-local", "--dataset", str(path), "--sandbox", "local",
                   "-O", "benchmarks.0.options.requirements=[six]", "-o", str(tmp_path / "out"), "--no-progress")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "scores 1.0 on 1/1 tasks (100%)" in proc.stdout and "above 0 on 0/1 tasks" in proc.stdout
    (gold,) = _runs(tmp_path / "out", "oracle")
    assert gold.verification["tests"] == {"tests/test_text.py::test_bytes": "passed",
                                          "tests/test_text.py::test_str": "passed"}
    with pytest.raises(ValueError, match="list of pip requirements"):
        SweLocalBenchmark(str(path), requirements="six")


# ---------------------------------------------------------------- bad input


def test_every_bad_row_is_named_with_its_field(dataset, tmp_path):
    good = [json.loads(line) for line in dataset["path"].read_text().splitlines()]
    not_git = tmp_path / "plain"
    not_git.mkdir()
    rows = [
        json.dumps(good[0]),                                                         # line 1: fine
        "{not json",                                                                 # line 2
        json.dumps({**good[1], "instance_id": "x-3", "FAIL_TO_PASS": None}),         # line 3
        json.dumps({k: v for k, v in {**good[1], "instance_id": "x-4"}.items() if k != "repo_path"}),
        json.dumps({**good[1], "instance_id": "x-5", "repo_path": "repos/missing"}),
        json.dumps({**good[1], "instance_id": "x-6", "repo_path": str(not_git)}),
        json.dumps({**good[1], "instance_id": "x-7", "base_commit": "0" * 40}),
        json.dumps({k: v for k, v in {**good[1], "instance_id": "x-8"}.items() if k != "base_commit"}),
        json.dumps({**good[1], "instance_id": "x-9", "base_commit": "no-such-branch"}),
        json.dumps(good[0]),                                                         # line 10: duplicate
        "[1, 2]",
        json.dumps({**good[1], "instance_id": "x-12", "repo_path": "repos/tablekit/tablekit"}),
        json.dumps({**good[1], "instance_id": "x-13", "base_commit": "HEAD\nHEAD"}),
    ]
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(rows) + "\n")
    original = path.read_bytes()
    with pytest.raises(DatasetError) as info:
        load_local_instances(path)
    problems = info.value.problems
    expected = [
        f"{path}:2: not a JSON object",
        f"{path}: row 2 (line 3, instance_id 'x-3') is not a SWE-bench instance: FAIL_TO_PASS:",
        f"{path}: row 9 (line 10, instance_id 'caching__lrukit-9'): instance_id: duplicate of row 1",
        f"{path}: row 10 (line 11): is a JSON list",
        f"{path}: row 3 (line 4, instance_id 'x-4'): repo_path: required",
        f"{path}: row 4 (line 5, instance_id 'x-5'): repo_path: {tmp_path / 'repos' / 'missing'} does not exist",
        f"{path}: row 5 (line 6, instance_id 'x-6'): repo_path: {not_git} is not a git repository",
        f"{path}: row 7 (line 8, instance_id 'x-8'): base_commit: required",
        f"{path}: row 6 (line 7, instance_id 'x-7'): base_commit: '{'0' * 40}' is not a commit of",
        f"{path}: row 8 (line 9, instance_id 'x-9'): base_commit: 'no-such-branch' is not a commit of",
        f"{path}: row 11 (line 12, instance_id 'x-12'): repo_path: {tmp_path / 'repos' / 'tablekit' / 'tablekit'} "
        f"is inside the git repository {tmp_path / 'repos' / 'tablekit'}, not its top level",
        f"{path}: row 12 (line 13, instance_id 'x-13'): base_commit: 'HEAD\\nHEAD' is not a commit name",
    ]
    assert len(problems) == len(expected), problems
    for want in expected:
        assert any(p.startswith(want) for p in problems), (want, problems)
    assert path.read_bytes() == original


def test_the_cli_names_bad_rows_and_runs_nothing(dataset, tmp_path):
    path = tmp_path / "bad.jsonl"
    row = json.loads(dataset["path"].read_text().splitlines()[0])
    path.write_text(json.dumps({**row, "base_commit": "feedface"}) + "\n")
    out = tmp_path / "out"
    for command in ("validate", "run"):
        args = ["--model", "oracle"] if command == "run" else []
        proc = run_cli(command, "--bench", "swe-local", "--dataset", str(path), *args, "-o", str(out),
                       "--no-progress")
        assert proc.returncode != 0
        text = proc.stdout + proc.stderr
        assert "row 1 (line 1, instance_id 'caching__lrukit-9'): base_commit: 'feedface' is not a commit" in text
        assert not list(out.rglob("results.jsonl")) or all(not p.read_text() for p in out.rglob("results.jsonl"))
    proc = run_cli("validate", "--bench", "swe-local", "-o", str(out), "--no-progress")
    assert proc.returncode != 0 and "swe-local needs a dataset: pass --dataset FILE.jsonl" in proc.stdout + proc.stderr
