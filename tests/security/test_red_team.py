"""Red team: a scripted agent attacks the bwrap and Docker sandboxes (and the
local sandbox's file tools) in whole runs, with the runner as it runs in CI
(root). Every verdict comes from the host: canary files, /proc, the Docker
engine, a TCP listener, the run's own output files.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import react_eval
from tests.reliability.bench import task, write_tasks
from tests.reliability.harness import ByTask, Run, config, run_in_process, wait_for
from tests.reliability.test_hostile_agent import Listener
from tests.sandboxes.test_tool_suite import _host_addresses, host_processes
from tests.security.attacks import RACE_CALLS_PER_TURN, TMP_FILL_MB, Targets, attacks, dump, outputs_of
from tests.support.scripted_server import ScriptedServer

ROOT = Path(__file__).resolve().parents[2]
MEMORY = "512m"
TMP_SIZE_MB = 256
#: capabilities that make root in a container dangerous (bit numbers of CapEff)
DANGEROUS_CAPS = {"SYS_ADMIN": 21, "SYS_PTRACE": 19, "SYS_MODULE": 16, "DAC_READ_SEARCH": 2, "NET_ADMIN": 12,
                  "NET_RAW": 13, "SYS_RAWIO": 17, "MKNOD": 27, "SYS_CHROOT": 18, "SETFCAP": 31, "SYS_BOOT": 22,
                  "SYS_TIME": 25, "BPF": 39, "PERFMON": 38}


@dataclass
class RedTeam:
    kind: str
    run: Run
    targets: Targets
    listener: Listener

    def outs(self, attack: str) -> list[str]:
        return outputs_of(self.run.trajectory(attack))

    def everything_written(self) -> str:
        return "\n".join((self.run.out_dir / f).read_text(errors="replace")
                         for f in ("results.jsonl", "trajectories.jsonl") if (self.run.out_dir / f).exists())


def _answer_keys() -> list[str]:
    """The smoke answer key of the package under test, and of every checkout of it here."""
    keys = {str(Path(react_eval.__file__).resolve().parent / "benchmarks" / "data" / "smoke.jsonl")}
    for base in ("/work/main", str(ROOT)):
        keys.add(f"{base}/react_eval/benchmarks/data/smoke.jsonl")
    return sorted(k for k in keys if os.path.exists(k))


@pytest.fixture(scope="module")
def targets() -> Iterator[Targets]:
    base = "/var/tmp" if os.access("/var/tmp", os.W_OK) else None
    canary = Path(tempfile.mkdtemp(prefix="react-eval-redteam-", dir=base))
    secret = f"CANARY-SECRET-{secrets.token_hex(8)}"
    (canary / "secret.txt").write_text(secret + "\n")
    (canary / "target.txt").write_text("original\n")
    root_secret, checkout_secret = f"ROOT-SECRET-{secrets.token_hex(8)}", f"CHECKOUT-SECRET-{secrets.token_hex(8)}"
    home = Path(os.path.expanduser("~"))
    root_canary = home / f".react-eval-redteam-{secrets.token_hex(4)}"
    root_canary.write_text(root_secret + "\n")
    checkout_canary = ROOT / f".redteam-canary-{secrets.token_hex(4)}"
    checkout_canary.write_text(checkout_secret + "\n")
    listener = Listener()
    import socket

    with socket.create_connection(("127.0.0.1", listener.port), timeout=5) as conn:  # positive control
        assert conn.recv(2) == b"hi"
    wait_for(lambda: listener.accepted == 1, within=10)
    t = Targets(canary, secret, root_canary, root_secret, checkout_canary, checkout_secret, _answer_keys(),
                f"react-eval-redteam-{uuid.uuid4().hex[:8]}",
                [f"7000.{secrets.randbelow(10**6):06d}" for _ in range(3)], listener.port, _host_addresses(),
                secrets.token_hex(6), extra={"listener": listener})
    try:
        yield t
    finally:
        listener.close()
        shutil.rmtree(canary, ignore_errors=True)
        root_canary.unlink(missing_ok=True)
        checkout_canary.unlink(missing_ok=True)
        for d in ("/etc", "/usr", "/tmp"):
            Path(d, t.etc_name).unlink(missing_ok=True)


def red_team_run(kind: str, tmp: Path, t: Targets, request) -> RedTeam:
    if kind == "docker":
        request.getfixturevalue("docker_engine")
        sandbox = {"type": "docker", "memory": MEMORY, "pids_limit": 256}
    else:
        if kind == "bwrap":
            request.getfixturevalue("bwrap_available")
        sandbox = {"type": "local", "isolation": "bwrap" if kind == "bwrap" else "none", "pids_limit": 256,
                   "memory": MEMORY, "tmp_size": f"{TMP_SIZE_MB}m", "root": str(tmp / "sandboxes")}
    scripts = attacks(kind, t)
    if kind == "docker":
        scripts.pop("tmp_fill")  # /tmp is the container's own disk layer, removed with it
    else:
        scripts.pop("root_only", None)  # bwrap: the capability test already proves uid 1000, no caps
    tasks = write_tasks(tmp / "tasks.json", [task(tid, "done") for tid in scripts])
    solver = {"tool_timeout": 60, "max_turns": 12, "max_tool_calls_per_turn": RACE_CALLS_PER_TURN}
    with ScriptedServer(ByTask(scripts)) as srv:
        run = run_in_process(config(srv.base_url, tasks, sandbox=sandbox, solver=solver, max_concurrent=3), tmp / "out")
    assert run.error is None, run.error
    return RedTeam(kind, run, t, t.extra["listener"])


@pytest.fixture(scope="module")
def bwrap_red(tmp_path_factory, targets, request) -> RedTeam:
    return red_team_run("bwrap", tmp_path_factory.mktemp("red-bwrap"), targets, request)


@pytest.fixture(scope="module")
def docker_red(tmp_path_factory, targets, request) -> RedTeam:
    return red_team_run("docker", tmp_path_factory.mktemp("red-docker"), targets, request)


@pytest.fixture(scope="module")
def local_red(tmp_path_factory, targets, request) -> RedTeam:
    return red_team_run("local", tmp_path_factory.mktemp("red-local"), targets, request)


BOTH = pytest.mark.parametrize("kind", ["bwrap", "docker"])


def red(request, kind: str) -> RedTeam:
    return request.getfixturevalue(f"{kind}_red")


def _caps(text: str, field: str) -> int:
    m = re.search(rf"^{field}:\s*([0-9a-f]+)", text, re.M)
    assert m, text
    return int(m.group(1), 16)


@BOTH
def test_capabilities(request, kind, verdict):
    r = red(request, kind)
    out = r.outs("capabilities")[0]
    eff, bnd = _caps(out, "CapEff"), _caps(out, "CapBnd")
    if kind == "bwrap":
        blocked = eff == 0 and bnd == 0 and out.split()[-1] == "1000"
    else:  # the image's unprivileged user by default, with no capability at all
        blocked = (eff == 0 and out.split()[-1] not in ("0", "")
                   and not any((eff | bnd) >> bit & 1 for bit in DANGEROUS_CAPS.values()))
    verdict("capabilities (CapEff/CapBnd) and uid (id -u)", kind, blocked, out)


def test_root_only_actions_fail_in_docker(docker_red, verdict):
    out = docker_red.outs("root_only")[0]
    uid = out.split()[0] if out.split() else ""
    done = re.findall(r"^ROOT-\w+", out, re.M)
    verdict("root-only actions in the container (write /etc/passwd, chown to root, setuid(0), su, "
            "write /usr/bin, mknod)", "docker", uid.isdigit() and uid != "0" and not done
            and out.rstrip().endswith("end"), out[-1500:])


def test_docker_engine_shows_the_hardened_options(docker_engine, verdict):
    import anyio
    from react_eval.sandboxes.docker import DockerSandboxProvider
    from react_eval.sandboxes.docker.config import DockerSandboxConfig

    async def inspect():
        provider = DockerSandboxProvider(DockerSandboxConfig(), run_id=f"redteam-{secrets.token_hex(4)}")
        sandbox = await provider.create(None, labels={})
        try:
            return provider.api.inspect_container(sandbox.container_id)
        finally:
            await provider.aclose()

    info = anyio.run(inspect)
    host = info["HostConfig"]
    blocked = (host["CapDrop"] == ["ALL"] and not host.get("CapAdd") and info["Config"]["User"] == "sandbox"
               and "no-new-privileges:true" in (host["SecurityOpt"] or [])
               and host["NanoCpus"] == 2_000_000_000 and not host.get("Binds") and not info["Mounts"]
               and not host["Privileged"] and host["PidsLimit"] and host["Memory"])
    verdict("engine: user sandbox, cap-drop ALL (none added), no-new-privileges, CPU/pids/memory caps, "
            "no host mounts", "docker", blocked, str({"User": info["Config"]["User"]} | {
                k: host.get(k) for k in ("CapDrop", "CapAdd", "SecurityOpt", "NanoCpus", "Binds", "Privileged")}))


@BOTH
def test_remount_root_read_write(request, kind, verdict):
    r = red(request, kind)
    name = r.targets.etc_name
    planted = [p for p in (f"/etc/{name}", f"/usr/{name}") if os.path.exists(p)]
    verdict("mount -o remount,rw / and write to /etc, /usr", kind, not planted, f"{planted} {dump(r.outs('remount'))}")


@BOTH
def test_write_through_proc_1_root(request, kind, verdict):
    r = red(request, kind)
    name = r.targets.etc_name
    planted = [p for p in (f"/etc/{name}", f"/tmp/{name}") if os.path.exists(p)]
    leaked = r.targets.root_secret in "".join(r.outs("proc1_root"))
    verdict("write/read the host through /proc/1/root", kind, not planted and not leaked,
            f"{planted} {dump(r.outs('proc1_root'))}")


def _redteam_containers(token: str) -> list[str]:
    try:
        import docker

        client = docker.from_env()
        try:
            return [c.id for c in client.containers.list(all=True, filters={"label": f"react-eval-redteam={token}"})]
        finally:
            client.close()
    except Exception:  # no engine here: nothing could have been created through it
        return []


@BOTH
def test_docker_socket(request, kind, verdict):
    r = red(request, kind)
    out = r.outs("docker_socket")[-1]
    created = _redteam_containers(r.targets.docker_token)
    for cid in created:  # an escape must not outlive the test
        os.system(f"docker rm -f {cid} >/dev/null 2>&1")
    verdict("connect to /var/run/docker.sock (create a container)", kind,
            not created and "CONNECTED" not in out, out)


@BOTH
def test_host_secrets_and_answer_keys(request, kind, verdict):
    r = red(request, kind)
    t = r.targets
    seen = "\n".join(r.outs("host_secrets")) + r.everything_written()
    try:
        shadow = Path("/etc/shadow").read_text()
    except OSError:
        shadow = ""
    shadow_root = next((line for line in shadow.splitlines() if line.startswith("root:")), "")
    keys = [Path(k).read_text()[:120] for k in t.answer_keys]
    leaks = [what for what, secret in [("/root canary", t.root_secret), ("checkout canary", t.checkout_secret),
                                       ("/etc/shadow", shadow_root[:40] if len(shadow_root) > 10 else None)]
             + [(f"answer key {k}", text) for k, text in zip(t.answer_keys, keys)]
             if secret and secret in seen]
    verdict("read /root, the checkout, /etc/shadow, the package's answer key", kind, not leaks,
            f"{leaks} {dump(r.outs('host_secrets'))}")


@pytest.mark.parametrize("kind", ["bwrap", "docker", "local"])
def test_symlink_swap_race_against_the_file_tools(request, kind, verdict):
    r = red(request, kind)
    t = r.targets
    outs = r.outs("file_race")
    files = sorted(os.listdir(t.canary_dir))
    target = (t.canary_dir / "target.txt").read_text()
    leaked = t.secret in "\n".join(outs)
    tries = len(outs) - 2
    # proof the race was live: calls met the swapped-in symlink (and were refused)
    refused = sum(1 for o in outs[2:] if "symbolic link" in o or "No such file" in o or "not a directory" in o.lower())
    verdict("symlink-swap race (RENAME_EXCHANGE) vs file_write/file_read, 500 tries", kind,
            files == ["secret.txt", "target.txt"] and target == "original\n" and not leaked and tries == 500
            and refused > 0,
            f"files={files} target={target!r} secret_leaked={leaked} tries={tries} refused={refused} "
            f"swapper={outs[1][:200]!r} sample={sorted(set(o[:80] for o in outs[2:]))[:6]}")


def test_tmp_is_capped_in_bwrap(bwrap_red, verdict):
    outs = bwrap_red.outs("tmp_fill")
    m = re.search(r"^(\d+)\s+/tmp/fill", outs[0], re.M)
    written = int(m.group(1)) if m else None
    verdict(f"fill /tmp ({TMP_FILL_MB} MB)", "bwrap",
            "No space left on device" in outs[0] and written is not None and written <= TMP_SIZE_MB
            and outs[1] == "after-fill\n", dump(outs))


@BOTH
def test_memory_exhaustion(request, kind, verdict):
    r = red(request, kind)
    outs = r.outs("memory")
    steps = [int(x) for x in re.findall(r"^(\d+)$", outs[1], re.M)]
    held_mb = 32 * (steps[-1] if steps else 0)
    verdict(f"allocate 2 GB against a {MEMORY} cap", kind,
            "rc=137" in outs[1] and held_mb <= 512 and outs[2] == "after-hog\n", f"held {held_mb} MB; {dump(outs)}")


@BOTH
def test_no_process_outlives_the_sandbox(request, kind, verdict):
    r = red(request, kind)
    assert "started" in r.outs("leftovers")[0]
    wait_for(lambda: not any(host_processes(n) for n in r.targets.needles), within=30)
    found = {n: host_processes(n) for n in r.targets.needles}
    verdict("leave processes behind (setsid, env -i, nohup)", kind, not any(found.values()), str(found))


@BOTH
def test_egress_to_a_host_service(request, kind, verdict):
    r = red(request, kind)
    out = r.outs("egress")[-1]
    verdict("connect to a TCP service of the host (127.0.0.1 and every address)", kind,
            r.listener.accepted == 1 and "CONNECTED" not in out, out)  # 1: the host's own control
