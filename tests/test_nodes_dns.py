"""MX lookups: a domain nobody serves bounces at once; an unreachable DNS server defers."""

from __future__ import annotations

import pytest
from nodes_worlds import JAMES, STEVE, assert_balanced, first, of_type, tutorial_world

from mailsim.mail.dsn import parse_dsn


def test_nxdomain_bounces_at_once() -> None:
    world = tutorial_world(seed=9, james_checks=600)
    world.send(60, JAMES, ["bob@nowhere.example"], "Hello", "Anyone?", name="lost")
    world.run(until=700)
    query = first(world, "dns.query", name="nowhere.example")
    assert query["rcode"] == "NXDOMAIN"
    bounce = first(world, "mail.bounce", msg="lost@india.com")
    # RFC 5321 5.1: a domain that does not exist is a permanent failure: bounced on the first
    # try, one DNS round trip (2 ms) after the message was queued, with no connection at all.
    queued = first(world, "mail.queue", msg="lost@india.com")
    assert bounce["t"] == pytest.approx(queued["t"] + 0.002, abs=1e-3)
    assert bounce["reply"].startswith("550 5.1.2")
    assert not of_type(world, "tcp.open", client="india-mail")
    assert not of_type(world, "mail.defer")
    (report,) = world.agents[JAMES].inbox
    (rcpt,) = parse_dsn(report).recipients
    assert (rcpt.final_recipient, rcpt.action, rcpt.status) == (
        "bob@nowhere.example",
        "failed",
        "5.1.2",
    )
    assert_balanced(world)
    assert world.books().totals()["bounced"] == 1


def test_unreachable_dns_defers_and_delivers_later() -> None:
    # Both of the DNS node's links (one to each mail server) are down for the first 3000 s. The
    # resolver tries 3 times, 5 s each: the lookup fails 15 s after the message was queued, a
    # temporary failure.
    world = tutorial_world(seed=9)
    world.link_down("dns", "india-mail", at=0, duration=3000)
    world.link_down("dns", "usa-mail", at=0, duration=3000)
    world.send(60, JAMES, [STEVE], "Books", "Atlas?", name="books")
    world.run(until=3 * 3600)
    queued = first(world, "mail.queue", msg="books@india.com")
    timeout = first(world, "dns.query", name="usa.com")
    assert timeout["rcode"] == "TIMEOUT"
    assert timeout["t"] == pytest.approx(queued["t"] + 15, abs=1e-3)
    defers = of_type(world, "mail.defer", msg="books@india.com")
    assert defers[0]["t"] == timeout["t"]
    assert all(d["reply"].startswith("451 4.4.3 DNS lookup of usa.com failed") for d in defers)
    assert not of_type(world, "mail.bounce")
    deliver = first(world, "mail.deliver", msg="books@india.com")
    assert deliver["t"] > 3000
    assert len(world.agents[STEVE].inbox) == 1
    assert_balanced(world)
