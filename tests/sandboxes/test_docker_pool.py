"""The warm pool of Docker sandboxes against the real engine: filled ahead of need,
each container used once, refilled, specs applied, cleaned up on close."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator

import anyio
import pytest

from react_eval.sandboxes.docker.config import DockerSandboxConfig
from react_eval.sandboxes.docker.pool import WARM_LABEL, WarmDockerProvider
from react_eval.sandboxes.registry import make_provider
from react_eval.types import SandboxError, SandboxSpec
from tests.sandboxes.test_tool_suite import labelled_containers
from tests.test_e2e_smoke import smoke_policy

pytestmark = [pytest.mark.anyio, pytest.mark.docker]


@pytest.fixture
def run_id(docker_engine: str, sandbox_run_id: str) -> Iterator[str]:
    rid = f"{sandbox_run_id}-pool-{uuid.uuid4().hex[:6]}"
    yield rid
    assert labelled_containers(rid) == []  # nothing of this test is left behind


def warm_ids(run_id: str) -> set[str]:
    import docker

    api = docker.from_env().api
    found = api.containers(all=True, filters={"label": [f"react-eval.run={run_id}", f"{WARM_LABEL}=1"]})
    return {c["Id"] for c in found}


async def test_the_pool_fills_serves_each_container_once_and_refills(run_id):
    provider = make_provider(DockerSandboxConfig(warm_pool=2, concurrency=2, timeout=60), run_id=run_id)
    assert isinstance(provider, WarmDockerProvider)
    try:
        await provider.wait_warm(2, timeout=120)
        first_warm = warm_ids(run_id)
        assert len(first_warm) == 2 and len(labelled_containers(run_id)) == 2
        await anyio.sleep(1.0)
        started = time.monotonic()
        box = await provider.create(None, labels={"react-eval.rollout": "r1"})
        took = time.monotonic() - started
        assert box.container_id in first_warm and provider.hits == 1 and provider.misses == 0
        assert box.info.extra["warm"] == "true"
        assert box._deadline - time.monotonic() > 59 - took  # the budget starts now, not at warm-up
        result = await box.exec("echo hello > mark.txt; cat mark.txt", 30)
        assert result.output.strip() == "hello" and result.exit_code == 0
        await box.close()  # used once: destroyed, never handed out again
        await provider.wait_warm(2, timeout=120)
        refilled = warm_ids(run_id)
        assert box.container_id not in refilled and len(refilled) == 2
        second = await provider.create(None, labels={})
        assert second.container_id in refilled
        clean = await second.exec("ls mark.txt 2>&1; echo rc=$?", 30)
        assert "rc=2" in clean.output  # a fresh container: nothing of the first rollout
        await second.close()
    finally:
        await provider.aclose()
    assert labelled_containers(run_id) == []  # idle warm containers removed on close


async def test_specs_are_applied_to_a_warm_sandbox_and_another_image_goes_cold(run_id, tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "README").write_text("from the repo\n")
    provider = WarmDockerProvider(DockerSandboxConfig(warm_pool=1, concurrency=2), run_id=run_id)
    try:
        await provider.wait_warm(1, timeout=120)
        spec = SandboxSpec(repo_dir=str(repo), files={"a/b.txt": "placed\n"}, setup="cat a/b.txt README > both.txt")
        box = await provider.create(spec, labels={})
        assert provider.hits == 1
        out = await box.exec("cat both.txt", 30)
        assert out.output.splitlines() == ["placed", "from the repo"]
        await box.close()
        await provider.wait_warm(1, timeout=120)
        with pytest.raises(SandboxError):  # a failing setup: the error, and the container is gone
            await provider.create(SandboxSpec(setup="exit 3"), labels={})
        assert provider.hits == 2
        with pytest.raises(SandboxError, match="no-such-image"):  # another image: a cold start, not a warm one
            await provider.create(SandboxSpec(image="react-eval-no-such-image:x"), labels={})
        assert provider.misses == 1
    finally:
        await provider.aclose()


async def test_a_run_with_a_warm_pool_scores_like_a_cold_one(run_id, scripted_server, tmp_path):
    from react_eval.engine.config import validate_config
    from react_eval.engine.run import run_benchmark

    srv = scripted_server(smoke_policy)
    config = validate_config({
        "services": {"m": {"type": "api", "base_url": srv.base_url, "model": "scripted"}},
        "sandboxes": {"d": {"type": "docker", "warm_pool": 2, "concurrency": 2}},
        "benchmarks": [{"name": "smoke", "sandbox": "d", "max_concurrent": 2,
                        "solver": {"type": "tool_calling", "service": "m"}}],
    })
    await run_benchmark(config, config.benchmarks[0], tmp_path / "out", run_id=run_id)
    rows = [json.loads(line) for line in (tmp_path / "out" / "results.jsonl").read_text().splitlines()]
    assert len(rows) >= 6 and all(r["error_kind"] is None for r in rows), [r["error"] for r in rows]
    assert sum(r["reward"] for r in rows) >= len(rows) - 1  # smoke-json-port is unsolvable offline
    assert labelled_containers(run_id) == []
