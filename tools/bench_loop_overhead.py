"""react-eval's own per-turn CPU, without any transport: the loop, the tool dispatch, the
argument check, the events, the trajectory recording, its validation and the result row.

    python tools/bench_loop_overhead.py                 # 300 rollouts x 8 turns, best of 5
    python tools/bench_loop_overhead.py --rollouts 1000 --turns 4 --repeat 3

The model is an in-process object that returns one tool call per turn (its
arguments parsed as the transports parse them), the tool an in-process echo;
so what is left is what react-eval adds to every path (issue 16: "every path
pays react-eval's per-turn cost"). Beside it, a bare loop doing the same work
by hand: the same messages, the same echo, the same result dicts, and one
JSON document per rollout written with orjson. Both run in this process, one
after the other, each the best of ``--repeat`` runs; the ratio is what the
framework costs per turn over the bare minimum.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from react_eval.engine.results import RolloutResult  # noqa: E402
from react_eval.engine.rollout import _outcome_fields  # noqa: E402
from react_eval.loop import LoopConfig, ReActLoop  # noqa: E402
from react_eval.model.response import ModelResponse, make_tool_call  # noqa: E402
from react_eval.tools.base import CompositeBackend  # noqa: E402
from react_eval.trajectories import TrajectoryRecorder  # noqa: E402
from react_eval.types import Task, ToolResult, ToolSpec, Usage  # noqa: E402

ECHO = ToolSpec(name="echo", description="Echo the text back.",
                parameters={"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]})
ARGS = orjson.dumps({"text": "a" * 16}).decode()


class ScriptedModel:
    """Calls ``echo`` on every turn but the last, then answers."""

    def __init__(self, turns: int):
        self.turns = turns

    async def complete(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> ModelResponse:
        turn = sum(1 for m in messages if m["role"] == "assistant") + 1
        usage = Usage(prompt_tokens=100 * turn, completion_tokens=10, cached_tokens=0, reasoning_tokens=0,
                      model_latency_ms=0.1)
        if turn >= self.turns:
            return ModelResponse(content="final answer", finish_reason="stop", usage=usage, model="bench")
        call = make_tool_call(f"call_{turn}", "echo", ARGS, 0)
        return ModelResponse(content="", tool_calls=[call], finish_reason="tool_calls", usage=usage, model="bench")


class EchoBackend:
    async def list_tools(self) -> list[ToolSpec]:
        return [ECHO]

    async def call(self, name: str, arguments: dict[str, Any], *, timeout: float) -> ToolResult:
        return ToolResult(content=arguments["text"], exit_code=0)

    async def aclose(self) -> None:
        pass


async def react_eval_rollouts(n: int, turns: int) -> None:
    model = ScriptedModel(turns)
    config = LoopConfig(max_turns=turns + 1)
    for i in range(n):
        tools = await CompositeBackend({"echo": EchoBackend()}).start()
        defs = [s.to_openai() for s in await tools.list_tools()]
        recorder = TrajectoryRecorder(session_id=f"s{i}", agent_version="bench", model_name="bench",
                                      tool_definitions=defs, system_prompt="sys")
        outcome = await ReActLoop(model, tools, config, recorder).run(Task(id=f"t{i}", prompt="go"), "sys", defs)
        outcome.trajectory_json()  # what the runner writes
        row = {"run_id": "r", "benchmark": "b", "task_id": f"t{i}", "repeat": 0, "rollout_id": "x" * 16,
               "started_at": "", "finished_at": "", **_outcome_fields(outcome)}
        RolloutResult.model_validate(row).model_dump_json()


async def bare_rollouts(n: int, turns: int) -> None:
    model = ScriptedModel(turns)
    for i in range(n):
        messages: list[dict[str, Any]] = [{"role": "system", "content": "sys"}, {"role": "user", "content": "go"}]
        steps: list[dict[str, Any]] = []
        prompt = 0
        while True:
            r = await model.complete(messages, [])
            prompt += r.usage.prompt_tokens or 0
            messages.append(r.assistant_message())
            step = {"source": "agent", "message": r.content, "tool_calls": [], "results": []}
            steps.append(step)
            if not r.tool_calls:
                break
            for call in r.tool_calls:
                text = call.arguments["text"] if call.arguments else ""
                messages.append({"role": "tool", "tool_call_id": call.id, "content": text})
                step["tool_calls"].append({"id": call.id, "name": call.name, "arguments": call.arguments})
                step["results"].append({"call_id": call.id, "content": text})
        orjson.dumps({"session_id": f"s{i}", "steps": steps})
        orjson.dumps({"task_id": f"t{i}", "turns": len(steps), "prompt_tokens": prompt, "final": r.content})


def best_cpu(fn: Any, n: int, turns: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        asyncio.run(fn(n, turns))
        best = min(best, time.process_time() - t0)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rollouts", type=int, default=300)
    parser.add_argument("--turns", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    asyncio.run(react_eval_rollouts(5, args.turns))  # warm: imports, schema and validator caches
    total = args.rollouts * args.turns
    ours = best_cpu(react_eval_rollouts, args.rollouts, args.turns, args.repeat) / total * 1e3
    bare = best_cpu(bare_rollouts, args.rollouts, args.turns, args.repeat) / total * 1e3
    print(f"{args.rollouts} rollouts x {args.turns} turns, best of {args.repeat}: CPU per turn "
          f"react-eval {ours:.3f} ms, bare loop {bare:.3f} ms, ratio {ours / bare:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
