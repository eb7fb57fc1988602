"""Shared pytest fixtures."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Callable

import pytest

from tests.support.scripted_server import ScriptedServer


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def scripted_server() -> Iterator[Callable[..., ScriptedServer]]:
    """Factory for started ``ScriptedServer``s, stopped at teardown.

    ``srv = scripted_server([answer("hi")])`` or ``scripted_server(policy, latency=0.01)``;
    takes the same arguments as ``ScriptedServer``.  At teardown a server whose
    script could not answer some request (policy raised, FIFO exhausted, unknown
    route) fails the test unless it was made with ``strict=False``.
    """
    servers: list[ScriptedServer] = []

    def factory(script: Any = None, **kwargs: Any) -> ScriptedServer:
        srv = ScriptedServer(script, **kwargs).start()
        servers.append(srv)
        return srv

    yield factory
    errors: list[BaseException] = []
    for srv in servers:
        try:
            srv.stop()
        except BaseException as e:  # stop them all before reporting
            errors.append(e)
    if errors:
        raise errors[0]


# ---- sandbox engines: Docker and bubblewrap ------------------------------------------
#
# Tests that need a real engine take ``docker_engine`` or ``bwrap_available``.
# When the engine cannot be made to work they are skipped with the reason, or
# fail loudly when REACT_EVAL_REQUIRE_SANDBOXES=1 (CI sets it, so a broken
# engine can never turn into a green run of skips).

import os as _os
import subprocess as _subprocess
import uuid as _uuid
from pathlib import Path as _Path

_REPO_ROOT = _Path(__file__).resolve().parent.parent


def _sandbox_unavailable(reason: str) -> None:
    if _os.environ.get("REACT_EVAL_REQUIRE_SANDBOXES") == "1":
        pytest.fail(f"{reason} (and REACT_EVAL_REQUIRE_SANDBOXES=1)", pytrace=False)
    pytest.skip(reason)


def _script(name: str, timeout: float) -> tuple[bool, str]:
    try:
        proc = _subprocess.run(["bash", str(_REPO_ROOT / "sandboxes" / name)], capture_output=True,
                               text=True, timeout=timeout)
    except (OSError, _subprocess.TimeoutExpired) as exc:
        return False, f"{name}: {exc}"
    tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-5:])
    return proc.returncode == 0, tail


def _docker_answers() -> bool:
    try:
        return _subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode == 0
    except (OSError, _subprocess.TimeoutExpired):
        return False


@pytest.fixture(scope="session")
def docker_engine() -> str:
    """A Docker engine that answers and an up-to-date sandbox image; returns the image name.

    Starts the engine with sandboxes/ensure_docker.sh when ``docker info`` fails,
    then runs sandboxes/build_image.sh (0.1 s when the image is up to date).
    """
    from react_eval.sandboxes.docker.config import DEFAULT_IMAGE

    if not _docker_answers():
        ok, out = _script("ensure_docker.sh", 900)
        if not ok or not _docker_answers():
            _sandbox_unavailable(f"no Docker engine: sandboxes/ensure_docker.sh failed: {out}")
    ok, out = _script("build_image.sh", 1800)
    if not ok:
        _sandbox_unavailable(f"cannot build {DEFAULT_IMAGE}: sandboxes/build_image.sh failed: {out}")
    return DEFAULT_IMAGE


@pytest.fixture(scope="session")
def bwrap_available() -> None:
    """bubblewrap installed and able to create namespaces (sandboxes/ensure_bwrap.sh)."""
    ok, out = _script("ensure_bwrap.sh", 600)
    if not ok:
        _sandbox_unavailable(f"bubblewrap cannot create a sandbox: {out}")


@pytest.fixture(scope="session")
def sandbox_run_id() -> str:
    """A run id unique to this pytest session, for the ``react-eval.run`` label of
    every container the tests create (so leftover checks ignore other processes)."""
    return f"pytest-{_uuid.uuid4().hex[:12]}"
