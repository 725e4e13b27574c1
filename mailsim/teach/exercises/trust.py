"""Checks of notebook 08, "Trust": relaying, AUTH, passwords, and a forged sender."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from mailsim.teach import lookup
from mailsim.teach.checking import Verdict, same


def check_reply_code(answer: Any, result: Any, conn: int, command: str) -> Verdict:
    """The reply code the server gave to ``command`` on ``conn``."""
    code = int(lookup.reply_to(result, conn, command)[:3])
    return same(
        answer,
        code,
        hint=f"find the line starting {command!r} in that connection's transcript and give "
        "the three digits of the reply to it, as a number",
    )


def tried_password(result: Any, conn: int) -> str:
    """The password in the AUTH PLAIN line of ``conn`` (RFC 4616: authzid NUL user NUL pass)."""
    line = next(text for text in lookup.lines(result, conn, "C") if text.startswith("AUTH PLAIN"))
    try:
        decoded = base64.b64decode(line.split(" ")[2], validate=True)
    except (IndexError, binascii.Error) as error:
        raise ValueError(f"not an AUTH PLAIN line with its credentials: {line!r}") from error
    return decoded.split(b"\0")[2].decode("utf-8")


def check_tried_password(answer: Any, result: Any, conn: int) -> Verdict:
    """The password Mallory tried, read out of the AUTH PLAIN line."""
    return same(
        answer,
        tried_password(result, conn),
        hint="base64-decode the text after AUTH PLAIN (base64.b64decode); the result is "
        "three parts separated by NUL octets (b'\\x00'), and the password is the last",
        normalise=lambda value: value,  # a password is compared exactly, case and all
    )


def real_sender_node(result: Any, queue_id: str) -> str:
    """The node whose connection handed ``usa-mail`` the message it queued as ``queue_id``."""
    for rec in lookup.records_of(result):
        if (
            rec["type"] == "smtp.line"
            and rec["side"] == "S"
            and f"queued as {queue_id}" in rec["line"]
        ):
            return str(lookup.first(result, "tcp.open", conn=rec["conn"])["client"])
    raise lookup.NotInTrace(f"no connection queued {queue_id}")


def check_real_sender(answer: Any, result: Any, queue_id: str) -> Verdict:
    """Which node really sent the message queued as ``queue_id``."""
    return same(
        answer,
        real_sender_node(result, queue_id),
        hint="the From: header says what the sender typed; the Received: line that usa-mail "
        "added names the machine that actually connected, in parentheses",
    )
