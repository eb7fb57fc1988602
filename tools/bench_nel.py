"""The ``nel`` client of tools/bench_paths.py: NeMo Evaluator's ReActSolver on the Gym path.

    <nel venv>/bin/python tools/bench_nel.py SPEC_JSON    # prints "RESULT {...}"

Run by the interpreter of tools/ensure_nel_venv.sh (nemo-evaluator 0.3.0 needs
Python >= 3.12), in its own process, so it imports nothing of react-eval. It
drives NeMo Evaluator's own ``tool_calling`` loop (``ReActSolver`` with its
``ModelClient`` and ``HttpToolBackend``, built as its orchestrator builds them)
against the same scripted model and the same Gym resources server, with the
same rows, as react-eval's engine and the bare loop. The wiring around it is
the least that makes the same HTTP sequence:

* the tool list comes from ``/openapi.json`` once, through NEL's own converter,
  and is handed to every rollout in its seed (``metadata["tools"]``, which the
  solver prefers), as the bare loop fetches it once;
* each rollout gets its own ``HttpToolBackend`` (NEL's orchestrator shares one
  per benchmark, whose single cookie jar would mix the rollouts' sessions and
  whose ``close`` after each rollout would cut the others'); ``/seed_session``
  goes through that backend's aiohttp session, so the tool POSTs carry the
  rollout's cookie. That session is made as the backend's ``_get_session``
  makes it, except for ``CookieJar(unsafe=True)``: aiohttp's default jar drops
  the cookies of an IP host such as 127.0.0.1;
* ``/verify`` is posted with the rollout's cookie and the body NEL's native Gym
  protocol sends (the row, and the final text wrapped by
  ``wrap_text_as_gym_response``).

Not measured: NEL's eval loop (step logs, result files) around the solver;
react-eval's row includes writing its results and trajectories.
"""

from __future__ import annotations

import asyncio
import gc
import json
import sys
import time
from typing import Any

from bench_meters import parked_on_model, cpu_s, peak_rss_kb, rss_kb, sample_rss  # tools/, standard library only

SYSTEM = "You are a capable agent working in a sandbox through tools."  # as tools/bench_path_loops.py
NO_LATENCY = "/nolatency"


def gym_rows(n: int, turns: int) -> list[dict[str, Any]]:
    """The rows of tools/bench_path_loops.gym_rows for the ``gym`` path (every tool call is Gym's)."""
    return [{"id": f"r{i:05d}", "responses_create_params": {"input": [{"role": "user", "content": f"Task {i}"}]},
             "expected_calls": turns - 1} for i in range(n)]


async def run(spec: dict[str, Any], model_prefix: str) -> dict[str, Any]:
    import aiohttp
    from nemo_evaluator.engine.model_client import ModelClient
    from nemo_evaluator.environments.base import SeedResult
    from nemo_evaluator.environments.gym_protocol import messages_from_rcp, wrap_text_as_gym_response
    from nemo_evaluator.solvers.react import ReActSolver
    from nemo_evaluator.solvers.tool_backend import HttpToolBackend, _openapi_to_tools

    if spec["path"] != "gym":
        raise ValueError(f"the nel client has no like-for-like mode for path {spec['path']!r}")
    conc, n, turns = spec["concurrency"], spec["rollouts"], spec["turns"]
    gym_url = f"http://127.0.0.1:{spec['gym_port']}"
    client = ModelClient(base_url=f"http://127.0.0.1:{spec['model_port']}{model_prefix}/v1", model="bench-model",
                         max_concurrent=conc, timeout=600.0)
    verifier = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())
    async with verifier.get(gym_url + "/openapi.json") as resp:
        tools = _openapi_to_tools(await resp.json())
    rows = gym_rows(n, turns)
    sem = asyncio.Semaphore(conc)
    counts = {"turns": 0, "ok": 0}
    samples: list[int] = []

    async def rollout(i: int) -> None:
        async with sem:
            row = rows[i]
            backend = HttpToolBackend(gym_url, timeout=600.0)
            # NEL's per-backend aiohttp session, as ``_get_session`` makes it, but with a cookie jar that
            # keeps an IP host's cookies (aiohttp's default jar drops them: no session on 127.0.0.1)
            session = backend._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600.0),
                                                               cookie_jar=aiohttp.CookieJar(unsafe=True))
            async with session.post(gym_url + "/seed_session", json=row) as resp:
                await resp.json()
            jar = session.cookie_jar
            solver = ReActSolver(client=client, http_backend=backend, max_turns=turns + 1, system_prompt=SYSTEM,
                                 tool_timeout=600.0)
            seed = SeedResult(prompt=f"Task {i}", expected_answer="", messages=messages_from_rcp(row["responses_create_params"]),
                              metadata={"tools": tools})
            result = await solver.solve(seed)  # closes the backend
            counts["turns"] += sum(1 for step in result.trajectory[0]["steps"] if step.get("source") == "agent")
            cookie = "; ".join(f"{m.key}={m.value}" for m in jar)
            body = {**row, "response": wrap_text_as_gym_response(result.response)}
            async with verifier.post(gym_url + "/verify", json=body, headers={"cookie": cookie}) as resp:
                verdict = await resp.json()
            counts["ok"] += result.error is None and result.response.startswith("final answer") and \
                verdict.get("reward") == 1.0

    gc.collect()
    rss0 = rss_kb()
    sampler = sample_rss(spec.get("sample_rss_at"), samples, *parked_on_model(spec))
    cpu0, t0 = cpu_s(), time.perf_counter()
    results = await asyncio.gather(*(rollout(i) for i in range(n)), return_exceptions=True)
    wall, cpu = time.perf_counter() - t0, cpu_s() - cpu0
    if sampler is not None:
        await sampler
    await verifier.close()
    await client.close()
    errors = [r for r in results if isinstance(r, BaseException)]
    return {"wall_s": wall, "cpu_s": cpu, "rollouts": n - len(errors), "dropped": 0, "failed": n - counts["ok"],
            "errors": sorted({repr(e)[:200] for e in errors})[:3], "turns": counts["turns"], "rss0_kb": rss0,
            "rss_mid_kb": samples[0] if samples else None,
            "peak_rss_kb": peak_rss_kb()}


async def nel(spec: dict[str, Any]) -> dict[str, Any]:
    """As the engine and the bare loop: with ``warmup``, a short run first in this process."""
    if spec.get("warmup"):
        await run({**spec, "rollouts": spec["warmup"], "sample_rss_at": None}, NO_LATENCY)
    out = await run(spec, "")
    from importlib.metadata import version

    out["nel_version"] = version("nemo-evaluator")
    return out


def main() -> int:
    spec = json.loads(sys.argv[1])
    result = asyncio.run(nel(spec))
    sys.stdout.write("RESULT " + json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
