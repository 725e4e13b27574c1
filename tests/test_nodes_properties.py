"""Random small worlds: the books always balance, and a seed always gives the same trace."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailsim.mail.queue import FINAL_STATES
from mailsim.mail.retry import FixedRetry
from mailsim.nodes.mailserver import ReplyFault, ServerSettings
from mailsim.nodes.world import World
from mailsim.trace.exports import OUTCOMES

HOUR = 3600.0

#: Faults a server may be given (greylisting, full mailbox, busy, unknown user, lost dot, ...).
FAULTS = (
    ReplyFault("RCPT", 451, "4.7.1 Greylisted, try again later", first_attempt_only=True),
    ReplyFault("RCPT", 452, "4.2.2 Mailbox full", end=1800),
    ReplyFault("MAIL", 421, "4.7.0 Too busy", probability=0.3),
    ReplyFault("RCPT", 550, "5.1.1 User unknown", probability=0.2),
    ReplyFault("DOT", 451, "4.3.0 Try again", probability=0.3),
    ReplyFault("DOT", 554, "5.7.1 Content rejected", probability=0.2),
    ReplyFault("CONNECT", 554, "5.7.1 No service", probability=0.2),
    ReplyFault("EHLO", 421, "4.3.2 Shutting down", probability=0.2),
)


@dataclass
class Plan:
    """A random world, as data (so it can be built twice)."""

    seed: int
    sites: int
    users: list[tuple[int, int, float | None]]  # (site, number, check_every)
    durable: list[bool]
    faults: list[tuple[int, ...]]  # per server, indices into FAULTS
    links: list[float]  # one-way latency of the i-th server-server link
    messages: list[tuple[float, int, tuple[int, ...]]]  # (at, sender index, recipient indices)
    outages: list[tuple[str, int, float, float]] = field(default_factory=list)
    loss: float = 0.0  # segment loss rate of the server-server links


def _address(plan: Plan, index: int) -> str:
    """Users first, then an unknown user and a domain nobody serves."""
    if index < len(plan.users):
        site, number, _ = plan.users[index]
        return f"u{number}@site{site}.com"
    return "nobody@site0.com" if index == len(plan.users) else "x@nowhere.example"


def build(plan: Plan) -> World:
    world = World(seed=plan.seed, strict=True)
    retry = FixedRetry(give_up_after=3 * HOUR, delay_warning_after=HOUR)
    for site in range(plan.sites):
        world.add_node(f"mail{site}", kind="mailserver", site=f"S{site}")
        world.add_node(f"pc{site}", kind="host", site=f"S{site}")
        world.add_link(f"pc{site}", f"mail{site}", latency=0.002, bandwidth=100e6)
        world.add_mail_server(
            f"mail{site}",
            [f"site{site}.com"],
            ServerSettings(
                durable=plan.durable[site],
                retry=retry,
                reply_faults=tuple(FAULTS[i] for i in plan.faults[site]),
                reply_timeout=120.0,
                final_reply_timeout=120.0,
            ),
        )
    for site in range(1, plan.sites):
        world.add_link(
            f"mail{site - 1}",
            f"mail{site}",
            latency=plan.links[site - 1],
            bandwidth=10e6,
            loss=plan.loss,
        )
    for site, number, check in plan.users:
        world.add_user(f"u{number}@site{site}.com", "pw", host=f"pc{site}", check_every=check)
    for i, (at, sender, rcpts) in enumerate(plan.messages):
        to = sorted({_address(plan, r) for r in rcpts})
        world.send(at, _address(plan, sender), to, f"Message {i}", f"Body {i}", name=f"m{i}")
    for kind, site, at, duration in plan.outages:
        if kind == "link":
            world.link_down(f"mail{site}", f"mail{site + 1}", at=at, duration=duration)
        elif kind == "crash":
            world.crash(f"mail{site}", at=at, restart_after=duration)
        else:
            world.stop_service(f"mail{site}", 25, at=at, duration=duration)
    return world


@st.composite
def plans(draw: Any) -> Plan:
    sites = draw(st.integers(2, 3))
    numbers = draw(st.lists(st.integers(0, sites * 2 - 1), min_size=2, max_size=4, unique=True))
    users = [(n % sites, n, draw(st.sampled_from([None, 600.0, 1800.0]))) for n in sorted(numbers)]
    everyone = len(users) + 2
    messages = draw(
        st.lists(
            st.tuples(
                st.floats(0, HOUR, allow_nan=False).map(lambda t: round(t, 3)),
                st.integers(0, len(users) - 1),
                st.lists(st.integers(0, everyone - 1), min_size=1, max_size=3).map(tuple),
            ),
            min_size=1,
            max_size=5,
        )
    )
    outage = st.tuples(
        st.sampled_from(["link", "crash", "service"]),
        st.integers(0, sites - 2),
        st.floats(0, 2 * HOUR).map(lambda t: round(t, 3)),
        st.floats(1, 2 * HOUR).map(lambda t: round(t, 3)),
    )
    return Plan(
        seed=draw(st.integers(0, 2**16)),
        sites=sites,
        users=users,
        durable=draw(st.lists(st.booleans(), min_size=sites, max_size=sites)),
        faults=[
            tuple(draw(st.lists(st.integers(0, len(FAULTS) - 1), max_size=2, unique=True)))
            for _ in range(sites)
        ],
        links=draw(st.lists(st.floats(0.005, 0.15), min_size=sites - 1, max_size=sites - 1)),
        messages=messages,
        outages=draw(st.lists(outage, max_size=3)),
        loss=draw(st.sampled_from([0.0, 0.0, 0.02])),
    )


def _check_books(world: World) -> None:
    books = world.books()
    assert books.balanced, books.problems
    assert all(row.status in OUTCOMES for row in books.rows.values())
    # What a server still holds is still queued in the books, and nothing it finished is.
    for server in world.servers.values():
        for entry in server.queue:
            for rcpt in entry.recipients.values():
                if rcpt.state not in FINAL_STATES:
                    assert books.rows[(entry.item.id, rcpt.address)].status == "queued"
    # Every pair the books call delivered was filed in a mailbox.
    filed = {(r["msg"], r["rcpt"]) for r in world.recorder.records if r["type"] == "mail.deliver"}
    for key, row in books.rows.items():
        if row.status == "delivered":
            assert key in filed


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plans())
def test_random_worlds_balance_their_books_and_repeat_exactly(plan: Plan) -> None:
    first = build(plan)
    first.run(until=6 * HOUR)
    _check_books(first)
    again = build(plan)
    again.run(until=6 * HOUR)
    assert json.dumps(first.recorder.records) == json.dumps(again.recorder.records)
