"""Docker images that carry a grading environment.

When the sandbox image lacks what a benchmark's checks need (e.g. evalplus and
numpy for the EvalPlus checker), the provisioned environment is copied into an
image derived from it, at the same absolute path, and the spec's imports are
checked inside during the build. The build needs no network (``--network
none``): the environment was built on the host from a system Python of the
same distribution as the image (Debian bookworm for the default image), so its
interpreter link resolves inside. An image is built once per (environment,
base image id) and found again by its tag; it is never pushed anywhere.
"""

from __future__ import annotations

import io
import json
import tarfile
from typing import Any

import anyio

from react_eval.grading.envs import Env
from react_eval.sandboxes.docker.client import BUILD_HINT, docker_errors
from react_eval.types import VerifyError

IMAGE_REPO = "react-eval-grader"

_locks: dict[str, anyio.Lock] = {}


def dockerfile(base: str, env: Env) -> str:
    imports = "; ".join(f"import {m}" for m in env.spec.imports) or "pass"
    return (
        f"FROM {base}\n"
        f"COPY env {env.path}\n"
        f"RUN {env.path}/bin/python -I -c {json.dumps(imports)}\n"
        f'LABEL react-eval.grading-env="{env.path.name}"\n'
    )


def _context(base: str, env: Env) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        data = dockerfile(base, env).encode()
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
        tf.add(str(env.path), arcname="env", recursive=True)
    buf.seek(0)
    return buf


async def image_with_env(provider: Any, env: Env) -> str:
    """The tag of ``provider``'s sandbox image plus ``env``, built where missing on
    each engine the provider places containers on (a Docker provider with several
    ``hosts`` may put the grading container on any of them)."""
    await provider.connect()
    engines = getattr(provider, "engines", None)
    apis = [e.api for e in engines if e.up] if engines else [provider.api]
    tags = {await _ensure(api, provider.config.image, env) for api in apis}
    if len(tags) > 1:
        raise VerifyError(f"the sandbox image {provider.config.image!r} differs between the Docker engines "
                          f"({', '.join(sorted(tags))}): give every engine the same image")
    return tags.pop()


async def _ensure(api: Any, base: str, env: Env) -> str:
    errors = docker_errors()

    def base_id() -> str:
        return api.inspect_image(base)["Id"].split(":")[-1][:12]

    try:
        base_ident = await anyio.to_thread.run_sync(base_id)
    except errors.ImageNotFound as exc:
        raise VerifyError(f"the sandbox image {base!r} does not exist (build it: {BUILD_HINT})") from exc
    tag = f"{IMAGE_REPO}:{env.path.name}-{base_ident}"
    lock = _locks.setdefault(f"{api.base_url} {tag}", anyio.Lock())
    async with lock:
        def exists() -> bool:
            try:
                api.inspect_image(tag)
                return True
            except errors.ImageNotFound:
                return False

        if await anyio.to_thread.run_sync(exists):
            return tag

        def build() -> None:
            log: list[str] = []
            stream = api.build(fileobj=_context(base, env), custom_context=True, tag=tag, rm=True,
                               forcerm=True, network_mode="none", decode=True, pull=False)
            for chunk in stream:
                if "error" in chunk:
                    raise VerifyError(f"building {tag} from {base} failed: {chunk['error'].strip()}; "
                                      f"{''.join(log)[-1500:]}")
                log.append(str(chunk.get("stream", "")))

        await anyio.to_thread.run_sync(build)
    return tag
