"""A Docker engine of the test's own: its own socket, data root, exec root,
pidfile and containerd namespace, so a test may stop, kill or restart it
without touching the engine everyone else uses (on a developer's workstation,
their own engine and containers).

    engine = PrivateDockerd(tmp_path / "engine").start()
    engine.load_image("react-eval-sandbox:latest")    # copied from the shared engine
    ... DOCKER_HOST=engine.host ...
    engine.stop()                                     # SIGTERM: stops its containers
    engine.start()                                    # same state, a new process
    engine.close()                                    # stopped and removed

No network is set up (``--bridge=none``, no iptables rules): sandboxes run with
``network: none`` anyway. The engine runs in a network namespace of its own
(``unshare --net``): a dockerd started with ``--bridge=none`` deletes the
host's ``docker0``, which would cut the shared engine's bridge network. The ``private_dockerd`` fixture gives one per test
and cleans it up; it needs root and the ``dockerd`` binary, and skips (or
fails, with REACT_EVAL_REQUIRE_SANDBOXES=1) when they are missing.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest


class PrivateDockerdError(RuntimeError):
    pass


class PrivateDockerd:
    def __init__(self, root: Path, *, storage_driver: str | None = None):
        self.root = root
        self.name = f"re-test-{uuid.uuid4().hex[:8]}"
        self.socket = root / "docker.sock"
        self.pidfile = root / "docker.pid"
        self.log = root / "dockerd.log"
        self.storage_driver = storage_driver
        self.process: subprocess.Popen | None = None

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    def flags(self) -> list[str]:
        config = self.root / "daemon.json"
        if not config.exists():  # never read /etc/docker/daemon.json (it may set hosts of the shared engine)
            config.write_text(json.dumps({}))
        flags = [
            f"--host={self.host}", f"--data-root={self.root / 'data'}", f"--exec-root={self.root / 'exec'}",
            f"--pidfile={self.pidfile}", f"--config-file={config}",
            "--bridge=none", "--iptables=false", "--ip6tables=false",
            f"--containerd-namespace={self.name}", f"--containerd-plugins-namespace={self.name}-plugins",
        ]
        if self.storage_driver:
            flags.append(f"--storage-driver={self.storage_driver}")
        return flags

    def docker(self, *args: str, timeout: float = 120, **kw) -> subprocess.CompletedProcess:
        """The docker CLI against this engine."""
        return subprocess.run(["docker", "--host", self.host, *args], capture_output=True, text=True,
                              timeout=timeout, **kw)

    def answers(self) -> bool:
        try:
            return self.docker("version", "--format", "{{.Server.Version}}", timeout=20).returncode == 0
        except subprocess.TimeoutExpired:
            return False

    def start(self, timeout: float = 120) -> "PrivateDockerd":
        if self.process is not None and self.process.poll() is None:
            raise PrivateDockerdError("already running")
        self.root.mkdir(parents=True, exist_ok=True)
        dockerd = shutil.which("dockerd") or "/usr/sbin/dockerd"
        with open(self.log, "ab") as log:
            # its own network namespace: dockerd --bridge=none removes docker0 where it runs
            unshare = shutil.which("unshare") or "/usr/bin/unshare"
            self.process = subprocess.Popen([unshare, "--net", dockerd, *self.flags()], stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise PrivateDockerdError(f"dockerd exited ({self.process.returncode}): {self.log_tail()}")
            if self.socket.exists() and self.answers():
                return self
            time.sleep(0.2)
        self.stop()
        raise PrivateDockerdError(f"dockerd did not answer within {timeout:g}s: {self.log_tail()}")

    def pid(self) -> int | None:
        return self.process.pid if self.process is not None and self.process.poll() is None else None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 120) -> None:
        """Signal the engine and wait for it (and its managed containerd) to exit."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(sig)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(30)

    def load_image(self, image: str, source_host: str | None = None) -> None:
        """Copy ``image`` from another engine (default: the shared one) into this one."""
        env = {k: v for k, v in os.environ.items() if k != "DOCKER_HOST"}
        if source_host:
            env["DOCKER_HOST"] = source_host
        save = subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE, env=env)
        load = subprocess.run(["docker", "--host", self.host, "load"], stdin=save.stdout, capture_output=True,
                              text=True, timeout=600)
        save.stdout.close()
        if save.wait(600) != 0 or load.returncode != 0:
            raise PrivateDockerdError(f"could not copy {image} into the private engine: {load.stderr.strip()}")

    def close(self) -> None:
        """Remove every container, stop the engine, delete its state."""
        if self.pid() is not None:
            ids = self.docker("ps", "-aq").stdout.split()
            if ids:
                self.docker("rm", "-f", *ids)
        self.stop()
        for mount in reversed(self._mounts_under_root()):
            subprocess.run(["umount", "-l", mount], capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)

    def _mounts_under_root(self) -> list[str]:
        root = str(self.root.resolve())
        try:
            lines = Path("/proc/self/mountinfo").read_text().splitlines()
        except OSError:
            return []
        return [ln.split()[4] for ln in lines if ln.split()[4].startswith(root + "/")]

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def host_processes(needle: str) -> list[int]:
    """Pids of this machine whose command line holds ``needle`` (containers' processes included)."""
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if needle.encode() in f.read():
                        found.append(int(pid))
            except OSError:
                pass
    return found


def shared_engine_pid() -> int | None:
    """The shared engine's pid (a test with private engines must leave that one running as it was)."""
    try:
        return int(Path("/var/run/docker.pid").read_text().strip())
    except (OSError, ValueError):
        return None


def _unavailable(reason: str) -> None:
    if os.environ.get("REACT_EVAL_REQUIRE_SANDBOXES") == "1":
        pytest.fail(f"{reason} (and REACT_EVAL_REQUIRE_SANDBOXES=1)", pytrace=False)
    pytest.skip(reason)


def start_private_engine(tmp_path_factory) -> PrivateDockerd:
    """A started private engine (no images); skips (or fails) where one cannot be had.
    The caller closes it."""
    if os.geteuid() != 0:
        _unavailable("a private dockerd needs root")
    if not (shutil.which("dockerd") or os.path.exists("/usr/sbin/dockerd")) or not shutil.which("docker"):
        _unavailable("dockerd/docker not installed (sandboxes/ensure_docker.sh installs them)")
    # a short path: the socket's must fit in 108 bytes
    engine = PrivateDockerd(Path(tmp_path_factory.mktemp("dockerd", numbered=True)))
    try:
        engine.start()
    except PrivateDockerdError as exc:
        engine.close()
        _unavailable(f"cannot start a private dockerd: {exc}")
    return engine


@pytest.fixture
def private_dockerd(tmp_path_factory) -> Iterator[PrivateDockerd]:
    """A started private engine (no images), removed after the test."""
    engine = start_private_engine(tmp_path_factory)
    try:
        yield engine
    finally:
        engine.close()
