"""A local engine's API on the event loop, without the SDK: plain requests
(containers, execs, images, the archive API for files) and ``docker exec``
attach, each on a unix-socket connection of its own. The attach creates the exec
and then starts it on the same connection, taken over ("hijacked") as the engine
API documents for ``POST /exec/{id}/start`` with ``Upgrade: tcp``. HTTP framing
is h11's; error answers become :class:`~.client.EngineError`, as the SDK's do
on the other path, so callers handle both alike.

Why: each SDK call is a blocking requests call in a worker thread -- about 1 to
2 ms of CPU, and a thread (with its stack and malloc arena) kept per call in
flight; a sandbox's life takes about ten of them, and the SDK's import alone is
megabytes. Engines reached over tcp:// or ssh:// keep the SDK path (TLS and
proxies are its job; see :meth:`.engines.Engine.send`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import IO, Any

import anyio
import h11
import orjson
from anyio.abc import ByteStream

from react_eval.sandboxes.docker.client import EngineError, engine_error

_HEADERS = [("Host", "docker"), ("User-Agent", "react-eval")]
#: bytes of a file body sent per write
_CHUNK = 1 << 16


class BodyTooLarge(Exception):
    """An answer's body passed the ``limit`` its request set (the rest is not read)."""


@dataclass
class Reply:
    """An engine's answer: status, headers (names in lower case) and body."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


def unix_socket_path(url: str) -> str | None:
    """The socket path of a ``unix://`` engine address ("" = the environment's engine)."""
    url = url or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    if url.startswith("unix://"):
        return url[len("unix://"):] or None
    return None


def api_error(status: int, body: bytes) -> EngineError:
    """The :class:`EngineError` of an error answer (NotFound, ImageNotFound, ...)."""
    try:
        message = str(orjson.loads(body).get("message", body.decode(errors="replace")))
    except (orjson.JSONDecodeError, AttributeError):
        message = body.decode(errors="replace")
    return engine_error(status, message)


async def request(socket_path: str, method: str, target: str, body: bytes | IO[bytes] = b"",
                  content_type: str = "application/json", *, limit: int | None = None,
                  timeout: float | None = None) -> Reply:
    """One request on a connection of its own. ``body`` may be an open binary
    file (sent from its position to its end); a reply body longer than ``limit``
    raises :class:`BodyTooLarge`; connecting, sending (each chunk of a file) and
    the whole answer may each take ``timeout`` seconds (else TimeoutError).
    Raises OSError (or anyio's stream errors) when the engine cannot be reached."""
    with anyio.fail_after(timeout):
        stream = await anyio.connect_unix(socket_path)
    try:
        conn = h11.Connection(h11.CLIENT)
        if isinstance(body, (bytes, bytearray)):
            with anyio.fail_after(timeout):
                await _send(stream, conn, method, target, bytes(body), [("Content-Type", content_type)])
        else:
            start = body.tell()
            size = body.seek(0, os.SEEK_END) - start
            body.seek(start)
            head = [*_HEADERS, ("Content-Length", str(size)), ("Content-Type", content_type)]
            data = conn.send(h11.Request(method=method, target=target, headers=head))
            while chunk := body.read(_CHUNK):
                with anyio.fail_after(timeout):
                    await stream.send(data + conn.send(h11.Data(data=chunk)))
                data = b""
            with anyio.fail_after(timeout):
                await stream.send(data + conn.send(h11.EndOfMessage()))
        with anyio.fail_after(timeout):
            return await _response(conn, stream, limit)
    finally:
        with anyio.CancelScope(shield=True):
            await stream.aclose()


async def _response(conn: h11.Connection, stream: ByteStream, limit: int | None = None) -> Reply:
    """The next response (or, for status 101, the bytes after its head as the body)."""
    reply, body = Reply(0), bytearray()
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(await stream.receive(1 << 16))
        elif isinstance(event, h11.InformationalResponse):
            if event.status_code == 101:
                return Reply(101, body=conn.trailing_data[0])
        elif isinstance(event, h11.Response):
            reply.status = event.status_code
            reply.headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in event.headers}
        elif isinstance(event, h11.Data):
            body += event.data
            if limit is not None and len(body) > limit:
                raise BodyTooLarge(len(body))
        elif isinstance(event, h11.EndOfMessage):
            reply.body = bytes(body)
            return reply
        elif isinstance(event, h11.ConnectionClosed):
            raise anyio.EndOfStream


async def attach_exec(socket_path: str, api_version: str, container_id: str, cmd: list[str], *,
                      env: dict[str, str], workdir: str) -> tuple[str, ByteStream, bytes]:
    """Create and start an exec with stdin/stdout/stderr attached: (exec id, the
    hijacked stream, bytes of it already read). Raises OSError when the engine
    cannot be reached, :class:`EngineError` (or NotFound) when it refuses."""
    stream = await anyio.connect_unix(socket_path)
    try:
        conn = h11.Connection(h11.CLIENT)
        body = orjson.dumps({"AttachStdin": True, "AttachStdout": True, "AttachStderr": True, "Tty": False,
                             "Cmd": cmd, "Env": [f"{k}={v}" for k, v in env.items()], "WorkingDir": workdir})
        await _send(stream, conn, "POST", f"/v{api_version}/containers/{container_id}/exec", body,
                    [("Content-Type", "application/json")])
        reply = await _response(conn, stream)
        if reply.status != 201:
            raise api_error(reply.status, reply.body)
        exec_id = orjson.loads(reply.body)["Id"]
        conn.start_next_cycle()
        await _send(stream, conn, "POST", f"/v{api_version}/exec/{exec_id}/start", b'{"Detach":false,"Tty":false}',
                    [("Content-Type", "application/json"), ("Connection", "Upgrade"), ("Upgrade", "tcp")])
        reply = await _response(conn, stream)
        if reply.status != 101:
            raise api_error(reply.status, reply.body)
        return exec_id, stream, reply.body
    except BaseException:
        with anyio.CancelScope(shield=True):
            await stream.aclose()
        raise


async def _send(stream: ByteStream, conn: h11.Connection, method: str, target: str, body: bytes,
                extra: list[tuple[str, str]]) -> None:
    headers: list[Any] = [*_HEADERS, ("Content-Length", str(len(body))), *extra]
    data = conn.send(h11.Request(method=method, target=target, headers=headers))
    data += conn.send(h11.Data(data=body)) + conn.send(h11.EndOfMessage())
    await stream.send(data)
