"""The sans-IO SMTP server: bytes in, replies and events out, for every command and error path."""

from __future__ import annotations

import base64
from collections.abc import Callable

import pytest

from mailsim.protocol.smtp import (
    NEED_DATA,
    PAUSED,
    SERVER_TRANSITIONS,
    Accept,
    AuthResult,
    ConnectionClosed,
    Hello,
    LocalProtocolError,
    MailFrom,
    MailParams,
    MessageReceived,
    MessageRefused,
    Quit,
    RcptParams,
    RcptTo,
    Reject,
    Reply,
    ReplyTexts,
    Reset,
    ServerEvent,
    ServerLimits,
    ServerPolicy,
    ServerState,
    ServiceClosing,
    Session,
    Shutdown,
    SMTPServer,
)

Outcome = tuple[list[str], list[ServerEvent]]


def converse(
    data: bytes,
    server: SMTPServer | None = None,
    decide: Callable[[MessageReceived], Accept | Reject] = lambda m: Accept("Q1"),
) -> Outcome:
    """Feed ``data`` at once; return the reply lines after the greeting, and the events."""
    server = server if server is not None else SMTPServer("mx.india.example")
    server.data_to_send()
    server.receive_data(data)
    out = b""
    events: list[ServerEvent] = []
    while True:
        event = server.next_event()
        if event is NEED_DATA:
            break
        if event is PAUSED:
            message = events[-1]
            assert isinstance(message, MessageReceived)
            out += server.send(decide(message))
            continue
        events.append(event)
    out += server.data_to_send()
    return out.decode("ascii").split("\r\n")[:-1], events


def lines(*commands: str) -> bytes:
    return "".join(c + "\r\n" for c in commands).encode("latin-1")


def codes(replies: list[str]) -> list[str]:
    """The code of each complete reply (continuation lines of multi-line replies skipped)."""
    return [r[:3] for r in replies if r[3:4] != "-"]


def plain(user: str, password: str) -> str:
    return base64.b64encode(f"\0{user}\0{password}".encode()).decode()


# --- every command in every state ----------------------------------------------------------------

SETUP = {
    "greeted": [],
    "ready": ["EHLO c.usa.example"],
    "mail": ["EHLO c.usa.example", "MAIL FROM:<james@usa.example>"],
    "rcpt": [
        "EHLO c.usa.example",
        "MAIL FROM:<james@usa.example>",
        "RCPT TO:<steve@india.example>",
    ],
}
G, R, M, T = ServerState.GREETED, ServerState.READY, ServerState.MAIL, ServerState.RCPT
X, D = ServerState.CLOSED, ServerState.DATA
# Hand-worked from RFC 5321 4.1.4 / 3.3: the reply code and the state
# after the command, in the states greeted, ready, mail, rcpt (the order of SETUP).
EXPECTED: dict[str, tuple[tuple[str, ServerState], ...]] = {
    "EHLO c.usa.example": (("250", R), ("250", R), ("250", R), ("250", R)),
    "HELO c.usa.example": (("250", R), ("250", R), ("250", R), ("250", R)),
    "MAIL FROM:<x@usa.example>": (("503", G), ("250", M), ("503", M), ("503", T)),
    "RCPT TO:<y@india.example>": (("503", G), ("503", R), ("250", T), ("250", T)),
    "DATA": (("503", G), ("503", R), ("503", M), ("354", D)),
    "RSET": (("250", G), ("250", R), ("250", R), ("250", R)),
    "NOOP": (("250", G), ("250", R), ("250", M), ("250", T)),
    "VRFY steve": (("252", G), ("252", R), ("252", M), ("252", T)),
    "EXPN staff": (("502", G), ("502", R), ("502", M), ("502", T)),
    "HELP": (("214", G), ("214", R), ("214", M), ("214", T)),
    "QUIT": (("221", X), ("221", X), ("221", X), ("221", X)),
    # AUTH is not offered by the default policy: 502 everywhere.
    "AUTH PLAIN": (("502", G), ("502", R), ("502", M), ("502", T)),
    "FROB": (("500", G), ("500", R), ("500", M), ("500", T)),
    "TURN": (("502", G), ("502", R), ("502", M), ("502", T)),
    "": (("500", G), ("500", R), ("500", M), ("500", T)),
}


@pytest.mark.parametrize("state", list(SETUP))
@pytest.mark.parametrize("command", list(EXPECTED))
def test_every_command_in_every_state(command: str, state: str) -> None:
    server = SMTPServer("mx.india.example")
    replies, _ = converse(lines(*SETUP[state], command), server)
    code, after = EXPECTED[command][list(SETUP).index(state)]
    assert codes(replies)[-1] == code
    assert server.state is after


@pytest.mark.parametrize(
    ("state", "code", "after"),
    [
        ("greeted", "503", G),
        ("ready", "334", ServerState.AUTH_PLAIN),
        ("mail", "503", M),
        ("rcpt", "503", T),
    ],
)
def test_auth_in_every_state_when_offered(state: str, code: str, after: ServerState) -> None:
    server = SMTPServer("mx.india.example", policy=ServerPolicy(auth_offered=True))
    replies, _ = converse(lines(*SETUP[state], "AUTH PLAIN"), server)
    assert codes(replies)[-1] == code
    assert server.state is after


def test_every_transition_names_a_real_state() -> None:
    for row in SERVER_TRANSITIONS.values():
        assert all(isinstance(target, ServerState) for target in row.values())
    # Every state but CONNECTED can be reached from somewhere (CONNECTED is the start).
    reachable = {t for row in SERVER_TRANSITIONS.values() for t in row.values()}
    assert reachable == set(ServerState) - {ServerState.CONNECTED}


# --- the greeting and the tutorial ---------------------------------------------------------------


def test_greeting_is_220_with_hostname() -> None:
    server = SMTPServer("mx.india.example")
    assert server.data_to_send() == b"220 mx.india.example ESMTP mailsim\r\n"
    assert server.state is ServerState.GREETED


def test_tutorial_dialogue_byte_for_byte() -> None:
    # reference/seed-smtp-tutorial.txt, server India.com, client USA.com.
    server = SMTPServer("India.com", texts=ReplyTexts.CLASSIC)
    wire = server.data_to_send()
    server.receive_data(
        b"HELO USA.com\r\n"
        b"MAIL FROM:<James@USA.com>\r\n"
        b"RCPT TO:<Steve@India.com>\r\n"
        b"DATA\r\n"
        b"Do you have a Grammar Book?\r\n"
        b"What about Atlas?\r\n"
        b".\r\n"
        b"QUIT\r\n"
    )
    events = []
    while (event := server.next_event()) is not NEED_DATA:
        if event is PAUSED:
            wire += server.send(Accept("1"))
        else:
            events.append(event)
    wire += server.data_to_send()
    assert wire == (
        b"220 India.com\r\n"
        b"250 Hello USA.com, Nice to meet you.\r\n"
        b"250 James@USA.com.... Sender OK.\r\n"
        b"250 Steve@India.com... Recipient OK.\r\n"
        b'354 Enter Mail, end with "." on a line by itself.\r\n'
        b"250 Message accepted for delivery.\r\n"
        b"221 India.com closing connection.\r\n"
    )
    message = events[3]
    assert isinstance(message, MessageReceived)
    assert message.content == b"Do you have a Grammar Book?\r\nWhat about Atlas?\r\n"
    assert server.state is ServerState.CLOSED


def test_modern_texts_have_enhanced_codes() -> None:
    replies, _ = converse(
        lines(
            "HELO c", "MAIL FROM:<a@b.example>", "RCPT TO:<c@d.example>", "DATA", "x", ".", "QUIT"
        )
    )
    assert replies == [
        "250 mx.india.example",
        "250 2.1.0 Ok",
        "250 2.1.5 Ok",
        "354 End data with <CR><LF>.<CR><LF>",
        "250 2.0.0 Ok: queued as Q1",
        "221 2.0.0 Bye",
    ]


def test_ehlo_lists_extensions_multiline() -> None:
    replies, events = converse(lines("EHLO c.usa.example"))
    assert replies == [
        "250-mx.india.example",
        "250-PIPELINING",
        "250-SIZE 10485760",
        "250-ENHANCEDSTATUSCODES",
        "250-8BITMIME",
        "250 DSN",
    ]
    assert events == [Hello("c.usa.example", extended=True)]


def test_ehlo_offers_auth_only_when_policy_offers_it() -> None:
    server = SMTPServer("mx", policy=ServerPolicy(auth_offered=True))
    replies, _ = converse(lines("EHLO c"), server)
    assert "250-AUTH PLAIN LOGIN" in replies


def test_classic_ehlo_has_no_enhancedstatuscodes() -> None:
    server = SMTPServer("India.com", texts=ReplyTexts.CLASSIC)
    replies, _ = converse(lines("EHLO USA.com", "FROB"), server)
    assert replies[0] == "250-India.com Hello USA.com"
    assert "250-ENHANCEDSTATUSCODES" not in replies
    assert replies[-1] == "500 Error: command not recognized"


def test_refuse_service_greets_554_and_answers_503_until_quit() -> None:
    server = SMTPServer("mx", refuse_service=True)
    assert server.data_to_send() == b"554 mx No SMTP service here\r\n"
    commands = ("EHLO c", "NOOP", "MAIL FROM:<a@b.example>", "FROB", "AUTH PLAIN", "QUIT")
    replies, _ = converse(lines(*commands), server)
    assert replies[0] == "503 5.5.1 Error: no SMTP service here"
    assert codes(replies) == ["503", "503", "503", "503", "503", "221"]
    assert server.state is ServerState.CLOSED


def test_own_greeting_421_closes_at_once() -> None:
    busy = Reply(421, ("4.7.0 mx Too many connections",))
    server = SMTPServer("mx", greeting=busy)
    assert server.data_to_send() == b"421 4.7.0 mx Too many connections\r\n"
    assert server.next_event() == ServiceClosing(busy)
    assert server.state is ServerState.CLOSED


def test_own_greeting_554_refuses_service() -> None:
    server = SMTPServer("mx", greeting=Reply(554, ("5.7.1 Go away",)))
    assert server.data_to_send() == b"554 5.7.1 Go away\r\n"
    assert server.state is ServerState.NO_SERVICE


def test_greeting_must_be_220_421_or_554() -> None:
    with pytest.raises(ValueError, match="220, 421 or 554"):
        SMTPServer("mx", greeting=Reply(250, ("hi",)))


# --- syntax and sequence errors ------------------------------------------------------------------

READY = ["EHLO c.usa.example"]
MAIL = [*READY, "MAIL FROM:<james@usa.example>"]
RCPT = [*MAIL, "RCPT TO:<steve@india.example>"]


@pytest.mark.parametrize(
    ("setup", "command", "reply"),
    [
        ([], "ehlo c.usa.example", "250 DSN"),  # commands are case-insensitive
        ([], "EHLO", "501 5.5.4 Syntax: EHLO hostname"),
        ([], "HELO", "501 5.5.4 Syntax: HELO hostname"),
        ([], "HELO bad\x01name", "501 5.5.2 Error: invalid hostname"),
        ([], "MAIL FROM:<a@b.example>", "503 5.5.1 Error: send HELO/EHLO first"),
        ([], "RCPT TO:<a@b.example>", "503 5.5.1 Error: need MAIL command"),
        (READY, "RCPT TO:<a@b.example>", "503 5.5.1 Error: need MAIL command"),
        (READY, "DATA", "503 5.5.1 Error: need MAIL command"),
        (MAIL, "DATA", "503 5.5.1 Error: need RCPT command"),
        (MAIL, "MAIL FROM:<a@b.example>", "503 5.5.1 Error: nested MAIL command"),
        (RCPT, "MAIL FROM:<a@b.example>", "503 5.5.1 Error: nested MAIL command"),
        (READY, "mail from:<a@b.example>", "250 2.1.0 Ok"),
        (READY, "MAIL FROM: <a@b.example>", "250 2.1.0 Ok"),
        (READY, "MAIL FROM:<>", "250 2.1.0 Ok"),
        (READY, "MAIL TO:<a@b.example>", "501 5.5.4 Syntax: MAIL FROM:<address>"),
        (READY, "MAIL", "501 5.5.4 Syntax: MAIL FROM:<address>"),
        (READY, "MAIL FROM:a@b.example", "501 5.1.7 Bad sender address syntax"),
        (READY, "MAIL FROM:<a b@c.example>", "501 5.1.7 Bad sender address syntax"),
        (READY, "MAIL FROM:<a@b.example", "501 5.1.7 Bad sender address syntax"),
        (READY, "MAIL FROM:<a@b.example>junk", "501 5.1.7 Bad sender address syntax"),
        (READY, "MAIL FROM:<james>", "501 5.1.7 Bad sender address syntax"),
        (READY, "MAIL FROM:<" + "a" * 65 + "@b.example>", "501 5.1.3 Local part too long"),
        (
            READY,
            "MAIL FROM:<" + "a" * 60 + "@" + "b" * 200 + ".example>",
            "501 5.5.4 Path too long",
        ),
        (READY, "MAIL FROM:<a@b.example> SIZE=100", "250 2.1.0 Ok"),
        (
            READY,
            "MAIL FROM:<a@b.example> SIZE=10485761",
            "552 5.3.4 Error: message size exceeds fixed limit",
        ),
        (READY, "MAIL FROM:<a@b.example> SIZE=ten", "501 5.5.4 Bad SIZE parameter"),
        (READY, "MAIL FROM:<a@b.example> SIZE", "501 5.5.4 Bad SIZE parameter"),
        (READY, "MAIL FROM:<a@b.example> SIZE=1 SIZE=2", "501 5.5.4 Duplicate SIZE parameter"),
        (READY, "MAIL FROM:<a@b.example> BODY=8bitmime", "250 2.1.0 Ok"),
        (READY, "MAIL FROM:<a@b.example> BODY=9BIT", "501 5.5.4 Bad BODY parameter"),
        (READY, "MAIL FROM:<a@b.example> RET=HDRS ENVID=QQ+2B1", "250 2.1.0 Ok"),
        (READY, "MAIL FROM:<a@b.example> RET=ALL", "501 5.5.4 Bad RET parameter"),
        (READY, "MAIL FROM:<a@b.example> ENVID=a+zz", "501 5.5.4 Bad ENVID parameter"),
        (READY, "MAIL FROM:<a@b.example> AUTH=<>", "555 5.5.4 Unsupported option: AUTH"),
        (READY, "MAIL FROM:<a@b.example> SMTPUTF8", "555 5.5.4 Unsupported option: SMTPUTF8"),
        (READY, "MAIL FROM:<a@b.example> =x", "501 5.5.4 Syntax: MAIL FROM:<address>"),
        (MAIL, "RCPT TO:<>", "501 5.1.3 Bad recipient address syntax"),
        (MAIL, "RCPT TO:<steve>", "501 5.1.3 Bad recipient address syntax"),
        (MAIL, "RCPT TO:steve@india.example", "501 5.1.3 Bad recipient address syntax"),
        (MAIL, "RCPT FROM:<steve@india.example>", "501 5.5.4 Syntax: RCPT TO:<address>"),
        (MAIL, "RCPT TO:<postmaster>", "250 2.1.5 Ok"),
        (MAIL, "RCPT TO:<@relay.example:steve@india.example>", "250 2.1.5 Ok"),
        (MAIL, 'RCPT TO:<"steve >x"@india.example>', "250 2.1.5 Ok"),
        (MAIL, "RCPT TO:<s@[192.0.2.7]>", "250 2.1.5 Ok"),
        (MAIL, "RCPT TO:<s@india.example> NOTIFY=NEVER", "250 2.1.5 Ok"),
        (
            MAIL,
            "RCPT TO:<s@india.example> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;s@india.example",
            "250 2.1.5 Ok",
        ),
        (MAIL, "RCPT TO:<s@india.example> NOTIFY=NEVER,SUCCESS", "501 5.5.4 Bad NOTIFY parameter"),
        (MAIL, "RCPT TO:<s@india.example> NOTIFY=SOMETIMES", "501 5.5.4 Bad NOTIFY parameter"),
        (MAIL, "RCPT TO:<s@india.example> ORCPT=nosemicolon", "501 5.5.4 Bad ORCPT parameter"),
        (MAIL, "RCPT TO:<s@india.example> SIZE=1", "555 5.5.4 Unsupported option: SIZE"),
        (RCPT, "DATA now", "501 5.5.4 Syntax: DATA"),
        (RCPT, "RSET all", "501 5.5.4 Syntax: RSET"),
        (READY, "VRFY", "501 5.5.4 Syntax: VRFY address"),
        (READY, "EXPN", "501 5.5.4 Syntax: EXPN mailing-list"),
        (READY, "NOOP anything", "250 2.0.0 Ok"),
        (READY, "BDAT 10 LAST", "502 5.5.1 Error: command not implemented"),
        (READY, "STARTTLS", "502 5.5.1 Error: command not implemented"),
        (READY, "  ", "500 5.5.2 Error: bad syntax"),
    ],
)
def test_reply_to_command(setup: list[str], command: str, reply: str) -> None:
    replies, _ = converse(lines(*setup, command))
    assert replies[-1] == reply


def test_domain_longer_than_255_is_refused() -> None:
    server = SMTPServer("mx", limits=ServerLimits(path=1000, command_line=1000))
    replies, _ = converse(lines("EHLO c", "MAIL FROM:<a@" + "b" * 256 + ">"), server)
    assert replies[-1] == "501 5.1.3 Domain too long"


def test_mail_params_are_passed_on_in_the_event() -> None:
    _, events = converse(
        lines(*READY, "MAIL FROM:<a@b.example> SIZE=1200 BODY=8BITMIME RET=FULL ENVID=X1")
    )
    assert events[-1] == MailFrom(
        "a@b.example", MailParams(size=1200, body="8BITMIME", ret="FULL", envid="X1")
    )


def test_rcpt_params_are_passed_on_in_the_event() -> None:
    _, events = converse(lines(*MAIL, "RCPT TO:<s@i.example> NOTIFY=failure,delay ORCPT=rfc822;s"))
    assert events[-1] == RcptTo("s@i.example", RcptParams(("FAILURE", "DELAY"), "rfc822;s"))


def test_source_route_is_dropped_from_the_address() -> None:
    _, events = converse(lines(*MAIL, "RCPT TO:<@a.example,@b.example:steve@india.example>"))
    assert events[-1] == RcptTo("steve@india.example", RcptParams())


def test_null_reverse_path_is_the_empty_string() -> None:
    _, events = converse(lines(*READY, "MAIL FROM:<>"))
    assert events[-1] == MailFrom("", MailParams())


def test_data_after_all_recipients_refused_gets_554() -> None:
    class NoOne(ServerPolicy):
        def check_recipient(self, session: Session, address: str, params: RcptParams) -> Reply:
            return Reply(550, ("5.1.1 No such user",))

    server = SMTPServer("mx", policy=NoOne())
    replies, _ = converse(lines(*MAIL, "RCPT TO:<x@mx.example>", "DATA"), server)
    assert replies[-2:] == ["550 5.1.1 No such user", "554 5.5.1 Error: no valid recipients"]
    assert server.state is ServerState.MAIL


def test_bare_postmaster_is_accepted_even_when_policy_refuses_all() -> None:
    class NoOne(ServerPolicy):
        def check_recipient(self, session: Session, address: str, params: RcptParams) -> Reply:
            return Reply(550, ("5.1.1 No such user",))

    # RFC 5321 4.5.1: <postmaster> without a domain must always work; postmaster@domain is the
    # policy's call (only it knows which domains are local; accepting any would be a relay).
    commands = (*MAIL, "RCPT TO:<PostMaster@mx.example>", "RCPT TO:<POSTMASTER>", "RCPT TO:<x@y>")
    replies, _ = converse(lines(*commands), SMTPServer("mx", policy=NoOne()))
    assert codes(replies)[-3:] == ["550", "250", "550"]
    strict = NoOne(always_accept_postmaster=False)
    replies, _ = converse(lines(*MAIL, "RCPT TO:<postmaster>"), SMTPServer("mx", policy=strict))
    assert codes(replies)[-1] == "550"


def test_recipients_beyond_the_limit_get_452() -> None:
    # 100 recipients are fine (RFC 5321 4.5.3.1.8); the 101st gets 452 4.5.3.
    rcpts = [f"RCPT TO:<u{i}@india.example>" for i in range(101)]
    server = SMTPServer("mx")
    replies, events = converse(lines(*MAIL, *rcpts), server)
    assert codes(replies)[-101:] == ["250"] * 100 + ["452"]
    assert replies[-1] == "452 4.5.3 Error: too many recipients"
    assert sum(isinstance(e, RcptTo) for e in events) == 100


def test_new_ehlo_resets_the_transaction() -> None:
    server = SMTPServer("mx")
    replies, _ = converse(lines(*RCPT, "EHLO again", "DATA", "MAIL FROM:<a@b.example>"), server)
    assert codes(replies)[-3:] == ["250", "503", "250"]


def test_rset_drops_the_transaction_and_is_reported() -> None:
    replies, events = converse(lines(*RCPT, "RSET", "RCPT TO:<a@b.example>"))
    assert codes(replies)[-2:] == ["250", "503"]
    assert Reset() in events


def test_command_line_of_512_octets_is_accepted_and_513_is_not() -> None:
    # RFC 5321 4.5.3.1.4: 512 octets including CRLF. "NOOP " (5) + 505 + CRLF (2) = 512.
    replies, _ = converse(lines("NOOP " + "x" * 505, "NOOP " + "x" * 506, "NOOP"))
    assert replies == ["250 2.0.0 Ok", "500 5.5.2 Error: line too long", "250 2.0.0 Ok"]


def test_overlong_line_is_not_buffered_and_then_recovers() -> None:
    server = SMTPServer("mx")
    server.data_to_send()
    for _ in range(100):
        server.receive_data(b"x" * 1000)
        assert server.next_event() is NEED_DATA
    server.receive_data(b"\r\nNOOP\r\n")
    assert server.next_event() is NEED_DATA
    assert server.data_to_send() == b"500 5.5.2 Error: line too long\r\n250 2.0.0 Ok\r\n"


def test_too_many_errors_get_421_and_close() -> None:
    server = SMTPServer("mx", limits=ServerLimits(max_errors=3))
    replies, events = converse(lines("FROB", "FROB", "FROB", "NOOP"), server)
    assert replies == [
        "500 5.5.2 Error: command not recognized",
        "500 5.5.2 Error: command not recognized",
        "500 5.5.2 Error: command not recognized",
        "421 4.7.0 mx Error: too many errors",
    ]
    assert isinstance(events[-1], ServiceClosing)
    assert server.state is ServerState.CLOSED


def test_default_error_limit_is_twenty() -> None:
    server = SMTPServer("mx")
    replies, _ = converse(lines(*["FROB"] * 25), server)
    assert codes(replies) == ["500"] * 20 + ["421"]


# --- DATA ----------------------------------------------------------------------------------------


def test_dot_stuffing_is_removed() -> None:
    _, events = converse(lines(*RCPT, "DATA", "..leading dot", "...", "x.", ".", "NOOP"))
    message = events[-1]
    assert isinstance(message, MessageReceived)
    assert message.content == b".leading dot\r\n..\r\nx.\r\n"


def test_empty_message_is_received_empty() -> None:
    _, events = converse(lines(*RCPT, "DATA", "."))
    assert isinstance(events[-1], MessageReceived)
    assert events[-1].content == b""


def test_message_received_carries_the_envelope() -> None:
    _, events = converse(
        lines(
            *READY,
            "MAIL FROM:<j@usa.example> BODY=7BIT",
            "RCPT TO:<a@india.example> NOTIFY=NEVER",
            "RCPT TO:<b@india.example>",
            "DATA",
            "hi",
            ".",
        )
    )
    assert events[-1] == MessageReceived(
        "j@usa.example",
        ("a@india.example", "b@india.example"),
        b"hi\r\n",
        MailParams(body="7BIT"),
        (RcptParams(notify=("NEVER",)), RcptParams()),
    )


def test_oversize_message_gets_552_only_at_the_final_dot() -> None:
    # RFC 5321 4.2.5: the error is held until the end of the data.
    server = SMTPServer("mx", limits=ServerLimits(max_message_size=100))
    server.data_to_send()
    server.receive_data(lines(*RCPT, "DATA"))
    while server.next_event() is not NEED_DATA:
        pass
    server.data_to_send()
    for _ in range(50):
        server.receive_data(b"0123456789" * 9 + b"\r\n")  # 92 octets a time
        assert server.next_event() is NEED_DATA
        assert server.data_to_send() == b""
        assert len(server._in) < 200  # counting, not storing (a white-box check)
    server.receive_data(b".\r\nMAIL FROM:<a@b.example>\r\n")
    event = server.next_event()
    assert isinstance(event, MessageRefused)
    assert event.rcpt_to == ("steve@india.example",)
    assert server.next_event() == MailFrom("a@b.example", MailParams())
    assert server.data_to_send() == (
        b"552 5.3.4 Error: message size exceeds fixed limit\r\n250 2.1.0 Ok\r\n"
    )


def test_message_of_exactly_the_limit_is_accepted() -> None:
    # 10 lines of "x"*8 + CRLF = 10 * 10 = 100 octets = the limit; a leading dot is stuffing and
    # does not count.
    server = SMTPServer("mx", limits=ServerLimits(max_message_size=100))
    body = ["..xxxxxxx"] + ["xxxxxxxx"] * 9
    replies, events = converse(lines(*RCPT, "DATA", *body, "."), server)
    assert isinstance(events[-1], MessageReceived)
    assert len(events[-1].content) == 100
    assert replies[-1] == "250 2.0.0 Ok: queued as Q1"


def test_message_one_line_over_the_limit_is_refused() -> None:
    # The same 100 octets + "x" + CRLF = 103 octets > 100.
    server = SMTPServer("mx", limits=ServerLimits(max_message_size=100))
    body = ["..xxxxxxx"] + ["xxxxxxxx"] * 9 + ["x"]
    replies, events = converse(lines(*RCPT, "DATA", *body, "."), server)
    assert isinstance(events[-1], MessageRefused)
    assert replies[-1] == "552 5.3.4 Error: message size exceeds fixed limit"


def test_text_line_over_1000_octets_gets_500_at_the_end() -> None:
    # RFC 5321 4.5.3.1.6: 998 characters + CRLF = 1000 octets is the longest text line.
    replies, events = converse(lines(*RCPT, "DATA", "a" * 998, "."))
    assert isinstance(events[-1], MessageReceived)
    replies, events = converse(lines(*RCPT, "DATA", "a" * 999, "."))
    assert isinstance(events[-1], MessageRefused)
    assert replies[-1] == "500 5.5.2 Error: message text line too long"


# --- the application's decision ------------------------------------------------------------------


def test_server_pauses_and_holds_pipelined_commands_until_the_decision() -> None:
    server = SMTPServer("mx")
    server.data_to_send()
    server.receive_data(lines(*RCPT, "DATA", "hello", ".", "QUIT"))
    events = []
    while (event := server.next_event()) is not PAUSED:
        events.append(event)
    assert isinstance(events[-1], MessageReceived)
    assert server.next_event() is PAUSED  # stays paused
    before = server.data_to_send()
    assert not before.endswith(b"221 2.0.0 Bye\r\n")
    assert server.send(Accept("4F2A")) == b"250 2.0.0 Ok: queued as 4F2A\r\n"
    assert server.next_event() == Quit()
    assert server.data_to_send() == b"221 2.0.0 Bye\r\n"


def test_send_returns_queued_replies_before_the_decision() -> None:
    server = SMTPServer("mx")
    server.data_to_send()
    server.receive_data(
        lines("EHLO c", "MAIL FROM:<a@b.example>", "RCPT TO:<c@d.example>", "DATA", "x", ".")
    )
    while server.next_event() is not PAUSED:
        pass
    out = server.send(Accept("Q9")).decode().split("\r\n")
    assert codes(out[:-1]) == ["250", "250", "250", "354", "250"]
    assert out[-2] == "250 2.0.0 Ok: queued as Q9"


def test_reject_sends_the_applications_reply() -> None:
    replies, _ = converse(
        lines(*RCPT, "DATA", "x", ".", "NOOP"),
        decide=lambda m: Reject(Reply(451, ("4.3.0 Queue file write error",))),
    )
    assert replies[-2:] == ["451 4.3.0 Queue file write error", "250 2.0.0 Ok"]


def test_reject_with_421_closes() -> None:
    server = SMTPServer("mx")
    replies, events = converse(
        lines(*RCPT, "DATA", "x", ".", "NOOP"),
        server,
        decide=lambda m: Reject(Reply(421, ("4.3.0 mx shutting down",))),
    )
    assert replies[-1] == "421 4.3.0 mx shutting down"
    assert isinstance(events[-1], ServiceClosing)
    assert server.state is ServerState.CLOSED


def test_accept_without_a_message_is_a_local_error() -> None:
    server = SMTPServer("mx")
    with pytest.raises(LocalProtocolError):
        server.send(Accept("Q1"))
    assert server.state is ServerState.ERROR


def test_reject_with_a_positive_reply_is_a_local_error() -> None:
    server = SMTPServer("mx")
    server.receive_data(lines(*RCPT, "DATA", "."))
    while server.next_event() is not PAUSED:
        pass
    with pytest.raises(LocalProtocolError):
        server.send(Reject(Reply(250, ("ok",))))


def test_shutdown_says_421_and_closes() -> None:
    server = SMTPServer("mx")
    server.data_to_send()
    assert server.send(Shutdown()) == b"421 4.3.2 mx Service shutting down, closing connection\r\n"
    assert server.state is ServerState.CLOSED
    timeout = SMTPServer("mx")
    timeout.data_to_send()
    assert timeout.send(Shutdown(timeout.error_reply("timeout"))) == (
        b"421 4.4.2 mx Error: timeout exceeded\r\n"
    )


# --- the peer closing ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("setup", "aborted"),
    [([], False), (READY, False), (MAIL, True), (RCPT, True), ([*RCPT, "DATA", "half"], True)],
)
def test_peer_closing_is_reported(setup: list[str], aborted: bool) -> None:
    server = SMTPServer("mx")
    server.receive_data(lines(*setup))
    server.receive_data(b"")
    events = []
    while (event := server.next_event()) is not NEED_DATA:
        events.append(event)
    assert events[-1] == ConnectionClosed(transaction_aborted=aborted)
    assert server.state is ServerState.CLOSED


def test_peer_closing_after_the_dot_still_waits_for_the_decision() -> None:
    # The dot arrived, so the message is complete; the application still decides (RFC 1047 risk).
    server = SMTPServer("mx")
    server.receive_data(lines(*RCPT, "DATA", "x", "."))
    server.receive_data(b"")
    while server.next_event() is not PAUSED:
        pass
    server.send(Accept("Q1"))
    assert server.next_event() == ConnectionClosed(transaction_aborted=False)


def test_data_after_eof_is_a_local_error() -> None:
    server = SMTPServer("mx")
    server.receive_data(b"")
    with pytest.raises(LocalProtocolError):
        server.receive_data(b"NOOP\r\n")


def test_bytes_after_quit_are_ignored() -> None:
    server = SMTPServer("mx")
    replies, _ = converse(lines("QUIT", "NOOP"), server)
    assert replies == ["221 2.0.0 Bye"]
    server.receive_data(b"more\r\n")
    assert server.next_event() is NEED_DATA


# --- policy hooks --------------------------------------------------------------------------------


class Recording(ServerPolicy):
    def __init__(self) -> None:
        super().__init__()
        self.sessions: list[Session] = []

    def check_sender(self, session: Session, address: str, params: MailParams) -> Reply | None:
        self.sessions.append(session)
        return Reply(550, ("5.7.1 Sender refused",)) if address == "spam@bad.example" else None


def test_policy_sees_a_session_snapshot() -> None:
    policy = Recording()
    server = SMTPServer("mx", peer="192.0.2.7", policy=policy)
    replies, _ = converse(lines("HELO c.usa.example", "MAIL FROM:<spam@bad.example>"), server)
    assert replies[-1] == "550 5.7.1 Sender refused"
    assert policy.sessions == [Session("192.0.2.7", "c.usa.example", False, None)]
    assert server.state is ServerState.READY


def test_positive_policy_reply_accepts_with_its_text() -> None:
    class Forwarding(ServerPolicy):
        def check_recipient(self, session: Session, address: str, params: RcptParams) -> Reply:
            return Reply(251, ("2.1.5 User not local; will forward",))

    replies, events = converse(
        lines(*MAIL, "RCPT TO:<s@i.example>"), SMTPServer("mx", policy=Forwarding())
    )
    assert replies[-1] == "251 2.1.5 User not local; will forward"
    assert isinstance(events[-1], RcptTo)


def test_before_command_injects_greylisting_on_a_chosen_rcpt() -> None:
    class Greylist(ServerPolicy):
        def before_command(self, session: Session, verb: str, arg: str) -> Reply | None:
            if verb == "RCPT" and "grey" in arg:
                return Reply(451, ("4.7.1 Greylisted, try again later",))
            return None

    server = SMTPServer("mx", policy=Greylist())
    replies, _ = converse(
        lines(*MAIL, "RCPT TO:<grey@i.example>", "RCPT TO:<ok@i.example>"), server
    )
    assert replies[-2:] == ["451 4.7.1 Greylisted, try again later", "250 2.1.5 Ok"]


def test_before_command_421_closes_the_session() -> None:
    class Busy(ServerPolicy):
        def before_command(self, session: Session, verb: str, arg: str) -> Reply | None:
            return Reply(421, ("4.7.0 mx Too busy",)) if verb == "MAIL" else None

    server = SMTPServer("mx", policy=Busy())
    replies, events = converse(lines(*READY, "MAIL FROM:<a@b.example>", "NOOP"), server)
    assert replies[-1] == "421 4.7.0 mx Too busy"
    assert events[-1] == ServiceClosing(Reply(421, ("4.7.0 mx Too busy",)))
    assert server.state is ServerState.CLOSED


def test_expn_answers_when_the_policy_expands() -> None:
    class Lists(ServerPolicy):
        def expand(self, session: Session, mailing_list: str) -> Reply | None:
            return Reply(250, ("2.1.5 <a@i.example>",)) if mailing_list == "staff" else None

    server = SMTPServer("mx", policy=Lists())
    replies, _ = converse(lines("EXPN staff", "EXPN other"), server)
    assert codes(replies) == ["250", "502"]


# --- AUTH (RFC 4954) -----------------------------------------------------------------------------


def auth_server(**kwargs: bool) -> SMTPServer:
    policy = ServerPolicy(auth_offered=True, users={"james": "secret"}, **kwargs)
    return SMTPServer("mx", policy=policy)


def test_auth_plain_with_initial_response() -> None:
    server = auth_server()
    replies, events = converse(lines("EHLO c", "AUTH PLAIN " + plain("james", "secret")), server)
    assert replies[-1] == "235 2.7.0 Authentication successful"
    assert events[-1] == AuthResult("PLAIN", "james", True)
    assert server.session.authenticated_user == "james"


def test_auth_plain_with_a_challenge() -> None:
    replies, _ = converse(lines("EHLO c", "AUTH PLAIN", plain("james", "secret")), auth_server())
    assert replies[-2:] == ["334 ", "235 2.7.0 Authentication successful"]


def test_auth_login_asks_for_user_and_password() -> None:
    def b64(text: str) -> str:
        return base64.b64encode(text.encode()).decode()

    replies, events = converse(
        lines("EHLO c", "AUTH LOGIN", b64("james"), b64("secret")), auth_server()
    )
    assert replies[-3:] == [
        "334 VXNlcm5hbWU6",
        "334 UGFzc3dvcmQ6",
        "235 2.7.0 Authentication successful",
    ]
    assert events[-1] == AuthResult("LOGIN", "james", True)


def test_auth_login_with_initial_user() -> None:
    replies, _ = converse(
        lines("EHLO c", "AUTH LOGIN amFtZXM=", base64.b64encode(b"secret").decode()), auth_server()
    )
    assert codes(replies)[-2:] == ["334", "235"]


@pytest.mark.parametrize(
    ("commands", "reply"),
    [
        (
            ["EHLO c", "AUTH PLAIN " + plain("james", "wrong")],
            "535 5.7.8 Authentication credentials invalid",
        ),
        (
            ["EHLO c", "AUTH PLAIN " + plain("nobody", "x")],
            "535 5.7.8 Authentication credentials invalid",
        ),
        (["EHLO c", "AUTH PLAIN", "*"], "501 5.7.0 Authentication aborted"),
        (["EHLO c", "AUTH LOGIN", "*"], "501 5.7.0 Authentication aborted"),
        (["EHLO c", "AUTH LOGIN", "amFtZXM=", "*"], "501 5.7.0 Authentication aborted"),
        (["EHLO c", "AUTH PLAIN not-base64!"], "501 5.5.2 Cannot decode response"),
        (
            ["EHLO c", "AUTH PLAIN " + base64.b64encode(b"no-nuls").decode()],
            "501 5.5.2 Cannot decode response",
        ),
        (["EHLO c", "AUTH CRAM-MD5"], "504 5.5.4 Unsupported authentication mechanism"),
        (["EHLO c", "AUTH"], "501 5.5.4 Syntax: AUTH mechanism"),
        (["HELO c", "AUTH PLAIN"], "503 5.5.1 Error: send EHLO first"),
        (["AUTH PLAIN"], "503 5.5.1 Error: send EHLO first"),
        (
            ["EHLO c", "MAIL FROM:<a@b.example>", "AUTH PLAIN"],
            "503 5.5.1 Error: MAIL transaction in progress",
        ),
        (
            ["EHLO c", "AUTH PLAIN " + plain("james", "secret"), "AUTH PLAIN"],
            "503 5.5.1 Error: already authenticated",
        ),
    ],
)
def test_auth_error_paths(commands: list[str], reply: str) -> None:
    server = auth_server()
    replies, _ = converse(lines(*commands), server)
    assert replies[-1] == reply
    assert server.state in (ServerState.READY, ServerState.GREETED, ServerState.MAIL)


def test_failed_auth_is_reported() -> None:
    _, events = converse(lines("EHLO c", "AUTH PLAIN " + plain("james", "nope")), auth_server())
    assert events[-1] == AuthResult("PLAIN", "james", False)


def test_auth_required_refuses_mail_with_530_until_authenticated() -> None:
    server = auth_server(auth_required=True)
    replies, _ = converse(
        lines(
            "EHLO c",
            "MAIL FROM:<james@usa.example>",
            "AUTH PLAIN " + plain("james", "secret"),
            "MAIL FROM:<james@usa.example> AUTH=james@usa.example",
        ),
        server,
    )
    assert replies[-3:] == [
        "530 5.7.0 Authentication required",
        "235 2.7.0 Authentication successful",
        "250 2.1.0 Ok",
    ]


# --- pipelining (RFC 2920) -----------------------------------------------------------------------


def test_pipelined_commands_are_answered_in_order() -> None:
    replies, events = converse(
        lines(
            "EHLO c",
            "MAIL FROM:<a@b.example>",
            "RCPT TO:<x@i.example>",
            "RCPT TO:<bad address>",
            "RCPT TO:<y@i.example>",
            "DATA",
            "body",
            ".",
            "RSET",
            "QUIT",
        )
    )
    assert codes(replies) == ["250", "250", "250", "501", "250", "354", "250", "250", "221"]
    kinds = [type(e).__name__ for e in events]
    assert kinds == ["Hello", "MailFrom", "RcptTo", "RcptTo", "MessageReceived", "Reset", "Quit"]


def test_byte_by_byte_gives_the_same_result() -> None:
    data = lines(*RCPT, "DATA", "a", "..b", ".", "QUIT")
    whole = converse(data)
    server = SMTPServer("mx.india.example")
    server.data_to_send()
    out = b""
    events: list[ServerEvent] = []
    for i in range(len(data)):
        server.receive_data(data[i : i + 1])
        while (event := server.next_event()) is not NEED_DATA:
            if event is PAUSED:
                out += server.send(Accept("Q1"))
            else:
                events.append(event)
        out += server.data_to_send()
    assert (out.decode().split("\r\n")[:-1], events) == whole


def test_long_reply_lines_are_cut_to_512_octets() -> None:
    server = SMTPServer("India.com", texts=ReplyTexts.CLASSIC)
    replies, _ = converse(lines("HELO " + "h" * 500), server)
    assert replies[0].startswith("250 Hello hhh")
    assert len(replies[0]) + 2 == 512


# --- security regression: SMTP smuggling ---------------------------------------------------------
# A server that also ended DATA at <LF>.<LF> (or <CR>.<CR>) would see the rest as a second,
# forged message (SMTP smuggling, CVE-2023-51764/51765/51766). RFC 5321 2.3.8 and 4.1.1.4: only
# CRLF.CRLF ends the data.

SMUGGLED = b"MAIL FROM:<admin@victim.example>\r\nRCPT TO:<x@i.example>\r\nDATA\r\nforged\r\n"


@pytest.mark.parametrize(
    "separator",
    [b"\n.\n", b"\r.\r", b"\n.\r\n", b"\r\n.\n", b"\r.\r\n", b"\r\n.\r"],
    ids=["LF.LF", "CR.CR", "LF.CRLF", "CRLF.LF", "CR.CRLF", "CRLF.CR"],
)
def test_smuggling_separator_does_not_end_data(separator: bytes) -> None:
    data = lines(*RCPT, "DATA") + b"real" + separator + SMUGGLED + b".\r\n"
    replies, events = converse(data)
    messages = [e for e in events if isinstance(e, MessageReceived)]
    assert len(messages) == 1
    assert b"admin@victim.example" in messages[0].content
    assert not any(isinstance(e, MailFrom) and "victim" in e.address for e in events)
    assert codes(replies).count("354") == 1


def test_bare_lf_does_not_end_a_command_line_and_the_client_is_told() -> None:
    # RFC 5321 2.3.8: "NOOP<LF>" is not a command line. It is refused with a hint (as Postfix's
    # smtpd_forbid_bare_newline does) instead of waiting for a CRLF that a plain nc never sends;
    # what follows is read as the next line.
    replies, _ = converse(b"NOOP\nQUIT\r\n")
    assert replies == [
        "500 5.5.2 Error: bare <LF> received; end lines with <CR><LF> (nc -C)",
        "221 2.0.0 Bye",
    ]


def test_crlf_dot_crlf_split_across_reads_still_ends_data() -> None:
    server = SMTPServer("mx")
    server.receive_data(lines(*RCPT, "DATA") + b"x\r")
    for piece in (b"\n", b".", b"\r", b"\n"):
        assert server.next_event() is not PAUSED
        server.receive_data(piece)
    while (event := server.next_event()) is not PAUSED:
        assert event is not NEED_DATA


def test_quit_with_an_argument_gets_501_and_the_session_goes_on() -> None:
    # RFC 5321 4.1.1.10: quit = "QUIT" CRLF; an argument is a syntax error (4.2.2: 501).
    server = SMTPServer("mx")
    replies, events = converse(lines("HELO c.example", "QUIT now", "NOOP", "QUIT "), server)
    assert replies == [
        "250 mx",
        "501 5.5.4 Syntax: QUIT",
        "250 2.0.0 Ok",
        "221 2.0.0 Bye",
    ]
    assert [type(event) for event in events] == [Hello, Quit]
    assert server.state is ServerState.CLOSED
