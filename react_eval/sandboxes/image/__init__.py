"""The sandbox image recipe, shipped in the package so a pip install can build the image offline.

``build_image.sh`` (debootstrap + ``docker import`` of a Debian base, then the ``Dockerfile`` beside it with
``--network none``) is the one source of truth; ``react-eval sandbox build-image`` and the checkout's
``sandboxes/build_image.sh`` both run it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from importlib import resources
from pathlib import Path

#: what an "image not found" error tells a user to run
BUILD_COMMAND = "react-eval sandbox build-image"


class ImageBuildRefused(Exception):
    """The build cannot start here (no docker client, no way to get debootstrap); said before anything runs."""


def recipe_dir() -> Path:
    """The directory holding build_image.sh and the Dockerfile (package data, a real directory on disk)."""
    return Path(str(resources.files(__name__)))


def build_script() -> Path:
    script = recipe_dir() / "build_image.sh"
    if not (script.is_file() and (recipe_dir() / "Dockerfile").is_file()):
        raise ImageBuildRefused(f"the image recipe is missing from this install ({recipe_dir()}): "
                                "reinstall react-eval")
    return script


def preflight(base: str | None, path: str | None = None) -> None:
    """Refuse in words when a tool the script needs cannot be had (the script checks the engine itself)."""
    missing = [tool for tool in ("bash", "docker") if shutil.which(tool, path=path) is None]
    if missing:
        raise ImageBuildRefused(
            f"{' and '.join(missing)} not found on PATH: building the sandbox image needs a Docker engine "
            "(Debian: apt-get install docker.io, then start dockerd)")
    if base is None and shutil.which("debootstrap", path=path) is None and shutil.which("apt-get", path=path) is None:
        raise ImageBuildRefused(
            "debootstrap not found and no apt-get to install it: the offline build bootstraps a Debian base "
            "with debootstrap; install it, or set BASE=<an image with python3> where a registry is reachable")


def build_image(args: list[str], env: dict[str, str] | None = None) -> int:
    """Run the packaged build script; its progress goes to stderr as it happens. Returns its exit code."""
    script = build_script()
    environ = dict(os.environ if env is None else env)
    preflight(environ.get("BASE") or None, environ.get("PATH"))
    return subprocess.call(["bash", str(script), *args], env=environ)
