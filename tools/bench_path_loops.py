"""The child side of tools/bench_paths.py: react-eval and a bare loop on each tool path.

Each function runs in a fresh process (``python tools/bench_paths.py --child
SPEC``) and returns its measurements as a dict. ``engine`` runs react-eval's
real engine (``run_benchmark``: executor, rollout runner, ReAct loop, recorder,
results and trajectories written); ``bare`` is a loop written here on aiohttp
and orjson that sends exactly the same HTTP sequence (the model, and for Gym:
``/openapi.json`` once, then per rollout ``/seed_session``, the tool POSTs on
the rollout's cookie, ``/verify``) and runs the same shell commands in a
persistent bash (local: a subprocess; Docker: a container per rollout with
one exec'd bash over the engine's socket), with no framework around it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import bench_harness  # tools/: the in-process echo benchmark
import orjson
from bench_meters import parked_on_model, children_cpu_s, cpu_s, peak_rss_kb, rss_kb, sample_rss

from react_eval.benchmarks.base import Benchmark, Verification
from react_eval.types import Task

SYSTEM = "You are a capable agent working in a sandbox through tools."
BENCH_LABEL = "react-eval.bench"  # every container a bench run makes carries it (value: the run's token)
ECHO_TOOL = {"type": "function", "function": {
    "name": "echo", "description": "Echo the text back.",
    "parameters": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}}}
#: tools the scripted model calls on each path, in turn
PATH_TOOLS = {"inprocess": ["echo"], "gym": ["echo"], "local": ["bash"], "bwrap": ["bash"], "docker": ["bash"],
              "gym+local": ["echo", "bash"]}
#: the scripted model's path prefix that answers at once (tools/bench_server.py): warm-up runs
NO_LATENCY = "/nolatency"




def gym_calls(path: str, turns: int) -> int:
    """How many Gym tool calls a rollout of ``turns`` model calls makes on ``path``."""
    tools = PATH_TOOLS[path]
    return sum(1 for t in range(turns - 1) if tools[t % len(tools)] == "echo") if path.startswith("gym") else 0


def gym_rows(path: str, n: int, turns: int) -> list[dict[str, Any]]:
    return [{"id": f"r{i:05d}", "responses_create_params": {"input": [{"role": "user", "content": f"Task {i}"}]},
             "expected_calls": gym_calls(path, turns)} for i in range(n)]


class SandboxBench(Benchmark):
    """Tasks that need a sandbox and use only the sandbox tools."""

    name = "bench-paths-sandbox"
    description = "tools/bench_paths.py: bash in a sandbox"
    needs_sandbox = True

    def __init__(self, n: int = 1):
        self.n = n

    def tasks(self) -> list[Task]:
        return [Task(id=f"t{i:05d}", prompt=f"Task {i}") for i in range(self.n)]

    async def verify(self, task, answer, env) -> Verification:
        return Verification(reward=1.0 if answer.final_message.startswith("final answer") else 0.0)


def _engine_config(validate_config: Any, spec: dict[str, Any], n: int, work: Path, model_prefix: str) -> Any:
    """react-eval's run config for ``spec``'s path with ``n`` rollouts, files under ``work``."""
    path, conc, turns = spec["path"], spec["concurrency"], spec["turns"]
    work.mkdir(parents=True, exist_ok=True)
    solver: dict[str, Any] = {"service": "model", "max_turns": turns + 1, "tool_timeout": 600}
    entry: dict[str, Any] = {"max_concurrent": conc, "solver": solver}
    if path == "inprocess":
        entry.update(name="bench-harness", options={"n": n})
        solver["sandbox_tools"] = False
    elif path.startswith("gym"):
        dataset = work / "rows.jsonl"
        dataset.write_bytes(b"\n".join(orjson.dumps(r) for r in gym_rows(path, n, turns)))
        entry.update(name=f"gym://127.0.0.1:{spec['gym_port']}", options={"dataset": str(dataset)})
        if path == "gym+local":
            solver["sandbox_tools"] = True
            entry["sandbox"] = {"type": "local", "root": str(work)}
    else:
        entry.update(name=SandboxBench.name, options={"n": n})
        if path == "local":
            entry["sandbox"] = {"type": "local", "root": str(work)}
        elif path == "bwrap":
            entry["sandbox"] = {"type": "local", "isolation": "bwrap", "root": str(work)}
        else:
            entry["sandbox"] = {"type": "docker", "concurrency": conc}
            if spec.get("warm_pool"):
                entry["sandbox"]["warm_pool"] = spec["warm_pool"]
    service = {"type": "api", "base_url": f"http://127.0.0.1:{spec['model_port']}{model_prefix}/v1",
               "model": "bench-model", "max_concurrent": conc, "max_attempts": 1}
    return validate_config({"services": {"model": service}, "benchmarks": [entry]})


# ------------------------------------------------------------------ react-eval


async def engine(spec: dict[str, Any]) -> dict[str, Any]:
    from react_eval.benchmarks.registry import available, register
    from react_eval.engine.config import validate_config
    from react_eval.engine.executor import LocalExecutor
    from react_eval.engine.processes import ProcessExecutor
    from react_eval.engine.results import read_jsonl
    from react_eval.engine.run import run_benchmark

    available()
    register(SandboxBench.name, SandboxBench)
    register(bench_harness.HarnessBenchmark.name, bench_harness.HarnessBenchmark)
    conc, n, workers = spec["concurrency"], spec["rollouts"], spec.get("workers", 1)

    def executor_for() -> Any:  # workers: N forks its workers from a fork server, started by the warm-up run
        return ProcessExecutor(conc, workers) if workers > 1 else LocalExecutor(conc)

    work = Path(tempfile.mkdtemp(prefix="bench-paths-"))
    run_id = f"bench-{spec.get('token', 'x')}"
    samples: list[int] = []
    sampler = None
    try:
        if spec.get("warmup"):  # one short run first, in this process: imports, pools and caches are not measured
            warm = _engine_config(validate_config, spec, spec["warmup"], work / "warm", NO_LATENCY)
            await run_benchmark(warm, warm.benchmarks[0], work / "warm" / "run", run_id=run_id,
                                executor=executor_for())
        config = _engine_config(validate_config, spec, n, work, "")
        gc.collect()
        rss0 = rss_kb()
        sampler = sample_rss(spec.get("sample_rss_at"), samples, *parked_on_model(spec))
        inner = executor_for()
        executor = bench_harness.TimedExecutor(inner)  # times run_all: the rollouts (and workers' start-up)
        await run_benchmark(config, config.benchmarks[0], work / "run", run_id=run_id, executor=executor)
        # the client's own CPU, its worker processes' included (they report theirs, the fork server's is read
        # from /proc); its sandbox processes' (bash, bwrap) apart, as the bare loop reports them
        worker_cpu = getattr(inner, "worker_cpu_s", 0.0)
        wall, cpu = executor.t1 - executor.t0, executor.own1 - executor.own0 + worker_cpu
        children = executor.kids1 - executor.kids0
        rows = list(read_jsonl(work / "run" / "results.jsonl"))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if sampler is not None:
        await sampler
    return {"wall_s": wall, "cpu_s": cpu, "children_cpu_s": children, "rollouts": len(rows), "dropped": n - len(rows),
            "failed": sum(1 for r in rows if r.get("error_kind") or r.get("reward") != 1.0),
            "errors": sorted({str(r.get("error"))[:200] for r in rows if r.get("error_kind")})[:3],
            "turns": sum(r["turns"] for r in rows), "rss0_kb": rss0, "rss_mid_kb": samples[0] if samples else None,
            "peak_rss_kb": peak_rss_kb(), "workers": workers, "worker_cpu_s": worker_cpu,
            "startup_s": getattr(inner, "startup_s", None) or 0.0,
            "worker_peak_rss_kb": getattr(inner, "worker_peak_rss_kb", 0)}


# ------------------------------------------------------------------ bare loop


class LocalShell:
    """A persistent bash as a plain subprocess; with ``jail``, one ``bwrap ... bash`` with
    the isolation flags of react-eval's bwrap sandbox (react_eval.sandboxes.bwrap.bwrap_argv,
    its default 1g /tmp; no cgroup, as the bare local shell has none)."""

    marker = b"__bench_end__"

    @classmethod
    async def start(cls, workdir: str, jail: bool = False) -> "LocalShell":
        argv = ["bash", "--noprofile", "--norc"]
        if jail:
            from react_eval.sandboxes.bwrap import bwrap_argv

            argv = bwrap_argv(argv, workdir=workdir, tmp_size=1 << 30)
        self = cls()
        self.proc = await asyncio.create_subprocess_exec(
            *argv, cwd=workdir, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        return self

    async def run(self, command: str) -> str:
        self.proc.stdin.write(command.encode() + b"\necho " + self.marker + b"$?\n")
        out = await self.proc.stdout.readuntil(self.marker)
        await self.proc.stdout.readline()
        return out[: -len(self.marker)].decode()

    async def close(self) -> None:
        self.proc.stdin.close()
        await self.proc.wait()


class DockerShell:
    """A container per rollout with one exec'd bash on the engine's raw socket."""

    marker = b"__bench_end__"

    @classmethod
    async def start(cls, api: Any, image: str, token: str, pool: concurrent.futures.Executor) -> "DockerShell":
        self = cls()
        self.api, self.pool = api, pool
        loop = asyncio.get_running_loop()

        def create() -> tuple[str, Any]:
            c = api.create_container(image, entrypoint=["sleep", "infinity"], labels={BENCH_LABEL: token},
                                     host_config=api.create_host_config(network_mode="none"), detach=True)
            api.start(c["Id"])
            ex = api.exec_create(c["Id"], ["bash", "--noprofile", "--norc"], stdin=True, stdout=True, stderr=True)
            return c["Id"], api.exec_start(ex["Id"], socket=True)

        self.id, sock = await loop.run_in_executor(pool, create)
        self.raw = sock._sock
        self.raw.setblocking(False)
        self.reader, self.writer = await asyncio.open_connection(sock=self.raw)
        self.buf = b""
        return self

    async def run(self, command: str) -> str:
        self.writer.write(command.encode() + b"\necho " + self.marker + b"$?\n")
        out = b""
        while self.marker not in out or not out.endswith(b"\n"):
            head = await self.reader.readexactly(8)  # docker's multiplexed frame: stream, 3 pad, size
            out += await self.reader.readexactly(int.from_bytes(head[4:], "big"))
        return out[: out.index(self.marker)].decode()

    async def close(self) -> None:
        self.writer.close()
        await asyncio.get_running_loop().run_in_executor(
            self.pool, lambda: self.api.remove_container(self.id, force=True, v=True))


def _cookie(headers: Any, cookie: str | None) -> str | None:
    for value in headers.getall("set-cookie", ()):
        cookie = value.split(";", 1)[0]
    return cookie


async def bare(spec: dict[str, Any]) -> dict[str, Any]:
    """The bare loop; with ``warmup``, a short run first in this process, as the engine's."""
    if spec.get("warmup"):
        await _bare_run({**spec, "rollouts": spec["warmup"], "sample_rss_at": None}, NO_LATENCY)
    return await _bare_run(spec, "")


async def _bare_run(spec: dict[str, Any], model_prefix: str) -> dict[str, Any]:
    import aiohttp

    from react_eval.tools.sandbox_tools import sandbox_tool_specs

    path, conc, n, turns = spec["path"], spec["concurrency"], spec["rollouts"], spec["turns"]
    gym = path.startswith("gym")
    sandbox = {"local": "local", "gym+local": "local", "bwrap": "bwrap", "docker": "docker"}.get(path)
    model_url = f"http://127.0.0.1:{spec['model_port']}{model_prefix}/v1/chat/completions"
    gym_url = f"http://127.0.0.1:{spec.get('gym_port')}"
    tools = ([ECHO_TOOL] if path.startswith("gym") or path == "inprocess" else []) + (
        [s.to_openai() for s in sandbox_tool_specs()] if sandbox else [])
    rows = gym_rows(path, n, turns)
    work = tempfile.mkdtemp(prefix="bench-bare-")
    api = pool = None
    if sandbox == "docker":
        import docker

        api = docker.APIClient(timeout=120, max_pool_size=conc + 4)
        pool = concurrent.futures.ThreadPoolExecutor(min(64, 2 * conc + 4))
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), cookie_jar=aiohttp.DummyCookieJar(),
                                    trust_env=False)
    json_headers = {"content-type": "application/json"}
    sem = asyncio.Semaphore(conc)
    counts = {"turns": 0, "ok": 0}
    samples: list[int] = []

    async def post(url: str, body: Any, cookie: str | None = None) -> tuple[Any, str | None]:
        headers = {**json_headers, "cookie": cookie} if cookie else json_headers
        async with session.post(url, data=orjson.dumps(body), headers=headers) as resp:
            data = orjson.loads(await resp.read())
            return data, _cookie(resp.headers, cookie)

    async def rollout(i: int) -> None:
        async with sem:
            cookie = shell = None
            row = rows[i]
            if gym:
                _, cookie = await post(gym_url + "/seed_session", row)
            if sandbox in ("local", "bwrap"):
                os.makedirs(f"{work}/{i}", exist_ok=True)
                shell = await LocalShell.start(f"{work}/{i}", jail=sandbox == "bwrap")
            elif sandbox == "docker":
                shell = await DockerShell.start(api, spec["image"], spec["token"], pool)
            try:
                messages: list[dict[str, Any]] = [{"role": "system", "content": SYSTEM},
                                                  {"role": "user", "content": f"Task {i}"}]
                output: list[dict[str, Any]] = []
                for _ in range(turns):
                    data, _ = await post(model_url, {"model": "bench-model", "messages": messages, "tools": tools})
                    counts["turns"] += 1
                    message = data["choices"][0]["message"]
                    messages.append(message)
                    if not message.get("tool_calls"):
                        output.append({"type": "message", "id": f"msg_{i}", "role": "assistant", "status": "completed",
                                       "content": [{"type": "output_text", "text": message["content"], "annotations": []}]})
                        break
                    for call in message["tool_calls"]:
                        fn = call["function"]
                        args = orjson.loads(fn["arguments"])
                        if fn["name"] == "bash":
                            content = await shell.run(args["command"])
                        elif gym:
                            reply, cookie = await post(f"{gym_url}/{fn['name']}", args, cookie)
                            content = orjson.dumps(reply).decode()
                        else:
                            content = args["text"]
                        messages.append({"role": "tool", "tool_call_id": call["id"], "content": content})
                        output += [{"type": "function_call", "call_id": call["id"], "name": fn["name"],
                                    "arguments": fn["arguments"], "id": f"fc_{call['id']}", "status": "completed"},
                                   {"type": "function_call_output", "call_id": call["id"], "output": content}]
                ok = messages[-1].get("content", "").startswith("final answer")
                if gym:
                    response = {"id": f"resp_{i}", "object": "response", "created_at": time.time(),
                                "model": "bench-model", "output": output, "parallel_tool_calls": True,
                                "tool_choice": "auto", "tools": tools}
                    verdict, _ = await post(gym_url + "/verify", {**row, "response": response}, cookie)
                    ok = ok and verdict.get("reward") == 1.0
                counts["ok"] += ok
            finally:
                if shell is not None:
                    await shell.close()

    if gym:
        async with session.get(gym_url + "/openapi.json") as resp:
            orjson.loads(await resp.read())
    gc.collect()
    rss0 = rss_kb()
    sampler = sample_rss(spec.get("sample_rss_at"), samples, *parked_on_model(spec))
    cpu0, kids0, t0 = cpu_s(), children_cpu_s(), time.perf_counter()
    results = await asyncio.gather(*(rollout(i) for i in range(n)), return_exceptions=True)
    wall, cpu, children = time.perf_counter() - t0, cpu_s() - cpu0, children_cpu_s() - kids0
    if sampler is not None:
        await sampler
    await session.close()
    if pool is not None:
        pool.shutdown()
    shutil.rmtree(work, ignore_errors=True)
    errors = [r for r in results if isinstance(r, BaseException)]
    return {"wall_s": wall, "cpu_s": cpu, "children_cpu_s": children, "rollouts": n - len(errors), "dropped": 0,
            "failed": n - counts["ok"],
            "errors": sorted({repr(e)[:200] for e in errors})[:3], "turns": counts["turns"], "rss0_kb": rss0,
            "rss_mid_kb": samples[0] if samples else None,
            "peak_rss_kb": peak_rss_kb()}


# ------------------------------------------------------------------ Docker lifecycle


async def lifecycle(spec: dict[str, Any]) -> dict[str, Any]:
    """Create, first command and close of ``k`` Docker sandboxes at once; then, with a
    warm pool at steady state, rollout start (the provider's create) to first result."""
    from react_eval.sandboxes.docker import DockerSandboxProvider
    from react_eval.sandboxes.docker.config import DockerSandboxConfig

    out: dict[str, Any] = {}
    for k in spec["counts"]:
        provider = DockerSandboxProvider(DockerSandboxConfig(concurrency=k), run_id=f"bench-{spec['token']}")
        await provider.connect()
        times: dict[str, list[float]] = {"create": [], "first": [], "close": []}

        async def one() -> Any:
            t0 = time.perf_counter()
            box = await provider.create(None, labels={})
            t1 = time.perf_counter()
            await box.exec("echo x", 30)
            times["create"].append((t1 - t0) * 1000)
            times["first"].append((time.perf_counter() - t1) * 1000)
            return box

        t0 = time.perf_counter()
        boxes = await asyncio.gather(*(one() for _ in range(k)))
        ready = time.perf_counter() - t0

        async def close(box: Any) -> None:
            t = time.perf_counter()
            await box.close()
            times["close"].append((time.perf_counter() - t) * 1000)

        t0 = time.perf_counter()
        await asyncio.gather(*(close(b) for b in boxes))
        closed = time.perf_counter() - t0
        await provider.aclose()
        out[str(k)] = {name: {"p50": statistics.median(v), "max": max(v)} for name, v in times.items()}
        out[str(k)].update(all_ready_s=ready, all_closed_s=closed)
    if spec.get("warm_pool"):
        out["warm"] = await warm_start(spec)
    return out


async def warm_start(spec: dict[str, Any]) -> dict[str, Any]:
    """Rollout start (the pool's create) to first tool result, pool at steady state."""
    from react_eval.sandboxes.docker.config import DockerSandboxConfig
    from react_eval.sandboxes.docker.pool import WarmDockerProvider

    size = spec["warm_pool"]
    provider = WarmDockerProvider(DockerSandboxConfig(concurrency=size + 2, warm_pool=size),
                                  run_id=f"bench-{spec['token']}")
    lat: list[float] = []
    try:
        await provider.start_filling()
        for _ in range(spec.get("warm_reps", 20)):
            await provider.wait_warm(1, timeout=120)  # steady state: a warm container is there
            t0 = time.perf_counter()
            box = await provider.create(None, labels={})
            await box.exec("echo x", 30)
            lat.append((time.perf_counter() - t0) * 1000)
            await box.close()
        hits = provider.hits
    finally:
        await provider.aclose()
    lat.sort()
    return {"p50_ms": statistics.median(lat), "p90_ms": lat[int(0.9 * (len(lat) - 1))], "n": len(lat),
            "hits": hits, "size": size}


CHILDREN = {"engine": engine, "bare": bare, "lifecycle": lifecycle}
