"""Mail as the servers handle it: messages in 7-bit MIME, queues, retries, bounces, mailboxes.

Nothing here knows about SimPy, asyncio or sockets: time is passed in as float seconds, so the
simulated mail server and the live servers share the same code. The parts:

- :mod:`mailsim.mail.message`: composing messages (text, HTML, attachments) in 7-bit wire form,
  Received trace headers, the :class:`MailItem` envelope-plus-content record.
- :mod:`mailsim.mail.queue`: the outgoing queue with per-recipient states.
- :mod:`mailsim.mail.retry`: when to retry and when to give up (fixed, Postfix, Exim).
- :mod:`mailsim.mail.dsn`: bounces and delay warnings (RFC 3464 reports) and their parser.
- :mod:`mailsim.mail.mailbox`: mailboxes for POP3, exported to Maildir or mbox.
- :mod:`mailsim.mail.units`: durations, sizes and rates as people write them.
- :mod:`mailsim.mail.server`: what a mail server decides (accept, queue, choose the MX, retry,
  warn, bounce) as a sans-IO core, driven by the simulated and the live servers alike.
"""

from __future__ import annotations

from mailsim.mail.dsn import (
    DeliveryReport,
    RecipientStatus,
    ReportedRecipient,
    compose_dsn,
    make_report,
    parse_dsn,
    should_bounce,
    status_for,
)
from mailsim.mail.mailbox import (
    Mailbox,
    MailboxLocked,
    MailStore,
    StoredMessage,
    export_maildir,
    export_mbox,
)
from mailsim.mail.message import (
    SIM_EPOCH,
    Attachment,
    MailItem,
    ReadMessage,
    add_delivery_headers,
    add_missing_headers,
    add_received,
    addresses_of,
    attachment_from_bytes,
    attachment_from_file,
    compose,
    count_received,
    domain_of,
    extract_attachments,
    format_date,
    is_looping,
    is_seven_bit,
    make_message_id,
    read_message,
    received_header,
    seven_bit_problems,
    synthetic_attachment,
)
from mailsim.mail.queue import (
    DueBatch,
    DueEntry,
    OutgoingQueue,
    QueuedRecipient,
    QueueEntry,
    QueueStateError,
    RecipientRecord,
    RecipientState,
)
from mailsim.mail.retry import (
    EximRetry,
    FixedRetry,
    PostfixRetry,
    RetryPolicy,
    RetryRule,
    make_retry_policy,
    parse_retry_rules,
)
from mailsim.mail.units import (
    format_duration,
    format_rate,
    format_size,
    parse_duration,
    parse_rate,
    parse_size,
)

__all__ = [
    "SIM_EPOCH",
    "Attachment",
    "DeliveryReport",
    "DueBatch",
    "DueEntry",
    "EximRetry",
    "FixedRetry",
    "MailItem",
    "MailStore",
    "Mailbox",
    "MailboxLocked",
    "OutgoingQueue",
    "PostfixRetry",
    "QueueEntry",
    "QueueStateError",
    "QueuedRecipient",
    "ReadMessage",
    "RecipientRecord",
    "RecipientState",
    "RecipientStatus",
    "ReportedRecipient",
    "RetryPolicy",
    "RetryRule",
    "StoredMessage",
    "add_delivery_headers",
    "add_missing_headers",
    "add_received",
    "addresses_of",
    "attachment_from_bytes",
    "attachment_from_file",
    "compose",
    "compose_dsn",
    "count_received",
    "domain_of",
    "export_maildir",
    "export_mbox",
    "extract_attachments",
    "format_date",
    "format_duration",
    "format_rate",
    "format_size",
    "is_looping",
    "is_seven_bit",
    "make_message_id",
    "make_report",
    "make_retry_policy",
    "parse_dsn",
    "parse_duration",
    "parse_rate",
    "parse_retry_rules",
    "parse_size",
    "read_message",
    "received_header",
    "seven_bit_problems",
    "should_bounce",
    "status_for",
    "synthetic_attachment",
]
