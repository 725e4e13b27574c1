"""Checks of notebook 04, "Giving up": expiry, the bounce, and the delay warning."""

from __future__ import annotations

from typing import Any

from mailsim.mail.dsn import parse_dsn
from mailsim.teach import lookup
from mailsim.teach.checking import Verdict, close_to, same


def check_bounce_status(answer: Any, bounce: bytes) -> Verdict:
    """The enhanced status code in the bounce James received."""
    status = parse_dsn(bounce).recipients[0].status
    return same(
        answer,
        status,
        hint="read the Status: line of the machine-readable part (message/delivery-status); "
        "it has three numbers with dots between them",
    )


def bounce_fetched_at(result: Any) -> float:
    """Hours from the start until James's user agent fetched the bounce."""
    notice = lookup.first(result, "mail.bounce")["dsn"]
    return float(lookup.first(result, "mail.fetch", msg=notice)["t"]) / 3600


def check_bounce_fetched(answer: Any, result: Any) -> Verdict:
    """When James's user agent fetched the bounce, in hours from the start."""
    return close_to(
        answer,
        bounce_fetched_at(result),
        tolerance=0.1,
        unit="h",
        hint="find the mail.fetch event of James's user agent after the mail.bounce, and "
        "divide its time by 3600; James checks only every 6 hours",
    )


def warned_after(result: Any) -> float:
    """Hours from James sending to india-mail warning him of the delay."""
    sent = lookup.first(result, "mail.submit")["t"]
    return float(lookup.first(result, "mail.warn")["t"] - sent) / 3600


def check_warned_after(answer: Any, result: Any) -> Verdict:
    """How long after sending James was warned, in hours."""
    return close_to(
        answer,
        warned_after(result),
        tolerance=0.05,
        unit="h",
        hint="the warning goes out at the first retry after the message is delay_warning_after "
        "old; subtract the mail.submit time from the mail.warn time",
    )
