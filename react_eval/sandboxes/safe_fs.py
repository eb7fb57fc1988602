"""File operations confined to one directory that a concurrent symlink swap cannot escape.

The harness runs the file tools itself (as root, in CI), in a directory the
agent can change while a call is in flight. Checking a path with ``realpath``
and then opening it is a race: between the two, the agent can swap a directory
for a symlink (``renameat2(RENAME_EXCHANGE)``) and the open lands anywhere on
the host. So every operation here resolves and opens in one step relative to a
file descriptor of the root directory:

* ``openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)``
  (Linux >= 5.6) when the kernel has it, called through ``ctypes``;
* otherwise a walk that opens one component at a time with ``O_NOFOLLOW``
  relative to the previous one's descriptor.

Either way no symlink is ever followed (a path through one is refused with a
:class:`SymlinkRefused`, a ``PermissionError``), ``..`` is refused, and the
final file is checked with ``fstat`` on the descriptor actually opened (a FIFO
or device is refused, never blocked on). Creations (files, parent directories)
happen relative to descriptors too.
"""

from __future__ import annotations

import ctypes
import errno
import os
import stat

O_PATH = getattr(os, "O_PATH", 0o10000000)
_RESOLVE_NO_MAGICLINKS = 0x02
_RESOLVE_NO_SYMLINKS = 0x04
_RESOLVE_BENEATH = 0x08
_SYS_OPENAT2 = 437  # the same number on every architecture (generic syscall table)


class SymlinkRefused(PermissionError):
    """The path goes through a symbolic link (or ``..``): file tools do not follow them."""


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


try:
    _libc = ctypes.CDLL(None, use_errno=True)
    _libc.syscall.restype = ctypes.c_long
except (OSError, AttributeError):  # pragma: no cover - not glibc/Linux
    _libc = None

#: whether openat2 works here (decided on first use)
_HAVE_OPENAT2: bool | None = None if _libc is not None else False


def _openat2(dirfd: int, path: str, flags: int, mode: int) -> int:
    how = _OpenHow(flags | os.O_CLOEXEC, mode if flags & os.O_CREAT else 0,
                   _RESOLVE_BENEATH | _RESOLVE_NO_SYMLINKS | _RESOLVE_NO_MAGICLINKS)
    raw = os.fsencode(path)
    for _ in range(16):  # EAGAIN: a rename raced the lookup; the kernel asks to retry
        fd = _libc.syscall(ctypes.c_long(_SYS_OPENAT2), ctypes.c_int(dirfd), ctypes.c_char_p(raw),
                           ctypes.byref(how), ctypes.c_size_t(ctypes.sizeof(how)))
        if fd >= 0:
            return fd
        err = ctypes.get_errno()
        if err != errno.EAGAIN:
            break
    raise OSError(err, os.strerror(err), path)


def have_openat2() -> bool:
    global _HAVE_OPENAT2
    if _HAVE_OPENAT2 is None:
        try:
            os.close(_openat2(os.open("/", O_PATH | os.O_CLOEXEC), ".", O_PATH, 0))
            _HAVE_OPENAT2 = True
        except OSError:
            _HAVE_OPENAT2 = False
    return _HAVE_OPENAT2


def split_relative(rel: str) -> list[str]:
    """Components of a path relative to the root; ``..`` or an absolute path is refused."""
    if "\x00" in rel or os.path.isabs(rel):
        raise PermissionError(errno.EPERM, "not a path relative to the sandbox directory", rel)
    parts = [p for p in rel.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise SymlinkRefused(errno.EPERM, "'..' is not allowed here", rel)
    return parts


def _refusal(exc: OSError, rel: str) -> OSError:
    """ELOOP/EXDEV from a no-follow open as a message the model can act on."""
    if exc.errno in (errno.ELOOP, errno.EXDEV):
        return SymlinkRefused(
            errno.EPERM,
            "the path goes through a symbolic link, which the file tools never follow "
            "(use bash to work with links)",
            rel,
        )
    if exc.filename is None:
        exc.filename = rel
    return exc


def _is_link(name: str, dir_fd: int) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


class Beneath:
    """Race-free file operations under one directory, by descriptor."""

    def __init__(self, root: str):
        self.root = root
        self._fd: int | None = os.open(root, O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    @property
    def fd(self) -> int:
        if self._fd is None:
            raise OSError(errno.EBADF, "the sandbox directory is closed", self.root)
        return self._fd

    # ---- lookups ----

    def _walk(self, parts: list[str], *, create: bool) -> int:
        """A descriptor of the directory ``parts`` (created when missing and ``create``)."""
        fd = os.dup(self.fd)
        try:
            for name in parts:
                try:
                    nxt = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
                except OSError as exc:
                    if exc.errno in (errno.ENOTDIR, errno.ELOOP) and _is_link(name, fd):
                        raise OSError(errno.ELOOP, "a symbolic link", name) from None
                    if not isinstance(exc, FileNotFoundError):
                        raise
                    if not create:
                        raise
                    try:
                        os.mkdir(name, 0o755, dir_fd=fd)
                    except FileExistsError:
                        pass  # made concurrently: opened (without following) below
                    nxt = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
                os.close(fd)
                fd = nxt
            return fd
        except BaseException:
            os.close(fd)
            raise

    def _parent(self, rel: str, *, create: bool) -> tuple[list[str], int]:
        """The components of file ``rel`` and a descriptor of its directory."""
        parts = split_relative(rel)
        if not parts:
            raise IsADirectoryError(errno.EISDIR, "Is a directory", rel)
        try:
            return parts, self._walk(parts[:-1], create=create)
        except OSError as exc:
            raise _refusal(exc, rel) from None

    def open(self, rel: str, flags: int, mode: int = 0o644) -> int:
        """``openat`` of ``rel`` that follows no symlink and stays beneath the root."""
        parts = split_relative(rel)
        try:
            if not parts:
                return os.open(".", flags | os.O_CLOEXEC, dir_fd=self.fd)
            if have_openat2():
                return _openat2(self.fd, "/".join(parts), flags, mode)
            parent = self._walk(parts[:-1], create=False)
            try:
                return os.open(parts[-1], flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=parent)
            finally:
                os.close(parent)
        except OSError as exc:
            raise _refusal(exc, rel) from None

    # ---- operations ----

    def stat(self, rel: str) -> os.stat_result | None:
        """``lstat``-like facts of ``rel`` (None when it does not exist)."""
        try:
            fd = self.open(rel, O_PATH | os.O_NOFOLLOW)
        except FileNotFoundError:
            return None
        try:
            return os.fstat(fd)
        finally:
            os.close(fd)

    def read(self, rel: str, limit: int, too_large) -> bytes:
        """The content of regular file ``rel``; ``too_large(size)`` is raised past ``limit``."""
        fd = self.open(rel, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
        try:
            st = os.fstat(fd)
            if stat.S_ISDIR(st.st_mode):
                raise IsADirectoryError(errno.EISDIR, "Is a directory", rel)
            if not stat.S_ISREG(st.st_mode):
                raise PermissionError(errno.EPERM, "not a regular file", rel)
            if st.st_size > limit:
                raise too_large(st.st_size)
            chunks, got = [], 0
            while got <= limit:
                chunk = os.read(fd, min(1 << 20, limit + 1 - got))
                if not chunk:
                    break
                chunks.append(chunk)
                got += len(chunk)
            if got > limit:  # grew while reading
                raise too_large(got)
            return b"".join(chunks)
        finally:
            os.close(fd)

    def write(self, rel: str, data: bytes, mode: int | None = None) -> None:
        """Replace (or create, with missing parents) regular file ``rel``."""
        parts, parent = self._parent(rel, create=True)
        try:
            flags = os.O_WRONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
            try:
                fd = os.open(parts[-1], flags | os.O_CREAT | os.O_EXCL, 0o644, dir_fd=parent)
            except FileExistsError:
                try:
                    fd = os.open(parts[-1], flags, dir_fd=parent)
                except IsADirectoryError:
                    raise IsADirectoryError(errno.EISDIR, "Is a directory", rel) from None
                except OSError as exc:
                    raise _refusal(exc, rel) from None
        finally:
            os.close(parent)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise PermissionError(errno.EPERM, "not a regular file", rel)
            os.ftruncate(fd, 0)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if mode is not None:
                os.fchmod(fd, mode)
        finally:
            os.close(fd)

    def unlink(self, rel: str) -> None:
        """Remove file ``rel`` (a symlink itself, never its target)."""
        parts, parent = self._parent(rel, create=False)
        try:
            os.unlink(parts[-1], dir_fd=parent)
        finally:
            os.close(parent)
