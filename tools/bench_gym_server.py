"""A NeMo Gym-style resources server for benchmarks: FastAPI + Starlette sessions.

    python tools/bench_gym_server.py      # prints {"port": N, "pid": P} on stdout

Shaped like Gym's example servers: ``SessionMiddleware`` keeps a session id in
a signed cookie; ``POST /seed_session`` starts a rollout's counter, ``POST
/echo`` (the one tool) counts a call and echoes its text, ``POST /verify``
answers ``reward`` 1.0 when the session saw ``expected_calls`` tool calls, so a
client that mixes up sessions scores less than 1. ``GET /bench/stats`` gives
the requests served and this process's CPU since ``POST /bench/reset``
(both left out of ``/openapi.json``). Run by uvicorn (httptools, no access
log) in its own process, so its CPU is not billed to the client under test.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time
import uuid
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from pydantic import BaseModel, Field
from starlette.middleware.sessions import SessionMiddleware


class Echo(BaseModel):
    text: str = Field(description="The text to echo back.")


def make_app() -> FastAPI:
    app = FastAPI(title="bench-gym")
    app.add_middleware(SessionMiddleware, secret_key="react-eval-bench")
    calls: dict[str, int] = {}
    stats = {"requests": 0, "cpu0": time.process_time()}

    def sid(request: Request) -> str:
        stats["requests"] += 1
        if "id" not in request.session:
            request.session["id"] = uuid.uuid4().hex
        return request.session["id"]

    @app.post("/seed_session")
    async def seed_session(request: Request, body: dict) -> dict:
        calls[sid(request)] = 0
        return {}

    @app.post("/echo")
    async def echo(request: Request, body: Echo) -> dict:
        """Echo the text back."""
        key = sid(request)
        calls[key] = calls.get(key, 0) + 1
        return {"text": body.text}

    @app.post("/verify")
    async def verify(request: Request, body: dict) -> dict:
        seen = calls.pop(sid(request), None)
        return {"reward": 1.0 if seen == body.get("expected_calls") else 0.0, "calls": seen}

    @app.get("/bench/stats", include_in_schema=False)
    async def bench_stats() -> dict[str, Any]:
        return {"requests": stats["requests"], "cpu_s": time.process_time() - stats["cpu0"], "open": len(calls)}

    @app.post("/bench/reset", include_in_schema=False)
    async def bench_reset(request: Request) -> dict[str, Any]:
        # read the body even though it is unused: uvicorn closing a `Connection: close`
        # socket with the body still unread makes the kernel reset it, which can
        # reach the client before the reply does (ECONNRESET in the runner)
        await request.body()
        stats.update(requests=0, cpu0=time.process_time())
        calls.clear()
        return {}

    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", args.port))
    sys.stdout.write(json.dumps({"port": sock.getsockname()[1], "pid": os.getpid()}) + "\n")
    sys.stdout.flush()
    config = uvicorn.Config(make_app(), log_level="warning", access_log=False, lifespan="off", backlog=4096,
                            timeout_keep_alive=30)
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
