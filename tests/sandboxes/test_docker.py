"""The Docker sandbox against a real engine: containers, limits, files, errors,
cleanup (finally, atexit, signals, prune) and the smoke benchmark end to end."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from io import BytesIO
from pathlib import Path

import anyio
import pytest

from react_eval.types import INFRA_ERROR_KINDS, ErrorKind, RolloutError, SandboxError, SandboxSpec
from tests.sandboxes.test_tool_suite import labelled_containers
from tests.test_e2e_smoke import run_cli, smoke_policy

pytestmark = [pytest.mark.anyio, pytest.mark.docker]

REPO = Path(__file__).resolve().parents[2]


def docker_api():
    import docker

    return docker.from_env().api


@pytest.fixture
def run_id(docker_engine: str, sandbox_run_id: str) -> Iterator[str]:
    """A run id of this test (under the session's prefix); asserts at teardown
    that none of its containers is left."""
    rid = f"{sandbox_run_id}-{uuid.uuid4().hex[:6]}"
    yield rid
    assert labelled_containers(rid) == []


def provider_for(run_id: str, **config):
    from react_eval.sandboxes.docker import DockerSandboxProvider
    from react_eval.sandboxes.docker.config import DockerSandboxConfig

    limits = config.pop("limits", None)
    bridge = config.pop("bridge_sockets", False)
    return DockerSandboxProvider(DockerSandboxConfig(**config), run_id=run_id, limits=limits, bridge_sockets=bridge)


@pytest.fixture
async def provider(run_id: str) -> AsyncIterator:
    p = provider_for(run_id, pids_limit=300, memory="512m", cpus=1.5)
    yield p
    await p.aclose()


@pytest.fixture
async def sandbox(provider):
    return await provider.create(None, labels={"react-eval.rollout": "r-1", "task_id": "t"})


# ---- the container ---------------------------------------------------------------------------


async def test_container_carries_labels_limits_and_no_network(provider, sandbox, run_id: str):
    info = docker_api().inspect_container(sandbox.container_id)
    labels = info["Config"]["Labels"]
    assert labels["react-eval.run"] == run_id and labels["react-eval.rollout"] == "r-1"
    host = info["HostConfig"]
    assert host["PidsLimit"] == 300 and host["Memory"] == 512 * 1024 * 1024
    assert host["NanoCpus"] == 1_500_000_000 and host["NetworkMode"] == "none"
    assert info["Config"]["WorkingDir"] == "/workspace"
    r = await sandbox.exec("ls /sys/class/net; cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max", 10)
    assert r.output.split() == ["lo", "300"]
    assert sandbox.info.provider == "docker" and sandbox.info.extra["container_id"] == sandbox.container_id
    await sandbox.close()
    assert labelled_containers(run_id) == []  # removed, not just stopped


async def test_the_persistent_shell_is_one_process_and_commands_run_in_its_session(sandbox):
    first = await sandbox.exec("echo $$", 10)
    for _ in range(20):
        await sandbox.exec("true", 10)
    assert (await sandbox.exec("echo $$", 10)).output == first.output  # no exec per call
    r = await sandbox.exec("ps -o sid= -p $$; ps -o sid= -p $(sh -c 'echo $PPID')", 10)
    assert len(set(r.output.split())) == 1


async def test_the_model_cannot_stop_the_container_from_inside(sandbox):
    await sandbox.exec("cd /tmp && (sleep 0.1 &) && (sleep 0.1 &)", 10)  # orphans for PID 1 to reap
    r = await sandbox.exec("pkill -9 sleep; kill -9 1; kill -TERM 1; kill -9 -1", 10)
    assert r.exit_code == 0 and r.note is None  # kill -1 spares the caller; the control shell died
    r = await sandbox.exec("pkill -9 -x bash", 10)  # now the persistent shell too
    assert r.exit_code == 137 and "new shell was started in /tmp" in r.note
    r = await sandbox.exec("pwd; ps -eo stat= | grep -c '^Z' || true", 10)
    assert r.output.split() == ["/tmp", "0"]  # ... but the container lives on, without zombies
    assert docker_api().inspect_container(sandbox.container_id)["State"]["Running"]
    r = await sandbox.exec("sleep 30", 1)  # timeouts work again: the control shell came back
    assert r.timed_out and (await sandbox.exec("echo ok", 10)).output == "ok\n"


async def test_timeout_kills_the_command_tree_inside_the_container_but_not_the_shell(sandbox):
    shell = (await sandbox.exec("echo $$", 10)).output.strip()
    r = await sandbox.exec("bash -c 'sleep 501 & sleep 502 & setsid sleep 503 & wait'", 1)
    assert r.timed_out and r.exit_code is None
    top = docker_api().top(sandbox.container_id, ps_args="-eo pid,args")
    commands = " ".join(" ".join(p) for p in top["Processes"])
    assert "sleep 50" not in commands  # children, grandchildren and the setsid one are gone
    assert (await sandbox.exec("echo $$", 10)).output.strip() == shell  # same shell


# ---- errors -----------------------------------------------------------------------------------------


async def test_missing_image_says_how_to_build_it(run_id: str):
    p = provider_for(run_id, image="react-eval-missing-image:never")
    with pytest.raises(SandboxError) as info:
        await p.create(None, labels={})
    assert "react-eval-missing-image:never" in str(info.value) and "not found" in str(info.value)
    assert "react-eval sandbox build-image" in str(info.value)
    await p.aclose()
    with pytest.raises(SandboxError) as info:  # the per-task image is used, with the same message
        await provider_for(run_id).create(SandboxSpec(image="react-eval-missing-image:never"), labels={})
    assert "react-eval sandbox build-image" in str(info.value)


async def test_unreachable_daemon_is_an_infrastructure_error(tmp_path):
    p = provider_for("pytest-unreachable", docker_host=f"unix://{tmp_path}/no-docker.sock")
    with pytest.raises(SandboxError) as info:
        await p.create(None, labels={})
    err = info.value
    assert err.kind is ErrorKind.sandbox_error and err.kind in INFRA_ERROR_KINDS
    assert f"unix://{tmp_path}/no-docker.sock is unreachable" in str(err) and "ensure_docker.sh" in str(err)
    await p.aclose()


async def test_a_container_that_dies_mid_rollout_is_a_sandbox_error(sandbox):
    assert (await sandbox.exec("echo up", 10)).output == "up\n"
    docker_api().kill(sandbox.container_id)
    for call in (
        lambda: sandbox.exec("echo hi", 10),
        lambda: sandbox.read_file("x"),
        lambda: sandbox.write_file("x", b"y"),
        lambda: sandbox.stat("x"),
    ):
        with pytest.raises(SandboxError) as info:
            await call()
        assert "no longer running" in str(info.value) and "exit code 137" in str(info.value)


async def test_a_container_that_dies_during_run_is_a_sandbox_error_not_a_failed_command(sandbox):
    async with anyio.create_task_group() as tg:
        async def kill_soon() -> None:
            await anyio.sleep(1)
            await anyio.to_thread.run_sync(docker_api().kill, sandbox.container_id)

        tg.start_soon(kill_soon)
        with pytest.raises(SandboxError) as info:
            await sandbox.run("sleep 30", 60)
    assert "no longer running" in str(info.value)


async def test_a_failing_setup_command_reports_its_output_and_leaves_no_container(provider, run_id: str):
    with pytest.raises(SandboxError) as info:
        await provider.create(SandboxSpec(setup="echo setting up; echo broken >&2; exit 4"), labels={})
    assert "exited with 4" in str(info.value) and "setting up" in str(info.value) and "broken" in str(info.value)
    assert labelled_containers(run_id) == []


# ---- files --------------------------------------------------------------------------------------------


async def test_spec_files_repo_dir_and_setup(provider, tmp_path):
    repo = tmp_path / "repo"
    (repo / "src").mkdir(parents=True)
    (repo / "src" / "run.sh").write_text("#!/bin/sh\necho ran\n")
    (repo / "src" / "run.sh").chmod(0o755)
    (repo / "link").symlink_to("src/run.sh")
    (repo / ".hidden").write_text("dot\n")
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init"],
                   check=True)
    spec = SandboxSpec(
        repo_dir=str(repo),
        files={"notes/a.txt": "placed\n", "src/extra.py": "print('x')\n"},
        setup="echo \"$(pwd)\" > setup.out && git status --porcelain > git.out",
    )
    sb = await provider.create(spec, labels={})
    r = await sb.exec("./link; cat .hidden notes/a.txt setup.out; stat -c %a src/run.sh; readlink link; git log --oneline | wc -l", 10)
    assert r.output.split("\n")[:-1] == ["ran", "dot", "placed", "/workspace", "755", "src/run.sh", "1"]
    # nothing tracked shows as modified: content, modes and the symlink arrived intact
    untracked = (await sb.read_file("git.out")).decode().split()
    assert untracked == ["??", "git.out", "??", "notes/", "??", "setup.out", "??", "src/extra.py"]


async def test_file_semantics(sandbox):
    await sandbox.exec("printf '#!/bin/sh\\necho v1\\n' > tool.sh && chmod 750 tool.sh && ln -s tool.sh alias.sh"
                       " && mkdir adir && ln -s /etc/hostname host", 10)
    await sandbox.write_file("alias.sh", b"#!/bin/sh\necho v2\n")  # through the link, mode kept
    r = await sandbox.exec("./tool.sh; stat -c %a tool.sh; test -L alias.sh && echo still-a-link", 10)
    assert r.output.split() == ["v2", "750", "still-a-link"]
    assert await sandbox.read_file("host") == (await sandbox.exec("cat /etc/hostname", 10)).output.encode()
    with pytest.raises(IsADirectoryError):
        await sandbox.write_file("adir", b"x")
    with pytest.raises(IsADirectoryError):
        await sandbox.read_file("adir")
    with pytest.raises(FileNotFoundError):
        await sandbox.read_file("nope/nothing")
    with pytest.raises(NotADirectoryError):
        await sandbox.write_file("tool.sh/inside", b"x")
    await sandbox.write_file("/opt/abs/new.txt", b"abs", mode=0o600)  # absolute paths: the container is the boundary
    r = await sandbox.exec("stat -c '%a %U' /opt/abs/new.txt; cat /opt/abs/new.txt", 10)
    assert r.output == "600 sandbox\nabs"  # what the file tools write is the agent's
    assert (await sandbox.stat("adir")).is_dir and (await sandbox.stat("host")).exists
    assert not (await sandbox.stat("missing")).exists
    assert sandbox.resolve("a/../b") == "/workspace/b" and sandbox.resolve("//etc/../x") == "/x"
    with pytest.raises(PermissionError):
        sandbox.resolve("bad\x00name")


# ---- run() ---------------------------------------------------------------------------------------------


async def test_run_is_fresh_exact_and_leaves_nothing_running(sandbox):
    await sandbox.exec("cd /tmp; export ONLY_IN_SHELL=1", 10)
    r = await sandbox.run("pwd; echo ${ONLY_IN_SHELL:-unset}; echo err >&2; exit 5", 10)
    assert (r.output, r.exit_code, r.timed_out) == ("/workspace\nunset\nerr\n", 5, False)
    r = await sandbox.run("pwd", 10, cwd="/etc")
    assert r.output == "/etc\n"
    r = await sandbox.run("sleep 601 > /dev/null 2>&1 & echo started", 10)
    assert r.output == "started\n" and r.exit_code == 0
    r = await sandbox.run("sleep 602", 1)
    assert r.timed_out and r.exit_code is None
    ps = await sandbox.run("ps -eo args", 10)
    assert "sleep 60" not in ps.output  # the leftover and the timed-out command are both gone


async def test_rollout_wall_clock_limit(run_id: str):
    p = provider_for(run_id, timeout=3)
    try:
        sb = await p.create(None, labels={})
        assert (await sb.exec("echo quick", 10)).output == "quick\n"
        with pytest.raises(RolloutError) as info:
            await sb.exec("sleep 30", 60)  # cut to the time left
        assert info.value.kind is ErrorKind.timeout and "3s" in str(info.value)
        with pytest.raises(RolloutError):
            await sb.exec("echo again", 10)
        r = await sb.run("echo graders still work", 10)  # verification is not limited
        assert r.exit_code == 0
    finally:
        await p.aclose()


# ---- plumbing ----------------------------------------------------------------------------------------


async def test_exec_stream_reassembles_docker_frames_split_anywhere():
    from anyio.abc import SocketStream

    from react_eval.sandboxes.docker import ExecStream

    payloads = [b"hello ", b"", b"x" * 70000, b"\x01\x02 stderr", b"end"]
    wire = b"".join(bytes([1 if i % 2 == 0 else 2, 0, 0, 0]) + len(p).to_bytes(4, "big") + p
                    for i, p in enumerate(payloads))
    a, b = socket.socketpair()
    stream = ExecStream(await SocketStream.from_socket(a), "test")

    def feed() -> None:
        for i in range(0, len(wire), 3):  # 3-byte pieces split every header
            b.sendall(wire[i:i + 3])
        b.close()

    threading.Thread(target=feed).start()
    got = bytearray()
    while chunk := await stream.receive():
        got += chunk
    assert bytes(got) == b"".join(payloads)
    await stream.aclose()


def test_a_local_engine_run_never_imports_the_docker_sdk(run_id: str):
    """Containers, execs, files, run() and removal all go over the unix socket on
    the event loop: the SDK (and requests) would cost every run megabytes and
    a worker thread per call."""
    script = textwrap.dedent(f"""
        import asyncio, sys
        from react_eval.sandboxes.docker import DockerSandboxProvider
        from react_eval.sandboxes.docker.config import DockerSandboxConfig
        from react_eval.sandboxes.base import FileTooLargeError
        from react_eval.types import SandboxSpec

        async def main():
            p = DockerSandboxProvider(DockerSandboxConfig(memory="256m"), run_id={run_id!r})
            try:
                sb = await p.create(SandboxSpec(files={{"a/b.txt": "one"}}), labels={{}})
                await sb.write_file("c/d.txt", b"two")
                got = [await sb.read_file("a/b.txt"), await sb.read_file("c/d.txt"), (await sb.stat("c")).is_dir]
                try:
                    await sb.read_file("c/d.txt", max_bytes=1)
                except FileTooLargeError:
                    got.append("too-large")
                got += [(await sb.exec("cat a/b.txt c/d.txt", 10)).output, (await sb.run("exit 4", 10)).exit_code]
                await sb.close()
            finally:
                await p.aclose()
            print(got, sorted(m for m in ("docker", "requests", "urllib3") if m in sys.modules))

        asyncio.run(main())
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[b'one', b'two', True, 'too-large', 'onetwo', 4] []", out.stdout


class TcpForwarder:
    """``tcp://127.0.0.1:<port>`` in front of the shared engine's unix socket: an
    engine that the provider must reach through the SDK's HTTP session."""

    def __init__(self, socket_path: str):
        self.socket_path = socket_path
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"tcp://127.0.0.1:{self.server.getsockname()[1]}"
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            self.connections += 1
            engine = socket.socket(socket.AF_UNIX)
            engine.connect(self.socket_path)
            for src, dst in ((client, engine), (engine, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(1 << 16):
                dst.sendall(data)
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self) -> None:
        self.server.close()


async def test_a_tcp_engine_is_driven_through_the_sdk(run_id: str):
    """The other path of every engine call (requests' session in a worker thread,
    execs through the SDK's socket): the same sandbox, files, errors and cleanup."""
    from react_eval.sandboxes.base import FileTooLargeError
    from react_eval.sandboxes.docker.local_api import unix_socket_path

    forwarder = TcpForwarder(unix_socket_path("") or "/var/run/docker.sock")
    p = provider_for(run_id, docker_host=forwarder.url, memory="256m")
    try:
        sb = await p.create(SandboxSpec(files={"a/b.txt": "one"}), labels={"react-eval.rollout": "tcp"})
        assert sb.engine.socket_path is None and sb.info.extra["docker_host"] == forwarder.url
        await sb.write_file("c/d.txt", b"two")
        assert [await sb.read_file("a/b.txt"), await sb.read_file("c/d.txt")] == [b"one", b"two"]
        with pytest.raises(FileTooLargeError):
            await sb.read_file("c/d.txt", max_bytes=1)
        with pytest.raises(FileNotFoundError):
            await sb.read_file("nope.txt")
        r = await sb.exec("cat a/b.txt c/d.txt; echo; stat -c %U c/d.txt; id -un", 10)
        assert r.output.split() == ["onetwo", "sandbox", "sandbox"]
        assert (await sb.run("exit 4", 10)).exit_code == 4
        info = docker_api().inspect_container(sb.container_id)
        assert info["HostConfig"]["NetworkMode"] == "none" and info["HostConfig"]["CapDrop"] == ["ALL"]
        assert info["HostConfig"]["Memory"] == 256 << 20 and info["Config"]["User"] == "sandbox"
        await sb.close()
        assert labelled_containers(run_id) == []
        assert forwarder.connections > 0
        with pytest.raises(SandboxError, match="cannot start a container from 'react-eval-no-such-image:1'"
                                               "|docker image 'react-eval-no-such-image:1' not found"):
            await p.create(SandboxSpec(image="react-eval-no-such-image:1"), labels={})
    finally:
        await p.aclose()
        forwarder.close()


async def test_bridged_socket_transport(run_id: str):
    """The thread-pumped path used for TLS/ssh engines, forced over the local socket."""
    p = provider_for(run_id, bridge_sockets=True)
    try:
        sb = await p.create(SandboxSpec(files={"f.txt": "bridged\n"}), labels={})
        assert (await sb.exec("cat f.txt; export A=1", 10)).output == "bridged\n"
        r = await sb.exec("sleep 100", 1)
        assert r.timed_out
        assert (await sb.exec("echo $A", 10)).output == "1\n"
        assert (await sb.run("echo via run; exit 3", 10)).exit_code == 3
    finally:
        await p.aclose()


async def test_concurrency_limits_live_containers(run_id: str):
    p = provider_for(run_id, concurrency=2)
    live_counts: list[int] = []

    async def rollout(i: int) -> None:
        sb = await p.create(None, labels={"react-eval.rollout": f"c{i}"})
        live_counts.append(len(labelled_containers(run_id)))
        await sb.exec("sleep 0.3", 10)
        await sb.close()

    try:
        async with anyio.create_task_group() as tg:
            for i in range(5):
                tg.start_soon(rollout, i)
    finally:
        await p.aclose()
    assert len(live_counts) == 5 and max(live_counts) <= 2


async def test_bridge_network_reaches_the_host(run_id: str):
    """Positive control for the network setting: with "bridge" egress works."""
    srv = socket.socket()
    srv.bind(("0.0.0.0", 0))
    srv.listen(1)
    port = srv.getsockname()[1]

    def serve() -> None:
        srv.settimeout(30)
        try:
            conn, _ = srv.accept()
            conn.sendall(b"hi")
            conn.close()
        except OSError:
            pass

    threading.Thread(target=serve, daemon=True).start()
    p = provider_for(run_id, network="bridge")
    try:
        sb = await p.create(None, labels={})
        gateway = (await sb.exec("ip route 2>/dev/null | awk '/default/ {print $3}'", 10)).output.strip()
        if not gateway:  # the image may lack iproute2: read the route table directly
            hexgw = (await sb.exec("awk '$2 == \"00000000\" {print $3}' /proc/net/route", 10)).output.strip()
            gateway = ".".join(str(int(hexgw[i:i + 2], 16)) for i in (6, 4, 2, 0))
        probe = f"import socket; s = socket.create_connection(('{gateway}', {port}), timeout=5); print(s.recv(2).decode())"
        r = await sb.exec(f'python3 -c "{probe}"', 30)
        assert r.output == "hi\n", r.output
    finally:
        await p.aclose()
        srv.close()


# ---- cleanup outside the happy path -----------------------------------------------------------------


SCRIPT = textwrap.dedent(
    """
    import sys, anyio
    from react_eval.sandboxes.cleanup import install_signal_handlers
    from react_eval.sandboxes.docker import DockerSandboxProvider
    from react_eval.sandboxes.docker.config import DockerSandboxConfig

    install_signal_handlers()  # as the CLI does: library code installs none

    async def main():
        p = DockerSandboxProvider(DockerSandboxConfig(), run_id=sys.argv[1])
        sb = await p.create(None, labels={})
        await sb.exec("sleep 300 &", 10)
        print("ready", sb.container_id, flush=True)
        if sys.argv[2] == "wait":
            await anyio.sleep(120)

    anyio.run(main)
    """
)


def start_script(run_id: str, mode: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", SCRIPT, run_id, mode], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO)})


@pytest.mark.parametrize("how", ["sigterm", "sigint", "exit-without-close"])
def test_containers_are_removed_on_signals_and_at_exit(run_id: str, how: str):
    proc = start_script(run_id, "return" if how == "exit-without-close" else "wait")
    try:
        line = proc.stdout.readline()
        assert line.startswith("ready "), line + proc.stderr.read()
        if how != "exit-without-close":
            assert len(labelled_containers(run_id)) == 1
            proc.send_signal(signal.SIGTERM if how == "sigterm" else signal.SIGINT)
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    if how == "sigterm":
        assert proc.returncode == -signal.SIGTERM  # the default action ran after the cleanup
    assert labelled_containers(run_id) == []


def test_prune_removes_leftovers_by_label(run_id: str):
    api = docker_api()
    other = f"{run_id}-other"
    ids = [api.create_container("react-eval-sandbox:latest", ["sleep", "infinity"],
                                labels={"react-eval.run": rid, "react-eval.rollout": "left"})["Id"]
           for rid in (run_id, run_id, other)]
    try:
        proc = run_cli("sandbox", "prune", "--run", run_id, "--dry-run")
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.count("would remove") == 2 and "2 container(s) would be removed" in proc.stderr
        assert len(labelled_containers(run_id)) == 2
        proc = run_cli("sandbox", "prune", "--run", run_id)
        assert proc.returncode == 0 and "2 container(s) removed" in proc.stderr
        assert labelled_containers(run_id) == [] and len(labelled_containers(other)) == 1
    finally:
        for cid in ids:
            try:
                api.remove_container(cid, force=True)
            except Exception:
                pass
    assert labelled_containers(other) == []


# ---- through the engine ----------------------------------------------------------------------------


def test_smoke_benchmark_through_the_cli_with_docker(docker_engine: str, scripted_server, tmp_path: Path):
    from react_eval.engine.results import load_results

    srv = scripted_server(smoke_policy)
    proc = run_cli("run", "--bench", "smoke", "--sandbox", "docker", "--model-url", srv.base_url,
                   "--model", "scripted", "--max-concurrent", "3", "-o", str(tmp_path), "--no-progress")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    results = load_results(tmp_path / "smoke" / "results.jsonl")
    assert {r.task_id: r.reward for r in results} == {
        "smoke-log-errors": 1.0, "smoke-csv-sum": 1.0, "smoke-find-file": 1.0,
        "smoke-json-port": 0.0, "smoke-run-script": 1.0, "smoke-fix-mean": 1.0,
    }
    assert all(r.error_kind is None for r in results)
    config = json.loads((tmp_path / "smoke" / "eval.json").read_text())["config"]
    assert [s["type"] for s in config["sandboxes"].values()] == ["docker"]
    assert labelled_containers(results[0].run_id) == []


async def test_a_container_killed_mid_rollout_ends_it_with_sandbox_error(run_id: str, scripted_server, tmp_path):
    from react_eval.engine.config import validate_config
    from react_eval.engine.run import run_benchmark
    from tests.support.scripted_server import answer, tool_call

    def policy(req):
        if req.turn == 0:
            api = docker_api()
            for c in api.containers(filters={"label": f"react-eval.run={run_id}"}):
                api.kill(c["Id"])
            return tool_call("bash", {"command": "echo after"})
        return answer("ANSWER: never")

    srv = scripted_server(policy)
    config = validate_config({
        "services": {"m": {"type": "api", "base_url": srv.base_url, "model": "scripted"}},
        "sandboxes": {"d": {"type": "docker"}},
        "benchmarks": [{"name": "smoke", "max_problems": 1, "sandbox": "d",
                        "solver": {"type": "tool_calling", "service": "m"}}],
    })
    run = await run_benchmark(config, config.benchmarks[0], tmp_path / "out", run_id=run_id)
    rows = [json.loads(line) for line in (tmp_path / "out" / "results.jsonl").read_text().splitlines()]
    assert len(rows) == 1 and rows[0]["error_kind"] == "sandbox_error"
    assert "no longer running" in rows[0]["error"]
    assert run.summary["rollouts"] == 1


# ---- hardening options ---------------------------------------------------------------------


async def test_read_only_root_with_a_writable_workdir_and_a_capped_tmp(run_id: str):
    p = provider_for(run_id, read_only=True, tmp_size="64m", memory="512m")
    try:
        sb = await p.create(None, labels={"react-eval.rollout": "ro"})
        host = docker_api().inspect_container(sb.container_id)["HostConfig"]
        assert host["ReadonlyRootfs"] is True and host["CapDrop"] == ["ALL"]
        r = await sb.exec("touch /usr/x; echo rc=$?; df -m /tmp | tail -1 | awk '{print $2}'", 10)
        assert "Read-only file system" in r.output and "rc=1" in r.output
        assert int(r.output.split()[-1]) <= 64
        await sb.write_file("a/b.txt", b"in the workdir\n")  # the archive API reaches the volume
        r = await sb.exec("cat a/b.txt && echo more >> a/b.txt && echo ok", 10)
        assert r.output == "in the workdir\nok\n"
        assert await sb.read_file("a/b.txt") == b"in the workdir\nmore\n"
    finally:
        await p.aclose()


async def test_the_agent_is_the_images_unprivileged_user_by_default(run_id: str, tmp_path: Path):
    repo = tmp_path / "repo"
    (repo / "pkg").mkdir(parents=True)
    (repo / "pkg" / "m.py").write_text("x = 1\n")
    p = provider_for(run_id)
    try:
        spec = SandboxSpec(repo_dir=str(repo), files={"deep/er/t.txt": "t", "top.txt": "u"}, setup="touch by-setup")
        sb = await p.create(spec, labels={"react-eval.rollout": "user"})
        info = docker_api().inspect_container(sb.container_id)
        assert info["Config"]["User"] == "sandbox" and not info["HostConfig"]["CapAdd"]
        await sb.write_file("new/dir/f.txt", b"f")  # missing parents: created as the agent's
        await sb.write_file("/tmp/made/here.txt", b"h")
        r = await sb.exec("id -u; grep CapEff /proc/self/status; touch /etc/x; echo rc=$?; "
                          "find . /tmp/made ! -user sandbox; echo $HOME; "
                          "git init -q && git add -A && git commit -qm x && echo git-ok; "
                          "echo more >> pkg/m.py && rm -r deep && echo edit-ok", 30)
        lines = r.output.splitlines()
        assert lines[0] == "1000" and lines[1].split()[1] == "0" * 16
        assert "Permission denied" in r.output and "rc=1" in r.output
        assert lines[lines.index("rc=1") + 1:] == ["/home/sandbox", "git-ok", "edit-ok"], r.output  # nothing foreign
        assert (await sb.run("id -un", 10)).output == "sandbox\n"  # graders run as the same user
    finally:
        await p.aclose()


async def test_placed_files_and_the_workdir_belong_to_the_user_the_container_runs_as(run_id: str):
    """The ids come from the container's own processes; the workdir is handed over
    only when the image did not make it the agent's (a new directory, another group)."""
    cases = [({}, "/workspace", "1000:1000"), ({"workdir": "/srv/agent-work"}, "/srv/agent-work", "1000:1000"),
             ({"user": "1000:100"}, "/workspace", "1000:100"), ({"user": "sandbox:users"}, "/workspace", "1000:100")]
    for n, (config, workdir, ids) in enumerate(cases):
        p = provider_for(run_id, **config)
        try:
            sb = await p.create(SandboxSpec(files={"d/e.txt": "x"}), labels={"react-eval.rollout": f"ids-{n}"})
            await sb.write_file("new/f.txt", b"y")
            r = await sb.exec("pwd; stat -c %u:%g . d d/e.txt new new/f.txt; touch mine && echo write-ok", 10)
            assert r.output.split() == [workdir, *[ids] * 5, "write-ok"], (config, r.output)
        finally:
            await p.aclose()


async def test_the_user_can_be_set_and_images_without_one_keep_root(run_id: str, caplog):
    from react_eval.sandboxes.docker.config import DEFAULT_CAPS

    p = provider_for(run_id, user="root")
    try:
        sb = await p.create(SandboxSpec(files={"a/b.txt": "x"}), labels={"react-eval.rollout": "root"})
        assert docker_api().inspect_container(sb.container_id)["HostConfig"]["CapAdd"] == list(DEFAULT_CAPS)
        r = await sb.exec("id -u; stat -c %U a/b.txt a; chown sandbox a/b.txt && echo chown-ok", 10)
        assert r.output.split() == ["0", "root", "root", "chown-ok"]
    finally:
        await p.aclose()
    p = provider_for(run_id, user="1000:1000")
    try:
        sb = await p.create(SandboxSpec(files={"a/b.txt": "x"}), labels={"react-eval.rollout": "uid"})
        assert (await sb.exec("id -u; id -g; stat -c %u:%g a/b.txt a", 10)).output.split() == \
            ["1000", "1000", "1000:1000", "1000:1000"]
    finally:
        await p.aclose()
    from react_eval.sandboxes.docker.config import DEFAULT_IMAGE

    api, tag = docker_api(), f"react-eval-test-root-label:{run_id.lower()}"
    dockerfile = f'FROM {DEFAULT_IMAGE}\nLABEL react-eval.agent-user=""\n'.encode()
    list(api.build(fileobj=BytesIO(dockerfile), tag=tag, network_mode="none", rm=True))
    p = provider_for(run_id, image=tag)
    try:
        with caplog.at_level("WARNING"):
            sb = await p.create(None, labels={"react-eval.rollout": "empty-label"})
            assert (await sb.exec("id -u", 10)).output == "0\n"  # an empty label: root, on purpose
        assert not [r for r in caplog.records if "names no unprivileged user" in r.getMessage()]
    finally:
        await p.aclose()
        api.remove_image(tag, force=True)
    base = "react-eval-base:bookworm"  # the debootstrap base: no user of ours, no label
    if not docker_api().images(name=base):
        pytest.skip(f"{base} is not here (the sandbox image was built from another BASE)")
    p = provider_for(run_id, image=base)
    try:
        with caplog.at_level("WARNING"):
            for n in range(2):
                sb = await p.create(None, labels={"react-eval.rollout": f"base-{n}"})
                assert (await sb.exec("id -u", 10)).output == "0\n"
        notes = [r for r in caplog.records if "names no unprivileged user" in r.getMessage()]
        assert len(notes) == 1 and base in notes[0].getMessage()  # one note per image, not per rollout
    finally:
        await p.aclose()
