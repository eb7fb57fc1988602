"""Executors decide where rollouts run and how many at once.

An executor gets the specs, a :class:`RunnerFactory` and ``on_done``. It builds
a runner where the rollouts run, calls ``runner.run(spec)`` for each spec and
hands every record to ``on_done`` in this process, which writes it. The local
executor runs rollouts as tasks on this event loop;
:class:`~react_eval.engine.processes.ProcessExecutor` runs them in worker
processes, and an executor for Ray or a batch scheduler would do the same on
other machines: the factory is picklable for that reason.
"""

from __future__ import annotations

import gc
from contextlib import contextmanager
from typing import Awaitable, Callable, Iterator, Protocol

import anyio

from react_eval.engine.rollout import RolloutRecord, RolloutRunner, RolloutSpec, harness_failure_record
from react_eval.types import ErrorKind

OnDone = Callable[[RolloutRecord], Awaitable[None] | None]


class FatalRunError(RuntimeError):
    """A failure that every later rollout would repeat (e.g. bad credentials)."""


class RunnerFactory(Protocol):
    """Builds the runner of a benchmark where its rollouts run.

    ``share`` is (index, count) when the rollouts are split over ``count``
    runners, so that limits meant for the whole run (requests in flight to a
    service, live containers) can be divided among them. Implementations must
    pickle, so that another process or machine can build its own runner."""

    async def open(self, share: tuple[int, int] = (0, 1)) -> RolloutRunner: ...

    async def close(self, runner: RolloutRunner) -> None: ...


class Executor(Protocol):
    async def run_all(self, specs: list[RolloutSpec], runners: RunnerFactory, on_done: OnDone) -> None: ...


async def run_one(runner: RolloutRunner, spec: RolloutSpec) -> RolloutRecord:
    """``runner.run(spec)``, which returns a record whatever the rollout did; should
    the runner itself raise, that rollout gets a ``harness_error`` record and the
    run goes on (only :func:`is_fatal` records stop a run)."""
    try:
        return await runner.run(spec)
    except Exception as exc:  # noqa: BLE001 - the rollout boundary, second line
        return harness_failure_record(spec, exc, getattr(getattr(runner.model, "config", None), "model", None))


def is_fatal(record: RolloutRecord) -> bool:
    """A rejected key: every later rollout would be rejected too."""
    return record.result.error_kind == ErrorKind.auth_error


#: gen-0 threshold while rollouts run. Each turn allocates thousands of short-lived
#: containers (request and reply dicts, events, steps); at Python's default of 700
#: the young collection runs every few turns and, with the promotions it causes, was
#: a fifth of the client's CPU at 1,000 rollouts in flight. Cyclic garbage waits a
#: little longer (a few MB at most); reference counting frees everything else at once.
RUN_GC_GEN0 = 20_000


@contextmanager
def frozen_heap() -> Iterator[None]:
    """Leave everything that exists before the rollouts (modules, the SDK's
    hundreds of model classes, the config) out of the garbage collector's full
    passes while they run: with many rollouts in flight those passes otherwise
    re-scan that whole heap, over and over. (Garbage from before is collected
    after the run, when the heap is unfrozen.) Young collections run less often
    too (``RUN_GC_GEN0``); the thresholds are put back afterwards."""
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(max(thresholds[0], RUN_GC_GEN0), *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


class LocalExecutor:
    """Runs up to ``max_concurrent`` rollouts at once on this event loop."""

    def __init__(self, max_concurrent: int):
        self.max_concurrent = max_concurrent

    async def run_all(self, specs: list[RolloutSpec], runners: RunnerFactory, on_done: OnDone) -> None:
        if not specs:
            return
        runner = await runners.open()
        try:
            await self._run(specs, runner, on_done)
        finally:
            with anyio.CancelScope(shield=True):
                await runners.close(runner)

    async def _run(self, specs: list[RolloutSpec], runner: RolloutRunner, on_done: OnDone) -> None:
        """``max_concurrent`` workers take the specs in order: one task per slot,
        not one per spec waiting on a limiter (thousands of parked tasks, each
        woken through the limiter's queue, cost CPU and memory for nothing)."""
        fatal: list[str] = []
        queue = iter(specs)

        async def worker(tg: anyio.abc.TaskGroup) -> None:
            for spec in queue:
                if fatal:
                    return
                record = await run_one(runner, spec)
                result = on_done(record)
                if result is not None:
                    await result
                if is_fatal(record) and not fatal:
                    fatal.append(record.result.error or "authentication failed")
                    tg.cancel_scope.cancel()

        with frozen_heap():
            async with anyio.create_task_group() as tg:
                for _ in range(min(self.max_concurrent, len(specs))):
                    tg.start_soon(worker, tg)
        if fatal:
            raise FatalRunError(fatal[0])
