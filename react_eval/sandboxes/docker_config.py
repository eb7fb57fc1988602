"""Old import path of :mod:`react_eval.sandboxes.docker.config` (kept so that code
written against it goes on working); new code imports from the package."""

from react_eval.sandboxes.docker.config import (AGENT_USER_LABEL, DEFAULT_CAPS, DEFAULT_IMAGE, DockerHost,  # noqa: F401
                                                DockerSandboxConfig, DockerTLS)
