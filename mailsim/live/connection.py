"""What every live connection shares: the peer's address, the read size, the lingering close."""

from __future__ import annotations

import asyncio

#: One read from the socket; a POP3 machine step handles at most this much input.
READ_SIZE = 64 * 1024
#: After its last reply the server half-closes and keeps reading (and dropping) what the client
#: still sends for this long before it closes: closing with unread input would send a TCP RST,
#: and the RST can destroy the client's copy of that last reply (the "lingering close").
LINGER = 2.0
#: Seconds one command line may take from its first byte to its end. The idle timers restart on
#: every byte, so without it one byte a second holds a session for ever. Two minutes is ample for
#: a person typing into telnet (RFC 5321 4.5.3.2 waits 5 minutes for a whole command).
DEFAULT_LINE_TIMEOUT = 120.0


class LineClock:
    """When the command line now arriving began: the basis of the per-line deadline.

    Fed every chunk of input in order; a chunk ending in LF completes the line, any other leaves
    a line open since the first chunk of it.
    """

    __slots__ = ("started",)

    def __init__(self) -> None:
        #: When the unfinished line's first byte came (loop time), or None between lines.
        self.started: float | None = None

    def saw(self, data: bytes, now: float) -> bool:
        """Note a chunk of input received at ``now``; True if it opened a new unfinished line."""
        if not data:
            return False
        if data.endswith(b"\n"):
            self.started = None
        elif self.started is None:
            self.started = now
            return True
        return False

    def overdue(self, now: float, limit: float) -> bool:
        """Whether the open line has taken longer than ``limit`` seconds."""
        return self.started is not None and now - self.started > limit

    def left(self, now: float, limit: float) -> float | None:
        """Seconds until the open line is overdue, or None when no line is open."""
        return None if self.started is None else self.started + limit - now


#: A client that sends this much in command mode without the SMTP machine having anything to say
#: is not speaking SMTP (binary garbage, a TLS handshake): 16 command lines of 512 octets (RFC
#: 5321 4.5.3.1.4). Postfix gets the same effect by cutting lines at line_length_limit = 2048.
SMTP_JUNK_LIMIT = 16 * 512


def peer_of(transport: asyncio.BaseTransport) -> tuple[str, str]:
    """(ip, "ip:port") of the client."""
    peer = transport.get_extra_info("peername")
    if isinstance(peer, tuple) and len(peer) >= 2:
        return str(peer[0]), f"{peer[0]}:{peer[1]}"
    return "unknown", "unknown"
