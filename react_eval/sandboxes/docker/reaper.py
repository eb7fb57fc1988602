"""Containers of this process that must not outlive it.

Every started container is remembered with its engine until it is removed; at
interpreter exit (atexit) and from the stop hook (:mod:`react_eval.sandboxes.cleanup`,
which the program installs for SIGINT/SIGTERM) the rest are removed, from each
engine in parallel. A forked child never removes its parent's containers.
"""

from __future__ import annotations

import atexit
import os
import threading

from react_eval.sandboxes.cleanup import on_stop
from react_eval.sandboxes.docker.client import api_client
from react_eval.sandboxes.docker.config import DockerHost


def remove_quietly(host: DockerHost | str | None, container_id: str) -> None:
    """Force-remove a container with its anonymous volumes; errors ignored."""
    try:
        api = api_client(host, timeout=30)
        try:
            api.remove_container(container_id, force=True, v=True)
        finally:
            api.close()
    except Exception:  # noqa: BLE001 - best effort: `react-eval sandbox prune` is the fallback
        pass


class Reaper:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._live: dict[str, DockerHost | str | None] = {}  # container id -> its engine
        self._pid = os.getpid()
        self._hooked = False

    def add(self, container_id: str, host: DockerHost | str | None) -> None:
        with self._lock:
            self._live[container_id] = host
            if not self._hooked:
                atexit.register(self.reap)
                on_stop(self.reap)
                self._hooked = True

    def discard(self, container_id: str) -> None:
        with self._lock:
            self._live.pop(container_id, None)

    def live(self) -> list[str]:
        with self._lock:
            return list(self._live)

    def reap(self) -> None:
        """Remove every remembered container (best effort, in parallel)."""
        if os.getpid() != self._pid:  # a forked child must not remove its parent's containers
            return
        with self._lock:
            live, self._live = dict(self._live), {}
        threads = [threading.Thread(target=remove_quietly, args=(host, cid), daemon=True)
                   for cid, host in live.items()]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)


REAPER = Reaper()
