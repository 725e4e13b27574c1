"""Congestion control and loss recovery of the simulated TCP: the rules a sender's window obeys.

A mixin of :class:`mailsim.net.tcp_flow._Flow` (one direction of a connection), kept apart so
the rules can be read, and checked against their RFCs, in one place:

* RTT estimation and the retransmission timeout (RFC 6298: SRTT/RTTVAR, RTO at least
  ``min_rto``, doubling backoff, Karn's rule), and what a timeout does to the window (RFC 5681
  3.1: ssthresh half the flight size, cwnd one segment, then slow start again).
* Duplicate ACKs and fast retransmit / fast recovery (RFC 5681 3.2, NewReno RFC 6582, with the
  SACK scoreboard of RFC 2018 / RFC 6675). The receiver ACKs every out-of-order segment at
  once (RFC 5681 4.2), repeating the number of the first hole. The third such duplicate ACK
  reaches the sender when the third segment after the hole arrives, plus the ACK's way back:
  the sender computes that instant from the arrivals it already knows, and wakes there (one
  SimPy event per loss, never one per duplicate ACK). It then halves its window once
  (ssthresh = max(FlightSize / 2, 2 SMSS), cwnd = ssthresh), resends every hole that three
  later segments have reported (SACK-style hole filling), and during the recovery sends new
  data while the pipe, the data in flight not known to have arrived, is below cwnd: each
  duplicate ACK that reports a segment lets one more segment go, as RFC 6675's pipe does. A
  partial ACK (RFC 6582 3.2 step 5) resends the next hole at once; the ACK that covers
  everything sent before the recovery began ends it with cwnd = ssthresh (RFC 6582 3.2 step 3,
  the first option). A resent segment that is lost again is left to the timeout.

The round model of :mod:`mailsim.net.tcp` stays: the duplicate ACKs' arrival times form the
"clock" of the recovery round, so the new segments are booked into the link at those instants
in one go.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from mailsim.net.tcp_config import ConnectionReset

if TYPE_CHECKING:
    from mailsim.net.network import Network
    from mailsim.net.tcp import Connection
    from mailsim.net.tcp_flow import _Seg

INF = math.inf
#: Tolerance when comparing a time computed as ``now + delay`` with the time it was aimed at.
_EPS = 1e-9
#: Duplicate ACKs that make a sender resend (RFC 5681 3.2: "DupThresh", 3).
DUP_THRESH = 3

#: One state of the sender's clock: (octets counted as delivered, when, window in octets).
ClockState = tuple[int, float, int]


class _CongestionControl:
    """RTT estimation, RTO, fast retransmit and fast recovery of one direction (a mixin)."""

    #: The window and timer state these rules own (the flow sets them in its __init__).
    __slots__ = (
        "backoffs",
        "batch",
        "cwnd",
        "fast_retransmits",
        "fr_recover",
        "fr_start",
        "fr_una",
        "last_send",
        "recover",
        "rto",
        "rtt_mark",
        "rttvar",
        "rx",
        "srtt",
        "ssthresh",
        "timeouts",
    )

    # The flow's state these rules read and change (set in _Flow.__init__).
    backoffs: int
    batch: int
    cwnd: int
    fast_retransmits: int
    fr_recover: int
    fr_start: float
    fr_una: int
    last_send: float | None
    recover: int
    rto: float
    rtt_mark: float
    rttvar: float
    rx: int
    srtt: float | None
    ssthresh: int
    timeouts: int
    net: Network
    id: int
    src: Connection
    dst: Connection
    mss: int
    rwnd: int
    segs: list[_Seg]
    ia: int
    ik: int
    nxt: int
    last_ack: float

    def _transmit(self, seg: _Seg, now: float, retx: bool, batch: int) -> None: ...
    def _notify(self) -> None: ...

    # --- RTT and the retransmission timer (RFC 6298) -------------------------------------------

    def _rtt_sample(self, r: float) -> None:
        """Update SRTT, RTTVAR and RTO with one measurement (RFC 6298 2.2, 2.3)."""
        srtt = self.srtt
        if srtt is None:
            srtt = r
            rttvar = r / 2
        else:
            rttvar = 0.75 * self.rttvar + 0.25 * (srtt - r if srtt > r else r - srtt)
            srtt = 0.875 * srtt + 0.125 * r
        self.srtt = srtt
        self.rttvar = rttvar
        cfg = self.net.tcp_config
        var = 4 * rttvar
        rto = srtt + (var if var > cfg.clock_granularity else cfg.clock_granularity)
        self.rto = cfg.max_rto if rto > cfg.max_rto else cfg.min_rto if rto < cfg.min_rto else rto

    def _rto_deadline(self) -> float:
        # RFC 6298 5.1/5.3: the timer runs from the last ACK of new data, or from sending the
        # segment if nothing was outstanding then (a fast retransmission restarts it, as Linux).
        k = self.ik
        seg = self.segs[k]
        prev: float = self.segs[k - 1].ack if k > 0 else self.last_ack  # type: ignore[assignment]
        return (prev if prev > seg.sent else seg.sent) + self.rto

    def _on_rto(self, now: float) -> bool:
        """The retransmission timer expired (RFC 6298 5.4-5.7, RFC 5681 3.1)."""
        cfg = self.net.tcp_config
        self.backoffs += 1
        self.timeouts += 1
        if self.backoffs > cfg.max_retries:
            self.src._die(
                ConnectionReset(
                    "timeout",
                    f"connection {self.id} to {self.dst.local_node} timed out after "
                    f"{cfg.max_retries} retransmissions",
                ),
                "timeout",
            )
            return False
        segs = self.segs
        una = segs[self.ia].start if self.ia < len(segs) else self.nxt
        flight = self.nxt - una
        mss = self.mss
        self.ssthresh = max(flight // 2, 2 * mss)
        self.cwnd = mss
        # Karn (RFC 6298 3), as BSD does it: a timeout abandons the RTT measurement in
        # progress; only segments first sent from now on may be timed.
        self.rtt_mark = now
        self.rto = min(self.rto * 2, cfg.max_rto)
        self.recover = len(segs)
        self.fr_recover = 0  # a timeout ends any fast recovery (RFC 6582 4)
        k = self.ik
        self.batch += 1
        self._transmit(segs[k], now, True, self.batch)
        self.rx = k + 1
        self.last_send = now
        self._notify()
        return True

    # --- duplicate ACKs, fast retransmit and fast recovery (RFC 5681 3.2, RFC 6582) -----------

    def _resendable(self, seg: _Seg) -> bool:
        """Whether ``seg`` is a hole the current recovery has not resent yet."""
        return seg.arrive is None and (not self.fr_recover or seg.sent < self.fr_start)

    def _next_detection(self) -> float:
        """When the sender gets the third duplicate ACK for its first hole not yet resent in
        this recovery (INF: fewer than three later segments arrive, the timeout will do)."""
        segs = self.segs
        n = len(segs)
        k = self.ik
        while k < n and not self._resendable(segs[k]):
            k += 1
        seen = 0
        for j in range(k + 1, n):
            seg = segs[j]
            if seg.arrive is not None and seg.route is not None:
                seen += 1
                if seen == DUP_THRESH:
                    return seg.arrive + seg.route.ack_delay
        return INF

    def _fast_retransmit(self, now: float) -> None:
        """Resend the holes that three duplicate ACKs (or a partial ACK) reported by ``now``.

        The first such hole outside a recovery starts one: the window is halved once, and
        ``fr_recover`` marks the end of what was sent before it (RFC 6582 3.2 steps 2-4).
        """
        segs = self.segs
        n = len(segs)
        k = self.ik
        if k >= n or (not self.fr_recover and self.ia < self.recover):
            return  # no hole, or a timeout's recovery is resending the holes (RFC 6582 4)
        partial_at = None
        if self.fr_recover and self.ia > 0 and segs[self.ia - 1].end > self.fr_una:
            # A partial ACK: the cumulative ACK moved but not past the recovery point. RFC 6582
            # 3.2 step 5: resend the first unacknowledged segment at once.
            t: float = segs[self.ia - 1].ack  # type: ignore[assignment]
            partial_at = t if t > now else now
        due: list[tuple[_Seg, float]] = []
        waiting: list[list[int]] = []  # [index, duplicate ACKs so far] of holes not yet due
        for j in range(k, n):
            seg = segs[j]
            if seg.arrive is None:
                if self._resendable(seg):
                    if j == self.ia and partial_at is not None:
                        due.append((seg, partial_at))
                    else:
                        waiting.append([j, 0])
                continue
            route = seg.route
            if not waiting or route is None or seg.arrive + route.ack_delay > now + _EPS:
                continue  # no hole before it, or its ACK is not back yet
            # Its duplicate ACK is back: one more for every hole before it.
            for hole in waiting:
                hole[1] += 1
            while waiting and waiting[0][1] >= DUP_THRESH:
                due.append((segs[waiting.pop(0)[0]], now))
        if not due:
            return
        if not self.fr_recover:
            una = segs[self.ia].start if self.ia < n else self.nxt
            mss = self.mss
            # RFC 5681 3.2 step 2 / RFC 6582 3.2 step 3: halve once per recovery.
            self.ssthresh = max((self.nxt - una) // 2, 2 * mss)
            self.cwnd = self.ssthresh
            self.fr_recover = n
            self.fr_start = now
            self.fr_una = una
            self.rtt_mark = now  # Karn: no RTT sample from what the recovery resends
        self.batch += 1
        for seg, at in due:
            self._transmit(seg, at, True, self.batch)
            self.fast_retransmits += 1
            if self.last_send is None or at > self.last_send:
                self.last_send = at
        self._notify()  # the holes filled: a waiting recv() and drain() learn when

    def _sack_clock(self, una: int, now: float) -> list[ClockState]:
        """The sender's clock during a recovery: one state per segment reported delivered (by a
        cumulative or a duplicate ACK with SACK), from ``now`` on.

        A new segment may go when the pipe, what was sent and is not known to have arrived,
        leaves room for it in cwnd (RFC 6675 "pipe"); counting delivered octets as acknowledged
        makes the ordinary window test ``end - una <= window`` say exactly that. The receive
        window still counts from the real cumulative ACK (``una``), since the receiver holds
        the out-of-order octets.
        """
        reports: list[tuple[float, int]] = []
        for seg in self.segs:
            if seg.end > una and seg.arrive is not None and seg.route is not None:
                # Reported by the ACK its own arrival sends (cumulative, or duplicate with SACK).
                reports.append((seg.arrive + seg.route.ack_delay, seg.end - seg.start))
        reports.sort()
        cwnd = self.cwnd
        rwnd = self.rwnd
        known = 0
        pos = 0
        while pos < len(reports) and reports[pos][0] <= now + _EPS:
            known += reports[pos][1]
            pos += 1
        clock: list[ClockState] = [(una + known, now, min(cwnd, rwnd - known))]
        for at, size in reports[pos:]:
            known += size
            clock.append((una + known, at, min(cwnd, rwnd - known)))
        return clock


__all__ = ["DUP_THRESH", "ClockState"]
