"""Checks of notebook 11, "The story on real sockets": the live queue's waits and the headers."""

from __future__ import annotations

import email
from typing import Any

from mailsim.teach.checking import Verdict, close_to, same


def first_wait_minutes(records: Any) -> float:
    """Minutes from the first deferral of a live run to the try it scheduled."""
    defer = next(r for r in records if r["type"] == "mail.defer")
    return float(defer["next_attempt"] - defer["t"]) / 60


def check_first_wait(answer: Any, records: Any) -> Verdict:
    """How long india-mail waited after its first failed try."""
    return close_to(
        answer,
        first_wait_minutes(records),
        tolerance=1.0,
        unit="min",
        hint="a mail.defer record says when the next try is due (next_attempt); subtract its "
        "time t and divide by 60; the cell above prints it for the first two tries",
    )


def received_lines(message: str) -> int:
    """How many Received header fields a message carries."""
    return len(email.message_from_string(message).get_all("Received", []))


def check_received_lines(answer: Any, message: str) -> Verdict:
    """How many Received lines the message Steve read carries."""
    return same(
        answer,
        received_lines(message),
        hint="each server that takes the message adds one Received line on top (RFC 5321 "
        "4.4); count them in the message printed above, or count the servers it passed",
    )
