"""Bounces and delay warnings as delivery status notifications (RFC 3464, RFC 3461 section 6).

When James's server gives up on a message (a 5xx from Steve's server, or days of failed retries)
it writes James a report: a ``multipart/report; report-type=delivery-status`` message with

1. a text a person can read (the wording follows Postfix: "Undelivered Mail Returned to Sender"),
2. a ``message/delivery-status`` part a program can read: per message ``Reporting-MTA`` and
   ``Arrival-Date``, per recipient ``Final-Recipient``, ``Action``, ``Status``, ``Remote-MTA``,
   ``Diagnostic-Code``, ``Last-Attempt-Date`` and, for delays, ``Will-Retry-Until``,
3. the original's headers (``text/rfc822-headers``, RET=HDRS, the default) or the whole original
   (``message/rfc822``, RET=FULL).

The report travels with the null reverse-path ``MAIL FROM:<>`` so that it can never cause another
report: a message whose sender is null is never bounced (RFC 5321 4.5.5 and 6.1, RFC 3461 6.2).
:func:`parse_dsn` reads such a report back, for tests and for user agents.
"""

from __future__ import annotations

import email
import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage, Message

from mailsim.mail.message import (
    SEVEN_BIT,
    SIM_EPOCH,
    MailItem,
    format_date,
    header_section,
    make_message_id,
    parse_message,
    to_wire,
)
from mailsim.mail.units import format_duration

#: Subject of a report with at least one failed recipient (Postfix's wording).
SUBJECT_FAILED = "Undelivered Mail Returned to Sender"
#: Subject of a delay warning (Postfix's wording).
SUBJECT_DELAYED = "Delayed Mail (still being retried)"
#: Subject of a report on successful delivery (NOTIFY=SUCCESS).
SUBJECT_DELIVERED = "Successful Mail Delivery Report"

#: The RFC 3464 2.3.3 actions this module writes.
ACTIONS = ("failed", "delayed", "delivered", "relayed", "expanded")

# An SMTP reply: three digits, then optionally an enhanced status code (RFC 3463 / RFC 2034).
_REPLY = re.compile(r"^([2-5][0-9][0-9])[ -](?:([245])\.([0-9]{1,3})\.([0-9]{1,3})\b)?")


def should_bounce(item: MailItem) -> bool:
    """Whether a failure of ``item`` may be reported to its sender.

    Never for a message with the null reverse-path: that is itself a report, and bouncing it
    could loop forever between two servers (RFC 5321 4.5.5, 6.1; RFC 3461 6.2).
    """
    return item.sender.strip("<> ") != ""


@dataclass(frozen=True, slots=True)
class RecipientStatus:
    """What a report says about one recipient.

    Attributes:
        recipient: the final recipient address.
        action: ``'failed'``, ``'delayed'`` or ``'delivered'`` (RFC 3464 2.3.3).
        reply: the last SMTP reply (``'451 4.3.0 Try again later'``) or, when there was none, what
            went wrong (``'connect to usa-mail[203.0.113.25]:25: Connection timed out'``).
        status: the enhanced status code (``'5.1.1'``); derived by :func:`status_for` if None.
        remote_mta: the host that sent ``reply``, if one answered.
        last_attempt: simulated time of the latest attempt, if any.
        will_retry_until: simulated time the server gives up (delay warnings only).
        original_recipient: the address as the sender gave it, if it differs.
    """

    recipient: str
    action: str
    reply: str | None = None
    status: str | None = None
    remote_mta: str | None = None
    last_attempt: float | None = None
    will_retry_until: float | None = None
    original_recipient: str | None = None

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"action must be one of {', '.join(ACTIONS)}, got {self.action!r}")


def is_smtp_reply(text: str) -> bool:
    """True if ``text`` starts like an SMTP reply: three digits 2xx-5xx, then space or dash."""
    return _REPLY.match(text) is not None


def status_for(action: str, reply: str | None) -> str:
    """The enhanced status code (RFC 3463) a report gives a recipient.

    The reply's own enhanced code wins when its class fits the action. Otherwise: a 5xx reply gives
    ``5.0.0``; a failure without a permanent reply means the server gave up after temporary errors,
    ``5.4.7`` (delivery time expired); a delay gives ``4.0.0`` after a 4xx reply, or ``4.4.1`` (no
    answer from host) when no server replied at all; a delivery gives ``2.0.0``.

    Args:
        action: the RFC 3464 action (``'failed'``, ``'delayed'``, ``'delivered'``...).
        reply: the last reply or failure text, or None.

    Returns:
        A code like ``'5.1.1'``.
    """
    match = _REPLY.match(reply or "")
    code = match.group(1) if match else None
    enhanced = ".".join(match.group(2, 3, 4)) if match and match.group(2) else None
    if action == "failed":
        if enhanced and enhanced.startswith("5"):
            return enhanced
        return "5.0.0" if code and code.startswith("5") else "5.4.7"
    if action == "delayed":
        if enhanced and enhanced.startswith("4"):
            return enhanced
        return "4.0.0" if code and code.startswith("4") else "4.4.1"
    return enhanced if enhanced and enhanced.startswith("2") else "2.0.0"


def diagnostic_code(reply: str) -> str:
    """The ``Diagnostic-Code`` value (RFC 3464 2.3.6): ``'smtp; 451 ...'`` for an SMTP reply,
    ``'X-mailsim; ...'`` for any other failure (a refused connection, a DNS error)."""
    text = " ".join(line.strip() for line in reply.splitlines() if line.strip())
    kind = "smtp" if is_smtp_reply(text) else "X-mailsim"
    return f"{kind}; {text}"


def compose_dsn(
    original: MailItem,
    reports: Sequence[RecipientStatus],
    *,
    reporting_mta: str,
    arrival: float,
    now: float,
    message_id: str,
    give_up_after: float | None = None,
    ret: str | None = None,
    epoch: datetime = SIM_EPOCH,
) -> bytes:
    """The report on ``original`` for the recipients in ``reports``, as 7-bit wire bytes.

    Args:
        original: the message reported on (its content supplies the returned headers or body).
        reports: one entry per recipient to report; a failure report lists failed recipients,
            a delay warning delayed ones.
        reporting_mta: host name of the server writing the report (``india-mail.india.com``).
        arrival: simulated time ``original`` arrived at that server (``Arrival-Date``).
        now: simulated time of the report (its Date).
        message_id: the report's own Message-ID, e.g. from :func:`make_message_id`.
        give_up_after: the retry policy's give-up age, mentioned in delay warnings.
        ret: ``'HDRS'`` or ``'FULL'``; defaults to what the sender asked for (``original.ret``).
        epoch: wall-clock time of t = 0.

    Returns:
        The report: headers and a ``multipart/report`` body, CRLF, 7-bit.
    """
    if not reports:
        raise ValueError("a delivery status report needs at least one recipient")
    ret = (ret or original.ret).upper()
    if ret not in ("HDRS", "FULL"):
        raise ValueError(f"ret must be 'HDRS' or 'FULL', got {ret!r}")
    actions = {r.action for r in reports}
    if "failed" in actions:
        subject = SUBJECT_FAILED
    elif "delayed" in actions:
        subject = SUBJECT_DELAYED
    else:
        subject = SUBJECT_DELIVERED

    report = EmailMessage(policy=SEVEN_BIT)
    report["From"] = f"Mail Delivery System <MAILER-DAEMON@{reporting_mta}>"
    report["To"] = f"<{original.sender}>"
    report["Subject"] = subject
    report["Date"] = format_date(now, epoch)
    report["Message-ID"] = message_id
    # RFC 3834 5: an automatic response, so vacation responders and the like stay quiet.
    report["Auto-Submitted"] = "auto-replied"
    report["MIME-Version"] = "1.0"
    report["Content-Type"] = "multipart/report; report-type=delivery-status"

    text = EmailMessage(policy=SEVEN_BIT)
    words = _explanation(subject, reports, reporting_mta, arrival, now, give_up_after)
    text.set_content(words, charset="us-ascii" if words.isascii() else "utf-8")
    text["Content-Description"] = "Notification"
    report.attach(text)

    status = EmailMessage(policy=SEVEN_BIT)
    status["Content-Description"] = "Delivery report"
    status["Content-Type"] = "message/delivery-status"
    status.set_payload(_status_blocks(original, reports, reporting_mta, arrival, epoch))
    report.attach(status)

    returned = EmailMessage(policy=SEVEN_BIT)
    if ret == "FULL":
        returned["Content-Description"] = "Undelivered Message"
        returned["Content-Type"] = "message/rfc822"
        inner = email.message_from_bytes(original.content, policy=SEVEN_BIT)
        returned.set_payload([inner])
    else:
        returned["Content-Description"] = "Undelivered Message Headers"
        returned["Content-Type"] = "text/rfc822-headers"
        returned.set_payload(header_section(original.content).decode("ascii", "replace"))
    report.attach(returned)
    return to_wire(report, boundary_seed=message_id)


def _status_blocks(
    original: MailItem,
    reports: Sequence[RecipientStatus],
    reporting_mta: str,
    arrival: float,
    epoch: datetime,
) -> list[Message | str]:
    """The per-message block, then one block per recipient (RFC 3464 2.2 and 2.3)."""
    head = Message(policy=SEVEN_BIT)
    head["Reporting-MTA"] = f"dns; {reporting_mta}"
    if original.envid:
        head["Original-Envelope-Id"] = original.envid
    head["X-Mailsim-Message-Id"] = original.id
    head["Arrival-Date"] = format_date(arrival, epoch)
    blocks: list[Message | str] = [head]
    for r in reports:
        block = Message(policy=SEVEN_BIT)
        if r.original_recipient:
            block["Original-Recipient"] = f"rfc822; {r.original_recipient}"
        block["Final-Recipient"] = f"rfc822; {r.recipient}"
        block["Action"] = r.action
        block["Status"] = r.status or status_for(r.action, r.reply)
        if r.remote_mta:
            block["Remote-MTA"] = f"dns; {r.remote_mta}"
        if r.reply:
            block["Diagnostic-Code"] = diagnostic_code(r.reply)
        if r.last_attempt is not None:
            block["Last-Attempt-Date"] = format_date(r.last_attempt, epoch)
        if r.action == "delayed" and r.will_retry_until is not None:
            block["Will-Retry-Until"] = format_date(r.will_retry_until, epoch)
        blocks.append(block)
    return blocks


def _explanation(
    subject: str,
    reports: Sequence[RecipientStatus],
    reporting_mta: str,
    arrival: float,
    now: float,
    give_up_after: float | None,
) -> str:
    """The human-readable part, in the spirit of Postfix's bounce texts, for students to read."""
    banner = "#" * 68
    if subject == SUBJECT_FAILED:
        story = [
            "I'm sorry to have to inform you that your message could not be delivered to "
            "one or more recipients. Its headers (or the whole message) are attached below.",
            "Your mail server accepted the message and tried to pass it on to the recipient's "
            "mail server. For the recipients listed below it got a permanent refusal, or it "
            "kept getting temporary errors until it gave up, so it has removed the message "
            "from its queue.",
        ]
    elif subject == SUBJECT_DELAYED:
        until = (
            f"until the message is {format_duration(give_up_after)} old"
            if give_up_after is not None
            else "for a while"
        )
        story = [
            f"{banner}\n# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #"
            f"\n{banner}",
            f"Your message has not been delivered yet, {format_duration(now - arrival)} after it "
            "was sent: the recipient's mail server could not be reached, or it asked to try "
            f"again later. The message waits in the outgoing queue of {reporting_mta}, which "
            f"will keep trying {until}. If it still cannot be delivered then, you will get "
            "another report.",
        ]
    else:
        story = ["Your message was successfully delivered to the recipients below."]
    story.append(
        "For further assistance, please send mail to postmaster. If you do so, please "
        "include this problem report."
    )
    paragraphs = [f"This is the mail system at host {reporting_mta}."]
    paragraphs += [
        p if p.startswith("#") else textwrap.fill(p, width=70, break_on_hyphens=False)
        for p in story
    ]
    paragraphs.append(" " * 19 + "The mail system")
    for r in reports:
        where = f"host {r.remote_mta} said: " if r.remote_mta and r.reply else ""
        why = " ".join((r.reply or "no reason recorded").split())
        paragraphs.append(
            textwrap.fill(
                f"<{r.recipient}>: {where}{why}",
                width=72,
                subsequent_indent="    ",
                break_long_words=False,
                break_on_hyphens=False,
            )
        )
    return "\n\n".join(paragraphs) + "\n"


def make_report(
    original: MailItem,
    reports: Sequence[RecipientStatus],
    *,
    report_id: str,
    reporting_mta: str,
    arrival: float,
    now: float,
    give_up_after: float | None = None,
    ret: str | None = None,
    epoch: datetime = SIM_EPOCH,
) -> MailItem | None:
    """The report on ``original`` as a message ready for the queue, or None if it must not be sent.

    The report goes to the original sender with the null reverse-path (RFC 3461 6.2). None is
    returned when the original itself had the null sender (never bounce a bounce, RFC 5321 6.1);
    the caller records that the report was suppressed.

    Args:
        original: the message reported on.
        reports: the recipients to report (see :func:`compose_dsn`).
        report_id: the report's id in the simulation; its Message-ID is derived from it.
        reporting_mta: host name of the reporting server.
        arrival: when ``original`` arrived there.
        now: the time of the report.
        give_up_after: the retry policy's give-up age (for delay warnings).
        ret: override of the sender's RET choice.
        epoch: wall-clock time of t = 0.

    Returns:
        A :class:`MailItem` with sender ``''`` and the original sender as only recipient.
    """
    if not should_bounce(original):
        return None
    content = compose_dsn(
        original,
        reports,
        reporting_mta=reporting_mta,
        arrival=arrival,
        now=now,
        message_id=make_message_id(report_id, reporting_mta),
        give_up_after=give_up_after,
        ret=ret,
        epoch=epoch,
    )
    return MailItem(id=report_id, sender="", recipients=(original.sender,), content=content)


# --- reading reports -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReportedRecipient:
    """The fields of one per-recipient block of a delivery-status report.

    Attributes:
        final_recipient: the address, without its ``rfc822;`` type.
        action: ``failed``, ``delayed``, ``delivered``, ...
        status: the enhanced status code.
        remote_mta: the remote host, without ``dns;``, or None.
        diagnostic_code: the full value (``'smtp; 550 5.1.1 ...'``), or None.
        last_attempt_date: as written, or None.
        will_retry_until: as written, or None.
        fields: every field of the block by lower-case name.
    """

    final_recipient: str
    action: str
    status: str
    remote_mta: str | None
    diagnostic_code: str | None
    last_attempt_date: str | None
    will_retry_until: str | None
    fields: dict[str, str]


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """A parsed ``multipart/report; report-type=delivery-status`` message.

    Attributes:
        subject: the report's Subject.
        reporting_mta: without its ``dns;`` type.
        arrival_date: as written, or None.
        recipients: the per-recipient blocks, in order.
        message_fields: every field of the per-message block by lower-case name.
        explanation: the human-readable text part.
        original_headers: the returned header section (RET=HDRS), or the returned message's
            headers (RET=FULL).
        original: the whole returned message (RET=FULL), or None.
    """

    subject: str
    reporting_mta: str
    arrival_date: str | None
    recipients: tuple[ReportedRecipient, ...]
    message_fields: dict[str, str]
    explanation: str
    original_headers: str | None
    original: bytes | None


def parse_dsn(content: bytes) -> DeliveryReport:
    """Read a delivery status notification back (RFC 3464).

    Args:
        content: the report as received.

    Returns:
        Its fields.

    Raises:
        ValueError: ``content`` is not a delivery-status report, or lacks a required field; the
            message says which.
    """
    msg = parse_message(content)
    if msg.get_content_type() != "multipart/report":
        raise ValueError(
            f"not a delivery status report: content type is {msg.get_content_type()}, "
            "expected multipart/report"
        )
    if str(msg.get_param("report-type", "")).lower() != "delivery-status":
        raise ValueError("not a delivery status report: report-type is not delivery-status")
    parts = _subparts(msg)
    if len(parts) < 2:
        raise ValueError("a delivery status report needs a text part and a status part")
    explanation = ""
    if parts[0].get_content_maintype() == "text" and isinstance(parts[0], EmailMessage):
        explanation = parts[0].get_content().replace("\r\n", "\n")
    status = parts[1]
    if status.get_content_type() != "message/delivery-status":
        raise ValueError(
            f"second part is {status.get_content_type()}, expected message/delivery-status"
        )
    blocks = _subparts(status)
    if len(blocks) < 2:
        raise ValueError("the delivery-status part needs a per-message and a per-recipient block")
    message_fields = _fields(blocks[0])
    if "reporting-mta" not in message_fields:
        raise ValueError("the per-message block lacks Reporting-MTA (RFC 3464 2.2.2)")
    recipients = []
    for number, block in enumerate(blocks[1:], 1):
        fields = _fields(block)
        for required in ("final-recipient", "action", "status"):
            if required not in fields:
                raise ValueError(f"recipient block {number} lacks {required} (RFC 3464 2.3)")
        recipients.append(
            ReportedRecipient(
                final_recipient=_untyped(fields["final-recipient"]),
                action=fields["action"].lower(),
                status=fields["status"],
                remote_mta=_untyped(fields["remote-mta"]) if "remote-mta" in fields else None,
                diagnostic_code=fields.get("diagnostic-code"),
                last_attempt_date=fields.get("last-attempt-date"),
                will_retry_until=fields.get("will-retry-until"),
                fields=fields,
            )
        )
    original_headers: str | None = None
    original: bytes | None = None
    if len(parts) > 2:
        third = parts[2]
        if third.get_content_type() == "message/rfc822":
            inner = _subparts(third)
            if inner:
                original = inner[0].as_bytes(policy=SEVEN_BIT)
                original_headers = header_section(original).decode("ascii", "replace")
        else:
            payload = third.get_payload()
            original_headers = payload if isinstance(payload, str) else None
    return DeliveryReport(
        subject=str(msg.get("Subject", "")),
        reporting_mta=_untyped(message_fields["reporting-mta"]),
        arrival_date=message_fields.get("arrival-date"),
        recipients=tuple(recipients),
        message_fields=message_fields,
        explanation=explanation,
        original_headers=original_headers,
        original=original,
    )


def _subparts(msg: Message) -> list[Message]:
    """The parsed sub-parts of a multipart or message/* part (empty for a leaf)."""
    payload = msg.get_payload()
    if not isinstance(payload, list):
        return []
    return [part for part in payload if isinstance(part, Message)]


def _fields(block: Message) -> dict[str, str]:
    return {name.lower(): " ".join(str(value).split()) for name, value in block.items()}


def _untyped(value: str) -> str:
    """``'rfc822; steve@usa.com'`` -> ``'steve@usa.com'`` (RFC 3464 2.1.2 address-type)."""
    return value.split(";", 1)[1].strip() if ";" in value else value.strip()
