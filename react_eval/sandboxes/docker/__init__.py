"""Docker sandboxes: one container per rollout, driven through the engine API.

Each rollout gets its own container with the configured limits, labels
``react-eval.run=<run id>`` and ``react-eval.rollout=<id>``, and no network
unless the config asks for one. Its PID 1 is an idle bash that ignores every
signal it can (the kernel drops SIGKILL sent to a namespace's init from inside)
and reaps orphans, so nothing the model runs -- ``kill -9 -1``, ``pkill sleep``
-- can stop the container, and killed background jobs leave no zombies to eat
the pids limit.

How the pieces talk to the container:

* **bash** runs in a persistent shell: one ``docker exec`` of ``bash -s`` whose
  stdin/stdout are the exec's hijacked connection, spoken to with the protocol
  of :mod:`react_eval.sandboxes.shell`. After the one-off exec start, a call is
  a write and a read on that socket (well under a millisecond on a local
  engine), not a ``docker exec`` per command.
* **Killing** is done inside the container by a *control shell*: a second,
  long-lived exec whose kill function uses bash builtins only, so it works even
  while a fork bomb holds every PID the container may have. A timeout kills the
  processes the command started (same session or tagged environment, started
  after the command), sparing the shell and earlier background jobs.
* **Files** go in and out through the archive API (``put_archive`` /
  ``get_archive``) as in-memory tar streams; file content never travels in a
  command line. Sizes are checked with the archive ``HEAD`` (stat) before any
  content is fetched.
* **run()** (graders, setup) is a fresh exec that waits for a "go" line, runs
  the command in a child bash, then kills whatever the command left running.

On a local engine (a ``unix://`` socket) every engine API call is made on the
event loop over the socket (:mod:`.local_api`), and the docker SDK is never
imported. On tcp:// and ssh:// engines calls go through the SDK's HTTP session
(TLS, proxies and ssh are its job), each blocking call in a worker thread
bounded by a capacity limiter; socket I/O of attached execs is asynchronous.

Engines: one (``docker_host``, else DOCKER_HOST or the local socket) or several
(``hosts``, each with its TLS settings and ``max_containers``); each rollout goes
to the least-loaded engine that is up, and one that goes away mid-run fails only
the rollouts on it, as infrastructure errors (:mod:`.engines`).

Cleanup: containers are removed in ``close()`` (the engine calls it in a
``finally``), by ``DockerSandboxProvider.aclose()``, at interpreter exit, and on
SIGINT/SIGTERM once the program installed
:func:`react_eval.sandboxes.cleanup.install_signal_handlers` (the CLI does; see
:mod:`.reaper`); ``react-eval sandbox prune`` removes leftovers of a killed
process by label, on each engine (:func:`prune_containers`).

``DockerSandboxConfig.timeout`` bounds the agent's use of the sandbox: from the
moment the container starts, each ``exec`` (the bash tool) is cut to the time
left, and once it is spent ``exec`` ends the rollout with error kind
``timeout``. ``run()`` and file transfers are not limited, so a timed-out
rollout can still be graded. The loop's ``rollout_timeout`` is the other,
independent limit (on the whole conversation, model calls included);
whichever is hit first ends the rollout.

The modules, by concern: ``config`` (settings, no SDK import), ``client`` (SDK
client, the engine's error answers), ``local_api`` (HTTP over the unix socket),
``stream`` (socket bridge, frame demux), ``control`` (kill
function, control shell), ``transport`` (the shell transport), ``files``
(archive API), ``sandbox``, ``engines`` (hosts, placement), ``provider``,
``pool`` (warm pool), ``reaper``, ``prune``. Names are imported from here lazily,
so that ``react_eval.sandboxes.docker.config`` stays cheap to load.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

#: public name -> the module of this package that defines it
_EXPORTS = {
    "AGENT_USER_LABEL": "config", "DEFAULT_CAPS": "config", "DEFAULT_IMAGE": "config",
    "DockerHost": "config", "DockerSandboxConfig": "config", "DockerTLS": "config",
    "BUILD_HINT": "client", "START_HINT": "client", "api_client": "client", "docker_errors": "client",
    "EngineError": "client", "NotFound": "client", "ImageNotFound": "client",
    "image_error": "client", "is_connection_error": "client", "reaching": "client",
    "unreachable_error": "client",
    "ExecStream": "stream", "stream_from_docker_socket": "stream",
    "TAG_VAR": "control", "ControlShell": "control",
    "DockerShellTransport": "transport",
    "DockerSandbox": "sandbox",
    "Engine": "engines", "Placement": "engines",
    "DockerSandboxProvider": "provider",
    "WARM_LABEL": "pool", "WarmDockerProvider": "pool",
    "REAPER": "reaper", "remove_quietly": "reaper",
    "ROLLOUT_LABEL": "prune", "RUN_LABEL": "prune", "PrunedContainer": "prune", "prune_containers": "prune",
}
__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from react_eval.sandboxes.docker.client import (BUILD_HINT, START_HINT, EngineError, ImageNotFound, NotFound,
                                                    api_client, docker_errors, image_error, is_connection_error,
                                                    reaching, unreachable_error)
    from react_eval.sandboxes.docker.config import (AGENT_USER_LABEL, DEFAULT_CAPS, DEFAULT_IMAGE, DockerHost,
                                                    DockerSandboxConfig, DockerTLS)
    from react_eval.sandboxes.docker.control import TAG_VAR, ControlShell
    from react_eval.sandboxes.docker.engines import Engine, Placement
    from react_eval.sandboxes.docker.pool import WARM_LABEL, WarmDockerProvider
    from react_eval.sandboxes.docker.provider import DockerSandboxProvider
    from react_eval.sandboxes.docker.prune import ROLLOUT_LABEL, RUN_LABEL, PrunedContainer, prune_containers
    from react_eval.sandboxes.docker.reaper import REAPER, remove_quietly
    from react_eval.sandboxes.docker.sandbox import DockerSandbox
    from react_eval.sandboxes.docker.stream import ExecStream, stream_from_docker_socket
    from react_eval.sandboxes.docker.transport import DockerShellTransport


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
