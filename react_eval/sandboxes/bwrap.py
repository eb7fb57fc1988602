"""The bubblewrap command line that jails a local sandbox's processes.

Built to hold with the harness running as root:

* **No privilege.** A new user namespace where the agent is uid/gid 1000, every
  capability dropped (``--cap-drop ALL``), nested user namespaces disabled, a
  new session (no ``TIOCSTI`` into the harness' terminal). Mounts made by the
  host are locked in a child user namespace, so a read-only bind cannot be
  remounted writable.
* **Every namespace unshared**: pid (``/proc/1`` is the sandbox's own init, and
  every process dies with it), net (only a private loopback: no host service,
  no abstract unix socket of the host), ipc, uts, cgroup.
* **Almost nothing of the host.** The root is an empty tmpfs; only the system
  directories (``/usr``, ``/bin``, ``/sbin``, ``/lib*``, ``/etc``) are bound,
  read-only. ``/root``, ``/home``, ``/run`` (and its sockets: Docker's,
  D-Bus'), ``/var``, ``/opt``, ``/srv``, the project checkout and ``/sys`` are
  absent. In ``/etc`` every entry other users may not read (``shadow``,
  ``gshadow``, TLS and SSH private keys, Docker's key...) is masked, and so is
  the harness' own package (its answer keys) wherever it is installed. The
  workdir is the only writable host directory; ``/tmp`` is a private tmpfs of
  a fixed size. ``ro_binds`` adds host paths a task needs (a provisioned
  interpreter), read-only at the same path.

The kernel is shared: this is as strong as the kernel's namespaces, weaker
than a VM.
"""

from __future__ import annotations

import functools
import os
import stat

#: system directories bound read-only when present (symlinks are recreated as symlinks)
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")
#: the agent's uid and gid inside the sandbox
SANDBOX_UID = 1000
#: PATH inside the jail (the harness' own PATH may name directories the jail hides)
SANDBOX_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@functools.lru_cache(maxsize=1)
def etc_secrets() -> tuple[str, ...]:
    """Entries of ``/etc`` that other users cannot read (files without o+r,
    directories without o+rx): shadow files, private keys, daemon secrets."""
    found: list[str] = []
    for top, dirs, files in os.walk("/etc", followlinks=False):
        for name in list(dirs):
            path = os.path.join(top, name)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode) and (st.st_mode & 0o005) != 0o005:
                found.append(path)
                dirs.remove(name)  # masked whole
        for name in files:
            path = os.path.join(top, name)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode) and not st.st_mode & 0o004:
                found.append(path)
    return tuple(sorted(found))


@functools.lru_cache(maxsize=1)
def harness_paths() -> tuple[str, ...]:
    """Where the harness' own package lives (with its answer keys), and its
    virtualenv when it has one: masked if they fall under a bound directory."""
    import sys

    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # react_eval/, this file's grandparent
    paths = {os.path.realpath(package)}
    if sys.prefix != sys.base_prefix:
        paths.add(os.path.realpath(sys.prefix))
    return tuple(sorted(paths))


@functools.lru_cache(maxsize=1)
def supports_tmpfs_size() -> bool:
    """Whether this bwrap has ``--size`` (0.6+; Debian 12 ships 0.8). Without it
    /tmp is bounded only by the sandbox's memory cgroup."""
    import subprocess

    try:
        out = subprocess.run(["bwrap", "--help"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return False
    return "--size" in out.stdout + out.stderr


def _under(path: str, roots: list[str] | tuple[str, ...]) -> bool:
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def bwrap_argv(
    inner: list[str],
    *,
    workdir: str,
    cwd: str | None = None,
    tmp_size: int | None = None,
    ro_binds: list[str] | tuple[str, ...] = (),
) -> list[str]:
    """``inner`` run inside a fresh jail whose only writable host path is ``workdir``."""
    flags, bound = _jail_flags(tmp_size, tuple(ro_binds))
    argv = list(flags)
    for path in harness_paths():
        if _under(path, bound) and not _under(workdir, [path]):
            argv += ["--tmpfs", path]
    argv += ["--bind", workdir, workdir, "--chdir", cwd or workdir, "--", *inner]
    return argv


@functools.lru_cache(maxsize=16)
def _jail_flags(tmp_size: int | None, ro_binds: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The flags every jail of these settings shares (the host's system
    directories looked at once per process, not for every sandbox), and the
    host paths they bind read-only."""
    argv = [
        "bwrap",
        "--unshare-all",
        "--unshare-user",
        "--disable-userns",
        "--uid", str(SANDBOX_UID),
        "--gid", str(SANDBOX_UID),
        "--hostname", "sandbox",
        "--cap-drop", "ALL",
        "--new-session",
        "--die-with-parent",
    ]  # fmt: skip
    bound: list[str] = []
    for path in SYSTEM_DIRS:
        if os.path.islink(path):
            argv += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            argv += ["--ro-bind", path, path]
            bound.append(path)
    argv += ["--proc", "/proc", "--dev", "/dev"]
    if tmp_size and supports_tmpfs_size():
        argv += ["--size", str(tmp_size)]
    argv += ["--perms", "1777", "--tmpfs", "/tmp", "--dir", "/var", "--symlink", "../tmp", "/var/tmp"]
    for path in ro_binds:
        argv += ["--ro-bind", path, path]
        bound.append(path)
    for path in etc_secrets():
        argv += ["--tmpfs", path] if os.path.isdir(path) else ["--ro-bind", "/dev/null", path]
    return tuple(argv), tuple(bound)  # cached: shared by every caller, so immutable
