"""The tutorial's six steps, James -> Steve, as the trace of a simulated world records them."""

from __future__ import annotations

import pytest
from nodes_worlds import (
    JAMES,
    OCEAN_RTT,
    STEVE,
    assert_balanced,
    first,
    line_time,
    lines,
    of_type,
    tutorial_world,
)

from mailsim.nodes.world import World

BODY = "Do you have a Grammar Book?\nWhat about Atlas?"


@pytest.fixture(scope="module")
def story() -> World:
    """James writes at t=60 s; Steve checks his mailbox every 10 minutes."""
    world = tutorial_world(seed=1)
    world.send(60, JAMES, [STEVE], "Books", BODY, name="books")
    world.run(until=1800)
    return world


def test_six_steps_appear_in_order(story: World) -> None:
    msg = "books@india.com"
    submit = first(story, "mail.submit", msg=msg)
    queue = first(story, "mail.queue", msg=msg)
    relay = first(story, "tcp.open", client="india-mail", server="usa-mail", sport=25)
    mail_from = first(story, "smtp.line", conn=relay["conn"], side="C")
    deliver = first(story, "mail.deliver", msg=msg)
    fetch = first(story, "mail.fetch", msg=msg)
    # 1. James's user agent hands the message over; 2. it waits in india-mail's queue;
    # 3. india-mail opens TCP straight to usa-mail; 4. the SMTP exchange; 5. usa-mail files it;
    # 6. Steve's user agent reads it over POP3.
    assert submit["node"] == "james-pc" and submit["rcpts"] == [STEVE]
    assert queue["node"] == "india-mail" and queue["rcpts"] == [STEVE]
    assert deliver["node"] == "usa-mail" and deliver["mailbox"] == "steve"
    assert fetch["node"] == "usa-mail" and fetch["user"] == "steve"
    times = [submit["t"], queue["t"], relay["t"], mail_from["t"], deliver["t"], fetch["t"]]
    assert times == sorted(times)
    # No intermediate server: the one relay connection goes India -> USA directly.
    assert len(of_type(story, "tcp.open", sport=25)) == 1


def test_relay_dialogue_is_the_tutorials(story: World) -> None:
    conn = first(story, "tcp.open", client="india-mail", server="usa-mail")["conn"]
    client = lines(story, conn, "C")
    server = lines(story, conn, "S")
    assert server[0].startswith("220 usa.com")
    assert client[0] == "EHLO india.com"
    assert client[1].startswith("MAIL FROM:<james@india.com>")
    assert client[2:4] == ["RCPT TO:<steve@usa.com>", "DATA"]
    assert "Do you have a Grammar Book?" in client and "What about Atlas?" in client
    assert client[-2:] == [".", "QUIT"]
    assert server[-2].startswith("250 2.0.0 Ok: queued as")
    assert server[-1].startswith("221")


def test_both_sides_of_the_relay_name_the_two_nodes(story: World) -> None:
    # The client side once named the exchange by its MX host name (usa-mail.usa.com), which drew
    # a third lane on the sequence chart; a line's ends are nodes, as on the server side.
    conn = first(story, "tcp.open", client="india-mail", server="usa-mail")["conn"]
    ends = {(r["side"], r["src"], r["dst"]) for r in of_type(story, "smtp.line", conn=conn)}
    assert ends == {("C", "india-mail", "usa-mail"), ("S", "usa-mail", "india-mail")}


def test_steves_inbox_holds_the_message(story: World) -> None:
    inbox = story.agents[STEVE].inbox
    assert len(inbox) == 1
    text = inbox[0].decode("ascii")
    assert "Subject: Books" in text
    assert "Do you have a Grammar Book?\r\nWhat about Atlas?" in text
    # Two Received headers, usa-mail's on top (RFC 5321 4.4).
    assert text.index("by usa.com") < text.index("by india.com")
    # Steve deleted it (DELE, then QUIT): the mailbox on the server is empty again.
    assert len(story.servers["usa-mail"].store.mailbox("steve")) == 0


def test_relay_timing_follows_the_round_trips(story: World) -> None:
    # Worked by hand from the ocean link (110 ms one way, RTT 220 ms), opening at O:
    #   O + 0.220  SYN-ACK back: the client's connect() returns       (1 RTT)
    #   O + 0.330  the server's ACK arrives, it accepts and greets 220 (1.5 RTT)
    #   O + 0.440  EHLO (the greeting took another 110 ms)              (2 RTT)
    #   O + 0.550  250 to EHLO; O + 0.660 MAIL, RCPT, DATA pipelined in one write
    #   O + 0.770  250, 250, 354; O + 0.880 the content and the dot
    #   O + 0.992  the dot arrived (+110 ms), written to disk (2 ms): filed, 250 sent
    #   O + 1.102  the 250 reaches india-mail: mail.sent, QUIT
    relay = first(story, "tcp.open", client="india-mail", server="usa-mail")
    conn, opened = relay["conn"], relay["t"]
    expected = {
        "220": 1.5 * OCEAN_RTT,
        "EHLO": 2 * OCEAN_RTT,
        "250-usa.com": 2.5 * OCEAN_RTT,
        "MAIL FROM": 3 * OCEAN_RTT,
        "354": 3.5 * OCEAN_RTT,
        "250 2.0.0": 4.5 * OCEAN_RTT + 0.002,
        "QUIT": 5 * OCEAN_RTT + 0.002,
    }
    for prefix, offset in expected.items():
        assert line_time(story, conn, prefix) - opened == pytest.approx(offset, abs=1e-3), prefix
    established = first(story, "tcp.established", conn=conn)
    assert established["t"] - opened == pytest.approx(OCEAN_RTT, abs=1e-3)
    deliver = first(story, "mail.deliver", msg="books@india.com")
    sent = first(story, "mail.sent", msg="books@india.com")
    assert deliver["t"] - opened == pytest.approx(4.5 * OCEAN_RTT + 0.002, abs=1e-3)
    assert sent["t"] - deliver["t"] == pytest.approx(OCEAN_RTT / 2, abs=1e-3)


def test_submission_and_lookup_timing(story: World) -> None:
    # James's LAN has a 4 ms RTT: greeting at 6 ms, EHLO 8, AUTH 12, MAIL.. 16, data 20; the
    # dot arrives at 22 ms and is written to the queue in 2 ms: queued at 60.024 s. The MX
    # lookup takes one 2 ms round trip to the DNS node, so the relay opens at 60.026 s.
    queue = first(story, "mail.queue", msg="books@india.com")
    relay = first(story, "tcp.open", client="india-mail", server="usa-mail")
    assert queue["t"] == pytest.approx(60.024, abs=1e-3)
    assert relay["t"] == pytest.approx(60.026, abs=1e-3)
    # Door to door (submit -> Steve's mailbox): 24 ms + 2 ms + 0.992 s = 1.018 s.
    deliver = first(story, "mail.deliver", msg="books@india.com")
    assert deliver["t"] - 60.0 == pytest.approx(1.018, abs=2e-3)


def test_steve_reads_at_his_next_check_over_pop3(story: World) -> None:
    # Steve's agent checks at 600 s. The LAN RTT is 6 ms: +OK greeting at 9 ms, USER 12, PASS 18,
    # logged in at 21 ms (auth.ok), STAT 24, UIDL 30, RETR 36: the server sends the message at
    # 600.039 s (mail.fetch), then DELE and QUIT.
    login = first(story, "auth.ok", node="usa-mail", service="pop3")
    fetch = first(story, "mail.fetch", msg="books@india.com")
    assert login["t"] == pytest.approx(600.021, abs=1e-3)
    assert fetch["t"] == pytest.approx(600.039, abs=1e-3)
    conn = first(story, "tcp.open", client="steve-pc", sport=110)["conn"]
    assert [line.split(" ")[0] for line in lines(story, conn, "C")] == [
        "USER",
        "PASS",
        "STAT",
        "UIDL",
        "RETR",
        "DELE",
        "QUIT",
    ]


def test_books_count_one_delivered_message(story: World) -> None:
    assert_balanced(story)
    totals = story.books().totals()
    assert totals["submitted"] == 1 and totals["delivered"] == 1
    assert totals["bounced"] == totals["lost"] == totals["duplicated"] == 0
