"""Benchmark of every tool path, each beside a bare aiohttp loop doing the same requests.

    python tools/bench_paths.py             # full run, writes the paths section of docs/PERFORMANCE.md
    python tools/bench_paths.py --quick     # fewer rollouts per row (10-15 min on an idle 2-core machine)
    python tools/bench_paths.py --quick --paths gym --parts matrix --repeat 3 --no-write --json out.json

Paths: ``inprocess`` (an in-process echo tool), ``gym`` (a FastAPI + Starlette
sessions resources server in its own process, tools/bench_gym_server.py:
seed_session, the tool POSTs and verify on per-rollout cookies), ``local``
(bash in the local sandbox), ``bwrap`` (the same under bubblewrap),
``docker`` (bash in a Docker sandbox, with and without the warm pool) and
``gym+local`` (Gym tools and bash in one rollout). The model is
tools/bench_server.py in its own process, scripted to call each path's tools;
every rollout makes ``--turns`` model calls.

For each path, concurrency (1, 16, 256, 1,000; the sandbox paths are capped,
see ``--docker-max`` and ``--local-max``) and model latency (0 and 200 ms), react-eval's real engine
and the bare loop of tools/bench_path_loops.py run back to back, each in a
fresh process that first makes a short warm-up run; on the Gym path NeMo
Evaluator's ReActSolver runs too (tools/bench_nel.py, in the venv of
tools/ensure_nel_venv.sh). ``--repeat K`` runs each row's clients K times,
interleaved, for medians and ranges. The in-process and Gym paths get one more
row at 1,000 concurrent with a 200 ms model: react-eval with ``workers: 2``
(``--workers``; its CPU counts the worker processes' too). The report (tools/bench_paths_report.py)
gives client CPU per turn and rollouts/s, their ratios, efficiency against the
ideal C/(L·T), peak RSS, failed and dropped rollouts; then RSS per in-flight
rollout (after the warm-up, rollouts parked on a slow model) and the Docker
sandbox lifecycle at 1, 8 and 32 containers at once.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ROOT / "tools"
for p in (str(ROOT), str(TOOLS)):
    if p not in sys.path:
        sys.path.insert(0, p)

import bench_harness  # noqa: E402
from bench_path_loops import BENCH_LABEL, CHILDREN, PATH_TOOLS  # noqa: E402
from bench_paths_report import median_run, render, rollouts_for, summary, warmup_for, write_doc  # noqa: E402

PATHS = ["inprocess", "gym", "local", "bwrap", "docker", "gym+local"]
#: paths where NeMo Evaluator has a like-for-like mode, driven by tools/bench_nel.py
NEL_PATHS = {"gym"}
CONCURRENCIES = [1, 16, 256, 1000]
#: paths that also get a ``workers: N`` row at 1,000 concurrent, 200 ms model (``--workers``)
WORKER_PATHS = {"inprocess", "gym"}


def _get(url: str, data: dict | None = None) -> dict[str, Any]:
    req = urllib.request.Request(url, data=json.dumps(data).encode() if data is not None else None,
                                 method="POST" if data is not None else "GET",
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


class Servers:
    """The scripted model and the Gym server, each in its own process."""

    def __init__(self) -> None:
        self.model = subprocess.Popen([sys.executable, str(TOOLS / "bench_server.py")], stdout=subprocess.PIPE, text=True)
        self.gym = subprocess.Popen([sys.executable, str(TOOLS / "bench_gym_server.py")], stdout=subprocess.PIPE,
                                    text=True)
        self.model_port = json.loads(self.model.stdout.readline())["port"]
        self.gym_port = json.loads(self.gym.stdout.readline())["port"]
        for _ in range(100):
            try:
                _get(f"http://127.0.0.1:{self.gym_port}/bench/stats")
                break
            except OSError:
                time.sleep(0.1)

    def configure(self, path: str, latency_ms: float, turns: int) -> None:
        _get(f"http://127.0.0.1:{self.model_port}/control",
             {"latency_ms": latency_ms, "turns": turns, "tools": PATH_TOOLS[path]})
        _get(f"http://127.0.0.1:{self.gym_port}/bench/reset", {})

    def stats(self) -> dict[str, Any]:
        return {"model": _get(f"http://127.0.0.1:{self.model_port}/stats"),
                "gym": _get(f"http://127.0.0.1:{self.gym_port}/bench/stats")}

    def close(self) -> None:
        for proc in (self.model, self.gym):
            proc.terminate()
            proc.wait(10)


def run_child(spec: dict[str, Any], timeout: float = 1200, nel_python: str = "") -> dict[str, Any]:
    if spec["kind"] == "nel":  # NeMo Evaluator's interpreter, nothing of react-eval on its path
        argv = [nel_python, str(TOOLS / "bench_nel.py"), json.dumps(spec)]
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    else:
        argv = [sys.executable, __file__, "--child", json.dumps(spec)]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"child {spec['kind']} {spec.get('path')} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def ensure_nel(python: str = "") -> dict[str, Any]:
    """NeMo Evaluator's interpreter (tools/ensure_nel_venv.sh makes its venv), or why there is none."""
    if not python:
        try:
            proc = subprocess.run(["bash", str(TOOLS / "ensure_nel_venv.sh")], capture_output=True, text=True,
                                  timeout=900)
        except (OSError, subprocess.SubprocessError) as exc:
            return {"error": f"tools/ensure_nel_venv.sh: {exc}"}
        if proc.returncode != 0 or not proc.stdout.strip():
            return {"error": (proc.stderr.strip().splitlines() or ["tools/ensure_nel_venv.sh failed"])[-1]}
        python = proc.stdout.strip().splitlines()[-1]
    try:
        version = subprocess.run([python, "-c", "import importlib.metadata as m; print(m.version('nemo-evaluator'))"],
                                 capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        return {"error": f"{python}: {exc}"}
    if version.returncode != 0:
        return {"error": f"{python} has no nemo-evaluator ({(version.stderr.strip().splitlines() or [''])[-1][-200:]})"}
    return {"python": python, "version": version.stdout.strip()}


def remove_our_containers(token: str) -> int:
    """Remove the containers this run made (labelled with its token), and only those."""
    ids = set()
    for label in (f"{BENCH_LABEL}={token}", f"react-eval.run=bench-{token}"):
        out = subprocess.run(["docker", "ps", "-aq", "--filter", f"label={label}"], capture_output=True, text=True)
        ids |= set(out.stdout.split())
    if ids:
        subprocess.run(["docker", "rm", "-f", *ids], capture_output=True)
    return len(ids)


class Bench:
    def __init__(self, args: argparse.Namespace, log=print):
        self.args, self.log = args, log
        self.quick = args.quick
        self.token = os.urandom(4).hex()
        self.servers = Servers()
        self.r: dict[str, Any] = {"runs": [], "memory": {}, "lifecycle": None, "turns": args.turns,
                                  "repeat": args.repeat, "nel": None}

    def want_nel(self, paths: list[str]) -> None:
        """Find or make NeMo Evaluator's venv when a path has a like-for-like NEL mode."""
        if self.r["nel"] is not None or self.args.no_nel or not NEL_PATHS.intersection(paths):
            return
        self.r["nel"] = ensure_nel(self.args.nel_python)
        self.log(f"nel: {self.r['nel']}")

    def kinds(self, path: str, workers: int = 1) -> list[str]:
        nel = self.r.get("nel") or {}
        return ["engine", "bare"] + (["nel"] if path in NEL_PATHS and "python" in nel and workers == 1 else [])

    def cap(self, path: str) -> int:
        if path.startswith("docker"):
            return self.args.docker_max
        if path.endswith("local") or path == "bwrap":
            return min(self.args.local_max, self.args.max_concurrency)
        return self.args.max_concurrency

    def rollouts(self, conc: int, latency: float, path: str) -> int:
        return rollouts_for(conc, latency, path, self.args.turns, self.quick)

    def one(self, kind: str, path: str, conc: int, latency: float, rollouts: int, **extra: Any) -> dict[str, Any]:
        base = "docker" if path.startswith("docker") else path
        self.servers.configure(base, latency, self.args.turns)
        spec = {"kind": kind, "path": base, "concurrency": conc, "rollouts": rollouts, "turns": self.args.turns,
                "model_port": self.servers.model_port, "gym_port": self.servers.gym_port, "token": self.token,
                "image": self.args.image, "warmup": warmup_for(conc, path), **extra}
        if path == "docker+warm":
            spec["warm_pool"] = min(conc, self.args.warm_pool)
        try:
            result = run_child(spec, nel_python=(self.r.get("nel") or {}).get("python", ""))
        except Exception as exc:
            result = {"error": str(exc)[-1500:]}
        if base.startswith("docker"):
            remove_our_containers(self.token)
        result["server"] = self.servers.stats()
        return result

    def matrix(self, paths: list[str]) -> None:
        """Each row: every client ``--repeat`` times, interleaved (engine, bare, nel, engine, ...)."""
        self.want_nel(paths)
        for path in paths:
            cap = self.cap(path)
            for conc in sorted({min(c, cap) for c in CONCURRENCIES}):
                for latency in (0.0, 200.0):
                    self.row(path, conc, latency)
                    if self.args.workers > 1 and path in WORKER_PATHS and conc == 1000 and latency == 200.0:
                        self.row(path, conc, latency, workers=self.args.workers)

    def row(self, path: str, conc: int, latency: float, workers: int = 1) -> None:
        """One matrix row; ``workers`` > 1: react-eval with ``workers: N`` (worker processes)."""
        n = self.rollouts(conc, latency, path)
        row: dict[str, Any] = {"path": path, "concurrency": conc, "latency_ms": latency, "rollouts": n,
                               "reps": {k: [] for k in self.kinds(path, workers)}}
        extra = {"workers": workers} if workers > 1 else {}
        if extra:
            row.update(extra)
        for _ in range(self.args.repeat):
            for kind in row["reps"]:
                row["reps"][kind].append(self.one(kind, path, conc, latency, n, **(extra if kind == "engine" else {})))
        for kind, reps in row["reps"].items():
            row[kind] = median_run(reps)
        self.log(f"{path} c={conc} L={latency:g}" + (f" workers={workers}" if workers > 1 else "") + ": " + summary(row))
        self.r["runs"].append(row)

    def memory(self, paths: list[str]) -> None:
        """RSS per in-flight rollout: after a warm-up run in the same process, every rollout
        parked on a slow model's first reply; (RSS parked - RSS after the warm-up) / N."""
        self.want_nel(paths)
        for path in paths:
            docker = path.startswith("docker")
            conc = min(1000, self.cap(path))
            latency, at = (8000.0, 6.0) if docker else (4000.0, 3.0)
            out = {}
            for kind in self.kinds(path):
                r = self.one(kind, path, conc, latency, conc, sample_rss_at=at)
                if "error" in r or not r.get("rss_mid_kb"):
                    out[kind] = {"error": r.get("error", "no sample")}
                    continue
                out[kind] = {"concurrency": conc, "rss0_mb": r["rss0_kb"] / 1024, "rss_mid_mb": r["rss_mid_kb"] / 1024,
                             "per_rollout_kib": (r["rss_mid_kb"] - r["rss0_kb"]) / conc, "failed": r["failed"]}
            self.r["memory"][path] = out
            self.log(f"memory {path}: {out}")

    def lifecycle(self) -> None:
        counts = [int(k) for k in self.args.lifecycle_counts.split(",") if k.strip()]
        spec = {"kind": "lifecycle", "counts": counts, "token": self.token,
                "warm_pool": self.args.warm_pool, "warm_reps": 10 if self.quick else 30}
        try:
            self.r["lifecycle"] = run_child(spec)
        except Exception as exc:
            self.r["lifecycle"] = {"error": str(exc)[-1500:]}
        remove_our_containers(self.token)
        self.log(f"lifecycle: {self.r['lifecycle']}")

    def close(self) -> None:
        self.servers.close()
        remove_our_containers(self.token)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--paths", default=",".join(PATHS + ["docker+warm"]))
    parser.add_argument("--parts", default="matrix,memory,lifecycle")
    parser.add_argument("--turns", type=int, default=4)
    parser.add_argument("--max-concurrency", type=int, default=1000)
    parser.add_argument("--docker-max", type=int, default=16, help="highest concurrency of the Docker paths")
    parser.add_argument("--local-max", type=int, default=256, help="highest concurrency of the local sandbox paths")
    parser.add_argument("--workers", type=int, default=2,
                        help="the in-process and Gym paths also get a row at 1,000 concurrent, 200 ms model with "
                             "react-eval's `workers: N` (worker processes); 1: no such row")
    parser.add_argument("--warm-pool", type=int, default=8)
    parser.add_argument("--lifecycle-counts", default="1,8,32",
                        help="Docker lifecycle: how many sandboxes are created at once, per row (both modes)")
    parser.add_argument("--image", default="react-eval-sandbox:latest")
    parser.add_argument("--repeat", type=int, default=1,
                        help="run each row's clients this many times, interleaved; report median and range")
    parser.add_argument("--no-nel", action="store_true", help="no NeMo Evaluator column")
    parser.add_argument("--nel-python", default="",
                        help="an interpreter with nemo-evaluator (default: tools/ensure_nel_venv.sh makes one)")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--json", default="")
    parser.add_argument("--from-json", default="")
    parser.add_argument("--commit", default="", help="with --from-json: the commit the results were measured at")
    parser.add_argument("--out", default=str(ROOT / "docs" / "PERFORMANCE.md"))
    parser.add_argument("--child", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        import asyncio

        spec = json.loads(args.child)
        result = asyncio.run(CHILDREN[spec["kind"]](spec))
        sys.stdout.write("RESULT " + json.dumps(result) + "\n")
        return 0
    if args.from_json:
        results = json.loads(Path(args.from_json).read_text())
    else:
        paths = [p for p in args.paths.split(",") if p]
        bench = Bench(args, log=lambda s: print(s, file=sys.stderr, flush=True))
        t0 = time.perf_counter()
        try:
            for part in args.parts.split(","):
                if part == "lifecycle":
                    if any(p.startswith("docker") for p in paths):
                        bench.lifecycle()
                else:
                    getattr(bench, part)(paths)
        finally:
            bench.close()
        results = bench.r
        print(f"benchmark took {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=1))
    m = bench_harness.machine()
    if args.commit:  # rendering saved results: the commit they were measured at
        m["commit"] = args.commit
    table = render(results, m, args.quick)
    print(table)
    if not args.no_write:
        write_doc(Path(args.out), table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
