"""How fast the simulated network is, against SimPy's own floor.

Measured in the same process, best of several repeats (the machine may be busy):

* ``bare_timeouts_per_s``: a process doing nothing but ``yield env.timeout(1)``, the cheapest
  thing SimPy can do; one iteration is one event and one process wake-up.
* ``exchanges_per_s``: request/reply round trips over an established simulated TCP connection
  (the client sends ``NOOP``, the server answers ``250 OK``, each waits in ``recv()``), and
  ``events_per_exchange``, the SimPy events each costs (2: one per delivery).
* ``exchange_cost_in_bare_timeouts``: the wall time of one exchange divided by that of one bare
  timeout. Two process wake-ups are unavoidable, so about 2 is the floor; the rest is TCP
  bookkeeping (ACK processing, RTT estimation, the route walk, the receive side).
* ``pingpong_floor_in_bare_timeouts``: the same request/reply shape with no network at all,
  two processes succeeding each other's plain events: what any design with two wake-ups costs.
* ``bulk_*``: a 10 MB transfer over 10 Mbit/s with 0.5% loss, whose simulated time is some
  10 s (each loss resent by fast retransmit): wall time, SimPy events and simulated seconds
  per wall second (window rounds, not segments, cost events).

Run ``python benchmarks/bench_net.py``; ``run()`` returns the numbers as a dict.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from typing import Any

import simpy

from mailsim.net import Network, TcpConfig, Topology
from mailsim.rng import RandomStreams
from mailsim.trace.recorder import Recorder


def _best(measure: Callable[[], float], repeats: int) -> float:
    return min(measure() for _ in range(repeats))


def _bare_timeout_seconds(n: int) -> float:
    env = simpy.Environment()

    def loop() -> Generator[Any, Any, None]:
        for _ in range(n):
            yield env.timeout(1)

    env.process(loop())
    start = time.perf_counter()
    env.run()
    return (time.perf_counter() - start) / n


def _pingpong_seconds(n: int) -> float:
    """Two processes handing an event back and forth: the floor of any request/reply."""
    env = simpy.Environment()
    boxes: list[simpy.Event | None] = [None, None]

    def side(me: int, starts: bool) -> Generator[Any, Any, None]:
        other = 1 - me
        for _ in range(n):
            if starts:
                boxes[other].succeed()  # type: ignore[union-attr]
            event = env.event()
            boxes[me] = event
            yield event
            if not starts:
                boxes[other].succeed()  # type: ignore[union-attr]

    boxes[1] = env.event()
    env.process(side(1, False))
    start = time.perf_counter()
    env.process(side(0, True))
    env.run()
    return (time.perf_counter() - start) / n


def _world(loss: float = 0.0, bandwidth: float = 10e6) -> tuple[simpy.Environment, Network]:
    env = simpy.Environment()
    topology = Topology()
    topology.add_node("india-mail", "mailserver", "India")
    topology.add_node("usa-mail", "mailserver", "USA")
    topology.add_link("india-mail", "usa-mail", 0.010, bandwidth, loss=loss)
    net = Network(env, topology, Recorder(lambda: env.now), RandomStreams(1), tcp=TcpConfig())
    return env, net


def _exchange_seconds(n: int, counts: dict[str, float]) -> float:
    env, net = _world()
    listener = net.listen("usa-mail", 25)
    result: dict[str, float] = {}

    def server() -> Generator[Any, Any, None]:
        conn = yield listener.accept()
        while True:
            data = yield conn.recv()
            if not data:
                break
            conn.send(b"250 OK\r\n")
        conn.close()

    def client() -> Generator[Any, Any, None]:
        conn = yield net.connect("india-mail", "usa-mail", 25)
        first_event = next(env._eid)  # SimPy's event counter (private, fine for a benchmark)
        start = time.perf_counter()
        for _ in range(n):
            conn.send(b"NOOP\r\n")
            yield conn.recv()
        result["seconds"] = (time.perf_counter() - start) / n
        counts["events_per_exchange"] = (next(env._eid) - first_event - 1) / n
        conn.close()

    env.process(server())
    env.process(client())
    env.run()
    return result["seconds"]


def _bulk(size: int) -> dict[str, float]:
    env, net = _world(loss=0.005)
    listener = net.listen("usa-mail", 25)
    data = bytes(size)
    result: dict[str, float] = {}

    def server() -> Generator[Any, Any, None]:
        conn = yield listener.accept()
        while (yield conn.recv()):
            pass

    def client() -> Generator[Any, Any, None]:
        conn = yield net.connect("india-mail", "usa-mail", 25)
        conn.send(data)
        yield conn.drain()
        result["simulated_s"] = env.now
        conn.close()

    env.process(server())
    env.process(client())
    start = time.perf_counter()
    env.run()
    result["wall_s"] = time.perf_counter() - start
    result["events"] = next(env._eid)
    return result


def run(quick: bool = False) -> dict[str, Any]:
    """Measure and return the numbers (``quick``: fewer iterations, for smoke tests)."""
    n = 2_000 if quick else 50_000
    repeats = 2 if quick else 5
    bare = _best(lambda: _bare_timeout_seconds(n), repeats)
    floor = _best(lambda: _pingpong_seconds(n), repeats)
    counts: dict[str, float] = {}
    exchange = _best(lambda: _exchange_seconds(n, counts), repeats)
    bulk = _bulk(1_000_000 if quick else 10_000_000)
    return {
        "bare_timeouts_per_s": 1.0 / bare,
        "exchanges_per_s": 1.0 / exchange,
        "events_per_exchange": counts["events_per_exchange"],
        "exchange_cost_in_bare_timeouts": exchange / bare,
        "pingpong_floor_in_bare_timeouts": floor / bare,
        "bulk_bytes": 1_000_000 if quick else 10_000_000,
        "bulk_simulated_s": bulk["simulated_s"],
        "bulk_wall_s": bulk["wall_s"],
        "bulk_events": bulk["events"],
        "bulk_simulated_s_per_wall_s": bulk["simulated_s"] / bulk["wall_s"],
    }


def main() -> None:
    results = run()
    print(f"bare SimPy timeouts per second     {results['bare_timeouts_per_s']:12,.0f}")
    print(f"TCP request/reply exchanges per s  {results['exchanges_per_s']:12,.0f}")
    print(f"SimPy events per exchange          {results['events_per_exchange']:12.2f}")
    print(f"one exchange costs (bare timeouts) {results['exchange_cost_in_bare_timeouts']:12.2f}")
    print(f"  floor: bare event ping-pong      {results['pingpong_floor_in_bare_timeouts']:12.2f}")
    print(
        f"{results['bulk_bytes'] / 1e6:g} MB at 10 Mbit/s, 0.5% loss: "
        f"{results['bulk_simulated_s']:.1f} simulated s in {results['bulk_wall_s'] * 1000:.0f} ms "
        f"wall, {results['bulk_events']:.0f} SimPy events"
    )


if __name__ == "__main__":
    main()
