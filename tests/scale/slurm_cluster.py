"""A one-node SLURM cluster started by the tests: munged, slurmctld and slurmd from
Debian's packages (tools/ensure_slurm.sh), with a config, munge key and state in a
temporary directory. No systemd and no cgroups are needed: processes are tracked
with proctrack/linuxproc and tasks with task/none. Every daemon runs in the
foreground as a child of this process, so stopping it is killing our own pids."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SBIN = "/usr/sbin"


class SlurmUnavailable(RuntimeError):
    pass


def ensure_installed() -> None:
    proc = subprocess.run(["bash", str(REPO / "tools" / "ensure_slurm.sh")], capture_output=True, text=True,
                          timeout=900)
    if proc.returncode != 0:
        raise SlurmUnavailable(f"tools/ensure_slurm.sh failed: {proc.stderr.strip()[-500:]}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SlurmCluster:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="re-slurm-", dir="/tmp"))  # short: socket paths
        self.conf = self.dir / "slurm.conf"
        self.procs: list[subprocess.Popen] = []
        self.env = {**os.environ, "SLURM_CONF": str(self.conf), "PATH": f"{os.environ.get('PATH', '')}:{SBIN}"}

    def start(self) -> "SlurmCluster":
        d = self.dir
        for sub in ("munge", "state", "spool", "log"):
            (d / sub).mkdir()
        key = d / "munge" / "key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o600)
        sock = d / "munge" / "sock"
        self._spawn([f"{SBIN}/munged", "--foreground", "--force", f"--key-file={key}", f"--socket={sock}",
                     f"--pid-file={d}/munge/pid", f"--log-file={d}/munge/log", f"--seed-file={d}/munge/seed"])
        self._wait(lambda: sock.exists(), "munged did not create its socket")
        host = socket.gethostname()
        cpus = os.cpu_count() or 1
        self.conf.write_text("\n".join([
            "ClusterName=reacteval",
            f"SlurmctldHost={host}(127.0.0.1)",
            f"SlurmctldPort={_free_port()}",
            f"SlurmdPort={_free_port()}",
            "SlurmUser=root",
            "SlurmdUser=root",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={sock}",
            f"StateSaveLocation={d}/state",
            f"SlurmdSpoolDir={d}/spool",
            f"SlurmctldPidFile={d}/slurmctld.pid",
            f"SlurmdPidFile={d}/slurmd.pid",
            f"SlurmctldLogFile={d}/log/slurmctld.log",
            f"SlurmdLogFile={d}/log/slurmd.log",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core",
            "MpiDefault=none",
            "ReturnToService=2",
            "MinJobAge=3600",  # finished jobs stay visible to scontrol for the test
            f"NodeName=rnode NodeHostname={host} NodeAddr=127.0.0.1 CPUs={cpus} State=UNKNOWN",
            "PartitionName=debug Nodes=rnode Default=YES MaxTime=INFINITE State=UP",
        ]) + "\n")
        self._spawn([f"{SBIN}/slurmctld", "-D", "-c", "-i", "-f", str(self.conf)])
        self._spawn([f"{SBIN}/slurmd", "-D", "-N", "rnode", "-f", str(self.conf)])
        self._wait(self._node_idle, "the SLURM node did not become idle", timeout=60)
        return self

    def _spawn(self, command: list[str]) -> None:
        log = open(self.dir / "log" / (Path(command[0]).name + ".out"), "wb")
        self.procs.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=self.env))
        log.close()

    def _wait(self, ok, what: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ok():
                return
            dead = [p.args[0] for p in self.procs if p.poll() is not None]
            if dead:
                raise SlurmUnavailable(f"{what}: {dead} exited; logs in {self.dir / 'log'}")
            time.sleep(0.3)
        raise SlurmUnavailable(f"{what} within {timeout:g} s; logs in {self.dir / 'log'}")

    def _node_idle(self) -> bool:
        proc = self.run(["sinfo", "-h", "-o", "%t"], check=False)
        return proc.returncode == 0 and proc.stdout.strip() == "idle"

    def run(self, command: list[str], check: bool = True, **kwargs) -> subprocess.CompletedProcess:
        return subprocess.run(command, capture_output=True, text=True, env={**self.env, **kwargs.pop("env", {})},
                              check=check, timeout=kwargs.pop("timeout", 120), **kwargs)

    def job_state(self, job_id: str) -> dict[str, str]:
        """Each (array) job's id -> state, e.g. {"5_0": "COMPLETED", ...}."""
        out = self.run(["scontrol", "-o", "show", "job", job_id]).stdout
        states = {}
        for line in out.splitlines():
            fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
            jid = (f"{fields['ArrayJobId']}_{fields['ArrayTaskId']}" if "ArrayTaskId" in fields
                   else fields["JobId"])
            states[jid] = fields["JobState"]
        return states

    def wait_done(self, job_id: str, timeout: float = 600) -> dict[str, str]:
        final = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY"}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            states = self.job_state(job_id)
            if states and all(s in final for s in states.values()):
                return states
            time.sleep(1)
        raise TimeoutError(f"job {job_id} not done after {timeout:g} s: {self.job_state(job_id)}")

    def stop(self) -> list[str]:
        """Cancel what still runs, stop the daemons; returns the ones that needed SIGKILL."""
        self.run(["scancel", "--user=root"], check=False)
        killed = []
        for proc in reversed(self.procs):
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                killed.append(str(proc.args[0]))
        shutil.rmtree(self.dir, ignore_errors=True)
        return killed
