""":class:`~react_eval.sandboxes.shell.ShellTransport` of the Docker sandbox: the
persistent bash is one ``docker exec`` of ``bash -s`` spoken to over its hijacked
connection; interrupts go through the sandbox's control shell."""

from __future__ import annotations

from typing import Callable

import anyio

from react_eval.sandboxes.docker.control import TAG_VAR, ExecHost
from react_eval.sandboxes.docker.control import boot_ticks as _boot_ticks
from react_eval.sandboxes.docker.stream import ExecStream
from react_eval.sandboxes.shell_transport import ShellTransportError
from react_eval.types import SandboxError


class DockerShellTransport:
    """:class:`ShellTransport` over an exec's hijacked connection."""

    def __init__(self, sandbox: ExecHost, tag: str):
        self.sandbox = sandbox
        self.tag = tag
        #: the container PID of the current shell (set once it answered)
        self.shell_pid: int | None = None
        self.pid_source: Callable[[], int | None] = lambda: None
        self._stream: ExecStream | None = None
        self._mark: int | None = None

    async def start(self) -> None:
        await self.close()
        try:
            self._stream = await self.sandbox._attach(
                ["bash", "--noprofile", "--norc", "-s"],
                env={TAG_VAR: self.tag},
                workdir=self.sandbox.workdir,
            )
        except SandboxError as exc:
            raise ShellTransportError(str(exc)) from exc

    async def send(self, data: bytes) -> None:
        if self._stream is None:
            raise ShellTransportError("the shell is not running")
        await self._stream.send(data)

    async def receive(self) -> bytes:
        if self._stream is None:
            return b""
        return await self._stream.receive()

    def shell_ready(self) -> None:
        self.shell_pid = self.pid_source()

    def mark_command_start(self) -> None:
        self._mark = _boot_ticks()

    async def interrupt(self) -> None:
        pid = self.shell_pid
        await self.sandbox._control.kill(
            self.tag, sid=pid, mark=self._mark, exclude=(pid,) if pid else (), abort=pid
        )

    async def exit_status(self) -> int | None:
        if self._stream is None:
            return None
        return await self.sandbox._exit_code(self._stream.exec_id)

    async def close(self) -> None:
        stream, self._stream = self._stream, None
        if stream is None:
            return
        with anyio.CancelScope(shield=True):
            await stream.aclose()
            if not self.sandbox._removing:
                try:  # the old shell and everything it started, background jobs included
                    await self.sandbox._control.kill(self.tag, sid=self.shell_pid)
                except SandboxError:
                    pass
        self.shell_pid = None
