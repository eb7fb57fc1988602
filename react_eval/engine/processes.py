"""Rollouts in several worker processes, one event loop each.

One Python process spends its one core on HTTP, JSON and bookkeeping; with
hundreds of rollouts in flight against a fast server that core is the limit.
:class:`ProcessExecutor` starts ``workers`` processes. Each unpickles the
:class:`~react_eval.engine.executor.RunnerFactory`, builds its own runner
(model client, sandbox provider, tool sources) with its share of the run's
limits, and runs the specs it is sent. This process deals the specs out as a
worker's slots free up (once every worker is up), so long and short rollouts
balance, and receives every finished record: results are still written by one
process.

Workers are forked by a ``forkserver``: a fresh interpreter, started once per
process (never a fork of this one, whose threads and event loop would be
copied half-way), that imports the engine once and forks each worker from
there, so a worker starts in milliseconds instead of importing everything again.
(The fork server keeps the environment it started with: a worker takes the
parent's current one, and its working directory, as a spawned worker would.)
The two sides talk over a socket pair read by their event loops (no thread
per message): length-prefixed pickled messages, finished records batched.
When ``on_done`` has an ``encoder`` (:class:`~react_eval.engine.lines.RecordSink`),
a worker sends each record as the lines to write (result row and trajectory,
encoded and redacted where the rollout ran, from the validated result) and this
process appends those bytes as they are; a message that is not such lines, or
names a rollout the worker was not running, fails the run (never a silent loss).

A rollout that raises in a worker ends as a ``harness_error`` row like any
other (:func:`~react_eval.engine.executor.run_one`). A worker that dies takes
only its in-flight rollouts with it; the others go on with the queue, and the
run then fails with a message naming the rollouts left without a row
(``--resume`` re-runs them).
"""

from __future__ import annotations

import asyncio
import gc
import multiprocessing
import os
import pickle
import resource
import socket
import struct
import time
import traceback
from collections import deque
from typing import Any

import anyio
import anyio.to_thread

from react_eval.engine.executor import FatalRunError, LocalExecutor, OnDone, RunnerFactory, frozen_heap, is_fatal, run_one
from react_eval.engine.lines import EncodedRecord
from react_eval.engine.rollout import RolloutRecord, RolloutSpec
from react_eval.sandboxes.cleanup import install_signal_handlers


class WorkerError(RuntimeError):
    """A worker process failed to start, crashed, sent a malformed message, or could not encode a record."""


class Malformed(WorkerError):
    """A message from a worker that is not what the protocol allows."""


#: modules the fork server imports once, so that every worker it forks has them ("__main__": the
#: parent's script, e.g. the react-eval console script, which each worker would otherwise run again,
#: as a spawned one does; under `python -m` a worker still runs that module again, as spawn does)
PRELOAD = ["__main__", "react_eval.engine.run", "anyio._backends._asyncio"]
_HEADER = struct.Struct(">I")
#: a worker sends its finished records in one message per event-loop pass, at most this many bytes each
BATCH_BYTES = 1 << 22


def _context(extra: list[str]) -> Any:
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD + [m for m in extra if m not in PRELOAD])  # read when the server starts
    return ctx


def _forkserver_cpu_s() -> float:
    """CPU time of the fork server so far (0 when none runs): counted with the workers'."""
    from multiprocessing import forkserver

    pid = getattr(forkserver._forkserver, "_forkserver_pid", None)
    if pid is None:
        return 0.0
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class _Link:
    """Length-prefixed pickled messages over a connected socket, on the event loop."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, sock: socket.socket) -> "_Link":
        return cls(*await asyncio.open_unix_connection(sock=sock))

    def send(self, msg: Any) -> None:
        if self.writer.is_closing():
            return  # the other side has gone: its reader reports it
        data = pickle.dumps(msg, protocol=pickle.HIGHEST_PROTOCOL)
        self.writer.write(_HEADER.pack(len(data)) + data)

    async def receive(self) -> Any:
        """The next message, or ``None`` once the other side has gone; :class:`Malformed`
        for bytes that do not unpickle."""
        try:
            size, = _HEADER.unpack(await self.reader.readexactly(_HEADER.size))
            data = await self.reader.readexactly(size)
        except (asyncio.IncompleteReadError, ConnectionError):
            return None
        try:
            return pickle.loads(data)
        except Exception as exc:
            raise Malformed(f"a message that does not unpickle ({type(exc).__name__}: {exc})") from None

    async def close(self) -> None:
        """Send what is queued (briefly: the other side may be gone), then close."""
        try:
            with anyio.move_on_after(5):
                await self.writer.drain()
        except (ConnectionError, OSError):
            pass
        self.writer.close()


# ---- worker side -------------------------------------------------------------------


def _worker_main(sock: socket.socket, payload: bytes, share: tuple[int, int]) -> None:
    gc.freeze()  # the heap forked from the server is never scanned (which would also copy all its pages)
    install_signal_handlers()  # the parent's SIGTERM removes this worker's sandboxes
    try:
        anyio.run(_serve, sock, payload, share)
    except KeyboardInterrupt:  # Ctrl-C reaches the whole process group; the parent reports it
        pass
    finally:
        sock.close()


async def _serve(sock: socket.socket, payload: bytes, share: tuple[int, int]) -> None:
    link = await _Link.open(sock)
    try:
        factory, encoder, environ = pickle.loads(payload)
        os.environ.clear()  # the parent's environment now (e.g. an API key's variable), not the fork server's
        os.environ.update(environ)
        runner = await factory.open(share)
    except BaseException:
        link.send(("failed", traceback.format_exc()))
        await link.close()
        return
    link.send(("ready", None))
    loop = asyncio.get_running_loop()
    outbox: list[Any] = []
    size = 0

    def flush() -> None:
        nonlocal size
        if outbox:
            link.send(("done", outbox[:]))
            outbox.clear()
            size = 0

    async def one(spec: RolloutSpec) -> None:
        nonlocal size
        record = await run_one(runner, spec)
        if encoder is None:
            item: Any = record
        else:
            try:
                done = encoder(record)
            except Exception:  # the parent would have raised from on_done: the run fails, as in one process
                link.send(("error", f"encoding the record of {spec.task.id}#{spec.repeat}:\n{traceback.format_exc()}"))
                return
            item = (done.head, done.row, done.trajectory)
            size += len(done.row) + len(done.trajectory or b"")
        if not outbox:
            loop.call_soon(flush)  # records finished in this pass of the loop go in one message
        outbox.append(item)
        if size >= BATCH_BYTES:
            flush()

    try:
        with frozen_heap():
            async with anyio.create_task_group() as tg:
                while True:
                    msg = await link.receive()
                    if msg is None or msg[0] == "stop":
                        if msg is None or msg[1]:  # the parent is gone, or aborts the run
                            tg.cancel_scope.cancel()
                        break
                    for spec in msg[1]:
                        tg.start_soon(one, spec)
        flush()
    finally:
        with anyio.CancelScope(shield=True):
            await factory.close(runner)
            usage = resource.getrusage(resource.RUSAGE_SELF)
            link.send(("bye", {"cpu_s": usage.ru_utime + usage.ru_stime, "peak_rss_kb": usage.ru_maxrss}))
            await link.close()


# ---- parent side -------------------------------------------------------------------


class _Worker:
    def __init__(self, index: int, count: int, capacity: int, payload: bytes, ctx: Any):
        self.index = index
        self.capacity = capacity
        mine, theirs = socket.socketpair()
        self.process = ctx.Process(target=_worker_main, args=(theirs, payload, (index, count)),
                                   name=f"react-eval-worker-{index}", daemon=True)
        try:
            self.process.start()  # the fork server has its own copy of the socket once this returns
        finally:
            theirs.close()
        self.sock = mine
        self.link: _Link | None = None
        self.in_flight: dict[tuple[str, int], RolloutSpec] = {}
        self.usage: dict[str, float] | None = None

    async def exit_status(self) -> str:
        """How the process ended (waited for in a thread: it may still be exiting)."""
        await anyio.to_thread.run_sync(self.process.join, 5)
        code = self.process.exitcode
        if code is None:
            return "still running"
        return f"killed by signal {-code}" if code < 0 else f"exit code {code}"

    def stop(self, abort: bool) -> None:
        if self.link is not None:
            self.link.send(("stop", abort))

    def reap(self, timeout: float) -> None:
        """Wait for the process to finish; terminate (then kill) it if it does not."""
        self.process.join(timeout)
        if self.process.is_alive():
            self.process.terminate()  # SIGTERM: its sandboxes are removed by their reaper
            self.process.join(10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


def _key_of(item: Any, encoded: bool) -> tuple[tuple[str, int], Any]:
    """The rollout a finished item belongs to, and what ``on_done`` gets; :class:`Malformed` otherwise."""
    if not encoded:
        if not isinstance(item, RolloutRecord):
            raise Malformed(f"a finished rollout that is a {type(item).__name__}, not a record")
        return (item.result.task_id, item.result.repeat), item
    try:
        head, row, trajectory = item
        key = (head["task_id"], head["repeat"])
    except (TypeError, ValueError, KeyError) as exc:
        raise Malformed(f"a finished rollout that is not (head, row, trajectory): {exc!r}") from None
    for name, line in (("row", row), ("trajectory", trajectory)):
        if line is None and name == "trajectory":
            continue
        if type(line) is not bytes or not line.startswith(b"{") or not line.endswith(b"}") or b"\n" in line:
            raise Malformed(f"a {name} for {key[0]}#{key[1]} that is not one JSON object line: {str(line)[:80]}")
    return key, EncodedRecord(head, row, trajectory)


class ProcessExecutor:
    """Runs up to ``max_concurrent`` rollouts at once, split over ``workers`` processes."""

    def __init__(self, max_concurrent: int, workers: int, *, stop_timeout: float = 60.0):
        self.max_concurrent = max_concurrent
        self.workers = workers
        self.stop_timeout = stop_timeout
        #: seconds from run_all's start until every worker had built its runner
        self.startup_s: float | None = None
        #: CPU seconds the workers (as they reported on exit) and the fork server spent in run_all
        self.worker_cpu_s: float = 0.0
        #: the largest peak RSS a worker reported
        self.worker_peak_rss_kb: int = 0

    async def run_all(self, specs: list[RolloutSpec], runners: RunnerFactory, on_done: OnDone) -> None:
        count = min(self.workers, self.max_concurrent, len(specs))
        if count <= 1:
            await LocalExecutor(self.max_concurrent).run_all(specs, runners, on_done)
            return
        encoder = getattr(on_done, "encoder", None)
        try:
            payload = pickle.dumps((runners, encoder, dict(os.environ)))
        except Exception as exc:
            raise WorkerError(f"the rollout runner cannot be sent to worker processes ({exc}); use workers: 1") from exc
        t0 = time.perf_counter()
        ctx = _context([type(runners).__module__, type(getattr(runners, "benchmark", None)).__module__])
        fork_cpu0 = _forkserver_cpu_s()
        base, extra = divmod(self.max_concurrent, count)
        pool: list[_Worker] = []
        pending = deque(specs)
        fatal: list[str] = []
        problems: list[str] = []  # dead workers (the others go on)
        failures: list[str] = []  # errors that end the run at once
        ready = 0
        all_ready = anyio.Event()

        def deal(worker: _Worker) -> None:
            batch = []
            while len(worker.in_flight) < worker.capacity and pending and not fatal:
                spec = pending.popleft()
                worker.in_flight[(spec.task.id, spec.repeat)] = spec
                batch.append(spec)
            if batch:
                worker.link.send(("run", batch))

        async def finish(worker: _Worker) -> None:
            """After the stop: the worker's usage report, then its end."""
            while (msg := await worker.link.receive()) is not None:
                if msg[0] == "bye":
                    worker.usage = msg[1]

        async def drive(worker: _Worker) -> None:
            nonlocal ready
            worker.link = await _Link.open(worker.sock)
            msg = await worker.link.receive()
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
                msg = await worker.link.receive()
                if msg is None:
                    if not fatal:
                        lost = ", ".join(f"{t}#{r}" for t, r in list(worker.in_flight)[:10])
                        problems.append(f"harness worker {worker.index} died ({await worker.exit_status()}); "
                                        f"{len(worker.in_flight)} rollout(s) it was running have no row "
                                        f"({lost}); --resume re-runs them")
                    return
                if msg[0] == "error":
                    return abort(f"harness worker {worker.index}: {msg[1]}")
                if msg[0] != "done" or not isinstance(msg[1], list):
                    raise Malformed(f"a {str(msg[0])[:40]!r} message while rollouts were running")
                for item in msg[1]:
                    key, record = _key_of(item, encoder is not None)
                    if worker.in_flight.pop(key, None) is None:
                        raise Malformed(f"a record for {key[0]}#{key[1]}, which it was not running")
                    result = on_done(record)
                    if result is not None:
                        await result
                    if (record.fatal if encoder is not None else is_fatal(record)) and not fatal:
                        error = record.head.get("error") if encoder is not None else record.result.error
                        fatal.append(error or "authentication failed")
                        return abort(None)
                deal(worker)
            worker.stop(abort=False)
            await finish(worker)

        async def guarded(worker: _Worker) -> None:
            try:
                await drive(worker)
            except Malformed as exc:
                lost = len(worker.in_flight)
                abort(f"harness worker {worker.index} sent {exc}; the run stopped with {lost} of its rollout(s) "
                      f"without a row (--resume re-runs them)")

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
                    tg.start_soon(guarded, worker)
        finally:
            with anyio.CancelScope(shield=True):
                for worker in pool:
                    worker.stop(abort=True)  # ignored by a worker that has already been told to stop
                    if worker.link is not None:
                        await worker.link.close()
                    else:
                        worker.sock.close()
                await anyio.to_thread.run_sync(self._reap_all, pool)
            self.worker_cpu_s = sum((w.usage or {}).get("cpu_s", 0.0) for w in pool) + _forkserver_cpu_s() - fork_cpu0
            self.worker_peak_rss_kb = max(int((w.usage or {}).get("peak_rss_kb", 0)) for w in pool) if pool else 0
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
