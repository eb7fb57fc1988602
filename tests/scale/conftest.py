from __future__ import annotations

from typing import Iterator

import pytest

from tests.scale.ray_support import LocalRayCluster


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[LocalRayCluster]:
    """A head node (1 CPU) for the module; tests add and remove worker nodes.
    Teardown fails the test module if any of the cluster's processes outlives it."""
    cluster = LocalRayCluster()
    try:
        yield cluster
    finally:
        left = cluster.shutdown()
        assert left == [], f"Ray processes left running after shutdown: {left}"
