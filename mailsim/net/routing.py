"""Routes through the simulated Internet and the transmit queues they use.

Routing is shortest path by latency over the links and nodes that are up (like a link-state
protocol that has converged at once). Paths are computed with networkx's Dijkstra once per source
and cached until the network changes (a link or node goes down or comes back), never per packet.

A :class:`LinkDirection` is one direction of a full-duplex link with its FIFO transmit queue,
kept as bookkeeping rather than as a SimPy resource: ``busy_until`` is the time its last queued
octet will have been serialised, so a segment entering at ``t`` starts at ``max(t, busy_until)``.
:meth:`LinkDirection.carry` and :func:`transit` compute a packet's arrival arithmetically,
store-and-forward per hop, without a single SimPy event.
"""

from __future__ import annotations

import random
from itertools import pairwise
from typing import TYPE_CHECKING, Any

from mailsim.net.topology import Link, Topology, link_key

if TYPE_CHECKING:
    import networkx

#: Octets of IPv4 and TCP headers without options (RFC 791, RFC 9293): MSS = MTU - 40.
HEADER_BYTES = 40


class LinkDirection:
    """One direction of a link: its transmit queue and what a packet meets crossing it.

    Attributes:
        link: the static description.
        src, dst: the node that transmits and the node that receives.
        busy_until: the simulated time its transmit queue empties (FIFO bookkeeping).
    """

    __slots__ = (
        "bandwidth",
        "busy_until",
        "dst",
        "jitter",
        "jitter_rng",
        "latency",
        "link",
        "loss",
        "loss_rng",
        "src",
    )

    def __init__(
        self, link: Link, src: str, dst: str, loss_rng: random.Random, jitter_rng: random.Random
    ) -> None:
        self.link = link
        self.src = src
        self.dst = dst
        self.latency = link.latency
        self.bandwidth = link.bandwidth
        self.loss = link.loss
        self.jitter = link.jitter
        #: The link's loss stream (shared by both directions): one draw per packet crossing it.
        self.loss_rng = loss_rng
        #: The link's jitter stream, separate so turning jitter on does not change which
        #: packets are lost.
        self.jitter_rng = jitter_rng
        self.busy_until = 0.0


def transit(hops: tuple[LinkDirection, ...], t: float, octets: int) -> float | None:
    """When a packet of ``octets`` sent at ``t`` over ``hops`` arrives, or None if it is lost.

    Store-and-forward: on each hop the packet waits for the transmit queue (FIFO), is serialised
    at the link's bandwidth, then propagates for the latency plus up to ``jitter`` more. A loss
    is drawn per hop after serialisation (the link was busy sending it either way), and a lost
    packet occupies no later hop.
    """
    bits = octets * 8
    for hop in hops:
        busy = hop.busy_until
        start = busy if busy > t else t
        done = start + bits / hop.bandwidth
        hop.busy_until = done
        if hop.loss and hop.loss_rng.random() < hop.loss:
            return None
        t = done + hop.latency
        if hop.jitter:
            t += hop.jitter_rng.uniform(0.0, hop.jitter)
    return t


class Route:
    """A path between two nodes as the network found it, with what TCP needs to know of it.

    Attributes:
        nodes: the node names from source to destination.
        hops: the link directions crossed going there.
        back: the link directions crossed coming back (the same links, the other way).
        links: the keys of the links on it, for "does this failure touch me" tests.
        latency: the sum of the one-way latencies (no serialisation, no queueing).
        ack_delay: how long a 40-octet pure ACK takes back along it (latency plus serialisation;
            ACKs do not queue behind data: they are tiny, and this keeps them free of bookkeeping).
        mtu: the smallest MTU on it.
    """

    __slots__ = ("ack_delay", "back", "hops", "latency", "links", "mtu", "nodes")

    def __init__(self, nodes: list[str], hops: list[LinkDirection], back: list[LinkDirection]):
        self.nodes = tuple(nodes)
        self.hops = tuple(hops)
        self.back = tuple(back)
        self.links = frozenset(hop.link.key for hop in hops)
        self.latency = sum(hop.latency for hop in hops)
        self.ack_delay = sum(hop.latency + HEADER_BYTES * 8 / hop.bandwidth for hop in back)
        self.mtu = min((hop.link.mtu for hop in hops), default=65535)

    def crosses(self, link: tuple[str, str] | None = None, node: str | None = None) -> bool:
        """Whether the route uses ``link`` (a key) or passes through ``node``."""
        if link is not None and link in self.links:
            return True
        return node is not None and node in self.nodes

    def __repr__(self) -> str:
        return f"Route({' -> '.join(self.nodes)})"


#: Node kinds that pass packets on; hosts and DNS servers are end points only.
FORWARDING_KINDS = frozenset({"router", "mailserver"})


class Routing:
    """Shortest paths by latency over what is up, cached until :meth:`invalidate`.

    Args:
        topology: the static network.
        directions: every link direction, keyed by (transmitting node, receiving node).
    """

    def __init__(
        self, topology: Topology, directions: dict[tuple[str, str], LinkDirection]
    ) -> None:
        self._topology = topology
        self._directions = directions
        #: Keys of the links that are down.
        self.down_links: set[tuple[str, str]] = set()
        #: Names of the nodes that are down.
        self.down_nodes: set[str] = set()
        self._paths: dict[str, dict[str, list[str]]] = {}
        self._routes: dict[tuple[str, str], Route | None] = {}
        #: Increases at every change, so holders of a route can tell it may be stale.
        self.epoch = 0
        #: Nodes that never forward packets (hosts and DNS servers).
        self._end_points = frozenset(
            node.name for node in topology.nodes if node.kind not in FORWARDING_KINDS
        )

    def invalidate(self) -> None:
        """Forget every cached path; called whenever a link or node changes state."""
        self._paths.clear()
        self._routes.clear()
        self.epoch += 1

    def _view(self) -> networkx.Graph[str]:
        import networkx as nx

        down_nodes = self.down_nodes
        down_links = self.down_links
        graph = self._topology.graph
        if not down_nodes and not down_links:
            return graph
        return nx.subgraph_view(
            graph,
            filter_node=lambda n: n not in down_nodes,
            filter_edge=lambda u, v: link_key(u, v) not in down_links,
        )

    def path(self, src: str, dst: str) -> list[str] | None:
        """The node names of the shortest up path from ``src`` to ``dst``, or None."""
        if src in self.down_nodes or dst in self.down_nodes:
            return None
        paths = self._paths.get(src)
        if paths is None:
            import networkx as nx

            # Hosts and DNS servers are end points: a path may start or end at one but never
            # pass through it (a PC does not forward other people's packets). Dijkstra skips an
            # edge whose weight is None, so edges leaving an end point other than src are hidden.
            ends = self._end_points

            def weight(u: str, _v: str, data: dict[str, Any]) -> float | None:
                if u != src and u in ends:
                    return None
                latency: float = data["latency"]
                return latency

            paths = nx.single_source_dijkstra_path(self._view(), src, weight=weight)
            self._paths[src] = paths
        return paths.get(dst)

    def route(self, src: str, dst: str) -> Route | None:
        """The :class:`Route` from ``src`` to ``dst`` over what is up now, or None."""
        key = (src, dst)
        if key in self._routes:
            return self._routes[key]
        nodes = self.path(src, dst)
        route: Route | None = None
        if nodes is not None and len(nodes) > 1:
            pairs = list(pairwise(nodes))
            hops = [self._directions[(u, v)] for u, v in pairs]
            back = [self._directions[(v, u)] for u, v in reversed(pairs)]
            route = Route(nodes, hops, back)
        self._routes[key] = route
        return route

    def has_up_link(self, node: str) -> bool:
        """Whether ``node`` has at least one link that is up (whatever the far end's state).

        Without one a host cannot send at all (``connect()`` fails at once, with nothing on the
        wire, as ENETUNREACH does); with one it sends, even to a neighbour that is down, whose
        silence it learns only from unanswered SYNs.
        """
        graph = self._topology.graph
        return any(link_key(node, other) not in self.down_links for other in graph.neighbors(node))
