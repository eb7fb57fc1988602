"""``docker exec`` attach on a local engine without the SDK: one unix-socket
connection of our own that creates the exec and then starts it, taken over
("hijacked") as the engine API documents for ``POST /exec/{id}/start`` with
``Upgrade: tcp``. HTTP framing is h11's.

Why: the SDK path is two blocking requests calls in a worker thread (about
2 ms of CPU each, and a thread kept per call in flight) for every shell a
sandbox starts; this is two writes and two reads on the event loop. Engines
reached over tcp:// or ssh:// keep the SDK path (TLS and proxies are its job).
"""

from __future__ import annotations

import os
from typing import Any

import anyio
import h11
import orjson
from anyio.abc import ByteStream

_HEADERS = [("Host", "docker"), ("Content-Type", "application/json"), ("User-Agent", "react-eval")]


def unix_socket_path(url: str) -> str | None:
    """The socket path of a ``unix://`` engine address ("" = the environment's engine)."""
    url = url or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    if url.startswith("unix://"):
        return url[len("unix://"):] or None
    return None


class ExecAttachError(Exception):
    """The engine answered the exec create/start with an error status."""

    def __init__(self, status: int, message: str):
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


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


def _error(status: int, body: bytes) -> ExecAttachError:
    try:
        message = str(orjson.loads(body).get("message", body.decode(errors="replace")))
    except (orjson.JSONDecodeError, AttributeError):
        message = body.decode(errors="replace")
    return ExecAttachError(status, message.strip())


async def attach_exec(socket_path: str, api_version: str, container_id: str, cmd: list[str], *,
                      env: dict[str, str], workdir: str) -> tuple[str, ByteStream, bytes]:
    """Create and start an exec with stdin/stdout/stderr attached: (exec id, the
    hijacked stream, bytes of it already read). Raises OSError when the engine
    cannot be reached, ExecAttachError when it refuses."""
    stream = await anyio.connect_unix(socket_path)
    try:
        conn = h11.Connection(h11.CLIENT)
        body = orjson.dumps({"AttachStdin": True, "AttachStdout": True, "AttachStderr": True, "Tty": False,
                             "Cmd": cmd, "Env": [f"{k}={v}" for k, v in env.items()], "WorkingDir": workdir})
        await _send(stream, conn, f"/v{api_version}/containers/{container_id}/exec", body, [])
        status, reply = await _response(conn, stream)
        if status != 201:
            raise _error(status, reply)
        exec_id = orjson.loads(reply)["Id"]
        conn.start_next_cycle()
        await _send(stream, conn, f"/v{api_version}/exec/{exec_id}/start", b'{"Detach":false,"Tty":false}',
                    [("Connection", "Upgrade"), ("Upgrade", "tcp")])
        status, rest = await _response(conn, stream)
        if status != 101:
            raise _error(status, rest)
        return exec_id, stream, rest
    except BaseException:
        with anyio.CancelScope(shield=True):
            await stream.aclose()
        raise


async def _send(stream: ByteStream, conn: h11.Connection, target: str, body: bytes,
                extra: list[tuple[str, str]]) -> None:
    headers: list[Any] = [*_HEADERS, ("Content-Length", str(len(body))), *extra]
    data = conn.send(h11.Request(method="POST", target=target, headers=headers))
    data += conn.send(h11.Data(data=body)) + conn.send(h11.EndOfMessage())
    await stream.send(data)
