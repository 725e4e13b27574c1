"""Injected server replies: greylisting, full mailboxes, busy servers, unknown users, refusals."""

from __future__ import annotations

import pytest
from nodes_worlds import (
    JAMES,
    STEVE,
    assert_balanced,
    established,
    first,
    lines,
    of_type,
    relay_opens,
    tutorial_world,
)

from mailsim.mail.dsn import parse_dsn
from mailsim.nodes.mailserver import ReplyFault, ServerSettings
from mailsim.nodes.world import World

MSG = "books@india.com"


def _run(*faults: ReplyFault, until: float = 3 * 3600, james_checks: float | None = None) -> World:
    world = tutorial_world(
        seed=8, usa=ServerSettings(reply_faults=faults), james_checks=james_checks
    )
    world.send(60, JAMES, [STEVE], "Books", "Atlas?", name="books")
    world.run(until=until)
    return world


def test_greylisting_defers_once_and_the_retry_is_delivered() -> None:
    world = _run(
        ReplyFault("RCPT", 451, "4.7.1 Greylisted, try again later", first_attempt_only=True)
    )
    (defer,) = of_type(world, "mail.defer", msg=MSG)
    assert defer["reply"] == "451 4.7.1 Greylisted, try again later"
    # The retry comes 30-40 minutes later, from the same client, sender and recipient: it passes.
    opens = relay_opens(world)
    assert len(opens) == 2
    assert opens[1]["t"] == pytest.approx(defer["next_attempt"], abs=0.01)
    assert 1800 <= opens[1]["t"] - defer["t"] <= 2400
    deliver = first(world, "mail.deliver", msg=MSG)
    assert deliver["t"] > opens[1]["t"]
    assert world.books().rows[(MSG, STEVE)].attempts == 2
    assert_balanced(world)


def test_full_mailbox_452_defers_until_there_is_room() -> None:
    # The mailbox is full for the first 2000 s: the first try (60 s) and a retry before 2000 s
    # get 452; the first retry after 2000 s gets through.
    world = _run(ReplyFault("RCPT", 452, "4.2.2 Mailbox full", end=2000))
    defers = of_type(world, "mail.defer", msg=MSG)
    assert defers and all(d["reply"] == "452 4.2.2 Mailbox full" for d in defers)
    assert all(d["t"] < 2000 for d in defers)
    assert first(world, "mail.deliver", msg=MSG)["t"] > 2000
    assert_balanced(world)


def test_busy_server_421_on_mail_closes_and_is_retried() -> None:
    world = _run(ReplyFault("MAIL", 421, "4.7.0 Too busy, try later", end=2000))
    first_conn = relay_opens(world)[0]["conn"]
    # RFC 5321 3.8: 421 closes the session; the client does not even QUIT.
    assert lines(world, first_conn, "S")[-1] == "421 4.7.0 Too busy, try later"
    defer = first(world, "mail.defer", msg=MSG)
    assert defer["reply"] == "421 4.7.0 Too busy, try later"
    assert first(world, "mail.deliver", msg=MSG)["t"] > 2000
    assert_balanced(world)


def test_unknown_user_550_bounces_at_once_with_a_dsn() -> None:
    world = _run(ReplyFault("RCPT", 550, "5.1.1 <steve@usa.com>: User unknown"), james_checks=600)
    bounce = first(world, "mail.bounce", msg=MSG)
    # Refused on the first try, at 60.026 + 0.880 s when the RCPT reply arrives: no retry.
    assert bounce["t"] == pytest.approx(60.906, abs=2e-3)
    assert len(relay_opens(world)) == 1
    assert not of_type(world, "mail.defer")
    (report_bytes,) = world.agents[JAMES].inbox
    report = parse_dsn(report_bytes)
    (rcpt,) = report.recipients
    assert (rcpt.final_recipient, rcpt.action, rcpt.status) == (STEVE, "failed", "5.1.1")
    assert rcpt.remote_mta == "usa-mail.usa.com"
    assert rcpt.diagnostic_code == "smtp; 550 5.1.1 <steve@usa.com>: User unknown"
    assert_balanced(world)
    books = world.books()
    assert books.rows[(MSG, STEVE)].status == "bounced"
    assert books.rows[(bounce["dsn"], JAMES)].status == "delivered"


def test_rejected_message_content_554_on_dot_bounces() -> None:
    world = _run(ReplyFault("DOT", 554, "5.7.1 Message content rejected"), james_checks=600)
    bounce = first(world, "mail.bounce", msg=MSG)
    assert bounce["reply"] == "554 5.7.1 Message content rejected"
    # usa-mail refused the content: nothing was filed there.
    assert not of_type(world, "mail.deliver", node="usa-mail")
    assert parse_dsn(world.agents[JAMES].inbox[0]).recipients[0].status == "5.7.1"
    assert_balanced(world)


def test_greeting_554_is_skipped_and_retried_like_postfix() -> None:
    # RFC 5321 3.1: a server may refuse service with 554 in its greeting; the client QUITs.
    # Like Postfix (smtp_skip_5xx_greeting = yes) the client moves on to the next MX and, with
    # none left, defers rather than bounces.
    world = _run(ReplyFault("CONNECT", 554, "5.7.1 No service for you"), until=2 * 3600)
    conn = relay_opens(world)[0]["conn"]
    assert lines(world, conn, "S")[0] == "554 5.7.1 No service for you"
    assert lines(world, conn, "C") == ["QUIT"]
    defers = of_type(world, "mail.defer", msg=MSG)
    assert len(defers) >= 2 and {d["reply"] for d in defers} == {"554 5.7.1 No service for you"}
    assert not of_type(world, "mail.bounce") and not of_type(world, "mail.deliver")
    assert_balanced(world)
    assert world.books().totals()["queued"] == 1


def test_a_refusing_mx_is_skipped_for_the_next_preference() -> None:
    # usa.com has two MX records: usa-gate (preference 10), which greets 554, and usa-mail (20).
    # RFC 5321 5.1: try them in order; usa-gate refuses the session, usa-mail takes the message.
    world = tutorial_world(seed=8)
    world.add_node("usa-gate", kind="mailserver", site="USA")
    world.add_link("usa-gate", "usa-mail", latency=0.001, bandwidth=1e9)
    world.add_mail_server(
        "usa-gate",
        ["gate.usa.com"],
        settings=ServerSettings(reply_faults=(ReplyFault("CONNECT", 554, "5.3.2 Not today"),)),
    )
    world.explicit_mx.add("usa.com")
    world.dns.add_mx("usa.com", 10, "usa-gate")
    world.dns.add_mx("usa.com", 20, "usa-mail")
    world.send(60, JAMES, [STEVE], "Books", "Atlas?", name="books")
    world.run(until=700)
    opens = of_type(world, "tcp.open", client="india-mail", sport=25)
    assert [rec["server"] for rec in opens] == ["usa-gate", "usa-mail"]
    assert all(rec["conn"] in established(world) for rec in opens)
    assert [a["mx"] for a in of_type(world, "mail.attempt", msg=MSG)] == ["usa-gate", "usa-mail"]
    assert first(world, "mail.deliver", msg=MSG)["node"] == "usa-mail"
    assert not of_type(world, "mail.defer")
    assert_balanced(world)
