"""Small worlds and helpers shared by the tests of ``mailsim.net`` (imported, not a conftest)."""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

import simpy

from mailsim.net import Connection, Network, TcpConfig, Topology
from mailsim.rng import RandomStreams
from mailsim.trace.recorder import Recorder

Proc = Generator[Any, Any, Any]


def make_net(
    topology: Topology,
    *,
    seed: int = 1,
    segments: bool = False,
    tcp: TcpConfig | None = None,
) -> tuple[simpy.Environment, Network, Recorder]:
    """A network on a fresh environment with a strict recorder."""
    env = simpy.Environment()
    recorder = Recorder(lambda: env.now, segments=segments, strict=True)
    net = Network(env, topology, recorder, RandomStreams(seed), tcp=tcp)
    return env, net, recorder


def pair(
    latency: float = 0.01, bandwidth: float = 10e6, loss: float = 0.0, jitter: float = 0.0
) -> Topology:
    """Two hosts, ``a`` and ``b``, on one link."""
    topology = Topology()
    topology.add_node("a", site="India")
    topology.add_node("b", site="USA")
    topology.add_link("a", "b", latency, bandwidth, loss=loss, jitter=jitter)
    return topology


def india_usa(backup: bool = False, long_haul_loss: float = 0.0) -> Topology:
    """india-mail - india-router == usa-router - usa-mail (1 ms, 120 ms, 1 ms, 1 Gbit/s).

    With ``backup``, a slower second path india-router - eu-router - usa-router (80 + 90 ms).
    """
    topology = Topology()
    topology.add_node("india-mail", "mailserver", "India")
    topology.add_node("india-router", "router", "India")
    topology.add_node("usa-router", "router", "USA")
    topology.add_node("usa-mail", "mailserver", "USA")
    topology.add_link("india-mail", "india-router", 0.001, 1e9)
    topology.add_link("india-router", "usa-router", 0.120, 1e9, loss=long_haul_loss)
    topology.add_link("usa-router", "usa-mail", 0.001, 1e9)
    if backup:
        topology.add_node("eu-router", "router", "Europe")
        topology.add_link("india-router", "eu-router", 0.080, 1e9)
        topology.add_link("eu-router", "usa-router", 0.090, 1e9)
    return topology


def sink(net: Network, node: str, port: int, into: dict[str, Any]) -> Proc:
    """A server that reads everything until EOF; stores bytes, EOF time and any error."""
    listener = net.listen(node, port)
    conn = yield listener.accept()
    into["server_conn"] = conn
    got = bytearray()
    try:
        while True:
            data = yield conn.recv()
            if not data:
                break
            got += data
        into["eof_at"] = net.env.now
    except Exception as error:  # the tests look at what it was
        into["server_error"] = error
    into["received"] = bytes(got)
    if not conn.closed:
        conn.close()


def pusher(net: Network, src: str, dst: str, port: int, data: bytes, into: dict[str, Any]) -> Proc:
    """A client that connects, sends ``data``, waits until it is acknowledged, and closes."""
    conn: Connection = yield net.connect(src, dst, port)
    into["client_conn"] = conn
    into["established_at"] = net.env.now
    conn.send(data)
    try:
        yield conn.drain()
        into["drained_at"] = net.env.now
    except Exception as error:
        into["client_error"] = error
        return
    conn.close()


def pattern(size: int) -> bytes:
    """``size`` octets that make misordering or loss visible."""
    block = bytes(range(256)) + bytes(range(255, -1, -1))
    return (block * (size // len(block) + 1))[:size]


def run(env: simpy.Environment, *procs: Proc, until: float | None = None) -> None:
    """Start ``procs`` and run the environment."""
    for proc in procs:
        env.process(proc)
    env.run(until=until)


def records(recorder: Recorder, kind: str, **match: Any) -> list[dict[str, Any]]:
    """The records of type ``kind`` whose fields equal ``match``."""
    return [r for r in recorder.of_type(kind) if all(r.get(k) == v for k, v in match.items())]


def at(callback: Callable[[], None], env: simpy.Environment, t: float) -> Proc:
    """A process that calls ``callback()`` at time ``t``."""
    yield env.timeout(t - env.now)
    callback()
