"""How fast the simulated mail system runs, and how much memory a queued message costs.

Two measurements on an established world (two mail servers joined by one intercontinental link,
ten users on each side, every protocol line real: submission with AUTH, the relay, POP3 RETR and
DELE):

* **Throughput.** 2,000 short notes with Poisson arrivals (one a second on average), each to a
  random user on the other side; every recipient checks mail every 10 minutes. Reported per
  delivered message: wall time, SimPy events, trace records, and the wall time in units of one
  bare SimPy timeout measured in the same run (a process that only does ``yield
  env.timeout(1)``), which makes the figure comparable across machines. The share spent
  composing MIME messages (``mailsim.mail.message.compose``, the email package) is measured
  separately, since it is a fixed cost of the user agent and not of the simulation.
* **Memory.** 10,000 messages submitted while the link is down, all waiting in the queue:
  tracemalloc's peak and the memory still held per queued message, with the trace records'
  share shown apart.

Run: ``.venv/bin/python benchmarks/run.py mail`` (or ``python benchmarks/bench_mail.py``).
"""

from __future__ import annotations

import gc
import random
import time
import tracemalloc
from typing import Any

import simpy

from mailsim.mail.message import compose, make_message_id
from mailsim.nodes.world import World

MESSAGES = 2_000
QUEUED = 10_000
USERS = 10
BODY = "Do you have a Grammar Book?\nWhat about Atlas?"


def established_world(
    *, strict: bool = False, check_every: float | None = 600.0, **options: Any
) -> World:
    """India and the USA, one mail server each, ten users on each side (``options``: World's)."""
    world = World(seed=1, strict=strict, **options)
    for name, kind, site in (
        ("india-pcs", "host", "India"),
        ("india-mail", "mailserver", "India"),
        ("usa-mail", "mailserver", "USA"),
        ("usa-pcs", "host", "USA"),
    ):
        world.add_node(name, kind=kind, site=site)
    world.add_link("india-pcs", "india-mail", latency=0.002, bandwidth=100e6)
    world.add_link("india-mail", "usa-mail", latency=0.110, bandwidth=20e6)
    world.add_link("usa-mail", "usa-pcs", latency=0.003, bandwidth=100e6)
    world.add_mail_server("india-mail", ["india.com"])
    world.add_mail_server("usa-mail", ["usa.com"])
    for i in range(USERS):
        world.add_user(f"user{i}@india.com", f"pw{i}", host="india-pcs")
        world.add_user(f"user{i}@usa.com", f"pw{i}", host="usa-pcs", check_every=check_every)
    return world


def _traffic(world: World, count: int, rate: float, rng: random.Random) -> list[tuple[str, str]]:
    """``count`` notes from India to the USA, Poisson arrivals at ``rate`` per second."""
    t = 0.0
    sent = []
    for n in range(count):
        t += rng.expovariate(rate)
        sender = f"user{rng.randrange(USERS)}@india.com"
        rcpt = f"user{rng.randrange(USERS)}@usa.com"
        world.send(round(t, 6), sender, [rcpt], f"Note {n}", BODY)
        sent.append((sender, rcpt))
    return sent


def bare_timeout_seconds(count: int = 300_000) -> float:
    """Wall seconds per bare SimPy timeout (one process yielding ``env.timeout(1)``)."""
    env = simpy.Environment()

    def ticker() -> Any:
        for _ in range(count):
            yield env.timeout(1)

    env.process(ticker())
    started = time.perf_counter()
    env.run()
    return (time.perf_counter() - started) / count


def compose_seconds(sent: list[tuple[str, str]]) -> float:
    """Wall seconds to compose the same notes outside the simulation."""
    started = time.perf_counter()
    for n, (sender, rcpt) in enumerate(sent):
        compose(
            sender,
            [rcpt],
            f"Note {n}",
            BODY,
            message_id=make_message_id(f"m{n + 1}", "india.com"),
            date_t=float(n),
        )
    return time.perf_counter() - started


def throughput(count: int = MESSAGES) -> dict[str, Any]:
    """Wall time and events per delivered message, including submission and POP3 retrieval."""
    world = established_world()
    sent = _traffic(world, count, rate=1.0, rng=random.Random(7))
    world.start()
    gc.collect()
    started = time.perf_counter()
    world.run(until=count + 1_300)  # last arrival ~count s, then a 10-minute check, twice
    wall = time.perf_counter() - started
    records = world.recorder.records
    delivered = sum(1 for r in records if r["type"] == "mail.deliver")
    fetched = sum(1 for r in records if r["type"] == "mail.fetch")
    events = next(world.env._eid)  # SimPy numbers every scheduled event
    books = world.books()
    assert books.balanced, books.problems[:3]
    bare = bare_timeout_seconds()
    composing = compose_seconds(sent)
    per_message = wall / delivered
    return {
        "messages delivered": delivered,
        "messages fetched over POP3": fetched,
        "connections": books.connections,
        "wall s": wall,
        "wall us per delivered message": per_message * 1e6,
        "SimPy events per delivered message": events / delivered,
        "trace records per delivered message": len(records) / delivered,
        "bare SimPy timeout us": bare * 1e6,
        "bare timeouts of wall time per delivered message": per_message / bare,
        "compose us per message (email package)": composing / count * 1e6,
        "... of which composing, share": composing / wall,
        "bare timeouts per message without composing": (wall - composing) / delivered / bare,
    }


def queued_memory(count: int = QUEUED) -> dict[str, Any]:
    """Memory per message waiting in the queue while the link is down."""
    world = established_world(check_every=None)
    world.link_down("india-mail", "usa-mail", at=0)
    rng = random.Random(11)
    for n in range(count):
        world.send(
            round(rng.uniform(0, 100), 6),
            f"user{n % USERS}@india.com",
            [f"user{rng.randrange(USERS)}@usa.com"],
            f"Note {n}",
            BODY,
        )
    world.start()
    gc.collect()
    tracemalloc.start()
    base, _ = tracemalloc.get_traced_memory()
    started = time.perf_counter()
    world.run(until=130)
    wall = time.perf_counter() - started
    gc.collect()
    held, peak = tracemalloc.get_traced_memory()
    snapshot = tracemalloc.take_snapshot()
    tracemalloc.stop()
    by_file = {stat.traceback[0].filename: stat.size for stat in snapshot.statistics("filename")}

    def held_in(*endings: str) -> int:
        return sum(size for name, size in by_file.items() if name.endswith(endings))

    # Where the memory sits: trace records (recorder and line tracer), the queued messages
    # and their queue entries (mail package, mail server), and the rest (sessions that
    # ended but whose timers are still pending in SimPy's queue, the network, the email
    # package's caches).
    in_trace = held_in("trace/recorder.py", "nodes/wire.py", "protocol/smtp.py")
    in_queue = held_in(
        "mail/queue.py",
        "mail/message.py",
        "nodes/mailserver.py",
        "mail/server/core.py",
        "dataclasses.py",
    )
    queued = len(world.servers["india-mail"].queue)
    kib = 1024 * queued
    return {
        "messages queued": queued,
        "run under tracemalloc s": wall,
        "peak KiB per queued message": (peak - base) / kib,
        "held KiB per queued message": (held - base) / kib,
        "... in trace records": in_trace / kib,
        "... in the message and its queue entry": in_queue / kib,
        "... elsewhere (network, pending timers)": (held - base - in_trace - in_queue) / kib,
    }


def run() -> dict[str, Any]:
    """Both measurements (benchmarks/run.py calls this)."""
    return {**throughput(), **queued_memory()}


if __name__ == "__main__":
    for key, value in run().items():
        shown = f"{value:,.3f}" if isinstance(value, float) else str(value)
        print(f"{key:<52} {shown}")
