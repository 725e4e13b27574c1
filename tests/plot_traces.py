"""Hand-built traces for the plot tests, written record by record as the simulator will write them.

They follow ``EVENT_FIELDS`` exactly (each is recorded with ``Recorder(strict=True)``) and the
numbers of ``mailsim/scenarios/james-to-steve.yaml``: james-pc -2 ms- india-mail -1 ms- india-gw
-110 ms- usa-gw -1 ms- usa-mail -3 ms- steve-pc. One-way delay india-mail -> usa-mail is therefore
1 + 110 + 1 = 112 ms and the SMTP connection's handshake round trip 224 ms; james-pc -> india-mail
is 2 ms (RTT 4 ms) and steve-pc -> usa-mail 3 ms (RTT 6 ms).

Each line is recorded at its send time by its sender; the peer answers when the line has arrived
(send time + one-way delay), plus a small processing time. Three stories:

- :func:`james_to_steve`: the tutorial's six steps, with the tutorial's SMTP dialogue between
  india-mail and usa-mail and Steve's POP3 session three hours later.
- :func:`link_outage`: the India-USA link is down for about 2.5 h; six messages (seven
  message-recipient pairs) are deferred every 30-40 minutes and then delivered over one
  persistent connection once the link is back.
- :func:`bounce_after_days`: usa-mail is down for six days; india-mail retries every 30-40
  minutes, gives up after 5 days, bounces, and James fetches the bounce notice.
"""

from __future__ import annotations

import random
from typing import Any

from mailsim.trace import Recorder

Record = dict[str, Any]

#: One-way delays (s) between the nodes that talk, from the scenario's links.
ONE_WAY = {
    frozenset(("james-pc", "india-mail")): 0.002,
    frozenset(("india-mail", "usa-mail")): 0.112,
    frozenset(("steve-pc", "usa-mail")): 0.003,
    frozenset(("james-pc", "usa-mail")): 0.114,
}
#: Time a node takes to answer a line (s).
THINK = 0.001

#: The tutorial's SMTP dialogue, with the story's roles (india-mail is the client).
TUTORIAL_DIALOGUE: tuple[tuple[str, str], ...] = (
    ("S", "220 usa.com"),
    ("C", "HELO india.com"),
    ("S", "250 Hello india.com, Nice to meet you."),
    ("C", "MAIL FROM:<james@india.com>"),
    ("S", "250 james@india.com.... Sender OK."),
    ("C", "RCPT TO:<steve@usa.com>"),
    ("S", "250 steve@usa.com... Recipient OK."),
    ("C", "DATA"),
    ("S", '354 Enter Mail, end with "." on a line by itself.'),
    ("C", "Do you have a Grammar Book?"),
    ("C", "What about Atlas?"),
    ("C", "."),
    ("S", "250 Message accepted for delivery."),
    ("C", "QUIT"),
    ("S", "221 usa.com closing connection."),
)
#: Number of lines between the 354 and the final "." in the tutorial dialogue.
TUTORIAL_DATA_LINES = 2


class TraceWriter:
    """A strict recorder with a clock the story moves by hand, and helpers for sessions."""

    def __init__(self) -> None:
        self.now = 0.0
        self.rec = Recorder(lambda: self.now, strict=True)
        self._conn = 0
        self._port = 49151

    @property
    def records(self) -> list[Record]:
        return self.rec.records

    def at(self, t: float) -> TraceWriter:
        self.now = t
        return self

    @property
    def next_conn(self) -> int:
        """The id the next connection will get (mail.attempt names it before tcp.open)."""
        return self._conn + 1

    def emit(self, type_: str, **fields: Any) -> Record:
        return self.rec.emit(type_, **fields)

    def world(self) -> None:
        """The james-to-steve scenario's nodes and links, at t=0."""
        self.at(0.0)
        for node, kind, site, ip in (
            ("james-pc", "host", "India", "192.0.2.10"),
            ("india-mail", "mailserver", "India", "192.0.2.25"),
            ("india-gw", "router", "India", "192.0.2.1"),
            ("usa-gw", "router", "USA", "198.51.100.1"),
            ("usa-mail", "mailserver", "USA", "198.51.100.25"),
            ("steve-pc", "host", "USA", "198.51.100.10"),
        ):
            self.emit("net.node", node=node, kind=kind, site=site, ip=ip)
        for a, b, latency, bandwidth in (
            ("james-pc", "india-mail", 0.002, 100e6),
            ("india-mail", "india-gw", 0.001, 1e9),
            ("india-gw", "usa-gw", 0.110, 20e6),
            ("usa-gw", "usa-mail", 0.001, 1e9),
            ("usa-mail", "steve-pc", 0.003, 100e6),
        ):
            self.emit("net.link", a=a, b=b, latency=latency, bandwidth=bandwidth, loss=0.0)

    def open(self, client: str, server: str, sport: int) -> tuple[int, float]:
        """Open a connection now and establish it one round trip later; returns (conn, delay)."""
        self._conn += 1
        self._port += 1
        conn = self._conn
        delay = ONE_WAY[frozenset((client, server))]
        self.emit(
            "tcp.open", conn=conn, client=client, server=server, cport=self._port, sport=sport
        )
        self.at(self.now + 2 * delay)
        self.emit("tcp.established", conn=conn)
        # The server's side is established when the ACK arrives, half a round trip later; it
        # greets then.
        self.at(self.now + delay)
        return conn, delay

    def fail(self, client: str, server: str, sport: int, reason: str, after: float) -> int:
        """A connection attempt that fails after ``after`` seconds; returns its id."""
        self._conn += 1
        self._port += 1
        self.emit(
            "tcp.open", conn=self._conn, client=client, server=server, cport=self._port, sport=sport
        )
        self.at(self.now + after)
        self.emit("tcp.fail", conn=self._conn, reason=reason)
        return self._conn

    def dialogue(
        self,
        proto: str,
        conn: int,
        client: str,
        server: str,
        lines: tuple[tuple[str, str], ...] | list[tuple[str, str]],
        delay: float,
        hooks: dict[int, Any] | None = None,
    ) -> None:
        """Write ``lines`` as sent; a side change waits for the previous line to arrive.

        ``hooks`` maps a line index to a callable run just after that line is recorded (to
        emit mail.* records at the right moment).
        """
        previous = None
        for index, (side, line) in enumerate(lines):
            if previous is not None and side != previous:
                self.at(self.now + delay + THINK)
            src, dst = (client, server) if side == "C" else (server, client)
            self.emit(f"{proto}.line", conn=conn, side=side, src=src, dst=dst, line=line)
            previous = side
            if hooks and index in hooks:
                hooks[index]()
        # The last line arrives, then the closer sends its FIN.
        self.at(self.now + delay + THINK)

    def close(self, conn: int, by: str) -> None:
        self.emit("tcp.close", conn=conn, by=by, how="fin")


def _submission_lines(
    msg: str, sender: str, rcpts: list[str], body: list[str]
) -> list[tuple[str, str]]:
    lines = [
        ("S", "220 india.com ESMTP mailsim"),
        ("C", "EHLO james-pc.india.com"),
        ("S", "250-india.com"),
        ("S", "250-AUTH PLAIN"),
        ("S", "250 SIZE 10240000"),
        ("C", "AUTH PLAIN AGphbWVzAGdyYW1tYXI="),
        ("S", "235 2.7.0 Authentication successful"),
        ("C", f"MAIL FROM:<{sender}>"),
        ("S", "250 2.1.0 Ok"),
    ]
    for rcpt in rcpts:
        lines += [("C", f"RCPT TO:<{rcpt}>"), ("S", "250 2.1.5 Ok")]
    lines += [("C", "DATA"), ("S", "354 End data with <CR><LF>.<CR><LF>")]
    lines += [("C", line) for line in body]
    lines += [
        ("C", "."),
        ("S", f"250 2.0.0 Ok: queued as {msg}"),
        ("C", "QUIT"),
        ("S", "221 2.0.0 Bye"),
    ]
    return lines


def _headers(msg: str, sender: str, rcpts: list[str], subject: str) -> list[str]:
    return [
        f"From: <{sender}>",
        f"To: {', '.join(f'<{r}>' for r in rcpts)}",
        f"Subject: {subject}",
        f"Message-ID: <{msg}@india.com>",
        "",
    ]


def _submit(
    w: TraceWriter, msg: str, rcpts: list[str], subject: str, body: list[str], *, kind: str = "mail"
) -> None:
    """James's user agent submits ``msg`` to india-mail on port 587; it is queued there."""
    sender = "james@india.com"
    conn, delay = w.open("james-pc", "india-mail", 587)
    lines = _submission_lines(msg, sender, rcpts, _headers(msg, sender, rcpts, subject) + body)
    dot = lines.index(("C", "."))
    auth = lines.index(("S", "235 2.7.0 Authentication successful"))

    def accepted() -> None:
        w.emit("mail.submit", msg=msg, node="india-mail", sender=sender, rcpts=rcpts, size=300)
        w.emit("mail.queue", msg=msg, node="india-mail", rcpts=rcpts, queued=len(rcpts))

    hooks = {
        auth: lambda: w.emit("auth.ok", node="india-mail", user="james", service="submission"),
        dot + 1: accepted,
    }
    w.dialogue("smtp", conn, "james-pc", "india-mail", lines, delay, hooks)
    w.close(conn, "james-pc")


def _relay_lines(
    msg: str, rcpts: list[str], subject: str, body: list[str]
) -> list[tuple[str, str]]:
    lines = [
        ("C", "MAIL FROM:<james@india.com>"),
        ("S", "250 2.1.0 Ok"),
    ]
    for rcpt in rcpts:
        lines += [("C", f"RCPT TO:<{rcpt}>"), ("S", "250 2.1.5 Ok")]
    lines += [("C", "DATA"), ("S", "354 End data with <CR><LF>.<CR><LF>")]
    lines += [("C", line) for line in _headers(msg, "james@india.com", rcpts, subject) + body]
    lines += [("C", "."), ("S", f"250 2.0.0 Ok: queued as {msg}")]
    return lines


def _defer(w: TraceWriter, msg: str, rcpts: list[str], reason: str, retry_in: float) -> None:
    for rcpt in rcpts:
        w.emit(
            "mail.defer",
            msg=msg,
            node="india-mail",
            rcpt=rcpt,
            reply=f"451 4.4.1 connect to usa-mail[198.51.100.25]:25: {reason}",
            next_attempt=w.now + retry_in,
        )


def _pop3_session(
    w: TraceWriter,
    client: str,
    server: str,
    user: str,
    password: str,
    messages: list[tuple[str, list[str]]],
) -> None:
    """``user`` logs in over POP3, reads and deletes every message (msg id, lines)."""
    conn, delay = w.open(client, server, 110)
    total = sum(sum(len(x) + 2 for x in lines) for _, lines in messages)
    lines: list[tuple[str, str]] = [
        ("S", "+OK POP3 server ready"),
        ("C", f"USER {user}"),
        ("S", "+OK"),
        ("C", f"PASS {password}"),
        ("S", f"+OK {user}'s maildrop has {len(messages)} message(s) ({total} octets)"),
        ("C", "STAT"),
        ("S", f"+OK {len(messages)} {total}"),
    ]
    hooks: dict[int, Any] = {
        4: lambda: w.emit("auth.ok", node=server, user=user, service="pop3"),
    }
    for number, (msg, body) in enumerate(messages, start=1):
        lines += [("C", f"RETR {number}"), ("S", f"+OK {sum(len(x) + 2 for x in body)} octets")]
        lines += [("S", line) for line in body]
        lines += [("S", ".")]

        def fetched(msg: str = msg) -> None:
            w.emit("mail.fetch", msg=msg, node=server, user=user)

        hooks[len(lines) - 1] = fetched
        lines += [("C", f"DELE {number}"), ("S", f"+OK message {number} deleted")]
    lines += [("C", "QUIT"), ("S", "+OK bye")]
    w.dialogue("pop3", conn, client, server, lines, delay, hooks)
    w.close(conn, server)


BOOK_BODY = ["Do you have a Grammar Book?", "What about Atlas?"]


def james_to_steve() -> list[Record]:
    """The six steps of the tutorial, as one trace.

    1-2. at t=60 s James's user agent submits msg-1 to india-mail (587, AUTH) where it is queued;
    3. india-mail looks up usa.com's MX and opens a connection to usa-mail (conn 2);
    4. after the 224 ms handshake the tutorial's dialogue runs (with the story's names);
    5. usa-mail files the message in Steve's mailbox;
    6. at t=3 h Steve's user agent logs in over POP3 (conn 3), retrieves and deletes it.
    Connections: 1 submission, 2 relay, 3 POP3.
    """
    w = TraceWriter()
    w.world()
    w.at(60.0)
    _submit(w, "msg-1", ["steve@usa.com"], "Books", BOOK_BODY)
    w.at(w.now + 0.010)
    w.emit(
        "dns.query",
        node="india-mail",
        name="usa.com",
        qtype="MX",
        rcode="NOERROR",
        answer=[[10, "usa-mail"]],
    )
    w.at(w.now + 0.020)
    w.emit(
        "mail.attempt",
        msg="msg-1",
        node="india-mail",
        rcpts=["steve@usa.com"],
        mx="usa-mail",
        conn=2,
    )
    conn, delay = w.open("india-mail", "usa-mail", 25)
    dot = TUTORIAL_DIALOGUE.index(("C", "."))

    def delivered() -> None:
        w.emit("mail.deliver", msg="msg-1", node="usa-mail", rcpt="steve@usa.com", mailbox="steve")

    w.dialogue(
        "smtp", conn, "india-mail", "usa-mail", TUTORIAL_DIALOGUE, delay, {dot + 1: delivered}
    )
    w.close(conn, "india-mail")
    w.at(3 * 3600.0)
    _pop3_session(
        w,
        "steve-pc",
        "usa-mail",
        "steve",
        "atlas",
        [
            (
                "msg-1",
                [*_headers("msg-1", "james@india.com", ["steve@usa.com"], "Books"), *BOOK_BODY],
            )
        ],
    )
    return w.records


#: Messages of the link-outage story: (id, recipients, submission time in s).
OUTAGE_MESSAGES: tuple[tuple[str, tuple[str, ...], float], ...] = (
    ("msg-1", ("steve@usa.com", "bob@usa.com"), 300.0),
    ("msg-2", ("steve@usa.com",), 900.0),
    ("msg-3", ("carol@usa.com",), 1500.0),
    ("msg-4", ("steve@usa.com",), 2400.0),
    ("msg-5", ("bob@usa.com",), 3000.0),
    ("msg-6", ("dave@usa.com",), 3900.0),
)
LINK_DOWN_AT = 120.0
LINK_UP_AT = 9000.0  # 2 h 30 min


def link_outage() -> list[Record]:
    """The India-USA link fails at t=120 s and comes back at t=9000 s (2.5 h).

    Six messages (seven message-recipient pairs) are submitted between 5 and 65 minutes. Every
    try during the outage times out after 30 s (Postfix's connect timeout) and is deferred for a
    fixed 30-40 minutes (the tutorial's retry rule, seeded). The first retry after the link
    returns opens one connection and carries every queued message over it (persistent
    connection), so each message ends with exactly one successful attempt.
    """
    w = TraceWriter()
    w.world()
    rng = random.Random(42)
    rcpts_of = {m: list(r) for m, r, _ in OUTAGE_MESSAGES}
    # Submissions and retries still to happen, as (time, msg, is_submission).
    pending: list[tuple[float, str, bool]] = [(t, m, True) for m, _, t in OUTAGE_MESSAGES]
    w.at(LINK_DOWN_AT)
    w.emit("link.down", a="india-gw", b="usa-gw")
    while pending:
        pending.sort()
        t, msg, is_submission = pending.pop(0)
        if t >= LINK_UP_AT > w.now:
            w.at(LINK_UP_AT)
            w.emit("link.up", a="india-gw", b="usa-gw")
        w.at(max(t, w.now))
        if is_submission:
            _submit(w, msg, rcpts_of[msg], f"Question {msg[-1]}", BOOK_BODY)
            w.at(w.now + 0.005)
        if w.now < LINK_UP_AT:
            w.emit(
                "mail.attempt",
                msg=msg,
                node="india-mail",
                rcpts=rcpts_of[msg],
                mx="usa-mail",
                conn=w.next_conn,
            )
            w.fail("india-mail", "usa-mail", 25, "timeout", 30.0)
            retry = rng.uniform(1800.0, 2400.0)
            _defer(w, msg, rcpts_of[msg], "Connection timed out", retry)
            pending.append((w.now + retry, msg, False))
            continue
        # First retry after the link is back: one connection carries every queued message.
        queued = [msg] + [m for _, m, _ in sorted(pending)]
        pending.clear()
        for m in queued:
            w.emit(
                "mail.attempt",
                msg=m,
                node="india-mail",
                rcpts=rcpts_of[m],
                mx="usa-mail",
                conn=w.next_conn,
            )
        conn, delay = w.open("india-mail", "usa-mail", 25)
        lines: list[tuple[str, str]] = [
            ("S", "220 usa.com ESMTP"),
            ("C", "EHLO india.com"),
            ("S", "250-usa.com"),
            ("S", "250 8BITMIME"),
        ]
        hooks: dict[int, Any] = {}
        for m in queued:
            lines += _relay_lines(m, rcpts_of[m], f"Question {m[-1]}", BOOK_BODY)

            def delivered(m: str = m) -> None:
                for rcpt in rcpts_of[m]:
                    w.emit(
                        "mail.deliver",
                        msg=m,
                        node="usa-mail",
                        rcpt=rcpt,
                        mailbox=rcpt.split("@")[0],
                    )

            hooks[len(lines) - 1] = delivered
        lines += [("C", "QUIT"), ("S", "221 2.0.0 Bye")]
        w.dialogue("smtp", conn, "india-mail", "usa-mail", lines, delay, hooks)
        w.close(conn, "india-mail")
    return w.records


GIVE_UP_AFTER = 5 * 86400.0
SERVER_DOWN_AT = 30.0
SERVER_UP_AT = 6 * 86400.0


def bounce_after_days() -> list[Record]:
    """usa-mail is down from t=30 s to day 6; msg-1 is retried every 30-40 min and bounced.

    Each try gets no answer (the host is down, so SYNs go unanswered: timeout after 30 s). When
    the message has been queued for 5 days (Postfix's maximal_queue_lifetime) the next try is not
    made: at its time the message expires and bounces, and the delivery status notice msg-1.dsn
    is submitted to james@india.com locally at india-mail. James fetches it with POP3 one hour
    later. About 5 d / 35 min = 206 tries are made.
    """
    w = TraceWriter()
    w.world()
    w.at(SERVER_DOWN_AT)
    w.emit("node.down", node="usa-mail")
    w.at(600.0)
    _submit(w, "msg-1", ["steve@usa.com"], "Books", BOOK_BODY)
    submitted = w.now
    rng = random.Random(7)
    while True:
        w.at(w.now + 0.005)
        w.emit(
            "mail.attempt",
            msg="msg-1",
            node="india-mail",
            rcpts=["steve@usa.com"],
            mx="usa-mail",
            conn=w.next_conn,
        )
        w.fail("india-mail", "usa-mail", 25, "timeout", 30.0)
        retry = rng.uniform(1800.0, 2400.0)
        _defer(w, "msg-1", ["steve@usa.com"], "Connection timed out", retry)
        w.at(w.now + retry)
        if w.now - submitted > GIVE_UP_AFTER:
            break
        w.at(w.now - 0.005)
    w.emit("mail.expire", msg="msg-1", node="india-mail", rcpt="steve@usa.com")
    w.emit(
        "mail.bounce",
        msg="msg-1",
        node="india-mail",
        rcpt="steve@usa.com",
        reply="554 5.4.7 delivery time expired: connect to usa-mail: Connection timed out",
        dsn="msg-1.dsn",
    )
    w.emit(
        "mail.submit",
        msg="msg-1.dsn",
        node="india-mail",
        sender="",
        rcpts=["james@india.com"],
        size=1800,
        kind="dsn",
    )
    w.emit("mail.queue", msg="msg-1.dsn", node="india-mail", rcpts=["james@india.com"], queued=1)
    w.at(w.now + 0.002)
    w.emit(
        "mail.deliver", msg="msg-1.dsn", node="india-mail", rcpt="james@india.com", mailbox="james"
    )
    w.at(w.now + 3600.0)
    _pop3_session(
        w,
        "james-pc",
        "india-mail",
        "james",
        "grammar",
        [
            (
                "msg-1.dsn",
                [
                    "From: MAILER-DAEMON@india.com",
                    "Subject: Undelivered Mail Returned to Sender",
                    "",
                    "I'm sorry to have to inform you that your message could not",
                    "be delivered to one or more recipients.",
                ],
            )
        ],
    )
    w.at(SERVER_UP_AT)
    w.emit("node.up", node="usa-mail")
    return w.records


def keep(fig: Any, name: str) -> None:
    """Save ``fig`` as ``name``.png into $MAILSIM_PLOT_DIR when set, to look at the figures.

    ``MAILSIM_PLOT_DIR=/tmp/plots pytest tests/test_plot_*.py`` leaves every tested figure there.
    """
    import os

    folder = os.environ.get("MAILSIM_PLOT_DIR")
    if folder:
        os.makedirs(folder, exist_ok=True)
        fig.savefig(os.path.join(folder, f"{name}.png"), dpi=80)


def artists_with_gid(fig: Any, gid: str) -> list[Any]:
    """Every artist of ``fig`` whose gid is ``gid`` (how the plot modules tag what they draw)."""
    return [a for a in fig.findobj(lambda artist: artist.get_gid() == gid)]
