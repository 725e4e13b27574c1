"""The topology: addresses, validation, routing over what is up, and the t=0 records."""

from __future__ import annotations

import pytest
from net_fixtures import india_usa, make_net

from mailsim.net import Topology, TopologyError
from mailsim.net.topology import link_key


def test_each_site_gets_its_own_documentation_range_in_order_of_appearance() -> None:
    topology = india_usa(backup=True)
    topology.assign_addresses()
    ips = {node.name: node.ip for node in topology.nodes}
    assert ips == {
        "india-mail": "192.0.2.1",
        "india-router": "192.0.2.2",
        "usa-router": "198.51.100.1",
        "usa-mail": "198.51.100.2",
        "eu-router": "203.0.113.1",
    }
    assert topology.node_of_ip("198.51.100.2") == "usa-mail"
    assert topology.resolve("usa-mail") == "usa-mail"
    assert topology.resolve("203.0.113.1") == "eu-router"
    assert topology.resolve("10.0.0.1") is None


def test_explicit_address_is_kept_and_skipped_by_automatic_numbering() -> None:
    topology = Topology()
    topology.add_node("one", site="India")
    topology.add_node("two", site="India", ip="192.0.2.1")
    topology.assign_addresses()
    assert topology.ip_of("two") == "192.0.2.1"
    assert topology.ip_of("one") == "192.0.2.2"


def test_address_outside_documentation_ranges_is_rejected_with_a_clear_message() -> None:
    topology = Topology()
    with pytest.raises(TopologyError, match=r"not in the documentation ranges .*RFC 5737"):
        topology.add_node("x", ip="10.1.2.3")
    assert "x" not in topology.graph  # nothing half-added
    topology.add_node("y", ip="192.0.2.7")
    with pytest.raises(TopologyError, match="already 'y'"):
        topology.add_node("z", ip="192.0.2.7")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"latency": -1.0}, "latency must be >= 0"),
        ({"bandwidth": 0.0}, "bandwidth must be > 0"),
        ({"loss": 1.0}, r"loss must be a probability in \[0, 1\)"),
        ({"jitter": -0.1}, "jitter must be >= 0"),
        ({"mtu": 40}, "mtu must be an integer >= 68"),
    ],
)
def test_bad_link_values_are_rejected(kwargs: dict[str, float], message: str) -> None:
    topology = Topology()
    topology.add_node("a")
    topology.add_node("b")
    with pytest.raises(TopologyError, match=message):
        topology.add_link("a", "b", **kwargs)  # type: ignore[arg-type]


def test_unknown_node_kind_and_unknown_link_end_are_rejected() -> None:
    topology = Topology()
    with pytest.raises(TopologyError, match="kind must be one of host, router, mailserver, dns"):
        topology.add_node("a", kind="toaster")
    topology.add_node("a")
    with pytest.raises(TopologyError, match="no node called 'b'"):
        topology.add_link("a", "b")


def test_route_is_shortest_by_latency_and_follows_link_failures() -> None:
    # Direct long haul: 1 + 120 + 1 = 122 ms; via Europe: 1 + 80 + 90 + 1 = 172 ms.
    _, net, recorder = make_net(india_usa(backup=True))
    assert net.route("india-mail", "usa-mail") == [
        "india-mail",
        "india-router",
        "usa-router",
        "usa-mail",
    ]
    assert net.path_latency("india-mail", "usa-mail") == pytest.approx(0.122)
    net.set_link_state("india-router", "usa-router", up=False)
    assert net.route("india-mail", "usa-mail") == [
        "india-mail",
        "india-router",
        "eu-router",
        "usa-router",
        "usa-mail",
    ]
    assert net.path_latency("india-mail", "usa-mail") == pytest.approx(0.172)
    net.set_node_state("eu-router", up=False)
    assert net.route("india-mail", "usa-mail") is None
    net.set_link_state("usa-router", "india-router", up=True)
    assert net.path_latency("india-mail", "usa-mail") == pytest.approx(0.122)
    kinds = [r["type"] for r in recorder.records if r["type"].startswith(("link.", "node."))]
    assert kinds == ["link.down", "node.down", "link.up"]


def test_routes_are_cached_until_the_network_changes() -> None:
    _, net, _ = make_net(india_usa(backup=True))
    first = net.routing.route("india-mail", "usa-mail")
    assert net.routing.route("india-mail", "usa-mail") is first
    net.set_link_state("eu-router", "usa-router", up=False)  # not on the route, still a change
    assert net.routing.route("india-mail", "usa-mail") is not first


def test_topology_is_in_the_trace_at_time_zero() -> None:
    _, _, recorder = make_net(india_usa())
    nodes = [r for r in recorder.records if r["type"] == "net.node"]
    links = [r for r in recorder.records if r["type"] == "net.link"]
    assert [r["t"] for r in nodes + links] == [0.0] * 7
    assert nodes[0] == {
        "t": 0.0,
        "type": "net.node",
        "node": "india-mail",
        "kind": "mailserver",
        "site": "India",
        "ip": "192.0.2.1",
    }
    long_haul = next(r for r in links if link_key(r["a"], r["b"]) == ("india-router", "usa-router"))
    assert long_haul["latency"] == 0.120
    assert long_haul["bandwidth"] == 1e9
    assert long_haul["loss"] == 0.0
    assert long_haul["mtu"] == 1500


def test_paths_never_pass_through_hosts_or_dns_servers() -> None:
    # A DNS node 1 ms from both mail servers is a 2 ms "shortcut" between them, and so is a PC
    # with two network cards; neither forwards packets, so mail takes the 110 ms link.
    topology = Topology()
    topology.add_node("india-mail", kind="mailserver", site="India")
    topology.add_node("usa-mail", kind="mailserver", site="USA")
    topology.add_node("dns", kind="dns")
    topology.add_node("laptop", kind="host")
    topology.add_link("india-mail", "usa-mail", latency=0.110)
    for end in ("dns", "laptop"):
        topology.add_link(end, "india-mail", latency=0.001)
        topology.add_link(end, "usa-mail", latency=0.001)
    _, net, _ = make_net(topology)
    assert net.route("india-mail", "usa-mail") == ["india-mail", "usa-mail"]
    # End points are still reachable, and may be where a path starts.
    assert net.route("india-mail", "dns") == ["india-mail", "dns"]
    assert net.route("laptop", "usa-mail") == ["laptop", "usa-mail"]
    net.set_link_state("india-mail", "usa-mail", up=False)
    assert net.route("india-mail", "usa-mail") is None
