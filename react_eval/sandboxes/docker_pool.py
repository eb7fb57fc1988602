"""Old import path of :mod:`react_eval.sandboxes.docker.pool` (kept so that code
written against it goes on working); new code imports from the package."""

from react_eval.sandboxes.docker.pool import FILL_PARALLEL, RETRY_SECONDS, WARM_LABEL, WarmDockerProvider  # noqa: F401
