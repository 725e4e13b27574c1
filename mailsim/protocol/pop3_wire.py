"""The POP3 wire format both ends share: line limits, status lines, byte-stuffing, arguments, APOP.

RFC 1939 section 3 (lines, stuffing, arguments) and section 7 (APOP), RFC 2449 section 4 (the
255-octet command line).
"""

from __future__ import annotations

import hashlib
import re
from typing import Final

# --- limits -----------------------------------------------------------------------------------

#: The longest command line a server accepts, CRLF included (RFC 2449 section 4: 255 octets).
COMMAND_LINE_LIMIT: Final = 255
#: The longest argument, in characters (RFC 1939 section 3: "up to 40 characters long").
ARGUMENT_LIMIT: Final = 40
#: The longest mailbox name USER takes. RFC 1939 3 counts 40 characters per argument, but the
#: name is a mail address's local part, up to 64 octets (RFC 5321 4.5.3.1.1); like Dovecot, the
#: server takes those, spaces included ("john smith", a quoted local part's characters).
MAILBOX_NAME_LIMIT: Final = 64
#: The longest status line a server sends, CRLF included (RFC 1939 section 3: 512 characters).
RESPONSE_LINE_LIMIT: Final = 512
#: The longest line the client accepts, CRLF included. Status lines stay under 512 octets, but the
#: content lines of RETR are the message's own lines: RFC 5322 2.1.1 allows 998 + CRLF, and real
#: mail breaks that, so the client is generous and only refuses absurd lines (memory bound).
CLIENT_LINE_LIMIT: Final = 64 * 1024
#: How many -ERR replies a server sends before it gives up and closes the connection.
DEFAULT_MAX_ERRORS: Final = 20

#: The answer to a command line ended by a bare LF (what ``nc`` sends without ``-C``): lines end
#: in CRLF (RFC 1939 3). Refused, not obeyed, like the SMTP server's 500 5.5.2.
BARE_LF_HINT: Final = "line ended by a bare <LF>; end lines with <CR><LF> (nc -C)"

# The APOP timestamp is a msg-id in angle brackets (RFC 1939 section 7: "<process-ID.clock@host>").
APOP_TIMESTAMP = re.compile(r"<[^<>\s]+@[^<>\s]+>")
_ASCII_DIGITS = re.compile(r"[0-9]+")
VERB = re.compile(r"[A-Za-z]{1,8}")


def apop_digest(timestamp: str, secret: str) -> str:
    """The APOP digest: lower-case hex MD5 of the greeting's timestamp followed by the secret.

    RFC 1939 section 7. MD5 is broken for signatures but this is what the RFC prescribes.
    """
    data = (timestamp + secret).encode("utf-8")
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def status_line(ok: bool, text: str) -> bytes:
    """A ``+OK``/``-ERR`` line, made safe: no CR/LF inside, at most 512 octets with CRLF."""
    line = "+OK" if ok else "-ERR"
    text = text.replace("\r", " ").replace("\n", " ")
    if text:
        line += " " + text
    raw = line.encode("utf-8", "replace")
    if len(raw) > RESPONSE_LINE_LIMIT - 2:
        # Cut on an octet boundary, then drop a UTF-8 sequence the cut may have split.
        raw = raw[: RESPONSE_LINE_LIMIT - 2].decode("utf-8", "ignore").encode("utf-8")
    return raw + b"\r\n"


def multiline_body(content: bytes) -> bytes:
    """Byte-stuff ``content`` and terminate it (RFC 1939 section 3).

    A line starting with '.' gets one more '.', and the block ends with ``.CRLF``. Content that
    does not end in CRLF gets one first, so the terminator sits on a line of its own.
    """
    if content and not content.endswith(b"\r\n"):
        content += b"\r\n"
    stuffed = content.replace(b"\r\n.", b"\r\n..")
    if stuffed.startswith(b"."):
        stuffed = b"." + stuffed
    return stuffed + b".\r\n"


def top_of(content: bytes, body_lines: int) -> bytes:
    """The header, the blank line and the first ``body_lines`` body lines (RFC 1939 TOP)."""
    if content.startswith(b"\r\n"):
        head_end = 2  # no header at all: the blank line comes first
    else:
        blank = content.find(b"\r\n\r\n")
        if blank < 0:
            return content  # no body: all of it is header
        head_end = blank + 4
    body = content[head_end:]
    # maxsplit must fit a C ssize_t; more lines than octets cannot exist anyway.
    pieces = body.split(b"\r\n", min(body_lines, len(body)))
    if len(pieces) <= body_lines:
        return content
    kept = b"\r\n".join(pieces[:body_lines])
    return content[:head_end] + kept + (b"\r\n" if body_lines else b"")


def split_args(arg: str) -> list[str]:
    """The arguments of a command: separated by SPACE (RFC 1939 section 3), extra spaces forgiven.

    Only SPACE separates: a TAB stays inside an argument, where it makes the argument invalid. (A
    bare LF never gets this far: the line it ends is refused with :data:`BARE_LF_HINT`.)
    """
    return [token for token in arg.split(" ") if token]


def parse_number(token: str) -> int | None:
    """A decimal number as RFC 1939 allows it (ASCII digits, at most 40), or None."""
    if len(token) > ARGUMENT_LIMIT or not _ASCII_DIGITS.fullmatch(token):
        return None
    return int(token)
