"""Starting a sandbox's shell process with ``subprocess.Popen``, behind a small handle.

:class:`ShellProcess` is what the local shell keeps of its process: the pid, our
ends of its pipes as plain descriptors (read and written by the event loop, not
through file objects) and its exit status once reaped. ``Popen`` starts it with
every other descriptor closed, in its working directory, in a new session and
with ``SIGPIPE``/``SIGXFSZ`` back at their defaults; a process that cannot be
reaped at close stays with ``subprocess``, which reaps it later.

(glibc's ``posix_spawn`` through ctypes was measured here as well: about 20-30 µs
less per shell, which no end-to-end run could see, against an ABI binding and
losing ``subprocess``'s late reaping; so not used.)
"""

from __future__ import annotations

import os
import signal
import subprocess

__all__ = ["ShellProcess", "spawn"]


class ShellProcess:
    """A spawned shell: its pid, our ends of its stdin and stdout, and its exit status once reaped."""

    def __init__(self, popen: subprocess.Popen):
        assert popen.stdin is not None and popen.stdout is not None
        self.pid = popen.pid
        #: our (write) end of its stdin and (read) end of its stdout+stderr; closed by :meth:`close_pipes`
        self.stdin = popen.stdin.fileno()
        self.stdout = popen.stdout.fileno()
        self._popen = popen

    @property
    def returncode(self) -> int | None:
        """The exit status as subprocess reports it (-N: killed by signal N), once reaped."""
        return self._popen.returncode

    def poll(self) -> int | None:
        """Reap the process if it exited; its ``returncode`` (None while it runs)."""
        return self._popen.poll()

    def wait(self) -> int:
        """Block until the process exited, and reap it."""
        return self._popen.wait()

    def kill(self) -> None:
        if self.poll() is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def close_pipes(self) -> None:
        for f in (self._popen.stdin, self._popen.stdout):  # its file objects own the descriptors
            if f is not None:
                f.close()


def spawn(argv: list[str], *, executable: str, cwd: str, env: dict[str, str]) -> ShellProcess:
    """Start ``argv`` (``executable`` is its absolute path) in ``cwd`` with
    exactly ``env``, in a new session, reading a pipe and writing another
    (stderr into stdout); raises OSError when it cannot start."""
    proc = subprocess.Popen(argv, executable=executable, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, cwd=cwd, env=env, start_new_session=True, bufsize=0)
    return ShellProcess(proc)
