"""Scheduled and random faults, their records, overlapping outages, and the node hooks."""

from __future__ import annotations

import statistics
from itertools import pairwise

import pytest
from net_fixtures import india_usa, make_net

from mailsim.net import Faults, TopologyError


def test_scheduled_link_node_and_service_faults_are_recorded_when_they_happen() -> None:
    env, net, recorder = make_net(india_usa())
    faults = Faults(net)
    faults.link_down("usa-router", "india-router", at=10.0, duration=5.0)
    faults.node_crash("usa-mail", at=20.0, restart_after=30.0)
    faults.service_down("india-mail", 25, at=60.0)  # for ever
    env.run(until=100.0)
    happened = [(r["t"], r["type"]) for r in recorder.records if not r["type"].startswith("net.")]
    assert happened == [
        (10.0, "link.down"),
        (15.0, "link.up"),
        (20.0, "node.down"),
        (50.0, "node.up"),
        (60.0, "service.down"),
    ]
    link_down = next(r for r in recorder.records if r["type"] == "link.down")
    assert (link_down["a"], link_down["b"]) == ("india-router", "usa-router")
    assert net.is_link_up("india-router", "usa-router")
    assert net.is_node_up("usa-mail")
    assert not net.is_service_up("india-mail", 25)


def test_overlapping_outages_keep_the_link_down_until_the_last_one_ends() -> None:
    # [10, 30) and [20, 40) overlap: one link.down at 10 and one link.up at 40.
    env, net, recorder = make_net(india_usa())
    faults = Faults(net)
    faults.link_down("india-router", "usa-router", at=10.0, duration=20.0)
    faults.link_down("india-router", "usa-router", at=20.0, duration=20.0)
    env.run(until=35.0)
    assert not net.is_link_up("india-router", "usa-router")
    env.run(until=50.0)
    assert [(r["t"], r["type"]) for r in recorder.of_type("link.")] == [
        (10.0, "link.down"),
        (40.0, "link.up"),
    ]


def test_node_hooks_hear_of_crash_and_restart() -> None:
    env, net, _ = make_net(india_usa())
    heard: list[tuple[float, str, str]] = []
    net.on_node_down("usa-mail", lambda node: heard.append((env.now, "down", node)))
    net.on_node_up("usa-mail", lambda node: heard.append((env.now, "up", node)))
    net.on_service_down("usa-mail", 25, lambda node, port: heard.append((env.now, "stop", node)))
    Faults(net).node_crash("usa-mail", at=1.0, restart_after=2.0)
    Faults(net).service_down("usa-mail", 25, at=5.0, duration=1.0)
    env.run()
    assert heard == [(1.0, "down", "usa-mail"), (3.0, "up", "usa-mail"), (5.0, "stop", "usa-mail")]


def test_random_link_failures_follow_mtbf_and_mttr() -> None:
    # MTBF 100 s, MTTR 10 s over 200,000 s: about 200000 / 110 = 1818 cycles; the sample means
    # of up and down times should be within 10% of 100 s and 10 s (their standard errors are
    # about 2.3% of the mean).
    env, net, recorder = make_net(india_usa(), seed=4)
    Faults(net).random_link("india-router", "usa-router", mtbf=100.0, mttr=10.0)
    env.run(until=200_000.0)
    events = [(r["t"], r["type"]) for r in recorder.of_type("link.")]
    downs = [t for t, kind in events if kind == "link.down"]
    ups = [t for t, kind in events if kind == "link.up"]
    assert 1500 < len(downs) < 2150
    down_times = [up - down for down, up in zip(downs, ups, strict=False)]
    up_times = [down - up for up, down in zip([0.0, *ups], downs, strict=False)]
    assert statistics.mean(down_times) == pytest.approx(10.0, rel=0.10)
    assert statistics.mean(up_times) == pytest.approx(100.0, rel=0.10)
    # Alternating: never two downs in a row.
    assert all(a != b for (_, a), (_, b) in pairwise(events))


def test_random_faults_repeat_with_the_seed_and_differ_across_seeds() -> None:
    def downs(seed: int) -> list[float]:
        env, net, recorder = make_net(india_usa(), seed=seed)
        faults = Faults(net)
        faults.random_node("usa-mail", mtbf=500.0, mttr=50.0)
        env.run(until=10_000.0)
        return [r["t"] for r in recorder.of_type("node.down")]

    assert downs(1) == downs(1)
    assert downs(1) != downs(2)


def test_random_fault_draws_do_not_depend_on_other_faults() -> None:
    # Named streams: adding a random fault on another link leaves this link's times alone.
    def link_downs(with_other: bool) -> list[float]:
        env, net, recorder = make_net(india_usa(backup=True), seed=9)
        faults = Faults(net)
        if with_other:
            faults.random_link("eu-router", "usa-router", mtbf=50.0, mttr=5.0)
        faults.random_link("india-router", "usa-router", mtbf=100.0, mttr=10.0)
        env.run(until=5_000.0)
        return [
            r["t"]
            for r in recorder.of_type("link.down")
            if r["b"] == "usa-router" and r["a"] == "india-router"
        ]

    assert link_downs(False) == link_downs(True)


def test_fault_arguments_are_checked() -> None:
    _, net, _ = make_net(india_usa())
    faults = Faults(net)
    with pytest.raises(TopologyError, match="no link between"):
        faults.link_down("india-mail", "usa-mail", at=1.0)
    with pytest.raises(TopologyError, match="duration must be > 0"):
        faults.link_down("india-mail", "india-router", at=1.0, duration=0.0)
    with pytest.raises(TopologyError, match="mtbf and mttr must be > 0"):
        faults.random_node("usa-mail", mtbf=0.0, mttr=1.0)
    with pytest.raises(TopologyError, match="no node called 'mars'"):
        faults.node_crash("mars", at=1.0)
