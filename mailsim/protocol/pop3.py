"""Sans-IO POP3 (RFC 1939) server and client state machines, in the shape of h11.

A user agent fetches its mail from its maildrop with POP3: it logs in (USER/PASS or APOP), lists
the messages, retrieves them, marks some for deletion and quits; only that QUIT deletes anything.
This module holds both ends of that conversation as pure state machines. The SimPy mail server,
the simulated user agent and the asyncio live server are thin adapters over these classes.
It imports only the standard library.
"""

# Theory of operation
# -------------------
# Each machine is fed the bytes that arrived with ``receive_data(data)`` (``b""`` means the peer
# closed its side) and is then asked ``next_event()`` until it answers ``NEED_DATA`` (it needs more
# bytes) or ``PAUSED`` (it waits for the application: only the client in step-by-step mode does).
# Whatever the machine decided to write on its own (the server's greeting and every reply, the
# automatic client's commands) is collected in an outgoing buffer that ``data_to_send()`` drains;
# whatever the application asks for explicitly goes through ``send(event)``, which returns the
# bytes to write. Nothing here reads a clock or touches a socket, so the same bytes in give the
# same events and bytes out, whatever the chunking (a hypothesis test proves it).
#
# Every state rule lives in two tables, SERVER_TRANSITIONS and CLIENT_TRANSITIONS:
# ``TABLE[state][trigger] -> next state``. A server trigger is the command verb that got ``+OK``,
# the string ``"-ERR"`` for any command that got ``-ERR``, or a happening in lower case ("peer
# closed", "too many errors", "shutdown", "committed", "local error"). A verb is allowed in a state
# exactly when it is a key of that state's row. A client state names the command whose reply it
# awaits; a client trigger is the reply's status plus, where the plan branches, what comes next
# ("+OK delete", "-ERR last"); entering a state sends that state's command. A notebook draws both
# state diagrams straight from the tables.
#
# The server asks the application about users and mail only through a MaildropProvider (hooks:
# authenticate, secret_for, open_maildrop) and the Maildrop it returns (a locked snapshot of
# messages with commit_deletions and release). The machine keeps the deletion marks itself and
# hands them to the maildrop only in the UPDATE state, after a QUIT (RFC 1939 section 6); any other
# end of the session releases the lock and deletes nothing.

from __future__ import annotations

import enum
import hashlib
import hmac
import re
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal, NoReturn, Protocol, TypeAlias

from mailsim.protocol._common import LineBuffer, LocalProtocolError, RemoteProtocolError

__all__ = [
    "ARGUMENT_LIMIT",
    "CLIENT_LINE_LIMIT",
    "CLIENT_TRANSITIONS",
    "COMMAND_LINE_LIMIT",
    "DEFAULT_MAX_ERRORS",
    "NEED_DATA",
    "PAUSED",
    "RESPONSE_LINE_LIMIT",
    "SERVER_TRANSITIONS",
    "AuthResult",
    "ClientEvent",
    "ClientState",
    "Command",
    "ConnectionClosed",
    "ConnectionLost",
    "Deleted",
    "DeletionsReset",
    "Greeting",
    "LoggedIn",
    "LoginFailed",
    "Maildrop",
    "MaildropMessage",
    "MaildropProvider",
    "MaildropStatus",
    "MaildropUnavailable",
    "MemoryMaildrop",
    "MemoryMessage",
    "MemoryProvider",
    "MessageRetrieved",
    "POP3Client",
    "POP3Server",
    "Pop3State",
    "Reply",
    "RetrieveFailed",
    "Retrieved",
    "Sentinel",
    "ServerEvent",
    "SessionDone",
    "Shutdown",
    "Updated",
    "apop_digest",
]

# --- limits -----------------------------------------------------------------------------------

#: The longest command line a server accepts, CRLF included (RFC 2449 section 4: 255 octets).
COMMAND_LINE_LIMIT: Final = 255
#: The longest argument, in characters (RFC 1939 section 3: "up to 40 characters long").
ARGUMENT_LIMIT: Final = 40
#: The longest status line a server sends, CRLF included (RFC 1939 section 3: 512 characters).
RESPONSE_LINE_LIMIT: Final = 512
#: The longest line the client accepts, CRLF included. Status lines stay under 512 octets, but the
#: content lines of RETR are the message's own lines: RFC 5322 2.1.1 allows 998 + CRLF, and real
#: mail breaks that, so the client is generous and only refuses absurd lines (memory bound).
CLIENT_LINE_LIMIT: Final = 64 * 1024
#: How many -ERR replies a server sends before it gives up and closes the connection.
DEFAULT_MAX_ERRORS: Final = 20

# The APOP timestamp is a msg-id in angle brackets (RFC 1939 section 7: "<process-ID.clock@host>").
_TIMESTAMP = re.compile(r"<[^<>\s]+@[^<>\s]+>")
_ASCII_DIGITS = re.compile(r"[0-9]+")
_VERB = re.compile(r"[A-Za-z]{1,8}")


class Sentinel(enum.Enum):
    """What ``next_event()`` answers when it has no event to give."""

    #: The machine needs more bytes from the peer (call ``receive_data``).
    NEED_DATA = "NEED_DATA"
    #: The machine waits for the application (a step-by-step client waits for ``send``).
    PAUSED = "PAUSED"


NEED_DATA: Final = Sentinel.NEED_DATA
PAUSED: Final = Sentinel.PAUSED


# --- events -------------------------------------------------------------------------------------
# Message numbers in events are RFC 1939 message-numbers: 1-based, as on the wire ("RETR 2").


@dataclass(frozen=True, slots=True)
class Command:
    """A command line: received by the server, or sent by a step-by-step client.

    ``verb`` is upper-cased; ``arg`` is the rest of the line after the first space, as sent (for
    PASS that is the password: a teaching tool shows it, as telnet would).
    """

    verb: str
    arg: str = ""


@dataclass(frozen=True, slots=True)
class AuthResult:
    """The server checked credentials (PASS or APOP); adapters trace ``auth.ok``/``auth.fail``."""

    user: str
    ok: bool
    #: "USER/PASS" or "APOP".
    mechanism: str


@dataclass(frozen=True, slots=True)
class LoggedIn:
    """The server locked the maildrop and entered TRANSACTION (RFC 1939 section 4)."""

    user: str
    #: Messages in the maildrop.
    messages: int
    #: Their total size in octets, CRLF line ends counted as two.
    octets: int


@dataclass(frozen=True, slots=True)
class MaildropUnavailable:
    """The credentials were good but the maildrop could not be opened (typically: locked)."""

    user: str
    #: The provider's text, as sent after ``-ERR``.
    reason: str


@dataclass(frozen=True, slots=True)
class Retrieved:
    """The server sent a whole message for RETR; adapters trace ``mail.fetch``."""

    number: int
    uid: str
    size: int


@dataclass(frozen=True, slots=True)
class Deleted:
    """The server marked a message for deletion (DELE); it goes only at QUIT."""

    number: int
    uid: str


@dataclass(frozen=True, slots=True)
class DeletionsReset:
    """RSET unmarked these messages (their UIDs); nothing will be deleted for them."""

    uids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Updated:
    """The UPDATE state ran after QUIT: these messages were deleted for good (RFC 1939 section 6).

    ``error`` is None when the maildrop committed the deletions, else its complaint (the client
    got ``-ERR some deleted messages not removed``) and ``deleted`` is empty.
    """

    deleted: tuple[str, ...]
    error: str | None = None


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """The session is over; ``next_event()`` keeps returning this event from now on.

    ``reason``: "quit" (after QUIT), "peer closed", "too many errors", "shutdown" (the server
    application sent :class:`Shutdown`), or, for the client, "peer closed" after a finished session.
    """

    reason: str


@dataclass(frozen=True, slots=True)
class Shutdown:
    """Sent to the server by its application to end a session: autologout or server shutdown.

    The server writes ``-ERR <text>`` and closes without entering UPDATE (RFC 1939 section 3:
    an autologout timer expiring does not delete anything).
    """

    text: str = "autologout; idle for too long"


@dataclass(frozen=True, slots=True)
class Greeting:
    """The client read the server's ``+OK`` greeting; ``timestamp``: its APOP challenge or None."""

    text: str
    timestamp: str | None


@dataclass(frozen=True, slots=True)
class LoginFailed:
    """The client could not log in; it sends QUIT and the session is over.

    ``stage`` is the step that failed: "greeting" (the server greeted with -ERR), "USER", "PASS",
    or "APOP" (also when APOP was asked for but the greeting offered no timestamp; then ``reply``
    is the greeting). ``reply`` is the server's line as received.
    """

    reply: str
    stage: str


@dataclass(frozen=True, slots=True)
class MaildropStatus:
    """The client learnt the size of the maildrop from STAT."""

    messages: int
    octets: int


@dataclass(frozen=True, slots=True)
class MessageRetrieved:
    """The client retrieved a message: ``content`` is un-stuffed, with its CRLF line ends.

    ``uid`` is None when the server refused UIDL and the client fell back to LIST.
    """

    number: int
    uid: str | None
    content: bytes


@dataclass(frozen=True, slots=True)
class RetrieveFailed:
    """The server answered RETR with -ERR; the client goes on with the next message."""

    number: int
    uid: str | None
    reply: str


@dataclass(frozen=True, slots=True)
class SessionDone:
    """The client's session ended with QUIT after a login.

    ``deleted`` counts the messages the client marked and the server confirmed by ``+OK`` to QUIT
    (0 when QUIT got -ERR, since the client cannot know which went).
    """

    retrieved: int
    deleted: int


@dataclass(frozen=True, slots=True)
class ConnectionLost:
    """The connection closed before the client's session was over; nothing was deleted.

    ``during`` names the client state (the command awaiting its reply), e.g. "RETR".
    """

    during: str


@dataclass(frozen=True, slots=True)
class Reply:
    """A server reply, given to the application by a step-by-step client (``auto=False``).

    ``lines`` holds the un-stuffed lines of a multi-line reply, without their CRLF.
    """

    ok: bool
    text: str
    lines: tuple[bytes, ...] = ()


#: What a POP3Server's ``next_event()`` can return besides a Sentinel.
ServerEvent: TypeAlias = (
    Command
    | AuthResult
    | LoggedIn
    | MaildropUnavailable
    | Retrieved
    | Deleted
    | DeletionsReset
    | Updated
    | ConnectionClosed
)
#: What a POP3Client's ``next_event()`` can return besides a Sentinel.
ClientEvent: TypeAlias = (
    Greeting
    | LoginFailed
    | MaildropStatus
    | MessageRetrieved
    | RetrieveFailed
    | SessionDone
    | Reply
    | ConnectionLost
    | ConnectionClosed
)


# --- states and the transition tables -----------------------------------------------------------


class Pop3State(enum.Enum):
    """The states of a POP3 server session (RFC 1939 section 3)."""

    #: Greeted; waiting for USER, APOP, CAPA or QUIT.
    AUTHORIZATION = "AUTHORIZATION"
    #: Still AUTHORIZATION for RFC 1939, but USER got +OK, so PASS may come now (section 7).
    AUTHORIZATION_PASS = "AUTHORIZATION_PASS"
    #: Logged in, maildrop locked; mail commands allowed, deletions only marked.
    TRANSACTION = "TRANSACTION"
    #: QUIT received in TRANSACTION: the marked messages are being deleted (section 6).
    UPDATE = "UPDATE"
    #: The session is over; the maildrop is released; further input is ignored.
    CLOSED = "CLOSED"
    #: The application misused the machine (LocalProtocolError); it is dead.
    ERROR = "ERROR"


_S = Pop3State
# Happenings that end a live session from any state, whatever the command.
_SERVER_ENDINGS: Final = {
    "too many errors": _S.CLOSED,
    "peer closed": _S.CLOSED,
    "shutdown": _S.CLOSED,
    "local error": _S.ERROR,
}

#: Every server state rule: ``SERVER_TRANSITIONS[state][trigger] -> next state``. A verb is allowed
#: in a state exactly when it is a key of that row; it leads there when answered ``+OK``, and a
#: ``-ERR`` to anything follows the ``"-ERR"`` key.
SERVER_TRANSITIONS: Final[dict[Pop3State, dict[str, Pop3State]]] = {
    _S.AUTHORIZATION: {
        "USER": _S.AUTHORIZATION_PASS,
        "APOP": _S.TRANSACTION,
        "CAPA": _S.AUTHORIZATION,
        "QUIT": _S.CLOSED,  # no UPDATE: nothing was marked (section 5)
        "-ERR": _S.AUTHORIZATION,
        **_SERVER_ENDINGS,
    },
    _S.AUTHORIZATION_PASS: {
        "PASS": _S.TRANSACTION,
        "USER": _S.AUTHORIZATION_PASS,
        "APOP": _S.TRANSACTION,
        "CAPA": _S.AUTHORIZATION,  # PASS must come *immediately* after USER (section 7)
        "QUIT": _S.CLOSED,
        "-ERR": _S.AUTHORIZATION,
        **_SERVER_ENDINGS,
    },
    _S.TRANSACTION: {
        "STAT": _S.TRANSACTION,
        "LIST": _S.TRANSACTION,
        "RETR": _S.TRANSACTION,
        "DELE": _S.TRANSACTION,
        "RSET": _S.TRANSACTION,
        "NOOP": _S.TRANSACTION,
        "TOP": _S.TRANSACTION,
        "UIDL": _S.TRANSACTION,
        "CAPA": _S.TRANSACTION,
        "QUIT": _S.UPDATE,
        "-ERR": _S.TRANSACTION,
        **_SERVER_ENDINGS,
    },
    _S.UPDATE: {"committed": _S.CLOSED, "local error": _S.ERROR},
    _S.CLOSED: {},
    _S.ERROR: {},
}


class ClientState(enum.Enum):
    """The states of a POP3 client session: each live one names the reply it awaits."""

    #: Connected; waiting for the server's greeting.
    GREETING = "GREETING"
    #: Sent USER name.
    USER = "USER"
    #: Sent PASS secret.
    PASS = "PASS"
    #: Sent APOP name digest.
    APOP = "APOP"
    #: Sent STAT.
    STAT = "STAT"
    #: Sent UIDL (whole listing).
    UIDL = "UIDL"
    #: Sent LIST (fallback when UIDL got -ERR).
    LIST = "LIST"
    #: Sent RETR n.
    RETR = "RETR"
    #: Sent DELE n.
    DELE = "DELE"
    #: Sent QUIT.
    QUIT = "QUIT"
    #: Step-by-step mode: waiting for the application to send a Command (next_event: PAUSED).
    READY = "READY"
    #: Step-by-step mode: sent the application's Command, waiting for its reply.
    COMMAND = "COMMAND"
    #: The session is over; waiting for the connection to close.
    DONE = "DONE"
    #: The connection is closed.
    CLOSED = "CLOSED"
    #: A protocol error happened (the peer's or ours); the machine is dead.
    ERROR = "ERROR"


_C = ClientState
_CLIENT_ENDINGS: Final = {"peer closed": _C.CLOSED, "protocol error": _C.ERROR}

#: Every client state rule: ``CLIENT_TRANSITIONS[state][trigger] -> next state``. Entering a state
#: sends its command (RETR and DELE take the current message of the plan).
CLIENT_TRANSITIONS: Final[dict[ClientState, dict[str, ClientState]]] = {
    _C.GREETING: {
        "+OK": _C.USER,
        "+OK apop": _C.APOP,
        "+OK no timestamp": _C.QUIT,  # APOP asked for, none offered: never fall back to PASS
        "+OK manual": _C.READY,
        "-ERR": _C.DONE,
        **_CLIENT_ENDINGS,
    },
    _C.USER: {"+OK": _C.PASS, "-ERR": _C.QUIT, **_CLIENT_ENDINGS},
    _C.PASS: {"+OK": _C.STAT, "-ERR": _C.QUIT, **_CLIENT_ENDINGS},
    _C.APOP: {"+OK": _C.STAT, "-ERR": _C.QUIT, **_CLIENT_ENDINGS},
    _C.STAT: {"+OK": _C.UIDL, "+OK empty": _C.QUIT, "-ERR": _C.QUIT, **_CLIENT_ENDINGS},
    _C.UIDL: {"+OK": _C.RETR, "+OK nothing new": _C.QUIT, "-ERR": _C.LIST, **_CLIENT_ENDINGS},
    _C.LIST: {"+OK": _C.RETR, "+OK nothing new": _C.QUIT, "-ERR": _C.RETR, **_CLIENT_ENDINGS},
    _C.RETR: {
        "+OK delete": _C.DELE,
        "+OK next": _C.RETR,
        "+OK last": _C.QUIT,
        "-ERR next": _C.RETR,
        "-ERR last": _C.QUIT,
        **_CLIENT_ENDINGS,
    },
    _C.DELE: {
        "+OK next": _C.RETR,
        "+OK last": _C.QUIT,
        "-ERR next": _C.RETR,
        "-ERR last": _C.QUIT,
        **_CLIENT_ENDINGS,
    },
    _C.QUIT: {"+OK": _C.DONE, "-ERR": _C.DONE, **_CLIENT_ENDINGS},
    _C.READY: {"command": _C.COMMAND, **_CLIENT_ENDINGS},
    _C.COMMAND: {
        "+OK": _C.READY,
        "-ERR": _C.READY,
        "+OK QUIT": _C.DONE,
        "-ERR QUIT": _C.DONE,
        **_CLIENT_ENDINGS,
    },
    _C.DONE: {"peer closed": _C.CLOSED},
    _C.CLOSED: {},
    _C.ERROR: {},
}


# --- the application's side: maildrops and the provider hooks ----------------------------------


class MaildropMessage(Protocol):
    """One message of a maildrop, as the server sees it."""

    @property
    def uid(self) -> str:
        """Its unique-id for UIDL: 1 to 70 characters 0x21-0x7E, stable across sessions."""
        ...

    @property
    def size(self) -> int:
        """Its size in octets with CRLF line ends (what STAT and LIST report, RFC 1939 5)."""
        ...

    @property
    def content(self) -> bytes:
        """The message itself, lines ending in CRLF (not byte-stuffed; the server stuffs).

        A property, so a maildrop on disk can read the file only when RETR or TOP asks.
        """
        ...


class Maildrop(Protocol):
    """A locked maildrop, handed to the server by :meth:`MaildropProvider.open_maildrop`.

    The server reads :attr:`messages` once, at login: message number n is ``messages[n - 1]`` for
    the whole session (RFC 1939 section 5), whatever arrives meanwhile.
    """

    @property
    def messages(self) -> Sequence[MaildropMessage]:
        """The messages present when the maildrop was opened, oldest first."""
        ...

    def commit_deletions(self, indices: Sequence[int]) -> object:
        """Delete these messages for good (0-based indices into :attr:`messages`, ascending).

        Called only in the UPDATE state after QUIT, and only when something is marked. A
        returned ``str`` says what went wrong (the client gets ``-ERR some deleted messages not
        removed: <text>``); any other return value (None, a count) means done.
        """
        ...

    def release(self) -> None:
        """Unlock the maildrop. Called exactly once when the session ends, however it ends."""
        ...


class MaildropProvider:
    """The hooks through which a POP3Server asks its application about users and mail.

    Subclass it and override what you need. The defaults refuse everyone: :meth:`secret_for`
    knows no user, :meth:`authenticate` checks the password against :meth:`secret_for`, and
    :meth:`open_maildrop` has no maildrop to give. Overriding only ``secret_for`` and
    ``open_maildrop`` is enough for both USER/PASS and APOP.
    """

    def authenticate(self, user: str, password: str) -> bool:
        """Whether ``password`` is right for ``user`` (USER/PASS). Default: equals secret_for."""
        secret = self.secret_for(user)
        if secret is None:
            return False
        # compare_digest on bytes: constant time, and it accepts non-ASCII text once encoded.
        return hmac.compare_digest(secret.encode("utf-8"), password.encode("utf-8"))

    def secret_for(self, user: str) -> str | None:
        """The shared secret of ``user`` (needed for APOP), or None if unknown. Default: None."""
        return None

    def open_maildrop(self, user: str) -> Maildrop | str:
        """Lock and return the maildrop of an authenticated ``user``, or the reason it cannot be.

        A returned text goes after ``-ERR `` as it is; start it with an RFC 2449/3206 response
        code such as ``[IN-USE]`` (locked) or ``[SYS/TEMP]``. Default: ``[SYS/PERM]`` refusal.
        """
        return "[SYS/PERM] no maildrop for this user"


@dataclass(frozen=True, slots=True)
class MemoryMessage:
    """A message kept in memory: the reference :class:`MaildropMessage` (tests, notebooks)."""

    uid: str
    #: The message with CRLF line ends.
    content: bytes

    @property
    def size(self) -> int:
        """Its size in octets."""
        return len(self.content)


class MemoryMaildrop:
    """An in-memory maildrop with a lock: the reference :class:`Maildrop`.

    Args:
        messages: initial message contents (CRLF line ends); their UIDs are ``m1``, ``m2``, ...
    """

    def __init__(self, messages: Iterable[bytes] = ()) -> None:
        self._messages: list[MemoryMessage] = []
        self._snapshot: list[MemoryMessage] = []
        self._next_uid = 1
        #: True while a session holds the maildrop.
        self.locked = False
        for data in messages:
            self.add(data)

    def add(self, content: bytes, uid: str | None = None) -> MemoryMessage:
        """Deliver a message (also while locked: a session sees it only at its next login)."""
        if uid is None:
            uid = f"m{self._next_uid}"
            self._next_uid += 1
        message = MemoryMessage(uid, content)
        self._messages.append(message)
        return message

    @property
    def messages(self) -> list[MemoryMessage]:
        """The messages of the current session's snapshot when locked, else all of them."""
        return list(self._snapshot if self.locked else self._messages)

    def lock(self) -> bool:
        """Take the lock and the snapshot a session works on; False if already locked."""
        if self.locked:
            return False
        self.locked = True
        self._snapshot = list(self._messages)
        return True

    def commit_deletions(self, indices: Sequence[int]) -> str | None:
        """Remove the snapshot's messages at ``indices`` (messages added since stay)."""
        doomed = {id(self._snapshot[i]) for i in indices}
        self._messages = [m for m in self._messages if id(m) not in doomed]
        return None

    def release(self) -> None:
        """Drop the lock and the snapshot."""
        self.locked = False
        self._snapshot = []

    def __len__(self) -> int:
        return len(self._messages)


class MemoryProvider(MaildropProvider):
    """A provider over in-memory accounts: the reference :class:`MaildropProvider`.

    Args:
        secrets: user name -> password (also the APOP secret).
        maildrops: user name -> maildrop; a user with a secret but no maildrop gets an empty one.
    """

    def __init__(
        self,
        secrets: Mapping[str, str],
        maildrops: Mapping[str, MemoryMaildrop] | None = None,
    ) -> None:
        #: user name -> password.
        self.secrets = dict(secrets)
        #: user name -> maildrop.
        self.maildrops = dict(maildrops or {})
        for user in self.secrets:
            self.maildrops.setdefault(user, MemoryMaildrop())

    def secret_for(self, user: str) -> str | None:
        """The user's password, or None."""
        return self.secrets.get(user)

    def open_maildrop(self, user: str) -> Maildrop | str:
        """Lock the user's maildrop; ``[IN-USE]`` if another session holds it (RFC 2449 8.1.2)."""
        maildrop = self.maildrops.get(user)
        if maildrop is None:
            return "[SYS/PERM] no maildrop for this user"
        if not maildrop.lock():
            return "[IN-USE] maildrop already locked"
        return maildrop


def apop_digest(timestamp: str, secret: str) -> str:
    """The APOP digest: lower-case hex MD5 of the greeting's timestamp followed by the secret.

    RFC 1939 section 7. MD5 is broken for signatures but this is what the RFC prescribes.
    """
    data = (timestamp + secret).encode("utf-8")
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


# --- wire helpers -------------------------------------------------------------------------------


def _status_line(ok: bool, text: str) -> bytes:
    """A ``+OK``/``-ERR`` line, made safe: no CR/LF inside, at most 512 octets with CRLF."""
    line = "+OK" if ok else "-ERR"
    text = text.replace("\r", " ").replace("\n", " ")
    if text:
        line += " " + text
    raw = line.encode("utf-8", "replace")
    if len(raw) > RESPONSE_LINE_LIMIT - 2:
        # Cut on an octet boundary, then drop a UTF-8 sequence the cut may have split.
        raw = raw[: RESPONSE_LINE_LIMIT - 2].decode("utf-8", "ignore").encode("utf-8")
    return raw + b"\r\n"


def _multiline_body(content: bytes) -> bytes:
    """Byte-stuff ``content`` and terminate it (RFC 1939 section 3).

    A line starting with '.' gets one more '.', and the block ends with ``.CRLF``. Content that
    does not end in CRLF gets one first, so the terminator sits on a line of its own.
    """
    if content and not content.endswith(b"\r\n"):
        content += b"\r\n"
    stuffed = content.replace(b"\r\n.", b"\r\n..")
    if stuffed.startswith(b"."):
        stuffed = b"." + stuffed
    return stuffed + b".\r\n"


def _top_of(content: bytes, body_lines: int) -> bytes:
    """The header, the blank line and the first ``body_lines`` body lines (RFC 1939 TOP)."""
    if content.startswith(b"\r\n"):
        head_end = 2  # no header at all: the blank line comes first
    else:
        blank = content.find(b"\r\n\r\n")
        if blank < 0:
            return content  # no body: all of it is header
        head_end = blank + 4
    body = content[head_end:]
    # maxsplit must fit a C ssize_t; more lines than octets cannot exist anyway.
    pieces = body.split(b"\r\n", min(body_lines, len(body)))
    if len(pieces) <= body_lines:
        return content
    kept = b"\r\n".join(pieces[:body_lines])
    return content[:head_end] + kept + (b"\r\n" if body_lines else b"")


def _split_args(arg: str) -> list[str]:
    """The arguments of a command: separated by SPACE (RFC 1939 section 3), extra spaces forgiven.

    Only SPACE separates: a TAB or a bare LF stays inside an argument, where it makes the argument
    invalid instead of smuggling in a second command.
    """
    return [token for token in arg.split(" ") if token]


def _parse_number(token: str) -> int | None:
    """A decimal number as RFC 1939 allows it (ASCII digits, at most 40), or None."""
    if len(token) > ARGUMENT_LIMIT or not _ASCII_DIGITS.fullmatch(token):
        return None
    return int(token)


# A handler's answer: +OK or -ERR, the status text, and the stuffed body of a multi-line reply.
@dataclass(frozen=True, slots=True)
class _Answer:
    ok: bool
    text: str
    body: bytes | None = None


def _err(text: str) -> _Answer:
    return _Answer(False, text)


# --- the server ---------------------------------------------------------------------------------


class POP3Server:
    """The server side of one POP3 session (RFC 1939), sans IO.

    The greeting is queued at construction: create the machine when the connection is
    established and flush :meth:`data_to_send`. Then feed bytes, drain events, flush replies.
    Every reply is produced by the machine itself from the provider's answers; the application
    only ever sends a :class:`Shutdown` (autologout, server stopping). Each complete command line
    gives a :class:`Command` event, then the events of what it caused; a line over the length
    limit gets -ERR without a Command.

    Args:
        provider: the application's hooks (users, passwords, maildrops).
        banner: greeting text after ``+OK``.
        apop_timestamp: the APOP challenge, e.g. ``"<1896.697170952@dbc.mtview.ca.us>"``; given
            by the application (process id, clock, host) so the machine stays deterministic.
            APOP is enabled exactly when it is set; it is appended to the greeting.
        max_errors: after this many -ERR replies the server says so and closes; None: no limit.
    """

    def __init__(
        self,
        provider: MaildropProvider,
        *,
        banner: str = "mailsim POP3 server ready",
        apop_timestamp: str | None = None,
        max_errors: int | None = DEFAULT_MAX_ERRORS,
    ) -> None:
        if apop_timestamp is not None and not _TIMESTAMP.fullmatch(apop_timestamp):
            raise ValueError(
                f"apop_timestamp must look like '<pid.clock@host>', got {apop_timestamp!r}"
            )
        if max_errors is not None and max_errors < 1:
            raise ValueError(f"max_errors must be at least 1 or None, got {max_errors}")
        #: The application's hooks.
        self.provider = provider
        #: The APOP challenge of the greeting, or None when APOP is off.
        self.apop_timestamp = apop_timestamp
        #: -ERR replies tolerated before closing (None: unlimited).
        self.max_errors = max_errors
        #: The current state.
        self.state = Pop3State.AUTHORIZATION
        #: -ERR replies sent so far.
        self.errors = 0
        #: The logged-in user (TRANSACTION), or the name USER gave (AUTHORIZATION_PASS), or None.
        self.user: str | None = None
        self._lines = LineBuffer(COMMAND_LINE_LIMIT)
        self._events: deque[ServerEvent] = deque()
        self._out = bytearray()
        self._maildrop: Maildrop | None = None
        self._listing: tuple[MaildropMessage, ...] = ()
        self._marked: set[int] = set()  # 0-based indices marked by DELE
        self._closed: ConnectionClosed | None = None
        self._handlers: dict[str, Callable[[str], _Answer | None]] = {
            "USER": self._user_command,
            "PASS": self._pass_command,
            "APOP": self._apop_command,
            "CAPA": self._capa_command,
            "QUIT": self._quit_command,
            "STAT": self._stat_command,
            "LIST": self._list_command,
            "RETR": self._retr_command,
            "DELE": self._dele_command,
            "RSET": self._rset_command,
            "NOOP": self._noop_command,
            "TOP": self._top_command,
            "UIDL": self._uidl_command,
        }
        greeting = banner if apop_timestamp is None else f"{banner} {apop_timestamp}"
        self._out += _status_line(True, greeting)

    # -- the h11-shaped surface --

    def receive_data(self, data: bytes) -> None:
        """Feed bytes received from the client; ``b""`` means the client closed its side.

        Raises:
            LocalProtocolError: bytes fed after ``b""``.
        """
        if self._lines.closed:
            if data:
                raise LocalProtocolError("receive_data() got bytes after the peer closed (b'')")
            return
        if data and self.state in (Pop3State.CLOSED, Pop3State.ERROR):
            return  # nobody will read them: do not let them pile up
        self._lines.feed(data)

    def next_event(self) -> ServerEvent | Literal[Sentinel.NEED_DATA]:
        """Process buffered command lines and return the next event, or NEED_DATA.

        Replies are queued for :meth:`data_to_send` as each line is processed. Once the session
        is over the same :class:`ConnectionClosed` is returned again and again.

        Raises:
            LocalProtocolError: the machine is in ERROR after an earlier misuse.
        """
        if self.state is Pop3State.ERROR:
            raise LocalProtocolError("the POP3 server machine is in ERROR after an earlier misuse")
        while not self._events:
            if self.state is Pop3State.CLOSED:
                assert self._closed is not None
                return self._closed
            got = self._lines.next_line()
            if got is None:
                if not self._lines.closed:
                    return NEED_DATA
                # RFC 1939 section 6: a session that ends without QUIT never enters UPDATE.
                self._transition("peer closed")
                continue
            self._handle_line(*got)
        return self._events.popleft()

    def send(self, event: Shutdown) -> bytes:
        """Act on the application's event; only :class:`Shutdown` exists for a server.

        Returns:
            The bytes to write (``-ERR <text>``); ``b""`` if the session is already over.

        Raises:
            LocalProtocolError: any other event (the machine goes to ERROR).
        """
        if not isinstance(event, Shutdown):
            if "local error" in SERVER_TRANSITIONS[self.state]:
                self._transition("local error")
            raise LocalProtocolError(
                f"a POP3 server can only send Shutdown, not {type(event).__name__}"
            )
        if self.state in (Pop3State.CLOSED, Pop3State.ERROR):
            return b""
        self._transition("shutdown")
        return _status_line(False, event.text)

    def data_to_send(self) -> bytes:
        """The bytes the machine produced on its own (greeting, replies); clears the buffer."""
        data = bytes(self._out)
        self._out.clear()
        return data

    # -- the rules --

    def _transition(self, trigger: str) -> None:
        old = self.state
        new = SERVER_TRANSITIONS[old][trigger]
        self.state = new
        if new is Pop3State.AUTHORIZATION:
            self.user = None  # back to square one: a PASS now needs a new USER
        if new is Pop3State.UPDATE:
            self._enter_update()
        elif new in (Pop3State.CLOSED, Pop3State.ERROR) and old is not new:
            self._release()
            reason = "quit" if trigger in ("QUIT", "committed") else trigger
            self._closed = ConnectionClosed(reason)
            if new is Pop3State.CLOSED:
                self._events.append(self._closed)

    def _release(self) -> None:
        if self._maildrop is not None:
            self._maildrop.release()
            self._maildrop = None
        self._listing = ()
        self._marked = set()

    def _handle_line(self, line: bytes, overlong: bool) -> None:
        if overlong:
            self._answer(None, _err("line too long: at most 255 octets with CRLF (RFC 2449)"))
            return
        text = line.decode("utf-8", "replace")
        word, _, arg = text.partition(" ")
        verb = word.upper()
        self._events.append(Command(verb, arg))
        allowed = SERVER_TRANSITIONS[self.state]
        handler = self._handlers.get(verb)
        if handler is None:
            answer: _Answer | None = _err(f"unknown command {word[:8]!r}" if word else "no command")
        elif verb not in allowed:
            answer = _err(self._out_of_state(verb))
        else:
            answer = handler(arg)
        self._answer(verb, answer)

    def _out_of_state(self, verb: str) -> str:
        """Why a known command is refused in this state, in words a student can act on."""
        if self.state is Pop3State.TRANSACTION:
            return f"{verb} is not allowed after login (TRANSACTION state)"
        if verb == "PASS":
            return "PASS must come right after a USER that got +OK"
        return f"{verb} needs a login first (USER and PASS)"

    def _answer(self, verb: str | None, answer: _Answer | None) -> None:
        if answer is None:  # QUIT in TRANSACTION: UPDATE writes the reply
            assert verb is not None
            self._transition(verb)
            return
        if answer.ok:
            assert verb is not None
            self._out += _status_line(True, answer.text)
            if answer.body is not None:
                self._out += answer.body
            self._transition(verb)
            return
        self.errors += 1
        if self.max_errors is not None and self.errors >= self.max_errors:
            self._out += _status_line(False, "too many errors, closing connection")
            self._transition("too many errors")
        else:
            self._out += _status_line(False, answer.text)
            self._transition("-ERR")

    def _enter_update(self) -> None:
        # RFC 1939 section 6: remove the marked messages, then reply, then close.
        assert self._maildrop is not None
        indices = sorted(self._marked)
        uids = tuple(self._listing[i].uid for i in indices)
        result = self._maildrop.commit_deletions(indices) if indices else None
        problem = result if isinstance(result, str) else None
        left = len(self._listing) - len(indices)
        if problem is None:
            status = "maildrop empty" if left == 0 else f"{left} message{'s' * (left != 1)} left"
            self._out += _status_line(True, f"POP3 server signing off ({status})")
            self._events.append(Updated(uids))
        else:
            self._out += _status_line(False, f"some deleted messages not removed: {problem}")
            self._events.append(Updated((), problem))
        self._transition("committed")

    # -- helpers for the TRANSACTION commands --

    def _live(self) -> list[int]:
        return [i for i in range(len(self._listing)) if i not in self._marked]

    def _drop_summary(self) -> tuple[int, int]:
        live = self._live()
        return len(live), sum(self._listing[i].size for i in live)

    def _message(self, token: str) -> int | _Answer:
        """The 0-based index of a live message named by ``token``, or the -ERR answer."""
        number = _parse_number(token)
        if number is None:
            return _err(f"message number must be a decimal number, got {token[:ARGUMENT_LIMIT]!r}")
        if not 1 <= number <= len(self._listing):
            return _err(f"no such message, only {len(self._listing)} in maildrop")
        if number - 1 in self._marked:
            return _err(f"message {number} already deleted")
        return number - 1

    # -- command handlers: each returns the answer; the table does the state --

    def _user_command(self, arg: str) -> _Answer:
        args = _split_args(arg)
        if len(args) != 1:
            return _err("USER needs exactly one argument: the mailbox name")
        if len(args[0]) > ARGUMENT_LIMIT:
            return _err(f"mailbox name longer than {ARGUMENT_LIMIT} characters")
        # Say +OK to any name, so that USER cannot be used to find out which users exist.
        self.user = args[0]
        return _Answer(True, "send PASS")

    def _pass_command(self, arg: str) -> _Answer:
        # RFC 1939 section 7: the server may take spaces as part of the password; so do we. The
        # 40-character argument limit is not applied to passwords (the line limit still is).
        user = self.user
        assert user is not None
        if not arg:
            return _err("PASS needs the password")
        ok = self.provider.authenticate(user, arg)
        self._events.append(AuthResult(user, ok, "USER/PASS"))
        if not ok:
            self.user = None
            return _err("[AUTH] invalid user name or password")
        return self._open_maildrop(user)

    def _apop_command(self, arg: str) -> _Answer:
        if self.apop_timestamp is None:
            return _err("APOP is not enabled on this server; use USER and PASS")
        args = _split_args(arg)
        if len(args) != 2:
            return _err("APOP needs two arguments: the mailbox name and the MD5 digest")
        name, digest = args
        if len(name) > ARGUMENT_LIMIT:
            return _err(f"mailbox name longer than {ARGUMENT_LIMIT} characters")
        secret = self.provider.secret_for(name)
        expected = apop_digest(self.apop_timestamp, secret or "").encode("ascii")
        ok = hmac.compare_digest(expected, digest.lower().encode("utf-8")) and secret is not None
        self._events.append(AuthResult(name, ok, "APOP"))
        if not ok:
            self.user = None
            return _err("[AUTH] invalid user name or password")
        self.user = name
        return self._open_maildrop(name)

    def _open_maildrop(self, user: str) -> _Answer:
        opened = self.provider.open_maildrop(user)
        if isinstance(opened, str):
            self.user = None
            self._events.append(MaildropUnavailable(user, opened))
            return _err(opened)
        self.user = user
        self._maildrop = opened
        self._listing = tuple(opened.messages)
        self._marked = set()
        count, octets = self._drop_summary()
        self._events.append(LoggedIn(user, count, octets))
        return _Answer(True, f"{user}'s maildrop has {count} messages ({octets} octets)")

    def _capa_command(self, arg: str) -> _Answer:
        if _split_args(arg):
            return _err("CAPA takes no arguments")
        # RFC 2449 section 6; RESP-CODES for [IN-USE], AUTH-RESP-CODE for [AUTH] (RFC 3206).
        capabilities = ("USER", "TOP", "UIDL", "PIPELINING", "RESP-CODES", "AUTH-RESP-CODE")
        body = b"".join(c.encode("ascii") + b"\r\n" for c in capabilities) + b".\r\n"
        return _Answer(True, "capability list follows", body)

    def _quit_command(self, arg: str) -> _Answer | None:
        if self.state is Pop3State.TRANSACTION:
            return None  # the UPDATE state answers
        self.user = None
        return _Answer(True, "POP3 server signing off")

    def _stat_command(self, arg: str) -> _Answer:
        if _split_args(arg):
            return _err("STAT takes no arguments")
        count, octets = self._drop_summary()
        return _Answer(True, f"{count} {octets}")  # RFC 1939 section 5: exactly "nn mm"

    def _scan(self, arg: str, verb: str, column: Callable[[MaildropMessage], str]) -> _Answer:
        """LIST and UIDL: one message, or a multi-line listing of all live messages."""
        args = _split_args(arg)
        if len(args) > 1:
            return _err(f"{verb} takes at most one argument: a message number")
        if args:
            index = self._message(args[0])
            if isinstance(index, _Answer):
                return index
            return _Answer(True, f"{index + 1} {column(self._listing[index])}")
        lines = [f"{i + 1} {column(self._listing[i])}\r\n" for i in self._live()]
        body = "".join(lines).encode("utf-8", "replace") + b".\r\n"
        if verb == "LIST":
            count, octets = self._drop_summary()
            return _Answer(True, f"{count} messages ({octets} octets)", body)
        return _Answer(True, "unique-id listing follows", body)

    def _list_command(self, arg: str) -> _Answer:
        return self._scan(arg, "LIST", lambda m: str(m.size))

    def _uidl_command(self, arg: str) -> _Answer:
        return self._scan(arg, "UIDL", lambda m: m.uid)

    def _retr_command(self, arg: str) -> _Answer:
        args = _split_args(arg)
        if len(args) != 1:
            return _err("RETR needs exactly one argument: a message number")
        index = self._message(args[0])
        if isinstance(index, _Answer):
            return index
        message = self._listing[index]
        body = _multiline_body(message.content)
        self._events.append(Retrieved(index + 1, message.uid, message.size))
        return _Answer(True, f"{message.size} octets", body)

    def _dele_command(self, arg: str) -> _Answer:
        args = _split_args(arg)
        if len(args) != 1:
            return _err("DELE needs exactly one argument: a message number")
        index = self._message(args[0])
        if isinstance(index, _Answer):
            return index
        self._marked.add(index)
        self._events.append(Deleted(index + 1, self._listing[index].uid))
        return _Answer(True, f"message {index + 1} deleted")

    def _rset_command(self, arg: str) -> _Answer:
        if _split_args(arg):
            return _err("RSET takes no arguments")
        uids = tuple(self._listing[i].uid for i in sorted(self._marked))
        self._marked = set()
        self._events.append(DeletionsReset(uids))
        count, octets = self._drop_summary()
        return _Answer(True, f"maildrop has {count} messages ({octets} octets)")

    def _noop_command(self, arg: str) -> _Answer:
        if _split_args(arg):
            return _err("NOOP takes no arguments")
        return _Answer(True, "")

    def _top_command(self, arg: str) -> _Answer:
        args = _split_args(arg)
        if len(args) != 2:
            return _err("TOP needs two arguments: a message number and a number of lines")
        index = self._message(args[0])
        if isinstance(index, _Answer):
            return index
        lines = _parse_number(args[1])
        if lines is None:
            return _err(f"number of lines must be a decimal number, got {args[1][:40]!r}")
        content = self._listing[index].content
        return _Answer(True, "top of message follows", _multiline_body(_top_of(content, lines)))


# --- the client ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _ServerReply:
    ok: bool
    line: str  # the status line as received
    text: str  # after "+OK " / "-ERR "
    lines: tuple[bytes, ...]


# Verbs whose +OK reply is multi-line; LIST and UIDL only without an argument (RFC 1939 5, 7).
_MULTILINE_VERBS: Final = frozenset({"RETR", "TOP", "CAPA"})
_MULTILINE_WITHOUT_ARG: Final = frozenset({"LIST", "UIDL"})


class POP3Client:
    """The client side of one POP3 session (RFC 1939), sans IO, as a user agent runs it.

    By default it drives itself: after the greeting it logs in (USER/PASS, or APOP when asked),
    asks STAT, lists UIDL (LIST if the server refuses UIDL), retrieves every message whose UID is
    not in ``known_uids``, deletes each retrieved one when asked to, and sends QUIT; its commands
    go to :meth:`data_to_send`. With ``auto=False`` it is a step-by-step client: after the
    greeting :meth:`next_event` answers PAUSED until the application sends a
    :class:`Command`, whose reply comes back as a :class:`Reply`.

    Args:
        user: the mailbox name (USER/APOP).
        password: the password (PASS) or shared secret (APOP).
        delete_after_retrieve: DELE each retrieved message (deleted for good at QUIT).
        use_apop: log in with APOP; fails (LoginFailed, stage "APOP") if the greeting has no
            timestamp rather than sending the password in the clear.
        known_uids: UIDs already fetched in earlier sessions ("leave mail on server"); skipped.
        auto: drive the session; False for step-by-step use.

    Raises:
        LocalProtocolError: a user name or password that cannot be sent on a command line.
    """

    def __init__(
        self,
        user: str,
        password: str,
        *,
        delete_after_retrieve: bool = True,
        use_apop: bool = False,
        known_uids: Iterable[str] = (),
        auto: bool = True,
    ) -> None:
        if auto:
            if not user or any(ch.isspace() for ch in user) or len(user) > ARGUMENT_LIMIT:
                raise LocalProtocolError(
                    f"user name must be 1-{ARGUMENT_LIMIT} characters without spaces, got {user!r}"
                )
            if not password or "\r" in password or "\n" in password:
                raise LocalProtocolError("password must be non-empty and without CR or LF")
        #: The mailbox name.
        self.user = user
        self._password = password
        #: Whether retrieved messages are marked for deletion.
        self.delete_after_retrieve = delete_after_retrieve
        #: Whether to log in with APOP.
        self.use_apop = use_apop
        #: UIDs not to retrieve again.
        self.known_uids = frozenset(known_uids)
        #: Whether the client drives the session itself.
        self.auto = auto
        #: The current state.
        self.state = ClientState.GREETING
        #: The APOP timestamp of the greeting, once seen.
        self.timestamp: str | None = None
        #: True once PASS or APOP got +OK.
        self.logged_in = False
        #: Messages in the maildrop according to STAT.
        self.message_count = 0
        #: Messages retrieved so far.
        self.retrieved = 0
        #: Messages marked for deletion and acknowledged by +OK to DELE.
        self.marked = 0
        self._lines = LineBuffer(CLIENT_LINE_LIMIT)
        self._events: deque[ClientEvent] = deque()
        self._out = bytearray()
        self._status: _ServerReply | None = None  # a +OK whose multi-line body is being read
        self._body: list[bytes] = []
        self._plan: list[tuple[int, str | None]] = []  # (message number, uid) to retrieve
        self._position = 0
        self._pending: Command | None = None  # step-by-step: the command awaiting its reply
        self._closed: ConnectionLost | ConnectionClosed | None = None
        self._error: Exception | None = None
        self._reply_handlers: dict[ClientState, Callable[[_ServerReply], str]] = {
            _C.GREETING: self._on_greeting,
            _C.USER: self._on_login_step,
            _C.PASS: self._on_login_step,
            _C.APOP: self._on_login_step,
            _C.STAT: self._on_stat,
            _C.UIDL: self._on_uidl,
            _C.LIST: self._on_list,
            _C.RETR: self._on_retr,
            _C.DELE: self._on_dele,
            _C.QUIT: self._on_quit,
            _C.COMMAND: self._on_command_reply,
        }

    # -- the h11-shaped surface --

    def receive_data(self, data: bytes) -> None:
        """Feed bytes received from the server; ``b""`` means the server closed its side.

        Raises:
            LocalProtocolError: bytes fed after ``b""``.
        """
        if self._lines.closed:
            if data:
                raise LocalProtocolError("receive_data() got bytes after the peer closed (b'')")
            return
        if data and self.state in (_C.DONE, _C.CLOSED, _C.ERROR):
            return  # nothing more is expected; do not buffer it
        self._lines.feed(data)

    def next_event(self) -> ClientEvent | Sentinel:
        """Process buffered reply lines and return the next event, NEED_DATA or PAUSED.

        Once the connection is closed the same closing event (ConnectionLost or
        ConnectionClosed) is returned again and again.

        Raises:
            RemoteProtocolError: the server broke the protocol (the machine is now in ERROR).
            LocalProtocolError: the machine was already in ERROR.
        """
        if self.state is _C.ERROR:
            raise LocalProtocolError(f"the POP3 client machine is in ERROR after: {self._error}")
        while not self._events:
            if self.state is _C.CLOSED:
                assert self._closed is not None
                return self._closed
            if self.state is _C.READY and not self._lines.closed:
                return PAUSED
            # READY and DONE expect no reply: leave any line buffered, only notice the close.
            reply = None if self.state in (_C.READY, _C.DONE) else self._read_reply()
            if reply is not None:
                trigger = self._reply_handlers[self.state](reply)
                self._transition(trigger)
            elif self._lines.closed:
                self._connection_ended()
            else:
                return NEED_DATA
        return self._events.popleft()

    def send(self, event: Command) -> bytes:
        """Send the application's command (step-by-step mode only, in the READY state).

        Returns:
            The command line to write.

        Raises:
            LocalProtocolError: not in step-by-step mode, not READY, or a malformed command
                (the machine goes to ERROR).
        """
        if self.auto:
            self._local_error("this client drives itself (auto=True); send() needs auto=False")
        if self.state is not _C.READY:
            self._local_error(f"send() needs the READY state, the client is {self.state.name}")
        if not isinstance(event, Command) or not _VERB.fullmatch(event.verb):
            self._local_error(f"send() takes a Command with a verb of letters, got {event!r}")
        if "\r" in event.arg or "\n" in event.arg:
            self._local_error("a command argument cannot contain CR or LF")
        verb = event.verb.upper()
        line = (f"{verb} {event.arg}" if event.arg else verb).encode("utf-8") + b"\r\n"
        if len(line) > COMMAND_LINE_LIMIT:
            self._local_error(f"command line longer than {COMMAND_LINE_LIMIT} octets (RFC 2449)")
        self._pending = Command(verb, event.arg)
        self._transition("command")
        return line

    def data_to_send(self) -> bytes:
        """The commands the automatic client decided to send; clears the buffer."""
        data = bytes(self._out)
        self._out.clear()
        return data

    # -- the rules --

    def _transition(self, trigger: str) -> None:
        old = self.state
        new = CLIENT_TRANSITIONS[old][trigger]
        self.state = new
        command = self._command_for(new)
        if command is not None:
            self._out += command.encode("utf-8") + b"\r\n"

    def _command_for(self, state: ClientState) -> str | None:
        """The command that entering ``state`` sends (None for the other states)."""
        if state is _C.USER:
            return f"USER {self.user}"
        if state is _C.PASS:
            return f"PASS {self._password}"
        if state is _C.APOP:
            assert self.timestamp is not None
            return f"APOP {self.user} {apop_digest(self.timestamp, self._password)}"
        if state in (_C.STAT, _C.UIDL, _C.LIST, _C.QUIT):
            return state.name
        if state in (_C.RETR, _C.DELE):
            return f"{state.name} {self._plan[self._position][0]}"
        return None

    def _local_error(self, message: str) -> NoReturn:
        error = LocalProtocolError(message)
        self._fail(error)
        raise error

    def _remote_error(self, message: str) -> RemoteProtocolError:
        error = RemoteProtocolError(message)
        self._fail(error)
        return error

    def _fail(self, error: Exception) -> None:
        self._error = error
        if "protocol error" in CLIENT_TRANSITIONS[self.state]:
            self._transition("protocol error")

    def _connection_ended(self) -> None:
        if self.state is _C.DONE:
            self._closed = ConnectionClosed("peer closed")
        else:
            self._closed = ConnectionLost(self.state.name)
        self._transition("peer closed")
        self._events.append(self._closed)

    def _expects_multiline(self) -> bool:
        if self.state in (_C.UIDL, _C.LIST, _C.RETR):
            return True
        if self.state is _C.COMMAND and self._pending is not None:
            verb = self._pending.verb
            return verb in _MULTILINE_VERBS or (
                verb in _MULTILINE_WITHOUT_ARG and not _split_args(self._pending.arg)
            )
        return False

    def _read_reply(self) -> _ServerReply | None:
        """The next complete reply (status line and any multi-line body), or None for now."""
        while True:
            got = self._lines.next_line()
            if got is None:
                return None
            line, overlong = got
            if overlong:
                raise self._remote_error(
                    f"server line longer than {CLIENT_LINE_LIMIT} octets in state {self.state.name}"
                )
            if self._status is None:
                status = self._parse_status(line)
                if not (status.ok and self._expects_multiline()):
                    return status
                self._status = status
                self._body = []
            elif line == b".":
                status = self._status
                self._status = None
                return _ServerReply(status.ok, status.line, status.text, tuple(self._body))
            else:
                # RFC 1939 section 3: a line starting with '.' had one '.' added; take it off.
                self._body.append(line[1:] if line.startswith(b".") else line)

    def _parse_status(self, line: bytes) -> _ServerReply:
        text = line.decode("utf-8", "replace")
        for indicator, ok in (("+OK", True), ("-ERR", False)):
            if text == indicator or text.startswith(indicator + " "):
                return _ServerReply(ok, text, text[len(indicator) + 1 :], ())
        raise self._remote_error(
            f"expected a reply starting with +OK or -ERR in state {self.state.name}, "
            f"got {text[:60]!r}"
        )

    def _numbered_lines(self, reply: _ServerReply, what: str) -> list[tuple[int, str]]:
        """Parse "n value" lines of a LIST or UIDL listing."""
        entries: list[tuple[int, str]] = []
        for raw in reply.lines:
            fields = raw.decode("utf-8", "replace").split()
            number = _parse_number(fields[0]) if len(fields) == 2 else None
            if number is None:
                raise self._remote_error(f"malformed {what} line {raw[:60]!r}")
            entries.append((number, fields[1]))
        return entries

    def _next_message(self, outcome: str) -> str:
        self._position += 1
        return f"{outcome} next" if self._position < len(self._plan) else f"{outcome} last"

    # -- reply handlers: each returns the trigger; the table does the state --

    def _on_greeting(self, reply: _ServerReply) -> str:
        if not reply.ok:
            self._events.append(LoginFailed(reply.line, "greeting"))
            return "-ERR"
        found = _TIMESTAMP.search(reply.text)
        self.timestamp = found.group(0) if found else None
        self._events.append(Greeting(reply.text, self.timestamp))
        if not self.auto:
            return "+OK manual"
        if self.use_apop:
            if self.timestamp is None:
                self._events.append(LoginFailed(reply.line, "APOP"))
                return "+OK no timestamp"
            return "+OK apop"
        return "+OK"

    def _on_login_step(self, reply: _ServerReply) -> str:
        if not reply.ok:
            self._events.append(LoginFailed(reply.line, self.state.name))
            return "-ERR"
        if self.state is not _C.USER:
            self.logged_in = True
        return "+OK"

    def _on_stat(self, reply: _ServerReply) -> str:
        if not reply.ok:
            return "-ERR"
        fields = reply.text.split()
        count = _parse_number(fields[0]) if len(fields) >= 2 else None
        octets = _parse_number(fields[1]) if len(fields) >= 2 else None
        if count is None or octets is None:
            raise self._remote_error(f"STAT reply is not '+OK count octets': {reply.line[:60]!r}")
        self.message_count = count
        self._events.append(MaildropStatus(count, octets))
        return "+OK" if count else "+OK empty"

    def _on_uidl(self, reply: _ServerReply) -> str:
        if not reply.ok:
            return "-ERR"  # fall back to LIST: no UIDs, every message is new
        self._plan = [
            (n, uid) for n, uid in self._numbered_lines(reply, "UIDL") if uid not in self.known_uids
        ]
        return "+OK" if self._plan else "+OK nothing new"

    def _on_list(self, reply: _ServerReply) -> str:
        if not reply.ok:
            # No listing at all: message numbers 1..STAT count are all there is (RFC 1939 5).
            self._plan = [(n, None) for n in range(1, self.message_count + 1)]
            return "-ERR"
        self._plan = [(n, None) for n, _size in self._numbered_lines(reply, "LIST")]
        return "+OK" if self._plan else "+OK nothing new"

    def _on_retr(self, reply: _ServerReply) -> str:
        number, uid = self._plan[self._position]
        if not reply.ok:
            self._events.append(RetrieveFailed(number, uid, reply.line))
            return self._next_message("-ERR")
        content = b"".join(line + b"\r\n" for line in reply.lines)
        self.retrieved += 1
        self._events.append(MessageRetrieved(number, uid, content))
        if self.delete_after_retrieve:
            return "+OK delete"
        return self._next_message("+OK")

    def _on_dele(self, reply: _ServerReply) -> str:
        if reply.ok:
            self.marked += 1
        return self._next_message("+OK" if reply.ok else "-ERR")

    def _on_quit(self, reply: _ServerReply) -> str:
        if self.logged_in:
            # +OK to QUIT means UPDATE removed every marked message (RFC 1939 section 6).
            self._events.append(SessionDone(self.retrieved, self.marked if reply.ok else 0))
        return "+OK" if reply.ok else "-ERR"

    def _on_command_reply(self, reply: _ServerReply) -> str:
        assert self._pending is not None
        verb = self._pending.verb
        self._pending = None
        self._events.append(Reply(reply.ok, reply.text, reply.lines))
        outcome = "+OK" if reply.ok else "-ERR"
        return f"{outcome} QUIT" if verb == "QUIT" else outcome
