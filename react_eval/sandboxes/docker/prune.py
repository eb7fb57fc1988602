"""``react-eval sandbox prune``: remove what a killed process left, by label, on
each engine it used."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from react_eval.sandboxes.docker.client import api_client, default_host, docker_errors, reaching
from react_eval.sandboxes.docker.config import DockerHost

RUN_LABEL = "react-eval.run"
ROLLOUT_LABEL = "react-eval.rollout"


@dataclass
class PrunedContainer:
    id: str
    name: str
    run_id: str
    rollout: str
    status: str
    removed: bool
    error: str | None = None
    #: the engine it was on
    host: str = ""


def prune_containers(
    *, run_id: str | None = None, dry_run: bool = False, docker_host: str | DockerHost | None = None,
    hosts: Sequence[str | DockerHost] = (),
) -> list[PrunedContainer]:
    """Remove (or, with ``dry_run``, list) containers labelled ``react-eval.run``
    -- of one run when ``run_id`` is given -- on ``hosts`` (default: ``docker_host``,
    else the environment's engine). Raises SandboxError if an engine cannot be reached."""
    found: list[PrunedContainer] = []
    for host in list(hosts) or [docker_host]:
        found += _prune_one(host, run_id, dry_run)
    return found


def _prune_one(host: str | DockerHost | None, run_id: str | None, dry_run: bool) -> list[PrunedContainer]:
    url = (host.url if isinstance(host, DockerHost) else host) or default_host()
    label = f"{RUN_LABEL}={run_id}" if run_id else RUN_LABEL
    with reaching(url):
        api = api_client(host)
    found = []
    try:
        with reaching(url):
            containers = api.containers(all=True, filters={"label": label})
        for c in containers:
            labels = c.get("Labels") or {}
            item = PrunedContainer(
                id=c["Id"],
                name=(c.get("Names") or ["?"])[0].lstrip("/"),
                run_id=labels.get(RUN_LABEL, ""),
                rollout=labels.get(ROLLOUT_LABEL, ""),
                status=c.get("Status", ""),
                removed=False,
                host=url,
            )
            if not dry_run:
                try:
                    api.remove_container(c["Id"], force=True, v=True)
                    item.removed = True
                except docker_errors().NotFound:
                    item.removed = True
                except Exception as exc:  # noqa: BLE001 - reported per container
                    item.error = str(exc)
            found.append(item)
    finally:
        api.close()
    return found
