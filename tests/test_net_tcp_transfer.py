"""Moving data: segmentation, slow start, queueing, the receive window, loss and recovery."""

from __future__ import annotations

from typing import Any

import pytest
from net_fixtures import Proc, make_net, pair, pattern, pusher, records, run, sink

from mailsim.net import Connection, Network, TcpConfig, Topology


def transfer(
    size: int,
    *,
    latency: float,
    bandwidth: float,
    loss: float = 0.0,
    jitter: float = 0.0,
    seed: int = 1,
    rwnd: int = 65536,
    segments: bool = False,
    mtu: int = 1500,
) -> tuple[dict[str, Any], Any, Any, Network]:
    topology = Topology()
    topology.add_node("a")
    topology.add_node("b")
    topology.add_link("a", "b", latency, bandwidth, loss=loss, jitter=jitter, mtu=mtu)
    env, net, recorder = make_net(topology, seed=seed, segments=segments, tcp=TcpConfig(rwnd=rwnd))
    result: dict[str, Any] = {}
    data = pattern(size)
    run(env, sink(net, "b", 25, result), pusher(net, "a", "b", 25, data, result))
    assert result["received"] == data  # every byte, in order
    return result, env, recorder, net


def test_one_megabyte_matches_the_kurose_ross_slow_start_latency() -> None:
    # Kurose & Ross (TCP latency modelling with slow start, here with an initial window of 10
    # segments, RFC 6928): latency = 2 RTT + O/R + sum_{k=1..P} (S/R + RTT - W_k S/R), where
    # W_k = 10 * 2^(k-1) segments is the window of round k and P = min(Q, K - 1) counts the
    # rounds after which the sender idles waiting for the first ACK.
    #   O: 1,000,000 octets in 685 segments (MSS 1460) plus 40 header octets each = 1,027,400;
    #      R = 10 Mbit/s, so O/R = 0.82192 s.  S/R = 1500 * 8 / 10e6 = 1.2 ms.  RTT = 0.2 s.
    #   K = 7 rounds (10+20+40+80+160+320 = 630 < 685 segments); the sender idles after round
    #   k while W_k * 1.2 ms < 201.2 ms, i.e. W_k < 167.7: rounds 1..5, so Q = 5 and P = 5.
    #   idle = 5 * 201.2 ms - (10+20+40+80+160) * 1.2 ms = 1.006 - 0.372 = 0.634 s.
    #   latency = 0.4 + 0.82192 + 0.634 = 1.85592 s (connect() at 0 until the last ACK).
    # The receive window is made large (4 MiB) because the formula assumes it does not limit.
    result, env, _, _ = transfer(1_000_000, latency=0.1, bandwidth=10e6, rwnd=4 << 20)
    assert result["drained_at"] == pytest.approx(1.85592, rel=0.05)
    assert result["drained_at"] == pytest.approx(1.85592, abs=0.002)  # in fact much closer
    stats = result["client_conn"].stats()
    # 685 data segments and the FIN sent by close() afterwards.
    assert (stats["segments"], stats["mss"], stats["retransmissions"]) == (686, 1460, 0)
    # One SimPy event per window round, not per segment: a few dozen events in all.
    # (SimPy's private event counter; fine for pinning a performance property.)
    assert next(env._eid) < 50


def test_segments_are_mtu_minus_forty_octets() -> None:
    # MTU 576 -> MSS 536; 10,000 octets = 18 full segments + one of 352 = 19 segments.
    result, _, recorder, _ = transfer(10_000, latency=0.01, bandwidth=10e6, mtu=576, segments=True)
    data_segments = [r for r in records(recorder, "tcp.segment", src="a") if r["length"] > 0]
    assert [r["length"] for r in data_segments] == [536] * 18 + [352]
    assert result["client_conn"].stats()["mss"] == 536


def test_a_busy_link_makes_other_traffic_wait_its_turn() -> None:
    # a -- b at 1 Mbit/s, 10 ms. Two connections are open; at t = 1 s the first sends a burst
    # of 10 full segments (its initial window: 10 * 1500 octets = 120 ms on the wire), and the
    # second sends 100 octets right behind it. FIFO: the small one is serialised after the
    # burst, 120 ms + 140 * 8 / 1e6 (1.12 ms) + 10 ms = 131.12 ms after 1 s; on an idle link it
    # would take 11.12 ms.
    env, net, _ = make_net(pair(latency=0.01, bandwidth=1e6))
    arrivals: dict[str, float] = {}
    listener = net.listen("b", 25)

    def serve() -> Proc:
        for name in ("bulk", "small"):
            conn = yield listener.accept()
            env.process(read(conn, name))

    def read(conn: Connection, name: str) -> Proc:
        data = yield conn.recv()
        arrivals.setdefault(name, env.now)
        assert data

    def clients() -> Proc:
        bulk = yield net.connect("a", "b", 25)
        small = yield net.connect("a", "b", 25)
        yield env.timeout(1.0 - env.now)
        bulk.send(pattern(14_600))
        small.send(b"x" * 100)

    run(env, serve(), clients())
    assert arrivals["small"] == pytest.approx(1.0 + 0.120 + 0.00112 + 0.010)


def test_receive_window_caps_the_data_in_flight() -> None:
    # 2 MB over 100 Mbit/s with a 200 ms round trip: the 64 KiB receive window, not the link,
    # limits. Slow start sends 10, 20, 40 segments (102,200 octets), then 44 full segments
    # (64,240 octets: a 45th would pass 65,536) per round trip; the remaining 1,897,800 octets
    # need 30 more rounds: 33 rounds of 0.2 s plus the handshake's round trip = 6.8 s (a
    # link-limited transfer would take about 1 s).
    result, _, recorder, _ = transfer(
        2_000_000, latency=0.1, bandwidth=100e6, rwnd=65536, segments=True
    )
    assert result["drained_at"] == pytest.approx(6.8, rel=0.01)
    # At no time is more than the window unacknowledged: the highest octet sent minus the
    # highest acknowledged, both from the segment trace.
    sent_top = acked_top = 0
    isn_a = records(recorder, "tcp.segment", flags="S")[0]["seq"]
    for record in records(recorder, "tcp.segment"):
        if record["src"] == "a" and record["length"]:
            sent_top = max(sent_top, (record["seq"] - isn_a - 1) % 2**32 + record["length"])
        elif record["src"] == "b" and record["flags"] == "A":
            acked_top = max(acked_top, (record["ack"] - isn_a - 1) % 2**32)
        assert sent_top - acked_top <= 65536


def test_one_percent_loss_still_delivers_every_byte_in_order_with_retransmissions() -> None:
    result, _, recorder, _ = transfer(
        300_000, latency=0.02, bandwidth=10e6, loss=0.01, seed=5, segments=True
    )
    retransmits = records(recorder, "tcp.retransmit", src="a")
    stats = result["client_conn"].stats()
    assert len(retransmits) == stats["retransmissions"] > 0
    assert stats["fast_retransmits"] > 0
    # Every retransmission repeats a segment sent before, same sequence number and length.
    sent = {(r["seq"], r["length"]) for r in records(recorder, "tcp.segment", src="a")}
    assert all((r["seq"], r["length"]) in sent for r in retransmits)


def test_jitter_does_not_reorder_a_connection() -> None:
    # Up to 30 ms of extra delay per segment on a 10 ms link would reorder segments if it could.
    result, _, _, _ = transfer(200_000, latency=0.01, bandwidth=10e6, jitter=0.03, seed=2)
    assert result["received"] == pattern(200_000)


def test_ten_megabytes_over_a_link_losing_half_a_percent_stay_close_to_the_link_rate() -> None:
    # 10 MB over 10 Mbit/s, 10 ms one way (RTT 20 ms), 64 KiB window, 0.5% loss per segment.
    # Without loss: 6850 segments * 1500 octets * 8 / 10e6 = 8.22 s on the wire, plus the
    # handshake, two rounds of slow start and the last ACK, about 4 RTT: T0 = 8.30 s. Each of
    # the ~34 losses is resent at its third duplicate ACK and halves the window once (no
    # timeout); Mathis's 1460 * 8 / 21.2 ms * sqrt(1.5 / 0.005) = 9.5 Mbit/s is close to the
    # link's rate, so the transfer takes little more than T0. (With recovery by timeout only,
    # it took 37.6 s.)
    result, _, _, _ = transfer(10_000_000, latency=0.01, bandwidth=10e6, loss=0.005, seed=1)
    stats = result["client_conn"].stats()
    assert stats["timeouts"] == 0
    assert 15 <= stats["fast_retransmits"] <= 55
    assert 8.30 <= result["drained_at"] <= 8.30 * 1.25


def test_drain_waits_for_the_last_ack_and_close_delivers_eof_after_the_data() -> None:
    # 3000 octets = 2 segments (1460 + 1460) + 80, all in the initial window; over 10 ms at
    # 10 Mbit/s the last one (120 octets, 96 us) leaves after the first two (1.2 ms each):
    # 2.4 + 0.096 ms serialised, + 10 ms, then its ACK (32 us + 10 ms) comes back:
    # drained at connect (2 * 10.032 ms) + 2.496 + 10 + 10.032 ms = 42.592 ms.
    # The client then closes: its FIN (40 octets) reaches b 10.032 ms later, at 52.624 ms,
    # where recv() returns b"" after the 3000 octets.
    result, _, recorder, _ = transfer(3000, latency=0.01, bandwidth=10e6)
    assert result["drained_at"] == pytest.approx(0.042592, abs=1e-9)
    assert result["eof_at"] == pytest.approx(0.052624, abs=1e-9)
    closes = records(recorder, "tcp.close")
    assert {(r["by"], r["how"]) for r in closes} == {("a", "fin"), ("b", "fin")}


def test_a_request_and_its_reply_cost_two_simpy_events() -> None:
    # The performance contract: one event per delivery (the receiver's recv() itself), none for
    # ACKs, timers or carriers. Counted with SimPy's (private) event id counter.
    env, net, _ = make_net(pair())
    listener = net.listen("b", 25)
    counted: dict[str, int] = {}

    def server() -> Proc:
        conn = yield listener.accept()
        while (yield conn.recv()) != b"":
            conn.send(b"250 OK\r\n")

    def client() -> Proc:
        conn = yield net.connect("a", "b", 25)
        yield env.timeout(1.0)  # let the server's accept() complete first
        first = next(env._eid)
        for _ in range(100):
            conn.send(b"NOOP\r\n")
            assert (yield conn.recv()) == b"250 OK\r\n"
        counted["events"] = next(env._eid) - first - 1
        conn.close()

    run(env, server(), client())
    assert counted["events"] == 200
