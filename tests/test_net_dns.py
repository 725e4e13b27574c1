"""DNS over the simulated network: MX answers, the implicit MX, caching, NXDOMAIN versus timeout."""

from __future__ import annotations

from typing import Any

import pytest
from net_fixtures import Proc, india_usa, make_net, records, run

from mailsim.net import DnsDatabase, DnsError, DnsServer, MxHost, Network, Resolver, Zone


def world(seed: int = 1) -> tuple[Any, Network, Any, DnsDatabase]:
    """India/USA plus a DNS server 5 ms behind usa-router.

    A query from india-mail travels 1 + 120 + 5 = 126 ms (serialisation at 1 Gbit/s is below
    a microsecond), so a query and its reply take 252 ms.
    """
    topology = india_usa()
    topology.add_node("dns", "dns", "USA")
    topology.add_link("usa-router", "dns", 0.005, 1e9)
    env, net, recorder = make_net(topology, seed=seed)
    usa_ip = net.ip_of("usa-mail")
    database = DnsDatabase(
        [
            Zone("usa.com", mx=[(10, "mail.usa.com")], a={"mail.usa.com": usa_ip}, ttl=300),
            Zone("implicit.com", a={"implicit.com": "203.0.113.9"}),
            Zone(
                "two.com",
                mx=[(10, "a.two.com"), (10, "b.two.com"), (20, "c.two.com")],
                a={"a.two.com": "192.0.2.10", "b.two.com": "192.0.2.11", "c.two.com": "192.0.2.12"},
            ),
            Zone("empty.com"),
        ],
        negative_ttl=60,
    )
    DnsServer(net, "dns", database)
    return env, net, recorder, database


def resolve(net: Network, resolver: Resolver, domain: str, log: list[Any]) -> Proc:
    try:
        answer = yield net.env.process(resolver.resolve_mx(domain))
        log.append((net.env.now, answer))
    except DnsError as error:
        log.append((net.env.now, error))


def test_mx_answer_with_its_address_takes_one_round_trip() -> None:
    env, net, recorder, _ = world()
    resolver = Resolver(net, "india-mail", "dns")
    log: list[Any] = []
    run(env, resolve(net, resolver, "usa.com", log))
    t, answer = log[0]
    # The server sends mail.usa.com's address in the additional section: no second query.
    assert answer == [MxHost(10, "mail.usa.com", net.ip_of("usa-mail"))]
    assert t == pytest.approx(0.252, abs=1e-5)
    query, address = records(recorder, "dns.query")
    assert (query["name"], query["qtype"], query["rcode"], query["answer"]) == (
        "usa.com",
        "MX",
        "NOERROR",
        [[10, "mail.usa.com"]],
    )
    assert query["cached"] is False
    assert (address["name"], address["qtype"], address["cached"]) == ("mail.usa.com", "A", True)


def test_answers_are_cached_for_their_ttl() -> None:
    # usa.com's records have TTL 300 s: asked again at 100 s the answer comes from the cache at
    # once; at 400 s it has expired and costs another round trip (252 ms).
    env, net, recorder, _ = world()
    resolver = Resolver(net, "india-mail", "dns")
    log: list[Any] = []

    def later() -> Proc:
        yield from resolve(net, resolver, "usa.com", log)
        yield env.timeout(100.0 - env.now)
        yield from resolve(net, resolver, "usa.com", log)
        yield env.timeout(400.0 - env.now)
        yield from resolve(net, resolver, "usa.com", log)

    run(env, later())
    assert [t for t, _ in log] == [
        pytest.approx(0.252, abs=1e-5),
        100.0,
        pytest.approx(400.252, abs=1e-5),
    ]
    mx_queries = [r for r in records(recorder, "dns.query") if r["qtype"] == "MX"]
    assert [r["cached"] for r in mx_queries] == [False, True, False]
    # The exchanger's address always came from the cache, filled by the additional section.
    assert [r["cached"] for r in records(recorder, "dns.query", qtype="A")] == [True] * 3


def test_nxdomain_is_permanent_and_cached_negatively() -> None:
    env, net, recorder, _ = world()
    resolver = Resolver(net, "india-mail", "dns")
    log: list[Any] = []

    def twice() -> Proc:
        yield from resolve(net, resolver, "nosuch.com", log)
        yield from resolve(net, resolver, "nosuch.com", log)

    run(env, twice())
    (t1, first), (t2, _) = log
    assert isinstance(first, DnsError) and first.permanent and first.rcode == "NXDOMAIN"
    assert "nosuch.com does not exist" in str(first)
    assert t1 == pytest.approx(0.252, abs=1e-5)
    assert t2 == t1  # within the negative TTL (60 s): from the cache
    assert [r["cached"] for r in records(recorder, "dns.query", rcode="NXDOMAIN")] == [False, True]


def test_dns_server_down_is_a_temporary_timeout_after_three_tries_of_five_seconds() -> None:
    env, net, recorder, _ = world()
    net.set_node_state("dns", up=False)
    resolver = Resolver(net, "india-mail", "dns")
    log: list[Any] = []
    run(env, resolve(net, resolver, "usa.com", log))
    t, error = log[0]
    assert isinstance(error, DnsError)
    assert (error.rcode, error.permanent) == ("TIMEOUT", False)
    assert t == pytest.approx(15.0)  # timeout 5 s, 1 + 2 retries
    (query,) = records(recorder, "dns.query")
    assert (query["rcode"], query["answer"]) == ("TIMEOUT", [])


def test_domain_without_mx_but_with_an_address_is_its_own_exchanger() -> None:
    # RFC 5321 5.1: the implicit MX, preference 0. Two round trips: MX (no data), then A.
    env, net, _, _ = world()
    resolver = Resolver(net, "india-mail", "dns")
    log: list[Any] = []
    run(env, resolve(net, resolver, "implicit.com", log))
    t, answer = log[0]
    assert answer == [MxHost(0, "implicit.com", "203.0.113.9")]
    assert t == pytest.approx(2 * 0.252, abs=1e-5)


def test_domain_with_neither_mx_nor_address_fails_permanently() -> None:
    env, net, _, _ = world()
    resolver = Resolver(net, "india-mail", "dns")
    log: list[Any] = []
    run(env, resolve(net, resolver, "empty.com", log))
    error = log[0][1]
    assert isinstance(error, DnsError) and error.permanent and error.rcode == "NODATA"


def test_servfail_is_temporary() -> None:
    env, net, _, database = world()
    database.set_servfail("usa.com")
    resolver = Resolver(net, "india-mail", "dns")
    log: list[Any] = []
    run(env, resolve(net, resolver, "usa.com", log))
    error = log[0][1]
    assert isinstance(error, DnsError) and not error.permanent and error.rcode == "SERVFAIL"


def test_equal_preferences_come_in_random_order_from_a_named_stream() -> None:
    orders = []
    for seed in range(8):
        env, net, _, _ = world(seed=seed)
        resolver = Resolver(net, "india-mail", "dns")
        log: list[Any] = []
        run(env, resolve(net, resolver, "two.com", log))
        hosts = [mx.host for mx in log[0][1]]
        assert hosts[-1] == "c.two.com"  # preference 20 always after the two 10s
        orders.append(tuple(hosts[:2]))
        # The same seed gives the same order.
        env2, net2, _, _ = world(seed=seed)
        log2: list[Any] = []
        run(env2, resolve(net2, Resolver(net2, "india-mail", "dns"), "two.com", log2))
        assert [mx.host for mx in log2[0][1]] == hosts
    assert set(orders) == {("a.two.com", "b.two.com"), ("b.two.com", "a.two.com")}


def test_lost_queries_are_retried() -> None:
    # 50% loss on the long haul: with seed 2 at least one query or reply is lost, the resolver
    # tries again after 5 s, and the answer still comes (at 5 s + 252 ms or later).
    topology = india_usa(long_haul_loss=0.5)
    topology.add_node("dns", "dns", "USA")
    topology.add_link("usa-router", "dns", 0.005, 1e9)
    env, net, _ = make_net(topology, seed=2)
    DnsServer(
        net,
        "dns",
        DnsDatabase(
            [Zone("usa.com", mx=[(10, "usa-mail")], a={"usa-mail": net.ip_of("usa-mail")})]
        ),
    )
    log: list[Any] = []
    run(env, resolve(net, Resolver(net, "india-mail", "dns"), "usa.com", log))
    t, answer = log[0]
    assert answer == [MxHost(10, "usa-mail", net.ip_of("usa-mail"))]
    assert t >= 5.252 - 1e-6


def test_a_lookup_over_the_network_records_when_each_query_left_and_the_answer_was_sent() -> None:
    # The pcap needs these times: the query leaves at 0, reaches the server 126 ms later, which
    # answers at once; the record itself is dated when the answer arrives (252 ms).
    env, net, recorder, _ = world()
    resolver = Resolver(net, "india-mail", "dns")
    run(env, resolve(net, resolver, "usa.com", []))
    query, address = records(recorder, "dns.query")
    assert query["sent"] == [0.0]
    assert query["answered"] == pytest.approx(0.126, abs=1e-5)
    assert query["t"] == pytest.approx(0.252, abs=1e-5)
    # The glue of the additional section, which spares the A query (answered from the cache,
    # so it sent nothing and has no times).
    assert query["additional"] == [["mail.usa.com", net.ip_of("usa-mail")]]
    assert address["cached"] is True and "sent" not in address and "answered" not in address


def test_every_try_of_a_lookup_that_timed_out_is_recorded() -> None:
    env, net, recorder, _ = world()
    net.set_node_state("dns", up=False)
    run(env, resolve(net, Resolver(net, "india-mail", "dns"), "usa.com", []))
    (query,) = records(recorder, "dns.query")
    assert query["sent"] == [0.0, 5.0, 10.0]
    assert "answered" not in query
