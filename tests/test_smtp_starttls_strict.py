"""The SMTP server machine's STARTTLS (RFC 3207) and its strict synchronisation (RFC 5321 4.3)."""

from __future__ import annotations

import base64

import pytest

from mailsim.protocol.smtp import (
    NEED_DATA,
    PAUSED,
    Accept,
    Hello,
    ImproperPipelining,
    LocalProtocolError,
    MessageReceived,
    ServerPolicy,
    ServerState,
    SMTPServer,
    StartTLS,
    TLSStarted,
)

PLAIN = base64.b64encode(b"\0steve\0secret").decode()


def tls_server(*, strict: bool = False, submission: bool = False, **kw: bool) -> SMTPServer:
    policy = ServerPolicy(
        auth_offered=True,
        auth_required=submission,
        tls_offered=True,
        auth_needs_tls=True,
        users={"steve": "secret"},
        **kw,
    )
    server = SMTPServer("mx.usa.example", policy=policy, strict=strict)
    server.data_to_send()
    return server


def feed(server: SMTPServer, data: bytes) -> tuple[list[str], list[object]]:
    """Feed bytes, run to NEED_DATA/PAUSED (accepting messages); replies and events."""
    server.receive_data(data)
    events: list[object] = []
    out = b""
    while True:
        event = server.next_event()
        if event is NEED_DATA:
            break
        if event is PAUSED:
            if server.state is ServerState.TLS_STARTING:
                break
            out += server.send(Accept("Q1"))
            continue
        events.append(event)
    out += server.data_to_send()
    return out.decode().splitlines(), events


def test_ehlo_offers_starttls_and_hides_auth_until_tls() -> None:
    server = tls_server()
    lines, _ = feed(server, b"EHLO client.example\r\n")
    assert "250-STARTTLS" in lines
    assert not any("AUTH" in line for line in lines)


def test_auth_before_tls_gets_538() -> None:
    server = tls_server()
    feed(server, b"EHLO c\r\n")
    lines, _ = feed(server, f"AUTH PLAIN {PLAIN}\r\n".encode())
    assert lines == ["538 5.7.11 Encryption required for requested authentication mechanism"]


def test_submission_mail_before_tls_gets_530_starttls_first() -> None:
    server = tls_server(submission=True)
    feed(server, b"EHLO c\r\n")
    lines, _ = feed(server, b"MAIL FROM:<james@india.example>\r\n")
    assert lines == ["530 5.7.0 Must issue a STARTTLS command first"]


def test_starttls_then_ehlo_required_then_auth_offered() -> None:
    server = tls_server()
    feed(server, b"EHLO c\r\n")
    lines, events = feed(server, b"STARTTLS\r\n")
    assert lines == ["220 2.0.0 Ready to start TLS"]
    assert events == [StartTLS()]
    assert server.next_event() is PAUSED  # nothing is read during the handshake
    assert server.send(TLSStarted()) == b""
    assert server.session.tls and server.session.hello_name is None
    # RFC 3207 4.2: the client must say EHLO again.
    lines, _ = feed(server, b"MAIL FROM:<a@b.example>\r\n")
    assert lines == ["503 5.5.1 Error: send HELO/EHLO first"]
    lines, events = feed(server, b"EHLO c\r\n")
    assert "250-AUTH PLAIN LOGIN" in lines and "250-STARTTLS" not in lines
    assert isinstance(events[0], Hello)
    lines, _ = feed(server, f"AUTH PLAIN {PLAIN}\r\n".encode())
    assert lines == ["235 2.7.0 Authentication successful"]
    lines, _ = feed(server, b"STARTTLS\r\n")
    assert lines == ["554 5.5.1 Error: TLS already active"]


def test_plaintext_sent_after_starttls_is_discarded() -> None:
    # CVE-2011-0411: a command injected in the clear after STARTTLS must not run under TLS.
    server = tls_server()
    feed(server, b"EHLO c\r\n")
    lines, _ = feed(server, b"STARTTLS\r\nMAIL FROM:<evil@x.example>\r\n")
    assert lines == ["220 2.0.0 Ready to start TLS"]
    server.send(TLSStarted())
    lines, _ = feed(server, b"EHLO c\r\n")
    assert lines[0].startswith("250-")
    lines, _ = feed(server, b"RCPT TO:<steve@usa.example>\r\n")
    assert lines == ["503 5.5.1 Error: need MAIL command"]


@pytest.mark.parametrize(
    ("before", "expected"),
    [
        (b"", "503 5.5.1 Error: send EHLO first"),
        (b"EHLO c\r\nMAIL FROM:<a@b.example>\r\n", "503 5.5.1 Error: MAIL transaction in progress"),
    ],
)
def test_starttls_outside_ready_gets_503(before: bytes, expected: str) -> None:
    server = tls_server()
    if before:
        feed(server, before)
    lines, _ = feed(server, b"STARTTLS\r\n")
    assert lines == [expected]


def test_starttls_not_offered_is_502_and_tls_started_without_it_is_misuse() -> None:
    server = SMTPServer("mx")
    server.data_to_send()
    lines, _ = feed(server, b"EHLO c\r\nSTARTTLS\r\n")
    assert lines[-1] == "502 5.5.1 Error: command not implemented"
    with pytest.raises(LocalProtocolError):
        server.send(TLSStarted())


def test_implicit_tls_session_offers_auth_and_no_starttls() -> None:
    policy = ServerPolicy(auth_offered=True, tls_offered=True, auth_needs_tls=True)
    server = SMTPServer("mx", policy=policy, tls=True)
    server.data_to_send()
    lines, _ = feed(server, b"EHLO c\r\n")
    assert "250-AUTH PLAIN LOGIN" in lines and "250-STARTTLS" not in lines


# --- strict synchronisation ---------------------------------------------------------------------

BLAST = (
    b"EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<s@u.example>\r\nDATA\r\n"
    b"Subject: x\r\n\r\nhi\r\n.\r\nQUIT\r\n"
)


def test_strict_blast_gets_554_after_ehlo_and_the_session_ends() -> None:
    server = tls_server(strict=True)
    lines, events = feed(server, BLAST)
    assert lines[-1] == "554 5.5.0 Error: SMTP protocol synchronization"
    assert events[-1] == ImproperPipelining("EHLO", "MAIL FROM:<a@b.example>")
    assert server.state is ServerState.CLOSED
    assert not any(isinstance(e, MessageReceived) for e in events)


def test_without_strict_the_same_blast_is_served() -> None:
    server = tls_server()
    lines, events = feed(server, BLAST)
    assert lines[-1].startswith("221")
    assert any(isinstance(e, MessageReceived) for e in events)


def test_strict_allows_an_rfc2920_group_but_not_text_before_354() -> None:
    server = tls_server(strict=True)
    feed(server, b"EHLO c\r\n")
    lines, events = feed(server, b"MAIL FROM:<a@b.example>\r\nRCPT TO:<s@u.example>\r\nDATA\r\n")
    assert [line[:3] for line in lines] == ["250", "250", "354"]
    assert server.state is ServerState.DATA
    server = tls_server(strict=True)
    feed(server, b"EHLO c\r\n")
    lines, events = feed(
        server, b"MAIL FROM:<a@b.example>\r\nRCPT TO:<s@u.example>\r\nDATA\r\nhi\r\n"
    )
    assert lines[-1].startswith("554 5.5.0")
    assert events[-1] == ImproperPipelining("DATA", "hi")


def test_strict_without_pipelining_refuses_any_group() -> None:
    server = tls_server(strict=True, pipelining_offered=False)
    lines, _ = feed(server, b"EHLO c\r\n")
    assert "250-PIPELINING" not in lines
    lines, events = feed(server, b"MAIL FROM:<a@b.example>\r\nRCPT TO:<s@u.example>\r\n")
    assert lines == ["250 2.1.0 Ok", "554 5.5.0 Error: SMTP protocol synchronization"]
    assert events[-1] == ImproperPipelining("MAIL", "RCPT TO:<s@u.example>")


def test_strict_lock_step_client_is_never_flagged_even_split_into_octets() -> None:
    server = tls_server(strict=True, pipelining_offered=False)
    for command in (
        b"EHLO c\r\n",
        b"MAIL FROM:<a@b.example>\r\n",
        b"RCPT TO:<s@u.example>\r\n",
        b"DATA\r\n",
        b"Subject: x\r\n\r\n..dot\r\n.\r\n",
        b"QUIT\r\n",
    ):
        lines: list[str] = []
        for octet in command:
            got, events = feed(server, bytes([octet]))
            lines += got
            assert not any(isinstance(e, ImproperPipelining) for e in events)
        assert lines, command
    assert lines[-1].startswith("221")


def test_strict_quit_pipelined_after_the_dot_is_fine_with_pipelining_only() -> None:
    for offered, last in ((True, "221"), (False, "554")):
        server = tls_server(strict=True, pipelining_offered=offered)
        feed(server, b"EHLO c\r\n")
        feed(server, b"MAIL FROM:<a@b.example>\r\n")
        feed(server, b"RCPT TO:<s@u.example>\r\n")
        feed(server, b"DATA\r\n")
        lines, _ = feed(server, b"hi\r\n.\r\nQUIT\r\n")
        assert lines[0].startswith("250") and lines[-1].startswith(last)
