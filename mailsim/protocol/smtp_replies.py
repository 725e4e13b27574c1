"""SMTP replies: the :class:`Reply` value, the server's reply wording, and its error table.

A reply is a three-digit code and one or more text lines (RFC 5321 4.2). The wording a server uses
is data, not code: :class:`ReplyTexts` holds one set, :attr:`ReplyTexts.MODERN` (Postfix-like, with
RFC 3463 enhanced status codes) or :attr:`ReplyTexts.CLASSIC` (the seed tutorial's words, byte for
byte). Error replies come from one table, :data:`SERVER_ERRORS`, so every 5xx the machine can say is
listed in one place; the refusals a mail server's policy gives (unknown user, relay denied) come
from another, :data:`POLICY_REPLIES`, which the simulated and the live servers share.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import ClassVar

#: RFC 5321 4.5.3.1.5: a reply line is at most 512 octets including the CRLF.
MAX_REPLY_LINE = 512
# "250-" / "250 " and the CRLF leave this much room for the text.
_MAX_REPLY_TEXT = MAX_REPLY_LINE - 4 - 2


@dataclass(frozen=True, slots=True)
class Reply:
    """An SMTP reply: a code and its text lines, e.g. ``Reply(250, ("2.1.0 Ok",))``.

    Used both ways: the server writes them, the client reads them, and the policy hooks return
    them. Multi-line replies (EHLO) have several lines; each is written with the same code, joined
    by ``-`` on all but the last (RFC 5321 4.2.1).

    Attributes:
        code: 200-599; clients judge unknown codes by the first digit (RFC 5321 4.2).
        lines: the text of each line, without code or CRLF (may be ``("",)``).
    """

    code: int
    lines: tuple[str, ...] = ("",)

    def __post_init__(self) -> None:
        if not 200 <= self.code <= 599:
            raise ValueError(f"reply code must be 200-599, got {self.code}")
        if not self.lines:
            raise ValueError("a reply needs at least one line (use ('',) for no text)")
        for line in self.lines:
            if "\r" in line or "\n" in line:
                raise ValueError(f"reply text may not contain CR or LF: {line!r}")

    @classmethod
    def of(cls, code: int, *lines: str) -> Reply:
        """A reply from a code and its lines: ``Reply.of(550, "5.1.1 No such user")``."""
        return cls(code, lines or ("",))

    @property
    def text(self) -> str:
        """All lines joined by a space, as a trace or a bounce would quote them."""
        return " ".join(self.lines)

    @property
    def status(self) -> str | None:
        """The RFC 3463 enhanced status code ("5.1.1") at the start of the text, if any."""
        first = self.lines[0].split(" ", 1)[0]
        parts = first.split(".")
        if len(parts) == 3 and all(p.isdigit() for p in parts) and first[0] in "245":
            return first
        return None

    @property
    def is_positive(self) -> bool:
        """2xx: the command worked."""
        return self.code < 300

    @property
    def is_transient(self) -> bool:
        """4xx: try again later."""
        return 400 <= self.code < 500

    @property
    def is_permanent(self) -> bool:
        """5xx: do not repeat the same request."""
        return self.code >= 500

    def to_bytes(self) -> bytes:
        """The reply as written on the wire, every line cut to the 512-octet limit."""
        code = str(self.code)
        last = len(self.lines) - 1
        out = []
        for i, line in enumerate(self.lines):
            if len(line) > _MAX_REPLY_TEXT:
                line = line[:_MAX_REPLY_TEXT]
            out.append(f"{code}{' ' if i == last else '-'}{line}\r\n")
        return "".join(out).encode("ascii", "replace")

    def __str__(self) -> str:
        return f"{self.code} {self.text}"


@dataclass(frozen=True, slots=True)
class ReplyTexts:
    """The wording of a server's positive replies, and whether it uses enhanced status codes.

    Each field is a ``str.format`` template; the placeholders are ``{hostname}`` (the server),
    ``{helo}`` (the name the client gave), ``{address}`` (the sender or recipient, without angle
    brackets; ``<>`` for the null sender) and ``{queue_id}``. Error replies come from
    :data:`SERVER_ERRORS`; ``enhanced`` says whether their RFC 3463 code is written and whether
    EHLO advertises ENHANCEDSTATUSCODES (RFC 2034).
    """

    #: Write enhanced status codes in error replies and advertise ENHANCEDSTATUSCODES.
    enhanced: bool
    #: 220 greeting (RFC 2034: never carries an enhanced code).
    greeting: str
    #: 554 greeting of a server that refuses service (RFC 5321 3.1).
    no_service: str
    #: 250 to HELO.
    helo: str
    #: First line of the 250 reply to EHLO; the extensions follow.
    ehlo: str
    #: 250 to MAIL.
    sender_ok: str
    #: 250 to RCPT.
    recipient_ok: str
    #: 354 to DATA.
    start_data: str
    #: 250 after the final dot once the application accepted the message.
    queued: str
    #: 250 to RSET and NOOP.
    ok: str
    #: 252 to VRFY (we never verify: RFC 5321 3.5.3, 7.3).
    vrfy: str
    #: 214 to HELP.
    help: str
    #: 235 after a successful AUTH (RFC 4954 6).
    auth_ok: str
    #: 221 to QUIT.
    bye: str

    MODERN: ClassVar[ReplyTexts]
    CLASSIC: ClassVar[ReplyTexts]

    def __post_init__(self) -> None:
        # Fail at construction, not mid-session, on a template with an unknown placeholder.
        for field in fields(self):
            name = field.name
            value = getattr(self, name)
            if isinstance(value, str):
                try:
                    value.format(hostname="h", helo="c", address="a", queue_id="q")
                except (KeyError, IndexError, ValueError) as exc:
                    raise ValueError(f"ReplyTexts.{name}: bad template {value!r}: {exc}") from None


ReplyTexts.MODERN = ReplyTexts(
    enhanced=True,
    greeting="{hostname} ESMTP mailsim",
    no_service="{hostname} No SMTP service here",
    helo="{hostname}",
    ehlo="{hostname}",
    sender_ok="2.1.0 Ok",
    recipient_ok="2.1.5 Ok",
    start_data="End data with <CR><LF>.<CR><LF>",
    queued="2.0.0 Ok: queued as {queue_id}",
    ok="2.0.0 Ok",
    vrfy="2.0.0 Cannot VRFY user, but will accept message and attempt delivery",
    help="2.0.0 Commands: EHLO HELO MAIL RCPT DATA RSET NOOP VRFY HELP QUIT AUTH",
    auth_ok="2.7.0 Authentication successful",
    bye="2.0.0 Bye",
)

# The seed tutorial's dialogue, word for word (its "...." after the sender is sic).
ReplyTexts.CLASSIC = ReplyTexts(
    enhanced=False,
    greeting="{hostname}",
    no_service="{hostname} No SMTP service here",
    helo="Hello {helo}, Nice to meet you.",
    ehlo="{hostname} Hello {helo}",
    sender_ok="{address}.... Sender OK.",
    recipient_ok="{address}... Recipient OK.",
    start_data='Enter Mail, end with "." on a line by itself.',
    queued="Message accepted for delivery.",
    ok="OK",
    vrfy="Cannot VRFY user, but will accept message and attempt delivery",
    help="Commands: HELO EHLO MAIL RCPT DATA RSET NOOP VRFY HELP QUIT",
    auth_ok="Authentication successful",
    bye="{hostname} closing connection.",
)


#: Every error reply the server machine writes on its own: name -> (code, enhanced code, text).
#: Texts may use ``{hostname}`` and ``{arg}`` (a short, already validated piece of the command).
SERVER_ERRORS: dict[str, tuple[int, str, str]] = {
    # 500: not a command at all, or too long (RFC 5321 4.2.2, 4.5.3.1.10).
    "empty": (500, "5.5.2", "Error: bad syntax"),
    "unknown": (500, "5.5.2", "Error: command not recognized"),
    "line_too_long": (500, "5.5.2", "Error: line too long"),
    # RFC 5321 2.3.8: commands end in CRLF. A client sending a bare LF (nc without -C) is told so,
    # as Postfix 3.9's smtpd_forbid_bare_newline does, instead of waiting for a CRLF for ever.
    "bare_lf": (500, "5.5.2", "Error: bare <LF> received; end lines with <CR><LF> (nc -C)"),
    "text_too_long": (500, "5.5.2", "Error: message text line too long"),
    # 501: the command is known, its arguments are not right.
    "syntax_ehlo": (501, "5.5.4", "Syntax: EHLO hostname"),
    "syntax_helo": (501, "5.5.4", "Syntax: HELO hostname"),
    "bad_hostname": (501, "5.5.2", "Error: invalid hostname"),
    "syntax_mail": (501, "5.5.4", "Syntax: MAIL FROM:<address>"),
    "syntax_rcpt": (501, "5.5.4", "Syntax: RCPT TO:<address>"),
    "syntax_data": (501, "5.5.4", "Syntax: DATA"),
    "syntax_rset": (501, "5.5.4", "Syntax: RSET"),
    "syntax_quit": (501, "5.5.4", "Syntax: QUIT"),
    "syntax_vrfy": (501, "5.5.4", "Syntax: VRFY address"),
    "syntax_expn": (501, "5.5.4", "Syntax: EXPN mailing-list"),
    "syntax_auth": (501, "5.5.4", "Syntax: AUTH mechanism"),
    "bad_sender": (501, "5.1.7", "Bad sender address syntax"),
    "bad_recipient": (501, "5.1.3", "Bad recipient address syntax"),
    "path_too_long": (501, "5.5.4", "Path too long"),  # RFC 5321 4.5.3.1.10
    "local_part_too_long": (501, "5.1.3", "Local part too long"),
    "domain_too_long": (501, "5.1.3", "Domain too long"),
    "bad_param": (501, "5.5.4", "Bad {arg} parameter"),
    "duplicate_param": (501, "5.5.4", "Duplicate {arg} parameter"),
    "auth_aborted": (501, "5.7.0", "Authentication aborted"),  # RFC 4954 4: "*"
    "auth_undecodable": (501, "5.5.2", "Cannot decode response"),
    # 502 / 504: known but not implemented here (RFC 5321 4.2.4).
    "not_implemented": (502, "5.5.1", "Error: command not implemented"),
    "auth_not_enabled": (502, "5.5.1", "Error: authentication not enabled"),
    "syntax_starttls": (501, "5.5.4", "Syntax: STARTTLS"),
    "auth_mechanism": (504, "5.5.4", "Unsupported authentication mechanism"),  # RFC 4954 4
    # 503: right command, wrong moment; the state does not change (RFC 5321 4.1.4).
    "need_hello": (503, "5.5.1", "Error: send HELO/EHLO first"),
    "need_ehlo": (503, "5.5.1", "Error: send EHLO first"),
    "need_mail": (503, "5.5.1", "Error: need MAIL command"),
    "need_rcpt": (503, "5.5.1", "Error: need RCPT command"),
    "nested_mail": (503, "5.5.1", "Error: nested MAIL command"),
    "auth_in_transaction": (503, "5.5.1", "Error: MAIL transaction in progress"),
    "already_authenticated": (503, "5.5.1", "Error: already authenticated"),
    "no_service": (503, "5.5.1", "Error: no SMTP service here"),
    "tls_in_transaction": (503, "5.5.1", "Error: MAIL transaction in progress"),
    # RFC 3207 4: STARTTLS once per session; Postfix's words.
    "tls_active": (554, "5.5.1", "Error: TLS already active"),
    # RFC 3207 4: a server that requires TLS answers other commands with 530 5.7.0.
    "tls_required": (530, "5.7.0", "Must issue a STARTTLS command first"),
    # RFC 4954 6: this mechanism (PLAIN, LOGIN: passwords in the clear) only under TLS.
    "auth_needs_tls": (538, "5.7.11", "Encryption required for requested authentication mechanism"),
    # --strict (RFC 5321 4.3, RFC 2920 3.1): input before the reply it had to wait for; the
    # wording is Postfix's (smtpd_forbid_unauth_pipelining), which then hangs up.
    "improper_pipelining": (554, "5.5.0", "Error: SMTP protocol synchronization"),
    # Everything else the machine decides without asking the policy.
    "no_valid_recipients": (554, "5.5.1", "Error: no valid recipients"),
    "too_many_recipients": (452, "4.5.3", "Error: too many recipients"),  # RFC 5321 4.5.3.1.10
    "size_exceeded": (552, "5.3.4", "Error: message size exceeds fixed limit"),  # RFC 1870
    "unknown_param": (555, "5.5.4", "Unsupported option: {arg}"),
    "auth_required": (530, "5.7.0", "Authentication required"),  # RFC 4954 6
    "auth_failed": (535, "5.7.8", "Authentication credentials invalid"),  # RFC 4954 6
    "too_many_errors": (421, "4.7.0", "{hostname} Error: too many errors"),
    "shutdown": (421, "4.3.2", "{hostname} Service shutting down, closing connection"),
}

#: The replies each step of a session may get (RFC 5321 4.3.2), success and error alike: the
#: greeting (``CONNECT``), each command, and the end of the message (``DOT``, the reply to the
#: final dot). 421 may end any step (RFC 5321 3.8); 530 answers MAIL, RCPT and DATA where AUTH
#: is required (RFC 4954 6). A reply fault of a scenario must be one of its step's.
COMMAND_REPLIES: dict[str, frozenset[int]] = {
    "CONNECT": frozenset({220, 421, 554}),
    "HELO": frozenset({250, 421, 502, 504, 550}),
    "EHLO": frozenset({250, 421, 502, 504, 550}),
    "MAIL": frozenset({250, 421, 451, 452, 455, 503, 530, 550, 552, 553, 555}),
    "RCPT": frozenset({250, 251, 421, 450, 451, 452, 455, 503, 530, 550, 551, 552, 553, 555}),
    "DATA": frozenset({354, 421, 503, 530, 554}),
    "DOT": frozenset({250, 421, 450, 451, 452, 550, 552, 554}),
    "RSET": frozenset({250, 421}),
    "VRFY": frozenset({250, 251, 252, 421, 502, 504, 550, 551, 553}),
    "EXPN": frozenset({250, 252, 421, 502, 504, 550}),
    "HELP": frozenset({211, 214, 421, 502, 504}),
    "NOOP": frozenset({250, 421}),
    "QUIT": frozenset({221}),
}
#: What any command line may get besides its step's replies: it is no command (500), its
#: arguments are wrong (501), it is not implemented (502) or comes at the wrong moment (503).
SYNTAX_REPLIES = frozenset({500, 501, 502, 503})

#: What the client writes into a result when it decides without the server.
CONNECTION_LOST = Reply(451, ("4.4.2 Connection lost",))
#: The server broke the protocol (a malformed reply); undecided recipients are retried.
PROTOCOL_ERROR = Reply(451, ("4.5.0 SMTP protocol error",))
#: 8-bit content for a server without 8BITMIME (RFC 6152 3: the client may not send it).
CONVERSION_REQUIRED = Reply(554, ("5.6.3 Conversion required but not supported",))
#: The content is larger than the SIZE the server announced (RFC 1870 6.1).
TOO_BIG_FOR_SERVER = Reply(552, ("5.3.4 Message size exceeds fixed maximum message size",))


#: Every refusal a mail server's policy gives (not the machine: the application decides these),
#: in one table for the simulated and the live servers alike: name -> (code, enhanced code, text).
#: Texts may use ``{address}``, ``{msg_id}`` and ``{hostname}``. The wording is Postfix's where
#: Postfix has one.
POLICY_REPLIES: dict[str, tuple[int, str, str]] = {
    # A local domain, no such user (Postfix's local_recipient_maps check).
    "unknown_user": (
        550,
        "5.1.1",
        "<{address}>: Recipient address rejected: User unknown in local recipient table",
    ),
    # Another domain, and the client may not relay (RFC 5321 7.1; reject_unauth_destination).
    "relay_denied": (550, "5.7.1", "<{address}>: Relay access denied"),
    # RFC 5321 6.3: too many Received lines means a mail loop.
    "mail_loop": (554, "5.4.6", "Too many hops (mail loop)"),
    # A second copy of a queued message for recipients the queued one does not have.
    "already_queued": (451, "4.3.0", "<{msg_id}> is already queued here; try again later"),
    # The disk failed while storing; nothing was acknowledged.
    "cannot_store": (451, "4.3.0", "Error: cannot store the message now"),
    # Command-mode input that never makes a line: binary garbage, a TLS handshake. Hang up.
    "not_smtp": (421, "4.7.0", "{hostname} Error: too much input without a command line"),
}


def policy_reply(texts: ReplyTexts, name: str, **args: str) -> Reply:
    """The refusal :data:`POLICY_REPLIES` names ``name``, in ``texts``' wording.

    The enhanced code is written when the wording uses them (``MODERN``), as for the machine's
    own errors.
    """
    code, status, text = POLICY_REPLIES[name]
    text = text.format(**args)
    return Reply(code, (f"{status} {text}" if texts.enhanced else text,))
