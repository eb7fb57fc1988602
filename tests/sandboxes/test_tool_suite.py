"""The four sandbox tools against every sandbox kind: local, local+bwrap, docker.

Everything is real: bash processes, bubblewrap namespaces, Docker containers.
Expectations differ where the sandboxes differ on purpose (see the module docs
of react_eval.sandboxes.local and .docker): plain local is not a boundary, so
its bash can write anywhere the harness can and reach the network.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import anyio
import pytest

from react_eval.sandboxes.base import FileTooLargeError, SandboxLimits
from react_eval.sandboxes.local import LocalSandboxConfig, LocalSandboxProvider
from react_eval.tools.sandbox_tools import SandboxToolBackend

pytestmark = pytest.mark.anyio

KINDS = ["local", "bwrap", "docker"]
LIMITS = SandboxLimits(max_output_bytes=64_000, max_read_bytes=2_000_000)
PIDS_LIMIT = 256


# ---- leftovers ----------------------------------------------------------------------


def labelled_containers(run_id: str) -> list[str]:
    out = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label=react-eval.run={run_id}"],
        capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def runs_with_containers() -> list[str]:
    """The ``react-eval.run`` label of every container that has one."""
    out = subprocess.run(
        ["docker", "ps", "-a", "--filter", "label=react-eval.run", "--format", '{{.Label "react-eval.run"}}'],
        capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


@pytest.fixture(scope="session", autouse=True)
def no_containers_left_behind(sandbox_run_id: str) -> Iterator[None]:
    """After the whole session: no container of any run this session created
    (ids ``<session id>`` and ``<session id>-...``) remains. Containers of other
    processes sharing the engine are not this session's business."""
    yield
    if shutil.which("docker") is None or subprocess.run(["docker", "info"], capture_output=True).returncode:
        return  # no engine: no docker test ran
    assert [run for run in runs_with_containers() if run.startswith(sandbox_run_id)] == []


# ---- host-side process helpers ----------------------------------------------------------


def host_processes(needle: str) -> list[int]:
    """Live host processes whose command line contains ``needle`` (sandboxed ones
    included: PID namespaces and containers are visible from the host)."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ")
            with open(f"/proc/{name}/stat", "rb") as f:
                state = f.read().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if needle.encode() in cmdline and state not in (b"Z", b"X") and int(name) != os.getpid():
            found.append(int(name))
    return found


async def wait_until_present(needle: str, within: float = 10.0) -> list[int]:
    deadline = time.monotonic() + within
    while not (found := host_processes(needle)) and time.monotonic() < deadline:
        await anyio.sleep(0.02)
    return found


async def wait_until_gone(needle: str, within: float = 10.0) -> list[int]:
    deadline = time.monotonic() + within
    while (left := host_processes(needle)) and time.monotonic() < deadline:
        await anyio.sleep(0.05)
    return left


# ---- fixtures ---------------------------------------------------------------------------


@dataclass
class Env:
    kind: str
    provider: Any
    sandbox: Any
    tools: SandboxToolBackend

    @property
    def isolated(self) -> bool:
        return self.kind != "local"

    async def bash(self, command: str, timeout: float = 20.0):
        return await self.tools.call("bash", {"command": command}, timeout=timeout)

    async def call(self, name: str, timeout: float = 20.0, **args: Any):
        return await self.tools.call(name, args, timeout=timeout)


def make_provider(kind: str, request: pytest.FixtureRequest, tmp_path) -> Any:
    if kind == "docker":
        request.getfixturevalue("docker_engine")
        from react_eval.sandboxes.docker import DockerSandboxProvider
        from react_eval.sandboxes.docker.config import DockerSandboxConfig

        return DockerSandboxProvider(
            DockerSandboxConfig(pids_limit=PIDS_LIMIT, memory="1g", concurrency=4),
            run_id=request.getfixturevalue("sandbox_run_id"),
            limits=LIMITS,
        )
    if kind == "bwrap":
        request.getfixturevalue("bwrap_available")
    root = tmp_path / "sandboxes"
    return LocalSandboxProvider(
        LocalSandboxConfig(root=str(root), isolation="bwrap" if kind == "bwrap" else "none", pids_limit=PIDS_LIMIT),
        limits=LIMITS,
    )


@pytest.fixture(params=KINDS)
async def env(request: pytest.FixtureRequest, tmp_path) -> AsyncIterator[Env]:
    provider = make_provider(request.param, request, tmp_path)
    sandbox = await provider.create(None, labels={"react-eval.rollout": f"suite-{secrets.token_hex(4)}"})
    try:
        yield Env(request.param, provider, sandbox, SandboxToolBackend(sandbox, max_read_bytes=20_000))
    finally:
        await provider.aclose()


@pytest.fixture
def outside_dir() -> Iterator[str]:
    """A host directory outside every sandbox (and outside /tmp, which bwrap
    replaces by a private tmpfs, so "read-only host" is really tested)."""
    base = "/var/tmp" if os.path.isdir("/var/tmp") and os.access("/var/tmp", os.W_OK) else None
    path = tempfile.mkdtemp(prefix="react-eval-outside-", dir=base)
    yield path
    shutil.rmtree(path, ignore_errors=True)


# ---- bash: state and exit codes -----------------------------------------------------------


async def test_bash_state_persists_and_exit_codes_are_exact(env: Env):
    r = await env.bash("mkdir -p sub/dir && cd sub/dir && export GREETING=hello && greet() { echo \"$GREETING $1\"; }")
    assert r.exit_code == 0 and not r.is_error
    r = await env.bash("pwd; greet world")
    assert r.content.splitlines() == [f"{env.sandbox.workdir}/sub/dir", "hello world"]

    r = await env.bash("false")
    assert (r.exit_code, r.error_kind, r.is_error) == (1, "nonzero_exit", True)
    r = await env.bash("echo $?")  # $? carries over, as in a terminal
    assert r.content.strip() == "1" and r.exit_code == 0
    for code in (2, 42, 255):
        r = await env.bash(f"(exit {code})")
        assert r.exit_code == code and f"[exit code: {code}]" in r.content
    r = await env.bash("sh -c 'kill -9 $$'")
    assert r.exit_code == 137

    r = await env.bash("exit 7")  # the shell itself exits: exact status, then a fresh shell
    assert r.exit_code == 7 and "a new shell was started" in r.content
    r = await env.bash("pwd")
    assert r.content.strip() == f"{env.sandbox.workdir}/sub/dir"  # restarted in the last cwd


# ---- the editor and file tools --------------------------------------------------------------


async def test_every_editor_verb_and_the_file_tools(env: Env):
    r = await env.call("str_replace_editor", command="create", path="pkg/mod.py", file_text="a = 1\nb = 2\nc = 3\n")
    assert not r.is_error, r.content
    r = await env.call("str_replace_editor", command="create", path="pkg/mod.py", file_text="x")
    assert r.is_error and r.error_kind == "tool_error"  # create refuses to overwrite

    r = await env.call("str_replace_editor", command="view", path="pkg/mod.py")
    assert r.content.splitlines()[1:] == ["     1\ta = 1", "     2\tb = 2", "     3\tc = 3"]
    r = await env.call("str_replace_editor", command="view", path="pkg/mod.py", view_range=[2, -1])
    assert r.content.splitlines()[1:] == ["     2\tb = 2", "     3\tc = 3"]
    r = await env.call("str_replace_editor", command="view", path="pkg")
    assert "mod.py" in r.content

    r = await env.call("str_replace_editor", command="str_replace", path="pkg/mod.py", old_str="b = 2", new_str="b = 20")
    assert not r.is_error and "b = 20" in r.content
    r = await env.call("str_replace_editor", command="str_replace", path="pkg/mod.py", old_str=" = ", new_str="=")
    assert r.is_error and "3 times" in r.content  # not unique: nothing replaced
    r = await env.call("str_replace_editor", command="insert", path="pkg/mod.py", insert_line=0, new_str="# header")
    assert not r.is_error
    r = await env.call("file_read", path="pkg/mod.py")
    assert r.content == "# header\na = 1\nb = 20\nc = 3\n"
    r = await env.bash("python3 -c 'import sys; sys.path.insert(0, \"pkg\"); import mod; print(mod.b)'")
    assert r.content.strip() == "20"  # the shell sees what the file tools wrote

    for expected in ("a = 1\nb = 20\nc = 3\n", "a = 1\nb = 2\nc = 3\n"):
        r = await env.call("str_replace_editor", command="undo_edit", path="pkg/mod.py")
        assert not r.is_error, r.content
        assert (await env.call("file_read", path="pkg/mod.py")).content == expected
    r = await env.call("str_replace_editor", command="undo_edit", path="pkg/mod.py")  # undoes the create
    assert not r.is_error and "removed" in r.content
    assert not (await env.sandbox.stat("pkg/mod.py")).exists

    r = await env.call("file_write", path="deep/new/dir/notes.txt", content="line 1\nline 2\nline 3\n")
    assert not r.is_error, r.content
    r = await env.call("file_read", path="deep/new/dir/notes.txt", start_line=2, end_line=3)
    assert r.content == "line 2\nline 3\n"
    r = await env.call("file_read", path="deep/new/dir/missing.txt")
    assert r.is_error and "No such file" in r.content
    r = await env.call("file_write", path="deep/new", content="x")
    assert r.is_error and "directory" in r.content  # never replaces a directory


async def test_binary_and_non_utf8_output(env: Env):
    r = await env.bash(r"printf 'ok\xff\xfe\x00end\n'")
    assert r.content == "ok\ufffd\ufffd\\0end\n"
    await env.bash(r"printf 'caf\xe9\n\x00\x01' > latin1.bin")
    assert await env.sandbox.read_file("latin1.bin") == b"caf\xe9\n\x00\x01"
    r = await env.call("file_read", path="latin1.bin")
    assert r.content == "caf\ufffd\n\\0\x01" and not r.is_error
    r = await env.call("str_replace_editor", command="str_replace", path="latin1.bin", old_str="caf", new_str="x")
    assert r.is_error and "UTF-8" in r.content
    data = bytes(range(256)) * 4  # every byte value survives the file transfer both ways
    await env.sandbox.write_file("all.bin", data)
    assert (await env.bash("od -An -tx1 all.bin | wc -w")).content.strip() == "1024"
    assert await env.sandbox.read_file("all.bin") == data


# ---- runaway commands ---------------------------------------------------------------------------


async def test_infinite_output_is_capped_and_the_rollout_survives(env: Env):
    r = await env.bash("yes", timeout=2)
    assert r.error_kind == "timeout" and r.truncated
    assert len(r.content.encode()) < LIMITS.max_output_bytes + 1000  # the sandbox's own cap held
    assert "bytes of output omitted" in r.content
    r = await env.bash("head -c 3000000 /dev/zero | tr '\\0' x; echo; echo tail-marker")
    assert r.exit_code == 0 and r.truncated and r.content.rstrip().endswith("tail-marker")
    assert r.extra["dropped_chars"] > 2_900_000
    r = await env.bash("echo still here")
    assert r.content == "still here\n" and r.exit_code == 0


async def test_sleep_past_the_tool_timeout_is_killed_and_the_sandbox_stays_usable(env: Env):
    needle = f"1000.{secrets.randbelow(10**6):06d}"
    await env.bash("cd /; export KEEP=me")
    started = time.monotonic()
    r = await env.bash(f"sleep {needle}", timeout=1)
    elapsed = time.monotonic() - started
    assert r.error_kind == "timeout" and r.exit_code is None
    assert "timed out after 1s" in r.content
    assert elapsed < 30  # returned long before the sleep would have ended (liveness, not speed)
    assert await wait_until_gone(needle) == []  # the process really died, not just the client
    if env.kind == "docker":  # and inside the container too
        ps = await env.sandbox.run("ps -eo args", timeout=20)
        assert needle not in ps.output and ps.exit_code == 0
    r = await env.bash("echo $KEEP; pwd")
    assert r.content.split() == ["me", "/"]  # same shell: state kept


async def test_background_jobs_survive_a_later_timeout_and_die_with_the_sandbox(env: Env):
    needle = f"999.{secrets.randbelow(10**6):06d}"
    r = await env.bash(f"sleep {needle} > /dev/null 2>&1 &")
    assert r.exit_code == 0
    assert await wait_until_present(needle)  # `&` returns before the child has exec'd sleep
    await anyio.sleep(0.05)  # the job starts in an earlier clock tick than the next command
    r = await env.bash("sleep 1001", timeout=1)
    assert r.error_kind == "timeout"
    assert host_processes(needle)  # the interrupt spared a job of an earlier call
    await env.sandbox.close()
    assert await wait_until_gone(needle) == []


async def test_fork_bomb_is_contained_and_the_host_stays_responsive(env: Env):
    if env.kind != "docker" and env.sandbox.info.extra.get("pids_limit") != str(PIDS_LIMIT):
        pytest.skip("no pids cgroup can be created here (needs root or a delegated cgroup v2)")
    r = await env.bash(":(){ :|:& };:; sleep 60", timeout=3)
    assert r.error_kind == "timeout"
    assert "Resource temporarily unavailable" in r.content  # the PID cap stopped it
    host = subprocess.run(["sh", "-c", "echo spawned"], capture_output=True, text=True, timeout=60)
    assert host.stdout == "spawned\n"  # the host can still start processes
    r = await env.bash("echo alive", timeout=30)
    assert r.exit_code == 0 and "alive" in r.content
    await env.sandbox.close()
    if env.kind == "docker":
        assert env.sandbox.container_id[:12] not in labelled_containers(env.provider.run_id)
    else:
        group = env.sandbox.cgroup
        assert group.pids() == []  # every member killed: only then is the group kept for the next sandbox
        assert group in env.provider.cgroups.kept or not os.path.exists(group.path)


# ---- boundaries ------------------------------------------------------------------------------------


async def test_writing_outside_the_workdir(env: Env, outside_dir: str):
    target = os.path.join(outside_dir, "target.txt")
    with open(target, "w") as f:
        f.write("original\n")
    rel = os.path.relpath(target, env.sandbox.workdir)  # ../../.. climbing out
    for path in (target, rel):
        r = await env.call("file_write", path=path, content="pwned\n")
        if env.kind == "docker":
            assert not r.is_error  # allowed: it lands inside the container
        else:
            assert r.is_error and "outside the sandbox working directory" in r.content
    r = await env.bash(f"echo pwned > {target}")
    with open(target) as f:
        host_content = f.read()
    if env.kind == "local":
        # documented: plain local is not a boundary; bash writes where the harness can
        assert r.exit_code == 0 and host_content == "pwned\n"
    else:
        assert host_content == "original\n"  # impossible with bwrap (read-only host) and in docker
        if env.kind == "bwrap":
            assert r.exit_code != 0 and ("Read-only" in r.content or "No such file" in r.content)
    assert not os.path.exists(os.path.join(outside_dir, "pwned"))


def _host_addresses() -> list[str]:
    addrs = ["127.0.0.1"]
    try:
        out = subprocess.run(["ip", "-4", "-o", "addr", "show", "scope", "global"], capture_output=True,
                             text=True, timeout=10).stdout
        addrs += [line.split()[3].split("/")[0] for line in out.splitlines() if len(line.split()) > 3]
    except (OSError, subprocess.TimeoutExpired):
        pass
    return addrs


@pytest.fixture
def tcp_server() -> Iterator[int]:
    """A TCP server on every host address that answers b"hi" to each connection."""
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("0.0.0.0", 0))
    srv.listen(16)
    stop = threading.Event()

    def serve() -> None:
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                continue
            with conn:
                conn.sendall(b"hi")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield srv.getsockname()[1]
    stop.set()
    thread.join(5)
    srv.close()


async def test_network_egress(env: Env, tcp_server: int):
    probe = (
        "import socket,sys\n"
        "for host in sys.argv[2:]:\n"
        "    try:\n"
        "        s = socket.create_connection((host, int(sys.argv[1])), timeout=3)\n"
        "        print(host, 'connected', s.recv(2).decode())\n"
        "    except OSError as e:\n"
        "        print(host, 'failed', type(e).__name__)\n"
    )
    await env.sandbox.write_file("probe.py", probe.encode())
    addresses = _host_addresses()
    r = await env.bash(f"python3 probe.py {tcp_server} {' '.join(addresses)}", timeout=60)
    lines = dict(line.split(" ", 1) for line in r.content.strip().splitlines())
    assert set(lines) == set(addresses), r.content
    for host, outcome in lines.items():
        if env.kind == "local":
            assert outcome == "connected hi"  # the positive control: the probe can succeed
        else:
            assert outcome.startswith("failed"), (host, outcome)


async def test_huge_file_read_is_capped(env: Env):
    r = await env.bash("head -c 50000000 /dev/zero > huge.bin && ls -l huge.bin")
    assert r.exit_code == 0
    r = await env.call("file_read", path="huge.bin")
    assert r.is_error and "50000000 bytes" in r.content and "head -n 200" in r.content
    r = await env.call("file_read", path="huge.bin", start_line=1, end_line=10)
    assert r.is_error and "sed -n" in r.content  # over the sandbox's own cap as well
    r = await env.call("str_replace_editor", command="view", path="huge.bin")
    assert r.is_error and "view_range" in r.content
    with pytest.raises(FileTooLargeError) as info:
        await env.sandbox.read_file("huge.bin", max_bytes=1000)
    assert info.value.size == 50_000_000
    r = await env.bash("echo fine")
    assert r.content == "fine\n"
