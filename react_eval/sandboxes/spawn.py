"""Starting a sandbox's shell process: C library ``posix_spawn``, or ``subprocess.Popen``.

A local sandbox starts one shell per rollout, and ``subprocess.Popen`` spends
most of a start in Python around its ``vfork``: about 100 µs of the
harness's CPU per shell. The C library's ``posix_spawn`` does the same
``vfork`` + ``exec`` with every step the shell needs done in the child: its
pipes on 0, 1 and 2, every other descriptor closed (``closefrom``, as
``close_fds=True`` does), the working directory entered, a new session, and
``SIGPIPE``/``SIGXFSZ`` (ignored by Python) back to their defaults, as
``restore_signals=True`` does. ``os.posix_spawn`` has neither ``closefrom``
nor a working directory, so glibc's own function is called through ctypes
where it has both (glibc 2.34+); elsewhere :func:`spawn` uses ``Popen`` with
the same settings.
"""

from __future__ import annotations

import ctypes
import fcntl
import functools
import os
import signal
import subprocess

__all__ = ["ShellProcess", "spawn"]

# glibc's <spawn.h> flags
_SETSIGDEF = 0x04
_SETSID = 0x80
#: signals Python ignores that a spawned program must see at their default (subprocess' restore_signals)
_RESTORED = tuple(getattr(signal, name) for name in ("SIGPIPE", "SIGXFZ", "SIGXFSZ") if hasattr(signal, name))
#: room for glibc's opaque posix_spawn_file_actions_t (80 bytes), posix_spawnattr_t (336) and sigset_t (128)
_OPAQUE = 512


class ShellProcess:
    """A spawned shell: its pid, our ends of its stdin and stdout, and its exit status once reaped."""

    def __init__(self, pid: int, stdin: int, stdout: int, popen: subprocess.Popen | None = None):
        self.pid = pid
        #: our (write) end of its stdin and (read) end of its stdout+stderr; closed by :meth:`close_pipes`
        self.stdin = stdin
        self.stdout = stdout
        #: the exit status as subprocess reports it (-N: killed by signal N), once reaped
        self.returncode: int | None = None
        self._popen = popen

    def poll(self) -> int | None:
        """Reap the process if it exited; its ``returncode`` (None while it runs)."""
        if self._popen is not None:
            self.returncode = self._popen.poll()
        elif self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:  # reaped elsewhere: its status is lost (as Popen says, 0)
                self.returncode = 0
            else:
                if pid:
                    self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self) -> int:
        """Block until the process exited, and reap it."""
        if self._popen is not None:
            self.returncode = self._popen.wait()
        while self.returncode is None:
            try:
                _, status = os.waitpid(self.pid, 0)
            except ChildProcessError:
                self.returncode = 0
            else:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def kill(self) -> None:
        if self.poll() is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def close_pipes(self) -> None:
        if self._popen is not None:  # its file objects own the descriptors
            for f in (self._popen.stdin, self._popen.stdout):
                if f is not None:
                    f.close()
            return
        for fd in (self.stdin, self.stdout):
            try:
                os.close(fd)
            except OSError:
                pass


def spawn(argv: list[str], *, executable: str, cwd: str, env: dict[str, str]) -> ShellProcess:
    """Start ``argv`` (``executable`` is its absolute path) in ``cwd`` with
    exactly ``env``, in a new session, reading a pipe and writing another
    (stderr into stdout); raises OSError when it cannot start."""
    libc = _glibc()
    if libc is None:
        return _popen(argv, executable=executable, cwd=cwd, env=env)
    child_in, ours_in = _pipe()
    try:
        ours_out, child_out = _pipe()
    except OSError:
        os.close(child_in)
        os.close(ours_in)
        raise
    try:
        pid = _posix_spawn(libc, argv, executable, cwd, env, child_in, child_out)
    except BaseException:
        os.close(ours_in)
        os.close(ours_out)
        raise
    finally:
        os.close(child_in)
        os.close(child_out)
    return ShellProcess(pid, ours_in, ours_out)


def _pipe() -> tuple[int, int]:
    """A close-on-exec pipe whose ends are above 2 (a harness started with a
    closed stdin would otherwise get 0, which ``dup2`` onto itself keeps close-on-exec)."""
    ends = os.pipe2(os.O_CLOEXEC)
    if min(ends) > 2:
        return ends
    moved: list[int] = []
    try:
        for fd in ends:
            moved.append(fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3))
    except OSError:
        for fd in moved:
            os.close(fd)
        raise
    finally:
        for fd in ends:
            os.close(fd)
    return moved[0], moved[1]


def _posix_spawn(libc: ctypes.CDLL, argv: list[str], executable: str, cwd: str, env: dict[str, str],
                 stdin: int, stdout: int) -> int:
    actions = ctypes.create_string_buffer(_OPAQUE)
    attr = ctypes.create_string_buffer(_OPAQUE)
    sigdef = ctypes.create_string_buffer(_OPAQUE)
    _check(libc.posix_spawn_file_actions_init(actions))
    try:
        _check(libc.posix_spawnattr_init(attr))
        try:
            for fd, target in ((stdin, 0), (stdout, 1), (stdout, 2)):
                _check(libc.posix_spawn_file_actions_adddup2(actions, fd, target))
            _check(libc.posix_spawn_file_actions_addclosefrom_np(actions, 3))
            _check(libc.posix_spawn_file_actions_addchdir_np(actions, os.fsencode(cwd)))
            libc.sigemptyset(sigdef)
            for signum in _RESTORED:
                libc.sigaddset(sigdef, signum)
            _check(libc.posix_spawnattr_setsigdefault(attr, sigdef))
            _check(libc.posix_spawnattr_setflags(attr, _SETSID | _SETSIGDEF))
            args = [os.fsencode(a) for a in argv]
            envp = [os.fsencode(k) + b"=" + os.fsencode(v) for k, v in env.items()]
            c_argv = (ctypes.c_char_p * (len(args) + 1))(*args, None)
            c_envp = (ctypes.c_char_p * (len(envp) + 1))(*envp, None)
            pid = ctypes.c_int()
            _check(libc.posix_spawn(ctypes.byref(pid), os.fsencode(executable), actions, attr, c_argv, c_envp),
                   executable)
            return pid.value
        finally:
            libc.posix_spawnattr_destroy(attr)
    finally:
        libc.posix_spawn_file_actions_destroy(actions)


def _check(code: int, filename: str | None = None) -> None:
    """posix_spawn and its helpers return an error number (0: success)."""
    if code:
        raise OSError(code, os.strerror(code), filename)


def _popen(argv: list[str], *, executable: str, cwd: str, env: dict[str, str]) -> ShellProcess:
    proc = subprocess.Popen(argv, executable=executable, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, cwd=cwd, env=env, start_new_session=True, bufsize=0)
    assert proc.stdin is not None and proc.stdout is not None
    return ShellProcess(proc.pid, proc.stdin.fileno(), proc.stdout.fileno(), popen=proc)


@functools.lru_cache(maxsize=1)
def _glibc() -> ctypes.CDLL | None:
    """The C library when it has every posix_spawn step the shell needs
    (glibc 2.34+ on Linux), else None."""
    if os.environ.get("REACT_EVAL_SPAWN") == "popen":  # forces the fallback (tests, or a libc that misbehaves)
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        needed = ("posix_spawn", "posix_spawn_file_actions_addclosefrom_np", "posix_spawn_file_actions_addchdir_np",
                  "posix_spawnattr_setsigdefault", "posix_spawnattr_setflags", "sigaddset")
        if not all(hasattr(libc, name) for name in needed):
            return None
    except (OSError, AttributeError):
        return None
    return libc if _glibc_version() >= (2, 34) else None


def _glibc_version() -> tuple[int, ...]:
    try:
        name, version = os.confstr("CS_GNU_LIBC_VERSION").split()
        return tuple(int(part) for part in version.split(".")[:2]) if name == "glibc" else (0,)
    except (ValueError, OSError, AttributeError):
        return (0,)
