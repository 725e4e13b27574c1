"""`mailsim telnet HOST PORT`: the tutorial's exercise with nothing installed, against 127.0.0.1."""

from __future__ import annotations

import io
import os
import poplib
import signal
import socket
import subprocess
import sys
import threading

import pytest
from test_live_tutorial import ROOT, TUTORIAL, start_serve

from mailsim.live.telnet import run_session

pytestmark = pytest.mark.live


def test_the_tutorial_typed_through_mailsim_telnet_reads_like_the_transcript(tmp_path):
    process, ports = start_serve(
        tmp_path / "maildir", "--domain", "India.com", "--user", "Steve:secret",
        "--replies", "classic",
    )  # fmt: skip
    try:
        typed = "".join(f"{line}\n" for line, _ in TUTORIAL if line is not None)
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        done = subprocess.run(
            [sys.executable, "-m", "mailsim.cli", "telnet", "127.0.0.1", str(ports["smtp"])],
            input=typed,
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
        assert done.returncode == 0, done.stderr
        expected = []
        for line, reply in TUTORIAL:
            if line is not None:
                expected.append(f"C: {line}")
            if reply is not None:
                expected.append(f"S: {reply}")
        assert done.stdout.splitlines() == expected
        assert "closed" in done.stderr
        # ... and exactly what the README shows.
        readme = (ROOT / "README.md").read_text(encoding="utf-8")
        block = readme.split("$ mailsim telnet 127.0.0.1 2525\n", 1)[1].split("```", 1)[0]
        assert block.splitlines() == [*expected, "connection to 127.0.0.1:2525 closed"]
        # The lines went out with CRLF: the server took the message, and Steve can read it.
        pop = poplib.POP3("127.0.0.1", ports["pop3"], timeout=10)
        pop.user("Steve")
        pop.pass_("secret")
        assert pop.stat()[0] == 1
        pop.quit()
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=15)


def test_every_line_is_sent_with_crlf_and_a_bare_lf_reply_is_still_shown():
    received: list[bytes] = []
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def server() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.sendall(b"+OK hello\r\n")
            data = b""
            while data.count(b"\n") < 2:
                data += conn.recv(100)
            received.append(data)
            conn.sendall(b"+OK bye\n")  # a bare LF, as a sloppy server might send

    thread = threading.Thread(target=server, daemon=True)
    thread.start()
    out = io.StringIO()
    run_session("127.0.0.1", port, io.StringIO("USER steve\nQUIT\n"), out, interactive=False)
    thread.join(5)
    listener.close()
    assert received == [b"USER steve\r\nQUIT\r\n"]
    assert out.getvalue().splitlines() == ["S: +OK hello", "C: USER steve", "C: QUIT", "S: +OK bye"]


def test_a_port_nobody_listens_on_says_so_in_one_line_and_exits_1():
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]  # free once closed
    done = subprocess.run(
        [sys.executable, "-m", "mailsim.cli", "telnet", "127.0.0.1", str(port)],
        input="",
        capture_output=True,
        text=True,
        timeout=30,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    assert done.returncode == 1
    assert done.stderr.strip().startswith(f"mailsim telnet: cannot connect to 127.0.0.1:{port}")
    assert len(done.stderr.strip().splitlines()) == 1
