"""RFC 1047: the connection dies after the final dot, before its 250 comes back: two copies."""

from __future__ import annotations

from nodes_worlds import (
    JAMES,
    OCEAN,
    STEVE,
    assert_balanced,
    first,
    of_type,
    tutorial_world,
)

from mailsim.nodes.world import World


def _send_books(world: World) -> World:
    world.send(60, JAMES, [STEVE], "Books", "Atlas?", name="books")
    return world


def _time_of_final_250(node: str, peer: str) -> float:
    """When ``node`` sends its 250 to the final dot from ``peer``, in an undisturbed first run.

    The world is deterministic, so a second run with the same seed is identical up to the fault.
    """
    world = _send_books(tutorial_world(seed=7, steve_checks=None))
    world.run(until=100)
    for rec in of_type(world, "smtp.line", src=node, dst=peer):
        if rec["line"].startswith("250 2.0.0 Ok: queued as"):
            return float(rec["t"])
    raise AssertionError("no final 250")


def test_link_lost_between_dot_and_reply_gives_a_second_copy() -> None:
    # usa-mail files the message and sends 250 at T (60.026 + 0.992 s, see test_nodes_story);
    # the 250 needs 110 ms to cross the ocean. The link fails 1 ms after T, for an hour: the 250
    # is lost, india-mail waits its 10 minutes for a reply to the dot (RFC 5321 4.5.3.2.6),
    # gives up and keeps the message; its retry after the link is back delivers a second copy.
    sent_at = _time_of_final_250("usa-mail", "india-mail")
    world = _send_books(tutorial_world(seed=7, steve_checks=3600))
    world.link_down("india-mail", "usa-mail", at=sent_at + 0.001, duration=3600)
    world.run(until=3 * 3600)
    first_copy = first(world, "mail.deliver", msg="books@india.com")
    assert first_copy["t"] == sent_at
    (defer,) = [d for d in of_type(world, "mail.defer") if "RFC 1047" in d["reply"]]
    assert defer["reply"].startswith("451 4.4.2")
    # The dot went out 110 ms before T (+2 ms write); the client waits 600 s after sending it.
    assert abs(defer["t"] - (sent_at - 0.002 - OCEAN + 600)) < 0.01
    (duplicate,) = of_type(world, "mail.duplicate")
    assert duplicate["node"] == "usa-mail" and duplicate["rcpt"] == STEVE
    assert duplicate["t"] > sent_at + 3600  # after the link is back
    # The sender now believes it is delivered: mail.sent once, on the retry.
    (sent,) = of_type(world, "mail.sent", msg="books@india.com")
    assert sent["t"] > duplicate["t"]
    # Steve really gets two copies.
    inbox = world.agents[STEVE].inbox
    assert len(inbox) == 2 and inbox[0].split(b"\r\n\r\n")[1] == inbox[1].split(b"\r\n\r\n")[1]
    assert_balanced(world)
    totals = world.books().totals()
    assert totals["delivered"] == 1 and totals["duplicated"] == 1


def test_lost_submission_reply_is_a_duplicate_at_james_server() -> None:
    # The same on James's side: india-mail queues the message and sends 250 at T (60.024 s);
    # James's LAN link fails 0.5 ms later for 20 minutes. James's agent waits 600 s for the
    # reply, keeps the message in its outbox and submits it again 5 minutes later, once the
    # link is back. india-mail still holds the first copy (the ocean link is down too), so it
    # counts the second as a duplicate and keeps one.
    sent_at = _time_of_final_250("india-mail", "james-pc")
    world = _send_books(tutorial_world(seed=7, steve_checks=3600))
    world.link_down("james-pc", "india-mail", at=sent_at + 0.0005, duration=1200)
    world.link_down("india-mail", "usa-mail", at=0, duration=3600)
    world.run(until=4 * 3600)
    submissions = of_type(world, "tcp.open", client="james-pc", sport=587)
    assert len(submissions) >= 2
    (duplicate,) = of_type(world, "mail.duplicate")
    assert duplicate["node"] == "india-mail" and duplicate["t"] > sent_at + 1200
    assert len(of_type(world, "mail.queue", msg="books@india.com")) == 1
    assert len(world.agents[STEVE].inbox) == 1
    assert_balanced(world)
    assert world.books().totals()["duplicated"] == 1


def test_resubmitted_recipients_wait_until_the_first_copy_left_the_queue() -> None:
    # india-mail answers RCPT with 452 at random (p = 0.5) for the first 100 s. With seed 5,
    # James's first submission gets 250 for Steve and 452 for Ann: india-mail queues the message
    # for Steve alone, and James's agent resubmits it for Ann 5 minutes later. The ocean link is
    # down until 1000 s, so the first copy is still queued: the queue holds one entry per
    # message, so india-mail answers the copy's dot with 451 4.3.0 (try later) until the first
    # copy has gone; then it takes Ann's copy as a message of its own.
    from mailsim.nodes.mailserver import ReplyFault, ServerSettings

    fault = ReplyFault("RCPT", 452, "4.5.3 Too many recipients for now", end=100, probability=0.5)
    world = tutorial_world(seed=5, india=ServerSettings(reply_faults=(fault,)))
    world.add_user("ann@usa.com", "a", host="steve-pc")
    world.send(60, JAMES, [STEVE, "ann@usa.com"], "Books", "Atlas?", name="books")
    world.link_down("india-mail", "usa-mail", at=0, duration=1000)
    world.run(until=5000)
    replies = [rec["line"] for rec in of_type(world, "smtp.line", src="india-mail", dst="james-pc")]
    assert replies.count("452 4.5.3 Too many recipients for now") == 1
    assert "451 4.3.0 <books@india.com> is already queued here; try again later" in replies
    queued = of_type(world, "mail.queue", msg="books@india.com")
    assert [rec["rcpts"] for rec in queued] == [[STEVE], ["ann@usa.com"]]
    assert queued[1]["t"] > first(world, "mail.sent", rcpt=STEVE)["t"]
    assert {rec["rcpt"] for rec in of_type(world, "mail.deliver", msg="books@india.com")} == {
        STEVE,
        "ann@usa.com",
    }
    assert not of_type(world, "mail.duplicate")
    assert_balanced(world)
    assert world.books().totals()["delivered"] == 2


def test_non_durable_crash_while_the_250_is_on_its_way_loses_a_copy_not_the_message() -> None:
    # india-mail (non-durable) crashes 10 ms after usa-mail filed the message and sent its 250:
    # india-mail loses its queued copy (mail.lost, marked after_dot), but Steve has the message.
    from mailsim.nodes.mailserver import ServerSettings

    sent_at = _time_of_final_250("usa-mail", "india-mail")
    world = _send_books(tutorial_world(seed=7, india=ServerSettings(durable=False)))
    world.crash("india-mail", at=sent_at + 0.01, restart_after=60)
    world.run(until=700)
    (lost,) = of_type(world, "mail.lost")
    assert lost["after_dot"] is True and lost["t"] == sent_at + 0.01
    assert len(world.agents[STEVE].inbox) == 1
    assert_balanced(world)
    row = world.books().rows[("books@india.com", STEVE)]
    assert row.status == "delivered"
    assert row.detail == "delivered; another copy was lost (RFC 1047)"


def test_lost_250_then_expiry_bounces_a_message_steve_already_has() -> None:
    # The 250 is lost as in the first test, but the link stays down past india-mail's give-up
    # age (2 hours): it bounces the message to James although Steve has it. RFC 1047's other
    # face: the books count the pair delivered and say a bounce went out too.
    from mailsim.mail.dsn import parse_dsn
    from mailsim.mail.retry import FixedRetry
    from mailsim.nodes.mailserver import ServerSettings

    sent_at = _time_of_final_250("usa-mail", "india-mail")
    india = ServerSettings(retry=FixedRetry(give_up_after=2 * 3600))
    world = _send_books(tutorial_world(seed=7, india=india, james_checks=600))
    world.link_down("india-mail", "usa-mail", at=sent_at + 0.001, duration=4 * 3600)
    world.run(until=5 * 3600)
    unsure = [d for d in of_type(world, "mail.defer") if d.get("after_dot")]
    assert len(unsure) == 1
    bounce = first(world, "mail.bounce", msg="books@india.com")
    assert bounce["t"] > sent_at + 2 * 3600
    assert parse_dsn(world.agents[JAMES].inbox[0]).recipients[0].action == "failed"
    assert len(world.agents[STEVE].inbox) == 1
    assert_balanced(world)
    row = world.books().rows[("books@india.com", STEVE)]
    assert row.status == "delivered"
    assert row.detail == "delivered; another copy was bounced (RFC 1047)"
