"""CPU per Gym request: react-eval's Gym session beside a bare aiohttp loop, over real HTTP.

Every Gym rollout pays ``/seed_session``, one ``POST /{tool}`` per tool call on
the rollout's cookie and ``/verify``, so the cost of those requests alone is
measured here, without the model or the ReAct loop around them:

* react-eval: a :class:`~react_eval.gym.session.GymSession` per rollout on the
  run's one :class:`~react_eval.gym.transport.GymTransport` (what a ``gym://``
  run does: the catalog discovered once, the rollout's cookies, the reply cap,
  the timeout, connect retries, error classification);
* bare: one aiohttp session (no connection limit, no cookie jar, no environment
  lookups), ``orjson.dumps``, ``session.post`` with the cookie as a header,
  ``await resp.read()``, ``orjson.loads``, the last ``Set-Cookie`` kept.

Both talk to the same Gym-style server (``tools/bench_gym_server.py``: FastAPI
and Starlette sessions, in its own process so its CPU is not billed to the
client), each in a fresh process, alternating; a run reports the best of
several rounds per process, in µs of CPU (user + system) per request::

    python tools/bench_gym_call.py [--concurrency 1,16,256] [--rollouts 600] [--calls 3] [--reps 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Awaitable, Callable

from bench_meters import add_rep_options, cpu_s, print_child_us, print_per_call_table  # tools/

TOOLS = Path(__file__).resolve().parent
ROOT = TOOLS.parent
Rollouts = tuple[Callable[[int], Awaitable[None]], Callable[[], Awaitable[None]]]


def bare_rollouts(url: str, calls: int) -> Rollouts:
    """A rollout of the bare loop, and how to close its session."""
    import aiohttp
    import orjson

    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), cookie_jar=aiohttp.DummyCookieJar(),
                                    trust_env=False)
    json_headers = {"content-type": "application/json"}

    async def post(path: str, body: Any, cookie: str | None) -> tuple[Any, str | None]:
        headers = {**json_headers, "cookie": cookie} if cookie else json_headers
        async with session.post(url + path, data=orjson.dumps(body), headers=headers) as resp:
            data = orjson.loads(await resp.read())
            for value in resp.headers.getall("set-cookie", ()):
                cookie = value.split(";", 1)[0]
            return data, cookie

    async def rollout(i: int) -> None:
        row = {"id": i, "expected_calls": calls}
        _, cookie = await post("/seed_session", row, None)
        for n in range(calls):
            _, cookie = await post("/echo", {"text": f"call {n}"}, cookie)
        verdict, _ = await post("/verify", {**row, "response": {}}, cookie)
        assert verdict["reward"] == 1.0, verdict

    return rollout, session.close


def engine_rollouts(url: str, calls: int) -> Rollouts:
    """A rollout through react-eval's Gym session, and how to close the run's pool."""
    from react_eval.gym.session import GymEndpoint
    from react_eval.gym.source import GymToolSource

    source = GymToolSource(GymEndpoint(url))

    async def rollout(i: int) -> None:
        session = source.new_session()
        try:
            row = {"id": i, "expected_calls": calls}
            await session.seed(row)
            for n in range(calls):
                result = await session.call("echo", {"text": f"call {n}"}, timeout=600)
                assert result.error_kind is None, result
            verdict = await session.verify({**row, "response": {}})
            assert verdict["reward"] == 1.0, verdict
        finally:
            await session.aclose()

    return rollout, source.aclose


async def measure(kind: str, port: int, concurrency: int, rollouts: int, calls: int, rounds: int) -> float:
    """Best CPU µs per request over ``rounds`` rounds of ``rollouts`` rollouts, ``concurrency`` at once."""
    make = engine_rollouts if kind == "engine" else bare_rollouts
    rollout, close = make(f"http://127.0.0.1:{port}", calls)
    slots = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with slots:
            await rollout(i)

    await asyncio.gather(*(one(i) for i in range(min(rollouts, 50))))  # warm up: connections, the catalog
    best = float("inf")
    for _ in range(rounds):
        before = cpu_s()
        await asyncio.gather(*(one(i) for i in range(rollouts)))
        best = min(best, (cpu_s() - before) / (rollouts * (calls + 2)) * 1e6)
    await close()
    return best


def _wait_up(port: int) -> None:
    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/bench/stats", timeout=5).read()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("the Gym server did not come up")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--concurrency", default="1,16,256")
    parser.add_argument("--rollouts", type=int, default=600)
    parser.add_argument("--calls", type=int, default=3, help="tool calls per rollout")
    add_rep_options(parser)
    args = parser.parse_args()
    if args.child:
        print_child_us(args.child, measure)
        return
    server = subprocess.Popen([sys.executable, str(TOOLS / "bench_gym_server.py")], stdout=subprocess.PIPE, text=True)
    try:
        port = json.loads(server.stdout.readline())["port"]
        _wait_up(port)
        spec = {"port": port, "rollouts": args.rollouts, "calls": args.calls, "rounds": args.rounds}
        print_per_call_table(__file__, spec, args.concurrency, args.reps, str(ROOT), "request")
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
