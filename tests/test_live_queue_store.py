"""The live servers' queue on disk: written before the 250, read back after a restart."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from mailsim.live.queue_store import DurableQueue
from mailsim.mail.message import MailItem
from mailsim.mail.queue import RecipientState

BOOKS = MailItem(
    "books@india.com",
    "james@india.com",
    ("steve@usa.com", "ann@usa.com"),
    b"Subject: Books\r\n\r\nAtlas?\r\n",
)


def test_a_queued_message_is_on_disk_when_add_returns(tmp_path: Path) -> None:
    queue = DurableQueue(tmp_path, "india-mail")
    entry = queue.add(BOOKS, now=60.0, queue_id="Q1")
    assert entry.queue_id == "Q1"
    data = (tmp_path / "Q1.msg").read_bytes()
    assert data.startswith(b"MAILSIM-QUEUE 1\n") and data.endswith(BOOKS.content)


def test_a_restart_reads_back_states_attempts_and_retry_times(tmp_path: Path) -> None:
    queue = DurableQueue(tmp_path, "india-mail")
    entry = queue.add(BOOKS, now=60.0, queue_id="Q1")
    queue.start_attempt(entry, ["steve@usa.com", "ann@usa.com"], 60.0)
    queue.mark_deferred(entry, "steve@usa.com", "451 4.4.1 timed out", 2000.0, 90.0)
    queue.mark_delivered(entry, "ann@usa.com", 91.0, reply="250 ok")
    # ann's copy is delivered; steve waits for 2000 s. The process ends here.

    again = DurableQueue(tmp_path, "india-mail")
    assert again.load(now=500.0) == 1
    restored = again.get("books@india.com")
    assert restored is not None and restored.arrival == 60.0 and restored.queue_id == "Q1"
    steve, ann = restored.recipients["steve@usa.com"], restored.recipients["ann@usa.com"]
    assert (steve.state, steve.attempts, steve.next_attempt) == (
        RecipientState.DEFERRED,
        1,
        2000.0,
    )
    assert steve.last_reply == "451 4.4.1 timed out" and restored.first_failure == 90.0
    assert ann.state is RecipientState.DELIVERED  # not sent twice
    assert again.next_due_time() == 2000.0


def test_an_attempt_in_flight_when_the_server_stopped_is_due_at_once(tmp_path: Path) -> None:
    queue = DurableQueue(tmp_path)
    entry = queue.add(BOOKS, now=0.0, queue_id="Q1")
    queue.start_attempt(entry, ["steve@usa.com"], 5.0)
    again = DurableQueue(tmp_path)
    again.load(now=100.0)
    restored = again.get("books@india.com")
    assert restored is not None
    assert restored.recipients["steve@usa.com"].state is RecipientState.PENDING
    assert [b.domain for b in again.due(100.0)] == ["usa.com"]


def test_a_finished_message_leaves_no_files_after_the_sweep(tmp_path: Path) -> None:
    queue = DurableQueue(tmp_path)
    entry = queue.add(BOOKS, now=0.0, queue_id="Q1")
    queue.start_attempt(entry, list(entry.recipients), 1.0)
    queue.mark_delivered(entry, "steve@usa.com", 2.0)
    queue.mark_bounced(entry, "ann@usa.com", "550 5.1.1 unknown", 2.0)
    assert (tmp_path / "Q1.msg").exists()  # kept until the bounce is filed and swept
    queue.sweep()
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    assert DurableQueue(tmp_path).load(now=3.0) == 0


def test_an_unreadable_queue_file_is_kept_aside_not_fatal(tmp_path: Path) -> None:
    (tmp_path / "Q9.msg").write_bytes(b"garbage")
    queue = DurableQueue(tmp_path)
    assert queue.load(now=0.0) == 0
    assert (tmp_path / "Q9.bad").read_bytes() == b"garbage"


def test_kill_9_right_after_add_loses_nothing(tmp_path: Path) -> None:
    # A child queues 50 messages and kills itself with SIGKILL, no clean-up of any kind.
    script = textwrap.dedent(
        f"""
        import os, signal
        from mailsim.live.queue_store import DurableQueue
        from mailsim.mail.message import MailItem
        queue = DurableQueue({str(tmp_path)!r})
        for n in range(50):
            item = MailItem(f"m{{n}}@india.com", "james@india.com", ("steve@usa.com",),
                            b"Subject: n\\r\\n\\r\\nx\\r\\n")
            queue.add(item, now=float(n), queue_id=f"Q{{n:03d}}")
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True)
    assert result.returncode == -9, result.stderr
    queue = DurableQueue(tmp_path)
    assert queue.load(now=100.0) == 50
    assert [entry.item.id for entry in queue] == [f"m{n}@india.com" for n in range(50)]
