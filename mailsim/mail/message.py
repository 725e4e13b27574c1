"""Internet messages as they travel: MIME composition in 7-bit form, trace headers, the envelope.

A user agent writes a message (text, an HTML alternative, photos, videos, any file) and SMTP
carries it as 7-bit ASCII lines of at most 998 octets plus CRLF (RFC 5321 4.5.3.1.6, RFC 2045):
binary parts become base64 and non-ASCII text becomes quoted-printable or base64, exactly what a
real mail client does before it talks to a server without 8BITMIME. The standard ``email``
package does the encoding (plain notes are written directly by :mod:`mailsim.mail.simple_mime`,
to the same bytes, much faster); this module fixes what it would otherwise leave to chance (MIME
boundaries, Message-ID and Date come from the scenario, never from the clock or a random source),
so a scenario and a seed give the same bytes every time.

It also holds what a mail server does to a message on the way: the ``Received:`` trace header
(RFC 5321 4.4) and the loop check on their number (RFC 5321 6.3), and :class:`MailItem`, the small
frozen record of envelope plus content that queues, protocol adapters and mailboxes pass around.
"""

from __future__ import annotations

import email
import email.policy
import email.utils
import hashlib
import mimetypes
import random
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage, Message
from pathlib import Path

from mailsim.mail.simple_mime import simple_message
from mailsim.mail.units import parse_size

#: Wall-clock time of simulated t = 0, used for Date headers, Received stamps and DSN dates.
#: A Monday morning, so a week-long scenario reads naturally.
SIM_EPOCH = datetime(2026, 1, 5, 9, 0, 0, tzinfo=UTC)

#: The policy for everything that goes on the wire: CRLF line ends (policy.SMTP) and, unlike
#: policy.SMTP, 7-bit transfer encodings only, so non-ASCII text becomes quoted-printable or
#: base64 rather than raw 8-bit (RFC 2045 2.7, RFC 6152: no 8-bit data without 8BITMIME).
SEVEN_BIT = email.policy.SMTP.clone(cte_type="7bit")

#: The longest text line SMTP allows, CRLF excluded (RFC 5321 4.5.3.1.6: 1000 with CRLF).
MAX_LINE_OCTETS = 998

#: A message with this many ``Received:`` headers is taken to be looping (RFC 5321 6.3 suggests
#: a threshold of at least 100).
MAX_RECEIVED = 100

# RFC 5322 3.2.3 atext, the characters allowed in a dot-atom (used for Message-ID left parts).
_ATEXT = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+")


# --- what travels ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MailItem:
    """One message with its SMTP envelope: what a queue holds and a delivery carries.

    Attributes:
        id: the message's identifier in the simulation (stable across hops; used in the trace).
        sender: the reverse-path (``MAIL FROM``) without angle brackets; ``''`` is the null
            reverse-path of bounces (RFC 5321 4.5.5).
        recipients: the forward-paths (``RCPT TO``), in order, without angle brackets.
        content: the message as sent after DATA: headers and body, CRLF line ends, 7-bit.
        ret: what a bounce should return, ``'HDRS'`` (headers only) or ``'FULL'`` (RFC 3461 4.3).
        envid: the sender's envelope id for DSNs (RFC 3461 4.4), if given.
        size: ``len(content)``, the octets DATA carries before dot-stuffing.
    """

    id: str
    sender: str
    recipients: tuple[str, ...]
    content: bytes
    ret: str = "HDRS"
    envid: str | None = None
    size: int = field(init=False)

    def __post_init__(self) -> None:
        if isinstance(self.recipients, str):
            object.__setattr__(self, "recipients", (self.recipients,))
        else:
            object.__setattr__(self, "recipients", tuple(self.recipients))
        if not self.recipients:
            raise ValueError(f"message {self.id!r} has no recipients; give at least one address")
        if self.ret not in ("HDRS", "FULL"):
            raise ValueError(f"message {self.id!r}: ret must be 'HDRS' or 'FULL', got {self.ret!r}")
        object.__setattr__(self, "size", len(self.content))

    def with_content(self, content: bytes) -> MailItem:
        """The same envelope with new content (for example after adding a Received header)."""
        return replace(self, content=content)

    def with_recipients(self, recipients: Iterable[str]) -> MailItem:
        """The same message for a subset of its recipients (one copy per destination)."""
        return replace(self, recipients=tuple(recipients))


def domain_of(address: str) -> str:
    """The domain of a mailbox address, lower-cased (``'Steve@USA.com'`` -> ``'usa.com'``).

    An address without '@' (``postmaster``, RFC 5321 4.5.1) has the empty domain.
    """
    at = address.rfind("@")
    return address[at + 1 :].lower() if at >= 0 else ""


def addresses_of(*fields: str | Sequence[str] | None) -> tuple[str, ...]:
    """Bare addresses from header fields, for RCPT TO: ``'Steve <s@usa.com>'`` gives ``s@usa.com``.

    Args:
        fields: To, Cc, Bcc values; each a string (possibly a comma-separated list) or a list.

    Returns:
        Every address once, in order of first appearance.
    """
    raw: list[str] = []
    for value in fields:
        if value is None:
            continue
        raw.extend([value] if isinstance(value, str) else value)
    seen: dict[str, None] = {}
    for _name, addr in email.utils.getaddresses(raw):
        if addr:
            seen.setdefault(addr, None)
    return tuple(seen)


# --- dates and identifiers -------------------------------------------------------------------


def sim_datetime(t: float, epoch: datetime = SIM_EPOCH) -> datetime:
    """The wall-clock time of simulated time ``t`` (seconds after ``epoch``)."""
    return epoch + timedelta(seconds=t)


def format_date(t: float, epoch: datetime = SIM_EPOCH) -> str:
    """An RFC 5322 3.3 date for simulated time ``t``: ``'Mon, 05 Jan 2026 09:00:00 +0000'``.

    Fractions of a second are dropped (the format has none).
    """
    moment = sim_datetime(t, epoch).replace(microsecond=0)
    return email.utils.format_datetime(moment)


def make_message_id(local_id: str, domain: str) -> str:
    """A deterministic Message-ID (RFC 5322 3.6.4): ``('m1', 'india.com')`` -> ``'<m1@india.com>'``.

    Characters not allowed in a dot-atom are replaced by '-', so any simulation id works.

    Args:
        local_id: the unique part, e.g. the scenario's message id.
        domain: the domain of the host that creates the message.

    Returns:
        The header value, angle brackets included.
    """
    left = "".join(ch if _ATEXT.fullmatch(ch) else "-" for ch in local_id).strip(".") or "msg"
    left = re.sub(r"\.{2,}", ".", left)
    host = domain.strip().strip(".") or "localhost"
    return f"<{left}@{host}>"


# --- attachments -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file to attach, or one extracted from a received message.

    Attributes:
        filename: the name the recipient sees.
        content_type: ``maintype/subtype``, e.g. ``'image/jpeg'``.
        data: the file's octets (before base64).
    """

    filename: str
    content_type: str
    data: bytes

    @property
    def size(self) -> int:
        """The file's size in octets (before transfer encoding)."""
        return len(self.data)


def attachment_from_bytes(
    data: bytes, filename: str, content_type: str | None = None
) -> Attachment:
    """An attachment from octets; the MIME type is guessed from ``filename`` when not given."""
    if content_type is None:
        content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
    if content_type.count("/") != 1:
        raise ValueError(
            f"content type must look like 'image/jpeg' (maintype/subtype), got {content_type!r}"
        )
    return Attachment(filename, content_type, bytes(data))


def attachment_from_file(path: str | Path, content_type: str | None = None) -> Attachment:
    """An attachment read from a real file (for notebooks that attach a file of their own)."""
    file = Path(path)
    return attachment_from_bytes(file.read_bytes(), file.name, content_type)


#: Synthetic attachment kinds: file name pattern, MIME type and the magic bytes real files of
#: that type start with (so `file`, Wireshark or a mail client recognise the type).
SYNTHETIC_KINDS: dict[str, tuple[str, str, bytes]] = {
    "photo": ("IMG_{n:04d}.jpg", "image/jpeg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"),
    "video": ("VID_{n:04d}.mp4", "video/mp4", b"\x00\x00\x00\x18ftypisom"),
    "document": ("document-{n:04d}.pdf", "application/pdf", b"%PDF-1.7\n"),
    "audio": ("voice-{n:04d}.mp3", "audio/mpeg", b"ID3\x04\x00\x00"),
    "archive": ("files-{n:04d}.zip", "application/zip", b"PK\x03\x04"),
    "file": ("file-{n:04d}.bin", "application/octet-stream", b""),
}


def synthetic_attachment(
    kind: str, size: int | str, rng: random.Random, filename: str | None = None
) -> Attachment:
    """A stand-in file of a given kind and size, so a scenario can say "a 2MB photo" without a file.

    The octets are pseudo-random from ``rng`` (incompressible, like real JPEG or MP4 data) after
    the type's magic bytes; the same stream state gives the same file.

    Args:
        kind: one of :data:`SYNTHETIC_KINDS` (``'photo'``, ``'video'``, ``'document'``, ...).
        size: octets, as an int or a size text like ``'2MB'`` (see :func:`parse_size`).
        rng: the random stream to draw from (e.g. ``streams.get("attachment", msg_id)``).
        filename: the name to use instead of a generated one like ``IMG_0417.jpg``.

    Returns:
        The attachment.
    """
    spec = SYNTHETIC_KINDS.get(kind)
    if spec is None:
        known = ", ".join(repr(k) for k in SYNTHETIC_KINDS)
        raise ValueError(f"attachment kind must be one of {known}, got {kind!r}")
    octets = parse_size(size)
    pattern, content_type, magic = spec
    name = filename or pattern.format(n=rng.randrange(10000))
    head = magic[:octets]
    data = head + rng.randbytes(octets - len(head))
    return Attachment(name, content_type, data)


# --- composing -------------------------------------------------------------------------------


def compose(
    sender: str,
    to: str | Sequence[str],
    subject: str,
    body: str,
    *,
    cc: str | Sequence[str] = (),
    html: str | None = None,
    attachments: Iterable[Attachment] = (),
    message_id: str,
    date_t: float,
    epoch: datetime = SIM_EPOCH,
    extra_headers: Mapping[str, str] | None = None,
) -> bytes:
    """A complete message in 7-bit wire form, as a user agent submits it.

    The layout follows what mail clients send: ``text/plain`` alone; with ``html`` a
    ``multipart/alternative``; with attachments a ``multipart/mixed`` around that. Text that is
    not ASCII, or has lines longer than 78 characters, is quoted-printable or base64; attachments
    are base64 in 76-character lines (RFC 2045 6.8). MIME boundaries are derived from the
    Message-ID, so the output is the same on every run.

    Args:
        sender: the From header (``'James <james@india.com>'`` or a bare address).
        to: the To header: one string or a list of addresses.
        subject: the Subject (non-ASCII is written as RFC 2047 encoded words).
        body: the plain text.
        cc: the Cc header, if any.
        html: an HTML alternative of the body.
        attachments: files to attach (see :func:`synthetic_attachment`).
        message_id: the Message-ID, ``'<m1@india.com>'`` (brackets are added if missing).
        date_t: the simulated time the message was written; becomes the Date header.
        epoch: wall-clock time of t = 0.
        extra_headers: more headers to add after the standard ones (e.g. In-Reply-To).

    Returns:
        The message: CRLF line ends, every octet below 128, no line over 998 octets.
    """
    mid = message_id.strip()
    mid = mid if mid.startswith("<") else f"<{mid}>"
    date = format_date(date_t, epoch)
    files = tuple(attachments)
    if html is None and not extra_headers:
        fast = simple_message(
            sender=sender,
            to=[to] if isinstance(to, str) else to,
            cc=([cc] if isinstance(cc, str) else cc) if cc else (),
            subject=subject,
            date=date,
            message_id=mid,
            body=body,
            attachments=[(f.filename, f.content_type, f.data) for f in files],
            boundary=_boundary(mid, 0),
        )
        if fast is not None:
            return fast
    return compose_with_email_package(
        sender,
        to,
        subject,
        body,
        cc=cc,
        html=html,
        attachments=files,
        message_id=mid,
        date=date,
        extra_headers=extra_headers,
    )


def compose_with_email_package(
    sender: str,
    to: str | Sequence[str],
    subject: str,
    body: str,
    *,
    cc: str | Sequence[str],
    html: str | None,
    attachments: Sequence[Attachment],
    message_id: str,
    date: str,
    extra_headers: Mapping[str, str] | None,
) -> bytes:
    """:func:`compose` by the ``email`` package, for what :mod:`simple_mime` does not write.

    ``message_id`` has its angle brackets and ``date`` is formatted already.
    """
    mid = message_id
    msg = EmailMessage(policy=SEVEN_BIT)
    msg["From"] = sender
    msg["To"] = to if isinstance(to, str) else ", ".join(to)
    if cc:
        msg["Cc"] = cc if isinstance(cc, str) else ", ".join(cc)
    msg["Subject"] = subject
    msg["Date"] = date
    msg["Message-ID"] = mid
    for name, value in (extra_headers or {}).items():
        msg[name] = value
    msg.set_content(body)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    for item in attachments:
        maintype, subtype = item.content_type.split("/", 1)
        # bytes content always goes out as base64 (email.contentmanager.set_bytes_content).
        msg.add_attachment(item.data, maintype=maintype, subtype=subtype, filename=item.filename)
    return to_wire(msg, boundary_seed=msg["Message-ID"])


def to_wire(msg: Message, boundary_seed: str) -> bytes:
    """Serialise a built message for SMTP: 7-bit, CRLF, with deterministic MIME boundaries.

    The ``email`` package would draw boundaries from :mod:`random`; here part ``i`` of the tree
    (in walk order) gets ``=_mailsim_<hash of boundary_seed>_<i>``. A line starting ``--=_`` cannot
    occur in base64 or quoted-printable (which writes '=' as ``=3D``, RFC 2045 6.7), so only a
    plain-text body that quotes the boundary itself could collide.

    Args:
        msg: the message (built with any policy; written with :data:`SEVEN_BIT`).
        boundary_seed: text the boundaries derive from (usually the Message-ID).

    Returns:
        The wire bytes.
    """
    for index, part in enumerate(_own_parts(msg)):
        if part is not msg and "MIME-Version" in part:
            # EmailMessage.add_* copies MIME-Version into sub-parts; only the top level needs it
            # (RFC 2045 4).
            del part["MIME-Version"]
        if part.get_content_maintype() == "multipart" and part.get_boundary() is None:
            part.set_boundary(_boundary(boundary_seed, index))
    return msg.as_bytes(policy=SEVEN_BIT)


def _boundary(seed: str, index: int) -> str:
    """The MIME boundary of part ``index`` (walk order) of the message whose seed is ``seed``."""
    digest = hashlib.sha256(seed.encode("utf-8")).hexdigest()[:16]
    return f"=_mailsim_{digest}_{index}"


def _own_parts(msg: Message) -> Iterator[Message]:
    """``msg`` and its MIME parts in walk order, not descending into ``message/*`` parts (an
    enclosed message, such as a returned original, is left exactly as it was)."""
    yield msg
    if msg.get_content_maintype() == "multipart":
        for part in msg.get_payload():
            if isinstance(part, Message):
                yield from _own_parts(part)


# --- checking the 7-bit rule ---------------------------------------------------------------------


def seven_bit_problems(content: bytes) -> list[str]:
    """What keeps ``content`` from being valid 7-bit SMTP data; empty when it is fine.

    Checks RFC 5321 4.5.3.1.6 and RFC 2045 2.7: only octets 1-127, lines end in CRLF only,
    no line longer than 998 octets before its CRLF.
    """
    problems: list[str] = []
    if not content.isascii():
        first = next(i for i, octet in enumerate(content) if octet >= 128)
        problems.append(f"octet {content[first]:#04x} at offset {first} is not 7-bit ASCII")
    if b"\x00" in content:
        problems.append(f"NUL octet at offset {content.index(0)}")
    lines = content.split(b"\r\n")
    for number, line in enumerate(lines, 1):
        if b"\n" in line or b"\r" in line:
            problems.append(f"line {number} has a bare CR or LF (lines must end in CRLF)")
            break
    for number, line in enumerate(lines, 1):
        if len(line) > MAX_LINE_OCTETS:
            problems.append(f"line {number} has {len(line)} octets, more than {MAX_LINE_OCTETS}")
            break
    if content and not content.endswith(b"\r\n"):
        problems.append("the content does not end with CRLF")
    return problems


def is_seven_bit(content: bytes) -> bool:
    """True if ``content`` may travel over SMTP without 8BITMIME (see seven_bit_problems)."""
    return not seven_bit_problems(content)


def to_crlf(content: bytes) -> bytes:
    """``content`` with every bare LF (and bare CR) turned into CRLF, ending in CRLF."""
    text = re.sub(rb"\r\n|\r|\n", b"\r\n", content)
    if text and not text.endswith(b"\r\n"):
        text += b"\r\n"
    return text


# --- what servers add ----------------------------------------------------------------------------


def received_header(
    *,
    helo: str,
    client_ip: str,
    by_host: str,
    queue_id: str,
    t: float,
    client_host: str | None = None,
    rcpt: str | None = None,
    protocol: str = "ESMTP",
    epoch: datetime = SIM_EPOCH,
) -> bytes:
    """The ``Received:`` line a server prepends when it accepts a message (RFC 5321 4.4).

    ``Received: from HELO (host [ip]) by HOST with ESMTP id QUEUEID for <rcpt>; date``, folded
    over three lines as Postfix writes it. The TCP-info in parentheses is what the server saw
    itself (reverse DNS name and address), not what the client claimed in HELO.

    Args:
        helo: the name the client gave in HELO/EHLO.
        client_ip: the client's IP address (written as an address literal ``[ip]``).
        by_host: the receiving server's host name.
        queue_id: the receiving server's id for this message.
        t: the simulated time of receipt.
        client_host: the client's host name from reverse DNS, if known.
        rcpt: the recipient, added as ``for <rcpt>`` when there is exactly one.
        protocol: the WITH keyword: ``SMTP``, ``ESMTP``, ``ESMTPA`` (authenticated), ``ESMTPS``,
            ``ESMTPSA`` (RFC 3848).
        epoch: wall-clock time of t = 0.

    Returns:
        The header, CRLF-terminated, ready to prepend.
    """
    tcp_info = f"{client_host} [{client_ip}]" if client_host else f"[{client_ip}]"
    for_clause = f"\r\n\tfor <{rcpt}>" if rcpt else ""
    text = (
        f"Received: from {helo} ({tcp_info})\r\n"
        f"\tby {by_host} with {protocol} id {queue_id}{for_clause}; {format_date(t, epoch)}\r\n"
    )
    return text.encode("ascii", "replace")


_MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*<([^>\r\n]+)>", re.IGNORECASE | re.MULTILINE)

#: A header field name followed by a colon at the very start (RFC 5322 2.2: printable ASCII
#: except the colon).
_HEADER_START = re.compile(rb"[\x21-\x39\x3b-\x7e]+:")


def with_protocol(*, extended: bool, authenticated: bool, tls: bool = False) -> str:
    """The ``with`` keyword of a Received line (RFC 3848): SMTP, ESMTP, ESMTPA, ESMTPS, ESMTPSA.

    The simulation models no TLS (never an S); the live server under TLS says so. AUTH and
    STARTTLS need EHLO, so there is no SMTPA or SMTPS.
    """
    if not extended:
        return "SMTP"
    return "ESMTP" + ("S" if tls else "") + ("A" if authenticated else "")


def add_received(
    content: bytes,
    *,
    helo: str,
    client_ip: str,
    by_host: str,
    queue_id: str,
    t: float,
    client_host: str | None = None,
    rcpt: str | None = None,
    protocol: str = "ESMTP",
    epoch: datetime = SIM_EPOCH,
) -> bytes:
    """``content`` with a ``Received:`` header prepended; arguments as for received_header.

    Content without a header section (a message typed by hand after DATA, as in the tutorial)
    first gets the empty line that ends the headers, so a mail reader does not take its first
    text line for a header after the new one (Postfix's cleanup does the same). Both the
    simulated and the live servers stamp messages through this function.
    """
    if not content or not _HEADER_START.match(content):
        content = b"\r\n" + content
    stamp = received_header(
        helo=helo,
        client_ip=client_ip,
        by_host=by_host,
        queue_id=queue_id,
        t=t,
        client_host=client_host,
        rcpt=rcpt,
        protocol=protocol,
        epoch=epoch,
    )
    return stamp + content


def add_delivery_headers(content: bytes, sender: str, rcpt: str) -> bytes:
    """``content`` as final delivery files it for ``rcpt``: ``Return-Path:`` and ``Delivered-To:``.

    RFC 5321 4.4: the server that makes the final delivery MUST record the reverse-path in a
    ``Return-Path:`` line on top (``<>`` for a bounce). ``Delivered-To:`` names the mailbox's
    address, as Postfix's local delivery and Dovecot write it, so a reader can tell which of
    several addresses a copy came in for.
    """
    top = f"Return-Path: <{sender}>\r\nDelivered-To: {rcpt}\r\n"
    return top.encode("ascii", "replace") + content


def add_missing_headers(
    content: bytes, *, t: float, message_id: str, epoch: datetime = SIM_EPOCH
) -> bytes:
    """``content`` with ``Date:`` and ``Message-ID:`` added at the end of its header if missing.

    What a submission server does for a user agent that left them out (RFC 6409 8.2 and 8.3; the
    MX port passes messages on as they came). A message without any header section (typed by
    hand after DATA) gets them as its header.

    Args:
        content: the message, CRLF line ends.
        t: the time of submission, for the date.
        message_id: the id to use, without angle brackets.
        epoch: wall-clock time of t = 0.
    """
    header = header_section(content) if _HEADER_START.match(content) else b""
    names = {line.split(b":", 1)[0].strip().lower() for line in header.split(b"\r\n") if line}
    added = b""
    if b"date" not in names:
        added += f"Date: {format_date(t, epoch)}\r\n".encode("ascii")
    if b"message-id" not in names:
        added += f"Message-ID: <{message_id}>\r\n".encode("ascii", "replace")
    if not added:
        return content
    if not header:
        return added + b"\r\n" + content
    return content[: len(header)] + added + content[len(header) :]


def message_id_of(content: bytes) -> str | None:
    """The Message-ID of ``content`` (without angle brackets), or None if its header has none."""
    end = content.find(b"\r\n\r\n")
    match = _MESSAGE_ID.search(content, 0, end if end >= 0 else len(content))
    return match.group(1).decode("ascii", "replace") if match else None


def header_section(content: bytes) -> bytes:
    """The header lines of ``content`` up to (not including) the empty line that ends them."""
    if content.startswith((b"\r\n", b"\n")):
        return b""
    end = content.find(b"\r\n\r\n")
    if end < 0:
        end_lf = content.find(b"\n\n")
        return content if end_lf < 0 else content[: end_lf + 1]
    return content[: end + 2]


def count_received(content: bytes) -> int:
    """How many ``Received:`` headers ``content`` carries (hops so far, RFC 5321 6.3)."""
    count = 0
    for line in header_section(content).split(b"\n"):
        if line[:9].lower() == b"received:":
            count += 1
    return count


def is_looping(content: bytes, limit: int = MAX_RECEIVED) -> bool:
    """True if ``content`` has been relayed so often it must be looping (RFC 5321 6.3)."""
    return count_received(content) >= limit


# --- reading back ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReadMessage:
    """What a user agent shows of a received message, decoded back from 7-bit form.

    Attributes:
        subject, sender, to, date, message_id: the headers, decoded (empty string if absent).
        text: the plain-text body, or None.
        html: the HTML alternative, or None.
        attachments: the attached files with their decoded octets.
        received: the ``Received:`` headers, top (latest hop) first.
    """

    subject: str
    sender: str
    to: str
    date: str
    message_id: str
    text: str | None
    html: str | None
    attachments: tuple[Attachment, ...]
    received: tuple[str, ...]


def parse_message(content: bytes) -> EmailMessage:
    """``content`` parsed by the ``email`` package (modern policy, so headers come decoded)."""
    parsed = email.message_from_bytes(content, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def extract_attachments(content: bytes) -> list[Attachment]:
    """The attached files of a received message, base64 or quoted-printable decoded."""
    return _attachments(parse_message(content))


def _attachments(msg: EmailMessage) -> list[Attachment]:
    found: list[Attachment] = []
    for part in msg.walk():
        if part.is_multipart() or part.get_content_disposition() != "attachment":
            continue
        data = part.get_payload(decode=True)
        found.append(
            Attachment(
                part.get_filename() or "attachment",
                part.get_content_type(),
                data if isinstance(data, bytes) else b"",
            )
        )
    return found


def _shown(part: Message | None) -> str | None:
    """A text part's decoded content with local line ends, as a user agent displays it."""
    if not isinstance(part, EmailMessage):
        return None
    text = part.get_content()
    return text.replace("\r\n", "\n") if isinstance(text, str) else None


def read_message(content: bytes) -> ReadMessage:
    """Decode a received message the way a user agent shows it: headers, text, HTML, files."""
    msg = parse_message(content)
    plain = msg.get_body(preferencelist=("plain",))
    rich = msg.get_body(preferencelist=("html",))
    return ReadMessage(
        subject=str(msg.get("Subject", "")),
        sender=str(msg.get("From", "")),
        to=str(msg.get("To", "")),
        date=str(msg.get("Date", "")),
        message_id=str(msg.get("Message-ID", "")),
        text=_shown(plain),
        html=_shown(rich),
        attachments=tuple(_attachments(msg)),
        received=tuple(str(value) for value in msg.get_all("Received", [])),
    )
