"""The common message, written directly: the same bytes the ``email`` package makes, 10x cheaper.

Most simulated mail is a short ASCII note, perhaps with files attached: ``text/plain`` in 7bit,
or ``multipart/mixed`` around it with base64 parts. Building such a message through
``email.message.EmailMessage`` parses every header with the header registry (which makes a class
per header), folds and refolds, and walks the tree to serialise it; that was a third of a busy
run's time. This module writes those layouts with string formatting and ``base64.encodebytes``
when every piece is plain enough that the ``email`` package would write it verbatim: header values
of printable ASCII whose lines need no folding (at most 78 characters, RFC 5322 2.1.1's
recommendation that the package follows), bare ``local@domain`` addresses, a body of ASCII lines
of at most 78 characters (which the package sends as 7bit), simple attachment names and types.
Anything else returns None and :func:`mailsim.mail.message.compose` takes the ``email`` package's
road, so the output is byte-identical either way (``tests/test_mail_simple_mime.py`` checks the
two against each other on generated drafts).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence

#: The longest header or body line the ``email`` package writes unchanged: ``policy.SMTP``'s
#: max_line_length (RFC 5322 2.1.1 asks for lines of at most 78 characters).
MAX_PLAIN_LINE = 78

# A header value the email package writes back as given: printable ASCII and spaces, not
# starting or ending with a space, with no encoded word ("=?", RFC 2047) for it to decode.
_PLAIN_TEXT = re.compile(r"[!-~](?:[ -~]*[!-~])?")
# A bare address whose both sides are dot-atoms (RFC 5322 3.2.3, 3.4.1): no display name,
# quotes, comments or route that the address parser would rewrite.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_BARE_ADDRESS = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@{_ATOM}(?:\.{_ATOM})*")
_MESSAGE_ID = re.compile(rf"<{_ATOM}(?:\.{_ATOM})*@{_ATOM}(?:\.{_ATOM})*>")
_MIME_TYPE = re.compile(r"[a-z0-9][a-z0-9.+-]*/[a-z0-9][a-z0-9.+-]*")
_FILENAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")

_TEXT_HEADERS = 'Content-Type: text/plain; charset="utf-8"\r\nContent-Transfer-Encoding: 7bit\r\n'


def _header(name: str, value: str) -> str | None:
    line = f"{name}: {value}"
    if len(line) > MAX_PLAIN_LINE or not _PLAIN_TEXT.fullmatch(value) or "=?" in value:
        return None
    return line + "\r\n"


def _addresses(name: str, addresses: Sequence[str]) -> str | None:
    if not addresses or not all(_BARE_ADDRESS.fullmatch(a) for a in addresses):
        return None
    return _header(name, ", ".join(addresses))


def plain_body(text: str) -> bytes | None:
    """``text`` as the ``email`` package sends a 7bit text body (CRLF lines), or None.

    None when a line is longer than :data:`MAX_PLAIN_LINE` or the text is not ASCII: the package
    would then choose quoted-printable or base64.
    """
    if not text.isascii():
        return None
    # bytes.splitlines, as email.contentmanager does: CRLF, LF and CR end lines, nothing else.
    lines = text.encode("ascii").splitlines()
    if lines and max(map(len, lines)) > MAX_PLAIN_LINE:
        return None
    return b"\r\n".join(lines) + b"\r\n"


def simple_message(
    *,
    sender: str,
    to: Sequence[str],
    cc: Sequence[str],
    subject: str,
    date: str,
    message_id: str,
    body: str,
    attachments: Sequence[tuple[str, str, bytes]],
    boundary: str,
) -> bytes | None:
    """The wire form of a plain note (with attachments, if any), or None if it is not plain.

    Args:
        sender, to, cc: bare addresses.
        subject, date, message_id: header values as written (date already formatted).
        body: the text.
        attachments: (filename, content type, octets) of each file, in order.
        boundary: the MIME boundary for a multipart message.

    Returns:
        The same octets ``EmailMessage`` with the 7-bit SMTP policy gives, or None.
    """
    head = [
        _addresses("From", [sender]),
        _addresses("To", to),
        _addresses("Cc", cc) if cc else "",
        _header("Subject", subject),
        _header("Date", date),
        _header("Message-ID", message_id) if _MESSAGE_ID.fullmatch(message_id) else None,
    ]
    text = plain_body(body)
    if text is None or None in head:
        return None
    if not attachments:
        headers = "".join(head) + _TEXT_HEADERS + "MIME-Version: 1.0\r\n\r\n"  # type: ignore[arg-type]
        return headers.encode("ascii") + text
    parts = [b"--" + boundary.encode("ascii") + b"\r\n" + _TEXT_HEADERS.encode() + b"\r\n" + text]
    for filename, content_type, data in attachments:
        kind = _header("Content-Type", content_type)
        disposition = _header("Content-Disposition", f'attachment; filename="{filename}"')
        if (
            kind is None
            or disposition is None
            or not _FILENAME.fullmatch(filename)
            or not _MIME_TYPE.fullmatch(content_type)
        ):
            return None
        part_head = (
            f"\r\n--{boundary}\r\n{kind}Content-Transfer-Encoding: base64\r\n{disposition}\r\n"
        )
        # 57 octets make one 76-character base64 line, as email.contentmanager writes them.
        parts.append(part_head.encode("ascii") + base64.encodebytes(data).replace(b"\n", b"\r\n"))
    top = (
        "".join(head)  # type: ignore[arg-type]
        + f'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="{boundary}"\r\n\r\n'
    )
    return top.encode("ascii") + b"".join(parts) + f"\r\n--{boundary}--\r\n".encode("ascii")
