"""A local engine's API on the event loop, without the SDK: plain requests
(create, start, remove a container; place an archive) and ``docker exec``
attach, each on a unix-socket connection of its own. The attach creates the exec
and then starts it on the same connection, taken over ("hijacked") as the engine
API documents for ``POST /exec/{id}/start`` with ``Upgrade: tcp``. HTTP framing
is h11's; error answers become the SDK's exception classes, so callers handle
both paths alike.

Why: each SDK call is a blocking requests call in a worker thread -- about 1 to
2 ms of CPU, and a thread (with its stack and malloc arena) kept per call in
flight; a sandbox's life takes about ten of them. Engines reached over tcp://
or ssh:// keep the SDK path (TLS and proxies are its job).
"""

from __future__ import annotations

import os
from typing import Any

import anyio
import h11
import orjson
from anyio.abc import ByteStream

from react_eval.sandboxes.docker.client import docker_errors

_HEADERS = [("Host", "docker"), ("User-Agent", "react-eval")]


def unix_socket_path(url: str) -> str | None:
    """The socket path of a ``unix://`` engine address ("" = the environment's engine)."""
    url = url or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    if url.startswith("unix://"):
        return url[len("unix://"):] or None
    return None


def api_error(status: int, body: bytes) -> Exception:
    """The SDK's exception for an error answer (NotFound, ImageNotFound, APIError)."""
    errors = docker_errors()
    try:
        message = str(orjson.loads(body).get("message", body.decode(errors="replace")))
    except (orjson.JSONDecodeError, AttributeError):
        message = body.decode(errors="replace")
    message = message.strip()
    cls = errors.APIError
    if status == 404:
        cls = errors.ImageNotFound if "no such image" in message.lower() else errors.NotFound
    return cls(f"{status}: {message}", explanation=message)


async def request(socket_path: str, method: str, target: str, body: bytes = b"",
                  content_type: str = "application/json") -> tuple[int, bytes]:
    """One request on a connection of its own: (status, body). Raises OSError
    (or anyio's stream errors) when the engine cannot be reached."""
    stream = await anyio.connect_unix(socket_path)
    try:
        conn = h11.Connection(h11.CLIENT)
        await _send(stream, conn, method, target, body, [("Content-Type", content_type)])
        return await _response(conn, stream)
    finally:
        with anyio.CancelScope(shield=True):
            await stream.aclose()


async def _response(conn: h11.Connection, stream: ByteStream) -> tuple[int, bytes]:
    """The next response's status and body (or status 101 and the bytes after its head)."""
    status, body = 0, bytearray()
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(await stream.receive(1 << 16))
        elif isinstance(event, h11.InformationalResponse):
            if event.status_code == 101:
                return 101, conn.trailing_data[0]
        elif isinstance(event, h11.Response):
            status = event.status_code
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            return status, bytes(body)
        elif isinstance(event, h11.ConnectionClosed):
            raise anyio.EndOfStream


async def attach_exec(socket_path: str, api_version: str, container_id: str, cmd: list[str], *,
                      env: dict[str, str], workdir: str) -> tuple[str, ByteStream, bytes]:
    """Create and start an exec with stdin/stdout/stderr attached: (exec id, the
    hijacked stream, bytes of it already read). Raises OSError when the engine
    cannot be reached, the SDK's APIError (or NotFound) when it refuses."""
    stream = await anyio.connect_unix(socket_path)
    try:
        conn = h11.Connection(h11.CLIENT)
        body = orjson.dumps({"AttachStdin": True, "AttachStdout": True, "AttachStderr": True, "Tty": False,
                             "Cmd": cmd, "Env": [f"{k}={v}" for k, v in env.items()], "WorkingDir": workdir})
        await _send(stream, conn, "POST", f"/v{api_version}/containers/{container_id}/exec", body,
                    [("Content-Type", "application/json")])
        status, reply = await _response(conn, stream)
        if status != 201:
            raise api_error(status, reply)
        exec_id = orjson.loads(reply)["Id"]
        conn.start_next_cycle()
        await _send(stream, conn, "POST", f"/v{api_version}/exec/{exec_id}/start", b'{"Detach":false,"Tty":false}',
                    [("Content-Type", "application/json"), ("Connection", "Upgrade"), ("Upgrade", "tcp")])
        status, rest = await _response(conn, stream)
        if status != 101:
            raise api_error(status, rest)
        return exec_id, stream, rest
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
