"""Sans-IO SMTP (RFC 5321): the server and client state machines of mailsim.

Theory of operation
-------------------
Both machines follow h11's shape. The adapter (a SimPy process, an asyncio protocol, a test)
owns the connection; the machine owns the protocol:

- ``receive_data(data)`` hands over bytes read from the peer; ``b""`` means the peer closed.
- ``next_event()`` parses what was received and returns one event, or the sentinel
  :data:`NEED_DATA` (read more), or, on the server, :data:`PAUSED` (the final dot of a message
  arrived and the application must decide before anything else is read).
- ``data_to_send()`` drains the bytes the machine produced on its own (greeting, replies the
  policy or the protocol rules decided, the client's commands and content). Write them after every
  ``next_event()`` that returns :data:`NEED_DATA`, and before blocking on a read.
- ``SMTPServer.send(event)`` is for what only the application can decide: accepting a message
  (after storing it durably, RFC 5321 4.2.5 and 6.1), rejecting it, or shutting down. It returns
  every byte to write now, in order: replies the machine had queued first, then this one.

Nothing is parsed in ``receive_data``; parsing happens in ``next_event``, so the events and output
are the same however the bytes were split. The server answers every input with a reply and never
raises because of what the peer sent. The client raises :class:`RemoteProtocolError` when a reply is
malformed, after queuing the results a lost connection would give, so every envelope still gets an
answer. Misuse by the application raises :class:`LocalProtocolError`. When ``next_event()`` returns
:data:`NEED_DATA` and ``state`` is ``CLOSED`` or ``ERROR``, write ``data_to_send()`` and close.

The state rules live in :mod:`mailsim.protocol.smtp_states` (``SERVER_TRANSITIONS``,
``CLIENT_TRANSITIONS``); every state change goes through them. Reply wording lives in
:mod:`mailsim.protocol.smtp_replies`.

Lines end in CRLF only (RFC 5321 2.3.8): a bare CR or LF is data, so ``<LF>.<LF>`` never ends a
message (the SMTP smuggling guard). Message content is handled in bulk: the server searches the
buffer for ``CRLF.CRLF`` and removes dot-stuffing with one ``bytes.replace`` per message.
"""

from __future__ import annotations

import base64
import enum
import re
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Final, Literal

from mailsim.protocol._common import LocalProtocolError, ProtocolError, RemoteProtocolError
from mailsim.protocol.smtp_replies import (
    CONNECTION_LOST,
    CONVERSION_REQUIRED,
    MAX_REPLY_LINE,
    PROTOCOL_ERROR,
    SERVER_ERRORS,
    TOO_BIG_FOR_SERVER,
    Reply,
    ReplyTexts,
)
from mailsim.protocol.smtp_states import (
    CLIENT_TRANSITIONS,
    SERVER_TRANSITIONS,
    ClientState,
    ServerState,
)

__all__ = [
    "CLIENT_TRANSITIONS",
    "NEED_DATA",
    "PAUSED",
    "SERVER_TRANSITIONS",
    "Accept",
    "AuthResult",
    "ClientEvent",
    "ClientState",
    "Closed",
    "ConnectionClosed",
    "ConnectionFailed",
    "Envelope",
    "Hello",
    "Idle",
    "LocalProtocolError",
    "MailFrom",
    "MailParams",
    "MessageReceived",
    "MessageRefused",
    "ProtocolError",
    "Quit",
    "RcptParams",
    "RcptTo",
    "RecipientOutcome",
    "Reject",
    "RemoteProtocolError",
    "Reply",
    "ReplyTexts",
    "Reset",
    "SMTPClient",
    "SMTPServer",
    "Sentinel",
    "ServerEvent",
    "ServerLimits",
    "ServerPolicy",
    "ServerState",
    "ServiceClosing",
    "Session",
    "Shutdown",
    "TransactionResult",
    "canonical_content",
    "dot_stuff",
    "is_postmaster",
    "split_lines",
]


class Sentinel(enum.Enum):
    """What ``next_event()`` returns when it has no event to give."""

    #: Nothing complete has arrived; write ``data_to_send()``, then read more.
    NEED_DATA = "NEED_DATA"
    #: The server waits for the application's verdict on a message (``send(Accept(...))``).
    PAUSED = "PAUSED"


NEED_DATA: Final = Sentinel.NEED_DATA
PAUSED: Final = Sentinel.PAUSED

_CRLF = b"\r\n"
_END_OF_DATA = b"\r\n.\r\n"


# --- limits --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServerLimits:
    """The server's size and count limits, named, with the RFC arithmetic beside each.

    RFC 5321 4.5.3.1 gives minimums every server must accept; the defaults are those minimums
    (Postfix's and aiosmtpd's choices where the RFC has none).
    """

    #: 4.5.3.1.4: a command line is at most 512 octets, CRLF included ("MAIL FROM:<" + a 256-octet
    #: path + SIZE=... fits comfortably).
    command_line: int = 512
    #: 4.5.3.1.6: a text line is at most 1000 octets, CRLF included (998 characters + CRLF).
    text_line: int = 1000
    #: 4.5.3.1.3: a path is at most 256 octets, the angle brackets included.
    path: int = 256
    #: 4.5.3.1.1: a local part is at most 64 octets.
    local_part: int = 64
    #: 4.5.3.1.2: a domain is at most 255 octets.
    domain: int = 255
    #: 4.5.3.1.8: a server must take at least 100 recipients; more get 452 4.5.3 (4.5.3.1.10).
    max_recipients: int = 100
    #: RFC 1870 SIZE: 10 MiB = 10 * 1024 * 1024 = 10485760 octets of content (after un-stuffing,
    #: CRLF counted as two octets).
    max_message_size: int = 10 * 1024 * 1024
    #: Errors (500-504, 530, 535, 554, 555) before the server says 421 4.7.0 and hangs up
    #: (Postfix's smtpd_hard_error_limit).
    max_errors: int = 20


# --- parameters ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MailParams:
    """The ESMTP parameters of MAIL FROM, parsed (RFC 1870, 6152, 3461, 4954).

    Attributes:
        size: SIZE=n, the declared message size in octets.
        body: BODY=, ``"7BIT"`` or ``"8BITMIME"``.
        ret: RET=, ``"FULL"`` or ``"HDRS"`` (what a bounce should return, RFC 3461 4.3).
        envid: ENVID=, the envelope id, still xtext-encoded as sent (RFC 3461 4.4).
        auth: AUTH=, the authenticated submitter, xtext as sent, or ``"<>"`` (RFC 4954 5).
    """

    size: int | None = None
    body: str | None = None
    ret: str | None = None
    envid: str | None = None
    auth: str | None = None


@dataclass(frozen=True, slots=True)
class RcptParams:
    """The ESMTP parameters of RCPT TO, parsed (RFC 3461 4.1, 4.2).

    Attributes:
        notify: NOTIFY=, ``("NEVER",)`` or some of ``"SUCCESS"``, ``"FAILURE"``, ``"DELAY"``.
        orcpt: ORCPT=, the original recipient as sent, e.g. ``"rfc822;steve@india.com"``.
    """

    notify: tuple[str, ...] | None = None
    orcpt: str | None = None


# --- events --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Hello:
    """The client said EHLO (``extended``) or HELO; any open transaction was dropped."""

    name: str
    extended: bool


@dataclass(frozen=True, slots=True)
class AuthResult:
    """An AUTH exchange ended with 235 (``ok``) or 535; the policy checked the password."""

    mechanism: str
    user: str
    ok: bool


@dataclass(frozen=True, slots=True)
class MailFrom:
    """MAIL FROM was accepted; ``address`` is ``""`` for the null reverse-path ``<>``."""

    address: str
    params: MailParams


@dataclass(frozen=True, slots=True)
class RcptTo:
    """RCPT TO was accepted."""

    address: str
    params: RcptParams


@dataclass(frozen=True, slots=True)
class MessageReceived:
    """The final dot arrived; the server is PAUSED until the application sends Accept or Reject.

    Attributes:
        mail_from: the reverse-path (``""`` for ``<>``).
        rcpt_to: the accepted recipients, in order.
        content: the message with CRLF line ends, dot-stuffing removed, ending in CRLF (or empty).
        mail_params: the MAIL parameters.
        rcpt_params: the RCPT parameters, one per recipient.
    """

    mail_from: str
    rcpt_to: tuple[str, ...]
    content: bytes
    mail_params: MailParams
    rcpt_params: tuple[RcptParams, ...]


@dataclass(frozen=True, slots=True)
class MessageRefused:
    """The server refused a message at its final dot on its own (552 too big, 500 long line)."""

    mail_from: str
    rcpt_to: tuple[str, ...]
    reply: Reply


@dataclass(frozen=True, slots=True)
class Reset:
    """The client sent RSET; any transaction was dropped."""


@dataclass(frozen=True, slots=True)
class Quit:
    """The client sent QUIT; 221 is queued and the server is CLOSED."""


@dataclass(frozen=True, slots=True)
class ServiceClosing:
    """The server said 421 (too many errors, a policy hook, Shutdown) and is CLOSED."""

    reply: Reply


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """The peer closed the connection; ``transaction_aborted`` if a mail transaction was open.

    RFC 5321 3.8: an open transaction is dropped; messages already acknowledged are kept.
    """

    transaction_aborted: bool


ServerEvent = (
    Hello
    | AuthResult
    | MailFrom
    | RcptTo
    | MessageReceived
    | MessageRefused
    | Reset
    | Quit
    | ServiceClosing
    | ConnectionClosed
)


@dataclass(frozen=True, slots=True)
class Accept:
    """The application stored the message; the server answers 250 with ``queue_id``."""

    queue_id: str


@dataclass(frozen=True, slots=True)
class Reject:
    """The application refuses the message with ``reply`` (4xx or 5xx; 421 also closes)."""

    reply: Reply


@dataclass(frozen=True, slots=True)
class Shutdown:
    """The application ends the session now with a 421 (default: "Service shutting down").

    For an idle timeout pass ``server.error_reply("timeout")``.
    """

    reply: Reply | None = None


# --- the policy hooks ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Session:
    """What a policy may know about the session (a read-only snapshot).

    Attributes:
        peer: the client's name or address, as given to the server by the adapter.
        hello_name: the name from EHLO/HELO, or None before it.
        extended: True if the client used EHLO.
        authenticated_user: the user of a successful AUTH, or None.
    """

    peer: str
    hello_name: str | None = None
    extended: bool = False
    authenticated_user: str | None = None


class ServerPolicy:
    """The embedding application's answers to the server's questions, with safe defaults.

    Subclass it and override what matters; every hook is called synchronously with a
    :class:`Session` snapshot. A hook returning a :class:`Reply` has it written to the client
    instead of the usual answer (a 2xx reply from ``check_sender``/``check_recipient`` still
    accepts, with that text; a 421 reply also closes the session). Returning None means "carry on".

    Args:
        auth_offered: advertise and accept AUTH PLAIN and LOGIN (RFC 4954).
        auth_required: answer MAIL with 530 5.7.0 until the client authenticates (RFC 6409
            submission port 587).
        always_accept_postmaster: accept the bare ``<postmaster>`` (any case, no domain) as a
            recipient without asking :meth:`check_recipient` (RFC 5321 4.5.1). ``postmaster@domain``
            is asked about like any recipient: only the application knows which domains are its
            own, and accepting it for every domain would make the server an open relay.
        users: user name -> password for the default :meth:`authenticate` (none by default).
    """

    def __init__(
        self,
        *,
        auth_offered: bool = False,
        auth_required: bool = False,
        always_accept_postmaster: bool = True,
        users: Mapping[str, str] | None = None,
    ) -> None:
        #: Offer AUTH PLAIN LOGIN in the EHLO reply and accept the AUTH command.
        self.auth_offered = auth_offered
        #: Refuse MAIL with 530 before a successful AUTH.
        self.auth_required = auth_required
        #: Accept postmaster without asking check_recipient.
        self.always_accept_postmaster = always_accept_postmaster
        #: Known users and their passwords (used by the default authenticate).
        self.users: dict[str, str] = dict(users or {})

    def authenticate(self, user: str, password: str) -> bool:
        """Whether ``user`` with ``password`` may log in (default: the ``users`` table)."""
        expected = self.users.get(user)
        return expected is not None and expected == password

    def check_sender(self, session: Session, address: str, params: MailParams) -> Reply | None:
        """A refusal reply for the reverse-path ``address`` (``""`` = ``<>``); default: accept."""
        return None

    def check_recipient(self, session: Session, address: str, params: RcptParams) -> Reply | None:
        """A refusal reply for the recipient ``address`` (e.g. 550 5.1.1); default: accept."""
        return None

    def before_command(self, session: Session, verb: str, arg: str) -> Reply | None:
        """A reply that replaces the command's normal handling (fault injection); default None.

        Called for every recognised command (upper-case ``verb``, stripped ``arg``) before the
        machine looks at it: a simulation can answer ``451 4.7.1`` (greylisting) to a chosen
        RCPT, or ``421 4.7.0`` (too busy, closes the session) to a chosen MAIL. The command then
        has no other effect.
        """
        return None

    def expand(self, session: Session, mailing_list: str) -> Reply | None:
        """The reply to EXPN; None (the default) means EXPN is not offered (502)."""
        return None


# --- server --------------------------------------------------------------------------------------

# RFC 5321 4.1.1 verbs the server knows but does not implement: 502 (4.2.4), not 500.
_NOT_IMPLEMENTED = frozenset({"TURN", "ETRN", "ATRN", "BDAT", "STARTTLS", "SEND", "SOML", "SAML"})
# Error codes that count towards ServerLimits.max_errors.
_COUNTED_CODES = frozenset({500, 501, 502, 503, 504, 530, 535, 554, 555})

# RFC 5321 4.1.2 Mailbox = Local-part "@" ( Domain / address-literal ). Lenient about dots in the
# local part (real mail has "john..doe"), strict about spaces and control characters.
_MAILBOX_RE = re.compile(
    r"""(?P<local>[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+|"(?:[^"\\]|\\.)*")"""
    r"@(?P<domain>[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?|\[[^\[\]\\]+\])"
)
_KEYWORD_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")
# RFC 3461 4: xtext = ( chars 33-126 except "+" and "=" / "+" two upper-case hex digits )*.
_XTEXT_RE = re.compile(r"(?:[!-*,-<>-~]|\+[0-9A-F]{2})*")
_NOTIFY_VALUES = frozenset({"SUCCESS", "FAILURE", "DELAY"})


def is_postmaster(address: str) -> bool:
    """Whether ``address`` is ``postmaster`` or ``postmaster@domain`` (any case; RFC 5321 4.5.1)."""
    local = address.rsplit("@", 1)[0] if "@" in address else address
    return local.lower() == "postmaster"


def _is_printable_word(text: str) -> bool:
    """Printable ASCII without spaces: safe to echo in a reply line."""
    return text.isascii() and text.isprintable() and " " not in text


def _parse_path(text: str, limits: ServerLimits, bad: str) -> tuple[str, str] | str:
    """Split ``<path> params`` into the address and the parameter text, or name the error.

    Source routes (``<@a,@b:user@c>``) are accepted and dropped (RFC 5321 3.6.1, 4.1.2).
    """
    text = text.lstrip(" ")
    if not text.startswith("<"):
        return bad
    if '"' in text:  # a quoted local part may hide a ">"
        end, quoted, i = -1, False, 1
        while i < len(text):
            ch = text[i]
            if quoted and ch == "\\":
                i += 2
                continue
            if ch == '"':
                quoted = not quoted
            elif ch == ">" and not quoted:
                end = i
                break
            i += 1
    else:
        end = text.find(">")
    if end < 0:
        return bad
    if end + 1 > limits.path:
        return "path_too_long"
    path, rest = text[1:end], text[end + 1 :]
    if rest and not rest.startswith(" "):
        return bad
    if path.startswith("@"):
        colon = path.find(":")
        if colon < 0:
            return bad
        path = path[colon + 1 :]
    if not path:
        return "", rest
    if not (path.isascii() and path.isprintable()):
        return bad
    if "@" not in path:
        return (path, rest) if path.lower() == "postmaster" else bad
    match = _MAILBOX_RE.fullmatch(path)
    if match is None:
        return bad
    if len(match["local"]) > limits.local_part:
        return "local_part_too_long"
    if len(match["domain"]) > limits.domain:
        return "domain_too_long"
    return path, rest


def _split_params(text: str) -> list[tuple[str, str | None]] | None:
    """``KEY=value KEY2`` as (upper-case key, value or None) pairs, or None if malformed."""
    pairs: list[tuple[str, str | None]] = []
    for token in text.split():
        key, eq, value = token.partition("=")
        if _KEYWORD_RE.fullmatch(key) is None or (eq and not value):
            return None
        pairs.append((key.upper(), value if eq else None))
    return pairs


class SMTPServer:
    """The server side of one SMTP session, as a sans-IO state machine.

    The 220 greeting is queued at construction: call ``data_to_send()`` first.

    Args:
        hostname: the server's name, used in the greeting and in 221/421 replies.
        peer: the client's name or address, passed to the policy in :class:`Session`.
        policy: the application's hooks (default :class:`ServerPolicy`: accept everyone, no AUTH).
        limits: the size and count limits (default :class:`ServerLimits`).
        texts: the reply wording (default :attr:`ReplyTexts.MODERN`).
        refuse_service: greet with 554 and answer 503 to everything but QUIT (RFC 5321 3.1).
        greeting: a greeting of your own instead: a 220 (own text), a 554 (as refuse_service),
            or a 421 (RFC 5321 3.8: too busy; the session is CLOSED at once, with a
            ServiceClosing event). A simulation injects connection faults this way.
    """

    def __init__(
        self,
        hostname: str,
        *,
        peer: str = "",
        policy: ServerPolicy | None = None,
        limits: ServerLimits | None = None,
        texts: ReplyTexts = ReplyTexts.MODERN,
        refuse_service: bool = False,
        greeting: Reply | None = None,
    ) -> None:
        if greeting is not None and greeting.code not in (220, 421, 554):
            raise ValueError(f"a greeting is 220, 421 or 554 (RFC 5321 4.3.2), got {greeting.code}")
        #: The server's host name.
        self.hostname = hostname
        #: The application's policy hooks.
        self.policy = policy if policy is not None else ServerPolicy()
        #: The limits in force.
        self.limits = limits if limits is not None else ServerLimits()
        #: The reply wording.
        self.texts = texts
        #: Where the session is; changed only through SERVER_TRANSITIONS.
        self.state = ServerState.CONNECTED
        #: What the policy may know about the session.
        self.session = Session(peer)
        self._in = bytearray()
        self._pos = 0  # first unconsumed octet of _in
        self._scan = 0  # where the search for CRLF.CRLF resumes in DATA
        self._overflow = False  # DATA went over max_message_size: counting, no longer buffering
        self._overlong = False  # the command line being read is already over the limit
        self._eof = False
        self._out = bytearray()
        self._events: deque[ServerEvent] = deque()
        self._errors = 0
        self._login_user = ""
        self._mail_from: str | None = None
        self._mail_params = MailParams()
        self._rcpts: list[str] = []
        self._rcpt_params: list[RcptParams] = []
        self._refused_rcpts = 0
        self._commands: dict[str, Callable[[str], None]] = {
            "EHLO": self._on_ehlo,
            "HELO": self._on_helo,
            "MAIL": self._on_mail,
            "RCPT": self._on_rcpt,
            "DATA": self._on_data,
            "RSET": self._on_rset,
            "NOOP": self._on_noop,
            "VRFY": self._on_vrfy,
            "EXPN": self._on_expn,
            "HELP": self._on_help,
            "QUIT": self._on_quit,
            "AUTH": self._on_auth,
        }
        # RFC 5321 3.1: the greeting is the server's first move.
        if greeting is not None:
            self._out += greeting.to_bytes()
            if greeting.code == 421:
                self._go("greeting 421")
                self._events.append(ServiceClosing(greeting))
            else:
                self._go(f"greeting {greeting.code}")
        elif refuse_service:
            self._reply(554, self.texts.no_service)
            self._go("greeting 554")
        else:
            self._reply(220, self.texts.greeting)
            self._go("greeting 220")

    # -- the h11 interface -------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Hand over bytes read from the client; ``b""`` means the client closed its side.

        Bytes arriving after the server closed (or failed) are dropped.

        Raises:
            LocalProtocolError: data after ``b""`` was already given.
        """
        if self.state is ServerState.CLOSED or self.state is ServerState.ERROR:
            return
        if not data:
            self._eof = True
            return
        if self._eof:
            raise LocalProtocolError("receive_data() called with data after the peer closed")
        if self._pos:
            del self._in[: self._pos]
            self._scan = max(0, self._scan - self._pos)
            self._pos = 0
        self._in += data

    def next_event(self) -> ServerEvent | Sentinel:
        """The next event, or :data:`NEED_DATA`, or :data:`PAUSED` while a message awaits Accept.

        Never raises because of what the client sent: every command gets its reply in
        ``data_to_send()``.
        """
        events = self._events
        while not events:
            state = self.state
            if state is ServerState.AWAITING_DECISION:
                return PAUSED
            if state is ServerState.CLOSED or state is ServerState.ERROR:
                return NEED_DATA
            progressed = self._read_content() if state is ServerState.DATA else self._read_line()
            if not progressed and not events:
                if not self._eof:
                    return NEED_DATA
                self._peer_closed()
        return events.popleft()

    def send(self, event: Accept | Reject | Shutdown) -> bytes:
        """Tell the server the application's decision; returns every byte to write now.

        Raises:
            LocalProtocolError: Accept/Reject while no message awaits a decision, a Reject with a
                2xx/3xx reply, or a Shutdown with a reply that is not 421.
        """
        if isinstance(event, Shutdown):
            if self.state is ServerState.CLOSED or self.state is ServerState.ERROR:
                return self.data_to_send()
            reply = event.reply if event.reply is not None else self.error_reply("shutdown")
            if reply.code != 421:
                self._local_error(f"Shutdown needs a 421 reply, got {reply.code}")
            self._out += reply.to_bytes()
            self._clear_transaction()
            self._go("Shutdown")
            return self.data_to_send()
        if self.state is not ServerState.AWAITING_DECISION:
            self._local_error(
                f"{type(event).__name__} sent in state {self.state.name}; "
                "only after a MessageReceived event"
            )
        if isinstance(event, Accept):
            if not _is_printable_word(event.queue_id):
                self._local_error(f"queue id must be printable ASCII, got {event.queue_id!r}")
            self._reply(250, self.texts.queued, queue_id=event.queue_id)
            self._go("Accept")
        else:
            if event.reply.code < 400:
                self._local_error(f"Reject needs a 4xx or 5xx reply, got {event.reply.code}")
            self._out += event.reply.to_bytes()
            self._go("Reject")
            if event.reply.code == 421:
                self._close_421(event.reply)
        self._clear_transaction()
        return self.data_to_send()

    def data_to_send(self) -> bytes:
        """Drain and return the bytes the machine queued (greeting, replies)."""
        out = bytes(self._out)
        self._out.clear()
        return out

    def error_reply(self, name: str, arg: str = "") -> Reply:
        """The reply :data:`SERVER_ERRORS` names ``name``, in this server's wording.

        Also ``"timeout"``: 421 4.4.2 for an adapter whose idle timer ran out (RFC 5321 4.5.3.2.7).
        """
        if name == "timeout":
            code, status, text = 421, "4.4.2", "{hostname} Error: timeout exceeded"
        else:
            code, status, text = SERVER_ERRORS[name]
        text = text.format(hostname=self.hostname, arg=arg)
        return Reply(code, (f"{status} {text}" if self.texts.enhanced else text,))

    # -- machinery ---------------------------------------------------------------------------

    def _go(self, trigger: str) -> None:
        self.state = SERVER_TRANSITIONS[self.state][trigger]

    def _local_error(self, message: str) -> None:
        if self.state is not ServerState.CLOSED and self.state is not ServerState.ERROR:
            self._go("local error")
        raise LocalProtocolError(message)

    def _reply(self, code: int, template: str, address: str = "", queue_id: str = "") -> None:
        text = template.format(
            hostname=self.hostname,
            helo=self.session.hello_name or "",
            address=address or "<>",
            queue_id=queue_id,
        )
        self._out += Reply(code, (text,)).to_bytes()

    def _error(self, name: str, arg: str = "") -> None:
        """Write an error reply; count it, and hang up with 421 once there were too many."""
        reply = self.error_reply(name, arg)
        self._out += reply.to_bytes()
        if reply.code in _COUNTED_CODES and name != "text_too_long":
            self._errors += 1
            if self._errors >= self.limits.max_errors:
                too_many = self.error_reply("too_many_errors")
                self._out += too_many.to_bytes()
                self._close_421(too_many)

    def _answer_policy(self, reply: Reply) -> None:
        """Write a reply a policy hook chose; a 421 also closes the session (RFC 5321 3.8)."""
        self._out += reply.to_bytes()
        if reply.code == 421:
            self._close_421(reply)

    def _close_421(self, reply: Reply) -> None:
        self._clear_transaction()
        self._go("421")
        self._events.append(ServiceClosing(reply))

    def _clear_transaction(self) -> None:
        self._mail_from = None
        self._mail_params = MailParams()
        self._rcpts = []
        self._rcpt_params = []
        self._refused_rcpts = 0

    def _peer_closed(self) -> None:
        state = self.state
        aborted = state in (ServerState.MAIL, ServerState.RCPT, ServerState.DATA)
        self._clear_transaction()
        self._go("peer closed")
        self._events.append(ConnectionClosed(aborted))

    # -- reading -----------------------------------------------------------------------------

    def _read_line(self) -> bool:
        """Handle one command or AUTH line; False if no complete line is buffered."""
        buf, pos = self._in, self._pos
        end = buf.find(_CRLF, pos)
        limit = self.limits.command_line
        bare = buf.find(b"\n", pos, end if end >= 0 else len(buf))
        if bare >= 0 and (bare == pos or buf[bare - 1] != 0x0D):
            # A command ended by a bare LF (RFC 5321 2.3.8): not a line; say what is wrong. Found
            # the same way however the bytes were split, since only octets up to the LF count.
            self._pos = bare + 1
            self._overlong = False
            self._error("bare_lf")
            return True
        if end < 0:
            if len(buf) - pos >= limit:
                # Too long already: skip it, keeping the last octet (maybe the CR of the CRLF).
                self._pos = len(buf) - 1
                self._overlong = True
            return False
        line = bytes(buf[pos:end])
        overlong = self._overlong or end + 2 - pos > limit
        self._overlong = False
        self._pos = end + 2
        if self.state in _AUTH_STATES:
            self._on_auth_line(line, overlong)
        else:
            self._on_command(line, overlong)
            if self.state is ServerState.DATA:
                # Keep the DATA line's CRLF: the content then starts after a CRLF, so CRLF.CRLF
                # also finds an empty message and a leading "." is un-stuffed like any other.
                self._pos = self._scan = end
        return True

    def _read_content(self) -> bool:
        """Look for CRLF.CRLF in bulk; False if the message has not ended yet."""
        buf, start = self._in, self._pos
        end = buf.find(_END_OF_DATA, self._scan)
        if end < 0:
            size = len(buf)
            self._scan = max(start, size - 4)
            limit = self.limits.max_message_size
            # Raw octets bound the content from above; count the stuffing dots only when the raw
            # size is over, since un-stuffed size decides (RFC 1870: the message size).
            if (
                not self._overflow
                and size - start - 2 > limit
                and size - start - 2 - buf.count(b"\r\n.", start, size) > limit
            ):
                self._overflow = True
            if self._overflow and size - start > 4:
                # RFC 5321 4.2.5 / aiosmtpd: keep reading to the dot, stop storing. Keep the last
                # four octets: they may begin the CRLF.CRLF that ends the message.
                del buf[: size - 4]
                self._pos = self._scan = 0
            return False
        self._pos = end + 5
        if self._overflow:
            self._overflow = False
            self._refuse_message(self.error_reply("size_exceeded"))
            return True
        stuffed = bytes(buf[start : end + 2])
        if len(stuffed) > self.limits.text_line and (
            max(map(len, stuffed.split(_CRLF))) > self.limits.text_line - 2
        ):
            self._refuse_message(self.error_reply("text_too_long"))
            return True
        # RFC 5321 4.5.2: remove the first "." of every line that starts with one.
        content = stuffed.replace(b"\r\n.", _CRLF)[2:]
        if len(content) > self.limits.max_message_size:
            self._refuse_message(self.error_reply("size_exceeded"))
            return True
        self._go("end of data")
        self._events.append(
            MessageReceived(
                self._mail_from or "",
                tuple(self._rcpts),
                content,
                self._mail_params,
                tuple(self._rcpt_params),
            )
        )
        return True

    def _refuse_message(self, reply: Reply) -> None:
        self._out += reply.to_bytes()
        refused = MessageRefused(self._mail_from or "", tuple(self._rcpts), reply)
        self._clear_transaction()
        self._go("end of data, refused")
        self._events.append(refused)

    # -- commands ----------------------------------------------------------------------------

    def _on_command(self, line: bytes, overlong: bool) -> None:
        if overlong:
            self._error("line_too_long")
            return
        text = line.decode("latin-1")
        verb, _, arg = text.partition(" ")
        verb = verb.upper()
        if self.state is ServerState.NO_SERVICE and verb != "QUIT":
            self._error("no_service")  # RFC 5321 3.1: 503 to anything but QUIT
            return
        handler = self._commands.get(verb)
        if handler is None:
            if verb in _NOT_IMPLEMENTED:
                self._error("not_implemented")
            else:
                self._error("unknown" if text.strip() else "empty")
            return
        arg = arg.strip()
        hook = self.policy.before_command(self.session, verb, arg)
        if hook is not None:
            self._answer_policy(hook)
            return
        if verb == "AUTH" and not self.policy.auth_offered:
            self._error("auth_not_enabled")
            return
        row = SERVER_TRANSITIONS[self.state]
        if ("AUTH PLAIN" if verb == "AUTH" else verb) not in row:
            self._sequence_error(verb)
            return
        handler(arg)

    def _sequence_error(self, verb: str) -> None:
        """503 (RFC 5321 4.1.4), with the most helpful text for where the session is."""
        state = self.state
        if verb == "AUTH":
            in_txn = state in (ServerState.MAIL, ServerState.RCPT)
            name = "auth_in_transaction" if in_txn else "need_ehlo"
        elif verb == "MAIL":
            name = "need_hello" if state is ServerState.GREETED else "nested_mail"
        elif verb == "RCPT":
            name = "need_mail"
        elif verb == "DATA" and state is ServerState.MAIL:
            # RFC 5321 3.3: 554 when every RCPT was refused, 503 when none was sent.
            name = "no_valid_recipients" if self._refused_rcpts else "need_rcpt"
        elif verb == "DATA":
            name = "need_mail"
        else:
            name = "need_hello"
        self._error(name)

    def _on_ehlo(self, arg: str) -> None:
        self._hello(arg, extended=True)

    def _on_helo(self, arg: str) -> None:
        self._hello(arg, extended=False)

    def _hello(self, arg: str, *, extended: bool) -> None:
        if not arg:
            self._error("syntax_ehlo" if extended else "syntax_helo")
            return
        if not _is_printable_word(arg):
            self._error("bad_hostname")
            return
        self._clear_transaction()  # RFC 5321 4.1.4: a new EHLO resets like RSET
        self.session = replace(self.session, hello_name=arg, extended=extended)
        if extended:
            texts = self.texts
            lines = [
                texts.ehlo.format(hostname=self.hostname, helo=arg, address="", queue_id=""),
                "PIPELINING",
                f"SIZE {self.limits.max_message_size}",
            ]
            if self.policy.auth_offered:
                lines.append("AUTH PLAIN LOGIN")
            if texts.enhanced:
                lines.append("ENHANCEDSTATUSCODES")
            lines += ["8BITMIME", "DSN"]
            self._out += Reply(250, tuple(lines)).to_bytes()
            self._go("EHLO")
        else:
            self._reply(250, self.texts.helo)
            self._go("HELO")
        self._events.append(Hello(arg, extended))

    def _on_mail(self, arg: str) -> None:
        if self.policy.auth_required and self.session.authenticated_user is None:
            self._error("auth_required")
            return
        if arg[:5].upper() != "FROM:":
            self._error("syntax_mail")
            return
        parsed = _parse_path(arg[5:], self.limits, "bad_sender")
        if isinstance(parsed, str):
            self._error(parsed)
            return
        address, rest = parsed
        params = self._mail_params_from(rest)
        if not isinstance(params, MailParams):
            self._error(*params)
            return
        if params.size is not None and params.size > self.limits.max_message_size:
            self._error("size_exceeded")  # RFC 1870 6: refuse at once when SIZE is declared
            return
        verdict = self.policy.check_sender(self.session, address, params)
        if verdict is not None and not verdict.is_positive:
            self._answer_policy(verdict)
            return
        self._mail_from = address
        self._mail_params = params
        if verdict is None:
            self._reply(250, self.texts.sender_ok, address=address)
        else:
            self._out += verdict.to_bytes()
        self._go("MAIL")
        self._events.append(MailFrom(address, params))

    def _mail_params_from(self, text: str) -> MailParams | tuple[str, str]:
        pairs = _split_params(text)
        if pairs is None:
            return ("syntax_mail", "")
        found: dict[str, str | None] = {}
        for key, value in pairs:
            if key in found:
                return ("duplicate_param", key)
            if key == "AUTH" and not self.policy.auth_offered:
                return ("unknown_param", key)  # RFC 4954 5: only with the AUTH extension
            if key not in ("SIZE", "BODY", "RET", "ENVID", "AUTH"):
                return ("unknown_param", key[:40])  # RFC 5321 4.1.1.11: 555
            if value is None:
                return ("bad_param", key)
            found[key] = value
        size = found.get("SIZE")
        if size is not None and not (size.isdigit() and size.isascii() and len(size) <= 20):
            return ("bad_param", "SIZE")
        body = found.get("BODY")
        if body is not None and body.upper() not in ("7BIT", "8BITMIME"):
            return ("bad_param", "BODY")
        ret = found.get("RET")
        if ret is not None and ret.upper() not in ("FULL", "HDRS"):
            return ("bad_param", "RET")
        envid = found.get("ENVID")
        if envid is not None and (len(envid) > 100 or _XTEXT_RE.fullmatch(envid) is None):
            return ("bad_param", "ENVID")  # RFC 3461 4.4: xtext, at most 100 characters
        auth = found.get("AUTH")
        if auth is not None and auth != "<>" and _XTEXT_RE.fullmatch(auth) is None:
            return ("bad_param", "AUTH")
        return MailParams(
            size=int(size) if size is not None else None,
            body=body.upper() if body is not None else None,
            ret=ret.upper() if ret is not None else None,
            envid=envid,
            auth=auth,
        )

    def _on_rcpt(self, arg: str) -> None:
        if arg[:3].upper() != "TO:":
            self._error("syntax_rcpt")
            return
        parsed = _parse_path(arg[3:], self.limits, "bad_recipient")
        if isinstance(parsed, str):
            self._error(parsed)
            return
        address, rest = parsed
        if not address:
            self._error("bad_recipient")  # RFC 5321 4.1.1.3: <> is a reverse-path only
            return
        if len(self._rcpts) >= self.limits.max_recipients:
            self._error("too_many_recipients")
            return
        params = _rcpt_params_from(rest)
        if not isinstance(params, RcptParams):
            self._error(*params)
            return
        if self.policy.always_accept_postmaster and address.lower() == "postmaster":
            verdict = None
        else:
            verdict = self.policy.check_recipient(self.session, address, params)
        if verdict is not None and not verdict.is_positive:
            self._refused_rcpts += 1
            self._answer_policy(verdict)
            return
        self._rcpts.append(address)
        self._rcpt_params.append(params)
        if verdict is None:
            self._reply(250, self.texts.recipient_ok, address=address)
        else:
            self._out += verdict.to_bytes()
        self._go("RCPT")
        self._events.append(RcptTo(address, params))

    def _on_data(self, arg: str) -> None:
        if arg:
            self._error("syntax_data")
            return
        self._reply(354, self.texts.start_data)
        self._go("DATA")

    def _on_rset(self, arg: str) -> None:
        if arg:
            self._error("syntax_rset")
            return
        self._clear_transaction()
        self._reply(250, self.texts.ok)
        self._go("RSET")
        self._events.append(Reset())

    def _on_noop(self, arg: str) -> None:
        self._reply(250, self.texts.ok)  # RFC 5321 4.1.1.9: NOOP may carry a string; ignored
        self._go("NOOP")

    def _on_vrfy(self, arg: str) -> None:
        if not arg:
            self._error("syntax_vrfy")
            return
        self._reply(252, self.texts.vrfy)  # RFC 5321 3.5.3: 252, never a mailbox list
        self._go("VRFY")

    def _on_expn(self, arg: str) -> None:
        if not arg:
            self._error("syntax_expn")
            return
        reply = self.policy.expand(self.session, arg)
        if reply is None:
            self._error("not_implemented")
            return
        self._go("EXPN")
        self._answer_policy(reply)

    def _on_help(self, arg: str) -> None:
        self._reply(214, self.texts.help)
        self._go("HELP")

    def _on_quit(self, arg: str) -> None:
        # RFC 5321 4.1.1.10: QUIT takes no argument, but a client that wants to leave may leave.
        self._reply(221, self.texts.bye)
        self._clear_transaction()
        self._go("QUIT")
        self._events.append(Quit())

    # -- AUTH (RFC 4954) ---------------------------------------------------------------------

    def _on_auth(self, arg: str) -> None:
        if not self.session.extended:
            self._error("need_ehlo")
            return
        if self.session.authenticated_user is not None:
            self._error("already_authenticated")  # RFC 4954 4
            return
        mechanism, _, initial = arg.partition(" ")
        mechanism, initial = mechanism.upper(), initial.strip()
        if not mechanism:
            self._error("syntax_auth")
        elif mechanism == "PLAIN":
            if initial:
                self._go("AUTH PLAIN with response")
                self._finish_plain(initial)
            else:
                self._out += b"334 \r\n"  # an empty challenge
                self._go("AUTH PLAIN")
        elif mechanism == "LOGIN":
            if not initial:
                self._out += b"334 VXNlcm5hbWU6\r\n"  # base64("Username:")
                self._go("AUTH LOGIN")
                return
            user = _decode_base64(initial)
            if user is None:
                self._error("auth_undecodable")
                return
            self._login_user = user
            self._out += b"334 UGFzc3dvcmQ6\r\n"  # base64("Password:")
            self._go("AUTH LOGIN with user")
        else:
            self._error("auth_mechanism")

    def _on_auth_line(self, line: bytes, overlong: bool) -> None:
        state = self.state
        cancel = "auth cancelled" if state is ServerState.AUTH_LOGIN_USER else "auth response"
        if overlong:
            self._go(cancel)
            self._error("line_too_long")
            return
        text = line.decode("latin-1").strip()
        if text == "*":  # RFC 4954 4: the client cancels
            self._go(cancel)
            self._error("auth_aborted")
            return
        if state is ServerState.AUTH_PLAIN:
            self._go("auth response")
            self._finish_plain(text)
            return
        decoded = _decode_base64(text)
        if decoded is None:
            self._go(cancel)
            self._error("auth_undecodable")
            return
        if state is ServerState.AUTH_LOGIN_USER:
            self._login_user = decoded
            self._out += b"334 UGFzc3dvcmQ6\r\n"
            self._go("auth response")
        else:
            self._go("auth response")
            self._finish_auth("LOGIN", self._login_user, decoded)

    def _finish_plain(self, text: str) -> None:
        # RFC 4616: authzid NUL authcid NUL passwd; "=" is an empty initial response.
        decoded = _decode_base64("" if text == "=" else text)
        parts = decoded.split("\0") if decoded is not None else []
        if len(parts) != 3:
            self._error("auth_undecodable")
            return
        self._finish_auth("PLAIN", parts[1], parts[2])

    def _finish_auth(self, mechanism: str, user: str, password: str) -> None:
        self._login_user = ""
        ok = self.policy.authenticate(user, password)
        self._events.append(AuthResult(mechanism, user, ok))
        if ok:
            self.session = replace(self.session, authenticated_user=user)
            self._reply(235, self.texts.auth_ok)
        else:
            self._error("auth_failed")


_AUTH_STATES = frozenset(
    {ServerState.AUTH_PLAIN, ServerState.AUTH_LOGIN_USER, ServerState.AUTH_LOGIN_PASSWORD}
)


def _decode_base64(text: str) -> str | None:
    """Strict base64 to UTF-8 text, or None when it is not valid."""
    try:
        return base64.b64decode(text, validate=True).decode("utf-8")
    except ValueError:  # binascii.Error and UnicodeDecodeError are both ValueErrors
        return None


def _rcpt_params_from(text: str) -> RcptParams | tuple[str, str]:
    pairs = _split_params(text)
    if pairs is None:
        return ("syntax_rcpt", "")
    found: dict[str, str] = {}
    for key, value in pairs:
        if key in found:
            return ("duplicate_param", key)
        if key not in ("NOTIFY", "ORCPT"):
            return ("unknown_param", key[:40])
        if value is None:
            return ("bad_param", key)
        found[key] = value
    notify: tuple[str, ...] | None = None
    if "NOTIFY" in found:
        # RFC 3461 4.1: NEVER alone, or a comma list of SUCCESS, FAILURE, DELAY.
        notify = tuple(found["NOTIFY"].upper().split(","))
        if notify != ("NEVER",) and not (
            set(notify) <= _NOTIFY_VALUES and len(set(notify)) == len(notify)
        ):
            return ("bad_param", "NOTIFY")
    orcpt = found.get("ORCPT")
    if orcpt is not None:
        # RFC 3461 4.2: addr-type ";" xtext, at most 500 characters.
        kind, semi, value = orcpt.partition(";")
        if (
            not semi
            or _KEYWORD_RE.fullmatch(kind) is None
            or not value
            or len(orcpt) > 500
            or _XTEXT_RE.fullmatch(value) is None
        ):
            return ("bad_param", "ORCPT")
    return RcptParams(notify=notify, orcpt=orcpt)


# --- client --------------------------------------------------------------------------------------

#: A reply line longer than this (CRLF included) is a protocol error. RFC 5321 4.5.3.1.5 says 512;
#: we accept up to 2048 from sloppy servers while keeping memory bounded.
MAX_CLIENT_REPLY_LINE = 4 * MAX_REPLY_LINE
#: The whole of a multi-line reply may not exceed this many octets.
MAX_CLIENT_REPLY = 64 * 1024

RecipientStatus = Literal["accepted", "temporary", "permanent"]


def _check_address(address: str, where: str, *, null_ok: bool) -> None:
    if address == "" and null_ok:
        return
    if not (address.isascii() and address.isprintable()) or any(c in address for c in " <>"):
        raise ValueError(
            f"{where}: {address!r} is not a usable address "
            "(printable ASCII, no spaces or angle brackets)"
        )


@dataclass(frozen=True, slots=True)
class Envelope:
    """One message for the client to send: who from, to whom, and the content.

    Args:
        mail_from: the reverse-path without angle brackets; ``""`` for ``<>`` (bounces).
        rcpt_to: the recipients (at least one).
        content: the message (headers, blank line, body) with CRLF or LF line ends; the client
            sends it with CRLF only, dot-stuffed, followed by CRLF.CRLF.
        mail_params: MAIL parameters to pass on (``size`` is ignored: the client computes SIZE).
        rcpt_params: one RcptParams per recipient, or ``()`` for none.
    """

    mail_from: str
    rcpt_to: tuple[str, ...]
    content: bytes
    mail_params: MailParams = field(default_factory=MailParams)
    rcpt_params: tuple[RcptParams, ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.rcpt_to, str):
            raise ValueError("Envelope.rcpt_to must be a tuple of addresses, not one string")
        object.__setattr__(self, "rcpt_to", tuple(self.rcpt_to))
        object.__setattr__(self, "rcpt_params", tuple(self.rcpt_params))
        if not self.rcpt_to:
            raise ValueError("Envelope.rcpt_to: at least one recipient is needed")
        _check_address(self.mail_from, "Envelope.mail_from", null_ok=True)
        for i, address in enumerate(self.rcpt_to):
            _check_address(address, f"Envelope.rcpt_to[{i}]", null_ok=False)
        if self.rcpt_params and len(self.rcpt_params) != len(self.rcpt_to):
            raise ValueError(
                f"Envelope.rcpt_params: {len(self.rcpt_params)} given for "
                f"{len(self.rcpt_to)} recipients; give one per recipient or none"
            )
        if not isinstance(self.content, bytes):
            raise ValueError("Envelope.content must be bytes (encode the message first)")
        # Parameters go into command lines verbatim: no spaces, no CR/LF, ASCII only.
        params = self.mail_params
        for name in ("body", "ret", "envid", "auth"):
            value = getattr(params, name)
            if value is not None and not _is_printable_word(value):
                raise ValueError(f"Envelope.mail_params.{name}: {value!r} is not a valid value")
        for i, rcpt in enumerate(self.rcpt_params):
            for value in (*(rcpt.notify or ()), rcpt.orcpt):
                if value is not None and not _is_printable_word(value):
                    raise ValueError(f"Envelope.rcpt_params[{i}]: {value!r} is not a valid value")


@dataclass(frozen=True, slots=True)
class RecipientOutcome:
    """How one recipient of an envelope fared, and the reply that decided it.

    Attributes:
        address: the recipient.
        status: ``"accepted"`` (the server took responsibility), ``"temporary"`` (try again
            later: 4xx, or the connection was lost) or ``"permanent"`` (5xx: bounce).
        reply: the deciding reply (the one after the final dot for accepted recipients).
    """

    address: str
    status: RecipientStatus
    reply: Reply


@dataclass(frozen=True, slots=True)
class TransactionResult:
    """The client finished with one envelope: one outcome per recipient, in order.

    Attributes:
        envelope: the envelope as queued.
        outcomes: per recipient.
        data_reply: the reply to the final dot, or None if the content was never (fully) sent.
        dot_sent_no_reply: the final dot was sent but the connection died before its reply; the
            server may have taken the message, so a retry may duplicate it (RFC 1047).
    """

    envelope: Envelope
    outcomes: tuple[RecipientOutcome, ...]
    data_reply: Reply | None = None
    dot_sent_no_reply: bool = False


@dataclass(frozen=True, slots=True)
class Idle:
    """The client is between transactions with nothing queued: queue more, or quit()."""


@dataclass(frozen=True, slots=True)
class ConnectionFailed:
    """The session ended early (bad greeting, EHLO/HELO refused, 421, connection lost, error).

    Attributes:
        reply: the server's reply, or a synthetic ``451 4.4.2 Connection lost``.
        unsent: queued envelopes that were never started, for the caller to try elsewhere/later.
    """

    reply: Reply
    unsent: tuple[Envelope, ...]


@dataclass(frozen=True, slots=True)
class Closed:
    """The session is over; always the client's last event."""


ClientEvent = TransactionResult | Idle | ConnectionFailed | Closed


def _status_of(reply: Reply) -> RecipientStatus:
    # RFC 5321 4.2: judge by the first digit. 3xx where a final answer belongs is nonsense; treat
    # it as temporary so the message is retried rather than bounced.
    if reply.code < 300:
        return "accepted"
    return "permanent" if reply.code >= 500 else "temporary"


def canonical_content(content: bytes) -> bytes:
    """The message with every line ending as CRLF and a CRLF at the end (unless empty).

    CRLF, a bare LF and a bare CR each count as one line end (as smtplib does). This is exactly the
    ``content`` the server's :class:`MessageReceived` will carry.
    """
    if b"\r" in content:
        if content.count(b"\r") != content.count(_CRLF) or content.count(b"\n") != content.count(
            _CRLF
        ):
            content = content.replace(_CRLF, b"\n").replace(b"\r", b"\n").replace(b"\n", _CRLF)
    elif b"\n" in content:
        content = content.replace(b"\n", _CRLF)
    if content and not content.endswith(_CRLF):
        content += _CRLF
    return content


def dot_stuff(content: bytes) -> bytes:
    """Canonical content as sent after 354: a leading "." doubled on every line, then CRLF.CRLF.

    RFC 5321 4.5.2. ``content`` must already be canonical (see :func:`canonical_content`).
    """
    stuffed = content.replace(b"\r\n.", b"\r\n..")
    if stuffed.startswith(b"."):
        stuffed = b"." + stuffed
    return stuffed + b".\r\n"


def split_lines(data: bytes) -> list[str]:
    """The protocol lines in ``data`` as text without CRLF, for transcripts and traces.

    Octets map one-to-one to characters (Latin-1), so nothing is lost. A trailing piece without
    CRLF is returned as the last item.
    """
    if not data:
        return []
    lines = data.decode("latin-1").split("\r\n")
    if lines[-1] == "":
        lines.pop()
    return lines


class _Transaction:
    """The client's book-keeping for the envelope in flight."""

    __slots__ = (
        "accepted",
        "data_refusal",
        "data_reply",
        "dot_sent",
        "empty_dot",
        "envelope",
        "mail_reply",
        "replies",
        "size",
        "wire",
    )

    def __init__(self, envelope: Envelope, canonical: bytes) -> None:
        self.envelope = envelope
        #: The content as sent after 354 (stuffed, with CRLF.CRLF); built when needed.
        self.wire = canonical
        self.size = len(canonical)
        self.mail_reply: Reply | None = None
        #: The reply to each RCPT, in order, as they arrive.
        self.replies: list[Reply] = []
        self.accepted = 0
        self.data_refusal: Reply | None = None
        self.data_reply: Reply | None = None
        self.dot_sent = False
        #: Pipelined, no recipient accepted, yet DATA got 354: only a lone "." was sent.
        self.empty_dot = False


class SMTPClient:
    """The client side of one SMTP session, delivering queued envelopes over one connection.

    The client drives itself: it waits for the greeting, says EHLO (HELO if refused with
    500/501/502/504), authenticates with AUTH PLAIN (or LOGIN) when ``auth`` is given and the
    server offers it, then runs one transaction per queued envelope (MAIL, RCPT..., DATA; all in
    one write when the server offers PIPELINING, RFC 2920), and QUITs once :meth:`quit` was called
    and the queue is empty. Each envelope ends in exactly one :class:`TransactionResult`, or is
    handed back in :attr:`ConnectionFailed.unsent`.

    Args:
        local_hostname: the name for EHLO/HELO.
        auth: (user, password) to authenticate with, or None. If the server does not offer
            AUTH the client carries on without (a server that needs it answers MAIL with 530).
        pipelining: use PIPELINING when the server offers it.
    """

    def __init__(
        self,
        local_hostname: str,
        *,
        auth: tuple[str, str] | None = None,
        pipelining: bool = True,
    ) -> None:
        if not _is_printable_word(local_hostname):
            raise ValueError(f"local_hostname must be printable ASCII, got {local_hostname!r}")
        #: The name given in EHLO/HELO.
        self.local_hostname = local_hostname
        #: Where the session is; changed only through CLIENT_TRANSITIONS.
        self.state = ClientState.AWAIT_GREETING
        #: The server's greeting, once received.
        self.greeting: Reply | None = None
        #: The EHLO extensions the server offered: keyword (upper case) -> its parameters.
        self.extensions: dict[str, str] = {}
        self._auth = auth
        self._want_pipelining = pipelining
        self._queue: deque[Envelope] = deque()
        self._txn: _Transaction | None = None
        self._quit_requested = False
        self._idle_reported = False
        self._in = bytearray()
        self._pos = 0
        self._eof = False
        self._out = bytearray()
        self._events: deque[ClientEvent] = deque()
        self._handlers: dict[ClientState, Callable[[Reply], None]] = {
            ClientState.AWAIT_GREETING: self._on_greeting,
            ClientState.EHLO_SENT: self._on_ehlo_reply,
            ClientState.HELO_SENT: self._on_helo_reply,
            ClientState.AUTH_PLAIN_SENT: self._on_auth_done,
            ClientState.AUTH_LOGIN_SENT: self._on_login_challenge,
            ClientState.AUTH_USER_SENT: self._on_login_challenge,
            ClientState.AUTH_PASSWORD_SENT: self._on_auth_done,
            ClientState.IDLE: self._on_unsolicited,
            ClientState.MAIL_SENT: self._on_mail_reply,
            ClientState.RCPT_SENT: self._on_rcpt_reply,
            ClientState.DATA_SENT: self._on_data_reply,
            ClientState.CONTENT_SENT: self._on_final_reply,
            ClientState.RSET_SENT: self._on_rset_reply,
            ClientState.QUIT_SENT: self._on_quit_reply,
        }

    # -- the application's side --------------------------------------------------------------

    @property
    def pipelining(self) -> bool:
        """Whether transactions are pipelined (wanted, and offered by the server)."""
        return self._want_pipelining and "PIPELINING" in self.extensions

    @property
    def max_size(self) -> int | None:
        """The server's SIZE limit in octets, or None if it has none or did not say."""
        value = self.extensions.get("SIZE", "").strip()
        return int(value) if value.isdigit() and int(value) > 0 else None

    def send_message(self, envelope: Envelope) -> None:
        """Queue an envelope; if the client is idle its MAIL goes out at once.

        Raises:
            LocalProtocolError: the session is ending (after :meth:`quit`, or closed); nothing
                changes.
        """
        if self._quit_requested or self.state in _CLIENT_OVER:
            raise LocalProtocolError(
                f"cannot queue a message: the session is {self._ending_word()}"
            )
        self._queue.append(envelope)
        if self.state is ClientState.IDLE:
            self._advance()

    def quit(self) -> None:
        """Send QUIT once every queued envelope is done (at once if idle); calling again is fine."""
        if self._quit_requested or self.state in _CLIENT_OVER:
            return
        self._quit_requested = True
        if self.state is ClientState.IDLE:
            self._advance()

    def unsent(self) -> tuple[Envelope, ...]:
        """The envelopes queued but not yet started."""
        return tuple(self._queue)

    # -- the h11 interface -------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Hand over bytes read from the server; ``b""`` means the connection closed.

        Raises:
            LocalProtocolError: data after ``b""`` was already given.
        """
        if self.state in _CLIENT_OVER:
            return
        if not data:
            self._eof = True
            return
        if self._eof:
            raise LocalProtocolError("receive_data() called with data after the peer closed")
        if self._pos:
            del self._in[: self._pos]
            self._pos = 0
        self._in += data

    def next_event(self) -> ClientEvent | Literal[Sentinel.NEED_DATA]:
        """The next event, or :data:`NEED_DATA`.

        Raises:
            RemoteProtocolError: the server sent something that is not an SMTP reply. The
                machine is then in ERROR, and further calls return the results a lost connection
                would give (ending with :class:`Closed`), so no envelope is forgotten.
        """
        events = self._events
        while not events:
            if self.state in _CLIENT_OVER:
                return NEED_DATA
            reply = self._read_reply()
            if reply is None:
                if not self._eof:
                    return NEED_DATA
                self._lost(CONNECTION_LOST, "connection lost")
            elif reply.code == 421 and "421" in CLIENT_TRANSITIONS[self.state]:
                self._lost(reply, "421")
            else:
                self._handlers[self.state](reply)
        return events.popleft()

    def data_to_send(self) -> bytes:
        """Drain and return the bytes to write to the server (commands and content)."""
        out = bytes(self._out)
        self._out.clear()
        return out

    # -- machinery ---------------------------------------------------------------------------

    def _go(self, trigger: str) -> None:
        self.state = CLIENT_TRANSITIONS[self.state][trigger]

    def _ending_word(self) -> str:
        return "closed" if self.state in _CLIENT_OVER else "quitting"

    def _write(self, line: str) -> None:
        self._out += line.encode("ascii") + _CRLF

    def _read_reply(self) -> Reply | None:
        """One complete (possibly multi-line) reply, or None if it has not all arrived."""
        buf, pos = self._in, self._pos
        lines: list[str] = []
        code = b""
        while True:
            end = buf.find(_CRLF, pos)
            if end < 0:
                if (
                    len(buf) - pos > MAX_CLIENT_REPLY_LINE
                    or len(buf) - self._pos > MAX_CLIENT_REPLY
                ):
                    self._protocol_error("reply too long")
                return None
            line = bytes(buf[pos:end])
            if end - pos > MAX_CLIENT_REPLY_LINE:
                self._protocol_error("reply line too long")
            pos = end + 2
            if (
                len(line) < 3
                or not line[:3].isdigit()
                or line[0] not in b"2345"
                or (len(line) > 3 and line[3] not in b" -")
            ):
                self._protocol_error(f"not an SMTP reply line: {line[:60]!r}")
            if code and line[:3] != code:
                self._protocol_error(f"reply code changed inside a multi-line reply: {line[:60]!r}")
            code = line[:3]
            text = line[4:].decode("latin-1")
            if "\r" in text or "\n" in text:
                self._protocol_error(f"bare CR or LF inside a reply line: {line[:60]!r}")
            lines.append(text)
            if len(line) == 3 or line[3] == 0x20:
                self._pos = pos
                return Reply(int(code), tuple(lines))

    def _protocol_error(self, message: str) -> None:
        """Settle every envelope as a lost connection would, then raise (RFC 5321 has no repair)."""
        if self.state is not ClientState.QUIT_SENT:
            self._settle(PROTOCOL_ERROR, lost=True)
            self._events.append(ConnectionFailed(PROTOCOL_ERROR, self._take_queue()))
        self._events.append(Closed())
        self._go("protocol error")
        raise RemoteProtocolError(message)

    def _take_queue(self) -> tuple[Envelope, ...]:
        unsent = tuple(self._queue)
        self._queue.clear()
        self._quit_requested = True
        return unsent

    def _lost(self, reply: Reply, trigger: str) -> None:
        """The connection ended (421 or EOF) before QUIT: settle and hand the queue back."""
        if self.state is ClientState.QUIT_SENT:
            self._go(trigger if trigger in CLIENT_TRANSITIONS[self.state] else "reply")
            self._events.append(Closed())
            return
        # A 421 that answers the final dot is the dot's reply (RFC 5321 3.8); EOF is not.
        self._settle(reply, lost=trigger != "421")
        self._events.append(ConnectionFailed(reply, self._take_queue()))
        self._go(trigger)
        self._events.append(Closed())

    def _settle(self, reply: Reply, *, lost: bool) -> None:
        """Finish the envelope in flight with ``reply`` for every undecided recipient."""
        txn = self._txn
        if txn is None:
            return
        dot_no_reply = False
        if self.state is ClientState.CONTENT_SENT and not txn.empty_dot:
            if lost:
                dot_no_reply = txn.dot_sent
            else:
                txn.data_reply = reply
        self._finish(txn, reply, dot_sent_no_reply=dot_no_reply)

    def _finish(
        self, txn: _Transaction, fallback: Reply | None = None, *, dot_sent_no_reply: bool = False
    ) -> None:
        """Emit the TransactionResult: each recipient judged by the first reply that decided it."""
        outcomes = []
        mail = txn.mail_reply
        for i, address in enumerate(txn.envelope.rcpt_to):
            rcpt = txn.replies[i] if i < len(txn.replies) else None
            if mail is not None and not mail.is_positive:
                decisive = mail
            elif rcpt is not None and not rcpt.is_positive:
                decisive = rcpt
            elif rcpt is not None and txn.data_refusal is not None:
                decisive = txn.data_refusal
            elif rcpt is not None and txn.data_reply is not None:
                decisive = txn.data_reply
            else:
                decisive = fallback if fallback is not None else CONNECTION_LOST
            status = _status_of(decisive)
            if decisive is fallback and status == "accepted":
                status = "temporary"  # never call a recipient delivered without a reply
            outcomes.append(RecipientOutcome(address, status, decisive))
        self._events.append(
            TransactionResult(
                txn.envelope,
                tuple(outcomes),
                txn.data_reply if txn.dot_sent else None,
                dot_sent_no_reply,
            )
        )
        self._txn = None

    def _refuse_all(self, reply: Reply) -> None:
        """Every queued envelope fails with ``reply`` (AUTH failed); then QUIT."""
        for envelope in self._take_queue():
            outcomes = tuple(
                RecipientOutcome(address, _status_of(reply), reply) for address in envelope.rcpt_to
            )
            self._events.append(TransactionResult(envelope, outcomes))
        self._write("QUIT")
        self._go("4xx/5xx")

    def _refuse_session(self, reply: Reply) -> None:
        """The server will not talk to us (bad greeting, HELO refused): hand back, QUIT."""
        self._events.append(ConnectionFailed(reply, self._take_queue()))
        self._write("QUIT")
        self._go("4xx/5xx")

    def _advance(self) -> None:
        """In IDLE: start the next envelope, or QUIT, or tell the application we are idle."""
        while self._queue:
            envelope = self._queue.popleft()
            self._idle_reported = False  # work arrived: say Idle again once it is done
            canonical = canonical_content(envelope.content)
            refusal = None
            if "8BITMIME" not in self.extensions and not canonical.isascii():
                refusal = CONVERSION_REQUIRED  # RFC 6152 3: no 8-bit data without 8BITMIME
            elif self.max_size is not None and len(canonical) > self.max_size:
                refusal = TOO_BIG_FOR_SERVER  # RFC 1870 6.1
            if refusal is not None:
                outcomes = tuple(
                    RecipientOutcome(a, "permanent", refusal) for a in envelope.rcpt_to
                )
                self._events.append(TransactionResult(envelope, outcomes))
                self._go("envelope refused locally")
                continue
            self._start(_Transaction(envelope, canonical))
            return
        if self._quit_requested:
            self._write("QUIT")
            self._go("quit")
        elif not self._idle_reported:
            self._idle_reported = True
            self._events.append(Idle())

    def _start(self, txn: _Transaction) -> None:
        self._txn = txn
        envelope = txn.envelope
        ext = self.extensions
        params = envelope.mail_params
        mail = f"MAIL FROM:<{envelope.mail_from}>"
        if "SIZE" in ext:
            mail += f" SIZE={txn.size}"
        body = params.body or (None if txn.wire.isascii() else "8BITMIME")
        if body is not None and "8BITMIME" in ext:
            mail += f" BODY={body}"
        if "DSN" in ext:
            if params.ret is not None:
                mail += f" RET={params.ret}"
            if params.envid is not None:
                mail += f" ENVID={params.envid}"
        if params.auth is not None and "AUTH" in ext:
            mail += f" AUTH={params.auth}"
        self._write(mail)
        if self.pipelining:
            for i in range(len(envelope.rcpt_to)):
                self._write(self._rcpt_line(i))
            self._write("DATA")
        self._go("envelope")

    def _rcpt_line(self, i: int) -> str:
        assert self._txn is not None
        envelope = self._txn.envelope
        line = f"RCPT TO:<{envelope.rcpt_to[i]}>"
        if envelope.rcpt_params and "DSN" in self.extensions:
            params = envelope.rcpt_params[i]
            if params.notify is not None:
                line += f" NOTIFY={','.join(params.notify)}"
            if params.orcpt is not None:
                line += f" ORCPT={params.orcpt}"
        return line

    # -- replies, per state ------------------------------------------------------------------

    def _on_greeting(self, reply: Reply) -> None:
        self.greeting = reply
        if reply.is_positive:
            self._write(f"EHLO {self.local_hostname}")
            self._go("220")
        else:
            self._refuse_session(reply)  # RFC 5321 3.1: 554 greeting; QUIT and go elsewhere

    def _on_ehlo_reply(self, reply: Reply) -> None:
        if reply.is_positive:
            self.extensions = {}
            for line in reply.lines[1:]:
                keyword, _, value = line.partition(" ")
                self.extensions[keyword.upper()] = value.strip()
            mechanisms = self.extensions.get("AUTH", "").upper().split()
            if self._auth is not None and "PLAIN" in mechanisms:
                user, password = self._auth
                token = base64.b64encode(f"\0{user}\0{password}".encode()).decode("ascii")
                self._write(f"AUTH PLAIN {token}")
                self._go("250, AUTH PLAIN")
            elif self._auth is not None and "LOGIN" in mechanisms:
                self._write("AUTH LOGIN")
                self._go("250, AUTH LOGIN")
            else:
                self._go("250")
                self._advance()
        elif reply.code in (500, 501, 502, 504):
            self._write(f"HELO {self.local_hostname}")
            self._go("500/501/502/504")
        else:
            self._refuse_session(reply)

    def _on_helo_reply(self, reply: Reply) -> None:
        if reply.is_positive:
            self.extensions = {}
            self._go("250")
            self._advance()
        else:
            self._refuse_session(reply)

    def _on_login_challenge(self, reply: Reply) -> None:
        if reply.code != 334:
            self._refuse_all(reply)
            return
        assert self._auth is not None
        secret = self._auth[0] if self.state is ClientState.AUTH_LOGIN_SENT else self._auth[1]
        self._write(base64.b64encode(secret.encode()).decode("ascii"))
        self._go("334")

    def _on_auth_done(self, reply: Reply) -> None:
        if reply.is_positive:
            self._go("235")
            self._advance()
        else:
            self._refuse_all(reply)

    def _on_unsolicited(self, reply: Reply) -> None:
        self._protocol_error(f"reply without a command: {reply}")

    def _on_mail_reply(self, reply: Reply) -> None:
        txn = self._txn
        assert txn is not None
        txn.mail_reply = reply
        if reply.is_positive:
            if not self.pipelining:
                self._write(self._rcpt_line(0))
            self._go("2xx")
        elif self.pipelining:
            self._go("4xx/5xx, pipelined")  # the RCPT and DATA replies are still to come
        else:
            self._finish(txn)
            self._write("RSET")
            self._go("4xx/5xx")

    def _on_rcpt_reply(self, reply: Reply) -> None:
        txn = self._txn
        assert txn is not None
        txn.replies.append(reply)
        mail_ok = txn.mail_reply is not None and txn.mail_reply.is_positive
        if reply.is_positive and mail_ok:
            txn.accepted += 1
        count = len(txn.replies)
        if count < len(txn.envelope.rcpt_to):
            if not self.pipelining:
                self._write(self._rcpt_line(count))
            self._go("reply, more RCPT")
        elif self.pipelining:
            self._go("last reply, pipelined")
        elif txn.accepted:
            self._write("DATA")
            self._go("last reply, some accepted")
        else:
            self._finish(txn)
            self._write("RSET")
            self._go("last reply, none accepted")

    def _on_data_reply(self, reply: Reply) -> None:
        txn = self._txn
        assert txn is not None
        if reply.code == 354:
            if txn.accepted:
                self._out += dot_stuff(txn.wire)
                txn.dot_sent = True
            else:
                # RFC 2920 3.1: DATA was pipelined, nobody accepted, yet the server said 354:
                # end the (empty) message at once.
                self._out += b".\r\n"
                txn.empty_dot = True
            txn.wire = b""
            self._go("354")
        else:
            txn.data_refusal = reply
            self._finish(txn)
            self._write("RSET")
            self._go("4xx/5xx")

    def _on_final_reply(self, reply: Reply) -> None:
        txn = self._txn
        assert txn is not None
        if not txn.empty_dot:
            txn.data_reply = reply
        self._finish(txn)
        self._go("reply")
        self._advance()

    def _on_rset_reply(self, reply: Reply) -> None:
        self._go("reply")
        self._advance()

    def _on_quit_reply(self, reply: Reply) -> None:
        self._go("reply")
        self._events.append(Closed())


_CLIENT_OVER = frozenset({ClientState.CLOSED, ClientState.ERROR})
