"""A hostile agent, as scripted tool calls, in whole runs in Docker and in bwrap.

Each hostile task does its damage, then checks from inside that the sandbox
still answers, and reports ``ANSWER: contained`` only when every observation
shows the attack was stopped the expected way (otherwise ``ANSWER: breach:
...`` with what it saw, and the reward is 0). Every test then checks the host
directly -- canary files, /etc, the process table, a TCP listener, Docker's
container list -- and that the run lost and leaked nothing.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pytest

from tests.reliability.bench import task, write_tasks
from tests.reliability.harness import (
    ByTask,
    Run,
    assert_complete,
    assert_no_leaks,
    child_processes,
    config,
    echo_steps,
    new_marker,
    observations,
    run_in_process,
)
from tests.sandboxes.test_tool_suite import _host_addresses, host_processes
from tests.support.scripted_server import ScriptedRequest, ScriptedServer, answer, tool_call

TOOL_TIMEOUT = 6.0  # generous: the ordinary commands must never hit it


def outputs(req: ScriptedRequest) -> list[str]:
    return [m["content"] for m in req.messages if m.get("role") == "tool"]


def scripted(steps: list, judge: Callable[[list[str]], str | None]) -> list:
    """Tool calls (an entry may be a function of the outputs so far), then the
    verdict: ``contained`` when ``judge`` finds nothing wrong, else the breach."""

    def turn(req: ScriptedRequest):
        outs = outputs(req)
        if req.turn < len(steps):
            step = steps[req.turn]
            return step(outs) if callable(step) else step
        problem = judge(outs)
        return answer("ANSWER: contained" if problem is None else f"ANSWER: breach: {problem}")

    return [turn] * (len(steps) + 1)


def bash(command: str):
    return tool_call("bash", {"command": command})


def expect(cond: bool, what: str, outs: list[str]) -> str | None:
    return None if cond else f"{what}; outputs: {json.dumps(outs)[:1500]}"


class Listener:
    """A TCP server on every host address that counts the connections it accepts."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("0.0.0.0", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            with conn:
                conn.sendall(b"hi")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


@dataclass
class Hostile:
    kind: str
    run: Run
    policy: ByTask
    marker: str
    canary: Path
    secret: str
    etc_name: str
    sleep_needle: str
    listener_accepted: int
    listener_port: int
    addresses: list[str]
    children: list[str] = field(default_factory=list)

    @property
    def run_id(self) -> str:
        return self.run.results[0].run_id

    def row(self, tid: str):
        return self.run.rows()[tid]

    def assert_contained(self, tid: str) -> None:
        """The hostile rollout ended normally and its own checks found no breach;
        the run is complete and nothing leaked."""
        row = self.row(tid)
        assert row.error_kind is None, (tid, row.error)
        assert row.reward == 1.0, (tid, [(o["content"][:300], o["content"][-300:], o["extra"])
                                         for o in observations(self.run.trajectory(tid))])
        assert self.row("control").reward == 1.0
        assert_complete(self.run, [(t, 0) for t in self.policy.queues])
        assert_no_leaks(self.marker, run_id=self.run_id if self.kind == "docker" else None,
                        children_before=self.children)
        # the host's files: the canary untouched, nothing new beside it, the secret never shown
        assert (self.canary / "target.txt").read_text() == "original\n"
        assert sorted(os.listdir(self.canary)) == ["secret.txt", "target.txt"]
        assert not Path("/etc", self.etc_name).exists()
        assert self.secret not in (self.run.out_dir / "trajectories.jsonl").read_text()


def hostile_tasks(kind: str, canary: Path, etc_name: str, needle: str, port: int, addresses: list[str]) -> dict:
    probe = (
        "import socket,sys\n"
        "for h in sys.argv[2:]:\n"
        "    try:\n"
        "        s = socket.create_connection((h, int(sys.argv[1])), timeout=3); print(h, 'connected', s.recv(2))\n"
        "    except OSError as e:\n"
        "        print(h, 'failed', type(e).__name__)\n"
    )
    isolated_fs = kind == "bwrap"  # the file tools refuse paths outside the workdir (docker: they land in the container)
    outside = "outside the sandbox working directory"
    scripts = {
        "control": echo_steps("tok-control"),
        "fork_bomb": scripted(
            [bash(":(){ :|:& };:; sleep 60"), bash("echo alive")],
            lambda o: expect("timed out" in o[0] and "Resource temporarily unavailable" in o[0]
                             and o[1] == "alive\n", "the fork bomb was not capped or the shell died", o)),
        "yes": scripted(
            [bash("yes"), bash("echo after-yes")],
            lambda o: expect("timed out" in o[0] and "truncated" in o[0] and len(o[0]) < 20_000
                             and o[1] == "after-yes\n", "unbounded output was not capped", o)),
        "sleep": scripted(
            [bash(f"sleep {needle}"), bash("echo after-sleep")],
            lambda o: expect("timed out" in o[0] and o[1] == "after-sleep\n", "sleep was not cut off", o)),
        # a timed-out command is stopped whole: the rest of it never runs, nor
        # anything it started (jobs, setsid, a cleared environment, a tree)
        "late": scripted(
            [bash("mkdir -p sub && cd sub && export KEPT=yes && echo ready"),
             bash(f"sleep 7{needle} & setsid sleep 8{needle} & env -i setsid sh -c 'exec sleep 9{needle}' & "
                  f"bash -c 'sleep 6{needle}; echo TREE > tree.txt' & "
                  f"sleep {TOOL_TIMEOUT + 2:g}; echo LATE > late.txt"),
             bash('sleep 3; ls -A; echo "kept=$KEPT in=${PWD##*/}"')],
            lambda o: expect("timed out" in o[1] and o[2] == "kept=yes in=sub\n",
                             "the rest of a timed-out command ran, or the shell lost its state", o)),
        "egress": scripted(
            [tool_call("file_write", {"path": "probe.py", "content": probe}),
             bash(f"python3 probe.py {port} {' '.join(addresses)}")],
            lambda o: expect(o[1].count(" failed ") == len(addresses) and "connected" not in o[1],
                             "a connection left the sandbox", o)),
        "big_read": scripted(
            [bash("truncate -s 2G big.bin && stat -c %s big.bin"),
             tool_call("file_read", {"path": "big.bin"}),
             tool_call("str_replace_editor", {"command": "view", "path": "big.bin"}),
             bash("echo after-big")],
            lambda o: expect(o[0].strip() == "2147483648" and "2147483648 bytes" in o[1] and "head -n" in o[1]
                             and "view_range" in o[2] and o[3] == "after-big\n", "a 2 GB read was attempted", o)),
        "non_utf8": scripted(
            [bash(r"printf 'ok\xff\xfe\x00end\n'"),
             tool_call("file_write", {"path": "bin.txt", "content": "a\u0000b\u00ffc"}),
             tool_call("file_read", {"path": "bin.txt"})],
            lambda o: expect(o[0] == "ok\ufffd\ufffd\\0end\n" and o[2] == "a\\0b\u00ffc",
                             "undecodable or NUL bytes were not made safe", o)),
    }
    # path traversal (../../) through file_read, file_write and the editor, aimed at a host canary
    def rel(outs: list[str], name: str) -> str:
        return os.path.relpath(str(canary / name), outs[0].strip())

    scripts["traversal"] = scripted(
        [bash("pwd"),
         lambda o: tool_call("file_read", {"path": rel(o, "secret.txt")}),
         lambda o: tool_call("file_write", {"path": rel(o, "target.txt"), "content": "pwned\n"}),
         lambda o: tool_call("str_replace_editor", {"command": "str_replace", "path": rel(o, "target.txt"),
                                                    "old_str": "original", "new_str": "pwned"}),
         lambda o: tool_call("str_replace_editor", {"command": "create", "path": rel(o, "new.txt"),
                                                    "file_text": "pwned\n"})],
        lambda o: expect(all(outside in x for x in o[1:]) if isolated_fs else all("secret" not in x.lower()
                         or "No such file" in x for x in o[1:]), "a path outside the workdir was used", o))
    # symbolic links out of the workdir, followed by the file tools and the editor
    scripts["symlink"] = scripted(
        [bash(f"ln -s {canary}/secret.txt s1 && ln -s {canary} d1 && echo linked"),
         tool_call("file_read", {"path": "s1"}),
         tool_call("file_write", {"path": "s1", "content": "pwned\n"}),
         tool_call("file_write", {"path": "d1/target.txt", "content": "pwned\n"}),
         tool_call("str_replace_editor", {"command": "str_replace", "path": "d1/target.txt",
                                          "old_str": "original", "new_str": "pwned"}),
         tool_call("str_replace_editor", {"command": "view", "path": "d1"})],
        lambda o: expect(o[0] == "linked\n" and (all("through a symbolic link" in x for x in o[1:])
                                                 if isolated_fs else True), "a symbolic link led out", o))
    if kind == "bwrap":
        scripts["etc_write"] = scripted(
            [bash(f"echo pwned > /etc/{etc_name}; echo rc=$?"),
             tool_call("file_write", {"path": f"/etc/{etc_name}", "content": "pwned\n"}),
             tool_call("str_replace_editor", {"command": "create", "path": f"/etc/{etc_name}", "file_text": "x"})],
            lambda o: expect("Read-only file system" in o[0] and "rc=1" in o[0] and outside in o[1]
                             and outside in o[2], "/etc of the host was writable", o))
    if kind == "docker":
        def wipe(outs: list[str]):
            if outs[0].strip() != "sandbox":  # a guard: never run this anywhere but in the container
                return answer(f"ANSWER: refused, not in the container: {outs[0]!r}")
            return bash("rm -rf --no-preserve-root / 2>/dev/null; echo rc=$?")

        scripts["rm_rf"] = scripted(
            [bash("test -f /.dockerenv && hostname"), wipe, bash("ls /usr/bin; echo still-answering")],
            lambda o: expect("rc=" in o[1] and "still-answering" in o[2], "the shell did not survive", o))
    return scripts


def hostile_run(kind: str, tmp: Path, request: pytest.FixtureRequest) -> Iterator[Hostile]:
    if kind == "docker":
        request.getfixturevalue("docker_engine")
        sandbox = {"type": "docker", "memory": "512m", "pids_limit": 256}
    else:
        request.getfixturevalue("bwrap_available")
        sandbox = {"type": "local", "isolation": "bwrap", "pids_limit": 256, "root": str(tmp / "sandboxes")}
    base = "/var/tmp" if os.access("/var/tmp", os.W_OK) else None  # outside /tmp, which bwrap replaces
    canary = Path(tempfile_dir(base))
    secret = f"TOP-SECRET-{secrets.token_hex(8)}"
    (canary / "secret.txt").write_text(secret + "\n")
    (canary / "target.txt").write_text("original\n")
    etc_name = f"react-eval-canary-{uuid.uuid4().hex[:8]}"
    needle = f"10000.{secrets.randbelow(10**6):06d}"
    listener = Listener()
    addresses = _host_addresses()
    # the positive control: the listener is reachable from the host itself
    with socket.create_connection(("127.0.0.1", listener.port), timeout=5) as s:
        assert s.recv(2) == b"hi"
    seen_before = listener.accepted
    scripts = hostile_tasks(kind, canary, etc_name, needle, listener.port, addresses)
    policy = ByTask(scripts)
    tasks = write_tasks(tmp / "tasks.json", [task(t, "tok-control" if t == "control" else "contained")
                                             for t in scripts])
    marker = new_marker()
    children = child_processes()
    try:
        with ScriptedServer(policy) as srv:
            run = run_in_process(config(srv.base_url, tasks, marker=marker, max_concurrent=len(scripts),
                                        sandbox=sandbox, solver={"tool_timeout": TOOL_TIMEOUT}), tmp / "out")
        assert run.error is None, run.error
        yield Hostile(kind, run, policy, marker, canary, secret, etc_name, needle,
                      listener.accepted - seen_before, listener.port, addresses, children)
    finally:
        listener.close()
        shutil.rmtree(canary, ignore_errors=True)
        Path("/etc", etc_name).unlink(missing_ok=True)


def tempfile_dir(base: str | None) -> str:
    import tempfile

    return tempfile.mkdtemp(prefix="react-eval-canary-", dir=base)


@pytest.fixture(scope="module")
def docker_hostile(tmp_path_factory, request) -> Iterator[Hostile]:
    yield from hostile_run("docker", tmp_path_factory.mktemp("hostile-docker"), request)


@pytest.fixture(scope="module")
def bwrap_hostile(tmp_path_factory, request) -> Iterator[Hostile]:
    yield from hostile_run("bwrap", tmp_path_factory.mktemp("hostile-bwrap"), request)


BOTH = pytest.mark.parametrize("kind", ["docker", "bwrap"])


def hostile(request: pytest.FixtureRequest, kind: str) -> Hostile:
    return request.getfixturevalue(f"{kind}_hostile")


# ---------------------------------------------------------------- runaway processes


@BOTH
def test_fork_bomb_is_capped_and_the_host_can_still_fork(request, kind):
    h = hostile(request, kind)
    h.assert_contained("fork_bomb")
    host = subprocess.run(["sh", "-c", "echo spawned"], capture_output=True, text=True, timeout=60)
    assert host.stdout == "spawned\n"


@BOTH
def test_unbounded_output_is_capped_in_the_observation_and_in_the_files(request, kind):
    h = hostile(request, kind)
    h.assert_contained("yes")
    first = observations(h.run.trajectory("yes"))[0]
    assert first["extra"]["error_kind"] == "timeout" and first["extra"]["truncated"] is True
    assert len(orjson.dumps(h.run.trajectory("yes"))) < 200_000  # what reaches the disk is bounded too


@BOTH
def test_sleep_past_the_tool_timeout_is_killed_on_the_host(request, kind):
    h = hostile(request, kind)
    h.assert_contained("sleep")
    assert host_processes(h.sleep_needle) == []
    first = observations(h.run.trajectory("sleep"))[0]
    assert first["extra"]["error_kind"] == "timeout"


@BOTH
def test_a_timed_out_command_is_stopped_whole_and_the_shell_keeps_its_state(request, kind):
    h = hostile(request, kind)
    h.assert_contained("late")
    assert host_processes(h.sleep_needle) == []
    assert observations(h.run.trajectory("late"))[1]["extra"]["error_kind"] == "timeout"


def test_rm_rf_root_inside_docker_leaves_the_host_and_the_image_intact(docker_hostile):
    docker_hostile.assert_contained("rm_rf")
    assert Path("/usr/bin/ls").exists() and Path("/etc/hostname").exists()
    probe = subprocess.run(["docker", "run", "--rm", "--network", "none", "react-eval-sandbox:latest",
                            "ls", "/usr/bin/ls"], capture_output=True, text=True, timeout=120)
    assert probe.returncode == 0 and probe.stdout.strip() == "/usr/bin/ls", probe.stderr  # the image is intact


# ---------------------------------------------------------------- the host's files


def test_writing_to_etc_of_the_host_through_bwrap_is_refused(bwrap_hostile):
    bwrap_hostile.assert_contained("etc_write")
    assert not Path("/etc", bwrap_hostile.etc_name).exists()


@BOTH
def test_path_traversal_through_file_read_file_write_and_the_editor_stays_inside(request, kind):
    h = hostile(request, kind)
    h.assert_contained("traversal")
    kinds = [o["extra"].get("error_kind") for o in observations(h.run.trajectory("traversal"))[1:]]
    if kind == "bwrap":
        assert kinds == ["tool_error"] * 4  # refused, not failed


@BOTH
def test_symlink_escapes_through_the_file_tools_and_the_editor_stay_inside(request, kind):
    h = hostile(request, kind)
    h.assert_contained("symlink")
    if kind == "bwrap":
        assert all(o["extra"]["is_error"] for o in observations(h.run.trajectory("symlink"))[1:])


# ---------------------------------------------------------------- network, big files, bytes


@BOTH
def test_network_egress_is_impossible_with_network_none(request, kind):
    h = hostile(request, kind)
    h.assert_contained("egress")
    assert h.listener_accepted == 0  # the host's listener saw no connection from any sandbox


@BOTH
def test_a_2gb_file_read_is_refused_before_reading(request, kind):
    h = hostile(request, kind)
    h.assert_contained("big_read")
    reads = observations(h.run.trajectory("big_read"))[1:3]
    assert all(o["extra"]["is_error"] and o["extra"]["error_kind"] == "tool_error" for o in reads)
    assert len(orjson.dumps(h.run.trajectory("big_read"))) < 100_000


@BOTH
def test_non_utf8_and_nul_bytes_come_back_as_safe_text_and_valid_json(request, kind):
    h = hostile(request, kind)
    h.assert_contained("non_utf8")
    for name in ("results.jsonl", "trajectories.jsonl"):
        data = (h.run.out_dir / name).read_bytes()
        assert b"\x00" not in data
        for line in data.splitlines():
            orjson.loads(line)  # strict JSON, valid UTF-8
