"""A naive SimPy model of the benchmarks' day, the peer mailsim is compared with.

What a student might write in an afternoon: the same day as ``tools/make_day.py notes`` (users
in India and the USA sending 2 KB notes to users anywhere, Poisson arrivals, mail checked every
hour), but with no network, no TCP, no real protocol machines and no trace. A session is a list
of toy exchanges (a command and its reply, or the message text as one block); each costs one
``env.timeout`` of the path's round trip and is "parsed" with ``str.partition`` and
``splitlines``; queues are ``simpy.Store`` objects and mailboxes are lists. It measures what
the shape of the work costs in SimPy alone, so mailsim's cost per message can be read against
it (the issue quotes about 78 bare timeouts per delivered message for such a model).
"""

from __future__ import annotations

import random
import time
from collections.abc import Generator
from typing import Any

import simpy

#: One-way latencies of the toy paths (seconds): user to own server, server to server.
LAN, WAN = 0.003, 0.100
NOTES_PER_USER = 40
DAY = 86_400.0
NOTE = ("mail travels from the user agent to the server and waits in the queue\n" * 28).encode()


def _toy_session(env: simpy.Environment, exchanges: list[str], latency: float) -> Generator[Any]:
    """Each exchange travels there and back; the server splits it into verb and argument, or
    into lines when it is message text."""
    parsed = 0
    for text in exchanges:
        yield env.timeout(2 * latency)
        if "\n" in text:
            parsed += len(text.splitlines())
        else:
            verb, _, _arg = text.partition(" ")
            parsed += verb.isupper()
    return parsed


def run_day(messages: int, seed: int = 1) -> dict[str, float]:
    """Simulate about ``messages`` notes in one day; returns CPU seconds and counts."""
    rng = random.Random(seed)
    env = simpy.Environment()
    users = max(2, round(messages / NOTES_PER_USER))
    country = {u: ("india" if u < users // 2 else "usa") for u in range(users)}
    queues = {"india": simpy.Store(env), "usa": simpy.Store(env)}
    mailboxes: dict[int, list[bytes]] = {u: [] for u in range(users)}
    delivered = [0]
    rate = NOTES_PER_USER / DAY

    def user(u: int) -> Generator[Any]:
        t = 0.0
        while True:
            t += rng.expovariate(rate)
            if t >= DAY:
                return
            yield env.timeout(t - env.now)
            to = rng.randrange(users - 1)
            to += to >= u
            text = f"From: u{u}\r\nTo: u{to}\r\nSubject: Note\r\n\r\n".encode() + NOTE
            lines = ["EHLO pc", "AUTH PLAIN x", f"MAIL FROM:<u{u}>", f"RCPT TO:<u{to}>", "DATA"]
            yield from _toy_session(env, [*lines, text.decode(), "QUIT"], LAN)
            yield queues[country[u]].put((to, text))

    def relay(name: str) -> Generator[Any]:
        while True:
            to, text = yield queues[name].get()
            lines = ["EHLO mail", "MAIL FROM:<x>", f"RCPT TO:<u{to}>", "DATA"]
            yield from _toy_session(env, [*lines, text.decode(), "QUIT"], WAN)
            mailboxes[to].append(text)
            delivered[0] += 1

    def check(u: int) -> Generator[Any]:
        while True:
            yield env.timeout(3600.0)
            box = mailboxes[u]
            taken, box[:] = list(box), []
            lines = ["USER u", "PASS p", "STAT", "UIDL"]
            for text in taken:
                lines += ["RETR 1", text.decode(), "DELE 1"]
            yield from _toy_session(env, [*lines, "QUIT"], LAN)

    for u in range(users):
        env.process(user(u))
        env.process(check(u))
    for name in queues:
        for _ in range(4):  # a few delivery processes per server
            env.process(relay(name))
    started = time.process_time()
    env.run(until=DAY + 3600)
    cpu = time.process_time() - started
    return {"cpu_s": cpu, "delivered": delivered[0], "users": users}


def bare_timeout_seconds(count: int = 300_000) -> float:
    """CPU seconds per bare SimPy timeout (one process doing only ``yield env.timeout(1)``)."""
    env = simpy.Environment()

    def ticker() -> Generator[Any]:
        for _ in range(count):
            yield env.timeout(1)

    env.process(ticker())
    started = time.process_time()
    env.run()
    return (time.process_time() - started) / count
