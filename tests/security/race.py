"""renameat2(RENAME_EXCHANGE) through ctypes: the symlink-swap attack's primitive."""

from __future__ import annotations

import ctypes
import os

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100
_libc = ctypes.CDLL(None, use_errno=True)


def exchange(a: str, b: str) -> bool:
    """Atomically swap the directory entries ``a`` and ``b``; False if it failed."""
    return _libc.renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0


#: the same swap loop as a standalone script, for running inside a sandbox
SWAP_SCRIPT = r"""
import ctypes, os, sys, time
libc = ctypes.CDLL(None, use_errno=True)
a, b, seconds = sys.argv[1].encode(), sys.argv[2].encode(), float(sys.argv[3])
end = time.time() + seconds
while time.time() < end:
    libc.renameat2(-100, a, -100, b, 2)
"""
