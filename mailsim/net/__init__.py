"""The simulated Internet on SimPy: topology, routing, faults, TCP and DNS.

Build a :class:`Topology`, bring it to life as a :class:`Network` in a SimPy environment, then open
connections from SimPy processes::

    net = Network(env, topology, recorder, streams)
    listener = net.listen("usa-mail", 25)
    conn = yield net.connect("india-mail", "usa-mail", 25)

:class:`Faults` schedules link, node and service failures (fixed or random), :class:`DnsServer`
and :class:`Resolver` answer MX and A queries over the same network. Importing this package is
cheap; networkx loads when a topology is built.
"""

from __future__ import annotations

from mailsim.net.dns import DnsAnswer, DnsDatabase, DnsError, DnsServer, MxHost, Resolver, Zone
from mailsim.net.faults import Faults
from mailsim.net.network import Network
from mailsim.net.tcp import (
    ConnectError,
    Connection,
    ConnectionReset,
    Listener,
    ListenerClosed,
    NetError,
    SocketTimeout,
    TcpConfig,
)
from mailsim.net.topology import (
    DOCUMENTATION_RANGES,
    NODE_KINDS,
    Link,
    Node,
    Topology,
    TopologyError,
)

__all__ = [
    "DOCUMENTATION_RANGES",
    "NODE_KINDS",
    "ConnectError",
    "Connection",
    "ConnectionReset",
    "DnsAnswer",
    "DnsDatabase",
    "DnsError",
    "DnsServer",
    "Faults",
    "Link",
    "Listener",
    "ListenerClosed",
    "MxHost",
    "NetError",
    "Network",
    "Node",
    "Resolver",
    "SocketTimeout",
    "TcpConfig",
    "Topology",
    "TopologyError",
    "Zone",
]
