"""Cached virtualenvs holding one swebench release each, for the agreement tests.

The full ``pip install swebench`` pulls ~490 MB (datasets, pyarrow, modal, ...)
and takes about a minute per release. Grading needs little of it, so a venv
here gets ``swebench==X --no-deps``, sees the running interpreter's packages
through a ``.pth`` file (react-eval's own dependencies, already installed),
and installs, one at a time, only the distributions that importing swebench's
grading code still reports missing (with whatever of their dependencies the
running interpreter lacks). Venvs are built once
per (release, interpreter) under a lock, in ``$REACT_EVAL_TEST_VENVS`` or
``/var/cache/react-eval/test-venvs`` (falling back to ``~/.cache``).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

RELEASES = ("4.1.0", "5.0.2")

#: modules swebench's grading imports (both generations), by import name
PROBE = (
    "import importlib.util as u\n"
    "import swebench.harness.grading, swebench.harness.constants, swebench.harness.log_parsers, swebench.harness.utils\n"
    "if u.find_spec('swebench.harness.test_spec'):\n"
    "    import swebench.harness.test_spec.test_spec, swebench.harness.test_spec.create_scripts\n"
)
#: what importing the grading code was found to need beyond react-eval's own
#: dependencies, installed in one go (the probe below still catches the rest)
SEEDS = {"4": ("beautifulsoup4", "ghapi", "unidiff", "modal"), "5": ("unidiff", "modal")}
#: import name -> distribution, where they differ
DISTRIBUTIONS = {"bs4": "beautifulsoup4", "git": "GitPython", "dotenv": "python-dotenv", "yaml": "pyyaml"}


def cache_root() -> Path:
    configured = os.environ.get("REACT_EVAL_TEST_VENVS")
    candidates = [Path(configured)] if configured else [Path("/var/cache/react-eval/test-venvs"),
                                                          Path.home() / ".cache/react-eval/test-venvs"]
    for root in candidates:
        try:
            root.mkdir(parents=True, exist_ok=True)
            probe = root / f".write-test-{os.getpid()}"
            probe.write_text("")
            probe.unlink()
            return root
        except OSError:
            continue
    raise RuntimeError(f"no writable cache directory for test venvs among {candidates}")


def _parent_site() -> list[str]:
    paths = sysconfig.get_paths()
    return list(dict.fromkeys([paths["purelib"], paths["platlib"]]))


def venv_python(release: str) -> Path:
    """The python of a venv with swebench ``release`` (built on first use)."""
    key = hashlib.sha256(f"{release}|{sys.executable}|{sys.version}".encode()).hexdigest()[:12]
    root = cache_root()
    target = root / f"swebench-{release}-{key}"
    python = target / "bin" / "python"
    if (target / "ready.json").exists():
        return python
    with open(root / f".swebench-{release}-{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one builder; the others wait and reuse it
        if (target / "ready.json").exists():
            return python
        shutil.rmtree(target, ignore_errors=True)
        started = time.monotonic()
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(target)], check=True)
        site = Path(subprocess.check_output([str(python), "-c", "import sysconfig;print(sysconfig.get_paths()['purelib'])"],
                                            text=True).strip())
        lines = "".join(f"import site; site.addsitedir({p!r})\n" for p in _parent_site())
        (site / "zz-react-eval-parent.pth").write_text(lines)
        installed = [f"swebench=={release}", *SEEDS.get(release.split(".")[0], ())]
        _pip(python, installed[0], "--no-deps")
        if installed[1:]:
            _pip(python, *installed[1:])
        for _ in range(15):
            probe = subprocess.run([str(python), "-c", PROBE], capture_output=True, text=True)
            if probe.returncode == 0:
                break
            missing = _missing_module(probe.stderr)
            if missing is None:
                raise RuntimeError(f"swebench {release} does not import in {target}:\n{probe.stderr[-3000:]}")
            dist = DISTRIBUTIONS.get(missing, missing)
            _pip(python, dist)  # with the dependencies the parent's packages lack
            installed.append(dist)
        else:
            raise RuntimeError(f"swebench {release} still misses modules after {installed}")
        size = sum(f.stat().st_size for f in target.rglob("*") if f.is_file())
        (target / "ready.json").write_text(json.dumps({
            "release": release, "installed": installed, "seconds": round(time.monotonic() - started, 1),
            "bytes": size}))
    return python


def _pip(python: Path, *args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
                    "--disable-pip-version-check", *args], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _missing_module(stderr: str) -> str | None:
    marker = "No module named '"
    at = stderr.rfind(marker)
    if at < 0:
        return None
    return stderr[at + len(marker):].split("'", 1)[0].split(".", 1)[0]


def build_info(release: str) -> dict:
    python = venv_python(release)
    return json.loads((python.parent.parent / "ready.json").read_text())
