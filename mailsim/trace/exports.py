"""What is derived from a trace: the transcript, the summary with its books, and DataFrames.

Everything here reads records only (DESIGN.md, principle 2), so ``mailsim plot DIR`` and a notebook
can rebuild any of it from an ``events.jsonl`` file long after the run.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from mailsim.trace.clock import SIM_EPOCH, epoch_text, format_time

Record = dict[str, Any]

#: The final states one (message, recipient) can be in at the end of a run (DESIGN.md).
OUTCOMES = ("delivered", "bounced", "queued", "rejected", "lost")


# --- transcript ---------------------------------------------------------------------------------


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
        elif kind in ("smtp.line", "pop3.line", "http.line"):
            protocol.setdefault(conn, kind.split(".")[0].upper())
            blocks[conn].append(f"[{format_time(rec['t'])}] {rec['side']}: {rec['line']}")
        elif kind == "tcp.fail":
            ends[conn] = f"[{format_time(rec['t'])}] -- connection failed: {rec['reason']}"
        elif kind == "tcp.close" and conn not in ends:
            how = "closed" if rec["how"] == "fin" else f"ended by {rec['how']}"
            ends[conn] = f"[{format_time(rec['t'])}] -- {how} by {rec['by']}"
    stopped = format_time(last if end_time is None else end_time)
    out: list[str] = []
    if connection is None:
        out += [
            f"# mailsim transcript: simulated time 00:00:00.000 is {epoch_text(epoch)}, the clock",
            "# of the messages' Date: headers and of trace.pcap (Wireshark: View > Time Display",
            "# Format > UTC Date and Time of Day). One block per connection.",
            "",
        ]
    for conn, rec in opened.items():
        proto = protocol.get(conn) or _guess_protocol(rec["sport"])
        out.append(
            f"=== connection {conn} at {format_time(rec['t'])}: {rec['client']} -> "
            f"{rec['server']}:{rec['sport']} ({proto})"
        )
        out.extend(blocks.get(conn, ()))
        out.append(ends.get(conn) or f"[{stopped}] -- still open when the run ended")
        out.append("")
    return "\n".join(out)


def _guess_protocol(port: int) -> str:
    return {25: "SMTP", 587: "SMTP", 110: "POP3", 80: "HTTP"}.get(port, "TCP")


# --- summary and the books ----------------------------------------------------------------------


@dataclass
class DeliveryRow:
    """What happened to one (message, recipient) pair, as the summary lists it."""

    id: str
    sender: str
    to: str
    kind: str = "mail"
    status: str = "queued"
    attempts: int = 0
    submitted_at: float | None = None
    delivered_at: float | None = None
    last_reply: str | None = None
    detail: str | None = None
    duplicates: int = 0

    @property
    def latency(self) -> float | None:
        """Seconds from submission to delivery, or None when not delivered."""
        if self.delivered_at is None or self.submitted_at is None:
            return None
        return self.delivered_at - self.submitted_at

    def as_json(self) -> dict[str, Any]:
        """The summary.json entry (DESIGN.md contract, plus a few extra fields)."""
        return {
            "id": self.id,
            "from": self.sender,
            "to": self.to,
            "kind": self.kind,
            "status": self.status,
            "attempts": self.attempts,
            "submitted_at": self.submitted_at,
            "delivered_at": self.delivered_at,
            "latency": self.latency,
            "last_reply": self.last_reply,
            "detail": self.detail,
            "duplicates": self.duplicates,
        }


@dataclass
class Books:
    """Per (message, recipient) outcomes reconstructed from the trace, and the balance check."""

    rows: dict[tuple[str, str], DeliveryRow] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    connections: int = 0

    def totals(self) -> dict[str, int]:
        """Counts of user messages by outcome, plus duplicates, bounce notices and connections."""
        mail = [r for r in self.rows.values() if r.kind == "mail"]
        counts = {name: 0 for name in OUTCOMES}
        for row in mail:
            counts[row.status] += 1
        return {
            "submitted": len(mail),
            **counts,
            "duplicated": sum(r.duplicates for r in self.rows.values()),
            "dsn_sent": sum(1 for r in self.rows.values() if r.kind == "dsn"),
            "dsn_delivered": sum(
                1 for r in self.rows.values() if r.kind == "dsn" and r.status == "delivered"
            ),
            "connections": self.connections,
        }

    @property
    def balanced(self) -> bool:
        """True when every accepted (message, recipient) ended in exactly one documented way."""
        return not self.problems


#: When copies of one message end differently (RFC 1047), the pair counts as the best outcome:
#: the recipient has the message if any copy was delivered.
_COPY_RANK = {"lost": 1, "bounced": 2, "delivered": 3}


def reconcile(records: Iterable[Record]) -> Books:
    """Rebuild every (message, recipient)'s fate from the trace and check the books balance.

    The rules (DESIGN.md, principle 5): each submitted pair ends as delivered, bounced (and then a
    delivery-status notice for it exists: delivered, queued, or itself lost by a named fault),
    still queued, rejected at submission, or lost by a modelled fault that the trace names. A pair
    that is both delivered and bounced, or a bounce with no notice, is a problem. Duplicates
    (RFC 1047) are counted, not treated as errors.

    The one exception is RFC 1047 itself: when a reply to a final dot was lost (a record says
    ``after_dot``) or a second copy of the message was queued after the pair ended, two copies
    were in the system and each ends its own way: one filed in the mailbox, the other bounced
    after days of retries, or lost in a crash while its sender waited for the 250. The pair
    then counts as the best outcome (delivered over bounced over lost), with the other named in
    its ``detail``; without such evidence, two endings are still a problem.
    """
    books = Books()
    rows = books.rows
    dsn_for: list[tuple[str, str, str]] = []
    copies: dict[tuple[str, str], int] = defaultdict(int)  # mail.queue records per pair
    ended_with: dict[tuple[str, str], int] = {}  # copies queued when the pair last ended
    unsure: set[tuple[str, str]] = set()  # a final dot of the pair went unanswered
    for rec in records:
        kind = rec["type"]
        if kind == "tcp.open":
            books.connections += 1
            continue
        if not kind.startswith("mail."):
            continue
        msg = rec["msg"]
        if kind == "mail.submit":
            for rcpt in rec["rcpts"]:
                key = (msg, rcpt)
                if key not in rows:
                    rows[key] = DeliveryRow(
                        id=msg,
                        sender=rec["sender"],
                        to=rcpt,
                        kind=rec.get("kind", "mail"),
                        submitted_at=rec["t"],
                    )
            continue
        if kind == "mail.attempt":
            for rcpt in rec["rcpts"]:
                row = rows.get((msg, rcpt))
                if row is not None:
                    row.attempts += 1
            continue
        if kind == "mail.queue":
            for rcpt in rec["rcpts"]:
                copies[(msg, rcpt)] += 1
            continue
        if kind == "mail.fetch":
            continue
        key = (msg, rec["rcpt"])
        row = rows.get(key)
        if row is None:
            books.problems.append(
                f"{kind} at t={rec['t']:.3f} for {msg} -> {rec['rcpt']}, which was never submitted"
            )
            continue
        if rec.get("after_dot"):
            unsure.add(key)
        if kind in ("mail.deliver", "mail.bounce", "mail.reject", "mail.lost"):
            status = {
                "mail.deliver": "delivered",
                "mail.bounce": "bounced",
                "mail.reject": "rejected",
                "mail.lost": "lost",
            }[kind]
            if kind == "mail.deliver" and row.status == "delivered":
                row.duplicates += 1  # a second copy reached the mailbox
                continue
            another = key in unsure or copies[key] > ended_with.get(key, 0)
            outcome = _end(books, row, status, rec, another_copy=another)
            ended_with[key] = copies[key]
            if outcome == "problem":
                continue
            if outcome == "set":
                if kind == "mail.deliver":
                    row.delivered_at = rec["t"]
                elif kind == "mail.lost":
                    row.detail = rec["cause"]
                else:
                    row.last_reply = rec["reply"]
            if kind == "mail.bounce":
                if rec.get("dsn"):
                    dsn_for.append((msg, row.to, rec["dsn"]))
                elif row.sender:
                    books.problems.append(f"{msg} -> {row.to} bounced but no notice was made")
        elif kind == "mail.duplicate":
            row.duplicates += 1
        elif kind == "mail.sent" or kind == "mail.defer":
            row.last_reply = rec["reply"]
        elif kind == "mail.warn":
            row.detail = "delay warning sent"
        # mail.expire: the bounce that follows an expiry carries the outcome.
    # A bounce counts only with its notice delivered, queued, or lost by a named fault.
    dsn_rows = {row.id: row for row in rows.values() if row.kind == "dsn"}
    for msg, rcpt, dsn in dsn_for:
        if dsn not in dsn_rows:
            books.problems.append(f"{msg} -> {rcpt} bounced, but its notice {dsn} never appeared")
    return books


def _end(books: Books, row: DeliveryRow, status: str, rec: Record, *, another_copy: bool) -> str:
    """Move ``row`` to a final ``status``.

    Returns ``"set"`` when the row now has ``status``, ``"kept"`` when another copy's better
    outcome stands (RFC 1047, see :func:`reconcile`), and ``"problem"`` (noted in the books)
    when the pair had already ended and nothing explains a second ending.
    """
    if row.status == "queued":
        row.status = status
        return "set"
    if another_copy and row.status in _COPY_RANK and status in _COPY_RANK:
        if _COPY_RANK[status] > _COPY_RANK[row.status]:
            row.detail = f"{row.status}, then {status} by another copy (RFC 1047)"
            row.status = status
            return "set"
        row.detail = f"{row.status}; another copy was {status} (RFC 1047)"
        return "kept"
    books.problems.append(
        f"{row.id} -> {row.to} was already {row.status} and is now {status} "
        f"(t={rec['t']:.3f}); a pair must end exactly one way"
    )
    return "problem"


def summary(
    records: Sequence[Record], *, scenario: str, seed: int, end_time: float
) -> dict[str, Any]:
    """The ``summary.json`` document (DESIGN.md contract)."""
    books = reconcile(records)
    return {
        "scenario": scenario,
        "seed": seed,
        "end_time": end_time,
        "balanced": books.balanced,
        "problems": books.problems,
        "totals": books.totals(),
        "messages": [row.as_json() for row in books.rows.values()],
    }


def write_summary(path: str | Path, document: dict[str, Any]) -> None:
    """Write a summary document as stable, readable JSON."""
    Path(path).write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", "utf-8")


# --- DataFrames ---------------------------------------------------------------------------------


def events_frame(records: Sequence[Record]) -> Any:
    """All records as a pandas DataFrame (columns: t, type, then the union of fields)."""
    import pandas as pd

    return pd.DataFrame.from_records(list(records))


def deliveries_frame(records: Sequence[Record]) -> Any:
    """One row per (message, recipient) with outcome, attempts and latency, as a DataFrame."""
    import pandas as pd

    rows = [row.as_json() for row in reconcile(records).rows.values()]
    columns = list(DeliveryRow("", "", "").as_json())
    return pd.DataFrame.from_records(rows, columns=columns)
