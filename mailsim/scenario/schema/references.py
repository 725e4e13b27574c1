"""Reference checks: what ties the parts of a scenario together, which no single field can know."""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import (
    TypeAdapter,
    ValidationError,
)

from mailsim.scenario.errors import closest, did_you_mean

if TYPE_CHECKING:
    from mailsim.scenario.schema.scenario import Scenario

from mailsim.mail.units import format_duration
from mailsim.protocol.smtp_address import address_key
from mailsim.scenario.schema.faults import (
    Fault,
    LinkOutage,
    NodeCrash,
    RandomFault,
    ReplyFault,
    ReplySpec,
    ServiceStop,
    fault_code_problem,
)
from mailsim.scenario.schema.fields import _NODE_NAME, PositiveDuration
from mailsim.scenario.schema.issues import Issue, Loc
from mailsim.scenario.schema.network import (
    FORWARDING_KINDS,
    IMPLICIT_DNS_NAME,
    KIND_NAMES,
    SERVICE_PORTS,
    ARecord,
    DnsConfig,
    DnsRecord,
    Link,
    MxRecord,
    Node,
    _DnsSection,
)
from mailsim.scenario.schema.people import Message, TrafficGenerator, User
from mailsim.scenario.schema.servers import (
    POLICY_FIELDS,
    RetrySettings,
    ServerSettings,
    _ServersSection,
    overlay,
)
from mailsim.scenario.schema.sessions import TelnetSession
from mailsim.scenario.schema.web import DownloadSpec, WebServerSpec
from mailsim.scenario.schema.workload import check_workload


@dataclass
class ScenarioParts:
    """The parts of a scenario that validated, each list item with its index in the YAML.

    The loader checks references even when some items are broken, so a student sees every
    problem at once. Broken items are left out of the lists, but their names stay in the
    ``*_names`` sets so that a reference to a broken node is not also called unknown.
    """

    #: Seconds, or None when ``duration`` itself is broken (time checks are then skipped).
    duration: float | None
    #: Every node name written, valid or not; None when ``nodes`` is missing or not a mapping.
    node_names: list[str] | None
    #: Every mail domain written under a node (lower case); None when they cannot be known.
    domain_names: set[str] | None
    nodes: dict[str, Node]
    links: list[tuple[int, Link]]
    #: True when every node and link validated, so paths through the network can be judged.
    network_complete: bool
    dns: DnsConfig | None
    #: The DNS records that validated, with their index in ``dns.records``.
    dns_records: list[tuple[int, MxRecord | ARecord]]
    servers: ServerSettings | None
    #: Every user address written (lower case), valid or not; None when ``users`` is broken.
    user_addresses: list[str] | None
    users: list[tuple[int, User]]
    messages: list[tuple[int, Message]] = field(default_factory=list)
    traffic: list[tuple[int, TrafficGenerator]] = field(default_factory=list)
    faults: list[tuple[int, Any]] = field(default_factory=list)
    telnet: list[tuple[int, TelnetSession]] = field(default_factory=list)
    web_servers: list[tuple[int, WebServerSpec]] = field(default_factory=list)
    downloads: list[tuple[int, DownloadSpec]] = field(default_factory=list)

    @classmethod
    def of(cls, scenario: Scenario) -> ScenarioParts:
        """The parts of a scenario that validated completely."""
        return cls(
            duration=scenario.duration,
            node_names=list(scenario.nodes),
            domain_names={
                domain.lower() for node in scenario.mail_servers.values() for domain in node.domains
            },
            nodes=dict(scenario.nodes),
            links=list(enumerate(scenario.links)),
            network_complete=True,
            dns=scenario.dns,
            dns_records=list(enumerate(scenario.dns.records)),
            servers=scenario.servers,
            user_addresses=[address_key(user.address) for user in scenario.users],
            users=list(enumerate(scenario.users)),
            messages=list(enumerate(scenario.messages)),
            traffic=list(enumerate(scenario.traffic)),
            faults=list(enumerate(scenario.faults)),
            telnet=list(enumerate(scenario.telnet)),
            web_servers=list(enumerate(scenario.web_servers)),
            downloads=list(enumerate(scenario.downloads)),
        )

    @classmethod
    def salvage(cls, data: dict[Any, Any], context: dict[str, Any]) -> ScenarioParts:
        """The parts of raw scenario ``data`` that validate on their own, item by item.

        An item with a broken optional field is checked without that field, so a link with a
        misspelt latency still has its ends checked.
        """

        def one(key: str, kind: Any, default: Any) -> Any:
            if key not in data:
                return default
            return _lenient(kind, data[key], context, repair=False)

        def items(key: str, kind: Any) -> tuple[list[tuple[int, Any]], bool]:
            raw = data.get(key)
            if raw is None:
                return [], True
            if not isinstance(raw, list):
                return [], False
            good = [(i, _lenient(kind, item, context)) for i, item in enumerate(raw)]
            kept = [(i, model) for i, model in good if model is not None]
            return kept, len(kept) == len(raw)

        raw_nodes = data.get("nodes")
        node_names: list[str] | None = None
        domain_names: set[str] | None = None
        nodes: dict[str, Node] = {}
        nodes_complete = False
        if "nodes" in data and (isinstance(raw_nodes, dict) or raw_nodes is None):
            raw_nodes = raw_nodes or {}
            node_names = [name for name in raw_nodes if isinstance(name, str)]
            domain_names = set()
            for name, raw in raw_nodes.items():
                written = raw.get("domains") if isinstance(raw, dict) else None
                written = [written] if isinstance(written, str) else written
                if isinstance(written, list):
                    domain_names.update(d.lower() for d in written if isinstance(d, str))
                node = _lenient(Node, raw, context)
                if isinstance(name, str) and _NODE_NAME.fullmatch(name) and node is not None:
                    nodes[name] = node
            nodes_complete = len(nodes) == len(raw_nodes)
        links, links_complete = items("links", Link)
        raw_dns = data.get("dns")
        raw_records = raw_dns.get("records") if isinstance(raw_dns, dict) else None
        dns_records = [
            (index, record)
            for index, raw in enumerate(raw_records if isinstance(raw_records, list) else [])
            if (record := _lenient(DnsRecord, raw, context)) is not None
        ]
        raw_users = data.get("users")
        user_addresses: list[str] | None = None
        if isinstance(raw_users, list) or raw_users is None:
            user_addresses = [
                address_key(item["address"])
                for item in raw_users or []
                if isinstance(item, dict) and isinstance(item.get("address"), str)
            ]
        return cls(
            duration=one("duration", PositiveDuration, 86400.0),
            node_names=node_names,
            domain_names=domain_names if nodes_complete or domain_names else None,
            nodes=nodes,
            links=links,
            network_complete=nodes_complete and links_complete,
            dns=_lenient(_DnsSection, data.get("dns"), context),
            dns_records=dns_records,
            servers=one("servers", _ServersSection, ServerSettings()),
            user_addresses=user_addresses,
            users=items("users", User)[0],
            messages=items("messages", Message)[0],
            traffic=items("traffic", TrafficGenerator)[0],
            faults=items("faults", Fault)[0],
            telnet=items("telnet", TelnetSession)[0],
            web_servers=items("web_servers", WebServerSpec)[0],
            downloads=items("downloads", DownloadSpec)[0],
        )


_ADAPTERS: dict[Any, TypeAdapter[Any]] = {}


def _lenient(kind: Any, value: Any, context: dict[str, Any], *, repair: bool = True) -> Any:
    """``value`` validated as ``kind``, or None.

    With ``repair``, each key (at any depth of nested mappings) whose value fails is dropped and
    the rest tried again; a required key that is missing or dropped still fails.
    """
    adapter = _ADAPTERS.get(kind)
    if adapter is None:
        adapter = _ADAPTERS[kind] = TypeAdapter(kind)
    for _ in range(8):
        try:
            return adapter.validate_python(value, context=context)
        except ValidationError as error:
            if not (repair and isinstance(value, dict)):
                return None
            value = copy.deepcopy(value)
            for detail in error.errors():
                if detail["type"] == "missing" or not _drop_deepest_key(value, detail["loc"]):
                    return None
    return None


def _drop_deepest_key(value: dict[Any, Any], loc: tuple[Any, ...]) -> bool:
    """Remove the deepest mapping key on the path ``loc`` (union tags skipped); False if none."""
    holder: dict[Any, Any] | None = None
    key: Any = None
    current: Any = value
    for part in loc:
        if isinstance(current, dict) and _hashable(part) and part in current:
            holder, key = current, part
            current = current[part]
        elif isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current):
            current = current[part]
    if holder is None:
        return False
    del holder[key]
    return True


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def path_exists(
    adjacent: Mapping[str, set[str]], kinds: Mapping[str, str], start: str, goal: str
) -> bool:
    """Whether links join ``start`` to ``goal`` through forwarding nodes only (routers and mail
    servers; hosts and DNS servers never forward, as in :mod:`mailsim.net.routing`).

    Args:
        adjacent: each node's neighbours over the links.
        kinds: each node's kind.
    """
    seen = {start}
    frontier = [start]
    while frontier:
        here = frontier.pop()
        if here == goal:
            return True
        if here != start and kinds.get(here) not in FORWARDING_KINDS:
            continue
        for there in adjacent.get(here, ()):
            if there not in seen:
                seen.add(there)
                frontier.append(there)
    return False


def check_references(parts: ScenarioParts) -> list[Issue]:
    """Every problem that ties two parts of a scenario together, in the order of the sections.

    Args:
        parts: what validated (see :class:`ScenarioParts`).

    Returns:
        The issues found; empty when the scenario hangs together.
    """
    return _ReferenceChecker(parts).run()


class _ReferenceChecker:
    """Walks the sections once each; one method per section keeps each rule easy to find."""

    def __init__(self, parts: ScenarioParts) -> None:
        self.parts = parts
        self.issues: list[Issue] = []
        self.kinds = {name: node.kind for name, node in parts.nodes.items()}
        #: Which server serves each domain (lower case), from the nodes that validated.
        self.domains: dict[str, str] = {}
        self.adjacent: dict[str, set[str]] = {}
        #: Every node named at either end of a link.
        self.linked: set[str] = set()
        #: True when every node and link validated and every link end is a node, so that paths
        #: and missing links can be judged without blaming a typo twice.
        self.network_known = parts.network_complete
        #: Link number of each pair of nodes, by the unordered pair.
        self.link_of: dict[frozenset[str], int] = {}

    def run(self) -> list[Issue]:
        self.check_nodes()
        self.check_links()
        self.check_dns()
        self.check_servers()
        self.check_users()
        self.check_messages()
        self.check_traffic()
        self.check_faults()
        self.check_telnet()
        self.check_web()
        self.issues += check_workload(self.parts)
        return self.issues

    # --- helpers ------------------------------------------------------------------------------

    def add(self, loc: Loc, message: str, *, at_key: bool = False) -> None:
        self.issues.append(Issue(loc, message, at_key))

    def known_node(self, name: str, loc: Loc) -> bool:
        """True if ``name`` is a node; otherwise report it at ``loc`` with a suggestion."""
        names = self.parts.node_names
        if not names or name in names:
            return True  # with no usable nodes at all, the nodes section has the problem
        hint = did_you_mean(name, names)
        if not hint:
            listed = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
            hint = f"; the nodes are {listed}"
        self.add(loc, f"unknown node '{name}'{hint}")
        return False

    def known_user(self, address: str, loc: Loc) -> bool:
        """True if ``address`` is a user's; otherwise report it at ``loc`` with a suggestion."""
        addresses = self.parts.user_addresses
        if addresses is None or address_key(address) in addresses:
            return True
        if not addresses:
            self.add(loc, f"unknown user '{address}'; there are no users yet (add a users section)")
            return False
        hint = did_you_mean(address, addresses) or (
            "; the users are " + ", ".join(addresses[:6]) + (", ..." if len(addresses) > 6 else "")
        )
        self.add(loc, f"unknown user '{address}'{hint}")
        return False

    def before_end(self, seconds: float, loc: Loc, consequence: str) -> None:
        """Report ``loc`` if ``seconds`` is not before the end of the run.

        Anything scheduled at or after the end would silently never happen, which would puzzle a
        student more than an error does; so it is an error, for every kind of event.
        """
        end = self.parts.duration
        if end is not None and seconds >= end:
            self.add(
                loc,
                f"{format_duration(seconds)} is not before the end of the run "
                f"(duration {format_duration(end)}), so {consequence}; "
                "make it earlier or the duration longer",
            )

    def reachable(self, start: str, goal: str) -> bool:
        """Whether a path joins ``start`` to ``goal``, passing only through forwarding nodes."""
        return path_exists(self.adjacent, self.kinds, start, goal)

    # --- sections -----------------------------------------------------------------------------

    def check_nodes(self) -> None:
        parts = self.parts
        if parts.node_names is not None and not parts.node_names:
            self.add(("nodes",), "needs at least one node, like james-pc: {kind: host}")
        addresses: dict[str, str] = {}
        dns_node: str | None = None
        for name, node in parts.nodes.items():
            loc: Loc = ("nodes", name)
            if node.kind == "mailserver":
                if not node.domains:
                    self.add(
                        (*loc, "domains"),
                        "a mail server needs at least one domain, like domains: [usa.com]",
                    )
            else:
                if node.domains:
                    self.add(
                        (*loc, "domains"),
                        f"only a mail server serves domains, and {name} is a {node.kind}; "
                        "remove domains or make it kind: mailserver",
                        at_key=True,
                    )
                if node.settings is not None:
                    self.add(
                        (*loc, "settings"),
                        f"only a mail server has settings, and {name} is a {node.kind}",
                        at_key=True,
                    )
            for index, domain in enumerate(node.domains):
                other = self.domains.get(domain.lower())
                if other is not None:
                    self.add(
                        (*loc, "domains", index),
                        f"{domain} is already served by {other}; a domain has one mail server",
                    )
                elif node.kind == "mailserver":
                    self.domains[domain.lower()] = name
            if node.ip is not None:
                if node.ip in addresses:
                    self.add(
                        (*loc, "ip"), f"{node.ip} is already the address of {addresses[node.ip]}"
                    )
                else:
                    addresses[node.ip] = name
            if node.kind == "dns":
                if dns_node is not None:
                    self.add(
                        (*loc, "kind"),
                        f"only one DNS server is supported, and {dns_node} is one already",
                    )
                else:
                    dns_node = name

        if dns_node is None and parts.node_names and IMPLICIT_DNS_NAME in parts.node_names:
            kind = self.kinds.get(IMPLICIT_DNS_NAME)
            if kind is not None:  # with a broken kind, the kind is the problem to report
                self.add(
                    ("nodes", IMPLICIT_DNS_NAME),
                    f"the name {IMPLICIT_DNS_NAME} is kept for the DNS server mailsim adds when "
                    "no node has kind: dns; rename this node or make it kind: dns",
                    at_key=True,
                )

    def check_links(self) -> None:
        parts = self.parts
        for index, link in parts.links:
            loc: Loc = ("links", index, "between")
            a, b = link.between
            known = self.known_node(a, (*loc, 0)) & self.known_node(b, (*loc, 1))
            self.network_known &= known
            if a == b:
                self.add(loc, f"a link joins two different nodes, but both ends are '{a}'")
                continue
            pair = frozenset((a, b))
            if pair in self.link_of:
                self.add(loc, f"{a} and {b} are already linked by links[{self.link_of[pair]}]")
                continue
            self.link_of[pair] = index
            self.linked.update(pair)
            if known:
                self.adjacent.setdefault(a, set()).add(b)
                self.adjacent.setdefault(b, set()).add(a)
        if self.network_known and len(parts.nodes) > 1:
            for name in parts.nodes:
                if name not in self.linked:
                    self.add(
                        ("nodes", name),
                        "is not linked to any other node; add a link like "
                        f"{{between: [{name}, ...]}} under links",
                        at_key=True,
                    )

    def check_dns(self) -> None:
        for index, record in self.parts.dns_records:
            loc: Loc = ("dns", "records", index)
            if isinstance(record, MxRecord):
                self.known_node(record.exchange, (*loc, "exchange"))
            else:
                if record.address is not None and record.node is not None:
                    self.add(loc, "an A record gives either an address or a node, not both")
                elif record.address is None and record.node is None:
                    self.add(loc, "an A record needs an address (like 192.0.2.7) or a node")
                if record.node is not None:
                    self.known_node(record.node, (*loc, "node"))

    def check_servers(self) -> None:
        defaults = self.parts.servers
        if defaults is None:
            return
        self.check_retry(defaults.retry, defaults.retry, ("servers", "retry"))
        for name, node in self.parts.nodes.items():
            if node.kind != "mailserver" or node.settings is None:
                continue
            merged = overlay(defaults, node.settings)
            if "retry" in node.settings.model_fields_set:
                self.check_retry(
                    node.settings.retry, merged.retry, ("nodes", name, "settings", "retry")
                )

    def check_retry(self, written: RetrySettings, merged: RetrySettings, loc: Loc) -> None:
        """Check a retry mapping as ``written`` against the policy it takes effect in."""
        given = written.model_fields_set
        for name in sorted(given & set(POLICY_FIELDS)):
            if POLICY_FIELDS[name] != merged.policy:
                self.add(
                    (*loc, name),
                    f"applies only to policy {POLICY_FIELDS[name]}, but the policy is "
                    f"{merged.policy}; remove it or set policy: {POLICY_FIELDS[name]}",
                    at_key=True,
                )
        low, high = merged.minimal_backoff_time, merged.maximal_backoff_time
        backoffs = given & {"minimal_backoff_time", "maximal_backoff_time"}
        if merged.policy == "postfix" and low > high and backoffs:
            self.add(
                (
                    *loc,
                    "minimal_backoff_time"
                    if "minimal_backoff_time" in given
                    else "maximal_backoff_time",
                ),
                f"minimal_backoff_time ({format_duration(low)}) must not be longer than "
                f"maximal_backoff_time ({format_duration(high)})",
            )
        warn = merged.delay_warning_after
        give_up = merged.effective_give_up_after
        timing = given & {"delay_warning_after", "give_up_after", "rules", "policy"}
        if warn is not None and warn >= give_up and timing:
            self.add(
                (
                    *loc,
                    "delay_warning_after" if "delay_warning_after" in given else "give_up_after",
                ),
                f"the delay warning ({format_duration(warn)}) must come before giving up "
                f"({format_duration(give_up)}); shorten it or set it to null",
            )

    def check_users(self) -> None:
        parts = self.parts
        seen: dict[str, int] = {}
        for index, user in parts.users:
            loc: Loc = ("users", index)
            key = address_key(user.address)
            if key in seen:
                self.add(
                    (*loc, "address"),
                    f"{user.address} is already the address of users[{seen[key]}]",
                )
            else:
                seen[key] = index
            mailbox = self.domains.get(user.domain.lower())
            known_domains = parts.domain_names
            if known_domains is not None and user.domain.lower() not in known_domains:
                if known_domains:
                    hint = _suggest_domain(user.domain, known_domains) or (
                        f"; the mail domains are {', '.join(sorted(known_domains))}"
                    )
                    self.add(
                        (*loc, "address"),
                        f"no mail server serves the domain {user.domain}{hint}; "
                        "a user's mailbox is on the server of their domain",
                    )
                else:
                    self.add(
                        (*loc, "address"),
                        f"no mail server serves the domain {user.domain}; add a node with "
                        f"kind: mailserver and domains: [{user.domain}]",
                    )
            host_ok = self.known_node(user.host, (*loc, "host"))
            kind = self.kinds.get(user.host)
            if host_ok and kind in {"router", "dns"}:
                self.add(
                    (*loc, "host"),
                    f"{user.host} is a {kind}; a user agent runs on a host (or a mail server)",
                )
                host_ok = False
            submission = user.submission_server
            if "submission_server" in user.model_fields_set and submission is not None:
                if not self.known_node(submission, (*loc, "submission_server")):
                    submission = None
                elif submission in self.kinds and self.kinds[submission] != "mailserver":
                    self.add(
                        (*loc, "submission_server"),
                        f"{submission} is a {self.kinds[submission]}, not a mail server",
                    )
                    submission = None
            elif submission is None:
                submission = mailbox
            if not (host_ok and self.network_known and kind is not None):
                continue
            if submission is not None and not self.reachable(user.host, submission):
                self.add(
                    (*loc, "host"),
                    f"{user.host} has no path to {submission}, where this user submits mail; "
                    "add links between them",
                )
            elif (
                user.check_mail_every is not None
                and mailbox is not None
                and mailbox != submission
                and not self.reachable(user.host, mailbox)
            ):
                self.add(
                    (*loc, "host"),
                    f"{user.host} has no path to {mailbox}, where this user's mailbox is; "
                    "add links between them",
                )

    def check_messages(self) -> None:
        for index, message in self.parts.messages:
            loc: Loc = ("messages", index)
            self.before_end(message.at, (*loc, "at"), "the message would never be sent")
            self.known_user(message.sender, (*loc, "from"))
            if not message.recipients:
                self.add((*loc, "to"), "needs at least one recipient in to, cc or bcc")

    def check_traffic(self) -> None:
        parts = self.parts
        users = parts.user_addresses
        for index, generator in parts.traffic:
            loc: Loc = ("traffic", index)
            if users is not None and not users:
                self.add(loc, "needs users to send and receive the messages; add a users section")
                continue
            for number, sender in enumerate(generator.senders or []):
                self.known_user(sender, (*loc, "senders", number))
            self.before_end(generator.start, (*loc, "start"), "the traffic would never start")
            if generator.stop is not None and generator.stop <= generator.start:
                self.add(
                    (*loc, "stop"),
                    f"must be after start ({format_duration(generator.start)}), "
                    f"got {format_duration(generator.stop)}",
                )
            if generator.recipients is not None:
                possible = len({address_key(address) for address in generator.recipients})
            elif users is not None:
                possible = len(set(users)) - 1
            else:
                continue
            if generator.recipients_per_message > possible:
                self.add(
                    (*loc, "recipients_per_message"),
                    f"is {generator.recipients_per_message}, but each sender has only "
                    f"{possible} possible recipient{'' if possible == 1 else 's'}",
                )

    def check_faults(self) -> None:
        #: Scheduled outages by what fails: (start, end, index), to find overlaps.
        outages: dict[tuple[str, ...], list[tuple[float, float, int]]] = {}

        def schedule(what: tuple[str, ...], start: float, length: float | None, loc: Loc) -> None:
            end = math.inf if length is None else start + length
            for other_start, other_end, other in outages.get(what, []):
                if start < other_end and other_start < end:
                    until = "on" if math.isinf(other_end) else f"to {format_duration(other_end)}"
                    self.add(
                        loc,
                        f"overlaps faults[{other}], which fails the same {what[0]} from "
                        f"{format_duration(other_start)} {until}; one outage must end before "
                        "the next starts",
                    )
                    return
            outages.setdefault(what, []).append((start, end, loc[1]))  # type: ignore[arg-type]

        for index, fault in self.parts.faults:
            loc: Loc = ("faults", index)
            if isinstance(fault, LinkOutage):
                if self.check_link_target(fault.link, (*loc, "link")):
                    self.before_end(
                        fault.down_at, (*loc, "down_at"), "the outage would never start"
                    )
                    schedule(
                        ("link", *sorted(fault.link)),
                        fault.down_at,
                        fault.down_for,
                        (*loc, "down_at"),
                    )
            elif isinstance(fault, NodeCrash):
                if self.known_node(fault.node, (*loc, "node")):
                    self.before_end(
                        fault.crash_at, (*loc, "crash_at"), "the crash would never happen"
                    )
                    schedule(
                        ("node", fault.node),
                        fault.crash_at,
                        fault.restart_after,
                        (*loc, "crash_at"),
                    )
            elif isinstance(fault, ServiceStop):
                service = fault.service
                if self.known_node(service.node, (*loc, "service", "node")):
                    self.check_port(service.node, service.port, (*loc, "service", "port"))
                    self.before_end(
                        fault.stop_at, (*loc, "stop_at"), "the service would never stop"
                    )
                    what = ("service", service.node, str(service.port))
                    schedule(what, fault.stop_at, fault.stop_for, (*loc, "stop_at"))
            elif isinstance(fault, RandomFault):
                self.check_random(fault, loc)
            elif isinstance(fault, ReplyFault):
                self.check_reply(fault.reply, (*loc, "reply"))

    def check_link_target(self, pair: tuple[str, str], loc: Loc) -> bool:
        """True if ``pair`` names an existing link; otherwise report it at ``loc``."""
        a, b = pair
        if not (self.known_node(a, (*loc, 0)) & self.known_node(b, (*loc, 1))):
            return False
        if frozenset(pair) in self.link_of or not self.network_known:
            return True
        near = [sorted(p) for p in self.link_of if a in p or b in p]
        hint = ""
        if near:
            hint = "; links from these nodes: " + ", ".join(f"[{x}, {y}]" for x, y in sorted(near))
        self.add(loc, f"there is no link between {a} and {b}{hint}")
        return False

    def check_port(self, node: str, port: int, loc: Loc) -> None:
        kind = self.kinds.get(node)
        if kind is None or port in SERVICE_PORTS[kind]:
            return
        listening = [str(p) for p in SERVICE_PORTS[kind]]
        if listening:
            ports = listening[-1]
            if len(listening) > 1:
                ports = ", ".join(listening[:-1]) + " and " + ports
            self.add(
                loc,
                f"nothing listens on port {port} of {node}; "
                f"a {KIND_NAMES[kind]} listens on {ports}",
            )
        else:
            self.add(loc, f"{node} is a {KIND_NAMES[kind]} and runs no service to stop")

    def check_random(self, fault: RandomFault, loc: Loc) -> None:
        target = fault.target
        if fault.random == "link":
            if isinstance(target, str):
                self.add(
                    (*loc, "target"),
                    f"random: link needs a link as target, a pair like [{target}, ...], "
                    f"got '{target}'",
                )
            else:
                self.check_link_target(target, (*loc, "target"))
        elif isinstance(target, tuple):
            self.add(
                (*loc, "target"),
                "random: node needs one node name as target, got a pair; "
                "use random: link for a link",
            )
        else:
            self.known_node(target, (*loc, "target"))

    def check_reply(self, reply: ReplySpec, loc: Loc) -> None:
        if self.known_node(reply.server, (*loc, "server")):
            kind = self.kinds.get(reply.server)
            if kind is not None and kind != "mailserver":
                self.add(
                    (*loc, "server"), f"{reply.server} is a {kind}; only a mail server replies"
                )
        if reply.port not in (25, 587):
            self.add((*loc, "port"), f"must be 25 or 587 (the SMTP ports), got {reply.port}")
        problem = fault_code_problem(reply.command, reply.code)
        if problem is not None:
            self.add((*loc, "code"), problem)
        self.before_end(reply.start, (*loc, "from"), "the reply fault would never apply")
        if reply.until is not None and reply.until <= reply.start:
            self.add(
                (*loc, "until"),
                f"must be after from ({format_duration(reply.start)}), "
                f"got {format_duration(reply.until)}",
            )

    def check_telnet(self) -> None:
        for index, session in self.parts.telnet:
            loc: Loc = ("telnet", index)
            self.before_end(session.at, (*loc, "at"), "the session would never start")
            client_ok = self.known_node(session.client, (*loc, "from"))
            server_ok = self.known_node(session.server, (*loc, "to"))
            if session.client == session.server:
                self.add(
                    (*loc, "to"), "telnet connects to another node, but from and to are the same"
                )
            elif (
                client_ok
                and server_ok
                and self.network_known
                and not self.reachable(session.client, session.server)
            ):
                self.add((*loc, "to"), f"{session.server} cannot be reached from {session.client}")

    def check_web(self) -> None:
        served: set[str] = set()
        for index, spec in self.parts.web_servers:
            loc: Loc = ("web_servers", index)
            self.known_node(spec.node, (*loc, "node"))
            if spec.node in served:
                self.add(
                    (*loc, "node"), f"{spec.node} already has a web server; list its files once"
                )
            served.add(spec.node)
            seen: set[str] = set()
            for number, file in enumerate(spec.files):
                if file.path in seen:
                    self.add((*loc, "files", number, "path"), f"{file.path} is listed twice")
                seen.add(file.path)
        for index, download in self.parts.downloads:
            loc = ("downloads", index)
            self.before_end(download.at, (*loc, "at"), "the download would never start")
            client_ok = self.known_node(download.client, (*loc, "from"))
            server_ok = self.known_node(download.server, (*loc, "server"))
            if server_ok and download.server not in served and self.parts.web_servers is not None:
                self.add(
                    (*loc, "server"),
                    f"{download.server} serves no files; list it under web_servers "
                    "(nothing listens on its port 80)",
                )
            elif download.client == download.server:
                self.add((*loc, "server"), "the files come from another node, not from 'from'")
            elif (
                client_ok
                and server_ok
                and self.network_known
                and not self.reachable(download.client, download.server)
            ):
                self.add(
                    (*loc, "server"), f"{download.server} cannot be reached from {download.client}"
                )


def _suggest_domain(domain: str, domains: Iterable[str]) -> str:
    """A "did you mean" for a domain, only when it is very close (usa.co, not india.com)."""
    match = closest(domain, domains, cutoff=0.8)
    return f"; did you mean '{match}'?" if match is not None else ""
