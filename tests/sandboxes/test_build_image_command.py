"""`react-eval sandbox build-image` from a plain (wheel) install: the image recipe ships as package data.

A pip user used to be told to run `bash sandboxes/build_image.sh`, a file only a checkout has."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The wheel built from this tree, unpacked as pip installs it (no extras, dependencies from this
    interpreter): a directory to put first on PYTHONPATH."""
    work = tmp_path_factory.mktemp("wheel")
    src = work / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (REPO / name).exists():
            shutil.copy(REPO / name, src / name)
    shutil.copytree(REPO / "react_eval", src / "react_eval", ignore=shutil.ignore_patterns("__pycache__"))
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
                           "-w", str(work / "dist"), str(src)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    (wheel,) = (work / "dist").glob("react_eval-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "react_eval/sandboxes/image/build_image.sh" in names and "react_eval/sandboxes/image/Dockerfile" in names
    site = work / "site"
    zipfile.ZipFile(wheel).extractall(site)
    return site


def cli(site: Path, *args: str, path: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(site), "PATH": path}
    return subprocess.run([sys.executable, "-m", "react_eval.cli", *args], cwd=site.parent, env=env,
                          capture_output=True, text=True, timeout=120)


def test_without_docker_it_refuses_in_words_before_running_anything(installed, tmp_path):
    bin_dir = tmp_path / "bin"  # bash but no docker on PATH
    bin_dir.mkdir()
    (bin_dir / "bash").symlink_to(shutil.which("bash"))
    proc = cli(installed, "sandbox", "build-image", path=str(bin_dir))
    assert proc.returncode == 2, proc.stderr
    assert "docker not found on PATH: building the sandbox image needs a Docker engine" in proc.stderr
    assert "[build_image]" not in proc.stderr and "Traceback" not in proc.stderr


def test_without_debootstrap_or_apt_it_refuses_in_words(installed, tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "bash").symlink_to(shutil.which("bash"))
    (bin_dir / "docker").write_text("#!/bin/sh\nexit 1\n")
    (bin_dir / "docker").chmod(0o755)
    proc = cli(installed, "sandbox", "build-image", path=str(bin_dir))
    assert proc.returncode == 2, proc.stderr
    assert "debootstrap not found and no apt-get to install it" in proc.stderr


def test_the_installed_recipe_is_the_one_the_checkout_builds(installed, docker_engine):
    """The checkout's sandboxes/build_image.sh has just built (or found) the image; the installed command
    runs the same steps on the same Dockerfile, so it finds it up to date and builds nothing."""
    proc = cli(installed, "sandbox", "build-image", path=os.environ["PATH"])
    assert proc.returncode == 0, proc.stderr
    assert f"{docker_engine} is up to date" in proc.stderr and "nothing to do" in proc.stderr
    assert str(installed / "react_eval" / "sandboxes" / "image") in subprocess.run(
        [sys.executable, "-c", "from react_eval.sandboxes.image import recipe_dir; print(recipe_dir())"],
        env={**os.environ, "PYTHONPATH": str(installed)}, cwd=installed.parent, capture_output=True,
        text=True).stdout
