"""The one way a benchmark grades: in a fresh sandbox from the run's provider.

Every check (a test program, an EvalPlus check, a repository's test suite)
runs in a NEW sandbox made by the same provider, with the same settings, as
the rollout's: Docker gives a container, bwrap a bwrap jail, local a local
workdir. Only when a run has no sandbox at all (e.g. HumanEval with no
``sandbox:`` configured) does grading fall back to a plain local sandbox.

The benchmark names the environment its checks need (:class:`EnvSpec`); this
module makes it visible in the grading sandbox and says which interpreter to
call there:

* local / bwrap: the environment provisioned on the host
  (:func:`react_eval.grading.envs.provision`), shown read-only in the jail;
* Docker: the image's own interpreter when it satisfies the spec
  (``image_python``), else an image derived from the sandbox image with the
  environment added (:mod:`react_eval.grading.images`); a task that brings its
  own image (SWE-bench) brings its own environment too.
"""

from __future__ import annotations

import shlex
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import anyio

from react_eval.grading.envs import Env, EnvError, EnvSpec, provision
from react_eval.sandboxes.base import ExecResult, FileInfo, Sandbox, SandboxProvider
from react_eval.sandboxes.local import LocalSandboxConfig, LocalSandboxProvider
from react_eval.types import SandboxError, SandboxSpec, VerifyError

ROLE_LABEL = "react-eval.role"


@dataclass
class GradingSandbox:
    """A fresh sandbox to grade in, and the interpreter to call there."""

    sandbox: Sandbox
    #: path (or command name) of the Python that has the declared environment
    python: str
    #: the provider's name ("local", "docker", ...), recorded in the details
    provider: str
    #: "bwrap" or "none" for local sandboxes, "" otherwise
    isolation: str = ""

    # the Sandbox protocol, delegated: graders written against a plain Sandbox
    # take a GradingSandbox as it is
    @property
    def workdir(self) -> str:
        return self.sandbox.workdir

    async def exec(self, command: str, timeout: float) -> ExecResult:
        return await self.sandbox.exec(command, timeout)

    async def run(self, command: str, timeout: float, cwd: str | None = None) -> ExecResult:
        return await self.sandbox.run(command, timeout, cwd)

    async def read_file(self, path: str, max_bytes: int | None = None) -> bytes:
        return await self.sandbox.read_file(path, max_bytes)

    async def write_file(self, path: str, data: bytes, mode: int | None = None) -> None:
        await self.sandbox.write_file(path, data, mode)

    async def stat(self, path: str) -> FileInfo:
        return await self.sandbox.stat(path)

    def resolve(self, path: str) -> str:
        return self.sandbox.resolve(path)

    async def close(self) -> None:
        await self.sandbox.close()


def with_env(config: LocalSandboxConfig, env: Env) -> LocalSandboxConfig:
    """``config`` with ``env`` first on PATH and, under bwrap, shown read-only:
    the one way a local or bwrap sandbox (the agent's or a grader's) gets a
    declared environment. Returns ``config`` itself when it already has it."""
    binds = [p for p in env.host_paths() if p not in config.ro_binds] if config.isolation == "bwrap" else []
    bin_dir = str(env.path / "bin")
    prepend = [] if bin_dir in config.path_prepend else [bin_dir]
    if not binds and not prepend:
        return config
    return config.model_copy(update={"ro_binds": [*config.ro_binds, *binds],
                                     "path_prepend": [*prepend, *config.path_prepend]})


async def rollout_config(config: LocalSandboxConfig, needs: EnvSpec) -> LocalSandboxConfig:
    """The agent's sandbox settings for a benchmark that declares ``needs``: the
    same provisioned environment its graders use, so ``python``, ``python3`` and
    ``pytest`` in the agent's shell are the ones the tests run with. Raises
    :class:`EnvError` when it cannot be provisioned."""
    return with_env(config, await anyio.to_thread.run_sync(provision, needs))


async def _env(needs: EnvSpec) -> Env:
    try:
        return await anyio.to_thread.run_sync(provision, needs)
    except EnvError as exc:
        raise VerifyError(f"the grading environment {needs.name!r} is not available: {exc}") from exc


@asynccontextmanager
async def grading_sandbox(
    provider: SandboxProvider | None,
    spec: SandboxSpec | None,
    needs: EnvSpec | None,
    *,
    labels: dict[str, str],
    python: str = "python3",
    probe: bool = False,
) -> AsyncIterator[GradingSandbox]:
    """A fresh grading sandbox from ``provider`` (closed on exit).

    ``needs`` is the environment the checks need (None: ``python`` as it is,
    e.g. a task image's own). With ``probe``, the interpreter is asked to import
    the spec's modules first, so a missing test runner is a verify error with
    its reason instead of a failed test run."""
    labels = {**labels, ROLE_LABEL: "grader"}
    own = provider is None
    if provider is None:
        provider = LocalSandboxProvider()
    isolation = ""
    try:
        if isinstance(provider, LocalSandboxProvider):
            isolation = provider.config.isolation
            if needs is not None:
                env = await _env(needs)
                python = env.python
                config = with_env(provider.config, env)
                if config is not provider.config:
                    provider, own = LocalSandboxProvider(config, limits=provider.limits,
                                                         setup_timeout=provider.setup_timeout), True
        elif provider.name == "docker" and needs is not None and (spec is None or spec.image is None):
            if needs.image_python:
                python = needs.image_python
            else:
                from react_eval.grading.images import image_with_env

                env = await _env(needs)
                image = await image_with_env(provider, env)
                spec = (spec or SandboxSpec()).model_copy(update={"image": image})
                python = env.python
        try:
            sandbox = await provider.create(spec, labels=labels)
        except SandboxError:
            raise
        except Exception as exc:
            raise SandboxError(f"could not create the grading sandbox: {type(exc).__name__}: {exc}") from exc
        try:
            graded = GradingSandbox(sandbox, python, provider.name, isolation)
            if probe and needs is not None:
                await check_runner(graded, needs)
            yield graded
        finally:
            with anyio.CancelScope(shield=True):
                await sandbox.close()
    finally:
        if own:
            with anyio.CancelScope(shield=True):
                await provider.aclose()


async def check_runner(graded: GradingSandbox, needs: EnvSpec) -> None:
    """Raise VerifyError (with the interpreter's own words) unless ``graded.python``
    runs and imports every module ``needs`` lists."""
    code = "; ".join(f"import {m}" for m in needs.imports) or "pass"
    r = await graded.sandbox.run(f"{shlex.quote(graded.python)} -I -c {shlex.quote(code)}", timeout=120)
    if r.timed_out or r.exit_code != 0:
        why = "timed out" if r.timed_out else f"exit {r.exit_code}"
        raise VerifyError(
            f"the grading interpreter {graded.python!r} in the {graded.provider} sandbox cannot run "
            f"`{code}` ({why}): {r.output.strip()[-800:]}"
        )
