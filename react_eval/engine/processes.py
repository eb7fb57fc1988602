"""Rollouts in several worker processes, one event loop each.

One Python process spends its one core on HTTP, JSON and bookkeeping; with
hundreds of rollouts in flight against a fast server that core is the limit.
:class:`ProcessExecutor` starts ``workers`` processes (``spawn``: nothing of
this process's threads or event loop is inherited). Each unpickles the
:class:`~react_eval.engine.executor.RunnerFactory`, builds its own runner
(model client, sandbox provider, tool sources) with its share of the run's
limits, and runs the specs it is sent. This process deals the specs out one
at a time as a worker's slots free up (once every worker is up), so long and
short rollouts balance, and receives every finished record: results are still written by one process.

A rollout that raises in a worker ends as a ``harness_error`` row like any
other (:func:`~react_eval.engine.executor.run_one`). A worker that dies takes only its in-flight rollouts with it; the others go on
with the queue, and the run then fails with a message naming the rollouts left
without a row (``--resume`` re-runs them).
"""

from __future__ import annotations

import multiprocessing
import pickle
import queue
import threading
import time
import traceback
from collections import deque
from multiprocessing.connection import Connection
from typing import Any

import anyio
import anyio.from_thread
import anyio.lowlevel

from react_eval.engine.executor import FatalRunError, LocalExecutor, OnDone, RunnerFactory, frozen_heap, is_fatal, run_one
from react_eval.engine.rollout import RolloutSpec
from react_eval.sandboxes.cleanup import install_signal_handlers


class WorkerError(RuntimeError):
    """A worker process failed to start, crashed, or raised from a rollout."""


class _Channel:
    """Messages over a pipe without blocking the event loop: a daemon thread
    receives (and unpickles) into a memory stream, another sends from a queue.
    ``None`` arrives when the other side has gone."""

    def __init__(self, conn: Connection, name: str):
        self.conn = conn
        self._inbox_send, self.inbox = anyio.create_memory_object_stream[Any](float("inf"))
        self._outbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        token = anyio.lowlevel.current_token()
        self._reader = threading.Thread(target=self._read, args=(token,), name=f"{name}-recv", daemon=True)
        self._writer = threading.Thread(target=self._write, name=f"{name}-send", daemon=True)
        self._reader.start()
        self._writer.start()

    def _read(self, token: Any) -> None:
        while True:
            try:
                msg = self.conn.recv()
            except (EOFError, OSError):
                msg = None
            try:
                anyio.from_thread.run_sync(self._inbox_send.send_nowait, msg, token=token)
            except Exception:  # the event loop is gone
                return
            if msg is None:
                return

    def _write(self) -> None:
        while True:
            msg = self._outbox.get()
            if msg is _CLOSE:
                return
            try:
                self.conn.send(msg)
            except (OSError, ValueError):  # the other side has gone: the reader reports it
                return

    def send(self, msg: Any) -> None:
        self._outbox.put(msg)

    def close(self, timeout: float = 30.0) -> None:
        """Send what is queued, then stop the sender."""
        self._outbox.put(_CLOSE)
        self._writer.join(timeout)

    def close_inbox(self) -> None:
        """Drop the receiving stream (on the event loop, once nothing more is read)."""
        self._inbox_send.close()
        self.inbox.close()


_CLOSE = object()


# ---- worker side -------------------------------------------------------------------


def _worker_main(conn: Connection, payload: bytes, share: tuple[int, int]) -> None:
    install_signal_handlers()  # the parent's SIGTERM removes this worker's sandboxes
    try:
        anyio.run(_serve, conn, payload, share)
    except KeyboardInterrupt:  # Ctrl-C reaches the whole process group; the parent reports it
        pass
    finally:
        conn.close()


async def _serve(conn: Connection, payload: bytes, share: tuple[int, int]) -> None:
    channel = _Channel(conn, f"react-eval-worker-{share[0]}")
    try:
        factory: RunnerFactory = pickle.loads(payload)
        runner = await factory.open(share)
    except BaseException:
        channel.send(("failed", traceback.format_exc()))
        channel.close()
        return
    channel.send(("ready", None))

    async def one(spec: RolloutSpec) -> None:
        channel.send(("done", await run_one(runner, spec)))

    try:
        with frozen_heap():
            async with anyio.create_task_group() as tg:
                async for msg in channel.inbox:
                    if msg is None or msg[0] == "stop":
                        if msg is None or msg[1]:  # the parent is gone, or aborts the run
                            tg.cancel_scope.cancel()
                        break
                    tg.start_soon(one, msg[1])
    finally:
        with anyio.CancelScope(shield=True):
            await factory.close(runner)
        channel.close()
        channel.close_inbox()


# ---- parent side -------------------------------------------------------------------


class _Worker:
    def __init__(self, index: int, count: int, capacity: int, payload: bytes, ctx: Any):
        self.index = index
        self.capacity = capacity
        parent_conn, child_conn = ctx.Pipe()
        self.process = ctx.Process(target=_worker_main, args=(child_conn, payload, (index, count)),
                                   name=f"react-eval-worker-{index}", daemon=True)
        self.process.start()
        child_conn.close()
        self.channel = _Channel(parent_conn, f"react-eval-parent-{index}")
        self.in_flight: dict[tuple[str, int], RolloutSpec] = {}

    async def exit_status(self) -> str:
        """How the process ended (waited for in a thread: it may still be exiting)."""
        await anyio.to_thread.run_sync(self.process.join, 5)
        code = self.process.exitcode
        if code is None:
            return "still running"
        return f"killed by signal {-code}" if code < 0 else f"exit code {code}"

    def stop(self, abort: bool) -> None:
        self.channel.send(("stop", abort))

    def reap(self, timeout: float) -> None:
        """Wait for the process to finish; terminate (then kill) it if it does not."""
        self.channel.close(timeout=1.0)
        self.process.join(timeout)
        if self.process.is_alive():
            self.process.terminate()  # SIGTERM: its sandboxes are removed by their reaper
            self.process.join(10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


class ProcessExecutor:
    """Runs up to ``max_concurrent`` rollouts at once, split over ``workers`` processes."""

    def __init__(self, max_concurrent: int, workers: int, *, stop_timeout: float = 60.0):
        self.max_concurrent = max_concurrent
        self.workers = workers
        self.stop_timeout = stop_timeout
        #: seconds from run_all's start until every worker had built its runner
        self.startup_s: float | None = None

    async def run_all(self, specs: list[RolloutSpec], runners: RunnerFactory, on_done: OnDone) -> None:
        count = min(self.workers, self.max_concurrent, len(specs))
        if count <= 1:
            await LocalExecutor(self.max_concurrent).run_all(specs, runners, on_done)
            return
        try:
            payload = pickle.dumps(runners)
        except Exception as exc:
            raise WorkerError(f"the rollout runner cannot be sent to worker processes ({exc}); use workers: 1") from exc
        t0 = time.perf_counter()
        ctx = multiprocessing.get_context("spawn")
        base, extra = divmod(self.max_concurrent, count)
        pool: list[_Worker] = []
        pending = deque(specs)
        fatal: list[str] = []
        problems: list[str] = []  # dead workers (the others go on)
        failures: list[str] = []  # errors that end the run at once
        ready = 0
        all_ready = anyio.Event()

        def deal(worker: _Worker) -> None:
            while len(worker.in_flight) < worker.capacity and pending and not fatal:
                spec = pending.popleft()
                worker.in_flight[(spec.task.id, spec.repeat)] = spec
                worker.channel.send(("run", spec))

        async def drive(worker: _Worker) -> None:
            nonlocal ready
            msg = await worker.channel.inbox.receive()
            if msg is None or msg[0] != "ready":
                detail = msg[1] if msg is not None else f"it ended ({await worker.exit_status()}) before it was ready"
                return abort(f"harness worker {worker.index} could not build its rollout runner:\n{detail}")
            ready += 1
            if ready == count:
                self.startup_s = time.perf_counter() - t0
                all_ready.set()
            await all_ready.wait()  # deal once all are up: the first would otherwise take everything short
            deal(worker)
            while worker.in_flight:
                msg = await worker.channel.inbox.receive()
                if msg is None:
                    if not fatal:
                        lost = ", ".join(f"{t}#{r}" for t, r in list(worker.in_flight)[:10])
                        problems.append(f"harness worker {worker.index} died ({await worker.exit_status()}); "
                                        f"{len(worker.in_flight)} rollout(s) it was running have no row "
                                        f"({lost}); --resume re-runs them")
                    return
                record = msg[1]
                worker.in_flight.pop((record.result.task_id, record.result.repeat), None)
                result = on_done(record)
                if result is not None:
                    await result
                if is_fatal(record) and not fatal:
                    fatal.append(record.result.error or "authentication failed")
                    return abort(None)
                deal(worker)
            worker.stop(abort=False)

        def abort(error: str | None) -> None:
            """Stop every worker now (in-flight rollouts are dropped) and end the run."""
            if error is not None and not failures:
                failures.append(error)
            pending.clear()
            for other in pool:
                other.stop(abort=True)
            tg.cancel_scope.cancel()

        try:
            for i in range(count):
                pool.append(_Worker(i, count, base + (i < extra), payload, ctx))
            async with anyio.create_task_group() as tg:
                for worker in pool:
                    tg.start_soon(drive, worker)
        finally:
            for worker in pool:
                worker.stop(abort=True)  # no-op for a worker that has already been told to stop
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self._reap_all, pool)
            for worker in pool:
                worker.channel.close_inbox()
        if fatal:
            raise FatalRunError(fatal[0])
        if failures:
            raise WorkerError(failures[0])
        if pending and problems:
            problems.append(f"{len(pending)} rollout(s) were never started: every worker had died")
        if problems:
            raise WorkerError("; ".join(problems))

    def _reap_all(self, pool: list[_Worker]) -> None:
        for worker in pool:
            worker.reap(self.stop_timeout)
