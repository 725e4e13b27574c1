"""The one-server ``mailsim serve`` says what the simulated servers say (issue 15): no AUTH on the
MX port, Postfix's refusals from the shared table, a submission completed with Date and
Message-ID (RFC 6409 8), each local copy filed with Return-Path and Delivered-To (RFC 5321 4.4)."""

from __future__ import annotations

import email
import smtplib
from pathlib import Path

import pytest

from mailsim.live.server import ServeConfig, ServerThread
from mailsim.protocol.smtp import ReplyTexts, policy_reply

pytestmark = pytest.mark.live


@pytest.fixture
def running(tmp_path: Path):
    config = ServeConfig(
        domains=("India.com",),
        users={"Steve": "secret", "Ravi": "0123"},
        maildir=tmp_path / "maildir",
        smtp_port=0,
        submission_port=0,
        pop3_port=0,
    )
    with ServerThread(config) as server:
        yield server


def stored(tmp_path: Path, user: str) -> list[email.message.Message]:
    folder = tmp_path / "maildir" / user / "new"
    return [email.message_from_bytes(p.read_bytes()) for p in sorted(folder.iterdir())]


def test_the_mx_port_offers_no_auth_and_refuses_as_the_table_says(running, tmp_path) -> None:
    with smtplib.SMTP("127.0.0.1", running.ports["smtp"], timeout=10) as smtp:
        code, features = smtp.ehlo("usa.com")
        assert b"AUTH" not in features
        assert smtp.docmd("AUTH", "PLAIN AGZvbwBiYXI=")[0] == 502  # as the simulated MX says
        smtp.mail("james@usa.com")
        code, text = smtp.rcpt("nobody@India.com")
    expected = policy_reply(ReplyTexts.MODERN, "unknown_user", address="nobody@India.com")
    assert (code, text.decode()) == (expected.code, expected.text)


def test_a_submitted_message_gets_date_and_message_id(running, tmp_path) -> None:
    with smtplib.SMTP("127.0.0.1", running.ports["submission"], timeout=10) as smtp:
        smtp.login("Steve", "secret")
        smtp.sendmail("Steve@India.com", ["Ravi@India.com"], "Subject: notes\r\n\r\nhi\r\n")
    [message] = stored(tmp_path, "Ravi")
    assert message["Date"] and message["Message-ID"].endswith("@India.com>")


def test_the_mx_port_stores_a_message_as_it_came(running, tmp_path) -> None:
    with smtplib.SMTP("127.0.0.1", running.ports["smtp"], timeout=10) as smtp:
        smtp.sendmail("james@usa.com", ["Ravi@India.com"], "Subject: notes\r\n\r\nhi\r\n")
    [message] = stored(tmp_path, "Ravi")
    assert message["Date"] is None and message["Message-ID"] is None


def test_each_local_copy_names_its_own_recipient(running, tmp_path) -> None:
    with smtplib.SMTP("127.0.0.1", running.ports["smtp"], timeout=10) as smtp:
        smtp.sendmail(
            "james@usa.com", ["Steve@India.com", "ravi@india.com"], "Subject: x\r\n\r\nx\r\n"
        )
    [steve], [ravi] = stored(tmp_path, "Steve"), stored(tmp_path, "Ravi")
    assert steve["Return-Path"] == "<james@usa.com>" and steve["Delivered-To"] == "Steve@India.com"
    assert ravi["Return-Path"] == "<james@usa.com>" and ravi["Delivered-To"] == "ravi@india.com"
    assert list(steve.keys())[:3] == ["Return-Path", "Delivered-To", "Received"]
