"""Checks of notebook 03, "When links fail": the queue, retries, and the wait after a repair."""

from __future__ import annotations

from typing import Any

from mailsim.teach import lookup
from mailsim.teach.checking import Verdict, close_to, same


def attempts(result: Any) -> int:
    """Delivery attempts of the (one) user message of a run."""
    row = next(r for r in result.books.rows.values() if r.kind == "mail")
    return int(row.attempts)


def check_attempts(answer: Any, result: Any) -> Verdict:
    """How many attempts the message of link-outage needed."""
    return same(
        answer,
        attempts(result),
        hint="count the mail.attempt events (or read the attempts column of result.deliveries); "
        "the one that worked counts too",
    )


def delivered_after_repair(result: Any) -> float:
    """Minutes from the link coming back (link.up) to the message being filed."""
    up = lookup.first(result, "link.up")["t"]
    filed = lookup.first(result, "mail.deliver", node="usa-mail")["t"]
    return float(filed - up) / 60


def check_first_after_repair(answer: Any, runs: dict[str, Any]) -> Verdict:
    """Which retry policy delivered first once the link was back."""
    first = min(runs, key=lambda policy: delivered_after_repair(runs[policy]))
    return same(
        answer,
        first,
        hint="compare the 'delivered at' column of the table; answer with the policy's name",
    )


def check_wait_after_repair(answer: Any, result: Any) -> Verdict:
    """Minutes between the repair and the delivery, for one run."""
    return close_to(
        answer,
        delivered_after_repair(result),
        tolerance=0.5,
        unit="min",
        hint="subtract the time of the link.up event from the time of mail.deliver, and "
        "divide by 60",
    )
