"""``transcript.txt``: the SMTP and POP3 dialogue of every connection, as the tutorial writes it.

:func:`transcript` makes it from records; :class:`TranscriptWriter` is a recorder sink that writes
the same text while the run goes on, one connection's block as soon as that connection is over
(and every block before it, since blocks are in order of opening), so only the connections still
open are held in memory.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

Record = dict[str, Any]

#: The record types a transcript is made of.
TRANSCRIPT_TYPES = ("smtp.line", "pop3.line", "tcp.open", "tcp.fail", "tcp.close")


def format_time(seconds: float) -> str:
    """Simulated seconds as ``[Nd ]HH:MM:SS.mmm``, the transcript's clock."""
    millis = round(seconds * 1000)
    days, millis = divmod(millis, 86_400_000)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    clock = f"{hours:02d}:{minutes:02d}:{secs:02d}.{millis:03d}"
    return f"{days}d {clock}" if days else clock


def _guess_protocol(port: int) -> str:
    return {25: "SMTP", 587: "SMTP", 110: "POP3"}.get(port, "TCP")


def _header(opened: Record, protocol: str | None) -> str:
    proto = protocol or _guess_protocol(opened["sport"])
    return (
        f"=== connection {opened['conn']} at {format_time(opened['t'])}: {opened['client']} -> "
        f"{opened['server']}:{opened['sport']} ({proto})"
    )


def _ending(rec: Record) -> str:
    if rec["type"] == "tcp.fail":
        return f"[{format_time(rec['t'])}] -- connection failed: {rec['reason']}"
    how = "closed" if rec["how"] == "fin" else f"ended by {rec['how']}"
    return f"[{format_time(rec['t'])}] -- {how} by {rec['by']}"


def transcript(records: Iterable[Record], connection: int | None = None) -> str:
    """The protocol dialogue of every connection (or one), one block per connection.

    A block is headed by its opening time, client node, server node and protocol, then lists each
    line as ``C: ...`` or ``S: ...`` with its time, as the tutorial writes them. Connections that
    never got established are listed with their failure, since "connection timed out" is part of
    the story too.
    """
    opened: dict[int, Record] = {}
    blocks: dict[int, list[str]] = defaultdict(list)
    protocol: dict[int, str] = {}
    ends: dict[int, str] = {}
    for rec in records:
        kind = rec["type"]
        conn = rec.get("conn")
        if not isinstance(conn, int) or (connection is not None and conn != connection):
            continue
        if kind == "tcp.open":
            opened[conn] = rec
        elif kind in ("smtp.line", "pop3.line"):
            protocol.setdefault(conn, "SMTP" if kind == "smtp.line" else "POP3")
            blocks[conn].append(f"[{format_time(rec['t'])}] {rec['side']}: {rec['line']}")
        elif kind == "tcp.fail" or (kind == "tcp.close" and conn not in ends):
            # A failure is the end; of the closes, the first (each end records its own).
            ends[conn] = _ending(rec)
    out: list[str] = []
    for conn, rec in opened.items():
        if conn not in blocks and conn not in ends:
            continue
        out.append(_header(rec, protocol.get(conn)))
        out.extend(blocks.get(conn, ()))
        if conn in ends:
            out.append(ends[conn])
        out.append("")
    return "\n".join(out)


class _Block:
    """One connection's part of the transcript while it is being written."""

    __slots__ = ("closed_by", "end", "failed", "lines", "opened", "protocol")

    def __init__(self, opened: Record) -> None:
        self.opened = opened
        self.protocol: str | None = None
        self.lines: list[str] = []
        self.end: str | None = None
        self.failed = False
        self.closed_by: set[str] = set()

    def over(self) -> bool:
        """No line can follow: the handshake failed, or both ends have closed.

        Lines are traced only by an end that has not closed (``nodes.wire.transmit``), and each
        end's first ``tcp.close`` comes when it closes. When both ends are on one node the records
        cannot tell the ends apart, so such a block waits for the end of the run.
        """
        if self.failed:
            return True
        client, server = self.opened["client"], self.opened["server"]
        return client != server and client in self.closed_by and server in self.closed_by


class TranscriptWriter:
    """A recorder sink writing ``transcript.txt`` as the run goes, identical to :func:`transcript`.

    Subscribe it for :data:`TRANSCRIPT_TYPES`; call :meth:`close` at the end of the run, which
    writes the connections still open.
    """

    __slots__ = ("_blocks", "_file", "_last_clock", "_last_t", "_written", "path")

    def __init__(self, path: str | Path) -> None:
        #: The file written.
        self.path = Path(path)
        self._file = open(self.path, "w", encoding="utf-8")  # noqa: SIM115
        self._blocks: dict[int, _Block] = {}  # open connections, in order of opening
        self._written = False
        self._last_t = -1.0
        self._last_clock = ""

    def __call__(self, rec: Record) -> None:
        """Take one record; write the blocks that are over."""
        conn = rec.get("conn")
        if not isinstance(conn, int):
            return
        kind = rec["type"]
        if kind == "tcp.open":
            self._blocks[conn] = _Block(rec)
            return
        block = self._blocks.get(conn)
        if block is None:
            return
        if kind == "tcp.close":
            if block.end is None:
                block.end = _ending(rec)
            block.closed_by.add(rec["by"])
        elif kind == "tcp.fail":
            block.end = _ending(rec)
            block.failed = True
        else:
            if block.protocol is None:
                block.protocol = "SMTP" if kind == "smtp.line" else "POP3"
            t = rec["t"]
            if t != self._last_t:  # lines sent together share their time
                self._last_t, self._last_clock = t, format_time(t)
            block.lines.append(f"[{self._last_clock}] {rec['side']}: {rec['line']}")
            return
        if block.over() and next(iter(self._blocks)) == conn:
            self._flush(final=False)

    def _flush(self, *, final: bool) -> None:
        blocks = self._blocks
        while blocks:
            conn, block = next(iter(blocks.items()))
            if not final and not block.over():
                return
            del blocks[conn]
            if not block.lines and block.end is None:
                continue
            text = [_header(block.opened, block.protocol), *block.lines]
            if block.end is not None:
                text.append(block.end)
            self._file.write(("\n" if self._written else "") + "\n".join(text) + "\n")
            self._written = True

    def close(self) -> None:
        """Write what is left and close the file."""
        self._flush(final=True)
        self._file.close()
