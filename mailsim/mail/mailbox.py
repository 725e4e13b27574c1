"""Mailboxes on a mail server: where Steve's mail waits until his user agent fetches it.

A :class:`Mailbox` is what POP3 (RFC 1939) needs: a list of messages with their size in octets
(counting CRLF as two) and a unique id that never changes (for UIDL), a lock so only one POP3
session at a time opens it, and deletions that happen only when the session commits them (QUIT
in the TRANSACTION state moves to UPDATE; a dropped session deletes nothing). A
:class:`MailStore` maps user names to mailboxes. Any mailbox can be exported to a Maildir or an
mbox file with the standard :mod:`mailbox` module, so a real mail client (mutt, Thunderbird) can
open what the simulation delivered.

The maildrop interface the POP3 adapter uses is three members of :class:`Mailbox`: ``messages``
(each with ``size``, ``uid``, ``content``), ``commit_deletions(indices)`` and ``release()``;
:meth:`MailStore.open_maildrop` hands out a locked mailbox or an error text.
"""

from __future__ import annotations

import mailbox as stdlib_mailbox
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from mailsim.mail.message import SIM_EPOCH, sim_datetime, to_crlf

# A mailbox name that can be a file or directory name as it is: letters, digits and the atext
# characters but "/" (RFC 5322 3.2.3), starting with a letter or digit, no "..".
_PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9!#$%&'*+=?^_`{|}~.-]{0,63}")
_KEPT = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


def mailbox_file_name(name: str) -> str:
    """A file or directory name for mailbox ``name`` that stays inside the folder it is put in.

    A plain name (``steve``, ``john.smith``) is kept as it is, so existing Maildirs keep theirs.
    Any other (the characters of a quoted local part: ``john smith``, ``../etc``, ``a/b``) is
    written ``=`` and then each octet of its UTF-8 outside letters, digits, ``_`` and ``-`` as
    ``=XX``: ``=john=20smith``. No plain name starts with ``=``, so no two names meet.
    """
    if _PLAIN_NAME.fullmatch(name) and ".." not in name:
        return name
    return "=" + "".join(
        chr(octet) if octet in _KEPT else f"={octet:02X}" for octet in name.encode("utf-8")
    )


class MailboxLocked(Exception):
    """The mailbox is already open in another POP3 session (RFC 1939 section 4)."""


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """One message in a mailbox.

    Attributes:
        uid: unique within its mailbox and never reused; printable ASCII, at most 70 characters,
            as UIDL requires (RFC 1939 section 7).
        content: the message, CRLF line ends (what RETR sends before byte-stuffing).
        delivered_at: simulated time of delivery into the mailbox.
        msg_id: the simulation's message id, for the trace (``mail.fetch``).
        sender: the envelope sender (reverse-path), ``''`` for a bounce.
        size: octets of ``content``, CRLF counted as two (what LIST and STAT report).
    """

    uid: str
    content: bytes
    delivered_at: float = 0.0
    msg_id: str = ""
    sender: str = ""
    size: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "size", len(self.content))


class Mailbox:
    """The mailbox of one user.

    While locked (see :meth:`lock`), ``messages`` is the snapshot taken when the session opened:
    new deliveries are stored but appear only in the next session, so POP3 message numbers stay
    valid for the whole session (RFC 1939 section 4: the maildrop is fixed once locked).

    Args:
        user: the user's name (the POP3 USER name, usually the address's local part).
    """

    __slots__ = ("_messages", "_next_uid", "_snapshot", "user")

    def __init__(self, user: str) -> None:
        #: Whose mailbox this is.
        self.user = user
        self._messages: list[StoredMessage] = []
        self._snapshot: tuple[StoredMessage, ...] | None = None
        self._next_uid = 1

    # --- delivery ------------------------------------------------------------------------

    def deliver(
        self, content: bytes, *, t: float = 0.0, msg_id: str = "", sender: str = ""
    ) -> StoredMessage:
        """Store a message; line ends are normalised to CRLF.

        Args:
            content: the message (normally already CRLF; bare LF is converted).
            t: simulated delivery time.
            msg_id: the simulation's message id.
            sender: the envelope sender.

        Returns:
            The stored message, with its new uid.
        """
        stored = StoredMessage(
            uid=f"{self._next_uid:08d}",
            content=to_crlf(content),
            delivered_at=t,
            msg_id=msg_id,
            sender=sender,
        )
        self._next_uid += 1
        self._messages.append(stored)
        return stored

    # --- the maildrop interface POP3 uses --------------------------------------------------

    @property
    def messages(self) -> tuple[StoredMessage, ...]:
        """The messages: the session's snapshot while locked, else everything stored, in order."""
        if self._snapshot is not None:
            return self._snapshot
        return tuple(self._messages)

    @property
    def locked(self) -> bool:
        """True while a POP3 session holds the mailbox."""
        return self._snapshot is not None

    def lock(self) -> Mailbox:
        """Open the mailbox for one session and fix its message list; returns the mailbox.

        Raises:
            MailboxLocked: another session holds it.
        """
        if self._snapshot is not None:
            raise MailboxLocked(f"the mailbox of {self.user} is already open in another session")
        self._snapshot = tuple(self._messages)
        return self

    def commit_deletions(self, indices: Iterable[int]) -> int:
        """Delete the session's messages at ``indices`` (0-based into :attr:`messages`).

        Called once, at QUIT in the TRANSACTION state (RFC 1939 section 6, UPDATE state).
        The lock is kept; call :meth:`release` afterwards.

        Args:
            indices: 0-based positions in the session's ``messages`` (POP3 number minus one).

        Returns:
            How many messages were deleted.

        Raises:
            MailboxLocked: the mailbox is not open in a session.
            IndexError: an index is outside the session's message list.
        """
        snapshot = self._snapshot
        if snapshot is None:
            raise MailboxLocked(f"the mailbox of {self.user} is not open in a session")
        doomed: set[str] = set()
        for index in indices:
            if not 0 <= index < len(snapshot):
                raise IndexError(
                    f"message index {index} is outside 0..{len(snapshot) - 1} in the mailbox of "
                    f"{self.user} (indices are 0-based: POP3 number minus one)"
                )
            doomed.add(snapshot[index].uid)
        if doomed:
            self._messages = [m for m in self._messages if m.uid not in doomed]
        return len(doomed)

    def release(self) -> None:
        """End the session: unlock (no effect if not locked)."""
        self._snapshot = None

    # --- inspection ----------------------------------------------------------------------

    def __len__(self) -> int:
        """Messages stored now (including any delivered during an open session)."""
        return len(self._messages)

    def __iter__(self) -> Iterator[StoredMessage]:
        return iter(list(self._messages))

    @property
    def total_size(self) -> int:
        """Octets of every message in :attr:`messages` (what STAT reports)."""
        return sum(m.size for m in self.messages)

    def __repr__(self) -> str:
        state = "locked" if self.locked else "unlocked"
        return f"<Mailbox {self.user}: {len(self._messages)} messages, {state}>"


class MailStore:
    """All mailboxes of one mail server, by user name (case-insensitive, as most servers treat
    local parts; RFC 5321 2.4 leaves it to the server).

    Args:
        users: the users to create mailboxes for.
    """

    __slots__ = ("_boxes",)

    def __init__(self, users: Iterable[str] = ()) -> None:
        self._boxes: dict[str, Mailbox] = {}
        for user in users:
            self.add_user(user)

    def add_user(self, user: str) -> Mailbox:
        """The mailbox of ``user``, created if new."""
        key = user.lower()
        box = self._boxes.get(key)
        if box is None:
            box = self._boxes[key] = Mailbox(user)
        return box

    def get(self, user: str) -> Mailbox | None:
        """The mailbox of ``user``, or None if there is no such user."""
        return self._boxes.get(user.lower())

    def mailbox(self, user: str) -> Mailbox:
        """The mailbox of ``user``.

        Raises:
            KeyError: no such user (the message names the known ones).
        """
        box = self._boxes.get(user.lower())
        if box is None:
            known = ", ".join(sorted(b.user for b in self._boxes.values())) or "none"
            raise KeyError(f"no mailbox for user {user!r}; known users: {known}")
        return box

    def __contains__(self, user: object) -> bool:
        return isinstance(user, str) and user.lower() in self._boxes

    def __iter__(self) -> Iterator[Mailbox]:
        """The mailboxes, in the order their users were added."""
        return iter(list(self._boxes.values()))

    def __len__(self) -> int:
        return len(self._boxes)

    def deliver(
        self, user: str, content: bytes, *, t: float = 0.0, msg_id: str = "", sender: str = ""
    ) -> StoredMessage:
        """Store ``content`` in the mailbox of ``user`` (which must exist), as Mailbox.deliver."""
        return self.mailbox(user).deliver(content, t=t, msg_id=msg_id, sender=sender)

    def open_maildrop(self, user: str) -> Mailbox | str:
        """The POP3 hook: lock and return the mailbox of ``user``, or say why not.

        Returns:
            The locked mailbox, or the text for the ``-ERR`` reply, starting with its RFC 2449 /
            RFC 3206 response code: ``[IN-USE]`` when another session holds the mailbox,
            ``[SYS/PERM]`` when there is none.
        """
        box = self._boxes.get(user.lower())
        if box is None:
            return f"[SYS/PERM] no mailbox for {user}"
        if box.locked:
            return f"[IN-USE] maildrop of {box.user} is locked by another session"
        return box.lock()

    def export(
        self, directory: str | Path, fmt: str = "maildir", replace: bool = False
    ) -> dict[str, Path]:
        """Export every mailbox under ``directory``, as Maildir ``<user>/`` or file ``<user>.mbox``.

        The file names are :func:`mailbox_file_name`'s, so no user name leads outside
        ``directory``.

        Returns:
            The path written for each user.
        """
        root = Path(directory)
        root.mkdir(parents=True, exist_ok=True)
        written: dict[str, Path] = {}
        for box in self._boxes.values():
            name = mailbox_file_name(box.user)
            if fmt == "maildir":
                written[box.user] = export_maildir(box, root / name, replace=replace)
            elif fmt == "mbox":
                written[box.user] = export_mbox(box, root / f"{name}.mbox", replace=replace)
            else:
                raise ValueError(f"export format must be 'maildir' or 'mbox', got {fmt!r}")
        return written


# --- export for real mail clients ---------------------------------------------------------------


def _local_line_ends(content: bytes) -> bytes:
    """Maildir and mbox files hold messages with the local (LF) line ends."""
    return content.replace(b"\r\n", b"\n")


def export_maildir(box: Mailbox, path: str | Path, replace: bool = False) -> Path:
    """Write the messages of ``box`` into a Maildir at ``path`` (created if missing), in ``new/``.

    Args:
        box: the mailbox.
        path: the Maildir directory.
        replace: remove the messages already in that Maildir first; without it a Maildir that
            holds messages is refused, so a real mailbox is never mixed up or emptied by mistake.

    Returns:
        The Maildir path.

    Raises:
        FileExistsError: the Maildir already holds messages and ``replace`` is False.
    """
    target = Path(path)
    folder = stdlib_mailbox.Maildir(target, create=True)
    try:
        if len(folder):
            if not replace:
                raise FileExistsError(
                    f"{target} already holds {len(folder)} messages; export to an empty directory "
                    "or pass replace=True"
                )
            folder.clear()
        for message in box:
            folder.add(_local_line_ends(message.content))
    finally:
        folder.close()
    return target


def export_mbox(
    box: Mailbox, path: str | Path, replace: bool = False, epoch: datetime = SIM_EPOCH
) -> Path:
    """Write the messages of ``box`` to an mbox file at ``path``.

    Each message gets a ``From sender date`` separator line with its simulated delivery time;
    body lines starting with "From " are quoted as ">From " (the mboxrd convention).

    Args:
        box: the mailbox.
        path: the mbox file.
        replace: overwrite a non-empty file; without it such a file is refused.
        epoch: wall-clock time of t = 0.

    Returns:
        The mbox path.

    Raises:
        FileExistsError: the file already holds messages and ``replace`` is False.
    """
    target = Path(path)
    if target.exists() and target.stat().st_size > 0:
        if not replace:
            raise FileExistsError(
                f"{target} already holds mail; export to a new file or pass replace=True"
            )
        target.write_bytes(b"")
    folder = stdlib_mailbox.mbox(target, create=True)
    folder.lock()
    try:
        for message in box:
            when = time.asctime(sim_datetime(message.delivered_at, epoch).timetuple())
            sender = message.sender or "MAILER-DAEMON"
            separator = f"From {sender} {when}\n".encode("ascii", "replace")
            folder.add(separator + _local_line_ends(message.content))
        folder.flush()
    finally:
        folder.unlock()
        folder.close()
    return target
