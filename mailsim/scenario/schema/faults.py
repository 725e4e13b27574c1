"""Faults: link outages, crashes, stopped services, random failures and scripted replies."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    Discriminator,
    Field,
    Tag,
)

if TYPE_CHECKING:
    pass

from mailsim.protocol.smtp_replies import COMMAND_REPLIES
from mailsim.scenario.schema.fields import (
    Duration,
    Flag,
    NodeName,
    NodePair,
    Port,
    PositiveDuration,
    Probability,
    ReplyText,
    _choice,
    _Section,
    _target,
    _whole,
)


def fault_code_problem(command: str, code: int) -> str | None:
    """Why ``code`` cannot replace the reply to ``command``, or None when it can.

    A fault answers with one of the error replies its step may get (RFC 5321 4.3.2, the table
    :data:`~mailsim.protocol.smtp.COMMAND_REPLIES`): a greeting is 421 or 554, never 451.
    ``command`` is CONNECT, HELO, EHLO, MAIL, RCPT, DATA or DOT (any case; ``dot`` too).
    """
    step = command.upper()
    allowed = sorted(c for c in COMMAND_REPLIES[step] if c >= 400)
    if code in allowed:
        return None
    what = {"CONNECT": "a greeting", "DOT": "the final dot"}.get(step, step)
    listed = ", ".join(map(str, allowed[:-1])) + f" or {allowed[-1]}"
    sources = "RFC 5321 4.3.2" + (", RFC 4954 6" if 530 in allowed else "")
    return f"{code} is not a reply to {what}; a fault there is {listed} ({sources})"


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
    text: ReplyText | None = Field(
        default=None, description="the reply text, like '4.7.1 Greylisted'"
    )
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
