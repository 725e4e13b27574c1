"""The network sections: nodes, links and DNS, and the ports each kind of node listens on."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    Discriminator,
    Field,
    Tag,
    field_validator,
)

if TYPE_CHECKING:
    pass

from mailsim.scenario.schema.fields import (
    Bandwidth,
    Domain,
    Duration,
    Flag,
    IPv4,
    NodeKind,
    NodeName,
    NodePair,
    PositiveDuration,
    Text,
    _empty_if_null,
    _loss,
    _Section,
    _whole,
)
from mailsim.scenario.schema.servers import ServerSettings

#: The ports a node of each kind listens on: SMTP relay (RFC 5321), submission (RFC 6409), POP3
#: (RFC 1939), DNS. A service fault or a reply fault must name one of these.
SERVICE_PORTS: dict[str, tuple[int, ...]] = {
    "mailserver": (25, 587, 110),
    "dns": (53,),
    "host": (),
    "router": (),
}

#: How messages name each kind of node.
KIND_NAMES: dict[str, str] = {
    "host": "host",
    "router": "router",
    "mailserver": "mail server",
    "dns": "DNS server",
}

#: The name of the DNS node mailsim adds when no node has kind dns (the world adds it:
#: ``mailsim.nodes.world.IMPLICIT_DNS_NAME``, which a test keeps equal to this one).
IMPLICIT_DNS_NAME = "dns"

#: Node kinds that pass packets on. Hosts and DNS servers are end points: a path never crosses them.
FORWARDING_KINDS = frozenset({"router", "mailserver"})


class Node(_Section):
    """A machine of the simulated Internet, named by its key under ``nodes:``."""

    kind: NodeKind = Field(description="one of host, router, mailserver, dns")
    site: Text | None = Field(default=None, description="a place name for plots, like India")
    ip: IPv4 | None = Field(default=None, description="the node's IPv4 address (chosen if absent)")
    domains: list[Domain] = Field(
        default_factory=list, description="mail server only: the mail domains it serves"
    )
    settings: ServerSettings | None = Field(
        default=None, description="mail server only: overrides of the top-level servers settings"
    )

    @field_validator("domains", mode="before")
    @classmethod
    def _one_domain(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class Link(_Section):
    """A point-to-point link between two nodes, the same in both directions."""

    between: NodePair = Field(description="the two nodes it joins, like [james-pc, india-mail]")
    latency: Duration = Field(default=0.001, description="one-way propagation delay")
    bandwidth: Bandwidth = Field(default=100e6, description="bits per second in each direction")
    loss: Annotated[float, BeforeValidator(_loss)] = Field(
        default=0.0, description="probability that a segment is lost"
    )
    jitter: Duration = Field(
        default=0.0, description="up to this much random extra delay per segment"
    )
    mtu: Annotated[int, BeforeValidator(_whole(68, 65535))] = Field(
        default=1500, description="largest IP packet in bytes (RFC 791: at least 68)"
    )


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


class MxRecord(_Section):
    """An MX record: mail for ``name`` goes to node ``exchange`` (RFC 5321 5.1)."""

    type: Annotated[Literal["MX"], BeforeValidator(_upper)] = Field(description="MX")
    name: Domain = Field(description="the mail domain, like usa.com")
    exchange: NodeName = Field(description="the node that receives its mail, like usa-mail")
    preference: Annotated[int, BeforeValidator(_whole(0, 65535))] = Field(
        default=10, description="lower is tried first"
    )
    ttl: Duration | None = Field(default=None, description="time to live (null: dns.ttl)")


class ARecord(_Section):
    """An A record: the name ``name`` has address ``address`` (or the address of ``node``)."""

    type: Annotated[Literal["A"], BeforeValidator(_upper)] = Field(description="A")
    name: Domain = Field(description="the host name, like usa.com")
    address: IPv4 | None = Field(default=None, description="the IPv4 address")
    node: NodeName | None = Field(default=None, description="a node whose address to give")
    ttl: Duration | None = Field(default=None, description="time to live (null: dns.ttl)")


def _record_tag(value: Any) -> str | None:
    if isinstance(value, BaseModel):
        return type(value).__name__
    if isinstance(value, dict):
        kind = value.get("type")
        if isinstance(kind, str):
            return {"MX": "MxRecord", "A": "ARecord"}.get(kind.upper())
    return None


DnsRecord = Annotated[
    Annotated[MxRecord, Tag("MxRecord")] | Annotated[ARecord, Tag("ARecord")],
    Discriminator(
        _record_tag,
        custom_error_type="record_shape",
        custom_error_message="a DNS record needs type: MX or type: A",
    ),
]


class DnsConfig(_Section):
    """The DNS. Records are generated from the mail servers unless ``generate`` is false."""

    ttl: Duration = Field(
        default=3600.0, description="time to live of records without their own ttl"
    )
    timeout: PositiveDuration = Field(
        default=5.0, description="how long a resolver waits for an answer"
    )
    generate: Flag = Field(default=True, description="generate MX and A records from the nodes")
    records: Annotated[list[DnsRecord], BeforeValidator(_empty_if_null(list))] = Field(
        default_factory=list, description="explicit records"
    )


#: The ``dns:`` section; ``dns:`` with nothing after it means the defaults.
_DnsSection = Annotated[DnsConfig, BeforeValidator(_empty_if_null(dict))]
