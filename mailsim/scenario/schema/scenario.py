"""The whole scenario model, with its telnet sessions and trace options."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import (
    BeforeValidator,
    Field,
    PrivateAttr,
    ValidationInfo,
    model_validator,
)

from mailsim.scenario.errors import Problem

if TYPE_CHECKING:
    from mailsim.scenario.result import Result

from mailsim.protocol.smtp_address import address_key
from mailsim.scenario.schema.faults import Fault
from mailsim.scenario.schema.fields import (
    NodeName,
    NonEmptyText,
    PositiveDuration,
    Text,
    _empty_if_null,
    _Section,
    _whole,
)
from mailsim.scenario.schema.network import DnsConfig, Link, MxRecord, Node, _DnsSection
from mailsim.scenario.schema.people import Message, TrafficGenerator, User
from mailsim.scenario.schema.references import ScenarioParts, check_references
from mailsim.scenario.schema.servers import ServerSettings, _ServersSection, overlay
from mailsim.scenario.schema.sessions import TelnetSession, TraceOptions
from mailsim.scenario.schema.web import Downloads, WebServers


class Scenario(_Section):
    """A whole scenario: the world, the people, the mail, the faults, and how long to run.

    Loaded from YAML by :func:`mailsim.scenario.load_scenario`, which reports every mistake with
    its file, line and column. Built from Python with ``Scenario.model_validate(dict)``, the same
    checks run and a :class:`pydantic.ValidationError` lists them.
    """

    name: NonEmptyText = Field(description="a short title, like 'James mails Steve'")
    description: Text = Field(default="", description="a longer text for the reader")
    seed: Annotated[int, BeforeValidator(_whole(0))] = Field(
        default=1, description="the random seed"
    )
    duration: PositiveDuration = Field(default=86400.0, description="how long the simulation runs")
    nodes: Annotated[dict[NodeName, Node], BeforeValidator(_empty_if_null(dict))] = Field(
        description="the machines, each under its name, like james-pc: {kind: host}"
    )
    links: Annotated[list[Link], BeforeValidator(_empty_if_null(list))] = Field(
        default_factory=list, description="the links between nodes"
    )
    dns: _DnsSection = Field(default_factory=DnsConfig, description="DNS settings and records")
    servers: _ServersSection = Field(
        default_factory=ServerSettings, description="settings of every mail server"
    )
    users: Annotated[list[User], BeforeValidator(_empty_if_null(list))] = Field(
        default_factory=list, description="the people"
    )
    messages: Annotated[list[Message], BeforeValidator(_empty_if_null(list))] = Field(
        default_factory=list, description="messages sent at given times"
    )
    traffic: Annotated[list[TrafficGenerator], BeforeValidator(_empty_if_null(list))] = Field(
        default_factory=list, description="random background mail"
    )
    faults: Annotated[list[Fault], BeforeValidator(_empty_if_null(list))] = Field(
        default_factory=list, description="scheduled and random failures"
    )
    telnet: Annotated[list[TelnetSession], BeforeValidator(_empty_if_null(list))] = Field(
        default_factory=list, description="scripted telnet sessions"
    )
    web_servers: WebServers = Field(
        default_factory=list, description="nodes that serve files over HTTP"
    )
    downloads: Downloads = Field(
        default_factory=list, description="files fetched over HTTP at given times"
    )
    trace: Annotated[TraceOptions, BeforeValidator(_empty_if_null(dict))] = Field(
        default_factory=TraceOptions, description="what to record"
    )
    #: The stem of the file it was loaded from (a bundled scenario's name); set by the loader.
    _source_stem: str | None = PrivateAttr(default=None)
    #: What the loader warned about, as the file was written; see :attr:`warnings`.
    _warnings: list[Problem] = PrivateAttr(default_factory=list)

    def __eq__(self, other: object) -> bool:
        # Two scenarios are equal when they say the same: where each was loaded from (its slug,
        # the places of its warnings) is not part of what it says.
        if not isinstance(other, Scenario):
            return NotImplemented
        return type(self) is type(other) and self.__dict__ == other.__dict__

    @property
    def warnings(self) -> list[Problem]:
        """What the loader found valid but probably not meant, placed in the file like errors:
        a recipient no user or domain of the scenario serves, a bare number where a unit is
        expected (``latency: 60`` is 60 s), a mail server others cannot reach. Empty for a
        scenario built in Python; not updated by later edits.
        """
        return list(self._warnings)

    @property
    def slug(self) -> str:
        """The folder name of its runs (``runs/<slug>/``): the stem of the file it was loaded
        from, so ``link-outage`` and ``path/x.yaml`` write ``runs/link-outage/`` and ``runs/x/``
        whatever their ``name:`` says; for a scenario made from text or in Python, its name made
        safe for a folder."""
        return self._source_stem or folder_name(self.name)

    @model_validator(mode="after")
    def _tie_together(self, info: ValidationInfo) -> Scenario:
        # Fill in what defaults to another part of the scenario, so the builder reads it directly.
        for user in self.users:
            if user.submission_server is None:
                user.submission_server = self.server_for_domain(user.domain)
        if (info.context or {}).get("skip_reference_checks"):
            return self  # the loader runs them itself, to place each problem in the file
        issues = check_references(ScenarioParts.of(self))
        if issues:
            raise ValueError("\n".join(str(issue) for issue in issues))
        return self

    def run(self, seed: int | None = None, until: float | None = None, **options: Any) -> Result:
        """Build the world this scenario describes and run it; returns the :class:`Result`.

        Args:
            seed: overrides ``seed``.
            until: simulated seconds to run instead of ``duration``.
            options: passed to :func:`mailsim.scenario.result.run_scenario` (``segments``,
                ``progress``, ``strict``).
        """
        from mailsim.scenario.result import run_scenario

        return run_scenario(self, seed=seed, until=until, **options)

    # --- what the builder asks --------------------------------------------------------------

    @property
    def mail_servers(self) -> dict[str, Node]:
        """The nodes of kind mailserver, by name, in file order."""
        return {name: node for name, node in self.nodes.items() if node.kind == "mailserver"}

    @property
    def dns_node(self) -> str | None:
        """The name of the DNS node given in ``nodes``, or None when mailsim adds its own."""
        return next((name for name, node in self.nodes.items() if node.kind == "dns"), None)

    def server_for_domain(self, domain: str) -> str | None:
        """The mail server that serves ``domain`` (any case), or None."""
        wanted = domain.lower()
        for name, node in self.mail_servers.items():
            if any(served.lower() == wanted for served in node.domains):
                return name
        return None

    def mailbox_server(self, address: str) -> str | None:
        """The mail server that holds the mailbox of ``address``, or None."""
        return self.server_for_domain(address.rsplit("@", 1)[-1])

    def user(self, address: str) -> User | None:
        """The user with ``address`` (any case, quoted or not: ``"ann"@a.org`` is ``ann@a.org``)."""
        wanted = address_key(address)
        return next((user for user in self.users if address_key(user.address) == wanted), None)

    def settings_for(self, server: str) -> ServerSettings:
        """The settings of mail server ``server``: top-level ``servers`` with its overrides."""
        node = self.nodes[server]
        return self.servers if node.settings is None else overlay(self.servers, node.settings)

    def mx_records(self) -> list[MxRecord]:
        """The MX records the DNS serves: the explicit ones, then (unless ``dns.generate`` is
        false) one generated record, preference 10, for every domain without an explicit one.
        A record's ``ttl`` of None means ``dns.ttl``.
        """
        records = [record for record in self.dns.records if isinstance(record, MxRecord)]
        if self.dns.generate:
            covered = {record.name.lower() for record in records}
            for name, node in self.mail_servers.items():
                for domain in node.domains:
                    if domain.lower() not in covered:
                        records.append(MxRecord(type="MX", name=domain, exchange=name))
                        covered.add(domain.lower())
        return records


def folder_name(text: str) -> str:
    """``text`` made safe as one folder name: runs of other characters become ``-``, lower case."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.").lower() or "run"
