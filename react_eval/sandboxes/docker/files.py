"""Files of a Docker sandbox through the engine's archive API: in-memory tar
streams in and out (content never travels in a command line), sizes checked with
the archive stat (``HEAD``) before any content is fetched, and placed files owned
by the agent's user."""

from __future__ import annotations

import base64
import io
import json
import os
import posixpath
import tarfile
import tempfile
import time
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, Awaitable, Callable, TypeVar

import anyio
import anyio.to_thread

from react_eval.sandboxes.base import FileInfo, FileTooLargeError, SandboxInfo, SandboxLimits
from react_eval.sandboxes.docker.client import EngineError
from react_eval.sandboxes.docker.config import DockerSandboxConfig
from react_eval.sandboxes.docker.local_api import BodyTooLarge, Reply
from react_eval.types import SandboxError, SandboxSpec

if TYPE_CHECKING:
    from react_eval.sandboxes.docker.control import ControlShell
    from react_eval.sandboxes.docker.engines import Engine

_GO_MODE_DIR = 1 << 31  # Go's os.ModeDir, as the archive stat header reports modes
_GO_MODE_SYMLINK = 1 << 27
_MAX_LINKS = 40
T = TypeVar("T")


class ContainerGone(Exception):
    """Raised inside a file operation when the container no longer exists."""


def _path_stat(reply: Reply) -> dict[str, Any]:
    """The archive stat the engine sends in a header (base64 of JSON)."""
    header = reply.headers.get("x-docker-container-path-stat")
    return json.loads(base64.b64decode(header)) if header else {}


def _owned(info: tarfile.TarInfo, owner: tuple[int, int]) -> tarfile.TarInfo:
    """``info`` owned by ``owner`` (uid, gid): the engine extracts archives as
    root and keeps the numeric owner of each entry."""
    info.uid, info.gid = owner
    info.uname = info.gname = ""
    return info


def _add_dirs(tf: tarfile.TarFile, dirs: list[str], owner: tuple[int, int]) -> None:
    """Directory entries for the missing parents of a member, so that they are
    the agent's (the engine would otherwise create them as root)."""
    for name in dirs:
        info = tarfile.TarInfo(name)
        info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, int(time.time())
        tf.addfile(_owned(info, owner))


def _tar_file(member: str, data: bytes, mode: int, owner: tuple[int, int] = (0, 0),
              dirs: list[str] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        _add_dirs(tf, dirs or [], owner)
        info = tarfile.TarInfo(member)
        info.size = len(data)
        info.mode = mode & 0o7777
        info.mtime = int(time.time())
        tf.addfile(_owned(info, owner), io.BytesIO(data))
    return buf.getvalue()


def _dir_entry(name: str, owner: tuple[int, int]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        _add_dirs(tf, [name], owner)
    return buf.getvalue()


def is_root(user: str | None) -> bool:
    return (user or "root").split(":")[0] in ("", "root", "0")


@dataclass
class _PathStat:
    exists: bool
    path: str  # after following symbolic links of the last component
    is_dir: bool = False
    size: int = 0
    mode: int = 0o644



class ArchiveFiles:
    """The file half of :class:`~react_eval.sandboxes.docker.sandbox.DockerSandbox`."""

    engine: Engine
    container_id: str
    workdir: str
    config: DockerSandboxConfig
    limits: SandboxLimits
    info: SandboxInfo
    #: (uid, gid) that files placed through the archive API get: the agent's
    owner: tuple[int, int]
    # provided by the sandbox
    _check_alive: Callable[[], Awaitable[None]]
    _gone_message: Callable[[str], Awaitable[str]]
    _put_archive: Callable[[str, bytes | IO[bytes]], Awaitable[None]]
    _state: Callable[[], Awaitable[dict[str, Any] | None]]
    _control: ControlShell

    def resolve(self, path: str) -> str:
        """Absolute in-container path: relative paths are under the workdir;
        absolute ones are allowed anywhere (the container is the boundary)."""
        if not isinstance(path, str) or "\x00" in path:
            raise PermissionError(f"invalid path {path!r}")
        joined = path if path.startswith("/") else posixpath.join(self.workdir, path)
        normal = posixpath.normpath(joined)
        return "/" + normal.lstrip("/")

    async def _archive_head(self, path: str) -> Reply:
        return await self.engine.send("HEAD", f"/containers/{self.container_id}/archive", params={"path": path})

    async def _stat(self, path: str) -> _PathStat:
        """Archive stat of ``path``, following symbolic links."""
        current = path
        for _ in range(_MAX_LINKS):
            res = await self._archive_head(current)
            if res.status == 404:  # no such path (the container was checked just before)
                return _PathStat(False, current)
            if res.status >= 400:
                if await self._state() is None:
                    raise ContainerGone()
                # a HEAD error has no body; the usual cause is a file used as a directory
                parent = posixpath.dirname(current)
                while parent not in ("/", ""):
                    up = await self._archive_head(parent)
                    if up.status == 200:
                        if not _path_stat(up).get("mode", 0) & (_GO_MODE_DIR | _GO_MODE_SYMLINK):
                            raise NotADirectoryError(20, "Not a directory", path)
                        break
                    parent = posixpath.dirname(parent)
                raise OSError(f"cannot stat {path}: docker answered {res.status}")
            info = _path_stat(res)
            mode = int(info.get("mode", 0))
            if mode & _GO_MODE_SYMLINK and info.get("linkTarget"):
                target = info["linkTarget"]
                current = posixpath.normpath(
                    target if target.startswith("/") else posixpath.join(posixpath.dirname(current), target)
                )
                continue
            is_dir = bool(mode & _GO_MODE_DIR)
            return _PathStat(True, current, is_dir=is_dir, size=0 if is_dir else int(info.get("size", 0)),
                             mode=mode & 0o7777)
        raise OSError(40, "Too many levels of symbolic links", path)  # ELOOP

    async def _file_op(self, op: Callable[[], Awaitable[T]]) -> T:
        """A file operation on a running container (checked first)."""
        await self._check_alive()
        try:
            return await op()
        except ContainerGone:
            raise SandboxError(await self._gone_message("the sandbox container disappeared")) from None
        except EngineError as exc:
            message = await self._gone_message("")
            if message:
                raise SandboxError(message) from exc
            raise OSError(f"docker archive error: {exc.explanation}") from exc

    async def stat(self, path: str) -> FileInfo:
        full = self.resolve(path)
        st = await self._file_op(lambda: self._stat(full))
        return FileInfo(exists=st.exists, is_dir=st.is_dir, size=st.size)

    async def read_file(self, path: str, max_bytes: int | None = None) -> bytes:
        full = self.resolve(path)
        limit = self.limits.max_read_bytes if max_bytes is None else max_bytes

        async def read() -> bytes:
            st = await self._stat(full)
            if not st.exists:
                raise FileNotFoundError(2, "No such file or directory", path)
            if st.is_dir:
                raise IsADirectoryError(21, "Is a directory", path)
            if st.size > limit:
                raise FileTooLargeError(path, st.size, limit)
            try:  # the file plus tar headers (PAX names included); it may have grown since the stat
                data = await self.engine.http("GET", f"/containers/{self.container_id}/archive",
                                              params={"path": st.path}, limit=limit + 64 * 1024)
            except BodyTooLarge as exc:
                raise FileTooLargeError(path, int(exc.args[0]), limit) from None
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tf:
                member = tf.next()
                if member is None or not member.isfile():
                    raise OSError(f"{path} is not a regular file")
                if member.size > limit:
                    raise FileTooLargeError(path, member.size, limit)
                f = tf.extractfile(member)
                assert f is not None
                return f.read()

        return await self._file_op(read)

    async def write_file(self, path: str, data: bytes, mode: int | None = None) -> None:
        full = self.resolve(path)

        async def write() -> None:
            st = await self._stat(full)
            if st.is_dir:  # the archive API would replace the directory with the file
                raise IsADirectoryError(21, "Is a directory", path)
            perms = mode if mode is not None else (st.mode if st.exists else 0o644)
            if not st.path.lstrip("/"):
                raise IsADirectoryError(21, "Is a directory", path)
            where, member = self._archive_target(st.path)
            dirs = [] if st.exists else await self._missing_dirs(where, member)
            try:
                await self._put_archive(where, _tar_file(member, data, perms, self.owner, dirs))
            except EngineError as exc:
                if await self._state() is None:
                    raise ContainerGone() from exc
                text = exc.explanation
                if "not a directory" in text:
                    raise NotADirectoryError(20, "A component of the path is not a directory", path) from exc
                if "read-only" in text or "permission denied" in text.lower():
                    raise PermissionError(13, "Permission denied", path) from exc
                raise OSError(f"cannot write {path}: {text}") from exc

        await self._file_op(write)

    async def place(self, spec: SandboxSpec) -> None:
        """Copy the task's repository and files into the workdir (before its setup command)."""
        if spec.repo_dir:
            if not os.path.isdir(spec.repo_dir):
                raise SandboxError(f"repo_dir {spec.repo_dir!r} is not a directory")
            await self.put_tree(spec.repo_dir)
        if spec.files:
            await self.put_files(spec.files)

    async def put_tree(self, host_dir: str) -> None:
        """Copy the contents of ``host_dir`` into the workdir (modes, symlinks
        and dot-files such as .git preserved), streamed from a spooled tar."""
        where = posixpath.normpath(self.workdir)

        def build() -> Any:
            spool = tempfile.SpooledTemporaryFile(max_size=64 << 20)
            with tarfile.open(fileobj=spool, mode="w", format=tarfile.PAX_FORMAT) as tf:
                for name in sorted(os.listdir(host_dir)):
                    tf.add(os.path.join(host_dir, name), arcname=name, recursive=True,
                           filter=lambda info: _owned(info, self.owner))
            spool.seek(0)
            return spool

        spool = await anyio.to_thread.run_sync(build, limiter=self.engine.limiter)
        try:
            await self._file_op(lambda: self._put_archive(where, spool))
        finally:
            spool.close()

    async def put_files(self, files: dict[str, str]) -> None:
        """Place text files (paths relative to the workdir) in one archive."""
        targets = [self._archive_target(self.resolve(rel)) for rel in files]

        async def build() -> dict[str, bytes]:
            by_root: dict[str, io.BytesIO] = {}
            archives: dict[str, tarfile.TarFile] = {}
            made: set[tuple[str, str]] = set()
            for (where, member), content in zip(targets, files.values()):
                if where not in archives:
                    by_root[where] = io.BytesIO()
                    archives[where] = tarfile.open(fileobj=by_root[where], mode="w", format=tarfile.PAX_FORMAT)
                dirs = [d for d in await self._missing_dirs(where, member, made) if (where, d) not in made]
                made.update((where, d) for d in dirs)
                _add_dirs(archives[where], dirs, self.owner)
                data = content.encode("utf-8")
                info = tarfile.TarInfo(member)
                info.size, info.mode, info.mtime = len(data), 0o644, int(time.time())
                archives[where].addfile(_owned(info, self.owner), io.BytesIO(data))
            for tf in archives.values():
                tf.close()
            return {where: buf.getvalue() for where, buf in by_root.items()}

        for where, payload in (await self._file_op(build)).items():
            await self._file_op(lambda w=where, p=payload: self._put_archive(w, p))

    async def _missing_dirs(self, where: str, member: str, known: set[tuple[str, str]] | None = None) -> list[str]:
        """The parent directories of ``member`` (under ``where``) that do not exist
        yet, outermost first. Existing ones are left out: a directory entry
        would change their owner and mode."""
        if self.owner == (0, 0):
            return []  # the engine creates missing parents as root: right already
        missing: list[str] = []
        parent = posixpath.dirname(member)
        while parent and (where, parent) not in (known or set()):
            if (await self._stat(posixpath.join(where, parent))).exists:
                break
            missing.append(parent)
            parent = posixpath.dirname(parent)
        return missing[::-1]

    async def _take_ownership(self, user: str | None) -> None:
        """Files placed through the archive API get the numeric owner the
        container's processes run as (the control shell, started first, reports
        it: the engine resolved ``user`` against the image's /etc/passwd as it
        started them); a non-root agent is given its workdir unless the image
        made it the agent's already."""
        if is_root(user):
            return
        control = self._control
        if control.user is None:
            raise SandboxError(f"the control shell did not report the ids of user {user!r}")
        self.owner = control.user
        parent, base = posixpath.split(self.workdir)
        if base and not self.config.read_only and not control.owns_workdir:
            # (the volume of a read-only one copies the image's owner; just started: no liveness check first)
            try:
                await self._put_archive(parent or "/", _dir_entry(base, self.owner))
            except EngineError as exc:
                raise SandboxError(f"cannot give the workdir {self.workdir} to user {user!r}: "
                                   f"{exc.explanation}") from exc

    def _archive_target(self, path: str) -> tuple[str, str]:
        """(directory to extract at, member name) for absolute in-container ``path``:
        the workdir when the path is inside it, since a read-only root file system
        refuses any extraction at ``/`` (the workdir is then a volume)."""
        workdir = posixpath.normpath(self.workdir)
        if path.startswith(workdir.rstrip("/") + "/"):
            return workdir, path[len(workdir.rstrip("/")) + 1 :]
        return "/", path.lstrip("/")

