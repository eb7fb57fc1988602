"""Resources servers for the Gym tests: real FastAPI apps, run by uvicorn on 127.0.0.1.

They follow the shape of NeMo Gym's example servers (a session id kept in a
signed cookie by Starlette's ``SessionMiddleware``; ``/seed_session``, tools as
``POST /<name>``, ``/verify`` returning ``reward`` plus its own fields) and
validate ``/verify`` bodies the way Gym 0.4 does: ``responses_create_params``
(with ``input``) and ``response`` (a Responses object whose required fields
are those of Gym's ``NeMoGymResponse``) must be present, or FastAPI answers 422.

Every request is recorded (:class:`Received`) with the cookie header that
actually arrived and the session it landed in, so tests can assert on what the
server saw rather than on what the client believes it sent.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Union

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.middleware.sessions import SessionMiddleware

SECRET = "react-eval-gym-tests"
SESSION_KEY = "session_id"


# --------------------------------------------------------------------------- recording


@dataclass
class Received:
    method: str
    path: str
    cookie: str | None  # the Cookie header as it arrived
    session_id: str
    new_session: bool  # True when no valid session cookie came with the request
    query: str = ""
    cookie_headers: int = 0  # how many Cookie headers arrived (a client must send one)
    peer_port: int = 0  # the client's port: one per connection
    body: bytes = b""
    status: int | None = None
    at: float = field(default_factory=time.monotonic)

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


class RequestLog:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[Received] = []

    def add(self, entry: Received) -> None:
        with self._lock:
            self._entries.append(entry)

    @property
    def entries(self) -> list[Received]:
        with self._lock:
            return list(self._entries)

    def paths(self) -> list[str]:
        return [e.path for e in self.entries]

    def for_path(self, path: str) -> list[Received]:
        return [e for e in self.entries if e.path == path]

    def by_session(self) -> dict[str, list[Received]]:
        out: dict[str, list[Received]] = {}
        for e in self.entries:
            out.setdefault(e.session_id, []).append(e)
        return out


class SessionIds:
    """ASGI middleware inside SessionMiddleware: gives every session an id (as
    Gym's servers do) and records each request."""

    def __init__(self, app: Any, log: RequestLog):
        self.app = app
        self.log = log

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        session = scope["session"]
        new = SESSION_KEY not in session
        if new:
            session[SESSION_KEY] = uuid.uuid4().hex
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        entry = Received(scope["method"], scope["path"], headers.get("cookie"), session[SESSION_KEY], new,
                         query=scope.get("query_string", b"").decode(),
                         cookie_headers=sum(1 for k, _ in scope["headers"] if k.lower() == b"cookie"),
                         peer_port=(scope.get("client") or ("", 0))[1])
        chunks: list[bytes] = []

        async def recv() -> dict:
            message = await receive()
            if message["type"] == "http.request":
                chunks.append(message.get("body", b""))
                entry.body = b"".join(chunks)
            return message

        async def snd(message: dict) -> None:
            if message["type"] == "http.response.start":
                entry.status = message["status"]
            await send(message)

        self.log.add(entry)
        await self.app(scope, recv, snd)


@dataclass
class GymApp:
    app: FastAPI
    log: RequestLog
    state: dict[str, Any]


def gym_app(title: str, **session_options: Any) -> GymApp:
    app = FastAPI(title=title)
    log = RequestLog()
    app.add_middleware(SessionIds, log=log)
    app.add_middleware(SessionMiddleware, secret_key=SECRET, **session_options)  # outermost
    return GymApp(app, log, {})


def sid(request: Request) -> str:
    return request.session[SESSION_KEY]


# --------------------------------------------------------------------------- /verify bodies


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class CreateParams(_Open):
    input: Union[str, list[dict[str, Any]]]
    tools: list[dict[str, Any]] | None = None


class OutputText(_Open):
    type: Literal["output_text"] = "output_text"
    text: str
    annotations: list[Any]


ItemStatus = Literal["in_progress", "completed", "incomplete"]


class MessageItem(_Open):
    type: Literal["message"]
    id: str
    role: Literal["assistant"] = "assistant"
    content: list[OutputText]
    status: ItemStatus | None = None


class FunctionCallItem(_Open):
    type: Literal["function_call"]
    arguments: str
    call_id: str
    name: str
    id: str | None = None
    status: ItemStatus | None = None


class FunctionCallOutputItem(_Open):
    type: Literal["function_call_output"]
    call_id: str
    output: str
    id: str | None = None
    status: ItemStatus | None = None


class ReasoningItem(_Open):
    type: Literal["reasoning"]
    id: str
    summary: list[dict[str, Any]]


OutputItem = Annotated[
    Union[MessageItem, FunctionCallItem, FunctionCallOutputItem, ReasoningItem], Field(discriminator="type")
]


class ResponseObject(_Open):
    id: str
    created_at: float
    model: str
    object: Literal["response"]
    output: list[OutputItem]
    parallel_tool_calls: bool
    tool_choice: Union[Literal["none", "auto", "required"], dict[str, Any]]
    tools: list[dict[str, Any]]


class VerifyRequest(_Open):
    responses_create_params: CreateParams
    response: ResponseObject


def echo(body: VerifyRequest, **fields: Any) -> dict[str, Any]:
    """A Gym-style verify answer: the request echoed back plus the verifier's fields."""
    return {**body.model_dump(mode="json"), **fields}


def function_calls(body: VerifyRequest) -> list[FunctionCallItem]:
    return [item for item in body.response.output if isinstance(item, FunctionCallItem)]


def final_text(body: VerifyRequest) -> str:
    messages = [item for item in body.response.output if isinstance(item, MessageItem)]
    return "".join(part.text for part in messages[-1].content) if messages else ""


# --------------------------------------------------------------------------- counter


class CounterSeed(_Open):
    initial_count: int


class Increment(BaseModel):
    count: int = Field(description="How much to add to the counter.")


class CounterVerify(VerifyRequest):
    expected_count: int


def counter_app(**session_options: Any) -> GymApp:
    """A stateful counter: seed sets the start value, tools add and read, verify compares."""
    g = gym_app("counter", **session_options)
    counts: dict[str, int] = g.state.setdefault("counts", {})

    @g.app.post("/seed_session")
    async def seed_session(request: Request, body: CounterSeed) -> dict:
        counts.setdefault(sid(request), body.initial_count)  # an existing session keeps its count
        return {}

    @g.app.post("/increment_counter", summary="Increment the counter")
    async def increment_counter(request: Request, body: Increment) -> dict:
        """Add `count` to this session's counter."""
        counts[sid(request)] = counts.get(sid(request), 0) + body.count
        return {"success": True}

    @g.app.post("/get_counter_value")
    async def get_counter_value(request: Request) -> dict:
        """Read this session's counter."""
        return {"count": counts.get(sid(request), 0)}

    @g.app.post("/verify")
    async def verify(request: Request, body: CounterVerify) -> dict:
        count = counts.get(sid(request))
        return echo(body, reward=float(count == body.expected_count), count=count)

    @g.app.post("/aggregate_metrics")
    async def aggregate_metrics(body: dict) -> dict:
        return {}

    return g


# --------------------------------------------------------------------------- multi-step


def word_code(word: str) -> int:
    """The code the multi-step server assigns to a word (deterministic)."""
    return sum((i + 1) * ord(c) for i, c in enumerate(word)) % 997


class Lookup(BaseModel):
    word: str = Field(description="The word whose code you need.")


class Submit(BaseModel):
    codes: list[int] = Field(description="The codes, in the order the words were given.")


class MultiStepVerify(VerifyRequest):
    expected_codes: list[int]


def multistep_app() -> GymApp:
    """Look up a code per word, then submit them; verify reads only the arguments
    of the last function_call in response.output."""
    g = gym_app("multi-step")

    @g.app.post("/seed_session")
    async def seed_session(request: Request, body: dict) -> dict:
        return {}

    @g.app.post("/lookup_code")
    async def lookup_code(body: Lookup) -> dict:
        """Get the code of one word."""
        return {"code": word_code(body.word)}

    @g.app.post("/submit_codes")
    async def submit_codes(body: Submit) -> dict:
        """Submit the codes you looked up."""
        return {"accepted": True}

    @g.app.post("/verify")
    async def verify(body: MultiStepVerify) -> dict:
        calls = function_calls(body)
        submitted = None
        if calls:
            try:
                submitted = json.loads(calls[-1].arguments).get("codes")
            except (json.JSONDecodeError, AttributeError):
                submitted = None
        ok = calls and calls[-1].name == "submit_codes" and submitted == body.expected_codes
        return echo(body, reward=1.0 if ok else 0.0, submitted_codes=submitted,
                    last_call=calls[-1].name if calls else None, function_calls=len(calls))

    return g


# --------------------------------------------------------------------------- recursive / nested


class Node(BaseModel):
    value: int
    children: list["Node"] = Field(default_factory=list)


class SumRequest(BaseModel):
    tree: Node


class Folder(BaseModel):
    name: str
    entries: list["Entry"] = Field(default_factory=list)


class Entry(BaseModel):
    file: str | None = None
    folder: Folder | None = None


Folder.model_rebuild()


class TagRequest(BaseModel):
    tag: str


class StatusRequest(BaseModel):
    status: int
    message: str


class SlowRequest(BaseModel):
    seconds: float


class BigRequest(BaseModel):
    mib: int
    declare_length: bool = False


class TreeVerify(VerifyRequest):
    expected_total: int
    mask: bool = False  # answer as Gym does when the environment, not the agent, failed
    omit_reward: bool = False  # a broken verifier that forgets the reward


def _tree_sum(node: Node) -> int:
    return node.value + sum(_tree_sum(c) for c in node.children)


def _count_files(folder: Folder) -> int:
    return sum(1 if e.file is not None else 0 for e in folder.entries) + sum(
        _count_files(e.folder) for e in folder.entries if e.folder is not None
    )


def tree_app(with_big: bool = False) -> GymApp:
    """Recursive request schemas, nested paths, a path and a query parameter,
    plus tools that fail on demand or are slow (and, ``with_big``, one that
    answers as many MiB as asked)."""
    g = gym_app("tree")

    @g.app.post("/seed_session")
    async def seed_session(request: Request, body: dict) -> Any:
        if body.get("big_seed_mib"):
            return await big(BigRequest(mib=body["big_seed_mib"], declare_length=True))
        return {}

    @g.app.post("/tree/sum", summary="Sum a tree", description="Add up the values of every node of a tree.")
    async def tree_sum(body: SumRequest) -> dict:
        return {"total": _tree_sum(body.tree)}

    @g.app.post("/fs/v1.0/count_files")
    async def count_files(body: Folder) -> dict:
        """Count the files in a folder and all its subfolders."""
        return {"files": _count_files(body)}

    @g.app.post("/items/{item_id}/tag")
    async def tag_item(item_id: str, body: TagRequest, upper: bool = False) -> dict:
        """Tag an item."""
        return {"item_id": item_id, "tag": body.tag.upper() if upper else body.tag}

    @g.app.post("/echo/status")
    async def echo_status(body: StatusRequest) -> JSONResponse:
        """Answer with the given HTTP status."""
        return JSONResponse({"detail": body.message}, status_code=body.status)

    @g.app.post("/slow")
    async def slow(body: SlowRequest) -> dict:
        """Wait, then answer."""
        await asyncio.sleep(body.seconds)
        return {"slept": body.seconds}

    async def big(body: BigRequest) -> StreamingResponse:
        """Answer with `mib` MiB of JSON text, streamed (with or without a Content-Length)."""
        sent = g.state.setdefault("big_chunks_sent", [])
        sent.append(0)
        chunk = b"x" * (1 << 20)

        async def chunks():
            yield b'"'
            for _ in range(body.mib):
                sent[-1] += 1
                yield chunk
            yield b'"'

        headers = {"content-length": str(body.mib * len(chunk) + 2)} if body.declare_length else None
        return StreamingResponse(chunks(), media_type="application/json", headers=headers)

    async def bomb(body: BigRequest) -> Response:
        """`mib` MiB of zeros, gzip-compressed to a few KiB."""
        return Response(gzip.compress(b"0" * (body.mib << 20)), media_type="application/json",
                        headers={"content-encoding": "gzip"})

    if with_big:
        g.app.post("/big")(big)
        g.app.post("/bomb")(bomb)

    @g.app.get("/status")
    async def status() -> dict:
        return {"ok": True}

    @g.app.post("/health")
    async def health() -> dict:
        return {"ok": True}

    @g.app.post("/run")
    async def run(body: dict) -> dict:
        return {}

    @g.app.post("/verify")
    async def verify(body: TreeVerify) -> Any:
        if body.expected_total < 0:  # a verifier that answers 100 MB
            return await big(BigRequest(mib=-body.expected_total))
        text = final_text(body)
        if body.omit_reward:
            return {"final_text": text}
        if body.mask:
            return echo(body, reward=0.0, mask_sample=True, failure_kind="resources_unavailable",
                        failure_reason="the tree store was down")
        return echo(body, reward=1.0 if str(body.expected_total) in text else 0.0, final_text=text)

    return g


# --------------------------------------------------------------------------- running


class RunningServer:
    """A uvicorn server for one app on 127.0.0.1 (ephemeral port, background thread)."""

    def __init__(self, gym: GymApp):
        self.gym = gym
        self.log = gym.log
        self.state = gym.state
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # accepted connections inherit this; asyncio only sets it itself on sockets
        # it created (proto IPPROTO_TCP), and without it Nagle's algorithm against
        # delayed ACKs costs ~40 ms per request
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(("127.0.0.1", 0))
        self._sock = sock
        self.port: int = sock.getsockname()[1]
        config = uvicorn.Config(gym.app, log_level="critical", access_log=False, lifespan="off",
                                timeout_graceful_shutdown=1)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)

    def start(self) -> "RunningServer":
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("test Gym server did not start")
            time.sleep(0.01)
        return self

    def url(self, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.should_exit = True
            self._thread.join(15)
        self._sock.close()


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (connections are refused)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port
