"""The one patch contract shared by the agent side and the grader of SWE-style tasks.

Capture (after the loop, in the agent's sandbox)::

    git add -A -- . <excludes>
    git diff --cached --binary --full-index --no-renames <base> -- . <excludes>

so the patch holds every change of the working tree against the base commit
recorded at setup: untracked new files included, deletions, binary files as
git binary diffs, CRLF line endings and file modes (100644/100755) preserved.
Files the repository ignores (``.gitignore``, ``.git/info/exclude``) are not
part of it, and neither are Python caches (``__pycache__/``, ``*.pyc``,
``.pytest_cache/``) whatever the ignore files say. Commits the agent made in
between do not matter: the diff is index-against-base. A patch that is not
valid UTF-8 (a latin-1 source file, say) is captured again with every file
marked binary, so the artifact is always text.

Apply (in a fresh sandbox built from the same base): as the official SWE-bench
harness does, ``git apply --verbose``, then ``--3way`` (swebench 5), ``--reject``,
then ``patch --batch --forward --fuzz=5 -p1``, the tree cleaned between attempts;
the method that worked is recorded.

Patch content never passes through a shell command line: it is written with
``Sandbox.write_file`` and applied as ``git apply FILE``. Scratch files live in
``<repo>/.git/react-eval/``, inside the sandbox but outside the working tree.
"""

from __future__ import annotations

import re
import shlex
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Literal

from react_eval.sandboxes.base import ExecResult, FileTooLargeError, Sandbox

#: the tag the sandbox setup puts on the base commit; captured patches are
#: diffs against it and the grader resets test files to it
BASE_REF = "react-eval-base"

#: git with every setting that changes what a patch looks like pinned, so the
#: repository's (or the agent's) configuration cannot change the contract
GIT = (
    "git -c core.autocrlf=false -c core.safecrlf=false -c core.filemode=true "
    "-c core.quotepath=false -c core.hooksPath=/dev/null -c commit.gpgsign=false "
    "-c user.name=react-eval -c user.email=react-eval@localhost "
    "-c diff.noprefix=false -c diff.mnemonicPrefix=false -c diff.relative=false"
)

#: paths never captured, whatever the repository's ignore files say
EXCLUDE_PATHSPECS = (
    ":(exclude,glob)**/__pycache__/**",
    ":(exclude,glob)**/*.pyc",
    ":(exclude,glob)**/*.pyo",
    ":(exclude,glob)**/.pytest_cache/**",
)

#: written to .git/info/exclude at setup so `git status` in the sandbox is quiet too
IGNORED_PATTERNS = ("__pycache__/", "*.py[co]", ".pytest_cache/")

SCRATCH = ".git/react-eval"
_DIFF_FLAGS = (
    "--cached --binary --full-index --no-color --no-ext-diff --no-textconv --no-renames "
    "--src-prefix=a/ --dst-prefix=b/"
)

ApplyMethod = Literal["empty", "git_apply", "git_apply_3way", "git_apply_reject", "patch_fuzz", "already_applied"]


def _excludes() -> str:
    return " ".join(shlex.quote(p) for p in EXCLUDE_PATHSPECS)


def repo_path(repo: str, rel: str) -> str:
    """A path inside ``repo`` as the sandbox file API wants it (relative to the
    workdir when the repository is the workdir itself)."""
    if repo in ("", "."):
        return rel
    return f"{repo.rstrip('/')}/{rel}"


def _in_repo(repo: str, command: str) -> str:
    if repo in ("", "."):
        return command
    return f"cd {shlex.quote(repo)} && {command}"


def setup_command(repo: str = ".", *, init: bool) -> str:
    """The sandbox setup that records the base state as :data:`BASE_REF`.

    ``init=True`` makes a new repository of the files placed in the sandbox
    (one commit with a fixed identity and date); ``init=False`` tags the current
    HEAD of an existing checkout (e.g. ``/testbed`` of SWE-bench images).
    """
    ignore = " ".join(shlex.quote(p) for p in IGNORED_PATTERNS)
    steps = ["set -e"]
    if init:
        steps += [
            "rm -rf .git",
            "git -c init.defaultBranch=main init -q",
            f"mkdir -p .git/info && printf '%s\\n' {ignore} >> .git/info/exclude",
            f"{GIT} add -A -- . {_excludes()}",
            "GIT_AUTHOR_DATE='2024-01-01T00:00:00Z' GIT_COMMITTER_DATE='2024-01-01T00:00:00Z' "
            f"{GIT} commit -q --no-verify --allow-empty -m 'base state'",
        ]
    else:
        steps.append(f"mkdir -p .git/info && printf '%s\\n' {ignore} >> .git/info/exclude")
    steps.append(f"git tag -f {BASE_REF} HEAD >/dev/null")
    return _in_repo(repo, "\n".join(steps) if repo in ("", ".") else "(" + "\n".join(steps) + ")")


# ---------------------------------------------------------------- capture


@dataclass
class CaptureResult:
    patch: str | None
    error: str | None = None
    #: True when the patch had to be re-captured with every file as binary
    all_binary: bool = False
    size: int = 0


async def capture_patch(
    sandbox: Sandbox,
    repo: str = ".",
    *,
    base: str = BASE_REF,
    timeout: float = 120.0,
    max_bytes: int = 8 << 20,
) -> CaptureResult:
    """The agent's change as a git patch against ``base`` (see the module doc)."""
    out = repo_path(repo, f"{SCRATCH}/capture.patch")
    diff = (
        f"mkdir -p {SCRATCH} && {GIT} add -A -- . {_excludes()} && "
        f"{GIT} diff {_DIFF_FLAGS} {shlex.quote(base)} -- . {_excludes()} > {SCRATCH}/capture.patch"
    )

    async def diff_into_file(command: str, what: str) -> bytes | CaptureResult:
        """Run ``command`` (which writes the patch file) and read the file back."""
        r = await sandbox.run(_in_repo(repo, command), timeout=timeout)
        if r.timed_out or r.exit_code != 0:
            return CaptureResult(None, error=f"could not capture the {what} ({_status(r)}): {r.output[-2000:]}")
        try:
            return await sandbox.read_file(out, max_bytes=max_bytes)
        except FileTooLargeError as exc:
            return CaptureResult(None, error=f"the patch is {exc.size} bytes, over the {max_bytes}-byte limit",
                                 size=exc.size)

    data = await diff_into_file(diff, "patch")
    if isinstance(data, CaptureResult):
        return data
    try:
        return CaptureResult(data.decode("utf-8"), size=len(data))
    except UnicodeDecodeError:
        pass
    # some changed file is not UTF-8 text: mark every path binary (highest-precedence
    # attributes file) so the patch is base85 and ASCII, then put things back
    rebinary = (
        "mkdir -p .git/info && { [ ! -e .git/info/attributes ] || mv .git/info/attributes "
        f"{SCRATCH}/attributes.saved; }} && printf '* binary\\n' > .git/info/attributes && "
        f"{GIT} diff {_DIFF_FLAGS} {shlex.quote(base)} -- . {_excludes()} > {SCRATCH}/capture.patch; "
        f"rc=$?; rm -f .git/info/attributes; [ ! -e {SCRATCH}/attributes.saved ] || "
        f"mv {SCRATCH}/attributes.saved .git/info/attributes; exit $rc"
    )
    data = await diff_into_file(rebinary, "binary patch")
    if isinstance(data, CaptureResult):
        return data
    return CaptureResult(data.decode("utf-8", errors="replace"), all_binary=True, size=len(data))


# ---------------------------------------------------------------- apply


@dataclass
class ApplyResult:
    method: ApplyMethod | None  # None: the patch could not be applied
    output: str = ""

    @property
    def ok(self) -> bool:
        return self.method is not None


async def write_scratch(sandbox: Sandbox, repo: str, name: str, content: str | bytes) -> str:
    """Write ``content`` to the scratch directory; returns its path relative to the repo."""
    data = content.encode("utf-8") if isinstance(content, str) else content
    await sandbox.write_file(repo_path(repo, f"{SCRATCH}/{name}"), data)
    return f"{SCRATCH}/{name}"


#: the official harness's ways to apply a prediction (``GIT_APPLY_CMDS`` of
#: swebench's run_evaluation.py); each is tried on a clean tree, in a chain's order
APPLY_COMMANDS: dict[str, str] = {
    "git_apply": f"{GIT} apply --verbose",
    "git_apply_3way": f"{GIT} apply --verbose --3way",
    "git_apply_reject": f"{GIT} apply --verbose --reject",
    # as swebench runs it, but leaving no .orig backup in the tree for the tests to trip on
    "patch_fuzz": "patch --batch --forward --no-backup-if-mismatch --fuzz={fuzz} -p1 -i",
}
#: swebench 4.x: git apply, git apply --reject, patch --fuzz=5
APPLY_CHAIN_V4 = ("git_apply", "git_apply_reject", "patch_fuzz")
#: swebench 5.x adds git apply --3way second (and accepts a patch already applied)
APPLY_CHAIN_V5 = ("git_apply", "git_apply_3way", "git_apply_reject", "patch_fuzz")
#: what a failed attempt may leave behind (``--reject`` applies part of a patch,
#: ``--3way`` leaves conflicts in the index) is undone; swebench runs ``git checkout
#: -- . ; git clean -fd``, which an unmerged index entry makes fail
_CLEAN_TREE = f"{GIT} reset -q --hard HEAD ; {GIT} clean -fdq"


async def apply_patch(
    sandbox: Sandbox, patch: str, repo: str = ".", *, name: str = "model.patch", fuzz: int = 5,
    timeout: float = 120.0, chain: tuple[str, ...] = APPLY_CHAIN_V5,
) -> ApplyResult:
    """Apply ``patch`` the way the official SWE-bench harness does: each method of
    ``chain`` in turn (the tree cleaned before every retry) until one exits 0; when
    all fail, a patch that is already in the tree (``git apply --check --reverse``)
    counts as applied. The method that worked is :attr:`ApplyResult.method`."""
    if not patch.strip():
        return ApplyResult("empty", "the patch is empty")
    rel = await write_scratch(sandbox, repo, name, patch)
    log = []
    for attempt, method in enumerate(chain):
        command = APPLY_COMMANDS[method].format(fuzz=int(fuzz))
        if attempt:
            await sandbox.run(_in_repo(repo, _CLEAN_TREE), timeout=timeout)
        r = await sandbox.run(_in_repo(repo, f"{command} {rel}"), timeout=timeout)
        log.append(f"$ {command.replace(GIT, 'git')} {rel}\n{r.output.rstrip()}\n")
        if r.exit_code == 0 and not r.timed_out:
            return ApplyResult(method, "".join(log))  # type: ignore[arg-type]
    if "git_apply_3way" in chain:  # swebench 5: the chain can leave a patch applied yet exit non-zero
        check = await sandbox.run(_in_repo(repo, f"{GIT} apply --check --reverse {rel}"), timeout=timeout)
        if check.exit_code == 0 and not check.timed_out:
            return ApplyResult("already_applied", "".join(log))
    await sandbox.run(_in_repo(repo, _CLEAN_TREE), timeout=timeout)
    return ApplyResult(None, "".join(log))


def _status(r: ExecResult) -> str:
    return "timed out" if r.timed_out else f"exit {r.exit_code}"


# ---------------------------------------------------------------- reading patches


@dataclass
class FileChange:
    """One file of a patch: its old and new path (None when absent on that side)."""

    old_path: str | None
    new_path: str | None
    binary: bool = False
    old_mode: str | None = None
    new_mode: str | None = None
    #: the ---/+++ header pair was read (a later pair starts a new file)
    headers_read: bool = field(default=False, repr=False)
    #: started by a ``diff --git`` line (whose ---/+++ pair, if any, follows)
    from_git: bool = field(default=False, repr=False)

    @property
    def status(self) -> Literal["added", "deleted", "modified", "renamed"]:
        if self.old_path is None:
            return "added"
        if self.new_path is None:
            return "deleted"
        return "renamed" if self.old_path != self.new_path else "modified"

    @property
    def path(self) -> str:
        return self.new_path or self.old_path or ""


_ESCAPES = {"a": 7, "b": 8, "t": 9, "n": 10, "v": 11, "f": 12, "r": 13, '"': 34, "\\": 92}


def _unquote(token: str) -> str:
    """A path as git prints it: C-quoted (with octal UTF-8 bytes) when it has to be."""
    if not (len(token) >= 2 and token[0] == '"' and token[-1] == '"'):
        return token
    out = bytearray()
    body, i = token[1:-1], 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out += ch.encode("utf-8")
            i += 1
            continue
        nxt = body[i + 1] if i + 1 < len(body) else ""
        if nxt in "01234567" and nxt:
            out.append(int(body[i + 1 : i + 4], 8) & 0xFF)
            i += 4
        else:
            out.append(_ESCAPES.get(nxt, ord(nxt) if nxt else 92))
            i += 2
    return out.decode("utf-8", errors="surrogateescape")


def _strip_prefix(path: str) -> str | None:
    """``a/x`` -> ``x``; ``/dev/null`` -> None (a side that does not exist)."""
    path = _unquote(path.split("\t", 1)[0].rstrip())
    if path == "/dev/null":
        return None
    return path.split("/", 1)[1] if "/" in path else path


_HUNK = re.compile(r"^@@ -\d+(?:,(\d+))? \+\d+(?:,(\d+))? @@")


def _git_header_paths(rest: str) -> tuple[str | None, str | None]:
    """Paths of a ``diff --git a/X b/Y`` line (a fallback: ---/+++ and rename
    lines, when present, are authoritative)."""
    if rest.startswith('"'):
        m = re.match(r'("(?:[^"\\]|\\.)*")\s+(.*)$', rest)
        return (_strip_prefix(m.group(1)), _strip_prefix(m.group(2))) if m else (None, None)
    half = len(rest) // 2
    if len(rest) % 2 == 1 and rest[half] == " " and rest[2:half] == rest[half + 3 :]:
        return rest[2:half], rest[2:half]  # "a/x b/x"
    a, sep, b = rest.partition(" b/")
    return _strip_prefix(a), (b if sep else None)


def parse_patch_files(text: str) -> list[FileChange]:
    """The files a git (or plain unified) diff touches, with what happens to each.

    Hunk bodies are skipped by their line counts, so a removed line that starts
    with ``-- `` is never mistaken for a file header.
    """
    changes: list[FileChange] = []
    current: FileChange | None = None
    lines = text.split("\n")
    old_left = new_left = 0
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if old_left > 0 or new_left > 0:
            tag = line[:1]
            if tag == "\\":
                continue
            if tag == "-":
                old_left -= 1
            elif tag == "+":
                new_left -= 1
            else:  # context (an empty line is context whose leading space was stripped)
                old_left -= 1
                new_left -= 1
            continue
        line = line.rstrip("\r")
        if line.startswith("diff --git "):
            old, new = _git_header_paths(line[len("diff --git ") :])
            current = FileChange(old, new, from_git=True)
            changes.append(current)
            continue
        m = _HUNK.match(line)
        if m:
            old_left = int(m.group(1)) if m.group(1) is not None else 1
            new_left = int(m.group(2)) if m.group(2) is not None else 1
            continue
        if line.startswith("--- ") and i < len(lines) and lines[i].startswith("+++ "):
            old = _strip_prefix(line[4:])
            own = (current is not None and current.from_git and not current.headers_read
                   and not current.binary and old == current.old_path)
            if not own:  # a plain unified diff of another file
                current = FileChange(None, None)
                changes.append(current)
            current.old_path = old
            current.new_path = _strip_prefix(lines[i].rstrip("\r")[4:])
            current.headers_read = True
            i += 1
            continue
        if current is None:
            continue
        if line.startswith("new file mode "):
            current.old_path, current.new_mode = None, line.split()[-1]
        elif line.startswith("deleted file mode "):
            current.new_path, current.old_mode = None, line.split()[-1]
        elif line.startswith("old mode "):
            current.old_mode = line.split()[-1]
        elif line.startswith("new mode "):
            current.new_mode = line.split()[-1]
        elif line.startswith(("rename from ", "copy from ")):
            current.old_path = _unquote(line.split(" from ", 1)[1])
        elif line.startswith(("rename to ", "copy to ")):
            current.new_path = _unquote(line.split(" to ", 1)[1])
        elif line.startswith("Binary files ") or line == "GIT binary patch":
            current.binary = True
    return changes


def reset_command(test_patch: str, base: str = BASE_REF) -> str | None:
    """Shell command that puts every file the test patch touches back to ``base``:
    ``git checkout base -- FILES`` for files that exist there, ``rm -f`` for files
    the test patch creates. None when the patch touches no file."""
    restore, remove = [], []
    for change in parse_patch_files(test_patch):
        if change.old_path is not None:
            restore.append(change.old_path)
        if change.new_path is not None and change.new_path != change.old_path:
            remove.append(change.new_path)
    parts = []
    if remove:
        parts.append("rm -rf -- " + " ".join(shlex.quote(p) for p in dict.fromkeys(remove)))
    if restore:
        parts.append(f"{GIT} checkout {shlex.quote(base)} -- " + " ".join(shlex.quote(p) for p in dict.fromkeys(restore)))
    return " && ".join(parts) or None


# ---------------------------------------------------------------- test outcomes

Outcome = Literal["passed", "failed", "error", "skipped", "xfailed", "missing"]
_RANK = {"passed": 0, "xfailed": 1, "skipped": 2, "failed": 3, "error": 4}


def junit_key(node_id: str) -> tuple[str, str]:
    """(classname, name) that pytest's junit XML uses for a node id:
    ``tests/test_a.py::TestX::test_y[p]`` -> (``tests.test_a.TestX``, ``test_y[p]``)."""
    path, bracket, params = node_id.partition("[")
    names = path.split("::")
    names[0] = re.sub(r"\.py$", "", names[0].replace("/", "."))
    names[-1] += bracket + params
    return ".".join(names[:-1]), names[-1]


def parse_junit(xml_bytes: bytes) -> dict[tuple[str, str], Outcome]:
    """Per-testcase outcomes of a pytest junit XML report (worst one per key)."""
    root = ET.fromstring(xml_bytes)
    outcomes: dict[tuple[str, str], Outcome] = {}
    for case in root.iter("testcase"):
        key = (case.get("classname") or "", case.get("name") or "")
        outcome: Outcome = "passed"
        for child in case:
            if child.tag == "error":
                outcome = "error"
            elif child.tag == "failure" and outcome != "error":
                outcome = "failed"
            elif child.tag == "skipped" and outcome == "passed":
                outcome = "xfailed" if (child.get("type") or "") == "pytest.xfail" else "skipped"
        previous = outcomes.get(key)
        if previous is None or _RANK[outcome] > _RANK[previous]:
            outcomes[key] = outcome
    return outcomes


def outcomes_for(node_ids: list[str], junit: dict[tuple[str, str], Outcome]) -> dict[str, Outcome]:
    """Map the node ids a task lists back onto junit outcomes ("missing" if absent)."""
    return {node: junit.get(junit_key(node), "missing") for node in node_ids}


def test_files(node_ids: list[str]) -> list[str]:
    """The test files (node id before ``::``) in first-seen order."""
    return list(dict.fromkeys(node.split("::", 1)[0] for node in node_ids))
