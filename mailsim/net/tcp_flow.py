"""One direction of a simulated TCP connection: the sender's segments and the receiver's view.

A :class:`_Flow` keeps the segments one end sent until they are acknowledged and delivered, and
computes, arithmetically, when each one reaches the receiver and when its ACK gets back (see
:mod:`mailsim.net.tcp` for the theory of operation). It serves the receiving application's
``recv()`` and the sender's ``drain()``, takes back what a link or node failure destroyed, and
writes the ``tcp.segment`` records of a pcap. The window rules (slow start, congestion
avoidance, RTO, fast retransmit and recovery) are in :mod:`mailsim.net.tcp_congestion`.
"""

from __future__ import annotations

from bisect import bisect_left
from heapq import heappush
from typing import TYPE_CHECKING, Any

from simpy.events import NORMAL, PENDING, Event, Timeout

from mailsim.net.routing import HEADER_BYTES, Route, transit
from mailsim.net.schedule import call_at, fail_at, fire_at, is_scheduled, unschedule
from mailsim.net.tcp_config import ConnectionReset, NetError, SocketTimeout
from mailsim.net.tcp_congestion import _EPS, INF, _CongestionControl

if TYPE_CHECKING:
    from simpy import Environment

    from mailsim.net.network import Network
    from mailsim.net.tcp import Connection

_SEQ_MASK = 0xFFFFFFFF


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


class _Flow(_CongestionControl):
    """One direction of a connection: the sender's state and the receiver's view of the stream.

    Segment list pointers (indices into ``segs``), in the order ``ia <= ik <= ic``:
    ``ia`` first segment whose ACK the sender has not processed; ``ik`` first segment whose ACK
    time is unknown; ``ic`` first segment not yet contiguously received; ``ir`` first segment
    not yet handed to the receiving application.
    """

    __slots__ = (
        "base",
        "buf",
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
        "mss",
        "net",
        "nxt",
        "peer_gone",
        "retransmits",
        "route",
        "route_epoch",
        "routing",
        "rst_sent",
        "rtimer",
        "rtimer_at",
        "rwnd",
        "segments",
        "segs",
        "src",
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
        #: Fast recovery (RFC 6582): the index just past what was sent before it began (0: not
        #: in one), when it began, and SND.UNA then.
        self.fr_recover = 0
        self.fr_start = 0.0
        self.fr_una = 0
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
        self.fast_retransmits = 0

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
                    self.ia = self.ir = self.recover = self.fr_recover = 0
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
        if self.ik < len(segs):
            if self._rto_deadline() <= now + _EPS:
                if not self._on_rto(now):
                    return
                lookahead = False
                clock = [(segs[self.ia].start, now, self.cwnd)]
            else:
                self._fast_retransmit(now)
        if self.fr_recover:
            clock = self._sack_clock(una, now)
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
            if self.fr_recover:
                # Fast recovery holds cwnd at ssthresh (the pipe rules); the ACK that covers
                # all sent before it began ends it (RFC 6582 3.2 step 3).
                if j >= self.fr_recover:
                    self.fr_recover = 0
                    self.cwnd = self.ssthresh
            elif acked > 0:
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
        if route is None:
            if self.tracing:
                self._trace_segment(seg, now, retx, None)
            return
        a = transit(route.hops, now, seg.end - seg.start + HEADER_BYTES)
        if a is not None and not self.peer_gone:
            if a < self.last_arrive:
                a = self.last_arrive  # jitter must not reorder a connection's segments
            else:
                self.last_arrive = a
        if self.tracing:
            self._trace_segment(seg, now, retx, a)
        if a is None:
            return
        if self.peer_gone:
            self._answer_rst(a, route)
            return
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
        elif self.tracing and ic < n:
            # Out of order (a hole before it): the receiver repeats its cumulative ACK at once
            # (RFC 5681 4.2), the duplicate ACK Wireshark marks.
            self._trace_dupack(seg, a)

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
                arrive=arrive + route.ack_delay,
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
            if segs[self.ik].arrive is None or self.fr_recover:
                detected = self._next_detection()  # the third duplicate ACK of a hole
                if detected < t:
                    t = detected
        if self.ia < self.ik and (
            self.written > self.nxt
            or (self.fin_wanted and self.fin_seg is None)
            or self.rx < self.recover
            or self.fr_recover  # a partial ACK makes a recovery resend the next hole
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
        if self.fr_recover:
            self.fr_recover = max(1, self.fr_recover - m)
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

    def ack_seq(self) -> int:
        """The seq a pure ACK from this side carries now: SND.NXT, past a FIN already sent."""
        return (self.seq_of(self.nxt) + (1 if self.fin_seg is not None else 0)) & _SEQ_MASK

    def received_seq(self, now: float) -> int:
        """The receiver's cumulative ACK number for this flow as of ``now``.

        Counted from the first segment kept (every one forgotten was acknowledged by now), not
        from ``ir``: a delivery booked ahead (a resend that fills a hole later) has moved ``ir``
        past segments that have not all arrived yet.
        """
        segs = self.segs
        k = 0
        ic = self.ic
        while k < ic and segs[k].arrive <= now:  # type: ignore[operator]
            k += 1
        if k == 0:
            offset = segs[0].start if segs else self.nxt
            return self.seq_of(offset)
        last = segs[k - 1]
        return (self.seq_of(last.end) + (1 if last.fin else 0)) & _SEQ_MASK

    def _trace_segment(self, seg: _Seg, now: float, retx: bool, arrive: float | None) -> None:
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
        if arrive is not None:
            fields["arrive"] = arrive  # for the receiver's own capture (pcap/<node>.pcap)
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
            seq = back.ack_seq()
            recorder.emit(
                "tcp.segment",
                conn=conn,
                src=src,
                dst=dst,
                flags="A",
                seq=seq,
                ack=ack,
                length=0,
                arrive=t_ack,
            )

        if at <= self.env._now:
            send()
        else:
            call_at(self.env, at, send)

    def _trace_dupack(self, seg: _Seg, at: float) -> None:
        back = self.dst._out
        recorder = self.net.recorder
        conn, src, dst = self.id, self.dst.local_node, self.src.local_node

        def send(_event: Event | None = None) -> None:
            if seg.arrive != at or self.dst._error is not None:
                return  # a failure took the segment back, or the receiver is gone
            seq = back.ack_seq()
            ack = self.received_seq(self.env._now)
            route = seg.route
            fields: dict[str, Any] = {}
            if route is not None:
                fields["arrive"] = at + route.ack_delay
            recorder.emit(
                "tcp.segment",
                conn=conn,
                src=src,
                dst=dst,
                flags="A",
                seq=seq,
                ack=ack,
                length=0,
                **fields,
            )

        if at <= self.env._now:
            send()
        else:
            call_at(self.env, at, send)
