"""CPU per model call: react-eval's model client beside a bare aiohttp post, over real HTTP.

Every turn of every tool path pays one model call, so the client's own cost
per call (request body, concurrency slot, retry policy, transport, reading
the reply into a ``ModelResponse``) is measured alone here, beside a bare
loop doing only what a hand-written client must: ``orjson.dumps``,
``session.post`` (aiohttp, no connection limit, no cookie jar, no
environment lookups), ``await resp.read()``, ``orjson.loads``. Both post the
same conversation to the same scripted server (``tools/bench_server.py``, in
its own process so its CPU is not billed to the client), each in a fresh
process, alternating; a run reports the best of several rounds per process
(CPU time is steadier than wall time on a shared machine, the minimum
steadier still)::

    python tools/bench_model_call.py [--concurrency 1,16,256] [--calls 3000] [--reps 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

from bench_meters import add_rep_options, cpu_s, print_child_us, print_per_call_table  # tools/

TOOLS = Path(__file__).resolve().parent
ROOT = TOOLS.parent
ECHO = {"type": "function", "function": {
    "name": "echo", "description": "Echo the text back.",
    "parameters": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}}}
MESSAGES = [{"role": "system", "content": "You are a capable agent working in a sandbox through tools."},
            {"role": "user", "content": "Task 1"}]


async def measure(kind: str, port: int, concurrency: int, calls: int, rounds: int) -> float:
    """Best CPU µs per call over ``rounds`` rounds of ``calls`` calls, ``concurrency`` at once."""
    import aiohttp
    import orjson

    if kind == "bare":
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), cookie_jar=aiohttp.DummyCookieJar(),
                                        trust_env=False)
        url, headers = f"http://127.0.0.1:{port}/v1/chat/completions", {"content-type": "application/json"}

        async def call() -> Any:
            body = orjson.dumps({"model": "bench-model", "messages": MESSAGES, "tools": [ECHO]})
            async with session.post(url, data=body, headers=headers) as resp:
                return orjson.loads(await resp.read())

        close = session.close
    else:
        from react_eval.model.config import ModelConfig
        from react_eval.model.factory import build_model

        model = build_model(ModelConfig(model="bench-model", base_url=f"http://127.0.0.1:{port}/v1", api_key="bench",
                                        max_concurrent=concurrency, max_attempts=1))

        async def call() -> Any:
            return await model.complete(MESSAGES, [ECHO])

        close = model.aclose
    left = 0

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await call()

    left = min(calls, 200)  # warm up: connections, first-call caches
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    best = float("inf")
    for _ in range(rounds):
        left = calls
        before = cpu_s()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        best = min(best, (cpu_s() - before) / calls * 1e6)
    await close()
    return best


def _control(port: int, settings: dict[str, Any]) -> None:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/control", data=json.dumps(settings).encode(), method="POST")
    urllib.request.urlopen(req, timeout=10).read()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--concurrency", default="1,16,256")
    parser.add_argument("--calls", type=int, default=3000)
    add_rep_options(parser)
    args = parser.parse_args()
    if args.child:
        print_child_us(args.child, measure)
        return
    server = subprocess.Popen([sys.executable, str(TOOLS / "bench_server.py")], stdout=subprocess.PIPE, text=True)
    try:
        port = json.loads(server.stdout.readline())["port"]
        _control(port, {"latency_ms": 0, "turns": 4, "tools": ["echo"]})
        spec = {"port": port, "calls": args.calls, "rounds": args.rounds}
        print_per_call_table(__file__, spec, args.concurrency, args.reps, str(ROOT), "call")
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
