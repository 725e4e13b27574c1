"""What each TCP connection of a run carried, read from the trace.

One :class:`Connection` per ``tcp.open``: who opened it to whom, for what (submission, relay
between mail servers, a typed session, a mailbox check), whether it failed, how many messages it
moved, how many were refused, and how many round trips the client waited for. ``mailsim run``
prints the relays' numbers (the lesson of ``persistent-connection``), and the sequence chart uses
the rest to choose what to draw first.

**Round trips** are counted from the client's side: one for the TCP handshake (SYN out, SYN-ACK
back), then one each time the client waits for the server, that is, for every run of server
lines that follows the client's lines (the greeting follows the client's ACK). PIPELINING
(RFC 2920) shows directly: MAIL, RCPT and DATA sent together cost one round trip, not three.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

Record = dict[str, Any]

#: Ports and what a connection to them is for.
SUBMISSION_PORT = 587
MX_PORT = 25
POP3_PORT = 110


@dataclass
class Connection:
    """One TCP connection and what it carried."""

    conn: int
    client: str
    server: str
    port: int
    opened: float
    #: "submission", "relay" (mail server to mail server), "session" (a person typing at port
    #: 25, as in the tutorial) or "mailbox" (a POP3 check).
    role: str
    closed: float | None = None
    established: bool = False
    #: ``tcp.fail`` reason ("timeout", "refused", "unreachable"), or "" when it connected.
    failed: str = ""
    #: Messages moved: accepted after the final dot (SMTP), retrieved with RETR (POP3).
    messages: int = 0
    #: 4xx and 5xx replies to MAIL, RCPT, DATA or the final dot; ``-ERR`` in POP3.
    refused: int = 0
    round_trips: int = 0
    lines: int = 0
    #: Times of the first and the last protocol line (None without lines).
    first_line: float | None = None
    last_line: float | None = None
    _last_side: str = field(default="", repr=False)

    @property
    def protocol(self) -> str:
        """``"pop3"`` or ``"smtp"``."""
        return "pop3" if self.role == "mailbox" else "smtp"

    @property
    def end(self) -> float:
        """When it closed, or its last known moment."""
        return max(t for t in (self.closed, self.last_line, self.opened) if t is not None)


def connections(records: Iterable[Record]) -> dict[int, Connection]:
    """Every connection of the trace by its id, in the order they were opened."""
    kinds: dict[str, str] = {}
    found: dict[int, Connection] = {}
    # Per connection: SMTP inside DATA / waiting for the reply to the dot; last POP3 command.
    in_data: dict[int, bool] = {}
    after_dot: dict[int, bool] = {}
    verb: dict[int, str] = {}
    for rec in records:
        kind = rec["type"]
        if kind == "net.node":
            kinds[rec["node"]] = rec.get("kind", "host")
        elif kind == "tcp.open":
            found[rec["conn"]] = Connection(
                rec["conn"],
                rec["client"],
                rec["server"],
                rec["sport"],
                rec["t"],
                _role(rec["sport"], kinds.get(rec["client"], "host")),
            )
        elif kind in ("tcp.established", "tcp.fail", "tcp.close"):
            connection = found.get(rec["conn"])
            if connection is None:
                continue
            if kind == "tcp.established":
                connection.established = True
                connection.round_trips += 1
            elif kind == "tcp.fail":
                connection.failed = rec.get("reason", "failed")
                connection.closed = rec["t"]
            else:
                connection.closed = rec["t"]
        elif kind in ("smtp.line", "pop3.line"):
            connection = found.get(rec["conn"])
            if connection is None:
                continue
            side, line = rec["side"], rec["line"]
            connection.lines += 1
            if connection.first_line is None:
                connection.first_line = rec["t"]
            connection.last_line = rec["t"]
            if side == "S" and connection._last_side != "S":
                connection.round_trips += 1
            connection._last_side = side
            if kind == "smtp.line":
                _read_smtp(connection, side, line, in_data, after_dot)
            else:
                _read_pop3(connection, side, line, verb)
    return found


def _role(port: int, client_kind: str) -> str:
    if port == POP3_PORT:
        return "mailbox"
    if port == SUBMISSION_PORT:
        return "submission"
    return "relay" if client_kind == "mailserver" else "session"


def _read_smtp(
    connection: Connection,
    side: str,
    line: str,
    in_data: dict[int, bool],
    after_dot: dict[int, bool],
) -> None:
    conn = connection.conn
    if side == "C":
        if in_data.get(conn) and line == ".":
            in_data[conn] = False
            after_dot[conn] = True
        elif not in_data.get(conn) and line[:4].upper() in ("MAIL", "RCPT", "DATA"):
            after_dot[conn] = False
        return
    if line.startswith("354"):
        in_data[conn] = True
    elif after_dot.get(conn):
        after_dot[conn] = False
        if line.startswith("2"):
            connection.messages += 1
        else:
            connection.refused += 1
    elif line[:1] in ("4", "5") and not line.startswith(("421", "221")):
        connection.refused += 1


def _read_pop3(connection: Connection, side: str, line: str, verb: dict[int, str]) -> None:
    conn = connection.conn
    if side == "C":
        verb[conn] = line.split(" ", 1)[0].upper()
    elif line.startswith("+OK") and verb.pop(conn, "") == "RETR":
        connection.messages += 1
    elif line.startswith("-ERR"):
        verb.pop(conn, None)
        connection.refused += 1


@dataclass(frozen=True)
class RelayTotals:
    """What one mail server's connections to another carried over a whole run."""

    client: str
    server: str
    connections: int
    failed: int
    messages: int
    round_trips: int
    #: From the first SYN to the last close.
    first: float
    last: float


def relay_totals(found: dict[int, Connection] | Sequence[Record]) -> list[RelayTotals]:
    """Per (sending server, receiving server), the relay connections' totals, by first use.

    Args:
        found: :func:`connections` of a trace, or the trace records themselves.
    """
    table = found if isinstance(found, dict) else connections(found)
    pairs: dict[tuple[str, str], list[Connection]] = {}
    for connection in table.values():
        if connection.role == "relay":
            pairs.setdefault((connection.client, connection.server), []).append(connection)
    return [
        RelayTotals(
            client,
            server,
            connections=len(group),
            failed=sum(1 for c in group if c.failed),
            messages=sum(c.messages for c in group),
            round_trips=sum(c.round_trips for c in group),
            first=min(c.opened for c in group),
            last=max(c.end for c in group),
        )
        for (client, server), group in pairs.items()
    ]
