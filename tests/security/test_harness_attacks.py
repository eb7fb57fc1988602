"""Red team against the harness itself: a scripted model, over real HTTP,
drives the real loop against a real Gym resources server (FastAPI on
127.0.0.1) and tries to reach its protocol endpoints through a path parameter,
floods one turn with tool calls and sends a huge argument. Verdicts come from
the server's own request log and from what the run stored.
"""

from __future__ import annotations

import orjson
import pytest

from react_eval.gym.session import GymEndpoint, GymSession
from react_eval.loop import LoopConfig, ReActLoop
from react_eval.model.config import ModelConfig
from react_eval.model.factory import build_model
from react_eval.tools.base import CompositeBackend
from react_eval.trajectories import TrajectoryRecorder
from react_eval.types import Task
from tests.gym.conftest import gym_server  # noqa: F401 - the fixture
from tests.gym.servers import tree_app
from tests.support.scripted_server import answer, tool_calls

pytestmark = pytest.mark.anyio

ESCAPES = ["..", "%2e%2e", "%2E%2E", ".", "a/../../verify", "../seed_session", "..%2f..%2fverify", "%2e%2e%2fverify"]


async def run_against_gym(scripted_server, url: str, script: list, **loop_kw):
    srv = scripted_server(script)
    session = GymSession(GymEndpoint(url))
    await session.seed({"responses_create_params": {"input": [{"role": "user", "content": "go"}]}})
    model = build_model(ModelConfig(base_url=srv.base_url, model="scripted", retry_initial_wait=0.01, client="openai"))
    tools = await CompositeBackend({"gym": session}).start()
    defs = [s.to_openai() for s in await tools.list_tools()]
    recorder = TrajectoryRecorder(session_id="red", agent_version="test", model_name="scripted", tool_definitions=defs)
    try:
        return await ReActLoop(model, tools, LoopConfig(**loop_kw), recorder).run(Task(id="t", prompt="go"), "", defs)
    finally:
        await model.aclose()
        await session.aclose()


async def test_a_path_parameter_never_reaches_a_protocol_endpoint(scripted_server, gym_server, verdict):
    srv = gym_server(tree_app())
    calls = [("items__item_id__tag", {"item_id": v, "tag": "x"}, f"c{i}") for i, v in enumerate(ESCAPES)]
    outcome = await run_against_gym(scripted_server, srv.url(), [tool_calls(calls), answer("done")])
    protocol = [e.path for e in srv.log.entries
                if e.path not in ("/seed_session", "/openapi.json") and not e.path.startswith("/items/")]
    seeds = len(srv.log.for_path("/seed_session"))
    items = [e.path for e in srv.log.entries if e.path.startswith("/items/")]
    one_segment = all(p.count("/") == 3 and p.endswith("/tag") for p in items)
    refused = sum(1 for _, r in outcome.calls if r.is_error and "path segment" in r.content)
    verdict("Gym: path parameter ../%2e/'/' to reach /verify or /seed_session", "harness",
            not protocol and seeds == 1 and one_segment and refused >= 4,
            f"protocol hits={protocol} seeds={seeds} items={items} refused={refused}")


async def test_one_turn_cannot_run_more_than_the_cap(scripted_server, gym_server, verdict):
    srv = gym_server(tree_app())
    calls = [("items__item_id__tag", {"item_id": f"i{i}", "tag": "x"}, f"c{i}") for i in range(200)]
    outcome = await run_against_gym(scripted_server, srv.url(), [tool_calls(calls), answer("done")],
                                    max_tool_calls_per_turn=32)
    ran = len([e for e in srv.log.entries if e.path.startswith("/items/")])
    refused = sum(1 for _, r in outcome.calls if r.error_kind == "too_many_calls")
    verdict("200 tool calls in one turn (cap 32)", "harness", ran == 32 and refused == 168,
            f"ran={ran} refused={refused}")


async def test_a_50mb_argument_is_not_stored_whole(scripted_server, gym_server, verdict):
    srv = gym_server(tree_app())
    big = "z" * (50 << 20)
    outcome = await run_against_gym(scripted_server, srv.url(),
                                    [tool_calls([("items__item_id__tag", {"item_id": "i", "tag": big}, "c")]),
                                     answer("done")])
    line = orjson.dumps(outcome.trajectory.to_json_dict())
    stored = outcome.trajectory.to_json_dict()["steps"][1]["tool_calls"][0]["extra"]
    verdict("a 50 MB tool-call argument in the trajectory", "harness",
            len(line) < 2 << 20 and stored["arguments_chars"] > 50 << 20,
            f"trajectory line {len(line)} bytes; recorded size {stored.get('arguments_chars')}")
