"""The books: every (message, recipient)'s fate, kept up to date as the trace is recorded.

A :class:`Ledger` is a recorder sink for the ``mail.*`` and ``tcp.open`` records. It settles each
pair as the records arrive, so the books of a run are ready when the run ends, at any trace level
(``trace: off`` writes no records, yet the ledger sees them), and no second pass over millions of
records is needed. :func:`reconcile` feeds a ledger from records read back (``events.jsonl``).
:func:`summary_document` and :func:`write_summary` make ``summary.json``; the latter streams the
per-pair list, so a large run never builds the whole document as one string.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Record = dict[str, Any]

#: The final states one (message, recipient) can be in at the end of a run (docs/design.md).
OUTCOMES = ("delivered", "bounced", "queued", "rejected", "lost")

#: The record types the books read: every ``mail.*`` record, and ``tcp.open`` to count connections.
BOOK_TYPES = ("mail.", "tcp.open")


@dataclass(slots=True)
class DeliveryRow:
    """What happened to one (message, recipient) pair, as the summary lists it.

    The last three fields are the ledger's own book-keeping for RFC 1047 duplicates (copies of the
    pair queued, copies queued when the pair last ended, a final dot that went unanswered); they
    are not part of the summary.
    """

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
    copies: int = field(default=0, repr=False, compare=False)
    copies_at_end: int = field(default=0, repr=False, compare=False)
    unsure: bool = field(default=False, repr=False, compare=False)

    @property
    def latency(self) -> float | None:
        """Seconds from submission to delivery, or None when not delivered."""
        if self.delivered_at is None or self.submitted_at is None:
            return None
        return self.delivered_at - self.submitted_at

    def as_json(self) -> dict[str, Any]:
        """The summary.json entry (docs/design.md contract, plus a few extra fields)."""
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
        counts = dict.fromkeys(OUTCOMES, 0)
        submitted = duplicated = dsn_sent = dsn_delivered = 0
        for row in self.rows.values():
            duplicated += row.duplicates
            if row.kind == "mail":
                submitted += 1
                counts[row.status] += 1
            elif row.kind == "dsn":
                dsn_sent += 1
                dsn_delivered += row.status == "delivered"
        return {
            "submitted": submitted,
            **counts,
            "duplicated": duplicated,
            "dsn_sent": dsn_sent,
            "dsn_delivered": dsn_delivered,
            "connections": self.connections,
        }

    @property
    def balanced(self) -> bool:
        """True when every accepted (message, recipient) ended in exactly one documented way."""
        return not self.problems


#: When copies of one message end differently (RFC 1047), the pair counts as the best outcome:
#: the recipient has the message if any copy was delivered.
_COPY_RANK = {"lost": 1, "bounced": 2, "delivered": 3}

_FINAL = {
    "mail.deliver": "delivered",
    "mail.bounce": "bounced",
    "mail.reject": "rejected",
    "mail.lost": "lost",
}


class Ledger:
    """Settles every (message, recipient)'s fate record by record, and checks the books balance.

    The rules (docs/design.md, 5): each submitted pair ends as delivered, bounced (and then a
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

    Call the ledger with each record (it is a recorder sink for :data:`BOOK_TYPES`); read the
    books with :meth:`books` at any time.
    """

    __slots__ = ("_dsn_for", "_early_copies", "_problems", "connections", "rows")

    def __init__(self) -> None:
        #: Every pair's row, in order of submission.
        self.rows: dict[tuple[str, str], DeliveryRow] = {}
        #: Connections opened so far.
        self.connections = 0
        self._problems: list[str] = []
        self._dsn_for: list[tuple[str, str, str]] = []
        # Copies queued for a pair before its mail.submit record (counted when it comes).
        self._early_copies: dict[tuple[str, str], int] = {}

    def __call__(self, record: Record) -> None:
        """Take one record into the books (records of other types are ignored)."""
        kind = record["type"]
        if kind == "tcp.open":
            self.connections += 1
        elif kind == "mail.submit":
            self._submit(record)
        elif kind == "mail.attempt":
            rows = self.rows
            msg = record["msg"]
            for rcpt in record["rcpts"]:
                row = rows.get((msg, rcpt))
                if row is not None:
                    row.attempts += 1
        elif kind == "mail.queue":
            rows = self.rows
            msg = record["msg"]
            for rcpt in record["rcpts"]:
                row = rows.get((msg, rcpt))
                if row is not None:
                    row.copies += 1
                else:
                    key = (msg, rcpt)
                    self._early_copies[key] = self._early_copies.get(key, 0) + 1
        elif kind.startswith("mail.") and kind != "mail.fetch":
            self._pair(kind, record)

    def _submit(self, rec: Record) -> None:
        rows = self.rows
        msg = rec["msg"]
        for rcpt in rec["rcpts"]:
            key = (msg, sys.intern(rcpt))
            if key not in rows:
                rows[key] = DeliveryRow(
                    id=msg,
                    sender=rec["sender"],
                    to=key[1],
                    kind=rec.get("kind", "mail"),
                    submitted_at=rec["t"],
                    copies=self._early_copies.pop(key, 0) if self._early_copies else 0,
                )

    def _pair(self, kind: str, rec: Record) -> None:
        msg = rec["msg"]
        row = self.rows.get((msg, rec["rcpt"]))
        if row is None:
            self._problems.append(
                f"{kind} at t={rec['t']:.3f} for {msg} -> {rec['rcpt']}, which was never submitted"
            )
            return
        if rec.get("after_dot"):
            row.unsure = True
        status = _FINAL.get(kind)
        if status is not None:
            if kind == "mail.deliver" and row.status == "delivered":
                row.duplicates += 1  # a second copy reached the mailbox
                return
            another = row.unsure or row.copies > row.copies_at_end
            outcome = self._end(row, status, rec, another_copy=another)
            row.copies_at_end = row.copies
            if outcome == "problem":
                return
            if outcome == "set":
                if kind == "mail.deliver":
                    row.delivered_at = rec["t"]
                elif kind == "mail.lost":
                    row.detail = rec["cause"]
                else:
                    row.last_reply = rec["reply"]
            if kind == "mail.bounce":
                if rec.get("dsn"):
                    self._dsn_for.append((msg, row.to, rec["dsn"]))
                elif row.sender:
                    self._problems.append(f"{msg} -> {row.to} bounced but no notice was made")
        elif kind == "mail.duplicate":
            row.duplicates += 1
        elif kind == "mail.sent" or kind == "mail.defer":
            row.last_reply = rec["reply"]
        elif kind == "mail.warn":
            row.detail = "delay warning sent"
        # mail.expire: the bounce that follows an expiry carries the outcome.

    def _end(self, row: DeliveryRow, status: str, rec: Record, *, another_copy: bool) -> str:
        """Move ``row`` to a final ``status``.

        Returns ``"set"`` when the row now has ``status``, ``"kept"`` when another copy's better
        outcome stands (RFC 1047, see :class:`Ledger`), and ``"problem"`` (noted in the books)
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
        self._problems.append(
            f"{row.id} -> {row.to} was already {row.status} and is now {status} "
            f"(t={rec['t']:.3f}); a pair must end exactly one way"
        )
        return "problem"

    def books(self) -> Books:
        """The books so far. A bounce counts only with its notice delivered, queued, or lost by
        a named fault; that check is made now, over everything recorded until now."""
        problems = list(self._problems)
        if self._dsn_for:
            notices = {row.id for row in self.rows.values() if row.kind == "dsn"}
            for msg, rcpt, dsn in self._dsn_for:
                if dsn not in notices:
                    problems.append(f"{msg} -> {rcpt} bounced, but its notice {dsn} never appeared")
        return Books(rows=self.rows, problems=problems, connections=self.connections)


def reconcile(records: Iterable[Record]) -> Books:
    """The books of a trace read back (see :class:`Ledger` for the rules)."""
    ledger = Ledger()
    for record in records:
        kind = record["type"]
        if kind == "tcp.open" or kind.startswith("mail."):
            ledger(record)
    return ledger.books()


# --- summary.json --------------------------------------------------------------------------------


def summary_head(books: Books, *, scenario: str, seed: int, end_time: float) -> dict[str, Any]:
    """Everything of ``summary.json`` but its ``messages`` list."""
    return {
        "scenario": scenario,
        "seed": seed,
        "end_time": end_time,
        "balanced": books.balanced,
        "problems": books.problems,
        "totals": books.totals(),
    }


def summary_document(books: Books, *, scenario: str, seed: int, end_time: float) -> dict[str, Any]:
    """The ``summary.json`` document (docs/design.md contract)."""
    head = summary_head(books, scenario=scenario, seed=seed, end_time=end_time)
    return {**head, "messages": [row.as_json() for row in books.rows.values()]}


def summary(
    records: Iterable[Record], *, scenario: str, seed: int, end_time: float
) -> dict[str, Any]:
    """The ``summary.json`` document of a trace read back."""
    return summary_document(reconcile(records), scenario=scenario, seed=seed, end_time=end_time)


def write_summary(path: str | Path, document: dict[str, Any]) -> None:
    """Write a summary document as stable, readable JSON."""
    Path(path).write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", "utf-8")


_PRETTY = json.JSONEncoder(indent=2, ensure_ascii=False)


def write_summary_stream(path: str | Path, head: dict[str, Any], messages: Iterable[Any]) -> None:
    """Write ``{**head, "messages": [...]}`` as :func:`write_summary` would, entry by entry.

    ``messages`` holds :class:`DeliveryRow` objects or their ``as_json()`` dicts; the file is
    byte-identical to ``write_summary``'s, without the whole document as one string in memory.
    """
    with open(path, "w", encoding="utf-8", newline="\n") as out:
        top = _PRETTY.encode(head)
        out.write(top[:-2] if head else "{")  # open: everything up to the closing "\n}"
        out.write(',\n  "messages": ' if head else '\n  "messages": ')
        first = True
        for entry in _entries(messages):
            out.write("[\n    " if first else ",\n    ")
            out.write(_PRETTY.encode(entry).replace("\n", "\n    "))
            first = False
        out.write("[]\n}\n" if first else "\n  ]\n}\n")


def _entries(messages: Iterable[Any]) -> Iterator[dict[str, Any]]:
    for entry in messages:
        yield entry.as_json() if isinstance(entry, DeliveryRow) else entry
