"""NeMo Evaluator (NEL) configs as react-eval reads them.

A NEL config (``services`` / ``sandboxes`` / ``benchmarks`` / ``cluster`` /
``output``) is translated field by field before validation: each NEL field is
honoured (mapped onto react-eval's own) or refused with a message that says
what to use instead -- never dropped silently. The notes of what was mapped
are kept and printed once when a run starts. docs/NEL.md is the table.
"""

from __future__ import annotations

import copy
from typing import Any


class NelConfigError(ValueError):
    """A NEL field react-eval does not honour; the message names the alternative."""


#: NEL benchmark name -> (react-eval benchmark, what the user must add or know)
BENCHMARK_NAMES: dict[str, tuple[str, str]] = {
    "humaneval": ("humaneval", ""),
    "mbpp": ("mbpp+", "MBPP+ (EvalPlus: MBPP with the extra tests), needs pip install 'react-eval[evalplus]'"),
    "mbppplus": ("mbpp+", "needs pip install 'react-eval[evalplus]'"),
    "humanevalplus": ("humaneval+", "needs pip install 'react-eval[evalplus]'"),
    "gsm8k": ("gsm8k", "GSM8K is not shipped: pass --dataset FILE.jsonl (GSM8K rows: question, answer)"),
    "mmlu": ("mcq", "MMLU is not shipped: pass --dataset FILE.jsonl (question, choices, answer letter)"),
    "simpleqa": ("qa", "SimpleQA is not shipped: pass --dataset FILE.jsonl (question, answer rows)"),
    "swebench-verified": ("swebench", "pass --dataset FILE.jsonl with SWE-bench Verified instances"),
    "swebench_verified": ("swebench", "pass --dataset FILE.jsonl with SWE-bench Verified instances"),
    "swebench-lite": ("swebench", "pass --dataset FILE.jsonl with SWE-bench Lite instances"),
    "swebench-multilingual": ("swebench", "pass --dataset FILE.jsonl with SWE-bench Multilingual instances"),
    "swebench-multimodal": ("swebench", "pass --dataset FILE.jsonl with SWE-bench Multimodal instances"),
}

#: URI schemes of NEL that react-eval does not run, and what to use instead
_SCHEMES = {
    "lm-eval": "lm-evaluation-harness tasks are not run by react-eval; export the task as JSONL and use "
               "--bench qa --dataset FILE (or mcq), or serve it from a NeMo Gym server as gym://HOST:PORT",
    "skills": "NeMo Skills benchmarks are not run by react-eval; export them as JSONL and use --bench qa "
              "--dataset FILE, or serve them from a NeMo Gym server as gym://HOST:PORT",
    "vlmevalkit": "VLMEvalKit (vision) benchmarks are not supported by react-eval",
    "container": "legacy harness containers are not run by react-eval; run the container itself, or port "
                 "the benchmark to a NeMo Gym server (gym://HOST:PORT)",
}

_SOLVERS_REFUSED = {
    "harbor": "react-eval drives the agent loop itself: use solver.type: tool_calling with benchmark "
              "harbor:PATH (Harbor task directories) and sandbox_tools: true",
    "gym_delegation": "react-eval drives the loop itself: use solver.type: tool_calling with "
                      "resource_service: <gym service> (or the benchmark gym://HOST:PORT --dataset FILE)",
    "openclaw": "not supported: use solver.type: tool_calling",
    "container": "not supported: use solver.type: tool_calling or simple",
}

_SANDBOX_REFUSED = {
    "slurm": "react-eval has no SLURM sandbox: run react-eval inside the SLURM job with sandbox type docker "
             "(or local with isolation: bwrap), sharding with --shard i/N (see docs/SCALING.md)",
    "apptainer": "react-eval has no Apptainer sandbox: use type: docker, or type: local with isolation: bwrap",
    "ecs_fargate": "react-eval has no ECS sandbox: use type: docker (docker_host may name a remote engine)",
}

_SERVICE_REFUSED = {
    "vllm": "react-eval does not deploy models: start vLLM yourself and use type: api with its url",
    "sglang": "react-eval does not deploy models: start SGLang yourself and use type: api with its url",
    "trt_llm": "react-eval does not deploy models: start TRT-LLM yourself and use type: api with its url",
    "nat_agent": "not supported: use type: api for a model, type: gym for a resources server",
}

#: NEL service fields react-eval refuses, and what to use instead
_SERVICE_FIELDS_REFUSED = {
    "interceptors": "react-eval has no request interceptors: turn limits are solver.max_turns; every request "
                    "and reply is recorded in the trajectory already",
    "depends_on": "react-eval starts no services, so there is no start order: remove depends_on",
    "node_pool": "react-eval deploys no services: remove node_pool",
}


def _refuse(where: str, message: str) -> None:
    raise NelConfigError(f"{where}: {message}")


def map_benchmark_name(name: str, where: str) -> tuple[str, str | None]:
    """The react-eval benchmark for a NEL name, and a note (None when nothing changed)."""
    if "://" in name:
        scheme = name.partition("://")[0]
        if scheme in _SCHEMES:
            _refuse(f"{where}.name", f"{name!r}: {_SCHEMES[scheme]}")
        rest = name.partition("://")[2]
        if scheme == "harbor" and "@" in rest and "/" not in rest:  # a registry dataset, e.g. swebench-verified@1.0
            _refuse(f"{where}.name", f"{name!r}: react-eval does not download Harbor registry datasets; check the "
                                     "task directories out and name them as harbor:PATH")
        return name, None
    mapped = BENCHMARK_NAMES.get(name)
    if mapped is None:
        return name, None
    target, needs = mapped
    if target == name:  # same name; the benchmark itself says what it needs (e.g. --dataset)
        return name, None
    return target, f"{where}.name: NEL's {name!r} runs as react-eval's {target!r}" + (f" ({needs})" if needs else "")


def split_gym_query(name: str) -> tuple[str, dict[str, str]]:
    """``gym://host:port?data=FILE`` -> (``gym://host:port``, {"dataset": FILE})."""
    if not name.startswith("gym://") or "?" not in name:
        return name, {}
    from urllib.parse import parse_qs

    base, _, query = name.partition("?")
    fields = parse_qs(query, keep_blank_values=True)
    unknown = sorted(set(fields) - {"data"})
    if unknown:
        raise NelConfigError(f"{name}: unknown query field(s) {', '.join(unknown)}; gym:// takes ?data=FILE")
    return base, {"dataset": fields["data"][-1]} if fields.get("data") else {}


def translate(data: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """``data`` with NEL's fields mapped onto react-eval's; the notes say what was mapped.

    Raises :class:`NelConfigError` for a field that is refused."""
    data = copy.deepcopy(data)
    notes: list[str] = []
    cluster = data.pop("cluster", None)
    if cluster is not None:
        kind = cluster.get("type", "local") if isinstance(cluster, dict) else cluster
        if kind != "local":
            _refuse("cluster", f"type {kind!r}: react-eval runs where it is started; run it inside your "
                               "job (one process per node with --shard i/N, or workers: N), see docs/SCALING.md")
        notes.append("cluster: type local is where react-eval runs anyway")
    output = data.get("output")
    if isinstance(output, dict) and "export" in output:
        export = output.pop("export")
        if export:
            _refuse("output.export", f"{export!r}: react-eval writes results.jsonl, trajectories.jsonl (ATIF) "
                                     "and eval.json in output.dir; use `react-eval report` / `react-eval compare` "
                                     "on them (or load results.jsonl into your tracker)")
    for name, service in (data.get("services") or {}).items():
        if not isinstance(service, dict):
            continue
        where = f"services.{name}"
        kind = service.get("type", "api")
        if kind in _SERVICE_REFUSED:
            _refuse(f"{where}.type", f"{kind!r}: {_SERVICE_REFUSED[kind]}")
        for key, why in _SERVICE_FIELDS_REFUSED.items():
            if key in service:
                _refuse(f"{where}.{key}", why)
        if service.pop("proxy_verbose", None):
            _refuse(f"{where}.proxy_verbose", "react-eval has no proxy: every request is in the trajectory")
    sandboxes = data.get("sandboxes") or {}
    none = {n for n, sb in sandboxes.items() if isinstance(sb, dict) and sb.get("type") == "none"}
    for name in none:  # "no sandbox": benchmarks naming it get none
        del sandboxes[name]
    for name, sandbox in sandboxes.items():
        _sandbox(sandbox, f"sandboxes.{name}", notes)
    for entry in data.get("benchmarks") or []:
        if isinstance(entry, dict) and isinstance(entry.get("sandbox"), str) and entry["sandbox"] in none:
            del entry["sandbox"]
    for i, entry in enumerate(data.get("benchmarks") or []):
        if isinstance(entry, dict):
            _benchmark(data, entry, f"benchmarks.{i}", notes)
    return data, notes


def _sandbox(sandbox: Any, where: str, notes: list[str]) -> Any:
    if not isinstance(sandbox, dict):
        return sandbox
    kind = sandbox.get("type")
    if kind in _SANDBOX_REFUSED:
        _refuse(f"{where}.type", f"{kind!r}: {_SANDBOX_REFUSED[kind]}")
    if kind == "docker" and "slots_per_node" in sandbox:
        _refuse(f"{where}.slots_per_node", "react-eval's Docker sandbox has no node slots: use concurrency")
    return sandbox


def _benchmark(data: dict[str, Any], entry: dict[str, Any], where: str, notes: list[str]) -> None:
    name = entry.get("name")
    if isinstance(name, str):
        name, query = split_gym_query(name)
        if query:
            entry.setdefault("options", {}).setdefault("dataset", query["dataset"])
        entry["name"], note = map_benchmark_name(name, where)
        if note:
            notes.append(note)
    sandbox = entry.get("sandbox")
    if isinstance(sandbox, dict) and sandbox.get("type") == "none":
        del entry["sandbox"]
    else:
        _sandbox(sandbox, f"{where}.sandbox", notes)
    solver = entry.get("solver")
    if isinstance(solver, dict):
        kind = solver.get("type", "tool_calling")
        if kind in _SOLVERS_REFUSED:
            _refuse(f"{where}.solver.type", f"{kind!r}: {_SOLVERS_REFUSED[kind]}")
        if "image_detail" in solver:
            _refuse(f"{where}.solver.image_detail", "react-eval's simple solver sends text prompts only")
    timeout = entry.pop("timeout", None)
    if timeout is not None:
        if isinstance(solver, dict) and solver.get("rollout_timeout") is None:
            solver["rollout_timeout"] = timeout
        notes.append(f"{where}.timeout: {timeout}s per problem (solver.rollout_timeout)")
