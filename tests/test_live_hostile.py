"""The live server under hostile clients (issue 15): each test reproduces one finding.

They assert on the mechanism (what the server holds, how many replies it built, when it hangs
up), not on RSS, so they are stable on a busy 2-core machine.
"""

from __future__ import annotations

import base64
import contextlib
import poplib
import select
import smtplib
import socket
import threading
import time

import pytest
from waiting import wait_for

from mailsim.live import pop3_session
from mailsim.live.cli import plaintext_auth_warning
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


def small_receiver(port: int) -> socket.socket:
    """A client socket with a tiny receive buffer: it reads nothing, the kernel holds little."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(10)
    sock.connect(("127.0.0.1", port))
    return sock


def read_until(sock: socket.socket, marker: bytes) -> bytes:
    data = b""
    while marker not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def read_until_closed(sock: socket.socket) -> bytes:
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    return data


def deliver(running: ServerThread, content: bytes, count: int = 1) -> None:
    assert running.server is not None and running.server.store is not None
    running.server.store.deliver([("Steve", content)] * count)


def login_pop3(sock: socket.socket) -> None:
    read_until(sock, b"\r\n")
    sock.sendall(b"USER Steve\r\nPASS secret\r\n")
    read_until(sock, b"octets)\r\n")


# --- memory: output is bounded -------------------------------------------------------------------


def test_pipelined_retr_is_answered_a_step_at_a_time_not_built_all_at_once(tmp_path):
    # 1,000 x RETR of a 50 kB message in one write: ~50 MB if every reply is built first.
    body = b"Subject: big\r\n\r\n" + b"x" * 78 + b"\r\n"
    with ServerThread(config(tmp_path)) as running:
        deliver(running, body * 625)  # about 50 kB
        with small_receiver(running.ports["pop3"]) as sock:
            login_pop3(sock)
            sock.sendall(b"RETR 1\r\n" * 1000)
            time.sleep(1.0)  # the server does all it can while nobody reads
            (session,) = running.server.pop3_sessions
            buffered = session.writer.transport.get_write_buffer_size()
            built = session.retrieved
    # Socket buffers take a few MB; the server itself holds at most one step more.
    assert buffered <= pop3_session.STEP_OUTPUT_LIMIT + 64 * 1024
    assert built < 500, f"{built} RETR replies built for a client that reads nothing"


def test_smtp_replies_for_a_client_that_never_reads_do_not_pile_up(tmp_path):
    # NOOP pipelined without end, never reading: the server must stop reading, not buffer.
    with (
        ServerThread(config(tmp_path)) as running,
        small_receiver(running.ports["smtp"]) as sock,
    ):
        read_until(sock, b"\r\n")
        (session,) = running.server.smtp_sessions["smtp"]
        # A small kernel send buffer on the server's side too: what piles up is the server's.
        session.transport.get_extra_info("socket").setsockopt(
            socket.SOL_SOCKET, socket.SO_SNDBUF, 4096
        )
        sock.setblocking(False)
        chunk = b"NOOP\r\n" * 10_000
        sent = 0
        paused = False
        deadline = time.monotonic() + 10.0
        while not paused and time.monotonic() < deadline:
            with contextlib.suppress(BlockingIOError):
                sent += sock.send(chunk)
            time.sleep(0.005)
            paused = not session.transport.is_reading()
        buffered = session.transport.get_write_buffer_size()
        assert paused, f"the server kept reading ({sent} octets sent, {buffered} buffered)"
        # Reading stops once the transport is over its high-water mark (64 KiB); one read's
        # replies (at most 256 KiB of NOOPs, 14 octets out per 6 in) may come on top.
        assert buffered < 1024 * 1024, f"{buffered} octets of replies buffered"
        # Once the client reads, the server reads again.
        sock.settimeout(0.2)
        deadline = time.monotonic() + 10.0
        while not session.transport.is_reading() and time.monotonic() < deadline:
            with contextlib.suppress(TimeoutError):
                sock.recv(65536)
        assert session.transport.is_reading()


# --- time: a client that stops reading, or dribbles, is cut off ---------------------------------


def test_a_pop3_client_that_stops_reading_a_retr_loses_the_session_and_the_lock(tmp_path):
    big = b"Subject: big\r\n\r\n" + (b"y" * 998 + b"\r\n") * 8000  # 8 MB: more than buffers hold
    with ServerThread(config(tmp_path, pop3_idle_timeout=0.5)) as running:
        deliver(running, big, count=2)
        with small_receiver(running.ports["pop3"]) as sock:
            login_pop3(sock)
            sock.sendall(b"DELE 2\r\nRETR 1\r\n")  # and then neither reads nor closes
            store = running.server.store
            assert wait_for(lambda: not running.server.pop3_sessions, timeout=10)
            assert not store.is_locked("Steve")
        pop = poplib.POP3("127.0.0.1", running.ports["pop3"], timeout=10)
        pop.user("Steve")
        pop.pass_("secret")
        assert pop.stat()[0] == 2  # no UPDATE: the DELE was not carried out
        pop.quit()


def test_relogin_right_after_closing_waits_for_the_old_session_instead_of_in_use(tmp_path):
    with ServerThread(config(tmp_path)) as running:
        old = poplib.POP3("127.0.0.1", running.ports["pop3"], timeout=10)
        old.user("Steve")
        old.pass_("secret")
        new = poplib.POP3("127.0.0.1", running.ports["pop3"], timeout=10)
        new.user("Steve")
        # The old client goes without QUIT a moment after the new one asks for the maildrop.
        threading.Timer(0.2, lambda: (old.file.close(), old.sock.close())).start()
        assert new.pass_("secret").startswith(b"+OK")
        new.quit()


@pytest.mark.parametrize("service", ["smtp", "pop3"])
def test_one_byte_a_second_cannot_hold_a_session(tmp_path, service):
    with (
        ServerThread(config(tmp_path, line_timeout=0.6)) as running,
        socket.create_connection(("127.0.0.1", running.ports[service]), timeout=10) as sock,
    ):
        read_until(sock, b"\r\n")
        started = time.monotonic()
        answered = False
        for byte in b"NOOOOOOOOOOOOOOOOOOOOOOOOOOOOOOOOOOOOOOOOOOOOOOOOOOP":
            sock.sendall(bytes([byte]))
            # Every byte restarts an idle timer; the line's deadline stands.
            if select.select([sock], [], [], 0.1)[0]:
                answered = True
                break
        waited = time.monotonic() - started
        tail = read_until_closed(sock)
    assert answered, "the session was still open after 5 s of one byte per 0.1 s"
    assert 0.5 < waited < 4.0
    expected = b"421 4.4.2" if service == "smtp" else b"-ERR command line not finished in time"
    assert expected in tail


def test_short_lines_now_and_then_cannot_hold_the_data_phase(tmp_path):
    # Each line ends at once and restarts the idle timer: only the whole-DATA deadline
    # (RFC 5321 4.5.3.2: 3 minutes a block, 10 for the dot; here 1 s) ends the session.
    envelope = b"HELO c\r\nMAIL FROM:<j@b.example>\r\nRCPT TO:<Steve@India.com>\r\nDATA\r\n"
    with (
        ServerThread(config(tmp_path, data_timeout=1.0, line_timeout=0.5)) as running,
        socket.create_connection(("127.0.0.1", running.ports["smtp"]), timeout=10) as sock,
    ):
        read_until(sock, b"\r\n")
        sock.sendall(envelope)
        read_until(sock, b"354")
        started = time.monotonic()
        cut = False
        for number in range(50):
            with contextlib.suppress(OSError):
                sock.sendall(b"line %d\r\n" % number)
            if select.select([sock], [], [], 0.1)[0]:
                cut = True
                break
        waited = time.monotonic() - started
        tail = read_until_closed(sock)
        assert running.server is not None
        stored = running.server.stored
    assert cut, "the DATA phase was still open after 5 s of a line per 0.1 s"
    assert 0.9 < waited < 3.0
    assert tail.startswith(b"421 4.4.2")
    assert stored == 0  # nothing of an unfinished message is kept (RFC 5321 3.8)


def test_the_data_deadline_ends_with_the_message(tmp_path):
    # The deadline is the message's, not the session's: a second message after a pause passes.
    with ServerThread(config(tmp_path, data_timeout=0.5)) as running:
        client = smtplib.SMTP("127.0.0.1", running.ports["smtp"], timeout=10)
        client.ehlo("c")
        client.sendmail("j@b.example", ["Steve@India.com"], b"Subject: one\r\n\r\nfirst\r\n")
        time.sleep(1.0)
        client.sendmail("j@b.example", ["Steve@India.com"], b"Subject: two\r\n\r\nsecond\r\n")
        client.quit()
        assert running.server is not None
        assert running.server.stored == 2


def test_connections_per_client_address_are_capped_over_all_listeners(tmp_path):
    with ServerThread(config(tmp_path, max_per_address=2)) as running:
        smtp = socket.create_connection(("127.0.0.1", running.ports["smtp"]), timeout=10)
        pop = socket.create_connection(("127.0.0.1", running.ports["pop3"]), timeout=10)
        read_until(smtp, b"\r\n")
        read_until(pop, b"\r\n")
        with socket.create_connection(("127.0.0.1", running.ports["smtp"]), timeout=10) as third:
            assert read_until_closed(third).startswith(
                b"421 4.7.0 India.com Error: too many connections from your address"
            )
        with socket.create_connection(("127.0.0.1", running.ports["pop3"]), timeout=10) as third:
            assert read_until_closed(third).startswith(
                b"-ERR [SYS/TEMP] too many connections from your address"
            )
        smtp.close()
        pop.close()
        # Closed connections give their places back.
        assert wait_for(lambda: running.server.open_connections() == 0)
        with smtplib.SMTP("127.0.0.1", running.ports["smtp"], timeout=10) as client:
            assert client.noop()[0] == 250


# --- password guessing -------------------------------------------------------------------------


def plain(user: str, password: str) -> str:
    return base64.b64encode(f"\0{user}\0{password}".encode()).decode()


def test_failed_smtp_auth_is_answered_late_then_the_address_is_locked_out(tmp_path):
    settings = dict(auth_failure_delay=0.3, auth_lockout_failures=3, auth_lockout_window=60)
    with ServerThread(config(tmp_path, **settings)) as running:
        with socket.create_connection(("127.0.0.1", running.ports["submission"]), timeout=10) as s:
            read_until(s, b"\r\n")
            s.sendall(b"EHLO guesser\r\n")
            ehlo = read_until(s, b"250 ")
            if not ehlo.endswith(b"\r\n"):
                read_until(s, b"\r\n")
            # Three guesses pipelined in one write: one password per delay, not all at once.
            started = time.monotonic()
            s.sendall(
                b"".join(f"AUTH PLAIN {plain('Steve', f'w{n}')}\r\n".encode() for n in range(3))
            )
            replies = b""
            while replies.count(b"\r\n") < 3:
                replies += s.recv(4096)
            waited = time.monotonic() - started
        assert replies.count(b"535 5.7.8") == 3
        assert waited >= 0.85
        with smtplib.SMTP("127.0.0.1", running.ports["submission"], timeout=10) as client:
            client.ehlo("someone")
            code, text = client.docmd("AUTH", f"PLAIN {plain('Steve', 'secret')}")
    assert code == 454  # locked out: even the right password is not looked at
    assert b"4.7.0 Too many failed logins from your address" in text


def test_failed_pop3_logins_are_answered_late_then_the_address_is_locked_out(tmp_path):
    settings = dict(auth_failure_delay=0.3, auth_lockout_failures=3, auth_lockout_window=60)
    with ServerThread(config(tmp_path, **settings)) as running:
        with socket.create_connection(("127.0.0.1", running.ports["pop3"]), timeout=10) as sock:
            read_until(sock, b"\r\n")
            started = time.monotonic()
            sock.sendall(b"".join(b"USER Steve\r\nPASS w%d\r\n" % n for n in range(3)))
            replies = b""
            while replies.count(b"-ERR") < 3:
                replies += sock.recv(4096)
            waited = time.monotonic() - started
        assert waited >= 0.85
        pop = poplib.POP3("127.0.0.1", running.ports["pop3"], timeout=10)
        pop.user("Steve")
        with pytest.raises(poplib.error_proto, match=r"-ERR \[AUTH\]"):
            pop.pass_("secret")  # locked out: the right password fails too
        pop.quit()


@pytest.mark.parametrize(
    ("host", "tls", "warned"),
    [
        ("127.0.0.1", False, False),
        ("::1", False, False),
        ("localhost", False, False),
        ("0.0.0.0", False, True),
        ("192.0.2.7", False, True),
        ("0.0.0.0", True, False),
    ],
)
def test_serve_warns_when_passwords_would_cross_the_network_in_plaintext(
    tmp_path, host, tls, warned
):
    warning = plaintext_auth_warning(config(tmp_path, host=host, tls=tls))
    assert (warning is not None) is warned
    if warned:
        assert "--tls" in warning and host in warning


# --- POP3 bare LF --------------------------------------------------------------------------------


def test_live_pop3_answers_a_bare_lf_line_with_a_hint(tmp_path):
    with (
        ServerThread(config(tmp_path)) as running,
        socket.create_connection(("127.0.0.1", running.ports["pop3"]), timeout=10) as sock,
    ):
        read_until(sock, b"\r\n")
        sock.sendall(b"USER Steve\n")  # nc without -C
        reply = read_until(sock, b"\r\n")
    assert reply == b"-ERR line ended by a bare <LF>; end lines with <CR><LF> (nc -C)\r\n"
