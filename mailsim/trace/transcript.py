"""``transcript.txt``: every connection's SMTP, POP3 or HTTP dialogue, as the tutorial writes it.

:func:`transcript` makes it from records; :class:`TranscriptWriter` is a recorder sink that writes
the same text while the run goes on, one connection's block as soon as that connection is over
(and every block before it, since blocks are in order of opening), so only the connections still
open are held in memory.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from mailsim.trace.clock import SIM_EPOCH, epoch_text, format_time

Record = dict[str, Any]

#: The record types a transcript is made of.
TRANSCRIPT_TYPES = ("smtp.line", "pop3.line", "http.line", "tcp.open", "tcp.fail", "tcp.close")

#: The record types whose lines a transcript lists, by the protocol they name.
_LINE_PROTOCOLS = {"smtp.line": "SMTP", "pop3.line": "POP3", "http.line": "HTTP"}


def _guess_protocol(port: int) -> str:
    return {25: "SMTP", 587: "SMTP", 110: "POP3", 80: "HTTP"}.get(port, "TCP")


def _file_header(epoch: datetime) -> list[str]:
    return [
        f"# mailsim transcript: simulated time 00:00:00.000 is {epoch_text(epoch)}, the clock",
        "# of the messages' Date: headers and of trace.pcap (Wireshark: View > Time Display",
        "# Format > UTC Date and Time of Day). One block per connection.",
    ]


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


def _still_open(stopped: float) -> str:
    return f"[{format_time(stopped)}] -- still open when the run ended"


def transcript(
    records: Iterable[Record],
    connection: int | None = None,
    *,
    end_time: float | None = None,
    epoch: datetime = SIM_EPOCH,
) -> str:
    """The protocol dialogue of every connection (or one), one block per connection.

    A block is headed by its opening time, client node, server node and protocol, then lists each
    line as ``C: ...`` or ``S: ...`` with its time, as the tutorial writes them, and ends with how
    the connection ended. Connections that never got established are listed with their failure,
    since "connection timed out" is part of the story too, and connections still open when the
    run stopped say so, so every stream of ``trace.pcap`` has its block. The whole transcript
    (``connection`` None) starts with a header naming the clock's epoch.

    Args:
        records: the run's trace records, in emission order.
        connection: only this connection's block (no header).
        end_time: when the run stopped (default: the time of the last record), for the
            connections still open then.
        epoch: the wall-clock instant of simulated time 0 (default :data:`SIM_EPOCH`).
    """
    opened: dict[int, Record] = {}
    blocks: dict[int, list[str]] = defaultdict(list)
    protocol: dict[int, str] = {}
    ends: dict[int, str] = {}
    last = 0.0
    for rec in records:
        last = rec["t"]
        kind = rec["type"]
        conn = rec.get("conn")
        if not isinstance(conn, int) or (connection is not None and conn != connection):
            continue
        if kind == "tcp.open":
            opened[conn] = rec
        elif kind in _LINE_PROTOCOLS:
            protocol.setdefault(conn, _LINE_PROTOCOLS[kind])
            blocks[conn].append(f"[{format_time(rec['t'])}] {rec['side']}: {rec['line']}")
        elif kind == "tcp.fail" or (kind == "tcp.close" and conn not in ends):
            # A failure is the end; of the closes, the first (each end records its own).
            ends[conn] = _ending(rec)
    still_open = _still_open(last if end_time is None else end_time)
    out: list[str] = [*_file_header(epoch), ""] if connection is None else []
    for conn, rec in opened.items():
        out.append(_header(rec, protocol.get(conn)))
        out.extend(blocks.get(conn, ()))
        out.append(ends.get(conn) or still_open)
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
    writes the connections still open, marked as open at ``end_time`` (when the run stops).
    """

    __slots__ = ("_blocks", "_file", "_last_clock", "_last_t", "end_time", "path")

    def __init__(self, path: str | Path, *, end_time: float, epoch: datetime = SIM_EPOCH) -> None:
        #: The file written.
        self.path = Path(path)
        #: When the run stops: the time of the connections still open then.
        self.end_time = end_time
        self._file = open(self.path, "w", encoding="utf-8")  # noqa: SIM115
        self._file.write("\n".join(_file_header(epoch)) + "\n")
        self._blocks: dict[int, _Block] = {}  # open connections, in order of opening
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
                block.protocol = _LINE_PROTOCOLS[kind]
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
            end = block.end or _still_open(self.end_time)
            text = [_header(block.opened, block.protocol), *block.lines, end]
            self._file.write("\n" + "\n".join(text) + "\n")

    def close(self) -> None:
        """Write what is left and close the file."""
        self._flush(final=True)
        self._file.close()
