"""The static description of the simulated Internet: nodes, links and their addresses.

A :class:`Topology` is a networkx graph whose nodes are machines (hosts, routers, mail servers,
DNS servers, each placed at a *site* such as India or USA so plots can group them) and whose edges
are point-to-point links (one-way latency, bandwidth, loss rate, jitter, MTU; the same in both
directions). It holds no run-time state: whether a link is up, how busy its transmit queues are
and which routes are in use belong to :class:`mailsim.net.network.Network`, so one topology can be
run many times (a sweep, a determinism test) without leaking state between runs.

Addresses are synthetic, from the three documentation ranges of RFC 5737 only: each site gets
one range in order of first appearance (192.0.2.0/24, then 198.51.100.0/24, then 203.0.113.0/24,
then round again), and its nodes are numbered .1, .2, ... in the order they were added. A node may
also be given an address of its own from those ranges.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import networkx

#: The kinds of node a topology knows.
NODE_KINDS: tuple[str, ...] = ("host", "router", "mailserver", "dns")

#: The address ranges reserved for documentation (RFC 5737), the only ones mailsim hands out.
DOCUMENTATION_RANGES: tuple[str, ...] = ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")

_NETWORKS = tuple(ipaddress.IPv4Network(cidr) for cidr in DOCUMENTATION_RANGES)

#: The smallest MTU an IPv4 link may have (RFC 791: every host must accept 68-octet datagrams).
MIN_MTU = 68

#: Default link settings, the same as a scenario's ``links:`` defaults.
DEFAULT_LATENCY = 0.001
DEFAULT_BANDWIDTH = 100e6
DEFAULT_MTU = 1500


class TopologyError(ValueError):
    """A topology was described wrongly (unknown node, bad link value, address clash)."""


@dataclass(slots=True)
class Node:
    """One machine of the simulated Internet.

    Attributes:
        name: unique name, like ``india-mail``.
        kind: one of :data:`NODE_KINDS` (default ``host``).
        site: a place name used to group nodes in figures and to pick an address range
            (default ``""``, a site of its own).
        ip: its IPv4 address; None until :meth:`Topology.assign_addresses` picks one.
    """

    name: str
    kind: str = "host"
    site: str = ""
    ip: str | None = None


@dataclass(slots=True)
class Link:
    """A full-duplex point-to-point link, the same in both directions.

    Attributes:
        a, b: the nodes it joins.
        latency: one-way propagation delay in seconds (default 1 ms).
        bandwidth: bits per second in each direction (default 100 Mbit/s).
        loss: probability that a segment crossing it is lost (default 0).
        jitter: up to this many seconds of uniformly random extra delay per segment (default 0).
        mtu: the largest IP packet in octets (default 1500, as Ethernet); TCP's MSS is MTU - 40.
    """

    a: str
    b: str
    latency: float = DEFAULT_LATENCY
    bandwidth: float = DEFAULT_BANDWIDTH
    loss: float = 0.0
    jitter: float = 0.0
    mtu: int = DEFAULT_MTU

    @property
    def key(self) -> tuple[str, str]:
        """The unordered pair of ends as a sorted tuple (how routes and faults name a link)."""
        return link_key(self.a, self.b)


def link_key(a: str, b: str) -> tuple[str, str]:
    """The key of the link between ``a`` and ``b``, whichever way round they are given."""
    return (a, b) if a <= b else (b, a)


class Topology:
    """Nodes and links as a networkx graph, with synthetic IPv4 addresses.

    Node attribute ``node`` holds the :class:`Node`; edge attribute ``link`` holds the
    :class:`Link` and ``latency`` its latency (the routing weight).
    """

    def __init__(self) -> None:
        import networkx as nx

        #: The undirected graph; iterate it in insertion order for deterministic results.
        self.graph: networkx.Graph[str] = nx.Graph()
        self._by_ip: dict[str, str] = {}

    # --- building ------------------------------------------------------------------------------

    def add_node(
        self, name: str, kind: str = "host", site: str = "", ip: str | None = None
    ) -> Node:
        """Add a machine; ``ip`` None means one is picked from its site's range later.

        Raises:
            TopologyError: the name is taken, the kind unknown, or the address not usable.
        """
        if not name or not isinstance(name, str):
            raise TopologyError(f"a node needs a non-empty name, got {name!r}")
        if name in self.graph:
            raise TopologyError(f"node {name!r} is defined twice")
        if kind not in NODE_KINDS:
            raise TopologyError(
                f"node {name!r}: kind must be one of {', '.join(NODE_KINDS)}, got {kind!r}"
            )
        node = Node(name, kind, site or "", None)
        self.graph.add_node(name, node=node)
        if ip is not None:
            try:
                self.set_ip(name, ip)
            except TopologyError:
                self.graph.remove_node(name)
                raise
        return node

    def add_link(
        self,
        a: str,
        b: str,
        latency: float = DEFAULT_LATENCY,
        bandwidth: float = DEFAULT_BANDWIDTH,
        loss: float = 0.0,
        jitter: float = 0.0,
        mtu: int = DEFAULT_MTU,
    ) -> Link:
        """Join ``a`` and ``b`` with a link; see :class:`Link` for the meaning and defaults.

        Raises:
            TopologyError: an end is unknown, the pair is already linked, or a value is wrong.
        """
        where = f"link {a}-{b}"
        for end in (a, b):
            if end not in self.graph:
                raise TopologyError(f"{where}: no node called {end!r}; add_node() it first")
        if a == b:
            raise TopologyError(f"{where}: a link needs two different nodes")
        if self.graph.has_edge(a, b):
            raise TopologyError(f"{where}: {a} and {b} are already linked")
        if not latency >= 0.0:
            raise TopologyError(f"{where}: latency must be >= 0 seconds, got {latency!r}")
        if not bandwidth > 0.0:
            raise TopologyError(f"{where}: bandwidth must be > 0 bit/s, got {bandwidth!r}")
        if not 0.0 <= loss < 1.0:
            raise TopologyError(f"{where}: loss must be a probability in [0, 1), got {loss!r}")
        if not jitter >= 0.0:
            raise TopologyError(f"{where}: jitter must be >= 0 seconds, got {jitter!r}")
        if not isinstance(mtu, int) or mtu < MIN_MTU:
            raise TopologyError(f"{where}: mtu must be an integer >= {MIN_MTU}, got {mtu!r}")
        link = Link(a, b, float(latency), float(bandwidth), float(loss), float(jitter), mtu)
        self.graph.add_edge(a, b, link=link, latency=link.latency)
        return link

    def set_ip(self, name: str, ip: str) -> None:
        """Give node ``name`` the address ``ip`` (from the RFC 5737 ranges, not used elsewhere)."""
        node = self.node(name)
        try:
            address = ipaddress.IPv4Address(ip)
        except ValueError:
            raise TopologyError(f"node {name!r}: {ip!r} is not an IPv4 address") from None
        if not any(address in net for net in _NETWORKS):
            raise TopologyError(
                f"node {name!r}: address {ip} is not in the documentation ranges "
                f"{', '.join(DOCUMENTATION_RANGES)} (RFC 5737), the only ones mailsim uses"
            )
        text = str(address)
        if text.endswith((".0", ".255")):
            raise TopologyError(f"node {name!r}: {text} is a network or broadcast address")
        owner = self._by_ip.get(text)
        if owner is not None and owner != name:
            raise TopologyError(f"node {name!r}: address {text} is already {owner!r}'s")
        if node.ip is not None:
            self._by_ip.pop(node.ip, None)
        node.ip = text
        self._by_ip[text] = name

    def assign_addresses(self) -> None:
        """Give every node without an address the next free one of its site's range.

        Sites take the ranges of :data:`DOCUMENTATION_RANGES` in order of first appearance (a
        fourth site shares the first range, and so on), hosts are numbered from .1 up.
        """
        sites = self.sites()
        next_host = [1] * len(_NETWORKS)
        for node in self.nodes:
            if node.ip is not None:
                continue
            index = sites.index(node.site) % len(_NETWORKS)
            network = _NETWORKS[index]
            while True:
                if next_host[index] > 254:
                    raise TopologyError(
                        f"node {node.name!r}: no free address left in {network} for site "
                        f"{node.site!r}; give some nodes an ip of their own"
                    )
                candidate = str(network.network_address + next_host[index])
                next_host[index] += 1
                if candidate not in self._by_ip:
                    break
            node.ip = candidate
            self._by_ip[candidate] = node.name

    # --- reading -------------------------------------------------------------------------------

    def node(self, name: str) -> Node:
        """The node called ``name``."""
        try:
            node: Node = self.graph.nodes[name]["node"]
        except KeyError:
            raise TopologyError(f"no node called {name!r}") from None
        return node

    def link(self, a: str, b: str) -> Link:
        """The link between ``a`` and ``b`` (either order)."""
        try:
            link: Link = self.graph.edges[a, b]["link"]
        except KeyError:
            raise TopologyError(f"no link between {a!r} and {b!r}") from None
        return link

    def has_link(self, a: str, b: str) -> bool:
        """Whether ``a`` and ``b`` are joined by a link."""
        return bool(self.graph.has_edge(a, b))

    @property
    def nodes(self) -> list[Node]:
        """Every node, in the order they were added."""
        return [data["node"] for _, data in self.graph.nodes(data=True)]

    @property
    def links(self) -> list[Link]:
        """Every link, in networkx edge order (deterministic for a given build order)."""
        return [data["link"] for _, _, data in self.graph.edges(data=True)]

    def sites(self) -> list[str]:
        """The sites in order of first appearance."""
        order: list[str] = []
        for node in self.nodes:
            if node.site not in order:
                order.append(node.site)
        return order

    def ip_of(self, name: str) -> str:
        """The address of node ``name`` (addresses are assigned on first need)."""
        node = self.node(name)
        if node.ip is None:
            self.assign_addresses()
        assert node.ip is not None
        return node.ip

    def node_of_ip(self, ip: str) -> str | None:
        """The name of the node with address ``ip``, or None."""
        if any(node.ip is None for node in self.nodes):
            self.assign_addresses()
        return self._by_ip.get(ip)

    def resolve(self, name_or_ip: str) -> str | None:
        """The node called ``name_or_ip`` or having that address; None if there is none."""
        if name_or_ip in self.graph:
            return name_or_ip
        return self.node_of_ip(name_or_ip)

    def describe(self) -> dict[str, Any]:
        """A plain-data view (nodes and links as dicts), handy in notebooks and for debugging."""
        self.assign_addresses()
        return {
            "nodes": [
                {"node": n.name, "kind": n.kind, "site": n.site, "ip": n.ip} for n in self.nodes
            ],
            "links": [
                {
                    "a": link.a,
                    "b": link.b,
                    "latency": link.latency,
                    "bandwidth": link.bandwidth,
                    "loss": link.loss,
                    "jitter": link.jitter,
                    "mtu": link.mtu,
                }
                for link in self.links
            ],
        }
