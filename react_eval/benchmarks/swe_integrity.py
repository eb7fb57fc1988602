"""Tamper-resistant SWE test runs: what the agent may not change, and how pytest is run.

The agent is an adversary of the grader. Its patch is applied in a fresh
grading sandbox; before the tests run, every file it added or changed that
can change how tests run or are reported is put back to the base commit (or
removed when the base has no such file):

* ``conftest.py`` anywhere; ``pytest.ini``, ``.pytest.ini``, ``tox.ini``;
* ``setup.cfg`` / ``pyproject.toml`` when the change touches test settings;
* ``sitecustomize.py``, ``usercustomize.py`` and ``*.pth`` files anywhere;
* anything under a directory holding the task's test files (other than the
  repository root): helpers and plugins next to the tests.

Then pytest runs with pinned options: the base's own config file named with
``-c`` (or a harness-written empty one outside the repository when the base
has none), ``--rootdir`` the repository, ``-p no:cacheprovider``, plugin
autoloading off, ``PYTHONNOUSERSITE``/``PYTHONDONTWRITEBYTECODE`` set and
``PYTEST_ADDOPTS``/``PYTEST_PLUGINS`` unset. The junit report is written in a
fresh ``mktemp -d`` directory outside the repository under a random name and
handed back on the command's output between markers carrying a per-run token,
so no file in the repository, and no fixed path, can stand in for it.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import shlex
from dataclasses import dataclass, field

from react_eval.benchmarks.patches import GIT
from react_eval.sandboxes.base import Sandbox

#: files whose mere presence or content changes how pytest collects, runs or reports
_ALWAYS = {"conftest.py", "pytest.ini", ".pytest.ini", "tox.ini", "sitecustomize.py", "usercustomize.py"}
#: files that hold test settings among others: reset only when a change touches those
_SECTIONED = {"setup.cfg", "pyproject.toml"}
_TEST_SETTINGS = re.compile(r"pytest|addopts|testpaths|python_files|python_functions|plugins|\[tox|tool:", re.I)
_NEW = "react-eval: not in the base commit"


@dataclass
class Tampering:
    """Files reset before the tests, with the reason for each."""

    reset: list[dict[str, str]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.reset)


def test_dirs(files: list[str]) -> set[str]:
    """The directories of the task's test files, the repository root left out."""
    return {f.rsplit("/", 1)[0] for f in files if "/" in f}


def reason_to_reset(path: str, tests_in: set[str] = frozenset()) -> str | None:
    """Why an agent change to ``path`` (relative to the repo) must not reach the
    test run, or None. Sectioned files need their diff checked too."""
    parts = path.split("/")
    name = parts[-1]
    if name in _ALWAYS:
        return f"{name} changes how pytest runs"
    if name.endswith(".pth"):
        return ".pth files run code at interpreter start"
    if name in _SECTIONED:
        return "sectioned"
    if any(path.startswith(d + "/") for d in tests_in):
        return "files next to the task's tests are the task's, not the agent's"
    return None


def _changed_paths(status: str) -> list[str]:
    """Paths of ``git status --porcelain=v1 -z`` (both sides of renames)."""
    out: list[str] = []
    entries = status.split("\0")
    i = 0
    while i < len(entries):
        entry = entries[i]
        i += 1
        if len(entry) < 4:
            continue
        code, path = entry[:2], entry[3:]
        out.append(path.rstrip("/"))
        if "R" in code or "C" in code:  # the source path follows as its own entry
            if i < len(entries) and entries[i]:
                out.append(entries[i])
            i += 1
    return list(dict.fromkeys(out))


def _in_repo(repo: str, command: str) -> str:
    return command if repo in ("", ".") else f"cd {shlex.quote(repo)} && {command}"


async def reset_test_infrastructure(sandbox: Sandbox, repo: str, base: str, *, keep: set[str],
                                    tests_in: set[str]) -> Tampering:
    """Put back (or remove) every test-infrastructure file that differs from
    ``base`` in the grading sandbox, except the paths in ``keep`` (the test
    patch's own files, reset and re-applied separately)."""
    status = await sandbox.run(
        _in_repo(repo, f"{GIT} -c core.quotepath=off status --porcelain=v1 -z --untracked-files=all "
                       "--ignored=matching | base64 -w0; exit ${PIPESTATUS[0]}"), timeout=120)
    if status.timed_out or status.exit_code != 0:
        raise RuntimeError(f"git status failed in the grading sandbox: {status.output[-1000:]}")
    found = Tampering()
    try:  # base64 on the way: the sandbox's output is text, the list is NUL-separated
        listing = base64.b64decode("".join(status.output.split()), validate=True).decode("utf-8", "surrogateescape")
    except (binascii.Error, ValueError) as exc:
        raise RuntimeError(f"unreadable git status output: {status.output[-500:]}") from exc
    for path in _changed_paths(listing):
        if path in keep or path.startswith(".git/"):
            continue
        why = reason_to_reset(path, tests_in)
        if why == "sectioned":
            q = shlex.quote(path)
            diff = await sandbox.run(_in_repo(
                repo, f"if {GIT} cat-file -e {shlex.quote(base)}:{q} 2>/dev/null; then "
                      f"{GIT} diff --no-color {shlex.quote(base)} -- {q}; else echo '{_NEW}'; fi"), timeout=60)
            changed = [ln for ln in diff.output.splitlines() if ln[:1] in "+-" and ln[:3] not in ("+++", "---")]
            if diff.output.strip() == _NEW:
                why = f"{path.rsplit('/', 1)[-1]} added"
            elif any(_TEST_SETTINGS.search(ln) for ln in changed):
                why = "test settings changed"
            else:
                why = None
        if why is None:
            continue
        q = shlex.quote(path)
        r = await sandbox.run(_in_repo(
            repo, f"if {GIT} cat-file -e {shlex.quote(base)}:{q} 2>/dev/null; then "
                  f"{GIT} checkout {shlex.quote(base)} -- {q} && echo restored; else rm -rf -- {q} && echo removed; fi"),
            timeout=60)
        if r.timed_out or r.exit_code != 0:
            raise RuntimeError(f"could not reset {path}: {r.output[-1000:]}")
        found.reset.append({"path": path, "action": r.output.strip().splitlines()[-1], "why": why})
    return found


@dataclass
class PytestRun:
    """The pinned command and the token that marks its report on the output."""

    command: str
    token: str


# the config pytest itself would pick in the repository root, in its own order
_FIND_CONFIG = (
    'if [ -f pytest.ini ]; then C=pytest.ini; elif [ -f .pytest.ini ]; then C=.pytest.ini; '
    "elif grep -qs '^\\[tool\\.pytest\\.ini_options\\]' pyproject.toml; then C=pyproject.toml; "
    "elif grep -qs '^\\[pytest\\]' tox.ini; then C=tox.ini; "
    "elif grep -qs '^\\[tool:pytest\\]' setup.cfg; then C=setup.cfg; "
    'else C="$R/pytest.ini"; printf "[pytest]\\n" > "$C"; fi'
)


def pytest_run(python: str, files: list[str], *, env_setup: str | None = None,
               autoload_plugins: bool = False, output_tail: int = 6000) -> PytestRun:
    """The shell command that runs ``files`` with pinned options (see the module doc)."""
    token = secrets.token_hex(12)
    report = f"$R/{secrets.token_hex(8)}.xml"
    env = ["unset PYTEST_ADDOPTS PYTEST_PLUGINS PYTHONSTARTUP",
           "export PYTHONNOUSERSITE=1 PYTHONDONTWRITEBYTECODE=1"]
    if not autoload_plugins:
        env.append("export PYTEST_DISABLE_PLUGIN_AUTOLOAD=1")
    pytest = (f"{python} -m pytest -c \"$C\" --rootdir=. -p no:cacheprovider -rA "
              f"--junitxml=\"{report}\" {' '.join(shlex.quote(f) for f in files)}")
    inner = " && ".join([*(x for x in [env_setup] if x), *env, f"exec {pytest}"])
    command = (
        'R=$(mktemp -d "${TMPDIR:-/tmp}/react-eval-grade.XXXXXXXXXX") && chmod 700 "$R" || exit 97\n'
        f"{_FIND_CONFIG}\n"
        f'( {inner} ) > "$R/log" 2>&1 < /dev/null; rc=$?\n'
        f'tail -c {int(output_tail)} "$R/log"\n'
        f"printf '\\n{token}-REPORT\\n'; base64 -w0 \"{report}\" 2>/dev/null || printf 'none'\n"
        f"printf '\\n{token}-EXIT %s\\n' \"$rc\"; rm -rf \"$R\"; exit 0"
    )
    return PytestRun(command, token)


@dataclass
class PytestResult:
    output: str
    exit_code: int | None
    junit: bytes | None
    problem: str | None = None


def read_pytest_output(text: str, token: str) -> PytestResult:
    """Split the command's output into pytest's log tail, exit status and report."""
    start = text.rfind(f"\n{token}-REPORT\n")
    end = text.rfind(f"\n{token}-EXIT ")
    if start < 0 or end < start:
        return PytestResult(text, None, None, "the test command's output has no report section")
    log = text[:start]
    body = text[start + len(token) + 9 : end].strip()
    status = text[end + len(token) + 7 :].split("\n", 1)[0].strip()
    exit_code = int(status) if status.lstrip("-").isdigit() else None
    if body == "none":
        return PytestResult(log, exit_code, None)
    try:
        return PytestResult(log, exit_code, base64.b64decode(body, validate=True))
    except (binascii.Error, ValueError):
        return PytestResult(log, exit_code, None, "the junit report came back garbled (output cap?)")
