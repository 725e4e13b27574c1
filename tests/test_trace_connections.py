"""What each connection carried: role, messages moved, refusals and round trips, from the trace."""

from __future__ import annotations

from plot_traces import james_to_steve, link_outage

from mailsim.trace.connections import connections, relay_totals


def test_the_tutorial_trace_has_a_submission_a_relay_and_a_fetch() -> None:
    found = connections(james_to_steve())
    assert [(c.role, c.client, c.server, c.messages) for c in found.values()] == [
        ("submission", "james-pc", "india-mail", 1),
        ("relay", "india-mail", "usa-mail", 1),
        ("mailbox", "steve-pc", "usa-mail", 1),
    ]
    assert all(c.established and not c.failed for c in found.values())


def test_round_trips_count_the_handshake_and_each_wait_for_the_server() -> None:
    relay = connections(james_to_steve())[2]
    # Handshake 1; the tutorial dialogue waits for 220, HELO, MAIL, RCPT, DATA, the dot and QUIT:
    # 7 runs of server lines.
    assert relay.round_trips == 1 + 7


def test_pipelined_commands_cost_one_round_trip() -> None:
    records = [
        {"t": 0.0, "type": "net.node", "node": "a", "kind": "mailserver", "site": "x", "ip": ""},
        {"t": 0.0, "type": "tcp.open", "conn": 1, "client": "a", "server": "b", "cport": 1,
         "sport": 25},
        {"t": 0.2, "type": "tcp.established", "conn": 1},
    ]  # fmt: skip
    lines = [
        ("S", "220 b ESMTP"),
        ("C", "EHLO a"),
        ("S", "250-b"),
        ("S", "250 PIPELINING"),
        ("C", "MAIL FROM:<x@a>"),
        ("C", "RCPT TO:<y@b>"),
        ("C", "DATA"),
        ("S", "250 Ok"),
        ("S", "250 Ok"),
        ("S", "354 go on"),
        ("C", "hello"),
        ("C", "."),
        ("S", "250 queued"),
        ("C", "QUIT"),
        ("S", "221 Bye"),
    ]
    for index, (side, line) in enumerate(lines):
        records.append(
            {"t": 0.3 + index / 100, "type": "smtp.line", "conn": 1, "side": side,
             "src": "a", "dst": "b", "line": line}
        )  # fmt: skip
    (connection,) = connections(records).values()
    # Handshake, greeting, EHLO, MAIL+RCPT+DATA together, the dot, QUIT.
    assert connection.round_trips == 6
    assert connection.messages == 1 and connection.refused == 0


def test_a_retry_story_counts_failed_tries_apart_from_the_delivery() -> None:
    (relays,) = relay_totals(link_outage())
    assert relays.client == "india-mail" and relays.server == "usa-mail"
    found = [c for c in connections(link_outage()).values() if c.role == "relay"]
    assert relays.connections == len(found)
    assert relays.failed == sum(1 for c in found if c.failed) > 0
    assert relays.messages == sum(c.messages for c in found) == 6  # six messages, one delivery run
