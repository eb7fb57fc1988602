"""GymSession against real servers: the cookie, failures, timeouts, isolation."""

from __future__ import annotations

import json
import time

import anyio
import httpx
import pytest

from react_eval.gym.session import GymEndpoint, GymSession
from react_eval.gym.source import GymToolSource
from react_eval.types import Task, ToolInfraError, VerifyError
from tests.gym.servers import closed_port, counter_app, tree_app

pytestmark = pytest.mark.anyio

PARAMS = {"input": [{"role": "user", "content": "count"}]}


def minimal_response(final: str = "done") -> dict:
    return {
        "id": "resp_1", "object": "response", "created_at": 1.0, "model": "m", "parallel_tool_calls": True,
        "tool_choice": "auto", "tools": [],
        "output": [{"id": "msg_1", "type": "message", "role": "assistant", "status": "completed",
                    "content": [{"type": "output_text", "text": final, "annotations": []}]}],
    }


async def counter_rollout(url: str, initial: int, steps: list[int], *, pause: float = 0.0) -> tuple[GymSession, dict]:
    session = GymSession(GymEndpoint(url))
    try:
        row = {"responses_create_params": PARAMS, "initial_count": initial, "expected_count": initial + sum(steps)}
        await session.seed(row)
        for step in steps:
            result = await session.call("increment_counter", {"count": step}, timeout=10)
            assert not result.is_error, result.content
            await anyio.sleep(pause)
        got = await session.call("get_counter_value", {}, timeout=10)
        assert json.loads(got.content) == {"count": initial + sum(steps)}
        verdict = await session.verify({**row, "response": minimal_response()})
    finally:
        await session.aclose()
    return session, verdict


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_the_session_cookie_is_kept_and_sent_on_every_request(gym_server, host):
    srv = gym_server(counter_app())
    session, verdict = await counter_rollout(srv.url(host), 5, [2, 3])
    assert verdict["reward"] == 1.0 and verdict["count"] == 10
    seen = [e for e in srv.log.entries if e.path != "/openapi.json"]
    assert [e.path for e in seen] == ["/seed_session", "/increment_counter", "/increment_counter",
                                      "/get_counter_value", "/verify"]
    assert seen[0].cookie is None and seen[0].new_session  # the seed starts the session...
    for entry in seen[1:]:  # ...and every later request comes back on it, as the server saw it
        assert entry.cookie and entry.cookie.startswith("session=") and entry.cookie.count("session=") == 1
        assert entry.cookie_headers == 1
        assert not entry.new_session and entry.session_id == seen[0].session_id
    assert seen[0].json()["initial_count"] == 5  # the whole row is the seed body
    assert seen[3].body == b""  # a tool without a request body is called without one


@pytest.mark.parametrize(
    "options, host",
    [({"domain": "localhost"}, "localhost"), ({"domain": "127.0.0.1"}, "127.0.0.1"),
     ({"https_only": True}, "127.0.0.1"), ({"https_only": True}, "localhost")],
)
async def test_cookies_a_standard_jar_would_drop_still_come_back(gym_server, options, host):
    srv = gym_server(counter_app(**options))
    # control: a plain httpx client loses this session (so this test can see the difference)...
    async with httpx.AsyncClient(base_url=srv.url(host)) as plain:
        await plain.post("/seed_session", json={"initial_count": 1})
        await plain.post("/get_counter_value")
    first, second = srv.log.entries[-2:]
    lost_by_plain = second.new_session or second.session_id != first.session_id
    # ...while a GymSession keeps it
    session, verdict = await counter_rollout(srv.url(host), 7, [1])
    seen = [e for e in srv.log.entries[2:] if e.path != "/openapi.json"]
    assert len({e.session_id for e in seen}) == 1 and all(e.cookie and e.cookie_headers == 1 for e in seen[1:])
    assert verdict["reward"] == 1.0
    if options != {"domain": "127.0.0.1"}:
        assert lost_by_plain, "expected the standard cookie rules to drop this cookie"


async def test_concurrent_sessions_never_share_state(gym_server):
    srv = gym_server(counter_app())
    verdicts: dict[int, dict] = {}

    async def one(i: int) -> None:
        verdicts[i] = (await counter_rollout(srv.url(), 100 * i, [i + 1, 2 * i + 1, 3], pause=0.01))[1]

    async with anyio.create_task_group() as tg:
        for i in range(8):
            tg.start_soon(one, i)
    assert all(v["reward"] == 1.0 for v in verdicts.values())
    assert len(srv.log.by_session()) >= 8
    # the requests really interleaved
    order = [e.session_id for e in srv.log.entries if e.path in ("/seed_session", "/verify")]
    open_at_once, peak = set(), 0
    for s in order:
        open_at_once ^= {s}
        peak = max(peak, len(open_at_once))
    assert peak > 1


async def test_tool_http_errors_are_observations_with_the_body(gym_server):
    srv = gym_server(tree_app())
    session = GymSession(GymEndpoint(srv.url()))
    try:
        await session.seed({"responses_create_params": PARAMS})
        bad = await session.call("echo__status", {"status": 404, "message": "no such widget"}, timeout=5)
        assert bad.is_error and bad.error_kind == "http_4xx" and bad.extra["status"] == 404
        assert "404" in bad.content and "no such widget" in bad.content
        down = await session.call("echo__status", {"status": 503, "message": "backend on fire"}, timeout=5)
        assert down.is_error and down.error_kind == "http_5xx" and "backend on fire" in down.content
        invalid = await session.call("tree__sum", {"tree": {"children": []}}, timeout=5)  # the server's 422
        assert invalid.error_kind == "http_4xx" and "value" in invalid.content and "Field required" in invalid.content
        ok = await session.call("items__item_id__tag", {"item_id": "a b", "tag": "x", "upper": True}, timeout=5)
        assert json.loads(ok.content) == {"item_id": "a b", "tag": "X"}
        assert srv.log.entries[-1].path == "/items/a b/tag" and srv.log.entries[-1].query == "upper=true"
        nested = await session.call("tree__sum", {"tree": {"value": 1, "children": [
            {"value": 2, "children": [{"value": 3}]}, {"value": 4}]}}, timeout=5)
        assert json.loads(nested.content) == {"total": 10}
    finally:
        await session.aclose()


async def test_a_slow_tool_is_bounded_by_the_tool_timeout(gym_server):
    srv = gym_server(tree_app())
    session = GymSession(GymEndpoint(srv.url()))
    try:
        await session.seed({"responses_create_params": PARAMS})
        started = time.monotonic()
        result = await session.call("slow", {"seconds": 5}, timeout=0.5)
        elapsed = time.monotonic() - started
        assert result.is_error and result.error_kind == "timeout" and "0.5s" in result.content
        assert elapsed < 2.0
        fast = await session.call("slow", {"seconds": 0.01}, timeout=5)  # the session still works
        assert not fast.is_error
    finally:
        await session.aclose()


async def test_verify_422_is_a_verify_error_with_the_servers_message(gym_server):
    srv = gym_server(counter_app())
    session = GymSession(GymEndpoint(srv.url()))
    try:
        await session.seed({"responses_create_params": PARAMS, "initial_count": 1})
        with pytest.raises(VerifyError) as err:
            await session.verify({"responses_create_params": PARAMS, "expected_count": 1})
        assert "422" in str(err.value) and "body.response: Field required" in str(err.value)
        broken = minimal_response()
        del broken["parallel_tool_calls"]
        with pytest.raises(VerifyError, match="parallel_tool_calls"):
            await session.verify({"responses_create_params": PARAMS, "expected_count": 1, "response": broken})
    finally:
        await session.aclose()


async def test_an_unreachable_server_is_a_tool_infra_error():
    session = GymSession(GymEndpoint(f"http://127.0.0.1:{closed_port()}", connect_attempts=2))
    try:
        started = time.monotonic()
        with pytest.raises(ToolInfraError, match="2 connection attempt"):
            await session.seed({"responses_create_params": PARAMS})
        assert time.monotonic() - started < 5
        with pytest.raises(ToolInfraError):
            await session.list_tools()
        with pytest.raises(VerifyError, match="unreachable"):
            await session.verify({"responses_create_params": PARAMS})
    finally:
        await session.aclose()


async def test_a_server_gone_mid_rollout_makes_tool_calls_infra_errors(gym_server):
    srv = gym_server(counter_app())
    session = GymSession(GymEndpoint(srv.url(), connect_attempts=2))
    try:
        await session.seed({"responses_create_params": PARAMS, "initial_count": 1})
        await session.list_tools()
        srv.stop()
        with pytest.raises(ToolInfraError, match="increment_counter"):
            await session.call("increment_counter", {"count": 1}, timeout=5)
    finally:
        await session.aclose()


async def test_the_source_discovers_once_and_opens_a_fresh_session_per_rollout(gym_server):
    srv = gym_server(counter_app())
    source = GymToolSource(GymEndpoint(srv.url()))
    tasks = [Task(id=str(i), metadata={"row": {"responses_create_params": PARAMS, "initial_count": i}}) for i in range(6)]
    sessions: list[GymSession] = []

    async def open_one(task: Task) -> None:
        sessions.append(await source.open(task, None))

    async with anyio.create_task_group() as tg:
        for task in tasks:
            tg.start_soon(open_one, task)
    try:
        assert len(srv.log.for_path("/openapi.json")) == 1 and source.catalog.fetches == 1
        assert {s.transport for s in sessions} == {source.transport}  # one pool for every rollout
        assert len({id(s.jar) for s in sessions}) == 6
        assert len({tuple(s.cookies().values()) for s in sessions}) == 6
        assert {t.name for t in await sessions[0].list_tools()} == {"increment_counter", "get_counter_value"}
    finally:
        for s in sessions:
            await s.aclose()
    # six rollouts opened at once: at most six connections (one more for the one-time
    # /openapi.json), then reused by the next rollouts
    assert len(srv.log.for_path("/seed_session")) == 6
    first = {e.peer_port for e in srv.log.entries}
    for task in tasks:
        await (await source.open(task, None)).aclose()
    assert 0 < len(first) <= 7 and {e.peer_port for e in srv.log.entries} == first
    # a task without a row (another benchmark's) is seeded with its prompt; this server
    # wants initial_count, so seeding fails as infrastructure, with the server's reason
    with pytest.raises(ToolInfraError, match="seed_session answered HTTP 422.*initial_count"):
        await source.open(Task(id="x", prompt="hello"), None)
    seed = srv.log.for_path("/seed_session")[-1]
    assert seed.json() == {"responses_create_params": {"input": [{"role": "user", "content": "hello"}]}}
    await source.aclose()
    assert source.transport._session is None and not source.transport._pool._idle
