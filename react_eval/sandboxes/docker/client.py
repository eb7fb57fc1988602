"""Talking to one Docker engine: the SDK client, the engine's error answers, and
the one place where "the engine does not answer" becomes an infrastructure error.

The docker SDK is imported inside these functions, so that loading a config,
listing plugins or a whole run on a local (unix-socket) engine never pays for it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Callable

from react_eval.sandboxes.docker.config import DEFAULT_IMAGE, DockerHost
from react_eval.sandboxes.image import BUILD_COMMAND
from react_eval.types import SandboxError

BUILD_HINT = BUILD_COMMAND
START_HINT = "`bash sandboxes/ensure_docker.sh` (or `sudo systemctl start docker`)"


class EngineError(Exception):
    """The engine answered a request with an error (status >= 400), on either
    path (the event-loop one of :mod:`.local_api`, or the SDK's)."""

    def __init__(self, status: int, explanation: str):
        super().__init__(f"{status}: {explanation}")
        self.status = status
        self.explanation = explanation


class NotFound(EngineError):
    """404: no such container, exec, path or image."""


class ImageNotFound(NotFound):
    """404 naming a missing image."""


def engine_error(status: int, message: str) -> EngineError:
    """The error class of an answer with ``status`` and ``message``."""
    message = message.strip()
    if status == 404:
        return (ImageNotFound if "no such image" in message.lower() else NotFound)(status, message)
    return EngineError(status, message)


def from_sdk(exc: Any) -> EngineError:
    """The :class:`EngineError` of the SDK's ``APIError`` ``exc``."""
    status = getattr(getattr(exc, "response", None), "status_code", None) or 500
    return engine_error(status, str(getattr(exc, "explanation", None) or exc))


def docker_errors() -> Any:
    import docker.errors

    return docker.errors


def is_connection_error(exc: BaseException) -> bool:
    """The engine could not be reached (as opposed to an answer saying no)."""
    import requests

    if isinstance(exc, requests.exceptions.ConnectionError):
        return True
    errors = docker_errors()
    return isinstance(exc, errors.DockerException) and not isinstance(exc, errors.APIError)


def default_host() -> str:
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def unreachable_error(host: str | None, exc: BaseException) -> SandboxError:
    return SandboxError(
        f"the Docker daemon at {host or default_host()} is unreachable ({type(exc).__name__}: {exc}); "
        f"start it with {START_HINT}, or point the sandbox's docker_host / DOCKER_HOST at a running engine"
    )


@contextmanager
def reaching(host: str | None, on_unreachable: Callable[[SandboxError], None] | None = None) -> Iterator[None]:
    """Turns a failure to reach the engine at ``host`` into :func:`unreachable_error`,
    told to ``on_unreachable`` first (every other exception passes unchanged).
    The one place where that mapping is made."""
    try:
        yield
    except SandboxError:
        raise
    except Exception as exc:
        if is_connection_error(exc):
            error = unreachable_error(host, exc)
            if on_unreachable is not None:
                on_unreachable(error)
            raise error from exc
        raise


def image_error(image: str, exc: BaseException) -> SandboxError:
    if image == DEFAULT_IMAGE:
        how = f"build it with `{BUILD_HINT}` (works offline; fast when it is up to date)"
    else:
        how = (
            f"build or pull it first (`docker pull {image}`), or use the default image "
            f"{DEFAULT_IMAGE} built by `{BUILD_HINT}`"
        )
    return SandboxError(f"docker image {image!r} not found: {how}")


def _tls_config(host: DockerHost) -> Any:
    if host.tls is None:
        return False
    from docker.tls import TLSConfig

    tls = host.tls
    client_cert = (tls.cert, tls.key) if tls.cert and tls.key else None
    return TLSConfig(client_cert=client_cert, ca_cert=tls.ca, verify=tls.verify)


def api_client(host: str | DockerHost | None, *, timeout: int = 60, pool: int = 10) -> Any:
    """A low-level SDK client for ``host`` (None or "": the environment's engine,
    DOCKER_HOST and DOCKER_TLS_VERIFY/DOCKER_CERT_PATH included). Raises the SDK's
    exceptions; wrap the call in :func:`reaching`."""
    import docker

    if isinstance(host, str) or host is None:
        host = DockerHost.model_construct(url=host or "", tls=None, max_containers=None)
    if host.url:
        api = docker.APIClient(base_url=host.url, version="auto", timeout=timeout, max_pool_size=pool,
                               tls=_tls_config(host))
    else:
        from docker.utils import kwargs_from_env

        api = docker.APIClient(version="auto", timeout=timeout, max_pool_size=pool, **kwargs_from_env())
    if api.base_url.startswith("http+docker://"):
        # a local socket: no proxy or .netrc applies, and requests would look them up
        # in the environment on every call (a fifth of its CPU per call)
        api.trust_env = False
    return api
