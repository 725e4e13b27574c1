"""No open relay, no submission without AUTH, no mailbox without the right password."""

from __future__ import annotations

from nodes_worlds import JAMES, STEVE, assert_balanced, first, lines, of_type, tutorial_world

from mailsim.nodes.telnet import TelnetScript


def _replies(world, conn: int) -> list[str]:
    return lines(world, conn, "S")


def test_relay_to_a_foreign_domain_is_refused_with_550_5_7_1() -> None:
    world = tutorial_world(seed=4, steve_checks=None)
    world.telnet(
        TelnetScript(
            at=10,
            node="steve-pc",
            server="usa-mail",
            port=25,
            lines=(
                "HELO steve-pc",
                "MAIL FROM:<steve@usa.com>",
                "RCPT TO:<bob@example.org>",
                "QUIT",
            ),
        )
    )
    world.run(until=100)
    (session,) = world.telnets
    assert session.failure is None
    assert session.received[3] == "550 5.7.1 <bob@example.org>: Relay access denied"
    assert session.received[-1].startswith("221")
    # The trace holds the same dialogue, and nothing was queued or delivered.
    conn = first(world, "tcp.open", client="steve-pc", sport=25)["conn"]
    assert _replies(world, conn) == session.received
    assert not [rec for rec in world.recorder.records if rec["type"].startswith("mail.")]


def test_port_25_of_james_server_is_no_relay_for_james_either() -> None:
    world = tutorial_world(seed=4, steve_checks=None)
    world.telnet(
        TelnetScript(
            at=10,
            node="james-pc",
            server="india-mail",
            lines=(
                "EHLO james-pc",
                "MAIL FROM:<james@india.com>",
                "RCPT TO:<steve@usa.com>",
                "QUIT",
            ),
        )
    )
    world.run(until=100)
    assert "550 5.7.1 <steve@usa.com>: Relay access denied" in world.telnets[0].received


def test_submission_without_auth_gets_530() -> None:
    world = tutorial_world(seed=4, steve_checks=None)
    world.telnet(
        TelnetScript(
            at=10,
            node="james-pc",
            server="india-mail",
            port=587,
            lines=("EHLO james-pc", "MAIL FROM:<james@india.com>", "QUIT"),
        )
    )
    world.run(until=100)
    received = world.telnets[0].received
    assert "250-AUTH PLAIN LOGIN" in received  # RFC 4954: offered on the submission port
    assert received[-2] == "530 5.7.0 Authentication required"
    assert received[-1].startswith("221")


def test_the_seeds_telnet_session_delivers_to_steve() -> None:
    # The tutorial's "you can try the above script": HELO, MAIL, RCPT, DATA, text, ".", QUIT.
    world = tutorial_world(seed=4)
    world.telnet(
        TelnetScript(
            at=10,
            node="steve-pc",
            server="usa-mail",
            lines=(
                "HELO usa.com",
                "MAIL FROM:<james@india.com>",
                "RCPT TO:<steve@usa.com>",
                "DATA",
                "Do you have a Grammar Book?",
                "What about Atlas?",
                ".",
                "QUIT",
            ),
        )
    )
    world.run(until=700)
    received = world.telnets[0].received
    assert [line[:3] for line in received] == ["220", "250", "250", "250", "354", "250", "221"]
    (inbox,) = world.agents[STEVE].inbox
    assert b"Do you have a Grammar Book?\r\nWhat about Atlas?\r\n" in inbox
    deliver = first(world, "mail.deliver", node="usa-mail")
    assert first(world, "mail.submit", msg=deliver["msg"])["node"] == "usa-mail"
    assert_balanced(world)
    assert world.books().totals()["delivered"] == 1


def test_wrong_pop3_password_reads_nothing() -> None:
    world = tutorial_world(seed=4, steve_checks=600)
    world.send(60, JAMES, [STEVE], "Books", "Atlas?", name="books")
    world.start()
    world.agents[STEVE].password = "not-atlas"  # Steve mistypes his password
    world.run(until=700)
    conn = first(world, "tcp.open", client="steve-pc", sport=110)["conn"]
    assert lines(world, conn, "C")[:2] == ["USER steve", "PASS not-atlas"]
    assert _replies(world, conn)[2].startswith("-ERR")
    fail = first(world, "auth.fail", node="usa-mail")
    assert fail["service"] == "pop3" and fail["user"] == "steve"
    assert not of_type(world, "auth.ok", service="pop3")
    assert not of_type(world, "mail.fetch")
    assert world.agents[STEVE].inbox == []
    # The message waits in the mailbox for a login that works.
    assert len(world.servers["usa-mail"].store.mailbox("steve")) == 1
    world.agents[STEVE].password = "atlas"
    world.run(until=1300)
    assert len(world.agents[STEVE].inbox) == 1
    assert_balanced(world)


def test_wrong_submission_password_rejects_the_message_for_the_sender() -> None:
    world = tutorial_world(seed=4, steve_checks=None)
    world.send(60, JAMES, [STEVE], "Books", "Atlas?", name="books")
    world.start()
    world.agents[JAMES].password = "wrong"
    world.run(until=120)
    conn = first(world, "tcp.open", client="james-pc", sport=587)["conn"]
    assert any(line.startswith("535") for line in _replies(world, conn))
    fail = first(world, "auth.fail", node="india-mail")
    assert fail["service"] == "submission"
    reject = first(world, "mail.reject", msg="books@india.com")
    assert reject["rcpt"] == STEVE and reject["reply"].startswith("535")
    assert not of_type(world, "mail.queue")
    assert_balanced(world)
    assert world.books().totals()["rejected"] == 1
