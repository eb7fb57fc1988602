"""Environment images of Harbor tasks: built once per content, found by label.

The tag is ``react-eval-harbor/<task>:<hash>``, where the hash covers every
file of the task's ``environment/`` directory (paths, contents, modes) and the
ids of the local images its ``FROM`` lines name, so an edited Dockerfile or a
rebuilt base image gives a new tag and an unchanged task reuses its image.
Images carry the label ``react-eval.kind=harbor-env`` (plus the task name and
hash) so :func:`find_images` / :func:`prune_images` can list and remove them.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from react_eval.sandboxes.docker.client import api_client, docker_errors, reaching
from react_eval.sandboxes.docker.config import AGENT_USER_LABEL

KIND_LABEL = "react-eval.kind"
KIND = "harbor-env"
TASK_LABEL = "react-eval.harbor.task"
HASH_LABEL = "react-eval.harbor.hash"
REPOSITORY = "react-eval-harbor"

_FROM = re.compile(r"^\s*FROM\s+(?:--\S+\s+)*(\S+)", re.IGNORECASE | re.MULTILINE)


class ImageBuildError(RuntimeError):
    """A task's environment image could not be built (the log tail says why)."""


@dataclass
class BuiltImage:
    tag: str
    #: the image's WORKDIR ("" when it sets none)
    workdir: str
    built: bool
    seconds: float


def image_tag(task_name: str, digest: str) -> str:
    name = re.sub(r"[^a-z0-9._-]+", "-", task_name.lower()).strip("-._") or "task"
    return f"{REPOSITORY}/{name[:100]}:{digest}"


def content_hash(env_dir: Path, base_ids: dict[str, str]) -> str:
    """Digest of the build context and of the base images it starts from."""
    h = hashlib.sha256()
    for path in sorted(p for p in env_dir.rglob("*") if p.is_file()):
        rel = path.relative_to(env_dir).as_posix()
        h.update(f"{rel}\0{path.stat().st_mode & 0o777:o}\0".encode())
        h.update(hashlib.sha256(path.read_bytes()).digest())
    for name in sorted(base_ids):
        h.update(f"FROM {name}={base_ids[name]}\0".encode())
    return h.hexdigest()[:16]


def base_images(dockerfile: Path) -> list[str]:
    return _FROM.findall(dockerfile.read_text(errors="replace"))


class ImageBuilder:
    """Builds (or finds) task images on one Docker engine; blocking calls (run in a thread)."""

    def __init__(self, docker_host: str | None = None):
        self.docker_host = docker_host
        self._api: Any = None

    @property
    def api(self) -> Any:
        if self._api is None:
            with reaching(self.docker_host):
                self._api = api_client(self.docker_host, timeout=600)
        return self._api

    def close(self) -> None:
        if self._api is not None:
            self._api.close()
            self._api = None

    def _image_id(self, name: str) -> str | None:
        try:
            return str(self.api.inspect_image(name)["Id"])
        except docker_errors().ImageNotFound:
            return None

    def ensure(self, task_name: str, env_dir: Path, *, timeout: float) -> BuiltImage:
        """The task's image, built from ``env_dir`` unless one of the same content exists."""
        started = time.monotonic()
        dockerfile = env_dir / "Dockerfile"
        bases = {name: self._image_id(name) or "not-local" for name in base_images(dockerfile)}
        tag = image_tag(task_name, content_hash(env_dir, bases))
        built = False
        if self._image_id(tag) is None:
            self._build(task_name, env_dir, tag, timeout, bases)
            built = True
        info = self.api.inspect_image(tag)
        workdir = str((info.get("Config") or {}).get("WorkingDir") or "")
        return BuiltImage(tag, workdir, built, time.monotonic() - started)

    def inspect_workdir(self, image: str) -> str | None:
        """The WORKDIR of an existing image, None when the image is not on the engine."""
        try:
            info = self.api.inspect_image(image)
        except docker_errors().ImageNotFound:
            return None
        return str((info.get("Config") or {}).get("WorkingDir") or "")

    def _build(self, task_name: str, env_dir: Path, tag: str, timeout: float, bases: dict[str, str]) -> None:
        labels = {KIND_LABEL: KIND, TASK_LABEL: task_name, HASH_LABEL: tag.rpartition(":")[2],
                  # Harbor's convention: the agent and the tests are root in the task's container
                  # (an image FROM react-eval-sandbox would otherwise run them as its `sandbox` user)
                  AGENT_USER_LABEL: ""}
        deadline = time.monotonic() + timeout
        log: list[str] = []
        error: str | None = None
        try:
            stream = self.api.build(path=str(env_dir), tag=tag, labels=labels, rm=True, forcerm=True,
                                    pull=False, decode=True, timeout=max(int(timeout), 1))
            for chunk in stream:
                if "stream" in chunk:
                    log.append(str(chunk["stream"]))
                if "error" in chunk:
                    error = str(chunk["error"]).strip()
                if time.monotonic() > deadline:
                    error = f"the build took longer than build_timeout_sec = {timeout:g}s"
                    break
        except docker_errors().APIError as exc:
            error = str(exc.explanation or exc)
        except Exception as exc:  # e.g. the engine hung up: say so, with the log so far
            error = f"{type(exc).__name__}: {exc}"
        if error is None and self._image_id(tag) is None:
            error = "the build finished without producing the image"
        if error is not None:
            missing = [name for name, ident in bases.items() if ident == "not-local"]
            hint = (f" (base image(s) {', '.join(missing)} are not on this engine and no registry may be "
                    "reachable: build FROM a local image such as react-eval-sandbox:latest)") if missing else ""
            tail = "".join(log)[-3000:]
            raise ImageBuildError(f"building the environment of task {task_name!r} failed: {error}{hint}"
                                  + (f"\n--- build log (tail) ---\n{tail}" if tail.strip() else ""))


def find_images(docker_host: str | None = None) -> list[dict[str, Any]]:
    """Every Harbor task image on the engine (tags, id, task, size)."""
    api = api_client(docker_host)
    try:
        images = api.images(filters={"label": f"{KIND_LABEL}={KIND}"})
    finally:
        api.close()
    return [{"id": img["Id"], "tags": img.get("RepoTags") or [], "task": (img.get("Labels") or {}).get(TASK_LABEL),
             "size": img.get("Size", 0)} for img in images]


def prune_images(docker_host: str | None = None, *, dry_run: bool = False) -> list[dict[str, Any]]:
    """Remove every Harbor task image (they are rebuilt on demand); returns what was found."""
    found = find_images(docker_host)
    if dry_run:
        return found
    api = api_client(docker_host)
    try:
        for image in found:
            try:
                api.remove_image(image["id"], force=False)
                image["removed"] = True
            except Exception as exc:  # noqa: BLE001 - e.g. in use by a running container
                image["removed"] = False
                image["error"] = str(exc)
    finally:
        api.close()
    return found
