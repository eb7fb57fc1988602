"""The shell's spawn: the child gets its pipes, directory, environment and session, and nothing else."""

from __future__ import annotations

import os
import shutil
import signal

import pytest

from react_eval.sandboxes.spawn import spawn

SH = shutil.which("sh")

#: what the child reports: its pid and session, cwd, environment, fds, SIGPIPE disposition, stdin's first line
PROBE = (
    'read -r line; echo "in:$line"; echo "pid:$$"; echo "sid:$(ps -o sid= -p $$ | tr -d \' \')"; echo "cwd:$(pwd -P)"; '
    'echo "env:$(env | sort | tr \'\\n\' \',\')"; echo "fds:$(ls /proc/$$/fd | sort -n | tr \'\\n\' \',\')"; '
    'echo "sigpipe:$(grep SigIgn /proc/$$/status)"; echo err >&2'
)


def run(proc) -> dict[str, str]:
    os.write(proc.stdin, b"hello\n")
    out = b""
    while chunk := os.read(proc.stdout, 65536):
        out += chunk
    assert proc.wait() == 0
    proc.close_pipes()
    return dict(line.split(":", 1) for line in out.decode().splitlines() if ":" in line) | {"raw": out.decode()}


def test_child_gets_pipes_cwd_env_session_and_nothing_else(tmp_path):
    devnull = os.open("/dev/null", os.O_RDONLY)
    leaked = os.dup2(devnull, 77, inheritable=True)  # an inheritable descriptor of the harness must not reach the shell
    os.close(devnull)
    try:
        proc = spawn([SH, "-c", PROBE], executable=SH, cwd=str(tmp_path), env={"PATH": "/usr/bin:/bin", "X": "1 2"})
        seen = run(proc)
    finally:
        os.close(leaked)
    assert seen["in"] == "hello"
    assert seen["pid"] == seen["sid"] == str(proc.pid)  # a session of its own
    assert seen["cwd"] == os.path.realpath(tmp_path)
    env = set(filter(None, seen["env"].split(",")))
    assert {"X=1 2", "PATH=/usr/bin:/bin"} <= env and not any(e.startswith("HOME=") for e in env)
    fds = {int(n) for n in filter(None, seen["fds"].split(","))}
    assert {0, 1, 2} <= fds and leaked not in fds, fds
    assert max(fds) < 20, fds  # 0-2 and the command substitution's own pipe: none of the harness' descriptors
    ignored = int(seen["sigpipe"].split()[-1], 16)
    assert not ignored & (1 << (signal.SIGPIPE - 1))  # Python ignores SIGPIPE; the child must not
    assert "err" in seen["raw"]  # stderr goes to the same pipe


def test_a_missing_program_or_directory_raises(tmp_path):
    with pytest.raises(OSError):
        spawn(["nope"], executable=str(tmp_path / "nope"), cwd=str(tmp_path), env={})
    with pytest.raises(OSError):
        spawn([SH, "-c", "true"], executable=SH, cwd=str(tmp_path / "missing"), env={})


def test_kill_poll_and_reap(tmp_path):
    proc = spawn([SH, "-c", "sleep 30"], executable=SH, cwd=str(tmp_path), env={})
    assert proc.poll() is None
    proc.kill()
    assert proc.wait() == -signal.SIGKILL
    assert proc.poll() == -signal.SIGKILL
    proc.kill()  # reaped: nothing to do
    proc.close_pipes()
