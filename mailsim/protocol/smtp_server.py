"""Sans-IO SMTP server (RFC 5321): the receiving side of a session, for MX and submission.

The theory of operation shared with the client is in :mod:`mailsim.protocol.smtp`; the state rules
are ``SERVER_TRANSITIONS`` in :mod:`mailsim.protocol.smtp_states`. The application decides what the
machine cannot: the :class:`ServerPolicy` hooks accept or refuse senders, recipients and
credentials, and ``send(Accept(...))`` acknowledges a message once it is stored.

Message content is handled in bulk: the server searches the buffer for ``CRLF.CRLF`` and removes
dot-stuffing with one ``bytes.replace`` per message.
"""

from __future__ import annotations

import base64
import re
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from mailsim.protocol._common import LocalProtocolError
from mailsim.protocol.smtp_address import local_part
from mailsim.protocol.smtp_params import MailParams, RcptParams, is_printable_word
from mailsim.protocol.smtp_replies import (
    COMMAND_REPLIES,
    SERVER_ERRORS,
    Reply,
    ReplyTexts,
)
from mailsim.protocol.smtp_states import (
    NEED_DATA,
    PAUSED,
    SERVER_TRANSITIONS,
    Sentinel,
    ServerState,
)

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
class StartTLS:
    """The client sent STARTTLS and got 220 (RFC 3207): run the TLS handshake now.

    Write ``data_to_send()`` first (the 220 must go out in the clear), wrap the socket, then
    ``send(TLSStarted())``. Until then the machine is PAUSED and reads nothing.
    """


@dataclass(frozen=True, slots=True)
class ImproperPipelining:
    """``strict``: the client sent ``unexpected`` before the reply to ``after`` (RFC 5321 4.3).

    The machine answered 554 5.5.0 and is CLOSED, as Postfix's smtpd_forbid_unauth_pipelining.

    Attributes:
        after: the command (upper-case verb) or ``"end of data"`` whose reply was not awaited;
            ``"DATA"`` when message text came before the 354.
        unexpected: the start of what was already waiting, for the log and the report.
    """

    after: str
    unexpected: str


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
    | StartTLS
    | ImproperPipelining
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
class TLSStarted:
    """The adapter finished the TLS handshake after :class:`StartTLS`.

    RFC 3207 4.2: the server forgets what the client said before (EHLO, AUTH), and discards any
    input that came in the clear after the STARTTLS line (command injection, CVE-2011-0411).
    """


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
        tls: the session runs under TLS (after STARTTLS, or implicit TLS on port 465).
    """

    peer: str
    hello_name: str | None = None
    extended: bool = False
    authenticated_user: str | None = None
    tls: bool = False


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
        tls_offered: advertise and accept STARTTLS (RFC 3207); the adapter must be able to run
            the handshake when the machine says :class:`StartTLS`.
        auth_needs_tls: offer AUTH only under TLS (PLAIN and LOGIN send the password in the
            clear): before it EHLO does not list AUTH, AUTH gets 538 5.7.11 (RFC 4954 6), and
            MAIL on a port that requires AUTH gets 530 5.7.0 "Must issue a STARTTLS command
            first" (RFC 3207 4).
        pipelining_offered: advertise PIPELINING (RFC 2920) in the EHLO reply.
    """

    def __init__(
        self,
        *,
        auth_offered: bool = False,
        auth_required: bool = False,
        always_accept_postmaster: bool = True,
        users: Mapping[str, str] | None = None,
        tls_offered: bool = False,
        auth_needs_tls: bool = False,
        pipelining_offered: bool = True,
    ) -> None:
        #: Offer AUTH PLAIN LOGIN in the EHLO reply and accept the AUTH command.
        self.auth_offered = auth_offered
        #: Refuse MAIL with 530 before a successful AUTH.
        self.auth_required = auth_required
        #: Accept postmaster without asking check_recipient.
        self.always_accept_postmaster = always_accept_postmaster
        #: Known users and their passwords (used by the default authenticate).
        self.users: dict[str, str] = dict(users or {})
        #: Offer STARTTLS in the EHLO reply and accept the command.
        self.tls_offered = tls_offered
        #: AUTH only under TLS.
        self.auth_needs_tls = auth_needs_tls
        #: Offer PIPELINING in the EHLO reply.
        self.pipelining_offered = pipelining_offered

    def offers_auth(self, session: Session) -> bool:
        """Whether AUTH is offered in this session (before TLS, not when it needs TLS)."""
        return self.auth_offered and (session.tls or not self.auth_needs_tls)

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
_NOT_IMPLEMENTED = frozenset({"TURN", "ETRN", "ATRN", "BDAT", "SEND", "SOML", "SAML"})
# RFC 2920 3.1: only these may be followed by more commands in one group (with PIPELINING);
# EHLO, DATA, VRFY, EXPN, NOOP, QUIT (and AUTH, STARTTLS) must end a group. The message text
# may be followed by the next transaction or QUIT.
_PIPELINABLE = frozenset({"MAIL", "RCPT", "RSET", "end of data"})
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
    """Whether ``address`` is ``postmaster`` or ``postmaster@domain`` (any case, quoted or not;
    RFC 5321 4.5.1)."""
    return local_part(address).lower() == "postmaster"


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
        tls: the connection is under TLS from the start (implicit TLS, RFC 8314 port 465).
        strict: enforce RFC 5321 4.3 synchronisation: input already waiting when a reply is
            written (other than within an RFC 2920 pipelining group) gets 554 5.5.0 and the
            session ends with an :class:`ImproperPipelining` event, as Postfix's
            ``smtpd_forbid_unauth_pipelining`` does. A client that waits cannot trip it: the
            next command cannot arrive before the reply it waits for was written.
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
        tls: bool = False,
        strict: bool = False,
    ) -> None:
        if greeting is not None and greeting.code not in COMMAND_REPLIES["CONNECT"]:
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
        self.session = Session(peer, tls=tls)
        #: Enforce the RFC 5321 4.3 synchronisation (see the class docstring).
        self.strict = strict
        self._pipelining = False  # PIPELINING offered in this session's EHLO reply
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
            if state is ServerState.AWAITING_DECISION or state is ServerState.TLS_STARTING:
                return PAUSED
            if state is ServerState.CLOSED or state is ServerState.ERROR:
                return NEED_DATA
            progressed = self._read_content() if state is ServerState.DATA else self._read_line()
            if not progressed and not events:
                if not self._eof:
                    return NEED_DATA
                self._peer_closed()
        return events.popleft()

    def send(self, event: Accept | Reject | Shutdown | TLSStarted) -> bytes:
        """Tell the server the application's decision; returns every byte to write now.

        Raises:
            LocalProtocolError: Accept/Reject while no message awaits a decision, a Reject with a
                2xx/3xx reply, a Shutdown with a reply that is not 421, or TLSStarted without a
                StartTLS.
        """
        if isinstance(event, TLSStarted):
            if self.state is not ServerState.TLS_STARTING:
                self._local_error(
                    f"TLSStarted sent in state {self.state.name}; only after StartTLS"
                )
            # RFC 3207 4.2 and 5: forget the session; drop what came in the clear meanwhile.
            del self._in[:]
            self._pos = self._scan = 0
            self.session = Session(self.session.peer, tls=True)
            self._go("TLS started")
            return self.data_to_send()
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
            if not is_printable_word(event.queue_id):
                self._local_error(f"queue id must be printable ASCII, got {event.queue_id!r}")
            self._reply(250, self.texts.queued, queue_id=event.queue_id)
            self._go("Accept")
            self._check_sync("end of data", len(self._in) - self._pos)
        else:
            if event.reply.code < 400:
                self._local_error(f"Reject needs a 4xx or 5xx reply, got {event.reply.code}")
            self._out += event.reply.to_bytes()
            self._go("Reject")
            if event.reply.code == 421:
                self._close_421(event.reply)
            else:
                self._check_sync("end of data", len(self._in) - self._pos)
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

    def _check_sync(self, after: str, waiting: int) -> None:
        """``strict``: hang up with 554 5.5.0 if ``waiting`` octets came before this reply.

        Called right after a reply is queued. Octets already here were sent before the client
        could have read it: allowed only inside an RFC 2920 pipelining group.
        """
        if not self.strict or waiting <= 0 or self.state in (ServerState.CLOSED, ServerState.ERROR):
            return
        if self._pipelining and after in _PIPELINABLE:
            return
        if self._events and isinstance(self._events[-1], StartTLS):
            self._events.pop()  # no handshake: the session ends here
        start = len(self._in) - waiting
        unexpected = bytes(self._in[start : start + 60]).decode("latin-1")
        self._out += self.error_reply("improper_pipelining").to_bytes()
        del self._in[:]
        self._pos = self._scan = 0
        self._clear_transaction()
        self._go("improper pipelining")
        self._events.append(ImproperPipelining(after, unexpected.split("\r\n")[0]))

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
            self._check_sync("AUTH", len(buf) - self._pos)
        else:
            verb = self._on_command(line, overlong)
            waiting = len(buf) - self._pos
            if self.state is ServerState.DATA:
                # Keep the DATA line's CRLF: the content then starts after a CRLF, so CRLF.CRLF
                # also finds an empty message and a leading "." is un-stuffed like any other.
                self._pos = self._scan = end
            self._check_sync(verb, waiting)
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
        self._check_sync("end of data", len(self._in) - self._pos)

    # -- commands ----------------------------------------------------------------------------

    def _on_command(self, line: bytes, overlong: bool) -> str:
        """Answer one command line; returns its verb (``""`` when it was not a command)."""
        if overlong:
            self._error("line_too_long")
            return ""
        text = line.decode("latin-1")
        verb, _, arg = text.partition(" ")
        verb = verb.upper()
        if self.state is ServerState.NO_SERVICE and verb != "QUIT":
            self._error("no_service")  # RFC 5321 3.1: 503 to anything but QUIT
            return verb
        handler = _COMMANDS.get(verb)
        if handler is None or (verb == "STARTTLS" and not self.policy.tls_offered):
            if verb in _NOT_IMPLEMENTED or verb == "STARTTLS":
                self._error("not_implemented")
            else:
                self._error("unknown" if text.strip() else "empty")
            return verb
        arg = arg.strip()
        hook = self.policy.before_command(self.session, verb, arg)
        if hook is not None:
            self._answer_policy(hook)
            return verb
        if verb == "AUTH" and not self.policy.auth_offered:
            self._error("auth_not_enabled")
            return verb
        row = SERVER_TRANSITIONS[self.state]
        if ("AUTH PLAIN" if verb == "AUTH" else verb) not in row:
            self._sequence_error(verb)
            return verb
        handler(self, arg)
        return verb

    def _sequence_error(self, verb: str) -> None:
        """503 (RFC 5321 4.1.4), with the most helpful text for where the session is."""
        state = self.state
        if verb == "AUTH":
            in_txn = state in (ServerState.MAIL, ServerState.RCPT)
            name = "auth_in_transaction" if in_txn else "need_ehlo"
        elif verb == "STARTTLS":
            in_txn = state in (ServerState.MAIL, ServerState.RCPT)
            name = "tls_in_transaction" if in_txn else "need_ehlo"
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
        if not is_printable_word(arg):
            self._error("bad_hostname")
            return
        self._clear_transaction()  # RFC 5321 4.1.4: a new EHLO resets like RSET
        self.session = replace(self.session, hello_name=arg, extended=extended)
        if extended:
            texts = self.texts
            policy = self.policy
            lines = [texts.ehlo.format(hostname=self.hostname, helo=arg, address="", queue_id="")]
            self._pipelining = policy.pipelining_offered
            if self._pipelining:
                lines.append("PIPELINING")
            lines.append(f"SIZE {self.limits.max_message_size}")
            if policy.tls_offered and not self.session.tls:
                lines.append("STARTTLS")
            if policy.offers_auth(self.session):
                lines.append("AUTH PLAIN LOGIN")
            if texts.enhanced:
                lines.append("ENHANCEDSTATUSCODES")
            lines += ["8BITMIME", "DSN"]
            self._out += Reply(250, tuple(lines)).to_bytes()
            self._go("EHLO")
        else:
            self._pipelining = False  # RFC 2920 2: PIPELINING needs EHLO
            self._reply(250, self.texts.helo)
            self._go("HELO")
        self._events.append(Hello(arg, extended))

    def _on_mail(self, arg: str) -> None:
        if self.policy.auth_required and self.session.authenticated_user is None:
            needs_tls = self.policy.auth_needs_tls and not self.session.tls
            self._error("tls_required" if needs_tls else "auth_required")
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
            if key == "AUTH" and not self.policy.offers_auth(self.session):
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
        if arg:
            self._error("syntax_quit")  # RFC 5321 4.1.1.10: "QUIT" CRLF, no argument; 501
            return
        self._reply(221, self.texts.bye)
        self._clear_transaction()
        self._go("QUIT")
        self._events.append(Quit())

    def _on_starttls(self, arg: str) -> None:
        if arg:
            self._error("syntax_starttls")
            return
        if self.session.tls:
            self._error("tls_active")
            return
        if not self.session.extended:
            self._error("need_ehlo")  # STARTTLS is an ESMTP extension (RFC 3207 4)
            return
        # RFC 3207 4 (and RFC 3463): 220 2.0.0, then the handshake.
        text = "2.0.0 Ready to start TLS" if self.texts.enhanced else "Ready to start TLS"
        self._out += Reply(220, (text,)).to_bytes()
        self._go("STARTTLS")
        self._events.append(StartTLS())

    # -- AUTH (RFC 4954) ---------------------------------------------------------------------

    def _on_auth(self, arg: str) -> None:
        if not self.session.extended:
            self._error("need_ehlo")
            return
        if self.session.authenticated_user is not None:
            self._error("already_authenticated")  # RFC 4954 4
            return
        if not self.policy.offers_auth(self.session):
            self._error("auth_needs_tls")  # RFC 4954 6: 538 before STARTTLS
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


#: SMTPServer's handlers, one per verb: plain functions called with the machine,
#: so no machine holds bound methods of itself (a reference cycle per machine, which only the
#: garbage collector would free).
_COMMANDS: dict[str, Callable[[SMTPServer, str], None]] = {
    "EHLO": SMTPServer._on_ehlo,
    "HELO": SMTPServer._on_helo,
    "MAIL": SMTPServer._on_mail,
    "RCPT": SMTPServer._on_rcpt,
    "DATA": SMTPServer._on_data,
    "RSET": SMTPServer._on_rset,
    "NOOP": SMTPServer._on_noop,
    "VRFY": SMTPServer._on_vrfy,
    "EXPN": SMTPServer._on_expn,
    "HELP": SMTPServer._on_help,
    "QUIT": SMTPServer._on_quit,
    "AUTH": SMTPServer._on_auth,
    "STARTTLS": SMTPServer._on_starttls,
}


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
