"""A mail server's knobs and its injected reply faults, shared by the simulated and live servers.

Every default comes from RFC 5321 or from what Postfix does; the scenario language
(docs/scenario-language.md, ``servers:``) sets them. Nothing here depends on a clock or a socket:
times are seconds, on the simulated clock or on the live servers' scaled one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mailsim.mail.retry import FixedRetry, RetryPolicy
from mailsim.protocol.smtp import Reply, ServerLimits


@dataclass(frozen=True)
class ReplyFault:
    """A chosen reply to a chosen command, as Mailpit's chaos mode or smtp4dev's scripts do.

    One model for the scenario language's ``reply:`` faults and ``mailsim serve --fault``.

    Attributes:
        command: ``CONNECT`` (the greeting), ``EHLO``, ``HELO``, ``MAIL``, ``RCPT``, ``DATA`` or
            ``DOT`` (the end of the message content).
        code: the reply code; a 421 also closes the connection. None: the normal reply, only
            late (a ``delay`` fault: a slow server).
        text: the reply text, e.g. ``"4.7.1 Greylisted, try again later"``, or a tuple of lines
            for a multi-line reply (RFC 5321 4.2.1).
        start: from this time on (seconds, on the server's clock).
        end: until this time (None: for ever).
        probability: the chance that a matching command gets the fault.
        first_attempt_only: greylisting: only the first try of each (client, sender, recipient)
            triplet gets it; a retry passes (Postfix postgrey's classic behaviour).
        port: only sessions on this port get it (25, 587, or 465 live); None: every SMTP port.
        address: only the MAIL FROM or RCPT TO naming this address (compared as mailboxes are);
            None: any.
        delay: seconds before the reply is sent, and between the lines of a multi-line one.
    """

    command: str
    code: int | None = None
    text: str | tuple[str, ...] = ""
    start: float = 0.0
    end: float | None = None
    probability: float = 1.0
    first_attempt_only: bool = False
    port: int | None = None
    address: str | None = None
    delay: float = 0.0

    def __post_init__(self) -> None:
        if self.code is None and self.delay <= 0:
            raise ValueError("a reply fault needs a code or a delay")

    def active(self, now: float) -> bool:
        """Whether the fault applies at ``now``."""
        return self.start <= now and (self.end is None or now < self.end)

    def reply(self) -> Reply | None:
        """The reply the fault gives, or None (a delay only: the normal reply, late)."""
        if self.code is None:
            return None
        lines = self.text if isinstance(self.text, tuple) else (self.text,)
        return Reply.of(self.code, *lines)


@dataclass
class ServerSettings:
    """Every knob of a mail server, with defaults from RFC 5321 and Postfix.

    Attributes:
        hostname: the name in greetings and Received headers (default: the first domain).
        replies: ``"modern"`` (Postfix-like, enhanced status codes) or ``"classic"`` (the
            tutorial's wording).
        durable: acknowledge a message only once it is written to the queue on disk; with
            False the 250 comes first and a crash loses what is queued.
        queue_write_time: how long writing (and fsyncing) a message to the queue takes in the
            simulation (a live server takes as long as its disk does).
        limits: the SMTP server's size and count limits.
        retry: the retry policy (default: every 30 minutes plus up to 10 minutes, give up after
            5 days, like the tutorial).
        connections_per_destination: parallel delivery connections to one domain (Postfix 20).
        messages_per_connection: how many due messages one connection carries before another
            connection is opened for the rest (when the parallel limit allows).
        recipients_per_delivery: most recipients in one SMTP transaction; a message with more
            at one destination is sent in several (Postfix's smtp_destination_recipient_limit).
        connection_reuse_time: how long after it opened a connection may take on more messages
            before it QUITs (Postfix's smtp_connection_reuse_time_limit); 0: never reused.
        connect_timeout: give up a TCP connect after this long (Postfix 30 s).
        greeting_timeout: wait this long for the 220 greeting (RFC 5321 4.5.3.2.1: 5 min).
        reply_timeout: wait this long for any other reply (RFC 5321 4.5.3.2: 5 min for most).
        data_start_timeout: wait this long for the 354 after DATA (4.5.3.2.4: 2 min).
        final_reply_timeout: wait this long for the reply to the final dot (RFC 5321 4.5.3.2.6:
            10 min).
        idle_timeout: a server session waits this long for the next command (4.5.3.2.7: 5 min).
        pop3_idle_timeout: POP3 autologout (RFC 1939 3: at least 10 minutes).
        reply_faults: replies injected into this server's SMTP sessions.
        data_lines: how many lines of a long message the trace keeps per message.
    """

    hostname: str | None = None
    replies: str = "modern"
    durable: bool = True
    queue_write_time: float = 0.002
    limits: ServerLimits = field(default_factory=ServerLimits)
    retry: RetryPolicy = field(default_factory=FixedRetry)
    connections_per_destination: int = 20
    messages_per_connection: int = 10
    recipients_per_delivery: int = 50
    connection_reuse_time: float = 300.0
    connect_timeout: float = 30.0
    greeting_timeout: float = 300.0
    reply_timeout: float = 300.0
    data_start_timeout: float = 120.0
    final_reply_timeout: float = 600.0
    idle_timeout: float = 300.0
    pop3_idle_timeout: float = 600.0
    reply_faults: tuple[ReplyFault, ...] = ()
    data_lines: int = 20
