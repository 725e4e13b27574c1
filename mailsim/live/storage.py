"""Durable mail storage for the live server: one Maildir per user, written with fsync.

The live server acknowledges a message (250 after the final dot) only once this module has put
it on disk: RFC 5321 4.2.5 and 6.1 make the 250 a promise that the server now owns the message,
so the file *and* the directory entry that names it must survive a crash (``kill -9``, a power
cut). Each copy goes through the standard library's :class:`mailbox.Maildir` (``tmp/`` then a
hard link into ``new/``; its ``add`` already fsyncs the file), and this module then fsyncs the
``new/`` directory, which the standard library does not do.

Files hold the local (LF) line ends, as every Maildir reader (mutt, Dovecot, Python's
:mod:`mailbox`) expects and as :func:`mailsim.mail.mailbox.export_maildir` writes them; POP3 turns
them back into CRLF. A bare LF that arrived inside SMTP data therefore comes back as CRLF, as it
does from Dovecot: Maildir cannot tell the two apart.

POP3 sees a user's Maildir through :class:`MaildirMaildrop`, the ``Maildrop`` the sans-IO
:class:`~mailsim.protocol.pop3.POP3Server` asks for: a snapshot of the messages at login, locked
against a second session, whose deletions happen only in the UPDATE state (RFC 1939 6). The
Maildir key (the file's unique name) is the message's UIDL, so it is stable across sessions and
server restarts.
"""

from __future__ import annotations

import contextlib
import hashlib
import mailbox
import os
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from mailsim.mail.mailbox import mailbox_file_name

#: The Maildir that keeps authenticated mail for other domains (no relay runs in the live server).
OUTGOING = "_outgoing"

# A mailbox (user) name is the characters of a local part (RFC 5321 4.1.2: printable ASCII, a
# quoted one may hold spaces) at most 64 octets (4.5.3.1.1); its directory is mailbox_file_name's.
_MAILBOX_NAME = re.compile(r"[!-~](?:[ -~]{0,62}[!-~])?")
# The unique name the standard library gives: "<sec>.M<usec>P<pid>Q<count>.<host>".
_MAILDIR_KEY = re.compile(r"(\d+)\.M(\d+)P(\d+)Q(\d+)\.")
# RFC 1939 7: a unique-id is 1 to 70 characters in the range 0x21 to 0x7E.
_UID_CHARS = re.compile(r"[\x21-\x7e]{1,70}")
# How often a name clash (two threads, same microsecond) is retried before giving up.
_CLASH_RETRIES = 5
#: POP3 sizes remembered (about 200 octets each: 10,000 cost 2 MB). Past it the least recently
#: used is forgotten and measured again from its file when asked.
SIZE_CACHE_ENTRIES = 10_000
#: Seconds a POP3 login waits for a maildrop another session is just releasing before it says
#: ``[IN-USE]``: a client that closes and logs in again at once races the end of its old session.
LOCK_WAIT = 1.0


def check_mailbox_name(name: str) -> str:
    """``name`` if it can be a user's mailbox (the characters of a local part), else ValueError.

    Raises:
        ValueError: the name is empty, too long, or has characters no local part has.
    """
    if name.lower() == OUTGOING:
        raise ValueError(f"user name {name!r} cannot be a mailbox: it is kept for outgoing mail")
    if not _MAILBOX_NAME.fullmatch(name):
        raise ValueError(
            f"user name {name!r} cannot be a mailbox: use 1-64 printable ASCII characters, not "
            "starting or ending with a space (it is the local part of the address; its Maildir "
            "directory is named safely, 'john smith' as '=john=20smith')"
        )
    return name


def _fsync_directory(path: str) -> None:
    """Make the directory entries under ``path`` durable (a new or removed file name).

    Windows cannot open a directory as a file (``os.open`` fails with a permission error), and
    NTFS makes a rename durable with the file itself, so there is nothing to do there.
    """
    if os.name == "nt":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _delivery_order(key: str) -> tuple[int, int, int, int, str]:
    """Sort key for Maildir keys: arrival second, microsecond, then the writer's counter."""
    match = _MAILDIR_KEY.match(key)
    if match is None:
        return (1 << 62, 0, 0, 0, key)  # a file someone else dropped in: after ours, by name
    sec, usec, pid, count = (int(group) for group in match.groups())
    return (sec, usec, count, pid, key)


def uid_of(key: str) -> str:
    """The POP3 unique-id of a Maildir key: the key itself, or a digest when it does not fit.

    RFC 1939 7 allows 1-70 printable characters; a key with a long or odd host name part gets the
    first 40 hex digits of its SHA-1 instead, which is just as stable.
    """
    if _UID_CHARS.fullmatch(key):
        return key
    return hashlib.sha1(key.encode("utf-8", "surrogateescape")).hexdigest()


def crlf_size(data: bytes) -> int:
    """Octets of LF-terminated ``data`` once every LF is sent as CRLF (what POP3 LIST reports)."""
    return len(data) + data.count(b"\n")


@dataclass(frozen=True, slots=True)
class MaildirEntry:
    """One message of a Maildir as POP3 shows it (the ``MaildropMessage`` protocol).

    Attributes:
        key: the Maildir key (the file's unique name without its ``:2,`` flags).
        uid: the UIDL unique-id (see :func:`uid_of`).
        size: octets with CRLF line ends.
        path: the file.
    """

    key: str
    uid: str
    size: int
    path: Path

    @property
    def content(self) -> bytes:
        """The message with CRLF line ends, read from disk only now (OSError if it vanished)."""
        return self.path.read_bytes().replace(b"\n", b"\r\n")


class MaildirStore:
    """The live server's mail: a root directory holding one Maildir per user and ``_outgoing``.

    Safe to call from several threads at once (the SMTP adapter stores from a thread pool).

    Args:
        root: the directory that holds the Maildirs (created if missing).
        mailboxes: the users' mailbox names; their Maildirs are created now, so a POP3 login
            before the first delivery finds an empty maildrop.
        size_cache: how many message sizes to remember (:data:`SIZE_CACHE_ENTRIES`).
        lock_wait: seconds a login waits for a locked maildrop (:data:`LOCK_WAIT`).
    """

    def __init__(
        self,
        root: str | Path,
        mailboxes: Iterable[str] = (),
        *,
        size_cache: int = SIZE_CACHE_ENTRIES,
        lock_wait: float = LOCK_WAIT,
    ) -> None:
        #: The directory that holds the Maildirs.
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self._folders: dict[str, mailbox.Maildir] = {}
        self._folders_lock = threading.Lock()
        self._locked: set[str] = set()
        self._lock_guard = threading.Lock()
        self._released = threading.Condition(self._lock_guard)
        self._lock_wait = lock_wait
        # POP3 sizes of messages this process wrote or measured, least recently used first:
        # (mailbox, key) -> octets, at most size_cache of them.
        self._sizes: OrderedDict[tuple[str, str], int] = OrderedDict()
        self._sizes_guard = threading.Lock()
        self._size_cache = size_cache
        for name in (*mailboxes, OUTGOING):
            self.folder(name)
        _fsync_directory(str(self.root))

    def path_of(self, name: str) -> Path:
        """The Maildir directory of mailbox ``name``, always directly under the root."""
        if name == OUTGOING:
            return self.root / OUTGOING
        return self.root / mailbox_file_name(name)

    def folder(self, name: str) -> mailbox.Maildir:
        """The :class:`mailbox.Maildir` of ``name``, created (with its tmp/new/cur) on first use."""
        folder = self._folders.get(name)
        if folder is None:
            if name != OUTGOING:
                check_mailbox_name(name)
            with self._folders_lock:
                folder = self._folders.get(name)
                if folder is None:
                    folder = mailbox.Maildir(self.path_of(name), factory=None, create=True)
                    self._folders[name] = folder
        return folder

    # -- delivery -------------------------------------------------------------------------------

    def deliver(self, copies: Sequence[tuple[str, bytes]]) -> list[str]:
        """Store each ``(mailbox, content)`` copy durably; returns their Maildir keys, in order.

        ``content`` has CRLF line ends (as SMTP delivers it); the file gets LF. When this returns,
        every file and every directory entry naming it has been fsynced, so the caller may
        acknowledge the message (RFC 5321 4.2.5). A failure raises OSError; copies already written
        stay (a retrying client may then cause a duplicate, the RFC 1047 trade-off).
        """
        keys: list[str] = []
        touched: dict[str, None] = {}
        for name, content in copies:
            folder = self.folder(name)
            data = content.replace(b"\r\n", b"\n")
            key = self._add(folder, data)  # Maildir.add fsyncs the file before linking it
            keys.append(key)
            self._remember_size((name, key), crlf_size(data))
            touched[str(self.path_of(name) / "new")] = None
        for directory in touched:
            _fsync_directory(directory)  # the new name in new/ must survive a crash too
        return keys

    @staticmethod
    def _add(folder: mailbox.Maildir, data: bytes) -> str:
        for attempt in range(_CLASH_RETRIES):
            try:
                return str(folder.add(data))
            except mailbox.ExternalClashError:
                # Two threads drew the same unique name in the same microsecond; draw again.
                if attempt == _CLASH_RETRIES - 1:
                    raise
        raise AssertionError("unreachable")

    # -- reading --------------------------------------------------------------------------------

    def entries(self, name: str) -> list[MaildirEntry]:
        """The messages in ``new/`` and ``cur/`` of mailbox ``name``, oldest first."""
        base = self.path_of(name)
        found: list[tuple[str, Path]] = []
        for sub in ("new", "cur"):
            try:
                names = os.listdir(base / sub)
            except FileNotFoundError:
                continue
            for filename in names:
                if filename.startswith("."):
                    continue
                found.append((filename.split(":", 1)[0], base / sub / filename))
        found.sort(key=lambda item: _delivery_order(item[0]))
        entries = []
        for key, path in found:
            size = self._known_size((name, key))
            if size is None:
                try:
                    size = crlf_size(path.read_bytes())
                except FileNotFoundError:
                    continue  # removed meanwhile by a QUIT of another process
                self._remember_size((name, key), size)
            entries.append(MaildirEntry(key, uid_of(key), size, path))
        return entries

    def _known_size(self, item: tuple[str, str]) -> int | None:
        with self._sizes_guard:
            size = self._sizes.get(item)
            if size is not None:
                self._sizes.move_to_end(item)
            return size

    def _remember_size(self, item: tuple[str, str], size: int) -> None:
        with self._sizes_guard:
            self._sizes[item] = size
            self._sizes.move_to_end(item)
            while len(self._sizes) > self._size_cache:
                self._sizes.popitem(last=False)

    def cached_sizes(self) -> int:
        """How many message sizes are remembered (at most ``size_cache``)."""
        with self._sizes_guard:
            return len(self._sizes)

    def count(self, name: str) -> int:
        """How many messages mailbox ``name`` holds."""
        return len(self.entries(name))

    def remove(self, name: str, entries: Iterable[MaildirEntry]) -> None:
        """Delete these messages of mailbox ``name`` for good, durably."""
        dirs: dict[str, None] = {}
        for entry in entries:
            with contextlib.suppress(FileNotFoundError):  # already gone: the goal is reached
                entry.path.unlink()
            with self._sizes_guard:
                self._sizes.pop((name, entry.key), None)
            dirs[str(entry.path.parent)] = None
        for directory in dirs:
            _fsync_directory(directory)

    # -- POP3 -----------------------------------------------------------------------------------

    def open_maildrop(self, name: str) -> MaildirMaildrop | str:
        """Lock mailbox ``name`` for a POP3 session, or say why not (RFC 2449 response codes).

        The lock is held in this process: one live server owns its Maildirs. A locked maildrop
        is waited for up to ``lock_wait`` seconds (a release wakes the waiter at once) before
        the answer is ``[IN-USE]``. Called from a worker thread, never the event loop.
        """
        with self._released:
            deadline = time.monotonic() + self._lock_wait
            while name in self._locked:
                left = deadline - time.monotonic()
                if left <= 0:
                    return "[IN-USE] maildrop already locked by another session"
                self._released.wait(left)
            self._locked.add(name)
        try:
            entries = self.entries(name)
        except OSError as error:
            self._unlock(name)
            return f"[SYS/TEMP] cannot read the maildrop: {error.strerror}"
        return MaildirMaildrop(self, name, entries)

    def _unlock(self, name: str) -> None:
        with self._released:
            self._locked.discard(name)
            self._released.notify_all()

    def is_locked(self, name: str) -> bool:
        """Whether a POP3 session holds mailbox ``name``."""
        with self._lock_guard:
            return name in self._locked


class MaildirMaildrop:
    """A locked snapshot of one Maildir: the ``Maildrop`` the POP3 server machine works on.

    Messages that arrive during the session are stored but appear only at the next login, so
    message numbers stay valid for the whole session (RFC 1939 4).
    """

    def __init__(self, store: MaildirStore, name: str, entries: list[MaildirEntry]) -> None:
        self._store = store
        #: The mailbox name.
        self.name = name
        self._entries = tuple(entries)
        self._released = False

    @property
    def messages(self) -> Sequence[MaildirEntry]:
        """The messages present at login, oldest first."""
        return self._entries

    def commit_deletions(self, indices: Sequence[int]) -> str | None:
        """Delete the messages at ``indices`` (UPDATE state, RFC 1939 6); None, or what failed."""
        try:
            self._store.remove(self.name, (self._entries[i] for i in indices))
        except OSError as error:
            return f"[SYS/TEMP] {error.strerror or error}"
        return None

    def release(self) -> None:
        """Unlock the maildrop (called once when the session ends, however it ends)."""
        if not self._released:
            self._released = True
            self._store._unlock(self.name)
