"""The seed tutorial's dialogue, typed at the real ``mailsim serve`` command, then read by POP3.

A student who runs ``mailsim serve --domain India.com --user Steve:secret --replies classic`` and
types the tutorial's client lines into ``nc -C`` must see the tutorial's server lines, byte for
byte, and Steve must then find the message with any POP3 client. This file starts the real
command in a subprocess; the other live tests run the server in-process.
"""

from __future__ import annotations

import os
import poplib
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import mailsim

pytestmark = pytest.mark.live

ROOT = Path(mailsim.__file__).resolve().parent.parent

# (what the client types, what the server must answer; None = no reply, it is message text)
TUTORIAL = [
    (None, "220 India.com"),
    ("HELO USA.com", "250 Hello USA.com, Nice to meet you."),
    ("MAIL FROM:<James@USA.com>", "250 James@USA.com.... Sender OK."),
    ("RCPT TO:<Steve@India.com>", "250 Steve@India.com... Recipient OK."),
    ("DATA", '354 Enter Mail, end with "." on a line by itself.'),
    ("Do you have a Grammar Book?", None),
    ("What about Atlas?", None),
    (".", "250 Message accepted for delivery."),
    ("QUIT", "221 India.com closing connection."),
]


def start_serve(maildir: Path, *args: str) -> tuple[subprocess.Popen[str], dict[str, int]]:
    """Run ``mailsim serve`` on free ports; returns the process and its printed ports."""
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    )
    command = [
        sys.executable, "-m", "mailsim.cli", "serve", "--maildir", str(maildir),
        "--smtp-port", "0", "--submission-port", "0", "--pop3-port", "0", "--quiet", *args,
    ]  # fmt: skip
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT
    )
    assert process.stdout is not None
    ports: dict[str, int] = {}
    names = {"SMTP": "smtp", "submission": "submission", "POP3": "pop3"}
    deadline = time.monotonic() + 20
    for line in process.stdout:
        match = re.match(r"\s+(SMTP|submission|POP3)\s.*:(\d+)$", line.rstrip())
        if match:
            ports[names[match[1]]] = int(match[2])
        if line.startswith("Stop with Ctrl+C") or time.monotonic() > deadline:
            break
    if len(ports) != 3:
        process.kill()
        raise AssertionError(f"mailsim serve did not start: {process.stderr.read()}")  # type: ignore[union-attr]
    return process, ports


def test_tutorial_dialogue_gets_the_tutorial_replies_and_steve_reads_it_by_pop3(tmp_path):
    process, ports = start_serve(
        tmp_path / "maildir", "--domain", "India.com", "--user", "Steve:secret",
        "--replies", "classic",
    )  # fmt: skip
    try:
        seen = []
        with socket.create_connection(("127.0.0.1", ports["smtp"]), timeout=10) as sock:
            replies = sock.makefile("rb")
            for typed, expected in TUTORIAL:
                if typed is not None:
                    sock.sendall(typed.encode("ascii") + b"\r\n")  # nc -C sends CRLF
                if expected is not None:
                    seen.append(replies.readline().decode("ascii").rstrip("\r\n"))
            assert replies.read() == b""  # the server closed after 221
        assert seen == [expected for _, expected in TUTORIAL if expected is not None]

        pop = poplib.POP3("127.0.0.1", ports["pop3"], timeout=10)
        pop.user("Steve")
        pop.pass_("secret")
        count, _ = pop.stat()
        assert count == 1
        _, lines, _ = pop.retr(1)
        pop.quit()
        assert lines[-2:] == [b"Do you have a Grammar Book?", b"What about Atlas?"]
        assert lines[0].startswith(b"Return-Path: <James@USA.com>")
        assert any(line.startswith(b"Received: from USA.com") for line in lines)
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=15)
    assert process.returncode == 0, err
    assert "stopped; 1 messages stored" in err
