"""The sans-IO SMTP client against scripted server replies: commands out, results in."""

from __future__ import annotations

import base64

import pytest

from mailsim.protocol.smtp import (
    CLIENT_TRANSITIONS,
    NEED_DATA,
    ClientEvent,
    ClientState,
    Closed,
    ConnectionFailed,
    Envelope,
    Idle,
    LocalProtocolError,
    MailParams,
    RcptParams,
    RecipientOutcome,
    RemoteProtocolError,
    Reply,
    SMTPClient,
    TransactionResult,
    canonical_content,
    dot_stuff,
    split_lines,
)

EHLO_ALL = (
    b"250-mx.india.example\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250-8BITMIME\r\n"
    b"250-AUTH PLAIN LOGIN\r\n250-ENHANCEDSTATUSCODES\r\n250 DSN\r\n"
)
EHLO_PLAIN = b"250-mx.india.example\r\n250 ENHANCEDSTATUSCODES\r\n"
OK = b"250 2.0.0 Ok\r\n"


def feed(client: SMTPClient, data: bytes) -> list[ClientEvent]:
    client.receive_data(data)
    events: list[ClientEvent] = []
    while (event := client.next_event()) is not NEED_DATA:
        events.append(event)
    return events


def connect(client: SMTPClient, ehlo: bytes = EHLO_PLAIN) -> list[ClientEvent]:
    """Greet, answer EHLO; return the events."""
    events = feed(client, b"220 mx.india.example ESMTP\r\n")
    assert client.data_to_send() == b"EHLO c.usa.example\r\n"
    return events + feed(client, ehlo)


def env(*rcpts: str, content: bytes = b"Subject: hi\n\nhello\n", **kw: object) -> Envelope:
    return Envelope("james@usa.example", rcpts or ("steve@india.example",), content, **kw)  # type: ignore[arg-type]


def sent(client: SMTPClient) -> list[str]:
    return split_lines(client.data_to_send())


# --- the session ---------------------------------------------------------------------------------


def test_client_waits_for_greeting_then_says_ehlo() -> None:
    client = SMTPClient("c.usa.example")
    assert client.next_event() is NEED_DATA
    assert client.data_to_send() == b""
    assert feed(client, b"220 mx ESMTP\r\n") == []
    assert client.data_to_send() == b"EHLO c.usa.example\r\n"
    assert client.state is ClientState.EHLO_SENT


def test_extensions_are_recorded() -> None:
    client = SMTPClient("c.usa.example")
    assert connect(client, EHLO_ALL) == [Idle()]
    assert client.extensions == {
        "PIPELINING": "",
        "SIZE": "1000",
        "8BITMIME": "",
        "AUTH": "PLAIN LOGIN",
        "ENHANCEDSTATUSCODES": "",
        "DSN": "",
    }
    assert client.max_size == 1000
    assert client.pipelining


@pytest.mark.parametrize("code", [b"500", b"501", b"502", b"504"])
def test_ehlo_refused_falls_back_to_helo(code: bytes) -> None:
    client = SMTPClient("c.usa.example")
    feed(client, b"220 mx\r\n")
    client.data_to_send()
    assert feed(client, code + b" 5.5.1 Unknown command\r\n") == []
    assert client.data_to_send() == b"HELO c.usa.example\r\n"
    assert feed(client, b"250 mx\r\n") == [Idle()]
    assert client.extensions == {}


def test_helo_refused_fails_the_connection_and_quits() -> None:
    client = SMTPClient("c.usa.example")
    client.send_message(env())
    feed(client, b"220 mx\r\n")
    feed(client, b"502 no\r\n")
    client.data_to_send()
    events = feed(client, b"550 go away\r\n")
    assert events == [ConnectionFailed(Reply(550, ("go away",)), (env(),))]
    assert client.data_to_send() == b"QUIT\r\n"
    assert feed(client, b"221 bye\r\n") == [Closed()]


@pytest.mark.parametrize("greeting", [b"554 5.3.2 No SMTP service here\r\n", b"421 4.3.2 busy\r\n"])
def test_bad_greeting_hands_back_every_queued_envelope(greeting: bytes) -> None:
    client = SMTPClient("c.usa.example")
    client.send_message(env("a@i.example"))
    client.send_message(env("b@i.example"))
    events = feed(client, greeting)
    failed = events[0]
    assert isinstance(failed, ConnectionFailed)
    assert failed.reply.code == int(greeting[:3])
    assert failed.unsent == (env("a@i.example"), env("b@i.example"))
    if greeting.startswith(b"421"):
        # RFC 5321 3.8: the server is closing; no QUIT, the session is over.
        assert events[1:] == [Closed()]
        assert client.data_to_send() == b""
        assert client.state is ClientState.CLOSED
    else:
        assert client.data_to_send() == b"QUIT\r\n"
        assert feed(client, b"221 bye\r\n") == [Closed()]


def test_ehlo_421_closes_without_quit() -> None:
    client = SMTPClient("c.usa.example")
    feed(client, b"220 mx\r\n")
    client.data_to_send()
    events = feed(client, b"421 4.7.0 mx too busy\r\n")
    assert events == [ConnectionFailed(Reply(421, ("4.7.0 mx too busy",)), ()), Closed()]
    assert client.data_to_send() == b""


def test_quit_when_idle_sends_quit_and_closes_on_221() -> None:
    client = SMTPClient("c.usa.example")
    connect(client)
    client.quit()
    assert client.data_to_send() == b"QUIT\r\n"
    assert feed(client, b"221 2.0.0 Bye\r\n") == [Closed()]
    assert client.state is ClientState.CLOSED


def test_quit_before_greeting_waits_for_the_session() -> None:
    client = SMTPClient("c.usa.example")
    client.quit()
    feed(client, b"220 mx\r\n")
    assert client.data_to_send() == b"EHLO c.usa.example\r\n"
    assert feed(client, EHLO_PLAIN) == []
    assert client.data_to_send() == b"QUIT\r\n"


def test_send_message_after_quit_is_refused_without_harm() -> None:
    client = SMTPClient("c.usa.example")
    connect(client)
    client.quit()
    with pytest.raises(LocalProtocolError):
        client.send_message(env())
    assert client.state is ClientState.QUIT_SENT


def test_connection_lost_after_quit_still_closes() -> None:
    client = SMTPClient("c.usa.example")
    connect(client)
    client.quit()
    assert feed(client, b"") == [Closed()]


# --- one transaction, without pipelining ---------------------------------------------------------


def test_one_message_step_by_step() -> None:
    client = SMTPClient("c.usa.example")
    connect(client)
    envelope = env("steve@india.example", "ann@india.example")
    client.send_message(envelope)
    assert sent(client) == ["MAIL FROM:<james@usa.example>"]
    feed(client, b"250 2.1.0 Ok\r\n")
    assert sent(client) == ["RCPT TO:<steve@india.example>"]
    feed(client, b"250 2.1.5 Ok\r\n")
    assert sent(client) == ["RCPT TO:<ann@india.example>"]
    feed(client, b"550 5.1.1 No such user\r\n")
    assert sent(client) == ["DATA"]
    feed(client, b"354 go ahead\r\n")
    assert client.data_to_send() == b"Subject: hi\r\n\r\nhello\r\n.\r\n"
    events = feed(client, b"250 2.0.0 Ok: queued as Q1\r\n")
    queued = Reply(250, ("2.0.0 Ok: queued as Q1",))
    assert events == [
        TransactionResult(
            envelope,
            (
                RecipientOutcome("steve@india.example", "accepted", queued),
                RecipientOutcome(
                    "ann@india.example", "permanent", Reply(550, ("5.1.1 No such user",))
                ),
            ),
            queued,
            False,
        ),
        Idle(),
    ]


def test_no_accepted_recipient_means_rset_not_data() -> None:
    client = SMTPClient("c.usa.example")
    connect(client)
    client.send_message(env())
    feed(client, OK)
    client.data_to_send()
    events = feed(client, b"450 4.2.0 Mailbox busy\r\n")
    assert sent(client) == ["RSET"]
    result = events[0]
    assert isinstance(result, TransactionResult)
    assert result.outcomes[0].status == "temporary"
    assert result.data_reply is None
    assert feed(client, OK) == [Idle()]


def test_mail_refused_decides_every_recipient() -> None:
    client = SMTPClient("c.usa.example")
    connect(client)
    client.send_message(env("a@i.example", "b@i.example"))
    client.data_to_send()
    events = feed(client, b"553 5.7.1 Sender refused\r\n")
    assert sent(client) == ["RSET"]
    result = events[0]
    assert isinstance(result, TransactionResult)
    assert [o.status for o in result.outcomes] == ["permanent", "permanent"]
    assert result.outcomes[0].reply.code == 553


def test_data_refused_decides_the_accepted_recipients_and_rsets() -> None:
    client = SMTPClient("c.usa.example")
    connect(client)
    client.send_message(env())
    feed(client, OK)
    feed(client, OK)
    client.data_to_send()
    events = feed(client, b"451 4.3.0 Try later\r\n")
    assert sent(client) == ["RSET"]
    assert isinstance(events[0], TransactionResult)
    assert events[0].outcomes[0] == RecipientOutcome(
        "steve@india.example", "temporary", Reply(451, ("4.3.0 Try later",))
    )


@pytest.mark.parametrize(
    ("final", "status"),
    [
        (b"250 ok", "accepted"),
        (b"299 odd but positive", "accepted"),
        (b"452 4.3.1 Insufficient storage", "temporary"),
        (b"471 unknown temporary", "temporary"),
        (b"554 5.6.0 Rejected", "permanent"),
        (b"599 unknown permanent", "permanent"),
    ],
)
def test_final_reply_judged_by_first_digit(final: bytes, status: str) -> None:
    client = SMTPClient("c.usa.example")
    connect(client)
    client.send_message(env())
    for reply in (OK, OK, b"354 go\r\n"):
        feed(client, reply)
    events = feed(client, final + b"\r\n")
    assert isinstance(events[0], TransactionResult)
    assert events[0].outcomes[0].status == status


def test_several_messages_over_one_connection() -> None:
    client = SMTPClient("c.usa.example")
    for i in range(3):
        client.send_message(env(f"u{i}@india.example"))
    client.quit()
    connect(client)
    results = []
    for _ in range(3):
        assert sent(client)[0] == "MAIL FROM:<james@usa.example>"
        for reply in (OK, OK, b"354 go\r\n"):
            feed(client, reply)
            client.data_to_send()
        results += feed(client, b"250 queued\r\n")
    assert [r.envelope.rcpt_to[0] for r in results if isinstance(r, TransactionResult)] == [
        "u0@india.example",
        "u1@india.example",
        "u2@india.example",
    ]
    assert sent(client) == ["QUIT"]


def test_idle_then_more_mail_starts_at_once() -> None:
    client = SMTPClient("c.usa.example")
    assert connect(client) == [Idle()]
    client.send_message(env())
    assert sent(client) == ["MAIL FROM:<james@usa.example>"]
    assert client.state is ClientState.MAIL_SENT


# --- pipelining (RFC 2920) -----------------------------------------------------------------------


def test_pipelining_sends_mail_rcpts_and_data_in_one_write() -> None:
    client = SMTPClient("c.usa.example")
    connect(client, EHLO_ALL)
    client.send_message(env("a@i.example", "b@i.example"))
    assert sent(client) == [
        "MAIL FROM:<james@usa.example> SIZE=22",
        "RCPT TO:<a@i.example>",
        "RCPT TO:<b@i.example>",
        "DATA",
    ]
    events = feed(client, b"250 ok\r\n250 ok\r\n550 no\r\n354 go\r\n")
    assert events == []
    assert client.data_to_send().endswith(b"hello\r\n.\r\n")
    events = feed(client, b"250 queued\r\n")
    assert isinstance(events[0], TransactionResult)
    assert [o.status for o in events[0].outcomes] == ["accepted", "permanent"]


def test_pipelining_not_used_when_disabled() -> None:
    client = SMTPClient("c.usa.example", pipelining=False)
    connect(client, EHLO_ALL)
    client.send_message(env())
    assert len(sent(client)) == 1


def test_pipelined_mail_refused_consumes_every_reply_then_rsets() -> None:
    client = SMTPClient("c.usa.example")
    connect(client, EHLO_ALL)
    client.send_message(env("a@i.example", "b@i.example"))
    client.data_to_send()
    events = feed(client, b"452 4.3.1 full\r\n503 5.5.1 need MAIL\r\n503 5.5.1 need MAIL\r\n")
    assert events == []
    events = feed(client, b"503 5.5.1 need RCPT\r\n")
    assert sent(client) == ["RSET"]
    assert isinstance(events[0], TransactionResult)
    assert [o.reply.code for o in events[0].outcomes] == [452, 452]
    assert [o.status for o in events[0].outcomes] == ["temporary", "temporary"]


def test_pipelined_data_with_no_recipients_accepted_but_354_sends_a_lone_dot() -> None:
    client = SMTPClient("c.usa.example")
    connect(client, EHLO_ALL)
    client.send_message(env())
    client.data_to_send()
    feed(client, b"250 ok\r\n550 no\r\n354 go\r\n")
    assert client.data_to_send() == b".\r\n"
    events = feed(client, b"554 no valid recipients\r\n")
    assert isinstance(events[0], TransactionResult)
    assert events[0].outcomes[0].reply == Reply(550, ("no",))
    assert events[0].data_reply is None


# --- content -------------------------------------------------------------------------------------


def test_content_is_crlf_normalised_and_dot_stuffed() -> None:
    client = SMTPClient("c.usa.example")
    connect(client)
    client.send_message(env(content=b".top\nmid\r\n..two\r.\nend"))
    for reply in (OK, OK, b"354 go\r\n"):
        client.data_to_send()
        feed(client, reply)
    assert client.data_to_send() == b"..top\r\nmid\r\n...two\r\n..\r\nend\r\n.\r\n"


@pytest.mark.parametrize(
    ("content", "canonical"),
    [
        (b"", b""),
        (b"a", b"a\r\n"),
        (b"a\r\n", b"a\r\n"),
        (b"a\nb\n", b"a\r\nb\r\n"),
        (b"a\rb", b"a\r\nb\r\n"),
        (b"a\r\n\nb", b"a\r\n\r\nb\r\n"),
    ],
)
def test_canonical_content(content: bytes, canonical: bytes) -> None:
    assert canonical_content(content) == canonical


def test_dot_stuff_ends_with_the_terminator() -> None:
    assert dot_stuff(b"") == b".\r\n"
    assert dot_stuff(b".\r\nx\r\n") == b"..\r\nx\r\n.\r\n"


def test_size_is_declared_when_offered() -> None:
    # "Subject: hi" is 11 characters + CRLF = 13; blank line 2; "hello" + CRLF = 7; total 22.
    client = SMTPClient("c.usa.example", pipelining=False)
    connect(client, EHLO_ALL)
    client.send_message(env(content=b"Subject: hi\n\nhello"))
    assert sent(client) == ["MAIL FROM:<james@usa.example> SIZE=22"]


def test_message_over_the_servers_size_fails_locally() -> None:
    client = SMTPClient("c.usa.example")
    connect(client, EHLO_ALL)  # SIZE 1000
    events = []
    client.send_message(env(content=b"x" * 1000))  # 1002 octets with the CRLF
    events = feed(client, b"")
    assert isinstance(events[0], TransactionResult)
    assert events[0].outcomes[0].reply.code == 552
    assert events[0].outcomes[0].status == "permanent"


def test_eight_bit_content_without_8bitmime_fails_locally_and_sends_nothing() -> None:
    client = SMTPClient("c.usa.example")
    connect(client)  # no 8BITMIME
    client.send_message(env(content="Grüße\n".encode()))
    assert client.data_to_send() == b""
    events = []
    while (event := client.next_event()) is not NEED_DATA:
        events.append(event)
    result = events[0]
    assert isinstance(result, TransactionResult)
    assert result.outcomes[0].status == "permanent"
    assert result.outcomes[0].reply.code == 554
    assert result.outcomes[0].reply.status == "5.6.3"
    assert events[1] == Idle()


def test_eight_bit_content_with_8bitmime_declares_body() -> None:
    client = SMTPClient("c.usa.example", pipelining=False)
    connect(client, EHLO_ALL)
    client.send_message(env(content="Grüße\n".encode()))
    assert sent(client) == ["MAIL FROM:<james@usa.example> SIZE=9 BODY=8BITMIME"]


def test_dsn_params_are_sent_only_when_offered() -> None:
    envelope = env(
        "a@i.example",
        mail_params=MailParams(ret="HDRS", envid="ID1"),
        rcpt_params=(RcptParams(notify=("FAILURE",), orcpt="rfc822;a@i.example"),),
    )
    with_dsn = SMTPClient("c.usa.example")
    connect(with_dsn, EHLO_ALL)
    with_dsn.send_message(envelope)
    assert sent(with_dsn)[:2] == [
        "MAIL FROM:<james@usa.example> SIZE=22 RET=HDRS ENVID=ID1",
        "RCPT TO:<a@i.example> NOTIFY=FAILURE ORCPT=rfc822;a@i.example",
    ]
    without = SMTPClient("c.usa.example")
    connect(without)
    without.send_message(envelope)
    assert sent(without) == ["MAIL FROM:<james@usa.example>"]


# --- AUTH ----------------------------------------------------------------------------------------


def test_auth_plain_when_configured_and_offered() -> None:
    client = SMTPClient("c.usa.example", auth=("james", "secret"))
    client.send_message(env())
    connect(client, EHLO_ALL)
    token = base64.b64encode(b"\0james\0secret").decode()
    assert sent(client) == [f"AUTH PLAIN {token}"]
    feed(client, b"235 2.7.0 ok\r\n")
    assert sent(client)[0].startswith("MAIL FROM:")


def test_auth_login_when_only_login_is_offered() -> None:
    client = SMTPClient("c.usa.example", auth=("james", "secret"))
    connect(client, b"250-mx\r\n250 AUTH LOGIN\r\n")
    assert sent(client) == ["AUTH LOGIN"]
    feed(client, b"334 VXNlcm5hbWU6\r\n")
    assert sent(client) == [base64.b64encode(b"james").decode()]
    feed(client, b"334 UGFzc3dvcmQ6\r\n")
    assert sent(client) == [base64.b64encode(b"secret").decode()]
    assert feed(client, b"235 ok\r\n") == [Idle()]


def test_auth_failure_fails_every_queued_envelope() -> None:
    client = SMTPClient("c.usa.example", auth=("james", "wrong"))
    client.send_message(env("a@i.example"))
    client.send_message(env("b@i.example", "c@i.example"))
    connect(client, EHLO_ALL)
    client.data_to_send()
    events = feed(client, b"535 5.7.8 Authentication credentials invalid\r\n")
    assert [type(e) for e in events] == [TransactionResult, TransactionResult]
    for event in events:
        assert isinstance(event, TransactionResult)
        assert all(o.status == "permanent" and o.reply.code == 535 for o in event.outcomes)
    assert sent(client) == ["QUIT"]


def test_auth_configured_but_not_offered_carries_on() -> None:
    client = SMTPClient("c.usa.example", auth=("james", "secret"))
    client.send_message(env())
    connect(client, EHLO_PLAIN)
    assert sent(client) == ["MAIL FROM:<james@usa.example>"]


# --- connection loss and protocol errors ---------------------------------------------------------


def test_connection_lost_before_the_dot_is_temporary_with_no_duplicate_risk() -> None:
    client = SMTPClient("c.usa.example")
    connect(client)
    client.send_message(env())
    client.send_message(env("later@i.example"))
    feed(client, OK)
    events = feed(client, b"")
    result, failed, closed = events
    assert isinstance(result, TransactionResult)
    assert result.outcomes[0] == RecipientOutcome(
        "steve@india.example", "temporary", Reply(451, ("4.4.2 Connection lost",))
    )
    assert not result.dot_sent_no_reply
    assert failed == ConnectionFailed(
        Reply(451, ("4.4.2 Connection lost",)), (env("later@i.example"),)
    )
    assert closed == Closed()


def test_connection_lost_after_the_dot_flags_a_possible_duplicate() -> None:
    # RFC 1047: the server may have the message; the client cannot know.
    client = SMTPClient("c.usa.example")
    connect(client)
    client.send_message(env())
    for reply in (OK, OK, b"354 go\r\n"):
        feed(client, reply)
    events = feed(client, b"")
    result = events[0]
    assert isinstance(result, TransactionResult)
    assert result.dot_sent_no_reply
    assert result.outcomes[0].status == "temporary"


def test_421_after_the_dot_is_its_reply() -> None:
    client = SMTPClient("c.usa.example")
    connect(client)
    client.send_message(env())
    for reply in (OK, OK, b"354 go\r\n"):
        feed(client, reply)
    client.data_to_send()
    events = feed(client, b"421 4.3.0 shutting down\r\n")
    result = events[0]
    assert isinstance(result, TransactionResult)
    assert not result.dot_sent_no_reply
    assert result.data_reply == Reply(421, ("4.3.0 shutting down",))
    assert result.outcomes[0].status == "temporary"
    assert isinstance(events[1], ConnectionFailed)
    assert events[2] == Closed()
    assert client.data_to_send() == b""


@pytest.mark.parametrize(
    "garbage",
    [
        b"hello there\r\n",
        b"25\r\n",
        b"650 six hundred\r\n",
        b"250x\r\n",
        b"250-a\r\n251 b\r\n",
        b"250 a\nb\r\n",
        b"2" * 5000,
    ],
)
def test_malformed_reply_raises_then_settles_everything(garbage: bytes) -> None:
    client = SMTPClient("c.usa.example")
    connect(client)
    client.send_message(env())
    client.send_message(env("queued@i.example"))
    client.receive_data(garbage)
    with pytest.raises(RemoteProtocolError):
        client.next_event()
    assert client.state is ClientState.ERROR
    events = []
    while (event := client.next_event()) is not NEED_DATA:
        events.append(event)
    assert isinstance(events[0], TransactionResult)
    assert events[0].outcomes[0].status == "temporary"
    assert isinstance(events[1], ConnectionFailed)
    assert events[1].unsent == (env("queued@i.example"),)
    assert events[2] == Closed()


def test_unsolicited_reply_when_idle_is_a_protocol_error() -> None:
    client = SMTPClient("c.usa.example")
    connect(client)
    client.receive_data(b"250 surprise\r\n")
    with pytest.raises(RemoteProtocolError):
        client.next_event()


def test_421_when_idle_closes() -> None:
    client = SMTPClient("c.usa.example")
    connect(client)
    events = feed(client, b"421 4.4.2 mx Error: timeout exceeded\r\n")
    assert isinstance(events[0], ConnectionFailed)
    assert events[-1] == Closed()


def test_data_after_eof_is_a_local_error() -> None:
    client = SMTPClient("c.usa.example")
    client.receive_data(b"")
    with pytest.raises(LocalProtocolError):
        client.receive_data(b"220 late\r\n")


# --- envelopes, tables, helpers ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mail_from": "a b@c"}, "Envelope.mail_from"),
        ({"rcpt_to": ()}, "at least one recipient"),
        ({"rcpt_to": "steve@india.example"}, "not one string"),
        ({"rcpt_to": ("ok@i.example", "<bad>")}, r"Envelope.rcpt_to\[1\]"),
        ({"rcpt_params": (RcptParams(), RcptParams())}, "one per recipient"),
        ({"mail_params": MailParams(envid="a b")}, "mail_params.envid"),
        ({"content": "text"}, "must be bytes"),
    ],
)
def test_bad_envelopes_are_refused_with_a_clear_message(
    kwargs: dict[str, object], message: str
) -> None:
    fields: dict[str, object] = {
        "mail_from": "james@usa.example",
        "rcpt_to": ("steve@india.example",),
        "content": b"x",
    }
    fields.update(kwargs)
    with pytest.raises(ValueError, match=message):
        Envelope(**fields)  # type: ignore[arg-type]


def test_envelope_accepts_a_list_of_recipients_and_the_null_sender() -> None:
    envelope = Envelope("", ["postmaster@india.example"], b"x")  # type: ignore[arg-type]
    assert envelope.rcpt_to == ("postmaster@india.example",)


def test_every_client_transition_names_a_real_state() -> None:
    reachable = {t for row in CLIENT_TRANSITIONS.values() for t in row.values()}
    assert reachable == set(ClientState) - {ClientState.AWAIT_GREETING}


def test_split_lines_for_transcripts() -> None:
    assert split_lines(b"250-a\r\n250 b\r\n") == ["250-a", "250 b"]
    assert split_lines(b"x\ny\r\npartial") == ["x\ny", "partial"]
    assert split_lines(b"") == []
