"""The running simulated Internet: link and node state, routes, faults, and the TCP entry points.

:class:`Network` brings a :class:`~mailsim.net.topology.Topology` to life in a SimPy environment.
It owns what changes during a run (which links and nodes are up, which services are stopped, the
transmit queues, the route cache, the live connections), writes the topology to the trace at t=0
(``net.node``, ``net.link``) so figures can be drawn from the trace alone, and is where SimPy
processes open connections (:meth:`Network.connect`, :meth:`Network.listen`). Upper layers learn
of crashes and restarts of their node through :meth:`Network.on_node_down` and
:meth:`Network.on_node_up`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from simpy.events import Event

from mailsim.net.routing import HEADER_BYTES, LinkDirection, Route, Routing, transit
from mailsim.net.schedule import call_at, fail_at
from mailsim.net.tcp import (
    ConnectError,
    Connection,
    ConnectionReset,
    Handshake,
    Listener,
    NetError,
    TcpConfig,
)
from mailsim.net.tcp_flow import _Flow
from mailsim.net.topology import Topology, link_key

if TYPE_CHECKING:
    from simpy import Environment

    from mailsim.rng import RandomStreams
    from mailsim.trace.recorder import Recorder

NodeHook = Callable[[str], None]
ServiceHook = Callable[[str, int], None]


class Network:
    """The simulated Internet of one run.

    Args:
        env: the SimPy environment.
        topology: nodes and links (addresses are assigned now if some are missing).
        recorder: where records go (default: a new ``Recorder`` on ``env.now``).
        streams: named random streams (default ``RandomStreams(0)``); the network draws from
            ``net/loss/<a>/<b>`` and ``net/jitter/<a>/<b>`` per link and ``net/tcp/isn``.
        tcp: TCP settings (default :class:`~mailsim.net.tcp.TcpConfig()`).
    """

    def __init__(
        self,
        env: Environment,
        topology: Topology,
        recorder: Recorder | None = None,
        streams: RandomStreams | None = None,
        *,
        tcp: TcpConfig | None = None,
    ) -> None:
        from mailsim.rng import RandomStreams
        from mailsim.trace.recorder import Recorder

        self.env = env
        self.topology = topology
        #: The trace.
        self.recorder: Recorder = recorder if recorder is not None else Recorder(lambda: env.now)
        #: The run's random streams.
        self.streams: RandomStreams = streams if streams is not None else RandomStreams(0)
        #: TCP settings shared by every connection.
        self.tcp_config: TcpConfig = tcp if tcp is not None else TcpConfig()
        topology.assign_addresses()
        directions: dict[tuple[str, str], LinkDirection] = {}
        for link in topology.links:
            a, b = link.key
            loss_rng = self.streams.get("net", "loss", a, b)
            jitter_rng = self.streams.get("net", "jitter", a, b)
            directions[(link.a, link.b)] = LinkDirection(link, link.a, link.b, loss_rng, jitter_rng)
            directions[(link.b, link.a)] = LinkDirection(link, link.b, link.a, loss_rng, jitter_rng)
        #: Routes over what is up, cached until something changes.
        self.routing = Routing(topology, directions)
        self._directions = directions
        self._listeners: dict[tuple[str, int], Listener] = {}
        self._services_down: set[tuple[str, int]] = set()
        self._connections: dict[int, tuple[Connection, Connection]] = {}
        self._handshakes: set[Handshake] = set()
        self._datagram_services: dict[tuple[str, int], object] = {}
        self._next_id = 1
        self._next_port: dict[str, int] = {}
        self._isn_rng = self.streams.get("net", "tcp", "isn")
        self._node_hooks: dict[str, dict[str, list[NodeHook]]] = {"down": {}, "up": {}}
        self._service_hooks: dict[str, dict[tuple[str, int], list[ServiceHook]]] = {
            "down": {},
            "up": {},
        }
        self._emit_topology()

    def _emit_topology(self) -> None:
        emit = self.recorder.emit
        for node in self.topology.nodes:
            emit("net.node", node=node.name, kind=node.kind, site=node.site, ip=node.ip)
        for link in self.topology.links:
            emit(
                "net.link",
                a=link.a,
                b=link.b,
                latency=link.latency,
                bandwidth=link.bandwidth,
                loss=link.loss,
                jitter=link.jitter,
                mtu=link.mtu,
            )

    # --- state -----------------------------------------------------------------------------

    def is_node_up(self, node: str) -> bool:
        """Whether ``node`` is running."""
        self.topology.node(node)
        return node not in self.routing.down_nodes

    def is_link_up(self, a: str, b: str) -> bool:
        """Whether the link between ``a`` and ``b`` is up (its ends may still be down)."""
        self.topology.link(a, b)
        return link_key(a, b) not in self.routing.down_links

    def is_service_up(self, node: str, port: int) -> bool:
        """Whether the service on ``port`` of ``node`` runs (node up, port not stopped)."""
        return self.is_node_up(node) and (node, port) not in self._services_down

    def route(self, src: str, dst: str) -> list[str] | None:
        """The nodes a packet from ``src`` to ``dst`` would cross now, or None if none."""
        route = self.routing.route(src, dst)
        return list(route.nodes) if route is not None else None

    def path_latency(self, src: str, dst: str) -> float | None:
        """The one-way propagation delay of the current route (no serialisation), or None."""
        route = self.routing.route(src, dst)
        return route.latency if route is not None else None

    def ip_of(self, node: str) -> str:
        """The address of ``node``."""
        return self.topology.ip_of(node)

    def connections(self) -> list[tuple[Connection, Connection]]:
        """The (client end, server end) pairs of connections not yet fully closed."""
        return list(self._connections.values())

    # --- changes -----------------------------------------------------------------------------

    def set_link_state(self, a: str, b: str, up: bool) -> None:
        """Take the link between ``a`` and ``b`` down or bring it back (records link.down/up).

        Segments and ACKs that would cross it after it fails are lost; routes are recomputed.
        Setting the state it already has does nothing.
        """
        self.topology.link(a, b)
        key = link_key(a, b)
        down = self.routing.down_links
        if up == (key not in down):
            return
        if up:
            down.discard(key)
            self.routing.invalidate()
            self.recorder.emit("link.up", a=key[0], b=key[1])
            return
        down.add(key)
        self.routing.invalidate()
        self.recorder.emit("link.down", a=key[0], b=key[1])
        now = self.env._now
        for client, server in list(self._connections.values()):
            client._out.on_failure(now, key, None)
            server._out.on_failure(now, key, None)

    def set_node_state(self, node: str, up: bool) -> None:
        """Crash ``node`` or restart it (records node.down/up, then calls the hooks).

        A crash kills the node's connections, listeners and pending connects (see the tcp module
        for what the peers see); packets to or through it are lost while it is down. After a
        restart nothing listens until the application listens again (typically from an
        :meth:`on_node_up` hook).
        """
        self.topology.node(node)
        down = self.routing.down_nodes
        if up == (node not in down):
            return
        if up:
            down.discard(node)
            self.routing.invalidate()
            self.recorder.emit("node.up", node=node)
            for hook in list(self._node_hooks["up"].get(node, ())):
                hook(node)
            return
        down.add(node)
        self.routing.invalidate()
        self.recorder.emit("node.down", node=node)
        now = self.env._now
        for client, server in list(self._connections.values()):
            for end in (client, server):
                if end.local_node == node and end._error is None:
                    end._die(ConnectionReset("crash", f"{node} crashed"), "reset")
        for client, server in list(self._connections.values()):
            client._out.on_failure(now, None, node)
            server._out.on_failure(now, None, node)
        for handshake in list(self._handshakes):
            if handshake.client == node:
                handshake.cancel(f"{node} crashed while connecting")
        for (where, _port), listener in list(self._listeners.items()):
            if where == node:
                listener.close()
        for hook in list(self._node_hooks["down"].get(node, ())):
            hook(node)

    def set_service_state(self, node: str, port: int, up: bool) -> None:
        """Stop or restart the service on ``port`` of ``node`` while the node stays up.

        While stopped, connection attempts are refused (RST) and its established connections are
        reset at once (RST to the peer), as when the daemon exits. The listener itself stays, so
        the service accepts again when restarted. Records service.down/up and calls the hooks.
        """
        self.topology.node(node)
        key = (node, port)
        if up == (key not in self._services_down):
            return
        if up:
            self._services_down.discard(key)
            self.recorder.emit("service.up", node=node, port=port)
            for service_hook in list(self._service_hooks["up"].get(key, ())):
                service_hook(node, port)
            return
        self._services_down.add(key)
        self.recorder.emit("service.down", node=node, port=port)
        for _client, server in list(self._connections.values()):
            if server.local_node == node and server.local_port == port and server._error is None:
                server._die(ConnectionReset("reset", f"service {node}:{port} stopped"), "reset")
                server._send_rst()
        for service_hook in list(self._service_hooks["down"].get(key, ())):
            service_hook(node, port)

    def on_node_down(self, node: str, callback: NodeHook) -> None:
        """Call ``callback(node)`` whenever ``node`` crashes (after its connections died)."""
        self.topology.node(node)
        self._node_hooks["down"].setdefault(node, []).append(callback)

    def on_node_up(self, node: str, callback: NodeHook) -> None:
        """Call ``callback(node)`` whenever ``node`` restarts."""
        self.topology.node(node)
        self._node_hooks["up"].setdefault(node, []).append(callback)

    def on_service_down(self, node: str, port: int, callback: ServiceHook) -> None:
        """Call ``callback(node, port)`` whenever that service is stopped."""
        self._service_hooks["down"].setdefault((node, port), []).append(callback)

    def on_service_up(self, node: str, port: int, callback: ServiceHook) -> None:
        """Call ``callback(node, port)`` whenever that service is started again."""
        self._service_hooks["up"].setdefault((node, port), []).append(callback)

    # --- TCP ---------------------------------------------------------------------------------

    def listen(self, node: str, port: int) -> Listener:
        """Listen on ``port`` of ``node``; ``yield listener.accept()`` gives connections.

        Raises:
            NetError: the node is down, the port is out of range or already listened on.
        """
        self.topology.node(node)
        _check_port(port)
        if node in self.routing.down_nodes:
            raise NetError(f"cannot listen on {node}:{port}: {node} is down")
        if (node, port) in self._listeners:
            raise NetError(f"{node}:{port} is already listening (address in use)")
        listener = Listener(self, node, port)
        self._listeners[(node, port)] = listener
        return listener

    @property
    def next_connection_id(self) -> int:
        """The id the next :meth:`connect` will give its connection (for records made before)."""
        return self._next_id

    def connect(self, src: str, dst: str, port: int, timeout: float | None = None) -> Event:
        """Open a TCP connection from node ``src`` to ``dst`` (a node name or IP) on ``port``.

        Returns an event giving the client's :class:`~mailsim.net.tcp.Connection` one round trip
        later, or failing with :class:`~mailsim.net.tcp.ConnectError` (``reason`` "refused",
        "timeout" or "unreachable").

        Args:
            timeout: seconds before giving up (default ``tcp.connect_timeout``, 30 s).
        """
        self.topology.node(src)
        _check_port(port)
        if timeout is None:
            timeout = self.tcp_config.connect_timeout
        env = self.env
        event = Event(env)
        server = self.topology.resolve(dst)
        conn_id = self._next_id
        self._next_id += 1
        cport = self._ephemeral_port(src)
        self.recorder.emit(
            "tcp.open",
            conn=conn_id,
            client=src,
            server=server if server is not None else str(dst),
            cport=cport,
            sport=port,
        )
        problem = None
        if server is None:
            problem = f"no node or address {dst!r} in the network"
        elif server == src:
            problem = f"{src} connecting to itself is not modelled"
        elif src in self.routing.down_nodes:
            problem = f"{src} is down"
        elif not self.routing.has_up_link(src):
            problem = f"{src} has no working link (no route to {server})"
        if problem is not None:
            self.recorder.emit("tcp.fail", conn=conn_id, reason="unreachable")
            fail_at(env, event, env._now, ConnectError("unreachable", problem))
            return event
        assert server is not None
        handshake = Handshake(self, conn_id, src, server, cport, port, timeout, event)
        self._handshakes.add(handshake)
        handshake.start()
        return event

    def _ephemeral_port(self, node: str) -> int:
        first = self.tcp_config.first_port
        port = self._next_port.get(node, first)
        self._next_port[node] = port + 1 if port < 65535 else first
        return port

    def next_isn(self) -> int:
        """An initial sequence number, from the stream ``net/tcp/isn``."""
        return self._isn_rng.getrandbits(32)

    def _open_connection(
        self,
        handshake: Handshake,
        back: Route,
        syn_sent: float,
        now: float,
        synack_arrives: float,
        ack_arrives: float,
    ) -> tuple[Connection, Connection]:
        """Build both ends of a connection whose handshake will complete."""
        hs = handshake
        client = Connection(self, hs.id, hs.client, hs.cport, hs.server, hs.sport)
        server = Connection(self, hs.id, hs.server, hs.sport, hs.client, hs.cport)
        forward = self.routing.route(hs.client, hs.server)
        mtu = min(back.mtu, forward.mtu) if forward is not None else back.mtu
        mss = mtu - HEADER_BYTES  # RFC 9293 3.7.1: MSS = MTU - 40 without options
        to_server = _Flow(self, hs.id, client, server, hs.client_isn, mss)
        to_client = _Flow(self, hs.id, server, client, hs.server_isn, mss)
        client._out = to_server
        client._in = to_client
        server._out = to_client
        server._in = to_server
        client._peer = server
        server._peer = client
        client.established_at = synack_arrives
        server.established_at = ack_arrives
        # The server times its SYN-ACK (sent now, ACKed when the client's ACK arrives).
        to_client._rtt_sample(ack_arrives - now)
        to_server.last_arrive = ack_arrives
        to_client.last_arrive = synack_arrives
        self._connections[hs.id] = (client, server)
        return client, server

    def _maybe_forget(self, end: Connection) -> None:
        pair = self._connections.get(end.id)
        if pair is not None and pair[0]._finished() and pair[1]._finished():
            del self._connections[end.id]

    # --- datagrams ---------------------------------------------------------------------------

    def bind_datagram(self, node: str, port: int, service: object) -> None:
        """Register ``service`` as what answers datagrams to ``port`` of ``node`` (e.g. DNS).

        Raises:
            NetError: something is already bound there.
        """
        self.topology.node(node)
        _check_port(port)
        if (node, port) in self._datagram_services:
            raise NetError(f"{node}:{port} already has a datagram service")
        self._datagram_services[(node, port)] = service

    def datagram_service(self, node: str, port: int) -> object | None:
        """What answers datagrams to ``port`` of ``node`` if it is running now, else None."""
        if node in self.routing.down_nodes or (node, port) in self._services_down:
            return None
        return self._datagram_services.get((node, port))

    def send_datagram(self, src: str, dst: str, octets: int) -> float | None:
        """Send a datagram of ``octets`` now: its arrival time at ``dst``, or None if lost.

        Like UDP: it queues and is serialised on each link like a segment, may be lost by link
        loss, and is lost if there is no route. Nothing is retransmitted.
        """
        route = self.routing.route(src, dst)
        if route is None:
            return None
        return transit(route.hops, self.env._now, octets)

    # --- trace helpers -----------------------------------------------------------------------

    def emit_at(self, t: float, guard: Callable[[], bool] | None, type: str, **fields: Any) -> None:
        """Record ``type`` at time ``t`` (now or later) if ``guard()`` still holds then."""

        def emit(_event: Event | None = None) -> None:
            if guard is None or guard():
                self.recorder.emit(type, **fields)

        if t <= self.env._now:
            emit()
        else:
            call_at(self.env, t, emit)


def _check_port(port: int) -> None:
    if not isinstance(port, int) or not 1 <= port <= 65535:
        raise NetError(f"a port is a whole number from 1 to 65535, got {port!r}")


__all__ = ["Network"]
