"""Junk thrown at every live port costs that one connection, never the server.

One megabyte of random octets goes to SMTP, submission and POP3 in turn. The machines answer
what they can parse with error replies; the adapter hangs up on a client that sends kilobytes
without a single command line; the next client is served normally.
"""

from __future__ import annotations

import poplib
import random
import smtplib
import socket

import pytest

from mailsim.live.server import ServeConfig, ServerThread

pytestmark = pytest.mark.live


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    config = ServeConfig(
        domains=("India.com",),
        users={"Steve": "secret"},
        maildir=tmp_path_factory.mktemp("garbage") / "maildir",
        smtp_port=0,
        submission_port=0,
        pop3_port=0,
    )
    with ServerThread(config) as server:
        yield server


def throw(port: int, junk: bytes) -> bytes:
    """Send ``junk``, stop sending, and return everything the server says until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        try:
            sock.sendall(junk)
            sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may hang up before it has read everything: that is fine too
        answer = b""
        while True:
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                break
            if not data:
                break  # the server closed the connection
            answer += data
    return answer


@pytest.mark.parametrize("service", ["smtp", "submission"])
def test_a_megabyte_of_random_octets_gets_smtp_errors_then_the_next_client_is_served(
    running, service
):
    junk = random.Random(f"junk-{service}").randbytes(1_000_000)
    answer = throw(running.ports[service], junk)
    lines = answer.split(b"\r\n")
    assert lines[0].startswith(b"220 ")
    errors = [line for line in lines[1:] if line[:1] in (b"4", b"5")]
    assert errors, answer[:500]
    assert errors[-1].startswith(b"421")  # said goodbye before closing
    with smtplib.SMTP("127.0.0.1", running.ports[service], timeout=10) as smtp:
        if service == "submission":
            smtp.login("Steve", "secret")
        assert smtp.sendmail("a@USA.com", ["Steve@India.com"], "Subject: ok\r\n\r\nok\r\n") == {}


def test_a_megabyte_of_random_octets_gets_pop3_errors_then_the_next_client_is_served(running):
    junk = random.Random("junk-pop3").randbytes(1_000_000)
    answer = throw(running.ports["pop3"], junk)
    lines = answer.split(b"\r\n")
    assert lines[0].startswith(b"+OK")
    assert any(line.startswith(b"-ERR") for line in lines[1:]), answer[:500]
    pop = poplib.POP3("127.0.0.1", running.ports["pop3"], timeout=10)
    pop.user("Steve")
    assert pop.pass_("secret").startswith(b"+OK")
    pop.quit()


def test_binary_lines_with_crlf_get_500_each_until_the_error_limit_closes(running):
    rng = random.Random("lines")
    # Short binary "commands", each ended by CRLF: every one is a 500, the 20th error ends it.
    junk = b"".join(rng.randbytes(40).replace(b"\r", b"").replace(b"\n", b"") + b"\r\n"
                    for _ in range(50))  # fmt: skip
    answer = throw(running.ports["smtp"], junk)
    lines = [line for line in answer.split(b"\r\n") if line]
    assert [line[:3] for line in lines[1:]] == [b"500"] * 20 + [b"421"]


def test_the_server_still_answers_after_a_client_vanishes_mid_message(running):
    with socket.create_connection(("127.0.0.1", running.ports["smtp"]), timeout=10) as sock:
        sock.sendall(b"EHLO x\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<Steve@India.com>\r\nDATA\r\nhalf a")
    with smtplib.SMTP("127.0.0.1", running.ports["smtp"], timeout=10) as smtp:
        assert smtp.noop()[0] == 250
