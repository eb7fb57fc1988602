"""Validate trajectories with Harbor's own ATIF code (the reference implementation).

    from tests.harbor_atif import validate_with_harbor
    assert validate_with_harbor(trajectory.to_json_dict()) == []

Harbor is not a dependency of react-eval (it needs Python >= 3.12 and many
packages), but its ATIF models need only pydantic. So the helper fetches the
``harbor==0.25.0`` wheel once with ``pip download`` and extracts just
``harbor/models/trajectories/*`` and ``harbor/utils/trajectory_validator.py``
into a cache directory:

* ``$REACT_EVAL_HARBOR_DIR`` when set (may point at an already extracted tree,
  e.g. for offline machines), else ``~/.cache/react-eval-test/harbor``.

The wheel's ``harbor/__init__.py`` needs the installed distribution's metadata
and lazily pulls in the whole framework, so it is not extracted; empty
``__init__.py`` files stand in for ``harbor``, ``harbor.models`` and
``harbor.utils``. When the wheel cannot be obtained (no network, no pip),
``validate_with_harbor`` skips the calling test with the reason.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Iterator

import pytest

HARBOR_VERSION = "0.25.0"
_WANTED_PREFIXES = ("harbor/models/trajectories/",)
_WANTED_FILES = ("harbor/utils/trajectory_validator.py",)
_PACKAGE_INITS = ("harbor/__init__.py", "harbor/models/__init__.py", "harbor/utils/__init__.py")
_SENTINELS = ("harbor/models/trajectories/trajectory.py", "harbor/utils/trajectory_validator.py")
_PIP_TIMEOUT_S = 300


class HarborUnavailable(RuntimeError):
    """Harbor's ATIF code could not be obtained or imported."""


def harbor_dir() -> Path:
    """Where Harbor's extracted ATIF modules live (or will)."""
    configured = os.environ.get("REACT_EVAL_HARBOR_DIR")
    if configured:
        return Path(configured).expanduser().resolve()
    return Path.home() / ".cache" / "react-eval-test" / "harbor"


def _complete(root: Path) -> bool:
    return all((root / rel).is_file() for rel in _SENTINELS)


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    """Serialize downloads between concurrent test processes."""
    root.parent.mkdir(parents=True, exist_ok=True)
    with open(root.parent / f".{root.name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _download_and_extract(root: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="harbor-wheel-") as tmp:
        cmd = [
            sys.executable, "-m", "pip", "download", "--no-deps",
            f"harbor=={HARBOR_VERSION}", "--python-version", "3.12",
            "--only-binary=:all:", "--disable-pip-version-check", "-q", "-d", tmp,
        ]  # fmt: skip
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=_PIP_TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise HarborUnavailable(f"`pip download harbor=={HARBOR_VERSION}` failed: {exc}")
        wheels = sorted(Path(tmp).glob("harbor-*.whl"))
        if proc.returncode != 0 or not wheels:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise HarborUnavailable(
                f"`pip download harbor=={HARBOR_VERSION}` failed "
                f"(exit {proc.returncode}): {' | '.join(tail)}"
            )
        _extract(wheels[0], root)


def _extract(wheel: Path, root: Path) -> None:
    """Write only the ATIF files, sentinels last so a crash leaves it 'incomplete'."""
    with zipfile.ZipFile(wheel) as archive:
        names = [
            n
            for n in archive.namelist()
            if (n.startswith(_WANTED_PREFIXES) and n.endswith(".py")) or n in _WANTED_FILES
        ]
        missing = [s for s in _SENTINELS if s not in names]
        if missing:
            raise HarborUnavailable(f"{wheel.name} lacks {missing}")
        names.sort(key=lambda n: n in _SENTINELS)
        for name in names:
            target = root / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(archive.read(name))


def _ensure_package_inits(root: Path) -> None:
    for rel in _PACKAGE_INITS:
        init = root / rel
        if not init.exists():
            init.parent.mkdir(parents=True, exist_ok=True)
            init.write_text("")


def load_harbor() -> tuple[ModuleType, ModuleType]:
    """Import and return ``(harbor.models.trajectories, harbor.utils.trajectory_validator)``.

    Raises :class:`HarborUnavailable` when that is impossible. Both outcomes
    are remembered for the process, so a failed download is tried only once.
    """
    outcome = _load_once()
    if isinstance(outcome, HarborUnavailable):
        raise outcome
    return outcome


@functools.cache
def _load_once() -> tuple[ModuleType, ModuleType] | HarborUnavailable:
    try:
        return _load()
    except HarborUnavailable as exc:
        return exc


def ensure_extracted(root: Path, complete: Callable[[Path], bool], fill: Callable[[Path], None]) -> None:
    """Fill ``root`` once (``fill``) unless ``complete`` says it is, locked against
    other test processes; then make the stand-in package ``__init__`` files."""
    if not complete(root):
        with _locked(root):
            if not complete(root):
                root.mkdir(parents=True, exist_ok=True)
                fill(root)
    _ensure_package_inits(root)


def _load() -> tuple[ModuleType, ModuleType]:
    root = harbor_dir()
    try:
        ensure_extracted(root, _complete, _download_and_extract)
    except OSError as exc:  # read-only or full cache directory, ...
        raise HarborUnavailable(f"cannot prepare Harbor's ATIF modules under {root}: {exc}")

    loaded = sys.modules.get("harbor")
    if loaded is not None and not str(getattr(loaded, "__file__", "") or "").startswith(str(root)):
        raise HarborUnavailable(
            f"a different 'harbor' package is already imported ({loaded!r}); "
            "cannot load the pinned ATIF modules next to it"
        )
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    try:
        import harbor.models.trajectories as models
        import harbor.utils.trajectory_validator as validator
    except Exception as exc:  # a broken cache, a pydantic incompatibility, ...
        raise HarborUnavailable(f"importing Harbor's ATIF modules from {root} failed: {exc!r}")
    return models, validator


def validate_with_harbor(trajectory: dict[str, Any] | str | bytes | Path) -> list[str]:
    """Harbor's validation errors for a trajectory; ``[]`` means valid.

    Accepts a JSON-ready dict (e.g. ``Trajectory.to_json_dict()``), JSON text
    or bytes, or a path to a trajectory file (then local image/audio paths are
    checked too, as ``harbor`` does). Skips the calling test when Harbor's
    code is unavailable.
    """
    try:
        _, validator_module = load_harbor()
    except HarborUnavailable as exc:
        pytest.skip(f"Harbor ATIF validator unavailable: {exc}")
    if isinstance(trajectory, (bytes, bytearray)):
        trajectory = json.loads(trajectory)
    validator = validator_module.TrajectoryValidator()
    validator.validate(trajectory)
    return list(validator.get_errors())
