"""The sans-IO POP3 client: scripted server bytes in, commands and events out."""

from __future__ import annotations

import pytest

from mailsim.protocol._common import LocalProtocolError, ProtocolError, RemoteProtocolError
from mailsim.protocol.pop3 import (
    CLIENT_TRANSITIONS,
    NEED_DATA,
    PAUSED,
    ClientEvent,
    ClientState,
    Command,
    ConnectionClosed,
    ConnectionLost,
    Greeting,
    LoginFailed,
    MaildropStatus,
    MessageRetrieved,
    POP3Client,
    Reply,
    RetrieveFailed,
    SessionDone,
)

GREETING = b"+OK usa.com POP3 ready\r\n"
RFC_TIMESTAMP = "<1896.697170952@dbc.mtview.ca.us>"
RFC_DIGEST = "c4c9334bac560ecc979e58001b3e22fb"  # MD5(timestamp + "tanstaaf"), RFC 1939 7
MSG1 = b"Subject: one\r\n\r\nhello\r\n"
MSG2 = b"Subject: two\r\n\r\n.dot\r\n.\r\nbye\r\n"
MSG2_STUFFED = b"Subject: two\r\n\r\n..dot\r\n..\r\nbye\r\n.\r\n"


def events_of(client: POP3Client) -> list[ClientEvent]:
    """Every event until the client needs data or waits for the application."""
    events: list[ClientEvent] = []
    while True:
        event = client.next_event()
        if event is NEED_DATA or event is PAUSED:
            return events
        events.append(event)
        if isinstance(event, (ConnectionClosed, ConnectionLost)):
            return events


def step(client: POP3Client, server_bytes: bytes) -> tuple[bytes, list[ClientEvent]]:
    """Give the client what the server said; return what it sends back, and its events."""
    client.receive_data(server_bytes)
    events = events_of(client)
    return client.data_to_send(), events


def script(client: POP3Client, dialogue: list[tuple[bytes, bytes]]) -> list[ClientEvent]:
    """Play (server says, client must answer) pairs; return all events."""
    events: list[ClientEvent] = []
    for server_says, client_answers in dialogue:
        sent, got = step(client, server_says)
        assert sent == client_answers, f"after {server_says!r}"
        events += got
    return events


LOGIN = [
    (GREETING, b"USER steve\r\n"),
    (b"+OK send PASS\r\n", b"PASS secret\r\n"),
    (b"+OK steve's maildrop has 2 messages (84 octets)\r\n", b"STAT\r\n"),
]


def test_a_full_session_retrieves_and_deletes_every_message() -> None:
    client = POP3Client("steve", "secret")
    events = script(
        client,
        [
            *LOGIN,
            (b"+OK 2 55\r\n", b"UIDL\r\n"),
            (b"+OK\r\n1 m1\r\n2 m2\r\n.\r\n", b"RETR 1\r\n"),
            (b"+OK 23 octets\r\n" + MSG1 + b".\r\n", b"DELE 1\r\n"),
            (b"+OK message 1 deleted\r\n", b"RETR 2\r\n"),
            (b"+OK 32 octets\r\n" + MSG2_STUFFED, b"DELE 2\r\n"),
            (b"+OK message 2 deleted\r\n", b"QUIT\r\n"),
            (b"+OK bye\r\n", b""),
        ],
    )
    assert events == [
        Greeting("usa.com POP3 ready", None),
        MaildropStatus(2, 55),
        MessageRetrieved(1, "m1", MSG1),
        MessageRetrieved(2, "m2", MSG2),  # un-stuffed: ".dot" and "." are back
        SessionDone(retrieved=2, deleted=2),
    ]
    assert client.state is ClientState.DONE
    assert step(client, b"") == (b"", [ConnectionClosed("peer closed")])
    assert client.state is ClientState.CLOSED
    assert client.next_event() == ConnectionClosed("peer closed")


def test_without_delete_after_retrieve_nothing_is_marked() -> None:
    client = POP3Client("steve", "secret", delete_after_retrieve=False)
    events = script(
        client,
        [
            *LOGIN,
            (b"+OK 2 55\r\n", b"UIDL\r\n"),
            (b"+OK\r\n1 m1\r\n2 m2\r\n.\r\n", b"RETR 1\r\n"),
            (b"+OK\r\n" + MSG1 + b".\r\n", b"RETR 2\r\n"),
            (b"+OK\r\n" + MSG2_STUFFED, b"QUIT\r\n"),
            (b"+OK bye\r\n", b""),
        ],
    )
    assert events[-1] == SessionDone(retrieved=2, deleted=0)


def test_an_empty_maildrop_goes_straight_to_quit() -> None:
    client = POP3Client("steve", "secret")
    events = script(client, [*LOGIN, (b"+OK 0 0\r\n", b"QUIT\r\n"), (b"+OK\r\n", b"")])
    assert events[-2:] == [MaildropStatus(0, 0), SessionDone(0, 0)]


def test_known_uids_are_not_retrieved_again() -> None:
    client = POP3Client("steve", "secret", known_uids={"m1"}, delete_after_retrieve=False)
    events = script(
        client,
        [
            *LOGIN,
            (b"+OK 2 55\r\n", b"UIDL\r\n"),
            (b"+OK\r\n1 m1\r\n2 m2\r\n.\r\n", b"RETR 2\r\n"),
            (b"+OK\r\n" + MSG2_STUFFED, b"QUIT\r\n"),
        ],
    )
    assert [e.uid for e in events if isinstance(e, MessageRetrieved)] == ["m2"]


def test_when_every_uid_is_known_the_client_just_quits() -> None:
    client = POP3Client("steve", "secret", known_uids=["m1", "m2"])
    script(
        client,
        [*LOGIN, (b"+OK 2 55\r\n", b"UIDL\r\n"), (b"+OK\r\n1 m1\r\n2 m2\r\n.\r\n", b"QUIT\r\n")],
    )


def test_uidl_refused_falls_back_to_list_without_uids() -> None:
    client = POP3Client("steve", "secret", delete_after_retrieve=False)
    events = script(
        client,
        [
            *LOGIN,
            (b"+OK 2 55\r\n", b"UIDL\r\n"),
            (b"-ERR unknown command\r\n", b"LIST\r\n"),
            (b"+OK 2 messages\r\n1 23\r\n2 32\r\n.\r\n", b"RETR 1\r\n"),
            (b"+OK\r\n" + MSG1 + b".\r\n", b"RETR 2\r\n"),
        ],
    )
    assert [(e.number, e.uid) for e in events if isinstance(e, MessageRetrieved)] == [(1, None)]


def test_uidl_and_list_refused_still_retrieves_one_to_stat_count() -> None:
    client = POP3Client("steve", "secret", delete_after_retrieve=False)
    script(
        client,
        [
            *LOGIN,
            (b"+OK 2 55\r\n", b"UIDL\r\n"),
            (b"-ERR no\r\n", b"LIST\r\n"),
            (b"-ERR no\r\n", b"RETR 1\r\n"),
            (b"+OK\r\n" + MSG1 + b".\r\n", b"RETR 2\r\n"),
            (b"+OK\r\n" + MSG1 + b".\r\n", b"QUIT\r\n"),
        ],
    )


def test_retr_refused_is_reported_and_the_session_goes_on() -> None:
    client = POP3Client("steve", "secret")
    events = script(
        client,
        [
            *LOGIN,
            (b"+OK 2 55\r\n", b"UIDL\r\n"),
            (b"+OK\r\n1 m1\r\n2 m2\r\n.\r\n", b"RETR 1\r\n"),
            (b"-ERR cannot read message\r\n", b"RETR 2\r\n"),
            (b"+OK\r\n" + MSG2_STUFFED, b"DELE 2\r\n"),
            (b"-ERR no\r\n", b"QUIT\r\n"),  # a refused DELE is not counted
            (b"+OK\r\n", b""),
        ],
    )
    assert RetrieveFailed(1, "m1", "-ERR cannot read message") in events
    assert events[-1] == SessionDone(retrieved=1, deleted=0)


def test_quit_refused_means_nothing_is_known_deleted() -> None:
    client = POP3Client("steve", "secret")
    events = script(
        client,
        [
            *LOGIN,
            (b"+OK 1 23\r\n", b"UIDL\r\n"),
            (b"+OK\r\n1 m1\r\n.\r\n", b"RETR 1\r\n"),
            (b"+OK\r\n" + MSG1 + b".\r\n", b"DELE 1\r\n"),
            (b"+OK\r\n", b"QUIT\r\n"),
            (b"-ERR some deleted messages not removed\r\n", b""),
        ],
    )
    assert events[-1] == SessionDone(retrieved=1, deleted=0)
    assert client.state is ClientState.DONE


# --- login failures ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dialogue", "failed"),
    [
        (
            [(GREETING, b"USER steve\r\n"), (b"-ERR no such user\r\n", b"QUIT\r\n")],
            LoginFailed("-ERR no such user", "USER"),
        ),
        (
            [
                (GREETING, b"USER steve\r\n"),
                (b"+OK\r\n", b"PASS secret\r\n"),
                (b"-ERR [AUTH] invalid user name or password\r\n", b"QUIT\r\n"),
            ],
            LoginFailed("-ERR [AUTH] invalid user name or password", "PASS"),
        ),
        (
            [
                (GREETING, b"USER steve\r\n"),
                (b"+OK\r\n", b"PASS secret\r\n"),
                (b"-ERR [IN-USE] maildrop already locked\r\n", b"QUIT\r\n"),
            ],
            LoginFailed("-ERR [IN-USE] maildrop already locked", "PASS"),
        ),
        ([(b"-ERR go away\r\n", b"")], LoginFailed("-ERR go away", "greeting")),
    ],
)
def test_a_refused_login_is_reported_then_the_client_quits(
    dialogue: list[tuple[bytes, bytes]], failed: LoginFailed
) -> None:
    client = POP3Client("steve", "secret")
    events = script(client, dialogue)
    assert failed in events
    assert not client.logged_in
    if client.state is ClientState.QUIT:
        assert step(client, b"+OK bye\r\n") == (b"", [])  # no SessionDone without a login
    assert client.state is ClientState.DONE


def test_apop_sends_the_digest_of_the_timestamp() -> None:
    client = POP3Client("mrose", "tanstaaf", use_apop=True)
    events = script(
        client,
        [
            (
                f"+OK POP3 server ready {RFC_TIMESTAMP}\r\n".encode(),
                f"APOP mrose {RFC_DIGEST}\r\n".encode(),
            ),
            (b"+OK mrose's maildrop has 0 messages\r\n", b"STAT\r\n"),
        ],
    )
    assert events == [Greeting(f"POP3 server ready {RFC_TIMESTAMP}", RFC_TIMESTAMP)]
    assert client.logged_in


def test_apop_refused_is_a_login_failure() -> None:
    client = POP3Client("mrose", "tanstaaf", use_apop=True)
    events = script(
        client,
        [
            (f"+OK {RFC_TIMESTAMP}\r\n".encode(), f"APOP mrose {RFC_DIGEST}\r\n".encode()),
            (b"-ERR [AUTH] no\r\n", b"QUIT\r\n"),
        ],
    )
    assert events[-1] == LoginFailed("-ERR [AUTH] no", "APOP")


def test_apop_without_a_timestamp_never_falls_back_to_a_clear_password() -> None:
    client = POP3Client("mrose", "tanstaaf", use_apop=True)
    sent, events = step(client, GREETING)
    assert sent == b"QUIT\r\n"
    assert events[-1] == LoginFailed("+OK usa.com POP3 ready", "APOP")


@pytest.mark.parametrize(
    ("user", "password"),
    [
        ("", "pw"),
        (" ann", "pw"),
        ("a\tb", "pw"),
        ("x" * 65, "pw"),
        ("ann", ""),
        ("ann", "a\r\nDELE 1"),
        ("ann\r\nDELE 1", "pw"),
    ],
)
def test_credentials_that_cannot_be_sent_are_refused(user: str, password: str) -> None:
    with pytest.raises(LocalProtocolError):
        POP3Client(user, password)


def test_a_name_with_spaces_goes_whole_on_the_user_line_but_never_in_apop() -> None:
    # The characters of "john smith"@usa.com; APOP separates name and digest by a space.
    client = POP3Client("john smith", "pw")
    sent, _ = step(client, GREETING)
    assert sent == b"USER john smith\r\n"
    with pytest.raises(LocalProtocolError):
        POP3Client("john smith", "pw", use_apop=True)
    with pytest.raises(LocalProtocolError):
        POP3Client("x" * 41, "pw", use_apop=True)


# --- connection loss and hostile servers ----------------------------------------------------------


def test_connection_lost_in_the_middle_of_a_message() -> None:
    client = POP3Client("steve", "secret")
    script(
        client,
        [*LOGIN, (b"+OK 1 23\r\n", b"UIDL\r\n"), (b"+OK\r\n1 m1\r\n.\r\n", b"RETR 1\r\n")],
    )
    _, events = step(client, b"+OK\r\nSubject: one\r\n")
    assert events == []
    _, events = step(client, b"")
    assert events == [ConnectionLost("RETR")]
    assert client.state is ClientState.CLOSED
    assert client.next_event() == ConnectionLost("RETR")


def test_connection_lost_before_the_greeting() -> None:
    client = POP3Client("steve", "secret")
    assert step(client, b"") == (b"", [ConnectionLost("GREETING")])


@pytest.mark.parametrize(
    ("state_dialogue", "bad"),
    [
        ([], b"HELLO\r\n"),  # not +OK/-ERR
        ([], b"+OKAY\r\n"),
        (LOGIN, b"+OK two 55\r\n"),  # STAT must be numbers
        (LOGIN, b"+OK\r\n"),
        ([*LOGIN, (b"+OK 1 2\r\n", b"UIDL\r\n")], b"+OK\r\n1\r\n.\r\n"),  # UIDL line lacks the uid
        ([*LOGIN, (b"+OK 1 2\r\n", b"UIDL\r\n")], b"+OK\r\nx m1\r\n.\r\n"),
        ([*LOGIN, (b"+OK 1 2\r\n", b"UIDL\r\n")], b"+OK\r\n" + b"x" * 70_000 + b"\r\n"),
    ],
)
def test_a_server_breaking_the_protocol_raises_remote_protocol_error(
    state_dialogue: list[tuple[bytes, bytes]], bad: bytes
) -> None:
    client = POP3Client("steve", "secret")
    script(client, state_dialogue)
    client.receive_data(bad)
    with pytest.raises(RemoteProtocolError):
        events_of(client)
    assert client.state is ClientState.ERROR
    with pytest.raises(ProtocolError, match="ERROR"):
        client.next_event()


def test_bare_lf_inside_a_message_does_not_end_it() -> None:
    client = POP3Client("steve", "secret", delete_after_retrieve=False)
    script(
        client,
        [*LOGIN, (b"+OK 1 23\r\n", b"UIDL\r\n"), (b"+OK\r\n1 m1\r\n.\r\n", b"RETR 1\r\n")],
    )
    sent, events = step(client, b"+OK\r\nline\n.\nmore\r\n.\r\n")
    assert events == [MessageRetrieved(1, "m1", b"line\n.\nmore\r\n")]
    assert sent == b"QUIT\r\n"


def test_replies_split_byte_by_byte_give_the_same_session() -> None:
    server_bytes = (
        GREETING
        + b"+OK\r\n+OK\r\n+OK 1 23\r\n+OK\r\n1 m1\r\n.\r\n+OK\r\n"
        + MSG2_STUFFED
        + b"+OK\r\n+OK\r\n"
    )
    whole = POP3Client("steve", "secret")
    whole.receive_data(server_bytes)
    expected = events_of(whole), whole.data_to_send()
    split = POP3Client("steve", "secret")
    events: list[ClientEvent] = []
    for i in range(len(server_bytes)):
        split.receive_data(server_bytes[i : i + 1])
        events += events_of(split)
    assert (events, split.data_to_send()) == expected
    assert expected[0][-1] == SessionDone(1, 1)


# --- step-by-step mode ----------------------------------------------------------------------------


def test_step_by_step_client_pauses_until_the_application_sends() -> None:
    client = POP3Client("", "", auto=False)
    sent, events = step(client, GREETING)
    assert (sent, events) == (b"", [Greeting("usa.com POP3 ready", None)])
    assert client.state is ClientState.READY
    assert client.next_event() is PAUSED
    assert client.send(Command("user", "steve")) == b"USER steve\r\n"
    assert client.next_event() is NEED_DATA
    assert step(client, b"+OK send PASS\r\n") == (b"", [Reply(True, "send PASS")])


@pytest.mark.parametrize(
    ("command", "server_says", "reply"),
    [
        (Command("STAT"), b"+OK 2 55\r\n", Reply(True, "2 55")),
        (Command("LIST"), b"+OK 2\r\n1 23\r\n2 32\r\n.\r\n", Reply(True, "2", (b"1 23", b"2 32"))),
        (Command("LIST", "1"), b"+OK 1 23\r\n", Reply(True, "1 23")),
        (Command("UIDL"), b"+OK\r\n.\r\n", Reply(True, "", ())),
        (Command("UIDL", "2"), b"+OK 2 m2\r\n", Reply(True, "2 m2")),
        (
            Command("RETR", "2"),
            b"+OK\r\n" + MSG2_STUFFED,
            Reply(True, "", tuple(MSG2.split(b"\r\n")[:-1])),
        ),
        (
            Command("TOP", "1 0"),
            b"+OK\r\nSubject: one\r\n\r\n.\r\n",
            Reply(True, "", (b"Subject: one", b"")),
        ),
        (Command("CAPA"), b"+OK\r\nUSER\r\n.\r\n", Reply(True, "", (b"USER",))),
        (Command("RETR", "9"), b"-ERR no such message\r\n", Reply(False, "no such message")),
        (Command("NOOP"), b"+OK\r\n", Reply(True, "")),
    ],
)
def test_step_by_step_replies_are_single_or_multi_line_by_command(
    command: Command, server_says: bytes, reply: Reply
) -> None:
    client = POP3Client("", "", auto=False)
    step(client, GREETING)
    client.send(command)
    assert step(client, server_says) == (b"", [reply])
    assert client.state is ClientState.READY


def test_step_by_step_quit_ends_the_session() -> None:
    client = POP3Client("", "", auto=False)
    step(client, GREETING)
    assert client.send(Command("QUIT")) == b"QUIT\r\n"
    assert step(client, b"+OK bye\r\n") == (b"", [Reply(True, "bye")])
    assert client.state is ClientState.DONE


def test_step_by_step_loss_while_idle_is_reported() -> None:
    client = POP3Client("", "", auto=False)
    step(client, GREETING)
    assert step(client, b"-ERR autologout\r\n") == (b"", [])  # unread until a command is sent
    assert step(client, b"") == (b"", [ConnectionLost("READY")])


@pytest.mark.parametrize(
    ("command", "match"),
    [
        (Command("NO OP"), "verb of letters"),
        (Command("RETR", "1\r\nDELE 1"), "CR or LF"),
        (Command("PASS", "x" * 300), "longer than 255"),
    ],
)
def test_step_by_step_malformed_commands_are_local_errors(command: Command, match: str) -> None:
    client = POP3Client("", "", auto=False)
    step(client, GREETING)
    with pytest.raises(LocalProtocolError, match=match):
        client.send(command)
    assert client.state is ClientState.ERROR


def test_step_by_step_send_while_a_reply_is_awaited_is_a_local_error() -> None:
    client = POP3Client("", "", auto=False)
    with pytest.raises(LocalProtocolError, match="READY"):
        client.send(Command("STAT"))  # no greeting yet


def test_an_automatic_client_refuses_send() -> None:
    client = POP3Client("steve", "secret")
    with pytest.raises(LocalProtocolError, match="auto=False"):
        client.send(Command("STAT"))


def test_bytes_after_the_server_closed_are_a_local_error() -> None:
    client = POP3Client("steve", "secret")
    client.receive_data(b"")
    with pytest.raises(LocalProtocolError, match="after the peer closed"):
        client.receive_data(GREETING)


def test_every_client_state_row_is_reachable_in_the_table() -> None:
    targets = {new for row in CLIENT_TRANSITIONS.values() for new in row.values()}
    assert set(ClientState) - targets == {ClientState.GREETING}
