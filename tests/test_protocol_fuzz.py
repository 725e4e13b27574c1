"""Standing fuzz test of both servers: mutated sessions, line by line, against the RFC's tables.

Where ``test_smtp_fuzz.py`` and ``test_pop3_fuzz.py`` check that any bytes in any chunks give the
same output without an exception, this file follows a session command by command. A well-formed
session (EHLO, AUTH, MAIL with quoted paths, RCPT, DATA, QUIT with and without an argument; USER
with a name of spaces, PASS, RETR, ...) is damaged at a few places, fed one line at a time, and
each line's replies are checked against what RFC 5321 4.3.2 lets that command get
(``COMMAND_REPLIES``, plus the syntax and sequence errors any command may get), and each event
against the documented event types. Seeded by hypothesis; a few hundred sessions each.
"""

from __future__ import annotations

import re
import types
import typing

from hypothesis import given, settings
from hypothesis import strategies as st

from mailsim.protocol import pop3
from mailsim.protocol.smtp import (
    COMMAND_REPLIES,
    NEED_DATA,
    PAUSED,
    SYNTAX_REPLIES,
    Accept,
    Reject,
    Reply,
    ServerEvent,
    ServerLimits,
    ServerPolicy,
    ServerState,
    Session,
    SMTPServer,
)

FUZZ = settings(max_examples=250, deadline=None)
REPLY_LINE = re.compile(rb"([2-5][0-9][0-9])([ -])[\x20-\x7e]*")

#: RFC 4954 6: the replies of AUTH and of each line of its dialogue.
AUTH_REPLIES = frozenset({235, 334, 421, 454, 501, 502, 503, 504, 530, 534, 535, 538})
#: What any command line may get besides its own replies: the syntax and sequence errors, 421
#: when the server gives up after too many errors (RFC 5321 4.3.2, 3.8), 530 when AUTH is
#: required first (RFC 4954 6), 552 and 555 for MAIL/RCPT parameters (RFC 1870, 5321 4.1.1.11).
ANY_COMMAND = SYNTAX_REPLIES | {421, 504, 530}
SERVER_EVENT_TYPES = typing.get_args(ServerEvent)


class Policy(ServerPolicy):
    def check_recipient(self, session: Session, address: str, params: object) -> Reply | None:
        return Reply(550, ("5.1.1 No such user",)) if "nobody" in address else None


SMTP_SESSION = [
    b"EHLO c.example",
    b"AUTH PLAIN AGphbWVzAHNlY3JldA==",
    b'MAIL FROM:<"james q"@india.example> SIZE=40',
    b"RCPT TO:<steve@usa.example> NOTIFY=FAILURE",
    b'RCPT TO:<"john smith"@usa.example>',
    b'RCPT TO:<"nobody x"@usa.example>',
    b"DATA",
    b"Subject: hi",
    b"",
    b"..a dotted line",
    b".",
    b"RSET",
    b"HELO c.example",
    b"MAIL FROM:<>",
    b"RCPT TO:<postmaster>",
    b"DATA",
    b"x" * 80,
    b".",
    b"VRFY steve",
    b"NOOP",
    b"QUIT please",
    b"QUIT",
]
SMTP_NOISE = [
    b"", b"\r", b"\n", b" ", b"\x00", b"\xff", b"QUIT x", b"DATA", b".", b"AUTH LOGIN", b"*",
    b"MAIL FROM:<a b@c>", b'RCPT TO:<"unclosed@x>', b"RCPT TO:<@a,@b:c@d>", b"x" * 1100,
    b"STARTTLS", b"EXPN list", b"HELP", b"BDAT 10", b"MAIL FROM:<a@b> SIZE=99999999999",
]  # fmt: skip


@st.composite
def damaged(draw: st.DrawFn, session: list[bytes], noise: list[bytes]) -> list[bytes]:
    """The session's lines with some dropped, some repeated, some noise lines put in."""
    lines = list(session)
    for _ in range(draw(st.integers(0, 6))):
        at = draw(st.integers(0, len(lines)))
        action = draw(st.sampled_from(["drop", "repeat", "noise", "noise", "bytes"]))
        if action == "drop" and at < len(lines):
            del lines[at]
        elif action == "repeat" and at < len(lines):
            lines.insert(at, lines[at])
        elif action == "noise":
            lines.insert(at, draw(st.sampled_from(noise)))
        elif action == "bytes":
            lines.insert(at, draw(st.binary(max_size=20)))
    return lines


def smtp_step(line: bytes, server: SMTPServer) -> str | None:
    """The step the replies to ``line`` belong to, or None for a line of message text."""
    state = server.state
    if state is ServerState.DATA:
        return "DOT" if line == b"." else None
    if state.name.startswith("AUTH"):
        return "AUTH"
    verb = line.split(b" ", 1)[0].decode("latin-1").upper()
    return verb


@FUZZ
@given(lines=damaged(SMTP_SESSION, SMTP_NOISE), verdict=st.sampled_from(["accept", "reject"]))
def test_smtp_server_replies_fit_each_command_and_events_are_documented(
    lines: list[bytes], verdict: str
) -> None:
    server = SMTPServer(
        "mx.usa.example",
        policy=Policy(auth_offered=True, users={"james": "secret"}),
        limits=ServerLimits(max_message_size=2000, max_errors=6),
    )
    greeting = server.data_to_send()
    assert greeting.startswith(b"220 ")
    for line in lines:
        if server.state in (ServerState.CLOSED, ServerState.ERROR):
            break
        # A line holding CR or LF is several lines; send only what one line would be.
        line = line.replace(b"\r", b"").replace(b"\n", b"")
        step = smtp_step(line, server)
        server.receive_data(line + b"\r\n")
        out = b""
        while (event := server.next_event()) is not NEED_DATA:
            if event is PAUSED:
                decision = Accept("Q1") if verdict == "accept" else Reject(Reply(554, ("no",)))
                out += server.send(decision)
                continue
            assert isinstance(event, SERVER_EVENT_TYPES), event
        out += server.data_to_send()
        if step is None:
            assert out == b"", (line, out)  # message text gets no reply of its own
            continue
        allowed = AUTH_REPLIES if step == "AUTH" else COMMAND_REPLIES.get(step, frozenset())
        if step == "DATA" and out.startswith(b"354"):
            continue
        for reply in out.split(b"\r\n")[:-1]:
            match = REPLY_LINE.fullmatch(reply)
            assert match is not None, reply
            assert len(reply) + 2 <= 512
            code = int(match[1])
            assert code in allowed | ANY_COMMAND | {552, 555, 554}, (step, line, reply)


POP3_SESSION = [
    b"CAPA",
    b"USER john smith",
    b"PASS pw",
    b"STAT",
    b"LIST",
    b"UIDL 1",
    b"TOP 1 0",
    b"RETR 1",
    b"DELE 1",
    b"RSET",
    b"DELE 2",
    b"NOOP",
    b"QUIT",
]
POP3_NOISE = [
    b"", b" ", b"USER", b"USER " + b"x" * 70, b"PASS", b"APOP john x", b"RETR 0", b"RETR 99",
    b"RETR 1 2", b"TOP 1 -1", b"LIST x", b"DELE 1", b"\x00", b"\xff\xfe", b"QUIT now", b"STLS",
]  # fmt: skip
# A status line's text is the server's words, and may echo a client's non-ASCII as UTF-8; never
# a control character.
POP3_REPLY = re.compile(rb"(\+OK|-ERR)( [^\x00-\x1f\x7f]*)?")
POP3_EVENT_TYPES = typing.get_args(pop3.ServerEvent)
MESSAGES = [b"Subject: a\r\n\r\nhello\r\n", b"Subject: b\r\n\r\n.dot\r\n"]


@FUZZ
@given(lines=damaged(POP3_SESSION, POP3_NOISE))
def test_pop3_server_answers_each_line_once_and_events_are_documented(
    lines: list[bytes],
) -> None:
    drop = pop3.MemoryMaildrop(MESSAGES)
    server = pop3.POP3Server(
        pop3.MemoryProvider({"john smith": "pw"}, {"john smith": drop}), max_errors=6
    )
    assert server.data_to_send().startswith(b"+OK")
    for line in lines:
        if server.state is pop3.Pop3State.CLOSED:
            break
        line = line.replace(b"\r", b"").replace(b"\n", b"")
        server.receive_data(line + b"\r\n")
        while (event := server.next_event()) is not pop3.NEED_DATA:
            assert isinstance(event, POP3_EVENT_TYPES), event
            if isinstance(event, pop3.ConnectionClosed):
                break
        out = server.data_to_send()
        status = out.split(b"\r\n", 1)[0]
        # One status line per command line (RFC 1939 3), a multi-line body after +OK only.
        assert POP3_REPLY.fullmatch(status), (line, status)
        assert len(status) + 2 <= pop3.RESPONSE_LINE_LIMIT
        assert out.endswith(b"\r\n")
    assert not drop.locked or server.state is not pop3.Pop3State.CLOSED


def test_the_documented_event_types_are_what_the_modules_say() -> None:
    # The unions the tests check against are the modules' own, not copies.
    assert isinstance(ServerEvent, types.UnionType)
    assert len(SERVER_EVENT_TYPES) >= 8 and len(POP3_EVENT_TYPES) >= 8
