"""A minimal, fast OpenAI-compatible chat-completions server for benchmarks.

Run it in its own process so its CPU is not billed to the client being
measured::

    python tools/bench_server.py [--port 0]      # prints {"port": N} on stdout

It answers ``POST …/chat/completions`` with canned replies: ``turns - 1`` turns
that each make one ``echo`` tool call, then a final text answer. The turn is
the number of assistant messages already in the request, found by counting
bytes (no JSON parsing), so any number of conversations can interleave. Each
reply is held back ``latency_ms`` (a timer, no task per request).

Control, over the same port:

* ``POST /control`` with a JSON object of any of ``latency_ms``, ``turns``,
  ``content_bytes`` (assistant text per reply), ``args_bytes`` (the echo
  argument per tool call), ``tools`` (the tool called at each turn, in turn:
  ``echo`` and Gym tools get ``{"text": ...}``, ``bash`` gets
  ``{"command": "echo ..."}``): sets the script and zeroes the counters;
* ``POST /nolatency/v1/chat/completions``: the same script, answered at once
  (a client's warm-up run before the measured one);
* ``GET /stats``: ``{"requests", "cpu_s", "config"}``, where ``cpu_s`` is this
  process's CPU time (user + system) since the last ``/control``.

A raw ``asyncio.Protocol`` with keep-alive HTTP/1.1 and no framework: about
30 µs of CPU per request, so one core serves far more than the clients under
test can send.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from typing import Any

#: a path prefix that answers at once whatever ``latency_ms`` is (a client's warm-up run)
NO_LATENCY = b"/nolatency/"
_ASSISTANT = (b'"role":"assistant"', b'"role": "assistant"')
_REASONS = {200: b"OK", 400: b"Bad Request", 404: b"Not Found"}


class Script:
    """What every conversation gets; replies are pre-rendered per turn."""

    def __init__(self, latency_ms: float = 0.0, turns: int = 5, content_bytes: int = 16, args_bytes: int = 16,
                 tools: list[str] | None = None):
        if turns < 1:
            raise ValueError("turns must be >= 1")
        self.tools = list(tools or ["echo"])
        self.latency = max(0.0, float(latency_ms)) / 1000
        self.turns = int(turns)
        self.content_bytes = int(content_bytes)
        self.args_bytes = int(args_bytes)
        content = "c" * self.content_bytes
        self._tool_parts = []
        for turn in range(self.turns - 1):
            tool = self.tools[turn % len(self.tools)]
            text = f"t{turn}:" + "a" * self.args_bytes
            args = json.dumps({"command": f"echo {text}"} if tool == "bash" else {"text": text}, separators=(",", ":"))
            message = {
                "role": "assistant",
                "content": content,
                "tool_calls": [
                    {"id": f"call_{turn}", "type": "function", "function": {"name": tool, "arguments": args}}
                ],
            }
            self._tool_parts.append(self._parts(message, "tool_calls", len(content) + len(args)))
        final = {"role": "assistant", "content": "final answer " + content}
        self._final_parts = self._parts(final, "stop", len(final["content"]))

    @staticmethod
    def _parts(message: dict[str, Any], finish: str, out_chars: int) -> tuple[bytes, bytes]:
        """(prefix, suffix) of the body around the prompt-token count."""
        head = {
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": "bench-model",
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        }
        text = json.dumps(head, separators=(",", ":"))[:-1]
        completion = max(1, out_chars // 4)
        prefix = (text + ',"usage":{"prompt_tokens":').encode()
        suffix = (
            f',"completion_tokens":{completion},"total_tokens":0,'
            '"prompt_tokens_details":{"cached_tokens":0},'
            '"completion_tokens_details":{"reasoning_tokens":0}}}'
        ).encode()
        return prefix, suffix

    def reply(self, body: bytes) -> bytes:
        turn = body.count(_ASSISTANT[0]) + body.count(_ASSISTANT[1])
        prefix, suffix = self._tool_parts[turn] if turn < self.turns - 1 else self._final_parts
        return prefix + str(max(1, len(body) // 4)).encode() + suffix

    def describe(self) -> dict[str, Any]:
        return {
            "latency_ms": self.latency * 1000,
            "turns": self.turns,
            "content_bytes": self.content_bytes,
            "args_bytes": self.args_bytes,
            "tools": self.tools,
        }


class State:
    def __init__(self) -> None:
        self.script = Script()
        self.requests = 0
        self.cpu0 = time.process_time()


def _response(status: int, body: bytes, close: bool = False) -> bytes:
    head = b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n" % (
        status, _REASONS.get(status, b"Error"), len(body)
    )
    return head + (b"connection: close\r\n\r\n" if close else b"\r\n") + body


class HttpProtocol(asyncio.Protocol):
    def __init__(self, state: State, loop: asyncio.AbstractEventLoop):
        self.state = state
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.buf = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buf = self.buf + data if self.buf else data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buf[:end]
            lower = head.lower()
            at = lower.find(b"content-length:")
            length = 0
            if at >= 0:
                stop = lower.find(b"\r\n", at)
                length = int(lower[at + 15 : stop if stop >= 0 else len(lower)])
            total = end + 4 + length
            if len(self.buf) < total:
                return
            body = self.buf[end + 4 : total]
            self.buf = self.buf[total:]
            self.handle(head, body)

    def handle(self, head: bytes, body: bytes) -> None:
        line = head[: head.find(b"\r\n")] if b"\r\n" in head else head
        method, _, rest = line.partition(b" ")
        target = rest.partition(b" ")[0]
        state = self.state
        if method == b"POST" and target.endswith(b"/chat/completions"):
            state.requests += 1
            data = _response(200, state.script.reply(body))
            if state.script.latency > 0 and not target.startswith(NO_LATENCY):
                self.loop.call_later(state.script.latency, self.send, data)
            else:
                self.send(data)
        elif method == b"GET" and target == b"/stats":
            stats = {
                "requests": state.requests,
                "cpu_s": time.process_time() - state.cpu0,
                "config": state.script.describe(),
            }
            self.send(_response(200, json.dumps(stats).encode()))
        elif method == b"POST" and target == b"/control":
            try:
                state.script = Script(**json.loads(body or b"{}"))
            except (TypeError, ValueError) as exc:
                self.send(_response(400, json.dumps({"error": {"message": str(exc)}}).encode()))
                return
            state.requests = 0
            state.cpu0 = time.process_time()
            self.send(_response(200, json.dumps(state.script.describe()).encode()))
        else:
            self.send(_response(404, b'{"error":{"message":"not found"}}'))

    def send(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)


async def serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    state = State()
    server = await loop.create_server(lambda: HttpProtocol(state, loop), host, port, backlog=4096)
    actual = server.sockets[0].getsockname()[1]
    sys.stdout.write(json.dumps({"port": actual, "pid": os.getpid()}) + "\n")
    sys.stdout.flush()
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        asyncio.run(serve(args.host, args.port))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
