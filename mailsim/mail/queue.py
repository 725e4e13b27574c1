"""A mail server's outgoing queue: one entry per message, one state per recipient.

When James's server accepts his message it writes it to the queue; the SMTP client side takes
what is due, grouped by destination domain (one connection, one ``MAIL FROM``, several ``RCPT
TO``, one ``DATA`` per message and destination, RFC 5321 4.5.4.1), and reports back per
recipient: delivered, deferred until a later time, bounced, or expired. Only this module changes
those states, through methods that refuse impossible moves (nothing leaves a final state).

Theory of operation. A recipient's life::

    PENDING --start_attempt--> ACTIVE --mark_delivered--> DELIVERED  (final)
       |                         |------mark_deferred---> DEFERRED --start_attempt--> ACTIVE ...
       |                         |------mark_bounced----> BOUNCED    (final)
       |                         |------mark_expired----> EXPIRED    (final: gave up, bounced)
       |                         '------requeue-------->  PENDING   (attempt never happened)
       '-- any non-final state --lose_all--> LOST (final: a non-durable queue crashed)

A waiting recipient (PENDING or DEFERRED) becomes due at its ``next_attempt`` time; a heap keyed
by that time (with lazy removal of stale keys) makes :meth:`OutgoingQueue.due` and
:meth:`OutgoingQueue.next_due_time` cost O(log n) per change instead of a scan of the whole queue.
Entries are plain slotted objects that hold the message and numbers, never a process or a
callback, so a queue of a hundred thousand messages stays cheap. The queue records nothing in the
trace itself; the mail server that drives it does.
"""

from __future__ import annotations

import enum
import heapq
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from mailsim.mail.message import MailItem, domain_of


class RecipientState(enum.Enum):
    """Where one recipient of a queued message stands."""

    #: Queued, never tried yet; due at once.
    PENDING = "pending"
    #: Being tried right now (a delivery attempt is under way).
    ACTIVE = "active"
    #: Failed temporarily; waits for ``next_attempt``.
    DEFERRED = "deferred"
    #: Accepted by the next hop (a 2xx after DATA). Final.
    DELIVERED = "delivered"
    #: Refused permanently (a 5xx). Final; the sender gets a bounce.
    BOUNCED = "bounced"
    #: Given up after the retry policy's time limit. Final; the sender gets a bounce.
    EXPIRED = "expired"
    #: Lost with a non-durable queue when its server crashed. Final.
    LOST = "lost"


_S = RecipientState

#: States no transition leaves.
FINAL_STATES = frozenset({_S.DELIVERED, _S.BOUNCED, _S.EXPIRED, _S.LOST})

#: States whose recipients wait for their next attempt time.
WAITING_STATES = frozenset({_S.PENDING, _S.DEFERRED})

#: Every allowed move, in one table: ``ALLOWED[from_state]`` is the set of states it may go to.
ALLOWED: dict[RecipientState, frozenset[RecipientState]] = {
    _S.PENDING: frozenset({_S.ACTIVE, _S.DEFERRED, _S.DELIVERED, _S.BOUNCED, _S.EXPIRED, _S.LOST}),
    _S.DEFERRED: frozenset({_S.ACTIVE, _S.DEFERRED, _S.DELIVERED, _S.BOUNCED, _S.EXPIRED, _S.LOST}),
    _S.ACTIVE: frozenset({_S.PENDING, _S.DEFERRED, _S.DELIVERED, _S.BOUNCED, _S.EXPIRED, _S.LOST}),
    _S.DELIVERED: frozenset(),
    _S.BOUNCED: frozenset(),
    _S.EXPIRED: frozenset(),
    _S.LOST: frozenset(),
}


class QueueStateError(Exception):
    """A queue transition that the state table forbids (a programming error in the caller)."""


class QueuedRecipient:
    """The delivery state of one recipient of a queued message."""

    __slots__ = (
        "address",
        "attempts",
        "domain",
        "entry",
        "final_time",
        "index",
        "last_attempt",
        "last_reply",
        "next_attempt",
        "state",
    )

    def __init__(self, entry: QueueEntry, index: int, address: str, now: float) -> None:
        #: The message this recipient belongs to.
        self.entry = entry
        #: Position among the message's recipients (keeps due order stable).
        self.index = index
        #: The recipient address (forward-path), as given in RCPT TO.
        self.address = address
        #: Its domain, lower-cased: what the MX lookup and the grouping use.
        self.domain = domain_of(address)
        #: Where it stands.
        self.state = _S.PENDING
        #: Attempts started so far.
        self.attempts = 0
        #: When it is due next (meaningful while PENDING or DEFERRED).
        self.next_attempt = now
        #: When the latest attempt started, or None.
        self.last_attempt: float | None = None
        #: The latest reply or failure text (``'451 4.3.0 try later'``, ``'connection refused'``).
        self.last_reply: str | None = None
        #: When it reached a final state, or None.
        self.final_time: float | None = None

    @property
    def is_final(self) -> bool:
        """True once delivered, bounced, expired or lost."""
        return self.state in FINAL_STATES

    def __repr__(self) -> str:
        return (
            f"<QueuedRecipient {self.address} of {self.entry.item.id}: {self.state.value}, "
            f"attempts={self.attempts}, next={self.next_attempt}>"
        )


class QueueEntry:
    """One queued message: the item, when it arrived, and its recipients' states."""

    __slots__ = ("arrival", "first_failure", "item", "queue_id", "recipients", "seq", "warned")

    def __init__(self, item: MailItem, now: float, seq: int, queue_id: str) -> None:
        #: The message and its envelope.
        self.item = item
        #: When it entered the queue (simulated seconds).
        self.arrival = now
        #: When a recipient first failed temporarily, or None (Exim counts cutoffs from here).
        self.first_failure: float | None = None
        #: Arrival order in this queue (ties in due order go to the older message).
        self.seq = seq
        #: This server's id for the message (for Received headers and logs).
        self.queue_id = queue_id
        #: Whether a delay warning went to the sender already (at most one per message).
        self.warned = False
        #: The recipients by address, in envelope order; duplicates are merged.
        self.recipients: dict[str, QueuedRecipient] = {}
        for address in item.recipients:
            if address not in self.recipients:
                self.recipients[address] = QueuedRecipient(self, len(self.recipients), address, now)

    @property
    def done(self) -> bool:
        """True when every recipient is in a final state (the entry has left the queue)."""
        return all(r.state in FINAL_STATES for r in self.recipients.values())

    def in_state(self, *states: RecipientState) -> list[QueuedRecipient]:
        """The recipients now in one of ``states``, in envelope order."""
        return [r for r in self.recipients.values() if r.state in states]

    def age(self, now: float) -> float:
        """Seconds since the message arrived."""
        return now - self.arrival

    def __repr__(self) -> str:
        states = ", ".join(f"{a}={r.state.value}" for a, r in self.recipients.items())
        return f"<QueueEntry {self.item.id} ({self.queue_id}) arrived {self.arrival}: {states}>"


@dataclass(frozen=True, slots=True)
class DueEntry:
    """One message's recipients that are due, all in one destination domain."""

    #: The queued message.
    entry: QueueEntry
    #: The due recipient addresses, in envelope order.
    recipients: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DueBatch:
    """Everything due for one destination domain: what one connection to its MX can carry."""

    #: The destination domain (lower case).
    domain: str
    #: The due messages, oldest first.
    entries: tuple[DueEntry, ...]


@dataclass(frozen=True, slots=True)
class RecipientRecord:
    """One recipient's state as a durable queue writes it and reads it back (``restore``)."""

    #: The recipient address.
    address: str
    #: The :class:`RecipientState` value (``"deferred"``).
    state: str
    #: Attempts started so far.
    attempts: int = 0
    #: When it is due next.
    next_attempt: float = 0.0
    #: When the latest attempt started, or None.
    last_attempt: float | None = None
    #: The latest reply or failure text.
    last_reply: str | None = None

    @classmethod
    def of(cls, rcpt: QueuedRecipient) -> RecipientRecord:
        """The record of a queued recipient."""
        return cls(
            rcpt.address,
            rcpt.state.value,
            rcpt.attempts,
            rcpt.next_attempt,
            rcpt.last_attempt,
            rcpt.last_reply,
        )


#: A heap key: (due time, entry seq, recipient index, push number, recipient).
_HeapKey = tuple[float, int, int, int, QueuedRecipient]


class OutgoingQueue:
    """The outgoing queue of one mail server.

    Args:
        name: whose queue it is (used in error messages and queue ids).
    """

    __slots__ = ("_entries", "_heap", "_pushes", "_ready", "_seq", "_unwarned", "name")

    def __init__(self, name: str = "queue") -> None:
        #: Whose queue this is.
        self.name = name
        self._entries: dict[str, QueueEntry] = {}
        # (due time, entry seq, recipient index, push number, recipient); the push number keeps
        # keys unique so recipients are never compared. Stale keys are skipped when popped.
        self._heap: list[_HeapKey] = []
        self._pushes = 0
        # Recipients whose due time has passed, by (entry seq, index), until they move on.
        self._ready: dict[tuple[int, int], QueuedRecipient] = {}
        self._unwarned: dict[str, QueueEntry] = {}
        self._seq = 0

    # --- contents ------------------------------------------------------------------------

    def add(self, item: MailItem, now: float, queue_id: str | None = None) -> QueueEntry:
        """Queue ``item`` at time ``now``; all its recipients are PENDING and due at once.

        Args:
            item: the message with its envelope.
            now: the arrival time.
            queue_id: this server's id for it; by default ``'Q'`` plus a hex serial number.

        Returns:
            The new entry.

        Raises:
            QueueStateError: a message with this id is already queued here.
        """
        if item.id in self._entries:
            raise QueueStateError(f"message {item.id!r} is already in the queue of {self.name}")
        self._seq += 1
        entry = QueueEntry(item, now, self._seq, queue_id or f"Q{self._seq:06X}")
        self._entries[item.id] = entry
        self._unwarned[item.id] = entry
        for rcpt in entry.recipients.values():
            self._schedule(rcpt, now)
        return entry

    def restore(
        self,
        item: MailItem,
        arrival: float,
        queue_id: str,
        recipients: Iterable[RecipientRecord],
        now: float,
        *,
        first_failure: float | None = None,
        warned: bool = False,
    ) -> QueueEntry | None:
        """Put back an entry read from disk (a durable queue after its server restarted).

        Recipients keep their state, attempts and retry time; one that was ACTIVE when the
        server stopped is PENDING and due at ``now`` (its attempt may or may not have happened:
        RFC 5321 6.1 prefers a possible duplicate to a loss). An entry whose recipients are all
        final is not queued.

        Returns:
            The entry, or None when nothing of it is left to deliver.
        """
        if item.id in self._entries:
            raise QueueStateError(f"message {item.id!r} is already in the queue of {self.name}")
        self._seq += 1
        entry = QueueEntry(item, arrival, self._seq, queue_id)
        entry.first_failure = first_failure
        entry.warned = warned
        for record in recipients:
            rcpt = entry.recipients.get(record.address)
            if rcpt is None:
                continue
            state = RecipientState(record.state)
            rcpt.attempts = record.attempts
            rcpt.last_attempt = record.last_attempt
            rcpt.last_reply = record.last_reply
            rcpt.next_attempt = record.next_attempt
            if state is _S.ACTIVE:
                state, rcpt.next_attempt = _S.PENDING, now
            rcpt.state = state
            if state in FINAL_STATES:
                rcpt.final_time = now
        if entry.done:
            return None
        self._entries[item.id] = entry
        if not warned:
            self._unwarned[item.id] = entry
        for rcpt in entry.recipients.values():
            if rcpt.state in WAITING_STATES:
                self._schedule(rcpt, rcpt.next_attempt)
        return entry

    def get(self, msg_id: str) -> QueueEntry | None:
        """The queued entry for ``msg_id``, or None if it is not (or no longer) queued."""
        return self._entries.get(msg_id)

    def __contains__(self, msg_id: object) -> bool:
        return msg_id in self._entries

    def __len__(self) -> int:
        """Messages still queued (at least one recipient not final)."""
        return len(self._entries)

    def __iter__(self) -> Iterator[QueueEntry]:
        """The queued entries, oldest first."""
        return iter(list(self._entries.values()))

    def counts(self) -> dict[str, int]:
        """Queued recipients per state name (only non-final states are still in the queue)."""
        result = {state.value: 0 for state in (_S.PENDING, _S.ACTIVE, _S.DEFERRED)}
        for entry in self._entries.values():
            for rcpt in entry.recipients.values():
                if rcpt.state not in FINAL_STATES:
                    result[rcpt.state.value] += 1
        return result

    # --- what is due ---------------------------------------------------------------------

    def due(self, now: float) -> list[DueBatch]:
        """The waiting recipients due at ``now``, grouped by destination domain.

        Order is deterministic: domains in order of their oldest due message; within a domain,
        messages in arrival order; within a message, recipients in envelope order. Asking does not
        change anything: call :meth:`start_attempt` for what you actually try.

        Args:
            now: the current time.

        Returns:
            One batch per domain with something due; empty when nothing is.
        """
        self._collect_ready(now)
        groups: dict[str, dict[int, list[str]]] = {}
        entries: dict[int, QueueEntry] = {}
        for key in sorted(self._ready):
            rcpt = self._ready[key]
            if rcpt.state not in WAITING_STATES or rcpt.next_attempt > now:
                del self._ready[key]  # it moved on (or was re-scheduled; the heap has it again)
                continue
            seq = rcpt.entry.seq
            entries[seq] = rcpt.entry
            groups.setdefault(rcpt.domain, {}).setdefault(seq, []).append(rcpt.address)
        return [
            DueBatch(
                domain,
                tuple(DueEntry(entries[seq], tuple(addrs)) for seq, addrs in by_entry.items()),
            )
            for domain, by_entry in groups.items()
        ]

    def next_due_time(self) -> float | None:
        """When the next waiting recipient is due (maybe in the past), or None if none waits."""
        best: float | None = None
        for key, rcpt in list(self._ready.items()):
            if rcpt.state not in WAITING_STATES:
                del self._ready[key]
            elif best is None or rcpt.next_attempt < best:
                best = rcpt.next_attempt
        heap = self._heap
        while heap and not _current(heap[0]):
            heapq.heappop(heap)
        if heap and (best is None or heap[0][0] < best):
            best = heap[0][0]
        return best

    def _collect_ready(self, now: float) -> None:
        heap = self._heap
        while heap and heap[0][0] <= now:
            item = heapq.heappop(heap)
            if _current(item):
                rcpt = item[4]
                self._ready[(rcpt.entry.seq, rcpt.index)] = rcpt

    # --- transitions ---------------------------------------------------------------------

    def start_attempt(self, entry: QueueEntry, rcpts: Iterable[str], now: float) -> None:
        """Recipients ``rcpts`` of ``entry`` are being tried now: ACTIVE, one more attempt each."""
        for address in rcpts:
            rcpt = self._move(entry, address, _S.ACTIVE, "start an attempt for")
            rcpt.attempts += 1
            rcpt.last_attempt = now

    def mark_delivered(
        self, entry: QueueEntry, rcpt: str, now: float, reply: str | None = None
    ) -> None:
        """The next hop accepted ``rcpt``'s copy (2xx after DATA, RFC 5321 4.2.5). Final."""
        self._finish(entry, rcpt, _S.DELIVERED, now, reply, "mark delivered")

    def mark_deferred(
        self, entry: QueueEntry, rcpt: str, reply: str, next_attempt: float, now: float
    ) -> None:
        """``rcpt`` failed temporarily with ``reply``; try again at ``next_attempt``.

        The first temporary failure of any recipient sets the entry's ``first_failure``.
        """
        if next_attempt < now:
            raise QueueStateError(
                f"cannot defer {rcpt} of {entry.item.id} to {next_attempt}, before now ({now})"
            )
        r = self._move(entry, rcpt, _S.DEFERRED, "defer")
        r.last_reply = reply
        if entry.first_failure is None:
            entry.first_failure = now
        self._schedule(r, next_attempt)

    def mark_bounced(self, entry: QueueEntry, rcpt: str, reply: str, now: float) -> None:
        """``rcpt`` was refused permanently (5xx) with ``reply``. Final."""
        self._finish(entry, rcpt, _S.BOUNCED, now, reply, "bounce")

    def mark_expired(
        self, entry: QueueEntry, rcpt: str, now: float, reply: str | None = None
    ) -> None:
        """The retry policy gave up on ``rcpt`` (too old). Final; the last reply is kept."""
        self._finish(entry, rcpt, _S.EXPIRED, now, reply, "expire")

    def requeue(self, entry: QueueEntry, rcpt: str, now: float) -> None:
        """An ACTIVE ``rcpt`` goes back to PENDING, due at ``now`` (its attempt never took place,
        e.g. its server restarted with a durable queue)."""
        r = entry.recipients.get(rcpt)
        if r is not None and r.state is not _S.ACTIVE:
            raise QueueStateError(
                f"cannot requeue {rcpt} of {entry.item.id}: it is {r.state.value}, not active"
            )
        r = self._move(entry, rcpt, _S.PENDING, "requeue")
        self._schedule(r, now)

    def lose_all(self, now: float) -> list[QueueEntry]:
        """A non-durable queue's server crashed: every queued recipient is LOST; queue empties.

        Returns:
            The entries that were lost (the caller records ``mail.lost`` for each recipient).
        """
        lost = list(self._entries.values())
        for entry in lost:
            for rcpt in entry.recipients.values():
                if rcpt.state not in FINAL_STATES:
                    rcpt.state = _S.LOST
                    rcpt.final_time = now
        self._entries.clear()
        self._unwarned.clear()
        self._ready.clear()
        self._heap.clear()
        return lost

    def warnings_due(self, now: float, after: float) -> list[QueueEntry]:
        """Entries older than ``after`` with a deferred recipient and no delay warning sent yet.

        Call :meth:`mark_warned` for each once its warning is composed.
        """
        return [
            entry
            for entry in self._unwarned.values()
            if now - entry.arrival >= after
            and any(r.state is _S.DEFERRED for r in entry.recipients.values())
        ]

    def mark_warned(self, entry: QueueEntry) -> None:
        """A delay warning for ``entry`` has been sent; it gets no other."""
        entry.warned = True
        self._unwarned.pop(entry.item.id, None)

    # --- internals -----------------------------------------------------------------------

    def _schedule(self, rcpt: QueuedRecipient, when: float) -> None:
        rcpt.next_attempt = when
        self._pushes += 1
        heapq.heappush(self._heap, (when, rcpt.entry.seq, rcpt.index, self._pushes, rcpt))

    def _move(
        self, entry: QueueEntry, address: str, new: RecipientState, verb: str
    ) -> QueuedRecipient:
        rcpt = entry.recipients.get(address)
        if rcpt is None:
            raise QueueStateError(f"cannot {verb} {address}: not a recipient of {entry.item.id}")
        if new not in ALLOWED[rcpt.state]:
            final = " (a final state)" if rcpt.state in FINAL_STATES else ""
            raise QueueStateError(
                f"cannot {verb} {address} of {entry.item.id}: it is already "
                f"{rcpt.state.value}{final}"
            )
        rcpt.state = new
        return rcpt

    def _finish(
        self,
        entry: QueueEntry,
        address: str,
        new: RecipientState,
        now: float,
        reply: str | None,
        verb: str,
    ) -> None:
        rcpt = self._move(entry, address, new, verb)
        rcpt.final_time = now
        if reply is not None:
            rcpt.last_reply = reply
        if entry.done:
            self._entries.pop(entry.item.id, None)
            self._unwarned.pop(entry.item.id, None)


def _current(item: _HeapKey) -> bool:
    """Whether a heap key still describes its recipient (not stale after a state change)."""
    rcpt = item[4]
    return rcpt.state in WAITING_STATES and rcpt.next_attempt == item[0]
