"""Checks of notebook 00, "Start here": reading a run's tables and its topology."""

from __future__ import annotations

from typing import Any

from mailsim.teach import lookup
from mailsim.teach.checking import Verdict, close_to, same


def routers_between(result: Any, a: str, b: str) -> int:
    """How many routers the route from ``a`` to ``b`` passes (by the trace's topology)."""
    from mailsim.plot.topology import read_topology

    topo = read_topology(lookup.records_of(result))
    return sum(1 for name in topo.route(a, b)[1:-1] if topo.nodes[name].kind == "router")


def check_routers_on_the_way(answer: Any, result: Any) -> Verdict:
    """How many routers sit between india-mail and usa-mail."""
    return same(
        answer,
        routers_between(result, "india-mail", "usa-mail"),
        hint="follow the lines from india-mail to usa-mail in the topology figure and count the "
        "grey circles (routers); the orange squares are mail servers, not routers",
    )


def check_filed_at(answer: Any, result: Any) -> Verdict:
    """When the message was filed in Steve's mailbox, in simulated seconds."""
    filed = lookup.first(result, "mail.deliver", node="usa-mail")["t"]
    return close_to(
        answer,
        filed,
        tolerance=0.01,
        unit="s",
        hint="find the mail.deliver row of result.events and read its t column (seconds)",
    )
