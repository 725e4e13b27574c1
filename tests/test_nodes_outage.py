"""Steve's server unreachable for hours (retried every 30-40 minutes) or days (bounced)."""

from __future__ import annotations

import itertools

import pytest
from nodes_worlds import (
    JAMES,
    STEVE,
    assert_balanced,
    first,
    of_type,
    relay_opens,
    tutorial_world,
)

from mailsim.mail.dsn import parse_dsn
from mailsim.nodes.world import World

HOUR = 3600.0
DAY = 86400.0
#: FixedRetry's defaults: next try = failure + 30 min + U(0, 10 min).
INTERVAL, JITTER = 1800.0, 600.0
#: A connect to a dead host or over a dead link gives up after 30 s (Postfix's connect timeout).
CONNECT_TIMEOUT = 30.0


def _three_hours_down(how: str) -> World:
    world = tutorial_world(seed=3)
    world.send(60, JAMES, [STEVE], "Books", "Grammar book?", name="books")
    if how == "crash":
        world.crash("usa-mail", at=30, restart_after=3 * HOUR)
    else:
        world.link_down("india-mail", "usa-mail", at=30, duration=3 * HOUR)
    world.run(until=6 * HOUR)
    return world


@pytest.mark.parametrize("how", ["crash", "link"])
def test_retries_every_30_to_40_minutes_until_the_server_is_back(how: str) -> None:
    world = _three_hours_down(how)
    back = 30 + 3 * HOUR  # 10830 s
    defers = of_type(world, "mail.defer", msg="books@india.com")
    opens = [rec["t"] for rec in relay_opens(world)]
    # Tries from 60 s until the outage ends at 10830 s, at most 40.5 min apart: at least
    # 10770 / 2430 -> 5 failed tries, at most 10770 / 1830 + 1 -> 6.
    assert 5 <= len(defers) <= 6
    for defer in defers:
        # Nothing answers: each try ends after the connect timeout, with a reply that says so.
        assert (
            defer["reply"]
            == "451 4.4.1 connect to usa-mail.usa.com[198.51.100.1]:25: Connection timed out"
        )
        # The next try is 30 min plus 0-10 min of jitter after the failure.
        assert INTERVAL <= defer["next_attempt"] - defer["t"] <= INTERVAL + JITTER
    # Each try starts when the previous one asked (DNS answers from its cache within 2 ms), so
    # consecutive tries start 30.5-40.5 minutes apart (the 30 s timeout plus the wait).
    for defer, next_open in zip(defers, opens[1:], strict=True):
        assert next_open == pytest.approx(defer["next_attempt"], abs=0.01)
    gaps = [b - a for a, b in itertools.pairwise(opens)]
    assert all(
        CONNECT_TIMEOUT + INTERVAL <= gap <= CONNECT_TIMEOUT + INTERVAL + JITTER + 0.01
        for gap in gaps
    )
    # The first try after the outage gets through, within one retry gap of the return.
    deliver = first(world, "mail.deliver", msg="books@india.com")
    assert back < deliver["t"] <= back + CONNECT_TIMEOUT + INTERVAL + JITTER
    assert opens[-1] > back and opens[-2] < back
    assert len(world.agents[STEVE].inbox) == 1
    books = world.books()
    assert_balanced(world)
    row = books.rows[("books@india.com", STEVE)]
    assert row.status == "delivered" and row.attempts == len(opens)


def test_the_attempt_records_name_the_failure_and_the_success() -> None:
    world = _three_hours_down("crash")
    attempts = of_type(world, "mail.attempt", msg="books@india.com")
    # Each attempt is recorded when its SYN leaves, naming the MX host and the connection it
    # opens; the connections of all but the last timed out, the last one got through.
    failed = {rec["conn"] for rec in of_type(world, "tcp.fail")}
    opened = {rec["conn"]: rec["t"] for rec in of_type(world, "tcp.open")}
    assert all(rec["mx"] == "usa-mail.usa.com" for rec in attempts)
    assert all(rec["conn"] in failed for rec in attempts[:-1])
    assert attempts[-1]["conn"] not in failed
    assert all(rec["t"] == opened[rec["conn"]] for rec in attempts)


@pytest.fixture(scope="module")
def six_days() -> World:
    """usa-mail is down for 6 days; James checks his mailbox every hour."""
    world = tutorial_world(seed=5, steve_checks=None, james_checks=HOUR)
    world.send(60, JAMES, [STEVE], "Books", "Grammar book?", name="books")
    world.crash("usa-mail", at=30, restart_after=6 * DAY)
    world.run(until=5 * DAY + 2 * HOUR)
    return world


def test_bounce_comes_back_five_days_after_submission(six_days: World) -> None:
    world = six_days
    queued = first(world, "mail.queue", msg="books@india.com")["t"]  # 60.024 s
    bounce = first(world, "mail.bounce", msg="books@india.com")
    expire = first(world, "mail.expire", msg="books@india.com")
    # Give-up age is checked at a failed try: the first failure at or after arrival + 5 days,
    # which is at most one retry gap (plus the connect timeout) later.
    assert expire["t"] == bounce["t"]
    assert queued + 5 * DAY <= bounce["t"] <= queued + 5 * DAY + CONNECT_TIMEOUT + INTERVAL + JITTER
    dsn = bounce["dsn"]
    filed = first(world, "mail.deliver", msg=dsn)
    assert filed["node"] == "india-mail" and filed["rcpt"] == JAMES and filed["t"] == bounce["t"]
    # James's agent picks it up at its next hourly check.
    fetched = first(world, "mail.fetch", msg=dsn)
    assert 0 < fetched["t"] - bounce["t"] <= HOUR + 1


def test_bounce_is_a_delivery_status_report(six_days: World) -> None:
    inbox = six_days.agents[JAMES].inbox
    assert len(inbox) == 1
    report = parse_dsn(inbox[0])
    assert report.subject == "Undelivered Mail Returned to Sender"
    (recipient,) = report.recipients
    assert recipient.final_recipient == STEVE
    assert recipient.action == "failed"
    # Only temporary failures were seen, so the status is "delivery time expired" (RFC 3463).
    assert recipient.status == "5.4.7"
    assert (
        recipient.diagnostic_code is not None
        and "Connection timed out" in recipient.diagnostic_code
    )
    assert report.original_headers is not None and "Subject: Books" in report.original_headers


def test_books_show_the_bounce_and_its_delivered_notice(six_days: World) -> None:
    assert_balanced(six_days)
    books = six_days.books()
    assert books.rows[("books@india.com", STEVE)].status == "bounced"
    dsn = first(six_days, "mail.bounce", msg="books@india.com")["dsn"]
    assert books.rows[(dsn, JAMES)].status == "delivered"
    totals = books.totals()
    assert totals["bounced"] == 1 and totals["dsn_sent"] == 1 and totals["dsn_delivered"] == 1
    # About 5 days / 35 minutes of tries: between 5 d / 40.5 min and 5 d / 30.5 min + 1.
    assert 177 <= books.rows[("books@india.com", STEVE)].attempts <= 237
