"""Bounces and delay warnings are RFC 3464 reports, go out with the null sender, and never loop."""

from __future__ import annotations

import email
import email.policy
import random

import pytest

from mailsim.mail.dsn import (
    SUBJECT_DELAYED,
    SUBJECT_FAILED,
    RecipientStatus,
    compose_dsn,
    diagnostic_code,
    make_report,
    parse_dsn,
    should_bounce,
    status_for,
)
from mailsim.mail.message import (
    MailItem,
    compose,
    make_message_id,
    seven_bit_problems,
    synthetic_attachment,
)

DAY = 86400.0


def _original(ret: str = "HDRS", sender: str = "james@india.com") -> MailItem:
    content = compose(
        "James <james@india.com>",
        "Steve <steve@usa.com>, bob@usa.com",
        "Grammar book",
        "Do you have a Grammar Book?\n",
        attachments=[synthetic_attachment("photo", 20_000, random.Random(1))],
        message_id=make_message_id("m1", "india.com"),
        date_t=0.0,
    )
    return MailItem("m1", sender, ("steve@usa.com", "bob@usa.com"), content, ret=ret)


def _failed() -> list[RecipientStatus]:
    return [
        RecipientStatus(
            "steve@usa.com",
            "failed",
            reply="451 4.4.1 Connection timed out",
            remote_mta="usa-mail.usa.com",
            last_attempt=5 * DAY + 300,
        ),
        RecipientStatus(
            "bob@usa.com",
            "failed",
            reply="550 5.1.1 <bob@usa.com>: Recipient address rejected: User unknown",
            remote_mta="usa-mail.usa.com",
            last_attempt=60.0,
        ),
    ]


def _bounce(ret: str = "HDRS") -> MailItem:
    report = make_report(
        _original(ret),
        _failed(),
        report_id="b1",
        reporting_mta="india-mail.india.com",
        arrival=0.0,
        now=5 * DAY + 300,
    )
    assert report is not None
    return report


def test_bounce_is_a_multipart_report_with_text_status_and_headers() -> None:
    msg = email.message_from_bytes(_bounce().content, policy=email.policy.default)
    assert msg.get_content_type() == "multipart/report"
    assert msg.get_param("report-type") == "delivery-status"
    parts = [part.get_content_type() for part in msg.iter_parts()]
    assert parts == ["text/plain", "message/delivery-status", "text/rfc822-headers"]
    assert msg["Subject"] == SUBJECT_FAILED
    assert msg["Auto-Submitted"] == "auto-replied"


def test_bounce_goes_from_the_null_sender_to_the_original_sender() -> None:
    bounce = _bounce()
    assert bounce.sender == ""
    assert bounce.recipients == ("james@india.com",)
    assert b"\r\nTo: <james@india.com>\r\n" in bounce.content
    # Like Postfix, the report's Message-ID names the reporting host (myhostname).
    assert b"\r\nMessage-ID: <b1@india-mail.india.com>\r\n" in bounce.content
    # Postmaster date of the report: 5 days and 300 s after Monday 09:00 -> Saturday 09:05.
    assert b"\r\nDate: Sat, 10 Jan 2026 09:05:00 +0000\r\n" in bounce.content


def test_delivery_status_has_every_required_field() -> None:
    report = parse_dsn(_bounce().content)
    assert report.reporting_mta == "india-mail.india.com"
    assert report.arrival_date == "Mon, 05 Jan 2026 09:00:00 +0000"
    steve, bob = report.recipients
    assert steve.final_recipient == "steve@usa.com"
    assert steve.action == "failed"
    assert steve.status == "5.4.7"  # gave up after temporary errors: delivery time expired
    assert steve.remote_mta == "usa-mail.usa.com"
    assert steve.diagnostic_code == "smtp; 451 4.4.1 Connection timed out"
    assert steve.last_attempt_date == "Sat, 10 Jan 2026 09:05:00 +0000"
    assert steve.will_retry_until is None
    assert bob.status == "5.1.1"  # from the reply's own enhanced code
    assert bob.diagnostic_code is not None and bob.diagnostic_code.startswith("smtp; 550 5.1.1")
    assert report.original_headers is not None
    assert "Subject: Grammar book" in report.original_headers
    assert report.original is None  # RET=HDRS returns headers only


def test_text_part_explains_the_failure_to_a_person() -> None:
    text = parse_dsn(_bounce().content).explanation
    assert text.startswith("This is the mail system at host india-mail.india.com.\n")
    assert "I'm sorry to have to inform you that your message could not be" in text
    assert "<bob@usa.com>: host usa-mail.usa.com said: 550 5.1.1" in text
    assert all(len(line) <= 78 for line in text.splitlines())


def test_ret_full_returns_the_whole_original_unchanged() -> None:
    original = _original(ret="FULL")
    report = parse_dsn(_bounce(ret="FULL").content)
    assert report.original == original.content
    msg = email.message_from_bytes(_bounce(ret="FULL").content, policy=email.policy.default)
    assert [p.get_content_type() for p in msg.iter_parts()][2] == "message/rfc822"


def test_reports_are_seven_bit_and_deterministic() -> None:
    for ret in ("HDRS", "FULL"):
        content = _bounce(ret).content
        assert seven_bit_problems(content) == []
        assert content == _bounce(ret).content


def test_delay_warning_says_delayed_and_until_when_it_retries() -> None:
    original = _original()
    content = compose_dsn(
        original,
        [
            RecipientStatus(
                "steve@usa.com",
                "delayed",
                reply="connect to usa-mail.usa.com[203.0.113.25]:25: Connection refused",
                last_attempt=4 * 3600.0,
                will_retry_until=5 * DAY,
            )
        ],
        reporting_mta="india-mail.india.com",
        arrival=0.0,
        now=4 * 3600.0,
        message_id="<w1@india.com>",
        give_up_after=5 * DAY,
    )
    report = parse_dsn(content)
    assert report.subject == SUBJECT_DELAYED
    (steve,) = report.recipients
    assert steve.action == "delayed"
    assert steve.status == "4.4.1"  # no SMTP reply at all: no answer from host
    assert steve.diagnostic_code == (
        "X-mailsim; connect to usa-mail.usa.com[203.0.113.25]:25: Connection refused"
    )
    assert steve.will_retry_until == "Sat, 10 Jan 2026 09:00:00 +0000"
    assert steve.remote_mta is None
    words = " ".join(report.explanation.split())  # the text is wrapped at 70 columns
    assert "THIS IS A WARNING ONLY" in words
    assert "4h after it was sent" in words
    assert "will keep trying until the message is 5d old" in words


def test_never_a_bounce_of_a_bounce() -> None:
    bounce = _bounce()
    assert not should_bounce(bounce)
    assert should_bounce(_original())
    # The bounce itself cannot be delivered: no report about it is made.
    again = make_report(
        bounce,
        [RecipientStatus("james@india.com", "failed", reply="550 5.1.1 no such user")],
        report_id="b2",
        reporting_mta="india-mail.india.com",
        arrival=0.0,
        now=1.0,
    )
    assert again is None
    assert (
        make_report(
            _original(sender="<>"),
            _failed(),
            report_id="b3",
            reporting_mta="india-mail.india.com",
            arrival=0.0,
            now=1.0,
        )
        is None
    )


@pytest.mark.parametrize(
    ("action", "reply", "status"),
    [
        ("failed", "550 5.1.1 User unknown", "5.1.1"),
        ("failed", "554 Transaction failed", "5.0.0"),
        ("failed", "451 4.3.0 Try later", "5.4.7"),
        ("failed", None, "5.4.7"),
        ("delayed", "452 4.2.2 Mailbox full", "4.2.2"),
        ("delayed", "421 closing", "4.0.0"),
        ("delayed", "connection timed out", "4.4.1"),
        ("delivered", "250 2.0.0 Ok: queued", "2.0.0"),
    ],
)
def test_status_comes_from_the_enhanced_code_or_the_reply_class(
    action: str, reply: str | None, status: str
) -> None:
    assert status_for(action, reply) == status


def test_diagnostic_code_types_smtp_and_other_failures() -> None:
    assert diagnostic_code("451 4.3.0 Try later") == "smtp; 451 4.3.0 Try later"
    assert diagnostic_code("550-first\r\n550 second") == "smtp; 550-first 550 second"
    assert diagnostic_code("DNS lookup failed") == "X-mailsim; DNS lookup failed"


def test_parse_dsn_refuses_an_ordinary_message() -> None:
    with pytest.raises(
        ValueError, match="not a delivery status report: content type is text/plain"
    ):
        parse_dsn(b"Subject: hi\r\n\r\nhello\r\n")


def test_bad_action_is_refused() -> None:
    with pytest.raises(ValueError, match="action must be one of failed, delayed"):
        RecipientStatus("steve@usa.com", "bounced")
