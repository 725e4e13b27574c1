"""The outgoing queue: per-recipient states, what is due and in which order, and its invariants."""

from __future__ import annotations

import pytest

from mailsim.mail.message import MailItem
from mailsim.mail.queue import (
    ALLOWED,
    FINAL_STATES,
    OutgoingQueue,
    QueuedRecipient,
    QueueEntry,
    QueueStateError,
    RecipientState,
)


def _item(msg_id: str, *rcpts: str, sender: str = "james@india.com") -> MailItem:
    return MailItem(msg_id, sender, rcpts, b"Subject: x\r\n\r\nhello\r\n")


def _due(queue: OutgoingQueue, now: float) -> list[tuple[str, list[tuple[str, tuple[str, ...]]]]]:
    """``due(now)`` as plain data: [(domain, [(msg id, recipients), ...]), ...]."""
    return [
        (batch.domain, [(d.entry.item.id, d.recipients) for d in batch.entries])
        for batch in queue.due(now)
    ]


def test_new_message_is_due_at_once_grouped_by_destination_domain() -> None:
    queue = OutgoingQueue("india-mail")
    queue.add(_item("m1", "steve@usa.com", "anna@uk.co", "bob@USA.com"), now=10.0)
    assert queue.next_due_time() == 10.0
    assert _due(queue, 9.0) == []
    assert _due(queue, 10.0) == [
        ("usa.com", [("m1", ("steve@usa.com", "bob@USA.com"))]),
        ("uk.co", [("m1", ("anna@uk.co",))]),
    ]


def test_due_order_is_oldest_message_first_then_envelope_order() -> None:
    queue = OutgoingQueue()
    queue.add(_item("m1", "anna@uk.co"), now=0.0)
    queue.add(_item("m2", "steve@usa.com", "bob@usa.com"), now=1.0)
    queue.add(_item("m3", "carol@usa.com", "dave@uk.co"), now=2.0)
    # Domains in order of their oldest due message (uk.co has m1, usa.com starts at m2).
    assert _due(queue, 5.0) == [
        ("uk.co", [("m1", ("anna@uk.co",)), ("m3", ("dave@uk.co",))]),
        ("usa.com", [("m2", ("steve@usa.com", "bob@usa.com")), ("m3", ("carol@usa.com",))]),
    ]
    # Asking twice changes nothing.
    assert _due(queue, 5.0) == _due(queue, 5.0)


def test_active_recipients_are_not_due_and_deferred_ones_come_back_on_time() -> None:
    queue = OutgoingQueue()
    entry = queue.add(_item("m1", "steve@usa.com", "bob@usa.com"), now=0.0)
    queue.start_attempt(entry, ["steve@usa.com", "bob@usa.com"], now=0.0)
    assert _due(queue, 0.0) == []
    assert queue.next_due_time() is None
    queue.mark_deferred(entry, "steve@usa.com", "451 4.3.0 try later", next_attempt=1900.0, now=1.0)
    queue.mark_deferred(entry, "bob@usa.com", "451 4.3.0 try later", next_attempt=2100.0, now=1.0)
    assert queue.next_due_time() == 1900.0
    assert _due(queue, 1899.0) == []
    assert _due(queue, 1900.0) == [("usa.com", [("m1", ("steve@usa.com",))])]
    assert _due(queue, 2100.0) == [("usa.com", [("m1", ("steve@usa.com", "bob@usa.com"))])]
    rcpt = entry.recipients["steve@usa.com"]
    assert (rcpt.state, rcpt.attempts, rcpt.last_reply) == (
        RecipientState.DEFERRED,
        1,
        "451 4.3.0 try later",
    )


def test_rescheduling_a_due_recipient_moves_it_out_of_due() -> None:
    queue = OutgoingQueue()
    entry = queue.add(_item("m1", "steve@usa.com"), now=0.0)
    assert _due(queue, 0.0) != []
    # Throttled destination: pushed back without an attempt.
    queue.mark_deferred(entry, "steve@usa.com", "destination throttled", 300.0, now=0.0)
    assert _due(queue, 0.0) == []
    assert queue.next_due_time() == 300.0
    assert _due(queue, 300.0) == [("usa.com", [("m1", ("steve@usa.com",))])]


def test_first_failure_is_the_first_deferral() -> None:
    queue = OutgoingQueue()
    entry = queue.add(_item("m1", "steve@usa.com"), now=0.0)
    assert entry.first_failure is None
    queue.start_attempt(entry, ["steve@usa.com"], now=5.0)
    queue.mark_deferred(entry, "steve@usa.com", "421 closing", 1800.0, now=6.0)
    queue.start_attempt(entry, ["steve@usa.com"], now=1800.0)
    queue.mark_deferred(entry, "steve@usa.com", "421 closing", 3600.0, now=1801.0)
    assert entry.first_failure == 6.0
    assert entry.recipients["steve@usa.com"].attempts == 2
    assert entry.recipients["steve@usa.com"].last_attempt == 1800.0


def test_no_transition_leaves_a_final_state() -> None:
    queue = OutgoingQueue()
    entry = queue.add(_item("m1", "steve@usa.com", "bob@usa.com"), now=0.0)
    queue.start_attempt(entry, ["steve@usa.com"], now=0.0)
    queue.mark_delivered(entry, "steve@usa.com", now=1.0, reply="250 2.0.0 Ok")
    with pytest.raises(QueueStateError, match=r"steve@usa.com of m1: it is already delivered"):
        queue.mark_deferred(entry, "steve@usa.com", "451 later", 100.0, now=2.0)
    with pytest.raises(QueueStateError, match="a final state"):
        queue.mark_bounced(entry, "steve@usa.com", "550 no", now=2.0)
    with pytest.raises(QueueStateError):
        queue.start_attempt(entry, ["steve@usa.com"], now=2.0)
    for final in FINAL_STATES:
        assert ALLOWED[final] == frozenset()


def test_unknown_recipient_and_duplicate_message_are_refused() -> None:
    queue = OutgoingQueue("india-mail")
    entry = queue.add(_item("m1", "steve@usa.com"), now=0.0)
    with pytest.raises(QueueStateError, match="not a recipient of m1"):
        queue.mark_delivered(entry, "eve@usa.com", now=1.0)
    with pytest.raises(QueueStateError, match="already in the queue of india-mail"):
        queue.add(_item("m1", "steve@usa.com"), now=1.0)


def test_entry_leaves_the_queue_when_every_recipient_is_final() -> None:
    queue = OutgoingQueue()
    entry = queue.add(_item("m1", "steve@usa.com", "bob@usa.com", "carol@usa.com"), now=0.0)
    queue.start_attempt(entry, ["steve@usa.com", "bob@usa.com", "carol@usa.com"], now=0.0)
    queue.mark_delivered(entry, "steve@usa.com", now=1.0)
    queue.mark_bounced(entry, "bob@usa.com", "550 5.1.1 User unknown", now=1.0)
    assert "m1" in queue and len(queue) == 1
    queue.mark_deferred(entry, "carol@usa.com", "451 later", 1800.0, now=1.0)
    queue.start_attempt(entry, ["carol@usa.com"], now=1800.0)
    queue.mark_expired(entry, "carol@usa.com", now=1801.0)
    assert entry.done
    assert "m1" not in queue and len(queue) == 0 and queue.get("m1") is None
    assert queue.next_due_time() is None
    carol = entry.recipients["carol@usa.com"]
    assert (carol.state, carol.last_reply, carol.final_time) == (
        RecipientState.EXPIRED,
        "451 later",
        1801.0,
    )


def test_requeue_puts_an_interrupted_attempt_back() -> None:
    queue = OutgoingQueue()
    entry = queue.add(_item("m1", "steve@usa.com"), now=0.0)
    queue.start_attempt(entry, ["steve@usa.com"], now=0.0)
    queue.requeue(entry, "steve@usa.com", now=50.0)
    assert _due(queue, 50.0) == [("usa.com", [("m1", ("steve@usa.com",))])]
    with pytest.raises(QueueStateError, match="not active"):
        queue.requeue(entry, "steve@usa.com", now=51.0)


def test_crash_of_a_non_durable_queue_loses_every_waiting_recipient() -> None:
    queue = OutgoingQueue()
    one = queue.add(_item("m1", "steve@usa.com", "bob@usa.com"), now=0.0)
    queue.add(_item("m2", "anna@uk.co"), now=0.0)
    queue.start_attempt(one, ["steve@usa.com"], now=0.0)
    queue.mark_delivered(one, "steve@usa.com", now=1.0)
    lost = queue.lose_all(now=2.0)
    assert [e.item.id for e in lost] == ["m1", "m2"]
    assert one.recipients["steve@usa.com"].state is RecipientState.DELIVERED  # already gone
    assert one.recipients["bob@usa.com"].state is RecipientState.LOST
    assert len(queue) == 0 and _due(queue, 10.0) == []


def test_delay_warning_is_due_once_per_message() -> None:
    queue = OutgoingQueue()
    entry = queue.add(_item("m1", "steve@usa.com"), now=0.0)
    queue.add(_item("m2", "bob@usa.com"), now=0.0)  # never tried: nothing deferred, no warning
    queue.start_attempt(entry, ["steve@usa.com"], now=0.0)
    queue.mark_deferred(entry, "steve@usa.com", "451 later", 1800.0, now=0.0)
    assert queue.warnings_due(now=3 * 3600.0, after=4 * 3600.0) == []
    assert queue.warnings_due(now=4 * 3600.0, after=4 * 3600.0) == [entry]
    queue.mark_warned(entry)
    assert entry.warned
    assert queue.warnings_due(now=5 * 3600.0, after=4 * 3600.0) == []


def test_duplicate_recipients_are_merged() -> None:
    queue = OutgoingQueue()
    entry = queue.add(_item("m1", "steve@usa.com", "steve@usa.com"), now=0.0)
    assert list(entry.recipients) == ["steve@usa.com"]


def test_queued_messages_are_plain_slotted_objects() -> None:
    queue = OutgoingQueue()
    entry = queue.add(_item("m1", "steve@usa.com"), now=0.0)
    rcpt = entry.recipients["steve@usa.com"]
    for obj in (queue, entry, rcpt):
        assert not hasattr(obj, "__dict__")
    # Nothing callable hangs off an entry: no process, no callback.
    for obj, cls in ((entry, QueueEntry), (rcpt, QueuedRecipient)):
        for name in cls.__slots__:
            assert not callable(getattr(obj, name)), name


def test_many_messages_stay_in_order_through_deferrals() -> None:
    queue = OutgoingQueue()
    domains = ["usa.com", "uk.co", "in.net"]
    entries = [
        queue.add(_item(f"m{i}", f"u{i}@{domains[i % 3]}"), now=float(i)) for i in range(3000)
    ]
    batches = queue.due(3000.0)
    assert [b.domain for b in batches] == domains
    assert sum(len(b.entries) for b in batches) == 3000
    for i, entry in enumerate(entries):
        rcpt = next(iter(entry.recipients))
        queue.start_attempt(entry, [rcpt], now=3000.0)
        # Deferred in reverse order of arrival so the heap must sort them back.
        queue.mark_deferred(entry, rcpt, "451 later", 10_000.0 - i, now=3000.0)
    assert queue.next_due_time() == 10_000.0 - 2999
    due = queue.due(9_000.0)
    # Due by 9000: 10000 - i <= 9000, i.e. i = 1000 .. 2999, 2000 messages.
    assert sum(len(b.entries) for b in due) == 2000
    # Oldest first again, whatever order they were deferred in: m1000 (1000 % 3 = 1, uk.co).
    assert due[0].domain == "uk.co" and due[0].entries[0].entry.item.id == "m1000"
    assert [d.entry.item.id for d in due[0].entries[:3]] == ["m1000", "m1003", "m1006"]
