"""Sandbox latency benchmark: bash round trips and container start/stop.

    python tools/bench_sandbox.py            # print the table, update docs/PERFORMANCE.md
    python tools/bench_sandbox.py --no-write # print only
    python tools/bench_sandbox.py -n 500 --kinds local,docker

Measures, on this machine, with real processes and containers:

* the round trip of one bash call (``echo x``) through ``Sandbox.exec`` for the
  local, local+bwrap and Docker sandboxes (persistent shell), next to a plain
  ``docker exec`` per call (the SDK's ``exec_run``) in the same run;
* the time to start a Docker sandbox (container created and started, control
  shell and bash shell answering) and to stop it (``close()``: remove -f).

Targets (printed as met / missed, never asserted): Docker bash p50 <= 2 ms,
local bash p50 <= 1 ms. The results replace the section between
``<!-- sandboxes:start -->`` and ``<!-- sandboxes:end -->`` of
docs/PERFORMANCE.md (the rest of the file is kept).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import anyio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from react_eval.sandboxes.docker import DockerSandboxProvider, prune_containers  # noqa: E402
from react_eval.sandboxes.docker.config import DockerSandboxConfig  # noqa: E402
from react_eval.sandboxes.local import LocalSandboxConfig, LocalSandboxProvider  # noqa: E402

DOC = ROOT / "docs" / "PERFORMANCE.md"
START, END = "<!-- sandboxes:start -->", "<!-- sandboxes:end -->"
WARMUP = 10
TARGETS = {"local": 1.0, "docker": 2.0}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


async def shell_round_trips(sandbox, n: int) -> list[float]:
    for _ in range(WARMUP):
        await sandbox.exec("echo x", 10)
    times = []
    for _ in range(n):
        t = time.perf_counter()
        r = await sandbox.exec("echo x", 10)
        times.append((time.perf_counter() - t) * 1000)
        assert r.output == "x\n" and r.exit_code == 0, r
    return times


async def bench_local(isolation: str, n: int, root: str) -> list[float]:
    provider = LocalSandboxProvider(LocalSandboxConfig(root=root, isolation=isolation))
    try:
        sandbox = await provider.create(None, labels={})
        return await shell_round_trips(sandbox, n)
    finally:
        await provider.aclose()


async def bench_docker(n: int, starts: int, run_id: str) -> dict[str, list[float]]:
    provider = DockerSandboxProvider(DockerSandboxConfig(), run_id=run_id)
    out: dict[str, list[float]] = {"start": [], "stop": []}
    try:
        sandbox = await provider.create(None, labels={})
        out["docker"] = await shell_round_trips(sandbox, n)
        api, cid = provider.api, sandbox.container_id

        def plain_exec() -> list[float]:
            for _ in range(WARMUP):
                api.exec_start(api.exec_create(cid, ["echo", "x"])["Id"])
            times = []
            for _ in range(n):
                t = time.perf_counter()
                ex = api.exec_create(cid, ["echo", "x"])
                got = api.exec_start(ex["Id"])
                times.append((time.perf_counter() - t) * 1000)
                assert got == b"x\n", got
            return times

        out["docker-exec"] = await anyio.to_thread.run_sync(plain_exec)
        await sandbox.close()
        for _ in range(starts):
            t = time.perf_counter()
            sandbox = await provider.create(None, labels={})
            out["start"].append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            await sandbox.close()
            out["stop"].append((time.perf_counter() - t) * 1000)
    finally:
        await provider.aclose()
        prune_containers(run_id=run_id)
    return out


def machine() -> str:
    mem = "?"
    try:
        with open("/proc/meminfo") as f:
            kb = int(next(line for line in f if line.startswith("MemTotal")).split()[1])
        mem = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, StopIteration, ValueError):
        pass
    docker = "n/a"
    if shutil.which("docker"):
        proc = subprocess.run(["docker", "version", "--format", "{{.Server.Version}} (API {{.Server.APIVersion}})"],
                              capture_output=True, text=True)
        docker = proc.stdout.strip() or "n/a"
    bwrap = subprocess.run(["bwrap", "--version"], capture_output=True, text=True).stdout.strip() if shutil.which("bwrap") else "n/a"
    return (
        f"- machine: `{' '.join(platform.uname())}`\n"
        f"- CPUs: {os.cpu_count()} (nproc), memory: {mem}\n"
        f"- Python {platform.python_version()}, Docker engine {docker}, {bwrap}\n"
        f"- date: {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}, "
        f"load average at the end of the run: {' '.join(f'{x:.2f}' for x in os.getloadavg())} "
        "(round trips wait on other processes -- dockerd, the container shim, bash -- so a busy "
        "machine shows up directly in p50/p95)"
    )


def render(results: dict[str, list[float]], n: int, starts: int) -> str:
    labels = {
        "local": "local (persistent shell)",
        "bwrap": "local + bwrap (persistent shell)",
        "docker": "docker (persistent shell over the exec socket)",
        "docker-exec": "docker (plain `docker exec` per call: exec_create + exec_start)",
    }
    lines = [
        f"Bash round trip of `echo x` through `Sandbox.exec` ({n} calls after {WARMUP} warm-up calls):",
        "",
        "| sandbox | p50 (ms) | p95 (ms) | mean (ms) | target (p50) |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for key, label in labels.items():
        if key not in results:
            continue
        values = results[key]
        p50 = percentile(values, 0.5)
        target = TARGETS.get(key)
        verdict = f"<= {target:g} ms: {'met' if p50 <= target else 'MISSED'}" if target else ""
        lines.append(
            f"| {label} | {p50:.3f} | {percentile(values, 0.95):.3f} | {statistics.fmean(values):.3f} | {verdict} |"
        )
    if results.get("start"):
        lines += [
            "",
            f"Docker sandbox lifecycle (mean of {starts}; image react-eval-sandbox:latest, network none):",
            "",
            "| step | mean (ms) | min (ms) | max (ms) |",
            "| --- | ---: | ---: | ---: |",
        ]
        for key, label in (("start", "start: create + start the container, control shell and bash answering"),
                           ("stop", "stop: `close()` (remove -f)")):
            v = results[key]
            lines.append(f"| {label} | {statistics.fmean(v):.0f} | {min(v):.0f} | {max(v):.0f} |")
    return "\n".join(lines)


def write_doc(body: str) -> None:
    section = f"{START}\n## Sandboxes\n\nWritten by `python tools/bench_sandbox.py`.\n\n{body}\n{END}"
    DOC.parent.mkdir(parents=True, exist_ok=True)
    text = DOC.read_text() if DOC.exists() else "# Performance\n"
    if START in text and END in text:
        head, rest = text.split(START, 1)
        text = head + section + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    tmp = DOC.with_suffix(".md.tmp")
    tmp.write_text(text)
    tmp.replace(DOC)


async def main_async(args: argparse.Namespace) -> dict[str, list[float]]:
    kinds = args.kinds.split(",")
    results: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="react-eval-bench-") as root:
        if "local" in kinds:
            results["local"] = await bench_local("none", args.n, root)
        if "bwrap" in kinds:
            results["bwrap"] = await bench_local("bwrap", args.n, root)
    if "docker" in kinds:
        results.update(await bench_docker(args.n, args.starts, f"bench-{uuid.uuid4().hex[:8]}"))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=200, help="bash calls per sandbox (default 200)")
    parser.add_argument("--starts", type=int, default=5, help="container start/stop cycles (default 5)")
    parser.add_argument("--kinds", default="local,bwrap,docker", help="comma-separated: local,bwrap,docker")
    parser.add_argument("--no-write", action="store_true", help="do not update docs/PERFORMANCE.md")
    args = parser.parse_args()
    results = anyio.run(main_async, args)
    body = machine() + "\n\n" + render(results, args.n, args.starts)
    print(body)
    if not args.no_write:
        write_doc(body)
        print(f"\nupdated {DOC.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
