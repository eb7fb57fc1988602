"""``gym://host:port``: a JSONL dataset played against a NeMo Gym resources server.

Each dataset row holds ``responses_create_params`` (the Responses-API request:
``input`` messages and, optionally, the ``tools`` the model is shown) plus the
verifier's own fields (e.g. ``expected_count``). A rollout seeds a session with
the whole row, lets the model use the server's tools on that session, and asks
the same session's ``/verify`` for the reward, sending the row, its
``responses_create_params`` and the rollout as a complete Responses object.

Options (``benchmarks.N.options`` or flags): ``dataset`` (the JSONL file,
``--dataset``), ``reward_range`` (``[low, high]``, default ``[0, 1]``: a reward
outside it, or not finite, is a verify error), ``request_timeout``,
``connect_attempts`` and ``max_response_bytes`` (as for a ``type: gym`` service).

Only the server's tools are offered: the sandbox tools join them, with a
sandbox per rollout, only when the solver sets ``sandbox_tools: true`` (as
NeMo Evaluator does).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

from react_eval.benchmarks.base import Answer, Benchmark, DatasetMissing, RolloutEnv, Verification
from react_eval.gym.aggregate import aggregate_metrics
from react_eval.gym.responses_format import ResponsesFormatError, build_response, responses_input_to_messages, responses_tools_to_chat
from react_eval.gym.session import GymEndpoint, GymSession
from react_eval.gym.source import GymToolSource
from react_eval.gym.transport import DEFAULT_MAX_RESPONSE_BYTES
from react_eval.tools.base import ToolSource
from react_eval.types import Task, ToolSpec, VerifyError

_OPTIONS = ("dataset", "request_timeout", "connect_attempts", "reward_range", "max_response_bytes")
#: rewards a Gym verifier may give; anything else is a broken (or hostile) verifier
DEFAULT_REWARD_RANGE = (0.0, 1.0)


def checked_reward(result: dict[str, Any], bounds: tuple[float, float]) -> float:
    """The ``reward`` of a /verify answer; a missing, non-numeric, non-finite or
    out-of-range one is a :class:`VerifyError` (scored as ``verify_error``, never
    averaged in)."""
    reward = result.get("reward")
    if isinstance(reward, bool) or not isinstance(reward, (int, float)):
        raise VerifyError(f"/verify answered without a numeric reward (fields: {', '.join(sorted(result))})")
    value = float(reward) if isinstance(reward, float) or abs(reward) < 2**1023 else math.inf
    if not math.isfinite(value):
        raise VerifyError(f"/verify answered a non-finite reward ({value if isinstance(reward, int) else reward!r})")
    low, high = bounds
    if not low <= value <= high:
        raise VerifyError(f"/verify answered reward {value!r}, outside the allowed range [{low:g}, {high:g}] (option reward_range)")
    return value


def _reward_range(value: Any) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"reward_range must be [low, high], got {value!r}") from None
    if not (math.isfinite(low) and math.isfinite(high) and low <= high):
        raise ValueError(f"reward_range must be two finite numbers, low <= high, got {value!r}")
    return low, high


class GymDatasetError(ValueError):
    """The dataset cannot be used; the message names the file and line."""


def server_url(address: str) -> str:
    """``host:port[/prefix]`` (the part after ``gym://``) as an ``http://`` URL."""
    text = address.strip()
    if "://" in text:
        raise ValueError(f"gym://{address}: give host:port after gym://, not another URL scheme")
    parts = urlsplit("http://" + text)
    try:
        port = parts.port
    except ValueError:
        port = None
    if not parts.hostname or port is None:
        raise ValueError(f"gym://{address}: expected gym://HOST:PORT (e.g. gym://127.0.0.1:8000)")
    return ("http://" + text).rstrip("/")


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


#: where a Gym row keeps its own id, in the order looked at (EvalPlus rows: verifier_metadata.task_id)
_ID_FIELDS = (("id",), ("task_id",), ("instance_id",), ("verifier_metadata", "task_id"),
              ("verifier_metadata", "instance_id"), ("verifier_metadata", "id"), ("metadata", "task_id"))


def row_id(row: dict[str, Any]) -> str | None:
    """The row's own id (``HumanEval/0``), if it carries one."""
    for path in _ID_FIELDS:
        value: Any = row
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value).strip():
            return str(value)
    return None


def row_task(row: Any, index: int, where: str) -> Task:
    """The task of one dataset row (``where`` is ``file:line`` for error messages)."""
    if not isinstance(row, dict):
        raise GymDatasetError(f"{where}: a row must be a JSON object, got {type(row).__name__}")
    params = row.get("responses_create_params")
    if not isinstance(params, dict):
        raise GymDatasetError(f"{where}: the row has no 'responses_create_params' object")
    if "input" not in params:
        raise GymDatasetError(f"{where}: responses_create_params has no 'input'")
    try:
        messages = responses_input_to_messages(params["input"])
        tools = responses_tools_to_chat(params["tools"]) if params.get("tools") else None
    except ResponsesFormatError as exc:
        raise GymDatasetError(f"{where}: {exc}") from None
    system: list[str] = []
    while messages and messages[0]["role"] == "system":
        system.append(_text(messages.pop(0)["content"]))
    prompt = next((_text(m["content"]) for m in messages if m["role"] == "user"), None)
    task_id = row_id(row) or f"row-{index}"
    return Task(
        id=task_id,
        prompt=prompt,
        messages=messages or None,
        system_prompt="\n\n".join(system) or None,
        metadata={"row": row, "dataset_line": where.rsplit(":", 1)[-1]},
        tools=tools,
    )


def load_tasks(path: Path) -> list[Task]:
    """Every row of a JSONL dataset as a task; a bad line is an error naming it."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise GymDatasetError(f"dataset file not found: {path} (given by --dataset / options.dataset)") from None
    except OSError as exc:
        raise GymDatasetError(f"cannot read dataset {path}: {exc.strerror}") from None
    tasks: list[Task] = []
    first_line: dict[str, int] = {}
    for number, line in enumerate(data.split(b"\n"), 1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            row = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise GymDatasetError(f"{where}: corrupt JSON line: {exc}") from None
        task = row_task(row, len(tasks), where)
        if task.id in first_line:
            raise GymDatasetError(
                f"{where}: row id {task.id!r} was already used on line {first_line[task.id]}; ids must be unique"
            )
        first_line[task.id] = number
        tasks.append(task)
    if not tasks:
        raise GymDatasetError(f"dataset {path} has no rows")
    return tasks


class GymBenchmark(Benchmark):
    name = "gym"
    description = "a JSONL dataset played against a NeMo Gym resources server (gym://host:port --dataset FILE)"
    verification = "gym"
    needs_sandbox = False
    sandbox_tools_default = False  # the server's tools only, unless solver.sandbox_tools is true
    #: none of ours: the model sees what Gym's own simple agent sends (the row's input);
    #: ``solver.system_prompt`` adds one
    default_system_prompt = ""

    def __init__(self, address: str, **options: Any):
        unknown = sorted(set(options) - set(_OPTIONS))
        if unknown:
            raise ValueError(f"gym://{address}: unknown option(s) {', '.join(unknown)}; known: {', '.join(_OPTIONS)}")
        self.address = address
        self.url = server_url(address)
        dataset = options.get("dataset")
        if not dataset:
            raise DatasetMissing(
                f"gym://{address} needs a dataset: pass --dataset FILE.jsonl "
                "(or set benchmarks.N.options.dataset in the config)"
            )
        self.dataset = Path(str(dataset)).expanduser()
        self.endpoint = GymEndpoint(
            url=self.url,
            request_timeout=float(options.get("request_timeout", 300.0)),
            connect_attempts=int(options.get("connect_attempts", 3)),
            max_response_bytes=int(options.get("max_response_bytes", DEFAULT_MAX_RESPONSE_BYTES)),
        )
        self._tasks = load_tasks(self.dataset)
        self._source = GymToolSource(self.endpoint)
        self.reward_range = _reward_range(options.get("reward_range", DEFAULT_REWARD_RANGE))

    def tasks(self) -> list[Task]:
        return list(self._tasks)

    async def aggregate_metrics(self, rows: list[dict[str, Any]]) -> dict[str, Any] | None:
        """The server's ``/aggregate_metrics`` over the run's rows (None: it has none)."""
        index = {task.id: i for i, task in enumerate(self._tasks)}
        return await aggregate_metrics(self.endpoint, rows, index)

    def tool_sources(self) -> list[ToolSource]:
        return [self._source]

    def _offered(self, specs: list[ToolSpec]) -> list[dict[str, Any]]:
        """The tools every rollout was offered, in OpenAI form (built once per tool set)."""
        key = tuple(spec.name for spec in specs)
        cache = self.__dict__.setdefault("_offered_cache", {})
        if key not in cache:
            cache[key] = [spec.to_openai() for spec in specs]
        return cache[key]

    async def verify(self, task: Task, answer: Answer, env: RolloutEnv) -> Verification:
        session = env.backends.get(GymToolSource.label)
        if not isinstance(session, GymSession):
            raise VerifyError("no Gym session is open for this rollout, so /verify cannot be called on it")
        row = task.metadata["row"]
        params = row["responses_create_params"]
        tools = task.tools or self._offered(await env.tools.list_tools())
        prompt = len(task.initial_messages())
        if answer.messages and answer.messages[0].get("role") == "system":
            prompt += 1
        response = build_response(
            messages=answer.messages,
            calls=answer.calls,
            prompt_messages=prompt,
            model=answer.model_name,
            tools=tools,
            create_params=params,
        )
        result = await session.verify({**row, "responses_create_params": params, "response": response})
        reward = checked_reward(result, self.reward_range)
        if result.get("mask_sample") is True:
            raise VerifyError(
                "the verifier masked this sample as not a valid measurement "
                f"(failure_kind={result.get('failure_kind')!r}, failure_reason={result.get('failure_reason')!r})"
            )
        return Verification(reward=reward, details={k: v for k, v in result.items() if k != "reward"})
