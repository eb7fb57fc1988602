"""Race-free file operations under a directory (react_eval.sandboxes.safe_fs),
with openat2 and with the O_NOFOLLOW walk the code falls back to."""

from __future__ import annotations

import errno
import os
import subprocess
import sys

import pytest

from react_eval.sandboxes import safe_fs
from react_eval.sandboxes.safe_fs import Beneath, SymlinkRefused
from tests.security.race import SWAP_SCRIPT


@pytest.fixture(params=["openat2", "walk"])
def fs(request, tmp_path, monkeypatch):
    if request.param == "walk":
        monkeypatch.setattr(safe_fs, "_HAVE_OPENAT2", False)
    elif not safe_fs.have_openat2():
        pytest.skip("this kernel has no openat2 (Linux < 5.6)")
    root = tmp_path / "root"
    root.mkdir()
    beneath = Beneath(str(root))
    yield beneath
    beneath.close()


def too_large(size):
    return OSError(errno.EFBIG, f"{size} bytes")


def test_write_read_stat_unlink(fs):
    fs.write("a/b/c.txt", b"data\x00", mode=0o600)
    assert fs.read("a/b/c.txt", 100, too_large) == b"data\x00"
    st = fs.stat("a/b/c.txt")
    assert st.st_size == 5 and st.st_mode & 0o777 == 0o600
    assert fs.stat("missing") is None
    fs.write("a/b/c.txt", b"x")  # replaces: truncated
    assert fs.read("a/b/c.txt", 100, too_large) == b"x"
    with pytest.raises(OSError, match="bytes"):
        fs.write("big", b"y" * 50) or fs.read("big", 10, too_large)
    with pytest.raises(IsADirectoryError):
        fs.read("a", 100, too_large)
    fs.unlink("a/b/c.txt")
    assert fs.stat("a/b/c.txt") is None


def test_symlinks_and_dotdot_are_never_followed(fs, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("s3cret")
    root = fs.root
    os.symlink(str(outside), os.path.join(root, "dirlink"))
    os.symlink(str(outside / "secret"), os.path.join(root, "filelink"))
    os.symlink("inner.txt", os.path.join(root, "rel"))  # even a link that stays inside
    with open(os.path.join(root, "inner.txt"), "w") as f:
        f.write("in")
    for path in ("dirlink/secret", "filelink", "rel", "../outside/secret", "a/../../outside/secret"):
        with pytest.raises(SymlinkRefused):
            fs.read(path, 100, too_large)
    for path in ("dirlink/new", "filelink", "dirlink/deep/er"):
        with pytest.raises(PermissionError):
            fs.write(path, b"pwned")
    assert sorted(os.listdir(outside)) == ["secret"] and (outside / "secret").read_text() == "s3cret"
    fs.unlink("filelink")  # removes the link itself
    assert (outside / "secret").exists()


def test_a_fifo_is_refused_not_blocked_on(fs):
    os.mkfifo(os.path.join(fs.root, "pipe"))
    with pytest.raises(PermissionError, match="regular"):
        fs.read("pipe", 100, too_large)
    with pytest.raises(OSError):
        fs.write("pipe", b"x")


def test_a_concurrent_directory_symlink_swap_never_lands_outside(fs, tmp_path):
    """The attack of issue 14: another process swaps a directory and a symlink
    to the outside with renameat2(RENAME_EXCHANGE) in a loop while the harness
    writes and reads through that directory, 500 times each."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "f").write_text("host file\n")
    root = fs.root
    os.mkdir(os.path.join(root, "d"))
    os.symlink(str(outside), os.path.join(root, "swap"))
    swapper = subprocess.Popen([sys.executable, "-c", SWAP_SCRIPT, os.path.join(root, "d"),
                                os.path.join(root, "swap"), "120"])
    outcomes = {"written": 0, "refused": 0, "leaked": 0}
    try:
        # wait until the swap is really going on (seen both ways)
        seen = set()
        for _ in range(200_000):
            seen.add(os.path.islink(os.path.join(root, "d")))
            if len(seen) == 2:
                break
        assert len(seen) == 2, "the swapper never swapped"
        for i in range(500):
            try:
                fs.write("d/f", b"written by the tool %d\n" % i)
                outcomes["written"] += 1
            except OSError:
                outcomes["refused"] += 1
            try:
                if b"host file" in fs.read("d/f", 100, too_large):
                    outcomes["leaked"] += 1
            except OSError:
                pass
    finally:
        swapper.kill()
        swapper.wait()
    assert (outside / "f").read_text() == "host file\n" and sorted(os.listdir(outside)) == ["f"], outcomes
    assert outcomes["leaked"] == 0, outcomes
    assert outcomes["refused"], outcomes  # the race was live: the swapped-in symlink was met
