"""Grading environments: the interpreter a benchmark's checks run with.

A benchmark declares what its checks need as an :class:`EnvSpec` (packages to
install, modules that must import). For the local and bwrap sandboxes
react-eval provisions that environment itself: a virtualenv built once per
spec from a *system* Python (Debian's ``/usr/bin/python3`` by default, never
the harness' own interpreter and its site-packages), with ``uv`` when it is on
PATH, else ``venv`` plus pip from the package index. Environments live in a
cache directory keyed by a hash of the spec and the base interpreter:

* ``$REACT_EVAL_ENV_CACHE`` if set;
* ``/var/cache/react-eval/envs`` when running as root (outside /root and the
  checkout, so a bwrap jail that hides those still sees it);
* ``$XDG_CACHE_HOME/react-eval/envs`` (``~/.cache``) otherwise.

A build happens under an exclusive file lock in a temporary directory that is
renamed into place only once the spec's imports work, so parallel rollouts
and processes never see a half-built environment and build it only once.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from pydantic import BaseModel, ConfigDict

#: bump when the way environments are built changes (invalidates the cache)
RECIPE = 1
READY = ".react-eval-ready"
CACHE_VAR = "REACT_EVAL_ENV_CACHE"
BASE_PYTHON_VAR = "REACT_EVAL_BASE_PYTHON"
SYSTEM_PYTHONS = ("/usr/bin/python3", "/usr/local/bin/python3")


class EnvSpec(BaseModel):
    """What a benchmark's checks need from their Python."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: a short name, for messages and image tags
    name: str
    #: requirements installed with their dependencies (pip syntax)
    requirements: tuple[str, ...] = ()
    #: requirements installed WITHOUT dependencies (e.g. evalplus, whose full
    #: dependency list pulls in model SDKs its checker never imports)
    no_deps: tuple[str, ...] = ()
    #: modules that must import for the environment to be usable
    imports: tuple[str, ...] = ()
    #: an interpreter in the default Docker sandbox image that already satisfies
    #: the spec (e.g. "python3" with Debian's python3-pytest); None: the image
    #: gets the provisioned environment added (see :mod:`react_eval.grading.images`)
    image_python: str | None = None

    def key(self, base_python: str) -> str:
        data = {"recipe": RECIPE, "spec": self.model_dump(exclude={"image_python"}),
                "base": base_python, "version": _python_version(base_python)}
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


class EnvError(RuntimeError):
    """The grading environment cannot be provisioned (the reason says why)."""


def cache_root() -> Path:
    """Where environments are kept (see the module doc)."""
    if os.environ.get(CACHE_VAR):
        return Path(os.environ[CACHE_VAR])
    if os.geteuid() == 0:
        return Path("/var/cache/react-eval/envs")
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "react-eval" / "envs"


def base_python() -> str:
    """The system interpreter environments are built from: $REACT_EVAL_BASE_PYTHON,
    else the first system python3 found, else (last resort) the harness' own
    base interpreter, whose site-packages a venv does not see anyway."""
    chosen = os.environ.get(BASE_PYTHON_VAR)
    if chosen:
        if not os.access(chosen, os.X_OK):
            raise EnvError(f"{BASE_PYTHON_VAR}={chosen} is not an executable interpreter")
        return chosen
    for candidate in SYSTEM_PYTHONS:
        if os.access(candidate, os.X_OK):
            return candidate
    return getattr(sys, "_base_executable", None) or sys.executable


_versions: dict[str, str] = {}


def _python_version(python: str) -> str:
    if python not in _versions:
        try:
            out = subprocess.run([python, "-c", "import sys; print(sys.version.split()[0])"],
                                 capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.SubprocessError) as exc:
            raise EnvError(f"cannot run the base interpreter {python}: {exc}") from exc
        if out.returncode != 0:
            raise EnvError(f"the base interpreter {python} does not start: {out.stderr.strip()[-500:]}")
        _versions[python] = out.stdout.strip()
    return _versions[python]


class Env:
    """A provisioned environment: its directory and interpreter."""

    def __init__(self, spec: EnvSpec, path: Path, base: str):
        self.spec = spec
        self.path = path
        self.base = base

    @property
    def python(self) -> str:
        return str(self.path / "bin" / "python")

    def host_paths(self) -> list[str]:
        """Host directories a jail must show (read-only) for the interpreter to run:
        the environment, and the base interpreter's prefix when it is not under /usr."""
        paths = [str(self.path)]
        prefix = os.path.dirname(os.path.dirname(os.path.realpath(self.base)))
        if prefix not in ("/usr", "/usr/local", "/"):
            paths.append(prefix)
        return paths


_ready: dict[tuple[EnvSpec, str], Env] = {}
_thread_lock = threading.Lock()


def provision(spec: EnvSpec) -> Env:
    """The environment for ``spec``, built on first use (blocking: call it in a thread)."""
    base = base_python()
    known = _ready.get((spec, base))
    if known is not None and (known.path / READY).exists():
        return known
    root = cache_root()
    path = root / f"{spec.name}-{spec.key(base)}"
    with _thread_lock:
        if not (path / READY).exists():
            try:
                root.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise EnvError(f"cannot create the environment cache {root} ({exc}); set {CACHE_VAR}") from exc
            with open(root / f".{path.name}.lock", "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)  # other processes wait here
                if not (path / READY).exists():
                    _build(spec, base, path)
    env = Env(spec, path, base)
    _ready[(spec, base)] = env
    return env


def _run(argv: list[str], what: str, timeout: float = 1800) -> None:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                             env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PYTHONNOUSERSITE": "1"})
    except (OSError, subprocess.SubprocessError) as exc:
        raise EnvError(f"{what} failed: {exc}") from exc
    if out.returncode != 0:
        raise EnvError(f"{what} failed (exit {out.returncode}): {(out.stderr or out.stdout).strip()[-1500:]}")


def _build(spec: EnvSpec, base: str, path: Path) -> None:
    """Build into a temporary sibling, check the imports, then rename into place."""
    if path.exists():  # a broken leftover (no ready marker)
        shutil.rmtree(path, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.build-", dir=path.parent))
    venv = tmp / "env"
    try:
        uv = shutil.which("uv")
        python = str(venv / "bin" / "python")
        if uv:
            _run([uv, "venv", "--quiet", "--python", base, str(venv)], f"uv venv for {spec.name}")
            install = [uv, "pip", "install", "--quiet", "--python", python]
        else:
            _run([base, "-m", "venv", "--without-pip", str(venv)], f"{base} -m venv for {spec.name}")
            install = [*_pip(), "--python", python, "install", "--quiet", "--no-input"]
        if spec.requirements:
            _run([*install, *spec.requirements], f"installing {', '.join(spec.requirements)}")
        if spec.no_deps:
            _run([*install, "--no-deps", *spec.no_deps], f"installing {', '.join(spec.no_deps)}")
        check = "; ".join(f"import {m}" for m in spec.imports) or "pass"
        _run([python, "-I", "-c", check], f"importing {', '.join(spec.imports) or 'nothing'} in the new environment")
        (venv / READY).write_text(json.dumps(spec.model_dump()))
        os.rename(venv, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _pip() -> list[str]:
    """A pip that can install into another interpreter (``--python``, pip >= 22.3):
    the harness' own pip is used as a tool only, never as the target."""
    return [sys.executable, "-m", "pip"]
