"""What the live server refuses: wrong passwords, relaying, MAIL before AUTH, a second session.

RFC 5321 7.1 (no open relay), RFC 6409 (submission needs AUTH), RFC 4954 (535 for bad
credentials), RFC 1939 (-ERR for a bad PASS, the maildrop locked for one session).
"""

from __future__ import annotations

import poplib
import smtplib

import pytest

from mailsim.live.server import ServeConfig, ServerThread

pytestmark = pytest.mark.live

MESSAGE = "Subject: hello\r\n\r\nsecret plans\r\n"


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


def stored_files(tmp_path):
    return sorted(p.name for p in (tmp_path / "maildir").rglob("*") if p.parent.name == "new")


@pytest.fixture
def running(tmp_path):
    with ServerThread(config(tmp_path)) as server:
        with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=10) as smtp:
            smtp.sendmail("James@USA.com", ["Steve@India.com"], MESSAGE)
        yield server


def test_pop3_wrong_password_gets_err_and_shows_nothing(running):
    pop = poplib.POP3("127.0.0.1", running.ports["pop3"], timeout=10)
    pop.user("Steve")
    with pytest.raises(poplib.error_proto, match=r"-ERR \[AUTH\]"):
        pop.pass_("wrong")
    # Still in AUTHORIZATION: the mailbox commands are refused, nothing is listed.
    for command in (pop.stat, pop.list, lambda: pop.retr(1), pop.uidl):
        with pytest.raises(poplib.error_proto, match="-ERR"):
            command()
    pop.quit()


def test_pop3_unknown_user_looks_the_same_as_a_wrong_password(running):
    pop = poplib.POP3("127.0.0.1", running.ports["pop3"], timeout=10)
    assert pop.user("Nobody").startswith(b"+OK")  # USER never reveals who exists
    with pytest.raises(poplib.error_proto, match=r"-ERR \[AUTH\] invalid user name or password"):
        pop.pass_("secret")
    pop.quit()


def test_smtp_auth_with_wrong_password_gets_535_and_mail_is_still_refused(running):
    with smtplib.SMTP("127.0.0.1", running.ports["submission"], timeout=10) as smtp:
        with pytest.raises(smtplib.SMTPAuthenticationError) as caught:
            smtp.login("Steve", "wrong")
        assert caught.value.smtp_code == 535
        code, text = smtp.mail("Steve@India.com")
        assert (code, text) == (530, b"5.7.0 Authentication required")


def test_submission_refuses_mail_before_auth_with_530(running):
    with smtplib.SMTP("127.0.0.1", running.ports["submission"], timeout=10) as smtp:
        smtp.ehlo("USA.com")
        assert smtp.mail("James@USA.com")[0] == 530


def test_no_open_relay_foreign_recipient_gets_550_571_and_nothing_is_stored(running, tmp_path):
    before = stored_files(tmp_path)
    with smtplib.SMTP("127.0.0.1", running.ports["smtp"], timeout=10) as smtp:
        smtp.ehlo("spammer.example")
        smtp.mail("spam@spammer.example")
        code, text = smtp.rcpt("victim@example.org")
        assert code == 550
        assert text.startswith(b"5.7.1") and b"Relay access denied" in text
        code, text = smtp.rcpt("postmaster@example.org")  # not an open relay to postmasters
        assert code == 550
        assert smtp.docmd("DATA")[0] == 554  # no valid recipients (RFC 5321 3.3)
    assert stored_files(tmp_path) == before
    assert not any((tmp_path / "maildir" / "_outgoing" / "new").iterdir())


def test_unknown_local_user_gets_550_511(running):
    with smtplib.SMTP("127.0.0.1", running.ports["smtp"], timeout=10) as smtp:
        smtp.ehlo("USA.com")
        smtp.mail("James@USA.com")
        code, text = smtp.rcpt("Nobody@India.com")
    assert (code, text[:5]) == (550, b"5.1.1")


def test_local_part_matches_without_case_and_postmaster_is_accepted(running, tmp_path):
    with smtplib.SMTP("127.0.0.1", running.ports["smtp"], timeout=10) as smtp:
        refused = smtp.sendmail("a@USA.com", ["STEVE@india.COM", "Postmaster"], MESSAGE)
    assert refused == {}
    assert len(list((tmp_path / "maildir" / "Steve" / "new").iterdir())) == 2
    assert len(list((tmp_path / "maildir" / "postmaster" / "new").iterdir())) == 1


def test_authenticated_submission_to_a_foreign_domain_goes_to_outgoing(running, tmp_path):
    with smtplib.SMTP("127.0.0.1", running.ports["submission"], timeout=10) as smtp:
        smtp.login("steve@India.com", "secret")
        refused = smtp.sendmail("Steve@India.com", ["James@USA.com"], MESSAGE)
    assert refused == {}
    [queued] = (tmp_path / "maildir" / "_outgoing" / "new").iterdir()
    head = queued.read_bytes()
    assert head.startswith(b"X-Mailsim-Envelope-From: <Steve@India.com>\n")
    assert b"X-Mailsim-Envelope-To: <James@USA.com>\n" in head
    assert b"with ESMTPA" in head  # RFC 3848: authenticated


def test_second_pop3_session_on_the_same_maildrop_gets_err_in_use(running):
    first = poplib.POP3("127.0.0.1", running.ports["pop3"], timeout=10)
    first.user("Steve")
    first.pass_("secret")
    second = poplib.POP3("127.0.0.1", running.ports["pop3"], timeout=10)
    second.user("steve")
    with pytest.raises(poplib.error_proto, match=r"\[IN-USE\]"):
        second.pass_("secret")
    second.quit()
    first.quit()
    # The lock went with the first session's QUIT.
    third = poplib.POP3("127.0.0.1", running.ports["pop3"], timeout=10)
    third.user("Steve")
    assert third.pass_("secret").startswith(b"+OK")
    third.quit()
