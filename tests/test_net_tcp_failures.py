"""Failures during connections: reroutes, stalls, crashes, resets, aborts, stopped services."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import pytest
from net_fixtures import Proc, at, india_usa, make_net, pattern, pusher, records, run, sink

from mailsim.net import (
    ConnectError,
    Connection,
    ConnectionReset,
    SocketTimeout,
)


def test_link_failing_mid_transfer_reroutes_over_the_backup_path() -> None:
    # 2 MB India -> USA; at 1 s the long haul (122 ms one way) fails and the Europe path
    # (172 ms one way) takes over. Segments in flight on the failed link are lost, the
    # retransmission timer fires, and the rest goes via Europe; every byte arrives in order.
    env, net, recorder = make_net(india_usa(backup=True))
    result: dict[str, Any] = {}
    data = pattern(2_000_000)
    env.process(at(lambda: net.set_link_state("india-router", "usa-router", False), env, 1.0))
    run(
        env,
        sink(net, "usa-mail", 25, result),
        pusher(net, "india-mail", "usa-mail", 25, data, result),
    )
    assert result["received"] == data
    assert net.route("india-mail", "usa-mail") == [
        "india-mail",
        "india-router",
        "eu-router",
        "usa-router",
        "usa-mail",
    ]
    stats = result["client_conn"].stats()
    assert stats["timeouts"] >= 1 and stats["retransmissions"] >= 1
    # Unhurt, the same transfer takes about 4 s; the failure costs at least one RTO (1 s).
    env2, net2, _ = make_net(india_usa(backup=True))
    calm: dict[str, Any] = {}
    run(
        env2,
        sink(net2, "usa-mail", 25, calm),
        pusher(net2, "india-mail", "usa-mail", 25, data, calm),
    )
    assert result["drained_at"] > calm["drained_at"] + 1.0
    assert [r["type"] for r in recorder.of_type("link.")] == ["link.down"]


def test_path_down_stalls_the_flow_which_resumes_when_the_link_returns() -> None:
    # No backup path: the long haul is down from 1 s to 11 s. The sender retransmits with
    # doubling gaps (RFC 6298 5.5: 1, 2, 4, 8 s ...), each lost, until one after 11 s gets
    # through; then the transfer finishes. The application never gave up, so nothing failed.
    env, net, recorder = make_net(india_usa(), segments=True)
    result: dict[str, Any] = {}
    data = pattern(1_000_000)
    env.process(at(lambda: net.set_link_state("india-router", "usa-router", False), env, 1.0))
    env.process(at(lambda: net.set_link_state("india-router", "usa-router", True), env, 11.0))
    run(
        env,
        sink(net, "usa-mail", 25, result),
        pusher(net, "india-mail", "usa-mail", 25, data, result),
    )
    assert result["received"] == data
    times = sorted({r["t"] for r in records(recorder, "tcp.retransmit", src="india-mail")})
    stalled = [t for t in times if t < 11.0]
    gaps = [b - a for a, b in pairwise(stalled)]
    assert len(gaps) >= 2
    for shorter, longer in pairwise(gaps):
        assert longer == pytest.approx(2 * shorter)
    resumed = min(t for t in times if t >= 11.0)
    assert resumed == pytest.approx(stalled[-1] + 2 * gaps[-1])
    assert result["drained_at"] > resumed


def test_application_can_give_up_while_the_path_is_down() -> None:
    env, net, _ = make_net(india_usa())
    outcome: dict[str, Any] = {}
    listener = net.listen("usa-mail", 25)

    def client() -> Proc:
        conn = yield net.connect("india-mail", "usa-mail", 25)
        net.set_link_state("india-router", "usa-router", False)
        conn.send(b"MAIL FROM:<james@india.com>\r\n")
        reply = conn.recv(timeout=300.0)  # Postfix waits 300 s for a reply to MAIL
        try:
            yield reply
        except SocketTimeout:
            outcome["gave_up_at"] = env.now
            conn.abort()

    def server() -> Proc:
        yield listener.accept()

    run(env, server(), client())
    assert outcome["gave_up_at"] == pytest.approx(0.244004 + 300.0, abs=1e-5)


def test_crash_resets_the_crashed_side_at_once_and_the_peer_when_it_next_sends() -> None:
    # usa-mail crashes at 2 s and restarts at 5 s. Its own session dies at 2 s ("crash"). The
    # client in India sends NOOP at 3 s: lost (the node is down); the RTO is 1 s (its minimum),
    # so it retransmits at 4 s (lost again) and, backed off to 2 s, at 6 s. That copy reaches
    # the restarted node at 6.122 s, which knows no such connection and answers RST; the
    # client learns at 6.244 s (RFC 9293 3.5.2).
    env, net, recorder = make_net(india_usa())
    log: list[tuple[float, str]] = []
    box: dict[str, Any] = {}

    def serve() -> Proc:
        listener = net.listen("usa-mail", 25)
        while True:
            conn = yield listener.accept()
            env.process(session(conn))

    def session(conn: Connection) -> Proc:
        try:
            while True:
                data = yield conn.recv()
                if not data:
                    return
                conn.send(b"250 OK\r\n")
        except ConnectionReset as error:
            log.append((env.now, f"server {error.reason}"))

    def guarded() -> Proc:
        from simpy import Interrupt

        try:
            yield from serve()
        except Interrupt:
            log.append((env.now, "server process killed"))

    def crashed(node: str) -> None:
        log.append((env.now, f"{node} down"))
        box["server"].interrupt("crash")

    def restarted(node: str) -> None:
        log.append((env.now, f"{node} up"))
        box["server"] = env.process(guarded())

    net.on_node_down("usa-mail", crashed)
    net.on_node_up("usa-mail", restarted)
    box["server"] = env.process(guarded())

    def client() -> Proc:
        conn = yield net.connect("india-mail", "usa-mail", 25)
        conn.send(b"EHLO india.com\r\n")
        yield conn.recv()
        yield env.timeout(3.0 - env.now)
        conn.send(b"NOOP\r\n")
        try:
            yield conn.recv()
        except ConnectionReset as error:
            log.append((env.now, f"client {error.reason}"))
        # After the restart a new connection works.
        again = yield net.connect("india-mail", "usa-mail", 25)
        again.send(b"NOOP\r\n")
        reply = yield again.recv()
        log.append((env.now, reply.decode().strip()))

    env.process(at(lambda: net.set_node_state("usa-mail", False), env, 2.0))
    env.process(at(lambda: net.set_node_state("usa-mail", True), env, 5.0))
    run(env, client())
    # The hook runs first, at the crash itself; the processes then see their events fail.
    assert [what for _, what in log] == [
        "usa-mail down",
        "server process killed",
        "server crash",
        "usa-mail up",
        "client reset",
        "250 OK",
    ]
    times = dict((what, t) for t, what in log)
    assert times["server crash"] == 2.0
    assert times["client reset"] == pytest.approx(6.244, abs=1e-4)
    assert times["250 OK"] == pytest.approx(6.244 + 2 * 0.244, abs=1e-4)
    closes = [(r["t"], r["by"], r["how"]) for r in records(recorder, "tcp.close", conn=1)]
    assert closes[0] == (2.0, "usa-mail", "reset")
    assert closes[1][1:] == ("india-mail", "reset")


def test_a_peer_that_only_waits_learns_of_a_crash_from_its_own_timeout() -> None:
    env, net, _ = make_net(india_usa())
    listener = net.listen("usa-mail", 25)
    outcome: dict[str, Any] = {}

    def server() -> Proc:
        yield listener.accept()

    def client() -> Proc:
        conn = yield net.connect("india-mail", "usa-mail", 25)
        try:
            yield conn.recv(timeout=300.0)  # waiting for the greeting that never comes
        except SocketTimeout:
            outcome["timeout_at"] = env.now

    env.process(at(lambda: net.set_node_state("usa-mail", False), env, 1.0))
    run(env, server(), client())
    assert outcome["timeout_at"] == pytest.approx(0.244004 + 300.0, abs=1e-5)


def test_retransmissions_give_up_after_fifteen_timeouts() -> None:
    # The link never returns. RTOs: 1, 2, 4, ..., 64 s (7 timeouts, 127 s), then 120 s (the
    # cap) for the next 9: the 16th expiry, 1207 s after the send, drops the connection.
    env, net, recorder = make_net(india_usa())
    listener = net.listen("usa-mail", 25)
    outcome: dict[str, Any] = {}

    def server() -> Proc:
        yield listener.accept()

    def client() -> Proc:
        conn = yield net.connect("india-mail", "usa-mail", 25)
        yield env.timeout(1.0 - env.now)
        net.set_link_state("india-router", "usa-router", False)
        conn.send(b"DATA\r\n")
        try:
            yield conn.drain()
        except ConnectionReset as error:
            outcome["error"] = error
            outcome["at"] = env.now

    run(env, server(), client())
    assert outcome["error"].reason == "timeout"
    assert outcome["at"] == pytest.approx(1.0 + 1207.0)
    assert ("india-mail", "timeout") in {
        (r["by"], r["how"]) for r in records(recorder, "tcp.close")
    }


def test_abort_resets_the_peer_one_way_later() -> None:
    env, net, recorder = make_net(india_usa())
    listener = net.listen("usa-mail", 25)
    outcome: dict[str, Any] = {}

    def server() -> Proc:
        conn = yield listener.accept()
        try:
            yield conn.recv()
        except ConnectionReset as error:
            outcome["server"] = (env.now, error.reason)

    def client() -> Proc:
        conn = yield net.connect("india-mail", "usa-mail", 25)
        yield env.timeout(1.0 - env.now)
        conn.abort()
        with pytest.raises(ConnectionReset):
            conn.send(b"too late")

    run(env, server(), client())
    assert outcome["server"] == (pytest.approx(1.122, abs=1e-5), "reset")
    closes = [(r["by"], r["how"]) for r in records(recorder, "tcp.close")]
    assert closes == [("india-mail", "abort"), ("usa-mail", "reset")]


def test_stopped_service_resets_its_connections_and_refuses_until_restarted() -> None:
    # The host stays up: the server side is reset at once at 2 s, the client learns from the
    # RST one way later (2.122 s); connecting is refused while stopped and works after 10 s.
    env, net, recorder = make_net(india_usa())
    listener = net.listen("usa-mail", 25)
    outcome: dict[str, Any] = {}

    def server() -> Proc:
        while True:
            conn = yield listener.accept()
            env.process(echo(conn))

    def echo(conn: Connection) -> Proc:
        try:
            data = yield conn.recv()
            conn.send(data)
        except ConnectionReset as error:
            outcome.setdefault("server", (env.now, error.reason))

    def client() -> Proc:
        conn = yield net.connect("india-mail", "usa-mail", 25)
        try:
            yield conn.recv()
        except ConnectionReset as error:
            outcome["client"] = (env.now, error.reason)
        try:
            yield net.connect("india-mail", "usa-mail", 25)
        except ConnectError as error:
            outcome["refused"] = (env.now, error.reason)
        yield env.timeout(10.0 - env.now)
        again = yield net.connect("india-mail", "usa-mail", 25)
        again.send(b"hello")
        outcome["echo"] = yield again.recv()

    env.process(at(lambda: net.set_service_state("usa-mail", 25, False), env, 2.0))
    env.process(at(lambda: net.set_service_state("usa-mail", 25, True), env, 9.0))
    run(env, server(), client(), until=20.0)
    assert outcome["server"] == (2.0, "reset")
    assert outcome["client"] == (pytest.approx(2.122, abs=1e-5), "reset")
    assert outcome["refused"] == (pytest.approx(2.122 + 0.244, abs=1e-5), "refused")
    assert outcome["echo"] == b"hello"
    kinds = [r["type"] for r in recorder.of_type("service.")]
    assert kinds == ["service.down", "service.up"]


def test_recv_timeout_fires_at_the_deadline_and_later_data_is_still_read() -> None:
    env, net, _ = make_net(india_usa())
    listener = net.listen("usa-mail", 25)
    log: list[tuple[float, Any]] = []

    def server() -> Proc:
        conn = yield listener.accept()
        yield env.timeout(10.0 - env.now)
        conn.send(b"220 late\r\n")

    def client() -> Proc:
        conn = yield net.connect("india-mail", "usa-mail", 25)
        try:
            yield conn.recv(timeout=5.0)
        except SocketTimeout:
            log.append((env.now, "timeout"))
        data = yield conn.recv(timeout=60.0)
        log.append((env.now, data))

    run(env, server(), client())
    assert log[0] == (pytest.approx(0.244004 + 5.0, abs=1e-5), "timeout")
    assert log[1] == (pytest.approx(10.122, abs=1e-4), b"220 late\r\n")


def test_only_one_recv_may_wait_at_a_time() -> None:
    env, net, _ = make_net(india_usa())
    listener = net.listen("usa-mail", 25)
    problems: list[str] = []

    def server() -> Proc:
        yield listener.accept()

    def client() -> Proc:
        conn = yield net.connect("india-mail", "usa-mail", 25)
        conn.recv()
        try:
            conn.recv()
        except Exception as error:
            problems.append(str(error))

    run(env, server(), client())
    assert problems == ["connection 1: recv() called while another recv() is still waiting"]
