"""The World knobs scenarios use: Bcc, per-port faults, recipient limits, reuse, DNS records."""

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

from mailsim.nodes.mailserver import ReplyFault, ServerSettings
from mailsim.nodes.telnet import TelnetScript


def test_bcc_recipients_are_in_the_envelope_only() -> None:
    world = tutorial_world(seed=11)
    world.add_user("ann@usa.com", "a", host="steve-pc", check_every=600)
    world.send(60, JAMES, [STEVE], "Books", "Atlas?", bcc=["ann@usa.com"], name="m")
    world.run(until=700)
    assert first(world, "mail.submit", msg="m@india.com")["rcpts"] == [STEVE, "ann@usa.com"]
    (copy,) = world.agents["ann@usa.com"].inbox
    (steves,) = world.agents[STEVE].inbox
    assert b"ann@usa.com" not in steves  # Steve cannot tell she got a copy
    # Her own copy names her only in the delivery trace of her mailbox (RFC 5321 4.4).
    header = copy.split(b"\r\n\r\n")[0]
    assert [line for line in header.split(b"\r\n") if b"ann@usa.com" in line] == [
        b"Delivered-To: ann@usa.com"
    ]
    assert b"To: steve@usa.com" in copy
    assert_balanced(world)


def test_reply_fault_on_port_25_spares_the_submission_port() -> None:
    fault = ReplyFault("MAIL", 451, "4.3.0 Try again", port=25)
    world = tutorial_world(seed=11, india=ServerSettings(reply_faults=(fault,)))
    world.telnet(
        TelnetScript(
            at=10, node="james-pc", server="india-mail", lines=("HELO x", "MAIL FROM:<a@b.c>")
        )
    )
    world.send(60, JAMES, [STEVE], "Books", "Atlas?", name="m")
    world.run(until=700)
    assert world.telnets[0].received[-1] == "451 4.3.0 Try again"
    assert len(world.agents[STEVE].inbox) == 1  # the submission on 587 was not hit
    assert_balanced(world)


def test_recipients_beyond_the_limit_go_in_another_transaction() -> None:
    world = tutorial_world(seed=11, india=ServerSettings(recipients_per_delivery=2))
    for name in ("ann", "bob"):
        world.add_user(f"{name}@usa.com", name, host="steve-pc")
    world.send(60, JAMES, [STEVE, "ann@usa.com", "bob@usa.com"], "Books", "Atlas?", name="m")
    world.run(until=300)
    (relay,) = relay_opens(world)
    verbs = [line.split(":")[0] for line in lines(world, relay["conn"], "C")]
    # Two transactions over one connection: 2 recipients, then 1 (RFC 5321 4.5.3.1 allows a
    # server to take fewer than all; Postfix's smtp_destination_recipient_limit does this).
    assert verbs.count("MAIL FROM") == 2 and verbs.count("RCPT TO") == 3
    assert [a["rcpts"] for a in of_type(world, "mail.attempt")] == [
        [STEVE, "ann@usa.com"],
        ["bob@usa.com"],
    ]
    assert world.books().totals()["delivered"] == 3
    assert_balanced(world)


def test_no_reuse_means_a_connection_per_retry() -> None:
    world = tutorial_world(seed=2, india=ServerSettings(connection_reuse_time=0))
    world.link_down("india-mail", "usa-mail", at=0, duration=1000)
    world.send(60, JAMES, [STEVE], "Grammar", "Grammar book?", name="grammar")
    world.send(120, JAMES, [STEVE], "Atlas", "Atlas?", name="atlas")
    world.run(until=3 * 3600)
    carried = [rec for rec in relay_opens(world) if rec["conn"] in established(world)]
    assert len(carried) == 2  # each message on its own retry, its own connection
    assert_balanced(world)


def test_telnet_without_waiting_types_everything_at_once() -> None:
    world = tutorial_world(seed=11)
    world.telnet(
        TelnetScript(
            at=10,
            node="steve-pc",
            server="usa-mail",
            lines=("HELO x", "NOOP", "QUIT"),
            typing_time=0.0,
            wait_for_reply=False,
        )
    )
    world.run(until=100)
    conn = first(world, "tcp.open", client="steve-pc")["conn"]
    sent = [rec["t"] for rec in of_type(world, "smtp.line", conn=conn, side="C")]
    assert len(set(sent)) == 1  # all three lines in one go, before the greeting arrived
    assert [line[:3] for line in world.telnets[0].received] == ["220", "250", "250", "221"]


def test_explicit_dns_records_without_generated_ones() -> None:
    world = tutorial_world(seed=11)
    world.generate_dns = False
    world.explicit_mx.add("usa.com")
    world.dns.add_mx("usa.com", 10, "mx.usa.com")
    world.a_records.append(("mx.usa.com", None, "usa-mail", None))
    world.a_records.append(("india.com", "192.0.2.99", None, 60.0))
    world.send(60, JAMES, [STEVE], "Books", "Atlas?", name="m")
    world.run(until=700)
    mx = first(world, "dns.query", name="usa.com", qtype="MX")
    assert mx["answer"] == [[10, "mx.usa.com"]]
    assert first(world, "mail.attempt", msg="m@india.com")["mx"] == "mx.usa.com"
    assert len(world.agents[STEVE].inbox) == 1


def test_dns_timeout_sets_the_resolvers_wait() -> None:
    world = tutorial_world(seed=11)
    world.dns_timeout = 1.0
    world.link_down("dns", "india-mail", at=0, duration=600)
    world.link_down("dns", "usa-mail", at=0, duration=600)  # DNS unreachable from anywhere
    world.send(60, JAMES, [STEVE], "Books", "Atlas?", name="m")
    world.run(until=120)
    queued = first(world, "mail.queue")["t"]
    timeout = first(world, "dns.query", rcode="TIMEOUT")
    assert timeout["t"] - queued == pytest.approx(3.0, abs=1e-3)  # 3 tries of 1 s


def test_without_a_dns_node_one_sits_1_ms_from_every_mail_server_under_the_reserved_name() -> None:
    from mailsim.nodes.world import IMPLICIT_DNS_NAME, World
    from mailsim.scenario.schema import IMPLICIT_DNS_NAME as RESERVED

    assert IMPLICIT_DNS_NAME == RESERVED  # the name scenarios may not use
    world = World(strict=True)
    for name in ("india-mail", "usa-mail"):
        world.add_node(name, kind="mailserver", site=name.split("-")[0])
        world.add_mail_server(name, [f"{name.split('-')[0]}.com"])
    world.add_link("india-mail", "usa-mail", latency=0.110)
    world.start()
    assert world.dns_node == "dns" and world.topology.node("dns").site == "Internet"
    assert world.network.route("india-mail", "usa-mail") == ["india-mail", "usa-mail"]
    assert world.network.path_latency("usa-mail", "dns") == 0.001
