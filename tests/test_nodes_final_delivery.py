"""What the servers add to a message on its way: the submission server completes it, final
delivery records where it came from and for whom (RFC 6409 8, RFC 5321 4.4), and the policy's
refusals read as in the one reply table the live servers share."""

from __future__ import annotations

import base64

from nodes_worlds import JAMES, STEVE, assert_balanced, first, tutorial_world

from mailsim.mail.message import format_date
from mailsim.mail.server import ServerSettings
from mailsim.nodes.telnet import TelnetScript
from mailsim.nodes.world import World

_AUTH = base64.b64encode(b"\0james@india.com\0grammar").decode()
_TYPED = ("Subject: typed by hand", "", "Do you have a Grammar Book?", ".")


def _typed_at(world: World, server: str, port: int, rcpt: str = STEVE) -> World:
    hello = ("EHLO james-pc", f"AUTH PLAIN {_AUTH}") if port == 587 else ("HELO james-pc",)
    world.telnet(
        TelnetScript(
            at=10,
            node="james-pc",
            server=server,
            port=port,
            lines=(*hello, f"MAIL FROM:<{JAMES}>", f"RCPT TO:<{rcpt}>", "DATA", *_TYPED, "QUIT"),
        )
    )
    return world


def _header(message: bytes) -> list[bytes]:
    return message.split(b"\r\n\r\n", 1)[0].split(b"\r\n")


def test_the_submission_port_adds_the_date_and_message_id_a_typed_message_lacks() -> None:
    world = _typed_at(tutorial_world(seed=2), "india-mail", 587)
    world.run(until=700)
    assert world.telnets[0].received[-2].startswith("250 2.0.0 Ok: queued as INDIAMAIL00001")
    (copy,) = world.agents[STEVE].inbox
    header = _header(copy)
    assert b"Message-ID: <INDIAMAIL00001@india.com>" in header  # RFC 6409 8.3
    # The trace knows the message by the id it was given.
    submitted = first(world, "mail.submit", msg="INDIAMAIL00001@india.com")
    assert submitted["node"] == "india-mail"
    # RFC 6409 8.2: the date of submission (the run starts on Monday 5 January 2026, 09:00).
    date = b"Date: " + format_date(submitted["t"]).encode()
    assert 10 < submitted["t"] < 60 and date.startswith(b"Date: Mon, 05 Jan 2026 09:00:")
    # Added at the end of the header the user wrote, below what the servers stamp on top.
    assert header.index(b"Subject: typed by hand") < header.index(date)
    assert_balanced(world)


def test_the_mx_port_passes_a_message_on_as_it_came() -> None:
    world = _typed_at(tutorial_world(seed=2), "usa-mail", 25)
    world.run(until=700)
    (copy,) = world.agents[STEVE].inbox
    header = _header(copy)
    assert not [line for line in header if line.startswith((b"Date:", b"Message-ID:"))]
    assert_balanced(world)


def test_final_delivery_records_the_reverse_path_and_the_recipient_on_top() -> None:
    world = tutorial_world(seed=2)
    world.send(60, JAMES, [STEVE], "Books", "Atlas?", name="books")
    world.run(until=700)
    (copy,) = world.agents[STEVE].inbox
    header = _header(copy)
    assert header[:2] == [b"Return-Path: <james@india.com>", b"Delivered-To: steve@usa.com"]
    assert header[2].startswith(b"Received: from india.com")  # usa-mail's stamp
    assert_balanced(world)


def test_a_bounce_is_filed_with_the_null_reverse_path() -> None:
    world = tutorial_world(seed=2, james_checks=600)
    world.send(60, JAMES, ["nobody@usa.com"], "Books", "Atlas?", name="books")
    world.run(until=700)
    (bounce,) = world.agents[JAMES].inbox
    assert _header(bounce)[:2] == [b"Return-Path: <>", b"Delivered-To: james@india.com"]
    assert_balanced(world)


def test_an_unknown_user_gets_postfixs_words_from_the_shared_reply_table() -> None:
    world = _typed_at(tutorial_world(seed=2), "usa-mail", 25, rcpt="nobody@usa.com")
    world.run(until=100)
    assert world.telnets[0].received[3] == (
        "550 5.1.1 <nobody@usa.com>: Recipient address rejected: "
        "User unknown in local recipient table"
    )


def test_classic_wording_leaves_the_enhanced_code_out_of_policy_refusals_too() -> None:
    world = tutorial_world(seed=2, usa=ServerSettings(replies="classic"))
    _typed_at(world, "usa-mail", 25, rcpt="nobody@usa.com")
    world.run(until=100)
    assert world.telnets[0].received[3] == (
        "550 <nobody@usa.com>: Recipient address rejected: User unknown in local recipient table"
    )
