"""Loss recovery: duplicate ACKs, fast retransmit and fast recovery (RFC 5681, RFC 6582, SACK),
and lossy transfer times against the Mathis and Padhye estimates."""

from __future__ import annotations

import math
import statistics
from typing import Any

import pytest
from net_fixtures import make_net, pair, pattern, pusher, records, run, sink

from mailsim.net import Network


class Drops:
    """A stand-in for a link's loss stream that loses exactly the packets numbered in ``lose``
    (1 = the first packet to cross the link, the SYN; 2 the SYN-ACK; 3 the first data)."""

    def __init__(self, *lose: int) -> None:
        self.lose = set(lose)
        self.drawn = 0

    def random(self) -> float:
        self.drawn += 1
        return 0.0 if self.drawn in self.lose else 1.0


def transfer_with_drops(
    size: int, *lose: int, latency: float = 0.005, segments: bool = True
) -> tuple[dict[str, Any], Any, Network]:
    env, net, recorder = make_net(pair(latency=latency, loss=0.5), segments=segments)
    drops = Drops(*lose)
    for direction in net._directions.values():
        direction.loss_rng = drops  # type: ignore[assignment]
    result: dict[str, Any] = {}
    data = pattern(size)
    run(env, sink(net, "b", 25, result), pusher(net, "a", "b", 25, data, result))
    assert result["received"] == data
    return result, recorder, net


def test_one_lost_segment_is_resent_at_the_third_duplicate_ack_not_after_the_timeout() -> None:
    # 100 kB over 5 ms: the 5th data segment (packet 7 on the link) is lost. Segments 6, 7 and
    # 8 arrive out of order and each makes b repeat its ACK for segment 5; the third duplicate
    # reaches a one ACK delay later, and a resends segment 5 then, not after the 1 s RTO.
    result, recorder, net = transfer_with_drops(100_000, 7)
    stats = result["client_conn"].stats()
    assert (stats["retransmissions"], stats["fast_retransmits"], stats["timeouts"]) == (1, 1, 0)
    (resent,) = records(recorder, "tcp.retransmit", src="a")
    hole = resent["seq"]
    dupacks = [
        r
        for r in records(recorder, "tcp.segment", src="b", flags="A", ack=hole)
        if r["t"] < resent["t"]
    ]
    # The ACK of segment 4 (the first to carry this number), then the duplicates: the third
    # one reaches a one ACK delay after b sent it, and a resends at that instant (b goes on
    # repeating its ACK for the segments still arriving while the resend is on its way).
    assert len(dupacks) >= 4
    ack_delay = net.routing.route("b", "a").ack_delay  # type: ignore[union-attr]
    assert resent["t"] == pytest.approx(dupacks[3]["t"] + ack_delay, abs=1e-9)
    # The window was halved once (RFC 5681 3.2): ssthresh is set, no timeout happened.
    assert stats["ssthresh"] is not None
    assert result["drained_at"] < 0.5


def test_without_three_later_segments_the_timeout_resends() -> None:
    # 3 segments in all, the first lost: only two duplicate ACKs can come, so a waits for the
    # retransmission timeout (RFC 6298: at least 1 s) as a real NewReno sender does.
    result, _, _ = transfer_with_drops(4000, 3)
    stats = result["client_conn"].stats()
    assert (stats["fast_retransmits"], stats["timeouts"]) == (0, 1)
    assert result["drained_at"] > 1.0


def test_two_holes_in_one_window_are_both_filled_in_one_recovery() -> None:
    # Segments 5 and 9 lost in the same window: one recovery, one halving; the second hole is
    # resent when its own three duplicates (or the partial ACK) come, without a timeout.
    result, recorder, _ = transfer_with_drops(100_000, 7, 11)
    stats = result["client_conn"].stats()
    assert (stats["fast_retransmits"], stats["timeouts"]) == (2, 0)
    assert len(records(recorder, "tcp.retransmit", src="a")) == 2


def test_a_partial_ack_resends_the_next_hole_at_once() -> None:
    # 14 segments; the 1st (packet 3) and the 12th (packet 14, among the last sent before the
    # first resend) are lost. Too few segments follow the second hole for three duplicate
    # ACKs; the ACK for the first resend stops at it (a partial ACK), and NewReno resends it
    # then (RFC 6582 3.2 step 5) instead of waiting a second for the timeout.
    result, _, _ = transfer_with_drops(20_000, 3, 14)
    stats = result["client_conn"].stats()
    assert (stats["fast_retransmits"], stats["timeouts"]) == (2, 0)
    assert result["drained_at"] < 0.1


# --- lossy transfer times against the models ---------------------------------------------------


def throughputs(size: int, loss: float, seeds: range) -> list[float]:
    """Bits per second from connect() to the ACK of the last octet, one per seed."""
    out = []
    for seed in seeds:
        env, net, _ = make_net(pair(latency=0.05, bandwidth=10e6, loss=loss), seed=seed)
        result: dict[str, Any] = {}
        run(env, sink(net, "b", 25, result), pusher(net, "a", "b", 25, bytes(size), result))
        out.append(size * 8 / (result["drained_at"] - result["established_at"]))
    return out


@pytest.mark.parametrize("loss", [0.01, 0.02])
def test_lossy_throughput_agrees_with_mathis_within_the_spread_of_the_losses(loss: float) -> None:
    # Mathis et al. (1997): B = MSS / RTT * sqrt(3/2) / sqrt(p) for a sender that halves its
    # window once per loss and recovers without timeouts. Here MSS 1460 octets, RTT = 2 * 50 ms
    # + 1.2 ms serialising a segment, p the loss per segment; the receive window (64 KiB,
    # 5.2 Mbit/s) and the link (10 Mbit/s) stay above B. Before fast recovery every loss cost
    # a 1 s timeout and slow start: transfers took 1.5 to 1.8 times as long.
    rtt = 2 * 0.05 + 1500 * 8 / 10e6 + 40 * 8 / 10e6
    mathis = 1460 * 8 / rtt * math.sqrt(1.5 / loss)
    # Padhye et al. (1998) adds Reno's timeouts (T0 = 1 s, b = 1: no delayed ACKs); a SACK
    # sender avoids most of them, so the model lies below.
    padhye = (
        1460
        * 8
        / (
            rtt * math.sqrt(2 * loss / 3)
            + 1.0 * min(1.0, 3 * math.sqrt(3 * loss / 8)) * loss * (1 + 32 * loss**2)
        )
    )
    measured = throughputs(4_000_000, loss, range(1, 11))
    mean, spread = statistics.mean(measured), statistics.stdev(measured)
    assert abs(mean - mathis) <= spread, (mean, mathis, spread)
    assert padhye < mean
