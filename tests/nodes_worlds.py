"""Worlds and trace helpers shared by the ``test_nodes_*`` tests.

The tutorial's world: James at ``james-pc`` in India uses ``india-mail`` (domain india.com),
Steve at ``steve-pc`` in the USA uses ``usa-mail`` (usa.com). The links, and the round trips the
tests work their expected times from:

    james-pc --2 ms, 100 Mbit/s-- india-mail --110 ms, 20 Mbit/s-- usa-mail --3 ms-- steve-pc
                                      |
                                     dns (1 ms, 1 Gbit/s; added by the world)

    RTT james-pc <-> india-mail  = 4 ms
    RTT india-mail <-> usa-mail  = 220 ms
    RTT usa-mail <-> steve-pc    = 6 ms
    RTT india-mail <-> dns       = 2 ms (one MX query; the A record comes cached with it)

Serialisation adds microseconds for short lines (a 69-octet segment takes 28 us at 20 Mbit/s), so
times are compared to the millisecond.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from mailsim.nodes.mailserver import ServerSettings
from mailsim.nodes.world import World

JAMES = "james@india.com"
STEVE = "steve@usa.com"

#: One-way latencies of the tutorial's links (seconds).
LAN_INDIA = 0.002
OCEAN = 0.110
LAN_USA = 0.003
#: Round trip over the ocean link.
OCEAN_RTT = 2 * OCEAN
#: The intercontinental link's bandwidth (bits per second).
OCEAN_BANDWIDTH = 20e6


def tutorial_world(
    seed: int = 1,
    *,
    india: ServerSettings | None = None,
    usa: ServerSettings | None = None,
    steve_checks: float | None = 600.0,
    james_checks: float | None = None,
    strict: bool = True,
) -> World:
    """James, Steve, their PCs and their two mail servers, described but not started."""
    world = World(seed=seed, strict=strict)
    for name, kind, site in (
        ("james-pc", "host", "India"),
        ("india-mail", "mailserver", "India"),
        ("usa-mail", "mailserver", "USA"),
        ("steve-pc", "host", "USA"),
    ):
        world.add_node(name, kind=kind, site=site)
    world.add_link("james-pc", "india-mail", latency=LAN_INDIA, bandwidth=100e6)
    world.add_link("india-mail", "usa-mail", latency=OCEAN, bandwidth=OCEAN_BANDWIDTH)
    world.add_link("usa-mail", "steve-pc", latency=LAN_USA, bandwidth=100e6)
    world.add_mail_server("india-mail", ["india.com"], settings=india)
    world.add_mail_server("usa-mail", ["usa.com"], settings=usa)
    world.add_user(JAMES, "grammar", host="james-pc", check_every=james_checks)
    world.add_user(STEVE, "atlas", host="steve-pc", check_every=steve_checks)
    return world


def of_type(world: World, kind: str, **match: Any) -> list[dict[str, Any]]:
    """The records of ``kind`` whose fields equal ``match``, in trace order."""
    return [
        rec
        for rec in world.recorder.records
        if rec["type"] == kind and all(rec.get(k) == v for k, v in match.items())
    ]


def first(world: World, kind: str, **match: Any) -> dict[str, Any]:
    """The first record of ``kind`` matching ``match`` (fails the test if there is none)."""
    found = of_type(world, kind, **match)
    assert found, f"no {kind} record with {match}"
    return found[0]


def lines(world: World, conn: int, side: str | None = None) -> list[str]:
    """The SMTP/POP3 lines of connection ``conn`` (one side, or both) in trace order."""
    return [
        rec["line"]
        for rec in world.recorder.records
        if rec["type"] in ("smtp.line", "pop3.line")
        and rec["conn"] == conn
        and (side is None or rec["side"] == side)
    ]


def line_time(world: World, conn: int, prefix: str) -> float:
    """When the first line of ``conn`` starting with ``prefix`` was sent."""
    for rec in world.recorder.records:
        if (
            rec["type"] in ("smtp.line", "pop3.line")
            and rec["conn"] == conn
            and rec["line"].startswith(prefix)
        ):
            return float(rec["t"])
    raise AssertionError(f"connection {conn} has no line starting {prefix!r}")


def relay_opens(world: World) -> list[dict[str, Any]]:
    """Every ``tcp.open`` from india-mail to usa-mail port 25 (one per delivery attempt)."""
    return of_type(world, "tcp.open", client="india-mail", server="usa-mail", sport=25)


def established(world: World) -> set[int]:
    """The ids of connections whose handshake completed."""
    return {rec["conn"] for rec in of_type(world, "tcp.established")}


def mail_records(world: World) -> Iterator[dict[str, Any]]:
    """The ``mail.*`` records."""
    return (rec for rec in world.recorder.records if rec["type"].startswith("mail."))


def assert_balanced(world: World) -> None:
    """The books of the run balance (every accepted pair ended exactly one documented way)."""
    books = world.books()
    assert books.balanced, books.problems
