"""What every live connection shares: the peer's address, the read size, the lingering close."""

from __future__ import annotations

import asyncio

#: One read from the socket; a POP3 machine step handles at most this much input.
READ_SIZE = 64 * 1024
#: After its last reply the server half-closes and keeps reading (and dropping) what the client
#: still sends for this long before it closes: closing with unread input would send a TCP RST,
#: and the RST can destroy the client's copy of that last reply (the "lingering close").
LINGER = 2.0


def peer_of(transport: asyncio.BaseTransport) -> tuple[str, str]:
    """(ip, "ip:port") of the client."""
    peer = transport.get_extra_info("peername")
    if isinstance(peer, tuple) and len(peer) >= 2:
        return str(peer[0]), f"{peer[0]}:{peer[1]}"
    return "unknown", "unknown"
