"""The sans-IO POP3 server (RFC 1939): bytes in, replies and events out, every state and error."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence

import pytest

from mailsim.protocol._common import LocalProtocolError, ProtocolError
from mailsim.protocol.pop3 import (
    NEED_DATA,
    SERVER_TRANSITIONS,
    AuthResult,
    Command,
    ConnectionClosed,
    Deleted,
    DeletionsReset,
    LoggedIn,
    Maildrop,
    MaildropProvider,
    MaildropUnavailable,
    MemoryMaildrop,
    MemoryMessage,
    MemoryProvider,
    POP3Server,
    Pop3State,
    Retrieved,
    ServerEvent,
    Shutdown,
    Updated,
    apop_digest,
)

# Sizes by hand, CRLF counted as two octets (RFC 1939 section 5):
#   "From: james@india.com" 21+2=23, "To: steve@usa.com" 17+2=19, "Subject: Hello" 14+2=16,
#   "" 0+2=2, "Hi Steve," 9+2=11, "how are you?" 12+2=14  ->  85
MSG1 = (
    b"From: james@india.com\r\nTo: steve@usa.com\r\nSubject: Hello\r\n\r\n"
    b"Hi Steve,\r\nhow are you?\r\n"
)
#   "Subject: dots" 13+2=15, "" 2, ".leading dot" 12+2=14, "." 1+2=3, "..two" 5+2=7, "end" 3+2=5
#   -> 46
MSG2 = b"Subject: dots\r\n\r\n.leading dot\r\n.\r\n..two\r\nend\r\n"
# Both: 85 + 46 = 131 octets.
MSG2_STUFFED = b"Subject: dots\r\n\r\n..leading dot\r\n..\r\n...two\r\nend\r\n.\r\n"

CAPA_REPLY = (
    b"+OK capability list follows\r\nUSER\r\nTOP\r\nUIDL\r\nPIPELINING\r\nRESP-CODES\r\n"
    b"AUTH-RESP-CODE\r\n.\r\n"
)
# RFC 1939 section 7's own example: this timestamp and secret give this digest.
RFC_TIMESTAMP = "<1896.697170952@dbc.mtview.ca.us>"
RFC_DIGEST = "c4c9334bac560ecc979e58001b3e22fb"

PRELUDES = {
    Pop3State.AUTHORIZATION: b"",
    Pop3State.AUTHORIZATION_PASS: b"USER steve\r\n",
    Pop3State.TRANSACTION: b"USER steve\r\nPASS secret\r\n",
}


def make_server(**kwargs: object) -> tuple[POP3Server, MemoryMaildrop]:
    drop = MemoryMaildrop([MSG1, MSG2])
    provider = MemoryProvider({"steve": "secret", "mrose": "tanstaaf"}, {"steve": drop})
    server = POP3Server(provider, **kwargs)  # type: ignore[arg-type]
    return server, drop


def drain(server: POP3Server) -> list[ServerEvent]:
    """All events up to NEED_DATA or the (first) ConnectionClosed."""
    events: list[ServerEvent] = []
    while True:
        event = server.next_event()
        if event is NEED_DATA:
            return events
        events.append(event)
        if isinstance(event, ConnectionClosed):
            return events


def talk(server: POP3Server, data: bytes) -> bytes:
    """Feed ``data``, process it, and return what the server wrote."""
    server.receive_data(data)
    drain(server)
    return server.data_to_send()


def server_in(state: Pop3State, **kwargs: object) -> tuple[POP3Server, MemoryMaildrop]:
    server, drop = make_server(**kwargs)
    server.data_to_send()  # the greeting
    if PRELUDES[state]:  # b"" would mean "the client closed"
        talk(server, PRELUDES[state])
    assert server.state is state
    return server, drop


# --- every command in every state ----------------------------------------------------------------

A = Pop3State.AUTHORIZATION
AP = Pop3State.AUTHORIZATION_PASS
T = Pop3State.TRANSACTION
CLOSED = Pop3State.CLOSED

COMMAND_TABLE = [
    # state, line sent, exact reply, state after
    (A, b"USER steve", b"+OK send PASS\r\n", AP),
    (A, b"user steve", b"+OK send PASS\r\n", AP),  # commands are case-insensitive
    (A, b"USER nobody", b"+OK send PASS\r\n", AP),  # no hint which users exist
    (A, b"USER", b"-ERR USER needs the mailbox name\r\n", A),
    (A, b"USER  ", b"-ERR USER needs the mailbox name\r\n", A),
    (A, b"USER john smith", b"+OK send PASS\r\n", AP),  # "john smith"@usa.com's name
    (A, b"USER " + b"x" * 64, b"+OK send PASS\r\n", AP),  # a local part's 64 octets
    (A, b"USER " + b"x" * 65, b"-ERR mailbox name longer than 64 characters\r\n", A),
    (A, b"PASS secret", b"-ERR PASS must come right after a USER that got +OK\r\n", A),
    (
        A,
        b"APOP steve " + b"0" * 32,
        b"-ERR APOP is not enabled on this server; use USER and PASS\r\n",
        A,
    ),
    (A, b"CAPA", CAPA_REPLY, A),
    (A, b"CAPA x", b"-ERR CAPA takes no arguments\r\n", A),
    (A, b"QUIT", b"+OK POP3 server signing off\r\n", CLOSED),
    (A, b"STAT", b"-ERR STAT needs a login first (USER and PASS)\r\n", A),
    (A, b"LIST", b"-ERR LIST needs a login first (USER and PASS)\r\n", A),
    (A, b"RETR 1", b"-ERR RETR needs a login first (USER and PASS)\r\n", A),
    (A, b"DELE 1", b"-ERR DELE needs a login first (USER and PASS)\r\n", A),
    (A, b"RSET", b"-ERR RSET needs a login first (USER and PASS)\r\n", A),
    (A, b"NOOP", b"-ERR NOOP needs a login first (USER and PASS)\r\n", A),
    (A, b"TOP 1 0", b"-ERR TOP needs a login first (USER and PASS)\r\n", A),
    (A, b"UIDL", b"-ERR UIDL needs a login first (USER and PASS)\r\n", A),
    (A, b"HELO x", b"-ERR unknown command 'HELO'\r\n", A),
    (A, b"", b"-ERR no command\r\n", A),
    (A, b"\xff\xfe", b"-ERR unknown command '\xef\xbf\xbd\xef\xbf\xbd'\r\n", A),
    (AP, b"PASS secret", b"+OK steve's maildrop has 2 messages (131 octets)\r\n", T),
    (AP, b"pass secret", b"+OK steve's maildrop has 2 messages (131 octets)\r\n", T),
    (AP, b"PASS wrong", b"-ERR [AUTH] invalid user name or password\r\n", A),
    (AP, b"PASS", b"-ERR PASS needs the password\r\n", A),
    (AP, b"PASS ", b"-ERR PASS needs the password\r\n", A),
    (AP, b"USER james", b"+OK send PASS\r\n", AP),
    (AP, b"USER", b"-ERR USER needs the mailbox name\r\n", A),
    (
        AP,
        b"APOP steve " + b"0" * 32,
        b"-ERR APOP is not enabled on this server; use USER and PASS\r\n",
        A,
    ),
    (AP, b"CAPA", CAPA_REPLY, A),  # PASS must follow USER immediately (RFC 1939 section 7)
    (AP, b"QUIT", b"+OK POP3 server signing off\r\n", CLOSED),
    (AP, b"STAT", b"-ERR STAT needs a login first (USER and PASS)\r\n", A),
    (AP, b"NOOP", b"-ERR NOOP needs a login first (USER and PASS)\r\n", A),
    (AP, b"FOO", b"-ERR unknown command 'FOO'\r\n", A),
    (A, b"STLS", b"-ERR STLS is not offered here (start the server with TLS)\r\n", A),
    (AP, b"STLS", b"-ERR STLS is not offered here (start the server with TLS)\r\n", A),
    (T, b"STAT", b"+OK 2 131\r\n", T),
    (T, b"stat", b"+OK 2 131\r\n", T),
    (T, b"STAT 1", b"-ERR STAT takes no arguments\r\n", T),
    (T, b"LIST", b"+OK 2 messages (131 octets)\r\n1 85\r\n2 46\r\n.\r\n", T),
    (T, b"LIST 2", b"+OK 2 46\r\n", T),
    (T, b"LIST 3", b"-ERR no such message, only 2 in maildrop\r\n", T),
    (T, b"LIST 0", b"-ERR no such message, only 2 in maildrop\r\n", T),
    (T, b"LIST " + b"9" * 40, b"-ERR no such message, only 2 in maildrop\r\n", T),
    (T, b"LIST x", b"-ERR message number must be a decimal number, got 'x'\r\n", T),
    (T, b"LIST -1", b"-ERR message number must be a decimal number, got '-1'\r\n", T),
    (T, b"LIST +1", b"-ERR message number must be a decimal number, got '+1'\r\n", T),
    # An Arabic-Indic digit one: str.isdigit() would accept it, RFC 1939 does not.
    (
        T,
        "LIST \u0661".encode(),
        "-ERR message number must be a decimal number, got '\u0661'\r\n".encode(),
        T,
    ),
    (T, b"LIST 1 2", b"-ERR LIST takes at most one argument: a message number\r\n", T),
    (T, b"RETR 1", b"+OK 85 octets\r\n" + MSG1 + b".\r\n", T),
    (T, b"RETR 2", b"+OK 46 octets\r\n" + MSG2_STUFFED, T),
    (T, b"RETR", b"-ERR RETR needs exactly one argument: a message number\r\n", T),
    (T, b"RETR 1 2", b"-ERR RETR needs exactly one argument: a message number\r\n", T),
    (T, b"RETR 9", b"-ERR no such message, only 2 in maildrop\r\n", T),
    (T, b"DELE 1", b"+OK message 1 deleted\r\n", T),
    (T, b"DELE", b"-ERR DELE needs exactly one argument: a message number\r\n", T),
    (T, b"DELE 3", b"-ERR no such message, only 2 in maildrop\r\n", T),
    (T, b"RSET", b"+OK maildrop has 2 messages (131 octets)\r\n", T),
    (T, b"RSET 1", b"-ERR RSET takes no arguments\r\n", T),
    (T, b"NOOP", b"+OK\r\n", T),
    (T, b"NOOP 1", b"-ERR NOOP takes no arguments\r\n", T),
    # TOP n 0: the header and the blank line only.
    (
        T,
        b"TOP 1 0",
        b"+OK top of message follows\r\n"
        b"From: james@india.com\r\nTo: steve@usa.com\r\nSubject: Hello\r\n\r\n.\r\n",
        T,
    ),
    (
        T,
        b"TOP 1 1",
        b"+OK top of message follows\r\n"
        b"From: james@india.com\r\nTo: steve@usa.com\r\nSubject: Hello\r\n\r\nHi Steve,\r\n.\r\n",
        T,
    ),
    (T, b"TOP 1 2", b"+OK top of message follows\r\n" + MSG1 + b".\r\n", T),
    (T, b"TOP 1 " + b"9" * 40, b"+OK top of message follows\r\n" + MSG1 + b".\r\n", T),
    (
        T,
        b"TOP 2 1",
        b"+OK top of message follows\r\nSubject: dots\r\n\r\n..leading dot\r\n.\r\n",
        T,
    ),
    (T, b"TOP 1", b"-ERR TOP needs two arguments: a message number and a number of lines\r\n", T),
    (T, b"TOP 1 x", b"-ERR number of lines must be a decimal number, got 'x'\r\n", T),
    (T, b"TOP 3 1", b"-ERR no such message, only 2 in maildrop\r\n", T),
    (T, b"UIDL", b"+OK unique-id listing follows\r\n1 m1\r\n2 m2\r\n.\r\n", T),
    (T, b"UIDL 2", b"+OK 2 m2\r\n", T),
    (T, b"UIDL 5", b"-ERR no such message, only 2 in maildrop\r\n", T),
    (T, b"UIDL 1 2", b"-ERR UIDL takes at most one argument: a message number\r\n", T),
    (T, b"CAPA", CAPA_REPLY, T),
    (T, b"USER steve", b"-ERR USER is not allowed after login (TRANSACTION state)\r\n", T),
    (T, b"PASS secret", b"-ERR PASS is not allowed after login (TRANSACTION state)\r\n", T),
    (T, b"APOP steve x", b"-ERR APOP is not allowed after login (TRANSACTION state)\r\n", T),
    (T, b"QUIT", b"+OK POP3 server signing off (2 messages left)\r\n", CLOSED),
    (T, b"XTND XMIT", b"-ERR unknown command 'XTND'\r\n", T),
]


@pytest.mark.parametrize(
    ("state", "line", "reply", "after"),
    COMMAND_TABLE,
    ids=[f"{s.name}-{line[:14]!r}" for s, line, _, _ in COMMAND_TABLE],
)
def test_command_in_state_gets_reply_and_moves_state(
    state: Pop3State, line: bytes, reply: bytes, after: Pop3State
) -> None:
    server, _ = server_in(state)
    assert talk(server, line + b"\r\n") == reply
    assert server.state is after


def test_every_live_state_is_covered_by_the_command_table() -> None:
    covered = {state for state, _, _, _ in COMMAND_TABLE}
    live = {s for s, row in SERVER_TRANSITIONS.items() if any(k.isupper() for k in row)}
    assert live == covered
    for state in live:
        verbs = {k for k in SERVER_TRANSITIONS[state] if k.isalpha() and k.isupper()}
        tried = {
            line.split(b" ")[0].upper().decode("latin-1")
            for s, line, _, _ in COMMAND_TABLE
            if s is state
        }
        assert verbs <= tried, f"{state.name}: untested verbs {verbs - tried}"


def test_greeting_is_plus_ok_with_the_banner() -> None:
    server, _ = make_server(banner="usa.com POP3 ready")
    assert server.data_to_send() == b"+OK usa.com POP3 ready\r\n"
    assert server.state is Pop3State.AUTHORIZATION


def test_commands_before_any_data_need_data() -> None:
    server, _ = make_server()
    assert server.next_event() is NEED_DATA
    server.receive_data(b"NO")
    assert server.next_event() is NEED_DATA  # half a line is not a command


def test_login_emits_command_authresult_and_loggedin_in_order() -> None:
    server, _ = make_server()
    server.receive_data(b"USER steve\r\nPASS secret\r\n")
    assert drain(server) == [
        Command("USER", "steve"),
        Command("PASS", "secret"),
        AuthResult("steve", True, "USER/PASS"),
        LoggedIn("steve", 2, 131),
    ]
    assert server.user == "steve"


def test_wrong_password_gets_auth_error_and_shows_nothing_of_the_maildrop() -> None:
    server, drop = make_server()
    server.data_to_send()
    server.receive_data(b"USER steve\r\nPASS guess\r\n")
    events = drain(server)
    out = server.data_to_send()
    assert out == b"+OK send PASS\r\n-ERR [AUTH] invalid user name or password\r\n"
    assert AuthResult("steve", False, "USER/PASS") in events
    assert not any(isinstance(e, LoggedIn) for e in events)
    assert not drop.locked
    assert server.user is None


def test_unknown_user_gets_the_same_reply_as_a_wrong_password() -> None:
    server, _ = server_in(Pop3State.AUTHORIZATION)
    assert talk(server, b"USER mallory\r\nPASS secret\r\n") == (
        b"+OK send PASS\r\n-ERR [AUTH] invalid user name or password\r\n"
    )


def test_pass_keeps_spaces_as_part_of_the_password() -> None:
    # RFC 1939 section 7: spaces in the PASS argument may belong to the password.
    drop = MemoryMaildrop()
    server = POP3Server(MemoryProvider({"ann": "two words "}, {"ann": drop}))
    server.data_to_send()
    assert talk(server, b"USER ann\r\nPASS two words \r\n").endswith(
        b"+OK ann's maildrop has 0 messages (0 octets)\r\n"
    )


def test_after_a_failed_pass_the_user_must_start_again() -> None:
    server, _ = server_in(Pop3State.AUTHORIZATION_PASS)
    talk(server, b"PASS wrong\r\n")
    assert talk(server, b"PASS secret\r\n") == (
        b"-ERR PASS must come right after a USER that got +OK\r\n"
    )
    assert talk(server, b"USER steve\r\nPASS secret\r\n").endswith(b"(131 octets)\r\n")


# --- APOP ----------------------------------------------------------------------------------------


def test_apop_digest_matches_the_rfc_example() -> None:
    assert apop_digest(RFC_TIMESTAMP, "tanstaaf") == RFC_DIGEST


def test_apop_greeting_carries_the_timestamp() -> None:
    server, _ = make_server(banner="POP3 server ready", apop_timestamp=RFC_TIMESTAMP)
    assert server.data_to_send() == f"+OK POP3 server ready {RFC_TIMESTAMP}\r\n".encode()


@pytest.mark.parametrize("digest", [RFC_DIGEST, RFC_DIGEST.upper()])
def test_apop_with_the_right_digest_logs_in(digest: str) -> None:
    server, _ = server_in(Pop3State.AUTHORIZATION, apop_timestamp=RFC_TIMESTAMP)
    server.receive_data(f"APOP mrose {digest}\r\n".encode())
    events = drain(server)
    assert server.data_to_send() == b"+OK mrose's maildrop has 0 messages (0 octets)\r\n"
    assert AuthResult("mrose", True, "APOP") in events
    assert server.state is Pop3State.TRANSACTION


@pytest.mark.parametrize(
    "line",
    [
        b"APOP mrose " + b"0" * 32,  # wrong digest
        b"APOP nobody " + RFC_DIGEST.encode(),  # unknown user
        "APOP mrose \u00e9\u00e9".encode(),  # non-ASCII digest must not crash compare_digest
    ],
)
def test_apop_with_a_wrong_digest_or_user_gets_auth_error(line: bytes) -> None:
    server, _ = server_in(Pop3State.AUTHORIZATION, apop_timestamp=RFC_TIMESTAMP)
    server.receive_data(line + b"\r\n")
    events = drain(server)
    assert server.data_to_send() == b"-ERR [AUTH] invalid user name or password\r\n"
    assert any(isinstance(e, AuthResult) and not e.ok for e in events)
    assert server.state is Pop3State.AUTHORIZATION


def test_apop_needs_two_arguments() -> None:
    server, _ = server_in(Pop3State.AUTHORIZATION, apop_timestamp=RFC_TIMESTAMP)
    assert talk(server, b"APOP mrose\r\n") == (
        b"-ERR APOP needs two arguments: the mailbox name and the MD5 digest\r\n"
    )


@pytest.mark.parametrize("timestamp", ["1896.697170952@host", "<no-at-sign>", "<a@b> extra"])
def test_a_malformed_apop_timestamp_is_refused_at_construction(timestamp: str) -> None:
    with pytest.raises(ValueError, match=r"pid\.clock@host"):
        make_server(apop_timestamp=timestamp)


# --- marks, UPDATE and the lock -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "reply"),
    [
        (b"LIST 1", b"-ERR message 1 already deleted\r\n"),
        (b"RETR 1", b"-ERR message 1 already deleted\r\n"),
        (b"DELE 1", b"-ERR message 1 already deleted\r\n"),
        (b"TOP 1 0", b"-ERR message 1 already deleted\r\n"),
        (b"UIDL 1", b"-ERR message 1 already deleted\r\n"),
        (b"STAT", b"+OK 1 46\r\n"),  # 131 - 85
        (b"LIST", b"+OK 1 messages (46 octets)\r\n2 46\r\n.\r\n"),
        (b"UIDL", b"+OK unique-id listing follows\r\n2 m2\r\n.\r\n"),
        (b"RETR 2", b"+OK 46 octets\r\n" + MSG2_STUFFED),  # numbers do not shift
    ],
)
def test_a_marked_message_is_gone_from_the_session_but_numbers_stay(
    line: bytes, reply: bytes
) -> None:
    server, _ = server_in(Pop3State.TRANSACTION)
    talk(server, b"DELE 1\r\n")
    assert talk(server, line + b"\r\n") == reply


def test_rset_unmarks_everything() -> None:
    server, drop = server_in(Pop3State.TRANSACTION)
    talk(server, b"DELE 2\r\nDELE 1\r\n")
    server.receive_data(b"RSET\r\n")
    assert DeletionsReset(("m1", "m2")) in drain(server)
    assert server.data_to_send() == b"+OK maildrop has 2 messages (131 octets)\r\n"
    talk(server, b"QUIT\r\n")
    assert len(drop) == 2


def test_dele_and_retr_emit_events_for_tracing() -> None:
    server, _ = server_in(Pop3State.TRANSACTION)
    server.receive_data(b"RETR 2\r\nDELE 2\r\n")
    assert drain(server) == [
        Command("RETR", "2"),
        Retrieved(2, "m2", 46),
        Command("DELE", "2"),
        Deleted(2, "m2"),
    ]


def test_deletions_happen_only_at_quit() -> None:
    server, drop = server_in(Pop3State.TRANSACTION)
    talk(server, b"DELE 1\r\n")
    assert len(drop) == 2  # only marked so far
    server.receive_data(b"QUIT\r\n")
    events = drain(server)
    assert server.data_to_send() == b"+OK POP3 server signing off (1 message left)\r\n"
    assert events[-2:] == [Updated(("m1",)), ConnectionClosed("quit")]
    assert [m.uid for m in drop.messages] == ["m2"]
    assert not drop.locked
    assert server.state is Pop3State.CLOSED


def test_quit_after_deleting_everything_says_maildrop_empty() -> None:
    server, drop = server_in(Pop3State.TRANSACTION)
    assert talk(server, b"DELE 1\r\nDELE 2\r\nQUIT\r\n").endswith(
        b"+OK POP3 server signing off (maildrop empty)\r\n"
    )
    assert len(drop) == 0


def test_a_dropped_connection_deletes_nothing_and_releases_the_lock() -> None:
    server, drop = server_in(Pop3State.TRANSACTION)
    talk(server, b"DELE 1\r\nDELE 2\r\n")
    server.receive_data(b"")
    assert drain(server) == [ConnectionClosed("peer closed")]
    assert len(drop) == 2
    assert not drop.locked
    assert server.state is Pop3State.CLOSED


def test_a_quit_sent_just_before_closing_still_commits() -> None:
    # The client issued QUIT (RFC 1939 section 6); that it closed before reading the reply
    # does not undo it.
    server, drop = server_in(Pop3State.TRANSACTION)
    server.receive_data(b"DELE 1\r\nQUIT\r\n")
    server.receive_data(b"")
    assert drain(server)[-1] == ConnectionClosed("quit")
    assert len(drop) == 1


def test_a_half_line_at_close_is_not_a_command() -> None:
    server, drop = server_in(Pop3State.TRANSACTION)
    talk(server, b"DELE 1\r\nQUI")
    server.receive_data(b"")
    assert drain(server) == [ConnectionClosed("peer closed")]
    assert len(drop) == 2


def test_shutdown_ends_the_session_without_update() -> None:
    server, drop = server_in(Pop3State.TRANSACTION)
    talk(server, b"DELE 1\r\n")
    assert server.send(Shutdown()) == b"-ERR autologout; idle for too long\r\n"
    assert server.next_event() == ConnectionClosed("shutdown")
    assert len(drop) == 2
    assert not drop.locked
    assert server.send(Shutdown()) == b""  # already over: nothing more to say


def test_a_second_session_on_a_locked_maildrop_gets_in_use() -> None:
    drop = MemoryMaildrop([MSG1])
    provider = MemoryProvider({"steve": "secret"}, {"steve": drop})
    first = POP3Server(provider)
    talk(first, b"USER steve\r\nPASS secret\r\n")
    assert first.state is Pop3State.TRANSACTION
    second = POP3Server(provider)
    second.data_to_send()
    second.receive_data(b"USER steve\r\nPASS secret\r\n")
    events = drain(second)
    assert second.data_to_send() == (b"+OK send PASS\r\n-ERR [IN-USE] maildrop already locked\r\n")
    assert events[-2:] == [
        AuthResult("steve", True, "USER/PASS"),
        MaildropUnavailable("steve", "[IN-USE] maildrop already locked"),
    ]
    assert second.state is Pop3State.AUTHORIZATION
    talk(first, b"QUIT\r\n")
    # Once the first session is over, the lock is free again.
    assert talk(second, b"USER steve\r\nPASS secret\r\n").endswith(b"(85 octets)\r\n")


def test_a_failed_commit_gets_err_at_quit() -> None:
    class FullDisk(MemoryMaildrop):
        def commit_deletions(self, indices: Sequence[int]) -> object:
            return "disk full"

    drop = FullDisk([MSG1])
    server = POP3Server(MemoryProvider({"steve": "secret"}, {"steve": drop}))
    talk(server, b"USER steve\r\nPASS secret\r\nDELE 1\r\n")
    server.receive_data(b"QUIT\r\n")
    assert Updated((), "disk full") in drain(server)
    assert server.data_to_send() == b"-ERR some deleted messages not removed: disk full\r\n"
    assert server.state is Pop3State.CLOSED
    assert not drop.locked


def test_messages_delivered_during_a_session_wait_for_the_next_one() -> None:
    server, drop = server_in(Pop3State.TRANSACTION)
    drop.add(b"Subject: late\r\n\r\nx\r\n")
    assert talk(server, b"STAT\r\nDELE 1\r\nQUIT\r\n").startswith(b"+OK 2 131\r\n")
    assert [m.uid for m in drop.messages] == ["m2", "m3"]


# --- the provider hooks and their defaults -----------------------------------------------------


def test_the_default_provider_refuses_everyone() -> None:
    server = POP3Server(MaildropProvider())
    server.data_to_send()
    assert talk(server, b"USER root\r\nPASS root\r\n").endswith(
        b"-ERR [AUTH] invalid user name or password\r\n"
    )


def test_a_provider_with_secret_for_gets_password_checks_for_free() -> None:
    drop = MemoryMaildrop([MSG1])

    class OneUser(MaildropProvider):
        def secret_for(self, user: str) -> str | None:
            return "pw" if user == "ann" else None

        def open_maildrop(self, user: str) -> Maildrop | str:
            return drop if drop.lock() else "[IN-USE] busy"

    server = POP3Server(OneUser())
    server.data_to_send()
    assert talk(server, b"USER ann\r\nPASS nope\r\n").endswith(
        b"-ERR [AUTH] invalid user name or password\r\n"
    )
    assert talk(server, b"USER ann\r\nPASS pw\r\n").endswith(b"has 1 messages (85 octets)\r\n")


def test_the_default_open_maildrop_refuses_with_a_response_code() -> None:
    class PasswordsOnly(MaildropProvider):
        def authenticate(self, user: str, password: str) -> bool:
            return True

    server = POP3Server(PasswordsOnly())
    server.data_to_send()
    assert talk(server, b"USER x\r\nPASS y\r\n").endswith(
        b"-ERR [SYS/PERM] no maildrop for this user\r\n"
    )


# --- message rendering -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "on_the_wire"),
    [
        (b"", b".\r\n"),
        (b"no line end", b"no line end\r\n.\r\n"),  # CRLF added before the terminator
        (b".\r\n", b"..\r\n.\r\n"),
        (b"..\r\n", b"...\r\n.\r\n"),
        (b"a\r\n.\r\nb\r\n", b"a\r\n..\r\nb\r\n.\r\n"),
        (b"a\n.\nb\r\n", b"a\n.\nb\r\n.\r\n"),  # bare LF ends no line: nothing to stuff
        (b"x\r\n\r\n.", b"x\r\n\r\n..\r\n.\r\n"),
    ],
)
def test_retr_byte_stuffs_and_terminates(content: bytes, on_the_wire: bytes) -> None:
    drop = MemoryMaildrop([content])
    server = POP3Server(MemoryProvider({"u": "p"}, {"u": drop}))
    talk(server, b"USER u\r\nPASS p\r\n")
    reply = talk(server, b"RETR 1\r\n")
    assert reply == f"+OK {len(content)} octets\r\n".encode() + on_the_wire


@pytest.mark.parametrize(
    ("content", "lines", "top"),
    [
        (b"Subject: x\r\n", 3, b"Subject: x\r\n"),  # no body at all
        (b"\r\nbody1\r\nbody2\r\n", 1, b"\r\nbody1\r\n"),  # empty header
        (b"H: 1\r\n\r\nb1\r\nb2", 2, b"H: 1\r\n\r\nb1\r\nb2\r\n"),  # last line without CRLF
        (b"H: 1\r\n\r\n.b1\r\nb2\r\n", 1, b"H: 1\r\n\r\n..b1\r\n"),  # stuffed too
    ],
)
def test_top_sends_header_blank_line_and_n_body_lines(
    content: bytes, lines: int, top: bytes
) -> None:
    drop = MemoryMaildrop([content])
    server = POP3Server(MemoryProvider({"u": "p"}, {"u": drop}))
    talk(server, b"USER u\r\nPASS p\r\n")
    assert talk(server, f"TOP 1 {lines}\r\n".encode()) == (
        b"+OK top of message follows\r\n" + top + b".\r\n"
    )


# --- limits and hostile input ---------------------------------------------------------------------


def test_a_command_line_of_255_octets_is_accepted_and_256_is_too_long() -> None:
    # RFC 2449 section 4: 255 octets including CRLF. "NOOP" 4 + 249 spaces + CRLF 2 = 255.
    server, _ = server_in(Pop3State.TRANSACTION)
    assert talk(server, b"NOOP" + b" " * 249 + b"\r\n") == b"+OK\r\n"
    assert talk(server, b"NOOP" + b" " * 250 + b"\r\n") == (
        b"-ERR line too long: at most 255 octets with CRLF (RFC 2449)\r\n"
    )
    assert server.state is Pop3State.TRANSACTION


def test_a_huge_line_is_not_buffered_without_bound() -> None:
    server, _ = server_in(Pop3State.TRANSACTION)
    for _ in range(100):
        server.receive_data(b"x" * 10_000)
        assert server.next_event() is NEED_DATA
    assert talk(server, b"\r\nNOOP\r\n") == (
        b"-ERR line too long: at most 255 octets with CRLF (RFC 2449)\r\n+OK\r\n"
    )


def test_a_line_ended_by_a_bare_lf_is_refused_with_a_hint_not_obeyed() -> None:
    # nc without -C sends LF only: the client hears at once what is wrong (as from SMTP's 500
    # 5.5.2) instead of waiting in silence, and the LF-ended command is never carried out.
    server, drop = server_in(Pop3State.TRANSACTION)
    assert talk(server, b"DELE 1\nQUIT\r\n") == (
        b"-ERR line ended by a bare <LF>; end lines with <CR><LF> (nc -C)\r\n"
        b"+OK POP3 server signing off (2 messages left)\r\n"
    )
    assert len(drop) == 2


@pytest.mark.parametrize(
    ("pieces", "bare"),
    [([b"STAT\n"], True), ([b"ST", b"AT", b"\n"], True), ([b"STAT\r", b"\n"], False)],
)
def test_bare_lf_answer_does_not_depend_on_how_the_input_was_split(pieces, bare) -> None:
    server, _ = server_in(Pop3State.TRANSACTION)
    out = b"".join(talk(server, piece) for piece in pieces)
    assert out.startswith(b"-ERR line ended by a bare <LF>") is bare
    assert out.startswith(b"+OK 2 ") is not bare


@pytest.mark.parametrize("banner", ["x" * 600, "\u00e9" * 300])
def test_status_lines_never_exceed_512_octets(banner: str) -> None:
    server, _ = make_server(banner=banner)
    greeting = server.data_to_send()
    assert len(greeting) == 512 or len(greeting) == 511  # a 2-octet character may not fit
    assert greeting.endswith(b"\r\n")
    greeting.decode("utf-8")  # no character cut in half


def test_crlf_in_a_banner_cannot_inject_a_line() -> None:
    server, _ = make_server(banner="ready\r\n+OK fake")
    assert server.data_to_send() == b"+OK ready  +OK fake\r\n"


def test_pipelined_commands_get_replies_in_order() -> None:
    server, _ = make_server()
    server.data_to_send()
    out = talk(server, b"USER steve\r\nPASS secret\r\nSTAT\r\nUIDL 1\r\nNOOP\r\n")
    assert out == (
        b"+OK send PASS\r\n+OK steve's maildrop has 2 messages (131 octets)\r\n"
        b"+OK 2 131\r\n+OK 1 m1\r\n+OK\r\n"
    )


@pytest.mark.parametrize("state", [Pop3State.AUTHORIZATION, Pop3State.TRANSACTION])
def test_too_many_errors_close_the_connection(state: Pop3State) -> None:
    server, drop = server_in(state, max_errors=3)
    server.receive_data(b"BAD\r\nBAD\r\nBAD\r\nNOOP\r\n")
    events = drain(server)
    assert server.data_to_send() == (
        b"-ERR unknown command 'BAD'\r\n-ERR unknown command 'BAD'\r\n"
        b"-ERR too many errors, closing connection\r\n"
    )
    assert events[-1] == ConnectionClosed("too many errors")
    assert server.state is Pop3State.CLOSED
    assert not drop.locked
    assert len(drop) == 2


def test_twenty_errors_is_the_default_limit() -> None:
    server, _ = server_in(Pop3State.AUTHORIZATION)
    out = talk(server, b"X\r\n" * 19)
    assert server.state is Pop3State.AUTHORIZATION
    assert out.count(b"-ERR") == 19
    assert talk(server, b"X\r\n") == b"-ERR too many errors, closing connection\r\n"
    assert server.state is Pop3State.CLOSED


def test_max_errors_none_never_gives_up() -> None:
    server, _ = server_in(Pop3State.AUTHORIZATION, max_errors=None)
    talk(server, b"X\r\n" * 100)
    assert server.state is Pop3State.AUTHORIZATION


@pytest.mark.parametrize("bad", [0, -1])
def test_max_errors_must_be_positive(bad: int) -> None:
    with pytest.raises(ValueError, match="max_errors"):
        make_server(max_errors=bad)


# --- after the end, and misuse by the application -------------------------------------------------


def test_after_close_input_is_ignored_and_closed_repeats() -> None:
    server, _ = server_in(Pop3State.TRANSACTION)
    talk(server, b"QUIT\r\n")
    assert talk(server, b"STAT\r\n") == b""
    assert server.next_event() == ConnectionClosed("quit")
    assert server.next_event() == ConnectionClosed("quit")


def test_bytes_after_the_peer_closed_are_a_local_error() -> None:
    server, _ = make_server()
    server.receive_data(b"")
    server.receive_data(b"")  # saying it twice is harmless
    with pytest.raises(LocalProtocolError, match="after the peer closed"):
        server.receive_data(b"NOOP\r\n")


def test_sending_anything_but_shutdown_is_a_local_error_that_kills_the_machine() -> None:
    server, drop = server_in(Pop3State.TRANSACTION)
    with pytest.raises(LocalProtocolError, match="only send Shutdown"):
        server.send(Command("STAT"))  # type: ignore[arg-type]
    assert server.state is Pop3State.ERROR
    assert not drop.locked
    with pytest.raises(ProtocolError, match="ERROR"):
        server.next_event()
    assert server.send(Shutdown()) == b""


def test_memory_message_size_is_its_length() -> None:
    assert MemoryMessage("u1", MSG1).size == 85


def test_the_protocol_package_imports_only_the_standard_library() -> None:
    code = (
        "import sys, mailsim.protocol.pop3\n"
        "banned = {'simpy', 'asyncio', 'socket', 'yaml', 'ruamel', 'matplotlib', 'networkx'}\n"
        "print(sorted(banned & {m.split('.')[0] for m in sys.modules}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
