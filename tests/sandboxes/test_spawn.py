"""The shell's spawn: glibc's posix_spawn and the Popen fallback start a child the same way."""

from __future__ import annotations

import os
import shutil
import signal

import pytest

from react_eval.sandboxes import spawn as spawn_mod
from react_eval.sandboxes.spawn import spawn

SH = shutil.which("sh")

#: what the child reports: its pid and session, cwd, environment, fds, SIGPIPE disposition, stdin's first line
PROBE = (
    'read -r line; echo "in:$line"; echo "pid:$$"; echo "sid:$(ps -o sid= -p $$ | tr -d \' \')"; echo "cwd:$(pwd -P)"; '
    'echo "env:$(env | sort | tr \'\\n\' \',\')"; echo "fds:$(ls /proc/$$/fd | sort -n | tr \'\\n\' \',\')"; '
    'echo "sigpipe:$(grep SigIgn /proc/$$/status)"; echo err >&2'
)


@pytest.fixture(params=["libc", "popen"])
def mode(request, monkeypatch):
    if request.param == "libc":
        if spawn_mod._glibc() is None:
            pytest.skip("this C library lacks posix_spawn closefrom/chdir (glibc < 2.34): the Popen fallback runs")
    else:
        monkeypatch.setattr(spawn_mod, "_glibc", lambda: None)
    return request.param


def run(proc) -> dict[str, str]:
    os.write(proc.stdin, b"hello\n")
    out = b""
    while chunk := os.read(proc.stdout, 65536):
        out += chunk
    assert proc.wait() == 0
    proc.close_pipes()
    return dict(line.split(":", 1) for line in out.decode().splitlines() if ":" in line) | {"raw": out.decode()}


def test_child_gets_pipes_cwd_env_session_and_nothing_else(mode, tmp_path):
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


def test_a_missing_program_or_directory_raises(mode, tmp_path):
    with pytest.raises(OSError):
        spawn(["nope"], executable=str(tmp_path / "nope"), cwd=str(tmp_path), env={})
    with pytest.raises(OSError):
        spawn([SH, "-c", "true"], executable=SH, cwd=str(tmp_path / "missing"), env={})


def test_kill_poll_and_reap(mode, tmp_path):
    proc = spawn([SH, "-c", "sleep 30"], executable=SH, cwd=str(tmp_path), env={})
    assert proc.poll() is None
    proc.kill()
    assert proc.wait() == -signal.SIGKILL
    assert proc.poll() == -signal.SIGKILL
    proc.kill()  # reaped: nothing to do
    proc.close_pipes()


def test_pipes_above_stdio_when_the_harness_has_them_closed(monkeypatch):
    """A pipe end that comes out as 0-2 (a harness started with a closed stdin)
    is moved above them: dup2 onto itself would leave it close-on-exec."""
    real = os.pipe2
    saved = os.dup(0)

    def low_pipe(flags):
        r, w = real(flags)
        os.dup2(r, 0, inheritable=False)  # the read end "came out as" 0
        os.close(r)
        return 0, w

    monkeypatch.setattr(os, "pipe2", low_pipe)
    try:
        r, w = spawn_mod._pipe()
    finally:
        os.dup2(saved, 0)
        os.close(saved)
    try:
        assert r > 2 and w > 2 and not os.get_inheritable(r) and not os.get_inheritable(w)
        os.write(w, b"x")
        assert os.read(r, 1) == b"x"  # still the same pipe
    finally:
        os.close(r)
        os.close(w)
