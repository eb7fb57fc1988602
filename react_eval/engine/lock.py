"""One writer per output directory.

Two runs appending to one ``results.jsonl`` would interleave rows of different
runs and each resume the other's work. :func:`output_lock` holds an exclusive
``flock`` on ``.react-eval.lock`` (holding the writer's pid) while a run
writes the directory. The kernel drops the lock when its process dies, so a
lock file left by a killed run is simply taken over.
"""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

LOCK_NAME = ".react-eval.lock"


class OutputLocked(RuntimeError):
    """Another live process is writing the directory."""


@contextmanager
def output_lock(out_dir: Path) -> Iterator[None]:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            raise OutputLocked(f"{out_dir} is being written by another react-eval run (pid {holder}); wait for it "
                               "to finish, or choose another --output-dir") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
