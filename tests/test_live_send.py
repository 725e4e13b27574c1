"""``mailsim send``: our SMTP client machine on a real socket, against aiosmtpd and our server."""

from __future__ import annotations

import email
import email.policy
import poplib
import socket

import pytest
from click.testing import CliRunner

from mailsim.cli import main
from mailsim.live.server import ServeConfig, ServerThread, read_users_file

pytestmark = pytest.mark.live


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Recorder:
    """An aiosmtpd handler that keeps what it received."""

    def __init__(self) -> None:
        self.envelopes = []

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd's hook name
        self.envelopes.append(envelope)
        return "250 OK stored"


@pytest.fixture
def aiosmtpd_server():
    controller_module = pytest.importorskip("aiosmtpd.controller")
    handler = Recorder()
    controller = controller_module.Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller, handler
    finally:
        controller.stop()


def run_send(*args: str):
    return CliRunner().invoke(main, ["send", *args], catch_exceptions=False)


def test_send_delivers_to_aiosmtpd_and_prints_the_dialogue(aiosmtpd_server, tmp_path):
    controller, handler = aiosmtpd_server
    attachment = tmp_path / "grammar.bin"
    attachment.write_bytes(bytes(range(256)) * 4)
    result = run_send(
        "--server", f"127.0.0.1:{controller.port}", "--from", "James@USA.com",
        "--to", "Steve@India.com", "--cc", "Anna@India.com", "--subject", "Books",
        "--body", "Do you have a Grammar Book?\nWhat about Atlas?", "--attach", str(attachment),
        "--helo", "USA.com",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"=== Trying 127.0.0.1:{controller.port}..."
    assert any(line.startswith("<~ 220 ") for line in lines)
    for command in ("EHLO USA.com", "MAIL FROM:<James@USA.com> SIZE=", "RCPT TO:<Steve@India.com>",
                    "RCPT TO:<Anna@India.com>", "DATA", "."):  # fmt: skip
        assert any(line.startswith(f" ~> {command}") for line in lines), command
    assert any(line.startswith(" ~> [... ") for line in lines)  # the content is abbreviated
    assert lines[-2:] == [
        "=== Steve@India.com: accepted (250 OK stored)",
        "=== Anna@India.com: accepted (250 OK stored)",
    ]
    [envelope] = handler.envelopes
    assert envelope.rcpt_tos == ["Steve@India.com", "Anna@India.com"]
    assert envelope.original_content.isascii()  # 7-bit on the wire
    parsed = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
    [part] = list(parsed.iter_attachments())
    assert part.get_content() == bytes(range(256)) * 4


def test_send_with_auth_to_our_submission_port_then_pop3_reads_it(tmp_path):
    config = ServeConfig(
        domains=("India.com",),
        users={"Steve": "secret", "James": "pw"},
        maildir=tmp_path / "maildir",
        smtp_port=0,
        submission_port=0,
        pop3_port=0,
    )
    with ServerThread(config) as running:
        result = run_send(
            "--server", f"127.0.0.1:{running.ports['submission']}", "--auth", "James:pw",
            "--from", "James@India.com", "--to", "Steve@India.com", "--subject", "Hi",
            "--body", "hello",
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        assert " ~> AUTH PLAIN AEphbWVzAHB3" in result.output.splitlines()  # \0James\0pw
        pop = poplib.POP3("127.0.0.1", running.ports["pop3"], timeout=10)
        pop.user("Steve")
        pop.pass_("secret")
        _, lines, _ = pop.retr(1)
        pop.quit()
    assert b"Subject: Hi" in lines and b"hello" in lines


def test_send_to_a_quoted_local_part_reaches_that_mailbox_on_our_server(tmp_path):
    config = ServeConfig(
        domains=("usa.com",),
        users={"john smith": "pw"},
        maildir=tmp_path / "maildir",
        smtp_port=0,
        submission_port=0,
        pop3_port=0,
    )
    with ServerThread(config) as running:
        result = run_send(
            "--server", f"127.0.0.1:{running.ports['smtp']}", "--from", "james@india.com",
            "--to", '"john smith"@usa.com', "--subject", "Quoted", "--body", "hello",
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        assert ' ~> RCPT TO:<"john smith"@usa.com>' in result.output.splitlines()
        pop = poplib.POP3("127.0.0.1", running.ports["pop3"], timeout=10)
        pop.user("john smith")
        pop.pass_("pw")
        _, lines, _ = pop.retr(1)
        pop.quit()
    assert b"Subject: Quoted" in lines


def test_send_exit_code_3_names_the_refused_recipient(tmp_path):
    config = ServeConfig(
        domains=("India.com",), users={"Steve": "secret"}, maildir=tmp_path / "m",
        smtp_port=0, submission_port=0, pop3_port=0,
    )  # fmt: skip
    with ServerThread(config) as running:
        result = run_send(
            "--server", f"127.0.0.1:{running.ports['smtp']}", "--from", "James@USA.com",
            "--to", "Steve@India.com", "--to", "bob@example.org", "--body", "x",
        )  # fmt: skip
    assert result.exit_code == 3
    assert "=== Steve@India.com: accepted (250 2.0.0 Ok: queued as " in result.output
    assert (
        "=== bob@example.org: failed permanently (550 5.7.1 <bob@example.org>: "
        "Relay access denied)" in result.output
    )
    assert "not delivered to bob@example.org" in result.output


def test_send_to_a_closed_port_fails_temporarily_with_exit_3():
    result = run_send(
        "--server", f"127.0.0.1:{free_port()}", "--from", "a@b.c", "--to", "d@e.f", "--quiet"
    )
    assert result.exit_code == 3
    assert "=== d@e.f: failed temporarily (451 4.4.1 cannot connect to" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--server", "nohost:port"], "--server: expected HOST:PORT"),
        (["--auth", "justuser"], "--auth: expected USER:PASSWORD"),
        (["--to", "not an address"], "--to: 'not an address' is not an e-mail address"),
        (["--to", "john smith@usa.com"], '(a local part with spaces is quoted: "john smith"@'),
        (["--to", "Steve <@usa.com>"], "--to: 'Steve <@usa.com>' is not an e-mail address"),
    ],
)
def test_send_bad_arguments_exit_2_with_a_clear_line(args, message):
    base = {"--server": "127.0.0.1:1", "--from": "a@b.c", "--to": "d@e.f"}
    for key, value in zip(args[::2], args[1::2], strict=True):
        base[key] = value
    flat = [item for pair in base.items() for item in pair]
    if "--auth" in args:
        flat += ["--auth", "justuser"]
    result = run_send(*flat)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("given", "envelope"),
    [
        ('"john smith"@usa.com', '"john smith"@usa.com'),
        ('John <"john smith"@usa.com>', '"john smith"@usa.com'),
        ("Steve <Steve@India.com>", "Steve@India.com"),
    ],
)
def test_send_keeps_a_quoted_local_part_as_written(given, envelope):
    from mailsim.live.cli import _bare_address

    # parseaddr made '"john smith"@usa.com' into 'john smith@usa.com', which --to then refused,
    # though `mailsim serve --user '"john smith":pw'` serves that mailbox.
    assert _bare_address(given, "--to") == envelope


def test_serve_users_file_error_names_the_line(tmp_path):
    users = tmp_path / "users.txt"
    users.write_text("# our users\nSteve:secret\n\nJames has no password\n")
    result = CliRunner().invoke(main, ["serve", "--users-file", str(users)])
    assert result.exit_code == 2
    assert f"{users}:4: expected NAME:PASSWORD (like Steve:secret)" in result.output
    assert read_users_file_ok(tmp_path) == {"Steve": "secret", "James": "pw"}


def read_users_file_ok(tmp_path):
    good = tmp_path / "good.txt"
    good.write_text("Steve:secret\n  # comment\nJames:pw\n")
    return read_users_file(good)
