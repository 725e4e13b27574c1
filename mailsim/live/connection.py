"""What every live connection shares: the peer's address, the read size, the lingering close."""

from __future__ import annotations

import asyncio

#: One read from the socket; a POP3 machine step handles at most this much input.
READ_SIZE = 64 * 1024
#: After its last reply the server half-closes and keeps reading (and dropping) what the client
#: still sends for this long before it closes: closing with unread input would send a TCP RST,
#: and the RST can destroy the client's copy of that last reply (the "lingering close").
LINGER = 2.0
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
