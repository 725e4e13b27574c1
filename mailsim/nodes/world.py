"""The simulated world: network, DNS, mail servers, user agents, faults, and the trace.

A :class:`World` is built in two phases. First describe it: nodes and links, mail servers with
their domains, users with their hosts, messages to send, telnet scripts, faults. Then
:meth:`World.run` brings it to life (network, DNS zones, servers, agents) and runs the clock.
Scenarios build worlds through this API, and so can a notebook or a test directly::

    world = World(seed=1)
    world.add_node("james-pc", kind="host", site="India")
    ...
    world.add_mail_server("india-mail", domains=["india.com"])
    world.add_user("james@india.com", "grammar", host="james-pc")
    world.send(at=60, sender="james@india.com", to=["steve@usa.com"], subject="Books", body="...")
    world.run(until=1800)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import simpy

from mailsim.mail.message import Attachment
from mailsim.mail.server import ServerSettings
from mailsim.net.dns import DnsDatabase, DnsServer, Resolver
from mailsim.net.faults import Faults
from mailsim.net.network import Network
from mailsim.net.topology import Topology
from mailsim.nodes.mailserver import MailServer
from mailsim.nodes.telnet import TelnetScript, TelnetSession
from mailsim.nodes.useragent import Draft, PlannedDraft, UserAgent
from mailsim.nodes.web import Browser, Download, WebServer
from mailsim.protocol.smtp import address_key, local_part
from mailsim.rng import RandomStreams
from mailsim.trace.books import BOOK_TYPES, Books, Ledger
from mailsim.trace.recorder import Recorder

#: The DNS node added when none is given, and its links' latency to each mail server (seconds).
IMPLICIT_DNS_NAME = "dns"
IMPLICIT_DNS_LATENCY = 0.001


class WorldError(ValueError):
    """The world's description is inconsistent (an unknown node, a user with no server, ...)."""


class World:
    """Everything one simulation run needs.

    Args:
        seed: the seed of every random stream.
        segments: record every TCP segment (needed for pcap export; slower).
        strict: check every trace record against the documented fields (tests use it).
        data_lines: message lines kept in the trace per message (the rest is summarised).
        dns_node: the node that runs DNS; None adds a ``dns`` node linked to the first mail
            server (1 ms, 1 Gbit/s) when the world starts.
        trace: the trace level, ``full``, ``summary`` or ``off`` (see ``trace.recorder``).
        keep_trace: keep the records in ``recorder.records``; False when they are streamed to
            files instead (``Recorder.stream_to``), so memory follows what is in flight.
        inbox_kept: how many retrieved messages each user agent keeps in its ``inbox`` (the
            latest; None keeps them all, 0 none: a long day need not hold every message read).
    """

    def __init__(
        self,
        seed: int = 1,
        *,
        segments: bool = False,
        strict: bool = False,
        data_lines: int = 20,
        dns_node: str | None = None,
        trace: str = "full",
        keep_trace: bool = True,
        inbox_kept: int | None = None,
    ) -> None:
        #: The SimPy environment (the clock).
        self.env = simpy.Environment()
        #: The trace.
        self.recorder = Recorder(
            lambda: self.env.now, segments=segments, strict=strict, level=trace, keep=keep_trace
        )
        #: Every (message, recipient)'s fate, settled as the records come (at any trace level).
        self.ledger = Ledger()
        self.recorder.subscribe(self.ledger, BOOK_TYPES)
        #: Named random streams of ``seed``.
        self.streams = RandomStreams(seed)
        #: The seed.
        self.seed = seed
        #: Nodes and links.
        self.topology = Topology()
        #: Message lines kept in the trace per message.
        self.data_lines = data_lines
        #: The DNS node's name.
        self.dns_node = dns_node
        #: Retrieved messages each user agent keeps (None: all).
        self.inbox_kept = inbox_kept
        #: Mail servers by node (filled when the world starts).
        self.servers: dict[str, MailServer] = {}
        #: User agents by address (its address_key: lower case, quotes only where needed).
        self.agents: dict[str, UserAgent] = {}
        #: Telnet sessions, in the order they were added.
        self.telnets: list[TelnetSession] = []
        #: Web servers by node, and the browsers of the downloads (filled when the world starts).
        self.web_servers: dict[str, WebServer] = {}
        self.browsers: list[Browser] = []
        self.network: Network
        self.faults: Faults
        #: The DNS records (A records for every node and MX records for every server's domains
        #: are added when the world starts).
        self.dns: DnsDatabase = DnsDatabase()
        #: Domains whose MX records were given explicitly (none are generated for them).
        self.explicit_mx: set[str] = set()
        #: Generate an A record for every node and an MX record (preference 10) for every
        #: server's domain when the world starts; False leaves the zones to :attr:`dns` and
        #: :attr:`a_records`.
        self.generate_dns = True
        #: Extra A records as (name, address, node, ttl): the address, or else ``node``'s.
        self.a_records: list[tuple[str, str | None, str | None, float | None]] = []
        #: How long a resolver waits for each DNS answer (seconds; glibc's 5 s).
        self.dns_timeout = 5.0
        self._server_specs: dict[str, dict[str, Any]] = {}
        self._server_of_domain: dict[str, str] = {}
        self._user_specs: dict[str, dict[str, Any]] = {}  # by address_key
        self._drafts: dict[str, list[Draft]] = {}
        self._planned: dict[str, list[Iterator[PlannedDraft]]] = {}
        self._telnet_scripts: list[TelnetScript] = []
        self._web_files: dict[str, dict[str, Attachment]] = {}
        self._downloads: list[Download] = []
        self._fault_specs: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        self._resolvers: dict[str, Resolver] = {}
        self._known_messages: set[str] = set()
        self._message_count = 0
        self._started = False
        self._prepared = False

    # -- describing the world -----------------------------------------------------------------

    def add_node(
        self, name: str, kind: str = "host", site: str = "", ip: str | None = None
    ) -> None:
        """Add a node (``host``, ``router``, ``mailserver`` or ``dns``) at a ``site``."""
        self.topology.add_node(name, kind=kind, site=site, ip=ip)

    def add_link(self, a: str, b: str, **settings: Any) -> None:
        """Link two nodes; settings are the topology's (latency, bandwidth, loss, jitter, mtu)."""
        self.topology.add_link(a, b, **settings)

    def add_mail_server(
        self,
        node: str,
        domains: Iterable[str],
        settings: ServerSettings | None = None,
    ) -> None:
        """Run a mail server on ``node`` for ``domains``.

        Domains are matched without regard to case; the first one, as written, is the server's
        name in greetings and headers unless ``settings.hostname`` says otherwise (so the
        tutorial's ``220 India.com`` keeps its capital).
        """
        self.topology.node(node)
        written = list(domains)
        self._server_specs[node] = {
            "written": written,
            "domains": [d.lower() for d in written],
            "settings": settings or ServerSettings(),
        }
        for domain in written:
            # The first server named for a domain stays its final destination.
            self._server_of_domain.setdefault(domain.lower(), node)

    def server_for_domain(self, domain: str) -> str | None:
        """The node of the server that is final destination for ``domain``, or None."""
        return self._server_of_domain.get(domain.lower())

    def add_user(
        self,
        address: str,
        password: str,
        host: str,
        *,
        check_every: float | None = None,
        server: str | None = None,
        keep_on_server: bool = False,
        name: str | None = None,
    ) -> None:
        """A user with a mailbox on the server of their domain and a user agent on ``host``.

        ``name`` is the display name in the From header of what the user sends.
        """
        self.topology.node(host)
        domain = address.rpartition("@")[2].lower()
        home = self.server_for_domain(domain)
        if home is None:
            raise WorldError(f"user {address}: no mail server serves the domain {domain!r}")
        if address_key(address) in self._user_specs:
            raise WorldError(f"user {address}: already a user of this world")
        self._user_specs.setdefault(
            address_key(address),
            {
                "address": address,
                "password": password,
                "host": host,
                "check_every": check_every,
                "server": server or home,
                "home": home,
                "keep_on_server": keep_on_server,
                "name": name,
            },
        )

    def send(
        self,
        at: float,
        sender: str,
        to: Sequence[str],
        subject: str = "",
        body: str = "",
        *,
        cc: Sequence[str] = (),
        html: str | None = None,
        attachments: Sequence[Attachment] = (),
        name: str | None = None,
        bcc: Sequence[str] = (),
    ) -> None:
        """The user ``sender`` writes a message at time ``at`` and presses Send.

        ``to`` and ``cc`` appear in the headers; ``bcc`` recipients get the message too but are
        named only in the envelope (RCPT TO), never in the headers. ``name`` is the message's
        local id (its Message-ID is ``<name@sender's domain>``); by default ``m1``, ``m2``, ...
        """
        if address_key(sender) not in self._user_specs:
            raise WorldError(f"message at t={at}: {sender} is not a user of this world")
        draft = Draft(
            at=at,
            to=tuple(to),
            cc=tuple(cc),
            bcc=tuple(bcc),
            subject=subject,
            body=body,
            html=html,
            attachments=tuple(attachments),
            local_id=name,
        )
        self._drafts.setdefault(address_key(sender), []).append(draft)

    def plan(self, sender: str, drafts: Iterator[PlannedDraft]) -> None:
        """The user ``sender`` will write ``drafts``, drawn one by one as the clock reaches them.

        ``drafts`` yields planned messages in order of time; each is written in full (its text
        drawn, its attachments made) only when it is sent, so a day of a million messages is
        not held in memory before it happens (``scenario.builder``'s traffic works this way).
        """
        if address_key(sender) not in self._user_specs:
            raise WorldError(f"planned messages: {sender} is not a user of this world")
        self._planned.setdefault(address_key(sender), []).append(drafts)

    def telnet(self, script: TelnetScript) -> None:
        """A student types ``script`` at a server."""
        self._telnet_scripts.append(script)

    def add_web_server(self, node: str, files: dict[str, Attachment]) -> None:
        """Serve ``files`` (URL path -> file) over HTTP/1.1 on port 80 of ``node``."""
        self.topology.node(node)
        self._web_files.setdefault(node, {}).update(files)

    def download(self, download: Download) -> None:
        """Someone fetches files from a web server (see :class:`mailsim.nodes.web.Download`)."""
        self._downloads.append(download)

    def link_down(self, a: str, b: str, at: float, duration: float | None = None) -> None:
        """The link a-b fails at ``at`` for ``duration`` seconds (None: for ever)."""
        self._fault_specs.append(("link_down", (a, b, at, duration), {}))

    def crash(self, node: str, at: float, restart_after: float | None = None) -> None:
        """``node`` crashes at ``at`` and restarts ``restart_after`` seconds later."""
        self._fault_specs.append(("node_crash", (node, at, restart_after), {}))

    def stop_service(self, node: str, port: int, at: float, duration: float | None = None) -> None:
        """The service on ``port`` of ``node`` stops at ``at`` for ``duration`` seconds."""
        self._fault_specs.append(("service_down", (node, port, at, duration), {}))

    def random_faults(self, kind: str, *args: Any, **kwargs: Any) -> None:
        """Random failures (``kind`` ``link``, ``node`` or ``service``; see ``net.faults``)."""
        self._fault_specs.append((f"random_{kind}", args, kwargs))

    # -- bringing it to life -------------------------------------------------------------------

    def start(self) -> None:
        """Build the network, DNS, servers and agents, and start their processes (once)."""
        if self._started:
            return
        self._started = True
        if not self._prepared:
            self._add_dns_node()
        self.network = Network(self.env, self.topology, self.recorder, self.streams)
        self.faults = Faults(self.network)
        if not self._prepared:
            self._fill_zones()
        self._prepared = True
        DnsServer(self.network, self.dns_node, self.dns)  # type: ignore[arg-type]
        for node, domains, users, settings in self.mail_server_specs():
            server = MailServer(self, node, domains, users, settings)
            self.servers[node] = server
            server.start()
        for spec in self._user_specs.values():
            agent = UserAgent(
                self,
                spec["host"],
                spec["address"],
                spec["password"],
                spec["server"],
                check_every=spec["check_every"],
                keep_on_server=spec["keep_on_server"],
                name=spec["name"],
                inbox_kept=self.inbox_kept,
            )
            key = address_key(spec["address"])
            agent.write(self._drafts.pop(key, []))
            for planned in self._planned.pop(key, []):
                agent.plan(planned)
            self.agents[key] = agent
            agent.start()
        for script in self._telnet_scripts:
            session = TelnetSession(self, script)
            self.telnets.append(session)
            session.start()
        for node, files in self._web_files.items():
            self.web_servers[node] = WebServer(self, node, files)
            self.web_servers[node].start()
        for download in self._downloads:
            browser = Browser(self, download)
            self.browsers.append(browser)
            browser.start()
        for method, args, kwargs in self._fault_specs:
            getattr(self.faults, method)(*args, **kwargs)

    def prepare(self) -> None:
        """Complete the description without starting anything: the implicit DNS node, every
        node's address and the DNS zones. :meth:`start` does it too; the live servers
        (``mailsim serve SCENARIO``) need only this."""
        if self._prepared:
            return
        self._prepared = True
        self._add_dns_node()
        self.topology.assign_addresses()
        self._fill_zones()

    def mail_server_specs(self) -> list[tuple[str, list[str], dict[str, str], ServerSettings]]:
        """Each mail server as (node, domains as written, users as local part -> password,
        settings), in the order they were added."""
        users_by_server: dict[str, dict[str, str]] = {node: {} for node in self._server_specs}
        for spec in self._user_specs.values():
            local = local_part(spec["address"])  # "john smith"@usa.com logs in as john smith
            users_by_server[spec["home"]][local] = spec["password"]
        return [
            (node, spec["written"], users_by_server[node], spec["settings"])
            for node, spec in self._server_specs.items()
        ]

    def user_addresses(self) -> list[str]:
        """Every user's address, in the order they were added."""
        return [spec["address"] for spec in self._user_specs.values()]

    def scheduled_faults(self) -> list[tuple[str, tuple[Any, ...], dict[str, Any]]]:
        """The faults described so far, as (``Faults`` method name, args, keyword args)."""
        return list(self._fault_specs)

    def _add_dns_node(self) -> None:
        """Without a DNS node, add ``dns`` at the site "Internet", 1 ms from every mail server.

        Being an end point it never carries other traffic (see ``net.routing``), so lookups cost
        a 2 ms round trip wherever they are made (docs/scenario-language.md, "The DNS server").
        """
        if self.dns_node is not None:
            self.topology.node(self.dns_node)
            return
        self.topology.add_node(IMPLICIT_DNS_NAME, kind="dns", site="Internet")
        for server in self._server_specs:
            self.topology.add_link(
                IMPLICIT_DNS_NAME, server, latency=IMPLICIT_DNS_LATENCY, bandwidth=1e9
            )
        self.dns_node = IMPLICIT_DNS_NAME

    def _fill_zones(self) -> None:
        """A records for every node, MX records for every server's domains (preference 10)
        unless given explicitly (both only with :attr:`generate_dns`), and :attr:`a_records`.

        A generated MX names its server by a full name in the server's first domain
        (``usa-mail.usa.com``, with its A record), as a real zone would, so the answer in
        ``trace.pcap`` reads like one from the Internet.
        """
        if self.generate_dns:
            for each in self.topology.nodes:
                self.dns.add_a(each.name, self.topology.ip_of(each.name))
            for server, spec in self._server_specs.items():
                if not spec["domains"]:
                    continue
                exchange = f"{server}.{spec['domains'][0]}"
                self.dns.add_a(exchange, self.topology.ip_of(server))
                for domain in spec["domains"]:
                    if domain not in self.explicit_mx:
                        self.dns.add_mx(domain, 10, exchange)
        for name, address, owner, ttl in self.a_records:
            if address is None:
                if owner is None:
                    raise WorldError(f"A record {name}: give an address or a node")
                address = self.topology.ip_of(owner)
            self.dns.add_a(name, address, ttl)

    def resolver_for(self, node: str) -> Resolver:
        """The DNS resolver of ``node`` (one per node, with its cache)."""
        resolver = self._resolvers.get(node)
        if resolver is None:
            resolver = Resolver(
                self.network,
                node,
                self.dns_node,  # type: ignore[arg-type]
                timeout=self.dns_timeout,
            )
            self._resolvers[node] = resolver
        return resolver

    def run(self, until: float) -> None:
        """Start the world if needed and run the clock until ``until`` seconds."""
        self.start()
        if until > self.env.now:
            self.env.run(until=until)

    # -- book-keeping shared by the nodes -------------------------------------------------------

    def new_message_name(self) -> str:
        """A fresh message name (``m1``, ``m2``, ...) for a message that was not given one."""
        self._message_count += 1
        return f"m{self._message_count}"

    def note_submit(
        self, msg: str, node: str, sender: str, rcpts: Sequence[str], size: int, kind: str = "mail"
    ) -> None:
        """A message enters the mail system (step 1): record ``mail.submit`` once per message."""
        if msg in self._known_messages:
            return
        self._known_messages.add(msg)
        self.recorder.emit(
            "mail.submit",
            msg=msg,
            node=node,
            sender=sender,
            rcpts=list(rcpts),
            size=size,
            kind=kind,
        )

    def note_arrival(self, item: Any, node: str, kind: str = "mail") -> None:
        """A server took a message no user agent submitted (telnet, a bounce): record it once."""
        self.note_submit(item.id, node, item.sender, item.recipients, item.size, kind=kind)

    def books(self) -> Books:
        """The books of the run so far (every accepted pair's fate; see ``trace.books``)."""
        return self.ledger.books()
