"""Opening connections: handshake timing, refused versus timed out, unreachable, SYN retries."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from net_fixtures import Proc, india_usa, make_net, pair, records, run

from mailsim.net import ConnectError, Network, Topology

ROOT = Path(__file__).resolve().parents[1]


def three_hops() -> Topology:
    """a -- r1 -- r2 -- b: 10 ms, 50 ms, 5 ms, all 10 Mbit/s."""
    topology = Topology()
    for name, kind in (("a", "host"), ("r1", "router"), ("r2", "router"), ("b", "mailserver")):
        topology.add_node(name, kind)
    topology.add_link("a", "r1", 0.010, 10e6)
    topology.add_link("r1", "r2", 0.050, 10e6)
    topology.add_link("r2", "b", 0.005, 10e6)
    return topology


def greeter(net: Network, log: list[tuple[str, float]]) -> Proc:
    listener = net.listen("b", 25)
    conn = yield listener.accept()
    log.append(("accepted", net.env.now))
    conn.send(b"220 mail.usa.com ESMTP\r\n")  # 24 octets
    yield conn.recv()


def client(net: Network, log: list[tuple[str, float]], dst: str = "b") -> Proc:
    conn = yield net.connect("a", dst, 25)
    log.append(("connected", net.env.now))
    greeting = yield conn.recv()
    log.append(("greeting", net.env.now))
    assert greeting == b"220 mail.usa.com ESMTP\r\n"
    conn.close()


def test_connect_and_greeting_over_three_hops_take_one_and_two_round_trips() -> None:
    # By hand. A bare segment is 40 octets = 320 bits, 32 us at 10 Mbit/s on each of 3 hops,
    # so the SYN takes 10 + 50 + 5 ms + 3 * 0.032 ms = 65.096 ms one way.
    #   connect() returns when the SYN-ACK is back:   2 * 65.096        = 130.192 ms
    #   accept() returns when the client's ACK is in: 3 * 65.096        = 195.288 ms
    #   the greeting is 24 + 40 = 64 octets, 51.2 us per hop: 65 ms + 3 * 0.0512 ms
    #     = 65.1536 ms, so it arrives at 195.288 + 65.1536              = 260.4416 ms
    env, net, recorder = make_net(three_hops())
    log: list[tuple[str, float]] = []
    run(env, greeter(net, log), client(net, log))
    times = dict(log)
    assert times["connected"] == pytest.approx(0.130192, abs=1e-9)
    assert times["accepted"] == pytest.approx(0.195288, abs=1e-9)
    assert times["greeting"] == pytest.approx(0.2604416, abs=1e-9)
    (established,) = records(recorder, "tcp.established")
    assert established["t"] == pytest.approx(0.130192, abs=1e-9)
    (opened,) = records(recorder, "tcp.open")
    assert (opened["client"], opened["server"], opened["sport"]) == ("a", "b", 25)
    assert opened["cport"] == 49152  # the first ephemeral port (RFC 6335)


def test_connection_knows_its_ends() -> None:
    env, net, _ = make_net(three_hops())
    seen: dict[str, Any] = {}

    def server() -> Proc:
        conn = yield net.listen("b", 25).accept()
        seen["server"] = conn

    def open_it() -> Proc:
        seen["client"] = yield net.connect("a", net.ip_of("b"), 25)  # by address this time

    run(env, server(), open_it())
    c, s = seen["client"], seen["server"]
    assert (c.local_node, c.remote_node, c.local_port, c.remote_port) == ("a", "b", 49152, 25)
    assert (s.local_node, s.remote_node, s.local_port, s.remote_port) == ("b", "a", 25, 49152)
    assert (c.local_ip, c.remote_ip) == (s.remote_ip, s.local_ip) == ("192.0.2.1", "192.0.2.4")
    assert c.id == s.id == 1
    assert c.established_at == pytest.approx(0.130192)
    assert s.established_at == pytest.approx(0.195288)


def attempt(net: Network, outcome: dict[str, Any], dst: str = "b", **kwargs: Any) -> Proc:
    try:
        yield net.connect("a", dst, 25, **kwargs)
        outcome["ok"] = net.env.now
    except ConnectError as error:
        outcome["error"] = error
        outcome["at"] = net.env.now


def test_closed_port_on_a_live_host_is_refused_after_one_round_trip() -> None:
    # Nothing listens on b:25, so b answers the SYN with RST: known at 2 * 65.096 ms.
    env, net, recorder = make_net(three_hops())
    outcome: dict[str, Any] = {}
    run(env, attempt(net, outcome))
    assert outcome["error"].reason == "refused"
    assert "refused by b port 25" in str(outcome["error"])
    assert outcome["at"] == pytest.approx(0.130192)
    (fail,) = records(recorder, "tcp.fail")
    assert fail["reason"] == "refused"


def test_down_host_makes_connect_time_out_after_30_seconds_of_syn_retries() -> None:
    # SYNs at 0, 1, 3, 7, 15 s (RTO 1 s doubling, RFC 6298); the next would go at 31 s, after
    # the 30 s connect timeout (Postfix's default), so connect fails at exactly 30 s.
    env, net, recorder = make_net(three_hops(), segments=True)
    net.set_node_state("b", up=False)
    outcome: dict[str, Any] = {}
    run(env, attempt(net, outcome))
    assert outcome["error"].reason == "timeout"
    assert outcome["at"] == pytest.approx(30.0)
    syns = [r["t"] for r in records(recorder, "tcp.segment", flags="S")]
    assert syns == pytest.approx([0.0, 1.0, 3.0, 7.0, 15.0])
    assert len(records(recorder, "tcp.retransmit")) == 4


def test_connect_timeout_can_be_shortened() -> None:
    env, net, _ = make_net(three_hops())
    net.set_node_state("b", up=False)
    outcome: dict[str, Any] = {}
    run(env, attempt(net, outcome, timeout=5.0))
    assert (outcome["error"].reason, outcome["at"]) == ("timeout", pytest.approx(5.0))


def test_unknown_destination_or_isolated_client_is_unreachable_at_once() -> None:
    env, net, recorder = make_net(three_hops())
    unknown: dict[str, Any] = {}
    run(env, attempt(net, unknown, dst="203.0.113.99"))
    assert unknown["error"].reason == "unreachable"
    assert "no node or address '203.0.113.99'" in str(unknown["error"])
    assert unknown["at"] == 0.0
    net.set_link_state("a", "r1", up=False)
    isolated: dict[str, Any] = {}
    run(env, attempt(net, isolated))
    assert isolated["error"].reason == "unreachable"
    assert "a has no working link" in str(isolated["error"])
    assert [r["reason"] for r in records(recorder, "tcp.fail")] == ["unreachable"] * 2


def test_a_host_whose_only_neighbour_is_down_sends_syns_and_times_out() -> None:
    # bounce-after-days: steve-pc's one link leads to usa-mail, which is down. Its POP3 connects
    # failed "unreachable" at once with no packet at all; a real host sends its SYNs into the
    # silence and gives up after the connect timeout, and the capture shows them.
    topology = pair()
    env, net, recorder = make_net(topology, segments=True)
    net.set_node_state("b", up=False)
    outcome: dict[str, Any] = {}
    run(env, attempt(net, outcome))
    assert (outcome["error"].reason, outcome["at"]) == ("timeout", pytest.approx(30.0))
    syns = [r["t"] for r in records(recorder, "tcp.segment", flags="S")]
    assert syns == pytest.approx([0.0, 1.0, 3.0, 7.0, 15.0])
    assert [r["reason"] for r in records(recorder, "tcp.fail")] == ["timeout"]


def test_long_haul_link_down_makes_india_to_usa_connect_time_out() -> None:
    env, net, _ = make_net(india_usa())
    net.set_link_state("india-router", "usa-router", up=False)
    outcome: dict[str, Any] = {}

    def try_usa() -> Proc:
        net.listen("usa-mail", 25)
        try:
            yield net.connect("india-mail", "usa-mail", 25)
        except ConnectError as error:
            outcome["error"] = error
            outcome["at"] = env.now

    run(env, try_usa())
    assert outcome["error"].reason == "timeout"
    assert outcome["at"] == pytest.approx(30.0)


def test_slower_second_path_takes_over_when_the_long_haul_link_is_down() -> None:
    # Via Europe one way is 1 + 80 + 90 + 1 = 172 ms (1 Gbit/s: 0.32 us per hop for a SYN), so
    # connect() returns after 344 ms instead of 244 ms.
    env, net, _ = make_net(india_usa(backup=True))
    net.set_link_state("india-router", "usa-router", up=False)
    log: dict[str, float] = {}

    def try_usa() -> Proc:
        net.listen("usa-mail", 25)
        yield net.connect("india-mail", "usa-mail", 25)
        log["connected"] = env.now

    run(env, try_usa())
    assert log["connected"] == pytest.approx(0.344, abs=1e-5)


def test_lost_syns_are_sent_again_at_one_then_three_seconds() -> None:
    # 50% loss on the long haul: a try succeeds only if both SYN and SYN-ACK get through. With
    # seed 14 the tries at 0 s and 1 s fail and the one at 3 s (RTO 1 s, then 2 s) gets through,
    # so connect() returns one round trip (244 ms) later, at 3.244 s. A SYN timed out, so the
    # first RTO for data is 3 s (RFC 6298 5.7), not one computed from this ambiguous sample.
    env, net, recorder = make_net(india_usa(long_haul_loss=0.5), seed=14, segments=True)
    log: dict[str, Any] = {}

    def try_usa() -> Proc:
        net.listen("usa-mail", 25)
        conn = yield net.connect("india-mail", "usa-mail", 25)
        log["connected"] = env.now
        log["rto"] = conn.stats()["rto"]

    run(env, try_usa())
    syns = [r["t"] for r in records(recorder, "tcp.segment", flags="S")]
    assert syns == pytest.approx([0.0, 1.0, 3.0])
    assert log["connected"] == pytest.approx(3.244, abs=1e-5)
    assert log["rto"] == 3.0


def test_example_script_prints_times_that_match_the_link_latencies() -> None:
    # One way is 1 + 120 + 1 = 122 ms: SYN-ACK back at 1 RTT = 244 ms, greeting at 2 RTT =
    # 488 ms, reply to HELO at 3 RTT = 732 ms (serialisation at 1 Gbit/s is below 0.1 ms).
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "tcp_handshake.py")],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    lines = result.stdout.splitlines()
    assert lines == [
        "SYN sent                 at    0.0 ms",
        "connected (SYN-ACK in)   at  244.0 ms",
        "greeting 220 arrived     at  488.0 ms",
        "reply 250 arrived        at  732.0 ms",
    ]
