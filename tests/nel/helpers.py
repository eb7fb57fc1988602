"""Shared helpers of the NeMo Evaluator compatibility tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio

from react_eval.engine.config import validate_config
from react_eval.engine.run import bench_dir_name, run_eval

DATA = Path(__file__).parent / "data"
CONFIGS = Path(__file__).parent / "configs"


def run_config(data: dict[str, Any], out: Path) -> tuple[Any, list[dict], list[dict]]:
    """Validate ``data``, run it in-process; (the run, its rows, its trajectories)."""
    cfg = validate_config(data)
    runs = anyio.run(lambda: run_eval(cfg, output_dir=out))
    bench_out = out / bench_dir_name(cfg.benchmarks[0].name)
    return runs[0], read_jsonl(bench_out / "results.jsonl"), read_jsonl(bench_out / "trajectories.jsonl")


def read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "react_eval.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})
