"""The attacks of the red-team suite, as scripted agent turns.

Each attack is a task whose scripted model makes the tool calls an attacker
would; it never judges itself (its answer is always ``done``). The tests
judge by looking at the host: canary files, /proc, the Docker engine, a TCP
listener, and the trajectories the run wrote.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.security.race import SWAP_SCRIPT
from tests.support.scripted_server import ScriptedRequest, answer, tool_call, tool_calls

#: tool calls per turn of the race (the solver's per-turn cap is raised to this)
RACE_CALLS_PER_TURN = 100
#: turns of the race: RACE_TURNS * RACE_CALLS_PER_TURN = 500 tries
RACE_TURNS = 5
#: how many MiB the /tmp attack writes (the jail's /tmp is capped well below)
TMP_FILL_MB = 600
#: memory the attack tries to hold, in 32 MiB steps, printed as it goes
MEMORY_STEPS = 64  # 2 GiB

_DOCKER_PROBE = r"""
import json, socket, sys
token = sys.argv[1]
body = json.dumps({"Image": "react-eval-sandbox:latest", "Cmd": ["true"], "Labels": {"react-eval-redteam": token}})
req = ("POST /containers/create HTTP/1.0\r\nHost: docker\r\nContent-Type: application/json\r\n"
       f"Content-Length: {len(body)}\r\n\r\n{body}").encode()
for path in ("/var/run/docker.sock", "/run/docker.sock", "/var/run/docker/containerd/containerd.sock"):
    try:
        s = socket.socket(socket.AF_UNIX); s.settimeout(5); s.connect(path); s.sendall(req)
        print(path, "CONNECTED", s.recv(200))
    except OSError as e:
        print(path, "failed", type(e).__name__, e)
for port in (2375, 2376):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=3); s.sendall(req); print(port, "CONNECTED", s.recv(200))
    except OSError as e:
        print(port, "failed", type(e).__name__)
"""

_EGRESS_PROBE = r"""
import socket, sys
for h in sys.argv[2:]:
    try:
        s = socket.create_connection((h, int(sys.argv[1])), timeout=3); print(h, "CONNECTED", s.recv(2))
    except OSError as e:
        print(h, "failed", type(e).__name__)
"""

_MEMORY_HOG = (
    "import sys\nheld = []\n"
    f"for i in range({MEMORY_STEPS}):\n"
    "    held.append(bytearray(32 << 20))\n"
    "    print(i + 1, flush=True)\n"
)


def bash(command: str):
    return tool_call("bash", {"command": command})


def write(path: str, content: str):
    return tool_call("file_write", {"path": path, "content": content})


def script(steps: list[Any]) -> list[Any]:
    """The steps in order (a step may be a function of the outputs so far), then ``done``."""

    def turn(req: ScriptedRequest):
        outs = [m["content"] for m in req.messages if m.get("role") == "tool"]
        if req.turn < len(steps):
            step = steps[req.turn]
            return step(outs) if callable(step) else step
        return answer("ANSWER: done")

    return [turn] * (len(steps) + 1)


@dataclass
class Targets:
    """What the attacks aim at on the host (made by the test, removed after)."""

    canary_dir: Path  # holds target.txt ("original") and secret.txt
    secret: str  # the content of canary_dir/secret.txt
    root_canary: Path  # a file in /root holding root_secret
    root_secret: str
    checkout_canary: Path  # a file in the project checkout holding checkout_secret
    checkout_secret: str
    answer_keys: list[str]  # the package's smoke answer key, wherever it is installed
    etc_name: str  # a name in /etc (and /usr, /tmp) that must never appear on the host
    needles: list[str]  # sleep arguments of the processes left behind
    listener_port: int
    addresses: list[str]
    docker_token: str
    extra: dict[str, Any] = field(default_factory=dict)


def attacks(kind: str, t: Targets) -> dict[str, list[Any]]:
    """Task id -> scripted turns, for sandbox ``kind`` (bwrap, docker or local)."""
    name = t.etc_name
    race_turns = [
        tool_calls([("file_write", {"path": "d/target.txt", "content": "pwned by the race\n"}, f"w{turn}-{i}")
                    if i % 2 == 0 else ("file_read", {"path": "d/secret.txt"}, f"r{turn}-{i}")
                    for i in range(RACE_CALLS_PER_TURN)])
        for turn in range(RACE_TURNS)
    ]
    race = [
        write("swap.py", SWAP_SCRIPT),
        bash(f"mkdir -p d && ln -sfn {t.canary_dir} link && "
             "(python3 swap.py d link 120 >/dev/null 2>&1 &) ; sleep 0.2; echo swapping"),
        *race_turns,
    ]
    if kind == "local":  # trusted-code-only: only the file tools' race is in scope
        return {"file_race": script(race)}
    secrets_cmd = " ; ".join(
        [f"cat {t.root_canary}", f"cat {t.checkout_canary}", "ls /root /home /work", "head -c 300 /etc/shadow",
         *[f"head -c 2000 {key}" for key in t.answer_keys],
         "find / -xdev -name smoke.jsonl -path '*react_eval*' 2>/dev/null | head -5 | xargs -r head -c 2000"]
    )
    return {
        "capabilities": script([bash("grep -E '^Cap(Eff|Prm|Bnd)' /proc/self/status; id -u")]),
        "remount": script([bash(
            f"mount -o remount,bind,rw / ; mount -o remount,rw /etc ; mount -o remount,rw /usr ; "
            f"mount -t tmpfs none /etc 2>&1 ; echo pwned > /etc/{name} ; echo pwned > /usr/{name} ; "
            f"unshare -Urm sh -c 'mount -o remount,rw / && echo pwned > /etc/{name}' ; echo end")]),
        "proc1_root": script([bash(
            f"ls /proc/1/root/ ; echo pwned > /proc/1/root/etc/{name} ; echo pwned > /proc/1/root/tmp/{name} ; "
            f"ls /proc/1/root/root/ ; cat /proc/1/root{t.root_canary} ; echo end")]),
        "docker_socket": script([write("dprobe.py", _DOCKER_PROBE), bash(f"python3 dprobe.py {t.docker_token}")]),
        "host_secrets": script([bash(secrets_cmd + " ; echo end")]),
        "file_race": script(race),
        "tmp_fill": script([bash(f"head -c {TMP_FILL_MB}M /dev/zero > /tmp/fill ; echo rc=$? ; du -m /tmp/fill ; "
                                 "rm -f /tmp/fill"), bash("echo after-fill")]),
        "memory": script([write("hog.py", _MEMORY_HOG), bash("python3 hog.py ; echo rc=$?"), bash("echo after-hog")]),
        "leftovers": script([bash(
            f"(setsid sleep {t.needles[0]} >/dev/null 2>&1 &) ; "
            f"(env -i setsid nohup sleep {t.needles[1]} >/dev/null 2>&1 &) ; "
            f"nohup sh -c 'trap \"\" HUP TERM; exec sleep {t.needles[2]}' >/dev/null 2>&1 & echo started")]),
        "egress": script([write("eprobe.py", _EGRESS_PROBE),
                          bash(f"python3 eprobe.py {t.listener_port} {' '.join(t.addresses)}")]),
        # what only root in the container can do: each success prints a ROOT- marker
        "root_only": script([bash(
            "id -u ; echo 'evil::0:0::/root:/bin/bash' >> /etc/passwd && echo ROOT-PASSWD ; "
            "touch owned && chown 0:0 owned && echo ROOT-CHOWN ; "
            "python3 -c 'import os; os.setuid(0); print(\"ROOT-SETUID\")' ; "
            "su -c 'echo ROOT-SU' root </dev/null ; "
            "echo x > /usr/bin/python3-planted && echo ROOT-USR ; mknod mem c 1 1 && echo ROOT-MKNOD ; echo end")]),
    }


def outputs_of(trajectory: dict[str, Any]) -> list[str]:
    """The observation contents of a trajectory, in order."""
    found = []
    for step in trajectory["steps"]:
        for result in (step.get("observation") or {}).get("results", []):
            found.append(result.get("content") or "")
    return found


def dump(outs: list[str]) -> str:
    return json.dumps(outs)[:3000]
