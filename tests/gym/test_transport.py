"""The Gym transport: one pool per server, per-rollout cookies, the reply byte cap."""

from __future__ import annotations

import json
import resource
import time
from email.utils import formatdate

import anyio
import pytest

from react_eval.gym.session import GymEndpoint, GymSession
from react_eval.gym.source import GymToolSource
from react_eval.gym.transport import RolloutCookies, query_string
from react_eval.types import Task, ToolInfraError, VerifyError
from tests.gym.servers import counter_app, tree_app
from tests.gym.test_session import minimal_response

PARAMS = {"input": [{"role": "user", "content": "count"}]}


def bytes_read() -> int:
    """Bytes this process has read through read()/recv() of any file or socket."""
    with open("/proc/self/io") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("rchar:"))


def test_cookies_follow_path_max_age_and_expires():
    jar = RolloutCookies()
    jar.store("session=abc; path=/; Max-Age=1209600; httponly; samesite=lax", "/seed_session")
    jar.store('quoted="v 1"; Path=/api', "/api/x")
    jar.store("scoped=s", "/tools/run")  # no Path: the request's directory, /tools
    jar.store("broken", "/")  # no name=value: ignored
    assert jar.as_dict() == {"session": "abc", "quoted": "v 1", "scoped": "s"}
    assert jar.header("/verify") == "session=abc"
    assert jar.header("/api/x") == "quoted=v 1; session=abc"  # longer paths first
    assert jar.header("/apix") == "session=abc"  # /api does not match /apix
    assert jar.header("/tools/run?x=1") == "scoped=s; session=abc"
    # the server ends the session (Starlette: an expired, empty cookie) and replaces another
    jar.store("session=null; path=/; expires=Thu, 01 Jan 1970 00:00:00 GMT; httponly", "/verify")
    jar.store("quoted=new; Path=/api; Expires=" + formatdate(time.time() + 3600, usegmt=True), "/api")
    assert jar.as_dict() == {"quoted": "new", "scoped": "s"}
    jar.store("scoped=gone; Max-Age=0; Expires=" + formatdate(time.time() + 3600, usegmt=True), "/tools/a")
    assert jar.header("/tools/run") is None  # Max-Age wins over Expires


def test_cookie_header_follows_every_change_of_the_jar(monkeypatch):
    """The header is made once per path, and made again whenever a cookie comes, changes,
    is deleted or expires (the clock is the module's, moved by hand)."""
    import react_eval.gym.transport as transport

    now = [1_000_000.0]
    monkeypatch.setattr(transport, "time", type("Clock", (), {"time": staticmethod(lambda: now[0])}))
    jar = RolloutCookies()
    assert jar.header("/echo") is None
    jar.store("session=a; path=/; Max-Age=100", "/seed_session")
    assert jar.header("/echo") == "session=a"
    jar.store("session=a; path=/; Max-Age=100", "/echo")  # the same cookie again, its expiry moved on
    assert jar.header("/echo") == "session=a"
    jar.store("session=b; path=/; Max-Age=50", "/echo")  # a new value
    assert jar.header("/echo") == jar.header("/verify") == "session=b"
    jar.store("extra=x; Path=/echo", "/echo")  # a second cookie, for one path only
    assert jar.header("/echo") == "extra=x; session=b"
    assert jar.header("/verify") == "session=b"
    now[0] += 51  # session=b has expired
    assert jar.header("/echo") == "extra=x"
    assert jar.header("/verify") is None
    jar.store("extra=x; Path=/echo; Max-Age=0", "/echo")  # deleted by the server
    assert jar.header("/echo") is None
    assert jar.as_dict() == {}


def test_a_set_cookie_sent_again_moves_its_expiry_on_each_time(monkeypatch):
    """A server re-sends the same Set-Cookie on every reply: the jar reuses its parse, but
    Max-Age still counts from each reply, so a live session never lapses (and an Expires
    date stays the date it names)."""
    import react_eval.gym.transport as transport

    now = [1_000_000.0]
    monkeypatch.setattr(transport, "time", type("Clock", (), {"time": staticmethod(lambda: now[0])}))
    jar = RolloutCookies()
    again = "session=a; path=/; Max-Age=100; httponly"
    for _ in range(5):  # a reply every 60 s: each one moves the expiry 100 s past itself
        jar.store(again, "/echo")
        now[0] += 60
        assert jar.header("/echo") == "session=a"
    now[0] += 41  # 101 s after the last reply
    assert jar.header("/echo") is None
    dated = "other=b; Path=/; Expires=" + formatdate(now[0] + 30, usegmt=True)
    jar.store(dated, "/echo")
    now[0] += 20
    jar.store(dated, "/echo")  # the same date again, not 30 s from now
    now[0] += 11
    assert jar.header("/echo") is None


def test_request_headers_carry_the_cookie_of_the_moment():
    """The headers a rollout sends are made once per path, and made again when its cookies change."""
    jar = RolloutCookies()
    assert jar.request_headers("/echo", True) == {"content-type": "application/json"}
    assert jar.request_headers("/openapi.json", False) == {}
    jar.store("session=a; path=/", "/seed_session")
    first = jar.request_headers("/echo", True)
    assert first == {"content-type": "application/json", "cookie": "session=a"}
    assert jar.request_headers("/echo", True) is first  # the same request again: nothing made anew
    assert jar.request_headers("/openapi.json", False) == {"cookie": "session=a"}
    jar.store("session=a; path=/", "/echo")  # the same value again: the headers stand
    assert jar.request_headers("/echo", True) is first
    jar.store("session=b; path=/", "/echo")
    assert jar.request_headers("/echo", True) == {"content-type": "application/json", "cookie": "session=b"}
    jar.store("session=b; path=/; Max-Age=0", "/verify")  # the server ends the session
    assert jar.request_headers("/echo", True) == {"content-type": "application/json"}


@pytest.mark.anyio
async def test_a_server_that_starts_late_is_reached_by_the_connect_retries():
    """The first attempt is made outside tenacity: a refused connection still hands over to the
    retries (with backoff), and the request then reaches the server exactly once."""
    import threading

    from tests.gym.servers import RunningServer

    srv = RunningServer(counter_app())  # its port is bound but not listening: connections are refused
    starter = threading.Timer(0.3, srv.start)
    starter.start()
    session = GymSession(GymEndpoint(srv.url(), connect_attempts=8))
    try:
        await session.seed({"responses_create_params": PARAMS, "initial_count": 2})
        assert srv.log.paths() == ["/seed_session"]
    finally:
        await session.aclose()
        starter.join()
        srv.stop()


def test_query_parameters_render_as_httpx_does():
    assert query_string({"upper": True, "n": 3, "none": None, "tags": ["a", "b c"]}) == \
        "upper=true&n=3&none=&tags=a&tags=b+c"


@pytest.mark.anyio
async def test_rollouts_share_one_pool_and_keep_their_own_sessions(gym_server):
    srv = gym_server(counter_app())
    source = GymToolSource(GymEndpoint(srv.url()))
    counts: dict[int, int] = {}

    async def rollout(i: int) -> None:
        session = await source.open(Task(id=str(i), metadata={"row": {"responses_create_params": PARAMS,
                                                                        "initial_count": 10 * i}}), None)
        try:
            for _ in range(3):
                await session.call("increment_counter", {"count": i + 1}, timeout=10)
                await anyio.sleep(0.005)
            counts[i] = json.loads((await session.call("get_counter_value", {}, timeout=10)).content)["count"]
        finally:
            await session.aclose()

    try:
        for _ in range(3):  # three waves of four rollouts at once
            async with anyio.create_task_group() as tg:
                for i in range(4):
                    tg.start_soon(rollout, i)
            assert counts == {i: 10 * i + 3 * (i + 1) for i in range(4)}
    finally:
        await source.aclose()
    entries = srv.log.entries
    assert len({e.session_id for e in entries if e.path == "/seed_session"}) == 12  # a session per rollout
    # connections are the pool's, not the rollouts': 12 rollouts (60 requests) on at most 4 connections
    # (+1 for the one-time /openapi.json), and later waves reuse the first wave's
    ports = {e.peer_port for e in entries}
    assert 1 <= len(ports) <= 5, ports
    assert {e.peer_port for e in entries[-20:]} <= {e.peer_port for e in entries[:25]}


@pytest.mark.anyio
@pytest.mark.parametrize("declare_length", [True, False])
async def test_a_100_mb_tool_reply_is_a_tool_error_and_is_not_read(gym_server, declare_length):
    srv = gym_server(tree_app(with_big=True))
    session = GymSession(GymEndpoint(srv.url(), max_response_bytes=1 << 20))
    rss_before, read_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, bytes_read()
    try:
        await session.seed({"responses_create_params": PARAMS})
        result = await session.call("big", {"mib": 100, "declare_length": declare_length}, timeout=30)
        assert result.is_error and result.error_kind == "tool_error" and result.extra["status"] == 200
        assert "answered too much" in result.content and "1,048,576-byte cap (max_response_bytes)" in result.content
        if declare_length:
            assert "declared 104,857,602 bytes" in result.content
        # the session and its pool go on working afterwards
        ok = await session.call("tree__sum", {"tree": {"value": 2}}, timeout=10)
        assert json.loads(ok.content) == {"total": 2}
        small = await session.call("big", {"mib": 0}, timeout=10)
        assert small.content == '""'
    finally:
        await session.aclose()
    # the reply was abandoned: this process read (from any socket) and grew by far less than 100 MB
    assert srv.state["big_chunks_sent"][0] >= 1
    assert bytes_read() - read_before < 40 << 20
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before < 40 * 1024


@pytest.mark.anyio
async def test_a_compressed_reply_is_capped_by_its_decoded_size(gym_server):
    srv = gym_server(tree_app(with_big=True))
    session = GymSession(GymEndpoint(srv.url(), max_response_bytes=1 << 20))
    try:
        await session.seed({"responses_create_params": PARAMS})
        bomb = await session.call("bomb", {"mib": 20}, timeout=30)  # ~20 KiB on the wire, 20 MiB decoded
        assert bomb.is_error and bomb.error_kind == "tool_error" and "more than 1,048,576 bytes" in bomb.content
        small = await session.call("bomb", {"mib": 0}, timeout=30)
        assert not small.is_error and small.content == ""
    finally:
        await session.aclose()


@pytest.mark.anyio
async def test_oversized_seed_and_verify_replies_are_infra_and_verify_errors(gym_server):
    srv = gym_server(tree_app(with_big=True))
    session = GymSession(GymEndpoint(srv.url(), max_response_bytes=4096))
    try:
        with pytest.raises(ToolInfraError, match="seed_session answered too much.*4,096-byte cap"):
            await session.seed({"responses_create_params": PARAMS, "big_seed_mib": 100})
        await session.seed({"responses_create_params": PARAMS})
        with pytest.raises(VerifyError, match="/verify answered too much.*max_response_bytes"):
            await session.verify({"responses_create_params": PARAMS, "expected_total": -100,
                                  "response": minimal_response()})
    finally:
        await session.aclose()
    assert len(srv.state["big_chunks_sent"]) == 2


def test_the_cap_is_an_option_of_gym_benchmarks_and_gym_services(tmp_path):
    from react_eval.engine.config import validate_config
    from react_eval.gym.benchmark import GymBenchmark

    dataset = tmp_path / "rows.jsonl"
    dataset.write_text(json.dumps({"responses_create_params": PARAMS}) + "\n")
    bench = GymBenchmark("127.0.0.1:9", dataset=str(dataset), max_response_bytes=1000)
    assert bench.tool_sources()[0].transport.max_response_bytes == 1000
    assert GymBenchmark("127.0.0.1:9", dataset=str(dataset)).endpoint.max_response_bytes == 16 << 20
    cfg = validate_config({"services": {"m": {"type": "api", "base_url": "http://127.0.0.1:9/v1", "model": "x"},
                                        "g": {"type": "gym", "url": "http://127.0.0.1:9", "max_response_bytes": 77}},
                           "benchmarks": [{"name": f"gym://127.0.0.1:9", "options": {"dataset": str(dataset)},
                                           "solver": {"service": "m", "resource_service": "g"}}]})
    assert GymToolSource(cfg.services["g"]).transport.max_response_bytes == 77
