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
from pydantic_core import PydanticCustomError

if TYPE_CHECKING:
    pass

from mailsim.protocol.smtp_replies import COMMAND_REPLIES
from mailsim.scenario.schema.fields import (
    Address,
    Duration,
    Flag,
    NodeName,
    NodePair,
    Port,
    PositiveDuration,
    Probability,
    _choice,
    _fail,
    _reply_text,
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


def _reply_lines(value: Any) -> tuple[str, ...] | None:
    """A reply text: one line, or a list of lines (a multi-line reply, RFC 5321 4.2.1)."""
    if value is None:
        return None
    if not isinstance(value, list | tuple):
        return (_reply_text(value),)
    if not value:
        _fail("needs at least one line of text, like '4.7.1 Greylisted'")
    lines = []
    for number, item in enumerate(value, 1):
        try:
            lines.append(_reply_text(item))
        except PydanticCustomError as error:
            _fail(f"line {number}: {(error.context or {}).get('message', error)}")
    return tuple(lines)


def _optional_code(value: Any) -> int | None:
    return None if value is None else _whole(400, 599)(value)


def default_fault_text(code: int) -> str:
    """The text of a reply fault that gives none: the usual wording for its code."""
    return {
        421: "4.7.0 Service not available, closing transmission channel",
        450: "4.2.1 Mailbox unavailable, try again later",
        451: "4.7.1 Greylisted, please try again later",
        452: "4.2.2 Mailbox full",
        550: "5.1.1 Recipient address rejected: User unknown",
        552: "5.3.4 Message size exceeds fixed limit",
        554: "5.7.1 Service unavailable",
    }.get(code, f"{code // 100}.0.0 Injected reply")


class ReplySpec(_Section):
    """A mail server answers ``command`` with ``code`` instead of its normal reply, or late."""

    server: NodeName = Field(description="the mail server that answers, like usa-mail")
    port: Port = Field(default=25, description="25 (mail from other servers) or 587 (submission)")
    command: Annotated[
        Literal["CONNECT", "HELO", "EHLO", "MAIL", "RCPT", "DATA", "dot"],
        BeforeValidator(_choice("CONNECT", "HELO", "EHLO", "MAIL", "RCPT", "DATA", "dot")),
    ] = Field(description="CONNECT (the greeting), HELO, EHLO, MAIL, RCPT, DATA or dot")
    code: Annotated[int | None, BeforeValidator(_optional_code)] = Field(
        default=None,
        description="the reply code, 4xx (try later) or 5xx (permanent), like 451; "
        "null: the normal reply (with a delay: a slow server)",
    )
    text: Annotated[tuple[str, ...] | None, BeforeValidator(_reply_lines)] = Field(
        default=None,
        description="the reply text, like '4.7.1 Greylisted', or a list of lines (a "
        "multi-line reply)",
    )
    address: Address | None = Field(
        default=None, alias="for", description="only the MAIL FROM or RCPT TO naming this address"
    )
    delay: Duration = Field(
        default=0.0, description="wait this long before the reply (and between its lines)"
    )
    start: Duration = Field(default=0.0, alias="from", description="from when the fault applies")
    until: PositiveDuration | None = Field(default=None, description="until when (null: the end)")
    probability: Probability = Field(default=1.0, description="chance that a reply is replaced")
    first_attempt_only: Flag = Field(
        default=False,
        description="only the first attempt of each message and recipient (greylisting)",
    )

    def reply_lines(self) -> tuple[str, ...]:
        """The reply's lines: the text given, or the usual wording for the code (none: no code)."""
        if self.text is not None:
            return self.text
        return (default_fault_text(self.code),) if self.code is not None else ()

    def problems(self) -> list[tuple[str, str]]:
        """What is wrong between the fields, as (field, problem) pairs; none when it is right."""
        found = []
        if self.code is None and self.delay <= 0:
            found.append(("code", "a fault needs a code (like 451), or a delay (a slow server)"))
        elif self.code is None and self.text is not None:
            found.append(("text", "a text needs a code to go with it"))
        if self.address is not None and self.command not in ("MAIL", "RCPT"):
            found.append(("for", "applies to MAIL or RCPT only (the command naming an address)"))
        return found


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
