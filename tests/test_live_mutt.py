"""mutt with default settings against ``mailsim serve --tls``: STARTTLS to send, STLS to fetch.

Sending is mutt's batch mode (no terminal needed). Reading needs its full-screen interface, so mutt
runs in a pseudo-terminal with ``push "<fetch-mail><quit>"``: it logs in over POP3, fetches into a
local mbox and quits. The server takes passwords only under TLS, so both succeeding proves mutt
negotiated STARTTLS and STLS. Skipped where mutt is not installed (``.ci/run`` installs it).
"""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import sys
import time

import pytest

from mailsim.live.server import ServeConfig, ServerThread

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(shutil.which("mutt") is None, reason="mutt is not installed"),
    pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal"),
]


def muttrc(tmp_path, running) -> str:
    ports = running.ports
    text = f"""set from="Steve@India.com"
set hostname="India.com"
set record=""
set folder="{tmp_path}"
set spoolfile="{tmp_path}/inbox"
set mbox_type=mbox
set header_cache=""
set move=no
set quit=yes
set sleep_time=0
set smtp_url="smtp://Steve@127.0.0.1:{ports["submission"]}/"
set smtp_pass="secret"
set pop_host="pop://Steve@127.0.0.1:{ports["pop3"]}"
set pop_pass="secret"
set pop_delete=no
set ssl_starttls=yes
set ssl_force_tls=yes
set ssl_ca_certificates_file="{running.server.tls_ca}"
"""
    path = tmp_path / "muttrc"
    path.write_text(text)
    return str(path)


def run_in_pty(argv: list[str], env: dict[str, str], timeout: float = 30.0) -> tuple[int, bytes]:
    """Run a full-screen program in a 80x24 pseudo-terminal; (exit status, what it drew)."""
    import fcntl
    import pty
    import struct
    import termios

    pid, fd = pty.fork()
    if pid == 0:  # the child: become mutt
        os.execvpe(argv[0], argv, env)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    screen = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if select.select([fd], [], [], 0.2)[0]:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:  # the child closed the terminal
                    chunk = b""
                screen += chunk
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return os.waitstatus_to_exitcode(status), screen
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        return -9, screen
    finally:
        os.close(fd)


def test_mutt_sends_by_starttls_and_fetches_by_stls(tmp_path):
    config = ServeConfig(
        domains=("India.com",),
        users={"Steve": "secret"},
        maildir=tmp_path / "maildir",
        smtp_port=0,
        submission_port=0,
        pop3_port=0,
        tls=True,
        smtps_port=0,
        pop3s_port=0,
    )
    env = dict(os.environ, HOME=str(tmp_path), TERM="xterm")
    with ServerThread(config) as running:
        rc = muttrc(tmp_path, running)
        sent = subprocess.run(
            ["mutt", "-n", "-F", rc, "-s", "hello from mutt", "Steve@India.com"],
            input=b"Namaste, Steve.\n",
            env=env,
            capture_output=True,
            timeout=30,
        )
        assert sent.returncode == 0, sent.stderr
        (stored,) = (tmp_path / "maildir" / "Steve" / "new").iterdir()
        assert "with ESMTPSA" in stored.read_text()  # RFC 3848: under TLS, authenticated
        (tmp_path / "inbox").touch()
        status, screen = run_in_pty(
            ["mutt", "-n", "-F", rc, "-e", 'push "<fetch-mail><quit>"'], env
        )
    assert status == 0, screen[-500:]
    inbox = (tmp_path / "inbox").read_text()
    assert "Subject: hello from mutt" in inbox
    assert "Namaste, Steve." in inbox
