"""A warm pool of Docker sandboxes: containers started ahead of need.

Starting a Docker sandbox (create, start, the control shell and bash answering)
takes about half a second, more when many start at once; a rollout that waits
for it before its first tool call loses that time every time. With
``warm_pool: N`` in the Docker sandbox config, :class:`WarmDockerProvider`
keeps up to N sandboxes started and idle, made through the Docker provider's
own ``create`` (the same container options and limits), and hands one to each
rollout that asks: a rollout's first command then waits only for the shell.

* Each warm sandbox serves exactly one rollout and is destroyed when that
  rollout closes it (nothing of one rollout can leak into the next); the pool
  refills in the background as sandboxes are taken.
* A rollout whose task needs another image gets a cold sandbox; one that
  needs files, a repository or a setup command gets a warm one with those
  placed and run on it (as a cold one would, in the same order).
* The sandbox's ``timeout`` budget starts when a rollout takes it, not when it
  was warmed.
* Warm sandboxes come on top of ``concurrency`` (up to ``concurrency +
  warm_pool`` containers live at once); they carry the run's label and a
  ``react-eval.warm`` label, so ``react-eval sandbox prune`` and the provider's
  exit handlers remove them like any other. :meth:`aclose` stops refilling and
  removes the idle ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from typing import Any

from react_eval.sandboxes.base import SandboxLimits, run_setup
from react_eval.sandboxes.docker.config import DockerSandboxConfig
from react_eval.sandboxes.docker.provider import DockerSandboxProvider
from react_eval.sandboxes.docker.prune import ROLLOUT_LABEL
from react_eval.sandboxes.docker.sandbox import DockerSandbox
from react_eval.types import SandboxError, SandboxSpec

WARM_LABEL = "react-eval.warm"
#: containers the pool starts at the same time (dockerd slows down for everyone past a few)
FILL_PARALLEL = 4
#: pause after a failed warm start before the next attempt
RETRY_SECONDS = 2.0


class WarmDockerProvider:
    """A :class:`~react_eval.sandboxes.base.SandboxProvider` that serves rollouts from a warm pool."""

    name = "docker"

    def __init__(self, config: DockerSandboxConfig, *, run_id: str, limits: SandboxLimits | None = None,
                 setup_timeout: float = 900.0, **options: Any):
        self.config = config
        self.size = config.warm_pool
        inner_config = config.model_copy(update={"concurrency": config.concurrency + config.warm_pool})
        self.inner = DockerSandboxProvider(inner_config, run_id=run_id, limits=limits, setup_timeout=setup_timeout,
                                           **options)
        self.setup_timeout = setup_timeout
        self._ready: list[DockerSandbox] = []
        self._starting = 0
        self._wake: asyncio.Event | None = None
        self._changed: asyncio.Event | None = None
        self._filler: asyncio.Task | None = None
        self._closed = False
        #: rollouts served warm / cold, and the last warm-start failure (for reports)
        self.hits = 0
        self.misses = 0
        self.last_error: str | None = None

    @property
    def warm(self) -> int:
        return len(self._ready)

    async def start_filling(self) -> None:
        """Start warming sandboxes now (``create`` does it too, at the first call)."""
        if self._filler is None and not self._closed and self.size > 0:
            await self.inner.connect()
            self._wake, self._changed = asyncio.Event(), asyncio.Event()
            self._filler = asyncio.get_running_loop().create_task(self._fill(), name="docker-warm-pool")

    async def wait_warm(self, count: int, timeout: float) -> None:
        """Wait until at least ``count`` sandboxes are warm (benchmarks, tests)."""
        await self.start_filling()
        assert self._changed is not None
        deadline = time.monotonic() + timeout
        while len(self._ready) < min(count, self.size):
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{len(self._ready)} of {count} warm sandboxes after {timeout:g}s"
                                   + (f"; last error: {self.last_error}" if self.last_error else ""))
            self._changed.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), left)

    async def _fill(self) -> None:
        assert self._wake is not None
        running: set[asyncio.Task] = set()
        try:
            while not self._closed:
                while len(self._ready) + self._starting < self.size and self._starting < FILL_PARALLEL:
                    self._starting += 1
                    task = asyncio.get_running_loop().create_task(self._warm_one())
                    running.add(task)
                    task.add_done_callback(running.discard)
                self._wake.clear()
                await self._wake.wait()
        finally:
            for task in running:
                task.cancel()
            if running:
                await asyncio.gather(*running, return_exceptions=True)

    async def _warm_one(self) -> None:
        labels = {ROLLOUT_LABEL: "warm-" + secrets.token_hex(6), WARM_LABEL: "1"}
        failed = False
        try:
            box = await self.inner.create(None, labels=labels)
        except SandboxError as exc:
            self.last_error = str(exc)
            failed = True
        else:
            if self._closed:
                await box.close()
            else:
                self._ready.append(box)
        finally:
            self._starting -= 1
            if self._changed is not None:
                self._changed.set()
        if failed:
            await asyncio.sleep(RETRY_SECONDS)  # a broken engine or image: do not spin
        if self._wake is not None:
            self._wake.set()

    def _take(self) -> DockerSandbox | None:
        while self._ready:
            box = self._ready.pop(0)  # the oldest first
            assert self._wake is not None
            self._wake.set()
            if not box._closed and box._dead is None:
                return box
        return None

    async def create(self, spec: SandboxSpec | None, *, labels: dict[str, str]) -> DockerSandbox:
        """A warm sandbox prepared for ``spec`` if one is ready, else a cold one."""
        spec = spec or SandboxSpec()
        await self.start_filling()
        box = None
        if spec.image in (None, self.config.image):
            box = self._take()
        if box is None:
            self.misses += 1
            return await self.inner.create(spec, labels=labels)
        self.hits += 1
        if self.config.timeout:  # the budget runs from the rollout's start
            box._deadline = time.monotonic() + self.config.timeout
        box.info.extra["warm"] = "true"
        try:
            await box.place(spec)
            if spec.setup:
                await run_setup(box, spec.setup, self.setup_timeout)
        except BaseException:
            await box.close()
            raise
        return box

    async def aclose(self) -> None:
        """Stop refilling, remove the warm sandboxes, then everything the provider made."""
        self._closed = True
        if self._filler is not None:
            self._filler.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._filler
            self._filler = None
        ready, self._ready = self._ready, []
        for box in ready:
            with contextlib.suppress(Exception):
                await box.close()
        await self.inner.aclose()
