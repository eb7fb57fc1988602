"""A NeMo Gym resources server as a per-rollout tool source."""

from __future__ import annotations

from typing import Any, Protocol

from react_eval.gym.session import CatalogCache, GymEndpoint, GymSession
from react_eval.sandboxes.base import Sandbox
from react_eval.types import Task


class GymServiceLike(Protocol):
    """What a source needs to know about a server: the engine's ``GymService``
    and :class:`~react_eval.gym.session.GymEndpoint` both qualify."""

    url: str
    request_timeout: float
    connect_attempts: int
    # optional: max_response_bytes (GymEndpoint.of reads it when present)


def seed_row(task: Task) -> dict[str, Any]:
    """The body of ``/seed_session``: the task's dataset row, whole.

    Tasks of other benchmarks (a Gym server used as ``resource_service`` next to
    them) have no row; they seed with a minimal one holding the prompt.
    """
    row = task.metadata.get("row")
    if isinstance(row, dict):
        return row
    return {"responses_create_params": {"input": task.initial_messages()}}


class GymToolSource:
    """Opens one :class:`GymSession` per rollout, seeded with the task's row.

    Every session has its own cookies; all of them share the source's one
    connection pool to the server (:class:`~react_eval.gym.transport.GymTransport`,
    closed by :meth:`aclose` at the end of the run), and the server's tool list
    is discovered once per source and shared.
    """

    label = "gym"

    def __init__(self, service: GymServiceLike):
        self.service = service
        self.endpoint = GymEndpoint.of(service)
        self.catalog = CatalogCache()
        self.transport = self.endpoint.transport()

    def new_session(self) -> GymSession:
        return GymSession(self.endpoint, self.catalog, self.transport)

    async def aclose(self) -> None:
        """Close the connection pool (the sessions are the rollouts' to close)."""
        await self.transport.aclose()

    async def open(self, task: Task, sandbox: Sandbox | None) -> GymSession:
        session = self.new_session()
        try:
            await session.seed(seed_row(task))
            await session.catalog()
        except BaseException:
            await session.aclose()
            raise
        return session
