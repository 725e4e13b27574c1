"""A reply fault's ``for``, ``delay`` and multi-line ``text``, honoured by the simulation.

The same fields ``mailsim serve --fault`` takes (tests/test_live_lab.py): one ReplySpec, one
core ReplyFault, so a scenario's slow server or its refusal of one recipient happens in both.
"""

from __future__ import annotations

import pytest
from nodes_worlds import (
    JAMES,
    STEVE,
    assert_balanced,
    first,
    line_time,
    lines,
    of_type,
    tutorial_world,
)

from mailsim.mail.server import ReplyFault, ServerSettings
from mailsim.nodes.world import World
from mailsim.scenario import load_scenario, validate_text
from mailsim.scenario.builder import build_world

SCENARIO = """\
name: reply-fields
seed: 3
duration: 2h
nodes:
  james-pc:   {kind: host}
  india-mail: {kind: mailserver, domains: [india.com]}
  usa-mail:   {kind: mailserver, domains: [usa.com]}
  steve-pc:   {kind: host}
links:
  - {between: [james-pc, india-mail], latency: 2ms, bandwidth: 100Mbps}
  - {between: [india-mail, usa-mail], latency: 110ms, bandwidth: 20Mbps}
  - {between: [usa-mail, steve-pc], latency: 3ms, bandwidth: 100Mbps}
users:
  - {address: james@india.com, password: grammar, host: james-pc}
  - {address: steve@usa.com, password: atlas, host: steve-pc}
  - {address: ann@usa.com, password: maps, host: steve-pc}
messages:
  - {at: 1min, from: james@india.com, to: [steve@usa.com, ann@usa.com], subject: Books,
     body: Atlas?}
faults:
%s"""

REFUSE_STEVE = (
    "  - {reply: {server: usa-mail, command: RCPT, for: Steve@USA.com, code: 550,\n"
    "             text: ['5.1.1 Steve has left', 'write to ann@usa.com instead']}}\n"
)
SLOW_DATA = "  - {reply: {server: usa-mail, command: DATA, delay: 20s}}\n"


def _relay_conn(world: World) -> int:
    return int(first(world, "tcp.open", client="india-mail", server="usa-mail")["conn"])


def test_a_scenario_refuses_one_recipient_with_a_multiline_reply_and_answers_data_late() -> None:
    scenario = load_scenario(SCENARIO % (REFUSE_STEVE + SLOW_DATA))
    world = build_world(scenario)
    world.run(until=scenario.duration)
    conn = _relay_conn(world)
    said = lines(world, conn, "S")
    assert "550-5.1.1 Steve has left" in said and "550 write to ann@usa.com instead" in said
    assert said.count("250 2.1.5 Ok") == 1  # Ann's RCPT: the fault names Steve only
    # The 354 comes 20 s after DATA left India (plus the ocean's 110 ms).
    late = line_time(world, conn, "354") - line_time(world, conn, "DATA")
    assert late == pytest.approx(20.0, abs=0.5)
    assert first(world, "mail.deliver", rcpt="ann@usa.com")
    (bounce,) = of_type(world, "mail.bounce")
    assert "Steve has left write to ann@usa.com instead" in bounce["reply"]
    assert_balanced(world)


def test_without_the_faults_the_same_scenario_delivers_both_at_once() -> None:
    # The test above can fail: with no fault the 354 is not late and Steve is not refused.
    scenario = load_scenario(SCENARIO.replace("faults:\n%s", ""))
    world = build_world(scenario)
    world.run(until=scenario.duration)
    conn = _relay_conn(world)
    assert line_time(world, conn, "354") - line_time(world, conn, "DATA") < 1.0
    assert len(of_type(world, "mail.deliver")) == 2 and not of_type(world, "mail.bounce")


def test_a_delay_slows_each_line_of_a_multiline_reply() -> None:
    world = tutorial_world(seed=8, usa=ServerSettings(reply_faults=(ReplyFault("EHLO", delay=3),)))
    world.send(60, JAMES, [STEVE], "Books", "Atlas?", name="books")
    world.run(until=3600)
    conn = _relay_conn(world)
    asked = line_time(world, conn, "EHLO")
    reply: list[float] = []
    for rec in world.recorder.records:
        mine = rec["type"] == "smtp.line" and rec["conn"] == conn and rec["side"] == "S"
        if mine and rec["t"] > asked:
            reply.append(float(rec["t"]))
            if rec["line"].startswith("250 "):
                break
    assert len(reply) >= 4  # EHLO's reply: the greeting line and the extensions
    gaps = [b - a for a, b in zip([asked, *reply], reply, strict=False)]
    assert gaps[0] == pytest.approx(3.0 + 0.110, abs=0.05)  # the ocean, then 3 s
    assert all(gap == pytest.approx(3.0, abs=0.01) for gap in gaps[1:])
    assert first(world, "mail.deliver", rcpt=STEVE)


def test_a_delay_on_rcpt_does_not_hold_back_the_pipelined_mail_reply() -> None:
    fault = ReplyFault("RCPT", delay=40)
    world = tutorial_world(seed=8, usa=ServerSettings(reply_faults=(fault,)))
    world.send(60, JAMES, [STEVE], "Books", "Atlas?", name="books")
    world.run(until=3600)
    conn = _relay_conn(world)
    mail_sent = line_time(world, conn, "MAIL FROM")
    assert line_time(world, conn, "RCPT TO") == pytest.approx(mail_sent)  # pipelined
    assert line_time(world, conn, "250 2.1.0") - mail_sent < 1.0
    assert line_time(world, conn, "250 2.1.5") - mail_sent == pytest.approx(40.11, abs=0.05)
    assert first(world, "mail.deliver", rcpt=STEVE)
    assert_balanced(world)


@pytest.mark.parametrize(
    ("fault", "problem"),
    [
        (
            "{server: usa-mail, command: RCPT}",
            "faults[0].reply.code: a fault needs a code (like 451), or a delay (a slow server)",
        ),
        (
            "{server: usa-mail, command: RCPT, delay: 5s, text: 4.7.1 Slow}",
            "faults[0].reply.text: a text needs a code to go with it",
        ),
        (
            "{server: usa-mail, command: DATA, code: 554, for: steve@usa.com}",
            "faults[0].reply.for: applies to MAIL or RCPT only (the command naming an address)",
        ),
        (
            "{server: usa-mail, command: RCPT, code: 550, text: [5.1.1 Gone, 'Grüße']}",
            "faults[0].reply.text: line 2: must be plain ASCII",
        ),
        (
            "{server: usa-mail, command: RCPT, code: 550, for: not-an-address}",
            "faults[0].reply.for:",
        ),
    ],
)
def test_bad_fields_are_refused_where_they_are_written(fault: str, problem: str) -> None:
    found = validate_text(SCENARIO % f"  - {{reply: {fault}}}\n", source_name="x.yaml")
    assert len(found) == 1 and problem in found[0], found
    assert found[0].startswith("x.yaml:21:")
