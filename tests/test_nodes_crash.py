"""Crashes of James's server: a durable queue loses nothing, a non-durable one loses its queue."""

from __future__ import annotations

from nodes_worlds import (
    JAMES,
    STEVE,
    assert_balanced,
    first,
    of_type,
    relay_opens,
    tutorial_world,
)

from mailsim.nodes.mailserver import ServerSettings


def test_durable_queue_survives_a_crash() -> None:
    world = tutorial_world(seed=6)
    world.link_down("india-mail", "usa-mail", at=0, duration=3000)
    world.send(60, JAMES, [STEVE], "Books", "Atlas?", name="books")
    world.crash("india-mail", at=600, restart_after=60)
    world.run(until=3 * 3600)
    assert first(world, "node.down", node="india-mail")["t"] == 600
    assert not of_type(world, "mail.lost")
    deliver = first(world, "mail.deliver", msg="books@india.com")
    assert deliver["t"] > 3000  # after the link came back
    assert len(world.agents[STEVE].inbox) == 1
    assert_balanced(world)
    assert world.books().totals()["delivered"] == 1


def test_crash_in_the_middle_of_a_delivery_retries_it_after_the_restart() -> None:
    # The relay session opens at 60.026 s and its MAIL goes out at 60.686 s; india-mail crashes
    # at 60.7 s, before the content is sent, and comes back at 120.7 s. The durable queue still
    # has the message (it was being tried): it is due again at once after the restart.
    world = tutorial_world(seed=6)
    world.send(60, JAMES, [STEVE], "Books", "Atlas?", name="books")
    world.crash("india-mail", at=60.7, restart_after=60)
    world.run(until=700)
    opens = relay_opens(world)
    assert len(opens) == 2
    assert opens[1]["t"] - 120.7 < 0.01  # requeued at the restart (plus the DNS lookup)
    (deliver,) = of_type(world, "mail.deliver", msg="books@india.com")
    assert deliver["t"] > 120.7
    assert not of_type(world, "mail.duplicate")
    assert_balanced(world)


def test_crash_before_the_queue_write_is_not_acknowledged_and_james_resends() -> None:
    # James's dot reaches india-mail at 60.022 s; the durable queue acknowledges only after the
    # 2 ms write. A crash at 60.023 s loses the message before its 250: James's user agent
    # keeps it in its outbox and submits it again after its 5-minute retry wait.
    world = tutorial_world(seed=6)
    world.send(60, JAMES, [STEVE], "Books", "Atlas?", name="books")
    world.crash("india-mail", at=60.023, restart_after=10)
    world.run(until=1300)
    assert not of_type(world, "mail.lost")
    queues = of_type(world, "mail.queue", msg="books@india.com")
    assert len(queues) == 1 and queues[0]["t"] > 360
    assert len(world.agents[STEVE].inbox) == 1
    assert_balanced(world)


def test_non_durable_queue_loses_exactly_what_was_queued() -> None:
    world = tutorial_world(seed=6, india=ServerSettings(durable=False))
    world.link_down("india-mail", "usa-mail", at=0, duration=3000)
    world.send(60, JAMES, [STEVE], "Grammar", "Grammar book?", name="grammar")
    world.send(120, JAMES, [STEVE, "ann@usa.com"], "Atlas", "Atlas?", name="atlas")
    world.send(1200, JAMES, [STEVE], "After", "Sent after the restart", name="after")
    world.crash("india-mail", at=600, restart_after=60)
    world.run(until=3 * 3600)
    lost = of_type(world, "mail.lost")
    assert {(rec["msg"], rec["rcpt"]) for rec in lost} == {
        ("grammar@india.com", STEVE),
        ("atlas@india.com", STEVE),
        ("atlas@india.com", "ann@usa.com"),
    }
    assert all(rec["t"] == 600 and rec["cause"] == "crash of a non-durable queue" for rec in lost)
    # What came after the crash is delivered as usual.
    assert [m.decode().count("Sent after the restart") for m in world.agents[STEVE].inbox] == [1]
    assert_balanced(world)
    totals = world.books().totals()
    assert (totals["submitted"], totals["lost"], totals["delivered"]) == (4, 3, 1)
    assert world.books().rows[("atlas@india.com", STEVE)].detail == "crash of a non-durable queue"


def test_non_durable_server_acknowledges_before_writing() -> None:
    # Without durability the 250 goes out at once and the write follows: the message is queued
    # 2 ms earlier than with a durable queue (60.022 s instead of 60.024 s).
    fast = tutorial_world(seed=6, india=ServerSettings(durable=False))
    slow = tutorial_world(seed=6)
    for world in (fast, slow):
        world.send(60, JAMES, [STEVE], "Books", "Atlas?", name="books")
        world.run(until=70)
    t_fast = first(fast, "mail.queue")["t"]
    t_slow = first(slow, "mail.queue")["t"]
    assert abs((t_slow - t_fast) - 0.002) < 1e-6
