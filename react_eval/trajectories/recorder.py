"""TrajectoryRecorder: builds one rollout's ATIF trajectory while the loop runs.

Recording sits on the ReAct loop's hot path, so each call only appends plain
dicts shaped like the ATIF JSON (fields that are None left out); the whole
trajectory is turned into JSON data and validated once, in
:meth:`TrajectoryRecorder.finish`, which therefore either returns a valid
:class:`Trajectory` or raises.

Layout of the recorded data (all extras are plain JSON):

* root ``extra``: ``system_prompt``, the recorder's ``extra``, harness
  ``events`` that happened before the first step, and ``finish(extra=...)``;
* agent step ``metrics``: prompt/completion/cached tokens of the step's
  :class:`~react_eval.types.Usage`, with ``latency_ms`` (its
  ``model_latency_ms``), ``reasoning_tokens`` and ``finish_reason`` in its ``extra``;
* a tool call whose argument string did not parse: ``arguments == {}`` and
  ``extra == {"arguments_raw": ..., "parse_error": ...}``;
* observation result ``extra``: ``is_error``, ``latency_ms``, ``truncated``,
  and ``exit_code`` / ``error_kind`` when set, over the tool's own extra;
* harness events: ``{"kind", "timestamp", **data}`` appended to
  ``extra["events"]`` of the latest step;
* ``final_metrics.extra``: reasoning tokens, error kind, tool-call counts.

Values in extras and events should be JSON data; anything else (a Path, an
exception, ...) is stored as its ``str()`` rather than failing the rollout.
"""

from __future__ import annotations

import mimetypes
from datetime import datetime, timezone
from typing import Any, Callable

from pydantic_core import to_jsonable_python

from react_eval.trajectories.atif import (
    ATIF_SCHEMA_VERSION,
    ContentPart,
    Step,
    Trajectory,
)
from react_eval.trajectories.document import (
    AFTER_OBSERVATION,
    FINAL_FIELDS,
    ROOT_FIELDS,
    document_of,
    final_metrics_of,
    json_bytes,
    ordered,
    plain,
    trajectory_bytes,
)
from react_eval.trajectories.shape import surely_valid
from react_eval.events import HarnessNote, LoopEvent, MessageAdded, ModelReplied, ToolAnswered
from react_eval.timestamps import utc_now_iso
from react_eval.types import ToolCall as ModelToolCall
from react_eval.types import ToolResult, Usage

__all__ = ["TrajectoryRecorder"]

_NO_USAGE = Usage()
_TEXT_PART_TYPES = frozenset({"text", "input_text", "output_text"})
_IMAGE_MEDIA_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


def _iso(moment: datetime) -> str:
    """ISO 8601 in UTC; a naive datetime is taken to be UTC already."""
    if moment.tzinfo is timezone.utc:  # the default clock's: nothing to convert
        return moment.isoformat()
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    else:
        moment = moment.astimezone(timezone.utc)
    return moment.isoformat()


class TrajectoryRecorder:
    """Collects the steps of one rollout and turns them into an ATIF trajectory.

    Step ids are handed out in order (1, 2, ...); :meth:`observe` attaches a
    tool result to the agent step that issued the call.
    """

    def __init__(
        self,
        *,
        session_id: str,
        agent_name: str = "react-eval",
        agent_version: str,
        model_name: str | None,
        tool_definitions: list[dict],
        system_prompt: str | None = None,
        extra: dict | None = None,
        clock: Callable[[], datetime] | None = None,
        max_argument_chars: int = 0,
    ):
        """``clock`` (default: now, UTC) stamps steps and events; tests pin it.
        ``max_argument_chars`` caps a stored tool call's arguments (default
        :data:`MAX_STORED_ARGUMENT_CHARS`); see :func:`_tool_call`."""
        self.session_id = session_id
        self.max_argument_chars = max_argument_chars or MAX_STORED_ARGUMENT_CHARS
        # Agent's fields in its order, None ones left out: the form its dump takes
        self._agent: dict[str, Any] = {"name": agent_name, "version": agent_version}
        if model_name is not None:
            self._agent["model_name"] = model_name
        if tool_definitions is not None:
            self._agent["tool_definitions"] = list(tool_definitions)
        self._system_prompt = system_prompt
        self._extra: dict[str, Any] = dict(extra or {})
        self._root_events: list[dict[str, Any]] = []
        #: the steps as ATIF-shaped dicts, None fields left out
        self._steps: list[dict[str, Any]] = []
        self._clock = clock or _utc_now
        if clock is None:  # the default clock: stamped without building a datetime
            self._now = utc_now_iso  # type: ignore[method-assign]
        self._last_agent_step = 0

    # -- steps ----------------------------------------------------------------

    @property
    def steps(self) -> list[Step]:
        """The steps so far, as ``Step`` objects (copies: changing them changes nothing)."""
        return [Step.model_validate(to_jsonable_python(step, fallback=str)) for step in self._steps]

    def _now(self) -> str:
        return _iso(self._clock())

    def _append(self, step: dict[str, Any]) -> int:
        step_id = step["step_id"] = len(self._steps) + 1
        self._steps.append(step)
        return step_id

    def system(self, text: str, *, extra: dict | None = None) -> int:
        """Record a system message; returns its step id."""
        if self._system_prompt is None:
            self._system_prompt = text
        step: dict[str, Any] = {"step_id": 0, "timestamp": self._now(), "source": "system", "message": text}
        if extra:
            step["extra"] = dict(extra)
        return self._append(step)

    def user(self, content: str | list, *, extra: dict | None = None) -> int:
        """Record a user message (text, or chat-style content parts)."""
        step_extra = dict(extra) if extra else {}
        if isinstance(content, str):
            message: str | list[ContentPart] = content
        else:
            message, omitted = _content_parts(content)
            if omitted:
                step_extra["omitted_content_parts"] = omitted
        step: dict[str, Any] = {"step_id": 0, "timestamp": self._now(), "source": "user", "message": message}
        if step_extra:
            step["extra"] = step_extra
        return self._append(step)

    def agent(
        self,
        *,
        message: str,
        reasoning: str | None,
        tool_calls: list[ModelToolCall],
        model_name: str | None,
        usage: Usage | None = None,
        finish_reason: str | None = None,
        timestamp: datetime | None = None,
        extra: dict | None = None,
    ) -> int:
        """Record one model response (one LLM call); returns its step id.

        ``usage`` gives the step's token counts and its ``model_latency_ms``
        (stored as ``metrics.extra.latency_ms``); fields it leaves None are left out."""
        return self._agent_step(message, reasoning, tool_calls, model_name, usage or _NO_USAGE, finish_reason,
                           _iso(timestamp) if timestamp is not None else self._now(), extra)

    def _agent_step(self, message: str, reasoning: str | None, tool_calls: list[ModelToolCall], model_name: str | None,
               u: Usage, finish_reason: str | None, timestamp: str, extra: dict | None) -> int:
        step_id = self._last_agent_step = len(self._steps) + 1
        step: dict[str, Any] = {"step_id": step_id, "timestamp": timestamp, "source": "agent"}
        if model_name is not None:
            step["model_name"] = model_name
        step["message"] = message if message is not None else ""
        if reasoning:
            step["reasoning_content"] = reasoning
        if tool_calls:
            cap = self.max_argument_chars
            step["tool_calls"] = [_tool_call(call, cap) for call in tool_calls]
        # Metrics' fields in its order, None ones left out (by hand: every step)
        prompt, completion, cached = u.prompt_tokens, u.completion_tokens, u.cached_tokens
        if prompt is not None and completion is not None and cached is not None:  # what servers send
            metrics: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": completion, "cached_tokens": cached}
        else:
            metrics = {}
            if prompt is not None:
                metrics["prompt_tokens"] = prompt
            if completion is not None:
                metrics["completion_tokens"] = completion
            if cached is not None:
                metrics["cached_tokens"] = cached
        metrics_extra: dict[str, Any] = {}
        if u.model_latency_ms is not None:
            metrics_extra["latency_ms"] = u.model_latency_ms
        if u.reasoning_tokens is not None:
            metrics_extra["reasoning_tokens"] = u.reasoning_tokens
        if finish_reason is not None:
            metrics_extra["finish_reason"] = finish_reason if type(finish_reason) is str else plain(finish_reason)
        if metrics_extra:
            metrics["extra"] = metrics_extra
        if metrics:
            step["metrics"] = metrics
        step["llm_call_count"] = 1
        if extra:
            step["extra"] = dict(extra)
        self._steps.append(step)
        return step_id

    def observe(self, step_id: int, call_id: str, result: ToolResult) -> None:
        """Attach the result of tool call ``call_id`` to agent step ``step_id``.

        Raises ``ValueError`` when the step does not exist, is not an agent
        step, or made no call with that id: the trajectory would be invalid.
        """
        if not 1 <= step_id <= len(self._steps):
            raise ValueError(f"observe: no step {step_id} (have {len(self._steps)})")
        step = self._steps[step_id - 1]
        for call in step.get("tool_calls") or ():  # only agent steps have any
            if call["tool_call_id"] == call_id:
                break
        else:
            raise ValueError(f"observe: step {step_id} made no tool call with id {call_id!r}")

        result_extra: dict[str, Any] = dict(result.extra) if result.extra else {}
        result_extra["is_error"] = result.is_error
        if result.exit_code is not None:
            result_extra["exit_code"] = result.exit_code
        if result.error_kind is not None:
            result_extra["error_kind"] = result.error_kind
        result_extra["latency_ms"] = result.latency_ms
        result_extra["truncated"] = result.truncated

        entry: dict[str, Any] = {"source_call_id": call_id}
        if result.content is not None:
            entry["content"] = result.content
        entry["extra"] = result_extra
        observation = step.get("observation")
        if observation is None:
            # in the model's field order (after the calls, before the fields that follow it),
            # so that finish() can hand the data to the writer as is
            after = [(key, step.pop(key)) for key in AFTER_OBSERVATION if key in step]
            step["observation"] = {"results": [entry]}
            step.update(after)
        else:
            observation["results"].append(entry)

    def event(self, kind: str, **data: Any) -> None:
        """Record a harness event (context drop, turns-left notice, error, ...).

        Stored as ``{"kind", "timestamp", **data}`` in ``extra["events"]`` of
        the latest step, or of the trajectory root before the first step.
        """
        record = {"kind": kind, "timestamp": self._now(), **data}
        if not self._steps:
            self._root_events.append(record)
            return
        self._steps[-1].setdefault("extra", {}).setdefault("events", []).append(record)

    def on_event(self, event: LoopEvent) -> None:
        """Record what the loop reports (see :mod:`react_eval.events`)."""
        if type(event) is ToolAnswered:
            self.observe(self._last_agent_step, event.call.id, event.result)
        elif type(event) is ModelReplied:
            r = event.response
            self._agent_step(r.content, r.reasoning, r.tool_calls, r.model, r.usage, r.finish_reason, self._now(),
                             {"attempts": r.attempts} if r.attempts > 1 else None)
        elif type(event) is MessageAdded:
            if event.role == "system":
                self.system(event.content, extra=event.extra)
            else:
                self.user(event.content or "", extra=event.extra)
        elif type(event) is HarnessNote:
            self.event(event.kind, **event.data)

    # -- result ---------------------------------------------------------------

    def finish(self, *, error_kind: str | None = None, extra: dict | None = None) -> Trajectory:
        """Validate and return the trajectory; may be called more than once.

        ``extra`` is merged into the root ``extra``. A rollout that ended
        before any step still yields a valid trajectory: one system step
        saying so (ATIF requires at least one step).
        """
        parts = self._parts(error_kind, extra)
        document, raw = _fast_document(self.session_id, self._agent, *parts)
        if raw is not None:
            # validated as the very bytes to be written (pydantic parses them itself: no
            # dicts of ours in between); they are what model_dump(mode="json",
            # exclude_none=True) gives (tests/trajectories prove the two equal), so
            # writing them needs no second walk, and to_json_dict() parses them on demand
            trajectory = Trajectory.model_validate_json(raw)
            object.__setattr__(trajectory, "_raw", raw)  # a slot: not pydantic's setattr
            return trajectory
        return self._validated_by_models(*parts)

    def finish_json(self, *, error_kind: str | None = None, extra: dict | None = None) -> bytes:
        """What :meth:`finish` returns, as the JSON bytes a run writes (text orjson refuses
        written as U+FFFD). When :func:`~react_eval.trajectories.shape.surely_valid` proves the
        document valid ATIF, the bytes come without building the models (the rollout's hot
        path); anything else is validated by :meth:`finish`, which raises for what it refuses."""
        parts = self._parts(error_kind, extra)
        document, raw = _fast_document(self.session_id, self._agent, *parts)
        if raw is not None and surely_valid(document):
            return raw
        return trajectory_bytes(self.finish(error_kind=error_kind, extra=extra))

    def _parts(self, error_kind: str | None,
               extra: dict | None) -> tuple[list[dict[str, Any]], str | None, dict[str, Any], dict[str, Any]]:
        """(steps, notes, root extra, final metrics) of the trajectory so far."""
        steps = self._steps
        notes = None
        if not steps:
            reason = plain(error_kind) or "unknown"
            notes = "The rollout ended before any step was recorded."
            steps = [
                {
                    "step_id": 1,
                    "timestamp": self._now(),
                    "source": "system",
                    "message": f"[react-eval] rollout ended before any step (error_kind: {reason})",
                    "extra": {"placeholder": True},
                }
            ]

        root_extra: dict[str, Any] = {"system_prompt": self._system_prompt}
        root_extra.update(self._extra)
        if self._root_events:
            root_extra["events"] = list(self._root_events)
        if extra:
            root_extra.update(extra)
        return steps, notes, root_extra, final_metrics_of(steps, error_kind)

    def _validated_by_models(self, steps: list[dict[str, Any]], notes: str | None, root_extra: dict[str, Any],
                             final_metrics: dict[str, Any]) -> Trajectory:
        """Content parts (models with None fields of their own), or values orjson refuses
        (a lone surrogate, an int past 64 bits, a non-text key): one JSON-mode pass
        (values JSON cannot hold become strings rather than failing the rollout)
        guarantees the result serializes; one validation pass enforces every ATIF rule."""
        data = {
            "schema_version": ATIF_SCHEMA_VERSION,
            "session_id": self.session_id,
            "agent": to_jsonable_python(self._agent, fallback=str),
            "steps": to_jsonable_python(steps, fallback=str),
            "notes": notes,
            "final_metrics": final_metrics,
            "extra": to_jsonable_python(root_extra, fallback=str),
        }
        trajectory = Trajectory.model_validate(data)
        document = document_of(data)
        if document is not None:
            object.__setattr__(trajectory, "_document", document)
        return trajectory


def _fast_document(session_id: str, agent: dict[str, Any], steps: list[dict[str, Any]], notes: str | None,
                   root_extra: dict[str, Any], final_metrics: dict[str, Any]) -> tuple[dict[str, Any], bytes | None]:
    """The document in the form the writer wants (root and final metrics in the models'
    order, None fields left out; every other dict is built that way) and its JSON bytes:
    one orjson pass makes it JSON (values JSON cannot hold become text, as the models'
    path makes them). No bytes when a message is content parts or orjson refuses the data."""
    document = ordered({
        "schema_version": ATIF_SCHEMA_VERSION,
        "session_id": session_id,
        "agent": agent,
        "steps": steps,
        "notes": notes,
        "final_metrics": ordered(final_metrics, FINAL_FIELDS),
        "extra": root_extra,
    }, ROOT_FIELDS)
    for step in steps:
        if type(step["message"]) is not str:
            return document, None
    return document, json_bytes(document)


def _tool_call(call: ModelToolCall, cap: int = 0) -> dict[str, Any]:
    """A model tool call in ATIF form; unparsable arguments become ``{}``.

    Arguments longer than ``cap`` characters (as the model sent them) are
    stored cut: every string value longer than a quarter of the cap keeps its
    head and tail, and if that is still too long the arguments become
    ``{"__truncated__": <the first cap characters of the raw JSON>}``. The
    call's ``extra`` then holds ``arguments_chars`` (the full size) and
    ``arguments_truncated``. The tool itself always got the full arguments.
    """
    cap = cap or MAX_STORED_ARGUMENT_CHARS
    size = len(call.arguments_raw or "")
    if call.arguments is not None:
        entry: dict[str, Any] = {"tool_call_id": call.id, "function_name": call.name, "arguments": dict(call.arguments)}
        if size > cap:
            entry["arguments"] = _cut_arguments(call.arguments, call.arguments_raw, cap)
            entry["extra"] = {"arguments_chars": size, "arguments_truncated": True}
        return entry
    raw = call.arguments_raw
    extra: dict[str, Any] = {"arguments_raw": raw, "parse_error": call.parse_error or "arguments are not a JSON object"}
    if size > cap:
        extra.update(arguments_raw=_cut_text(raw, cap), arguments_chars=size, arguments_truncated=True)
    return {"tool_call_id": call.id, "function_name": call.name, "arguments": {}, "extra": extra}


#: default cap on one stored tool call's arguments, in characters
MAX_STORED_ARGUMENT_CHARS = 256 * 1024


def _cut_text(text: str, cap: int) -> str:
    if len(text) <= cap:
        return text
    head = cap // 2
    return f"{text[:head]}[... {len(text) - 2 * head} characters not stored ...]{text[len(text) - head:]}"


def _cut_arguments(arguments: dict[str, Any], raw: str, cap: int) -> dict[str, Any]:
    def cut(value: Any, depth: int = 0) -> Any:
        if isinstance(value, str):
            return _cut_text(value, cap // 4)
        if depth > 32:
            return "[... nested too deeply to store ...]"
        if isinstance(value, dict):
            return {k: cut(v, depth + 1) for k, v in value.items()}
        if isinstance(value, list):
            return [cut(v, depth + 1) for v in value]
        return value

    smaller = cut(arguments)
    if len(str(smaller)) <= cap:  # a cheap upper-bound estimate of its JSON size
        return smaller
    return {"__truncated__": raw[:cap]}


def _content_parts(parts: list) -> tuple[list[ContentPart], list[dict[str, Any]]]:
    """Chat/Responses-style content parts as ATIF parts.

    Text parts and ATIF-native parts are kept; an image given by URL becomes
    an image part when its MIME type is known. Anything else (inline data,
    unknown kinds) is replaced by a text placeholder and described in the
    second return value, without the payload.
    """
    converted: list[ContentPart] = []
    omitted: list[dict[str, Any]] = []

    def omit(index: int, kind: str, reason: str) -> None:
        omitted.append({"index": index, "type": kind, "reason": reason})
        converted.append(ContentPart(type="text", text=f"[{kind} part omitted: {reason}]"))

    for index, part in enumerate(parts):
        if isinstance(part, str):
            converted.append(ContentPart(type="text", text=part))
            continue
        if isinstance(part, ContentPart):
            converted.append(part)
            continue
        if not isinstance(part, dict):
            omit(index, type(part).__name__, "not a content part object")
            continue
        kind = str(part.get("type", ""))
        if kind in _TEXT_PART_TYPES:
            converted.append(ContentPart(type="text", text=str(part.get("text") or "")))
        elif kind in ("image", "audio") and "source" in part:
            converted.append(ContentPart.model_validate(part))
        elif kind in ("image_url", "input_image"):
            url = part.get("image_url")
            if isinstance(url, dict):
                url = url.get("url")
            if not isinstance(url, str) or not url:
                omit(index, kind, "no image URL")
            elif url.startswith("data:"):
                omit(index, kind, f"inline data URL of {len(url)} characters")
            else:
                media_type = mimetypes.guess_type(url.split("?", 1)[0])[0]
                if media_type in _IMAGE_MEDIA_TYPES:
                    converted.append(
                        ContentPart(type="image", source={"media_type": media_type, "path": url})
                    )
                else:
                    omit(index, kind, f"image type of {url!r} is not known")
        else:
            omit(index, kind or "untyped", "not representable in ATIF")
    return converted, omitted
