"""Failures of links, nodes and services: scheduled ones and random ones.

Scheduled faults happen at a given time for a given duration (or for ever): a link goes down, a
node crashes and restarts, a service (one port) stops while its host stays up. Random faults
follow the classic reliability model: an element stays up for an exponentially distributed time
with mean MTBF (mean time between failures), then down for an exponentially distributed time
with mean MTTR (mean time to repair), and so on. Each random element draws from its own named
stream (``fault/link/<a>/<b>``, ``fault/node/<n>``, ``fault/service/<n>/<port>``), so adding a
fault elsewhere does not change its failure times.

Faults may overlap (a random outage during a scheduled one): an element is down while at least
one fault holds it down, and ``link.down``/``link.up`` (and the node and service records) are
written only when its state really changes.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from mailsim.net.topology import TopologyError, link_key

if TYPE_CHECKING:
    import random

    from simpy.events import Event

    from mailsim.net.network import Network

_Key = tuple[str, ...]


class Faults:
    """Schedules failures on a :class:`~mailsim.net.network.Network`.

    Args:
        net: the network whose links, nodes and services fail; random faults draw from its
            ``streams``.
    """

    def __init__(self, net: Network) -> None:
        self.net = net
        self._holds: dict[_Key, int] = {}

    # --- scheduled -----------------------------------------------------------------------------

    def link_down(self, a: str, b: str, at: float, duration: float | None = None) -> None:
        """The link between ``a`` and ``b`` goes down at ``at`` for ``duration`` s (None: ever)."""
        self.net.topology.link(a, b)
        key = ("link", *link_key(a, b))
        self._schedule(key, at, duration, f"link {a}-{b}")

    def node_crash(self, node: str, at: float, restart_after: float | None = None) -> None:
        """``node`` crashes at ``at`` and restarts ``restart_after`` s later (None: never)."""
        self.net.topology.node(node)
        self._schedule(("node", node), at, restart_after, f"node {node}")

    def service_down(self, node: str, port: int, at: float, duration: float | None = None) -> None:
        """The service on ``port`` of ``node`` stops at ``at`` for ``duration`` s (None: ever)."""
        self.net.topology.node(node)
        self._schedule(("service", node, str(port)), at, duration, f"service {node}:{port}")

    # --- random --------------------------------------------------------------------------------

    def random_link(
        self,
        a: str,
        b: str,
        mtbf: float,
        mttr: float,
        *,
        start: float = 0.0,
        until: float | None = None,
    ) -> None:
        """The link between ``a`` and ``b`` fails at random (exponential up and down times).

        Args:
            mtbf: mean time between failures (mean up time), seconds.
            mttr: mean time to repair (mean down time), seconds.
            start: when the first up period begins (default 0).
            until: no new failure starts after this time (default None: the whole run).
        """
        self.net.topology.link(a, b)
        first, second = link_key(a, b)
        rng = self.net.streams.get("fault", "link", first, second)
        self._random(("link", first, second), mtbf, mttr, start, until, rng, f"link {a}-{b}")

    def random_node(
        self,
        node: str,
        mtbf: float,
        mttr: float,
        *,
        start: float = 0.0,
        until: float | None = None,
    ) -> None:
        """``node`` crashes at random and restarts after a random repair time (see random_link)."""
        self.net.topology.node(node)
        rng = self.net.streams.get("fault", "node", node)
        self._random(("node", node), mtbf, mttr, start, until, rng, f"node {node}")

    def random_service(
        self,
        node: str,
        port: int,
        mtbf: float,
        mttr: float,
        *,
        start: float = 0.0,
        until: float | None = None,
    ) -> None:
        """The service on ``port`` of ``node`` stops and restarts at random (see random_link)."""
        self.net.topology.node(node)
        rng = self.net.streams.get("fault", "service", node, port)
        key = ("service", node, str(port))
        self._random(key, mtbf, mttr, start, until, rng, f"service {node}:{port}")

    # --- machinery ----------------------------------------------------------------------------

    def is_held(self, kind: str, *names: str) -> bool:
        """Whether a fault of these Faults currently holds the element down."""
        if kind == "link":
            names = link_key(*names)
        return self._holds.get((kind, *names), 0) > 0

    def _schedule(self, key: _Key, at: float, duration: float | None, what: str) -> None:
        env = self.net.env
        if not at >= env.now:
            raise TopologyError(f"{what}: fault time {at!r} is in the past (now is {env.now})")
        if duration is not None and not duration > 0:
            raise TopologyError(f"{what}: duration must be > 0 seconds or None, got {duration!r}")
        env.process(self._outage(key, at - env.now, duration))

    def _outage(
        self, key: _Key, delay: float, duration: float | None
    ) -> Generator[Event, Any, None]:
        env = self.net.env
        yield env.timeout(delay)
        self._hold(key)
        if duration is None:
            return
        yield env.timeout(duration)
        self._release(key)

    def _random(
        self,
        key: _Key,
        mtbf: float,
        mttr: float,
        start: float,
        until: float | None,
        rng: random.Random,
        what: str,
    ) -> None:
        if not mtbf > 0 or not mttr > 0:
            raise TopologyError(
                f"{what}: mtbf and mttr must be > 0 seconds, got {mtbf!r}, {mttr!r}"
            )
        env = self.net.env
        if not start >= env.now:
            raise TopologyError(f"{what}: start {start!r} is in the past (now is {env.now})")
        env.process(self._failing(key, mtbf, mttr, start - env.now, until, rng))

    def _failing(
        self,
        key: _Key,
        mtbf: float,
        mttr: float,
        delay: float,
        until: float | None,
        rng: random.Random,
    ) -> Generator[Event, Any, None]:
        env = self.net.env
        yield env.timeout(delay)
        while True:
            # Exponential up time, then exponential down time (memoryless failures and repairs).
            yield env.timeout(rng.expovariate(1.0 / mtbf))
            if until is not None and env.now > until:
                return
            self._hold(key)
            yield env.timeout(rng.expovariate(1.0 / mttr))
            self._release(key)

    def _hold(self, key: _Key) -> None:
        count = self._holds.get(key, 0)
        self._holds[key] = count + 1
        if count == 0:
            self._apply(key, up=False)

    def _release(self, key: _Key) -> None:
        count = self._holds.get(key, 0) - 1
        self._holds[key] = max(count, 0)
        if count == 0:
            self._apply(key, up=True)

    def _apply(self, key: _Key, up: bool) -> None:
        kind = key[0]
        if kind == "link":
            self.net.set_link_state(key[1], key[2], up)
        elif kind == "node":
            self.net.set_node_state(key[1], up)
        else:
            self.net.set_service_state(key[1], int(key[2]), up)
