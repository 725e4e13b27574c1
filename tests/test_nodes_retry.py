"""Retry policies drive the attempt times; delay warnings reach the sender once."""

from __future__ import annotations

import itertools
import random

import pytest
from nodes_worlds import JAMES, STEVE, assert_balanced, first, of_type, relay_opens, tutorial_world

from mailsim.mail.dsn import parse_dsn
from mailsim.mail.retry import EximRetry, FixedRetry, PostfixRetry, RetryPolicy
from mailsim.nodes.mailserver import ServerSettings
from mailsim.nodes.world import World

HOUR = 3600.0


def _refused(policy: RetryPolicy, until: float) -> World:
    """usa-mail is up but its SMTP service is stopped: every try is refused after one RTT."""
    world = tutorial_world(seed=10, india=ServerSettings(retry=policy), steve_checks=None)
    world.send(60, JAMES, [STEVE], "Books", "Atlas?", name="books")
    world.stop_service("usa-mail", 25, at=0)
    world.run(until=until)
    return world


def _check_against_policy(world: World, policy: RetryPolicy) -> list[float]:
    """Every deferral asked the policy, and every next try started when the policy said."""
    arrival = first(world, "mail.queue", msg="books@india.com")["t"]
    defers = of_type(world, "mail.defer", msg="books@india.com")
    opens = [rec["t"] for rec in relay_opens(world)]
    first_failure = defers[0]["t"]
    for number, (defer, next_open) in enumerate(zip(defers, opens[1:], strict=False), 1):
        expected = policy.next_attempt(defer["t"], arrival, first_failure, number, random.Random(0))
        assert defer["next_attempt"] == pytest.approx(expected, abs=1e-9)
        # The try starts then, plus at most a 2 ms DNS lookup when the cached MX expired.
        assert 0 <= next_open - defer["next_attempt"] < 0.003
    return opens


def test_postfix_backoff_waits_as_long_as_the_message_is_old() -> None:
    policy = PostfixRetry()
    world = _refused(policy, until=5 * HOUR)
    opens = _check_against_policy(world, policy)
    # By hand: each refusal comes one RTT (0.22 s) after the try; the next try is the first
    # 300 s queue scan after failure + clamp(age, 300, 4000):
    #   60.2 + 300 -> scan 600;  600.2 + 540 -> 1200;  1200.2 + 1140 -> 2400;
    #   2400.2 + 2340 -> 4800;   4800.2 + 4000 (capped) -> 9000;  9000.2 + 4000 -> 13200;
    #   13200.2 + 4000 -> 17400.
    assert opens == pytest.approx([60.026, 600, 1200, 2400, 4800, 9000, 13200, 17400], abs=0.003)
    assert first(world, "mail.defer")["reply"] == (
        "451 4.4.1 connect to usa-mail.usa.com[198.51.100.1]:25: Connection refused"
    )
    assert_balanced(world)


def test_exim_rules_fixed_then_geometric() -> None:
    policy = EximRetry()  # F,2h,15m; G,16h,1h,1.5; F,4d,6h
    world = _refused(policy, until=6 * HOUR)
    opens = _check_against_policy(world, policy)
    # By hand: the first failure is at 60.246 s. For 2 hours after it, retry 15 min after each
    # failure (each try costs 0.22 s more): 960.2, 1860.5, ..., 7261.8. Then the geometric
    # rule starts at 1 h (10862.0) and grows by 1.5 (5400 s: 19862.5).
    gaps = [b - a for a, b in itertools.pairwise(opens)]
    assert gaps[:8] == pytest.approx([900.22] * 8, abs=0.01)
    assert gaps[8] == pytest.approx(3600.22, abs=0.01)
    assert opens[8] - 60.246 == pytest.approx(7201.5, abs=0.1)
    assert_balanced(world)


def test_fixed_retry_is_the_default() -> None:
    policy = ServerSettings().retry
    assert isinstance(policy, FixedRetry)
    world = _refused(policy, until=4 * HOUR)
    opens = [r["t"] for r in relay_opens(world)]
    defers = of_type(world, "mail.defer")
    # 30 minutes plus 0-10 minutes of jitter after each refusal.
    for defer, nxt in zip(defers, opens[1:], strict=False):
        assert 1800 <= nxt - defer["t"] <= 2400.003


def test_delay_warning_goes_to_james_once() -> None:
    policy = FixedRetry(delay_warning_after=4 * HOUR)
    world = tutorial_world(seed=10, india=ServerSettings(retry=policy), james_checks=HOUR)
    world.send(60, JAMES, [STEVE], "Books", "Atlas?", name="books")
    world.link_down("india-mail", "usa-mail", at=0, duration=8 * HOUR)
    world.run(until=10 * HOUR)
    arrival = first(world, "mail.queue", msg="books@india.com")["t"]
    (warn,) = of_type(world, "mail.warn")
    # Checked when the queue runner wakes for a try: the first try at or after 4 hours.
    assert arrival + 4 * HOUR <= warn["t"] <= arrival + 4 * HOUR + 2430
    assert warn["rcpt"] == STEVE
    # One "delayed" report reaches James's mailbox, then the real message reaches Steve.
    reports = [parse_dsn(m) for m in world.agents[JAMES].inbox]
    assert len(reports) == 1
    (rcpt,) = reports[0].recipients
    assert reports[0].subject == "Delayed Mail (still being retried)"
    assert (rcpt.final_recipient, rcpt.action) == (STEVE, "delayed")
    assert rcpt.status == "4.4.1"  # no answer from the host (RFC 3463)
    assert rcpt.will_retry_until is not None
    assert first(world, "mail.deliver", msg="books@india.com")["t"] > 8 * HOUR
    assert_balanced(world)
    totals = world.books().totals()
    assert (totals["delivered"], totals["dsn_sent"], totals["dsn_delivered"]) == (1, 1, 1)
