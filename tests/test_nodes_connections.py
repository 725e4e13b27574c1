"""Persistent connections: queued messages to one destination share a connection, and the
recipients of one message at one domain share a transaction (RFC 5321 4.5.4.1)."""

from __future__ import annotations

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

from mailsim.nodes.mailserver import ServerSettings


def _verbs(world, conn: int) -> list[str]:
    return [line.split(":")[0].split(" ")[0] for line in lines(world, conn, "C")]


def test_two_queued_messages_share_one_connection() -> None:
    world = tutorial_world(seed=2)
    world.link_down("india-mail", "usa-mail", at=0, duration=1000)
    world.send(60, JAMES, [STEVE], "Grammar", "Grammar book?", name="grammar")
    world.send(120, JAMES, [STEVE], "Atlas", "Atlas?", name="atlas")
    world.run(until=3 * 3600)
    # Both first tries fail while the link is down (one failed connect each); each message is
    # deferred by 30-40 minutes, so both wait past 1000 s, when the link is back.
    defers = of_type(world, "mail.defer")
    assert {d["msg"] for d in defers} == {"grammar@india.com", "atlas@india.com"}
    assert all(d["next_attempt"] > 1000 for d in defers)
    # The earlier retry opens one connection and the other message rides along on it, without
    # waiting for its own retry time: one established connection, two MAIL transactions.
    carried = [rec for rec in relay_opens(world) if rec["conn"] in established(world)]
    assert len(carried) == 1
    conn = carried[0]["conn"]
    assert carried[0]["t"] == min(d["next_attempt"] for d in defers)
    assert _verbs(world, conn).count("MAIL") == 2
    assert _verbs(world, conn).count("QUIT") == 1
    delivered = of_type(world, "mail.deliver", node="usa-mail")
    assert {d["msg"] for d in delivered} == {"grammar@india.com", "atlas@india.com"}
    attempts = of_type(world, "mail.attempt", conn=conn)
    assert [a["msg"] for a in attempts] == sorted(
        (a["msg"] for a in attempts), key=lambda m: {d["msg"]: d["next_attempt"] for d in defers}[m]
    )
    assert len(world.agents[STEVE].inbox) == 2
    assert_balanced(world)


def test_three_recipients_at_one_domain_share_one_transaction() -> None:
    world = tutorial_world(seed=2)
    world.add_user("ann@usa.com", "a", host="steve-pc")
    world.add_user("bob@usa.com", "b", host="steve-pc")
    world.send(60, JAMES, [STEVE, "ann@usa.com"], "Books", "Atlas?", cc=["bob@usa.com"], name="m")
    world.run(until=300)
    (relay,) = relay_opens(world)
    # One MAIL, three RCPT, one DATA: usa-mail gets a single copy for all three mailboxes.
    verbs = _verbs(world, relay["conn"])
    assert verbs[:6] == ["EHLO", "MAIL", "RCPT", "RCPT", "RCPT", "DATA"]
    assert (verbs.count("MAIL"), verbs.count("RCPT"), verbs.count("DATA")) == (1, 3, 1)
    client = lines(world, relay["conn"], "C")
    assert client.count(".") == 1 and client[-1] == "QUIT"
    (attempt,) = of_type(world, "mail.attempt", node="india-mail")
    assert attempt["rcpts"] == [STEVE, "ann@usa.com", "bob@usa.com"]
    boxes = sorted(rec["mailbox"] for rec in of_type(world, "mail.deliver", node="usa-mail"))
    assert boxes == ["ann", "bob", "steve"]
    # Filed once per recipient from the one transaction: at the same instant.
    assert len({rec["t"] for rec in of_type(world, "mail.deliver", node="usa-mail")}) == 1
    assert_balanced(world)
    assert world.books().totals()["delivered"] == 3


def test_messages_queued_during_a_session_ride_along_instead_of_a_new_connection() -> None:
    # With one connection per destination, three messages sent at once go out over the single
    # connection the first one opened: the other two join it when it falls idle.
    world = tutorial_world(seed=2, india=ServerSettings(connections_per_destination=1))
    for i in range(3):
        world.send(60, JAMES, [STEVE], f"Note {i}", "Atlas?", name=f"n{i}")
    world.run(until=700)
    (relay,) = relay_opens(world)
    assert _verbs(world, relay["conn"]).count("MAIL") == 3
    # James's user agent, too, submitted all three in one session.
    (submission,) = of_type(world, "tcp.open", client="james-pc", sport=587)
    assert _verbs(world, submission["conn"]).count("MAIL") == 3
    assert len(world.agents[STEVE].inbox) == 3
    assert_balanced(world)


def test_messages_due_while_a_connection_opens_wait_to_join_it() -> None:
    # Three messages queued a few milliseconds apart: the first opens a connection, and the
    # other two do not open their own while that one can still carry them (10 per connection):
    # they join it when it falls idle. With one message per connection, each opens its own.
    shared = tutorial_world(seed=2)
    alone = tutorial_world(seed=2, india=ServerSettings(messages_per_connection=1))
    for world in (shared, alone):
        for i in range(3):
            world.send(60, JAMES, [STEVE], f"Note {i}", "Atlas?", name=f"n{i}")
        world.run(until=700)
        assert len(world.agents[STEVE].inbox) == 3
        assert_balanced(world)
    (relay,) = relay_opens(shared)
    assert _verbs(shared, relay["conn"]).count("MAIL") == 3
    assert len(relay_opens(alone)) == 3
    # Waiting costs the later ones a little time (one transaction each on the open connection:
    # 2 RTT = 0.44 s after the first), but saves them a handshake, greeting and EHLO each.
    assert first(shared, "mail.deliver", msg="n2@india.com")["t"] < 62.5
    assert first(alone, "mail.deliver", msg="n2@india.com")["t"] < 61.2


def test_one_connection_carries_at_most_messages_per_connection() -> None:
    world = tutorial_world(
        seed=2,
        india=ServerSettings(connections_per_destination=1, messages_per_connection=2),
    )
    world.link_down("india-mail", "usa-mail", at=0, duration=1000)
    for i in range(5):
        world.send(60 + i, JAMES, [STEVE], f"Note {i}", "Atlas?", name=f"n{i}")
    world.run(until=4 * 3600)
    carried = [rec["conn"] for rec in relay_opens(world) if rec["conn"] in established(world)]
    # Five messages, two per connection: three connections (2 + 2 + 1).
    assert sorted(_verbs(world, conn).count("MAIL") for conn in carried) == [1, 2, 2]
    assert len(world.agents[STEVE].inbox) == 5
    assert_balanced(world)


def test_an_unreachable_destination_suspends_the_messages_waiting_for_it() -> None:
    # Five notes sent at once while the link is down (retry every minute, no jitter). The first
    # opens a connection; the other four wait to join it. Its connect times out after 30 s, and
    # the four are deferred with it, without a connection each ("delivery temporarily
    # suspended", as Postfix says). All five are then due at the same moment, 60 s later, and
    # go out over one connection once the link is back.
    from mailsim.mail.retry import FixedRetry

    world = tutorial_world(seed=2, india=ServerSettings(retry=FixedRetry(interval=60, jitter=0)))
    world.link_down("india-mail", "usa-mail", at=0, duration=120)
    for i in range(5):
        world.send(10, JAMES, [STEVE], f"Book {i}", "Grammar?", name=f"b{i}")
    world.run(until=700)
    opens = relay_opens(world)
    # Tries at 10 s (times out at 40 s), 40 + 60 = 100 s (the link is still down; times out at
    # 130 s), and 130 + 60 = 190 s, which gets through.
    assert [round(rec["t"]) for rec in opens] == [10, 100, 190]
    defers = of_type(world, "mail.defer")
    suspended = [d for d in defers if d["reply"].endswith("(delivery temporarily suspended)")]
    # The four waiting in the first round are suspended; in the second all five are due at
    # once and share the one (failing) connection attempt.
    assert len(defers) == 10 and len(suspended) == 4
    assert {d["msg"] for d in suspended} == {f"b{i}@india.com" for i in range(1, 5)}
    carried = [rec["conn"] for rec in opens if rec["conn"] in established(world)]
    assert len(carried) == 1
    assert _verbs(world, carried[0]).count("MAIL") == 5
    assert len(world.agents[STEVE].inbox) == 5
    assert_balanced(world)
    # Only connection attempts count as attempts: 3 for the first note, 2 for the others.
    rows = world.books().rows
    assert sorted(rows[(f"b{i}@india.com", STEVE)].attempts for i in range(5)) == [2, 2, 2, 2, 3]
