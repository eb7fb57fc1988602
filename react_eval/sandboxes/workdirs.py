"""The local sandboxes' working directories: made, and kept for reuse when left empty.

Making a directory and removing it again for every sandbox is not free: on
ext4 each ``mkdir`` searches the inode bitmap past every recently deleted
inode, and a run that creates and deletes one workdir per rollout is exactly
that pattern (it was the costliest system call of a short local sandbox).
So a workdir that a closed sandbox left empty, and that none of its processes
can still reach, is renamed to the next sandbox's fresh random name instead.

A directory is kept only when the sandbox's cgroup was emptied (no process of
it is left to write into the next sandbox's files), it holds nothing, and its
mode, owner, extended attributes (ACLs included) and inode flags (``chattr``:
a jailed agent may still set ``+S``, ``+A``, ``+d``, which new files inherit)
are still those it was made with; anything else is removed as before. The pool removes the kept
directories when its provider closes.
"""

from __future__ import annotations

import errno
import fcntl
import os
import secrets
import stat
import struct
import tempfile

#: the mode mkdtemp gives a new workdir, which a kept one must still have
_MODE = 0o700
_FS_IOC_GETFLAGS = 0x80086601
#: inode flags a filesystem sets on a directory itself (extents, hashed index,
#: inline data, huge file); any other one was set by someone (``chattr``)
_FS_OWN_FLAGS = 0x00080000 | 0x00001000 | 0x10000000 | 0x00040000


class WorkdirPool:
    """Fresh workdirs under one root; an empty closed one is reused by renaming."""

    def __init__(self) -> None:
        #: (path, identity) of kept directories, each checked when it was kept
        self._free: list[tuple[str, tuple[int, int, int]]] = []

    @property
    def kept(self) -> tuple[str, ...]:
        return tuple(path for path, _ in self._free)

    def make(self, root: str, prefix: str) -> str:
        """A new empty directory ``root/prefix<random>`` (mode 0700)."""
        while self._free:
            path, ident = self._free.pop()
            new = os.path.join(root, prefix + secrets.token_hex(6))
            try:
                if _identity(os.lstat(path)) != ident:
                    continue  # not the directory that was checked: not ours to use or remove
                os.rename(path, new)  # the same directory, under a name no sandbox had
                return new
            except OSError:
                continue  # gone (another harness swept it): make a new one
        return tempfile.mkdtemp(prefix=prefix, dir=root)

    def keep(self, path: str) -> bool:
        """Keep ``path`` (a closed sandbox's workdir, none of whose processes
        is left) for reuse if it is an empty directory as it was made; False
        (the caller removes it) otherwise."""
        try:
            st = os.lstat(path)
            if (
                not stat.S_ISDIR(st.st_mode)
                or stat.S_IMODE(st.st_mode) != _MODE
                or st.st_uid != os.geteuid()
                or os.listxattr(path, follow_symlinks=False)  # ACLs, user attributes: not ours
                or _flags(path) & ~_FS_OWN_FLAGS  # sync, noatime, immutable ...: not ours either
            ):
                return False
            with os.scandir(path) as entries:
                if next(entries, None) is not None:
                    return False
        except OSError:
            return False
        self._free.append((path, _identity(st)))
        return True

    def remove_all(self) -> None:
        """Remove every kept directory."""
        free, self._free = self._free, []
        for path, _ in free:
            _discard(path)


def _identity(st: os.stat_result) -> tuple[int, int, int]:
    """Which directory this is: an inode number alone may be reused at once."""
    return st.st_dev, st.st_ino, st.st_ctime_ns


def _flags(path: str) -> int:
    """The inode flags (``lsattr``) of directory ``path``; 0 where the filesystem has none."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        return struct.unpack("i", fcntl.ioctl(fd, _FS_IOC_GETFLAGS, bytes(8))[:4])[0]
    except OSError as exc:
        if exc.errno in (errno.ENOTTY, errno.EOPNOTSUPP, errno.EINVAL):
            return 0  # no flags here: none can have been set
        raise
    finally:
        os.close(fd)


def _discard(path: str) -> None:
    try:
        os.rmdir(path)
    except OSError:
        pass
