"""Checks of notebook 02, "The journey of a message": the steps in the trace and the time."""

from __future__ import annotations

from typing import Any

from mailsim.teach import lookup
from mailsim.teach.checking import Verdict, close_to, same


def relay(result: Any) -> int:
    """The connection that carried the message from india-mail to usa-mail."""
    return lookup.connection(result, client="india-mail", server="usa-mail", port=25)


def until_ehlo(result: Any) -> float:
    """Seconds from the relay's SYN leaving india-mail to india-mail sending EHLO."""
    conn = relay(result)
    opened = lookup.first(result, "tcp.open", conn=conn)["t"]
    ehlo = next(r for r in lookup.protocol_lines(result, conn, "C"))["t"]
    return float(ehlo - opened)


def check_until_ehlo(answer: Any, result: Any) -> Verdict:
    """Milliseconds from the SYN to EHLO on the India-USA connection."""
    return close_to(
        answer,
        until_ehlo(result) * 1000,
        tolerance=5,
        unit="ms",
        hint="SYN, SYN-ACK, ACK and the 220 greeting each cross the ocean once before EHLO can "
        "leave; one crossing is the sum of the latencies on the path",
    )


def check_mailbox_wait(answer: Any, result: Any) -> Verdict:
    """Seconds the message lay in Steve's mailbox before his user agent fetched it."""
    filed = lookup.first(result, "mail.deliver", node="usa-mail")["t"]
    fetched = lookup.first(result, "mail.fetch", user="steve")["t"]
    return close_to(
        answer,
        fetched - filed,
        tolerance=1,
        unit="s",
        hint="subtract the time of mail.deliver from the time of mail.fetch; Steve's agent "
        "checks only every 10 minutes",
    )


def greeting_segment(result: Any) -> dict[str, Any]:
    """The TCP segment that carried usa-mail's 220 greeting to india-mail."""
    conn = relay(result)
    return next(
        r for r in lookup.every(result, "tcp.segment", conn=conn, src="usa-mail") if r["length"] > 0
    )


def check_greeting_length(answer: Any, result: Any) -> Verdict:
    """The data length of the segment carrying the greeting."""
    return same(
        answer,
        greeting_segment(result)["length"],
        hint="in the step-through view pick the India-USA connection and TCP, step to the first "
        "segment from usa-mail whose length is not 0, and read its length",
    )
