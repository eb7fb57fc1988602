"""Docker sandboxes: one container per rollout, driven through the docker SDK.

Each rollout gets its own container with the configured limits, labels
``react-eval.run=<run id>`` and ``react-eval.rollout=<id>``, and no network
unless the config asks for one. Its PID 1 is an idle bash that ignores every
signal it can (the kernel drops SIGKILL sent to a namespace's init from inside)
and reaps orphans, so nothing the model runs -- ``kill -9 -1``, ``pkill sleep``
-- can stop the container, and killed background jobs leave no zombies to eat
the pids limit.

How the pieces talk to the container:

* **bash** runs in a persistent shell: one ``docker exec`` of ``bash -s`` whose
  stdin/stdout are the exec's hijacked connection, spoken to with the protocol
  of :mod:`react_eval.sandboxes.shell`. After the one-off exec start, a call is
  a write and a read on that socket (well under a millisecond on a local
  engine), not a ``docker exec`` per command.
* **Killing** is done inside the container by a *control shell*: a second,
  long-lived exec whose kill function uses bash builtins only, so it works even
  while a fork bomb holds every PID the container may have. A timeout kills the
  processes the command started (same session or tagged environment, started
  after the command), sparing the shell and earlier background jobs.
* **Files** go in and out through the archive API (``put_archive`` /
  ``get_archive``) as in-memory tar streams; file content never travels in a
  command line. Sizes are checked with the archive ``HEAD`` (stat) before any
  content is fetched.
* **run()** (graders, setup) is a fresh exec that waits for a "go" line, runs
  the command in a child bash, then kills whatever the command left running.

Every docker SDK call blocks, so each runs in a worker thread bounded by a
capacity limiter; socket I/O of attached execs is asynchronous.

Cleanup: containers are removed in ``close()`` (the engine calls it in a
``finally``), by ``DockerSandboxProvider.aclose()``, at interpreter exit and on
SIGINT/SIGTERM (see :class:`_Reaper`); ``react-eval sandbox prune`` removes
leftovers of a killed process by label (:func:`prune_containers`).

``DockerSandboxConfig.timeout`` bounds the agent's use of the sandbox: from the
moment the container starts, each ``exec`` (the bash tool) is cut to the time
left, and once it is spent ``exec`` ends the rollout with error kind
``timeout``. ``run()`` and file transfers are not limited, so a timed-out
rollout can still be graded. The loop's ``rollout_timeout`` is the other,
independent limit (on the whole conversation, model calls included);
whichever is hit first ends the rollout.
"""

from __future__ import annotations

import atexit
import base64
import io
import json
import logging
import os
import posixpath
import re
import secrets
import signal
import socket
import tarfile
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

import anyio
import anyio.to_thread
from anyio.abc import ByteStream, SocketStream

from react_eval.sandboxes.base import ExecResult, FileInfo, FileTooLargeError, SandboxInfo, SandboxLimits, run_setup
from react_eval.sandboxes.docker_config import AGENT_USER_LABEL, DEFAULT_CAPS, DEFAULT_IMAGE, DockerSandboxConfig
from react_eval.sandboxes.shell import ABORT_SIGNAL, CappedBuffer, ShellSession, ShellTransportError
from react_eval.types import ErrorKind, RolloutError, SandboxError, SandboxSpec

#: environment entry that marks the processes of one sandbox role (shell, run #n)
TAG_VAR = "REACT_EVAL_SANDBOX"
RUN_LABEL = "react-eval.run"
ROLLOUT_LABEL = "react-eval.rollout"
BUILD_HINT = "bash sandboxes/build_image.sh"
START_HINT = "`bash sandboxes/ensure_docker.sh` (or `sudo systemctl start docker`)"

_CLK_TCK = os.sysconf("SC_CLK_TCK")
#: PID 1 of every container (see the module doc); "$0" names it in `ps`
_IDLE = 'trap "" TERM INT HUP QUIT USR1 USR2 PIPE; while :; do sleep 2147483647 & wait; done'
_GO_MODE_DIR = 1 << 31  # Go's os.ModeDir, as the archive stat header reports modes
_GO_MODE_SYMLINK = 1 << 27
_MAX_LINKS = 40
_log = logging.getLogger(__name__)


def _boot_ticks() -> int:
    """Now, in the clock /proc/<pid>/stat uses for process start times."""
    return int(time.clock_gettime(time.CLOCK_BOOTTIME) * _CLK_TCK)


def _local_boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:
        return ""


# The kill function shared by the control shell and the run() driver. Builtins
# only (no fork), so it still works when a fork bomb holds every free PID.
_KILL_FN = r"""
__re_kill() {
    local want="REACT_EVAL_SANDBOX=$1" sid=$2 mark=$3 round p d st e t killed=0
    local -a f env hit
    local -A skip=([1]=1 [$$]=1)
    shift 3
    for p; do skip[$p]=1; done
    for ((round = 0; round < 400; round++)); do
        hit=()
        for d in /proc/[0-9]*; do
            p=${d#/proc/}
            [[ -n ${skip[$p]} ]] && continue
            { read -r st < "$d/stat"; } 2>/dev/null || continue
            f=(${st##*) })
            [[ ${f[0]} == [ZX] ]] && continue
            (( ${f[19]:-0} >= mark )) || continue
            if [[ $sid != 0 && ${f[3]} == "$sid" ]]; then hit+=("$p"); continue; fi
            { mapfile -d '' -t env < "$d/environ"; } 2>/dev/null || continue
            # tagged with $1 or, when a command's start is given, with no tag at all
            # (started since then and cleared its environment to escape)
            t=none
            for e in "${env[@]}"; do
                [[ $e == "$want"* ]] && { t=want; break; }
                [[ $e == REACT_EVAL_SANDBOX=* ]] && t=other
            done
            [[ $t == want || ( $t == none && $mark != 0 ) ]] && hit+=("$p")
        done
        (( ${#hit[@]} )) || break
        kill -9 "${hit[@]}" 2>/dev/null
        killed=$((killed + ${#hit[@]}))
    done
    builtin echo "$killed"
}
"""

# run(): the exec reads this script from stdin up to a NUL (so no output can
# arrive before the attach is wrapped, and `ps` shows a short command line),
# runs the command in a child bash, then kills what it left behind.
_RUN_BOOT = 'IFS= read -r -d "" __s; eval "$__s"'
_RUN_DRIVER = (
    _KILL_FN
    + r"""
exec 2>&1
cd -- "$2" || exit 1
bash --noprofile --norc -c "$1" </dev/null
__rc=$?
__re_kill "$3" "$$" 0 >/dev/null
exit "$__rc"
"""
)


# ---- errors -----------------------------------------------------------------


def _docker_errors():
    import docker.errors

    return docker.errors


def _is_connection_error(exc: BaseException) -> bool:
    import requests

    if isinstance(exc, requests.exceptions.ConnectionError):
        return True
    errors = _docker_errors()
    return isinstance(exc, errors.DockerException) and not isinstance(exc, errors.APIError)


def _default_host() -> str:
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def unreachable_error(host: str | None, exc: BaseException) -> SandboxError:
    return SandboxError(
        f"the Docker daemon at {host or _default_host()} is unreachable ({type(exc).__name__}: {exc}); "
        f"start it with {START_HINT}, or point the sandbox's docker_host / DOCKER_HOST at a running engine"
    )


def _image_error(image: str, exc: BaseException) -> SandboxError:
    if image == DEFAULT_IMAGE:
        how = f"build it with `{BUILD_HINT}` (works offline; fast when it is up to date)"
    else:
        how = (
            f"build or pull it first (`docker pull {image}`), or use the default image "
            f"{DEFAULT_IMAGE} built by `{BUILD_HINT}`"
        )
    return SandboxError(f"docker image {image!r} not found: {how}")


# ---- the attached exec stream ---------------------------------------------------


async def stream_from_docker_socket(raw: Any, *, bridge: bool = False) -> ByteStream:
    """An async byte stream over the connection ``exec_start(socket=True)`` returned.

    A plain socket (unix:// or tcp:// engines) is detached from the SDK's
    objects and wrapped directly. Anything else (TLS, ssh) -- or ``bridge=True``
    -- is pumped by two threads through a local socket pair.
    """
    inner = raw._sock if isinstance(raw, socket.SocketIO) else raw
    if not bridge and type(inner) is socket.socket:
        fd = inner.detach()  # we own the descriptor now; the SDK's objects cannot close it
        raw.close()
        return await SocketStream.from_socket(fd)
    ours, theirs = socket.socketpair()

    def pump(src: socket.socket, dst: socket.socket, *cleanup: Callable[[], object]) -> None:
        """Copy ``src`` to ``dst`` until EOF or an error, then run ``cleanup`` (errors ignored)."""
        try:
            while True:
                data = src.recv(1 << 16)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for close in cleanup:
                try:
                    close()
                except OSError:
                    pass

    # engine -> us; then us -> engine, which holds ``raw`` so the SDK cannot close the socket
    inward = (inner, theirs, lambda: theirs.shutdown(socket.SHUT_WR))
    outward = (theirs, inner, lambda: inner.shutdown(socket.SHUT_RDWR), raw.close, inner.close, theirs.close)
    threading.Thread(target=pump, args=inward, name="react-eval-docker-in", daemon=True).start()
    threading.Thread(target=pump, args=outward, name="react-eval-docker-out", daemon=True).start()
    return await SocketStream.from_socket(ours)


class ExecStream:
    """The stdin/stdout of one attached exec, with docker's stream framing removed.

    Without a TTY the engine sends ``[stream, 0, 0, 0, size (4 bytes, big
    endian)]`` before each block of stdout (1) or stderr (2); both are returned
    in arrival order.
    """

    def __init__(self, stream: ByteStream, exec_id: str):
        self.stream = stream
        self.exec_id = exec_id
        self._buf = bytearray()
        self._left = 0  # payload bytes of the current frame not yet returned
        self._eof = False
        self.closed = False

    async def send(self, data: bytes) -> None:
        if self.closed:
            raise ShellTransportError("the exec stream is closed")
        try:
            await self.stream.send(data)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
            raise ShellTransportError(f"the exec's stdin is closed: {exc!r}") from exc

    def _take(self) -> bytes:
        buf, out = self._buf, bytearray()
        while buf:
            if self._left == 0:
                if len(buf) < 8:
                    break
                self._left = int.from_bytes(buf[4:8], "big")
                del buf[:8]
                continue
            n = min(self._left, len(buf))
            out += buf[:n]
            del buf[:n]
            self._left -= n
        return bytes(out)

    async def receive(self) -> bytes:
        """Next payload bytes; ``b""`` at end of stream."""
        while True:
            out = self._take()
            if out:
                return out
            if self._eof or self.closed:
                return b""
            try:
                self._buf += await self.stream.receive(1 << 16)
            except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                self._eof = True

    async def aclose(self) -> None:
        if self.closed:
            return
        self.closed = True
        with anyio.CancelScope(shield=True):
            try:
                await self.stream.aclose()
            except (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
                pass


# ---- cleanup at exit and on signals ------------------------------------------------


class _Reaper:
    """Remembers every live container of this process and removes them at
    interpreter exit and on SIGINT/SIGTERM (then the previous handler runs)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._live: dict[str, str | None] = {}  # container id -> docker_host
        self._pid = os.getpid()
        self._atexit = False
        self._signals = False
        self._previous: dict[int, Any] = {}

    def add(self, container_id: str, host: str | None) -> None:
        with self._lock:
            self._live[container_id] = host
            if not self._atexit:
                atexit.register(self.reap)
                self._atexit = True

    def discard(self, container_id: str) -> None:
        with self._lock:
            self._live.pop(container_id, None)

    def live(self) -> list[str]:
        with self._lock:
            return list(self._live)

    def install_signal_handlers(self) -> None:
        """Chain SIGINT/SIGTERM handlers (only possible from the main thread)."""
        if self._signals or threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._previous[sig] = signal.getsignal(sig)
                signal.signal(sig, self._on_signal)
            except (ValueError, OSError):
                continue
        self._signals = True

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.reap()
        previous = self._previous.get(signum)
        if callable(previous):
            previous(signum, frame)
        elif previous != signal.SIG_IGN:  # SIG_DFL, or None (a handler not set from Python)
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)

    def reap(self) -> None:
        """Remove every remembered container (best effort, in parallel)."""
        if os.getpid() != self._pid:  # a forked child must not remove its parent's containers
            return
        with self._lock:
            live, self._live = dict(self._live), {}
        if not live:
            return
        by_host: dict[str | None, list[str]] = {}
        for cid, host in live.items():
            by_host.setdefault(host, []).append(cid)
        threads = []
        for host, ids in by_host.items():
            for cid in ids:
                t = threading.Thread(target=_remove_quietly, args=(host, cid), daemon=True)
                t.start()
                threads.append(t)
        for t in threads:
            t.join(30)


def _api_client(host: str | None, *, timeout: int = 60, pool: int = 10):
    import docker

    if host:
        return docker.APIClient(base_url=host, version="auto", timeout=timeout, max_pool_size=pool)
    return docker.APIClient(version="auto", timeout=timeout, max_pool_size=pool, **_env_kwargs())


def _env_kwargs() -> dict[str, Any]:
    from docker.utils import kwargs_from_env

    return kwargs_from_env()


def _remove_quietly(host: str | None, container_id: str) -> None:
    try:
        api = _api_client(host, timeout=30)
        try:
            api.remove_container(container_id, force=True, v=True)
        finally:
            api.close()
    except Exception:
        pass


REAPER = _Reaper()


# ---- prune ------------------------------------------------------------------


@dataclass
class PrunedContainer:
    id: str
    name: str
    run_id: str
    rollout: str
    status: str
    removed: bool
    error: str | None = None


def prune_containers(
    *, run_id: str | None = None, dry_run: bool = False, docker_host: str | None = None
) -> list[PrunedContainer]:
    """Remove (or, with ``dry_run``, list) containers labelled ``react-eval.run``
    -- of one run when ``run_id`` is given. Raises SandboxError if the daemon
    cannot be reached."""
    label = f"{RUN_LABEL}={run_id}" if run_id else RUN_LABEL
    try:
        api = _api_client(docker_host)
    except Exception as exc:
        if _is_connection_error(exc):
            raise unreachable_error(docker_host, exc) from exc
        raise
    found = []
    try:
        try:
            containers = api.containers(all=True, filters={"label": label})
        except Exception as exc:
            if _is_connection_error(exc):
                raise unreachable_error(docker_host, exc) from exc
            raise
        for c in containers:
            labels = c.get("Labels") or {}
            item = PrunedContainer(
                id=c["Id"],
                name=(c.get("Names") or ["?"])[0].lstrip("/"),
                run_id=labels.get(RUN_LABEL, ""),
                rollout=labels.get(ROLLOUT_LABEL, ""),
                status=c.get("Status", ""),
                removed=False,
            )
            if not dry_run:
                try:
                    api.remove_container(c["Id"], force=True, v=True)
                    item.removed = True
                except _docker_errors().NotFound:
                    item.removed = True
                except Exception as exc:
                    item.error = str(exc)
            found.append(item)
    finally:
        api.close()
    return found


# ---- the control shell -----------------------------------------------------------


class _ControlShell:
    """A long-lived root bash in the container that kills processes on request."""

    def __init__(self, sandbox: DockerSandbox):
        self.sandbox = sandbox
        self._stream: ExecStream | None = None
        self._lock = anyio.Lock()
        self._pending = bytearray()
        self._seq = 0
        #: add to a host boot-time tick count to get the container's
        self.tick_offset = 0

    async def _start(self) -> None:
        if self._stream is not None:
            await self._stream.aclose()
        self._pending.clear()
        self._stream = await self.sandbox._attach(["bash", "--noprofile", "--norc", "-s"], env={}, workdir="/")
        await self._stream.send(
            _KILL_FN.encode()
            + b'read -r __b < /proc/sys/kernel/random/boot_id; read -r __u _ < /proc/uptime; '
            + b'builtin echo "__re_ready $__b $__u"\n'
        )
        line = await self._line(b"__re_ready ")
        received = _boot_ticks()
        parts = line.split()
        boot_id = parts[1].decode() if len(parts) == 3 else ""
        if boot_id and boot_id == _local_boot_id():
            self.tick_offset = 0  # the same kernel: the same clock
        else:  # a remote engine: map host ticks to container ticks (errs towards killing more)
            try:
                self.tick_offset = int(float(parts[-1]) * _CLK_TCK) - received
            except ValueError:
                self.tick_offset = 0

    async def _line(self, prefix: bytes) -> bytes:
        assert self._stream is not None
        while True:
            i = self._pending.find(prefix)
            if i >= 0:
                j = self._pending.find(b"\n", i)
                if j >= 0:
                    line = bytes(self._pending[i:j])
                    del self._pending[: j + 1]
                    return line
            chunk = await self._stream.receive()
            if not chunk:
                raise ShellTransportError("the control shell exited")
            self._pending += chunk

    async def kill(self, tag: str, *, sid: int | None = None, mark: int | None = None,
                   exclude: tuple[int, ...] = (), timeout: float = 30.0, abort: int | None = None) -> None:
        """SIGKILL the container's processes tagged ``tag`` (entry prefix), in
        session ``sid`` or untagged that started at or after host tick ``mark``;
        first send ABORT_SIGNAL to the shell ``abort`` (see shell.py)."""
        container_mark = 0 if mark is None else max(mark + self.tick_offset, 0)
        async with self._lock:
            for attempt in (1, 2):
                try:
                    with anyio.fail_after(timeout):
                        if self._stream is None or self._stream.closed:
                            await self._start()
                        assert self._stream is not None
                        self._seq += 1
                        args = " ".join(str(p) for p in exclude)
                        done = f"__re_done {self._seq} ".encode()
                        first = f"builtin kill -s {ABORT_SIGNAL} {abort} 2>/dev/null; " if abort else ""
                        await self._stream.send(
                            f"{first}__re_kill {tag} {sid or 0} {container_mark} {args}; "
                            f'builtin echo "__re_done {self._seq} $?"\n'.encode()
                        )
                        await self._line(done)
                        return
                except ShellTransportError:
                    await self.aclose()  # a fresh control shell on the next attempt
                    if attempt == 2:
                        raise SandboxError(await self.sandbox._gone_message("the control shell stopped answering"))
                except TimeoutError:
                    await self.aclose()  # its loop is bounded; a new one starts next time
                    raise SandboxError(
                        await self.sandbox._gone_message(f"processes in the container could not be killed within {timeout:g}s")
                    ) from None

    async def start(self) -> None:
        """Start the control shell now (while PIDs are surely free) and learn the clock."""
        async with self._lock:
            if self._stream is None:
                try:
                    await self._start()
                except ShellTransportError as exc:
                    raise SandboxError(await self.sandbox._gone_message(f"the control shell did not start: {exc}")) from exc

    async def aclose(self) -> None:
        if self._stream is not None:
            await self._stream.aclose()
            self._stream = None


# ---- the shell transport ------------------------------------------------------------


class DockerShellTransport:
    """:class:`ShellTransport` over an exec's hijacked connection."""

    def __init__(self, sandbox: DockerSandbox, tag: str):
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


# ---- the sandbox -------------------------------------------------------------------


def _owned(info: tarfile.TarInfo, owner: tuple[int, int]) -> tarfile.TarInfo:
    """``info`` owned by ``owner`` (uid, gid): the engine extracts archives as
    root and keeps the numeric owner of each entry."""
    info.uid, info.gid = owner
    info.uname = info.gname = ""
    return info


def _add_dirs(tf: tarfile.TarFile, dirs: list[str], owner: tuple[int, int]) -> None:
    """Directory entries for the missing parents of a member, so that they are
    the agent's (the engine would otherwise create them as root)."""
    for name in dirs:
        info = tarfile.TarInfo(name)
        info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, int(time.time())
        tf.addfile(_owned(info, owner))


def _tar_file(member: str, data: bytes, mode: int, owner: tuple[int, int] = (0, 0),
              dirs: list[str] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        _add_dirs(tf, dirs or [], owner)
        info = tarfile.TarInfo(member)
        info.size = len(data)
        info.mode = mode & 0o7777
        info.mtime = int(time.time())
        tf.addfile(_owned(info, owner), io.BytesIO(data))
    return buf.getvalue()


def _dir_entry(name: str, owner: tuple[int, int]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        _add_dirs(tf, [name], owner)
    return buf.getvalue()


def _is_root(user: str | None) -> bool:
    return (user or "root").split(":")[0] in ("", "root", "0")


def _lookup(table: bytes, key: str, field: int) -> int | None:
    """Numeric id of ``key`` (a name or a number) in /etc/passwd or /etc/group text."""
    if key.isdigit():
        return int(key)
    for line in table.decode("utf-8", "replace").splitlines():
        parts = line.split(":")
        if len(parts) > field and parts[0] == key and parts[field].isdigit():
            return int(parts[field])
    return None


@dataclass
class _PathStat:
    exists: bool
    path: str  # after following symbolic links of the last component
    is_dir: bool = False
    size: int = 0
    mode: int = 0o644


class DockerSandbox:
    """One rollout's container: a persistent shell, archive file transfer."""

    def __init__(self, provider: DockerSandboxProvider, container_id: str, name: str, *, image: str,
                 workdir: str | None = None):
        self.provider = provider
        self.config = provider.config
        self.limits = provider.limits
        self.container_id = container_id
        self.name = name
        self.workdir = posixpath.normpath(workdir or self.config.workdir)
        self.token = secrets.token_hex(8)
        self.info = SandboxInfo(
            provider="docker",
            ident=name,
            extra={"container_id": container_id, "image": image, "network": self.config.network},
        )
        self._closed = False
        self._removing = False
        self._dead: str | None = None
        self._runs = 0
        self._deadline = time.monotonic() + self.config.timeout if self.config.timeout else None
        #: (uid, gid) that files placed through the archive API get: the agent's
        self.owner = (0, 0)
        self._control = _ControlShell(self)
        transport = DockerShellTransport(self, f"{self.token}.shell")
        self.shell = ShellSession(transport, cwd=self.workdir, max_output_bytes=self.limits.max_output_bytes)
        transport.pid_source = lambda: self.shell.shell_pid

    # ---- docker plumbing ----

    async def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run a blocking SDK call in a worker thread; daemon failures become SandboxError."""
        try:
            return await anyio.to_thread.run_sync(lambda: fn(*args, **kwargs), limiter=self.provider.limiter)
        except Exception as exc:
            if _is_connection_error(exc):
                raise unreachable_error(self.config.docker_host, exc) from exc
            raise

    async def _attach(self, cmd: list[str], *, env: dict[str, str], workdir: str) -> ExecStream:
        api = self.provider.api
        errors = _docker_errors()

        def start() -> tuple[str, Any]:
            ex = api.exec_create(self.container_id, cmd, stdin=True, stdout=True, stderr=True,
                                 tty=False, environment=env, workdir=workdir)
            return ex["Id"], api.exec_start(ex["Id"], socket=True)

        try:
            exec_id, raw = await self._call(start)
        except errors.APIError as exc:
            raise SandboxError(await self._gone_message(f"docker exec failed: {exc.explanation or exc}")) from exc
        return ExecStream(await stream_from_docker_socket(raw, bridge=self.provider.bridge_sockets), exec_id)

    async def _exit_code(self, exec_id: str) -> int | None:
        api = self.provider.api

        def wait() -> int | None:
            for _ in range(200):
                info = api.exec_inspect(exec_id)
                if not info.get("Running"):
                    return info.get("ExitCode")
                time.sleep(0.01)
            return None

        try:
            return await self._call(wait)
        except _docker_errors().APIError:
            return None

    async def _state(self) -> dict[str, Any] | None:
        """The container's State, or None if it no longer exists."""
        try:
            return (await self._call(self.provider.api.inspect_container, self.container_id)).get("State", {})
        except _docker_errors().NotFound:
            return None

    async def _gone_message(self, what: str) -> str:
        """``what``, explained by the container's state when it is not running."""
        if self._dead:
            return self._dead
        try:
            state = await self._state()
        except SandboxError as exc:
            return str(exc)
        except Exception:
            return what
        if state is not None and state.get("Running") and not state.get("Paused"):
            return what
        if state is None:
            why = "no longer exists (removed from outside?)"
        else:
            why = f"is no longer running (status {state.get('Status')}, exit code {state.get('ExitCode')}"
            if state.get("OOMKilled"):
                why += f", killed for exceeding the memory limit {self.config.memory}"
            if state.get("Error"):
                why += f", error: {state['Error']}"
            why += ")"
        self._dead = f"the sandbox container {self.name} {why}"
        return self._dead

    async def _check_alive(self) -> None:
        if self._closed:
            raise SandboxError("the sandbox is closed")
        if self._dead:
            raise SandboxError(self._dead)
        state = await self._state()
        if state is None or not state.get("Running") or state.get("Paused"):
            raise SandboxError(await self._gone_message("the sandbox container is not running"))

    # ---- commands ----

    async def start(self) -> None:
        await self.shell.start()

    def _time_left(self) -> float | None:
        return None if self._deadline is None else self._deadline - time.monotonic()

    def _out_of_time(self) -> RolloutError:
        return RolloutError(
            f"the sandbox's wall-clock limit of {self.config.timeout:g}s is used up", kind=ErrorKind.timeout
        )

    async def exec(self, command: str, timeout: float) -> ExecResult:
        if self._closed:
            raise SandboxError("the sandbox is closed")
        if self._dead:
            raise SandboxError(self._dead)
        left = self._time_left()
        if left is not None and left <= 0:
            raise self._out_of_time()
        cut = left is not None and left < timeout
        result = await self.shell.exec(command, min(timeout, left) if cut and left is not None else timeout)
        if cut and result.timed_out:
            raise self._out_of_time()
        return result

    async def run(self, command: str, timeout: float, cwd: str | None = None) -> ExecResult:
        """Run ``command`` in a fresh bash (not the persistent shell); whatever
        it leaves running is killed when it exits, everything it started on a timeout."""
        if self._closed:
            raise SandboxError("the sandbox is closed")
        started = time.perf_counter()
        self._runs += 1
        tag = f"{self.token}.run.{self._runs}"
        workdir = self.resolve(cwd) if cwd else self.workdir
        stream = await self._attach(
            ["bash", "--noprofile", "--norc", "-c", _RUN_BOOT, "react-eval-run", command, workdir, tag],
            env={TAG_VAR: tag},
            workdir="/",
        )
        out = CappedBuffer(self.limits.max_output_bytes)
        timed_out = False
        try:
            with anyio.move_on_after(max(timeout, 0.001)) as scope:
                await stream.send(_RUN_DRIVER.encode() + b"\0")
                while chunk := await stream.receive():
                    out.add(chunk)
            if scope.cancelled_caught:
                timed_out = True
                with anyio.CancelScope(shield=True):
                    await self._control.kill(tag)
                    with anyio.move_on_after(2):
                        while chunk := await stream.receive():
                            out.add(chunk)
        finally:
            await stream.aclose()
        code = None if timed_out else await self._exit_code(stream.exec_id)
        if not timed_out and (code is None or code >= 128):
            # killed by a signal: by the command's own doing, or because the container died
            # (then graders must see an infrastructure error, not a failing test); the
            # engine records a container's death a moment after its processes die
            for _ in range(10):
                state = await self._state()
                if state is None or not state.get("Running"):
                    raise SandboxError(await self._gone_message("the container stopped during a command"))
                await anyio.sleep(0.05)
            if code is None:
                raise SandboxError("a command's exit status could not be read")
        return ExecResult(
            output=out.text(),
            exit_code=code,
            timed_out=timed_out,
            dropped_chars=out.dropped,
            latency_ms=(time.perf_counter() - started) * 1000,
        )

    # ---- files ----

    def resolve(self, path: str) -> str:
        """Absolute in-container path: relative paths are under the workdir;
        absolute ones are allowed anywhere (the container is the boundary)."""
        if not isinstance(path, str) or "\x00" in path:
            raise PermissionError(f"invalid path {path!r}")
        joined = path if path.startswith("/") else posixpath.join(self.workdir, path)
        normal = posixpath.normpath(joined)
        return "/" + normal.lstrip("/")

    def _stat_sync(self, path: str) -> _PathStat:
        """Archive stat of ``path``, following symbolic links (blocking)."""
        api = self.provider.api
        url = api._url("/containers/{0}/archive", self.container_id)
        current = path
        for _ in range(_MAX_LINKS):
            res = api.head(url, params={"path": current}, timeout=api.timeout)
            if res.status_code == 404:  # no such path (the container was checked just before)
                return _PathStat(False, current)
            if res.status_code >= 400:
                if not self._exists_sync():
                    raise _ContainerGone()
                # a HEAD error has no body; the usual cause is a file used as a directory
                parent = posixpath.dirname(current)
                while parent not in ("/", ""):
                    up = api.head(url, params={"path": parent}, timeout=api.timeout)
                    if up.status_code == 200:
                        header = up.headers.get("X-Docker-Container-Path-Stat")
                        parent_mode = int(json.loads(base64.b64decode(header)).get("mode", 0)) if header else 0
                        if not parent_mode & (_GO_MODE_DIR | _GO_MODE_SYMLINK):
                            raise NotADirectoryError(20, "Not a directory", path)
                        break
                    parent = posixpath.dirname(parent)
                raise OSError(f"cannot stat {path}: docker answered {res.status_code} {res.reason}")
            header = res.headers.get("X-Docker-Container-Path-Stat")
            info = json.loads(base64.b64decode(header)) if header else {}
            mode = int(info.get("mode", 0))
            if mode & _GO_MODE_SYMLINK and info.get("linkTarget"):
                target = info["linkTarget"]
                current = posixpath.normpath(
                    target if target.startswith("/") else posixpath.join(posixpath.dirname(current), target)
                )
                continue
            is_dir = bool(mode & _GO_MODE_DIR)
            return _PathStat(True, current, is_dir=is_dir, size=0 if is_dir else int(info.get("size", 0)),
                             mode=mode & 0o7777)
        raise OSError(40, "Too many levels of symbolic links", path)  # ELOOP

    def _exists_sync(self) -> bool:
        try:
            self.provider.api.inspect_container(self.container_id)
            return True
        except _docker_errors().NotFound:
            return False

    async def _file_op(self, fn: Callable[[], Any]) -> Any:
        """A blocking file operation on a running container (checked first)."""
        await self._check_alive()
        try:
            return await self._call(fn)
        except _ContainerGone:
            raise SandboxError(await self._gone_message("the sandbox container disappeared")) from None
        except _docker_errors().APIError as exc:
            message = await self._gone_message("")
            if message:
                raise SandboxError(message) from exc
            raise OSError(f"docker archive error: {exc.explanation or exc}") from exc

    async def stat(self, path: str) -> FileInfo:
        full = self.resolve(path)
        st: _PathStat = await self._file_op(lambda: self._stat_sync(full))
        return FileInfo(exists=st.exists, is_dir=st.is_dir, size=st.size)

    async def read_file(self, path: str, max_bytes: int | None = None) -> bytes:
        full = self.resolve(path)
        limit = self.limits.max_read_bytes if max_bytes is None else max_bytes
        api = self.provider.api

        def read() -> bytes:
            st = self._stat_sync(full)
            if not st.exists:
                raise FileNotFoundError(2, "No such file or directory", path)
            if st.is_dir:
                raise IsADirectoryError(21, "Is a directory", path)
            if st.size > limit:
                raise FileTooLargeError(path, st.size, limit)
            chunks, stat_header = api.get_archive(self.container_id, st.path)
            data = bytearray()
            cap = limit + 64 * 1024  # the file plus tar headers (PAX names included)
            try:
                for chunk in chunks:
                    data += chunk
                    if len(data) > cap:
                        raise FileTooLargeError(path, int(stat_header.get("size", len(data))), limit)
            finally:
                chunks.close()
            with tarfile.open(fileobj=io.BytesIO(bytes(data)), mode="r:") as tf:
                member = tf.next()
                if member is None or not member.isfile():
                    raise OSError(f"{path} is not a regular file")
                if member.size > limit:
                    raise FileTooLargeError(path, member.size, limit)
                f = tf.extractfile(member)
                assert f is not None
                return f.read()

        return await self._file_op(read)

    async def write_file(self, path: str, data: bytes, mode: int | None = None) -> None:
        full = self.resolve(path)
        api = self.provider.api

        def write() -> None:
            st = self._stat_sync(full)
            if st.is_dir:  # the archive API would replace the directory with the file
                raise IsADirectoryError(21, "Is a directory", path)
            perms = mode if mode is not None else (st.mode if st.exists else 0o644)
            if not st.path.lstrip("/"):
                raise IsADirectoryError(21, "Is a directory", path)
            where, member = self._archive_target(st.path)
            dirs = [] if st.exists else self._missing_dirs_sync(where, member)
            try:
                api.put_archive(self.container_id, where, _tar_file(member, data, perms, self.owner, dirs))
            except _docker_errors().APIError as exc:
                if not self._exists_sync():
                    raise _ContainerGone() from exc
                text = str(exc.explanation or exc)
                if "not a directory" in text:
                    raise NotADirectoryError(20, "A component of the path is not a directory", path) from exc
                if "read-only" in text or "permission denied" in text.lower():
                    raise PermissionError(13, "Permission denied", path) from exc
                raise OSError(f"cannot write {path}: {text}") from exc

        await self._file_op(write)

    async def place(self, spec: SandboxSpec) -> None:
        """Copy the task's repository and files into the workdir (before its setup command)."""
        if spec.repo_dir:
            if not os.path.isdir(spec.repo_dir):
                raise SandboxError(f"repo_dir {spec.repo_dir!r} is not a directory")
            await self.put_tree(spec.repo_dir)
        if spec.files:
            await self.put_files(spec.files)

    async def put_tree(self, host_dir: str) -> None:
        """Copy the contents of ``host_dir`` into the workdir (modes, symlinks
        and dot-files such as .git preserved), streamed from a spooled tar."""
        where = posixpath.normpath(self.workdir)

        def build() -> Any:
            spool = tempfile.SpooledTemporaryFile(max_size=64 << 20)
            with tarfile.open(fileobj=spool, mode="w", format=tarfile.PAX_FORMAT) as tf:
                for name in sorted(os.listdir(host_dir)):
                    tf.add(os.path.join(host_dir, name), arcname=name, recursive=True,
                           filter=lambda info: _owned(info, self.owner))
            spool.seek(0)
            return spool

        spool = await anyio.to_thread.run_sync(build, limiter=self.provider.limiter)
        try:
            await self._file_op(lambda: self.provider.api.put_archive(self.container_id, where, spool))
        finally:
            spool.close()

    async def put_files(self, files: dict[str, str]) -> None:
        """Place text files (paths relative to the workdir) in one archive."""
        targets = [self._archive_target(self.resolve(rel)) for rel in files]

        def build() -> dict[str, bytes]:
            by_root: dict[str, io.BytesIO] = {}
            archives: dict[str, tarfile.TarFile] = {}
            made: set[tuple[str, str]] = set()
            for (where, member), content in zip(targets, files.values()):
                if where not in archives:
                    by_root[where] = io.BytesIO()
                    archives[where] = tarfile.open(fileobj=by_root[where], mode="w", format=tarfile.PAX_FORMAT)
                dirs = [d for d in self._missing_dirs_sync(where, member, made) if (where, d) not in made]
                made.update((where, d) for d in dirs)
                _add_dirs(archives[where], dirs, self.owner)
                data = content.encode("utf-8")
                info = tarfile.TarInfo(member)
                info.size, info.mode, info.mtime = len(data), 0o644, int(time.time())
                archives[where].addfile(_owned(info, self.owner), io.BytesIO(data))
            for tf in archives.values():
                tf.close()
            return {where: buf.getvalue() for where, buf in by_root.items()}

        for where, payload in (await self._file_op(build)).items():
            await self._file_op(lambda w=where, p=payload: self.provider.api.put_archive(self.container_id, w, p))

    def _missing_dirs_sync(self, where: str, member: str, known: set[tuple[str, str]] | None = None) -> list[str]:
        """The parent directories of ``member`` (under ``where``) that do not exist
        yet, outermost first. Existing ones are left out: a directory entry
        would change their owner and mode."""
        if self.owner == (0, 0):
            return []  # the engine creates missing parents as root: right already
        missing: list[str] = []
        parent = posixpath.dirname(member)
        while parent and (where, parent) not in (known or set()):
            if self._stat_sync(posixpath.join(where, parent)).exists:
                break
            missing.append(parent)
            parent = posixpath.dirname(parent)
        return missing[::-1]

    async def _take_ownership(self, user: str | None) -> None:
        """Learn the numeric owner for placed files from the container's
        /etc/passwd and /etc/group, and give a non-root agent its workdir."""
        if _is_root(user):
            return
        assert user is not None
        key = (self.info.extra["image"], user)
        if key not in self.provider._owners:
            self.provider._owners[key] = await self._lookup_owner(user)
        self.owner = self.provider._owners[key]
        parent, base = posixpath.split(self.workdir)
        if base and not self.config.read_only:  # the volume of a read-only one copies the image's owner
            try:  # (just started: no liveness check first)
                await self._call(self.provider.api.put_archive, self.container_id, parent or "/",
                                 _dir_entry(base, self.owner))
            except _docker_errors().APIError as exc:
                raise SandboxError(f"cannot give the workdir {self.workdir} to user {user!r}: "
                                   f"{exc.explanation or exc}") from exc

    async def _lookup_owner(self, user: str) -> tuple[int, int]:
        name, _, group = user.partition(":")
        passwd = await self.read_file("/etc/passwd", max_bytes=8 << 20)
        uid = _lookup(passwd, name, 2)
        if uid is None:
            raise SandboxError(f"user {name!r} is not in /etc/passwd of image {self.info.extra['image']!r}")
        if group:
            gid = _lookup(await self.read_file("/etc/group", max_bytes=8 << 20), group, 2)
            if gid is None:
                raise SandboxError(f"group {group!r} is not in /etc/group of image {self.info.extra['image']!r}")
        else:
            gid = _lookup(passwd, name, 3) if not name.isdigit() else None
            gid = 0 if gid is None else gid  # as docker does for a uid with no passwd entry
        return uid, gid

    def _archive_target(self, path: str) -> tuple[str, str]:
        """(directory to extract at, member name) for absolute in-container ``path``:
        the workdir when the path is inside it, since a read-only root file system
        refuses any extraction at ``/`` (the workdir is then a volume)."""
        workdir = posixpath.normpath(self.workdir)
        if path.startswith(workdir.rstrip("/") + "/"):
            return workdir, path[len(workdir.rstrip("/")) + 1 :]
        return "/", path.lstrip("/")

    # ---- lifecycle ----

    async def close(self) -> None:
        """Remove the container (killing everything in it)."""
        if self._closed:
            return
        self._closed = True
        self._removing = True
        with anyio.CancelScope(shield=True):
            try:
                for step in (self.shell.close, self._control.aclose):
                    try:
                        await step()
                    except Exception:
                        pass  # the container goes next, with everything in it
                await self.provider._remove(self)
            finally:
                self.provider._forget(self)


class _ContainerGone(Exception):
    """Raised inside worker threads when the container no longer exists."""


_NAME_RE = re.compile(r"[^a-zA-Z0-9_.-]+")


class DockerSandboxProvider:
    """Creates one :class:`DockerSandbox` per rollout (at most ``concurrency`` live)."""

    name = "docker"

    def __init__(
        self,
        config: DockerSandboxConfig | None = None,
        *,
        run_id: str,
        limits: SandboxLimits | None = None,
        setup_timeout: float = 900.0,
        bridge_sockets: bool = False,
    ):
        self.config = config or DockerSandboxConfig()
        self.run_id = run_id
        self.limits = limits or SandboxLimits()
        self.setup_timeout = setup_timeout
        #: pump exec sockets through threads even when they could be used directly
        self.bridge_sockets = bridge_sockets
        threads = min(64, 2 * self.config.concurrency + 4)
        self.limiter = anyio.CapacityLimiter(threads)
        self._pool = threads
        self._slots = anyio.Semaphore(self.config.concurrency)
        self._api: Any = None
        self._connect_lock = anyio.Lock()
        self._open: set[DockerSandbox] = set()
        #: image -> the user its containers run as (None = the image's own: root)
        self._users: dict[str, str | None] = {}
        #: (image, user) -> the numeric (uid, gid) placed files get
        self._owners: dict[tuple[str, str], tuple[int, int]] = {}

    @property
    def api(self) -> Any:
        assert self._api is not None, "connect() first"
        return self._api

    async def connect(self) -> None:
        """Reach the daemon (once); raises SandboxError if it does not answer."""
        async with self._connect_lock:
            if self._api is not None:
                return
            host = self.config.docker_host
            try:
                self._api = await anyio.to_thread.run_sync(
                    lambda: _api_client(host, timeout=120, pool=self._pool), limiter=self.limiter
                )
            except Exception as exc:
                if _is_connection_error(exc):
                    raise unreachable_error(host, exc) from exc
                raise SandboxError(f"cannot talk to the Docker daemon at {host or _default_host()}: {exc}") from exc
            await anyio.to_thread.run_sync(self._remove_stopped, limiter=self.limiter)

    def _remove_stopped(self) -> None:
        """Remove stopped containers of this run id left by an earlier attempt
        (a daemon restart stops every container, and they cannot be removed
        while it is down; ``--resume``/``--retry-errors`` reuse the run id).
        Running ones may belong to a live process and are left alone."""
        try:
            stale = self.api.containers(all=True, filters={"label": f"{RUN_LABEL}={self.run_id}",
                                                           "status": ["exited", "dead"]})
        except Exception:
            return  # best effort: `react-eval sandbox prune` removes them too
        for c in stale:
            _remove_quietly(self.config.docker_host, c["Id"])

    def _agent_user(self, image: str) -> str | None:
        """The configured user, else the image's ``react-eval.agent-user`` label
        (when the image sets no USER of its own), else the image's own user (blocking)."""
        if self.config.user:
            return self.config.user
        if image not in self._users:
            errors = _docker_errors()
            try:
                conf = self.api.inspect_image(image).get("Config") or {}
            except errors.ImageNotFound as exc:
                raise _image_error(image, exc) from exc
            own = conf.get("User") or None
            label = (conf.get("Labels") or {}).get(AGENT_USER_LABEL)  # "" = root, on purpose
            self._users[image] = own or label or None
            if own is None and label is None:
                _log.warning("docker image %s names no unprivileged user (label %s): the agent runs as "
                             "root in it; set the sandbox option `user` to choose one", image, AGENT_USER_LABEL)
        return self._users[image]

    def _container_kwargs(self, image: str, labels: dict[str, str], name: str,
                          spec: SandboxSpec | None = None, user: str | None = None) -> dict[str, Any]:
        cfg = self.config
        spec = spec or SandboxSpec()
        api = self.api
        env = {"TERM": "dumb", "PAGER": "cat", "GIT_PAGER": "cat", **cfg.env, **spec.env}
        workdir = posixpath.normpath(spec.workdir or cfg.workdir)
        cpus = spec.cpus or cfg.cpus  # a task's own settings win over the run's
        # hardened by default: no capability beyond what a root shell needs (none for
        # another user), no setuid escalation, a CPU cap, no host mount of any kind
        caps = cfg.cap_add if cfg.cap_add is not None else (list(DEFAULT_CAPS) if _is_root(user) else [])
        host_config = api.create_host_config(
            network_mode=cfg.network,
            mem_limit=f"{spec.memory_mb}m" if spec.memory_mb else cfg.memory,
            nano_cpus=int(cpus * 1e9) if cpus else None,
            pids_limit=cfg.pids_limit,
            cap_drop=["ALL"],
            cap_add=list(caps) or None,
            security_opt=["no-new-privileges:true"],
            read_only=cfg.read_only or None,
            tmpfs={"/tmp": f"rw,nosuid,nodev,size={cfg.tmp_size},mode=1777"} if cfg.read_only else None,
        )
        extra: dict[str, Any] = {"user": user} if user else {}
        if cfg.read_only:
            extra["volumes"] = [workdir]  # anonymous, removed with the container (v=True)
        return dict(**extra,
            image=image,
            entrypoint=["bash", "-c", _IDLE],  # replaces any entrypoint of the image
            command=["react-eval-idle"],
            name=name,
            hostname="sandbox",
            working_dir=workdir,
            environment=env,
            labels=labels,
            host_config=host_config,
            detach=True,
            use_config_proxy=False,
        )

    async def create(self, spec: SandboxSpec | None, *, labels: dict[str, str]) -> DockerSandbox:
        """Start a container, place the task's repo and files, start the shell, run setup."""
        spec = spec or SandboxSpec()
        await self.connect()
        REAPER.install_signal_handlers()
        image = spec.image or self.config.image
        rollout = labels.get(ROLLOUT_LABEL) or secrets.token_hex(8)
        all_labels = {str(k): str(v) for k, v in labels.items()}
        all_labels.update({RUN_LABEL: self.run_id, ROLLOUT_LABEL: rollout})
        name = _NAME_RE.sub("_", f"react-eval-{rollout}")[:48] + "-" + secrets.token_hex(3)
        await self._slots.acquire()
        sandbox: DockerSandbox | None = None
        container_id: str | None = None
        try:
            errors = _docker_errors()
            try:
                user = await anyio.to_thread.run_sync(self._agent_user, image, limiter=self.limiter)
            except Exception as exc:
                if _is_connection_error(exc):
                    raise unreachable_error(self.config.docker_host, exc) from exc
                raise
            kwargs = self._container_kwargs(image, all_labels, name, spec, user)
            created: list[str] = []

            def start() -> None:
                c = self.api.create_container(**kwargs)
                created.append(c["Id"])
                REAPER.add(c["Id"], self.config.docker_host)
                self.api.start(c["Id"])

            try:
                await anyio.to_thread.run_sync(start, limiter=self.limiter)
            except errors.ImageNotFound as exc:
                raise _image_error(image, exc) from exc
            except errors.APIError as exc:
                raise SandboxError(f"cannot start a container from {image!r}: {exc.explanation or exc}") from exc
            except Exception as exc:
                if _is_connection_error(exc):
                    raise unreachable_error(self.config.docker_host, exc) from exc
                raise
            finally:
                container_id = created[0] if created else None
            sandbox = DockerSandbox(self, container_id, name, image=image,  # type: ignore[arg-type]
                                    workdir=spec.workdir)
            self._open.add(sandbox)
            await sandbox._control.start()
            await sandbox._take_ownership(user)
            sandbox.info.extra["user"] = user or "root"
            await sandbox.place(spec)
            await sandbox.start()
            if spec.setup:
                await run_setup(sandbox, spec.setup, self.setup_timeout)
        except BaseException as exc:
            with anyio.CancelScope(shield=True):
                if sandbox is not None:
                    try:
                        await sandbox.close()  # releases the slot
                    except Exception:
                        pass  # the reason the creation failed matters more
                else:
                    if container_id is not None:
                        await anyio.to_thread.run_sync(_remove_quietly, self.config.docker_host, container_id)
                        REAPER.discard(container_id)
                    self._slots.release()
            if isinstance(exc, OSError):
                raise SandboxError(f"cannot prepare the sandbox container: {exc}") from exc
            raise
        return sandbox

    async def _remove(self, sandbox: DockerSandbox) -> None:
        try:
            await sandbox._call(self.api.remove_container, sandbox.container_id, force=True, v=True)
        except _docker_errors().NotFound:
            pass
        except _docker_errors().APIError as exc:
            if "already in progress" not in str(exc):
                raise SandboxError(f"could not remove container {sandbox.name}: {exc.explanation or exc}") from exc
        REAPER.discard(sandbox.container_id)

    def _forget(self, sandbox: DockerSandbox) -> None:
        if sandbox in self._open:
            self._open.discard(sandbox)
            self._slots.release()

    async def aclose(self) -> None:
        """Remove every container this provider created that is still open."""
        errors = []
        for sandbox in list(self._open):
            try:
                await sandbox.close()
            except Exception as exc:
                errors.append(exc)
        if self._api is not None:
            api, self._api = self._api, None
            api.close()
        if errors:
            raise errors[0]
