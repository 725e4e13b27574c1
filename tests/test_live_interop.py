"""The live server against the standard library's clients: smtplib in, poplib out.

h11 tests itself against the standard library's HTTP client; we do the same with ``smtplib``
and ``poplib``. A MIME message with a binary PNG attachment must arrive 7-bit on the wire and
come back from POP3 with the attachment's octets unchanged.
"""

from __future__ import annotations

import email
import email.policy
import poplib
import random
import smtplib
import struct
import zlib
from email.message import EmailMessage

import pytest

from mailsim.live.server import ServeConfig, ServerThread

pytestmark = pytest.mark.live


def config(tmp_path, **changes):
    """India.com with Steve and James, every listener on a free port."""
    settings = dict(
        domains=("India.com",),
        users={"Steve": "secret", "James": "s3cret"},
        maildir=tmp_path / "maildir",
        smtp_port=0,
        submission_port=0,
        pop3_port=0,
    )
    settings.update(changes)
    return ServeConfig(**settings)


def png_bytes(width: int = 64, height: int = 48) -> bytes:
    """A real PNG of random pixels: every octet value occurs, CR and LF and NUL included."""
    rng = random.Random(7)

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + rng.randbytes(width * 3) for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def fetch_all(port: int, user: str, password: str, *, delete: bool = False) -> list[bytes]:
    pop = poplib.POP3("127.0.0.1", port, timeout=10)
    pop.user(user)
    pop.pass_(password)
    count, _ = pop.stat()
    messages = []
    for number in range(1, count + 1):
        _, lines, _ = pop.retr(number)
        messages.append(b"\r\n".join(lines) + b"\r\n")
        if delete:
            pop.dele(number)
    pop.quit()
    return messages


def test_smtplib_png_attachment_arrives_7bit_and_poplib_gets_identical_octets(tmp_path):
    picture = png_bytes()
    assert any(octet >= 128 for octet in picture) and b"\r\n" in picture  # a real test of 7-bit
    msg = EmailMessage(policy=email.policy.SMTP.clone(cte_type="7bit"))
    msg["From"] = "James@India.com"
    msg["To"] = "Steve@India.com"
    msg["Subject"] = "The atlas page"
    msg["Message-ID"] = "<atlas-1@India.com>"
    msg.set_content("Here is the page you asked for.\n")
    msg.add_attachment(picture, maintype="image", subtype="png", filename="atlas.png")
    wire = msg.as_bytes()
    assert wire.isascii()

    with ServerThread(config(tmp_path)) as running:
        with smtplib.SMTP("127.0.0.1", running.ports["submission"], timeout=10) as smtp:
            smtp.login("James", "s3cret")
            refused = smtp.sendmail("James@India.com", ["Steve@India.com"], wire)
        assert refused == {}
        [stored_file] = (tmp_path / "maildir" / "Steve" / "new").iterdir()
        received = fetch_all(running.ports["pop3"], "Steve", "secret")

    # What the server received and stored is 7-bit through and through.
    assert stored_file.read_bytes().isascii()
    [raw] = received
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["Message-ID"] == "<atlas-1@India.com>"
    assert parsed["Received"].startswith("from ")  # the server's trace header (RFC 5321 4.4)
    [attachment] = list(parsed.iter_attachments())
    assert attachment.get_filename() == "atlas.png"
    assert attachment["Content-Transfer-Encoding"] == "base64"
    assert attachment.get_content() == picture


def test_poplib_delete_happens_only_at_quit_and_uidl_is_stable(tmp_path):
    with ServerThread(config(tmp_path)) as running:
        with smtplib.SMTP("127.0.0.1", running.ports["smtp"], timeout=10) as smtp:
            for n in range(3):
                smtp.sendmail("a@USA.com", ["steve@india.com"], f"Subject: {n}\r\n\r\nbody {n}\r\n")
        port = running.ports["pop3"]

        pop = poplib.POP3("127.0.0.1", port, timeout=10)
        pop.user("Steve")
        pop.pass_("secret")
        uids = pop.uidl()[1]
        pop.dele(1)
        pop.close()  # connection dropped without QUIT: RFC 1939 6, nothing is deleted

        pop = poplib.POP3("127.0.0.1", port, timeout=10)
        pop.user("Steve")
        pop.pass_("secret")
        assert pop.uidl()[1] == uids  # same messages, same unique ids
        pop.dele(1)
        pop.quit()  # UPDATE state: now it goes

        pop = poplib.POP3("127.0.0.1", port, timeout=10)
        pop.user("Steve")
        pop.pass_("secret")
        left = [line.split()[1] for line in pop.uidl()[1]]
        pop.quit()
    assert left == [line.split()[1] for line in uids[1:]]
    assert len(set(left)) == 2
