"""A persistent bash session spoken over any byte stream.

The protocol (framing, completion detection, exit codes, output capping,
timeouts, restarts) lives in :class:`ShellSession`; *where* bash runs lives in
a :class:`ShellTransport`. The local sandbox drives bash through a subprocess
pipe; a Docker sandbox can reuse the same session over an exec attach socket by
writing only a transport.

How a command is framed (one line per call, so nothing the model writes can
break the framing)::

    __re_c=$'<command>'; if (parse $__re_c with set -n in a subshell); then
    <restore $?>; builtin eval "$__re_c" </dev/null >&"$__re_fd" 2>&1; fi;
    __re_rc=$?; __re_end <seq>     (builtin printf '<marker format>' <nonce-a> <nonce-b> <seq> "$__re_rc" "$PWD" ...)

* The command travels ANSI-C quoted (every byte outside printable ASCII, plus
  ``'`` and ``\\``, as ``\\xHH``), so quotes, heredocs, comments and unbalanced
  quotes reach ``eval`` intact; a syntax error is bash's own exit code 2. This
  needs no decoder process (unlike piping base64 through ``base64 -d``); the
  only fork per call is the syntax check (see ``_frame``).
* ``eval`` runs in the shell itself, so ``cd``/``export``/functions persist.
  Its stdin is ``/dev/null`` (``cat`` cannot eat the command stream), stdout
  and stderr go to the same pipe (order preserved) through a saved descriptor,
  so an ``exec >file`` inside one command cannot silence the markers.
* Completion is a marker carrying a random per-session nonce, the call's
  sequence number, ``$?`` and ``$PWD``. The nonce is passed as two separate
  arguments and never stored in a variable, so ``set``, ``declare -f``,
  ``trap -p`` or ``set -v`` never print it whole: output cannot fake a marker.
* An EXIT trap prints the same marker with sequence ``x``, so ``exit 3``
  reports 3 even when a background child keeps the pipe open; the session then
  starts a fresh shell in the last working directory and says so.
* ``__re_ret`` restores ``$?`` of the previous call, so ``false`` followed by
  ``echo $?`` in the next call prints 1, as in a terminal.

A timeout stops the whole command, not only its running process. The shell
itself runs part of every command (builtins, loops, redirections: in
``sleep 3; echo LATE > FILE`` killing ``sleep`` would let the shell write
FILE), so the transport first sends the shell :data:`ABORT_SIGNAL`, whose trap
turns on a DEBUG trap (``extdebug``) that skips every further command up to
the frame's own ``__re_rc=$?``, and then kills every process the command
started (children, background jobs, ``nohup`` and ``setsid`` escapes; see the
transports). The shell keeps its state (cwd, variables, functions) and answers
the next call. A shell that does not answer within ``interrupt_grace`` (a
busy builtin loop the DEBUG trap cannot end, a command that replaced the
abort trap) is killed with everything in it and restarted in its last working
directory, and the result's ``note`` says so. Background jobs started by
earlier calls survive a timeout.
"""

from __future__ import annotations

import os
import re
import secrets
import time
from dataclasses import dataclass

import anyio

from react_eval.sandboxes.base import ExecResult
from react_eval.sandboxes.shell_transport import ABORT_SIGNAL, ABORT_SIGNUM, ShellTransport, ShellTransportError
from react_eval.sandboxes.shell_text import CappedBuffer, ansi_c_quote, decode_output, needs_syntax_check
from react_eval.types import SandboxError

# the text helpers and the transport's contract were born here; importers keep finding them here
__all__ = [
    "ABORT_SIGNAL", "ABORT_SIGNUM", "CappedBuffer", "ShellSession", "ShellTransport", "ShellTransportError",
    "ansi_c_quote", "decode_output", "needs_syntax_check",
]

#: how long to wait for the shell to answer after the running command's
#: processes were killed, before giving up and restarting the shell
DEFAULT_INTERRUPT_GRACE = 1.0
#: how long a freshly started shell may take to answer its first command
DEFAULT_START_TIMEOUT = 20.0


#: what a marker holds between its tags: sequence (or ``x``), status, cwd
_MARKER_BODY = re.compile(rb":(x|\d+):(-?\d+):(.*)", re.S)


def _display(path: str | None) -> str:
    """A path (which may hold undecodable bytes) as text safe for JSON."""
    return decode_output(os.fsencode(path)) if path else "?"


@dataclass
class _Marker:
    exited: bool  # printed by the EXIT trap: the shell is gone
    rc: int
    cwd: str


class ShellSession:
    """A persistent bash shell: state (cwd, exports, functions) carries over.

    Calls are serialized with a lock. A timeout kills the running command's
    processes; if the shell itself does not answer afterwards it is restarted
    in the last known working directory and the result's ``note`` says so.
    """

    def __init__(
        self,
        transport: ShellTransport,
        *,
        cwd: str | None = None,
        max_output_bytes: int = 1 << 20,
        interrupt_grace: float = DEFAULT_INTERRUPT_GRACE,
        start_timeout: float = DEFAULT_START_TIMEOUT,
        answer_with_first_call: bool = False,
    ):
        self.transport = transport
        #: ``start`` only sends the set-up and its probe; the first call reads
        #: the probe's answer (and fails as ``start`` would) just before its own,
        #: so a sandbox's first command costs no extra round trip. Only for a
        #: transport whose ``shell_ready`` may run after the first command was sent.
        self.answer_with_first_call = answer_with_first_call
        self.max_output_bytes = max_output_bytes
        self.interrupt_grace = interrupt_grace
        self.start_timeout = start_timeout
        #: last working directory the shell reported (restored on restart)
        self.cwd = cwd
        self._initial_cwd = cwd
        #: the shell's ``$$`` as seen where it runs (inside a container/namespace)
        self.shell_pid: int | None = None
        self.restarts = 0
        self._lock = anyio.Lock(fast_acquire=True)  # no extra trip through the event loop per call
        nonces = secrets.token_hex(16).encode()  # one read of the system's randomness for both
        self._nonce_a, self._nonce_b = nonces[:16], nonces[16:]
        start = b"\x1f" + self._nonce_a + self._nonce_b
        end = b"\x1e" + self._nonce_b + self._nonce_a
        self._start_tag = start
        self._end_tag = end
        self._pending = bytearray()
        self._seq = 0
        self._started = False
        self._closed = False
        self._broken: str | None = None  # why the shell must be restarted before the next call
        #: the sequence number of a start-up probe not read yet (answer_with_first_call)
        self._probe: int | None = None

    # ---- framing -------------------------------------------------------

    def _printf(self, seq: bytes, rc: bytes) -> bytes:
        fmt = b"'\\037%s%s:%s:%d:%s\\036%s%s'"
        return (
            b"builtin printf " + fmt + b" " + self._nonce_a + b" " + self._nonce_b + b" "
            + seq + b" " + rc + b' "$PWD" ' + self._nonce_b + b" " + self._nonce_a
            + b' >&"$__re_fd"'
        )

    def _frame(self, command: str, seq: int) -> bytes:
        """One line of shell input that runs ``command`` and prints the marker.

        Unless the command is plainly a list of simple words (see
        :func:`needs_syntax_check`), it is first parsed (``set -n``) in a forked
        subshell: bash 5.2's ``eval`` can corrupt the shell's parser state, or
        even its heap, on some syntax errors (``echo `x``, ``[[ -n``), so a
        command that does not parse never reaches the persistent shell; bash's
        message and exit code 2 are reported instead. The leading empty line
        resets the parser state as a second guard.

        The line is kept short: bash reads a pipe one byte per system call, so
        the fixed work after the command lives in ``__re_end`` (defined once
        per shell); the command's own ``eval`` stays at the top level, where
        ``local``, ``return`` and ``$1`` mean what they mean in a terminal.
        Everything but the ``eval`` runs with the shell's own stderr, which the
        set-up points at /dev/null, so ``set -x`` and ``set -v`` show only the
        command, and the frame needs no redirection of its own.
        """
        quoted = ansi_c_quote(command.encode("utf-8", errors="surrogateescape"))
        run = b'builtin eval "$__re_c" </dev/null >&"$__re_fd" 2>&1; '
        if needs_syntax_check(command):
            head = b"\n__re_c=" + quoted + b"; "
            run = (
                b"if ( { builtin set +xv; } 2>/dev/null; builtin shopt -s extglob; "
                b"builtin eval \"builtin set -n\"$'\\n'\"$__re_c\" ) </dev/null >&\"$__re_fd\" 2>&1; "
                b'then __re_ret "$__re_rc" && :; ' + run + b'else __re_ret "$?" && :; fi; '
            )
        else:
            head = b"\n__re_c=" + quoted + b'; __re_ret "$__re_rc" && :; '
        return head + run + b"__re_rc=$?; __re_end " + str(seq).encode() + b"\n"

    def _init_script(self, cwd: str | None) -> bytes:
        trap_body = self._printf(b"x", b'"$?"').replace(b"'", b"'\\''")
        lines = [
            # the shell's own stderr is /dev/null: only the command's (the eval's
            # 2>&1) reaches the output, so the frame needs no redirections of its own
            b"exec {__re_fd}>&1 2>/dev/null",
            b"__re_rc=0",
            b'__re_ret() { return "$1"; }',
            # after each command (stderr is /dev/null around the call): the marker
            b"__re_end() { builtin unset __re_c; " + self._printf(b'"$1"', b'"$__re_rc"') + b"; }",
            b"trap '" + trap_body + b"' EXIT",
            # on ABORT_SIGNAL: skip every command (extdebug: a DEBUG trap that
            # fails skips the command; -T reaches into functions) until the
            # frame's `__re_rc=$?`, which turns skipping off again
            b"__re_skip() { [[ $BASH_COMMAND == '__re_rc=$?' ]] || return 1; "
            b"builtin trap - DEBUG; builtin shopt -u extdebug; builtin set +T; }",
            b"trap 'builtin shopt -s extdebug; builtin set -T; builtin trap __re_skip DEBUG' "
            + ABORT_SIGNAL.encode(),
        ]
        if cwd:
            lines.append(b"builtin cd -- " + ansi_c_quote(os.fsencode(cwd)) + b" 2>/dev/null")
        return b"\n".join(lines) + b"\n"

    # ---- reading -------------------------------------------------------

    def _scan(self, seq: int, out: CappedBuffer) -> _Marker | None:
        """Move output from the pending bytes into ``out`` until a marker."""
        buf = self._pending
        keep = len(self._start_tag) - 1
        while True:
            i = buf.find(self._start_tag)
            if i < 0:
                # hold back only a tail that could be the start of a marker
                hold = 0
                j = buf.rfind(self._start_tag[:1], max(0, len(buf) - keep))
                if j >= 0 and self._start_tag.startswith(bytes(buf[j:])):
                    hold = len(buf) - j
                if len(buf) > hold:
                    out.add(memoryview(buf)[: len(buf) - hold])
                    del buf[: len(buf) - hold]
                return None
            if i:
                out.add(memoryview(buf)[:i])
                del buf[:i]
            # the body between this session's start and end tags (a regex
            # per session would cost a compile per sandbox: ~1 ms of CPU)
            end = buf.find(self._end_tag, len(self._start_tag))
            m = _MARKER_BODY.fullmatch(buf, len(self._start_tag), end) if end >= 0 else None
            if m is None:
                if end < 0 and len(buf) < 65536:
                    return None  # the marker is still arriving
                out.add(memoryview(buf)[:1])  # not a real marker: treat as output
                del buf[:1]
                continue
            token, rc, cwd = m.group(1), int(m.group(2)), m.group(3)
            del buf[: end + len(self._end_tag)]
            if token == b"x":
                return _Marker(True, rc, os.fsdecode(bytes(cwd)))
            if int(token) != seq:
                continue  # a stale marker from an abandoned call
            return _Marker(False, rc, os.fsdecode(bytes(cwd)))

    async def _read_marker(self, seq: int, out: CappedBuffer) -> _Marker | None:
        """Read until this call's marker; None at end of stream."""
        while True:
            if self._pending:  # nothing to scan before the first chunk of a call
                marker = self._scan(seq, out)
                if marker is not None:
                    return marker
            chunk = await self.transport.receive()
            if not chunk:
                out.add(self._pending)
                self._pending.clear()
                return None
            self._pending += chunk

    # ---- lifecycle -----------------------------------------------------

    async def start(self) -> None:
        """Start the shell and check it answers (raises SandboxError if not;
        with ``answer_with_first_call``, the first call checks)."""
        async with self._lock:
            await self._start_locked(self.cwd, defer=self.answer_with_first_call)

    async def _start_locked(self, cwd: str | None, defer: bool = False) -> None:
        if self._closed:
            raise SandboxError("the sandbox shell is closed")
        self._pending.clear()
        self._broken = None
        try:
            await self.transport.start()
        except ShellTransportError as exc:
            raise SandboxError(f"could not start the sandbox shell: {exc}") from exc
        self._seq += 1
        seq = self._seq
        try:  # one write: the set-up and the first command
            await self.transport.send(self._init_script(cwd) + self._frame("builtin echo $$", seq))
        except ShellTransportError:
            pass  # the shell died at once: its output says why (read below, or by the first call)
        self._probe = seq
        self._started = True
        if not defer:
            await self._read_probe()

    async def _read_probe(self) -> None:
        """Read the start-up probe's answer: note the shell's pid and cwd, or
        close the transport and raise SandboxError with the shell's output."""
        seq, self._probe = self._probe, None
        assert seq is not None
        out = CappedBuffer(65536)
        marker = None
        with anyio.move_on_after(self.start_timeout):
            marker = await self._read_marker(seq, out)
        text = out.text().strip()
        if marker is None or marker.exited:
            self._started = False
            await self.transport.close()
            why = "did not answer in time" if marker is None else f"exited with {marker.rc}"
            raise SandboxError(f"the sandbox shell {why}; its output: {text!r}")
        self.cwd = marker.cwd
        lines = text.splitlines()
        self.shell_pid = int(lines[-1]) if lines and lines[-1].isdigit() else None
        self.transport.shell_ready()

    async def _restart(self) -> None:
        """Start a new shell in the last known cwd (or the initial one)."""
        self.restarts += 1
        await self.transport.close()
        try:
            await self._start_locked(self.cwd)
        except SandboxError:
            if self.cwd == self._initial_cwd:
                raise
            await self._start_locked(self._initial_cwd)

    def closing(self) -> None:
        """From now on calls raise SandboxError, and a running call that loses
        its shell reports the sandbox closed rather than restarting it (for an
        owner about to kill the shell its own way before ``close``)."""
        self._closed = True

    async def close(self) -> None:
        """Kill the shell and all its processes; later calls raise SandboxError.

        Does not wait for a running call: its stream is closed under it.
        """
        self._closed = True
        await self.transport.close()

    # ---- exec ----------------------------------------------------------

    async def exec(self, command: str, timeout: float) -> ExecResult:
        """Run ``command`` in the shell, returning its merged output and exit code."""
        async with self._lock:
            if self._closed:
                raise SandboxError("the sandbox shell is closed")
            started = time.perf_counter()
            notes: list[str] = []
            if not self._started:
                await self._start_locked(self.cwd)
            elif self._broken:
                notes.append(self._broken)
                await self._restart()
            try:
                result = await self._exec_locked(command, timeout, notes)
            except SandboxError:
                raise
            except BaseException:
                # cancelled from outside mid-command: stop the command now; the
                # shell is in an unknown state, so the next call starts a fresh one
                if not self._closed:
                    with anyio.CancelScope(shield=True), anyio.move_on_after(5):
                        await self.transport.interrupt()
                    self._broken = (
                        "The previous command was abandoned, so the shell was restarted; "
                        "environment variables and shell functions were reset"
                    )
                raise
            result.latency_ms = (time.perf_counter() - started) * 1000
            return result

    async def _exec_locked(self, command: str, timeout: float, notes: list[str]) -> ExecResult:
        self._seq += 1
        seq = self._seq
        out = CappedBuffer(self.max_output_bytes)
        frame = self._frame(command, seq)
        self.transport.mark_command_start()
        marker: _Marker | None = None
        sent = False
        if self._probe is not None:
            # the first call: its command goes right behind the start-up probe,
            # whose answer is read first (both usually come back in one read)
            try:
                await self.transport.send(frame)
                sent = True
            except ShellTransportError:
                pass  # a shell that died at once fails the probe below
            await self._read_probe()
        with anyio.move_on_after(max(timeout, 0.001)) as scope:
            try:
                if not sent:
                    await self.transport.send(frame)
            except ShellTransportError:
                # the shell died between calls: one fresh shell, then retry once
                self._check_open()
                notes.append("The shell had exited and was restarted; shell state was reset")
                await self._restart()
                self.transport.mark_command_start()
                try:
                    await self.transport.send(frame)
                except ShellTransportError as exc:
                    raise SandboxError(f"the sandbox shell cannot be reached: {exc}") from exc
            marker = await self._read_marker(seq, out)
        if scope.cancelled_caught:
            self._check_open()
            await self.transport.interrupt()
            with anyio.move_on_after(self.interrupt_grace):
                marker = await self._read_marker(seq, out)
            if marker is None or marker.exited:
                self._check_open()
                out.add(self._pending)  # whatever arrived is the command's output
                await self._restart()
                notes.append(
                    f"The shell did not recover after the timeout and was restarted in {_display(self.cwd)}; "
                    "environment variables and shell functions were reset"
                )
            else:
                self.cwd = marker.cwd
                await self._collect_stragglers(out)
            return self._result(out, None, True, notes)
        self._check_open()
        if marker is None:  # end of stream without a marker: the shell died
            rc = await self.transport.exit_status()
            await self._restart()
            notes.append(
                f"The shell process died (status {rc if rc is not None else 'unknown'}) and a new "
                f"shell was started in {_display(self.cwd)}; environment variables and shell functions were reset"
            )
            return self._result(out, rc if rc is not None else -1, False, notes)
        self.cwd = marker.cwd
        if marker.exited:
            await self._restart()
            notes.append(
                f"The shell exited with status {marker.rc}; a new shell was started in {_display(self.cwd)} "
                "for the next command (environment variables and shell functions were reset)"
            )
        return self._result(out, marker.rc, False, notes)

    async def _collect_stragglers(self, out: CappedBuffer) -> None:
        """After a timeout: the killed processes (a fork bomb's retrying
        children, say) may have written after the command's marker, and that
        output must not open the next command's. They are all dead now, so all
        of it is in the stream before the marker of a no-op sent now; read up
        to that marker into the timed-out command's output. The no-op keeps
        ``$?``, so the next command sees the timed-out command's status."""
        self._seq += 1
        seq = self._seq
        with anyio.move_on_after(self.interrupt_grace):
            try:
                await self.transport.send(self._frame("__re_ret $?", seq))
            except ShellTransportError:
                return  # the next call finds the shell gone and restarts it
            await self._read_marker(seq, out)

    def _check_open(self) -> None:
        if self._closed:
            raise SandboxError("the sandbox was closed while a command was running")

    @staticmethod
    def _result(out: CappedBuffer, rc: int | None, timed_out: bool, notes: list[str]) -> ExecResult:
        return ExecResult(
            output=out.text(),
            exit_code=rc,
            timed_out=timed_out,
            dropped_chars=out.dropped,
            note="; ".join(notes) if notes else None,
        )
