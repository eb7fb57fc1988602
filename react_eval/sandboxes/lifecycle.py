"""Creating a sandbox: the steps every provider takes, in one order.

A provider first makes the workspace its own way (a temp directory and a
cgroup; a container), then hands the sandbox to :func:`prepare`, which places
the task's repository and files, starts the persistent shell and runs the
task's setup command. Whatever fails on the way, the half-made sandbox is
closed (its processes killed, its workspace removed) before the error goes
on, even when the creating task is cancelled; an ``OSError`` becomes a
``SandboxError`` naming the workspace, and every other error goes on as is.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Protocol, TypeVar

import anyio

from react_eval.sandboxes.base import ExecResult, run_setup
from react_eval.types import SandboxError, SandboxSpec


class Closeable(Protocol):
    async def close(self) -> None: ...


class Preparable(Closeable, Protocol):
    """What :func:`prepare` needs from a freshly made sandbox."""

    async def place(self, spec: SandboxSpec) -> None:
        """Copy ``spec.repo_dir`` and write ``spec.files`` into the workdir."""
        ...

    async def start(self) -> None:
        """Start the persistent shell (raises SandboxError if it does not answer)."""
        ...

    async def run(self, command: str, timeout: float, cwd: str | None = None) -> ExecResult: ...


C = TypeVar("C", bound=Closeable)


@asynccontextmanager
async def closed_on_failure(sandbox: C, what: str) -> AsyncIterator[C]:
    """Close ``sandbox`` if the block fails (shielded from cancellation);
    ``what`` names the workspace in the error an ``OSError`` becomes."""
    try:
        yield sandbox
    except BaseException as exc:
        with anyio.CancelScope(shield=True):
            try:
                await sandbox.close()
            except Exception:
                pass  # the reason the creation failed matters more
        if isinstance(exc, OSError):
            raise SandboxError(f"cannot prepare {what}: {exc}") from exc
        raise


def check_spec(spec: SandboxSpec) -> None:
    """Refuse a spec whose host-side inputs are missing, before any work."""
    if spec.repo_dir and not os.path.isdir(spec.repo_dir):
        raise SandboxError(f"repo_dir {spec.repo_dir!r} is not a directory")


async def prepare(sandbox: Preparable, spec: SandboxSpec, *, setup_timeout: float, what: str) -> None:
    """Place the task, start the shell, run setup; close the sandbox on failure."""
    async with closed_on_failure(sandbox, what):
        check_spec(spec)
        await sandbox.place(spec)
        await sandbox.start()
        if spec.setup:
            await run_setup(sandbox, spec.setup, setup_timeout)
