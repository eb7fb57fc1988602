"""Text to and from a shell: output decoding and capping, command quoting.

Shared by every shell transport and by the tools that show output to a model.
"""

from __future__ import annotations

import re


def decode_output(data: bytes) -> str:
    """Bytes from a program as text that is always valid JSON-safe Unicode.

    Invalid UTF-8 becomes U+FFFD and NUL bytes become the two characters
    ``\\0`` (many consumers of trajectories choke on a raw NUL).
    """
    text = data.decode("utf-8", errors="replace")
    if "\x00" in text:
        text = text.replace("\x00", "\\0")
    return text


class CappedBuffer:
    """Keeps the head and tail of a byte stream of any length in bounded memory."""

    def __init__(self, limit: int):
        limit = max(int(limit), 2)
        self.head_limit = limit // 2
        self.tail_limit = limit - self.head_limit
        self.head = bytearray()
        self.tail = bytearray()
        self.dropped = 0

    def add(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        room = self.head_limit - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
            if not data:
                return
        if len(data) >= self.tail_limit:
            self.dropped += len(self.tail) + len(data) - self.tail_limit
            self.tail = bytearray(data[len(data) - self.tail_limit :])
            return
        self.tail += data
        excess = len(self.tail) - self.tail_limit
        if excess > 0:
            self.dropped += excess
            del self.tail[:excess]

    def text(self) -> str:
        if not self.dropped:
            return decode_output(bytes(self.head + self.tail))
        return (
            decode_output(bytes(self.head))
            + f"\n[... {self.dropped} bytes of output omitted ...]\n"
            + decode_output(bytes(self.tail))
        )


def ansi_c_quote(data: bytes) -> bytes:
    """``$'...'`` form of ``data`` that survives being one line of shell input."""
    data = data.replace(b"\x00", b"")  # bash strings cannot hold NUL anyway
    return b"$'" + _UNSAFE.sub(lambda m: b"\\x%02x" % m[0][0], data) + b"'"


_UNSAFE = re.compile(rb"[^\x20-\x26\x28-\x5b\x5d-\x7e]")  # all but printable ASCII minus ' and \


_PLAIN = re.compile(r"[A-Za-z0-9_./,:=+@%^~#*?\[\]$ \t\n-]*")
_RESERVED = frozenset(
    "! case coproc do done elif else esac fi for function if in select then time until while { } [[ ]]".split()
)


def needs_syntax_check(command: str) -> bool:
    """False only for commands that cannot be a syntax error: words of plain
    characters (no quotes, brackets, operators or backslashes) that are not
    reserved words, e.g. ``ls -la src``, ``git status``, ``python -m pytest -q``."""
    if not _PLAIN.fullmatch(command) or "$[" in command:  # $[ is old arithmetic syntax
        return True
    return any(word in _RESERVED for word in command.split())
