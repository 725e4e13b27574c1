"""The live server's limits: idle timeouts, the connection limit, the size limit, shutdown."""

from __future__ import annotations

import poplib
import smtplib
import socket
import time

import pytest

from mailsim.live.server import ServeConfig, ServerThread

pytestmark = pytest.mark.live


def config(tmp_path, **changes):
    settings = dict(
        domains=("India.com",),
        users={"Steve": "secret"},
        maildir=tmp_path / "maildir",
        smtp_port=0,
        submission_port=0,
        pop3_port=0,
    )
    settings.update(changes)
    return ServeConfig(**settings)


def read_until_closed(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(4096):
        data += chunk
    return data


def test_silent_smtp_client_gets_421_442_after_the_idle_timeout(tmp_path):
    with (
        ServerThread(config(tmp_path, idle_timeout=0.3)) as running,
        socket.create_connection(("127.0.0.1", running.ports["smtp"]), timeout=10) as sock,
    ):
        sock.sendall(b"EHLO USA.com\r\n")
        started = time.monotonic()
        data = read_until_closed(sock)
        waited = time.monotonic() - started
    *_, last = data.rstrip(b"\r\n").split(b"\r\n")
    assert last == b"421 4.4.2 India.com Error: timeout exceeded"  # RFC 5321 4.5.3.2.7
    assert 0.25 < waited < 5


def test_silent_pop3_client_is_logged_out_without_deleting(tmp_path):
    with ServerThread(config(tmp_path, pop3_idle_timeout=0.3)) as running:
        with smtplib.SMTP("127.0.0.1", running.ports["smtp"], timeout=10) as smtp:
            smtp.sendmail("a@USA.com", ["Steve@India.com"], "Subject: x\r\n\r\nx\r\n")
        with socket.create_connection(("127.0.0.1", running.ports["pop3"]), timeout=10) as sock:
            sock.sendall(b"USER Steve\r\nPASS secret\r\nDELE 1\r\n")
            data = read_until_closed(sock)
        assert data.rstrip(b"\r\n").split(b"\r\n")[-1].startswith(b"-ERR autologout")
        pop = poplib.POP3("127.0.0.1", running.ports["pop3"], timeout=10)
        pop.user("Steve")
        pop.pass_("secret")
        assert pop.stat()[0] == 1  # RFC 1939 3: autologout does not enter UPDATE
        pop.quit()


def test_connection_over_the_limit_gets_421_470_and_is_closed(tmp_path):
    with ServerThread(config(tmp_path, max_connections=2)) as running:
        port = running.ports["smtp"]
        held = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(2)]
        for sock in held:
            assert sock.recv(100).startswith(b"220 ")
        with socket.create_connection(("127.0.0.1", port), timeout=10) as extra:
            refused = read_until_closed(extra)
        assert refused == b"421 4.7.0 India.com Error: too many connections, try again later\r\n"
        held.pop().close()
        deadline = time.monotonic() + 5
        while True:  # the server notices the close a moment later
            with socket.create_connection(("127.0.0.1", port), timeout=10) as again:
                if again.recv(100).startswith(b"220 ") or time.monotonic() > deadline:
                    break
            time.sleep(0.02)
        held[0].close()
    assert again is not None


def test_message_over_the_size_limit_gets_552_and_is_not_stored(tmp_path):
    with (
        ServerThread(config(tmp_path, max_message_size=2000)) as running,
        smtplib.SMTP("127.0.0.1", running.ports["smtp"], timeout=10) as smtp,
    ):
        smtp.ehlo("USA.com")
        assert smtp.esmtp_features["size"] == "2000"
        # Without SIZE= the limit bites at the final dot (RFC 5321 4.2.5, RFC 1870).
        smtp.mail("a@USA.com")
        smtp.rcpt("Steve@India.com")
        # 16 + 60 * 72 = 4336 octets of content, over the 2000 allowed.
        code, _ = smtp.data(b"Subject: big\r\n\r\n" + (b"y" * 70 + b"\r\n") * 60)
        assert code == 552
        assert smtp.noop()[0] == 250  # the session goes on
    assert not any((tmp_path / "maildir" / "Steve" / "new").iterdir())


def test_shutdown_says_421_to_connected_clients(tmp_path):
    running = ServerThread(config(tmp_path))
    running.start()
    with socket.create_connection(("127.0.0.1", running.ports["smtp"]), timeout=10) as sock:
        sock.sendall(b"EHLO USA.com\r\n")
        time.sleep(0.1)
        running.stop()
        data = read_until_closed(sock)
    assert data.rstrip(b"\r\n").split(b"\r\n")[-1].startswith(b"421 4.3.2 ")
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", running.ports["smtp"]), timeout=2)
