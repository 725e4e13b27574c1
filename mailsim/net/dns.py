"""DNS for the simulated Internet: zones with MX and A records, a server node, caching resolvers.

The :class:`DnsDatabase` holds the records (authoritative for every zone in the world, and
answering for names outside them with NXDOMAIN, as a recursive server that found nothing would).
A :class:`DnsServer` answers over the simulated network like UDP: the query and the reply each
cross the route, queue and serialise like any packet, and are lost when the path is down, the
server's node or port 53 is down, or by link loss. A :class:`Resolver` on each mail server waits
``timeout`` seconds per try (default 5 s, as glibc) and tries ``1 + retries`` times (default 2
retries), caches positive answers for their TTL and negative ones (NXDOMAIN, no data) for the
database's negative TTL (RFC 2308), and gives mail servers what RFC 5321 5.1 asks for:
:meth:`Resolver.resolve_mx` returns the mail exchangers sorted by preference with equal
preferences in random order, falls back to the implicit MX (the domain's own address, preference 0)
when the domain has no MX records, and raises :class:`DnsError` whose ``permanent`` tells a
mail server to bounce (NXDOMAIN) or to retry later (timeout, SERVFAIL).

Every query a resolver answers, from the cache or the network, is recorded as ``dns.query`` with
the extra fields ``cached`` (bool) and ``server``. A lookup that went over the network also
carries ``sent`` (the time each try's query left, so ``trace.pcap`` shows every try as a UDP
datagram to port 53), ``answered`` (when the server sent the answer that came back, absent after a
timeout) and ``additional`` (the glue: [host, address] pairs of the MX answer's additional
section). A cached answer sends nothing, so it has none of these and gives no packet.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from simpy.events import Event

from mailsim.net.schedule import call_at, fire_at

if TYPE_CHECKING:
    from mailsim.net.network import Network

#: Query types the simulated DNS answers.
QTYPES = ("MX", "A")

#: DNS's well-known port (RFC 1035 4.2.1).
DNS_PORT = 53

#: Octets of a query on the wire: IPv4 20 + UDP 8 + DNS header 12 + question 4, plus the name.
_QUERY_OCTETS = 44
#: Rough octets per answer record (name compression makes them small).
_RECORD_OCTETS = 16


class DnsError(Exception):
    """A name could not be resolved.

    Attributes:
        name, qtype: what was asked.
        rcode: "NXDOMAIN" (no such name), "NODATA" (the name has no record of that type),
            "SERVFAIL" (the server failed) or "TIMEOUT" (no answer after every try).
        permanent: True when retrying will not help (NXDOMAIN, NODATA): a mail server bounces;
            False for SERVFAIL and TIMEOUT: it defers and retries.
    """

    def __init__(self, name: str, qtype: str, rcode: str, message: str, permanent: bool) -> None:
        # Everything in args: SimPy hands each waiting process a copy made by type(e)(*e.args).
        super().__init__(name, qtype, rcode, message, permanent)
        self.message = message
        self.name = name
        self.qtype = qtype
        self.rcode = rcode
        self.permanent = permanent

    def __str__(self) -> str:
        return self.message


class MxHost(NamedTuple):
    """One mail exchanger to try: preference (lower first), host name, its address."""

    preference: int
    host: str
    ip: str


@dataclass
class Zone:
    """The records of one domain, a convenient way to fill a :class:`DnsDatabase`.

    Attributes:
        name: the domain, like ``usa.com``.
        mx: its MX records as (preference, exchange host name).
        a: A records as owner name -> address (or list of addresses); owners are full names
            such as ``mail.usa.com`` (or the domain itself).
        ttl: time to live of all these records in seconds (default 3600).
    """

    name: str
    mx: list[tuple[int, str]] = field(default_factory=list)
    a: dict[str, str | list[str]] = field(default_factory=dict)
    ttl: float = 3600.0


@dataclass(frozen=True, slots=True)
class DnsAnswer:
    """A DNS reply.

    Attributes:
        name, qtype: the question.
        rcode: "NOERROR", "NXDOMAIN" or "SERVFAIL".
        records: MX: (preference, host) pairs; A: addresses. Empty with NOERROR means no data.
        ttl: how long it may be cached (the negative TTL for NXDOMAIN and no data).
        additional: (host, address) pairs of the MX hosts the server knows (the additional
            section, which saves the resolver a query per exchanger).
    """

    name: str
    qtype: str
    rcode: str
    records: tuple[Any, ...] = ()
    ttl: float = 0.0
    additional: tuple[tuple[str, str], ...] = ()

    def as_trace(self) -> list[Any]:
        """The records as the ``dns.query`` record's ``answer`` field."""
        return [list(r) if isinstance(r, tuple) else r for r in self.records]


def _norm(name: str) -> str:
    return name.strip().rstrip(".").lower()


class DnsDatabase:
    """Every DNS record of the world.

    Args:
        zones: zones to add at once.
        default_ttl: TTL of records added without one (default 3600 s).
        negative_ttl: how long resolvers cache NXDOMAIN and no-data answers (default 300 s; the
            SOA minimum of RFC 2308).
    """

    def __init__(
        self,
        zones: Iterable[Zone] = (),
        *,
        default_ttl: float = 3600.0,
        negative_ttl: float = 300.0,
    ) -> None:
        self.default_ttl = default_ttl
        self.negative_ttl = negative_ttl
        self._mx: dict[str, list[tuple[int, str]]] = {}
        self._a: dict[str, list[str]] = {}
        self._ttl: dict[tuple[str, str], float] = {}
        self._apexes: set[str] = set()
        self._servfail: set[str] = set()
        for zone in zones:
            self.add_zone(zone)

    def add_zone(self, zone: Zone) -> None:
        """Add the records of ``zone`` (its name then exists even without records)."""
        apex = _norm(zone.name)
        self._apexes.add(apex)
        for preference, host in zone.mx:
            self.add_mx(apex, preference, host, zone.ttl)
        for owner, addresses in zone.a.items():
            for ip in [addresses] if isinstance(addresses, str) else addresses:
                self.add_a(owner, ip, zone.ttl)

    def add_mx(self, name: str, preference: int, host: str, ttl: float | None = None) -> None:
        """Add an MX record: mail for ``name`` goes to ``host`` (lower preference first)."""
        if not isinstance(preference, int) or not 0 <= preference <= 65535:
            raise ValueError(f"MX {name}: preference must be 0..65535, got {preference!r}")
        key = _norm(name)
        self._mx.setdefault(key, []).append((preference, _norm(host)))
        self._ttl[(key, "MX")] = self.default_ttl if ttl is None else ttl

    def add_a(self, name: str, ip: str, ttl: float | None = None) -> None:
        """Add an A record: ``name`` has address ``ip``."""
        key = _norm(name)
        self._a.setdefault(key, []).append(ip)
        self._ttl[(key, "A")] = self.default_ttl if ttl is None else ttl

    def set_servfail(self, name: str, failing: bool = True) -> None:
        """Make queries for ``name`` answer SERVFAIL (a broken zone), or stop doing so."""
        if failing:
            self._servfail.add(_norm(name))
        else:
            self._servfail.discard(_norm(name))

    def exists(self, name: str) -> bool:
        """Whether ``name`` has any record or is a zone's apex."""
        key = _norm(name)
        return key in self._apexes or key in self._mx or key in self._a

    def lookup(self, name: str, qtype: str) -> DnsAnswer:
        """The authoritative answer to (``name``, ``qtype``)."""
        if qtype not in QTYPES:
            raise ValueError(f"query type must be one of {', '.join(QTYPES)}, got {qtype!r}")
        key = _norm(name)
        if key in self._servfail:
            return DnsAnswer(key, qtype, "SERVFAIL")
        if not self.exists(key):
            return DnsAnswer(key, qtype, "NXDOMAIN", (), self.negative_ttl)
        if qtype == "MX":
            records = tuple(self._mx.get(key, ()))
            if not records:
                return DnsAnswer(key, qtype, "NOERROR", (), self.negative_ttl)
            additional = tuple((host, ip) for _, host in records for ip in self._a.get(host, ()))
            return DnsAnswer(key, qtype, "NOERROR", records, self._ttl[(key, "MX")], additional)
        addresses = tuple(self._a.get(key, ()))
        if not addresses:
            return DnsAnswer(key, qtype, "NOERROR", (), self.negative_ttl)
        return DnsAnswer(key, qtype, "NOERROR", addresses, self._ttl[(key, "A")])


class DnsServer:
    """A DNS server on a node of the network, answering from a :class:`DnsDatabase`.

    Args:
        net: the network.
        node: the node it runs on (it answers only while the node and its port are up).
        database: the records.
        port: the port (default 53).
        processing_delay: seconds between a query's arrival and the reply leaving (default 0).
    """

    def __init__(
        self,
        net: Network,
        node: str,
        database: DnsDatabase,
        *,
        port: int = DNS_PORT,
        processing_delay: float = 0.0,
    ) -> None:
        self.net = net
        self.node = node
        self.database = database
        self.port = port
        self.processing_delay = processing_delay
        #: Queries that reached it.
        self.queries = 0
        net.bind_datagram(node, port, self)

    def _receive(self, client: str, name: str, qtype: str, reply: Event) -> None:
        """A query arrived: send the reply back (it may be lost on the way)."""
        self.queries += 1
        answer = self.database.lookup(name, qtype)
        net = self.net

        def send_reply(_event: Event | None = None) -> None:
            if net.datagram_service(self.node, self.port) is not self:
                return  # crashed or stopped while working on it
            octets = (
                _QUERY_OCTETS
                + len(name)
                + _RECORD_OCTETS * (len(answer.records) + len(answer.additional))
            )
            arrives = net.send_datagram(self.node, client, octets)
            if arrives is not None and not reply.triggered:
                fire_at(net.env, reply, arrives, (answer, net.env.now))

        if self.processing_delay > 0:
            call_at(net.env, net.env.now + self.processing_delay, send_reply)
        else:
            send_reply()


class Resolver:
    """A stub resolver with a cache, for a mail server on ``node``.

    Args:
        net: the network.
        node: where the resolver runs.
        dns_node: the node of the DNS server it asks.
        port: the server's port (default 53).
        timeout: seconds to wait for each try (default 5.0, glibc's default).
        retries: tries after the first one (default 2, so 3 tries and 15 s before TIMEOUT).
        cache: whether answers are cached for their TTL (default True).
    """

    def __init__(
        self,
        net: Network,
        node: str,
        dns_node: str,
        *,
        port: int = DNS_PORT,
        timeout: float = 5.0,
        retries: int = 2,
        cache: bool = True,
    ) -> None:
        net.topology.node(node)
        net.topology.node(dns_node)
        if not timeout > 0:
            raise ValueError(f"resolver timeout must be > 0 seconds, got {timeout!r}")
        if not isinstance(retries, int) or retries < 0:
            raise ValueError(f"resolver retries must be a whole number >= 0, got {retries!r}")
        self.net = net
        self.node = node
        self.dns_node = dns_node
        self.port = port
        self.timeout = timeout
        self.retries = retries
        self.use_cache = cache
        self._cache: dict[tuple[str, str], tuple[float, DnsAnswer]] = {}
        self._order = net.streams.get("dns", "mx-order", node)

    def flush(self) -> None:
        """Forget every cached answer (as after a restart)."""
        self._cache.clear()

    # --- queries -------------------------------------------------------------------------------

    def query(self, name: str, qtype: str) -> Generator[Event, Any, DnsAnswer]:
        """Ask for (``name``, ``qtype``); a SimPy process body returning the :class:`DnsAnswer`.

        Raises:
            DnsError: NXDOMAIN (permanent), SERVFAIL or TIMEOUT (temporary). An empty NOERROR
                answer (no data) is returned, not raised.
        """
        env = self.net.env
        key = (_norm(name), qtype)
        cached = self._cache.get(key)
        if cached is not None and cached[0] > env.now:
            answer = cached[1]
            self._record(answer.name, qtype, answer.rcode, answer.as_trace(), cached=True)
            return self._checked(answer)
        answer_or_none: DnsAnswer | None = None
        sent: list[float] = []
        answered = 0.0
        for _attempt in range(1 + self.retries):
            reply = Event(env)
            sent.append(env.now)
            self._ask(key[0], qtype, reply)
            yield reply | env.timeout(self.timeout)
            if reply.processed:
                # What DnsServer sent: (the answer, when it left the server).
                answer_or_none, answered = reply.value  # type: ignore[misc]
                break
        if answer_or_none is None:
            self._record(key[0], qtype, "TIMEOUT", [], cached=False, sent=sent)
            raise DnsError(
                key[0],
                qtype,
                "TIMEOUT",
                f"no answer from the DNS server {self.dns_node} for {key[0]} {qtype} after "
                f"{1 + self.retries} tries of {self.timeout:g} s",
                permanent=False,
            )
        answer = answer_or_none
        if self.use_cache and answer.rcode != "SERVFAIL":
            self._cache[key] = (env.now + answer.ttl, answer)
            glue: dict[str, list[str]] = {}
            for host, ip in answer.additional:
                glue.setdefault(host, []).append(ip)
            for host, ips in glue.items():
                address = DnsAnswer(host, "A", "NOERROR", tuple(ips), answer.ttl)
                self._cache[(host, "A")] = (env.now + answer.ttl, address)
        wire: dict[str, Any] = {"sent": sent, "answered": answered}
        if answer.additional:
            wire["additional"] = [list(pair) for pair in answer.additional]
        self._record(answer.name, qtype, answer.rcode, answer.as_trace(), cached=False, **wire)
        return self._checked(answer)

    def resolve_a(self, name: str) -> Generator[Event, Any, list[str]]:
        """The addresses of ``name`` (a SimPy process body).

        Raises:
            DnsError: as :meth:`query`, and NODATA (permanent) if the name has no address.
        """
        answer = yield from self.query(name, "A")
        if not answer.records:
            raise DnsError(
                answer.name, "A", "NODATA", f"{answer.name} has no address (A record)", True
            )
        return list(answer.records)

    def resolve_mx(self, domain: str) -> Generator[Event, Any, list[MxHost]]:
        """Where mail for ``domain`` goes, best first (a SimPy process body).

        Returns (preference, host, ip) tuples sorted by preference, equal preferences shuffled
        (RFC 5321 5.1) with the stream ``dns/mx-order/<node>``. A domain without MX records but
        with an address is its own exchanger with preference 0 (the implicit MX). Exchangers
        whose address cannot be found are left out.

        Raises:
            DnsError: the domain does not exist (permanent), has neither MX nor address
                (permanent), no exchanger could be resolved, or the DNS did not answer (temporary).
        """
        answer = yield from self.query(domain, "MX")
        name = answer.name
        if not answer.records:
            # RFC 5321 5.1: no MX records -> the domain itself, as an MX with preference 0.
            addresses = yield from self.resolve_a(name)
            return [MxHost(0, name, addresses[0])]
        by_preference: dict[int, list[str]] = {}
        for preference, host in answer.records:
            by_preference.setdefault(preference, []).append(host)
        ordered: list[tuple[int, str]] = []
        for preference in sorted(by_preference):
            hosts = by_preference[preference]
            if len(hosts) > 1:
                self._order.shuffle(hosts)
            ordered.extend((preference, host) for host in hosts)
        result: list[MxHost] = []
        errors: list[DnsError] = []
        for preference, host in ordered:
            if host in ("", "."):
                continue  # a null MX (RFC 7505): the domain accepts no mail
            try:
                addresses = yield from self.resolve_a(host)
            except DnsError as error:
                errors.append(error)
                continue
            result.append(MxHost(preference, host, addresses[0]))
        if not result:
            permanent = all(error.permanent for error in errors)
            raise DnsError(
                name,
                "MX",
                errors[0].rcode if errors else "NODATA",
                f"no mail exchanger of {name} could be resolved"
                + (f" ({errors[0]})" if errors else " (null MX)"),
                permanent,
            )
        return result

    # --- machinery -----------------------------------------------------------------------------

    def _ask(self, name: str, qtype: str, reply: Event) -> None:
        net = self.net
        arrives = net.send_datagram(self.node, self.dns_node, _QUERY_OCTETS + len(name))
        if arrives is None:
            return
        client = self.node
        server_node = self.dns_node
        port = self.port

        def reach_server(_event: Event) -> None:
            server = net.datagram_service(server_node, port)
            if isinstance(server, DnsServer):
                server._receive(client, name, qtype, reply)

        call_at(net.env, arrives, reach_server)

    def _checked(self, answer: DnsAnswer) -> DnsAnswer:
        if answer.rcode == "NXDOMAIN":
            raise DnsError(
                answer.name, answer.qtype, "NXDOMAIN", f"{answer.name} does not exist", True
            )
        if answer.rcode == "SERVFAIL":
            raise DnsError(
                answer.name,
                answer.qtype,
                "SERVFAIL",
                f"the DNS server failed to answer for {answer.name}",
                False,
            )
        return answer

    def _record(
        self, name: str, qtype: str, rcode: str, answer: list[Any], cached: bool, **wire: Any
    ) -> None:
        self.net.recorder.emit(
            "dns.query",
            node=self.node,
            name=name,
            qtype=qtype,
            rcode=rcode,
            answer=answer,
            cached=cached,
            server=self.dns_node,
            **wire,
        )
