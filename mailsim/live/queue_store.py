"""A live server's outgoing queue on disk: nothing acknowledged is lost, even by ``kill -9``.

:class:`DurableQueue` is the mail-server core's :class:`~mailsim.mail.queue.OutgoingQueue` with
every change written through to a directory, one message per pair of files:

- ``<queue id>.msg``: a first line ``MAILSIM-QUEUE 1``, one line of JSON with the envelope
  (message id, sender, recipients, RET, ENVID, arrival time), then the message as received.
  It is written to a temporary name, fsynced, renamed into place, and the directory fsynced,
  all before :meth:`DurableQueue.add` returns, so before the server's 250 (RFC 5321 4.2.5, 6.1).
- ``<queue id>.state``: JSON with each recipient's state, attempts and retry time, replaced
  (write, fsync, rename) at every change.

When every recipient of a message is final (delivered, bounced, expired) both files are removed,
at the next :meth:`DurableQueue.sweep`: the core files a bounce right after marking its
recipients bounced, and sweeping after that, rather than in between, keeps a crash from losing
the bounce with the message. :meth:`DurableQueue.load` reads a directory back after a restart:
recipients that were being tried are due again at once. A crash between the next hop's 250 and
the state update means one more delivery of that copy: the duplicate RFC 5321 6.1 accepts
rather than a loss (RFC 1047).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from mailsim.live.storage import _fsync_directory
from mailsim.mail.message import MailItem
from mailsim.mail.queue import OutgoingQueue, QueueEntry, RecipientRecord

log = logging.getLogger("mailsim.live")

#: The first line of a queue file, naming the format and its version.
MAGIC = b"MAILSIM-QUEUE 1\n"


def write_durably(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that a crash leaves either the old or the new file.

    Write a temporary file, fsync it, rename it over ``path`` and fsync the directory (a rename
    is durable only once its directory is).
    """
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)
    _fsync_directory(str(path.parent))


class DurableQueue(OutgoingQueue):
    """An :class:`OutgoingQueue` that keeps every entry and state change in ``directory``.

    Args:
        directory: where the queue files live (created if missing).
        name: whose queue it is.
    """

    def __init__(self, directory: str | Path, name: str = "queue") -> None:
        super().__init__(name)
        #: The queue directory.
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._finished: list[QueueEntry] = []

    # -- contents -------------------------------------------------------------------------------

    def add(self, item: MailItem, now: float, queue_id: str | None = None) -> QueueEntry:
        entry = super().add(item, now, queue_id)
        envelope = {
            "id": item.id,
            "sender": item.sender,
            "recipients": list(entry.recipients),
            "ret": item.ret,
            "envid": item.envid,
            "arrival": now,
        }
        head = MAGIC + json.dumps(envelope).encode() + b"\n"
        write_durably(self._path(entry, ".msg"), head + item.content)
        return entry

    def load(self, now: float) -> int:
        """Read back every queued message; returns how many are queued again.

        Messages whose recipients are all final are removed; a file that cannot be read is
        renamed ``.bad`` (and logged) rather than lost or fatal.
        """
        found: list[tuple[float, str, Path, dict[str, Any], bytes]] = []
        for path in self.directory.glob("*.tmp"):
            path.unlink()  # a write that never finished: its rename did not happen
        for path in self.directory.glob("*.msg"):
            try:
                envelope, content = _read_message(path)
            except (OSError, ValueError) as error:
                log.error("%s: unreadable queue file %s (%s); kept as .bad", self.name, path, error)
                path.rename(path.with_suffix(".bad"))
                continue
            found.append((float(envelope["arrival"]), path.stem, path, envelope, content))
        loaded = 0
        for arrival, queue_id, path, envelope, content in sorted(found, key=lambda f: f[:2]):
            state = _read_state(path.with_suffix(".state"))
            item = MailItem(
                id=envelope["id"],
                sender=envelope["sender"],
                recipients=tuple(envelope["recipients"]),
                content=content,
                ret=envelope.get("ret") or "HDRS",
                envid=envelope.get("envid"),
            )
            records = [RecipientRecord(**fields) for fields in state.get("recipients", ())]
            entry = self.restore(
                item,
                arrival,
                queue_id,
                records,
                now,
                first_failure=state.get("first_failure"),
                warned=bool(state.get("warned", False)),
            )
            if entry is None:
                self._remove_files(queue_id)
            else:
                loaded += 1
        return loaded

    # -- transitions, written through --------------------------------------------------------------

    def start_attempt(self, entry: QueueEntry, rcpts: Iterable[str], now: float) -> None:
        super().start_attempt(entry, rcpts, now)
        self._save(entry)

    def mark_delivered(
        self, entry: QueueEntry, rcpt: str, now: float, reply: str | None = None
    ) -> None:
        super().mark_delivered(entry, rcpt, now, reply)
        self._save(entry)

    def mark_deferred(
        self, entry: QueueEntry, rcpt: str, reply: str, next_attempt: float, now: float
    ) -> None:
        super().mark_deferred(entry, rcpt, reply, next_attempt, now)
        self._save(entry)

    def mark_bounced(self, entry: QueueEntry, rcpt: str, reply: str, now: float) -> None:
        super().mark_bounced(entry, rcpt, reply, now)
        self._save(entry)

    def mark_expired(
        self, entry: QueueEntry, rcpt: str, now: float, reply: str | None = None
    ) -> None:
        super().mark_expired(entry, rcpt, now, reply)
        self._save(entry)

    def requeue(self, entry: QueueEntry, rcpt: str, now: float) -> None:
        super().requeue(entry, rcpt, now)
        self._save(entry)

    def mark_warned(self, entry: QueueEntry) -> None:
        super().mark_warned(entry)
        self._save(entry)

    def sweep(self) -> None:
        """Remove the files of messages that have left the queue since the last sweep."""
        finished, self._finished = self._finished, []
        for entry in finished:
            self._remove_files(entry.queue_id)

    # -- files ----------------------------------------------------------------------------------

    def _path(self, entry: QueueEntry, suffix: str) -> Path:
        return self.directory / f"{entry.queue_id}{suffix}"

    def _save(self, entry: QueueEntry) -> None:
        if entry.done:
            self._finished.append(entry)
        state = {
            "first_failure": entry.first_failure,
            "warned": entry.warned,
            "recipients": [asdict(RecipientRecord.of(r)) for r in entry.recipients.values()],
        }
        write_durably(self._path(entry, ".state"), json.dumps(state).encode())

    def _remove_files(self, queue_id: str) -> None:
        for suffix in (".msg", ".state"):
            with contextlib.suppress(FileNotFoundError):
                (self.directory / f"{queue_id}{suffix}").unlink()
        _fsync_directory(str(self.directory))


def _read_message(path: Path) -> tuple[dict[str, Any], bytes]:
    data = path.read_bytes()
    if not data.startswith(MAGIC):
        raise ValueError("not a mailsim queue file")
    line_end = data.index(b"\n", len(MAGIC))
    envelope = json.loads(data[len(MAGIC) : line_end])
    if not isinstance(envelope, dict) or "id" not in envelope:
        raise ValueError("no envelope")
    return envelope, data[line_end + 1 :]


def _read_state(path: Path) -> dict[str, Any]:
    try:
        state = json.loads(path.read_bytes())
    except FileNotFoundError:
        return {}
    except ValueError:
        log.error("unreadable queue state %s; its message is retried from the start", path)
        return {}
    return state if isinstance(state, dict) else {}
