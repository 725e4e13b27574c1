"""The live server under --tls: STARTTLS with smtplib and swaks, implicit TLS, POP3 STLS and 995."""

from __future__ import annotations

import poplib
import shutil
import smtplib
import ssl
import subprocess
from pathlib import Path

import pytest
from waiting import wait_for

from mailsim.live.server import ServeConfig, ServerThread

pytestmark = pytest.mark.live

MESSAGE = b"From: james@India.com\r\nTo: steve@India.com\r\nSubject: tls\r\n\r\nunder TLS\r\n"


@pytest.fixture
def running(tmp_path: Path):
    config = ServeConfig(
        domains=("India.com",),
        users={"Steve": "secret"},
        maildir=tmp_path / "maildir",
        smtp_port=0,
        submission_port=0,
        pop3_port=0,
        smtps_port=0,
        pop3s_port=0,
        tls=True,
        record_sessions=True,
    )
    with ServerThread(config) as thread:
        yield thread


def context(thread: ServerThread) -> ssl.SSLContext:
    assert thread.server is not None and thread.server.tls_ca is not None
    return ssl.create_default_context(cafile=str(thread.server.tls_ca))


def stored(thread: ServerThread, user: str = "Steve") -> list[bytes]:
    root = thread.config.maildir / user / "new"
    return [path.read_bytes() for path in sorted(root.iterdir())]


def test_certificate_is_made_next_to_the_maildir_and_reused(running: ServerThread) -> None:
    tls = running.config.maildir / "_tls"
    assert (tls / "ca.pem").is_file() and (tls / "server.pem").stat().st_mode & 0o077 == 0
    before = (tls / "ca.pem").read_bytes()
    with ServerThread(running.config.__class__(**{**running.config.__dict__, "smtp_port": 0})):
        pass
    assert (tls / "ca.pem").read_bytes() == before


def test_smtplib_starttls_then_auth_on_submission(running: ServerThread) -> None:
    with smtplib.SMTP("127.0.0.1", running.ports["submission"], timeout=10) as smtp:
        smtp.ehlo()
        assert smtp.has_extn("starttls") and not smtp.has_extn("auth")
        code, _ = smtp.mail("james@India.com")
        assert code == 530  # 5.7.0 Must issue a STARTTLS command first
        smtp.rset()
        smtp.starttls(context=context(running))
        smtp.ehlo()
        assert smtp.has_extn("auth") and not smtp.has_extn("starttls")
        smtp.login("Steve", "secret")
        smtp.sendmail("steve@India.com", ["steve@India.com"], MESSAGE)
    [message] = stored(running)
    assert b"with ESMTPSA" in message  # RFC 3848: TLS and AUTH


def test_implicit_tls_submission_port(running: ServerThread) -> None:
    with smtplib.SMTP_SSL(
        "127.0.0.1", running.ports["smtps"], context=context(running), timeout=10
    ) as smtp:
        smtp.login("Steve", "secret")
        smtp.sendmail("steve@India.com", ["steve@India.com"], MESSAGE)
    assert len(stored(running)) == 1


def test_the_certificate_verifies_for_localhost_too(running: ServerThread) -> None:
    with smtplib.SMTP("localhost", running.ports["smtp"], timeout=10) as smtp:
        smtp.starttls(context=context(running))
        assert smtp.noop()[0] == 250


@pytest.mark.skipif(shutil.which("swaks") is None, reason="swaks is not installed")
def test_swaks_tls_delivers_and_verifies_the_certificate(running: ServerThread) -> None:
    assert running.server is not None
    support = subprocess.run(["swaks", "--support"], capture_output=True, text=True)
    if "TLS supported" not in support.stdout + support.stderr:
        pytest.skip("swaks has no TLS here (Net::SSLeay missing)")
    done = subprocess.run(
        [
            "swaks",
            "--server",
            "127.0.0.1",
            "--port",
            str(running.ports["smtp"]),
            "--from",
            "james@India.com",
            "--to",
            "steve@India.com",
            "--tls",
            "--tls-verify",
            "--tls-ca-path",
            str(running.server.tls_ca),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "<-  220 2.0.0 Ready to start TLS" in done.stdout
    assert " ~> EHLO" in done.stdout  # RFC 3207 4.2: EHLO again, under TLS
    assert len(stored(running)) == 1
    # swaks exits on the 221 to QUIT, maybe before the server has recorded the session's end.
    session = wait_for(lambda: running.server.records, timeout=10)[-1]
    assert session["verdicts"]["tls"] is True
    assert session["commands"][1] == "STARTTLS"


@pytest.mark.skipif(shutil.which("msmtp") is None, reason="msmtp is not installed")
def test_msmtp_auth_on_defaults_work_under_starttls(running: ServerThread, tmp_path: Path) -> None:
    assert running.server is not None
    rc = tmp_path / "msmtprc"
    rc.write_text(
        f"account lab\nhost 127.0.0.1\nport {running.ports['submission']}\ntls on\n"
        f"tls_trust_file {running.server.tls_ca}\nauth on\nuser Steve\npassword secret\n"
        "from steve@India.com\naccount default : lab\n"
    )
    rc.chmod(0o600)
    done = subprocess.run(
        ["msmtp", "-C", str(rc), "steve@India.com"],
        input=MESSAGE,
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert len(stored(running)) == 1


def test_poplib_stls_then_login_and_pop3s(running: ServerThread) -> None:
    with smtplib.SMTP("127.0.0.1", running.ports["smtp"], timeout=10) as smtp:
        smtp.sendmail("james@x.example", ["steve@India.com"], MESSAGE)
    pop = poplib.POP3("127.0.0.1", running.ports["pop3"], timeout=10)
    assert "STLS" in pop.capa() and "USER" not in pop.capa()
    with pytest.raises(poplib.error_proto, match="STLS first"):
        pop.user("Steve")
    pop.stls(context=context(running))
    pop.user("Steve")
    pop.pass_("secret")
    assert pop.stat()[0] == 1
    pop.quit()
    pops = poplib.POP3_SSL("127.0.0.1", running.ports["pop3s"], context=context(running))
    pops.user("Steve")
    pops.pass_("secret")
    assert b"under TLS" in b"\n".join(pops.retr(1)[1])
    pops.quit()


def test_apop_timestamp_is_in_the_pop3_greeting(running: ServerThread) -> None:
    pop = poplib.POP3("127.0.0.1", running.ports["pop3"], timeout=10)
    assert b"<" in pop.getwelcome() and b"@India.com>" in pop.getwelcome()
    pop.quit()
