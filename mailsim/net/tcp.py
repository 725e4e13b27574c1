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
  The receiver ACKs every arrival at once (no delayed ACKs), an out-of-order one with a duplicate
  ACK (RFC 5681 4.2); the third duplicate ACK makes the sender resend the hole and halve its
  window once (fast retransmit and fast recovery, RFC 5681 3.2 and NewReno RFC 6582), and during
  the recovery every hole three later segments reported is resent and new data is clocked out
  by the duplicate ACKs, as a SACK sender does (RFC 2018, RFC 6675); see
  :mod:`mailsim.net.tcp_congestion`. Without three later segments (a loss at the end of a
  burst), or when a resend is lost too, the retransmission timeout recovers (RFC 6298:
  SRTT/RTTVAR, RTO min 1 s by default, doubling backoff, Karn's rule): ssthresh becomes half
  the flight size, cwnd one MSS (RFC 5681 3.1), and the sender resends the holes a window per
  round. Pure ACKs are not lost at random (a lost cumulative ACK is covered by the next one),
  and do not queue behind data.
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

Modules: this one holds the socket-like ends (:class:`Connection`, :class:`Listener`);
:mod:`~mailsim.net.tcp_flow` one direction of a connection (segments, arrivals, ACK times, the
receiver's view, failures, segment records); :mod:`~mailsim.net.tcp_congestion` the window and
timer rules; :mod:`~mailsim.net.tcp_handshake` opening a connection;
:mod:`~mailsim.net.tcp_config` the errors and :class:`TcpConfig`. Each imports only those after
it in that list.

Trace: ``tcp.open`` at ``connect()``; ``tcp.established`` when the client gets the SYN-ACK;
``tcp.fail`` with reason "refused", "timeout" or "unreachable"; one ``tcp.close`` per side when
that side ends: ``by`` its node, ``how`` "fin" (its application closed), "abort" (its application
aborted), "reset" (it received a RST, or its node crashed or its service stopped) or "timeout"
(retransmissions exhausted). With ``recorder.segments`` on, every segment is recorded at the time
its sender sends it (``tcp.segment``, data with ``payload`` as latin-1 text; pure ACKs, duplicate
ones included, at the time the receiver sends them; ``arrive`` when it reaches the other end,
left out if it is lost), resends (fast or after a timeout) also as
``tcp.retransmit``. Sequence numbers start from an initial sequence number per side drawn from
the stream ``net/tcp/isn``; SYN and FIN consume one each, so the records form a valid stream for
a pcap export.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from simpy.events import PENDING, Event

from mailsim.net.routing import HEADER_BYTES, transit
from mailsim.net.schedule import call_at, fail_at, fire_at
from mailsim.net.tcp_config import (
    ConnectError,
    ConnectionReset,
    ListenerClosed,
    NetError,
    SocketTimeout,
    TcpConfig,
)
from mailsim.net.tcp_flow import _Flow
from mailsim.net.tcp_handshake import Handshake

if TYPE_CHECKING:
    from mailsim.net.network import Network


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
            "fast_retransmits": flow.fast_retransmits,
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
        arrive = transit(route.hops, net.env._now, HEADER_BYTES) if route is not None else None
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
                **({} if arrive is None else {"arrive": arrive}),
            )
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


__all__ = [
    "ConnectError",
    "Connection",
    "ConnectionReset",
    "Handshake",
    "Listener",
    "ListenerClosed",
    "NetError",
    "SocketTimeout",
    "TcpConfig",
]
