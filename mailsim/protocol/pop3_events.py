"""The events the POP3 machines hand to their application: small frozen dataclasses, as h11's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

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
class StartTLS:
    """The client sent STLS and got ``+OK`` (RFC 2595 4): run the TLS handshake now.

    Write ``data_to_send()`` first, wrap the socket, then ``send(TLSStarted())``.
    """


@dataclass(frozen=True, slots=True)
class TLSStarted:
    """Sent to the server by its application when the TLS handshake after STLS is done."""


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
    | StartTLS
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
