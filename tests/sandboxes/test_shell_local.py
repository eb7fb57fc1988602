"""The persistent shell protocol and the local sandbox, with real bash processes."""

from __future__ import annotations

import json
import os
import statistics
import time

import anyio
import pytest

from react_eval.sandboxes.base import FileTooLargeError, Sandbox, SandboxLimits, SandboxProvider
from react_eval.sandboxes.local import LocalSandbox, LocalSandboxConfig, LocalSandboxProvider
from react_eval.sandboxes.shell import (
    CappedBuffer,
    ShellSession,
    ShellTransport,
    ansi_c_quote,
    decode_output,
    needs_syntax_check,
)
from react_eval.types import SandboxError, SandboxSpec

pytestmark = pytest.mark.anyio



def alive(pid: int) -> bool:
    """True while ``pid`` is a running (non-zombie) process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in (b"Z", b"X")


async def wait_dead(pid: int, within: float = 3.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        await anyio.sleep(0.02)
    return not alive(pid)


def host_pids_with_cmdline(needle: bytes) -> list[int]:
    pids = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/cmdline", "rb") as f:
                    if needle in f.read() and alive(int(name)):
                        pids.append(int(name))
            except OSError:
                pass
    return pids


@pytest.fixture
async def provider(tmp_path):
    p = LocalSandboxProvider(LocalSandboxConfig(root=str(tmp_path)))
    yield p
    await p.aclose()


@pytest.fixture
async def sb(provider) -> LocalSandbox:
    return await provider.create(None, labels={"task_id": "t1"})


# ---- pure helpers ---------------------------------------------------------------


def test_capped_buffer_keeps_head_and_tail():
    buf = CappedBuffer(10)
    for _ in range(100):
        buf.add(b"0123456789")
    buf.add(b"END")
    assert bytes(buf.head) == b"01234"
    assert bytes(buf.tail) == b"789END"[-5:]
    assert buf.dropped == 1003 - 10
    assert "993 bytes of output omitted" in buf.text()


def test_decode_output_is_valid_text():
    text = decode_output(b"a\x00b\xff\xfec")
    assert text == "a\\0b\ufffd\ufffdc"
    json.dumps(text)  # must not raise
    assert b"\x00" not in text.encode()


def test_ansi_c_quote_escapes_everything_unsafe():
    q = ansi_c_quote("it's \\ $HOME\n`x`é".encode())
    assert q.startswith(b"$'") and q.endswith(b"'")
    body = q[2:-1]
    assert b"\n" not in body and b"'" not in body.replace(b"\\x27", b"")
    assert b"\\x27" in body and b"\\x5c" in body and b"\\x0a" in body and b"\\xc3\\xa9" in body


@pytest.mark.parametrize(
    "command, risky",
    [
        ("ls -la src", False),
        ("python -m pytest -q tests/ # all", False),
        ("cat *.py $HOME/x", False),
        ("echo 'q'", True),
        ("echo $[1+", True),
        ("ls\ndone", True),
        ("if", True),
        ("a && b", True),
        ("echo \\", True),
    ],
)
def test_needs_syntax_check(command, risky):
    assert needs_syntax_check(command) is risky


# ---- the persistent shell ------------------------------------------------------


async def test_protocols_are_implemented(provider, sb):
    assert isinstance(sb, Sandbox)
    assert isinstance(provider, SandboxProvider)
    assert isinstance(sb.shell.transport, ShellTransport)
    assert os.path.isdir(sb.workdir)
    assert os.path.basename(sb.workdir).startswith("react-eval-t1-")
    shell_pid = sb.shell.transport.pid
    assert os.getsid(shell_pid) == shell_pid, "the shell leads its own session"
    assert os.getpgid(shell_pid) != os.getpgrp(), "never the harness' process group"
    r = await sb.exec("ps -o pgid= -p $$", 5)
    assert int(r.output) == shell_pid


async def test_cwd_and_exports_persist(sb):
    r = await sb.exec("mkdir -p sub/dir && cd sub/dir && export FOO='a b' && BAR=1", 5)
    assert r.exit_code == 0, r
    r = await sb.exec('pwd; echo "$FOO"; echo "$BAR"; myfn() { echo fn-$1; }', 5)
    assert r.output == f"{sb.workdir}/sub/dir\na b\n1\n"
    r = await sb.exec("myfn x", 5)
    assert r.output == "fn-x\n"
    assert sb.shell.cwd == f"{sb.workdir}/sub/dir"


@pytest.mark.parametrize(
    "command, output, code",
    [
        ("cat <<EOF\nhello $((1+1))\nEOF", "hello 2\n", 0),
        ("cat <<'EOF' > f.txt\nquote ' and \" and `x`\nEOF\ncat f.txt; (exit 5)", "quote ' and \" and `x`\n", 5),
        ("echo hi # a trailing comment", "hi\n", 0),
        ("false # comment", "", 1),
        ("for i in 1 2 3; do\n  echo $i\ndone\nfalse\ntrue", "1\n2\n3\n", 0),
        ("echo no-newline", "no-newline\n", 0),
        ("echo last\nfalse\n\n", "last\n", 1),
        ("false", "", 1),
        ("(exit 7)", "", 7),
        ("printf 'é\\n' | grep -q é && echo found", "found\n", 0),
    ],
)
async def test_exit_codes(sb, command, output, code):
    r = await sb.exec(command, 5)
    assert (r.output, r.exit_code, r.timed_out, r.note) == (output, code, False, None)


async def test_syntax_error_is_exit_2_and_shell_survives(sb):
    await sb.exec("export KEEP=yes", 5)
    r = await sb.exec("echo 'unbalanced", 5)
    assert r.exit_code == 2
    assert "unexpected EOF" in r.output
    r = await sb.exec("if then fi", 5)
    assert r.exit_code == 2
    r = await sb.exec("echo $KEEP", 5)
    assert r.output == "yes\n" and r.note is None


@pytest.mark.parametrize(
    "bad",
    ["echo `x", "[[ -n", "echo $[", "echo 'a", "if true; then", "f() {", "echo $(", "done", "| x", "echo ${"],
)
async def test_syntax_errors_never_corrupt_the_shell(sb, bad):
    """bash 5.2 eval misparses the next input, or crashes, after some of these."""
    await sb.exec("export KEEP=yes", 5)
    r = await sb.exec(bad, 5)
    assert r.exit_code == 2 and r.note is None, r
    for _ in range(2):
        r = await sb.exec("{ echo $KEEP; }", 5)
        assert (r.output, r.exit_code, r.note) == ("yes\n", 0, None)


async def test_syntax_check_allows_extglob_enabled_in_the_same_command(sb):
    await sb.exec("touch a.txt b.py", 5)
    r = await sb.exec("shopt -s extglob\nls !(*.py)", 5)
    assert (r.output, r.exit_code) == ("a.txt\n", 0)


async def test_previous_status_is_visible_in_next_call(sb):
    await sb.exec("false", 5)
    assert (await sb.exec("echo $?", 5)).output == "1\n"


async def test_exit_restarts_shell_in_same_cwd(sb):
    await sb.exec("mkdir d && cd d && export GONE=1", 5)
    r = await sb.exec("echo bye; exit 3", 5)
    assert r.exit_code == 3
    assert r.output == "bye\n"
    assert r.note and "exited with status 3" in r.note
    r = await sb.exec('pwd; echo "[${GONE-unset}]"', 5)
    assert r.exit_code == 0
    assert r.output == f"{sb.workdir}/d\n[unset]\n"
    assert sb.shell.restarts == 1


async def test_exit_with_background_child_holding_the_pipe(sb):
    r = await sb.exec("sleep 30 & echo $!; exit 4", 5)
    assert r.exit_code == 4
    pid = int(r.output.split()[0])
    assert await wait_dead(pid), "the old shell's background job must be killed on restart"
    assert (await sb.exec("echo ok", 5)).output == "ok\n"


async def test_errexit_failure_is_reported_and_recovered(sb):
    r = await sb.exec("set -e; false; echo unreachable", 5)
    assert r.exit_code == 1 and "unreachable" not in r.output and r.note
    assert (await sb.exec("false; echo reached", 5)).output == "reached\n"


async def test_stdin_is_dev_null(sb):
    with anyio.fail_after(5):
        r = await sb.exec("cat; read x; echo \"read=$? x=[$x]\"", 5)
    assert r.output == "read=1 x=[]\n"
    assert (await sb.exec("echo still-in-sync", 5)).output == "still-in-sync\n"


async def test_stderr_is_merged_in_order(sb):
    r = await sb.exec("echo a; echo b >&2; echo c; ls /nonexistent-xyz", 5)
    lines = r.output.splitlines()
    assert lines[:3] == ["a", "b", "c"]
    assert "nonexistent-xyz" in lines[3]
    assert r.exit_code == 2


async def test_redirecting_shell_stdout_does_not_break_framing(sb):
    r = await sb.exec("exec >/dev/null; echo hidden", 5)
    assert r.exit_code == 0 and r.output == ""
    assert (await sb.exec("echo visible", 5)).output == "visible\n"


async def test_traces_show_the_command_and_nothing_of_the_frame(sb):
    await sb.exec("set -x", 5)
    r = await sb.exec("echo 'traced' | cat; ls /nonexistent-q", 5)
    assert sorted(r.output.splitlines()[:2]) == ["++ cat", "++ echo traced"] and "nonexistent-q" in r.output
    assert "__re_" not in r.output and "builtin eval" not in r.output and r.exit_code == 2
    r = await sb.exec("set +x; set -v", 5)
    r = await sb.exec("echo verbose", 5)
    assert r.output == "echo verbose\nverbose\n"  # the line as the command has it, not the frame's
    r = await sb.exec("set +v; echo $?", 5)
    assert r.output == "set +v; echo $?\n0\n"
    assert (await sb.exec("echo quiet", 5)).output == "quiet\n"


async def test_shell_introspection_cannot_fake_a_marker(sb):
    r = await sb.exec("set; declare -f; trap -p; set -x; echo traced", 5)
    assert r.exit_code == 0 and "traced" in r.output
    r = await sb.exec("set +x; echo after", 5)
    assert r.exit_code == 0 and r.output.endswith("after\n")
    assert (await sb.exec("echo clean", 5)).output == "clean\n"


async def test_background_process_does_not_block_completion(sb):
    start = time.monotonic()
    r = await sb.exec("sleep 30 & echo started", 5)
    assert time.monotonic() - start < 2
    assert r.output == "started\n" and r.exit_code == 0


async def test_timeout_kills_command_and_children_keeps_state(sb):
    await sb.exec("mkdir -p w && cd w && export KEPT=1", 5)
    start = time.monotonic()
    r = await sb.exec("bash -c 'sleep 1000 & echo $!; wait' & wait", 1)
    elapsed = time.monotonic() - start
    assert r.timed_out and r.exit_code is None
    assert elapsed < 3.5, elapsed
    child = int(r.output.split()[0])  # partial output is kept
    assert await wait_dead(child), "the command's grandchild must be killed"
    r = await sb.exec("pwd; echo $KEPT", 5)
    assert r.output == f"{sb.workdir}/w\n1\n", "the shell survives, so cwd and env are kept"
    assert r.exit_code == 0


async def test_timeout_spares_earlier_background_jobs(sb):
    r = await sb.exec("sleep 60 & echo $!", 5)
    earlier = int(r.output)
    await anyio.sleep(0.05)  # start times have 10 ms resolution
    r = await sb.exec("sleep 1000", 0.5)
    assert r.timed_out
    assert alive(earlier), "a background job from an earlier call is not the timed-out command"


async def test_timeout_of_busy_builtin_loop_restarts_with_cwd(sb):
    await sb.exec("mkdir -p loop && cd loop", 5)
    start = time.monotonic()
    r = await sb.exec("echo partial; while :; do :; done", 0.5)
    assert time.monotonic() - start < 4
    assert r.timed_out and r.exit_code is None
    assert r.output == "partial\n"
    assert r.note and "restarted" in r.note and f"{sb.workdir}/loop" in r.note
    r = await sb.exec("pwd", 5)
    assert r.output == f"{sb.workdir}/loop\n" and r.exit_code == 0


async def test_output_cap_drains_unbounded_output(tmp_path):
    provider = LocalSandboxProvider(
        LocalSandboxConfig(root=str(tmp_path)), limits=SandboxLimits(max_output_bytes=100_000)
    )
    try:
        sb = await provider.create(None, labels={})
        r = await sb.exec("yes | head -c 50000000", 30)
        assert r.exit_code == 0
        assert r.dropped_chars == 50_000_000 - 100_000
        assert len(r.output) < 100_200
        assert r.output.startswith("y\ny\n") and r.output.endswith("y\n")
        assert "bytes of output omitted" in r.output
        r = await sb.exec("yes", 1)
        assert r.timed_out and r.dropped_chars > 0 and len(r.output) < 100_200
        r = await sb.exec("echo fine", 5)
        assert r.output == "fine\n" and r.dropped_chars == 0
    finally:
        await provider.aclose()


async def test_binary_and_nul_output(sb):
    r = await sb.exec(r"printf 'a\0b\xff\xfe c\n'", 5)
    assert r.output == "a\\0b\ufffd\ufffd c\n"
    json.dumps(r.output)
    r = await sb.exec("head -c 3000 /dev/urandom", 5)
    assert r.exit_code == 0 and "\x00" not in r.output


async def test_commands_with_arbitrary_bytes(sb):
    cmd = "printf '%s\\n' $'\\x01' 'tab\there' \"q'uote\" 'back\\slash' \"$(echo ok)\" 'ünï'"
    r = await sb.exec(cmd, 5)
    assert r.output == "\x01\ntab\there\nq'uote\nback\\slash\nok\nünï\n"


async def test_calls_are_serialized(sb):
    results = {}

    async def run(key, cmd):
        results[key] = await sb.exec(cmd, 5)

    async with anyio.create_task_group() as tg:
        for i in range(5):
            tg.start_soon(run, i, f"sleep 0.0{i}; echo {i}")
    assert {k: v.output for k, v in results.items()} == {i: f"{i}\n" for i in range(5)}


async def test_per_call_overhead_is_small(sb):
    for _ in range(5):
        await sb.exec("true", 5)
    samples = []
    for _ in range(100):
        r = await sb.exec(":", 5)
        samples.append(r.latency_ms)
    assert statistics.median(samples) < 5.0, statistics.median(samples)


async def test_background_process_killed_on_close(provider):
    sb = await provider.create(None, labels={})
    r = await sb.exec("sleep 100 & echo $!; setsid sleep 101 & echo $!", 5)
    pids = [int(p) for p in r.output.split()]
    await anyio.sleep(0.05)
    assert all(alive(p) for p in pids)
    await sb.close()
    for pid in pids:
        assert await wait_dead(pid), f"pid {pid} survived close()"
    # removed, or (every process dead) kept empty for the provider's next sandbox
    assert not os.path.exists(sb.workdir) or (sb.workdir in provider.workdirs.kept and not os.listdir(sb.workdir))
    with pytest.raises(SandboxError):
        await sb.exec("echo x", 5)


async def test_close_during_a_running_command(provider):
    sb = await provider.create(None, labels={})
    errors = []

    async def long_call():
        try:
            await sb.exec("sleep 1000", 60)
        except SandboxError as exc:
            errors.append(exc)

    start = time.monotonic()
    async with anyio.create_task_group() as tg:
        tg.start_soon(long_call)
        await anyio.sleep(0.2)
        await sb.close()
    assert time.monotonic() - start < 5
    assert len(errors) == 1 and "closed" in str(errors[0])


async def test_cancelled_call_kills_command_and_next_call_restarts(sb):
    await sb.exec("mkdir -p c && cd c", 5)
    with anyio.move_on_after(0.3):
        await sb.exec("sleep 1000 & echo $! > pid; wait", 60)
    pid = int(open(os.path.join(sb.workdir, "c", "pid")).read())
    assert await wait_dead(pid)
    r = await sb.exec("pwd", 5)
    assert r.output == f"{sb.workdir}/c\n" and r.note and "abandoned" in r.note


async def test_large_command(sb):
    body = "".join(f"line {i} 'quoted' \"dq\" $x `tick`\n" for i in range(20000))
    start = time.monotonic()
    r = await sb.exec(f"cat > big.txt <<'EOF'\n{body}EOF\nwc -l < big.txt", 30)
    assert r.output == "20000\n", r.output[:200]
    assert open(os.path.join(sb.workdir, "big.txt")).read() == body
    assert time.monotonic() - start < 10


async def test_harness_secrets_not_passed_but_config_env_is(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    provider = LocalSandboxProvider(LocalSandboxConfig(root=str(tmp_path), env={"MY_VAR": "v 1"}))
    try:
        sb = await provider.create(None, labels={})
        r = await sb.exec('echo "${OPENAI_API_KEY-unset} $MY_VAR"', 5)
        assert r.output == "unset v 1\n"
        r = await sb.run('echo "${OPENAI_API_KEY-unset} $MY_VAR"', 5)
        assert r.output == "unset v 1\n"
    finally:
        await provider.aclose()


# ---- one-off commands -----------------------------------------------------------


async def test_run_with_missing_cwd(sb):
    with pytest.raises(NotADirectoryError):
        await sb.run("pwd", 5, cwd="no/such/dir")


async def test_run_is_fresh_and_does_not_touch_the_shell(sb):
    await sb.exec("export IN_SHELL=1; mkdir -p sub", 5)
    r = await sb.run('export IN_RUN=1; echo "${IN_SHELL-none}"; pwd', 5)
    assert r.output == f"none\n{sb.workdir}\n" and r.exit_code == 0
    r = await sb.run("pwd; exit 9", 5, cwd="sub")
    assert r.output == f"{sb.workdir}/sub\n" and r.exit_code == 9
    assert (await sb.exec('echo "${IN_RUN-none} $IN_SHELL"', 5)).output == "none 1\n"


async def test_run_timeout_kills_the_group(sb):
    start = time.monotonic()
    r = await sb.run("sleep 1000 & echo $!; sleep 1000", 1)
    assert time.monotonic() - start < 4
    assert r.timed_out and r.exit_code is None
    assert await wait_dead(int(r.output.split()[0]))


async def test_run_returns_when_bash_exits_despite_background_job(sb):
    start = time.monotonic()
    r = await sb.run("sleep 100 & echo $!", 10)
    assert time.monotonic() - start < 3
    assert r.exit_code == 0
    assert await wait_dead(int(r.output))


# ---- files and paths ------------------------------------------------------------


async def test_resolve_confines_paths(sb):
    w = sb.workdir
    assert sb.resolve("a/b.txt") == f"{w}/a/b.txt"
    assert sb.resolve(f"{w}/x") == f"{w}/x"
    assert sb.resolve("a/../b") == f"{w}/b"
    assert sb.resolve(".") == w
    for bad in ("../../etc/passwd", "/etc/passwd", "a/../../x", f"{w}/../x"):
        with pytest.raises(PermissionError, match="outside the sandbox"):
            sb.resolve(bad)
    os.symlink("/etc", f"{w}/escape")
    os.symlink(f"{w}/a", f"{w}/inner")
    with pytest.raises(PermissionError, match="symbolic link"):
        sb.resolve("escape/passwd")
    with pytest.raises(PermissionError):
        await sb.read_file("escape/passwd")
    with pytest.raises(PermissionError):
        await sb.write_file("escape/evil", b"x")
    assert sb.resolve("inner/f") == f"{w}/inner/f"


async def test_read_write_stat(sb):
    payload = b"\x00\x01\xff $(rm -rf /) 'q'"
    await sb.write_file("deep/er/f.bin", payload, mode=0o600)
    path = os.path.join(sb.workdir, "deep/er/f.bin")
    assert open(path, "rb").read() == b"\x00\x01\xff $(rm -rf /) 'q'"
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert await sb.read_file("deep/er/f.bin") == b"\x00\x01\xff $(rm -rf /) 'q'"
    info = await sb.stat("deep/er/f.bin")
    assert (info.exists, info.is_dir, info.size) == (True, False, len(payload))
    assert (await sb.stat("deep")).is_dir
    assert not (await sb.stat("nope")).exists
    with pytest.raises(FileNotFoundError):
        await sb.read_file("nope")
    with pytest.raises(IsADirectoryError):
        await sb.read_file("deep")
    with pytest.raises(FileTooLargeError) as exc:
        await sb.read_file("deep/er/f.bin", max_bytes=10)
    assert exc.value.size == len(payload) and exc.value.limit == 10


async def test_create_places_repo_files_and_runs_setup(tmp_path):
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (repo / "run.sh").write_text("#!/bin/sh\necho ran\n")
    os.chmod(repo / "run.sh", 0o755)
    os.symlink("run.sh", repo / "link.sh")
    (repo / "keep.txt").write_text("from repo\n")
    root = tmp_path / "root"
    provider = LocalSandboxProvider(LocalSandboxConfig(root=str(root)))
    try:
        spec = SandboxSpec(
            repo_dir=str(repo),
            files={"keep.txt": "from files\n", "data/in.txt": "x"},
            setup="./run.sh > setup.out && test -d .git",
        )
        sb = await provider.create(spec, labels={"task_id": "repo/1"})
        w = sb.workdir
        assert os.path.dirname(w) == str(root)
        assert open(f"{w}/.git/HEAD").read() == "ref: refs/heads/main\n"
        assert os.stat(f"{w}/run.sh").st_mode & 0o777 == 0o755
        assert os.readlink(f"{w}/link.sh") == "run.sh"
        assert open(f"{w}/keep.txt").read() == "from files\n"
        assert open(f"{w}/data/in.txt").read() == "x"
        assert open(f"{w}/setup.out").read() == "ran\n"
        assert (await sb.exec("./link.sh", 5)).output == "ran\n"
    finally:
        await provider.aclose()
    assert not os.path.exists(w)


async def test_setup_failure_raises_with_output(tmp_path):
    provider = LocalSandboxProvider(LocalSandboxConfig(root=str(tmp_path)))
    with pytest.raises(SandboxError, match="exited with 4") as exc:
        await provider.create(SandboxSpec(setup="echo broken-dep >&2; exit 4"), labels={})
    assert "broken-dep" in str(exc.value)
    left = [str(tmp_path / name) for name in os.listdir(tmp_path)]
    assert all(p in provider.workdirs.kept and not os.listdir(p) for p in left), "only an empty, kept workdir is left"
    await provider.aclose()
    assert os.listdir(tmp_path) == [], "a failed create leaves no workdir behind"


async def test_spec_files_cannot_escape(tmp_path):
    provider = LocalSandboxProvider(LocalSandboxConfig(root=str(tmp_path / "r")))
    with pytest.raises(SandboxError, match="outside"):
        await provider.create(SandboxSpec(files={"../../evil.txt": "x"}), labels={})
    assert not (tmp_path / "evil.txt").exists()


async def test_keep_leaves_workdir(tmp_path):
    provider = LocalSandboxProvider(LocalSandboxConfig(root=str(tmp_path), keep=True))
    sb = await provider.create(SandboxSpec(files={"a.txt": "A"}), labels={})
    await sb.close()
    assert open(os.path.join(sb.workdir, "a.txt")).read() == "A"


def test_config_forbids_unknown_fields():
    with pytest.raises(ValueError):
        LocalSandboxConfig(isolation="none", bogus=1)
    with pytest.raises(ValueError):
        LocalSandboxConfig(isolation="chroot")


async def test_bwrap_missing_fails_clearly(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no bwrap there
    provider = LocalSandboxProvider(LocalSandboxConfig(root=str(tmp_path), isolation="bwrap"))
    with pytest.raises(SandboxError, match="bubblewrap"):
        await provider.create(None, labels={})


# ---- bubblewrap isolation -------------------------------------------------------

# installed by sandboxes/ensure_bwrap.sh when missing (the bwrap_available fixture); skipped only when it cannot be had
needs_bwrap = pytest.mark.usefixtures("bwrap_available")


@pytest.fixture
async def bw(tmp_path):
    provider = LocalSandboxProvider(LocalSandboxConfig(root=str(tmp_path), isolation="bwrap"))
    sandbox = await provider.create(SandboxSpec(files={"in.txt": "hello\n"}), labels={})
    yield sandbox
    await provider.aclose()


@needs_bwrap
async def test_bwrap_host_is_read_only_workdir_writable(bw):
    r = await bw.exec("touch /etc/react-eval-probe", 5)
    assert r.exit_code != 0 and "Read-only file system" in r.output
    assert not os.path.exists("/etc/react-eval-probe")
    r = await bw.exec("cat in.txt && echo out > out.txt && pwd", 5)
    assert r.output == f"hello\n{bw.workdir}\n" and r.exit_code == 0
    assert open(os.path.join(bw.workdir, "out.txt")).read() == "out\n"


@needs_bwrap
async def test_bwrap_tmp_is_private(bw):
    r = await bw.exec("echo secret > /tmp/react-eval-private && cat /tmp/react-eval-private", 5)
    assert r.output == "secret\n"
    assert not os.path.exists("/tmp/react-eval-private")


@needs_bwrap
async def test_bwrap_has_no_network(bw):
    r = await bw.exec("exec 3<>/dev/tcp/1.1.1.1/80 && echo connected", 5)
    assert r.exit_code != 0 and "connected" not in r.output
    r = await bw.exec("tail -n +3 /proc/net/dev | cut -d: -f1", 5)
    assert r.output.split() == ["lo"], "only a private loopback interface"


@needs_bwrap
async def test_bwrap_processes_die_with_sandbox(tmp_path):
    provider = LocalSandboxProvider(LocalSandboxConfig(root=str(tmp_path), isolation="bwrap"))
    sb = await provider.create(None, labels={})
    needle = f"{os.getpid() % 1000}.{time.monotonic_ns() % 100000}"
    r = await sb.exec(f"sleep 9{needle} & setsid sleep 8{needle} & echo started", 5)
    assert r.output == "started\n"
    await anyio.sleep(0.1)
    pids = host_pids_with_cmdline(f"sleep\x009{needle}".encode()) + host_pids_with_cmdline(
        f"sleep\x008{needle}".encode()
    )
    assert len(pids) == 2, "both background sleeps run before close"
    await sb.close()
    for pid in pids:
        assert await wait_dead(pid)


@needs_bwrap
async def test_bwrap_timeout_and_state(bw):
    await bw.exec("mkdir -p d && cd d && export V=1", 5)
    r = await bw.exec("sleep 1000", 1)
    assert r.timed_out and r.exit_code is None
    r = await bw.exec("pwd; echo $V; exit 3", 5)
    assert r.exit_code == 3 and r.output == f"{bw.workdir}/d\n1\n"
    assert (await bw.exec("pwd", 5)).output == f"{bw.workdir}/d\n"
    r = await bw.run("touch /usr/x; echo $?", 5)
    assert r.output.strip().endswith("1")
    r = await bw.run("pwd", 5, cwd="d")
    assert r.output == f"{bw.workdir}/d\n"


@needs_bwrap
async def test_a_jail_answers_at_create_first_then_with_its_first_call(tmp_path):
    """The provider's first jail answers at create (a host where bwrap cannot make
    one fails there); later ones answer with their first call, whose processes
    are still told apart from the jail's own: a timeout of that very first
    command kills what it started (an orphan adopted by the jail's pid 1
    included) and leaves the shell running."""
    provider = LocalSandboxProvider(LocalSandboxConfig(root=str(tmp_path), isolation="bwrap"))
    try:
        first = await provider.create(None, labels={})
        assert first.shell.shell_pid == 2  # answered at create
        later = await provider.create(None, labels={})
        assert later.shell.answer_with_first_call and later.shell.shell_pid is None
        needle = f"{os.getpid() % 1000}{time.monotonic_ns() % 100000}"
        r = await later.exec(f"(sleep 7{needle} &); sleep 6{needle}", 1)
        assert r.timed_out and r.note is None
        transport = later.shell.transport
        assert len(transport._shell_pids) == 3 and transport._bash in transport._shell_pids
        assert open(f"/proc/{transport._bash}/comm").read().strip() == "bash"
        for pid in host_pids_with_cmdline(f"sleep\x007{needle}".encode()):
            assert await wait_dead(pid), "the first command's orphan outlived its timeout"
        r = await later.exec("echo $$; jobs -p | wc -l", 5)
        assert r.output.split() == ["2", "0"] and r.note is None  # the same shell, not restarted
        await first.close()
        await later.close()
    finally:
        await provider.aclose()


@needs_bwrap
async def test_a_jail_whose_commands_never_time_out_is_not_searched_for_its_shell(tmp_path, monkeypatch):
    """Which process of a jail is its bash (pid 2 of its namespace) matters only to
    a timeout or a close without a cgroup: a sandbox that has neither never reads
    a process's status for it; its first timeout still finds the shell."""
    from react_eval.sandboxes import local_shell

    looked: list[int] = []
    real = local_shell.ns_pids
    monkeypatch.setattr(local_shell, "ns_pids", lambda pid: looked.append(pid) or real(pid))
    provider = LocalSandboxProvider(LocalSandboxConfig(root=str(tmp_path), isolation="bwrap"))
    try:
        await provider.create(None, labels={})  # the first jail answers at create
        sb = await provider.create(None, labels={})
        for i in range(3):
            assert (await sb.exec(f"echo {i}", 10)).output == f"{i}\n"
        assert looked == []
        r = await sb.exec("sleep 30", 1)
        assert r.timed_out and r.note is None and looked  # found at the timeout
        transport = sb.shell.transport
        assert open(f"/proc/{transport._bash}/comm").read().strip() == "bash"
        assert (await sb.exec("echo $$", 5)).output == "2\n"  # the same shell answers
    finally:
        await provider.aclose()


# ---- the transport's own pipes and pidfd ------------------------------------------


async def test_a_flood_of_output_leaves_the_event_loop_to_other_rollouts(sb):
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await anyio.sleep(0.01)
            ticks += 1

    async with anyio.create_task_group() as tg:
        tg.start_soon(ticker)
        r = await sb.exec("yes", 2)
        tg.cancel_scope.cancel()
    assert r.timed_out and r.dropped_chars > 0
    assert ticks >= 5  # a reader that never yielded would leave the ticker at 0


async def test_without_a_pidfd_the_shell_is_still_reaped_and_restarted(provider, monkeypatch):
    from react_eval.sandboxes import local_shell

    monkeypatch.setattr(local_shell, "_pidfd_open", lambda pid: None)  # a kernel before 5.3
    sb = await provider.create(None, labels={})
    first = sb.shell.transport.pid
    r = await sb.exec("echo bye; exit 3", 5)
    assert (r.output, r.exit_code) == ("bye\n", 3) and "exited with status 3" in r.note
    assert await wait_dead(first) and sb.shell.transport.pid != first
    r = await sb.exec("kill -9 $$", 5)
    assert r.exit_code == 137 and "died" in r.note
    assert (await sb.exec("echo again", 5)).output == "again\n"
    last = sb.shell.transport.pid
    await sb.close()
    assert await wait_dead(last)


@pytest.mark.parametrize("with_first_call", [False, True])
async def test_a_shell_that_dies_at_start_fails_start_or_the_first_call_never_a_command(tmp_path, with_first_call):
    from react_eval.sandboxes.local_shell import LocalShellTransport

    transport = LocalShellTransport(["sh", "-c", "echo no-shell-here; exit 3"], cwd=str(tmp_path),
                                    env={"PATH": os.environ["PATH"]}, tag_entry="X=1")
    session = ShellSession(transport, cwd=str(tmp_path), answer_with_first_call=with_first_call)
    if not with_first_call:
        with pytest.raises(SandboxError, match="no-shell-here"):
            await session.start()
        return
    await session.start()  # only sent the set-up: the first call reads the answer
    with pytest.raises(SandboxError, match="did not answer.*no-shell-here"):
        await session.exec("echo should-not-run", 5)
    assert transport.pid is None  # closed, not left running
    await session.close()


async def test_the_first_call_reads_the_start_up_answer_apart_from_its_own_output(provider):
    sb = await provider.create(None, labels={})
    assert sb.shell.answer_with_first_call and sb.shell.shell_pid is None  # nothing read at create
    r = await sb.exec("echo first; echo $$", 5)
    assert r.output.splitlines()[0] == "first" and r.exit_code == 0
    assert sb.shell.shell_pid == int(r.output.splitlines()[1]) == sb.shell.transport.pid
    assert (await sb.exec("echo second", 5)).output == "second\n"
    await sb.close()


@needs_bwrap
async def test_jails_made_together_wait_for_the_first_to_answer_then_answer_with_their_first_call(tmp_path):
    provider = LocalSandboxProvider(LocalSandboxConfig(root=str(tmp_path), isolation="bwrap"))
    try:
        boxes = []

        async def make():
            boxes.append(await provider.create(None, labels={}))

        async with anyio.create_task_group() as tg:
            for _ in range(4):
                tg.start_soon(make)
        eager = [b for b in boxes if not b.shell.answer_with_first_call]
        assert len(eager) == 1 and eager[0].shell.shell_pid == 2  # one answered at create, the others waited
        for b in boxes:
            r = await b.exec("echo $$", 5)
            assert r.output == "2\n" and r.exit_code == 0
            await b.close()
    finally:
        await provider.aclose()


@needs_bwrap
async def test_a_jail_that_cannot_start_fails_at_create_and_the_next_tries_again(tmp_path, monkeypatch):
    from react_eval.sandboxes import local as local_mod

    provider = LocalSandboxProvider(LocalSandboxConfig(root=str(tmp_path), isolation="bwrap"))
    real = local_mod.bwrap_argv
    monkeypatch.setattr(local_mod, "bwrap_argv", lambda argv, **kw: ["bwrap", "--no-such-flag", *argv])
    try:
        with pytest.raises(SandboxError, match="shell"):
            await provider.create(None, labels={})
        monkeypatch.setattr(local_mod, "bwrap_argv", real)
        sb = await provider.create(None, labels={})
        assert sb.shell.shell_pid == 2  # still the one answering at create
        later = await provider.create(None, labels={})
        assert later.shell.answer_with_first_call and later.shell.shell_pid is None
        assert (await later.exec("echo ok", 5)).output == "ok\n"
    finally:
        await provider.aclose()
