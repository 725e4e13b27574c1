"""Opening a simulated TCP connection: the client's SYN retries, refusal, timeout and success.

:class:`Handshake` is created by :meth:`mailsim.net.network.Network.connect`; when the SYN-ACK
will get back it has the network build both ends of the connection (RFC 9293 3.5).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from simpy.events import Event

from mailsim.net.routing import HEADER_BYTES, transit
from mailsim.net.schedule import call_at, fail_at, fire_at
from mailsim.net.tcp_config import ConnectError, ConnectionReset

if TYPE_CHECKING:
    from mailsim.net.network import Network
    from mailsim.net.tcp import Connection, Listener

_SEQ_MASK = 0xFFFFFFFF
#: Tolerance when comparing a time computed as ``now + delay`` with the time it was aimed at.
_EPS = 1e-9


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
        if self.tries > 1 and net.recorder.segments:
            net.recorder.emit(
                "tcp.retransmit",
                conn=self.id,
                src=self.client,
                dst=self.server,
                seq=self.client_isn,
                length=0,
            )
        route = net.routing.route(self.client, self.server)
        arrive = transit(route.hops, now, HEADER_BYTES) if route is not None else None
        if net.recorder.segments:
            net.recorder.emit(
                "tcp.segment",
                conn=self.id,
                src=self.client,
                dst=self.server,
                flags="S",
                seq=self.client_isn,
                ack=0,
                length=0,
                **_arrival(arrive),
            )
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
        arrive = transit(back.hops, now, HEADER_BYTES) if back is not None else None
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
                    **_arrival(arrive),
                )
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
                **_arrival(arrive),
            )
        if back is None or arrive is None or arrive > self.give_up:
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
                **_arrival(self.server_end.established_at if self.server_end else None),
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


def _arrival(arrive: float | None) -> dict[str, float]:
    """The optional ``arrive`` field of a ``tcp.segment`` record: when it reaches its
    destination (for that node's own capture), left out for a packet that is lost."""
    return {} if arrive is None else {"arrive": arrive}
