"""Rollouts on a Ray cluster: one actor per node, records written by the driver.

:class:`RayExecutor` places ``actors_per_node`` actors on every live node that
has ``num_cpus`` CPUs (a head started with ``--num-cpus 0`` gets none). Each
actor unpickles the :class:`~react_eval.engine.executor.RunnerFactory` and
builds its own runner -- model connection pool, sandbox provider, tool
sources -- with its share of the run's limits, so ``max_concurrent``, the
service's ``max_concurrent`` and the sandbox's ``concurrency`` hold for the
whole cluster. The driver deals specs to actors as their slots free up and
receives every record: results and trajectories are written by one process,
once per (task, repeat).

When a node dies, the rollouts its actors were running come back as errors of
the actor, never as records: the driver re-runs each on the surviving actors
(``max_retries`` times at most) and ignores anything more from the dead one.
What cannot be re-run -- retries used up, or no live actor left -- ends the run
with :class:`NodeLostError` naming the rollouts without a row, which
``--resume`` runs. Ray is an extra (``pip install 'react-eval[ray]'``) and is
imported only when this executor runs.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import pickle
import time
from collections import Counter
from typing import Any, Literal

import anyio
from pydantic import BaseModel, ConfigDict, Field, model_validator

from react_eval.engine.executor import FatalRunError, OnDone, RunnerFactory, is_fatal, run_one
from react_eval.engine.rollout import RolloutRecord, RolloutSpec, harness_failure_record

Key = tuple[str, int]


class RayMissing(ImportError):
    """Ray is not installed: it comes with the ``ray`` extra."""


RAY_MISSING = "executor type ray needs Ray, which is not installed: pip install 'react-eval[ray]'"


class NodeLostError(RuntimeError):
    """Rollouts were lost with their node and could not be re-run elsewhere."""


class RayStartError(RuntimeError):
    """No actor could be placed, or an actor could not build its runner."""


class RayExecutorConfig(BaseModel):
    """``executor: {type: ray, ...}``: run the rollouts on a Ray cluster."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["ray"] = "ray"
    #: the cluster: "auto" (the one this machine belongs to), "host:port" of its
    #: head, "ray://host:10001" (Ray client); None: RAY_ADDRESS, else a private
    #: Ray started on this machine for the run
    address: str | None = None
    #: actors (each a runner with its own connection pool and sandbox provider) per node
    actors_per_node: int = Field(default=1, ge=1)
    #: CPUs each actor reserves; nodes with fewer CPUs get no actor
    num_cpus: float = Field(default=1.0, ge=0)
    #: how many times a rollout lost with its node is re-run on another node
    max_retries: int = Field(default=1, ge=0)
    #: Ray runtime_env for the actors (e.g. {"pip": [...]} or {"env_vars": {...}})
    runtime_env: dict[str, Any] | None = None
    #: seconds for every actor to build its runner before the run fails
    start_timeout: float = Field(default=300.0, gt=0)

    @model_validator(mode="after")
    def _ray_installed(self) -> "RayExecutorConfig":
        """Ray is an optional extra: a config that needs it fails at validation, before anything runs."""
        if importlib.util.find_spec("ray") is None:
            raise ValueError(RAY_MISSING)
        return self

    def build(self, max_concurrent: int) -> "RayExecutor":
        return RayExecutor(self, max_concurrent)


def import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise RayMissing(RAY_MISSING) from exc
    return ray


class RolloutActor:
    """Runs rollouts on one node (wrapped by ``ray.remote`` in the driver)."""

    def __init__(self, payload: bytes, share: tuple[int, int]):
        self.payload, self.share = payload, share
        self.factory: RunnerFactory | None = None
        self.runner: Any = None
        self.tasks: set[asyncio.Task[Any]] = set()

    async def open(self) -> str:
        """Build the runner; returns this node's id."""
        import ray

        self.factory = pickle.loads(self.payload)
        self.runner = await self.factory.open(self.share)
        return ray.get_runtime_context().get_node_id()

    async def run(self, spec: RolloutSpec) -> RolloutRecord:
        task = asyncio.current_task()
        if task is not None:
            self.tasks.add(task)
        try:
            return await run_one(self.runner, spec)
        finally:
            self.tasks.discard(task)  # type: ignore[arg-type]

    async def close(self) -> None:
        """Cancel what still runs (an aborted run), then close the runner (sandboxes, pools)."""
        for task in list(self.tasks):
            task.cancel()
        if self.factory is not None and self.runner is not None:
            runner, self.runner = self.runner, None
            await self.factory.close(runner)


class _Actor:
    """The driver's view of one actor."""

    def __init__(self, index: int, handle: Any, capacity: int, node: str):
        self.index, self.handle, self.capacity, self.node = index, handle, capacity, node
        self.dead = False


class RayExecutor:
    """Runs up to ``max_concurrent`` rollouts at once on a Ray cluster's nodes."""

    def __init__(self, config: RayExecutorConfig, max_concurrent: int):
        self.config = config
        self.max_concurrent = max_concurrent
        #: (task, repeat) -> id of the node whose record was written
        self.placements: dict[Key, str] = {}
        #: rollouts re-run after their node died (one entry per re-run)
        self.reruns: list[Key] = []
        #: node ids whose actors died during the run
        self.dead_nodes: set[str] = set()
        #: seconds until every actor had built its runner
        self.startup_s: float | None = None

    async def run_all(self, specs: list[RolloutSpec], runners: RunnerFactory, on_done: OnDone) -> None:
        if not specs:
            return
        ray = import_ray()
        try:
            payload = pickle.dumps(runners)
        except Exception as exc:
            raise RayStartError(f"the rollout runner cannot be sent to Ray actors ({exc})") from exc
        t0 = time.perf_counter()
        await anyio.to_thread.run_sync(self._connect, ray)
        actors = await self._start_actors(ray, payload, len(specs))
        self.startup_s = time.perf_counter() - t0
        try:
            await self._drive(ray, actors, specs, on_done)
        finally:
            with anyio.CancelScope(shield=True):
                await self._stop_actors(ray, actors)

    # ---- set-up and tear-down ---------------------------------------------------

    def _connect(self, ray: Any) -> None:
        if ray.is_initialized():
            return
        kwargs: dict[str, Any] = {"runtime_env": self.config.runtime_env, "log_to_driver": True}
        if self.config.address is None and not _env_address():
            kwargs["include_dashboard"] = False  # a private one-machine Ray: keep it small
        ray.init(address=self.config.address, **kwargs)

    def _nodes(self, ray: Any) -> list[str]:
        need = self.config.num_cpus
        nodes = [n for n in ray.nodes() if n.get("Alive") and n.get("Resources", {}).get("CPU", 0) >= need]
        return sorted(n["NodeID"] for n in nodes)

    async def _start_actors(self, ray: Any, payload: bytes, n_specs: int) -> list[_Actor]:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        nodes = await anyio.to_thread.run_sync(self._nodes, ray)
        slots = [node for node in nodes for _ in range(self.config.actors_per_node)]
        if not slots:
            raise RayStartError(f"no live Ray node has {self.config.num_cpus} CPU(s) for a rollout actor "
                                f"(executor.num_cpus); nodes: {len(ray.nodes())}")
        count = min(len(slots), self.max_concurrent, n_specs)
        base, extra = divmod(self.max_concurrent, count)
        remote = ray.remote(RolloutActor)
        actors = []
        for i in range(count):
            capacity = base + (i < extra)
            handle = remote.options(
                scheduling_strategy=NodeAffinitySchedulingStrategy(slots[i], soft=False),
                num_cpus=self.config.num_cpus, max_restarts=0, max_task_retries=0,
                max_concurrency=capacity + 2, name=None,
            ).remote(payload, (i, count))
            actors.append(_Actor(i, handle, capacity, slots[i]))
        from ray.exceptions import RayError, RayTaskError

        try:
            with anyio.fail_after(self.config.start_timeout):
                opened = await asyncio.gather(*(a.handle.open.remote() for a in actors), return_exceptions=True)
        except BaseException as exc:
            await self._stop_actors(ray, actors, close=False)
            if isinstance(exc, TimeoutError):
                raise RayStartError(f"the Ray actors did not build their runners within "
                                    f"{self.config.start_timeout:g} s (executor.start_timeout)") from None
            raise
        for actor, result in zip(actors, opened):
            if isinstance(result, RayTaskError) or not isinstance(result, (str, RayError)):
                await self._stop_actors(ray, actors, close=False)
                raise RayStartError(f"Ray actor {actor.index} (node {actor.node[:12]}) could not build its rollout "
                                    f"runner:\n{result}") from None
            if isinstance(result, RayError):  # its node died meanwhile (or was dead already): the others run
                actor.dead = True
                self.dead_nodes.add(actor.node)
            else:
                actor.node = result
        live = [a for a in actors if not a.dead]
        if not live:
            raise RayStartError(f"every Ray actor died before it could run a rollout ({opened[0]})")
        return live

    async def _stop_actors(self, ray: Any, actors: list[_Actor], close: bool = True) -> None:
        """Close every live actor's runner (its sandboxes, pools), then end the actor."""
        live = [a for a in actors if not a.dead]
        if close and live:
            with anyio.move_on_after(60):
                await asyncio.gather(*(a.handle.close.remote() for a in live), return_exceptions=True)
        for actor in actors:
            try:
                ray.kill(actor.handle, no_restart=True)
            except Exception:  # noqa: BLE001 - already gone with its node
                pass

    # ---- the run ---------------------------------------------------------------------

    async def _drive(self, ray: Any, actors: list[_Actor], specs: list[RolloutSpec], on_done: OnDone) -> None:
        from ray.exceptions import RayError, RayTaskError

        work_send, work = anyio.create_memory_object_stream[RolloutSpec](float("inf"))
        for spec in specs:
            work_send.send_nowait(spec)
        outstanding = len(specs)
        attempts: Counter[Key] = Counter()
        written: set[Key] = set()
        lost: list[tuple[Key, str]] = []
        fatal: list[str] = []
        alive = len(actors)

        def finish_one() -> None:
            nonlocal outstanding
            outstanding -= 1
            if outstanding == 0:
                work_send.close()

        def actor_died(actor: _Actor, exc: BaseException) -> None:
            nonlocal alive
            if actor.dead:
                return
            actor.dead = True
            alive -= 1
            self.dead_nodes.add(actor.node)
            try:  # an actor only unreachable for now must not go on running rollouts re-run elsewhere
                ray.kill(actor.handle, no_restart=True)
            except Exception:  # noqa: BLE001
                pass
            if alive == 0:  # nobody is left to run what is queued
                work_send.close()
                while True:
                    try:
                        spec = work.receive_nowait()
                    except (anyio.WouldBlock, anyio.EndOfStream, anyio.ClosedResourceError):
                        break
                    lost.append((_key(spec), "no live Ray actor was left"))

        def requeue(spec: RolloutSpec, actor: _Actor, exc: BaseException) -> None:
            key = _key(spec)
            attempts[key] += 1
            why = f"its node {actor.node[:12]} died ({type(exc).__name__})"
            if attempts[key] > self.config.max_retries:
                lost.append((key, f"{why}; executor.max_retries ({self.config.max_retries}) used up"))
                finish_one()
            elif alive == 0:
                lost.append((key, f"{why} and no live Ray actor was left"))
                finish_one()
            else:
                self.reruns.append(key)
                work_send.send_nowait(spec)

        async def slot(actor: _Actor, tg: anyio.abc.TaskGroup) -> None:
            while not actor.dead and not fatal:
                try:
                    spec = await work.receive()
                except (anyio.EndOfStream, anyio.ClosedResourceError):
                    return
                if actor.dead:  # died while this slot waited: the spec was never sent to it
                    if alive:
                        work_send.send_nowait(spec)
                    else:
                        lost.append((_key(spec), "no live Ray actor was left"))
                    return
                key = _key(spec)
                try:
                    record = await actor.handle.run.remote(spec)
                except RayTaskError as exc:  # the method raised (e.g. a record that would not pickle)
                    record = harness_failure_record(spec, exc.as_instanceof_cause(), None)
                except RayError as exc:  # the actor, or its node, is gone
                    actor_died(actor, exc)
                    requeue(spec, actor, exc)
                    return
                if key in written:  # cannot happen: a dead actor's results are never awaited again
                    finish_one()
                    continue
                written.add(key)
                self.placements[key] = actor.node
                result = on_done(record)
                if result is not None:
                    await result
                finish_one()
                if is_fatal(record) and not fatal:
                    fatal.append(record.result.error or "authentication failed")
                    tg.cancel_scope.cancel()

        async with anyio.create_task_group() as tg:
            for actor in actors:
                for _ in range(actor.capacity):
                    tg.start_soon(slot, actor, tg)
        work_send.close()
        if fatal:
            raise FatalRunError(fatal[0])
        if lost:
            names = ", ".join(f"{t}#{r}" for (t, r), _ in lost[:10]) + (" ..." if len(lost) > 10 else "")
            raise NodeLostError(f"{len(lost)} rollout(s) have no row ({names}): {lost[0][1]}; "
                                f"--resume re-runs them")


def _key(spec: RolloutSpec) -> Key:
    return (spec.task.id, spec.repeat)


def _env_address() -> str | None:
    return os.environ.get("RAY_ADDRESS") or None
