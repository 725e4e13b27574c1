"""mailsim serve's lab options on real sockets: --fault, --strict, --no-pipelining, --report."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mailsim.live.cli import parse_faults
from mailsim.live.faults import LiveFault
from mailsim.live.server import ServeConfig, ServerThread

pytestmark = pytest.mark.live


def serve(tmp_path: Path, **changes: object) -> ServerThread:
    settings: dict[str, object] = dict(
        domains=("usa.com",),
        users={"steve": "secret"},
        maildir=tmp_path / "maildir",
        smtp_port=0,
        submission_port=None,
        pop3_port=None,
        record_sessions=True,
    )
    settings.update(changes)
    return ServerThread(ServeConfig(**settings))  # type: ignore[arg-type]


def talk(port: int, lines: list[bytes], *, wait: bool = True) -> list[str]:
    """Send lines (each after the previous reply when ``wait``); every reply line received."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    conn = sock.makefile("rb")

    def reply() -> list[str]:
        got = []
        while True:
            line = conn.readline().decode().rstrip("\r\n")
            got.append(line)
            if not line or line[3:4] != "-":
                return got

    out = reply()
    if not wait:
        sock.sendall(b"".join(lines))
        out += [line.decode().rstrip("\r\n") for line in conn]
        return out
    for line in lines:
        sock.sendall(line)
        out += reply()
    sock.close()
    return out


def test_fault_specs_parse_both_spellings_and_bad_ones_are_located() -> None:
    problems: list[str] = []
    faults = parse_faults(
        (
            "RCPT 550 5.1.1 User unknown",
            "{command: RCPT, code: 451, first_attempt_only: true}",
            "{command: EHLO, delay: 0.2s}",
            "{command: dot, code: 552, text: [5.3.4 Too big, see the limit]}",
            "{command: RCPT, code: 550, for: Bob@usa.com, port: 587}",
        ),
        problems,
    )
    assert problems == []
    assert faults[0] == LiveFault("RCPT", 550, ("5.1.1 User unknown",))
    assert faults[1].lines == ("4.7.1 Greylisted, please try again later",)
    assert faults[2].code is None and faults[2].delay == 0.2
    assert faults[3].lines == ("5.3.4 Too big", "see the limit")
    assert faults[4].address == "Bob@usa.com" and faults[4].role == "submission"
    bad: list[str] = []
    parse_faults(("{comand: RCPT, code: 550}", "CONNECT 451", "{command: RCPT, code: 250}"), bad)
    assert bad == [
        "--fault[1]:1:2: comand: unknown key; did you mean 'command'?",
        "--fault[2]:1:1: code: 451 is not a reply to a greeting; a fault there is 421 or 554 "
        "(RFC 5321 4.3.2)",
        "--fault[3]:1:23: code: must be at least 400, got 250",
    ]


def test_a_live_fault_takes_the_codes_its_step_may_get_like_a_scenario() -> None:
    # One table for both (RFC 5321 4.3.2): EHLO cannot get 451, the final dot cannot get 553.
    bad: list[str] = []
    faults = parse_faults(("EHLO 451", "dot 553", "RCPT 452", "DATA 530"), bad)
    assert bad == [
        "--fault[1]:1:1: code: 451 is not a reply to EHLO; a fault there is 421, 502, 504 or "
        "550 (RFC 5321 4.3.2)",
        "--fault[2]:1:1: code: 553 is not a reply to the final dot; a fault there is 421, 450, "
        "451, 452, 550, 552 or 554 (RFC 5321 4.3.2)",
    ]
    assert [(fault.command, fault.code) for fault in faults] == [("RCPT", 452), ("DATA", 530)]


def test_serve_with_a_bad_fault_exits_2_with_the_position() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mailsim.cli", "serve", "--fault", "{command: RCPT, cod: 5}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == "--fault:1:17: cod: unknown key; did you mean 'code'?"


def test_fault_for_one_recipient_multiline_and_greylisting(tmp_path: Path) -> None:
    faults = (
        LiveFault(
            "RCPT", 550, ("5.1.1 no such user here", "ask the postmaster"), address="b@usa.com"
        ),
        LiveFault(
            "RCPT", 451, ("4.7.1 Greylisted",), first_attempt_only=True, address="steve@usa.com"
        ),
    )
    with serve(tmp_path, faults=faults) as running:
        port = running.ports["smtp"]
        dialogue = [b"HELO c\r\n", b"MAIL FROM:<j@india.com>\r\n"]
        first = talk(port, [*dialogue, b"RCPT TO:<b@usa.com>\r\n", b"RCPT TO:<steve@usa.com>\r\n"])
        assert first[-3:] == [
            "550-5.1.1 no such user here",
            "550 ask the postmaster",
            "451 4.7.1 Greylisted",
        ]
        again = talk(port, [*dialogue, b"RCPT TO:<steve@usa.com>\r\n"])
        assert again[-1] == "250 2.1.5 Ok"  # the retry passes the greylist


def test_slow_reply_comes_line_by_line(tmp_path: Path) -> None:
    with serve(tmp_path, faults=(LiveFault("EHLO", delay=0.2),)) as running:
        start = time.monotonic()
        lines = talk(running.ports["smtp"], [b"EHLO c\r\n"])
        took = time.monotonic() - start
    ehlo = [line for line in lines if line.startswith("250")]
    assert len(ehlo) >= 5 and took >= 0.2 * len(ehlo) * 0.9


def test_service_closing_fault_hangs_up(tmp_path: Path) -> None:
    with serve(tmp_path, faults=(LiveFault("MAIL", 421, ("4.3.2 Bye for now",)),)) as running:
        lines = talk(running.ports["smtp"], [b"HELO c\r\nMAIL FROM:<a@b.example>\r\n"], wait=False)
    assert lines[-1] == "421 4.3.2 Bye for now"


def test_strict_blast_gets_554_and_the_report_marks_it(tmp_path: Path) -> None:
    report = tmp_path / "sessions.jsonl"
    blast = [b"EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<steve@usa.com>\r\nDATA\r\n"]
    with serve(tmp_path, strict=True, report=report) as running:
        lines = talk(running.ports["smtp"], blast, wait=False)
        polite = talk(running.ports["smtp"], [b"EHLO c\r\n", b"QUIT\r\n"])
    assert lines[-1] == "554 5.5.0 Error: SMTP protocol synchronization"
    assert polite[-1].startswith("221")
    records = [json.loads(line) for line in report.read_text().splitlines()]
    assert len(records) == 2
    first, second = records
    assert first["verdicts"]["improper_pipelining"] == {
        "after": "EHLO",
        "unexpected": "MAIL FROM:<a@b.example>",
    }
    assert first["verdicts"]["synchronised"] is False
    assert first["commands"][:2] == ["EHLO c", "MAIL FROM:<a@b.example>"]
    assert second["verdicts"]["synchronised"] is True and second["verdicts"]["ending"] == "quit"
    assert all(item["wait"] >= 0 for item in second["dialogue"])
    assert second["client"].startswith("127.0.0.1:")


def test_strict_catches_a_client_that_reads_only_part_of_a_slow_reply(tmp_path: Path) -> None:
    with serve(tmp_path, strict=True, faults=(LiveFault("EHLO", delay=0.3),)) as running:
        sock = socket.create_connection(("127.0.0.1", running.ports["smtp"]), timeout=10)
        conn = sock.makefile("rb")
        conn.readline()
        sock.sendall(b"EHLO c\r\n")
        conn.readline()  # the first line only, then on
        sock.sendall(b"MAIL FROM:<a@b.example>\r\n")
        rest = [line.decode().rstrip() for line in conn]
    assert rest[-1] == "554 5.5.0 Error: SMTP protocol synchronization"


def test_no_pipelining_is_not_advertised(tmp_path: Path) -> None:
    with serve(tmp_path, pipelining=False) as running:
        lines = talk(running.ports["smtp"], [b"EHLO c\r\n"])
    assert "250-PIPELINING" not in lines and lines[1].startswith("250-")


def test_directory_fsync_is_skipped_on_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    from mailsim.live import storage

    def refuse(*args: object) -> int:
        raise PermissionError(13, "Permission denied")  # what os.open(dir) does on Windows

    monkeypatch.setattr(storage.os, "name", "nt")
    monkeypatch.setattr(storage.os, "open", refuse)
    storage._fsync_directory(".")  # no error: nothing to do there


def test_a_reset_while_closing_is_an_ordinary_disconnect(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import asyncio

    from mailsim.live.smtp_session import SMTPSession

    class ResetTransport(asyncio.Transport):
        def can_write_eof(self) -> bool:
            return True

        def write_eof(self) -> None:
            raise ConnectionResetError(104, "Connection reset by peer")

        def abort(self) -> None:
            self.aborted = True

        def is_closing(self) -> bool:
            return False

    async def main() -> ResetTransport:
        session = SMTPSession.__new__(SMTPSession)
        session.transport = transport = ResetTransport()
        session.finishing = False
        session.recorder = None
        session.timer = None
        session.peer_eof = False
        session._write_paused = False
        session.ending = "quit"
        session._finish()
        assert session.ending == "peer reset"
        return transport

    transport = asyncio.run(main())
    assert transport.aborted
