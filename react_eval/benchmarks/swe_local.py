"""``swe-local``: your own SWE-bench-format tasks over git repositories on this machine.

``react-eval run --bench swe-local --dataset tasks.jsonl`` (and ``validate``)
reads rows with SWE-bench's instance fields (instance_id, problem_statement,
patch, test_patch, FAIL_TO_PASS, PASS_TO_PASS, ...) plus one more:

* ``repo_path``: the git repository the task is cut from: absolute, ``~``, or
  relative to the directory of the dataset file;
* ``base_commit`` (required here): any commit-ish of that repository (a full or
  short SHA, a tag, a branch); it is resolved to the full SHA when the file is
  read, and results and exported predictions carry that SHA.

Each selected task's sandbox gets the tree of ``base_commit`` as files only,
without the repository's history (so an agent cannot read the fix from a later
commit), made a fresh repository and tagged ``react-eval-base`` exactly as the
bundled swe-mini's are. From there everything is swe-mini's: the agent's
change is captured as a git patch against that tag, graded in a fresh sandbox
with the same tampering resets, test-patch handling, pinned pytest run, junit
outcomes and infrastructure-error rules (see :mod:`react_eval.benchmarks.swe`).
The tests run with a Python that has pytest, as swe-mini's do: local and bwrap
sandboxes get one react-eval provisions, Docker the image's ``python3``. When
the tests need more (the project's dependencies), ``requirements`` lists them
(pip syntax): they are provisioned with pytest for the agent and the grader
(on Docker, the grader's image is derived from the sandbox image with them). ``env_setup``
runs before the tests (e.g. exporting variables they need).

The repositories are only read. The tree is checked out through a temporary
index outside them (``git read-tree`` + ``git checkout-index``) into a
snapshot directory, once per repository and commit, before the first rollout:
by default a temporary one removed when the process exits; ``snapshot_dir``
keeps them across runs.
Submodules are not checked out.

A bad file stops the run before any rollout with one error naming every bad
line or row and its field: not JSON, a missing or ill-typed SWE-bench field, a
``repo_path`` that is missing, not a directory or not a git repository, a
``base_commit`` that is missing or not a commit of that repository.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import anyio

from react_eval.benchmarks.base import DatasetMissing
from react_eval.benchmarks.patches import BASE_REF, setup_command
from react_eval.benchmarks.swe import PYTEST_ENV, SweBenchmark
from react_eval.benchmarks.swe_rows import DatasetError, SweInstance, parse_instances
from react_eval.grading.envs import EnvSpec
from react_eval.types import SandboxSpec, Task

#: the row field naming the repository on this machine
REPO_FIELD = "repo_path"
GIT_TIMEOUT = 300.0


def _git_env(**extra: str) -> dict[str, str]:
    """The environment for git: no GIT_* variable of ours (GIT_DIR, GIT_INDEX_FILE, ...) leaks in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    return {**env, "GIT_TERMINAL_PROMPT": "0", **extra}


def _git(repo: Path, *args: str, stdin: str | None = None, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(repo), "-c", "core.autocrlf=false", *args], input=stdin,
                          capture_output=True, text=True, timeout=GIT_TIMEOUT, env=_git_env(**env))


def resolve_commits(repo: Path, revs: list[str]) -> dict[str, str | None]:
    """Each of ``revs`` -> the full SHA of the commit it names in ``repo``, or None (one git call)."""
    r = _git(repo, "cat-file", "--batch-check=%(objectname) %(objecttype)",
             stdin="".join(f"{rev}^{{commit}}\n" for rev in revs))
    if r.returncode != 0:
        raise RuntimeError(f"git cat-file in {repo} failed: {r.stderr.strip()}")
    out: dict[str, str | None] = {}
    for rev, line in zip(revs, r.stdout.splitlines(), strict=True):
        sha, _, kind = line.partition(" ")
        out[rev] = sha if kind == "commit" else None
    return out


def git_repository_problem(path: Path) -> str | None:
    """Why ``path`` is not a git repository we can read, or None."""
    if not path.exists():
        return f"{path} does not exist"
    if not path.is_dir():
        return f"{path} is not a directory"
    r = _git(path, "rev-parse", "--is-bare-repository")
    if r.returncode != 0:
        return f"{path} is not a git repository ({r.stderr.strip() or 'git rev-parse failed'})"
    if r.stdout.strip() == "true":
        return None
    top = _git(path, "rev-parse", "--show-toplevel").stdout.strip()
    if top and Path(top).resolve() != path.resolve():
        return f"{path} is inside the git repository {top}, not its top level: name {top}"
    return None


def export_tree(repo: Path, sha: str, dest: Path) -> None:
    """The files of commit ``sha`` of ``repo`` into ``dest`` (made here), leaving the
    repository untouched: its index, work tree and refs are never written. A
    ``dest`` another caller finished first is kept as it is."""
    part = Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=dest.parent))
    index = part.with_name(part.name + ".index")  # git creates it; outside the tree it describes
    try:
        for step, args in (("read-tree", ("read-tree", sha)),
                           ("checkout-index", ("--work-tree", str(part), "checkout-index", "--all", "--force"))):
            r = _git(repo, *args, GIT_INDEX_FILE=str(index))
            if r.returncode != 0:
                raise RuntimeError(f"could not check out {sha} of {repo}: git {step}: {r.stderr.strip()}")
        try:
            part.rename(dest)
        except OSError:
            if not dest.is_dir():
                raise
    finally:
        shutil.rmtree(part, ignore_errors=True)
        index.unlink(missing_ok=True)


def requirements_env(requirements: list[str]) -> EnvSpec:
    """The grading environment of tests that need more than pytest: pytest plus
    ``requirements`` (pip syntax), provisioned like swe-mini's for the agent and
    the grader alike (Docker: an image derived from the sandbox image)."""
    wanted = tuple(dict.fromkeys(["pytest", *(r.strip() for r in requirements)]))
    return EnvSpec(name="swe-local", requirements=wanted, imports=("pytest",))


_PROCESS_ROOT: list[str] = []


def process_root() -> str:
    """This process's snapshot directory (removed when it exits), shared by its
    benchmarks so ``validate``'s three policies check each tree out once."""
    if not _PROCESS_ROOT:
        _PROCESS_ROOT.append(tempfile.mkdtemp(prefix="react-eval-swe-local-"))
        atexit.register(shutil.rmtree, _PROCESS_ROOT[0], True)
    return _PROCESS_ROOT[0]


class SweLocalBenchmark(SweBenchmark):
    name = "swe-local"
    description = ("your SWE-bench rows (--dataset FILE.jsonl) over local git repositories (repo_path + "
                   "base_commit); graded like swe-mini")
    grading_env = PYTEST_ENV

    def __init__(self, dataset: str | None = None, *, requirements: list[str] | None = None,
                 snapshot_dir: str | None = None, env_setup: str | None = None, test_timeout: float = 900.0,
                 max_patch_bytes: int = 8 << 20, fuzz: int = 5):
        super().__init__(env_setup=env_setup, test_timeout=test_timeout,
                         max_patch_bytes=max_patch_bytes, fuzz=fuzz)
        if requirements is not None:
            if isinstance(requirements, str) or not all(isinstance(r, str) and r.strip() for r in requirements):
                raise ValueError(f"swe-local requirements must be a list of pip requirements, got {requirements!r}")
            self.grading_env = requirements_env(requirements)
        self.dataset = dataset
        self.snapshot_dir = snapshot_dir
        #: the snapshot root, fixed on first use (a worker process that gets a copy uses the same)
        self._root_dir: str | None = snapshot_dir

    # ---- rows

    def instances(self) -> list[SweInstance]:
        if not self.dataset:
            raise DatasetMissing("swe-local needs a dataset: pass --dataset FILE.jsonl (SWE-bench rows with repo_path "
                             "and base_commit)")
        path = Path(self.dataset).expanduser()
        if not path.is_file():
            raise DatasetMissing(f"swe-local dataset {path} is not a file")
        return load_local_instances(path)

    def base_ref(self, inst: SweInstance) -> str:
        return BASE_REF  # the sandbox's repository is a fresh one of the base tree

    # ---- snapshots

    def _root(self) -> Path:
        if self._root_dir is None:
            self._root_dir = process_root()
        return Path(self._root_dir).expanduser().resolve()

    def snapshot_path(self, inst: SweInstance) -> Path:
        repo = str(local_repo(inst))
        key = hashlib.sha256(f"{repo}\0{inst.base_commit}".encode()).hexdigest()[:16]
        return self._root() / f"{Path(repo).name}-{inst.base_commit[:12]}-{key}"

    def sandbox_spec(self, inst: SweInstance) -> SandboxSpec:
        return SandboxSpec(repo_dir=str(self.snapshot_path(inst)), setup=setup_command(".", init=True))

    async def prepare(self, tasks: list[Task], sandbox: Any) -> list[Task]:
        """Check out each selected task's base tree (once per repository and commit)."""
        await anyio.to_thread.run_sync(self._make_snapshots, [self.instance(t.id) for t in tasks])
        return tasks

    def _make_snapshots(self, instances: list[SweInstance]) -> None:
        self._root().mkdir(parents=True, exist_ok=True)
        for inst in instances:
            dest = self.snapshot_path(inst)
            if not dest.is_dir():
                export_tree(local_repo(inst), inst.base_commit, dest)


def local_repo(inst: SweInstance) -> Path:
    return Path((inst.model_extra or {})[REPO_FIELD])


def load_local_instances(path: Path) -> list[SweInstance]:
    """The rows of ``path`` with ``repo_path`` made absolute and ``base_commit`` a
    full SHA; :class:`DatasetError` naming every bad line, row and field."""
    source = str(path)
    problems: list[str] = []
    found = parse_instances(path.read_bytes(), source, problems)
    pending: dict[Path, list[tuple[str, dict, SweInstance]]] = {}
    checked: dict[Path, str | None] = {}  # repository -> its problem, asked once
    for at, row, inst in found:
        raw = row.get(REPO_FIELD)
        if not isinstance(raw, str) or not raw.strip():
            problems.append(f"{at}: {REPO_FIELD}: required: the path of a git repository on this machine "
                            "(absolute, or relative to the dataset file's directory)")
            continue
        repo = (path.parent / Path(raw).expanduser()).resolve()
        if repo not in checked:
            checked[repo] = git_repository_problem(repo)
        if checked[repo]:
            problems.append(f"{at}: {REPO_FIELD}: {checked[repo]}")
            continue
        commit = row.get("base_commit")
        if not isinstance(commit, str) or not commit.strip():
            problems.append(f"{at}: base_commit: required: a commit of {repo}")
            continue
        if any(c.isspace() or not c.isprintable() for c in commit.strip()):
            problems.append(f"{at}: base_commit: {commit!r} is not a commit name (it holds white space)")
            continue
        pending.setdefault(repo, []).append((at, row, inst))
    instances: list[SweInstance] = []
    for repo, rows in pending.items():
        try:
            shas = resolve_commits(repo, [row["base_commit"].strip() for _, row, _ in rows])
        except (RuntimeError, ValueError, subprocess.SubprocessError) as exc:
            problems.extend(f"{at}: base_commit: {exc}" for at, _, _ in rows)
            continue
        for at, row, inst in rows:
            sha = shas[row["base_commit"].strip()]
            if sha is None:
                problems.append(f"{at}: base_commit: {row['base_commit']!r} is not a commit of {repo}")
                continue
            instances.append(inst.model_copy(update={"base_commit": sha, REPO_FIELD: str(repo)}))
    if problems:
        raise DatasetError(source, problems)
    order = {inst.instance_id: i for i, (_, _, inst) in enumerate(found)}
    return sorted(instances, key=lambda inst: order[inst.instance_id])
