"""Checks of notebook 05, "When servers say no": temporary or permanent, and who says so."""

from __future__ import annotations

from typing import Any

from mailsim.teach import lookup
from mailsim.teach.checking import Verdict, close_to, same, same_mapping


def _name(msg: str) -> str:
    return msg.split("@")[0]


def first_refusals(result: Any) -> dict[str, str]:
    """Per user message (``m1``...): the first refusal's reply, from its defer or bounce."""
    users = {_name(r.id) for r in result.books.rows.values() if r.kind == "mail"}
    found: dict[str, str] = {}
    for rec in lookup.records_of(result):
        if rec["type"] in ("mail.defer", "mail.bounce") and _name(rec["msg"]) in users:
            found.setdefault(_name(rec["msg"]), rec["reply"])
    return found


def check_kinds(answer: Any, result: Any) -> Verdict:
    """For each refused message: was its first refusal temporary or permanent?"""
    kinds = {
        name: "temporary" if reply[0] == "4" else "permanent"
        for name, reply in first_refusals(result).items()
    }
    return same_mapping(
        answer,
        kinds,
        hint="the first digit of the reply decides: 4 means try again later, 5 means never; "
        "answer 'temporary' or 'permanent' for each message",
    )


def check_bounces(answer: Any, result: Any, user: str = "james@india.com") -> Verdict:
    """How many bounces ``user`` received."""
    count = sum(
        1
        for r in result.books.rows.values()
        if r.kind == "dsn" and r.to == user and r.status == "delivered"
    )
    return same(
        answer,
        count,
        hint="count the rows of result.deliveries whose kind is dsn: each is a bounce to James",
    )


def who_refused(result: Any, msg: str) -> str:
    """The node that produced the refusal of ``msg``: the receiving server if its reply crossed
    the wire, else the sending server, which decided by itself."""
    refusal = first_refusals(result)[_name(msg)][:3]
    attempt = lookup.first(result, "mail.attempt", msg=msg)
    said = lookup.lines(result, attempt["conn"], "S")
    return str(attempt["mx"] if any(line.startswith(refusal) for line in said) else attempt["node"])


def check_who_refused(answer: Any, result: Any, msg: str) -> Verdict:
    """Which mail server said the refusal of ``msg``."""
    return same(
        answer,
        who_refused(result, msg),
        hint="look for the reply code among the S: lines of that message's connection; if the "
        "receiving server never said it, the sender decided by itself",
    )


def retry_gap(result: Any, msg: str) -> float:
    """Minutes between the first two attempts of ``msg``."""
    tries = [r["t"] for r in lookup.every(result, "mail.attempt", msg=msg)]
    return float(tries[1] - tries[0]) / 60


def check_retry_gap(answer: Any, result: Any, msg: str) -> Verdict:
    """Minutes between a message's first attempt and its retry."""
    return close_to(
        answer,
        retry_gap(result, msg),
        tolerance=0.5,
        unit="min",
        hint="subtract the times of the message's first two mail.attempt events, and divide by 60",
    )
