"""What the SMTP and POP3 machines share: protocol errors, a CRLF line splitter, the state base.

Lines end in CRLF only (RFC 5321 2.3.8, RFC 1939 3): a bare LF or a bare CR is ordinary data and
never ends a line. This is the guard against SMTP smuggling, where a server that also honoured bare
LF would see ``<LF>.<LF>`` as the end of one message and the start of another.
"""

from __future__ import annotations

import enum


class State(enum.Enum):
    """The base of the machines' state enums: members hash by identity.

    Python 3.11's ``Enum.__hash__`` is a Python function (the hash of the member's name) that
    every dict lookup keyed by a state calls, and the machines look up their transition tables
    by state on every line; members are singletons compared by identity, so identity hashing
    keeps every lookup's meaning and drops that call.
    """

    __hash__ = object.__hash__


class ProtocolError(Exception):
    """Something broke the protocol; the machine that raised it is now in its ERROR state.

    Attributes:
        reply_hint: a reply code a server might send about it (like h11's ``error_status_hint``).
    """

    def __init__(self, message: str, reply_hint: int = 500) -> None:
        super().__init__(message)
        self.reply_hint = reply_hint


class LocalProtocolError(ProtocolError):
    """We (the application driving this machine) tried to do something the protocol forbids."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something the protocol forbids."""


class LineBuffer:
    """Accumulates received bytes and hands out complete CRLF-terminated lines.

    Args:
        max_line: the longest line accepted, CRLF included. Longer lines are not buffered without
            bound: their excess is dropped and the line is reported as too long once it ends.
    """

    __slots__ = ("_buf", "_overlong", "_scan", "closed", "max_line")

    def __init__(self, max_line: int) -> None:
        self._buf = bytearray()
        self._overlong = False
        self._scan = 0  # next_block: complete lines before this offset were measured already
        #: True once the peer has closed its side (``feed(b"")``).
        self.closed = False
        #: The longest acceptable line, CRLF included.
        self.max_line = max_line

    def feed(self, data: bytes) -> None:
        """Add received bytes; ``b""`` means the peer closed the connection."""
        if not data:
            self.closed = True
            return
        self._buf += data

    def next_line(self) -> tuple[bytes, bool] | None:
        """The next complete line without its CRLF and whether it was too long, or None."""
        while True:
            end = self._buf.find(b"\r\n")
            if end < 0:
                if len(self._buf) >= self.max_line:
                    # Keep only the last byte (it may be the CR of a CRLF split across reads).
                    del self._buf[:-1]
                    self._overlong = True
                return None
            line = bytes(self._buf[:end])
            del self._buf[: end + 2]
            overlong = self._overlong or end + 2 > self.max_line
            self._overlong = False
            return line, overlong

    def next_block(self) -> tuple[bytes, bool] | None:
        """Every line up to a line that is a lone ".", as one block, or None until it has come.

        The block keeps each line's CRLF (and any dot-stuffing); the dot line is consumed. This
        is a multi-line reply's body (RFC 1939 3) found with one search instead of a loop over
        its lines. The second item says a line was too long: it is reported as soon as that line
        has ended, as :meth:`next_line` would, with the block empty (the reply is broken anyway).
        Memory stays bounded in the same way.
        """
        buf, limit = self._buf, self.max_line
        if buf.startswith(b".\r\n") and not self._overlong:
            del buf[:3]
            self._scan = 0
            return b"", False
        end = buf.find(b"\r\n.\r\n", max(0, self._scan - 2))
        if end >= 0:
            last = end + 2  # just after the last full line of the block
        else:
            crlf = buf.rfind(b"\r\n", self._scan)
            last = crlf + 2 if crlf >= 0 else self._scan
        if last > self._scan:
            # Measure the lines completed since the last call (C speed: split and max).
            lines = bytes(buf[self._scan : last - 2]).split(b"\r\n")
            if self._overlong or max(map(len, lines)) > limit - 2:
                del buf[:last]
                self._scan = 0
                self._overlong = False
                return b"", True
            self._scan = last
        if end < 0:
            if len(buf) - last >= limit:
                # A line longer than the limit and not ended yet: keep only its last octet.
                del buf[last:-1]
                self._overlong = True
            return None
        block = bytes(buf[: end + 2])
        del buf[: end + 5]
        self._scan = 0
        return block, False

    def take_bare_lf_line(self) -> bytes | None:
        """The bytes before a bare LF that comes ahead of every CRLF, removed with it; else None.

        For a server that answers such a line instead of waiting for a CRLF that a client
        typing into ``nc`` without ``-C`` never sends. Only octets up to the LF count, so the
        answer is the same however the input was split.
        """
        end = self._buf.find(b"\r\n")
        bare = self._buf.find(b"\n", 0, end if end >= 0 else len(self._buf))
        if bare < 0 or (bare > 0 and self._buf[bare - 1] == 0x0D):
            return None
        line = bytes(self._buf[:bare])
        del self._buf[: bare + 1]
        self._overlong = False
        return line

    def discard(self) -> None:
        """Drop everything buffered (input that came in the clear before a TLS handshake)."""
        self._buf.clear()
        self._overlong = False
        self._scan = 0

    def pending(self) -> int:
        """How many received bytes wait for the end of their line."""
        return len(self._buf)
