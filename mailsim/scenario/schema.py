"""The scenario language: typed models of a YAML scenario, and the checks that tie them together.

A scenario is data (DESIGN.md, principle 3). This module says what a valid scenario is, in two
layers:

1. **Models** (pydantic v2): every section and field, its type, its default and its unit. Human
   units are parsed here, once, by :mod:`mailsim.mail.units`, so a model holds SI base units only:
   durations and times are float seconds, sizes int bytes, bandwidths float bits per second,
   message rates float messages per second. The builder never parses text.
2. **Reference checks** (:func:`check_references`): what no single field can know, such as a link
   to a node that does not exist, a user at a domain no server serves, a message sent after the
   end of the run, or two outages of the same link that overlap.

Every field is documented for teachers in ``docs/scenario-language.md``; a test keeps the two in
step. Error messages talk to a student: what was found and what would be right.
"""

from __future__ import annotations

import contextlib
import copy
import ipaddress
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, NoReturn, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

if TYPE_CHECKING:
    from mailsim.scenario.result import Result

from mailsim.mail.retry import (
    DEFAULT_GIVE_UP_AFTER,
    EXIM_DEFAULT_RULES,
    RetryPolicy,
    RetryRule,
    make_retry_policy,
    parse_retry_rules,
)
from mailsim.mail.units import format_duration, parse_duration, parse_rate, parse_size
from mailsim.scenario.errors import closest, did_you_mean, shown

__all__ = [
    "DOCUMENTATION_RANGES",
    "FORWARDING_KINDS",
    "IMPLICIT_DNS_NAME",
    "KIND_NAMES",
    "POLICY_FIELDS",
    "SERVICE_PORTS",
    "ARecord",
    "Attachment",
    "CommandTimeouts",
    "DnsConfig",
    "DnsRecord",
    "Fault",
    "FileAttachment",
    "FixedSize",
    "GeneratedAttachment",
    "Issue",
    "Link",
    "LinkOutage",
    "LognormalSize",
    "Message",
    "MxRecord",
    "Node",
    "NodeCrash",
    "RandomFault",
    "ReplyFault",
    "ReplySpec",
    "RetrySettings",
    "Scenario",
    "ScenarioParts",
    "ServerSettings",
    "ServiceRef",
    "ServiceStop",
    "SizeSpec",
    "TelnetSession",
    "TraceOptions",
    "TrafficGenerator",
    "UniformSize",
    "User",
    "check_references",
    "explain_shape",
    "overlay",
]

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

# --------------------------------------------------------------------------------------------
# Scalar types: each parses what a person writes and fails with a sentence for a student.
# --------------------------------------------------------------------------------------------


def _fail(message: str) -> NoReturn:
    """Reject a value with ``message``; the loader puts the file, line and field in front."""
    # The message travels in the context so braces in it ('{kind: photo}') are not templates.
    raise PydanticCustomError("mailsim", "{message}", {"message": message})


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        _fail(
            "must be text, got a mapping; a ': ' inside text makes YAML read it as key: value, "
            "so put the text in quotes"
        )
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        _fail(f"must be text, got the number {value!r}; put it in quotes, like '{value}'")
    _fail(f"must be text, got {shown(value)}")


def _nonempty_text(value: Any) -> str:
    text = _text(value)
    if not text.strip():
        _fail("must not be empty")
    return text


_NODE_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,61}[A-Za-z0-9])?")


def _node_name(value: Any) -> str:
    if isinstance(value, str) and _NODE_NAME.fullmatch(value):
        return value
    _fail(
        "must be a node name made of letters, digits, '-', '_' or '.' (like india-mail), "
        f"got {shown(value)}"
    )


# RFC 1035 2.3.1 labels (letters, digits, hyphens inside), at most 255 octets in all (RFC 5321
# 4.5.3.1.2). Underscores are let through: teachers name things 'my_school'.
_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_DOMAIN = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
# RFC 5322 3.2.3 dot-atom local part; quoted local parts are not supported. At most 64 octets
# (RFC 5321 4.5.3.1.1).
_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")


def _domain(value: Any) -> str:
    if isinstance(value, str) and len(value) <= 255 and _DOMAIN.fullmatch(value):
        return value
    _fail(f"must be a domain name like usa.com, got {shown(value)}")


def _address(value: Any) -> str:
    if isinstance(value, str) and value.count("@") == 1:
        local, domain = value.split("@")
        if (
            0 < len(local) <= 64
            and _LOCAL.fullmatch(local)
            and len(domain) <= 255
            and _DOMAIN.fullmatch(domain)
        ):
            return value
    _fail(f"must be an e-mail address like steve@usa.com, got {shown(value)}")


#: The only addresses mailsim uses: the documentation ranges of RFC 5737.
DOCUMENTATION_RANGES = tuple(
    ipaddress.IPv4Network(cidr) for cidr in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")
)


def _ipv4(value: Any) -> str:
    address = None
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            address = ipaddress.IPv4Address(value.strip())
    if address is None:
        _fail(f"must be an IPv4 address like 192.0.2.10, got {shown(value)}")
    if not any(address in network for network in DOCUMENTATION_RANGES):
        _fail(
            "must be in 192.0.2.0/24, 198.51.100.0/24 or 203.0.113.0/24, the ranges kept for "
            f"examples (RFC 5737), got {shown(value)}"
        )
    if str(address).endswith((".0", ".255")):
        _fail(f"must not be a network or broadcast address (.0 or .255), got {shown(value)}")
    return str(address)


def _choice(*options: str) -> Callable[[Any], str]:
    """A validator accepting one of ``options`` in any case, returned as spelt in ``options``."""
    spelt = {option.lower(): option for option in options}

    def check(value: Any) -> str:
        if isinstance(value, str) and value.strip().lower() in spelt:
            return spelt[value.strip().lower()]
        listed = ", ".join(options)
        _fail(f"must be one of {listed}, got {shown(value)}{did_you_mean(value, options)}")

    return check


def _whole(low: int | None = None, high: int | None = None) -> Callable[[Any], int]:
    """A validator for a whole number within ``[low, high]``."""

    def check(value: Any) -> int:
        number: int
        if isinstance(value, bool):
            _fail(f"must be a whole number, got {shown(value)}")
        if isinstance(value, int):
            number = value
        elif (isinstance(value, float) and value.is_integer()) or (
            isinstance(value, str) and re.fullmatch(r"\s*[+-]?[0-9]+\s*", value)
        ):
            number = int(value)
        else:
            _fail(f"must be a whole number, got {shown(value)}")
        if low is not None and number < low:
            _fail(f"must be at least {low}, got {number}")
        if high is not None and number > high:
            _fail(f"must be at most {high}, got {number}")
        return number

    return check


def _number(low: float = 0.0) -> Callable[[Any], float]:
    """A validator for a finite number of at least ``low``."""

    def check(value: Any) -> float:
        if (isinstance(value, (int, float)) and not isinstance(value, bool)) or (
            isinstance(value, str) and re.fullmatch(r"\s*[+-]?[0-9]*\.?[0-9]+\s*", value)
        ):
            number = float(value)
        else:
            _fail(f"must be a number, got {shown(value)}")
        if not math.isfinite(number) or number < low:
            _fail(f"must be a number of at least {low:g}, got {shown(value)}")
        return number

    return check


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"yes", "on", "true"}:
        return True
    if isinstance(value, str) and value.strip().lower() in {"no", "off", "false"}:
        return False
    _fail(f"must be true or false, got {shown(value)}")


def _probability(value: Any) -> float:
    number: float
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str) and re.fullmatch(r"\s*[0-9]*\.?[0-9]+\s*%\s*", value):
        number = float(value.strip().rstrip("%")) / 100.0
    else:
        _fail(f"must be a probability from 0 to 1 (or a percentage like '5%'), got {shown(value)}")
    if not 0.0 <= number <= 1.0:
        _fail(f"must be a probability from 0 to 1 (or a percentage like '5%'), got {shown(value)}")
    return number


def _loss(value: Any) -> float:
    loss = _probability(value)
    if loss >= 1.0:
        _fail(
            "must be below 1; a link that loses every packet is a link that is down, "
            "so use a fault such as {link: [a, b], down_at: 0s}"
        )
    return loss


def _is_negative(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().startswith("-")
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0


def _quantity(value: Any, parse: Callable[[Any], Any], example: str) -> Any:
    """``value`` parsed by ``parse`` (a duration, size or rate), or a problem saying why not."""
    if _is_negative(value):
        _fail(f"must not be negative, got {shown(value)}")
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        _fail(f"must be {example}, got {shown(value)}")
    try:
        return parse(value)
    except ValueError as error:
        _fail(str(error))


def _duration(value: Any) -> float:
    seconds: float = _quantity(value, parse_duration, "a duration like '120ms' or '30min'")
    return seconds


def _positive_duration(value: Any) -> float:
    seconds = _duration(value)
    if seconds <= 0:
        _fail(f"must be longer than zero, got {shown(value)}")
    return seconds


def _size(value: Any) -> int:
    # parse_size accepts floats too ('1.5MB' and 1.5e6 alike).
    size: int = _quantity(value, parse_size, "a size like '2MB' or '512KiB'")
    return size


def _positive_size(value: Any) -> int:
    size = _size(value)
    if size <= 0:
        _fail(f"must be larger than zero, got {shown(value)}")
    return size


def _bandwidth(value: Any) -> float:
    rate: float = _quantity(value, parse_rate, "a rate like '10Mbps' or '64kbps'")
    return rate


_EVENT_RATE = re.compile(r"\s*([0-9]*\.?[0-9]+)\s*(?:/|per\s)\s*(.+?)\s*")


def _event_rate(value: Any) -> float:
    """Messages per second from ``'12/h'``, ``'0.5/min'``, ``'3 per day'`` or ``'1/10min'``."""
    hint = "must be a rate like '12/h' (12 messages an hour) or '1/10min'"
    match = _EVENT_RATE.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        _fail(f"{hint}, got {shown(value)}")
    count = float(match.group(1))
    per = match.group(2)
    try:
        seconds = parse_duration(per if per[0].isdigit() else "1" + per)
    except ValueError:
        _fail(f"{hint}, got {shown(value)}")
    if count <= 0 or seconds <= 0:
        _fail(f"{hint} above zero, got {shown(value)}")
    return count / seconds


def _one_or_many(value: Any) -> Any:
    """A single item where a list is expected stands for a list of one (``to: steve@usa.com``)."""
    if isinstance(value, str):
        return [value]
    if value is None:
        _fail("must be an address or a list of addresses, got null")
    return value


def _pair(value: Any) -> Any:
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return value
    got = f"a list of {len(value)}" if isinstance(value, (list, tuple)) else shown(value)
    _fail(f"must be a pair of node names like [james-pc, india-mail], got {got}")


def _target(value: Any) -> str | tuple[str, str]:
    if isinstance(value, (list, tuple)):
        first, second = _pair(value)
        return (_node_name(first), _node_name(second))
    if isinstance(value, str):
        return _node_name(value)
    _fail(f"must be a node name, or a pair of node names for a link, got {shown(value)}")


def _empty_if_null(kind: type) -> Callable[[Any], Any]:
    """A section left empty in YAML (``links:`` with nothing under it) is an empty section."""

    def check(value: Any) -> Any:
        return kind() if value is None else value

    return check


Text = Annotated[str, BeforeValidator(_text)]
NonEmptyText = Annotated[str, BeforeValidator(_nonempty_text)]
NodeName = Annotated[str, BeforeValidator(_node_name)]
Domain = Annotated[str, BeforeValidator(_domain)]
Address = Annotated[str, BeforeValidator(_address)]
IPv4 = Annotated[str, BeforeValidator(_ipv4)]
Flag = Annotated[bool, BeforeValidator(_flag)]
Probability = Annotated[float, BeforeValidator(_probability)]
#: Seconds, from '120ms', '30min', '2d' or a bare number of seconds; never negative.
Duration = Annotated[float, BeforeValidator(_duration)]
#: Seconds, as :data:`Duration`, and more than zero.
PositiveDuration = Annotated[float, BeforeValidator(_positive_duration)]
#: Bytes, from '2MB', '512KiB' or a bare number of bytes.
Size = Annotated[int, BeforeValidator(_size)]
PositiveSize = Annotated[int, BeforeValidator(_positive_size)]
#: Bits per second, from '10Mbps', '64kbps', '1MB/s' or a bare number of bits per second.
Bandwidth = Annotated[float, BeforeValidator(_bandwidth)]
#: Messages per second, from '12/h'.
EventRate = Annotated[float, BeforeValidator(_event_rate)]
Port = Annotated[int, BeforeValidator(_whole(1, 65535))]
NodePair = Annotated[tuple[NodeName, NodeName], BeforeValidator(_pair)]
Recipients = Annotated[list[Address], BeforeValidator(_one_or_many)]
NodeKind = Annotated[
    Literal["host", "router", "mailserver", "dns"],
    BeforeValidator(_choice("host", "router", "mailserver", "dns")),
]
AttachmentKind = Annotated[
    Literal["photo", "video", "document", "file"],
    BeforeValidator(_choice("photo", "video", "document", "file")),
]


class _Section(BaseModel):
    """Base of every scenario mapping: unknown keys are errors, never silently ignored."""

    model_config = ConfigDict(
        extra="forbid", arbitrary_types_allowed=False, validate_assignment=True
    )


# --------------------------------------------------------------------------------------------
# Mail server settings (top-level `servers:` defaults, per-node `settings:` overrides)
# --------------------------------------------------------------------------------------------


def _retry_rules(value: Any) -> tuple[RetryRule, ...]:
    """Exim retry rules from text, parsed by :func:`mailsim.mail.retry.parse_retry_rules`."""
    if isinstance(value, tuple) and all(isinstance(rule, RetryRule) for rule in value):
        return value
    if isinstance(value, list) and all(isinstance(rule, str) for rule in value):
        value = "; ".join(value)
    if not isinstance(value, str):
        _fail(f"must be Exim retry rules as text, like '{EXIM_DEFAULT_RULES}', got {shown(value)}")
    try:
        return parse_retry_rules(value)
    except ValueError as error:
        _fail(str(error))


RetryRules = Annotated[tuple[RetryRule, ...], BeforeValidator(_retry_rules)]


class RetrySettings(_Section):
    """When a deferred message is tried again, and when it is given up (RFC 5321 4.5.4.1).

    ``fixed`` waits ``interval`` plus a uniform random part of up to ``jitter`` (the story's
    "every 30 or 40 minutes"); ``postfix`` waits the message's age clamped to
    ``[minimal_backoff_time, maximal_backoff_time]`` and tries at the next queue scan; ``exim``
    follows ``rules``. The field names are those of :mod:`mailsim.mail.retry` (and of Postfix), so
    :meth:`to_policy` hands them over unchanged.
    """

    policy: Annotated[
        Literal["fixed", "postfix", "exim"], BeforeValidator(_choice("fixed", "postfix", "exim"))
    ] = Field(default="fixed", description="the retry schedule: fixed, postfix or exim")
    interval: PositiveDuration = Field(
        default=1800.0, description="fixed policy: the wait between tries"
    )
    jitter: Duration = Field(default=600.0, description="fixed policy: up to this much extra wait")
    minimal_backoff_time: PositiveDuration = Field(
        default=300.0, description="postfix policy: the shortest wait"
    )
    maximal_backoff_time: PositiveDuration = Field(
        default=4000.0, description="postfix policy: the longest wait"
    )
    queue_run_delay: PositiveDuration = Field(
        default=300.0, description="postfix policy: time between scans of the deferred queue"
    )
    rules: RetryRules = Field(
        default_factory=lambda: parse_retry_rules(EXIM_DEFAULT_RULES),
        description="exim policy: the retry rules",
    )
    queue_run_interval: PositiveDuration | None = Field(
        default=None, description="exim policy: time between queue runs (null: try when due)"
    )
    give_up_after: PositiveDuration | None = Field(
        default=None,
        description="age at which the message is bounced (null: 5d; exim: the last cutoff)",
    )
    delay_warning_after: PositiveDuration | None = Field(
        default=None, description="age at which the sender is warned of the delay (null: never)"
    )

    @property
    def effective_give_up_after(self) -> float:
        """``give_up_after``, or the policy's own default when it is null."""
        if self.give_up_after is not None:
            return self.give_up_after
        return self.rules[-1].cutoff if self.policy == "exim" else DEFAULT_GIVE_UP_AFTER

    def to_policy(self) -> RetryPolicy:
        """The :class:`mailsim.mail.retry.RetryPolicy` these settings describe."""
        settings: dict[str, Any] = {
            name: getattr(self, name)
            for name, policy in POLICY_FIELDS.items()
            if policy == self.policy
        }
        if self.give_up_after is not None:
            settings["give_up_after"] = self.give_up_after
        settings["delay_warning_after"] = self.delay_warning_after
        return make_retry_policy(self.policy, **settings)


#: The fields of :class:`RetrySettings` that only one policy reads.
POLICY_FIELDS: dict[str, str] = {
    "interval": "fixed",
    "jitter": "fixed",
    "minimal_backoff_time": "postfix",
    "maximal_backoff_time": "postfix",
    "queue_run_delay": "postfix",
    "rules": "exim",
    "queue_run_interval": "exim",
}


class CommandTimeouts(_Section):
    """How long the SMTP client waits for each reply (RFC 5321 4.5.3.2 minimums, Postfix values)."""

    greeting: PositiveDuration = Field(default=300.0, description="wait for the 220 greeting")
    helo: PositiveDuration = Field(default=300.0, description="wait for the reply to HELO/EHLO")
    mail: PositiveDuration = Field(default=300.0, description="wait for the reply to MAIL FROM")
    rcpt: PositiveDuration = Field(default=300.0, description="wait for the reply to RCPT TO")
    data_start: PositiveDuration = Field(default=120.0, description="wait for the 354 after DATA")
    data_block: PositiveDuration = Field(
        default=180.0, description="wait while sending each data block"
    )
    data_end: PositiveDuration = Field(
        default=600.0, description="wait for the reply to the final dot"
    )


class ServerSettings(_Section):
    """How a mail server behaves. Top-level ``servers:`` sets them for all; a node's ``settings:``
    overrides single fields (nested ``retry`` and ``command_timeouts`` field by field).
    """

    retry: RetrySettings = Field(default_factory=RetrySettings, description="the retry policy")
    durable: Flag = Field(default=True, description="whether the queue survives a crash")
    replies: Annotated[
        Literal["modern", "classic"], BeforeValidator(_choice("modern", "classic"))
    ] = Field(default="modern", description="reply wording: modern or classic")
    max_message_size: PositiveSize = Field(
        default=10_000_000, description="largest message accepted"
    )
    max_recipients: Annotated[int, BeforeValidator(_whole(1))] = Field(
        default=100, description="most RCPT TO accepted per message"
    )
    connections_per_destination: Annotated[int, BeforeValidator(_whole(1))] = Field(
        default=20, description="parallel connections to one destination"
    )
    messages_per_connection: Annotated[int, BeforeValidator(_whole(1))] = Field(
        default=10,
        description="most messages one connection carries before another is opened for the rest",
    )
    recipients_per_delivery: Annotated[int, BeforeValidator(_whole(1))] = Field(
        default=50, description="most recipients sent in one SMTP transaction"
    )
    connection_reuse_time: Duration = Field(
        default=300.0, description="how long an idle connection is kept for more messages"
    )
    connect_timeout: PositiveDuration = Field(default=30.0, description="wait for a TCP connection")
    command_timeouts: CommandTimeouts = Field(
        default_factory=CommandTimeouts, description="waits for each SMTP reply"
    )
    idle_timeout: PositiveDuration = Field(
        default=300.0, description="server side: wait for the client's next command"
    )

    @field_validator("retry", "command_timeouts", mode="before")
    @classmethod
    def _null_is_default(cls, value: Any) -> Any:
        return {} if value is None else value


_M = TypeVar("_M", bound=BaseModel)


def overlay(base: _M, patch: _M) -> _M:
    """``base`` with the fields that ``patch`` sets explicitly, nested models merged field by field.

    This is how a node's ``settings:`` override the top-level ``servers:``: a node that sets only
    ``retry: {interval: 5min}`` keeps every other retry field of the defaults.
    """
    update: dict[str, Any] = {}
    for name in patch.model_fields_set:
        mine = getattr(patch, name)
        theirs = getattr(base, name)
        if isinstance(mine, BaseModel) and type(mine) is type(theirs):
            update[name] = overlay(theirs, mine)
        else:
            update[name] = mine
    return base.model_copy(update=update)


# --------------------------------------------------------------------------------------------
# Network: nodes, links, DNS
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# People and mail
# --------------------------------------------------------------------------------------------


class User(_Section):
    """A person with a mailbox, whose user agent runs on ``host``."""

    address: Address = Field(description="the user's e-mail address, like steve@usa.com")
    password: Text = Field(description="the password the user agent logs in with")
    host: NodeName = Field(description="the node the user agent runs on, like steve-pc")
    name: Text | None = Field(default=None, description="display name for the From header")
    check_mail_every: PositiveDuration | None = Field(
        default=None, description="how often the user agent fetches mail over POP3 (null: never)"
    )
    submission_server: NodeName | None = Field(
        default=None,
        description="the mail server the user submits to (the domain's server if absent)",
    )

    @property
    def domain(self) -> str:
        """The part of the address after '@'."""
        return self.address.rsplit("@", 1)[1]


class GeneratedAttachment(_Section):
    """An attachment of made-up content of a given size (a photo, a video, ...)."""

    kind: AttachmentKind = Field(description="photo, video, document or file")
    size: PositiveSize = Field(description="its size before encoding, like 2MB")
    name: Text | None = Field(default=None, description="file name shown in the message")


class FileAttachment(_Section):
    """An attachment read from a real file (relative paths start at the scenario's folder)."""

    file: Path = Field(description="path of the file")
    name: Text | None = Field(
        default=None, description="file name shown (the file's own by default)"
    )

    @field_validator("file", mode="before")
    @classmethod
    def _existing_file(cls, value: Any, info: ValidationInfo) -> Path:
        if not isinstance(value, str) or not value.strip():
            _fail(f"must be the path of a file, got {shown(value)}")
        base = (info.context or {}).get("base_dir") or Path.cwd()
        path = (Path(base) / Path(value).expanduser()).resolve()
        if not path.is_file():
            _fail(f"no such file {shown(value)} (relative paths start at the scenario's folder)")
        return path


def _attachment_tag(value: Any) -> str | None:
    if isinstance(value, BaseModel):
        return type(value).__name__
    if not isinstance(value, dict):
        return None
    generated = "kind" in value or "size" in value
    if "file" in value:
        return None if generated else "FileAttachment"
    return "GeneratedAttachment" if generated else None


Attachment = Annotated[
    Annotated[GeneratedAttachment, Tag("GeneratedAttachment")]
    | Annotated[FileAttachment, Tag("FileAttachment")],
    Discriminator(
        _attachment_tag,
        custom_error_type="attachment_shape",
        custom_error_message="an attachment is {kind: photo, size: 2MB} or {file: path}",
    ),
]


class Message(_Section):
    """One message a user sends at a given time."""

    at: Duration = Field(description="when the sender clicks send, after the start, like 1min")
    sender: Address = Field(alias="from", description="the sending user's address")
    to: Recipients = Field(description="one address or a list of addresses")
    cc: Recipients = Field(default_factory=list, description="copy recipients")
    bcc: Recipients = Field(default_factory=list, description="blind copy recipients")
    subject: Text = Field(default="", description="the Subject header")
    body: Text = Field(default="", description="the plain text")
    html: Text | None = Field(default=None, description="an HTML version of the text")
    attachments: Annotated[list[Attachment], BeforeValidator(_empty_if_null(list))] = Field(
        default_factory=list, description="attached files"
    )

    @property
    def recipients(self) -> list[str]:
        """Every envelope recipient: to, then cc, then bcc."""
        return [*self.to, *self.cc, *self.bcc]


class FixedSize(_Section):
    """Every draw is ``size`` bytes."""

    distribution: Literal["fixed"] = Field(default="fixed", description="fixed")
    size: Size = Field(description="the size, like 20KB")


class LognormalSize(_Section):
    """Sizes drawn from a log-normal distribution: half are below ``median``."""

    distribution: Literal["lognormal"] = Field(default="lognormal", description="lognormal")
    median: PositiveSize = Field(description="the median size, like 20KB")
    sigma: Annotated[float, BeforeValidator(_number(0.0))] = Field(
        default=1.0, description="spread: the standard deviation of the size's natural logarithm"
    )
    max: PositiveSize | None = Field(
        default=None, description="largest size drawn (null: no limit)"
    )


class UniformSize(_Section):
    """Sizes drawn uniformly between ``min`` and ``max``."""

    distribution: Literal["uniform"] = Field(default="uniform", description="uniform")
    min: Size = Field(description="the smallest size")
    max: PositiveSize = Field(description="the largest size")


_SIZE_TAGS = {"fixed": "FixedSize", "lognormal": "LognormalSize", "uniform": "UniformSize"}


def _size_tag(value: Any) -> str | None:
    if isinstance(value, BaseModel):
        return type(value).__name__
    if not isinstance(value, dict):
        return None
    if "distribution" in value:
        kind = value["distribution"]
        return _SIZE_TAGS.get(kind.lower()) if isinstance(kind, str) else None
    for key, tag in (("median", "LognormalSize"), ("min", "UniformSize"), ("size", "FixedSize")):
        if key in value:
            return tag
    return None


def _scalar_is_fixed(value: Any) -> Any:
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return {"distribution": "fixed", "size": value}
    return value


SizeSpec = Annotated[
    Annotated[
        Annotated[FixedSize, Tag("FixedSize")]
        | Annotated[LognormalSize, Tag("LognormalSize")]
        | Annotated[UniformSize, Tag("UniformSize")],
        Discriminator(
            _size_tag,
            custom_error_type="size_shape",
            custom_error_message="a size is like 20KB or {distribution: lognormal, median: 20KB}",
        ),
    ],
    BeforeValidator(_scalar_is_fixed),
]


class TrafficGenerator(_Section):
    """Background mail: each sender sends messages at random (a Poisson process) at ``rate``."""

    rate: EventRate = Field(description="messages per sender, like 12/h")
    senders: list[Address] | None = Field(default=None, description="who sends (null: every user)")
    recipients: list[Address] | None = Field(
        default=None, description="who receives (null: every user but the sender)"
    )
    recipients_per_message: Annotated[int, BeforeValidator(_whole(1))] = Field(
        default=1, description="recipients of each message, drawn without repetition"
    )
    size: SizeSpec = Field(
        default_factory=lambda: LognormalSize(median=4000, sigma=1.0),
        description="size of the text of each message",
    )
    attachment_probability: Probability = Field(
        default=0.0, description="chance that a message has an attachment"
    )
    attachment_kind: AttachmentKind = Field(
        default="document", description="kind of the attachments"
    )
    attachment_size: SizeSpec = Field(
        default_factory=lambda: LognormalSize(median=300_000, sigma=1.0),
        description="size of each attachment",
    )
    start: Duration = Field(default=0.0, description="when the traffic starts")
    stop: PositiveDuration | None = Field(
        default=None, description="when it stops (null: at the end)"
    )


# --------------------------------------------------------------------------------------------
# Faults
# --------------------------------------------------------------------------------------------


class LinkOutage(_Section):
    """A link goes down at ``down_at`` and comes back ``down_for`` later (null: never)."""

    link: NodePair = Field(description="the link, by its two ends")
    down_at: Duration = Field(description="when the link goes down")
    down_for: PositiveDuration | None = Field(default=None, description="how long it stays down")


class NodeCrash(_Section):
    """A node crashes at ``crash_at`` and restarts ``restart_after`` later (null: never)."""

    node: NodeName = Field(description="the node that crashes")
    crash_at: Duration = Field(description="when it crashes")
    restart_after: PositiveDuration | None = Field(
        default=None, description="how long it stays down"
    )


class ServiceRef(_Section):
    """One listening service: a node and a port."""

    node: NodeName = Field(description="the node, like usa-mail")
    port: Port = Field(description="the port: 25 (SMTP), 587 (submission), 110 (POP3), 53 (DNS)")


class ServiceStop(_Section):
    """A service stops at ``stop_at`` (connections are refused) and starts ``stop_for`` later."""

    service: ServiceRef = Field(description="the service, like {node: usa-mail, port: 25}")
    stop_at: Duration = Field(description="when it stops")
    stop_for: PositiveDuration | None = Field(default=None, description="how long it stays stopped")


class RandomFault(_Section):
    """A link or node that fails at random: up times and down times are exponential."""

    random: Annotated[Literal["link", "node"], BeforeValidator(_choice("link", "node"))] = Field(
        description="what fails: link or node"
    )
    target: Annotated[str | tuple[str, str], BeforeValidator(_target)] = Field(
        description="the node, or the link as a pair of nodes"
    )
    mtbf: PositiveDuration = Field(description="mean time between failures")
    mttr: PositiveDuration = Field(description="mean time to repair")


class ReplySpec(_Section):
    """A mail server answers ``command`` with ``code`` instead of its normal reply."""

    server: NodeName = Field(description="the mail server that answers, like usa-mail")
    port: Port = Field(default=25, description="25 (mail from other servers) or 587 (submission)")
    command: Annotated[
        Literal["CONNECT", "HELO", "EHLO", "MAIL", "RCPT", "DATA", "dot"],
        BeforeValidator(_choice("CONNECT", "HELO", "EHLO", "MAIL", "RCPT", "DATA", "dot")),
    ] = Field(description="CONNECT (the greeting), HELO, EHLO, MAIL, RCPT, DATA or dot")
    code: Annotated[int, BeforeValidator(_whole(400, 599))] = Field(
        description="the reply code, 4xx (try later) or 5xx (permanent), like 451"
    )
    text: Text | None = Field(default=None, description="the reply text, like '4.7.1 Greylisted'")
    start: Duration = Field(default=0.0, alias="from", description="from when the fault applies")
    until: PositiveDuration | None = Field(default=None, description="until when (null: the end)")
    probability: Probability = Field(default=1.0, description="chance that a reply is replaced")
    first_attempt_only: Flag = Field(
        default=False,
        description="only the first attempt of each message and recipient (greylisting)",
    )


class ReplyFault(_Section):
    """A fault in what a server answers (greylisting, a full disk, a policy rejection)."""

    reply: ReplySpec = Field(description="the replaced reply")


#: The key that says what kind of fault an item of ``faults:`` is.
FAULT_KINDS: dict[str, type[BaseModel]] = {
    "link": LinkOutage,
    "node": NodeCrash,
    "service": ServiceStop,
    "random": RandomFault,
    "reply": ReplyFault,
}


def _fault_tag(value: Any) -> str | None:
    if isinstance(value, BaseModel):
        return type(value).__name__
    if not isinstance(value, dict):
        return None
    present = [key for key in FAULT_KINDS if key in value]
    return FAULT_KINDS[present[0]].__name__ if len(present) == 1 else None


Fault = Annotated[
    Annotated[LinkOutage, Tag("LinkOutage")]
    | Annotated[NodeCrash, Tag("NodeCrash")]
    | Annotated[ServiceStop, Tag("ServiceStop")]
    | Annotated[RandomFault, Tag("RandomFault")]
    | Annotated[ReplyFault, Tag("ReplyFault")],
    Discriminator(
        _fault_tag,
        custom_error_type="fault_shape",
        custom_error_message="a fault has exactly one of link, node, service, random or reply",
    ),
]

# --------------------------------------------------------------------------------------------
# Telnet sessions and tracing
# --------------------------------------------------------------------------------------------


class TelnetSession(_Section):
    """A person typing lines at a server, as in the story's ``telnet servername 25``."""

    at: Duration = Field(description="when the session starts")
    client: NodeName = Field(alias="from", description="the node the person sits at")
    server: NodeName = Field(alias="to", description="the node telnet connects to")
    port: Port = Field(default=25, description="the port telnet connects to")
    lines: Annotated[list[Text], Field(min_length=1)] = Field(
        description="the lines typed, in order, like ['HELO usa.com', 'QUIT']"
    )
    wait_for_reply: Flag = Field(
        default=True, description="wait for the server's reply to each line"
    )
    pause: Duration = Field(default=0.0, description="time the person takes before each line")


class TraceOptions(_Section):
    """What the trace records beyond the defaults."""

    segments: Flag = Field(default=False, description="record every TCP segment")
    pcap: Flag = Field(default=False, description="write trace.pcap for Wireshark")
    data_lines: Annotated[int, BeforeValidator(_whole(0))] | None = Field(
        default=20, description="DATA lines recorded per message (null: all)"
    )


# --------------------------------------------------------------------------------------------
# The scenario
# --------------------------------------------------------------------------------------------


_DnsSection = Annotated[DnsConfig, BeforeValidator(_empty_if_null(dict))]
_ServersSection = Annotated[ServerSettings, BeforeValidator(_empty_if_null(dict))]


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
    trace: Annotated[TraceOptions, BeforeValidator(_empty_if_null(dict))] = Field(
        default_factory=TraceOptions, description="what to record"
    )

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
        """The user with ``address`` (any case), or None."""
        wanted = address.lower()
        return next((user for user in self.users if user.address.lower() == wanted), None)

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


# --------------------------------------------------------------------------------------------
# Reference checks: what ties the parts of a scenario together
# --------------------------------------------------------------------------------------------

Loc = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Issue:
    """A problem found by :func:`check_references`, placed by its path in the scenario data.

    Attributes:
        loc: keys and indices from the top of the YAML, like ``("links", 0, "between", 1)``.
        message: what is wrong and what would be right.
        at_key: point at the key rather than at its value (a key that should not be there).
    """

    loc: Loc
    message: str
    at_key: bool = False

    def __str__(self) -> str:
        return f"{dotted(self.loc)}: {self.message}"


def dotted(loc: Iterable[str | int]) -> str:
    """A path as a student reads it: ``links[0].between[1]``."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


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
            user_addresses=[user.address.lower() for user in scenario.users],
            users=list(enumerate(scenario.users)),
            messages=list(enumerate(scenario.messages)),
            traffic=list(enumerate(scenario.traffic)),
            faults=list(enumerate(scenario.faults)),
            telnet=list(enumerate(scenario.telnet)),
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
                item["address"].lower()
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
        if addresses is None or address.lower() in addresses:
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
        seen = {start}
        frontier = [start]
        while frontier:
            here = frontier.pop()
            if here == goal:
                return True
            if here != start and self.kinds.get(here) not in FORWARDING_KINDS:
                continue
            for there in self.adjacent.get(here, ()):
                if there not in seen:
                    seen.add(there)
                    frontier.append(there)
        return False

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
            key = user.address.lower()
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
                possible = len({address.lower() for address in generator.recipients})
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


# --------------------------------------------------------------------------------------------
# Explaining a union that could not tell which shape an item has
# --------------------------------------------------------------------------------------------


def explain_shape(kind: str, value: Any) -> list[Issue]:
    """Why ``value`` fits none of the shapes of a union (``kind`` is the error type).

    The issues' ``loc`` is relative to ``value``. Used by the loader for the errors
    ``fault_shape``, ``attachment_shape``, ``record_shape`` and ``size_shape``.
    """
    examples = {
        "fault_shape": "{link: [a, b], down_at: 2min, down_for: 3h}",
        "attachment_shape": "{kind: photo, size: 2MB} or {file: path}",
        "record_shape": "{type: MX, name: usa.com, exchange: usa-mail}",
        "size_shape": "20KB or {distribution: lognormal, median: 20KB, sigma: 1}",
    }
    if not isinstance(value, dict):
        return [Issue((), f"must be a mapping like {examples[kind]}, got {shown(value)}")]
    if kind == "fault_shape":
        present = [key for key in FAULT_KINDS if key in value]
        if len(present) > 1:
            return [
                Issue(
                    (present[1],),
                    f"a fault has one of link, node, service, random or reply, but this one has "
                    f"both {present[0]} and {present[1]}; split it into two faults",
                    at_key=True,
                )
            ]
        return _unknown_keys(
            value,
            list(FAULT_KINDS),
            "does not say what fails; a fault has one of link, node, service, random or reply",
        )
    if kind == "attachment_shape":
        if "file" in value:
            return [
                Issue(
                    ("file",),
                    "an attachment is either made up ({kind: photo, size: 2MB}) or a real file "
                    "({file: path}), not both",
                    at_key=True,
                )
            ]
        return _unknown_keys(
            value,
            ["kind", "size", "file"],
            "does not say what it is; expected {kind: photo, size: 2MB} or {file: path}",
        )
    if kind == "record_shape":
        if "type" not in value:
            return [Issue(("type",), "missing; expected MX or A")]
        kind_text = value["type"]
        return [Issue(("type",), f"must be MX or A, got {shown(kind_text)}")]
    # size_shape
    if "distribution" in value:
        got = value["distribution"]
        options = list(_SIZE_TAGS)
        return [
            Issue(
                ("distribution",),
                f"must be one of fixed, lognormal, uniform, got {shown(got)}"
                f"{did_you_mean(got, options)}",
            )
        ]
    return _unknown_keys(
        value,
        ["size", "median", "min", "distribution"],
        f"does not say what distribution it is; expected {examples[kind]}",
    )


def _unknown_keys(value: dict[Any, Any], wanted: list[str], otherwise: str) -> list[Issue]:
    issues = [
        Issue((key,), f"unknown key; did you mean '{match}'?", at_key=True)
        for key in value
        if (match := closest(key, wanted)) is not None
    ]
    return issues or [Issue((), otherwise)]


def _suggest_domain(domain: str, domains: Iterable[str]) -> str:
    """A "did you mean" for a domain, only when it is very close (usa.co, not india.com)."""
    match = closest(domain, domains, cutoff=0.8)
    return f"; did you mean '{match}'?" if match is not None else ""
