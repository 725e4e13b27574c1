"""Sans-IO SMTP client (RFC 5321): the sending side, delivering queued envelopes.

The theory of operation shared with the server is in :mod:`mailsim.protocol.smtp`; the state rules
are ``CLIENT_TRANSITIONS`` in :mod:`mailsim.protocol.smtp_states`. The client drives itself from
the replies it reads; the application hands it envelopes and reads one result per envelope.
"""

from __future__ import annotations

import base64
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from mailsim.protocol._common import LocalProtocolError, RemoteProtocolError
from mailsim.protocol.smtp_address import QUOTED_STRING
from mailsim.protocol.smtp_params import MailParams, RcptParams, is_printable_word
from mailsim.protocol.smtp_replies import (
    CONNECTION_LOST,
    CONVERSION_REQUIRED,
    MAX_REPLY_LINE,
    PROTOCOL_ERROR,
    TOO_BIG_FOR_SERVER,
    Reply,
)
from mailsim.protocol.smtp_states import (
    CLIENT_TRANSITIONS,
    NEED_DATA,
    ClientState,
    Sentinel,
)

_CRLF = b"\r\n"


#: A reply line longer than this (CRLF included) is a protocol error. RFC 5321 4.5.3.1.5 says 512;
#: we accept up to 2048 from sloppy servers while keeping memory bounded.
MAX_CLIENT_REPLY_LINE = 4 * MAX_REPLY_LINE
#: The whole of a multi-line reply may not exceed this many octets.
MAX_CLIENT_REPLY = 64 * 1024

RecipientStatus = Literal["accepted", "temporary", "permanent"]


def _check_address(address: str, where: str, *, null_ok: bool) -> None:
    if address == "" and null_ok:
        return
    # A quoted local part may hold spaces and angle brackets (RFC 5321 4.1.2); the rest may not.
    written, at, domain = address.rpartition("@")
    bare = domain if at and QUOTED_STRING.fullmatch(written) else address
    if not (address.isascii() and address.isprintable()) or any(c in bare for c in " <>"):
        raise ValueError(
            f"{where}: {address!r} is not a usable address "
            "(printable ASCII, no spaces or angle brackets outside a quoted local part)"
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
            if value is not None and not is_printable_word(value):
                raise ValueError(f"Envelope.mail_params.{name}: {value!r} is not a valid value")
        for i, rcpt in enumerate(self.rcpt_params):
            for value in (*(rcpt.notify or ()), rcpt.orcpt):
                if value is not None and not is_printable_word(value):
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
        if not is_printable_word(local_hostname):
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
                _REPLY_HANDLERS[self.state](self, reply)
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


#: SMTPClient's handlers, one per state: plain functions called with the machine,
#: so no machine holds bound methods of itself (a reference cycle per machine, which only the
#: garbage collector would free).
_REPLY_HANDLERS: dict[ClientState, Callable[[SMTPClient, Reply], None]] = {
    ClientState.AWAIT_GREETING: SMTPClient._on_greeting,
    ClientState.EHLO_SENT: SMTPClient._on_ehlo_reply,
    ClientState.HELO_SENT: SMTPClient._on_helo_reply,
    ClientState.AUTH_PLAIN_SENT: SMTPClient._on_auth_done,
    ClientState.AUTH_LOGIN_SENT: SMTPClient._on_login_challenge,
    ClientState.AUTH_USER_SENT: SMTPClient._on_login_challenge,
    ClientState.AUTH_PASSWORD_SENT: SMTPClient._on_auth_done,
    ClientState.IDLE: SMTPClient._on_unsolicited,
    ClientState.MAIL_SENT: SMTPClient._on_mail_reply,
    ClientState.RCPT_SENT: SMTPClient._on_rcpt_reply,
    ClientState.DATA_SENT: SMTPClient._on_data_reply,
    ClientState.CONTENT_SENT: SMTPClient._on_final_reply,
    ClientState.RSET_SENT: SMTPClient._on_rset_reply,
    ClientState.QUIT_SENT: SMTPClient._on_quit_reply,
}


_CLIENT_OVER = frozenset({ClientState.CLOSED, ClientState.ERROR})
