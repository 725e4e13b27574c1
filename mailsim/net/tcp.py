"""Simulated TCP for SimPy processes: a socket-like API over the simulated Internet.

Theory of operation
-------------------
Speed comes from doing arithmetic instead of scheduling. When a segment is sent, its arrival at
the receiver is computed at once along the cached route (store-and-forward per hop, waiting for
each link direction's FIFO transmit queue, which is a ``busy_until`` time, not a SimPy resource),
and so is the time its ACK gets back (the ACK's return trip is arithmetic too: ACKs are never
events). A SimPy event is scheduled only where a process must wake up:

* the receiver's pending ``recv()`` event is put on the queue directly at the arrival time of the
  data it will return (one event per delivery, no carrier event in between);
* ``drain()`` fires at the computed arrival time of the ACK of the last byte;
* the sender wakes once per *window round* while it has more to send than the window allows:
  at the ACK of the first segment of the previous round it counts the whole previous round as
  acknowledged (their ACK times are already known), grows the window, and sends the next window
  as one burst into the first link's transmit queue. With one bottleneck this gives the same
  arrival times as ACK clocking (the queue releases the burst at the bottleneck's rate) and it is
  exactly the round model of Kurose & Ross's slow-start latency formula;
* a retransmission timer event exists only when a segment (or its ACK) was lost.

A request/reply over an established connection therefore costs two SimPy events.

What is modelled (and where the rule comes from):

* Three-way handshake (RFC 9293 3.5): ``connect()`` completes when the SYN-ACK arrives, one round
  trip after the SYN; the server's ``accept()`` completes when the client's ACK arrives, half a
  round trip later, so a greeting sent on accept reaches the client two round trips after the
  SYN. SYNs are retransmitted after 1 s, doubling (RFC 6298 2.1, 5.5), up to ``syn_retries`` (6,
  like Linux) or the connect timeout (30 s, like Postfix). No listener (or a stopped service) on
  a host that is up answers RST: ``ConnectError("refused")`` after one round trip.
* Segments of at most MSS = path MTU - 40 octets (no options), each with 40 header octets on the
  wire; slow start from an initial window of min(10 MSS, max(2 MSS, 14600)) (RFC 6928), then
  congestion avoidance (RFC 5681 3.1, one ACK per segment, no delayed ACKs); a fixed receive
  window (64 KiB by default): the receiving application is assumed to read promptly, so the
  window never closes (no zero-window probing).
* Loss: each segment crossing a link is lost with the link's loss rate (a named stream per link).
  Recovery is by retransmission timeout only (RFC 6298: SRTT/RTTVAR, RTO min 1 s by default,
  doubling backoff, Karn's rule; no fast retransmit): the timer fires, ssthresh becomes half the
  flight size, cwnd one MSS (RFC 5681 3.1), and the sender goes back to the first hole. The
  receiver keeps out-of-order segments, and the sender then resends only the holes, as a SACK
  sender would (RFC 2018). Pure ACKs are not lost at random (a lost cumulative ACK is covered by
  the next one), and do not queue behind data.
* Jitter delays segments at random, but never reorders a connection's segments.
* Failures: a link or router failing destroys the segments (and ACKs) that would have crossed it
  after the failure (a simplification: segments already past it when it fails are counted lost
  too). The flow stalls in retransmission backoff (1, 2, 4 ... s, at most 120 s) and resumes at
  the next retransmission after a route comes back, unless the application gives up first or 15
  retransmissions fail (``ConnectionReset`` with reason "timeout", as Linux's tcp_retries2).
* A node crash kills every connection and listener on it at once (``ConnectionReset`` with reason
  "crash" for anything a process there still waits on). Its peers are not told: like a real
  host, the peer learns by RST when its next segment reaches the restarted node (while the node
  is down its segments are lost and retransmitted with backoff); a peer that only waits for data
  learns nothing until its own timeout. Segments the crashed node had already sent still arrive.
* ``close()`` sends FIN after every queued byte (an orderly close; the peer's ``recv()`` returns
  ``b""`` after the last byte); ``abort()`` sends RST (the peer's pending and later calls raise
  ``ConnectionReset``). Stopping a service resets the connections of its port like an abort.

Trace: ``tcp.open`` at ``connect()``; ``tcp.established`` when the client gets the SYN-ACK;
``tcp.fail`` with reason "refused", "timeout" or "unreachable"; one ``tcp.close`` per side when
that side ends: ``by`` its node, ``how`` "fin" (its application closed), "abort" (its application
aborted), "reset" (it received a RST, or its node crashed or its service stopped) or "timeout"
(retransmissions exhausted). With ``recorder.segments`` on, every segment is recorded at the time
its sender sends it (``tcp.segment``, data with ``payload`` as latin-1 text; pure ACKs at the time
the receiver sends them), retransmissions also as ``tcp.retransmit``. Sequence numbers start from
an initial sequence number per side drawn from the stream ``net/tcp/isn``; SYN and FIN consume one
each, so the records form a valid stream for a pcap export.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import deque
from dataclasses import dataclass
from heapq import heappush
from typing import TYPE_CHECKING, Any

from simpy.events import NORMAL, PENDING, Event, Timeout

from mailsim.net.routing import HEADER_BYTES, Route, transit
from mailsim.net.schedule import call_at, fail_at, fire_at, is_scheduled, unschedule

if TYPE_CHECKING:
    from simpy import Environment

    from mailsim.net.network import Network

INF = math.inf
_SEQ_MASK = 0xFFFFFFFF
#: Tolerance when comparing a time computed as ``now + delay`` with the time it was aimed at.
_EPS = 1e-9


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


class NetError(Exception):
    """Base class of what the simulated network raises."""


class _ReasonedError(NetError):
    """A network error with a machine-readable ``reason`` and a sentence for people."""

    def __init__(self, reason: str, message: str) -> None:
        # Both in args, so copies made with type(e)(*e.args) (SimPy does that) work.
        super().__init__(reason, message)
        self.reason = reason
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConnectError(_ReasonedError):
    """A connection could not be opened.

    Attributes:
        reason: "refused" (the host answered RST: nothing listens on the port), "timeout" (no
            answer to any SYN before the connect timeout: host or path down, even when the
            host that is down is the client's only neighbour) or "unreachable" (the destination
            is not a node of the network, or every link of the client is down: then no packet
            leaves, as with ENETUNREACH).
    """


class ConnectionReset(_ReasonedError):
    """The connection is gone: reset by the peer, crashed, or timed out retransmitting.

    Attributes:
        reason: "reset" (a RST arrived), "crash" (this node crashed), "timeout" (retransmissions
            exhausted) or "abort" (this side aborted it).
    """


class SocketTimeout(NetError):
    """``recv(timeout=...)`` waited that long without data."""


class ListenerClosed(NetError):
    """``accept()`` on a listener that was closed (by the application or a crash)."""


# --------------------------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TcpConfig:
    """The TCP knobs of a network, with realistic defaults.

    Attributes:
        rwnd: receive window in octets (default 65536, 64 KiB; larger needs window scaling,
            RFC 7323, which is assumed).
        initial_window: initial congestion window in octets (default None: RFC 6928's
            min(10 MSS, max(2 MSS, 14600)), 14600 octets for MSS 1460).
        initial_rto: retransmission timeout before any RTT sample, also the first SYN timeout
            (default 1.0 s, RFC 6298 2.1).
        min_rto: lower bound of the RTO (default 1.0 s, RFC 6298 2.4; Linux uses 0.2 s).
        max_rto: upper bound of the RTO (default 120 s, as Linux; RFC 6298 2.5 asks >= 60 s).
        clock_granularity: G of RFC 6298 2.3 (default 0.001 s).
        syn_retries: SYN retransmissions before connect gives up (default 6, as Linux: about
            127 s), unless ``connect_timeout`` ends it first.
        connect_timeout: default timeout of ``connect()`` (default 30 s, Postfix's
            smtp_connect_timeout).
        max_retries: consecutive retransmission timeouts of one segment before the connection is
            dropped (default 15, Linux's tcp_retries2; RFC 1122 4.2.3.5 R2).
        first_port: first ephemeral client port (default 49152, RFC 6335 dynamic range).
    """

    rwnd: int = 65536
    initial_window: int | None = None
    initial_rto: float = 1.0
    min_rto: float = 1.0
    max_rto: float = 120.0
    clock_granularity: float = 0.001
    syn_retries: int = 6
    connect_timeout: float = 30.0
    max_retries: int = 15
    first_port: int = 49152

    def initial_cwnd(self, mss: int) -> int:
        """The initial congestion window for ``mss`` (RFC 6928 2, unless set)."""
        if self.initial_window is not None:
            return max(self.initial_window, mss)
        return min(10 * mss, max(2 * mss, 14600))


# --------------------------------------------------------------------------------------------
# One direction of a connection
# --------------------------------------------------------------------------------------------


class _Seg:
    """A segment as the sender keeps it until it is acknowledged and delivered.

    ``arrive`` is when the receiver has it (None: lost so far); ``ack`` is when the sender gets
    the cumulative ACK covering it (None: not known yet, because of a hole before it or a lost
    ACK). Offsets are stream octets; a FIN segment has ``start == end`` and ``fin``.
    """

    __slots__ = ("ack", "arrive", "batch", "end", "fin", "retx", "route", "sent", "start")

    def __init__(self, start: int, end: int, fin: bool, batch: int) -> None:
        self.start = start
        self.end = end
        self.fin = fin
        self.batch = batch
        self.sent = 0.0
        self.arrive: float | None = None
        self.ack: float | None = None
        self.retx = 0
        self.route: Route | None = None


class _Flow:
    """One direction of a connection: the sender's state and the receiver's view of the stream.

    Segment list pointers (indices into ``segs``), in the order ``ia <= ik <= ic``:
    ``ia`` first segment whose ACK the sender has not processed; ``ik`` first segment whose ACK
    time is unknown; ``ic`` first segment not yet contiguously received; ``ir`` first segment
    not yet handed to the receiving application.
    """

    __slots__ = (
        "backoffs",
        "base",
        "batch",
        "buf",
        "cwnd",
        "drains",
        "dst",
        "env",
        "fin_seg",
        "fin_wanted",
        "ia",
        "ic",
        "id",
        "ik",
        "ir",
        "isn",
        "last_ack",
        "last_arrive",
        "last_send",
        "mss",
        "net",
        "nxt",
        "peer_gone",
        "recover",
        "retransmits",
        "route",
        "route_epoch",
        "routing",
        "rst_sent",
        "rtimer",
        "rtimer_at",
        "rto",
        "rtt_mark",
        "rttvar",
        "rwnd",
        "rx",
        "segments",
        "segs",
        "src",
        "srtt",
        "ssthresh",
        "timeouts",
        "tracing",
        "waiter",
        "waiter_at",
        "waiter_deadline",
        "waiter_ir",
        "wake_at",
        "wake_ev",
        "written",
    )

    def __init__(
        self, net: Network, conn_id: int, src: Connection, dst: Connection, isn: int, mss: int
    ) -> None:
        cfg = net.tcp_config
        self.net = net
        self.env: Environment = net.env
        self.id = conn_id
        self.src = src
        self.dst = dst
        self.isn = isn
        self.mss = mss
        # --- sender ---
        self.buf = bytearray()
        self.base = 0
        self.written = 0
        self.nxt = 0
        self.fin_wanted = False
        self.fin_seg: _Seg | None = None
        self.segs: list[_Seg] = []
        self.ia = 0
        self.ik = 0
        self.ic = 0
        self.ir = 0
        self.cwnd = cfg.initial_cwnd(mss)
        self.ssthresh = 1 << 40
        self.rwnd = max(cfg.rwnd, mss)
        self.srtt: float | None = None
        self.rttvar = 0.0
        self.rto = cfg.initial_rto
        self.rtt_mark = 0.0
        self.backoffs = 0
        self.recover = 0
        self.rx = 0
        self.last_arrive = 0.0
        self.last_ack = 0.0
        self.last_send: float | None = None
        self.batch = 0
        self.wake_ev: Event | None = None
        self.wake_at = INF
        self.routing = net.routing
        self.route: Route | None = None
        self.route_epoch = -1
        self.peer_gone = False
        self.rst_sent = False
        # --- receiver ---
        self.waiter: Event | None = None
        self.waiter_deadline = INF
        self.waiter_at = INF
        self.waiter_ir = 0
        self.rtimer: Event | None = None
        self.rtimer_at = INF
        self.drains: list[list[Any]] = []
        #: Whether segments are recorded (read once: turn it on before the network starts).
        self.tracing = net.recorder.segments
        # --- counters ---
        self.segments = 0
        self.retransmits = 0
        self.timeouts = 0

    # --- sender ------------------------------------------------------------------------------

    def current_route(self) -> Route | None:
        routing = self.routing
        if self.route_epoch != routing.epoch:
            self.route = routing.route(self.src.local_node, self.dst.local_node)
            self.route_epoch = routing.epoch
        return self.route

    def write(self, data: bytes) -> None:
        """Queue ``data`` (bytes) and send what the window allows."""
        n = len(data)
        segs = self.segs
        if (
            n <= self.mss
            and self.written == self.nxt
            and self.wake_ev is None
            and not self.fin_wanted
            and not self.drains
            and not self.peer_gone
            and not self.tracing
            and self.src._error is None
            and (not segs or (len(segs) == 1 and self.ik == 1 and self.ir == 1))
        ):
            # Fast path for the common small exchange: at most one earlier segment, already
            # delivered and ACKed, and a message that fits in one segment. It does what pump()
            # would do, inline: process the old ACK, forget it, send one segment, and hand it
            # straight to a waiting recv().
            now = self.env._now
            seg = None
            if segs:
                seg = segs[0]
                t: float = seg.ack  # type: ignore[assignment]
                if t > now:
                    seg = None  # its ACK is still on the way: take the general path
                else:
                    if self.ia == 0:
                        if seg.retx == 0 and seg.sent >= self.rtt_mark:
                            self._rtt_sample(t - seg.sent)
                            self.rtt_mark = t
                        acked = seg.end - seg.start
                        mss = self.mss
                        if self.cwnd < self.ssthresh:
                            self.cwnd += acked if acked < mss else mss
                        else:
                            self.cwnd += max(1, mss * mss // self.cwnd)
                        self.backoffs = 0
                        self.ia = 1
                    self.last_ack = t
                    self.buf.clear()
                    self.base = self.nxt
            if seg is not None or not segs:
                route = self.route
                if self.route_epoch != self.routing.epoch:
                    route = self.current_route()
                if route is not None:
                    last_send = self.last_send
                    if last_send is not None and now - last_send > self.rto:
                        # RFC 5681 4.1: restart slow start after an idle period.
                        self.cwnd = min(self.cwnd, self.net.tcp_config.initial_cwnd(self.mss))
                    start = self.nxt
                    self.buf += data
                    self.written = self.nxt = start + n
                    batch = self.batch + 1
                    self.batch = batch
                    if seg is None:
                        seg = _Seg(start, start + n, False, batch)
                        segs.append(seg)
                    else:
                        # Reuse the forgotten segment's record (saves an allocation).
                        seg.start = start
                        seg.end = start + n
                        seg.batch = batch
                        seg.retx = 0
                    # One segment in the list from here: ia = ir = 0, and ic = ik = 1 once it
                    # is known to arrive. recover = 0 ends any old retransmission bookkeeping.
                    self.ia = self.ir = self.recover = 0
                    seg.sent = now
                    seg.route = route
                    self.segments += 1
                    self.last_send = now
                    # routing.transit(), inlined: store-and-forward over each hop's queue.
                    a: float | None = now
                    bits = (n + HEADER_BYTES) * 8
                    for hop in route.hops:
                        busy = hop.busy_until
                        done = (busy if busy > a else a) + bits / hop.bandwidth  # type: ignore[operator]
                        hop.busy_until = done
                        if hop.loss and hop.loss_rng.random() < hop.loss:
                            a = None
                            break
                        a = done + hop.latency
                        if hop.jitter:
                            a += hop.jitter_rng.uniform(0.0, hop.jitter)
                    if a is None:
                        seg.arrive = seg.ack = None
                        self.ic = self.ik = 0
                        self._arm(now)  # lost: the retransmission timer takes over
                        return
                    if a < self.last_arrive:
                        a = self.last_arrive
                    else:
                        self.last_arrive = a
                    seg.arrive = a
                    seg.ack = a + route.ack_delay
                    self.ic = self.ik = 1
                    waiter = self.waiter
                    if (
                        waiter is not None
                        and waiter._value is PENDING
                        and a <= self.waiter_deadline
                    ):
                        self.waiter_ir = 0
                        self.ir = 1
                        self.waiter_at = a
                        waiter._ok = True
                        waiter._value = data
                        env = self.env
                        heappush(env._queue, (a, NORMAL, next(env._eid), waiter))
                    return
        self.buf += data
        self.written += n
        self.pump(False)

    def pump(self, lookahead: bool) -> None:
        """Process ACKs, handle a due timeout, send what the window allows, arm the timer.

        ``lookahead`` (a round wake-up) also processes every ACK whose time is already known but
        still in the future, the round model described in the module docstring: the next window
        is booked now, each segment entering the first link when the ACK that opens the window
        for it arrives, so the flight never exceeds the window.
        """
        if self.src._error is not None:
            return
        now = self.env._now
        segs = self.segs
        if self.ia < self.ik:
            self._process_acks(now, None)
        if (
            self.written > self.nxt
            and self.ia == len(segs)
            and self.last_send is not None
            and now - self.last_send > self.rto
        ):
            # RFC 5681 4.1: after an idle period longer than the RTO, restart slow start.
            self.cwnd = min(self.cwnd, self.net.tcp_config.initial_cwnd(self.mss))
        una = segs[self.ia].start if self.ia < len(segs) else self.nxt
        #: The sender's states from now to the last ACK known: (una, when, cwnd).
        clock: list[tuple[int, float, int]] = [(una, now, self.cwnd)]
        if lookahead and self.ia < self.ik:
            self._process_acks(INF, clock)
        if self.ik < len(segs) and self._rto_deadline() <= now + _EPS:
            if not self._on_rto(now):
                return
            lookahead = False
            clock = [(segs[self.ia].start, now, self.cwnd)]
        if lookahead or self.last_send is None or self.last_send <= now:
            self._send(now, lookahead, clock)
        # else: the last round booked segments into the future, counting on ACKs not yet
        # arrived; new data waits for the next round rather than jump the ACK clock.
        self._arm(now)
        if self.ia >= 32 or self.ia == len(self.segs):
            self._compact()

    def _process_acks(self, limit: float, clock: list[tuple[int, float, int]] | None) -> None:
        """Process the ACKs that arrive up to ``limit``, appending each new state to ``clock``."""
        segs = self.segs
        ia = self.ia
        ik = self.ik
        mss = self.mss
        start = ia
        while ia < ik:
            first = segs[ia]
            t: float = first.ack  # type: ignore[assignment]
            if t > limit:
                break
            j = ia + 1
            while j < ik and segs[j].ack == t:
                j += 1
            last = segs[j - 1]
            # Karn's rule (RFC 6298 3): time only segments never retransmitted, one per RTT.
            if last.retx == 0 and last.sent >= self.rtt_mark:
                self._rtt_sample(t - last.sent)
                self.rtt_mark = t
            acked = last.end - first.start
            if acked > 0:
                # RFC 5681 3.1: slow start grows cwnd by min(N, SMSS) per ACK, congestion
                # avoidance by about SMSS per round trip (SMSS*SMSS/cwnd per ACK).
                if self.cwnd < self.ssthresh:
                    self.cwnd += acked if acked < mss else mss
                else:
                    self.cwnd += max(1, mss * mss // self.cwnd)
            ia = j
            if clock is not None:
                clock.append((last.end, t, self.cwnd))
        if ia != start:
            self.ia = ia
            self.backoffs = 0

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
        # segment if nothing was outstanding then.
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
        k = self.ik
        self.batch += 1
        self._transmit(segs[k], now, True, self.batch)
        self.rx = k + 1
        self.last_send = now
        self._notify()
        return True

    def _send(self, now: float, lookahead: bool, clock: list[tuple[int, float, int]]) -> None:
        segs = self.segs
        batch = self.batch + 1
        last_send = None
        if lookahead and self.rx < self.recover:
            # After a timeout: resend the holes first, a congestion window's worth per round.
            budget = self.cwnd
            k = self.rx if self.rx > self.ik else self.ik
            while k < self.recover and budget > 0:
                seg = segs[k]
                if seg.arrive is None or k == self.ik:
                    self._transmit(seg, now, True, batch)
                    last_send = now
                    budget -= max(seg.end - seg.start, 1)
                k += 1
            self.rx = k
        avail = self.written - self.nxt
        if avail > 0 or (self.fin_wanted and self.fin_seg is None):
            rwnd = self.rwnd
            mss = self.mss
            pos = 0
            states = len(clock)
            while True:
                nxt = self.nxt
                n = avail if avail < mss else mss
                if n <= 0 and not (self.fin_wanted and self.fin_seg is None):
                    break
                # The first state (now, or a known future ACK) whose window admits the segment
                # (RFC 9293 3.8.6: end - SND.UNA <= min(cwnd, rwnd)).
                end = nxt + n
                while pos < states:
                    una, _t, cwnd = clock[pos]
                    if end - una <= (cwnd if cwnd < rwnd else rwnd):
                        break
                    pos += 1
                if pos == states:
                    break
                at = clock[pos][1]
                if at < now:
                    at = now
                if n > 0:
                    seg = _Seg(nxt, end, False, batch)
                    segs.append(seg)
                    self.nxt = end
                    avail -= n
                else:
                    seg = _Seg(nxt, nxt, True, batch)
                    segs.append(seg)
                    self.fin_seg = seg
                self._transmit(seg, at, False, batch)
                last_send = at
        if last_send is not None:
            self.batch = batch
            self.last_send = last_send
            self._notify()

    def _transmit(self, seg: _Seg, now: float, retx: bool, batch: int) -> None:
        """Send one segment at ``now`` (this instant or a known later one): compute its arrival
        and the ACK time it earns."""
        route = self.current_route()
        seg.sent = now
        seg.route = route
        seg.batch = batch
        self.segments += 1
        if retx:
            seg.retx += 1
            self.retransmits += 1
        if self.tracing:
            self._trace_segment(seg, now, retx)
        if route is None:
            return
        a = transit(route.hops, now, seg.end - seg.start + HEADER_BYTES)
        if a is None:
            return
        if self.peer_gone:
            self._answer_rst(a, route)
            return
        if a < self.last_arrive:
            a = self.last_arrive  # jitter must not reorder a connection's segments
        else:
            self.last_arrive = a
        if seg.arrive is None:
            seg.arrive = a
        segs = self.segs
        n = len(segs)
        ic = self.ic
        while ic < n and segs[ic].arrive is not None:
            ic += 1
        self.ic = ic
        ik = self.ik
        if ik < ic:
            # The receiver ACKs cumulatively on every arrival (no delayed ACKs).
            t_ack = a + route.ack_delay
            for k in range(ik, ic):
                segs[k].ack = t_ack
            self.ik = ic
            if self.tracing:
                self._trace_ack(segs[ic - 1], a, t_ack)

    def _answer_rst(self, arrive: float, route: Route) -> None:
        # The far end no longer knows this connection (crash, abort): it answers RST
        # (RFC 9293 3.5.2, reset generation) and the sender learns when the RST gets back.
        if self.rst_sent:
            return
        self.rst_sent = True
        net = self.net
        if net.recorder.segments:
            net.emit_at(
                arrive,
                None,
                "tcp.segment",
                conn=self.id,
                src=self.dst.local_node,
                dst=self.src.local_node,
                flags="R",
                seq=0,
                ack=0,
                length=0,
            )
        src = self.src
        message = f"connection {self.id} reset by {self.dst.local_node}"
        call_at(
            self.env,
            arrive + route.ack_delay,
            lambda _ev: src._die(ConnectionReset("reset", message), "reset"),
        )

    def _arm(self, now: float) -> None:
        """Make sure the sender wakes for the next round or its retransmission timeout."""
        segs = self.segs
        t = INF
        if self.ik < len(segs):
            t = self._rto_deadline()
        if self.ia < self.ik and (
            self.written > self.nxt
            or (self.fin_wanted and self.fin_seg is None)
            or self.rx < self.recover
        ):
            a: float = segs[self.ia].ack  # type: ignore[assignment]
            if a < t:
                t = a
        if t == INF:
            return
        if t < now:
            t = now
        if self.wake_ev is not None and self.wake_at <= t:
            return
        ev = Event(self.env)
        ev.callbacks.append(self._on_wake)
        fire_at(self.env, ev, t)
        self.wake_ev = ev
        self.wake_at = t

    def _on_wake(self, ev: Event) -> None:
        if ev is not self.wake_ev:
            return  # superseded by an earlier wake-up
        self.wake_ev = None
        self.wake_at = INF
        self.pump(True)

    def _compact(self) -> None:
        """Forget segments that are both acknowledged and delivered."""
        segs = self.segs
        m = self.ia if self.ia < self.ir else self.ir
        if is_scheduled(self.waiter) and self.waiter_ir < m:
            m = self.waiter_ir
        if m == 0 or (m < len(segs) and m < 64):
            return
        now = self.env._now
        while m > 0 and segs[m - 1].ack > now:  # type: ignore[operator]
            m -= 1  # keep what was acknowledged only in a round's look-ahead
        if m == 0:
            return
        self.last_ack = segs[m - 1].ack  # type: ignore[assignment]
        new_base = self.nxt if m == len(segs) else segs[m].start
        del segs[:m]
        self.ia -= m
        self.ik -= m
        self.ic -= m
        self.ir -= m
        self.waiter_ir = max(0, self.waiter_ir - m)
        self.recover = max(0, self.recover - m)
        self.rx = max(0, self.rx - m)
        cut = new_base - self.base
        if cut > 0:
            del self.buf[:cut]
            self.base = new_base

    # --- receiver ----------------------------------------------------------------------------

    def _notify(self) -> None:
        """New arrivals were projected: serve a waiting ``recv()`` and pending drains."""
        waiter = self.waiter
        if waiter is not None and waiter._value is PENDING:
            self._deliver(self.env._now)
        if self.drains:
            self._service_drains()

    def recv(self, timeout: float | None) -> Event:
        env = self.env
        waiter = self.waiter
        if waiter is not None and waiter.callbacks is not None:
            raise NetError(
                f"connection {self.id}: recv() called while another recv() is still waiting"
            )
        ev = Event(env)
        self.waiter = ev
        error = self.dst._error
        if error is not None:
            fail_at(env, ev, env._now, error)
            return ev
        if timeout is None:
            self.waiter_deadline = INF
            if self.ir < self.ic:
                self._deliver(env._now)
        else:
            deadline = env._now + timeout
            self.waiter_deadline = deadline
            if self.ir >= self.ic or not self._deliver(env._now):
                self._arm_recv_timer(deadline)
        return ev

    def _deliver(self, now: float) -> bool:
        """Schedule the waiting ``recv()`` at the arrival of the next data (or FIN), if known."""
        ir = self.ir
        ic = self.ic
        if ir >= ic:
            return False
        segs = self.segs
        first = segs[ir]
        t: float = first.arrive  # type: ignore[assignment]
        if first.fin:
            value = b""
            if t < now:
                t = now
            elif t > self.waiter_deadline:
                return False
            j = ir
        elif t <= now:
            # Everything that has already arrived, in one piece.
            j = ir + 1
            while j < ic:
                s = segs[j]
                if s.fin or s.arrive > now:  # type: ignore[operator]
                    break
                j += 1
            t = now
            value = bytes(self.buf[first.start - self.base : segs[j - 1].end - self.base])
        else:
            # The rest of the window round (burst) it came in, delivered when its last segment
            # arrives: one event per round, not per segment.
            batch = first.batch
            j = ir + 1
            while j < ic:
                s = segs[j]
                arrive: float = s.arrive  # type: ignore[assignment]
                if s.fin or (s.batch != batch and arrive > t):
                    break
                if arrive > t:
                    t = arrive
                j += 1
            if t > self.waiter_deadline:
                return False
            value = bytes(self.buf[first.start - self.base : segs[j - 1].end - self.base])
        self.waiter_ir = ir
        self.ir = j
        self.waiter_at = t
        fire_at(self.env, self.waiter, t, value)  # type: ignore[arg-type]
        return True

    def _arm_recv_timer(self, deadline: float) -> None:
        # One lazy timer per direction: it re-arms itself for a later deadline instead of one
        # stale timer per recv() call.
        if self.rtimer is not None and self.rtimer_at <= deadline:
            return
        ev = Timeout(self.env, max(0.0, deadline - self.env._now))
        ev.callbacks.append(self._on_recv_timer)
        self.rtimer = ev
        self.rtimer_at = deadline

    def _on_recv_timer(self, ev: Event) -> None:
        if ev is not self.rtimer:
            return
        self.rtimer = None
        self.rtimer_at = INF
        waiter = self.waiter
        if waiter is None or waiter._value is not PENDING:
            return
        now = self.env._now
        if now + _EPS >= self.waiter_deadline:
            self.waiter_at = now
            fail_at(
                self.env,
                waiter,
                now,
                SocketTimeout(f"connection {self.id}: no data within the receive timeout"),
            )
        elif self.waiter_deadline < INF:
            self._arm_recv_timer(self.waiter_deadline)

    # --- drain -------------------------------------------------------------------------------

    def drain(self) -> Event:
        env = self.env
        ev = Event(env)
        error = self.src._error
        if error is not None:
            fail_at(env, ev, env._now, error)
            return ev
        self.drains.append([self.written, ev, INF])
        self._service_drains()
        return ev

    def _service_drains(self) -> None:
        segs = self.segs
        ik = self.ik
        now = self.env._now
        keep = []
        for item in self.drains:
            target, ev, at = item
            if ev.callbacks is None:
                continue  # processed
            keep.append(item)
            if at != INF:
                continue  # already scheduled
            first_start = segs[0].start if segs else self.nxt
            if target <= first_start:
                t = now  # acknowledged and forgotten already
            elif ik > 0 and segs[ik - 1].end >= target:
                k = bisect_left(segs, target, 0, ik, key=lambda s: s.end)
                t = segs[k].ack  # type: ignore[assignment]
            else:
                continue
            if t < now:
                t = now
            item[2] = t
            fire_at(self.env, ev, t)
        self.drains = keep

    # --- failures ----------------------------------------------------------------------------

    def on_failure(self, t: float, link: tuple[str, str] | None, node: str | None) -> None:
        """A link or node failed at ``t``: segments and ACKs that would cross it later are lost."""
        if node is not None and node == self.src.local_node:
            return  # this flow's sender died with its node; what it sent is on the wire
        segs = self.segs
        if not segs:
            return
        dst_node = self.dst.local_node
        # A delivery or drain promised after t may be wrong now: take them back first.
        if is_scheduled(self.waiter) and self.waiter_at > t:
            unschedule(self.env, self.waiter)  # type: ignore[arg-type]
            self.ir = self.waiter_ir
        changed = False
        for seg in segs:
            route = seg.route
            if route is None:
                continue
            if link is not None:
                if link not in route.links:
                    continue
            elif node not in route.nodes:
                continue
            if seg.arrive is not None and seg.arrive > t:
                seg.arrive = None
                seg.ack = None
                changed = True
            elif seg.ack is not None and seg.ack > t and node != dst_node:
                seg.ack = None  # the ACK was on its way through the failure
                changed = True
        if changed:
            n = len(segs)
            ic = 0
            while ic < n and segs[ic].arrive is not None:
                ic += 1
            ik = 0
            while ik < n and ik < ic and segs[ik].ack is not None:
                ik += 1
            for k in range(ik, n):
                segs[k].ack = None  # cumulative ACKs: nothing after a gap is known
            self.ic = ic
            self.ik = ik
            if self.ia > ik:
                self.ia = ik
            if self.ir > ic:
                self.ir = ic
            for item in self.drains:
                ev = item[1]
                if item[2] != INF and item[2] > t and is_scheduled(ev):
                    unschedule(self.env, ev)
                    item[2] = INF
        waiter = self.waiter
        if waiter is not None and waiter._value is PENDING:
            self._deliver(self.env._now)
            if waiter._value is PENDING and self.waiter_deadline < INF:
                self._arm_recv_timer(self.waiter_deadline)
        if changed:
            if self.drains:
                self._service_drains()
            if self.src._error is None:
                self._arm(self.env._now)

    def fail_waiters(self, error: ConnectionReset, sender_side: bool) -> None:
        """The endpoint on the ``sender_side`` (else the receiving side) died: fail its waits."""
        env = self.env
        if sender_side:
            self.wake_ev = None
            for _target, ev, at in self.drains:
                if ev.callbacks is None:
                    continue
                if at != INF and at <= env._now + _EPS:
                    continue  # already fired at this instant: let it
                if at != INF:
                    unschedule(env, ev)
                fail_at(env, ev, env._now, error)
            self.drains = []
        else:
            waiter = self.waiter
            if waiter is None or waiter.callbacks is None:
                return
            if waiter._value is not PENDING:
                if self.waiter_at <= env._now + _EPS:
                    return
                unschedule(env, waiter)
                self.ir = self.waiter_ir
            self.waiter_at = env._now
            fail_at(env, waiter, env._now, error)

    # --- trace -------------------------------------------------------------------------------

    def seq_of(self, offset: int) -> int:
        return (self.isn + 1 + offset) & _SEQ_MASK

    def received_seq(self, now: float) -> int:
        """The receiver's cumulative ACK number for this flow as of ``now``."""
        segs = self.segs
        k = self.ir
        while k < self.ic and segs[k].arrive <= now:  # type: ignore[operator]
            k += 1
        if k == 0:
            offset = segs[0].start if segs else self.nxt
            return self.seq_of(offset)
        last = segs[k - 1]
        return (self.seq_of(last.end) + (1 if last.fin else 0)) & _SEQ_MASK

    def _trace_segment(self, seg: _Seg, now: float, retx: bool) -> None:
        src = self.src.local_node
        dst = self.dst.local_node
        seq = self.seq_of(seg.start)
        length = seg.end - seg.start
        ack = self.src._in.received_seq(now)
        net = self.net
        alive = self.src._alive
        if retx:
            net.emit_at(
                now, alive, "tcp.retransmit", conn=self.id, src=src, dst=dst, seq=seq, length=length
            )
        fields: dict[str, Any] = {
            "conn": self.id,
            "src": src,
            "dst": dst,
            "flags": "FA" if seg.fin else "PA",
            "seq": seq,
            "ack": ack,
            "length": length,
        }
        if length:
            data = bytes(self.buf[seg.start - self.base : seg.end - self.base])
            fields["payload"] = data.decode("latin-1")
        # A segment of a window round may enter the link later, when its ACK clock allows.
        net.emit_at(now, alive, "tcp.segment", **fields)

    def _trace_ack(self, last: _Seg, at: float, t_ack: float) -> None:
        ack = (self.seq_of(last.end) + (1 if last.fin else 0)) & _SEQ_MASK
        back = self.dst._out
        recorder = self.net.recorder
        conn, src, dst = self.id, self.dst.local_node, self.src.local_node

        def send(_event: Event | None = None) -> None:
            if last.ack != t_ack:
                return
            # A pure ACK carries SND.NXT as of when it is sent (RFC 9293 3.10.7.4), so read it
            # then: if this side sent its own FIN meanwhile, the ACK's seq is past that FIN.
            seq = (back.seq_of(back.nxt) + (1 if back.fin_seg is not None else 0)) & _SEQ_MASK
            recorder.emit(
                "tcp.segment", conn=conn, src=src, dst=dst, flags="A", seq=seq, ack=ack, length=0
            )

        if at <= self.env._now:
            send()
        else:
            call_at(self.env, at, send)


# --------------------------------------------------------------------------------------------
# The socket-like endpoints
# --------------------------------------------------------------------------------------------


class Connection:
    """One end of an established TCP connection, as a SimPy process sees it.

    Attributes:
        id: the connection id of the trace (the same at both ends).
        local_node, remote_node: node names; local_port, remote_port: ports;
        local_ip, remote_ip: dotted quads.
        established_at: when this end completed the handshake (client: SYN-ACK arrival; server:
            arrival of the client's ACK, when ``accept()`` returns it).
    """

    __slots__ = (
        "_closed",
        "_error",
        "_in",
        "_net",
        "_out",
        "_peer",
        "established_at",
        "id",
        "local_ip",
        "local_node",
        "local_port",
        "remote_ip",
        "remote_node",
        "remote_port",
    )

    def __init__(
        self,
        net: Network,
        conn_id: int,
        local_node: str,
        local_port: int,
        remote_node: str,
        remote_port: int,
    ) -> None:
        self._net = net
        self.id = conn_id
        self.local_node = local_node
        self.local_port = local_port
        self.remote_node = remote_node
        self.remote_port = remote_port
        self.local_ip = net.topology.ip_of(local_node)
        self.remote_ip = net.topology.ip_of(remote_node)
        self.established_at: float | None = None
        self._out: _Flow = None  # type: ignore[assignment]
        self._in: _Flow = None  # type: ignore[assignment]
        self._peer: Connection | None = None
        self._closed = False
        self._error: ConnectionReset | None = None

    def __repr__(self) -> str:
        return (
            f"<Connection {self.id} {self.local_node}:{self.local_port} -> "
            f"{self.remote_node}:{self.remote_port}>"
        )

    # --- the API -----------------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        """Queue ``data`` for sending; it starts flowing at once (never blocks).

        Raises:
            ConnectionReset: the connection was reset (the error that ended it).
            NetError: this side already called ``close()``.
        """
        if self._closed or self._error is not None:
            if self._error is not None:
                raise self._error
            raise NetError(f"connection {self.id}: send() after close()")
        if data:
            self._out.write(data if type(data) is bytes else bytes(data))

    def drain(self) -> Event:
        """An event that fires when every byte sent so far has been acknowledged."""
        return self._out.drain()

    def recv(self, timeout: float | None = None) -> Event:
        """An event giving the next bytes that arrived (``b""`` after the peer's FIN).

        Args:
            timeout: seconds to wait for data (None: for ever).

        The event fails with :class:`ConnectionReset` if the connection is reset and with
        :class:`SocketTimeout` if ``timeout`` passes first. Only one ``recv()`` may wait at a time.
        Use ``timeout`` rather than ``recv() | env.timeout(t)``: an abandoned ``recv()`` event
        (after a condition or an interrupt) still takes the next data when it arrives.
        """
        return self._in.recv(timeout)

    def close(self) -> None:
        """Orderly close: FIN after every queued byte (like ``shutdown(SHUT_WR)``).

        ``recv()`` keeps returning what the peer still sends until its FIN. Closing twice, or
        after a reset, does nothing.
        """
        if self._closed or self._error is not None:
            return
        self._closed = True
        self._net.recorder.emit("tcp.close", conn=self.id, by=self.local_node, how="fin")
        self._out.fin_wanted = True
        self._out.pump(False)
        self._net._maybe_forget(self)

    def abort(self) -> None:
        """Abort with RST: queued data is dropped and the peer's calls raise ConnectionReset."""
        if self._error is not None:
            return
        self._die(
            ConnectionReset("abort", f"connection {self.id} aborted by {self.local_node}"),
            "abort",
        )
        self._send_rst()

    @property
    def closed(self) -> bool:
        """Whether this side has closed, aborted, or the connection was reset."""
        return self._closed or self._error is not None

    @property
    def error(self) -> ConnectionReset | None:
        """What ended the connection, if it was reset or timed out."""
        return self._error

    def stats(self) -> dict[str, Any]:
        """Counters of the sending direction: segments, retransmissions, timeouts, RTT, window."""
        flow = self._out
        return {
            "bytes_sent": flow.written,
            "segments": flow.segments,
            "retransmissions": flow.retransmits,
            "timeouts": flow.timeouts,
            "srtt": flow.srtt,
            "rto": flow.rto,
            "cwnd": flow.cwnd,
            "ssthresh": flow.ssthresh if flow.ssthresh < (1 << 40) else None,
            "mss": flow.mss,
        }

    # --- life and death ----------------------------------------------------------------------

    def _die(self, error: ConnectionReset, how: str) -> None:
        """This end is gone: record it, fail what its processes wait on, tell the network."""
        if self._error is not None:
            return
        self._error = error
        self._net.recorder.emit("tcp.close", conn=self.id, by=self.local_node, how=how)
        self._out.fail_waiters(error, sender_side=True)
        self._in.fail_waiters(error, sender_side=False)
        peer = self._peer
        if peer is not None:
            # Segments that reach this end from now on are answered with RST.
            peer._out.peer_gone = True
        self._net._maybe_forget(self)

    def _send_rst(self) -> None:
        """Send a RST to the peer now; it dies when the RST arrives (if it is not lost)."""
        peer = self._peer
        if peer is None or peer._error is not None:
            return
        net = self._net
        route = net.routing.route(self.local_node, self.remote_node)
        if net.recorder.segments:
            net.recorder.emit(
                "tcp.segment",
                conn=self.id,
                src=self.local_node,
                dst=self.remote_node,
                flags="R",
                seq=self._out.seq_of(self._out.nxt),
                ack=0,
                length=0,
            )
        if route is None:
            return
        arrive = transit(route.hops, net.env._now, HEADER_BYTES)
        if arrive is None:
            return
        message = f"connection {self.id} reset by {self.local_node}"
        call_at(net.env, arrive, lambda _ev: peer._die(ConnectionReset("reset", message), "reset"))

    def _alive(self) -> bool:
        return self._error is None

    def _finished(self) -> bool:
        """Whether this side is done: reset, or its FIN acknowledged and the peer's FIN in."""
        if self._error is not None:
            return True
        out = self._out
        fin = out.fin_seg
        if fin is None or fin.ack is None:
            return False
        inbound = self._in
        return inbound.fin_seg is not None and inbound.fin_seg.arrive is not None


class Listener:
    """A listening socket: ``accept()`` hands out connections whose handshake completed.

    Created by :meth:`Network.listen`. The backlog is unlimited.
    """

    def __init__(self, net: Network, node: str, port: int) -> None:
        self._net = net
        #: The node and port it listens on.
        self.node = node
        self.port = port
        #: True once closed (by the application or because the node crashed).
        self.closed = False
        self._queue: deque[Connection] = deque()
        self._waiters: deque[Event] = deque()

    def __repr__(self) -> str:
        return f"<Listener {self.node}:{self.port}{' closed' if self.closed else ''}>"

    def accept(self) -> Event:
        """An event giving the next established :class:`Connection`.

        Fails with :class:`ListenerClosed` if the listener is (or gets) closed.
        """
        env = self._net.env
        ev = Event(env)
        if self.closed:
            fail_at(env, ev, env._now, ListenerClosed(f"listener {self.node}:{self.port} closed"))
        elif self._queue:
            fire_at(env, ev, env._now, self._queue.popleft())
        else:
            self._waiters.append(ev)
        return ev

    def close(self) -> None:
        """Stop listening: new SYNs are refused, waiting ``accept()`` calls fail, and connections
        not yet accepted are reset."""
        if self.closed:
            return
        self.closed = True
        self._net._listeners.pop((self.node, self.port), None)
        env = self._net.env
        while self._waiters:
            ev = self._waiters.popleft()
            if ev._value is PENDING:
                fail_at(
                    env, ev, env._now, ListenerClosed(f"listener {self.node}:{self.port} closed")
                )
        while self._queue:
            self._queue.popleft().abort()

    def _enqueue(self, conn: Connection) -> None:
        env = self._net.env
        while self._waiters:
            ev = self._waiters.popleft()
            # Skip waiters nobody listens to any more (their process was interrupted).
            if ev._value is PENDING and ev.callbacks:
                fire_at(env, ev, env._now, conn)
                return
        self._queue.append(conn)


# --------------------------------------------------------------------------------------------
# Opening a connection
# --------------------------------------------------------------------------------------------


class Handshake:
    """The client's side of opening a connection: SYN retries, refusal, timeout, success.

    Created by :meth:`Network.connect`; ``event`` is what the caller yields.
    """

    def __init__(
        self,
        net: Network,
        conn_id: int,
        client: str,
        server: str,
        cport: int,
        sport: int,
        timeout: float,
        event: Event,
    ) -> None:
        cfg = net.tcp_config
        self.net = net
        self.id = conn_id
        self.client = client
        self.server = server
        self.cport = cport
        self.sport = sport
        self.event = event
        self.t0 = net.env._now
        # Linux gives up after syn_retries retransmissions, the last one waited for in full.
        self.give_up = self.t0 + min(timeout, cfg.initial_rto * (2 ** (cfg.syn_retries + 1) - 1))
        self.rto = cfg.initial_rto
        self.next_try = self.t0
        self.tries = 0
        self.done = False
        self.client_isn = net.next_isn()
        self.server_isn = net.next_isn()
        self.server_end: Connection | None = None
        self.client_end: Connection | None = None
        #: When the SYN-ACK that completes the handshake reaches the client, once known.
        self.synack_at: float | None = None

    def start(self) -> None:
        self._send_syn(self.net.env._now)

    def _send_syn(self, now: float) -> None:
        net = self.net
        self.tries += 1
        if net.recorder.segments:
            if self.tries > 1:
                net.recorder.emit(
                    "tcp.retransmit",
                    conn=self.id,
                    src=self.client,
                    dst=self.server,
                    seq=self.client_isn,
                    length=0,
                )
            net.recorder.emit(
                "tcp.segment",
                conn=self.id,
                src=self.client,
                dst=self.server,
                flags="S",
                seq=self.client_isn,
                ack=0,
                length=0,
            )
        route = net.routing.route(self.client, self.server)
        if route is not None:
            arrive = transit(route.hops, now, HEADER_BYTES)
            if arrive is not None:
                syn_sent = now
                call_at(net.env, arrive, lambda _ev: self._syn_arrives(syn_sent))
        self.next_try = now + self.rto
        self.rto *= 2  # RFC 6298 5.5: back off
        call_at(net.env, min(self.next_try, self.give_up), self._on_timer)

    def _on_timer(self, _ev: Event) -> None:
        now = self.net.env._now
        if self.synack_at is not None:
            # The SYN-ACK is on its way but the round trip is longer than the SYN timeout: the
            # client sends its SYN again (the server ignores the duplicate).
            if self.synack_at > now + _EPS and now + _EPS >= self.next_try:
                self._send_syn(now)
            return
        if self.done:
            return
        if now + _EPS >= self.give_up:
            self._fail(
                "timeout",
                f"connect to {self.server} port {self.sport} timed out after "
                f"{now - self.t0:g} s ({self.tries} SYN{'s' if self.tries > 1 else ''}, no answer)",
            )
        elif now + _EPS >= self.next_try:
            self._send_syn(now)

    def _fail(self, reason: str, message: str) -> None:
        self.done = True
        net = self.net
        net._handshakes.discard(self)
        net.recorder.emit("tcp.fail", conn=self.id, reason=reason)
        env = net.env
        fail_at(env, self.event, env._now, ConnectError(reason, message))

    def _syn_arrives(self, syn_sent: float) -> None:
        """A SYN reached the server node: answer SYN-ACK, or RST if nothing listens."""
        if self.done:
            return
        net = self.net
        env = net.env
        now = env._now
        if self.server in net.routing.down_nodes:
            return  # it crashed while the SYN was on its way
        back = net.routing.route(self.server, self.client)
        listener = net._listeners.get((self.server, self.sport))
        if listener is None or (self.server, self.sport) in net._services_down:
            # RFC 9293 3.5.2: a SYN to a closed port gets RST; the client reports "refused".
            if net.recorder.segments:
                net.recorder.emit(
                    "tcp.segment",
                    conn=self.id,
                    src=self.server,
                    dst=self.client,
                    flags="RA",
                    seq=0,
                    ack=(self.client_isn + 1) & _SEQ_MASK,
                    length=0,
                )
            if back is not None:
                arrive = transit(back.hops, now, HEADER_BYTES)
                if arrive is not None and arrive <= self.give_up:
                    call_at(env, arrive, self._refused)
            return
        if net.recorder.segments:
            net.recorder.emit(
                "tcp.segment",
                conn=self.id,
                src=self.server,
                dst=self.client,
                flags="SA",
                seq=self.server_isn,
                ack=(self.client_isn + 1) & _SEQ_MASK,
                length=0,
            )
        if back is None:
            return
        arrive = transit(back.hops, now, HEADER_BYTES)
        if arrive is None or arrive > self.give_up:
            return  # lost: the client will send its SYN again
        # The handshake will complete: build both ends now, wake the client at the SYN-ACK's
        # arrival and the server's accept() at the arrival of the client's ACK.
        self.done = True
        self.synack_at = arrive
        net._handshakes.discard(self)
        acked = arrive + back.ack_delay
        client_end, server_end = net._open_connection(self, back, syn_sent, now, arrive, acked)
        self.client_end = client_end
        self.server_end = server_end
        self.event.callbacks.insert(0, self._established)
        fire_at(env, self.event, arrive, client_end)
        call_at(env, acked, lambda _ev: self._accepted(listener))

    def _established(self, _ev: Event) -> None:
        net = self.net
        client_end = self.client_end
        assert client_end is not None
        if self.tries == 1:
            # RFC 6298 2.2: the handshake gives the first RTT measurement.
            client_end._out._rtt_sample(net.env._now - self.t0)
        else:
            # RFC 6298 5.7: a SYN timed out, so no sample (Karn); start data with RTO 3 s.
            client_end._out.rto = max(client_end._out.rto, 3.0)
        net.recorder.emit("tcp.established", conn=self.id)
        if net.recorder.segments:
            net.recorder.emit(
                "tcp.segment",
                conn=self.id,
                src=self.client,
                dst=self.server,
                flags="A",
                seq=(self.client_isn + 1) & _SEQ_MASK,
                ack=(self.server_isn + 1) & _SEQ_MASK,
                length=0,
            )

    def _accepted(self, listener: Listener) -> None:
        server_end = self.server_end
        assert server_end is not None
        if server_end._error is not None:
            return
        if listener.closed or (self.server, self.sport) in self.net._services_down:
            server_end._die(
                ConnectionReset("reset", f"listener {self.server}:{self.sport} went away"),
                "reset",
            )
            server_end._send_rst()
            return
        listener._enqueue(server_end)

    def _refused(self, _ev: Event) -> None:
        if self.done:
            return
        self._fail("refused", f"connection refused by {self.server} port {self.sport}")

    def cancel(self, message: str) -> None:
        """The client's node crashed while connecting: the attempt just ends."""
        if self.done:
            return
        self._fail("unreachable", message)
