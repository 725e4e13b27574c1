"""Mail server settings: the top-level ``servers:`` defaults, per-node ``settings:`` overrides."""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    Field,
    field_validator,
)

from mailsim.mail.retry import (
    DEFAULT_GIVE_UP_AFTER,
    EXIM_DEFAULT_RULES,
    RetryPolicy,
    RetryRule,
    make_retry_policy,
    parse_retry_rules,
)
from mailsim.mail.units import format_duration
from mailsim.scenario.errors import shown
from mailsim.scenario.schema.fields import (
    Duration,
    Flag,
    PositiveDuration,
    PositiveSize,
    _choice,
    _empty_if_null,
    _fail,
    _positive_duration,
    _Section,
    _whole,
)

#: The shortest wait before a message is tried again: a second. RFC 5321 4.5.4.1 asks for at
#: least 30 minutes; a lesson may shorten it to seconds, but each try is a DNS lookup and a TCP
#: connection, and a shorter wait lets one message stuck behind a dead link try millions of times.
MIN_RETRY_WAIT = 1.0


def _retry_wait(value: Any) -> float:
    seconds = _positive_duration(value)
    if seconds < MIN_RETRY_WAIT:
        _fail(
            f"must be at least {format_duration(MIN_RETRY_WAIT)} (each try is a DNS lookup and a "
            f"connection; RFC 5321 4.5.4.1 suggests 30min), got {shown(value)}"
        )
    return seconds


def _retry_rules(value: Any) -> tuple[RetryRule, ...]:
    """Exim retry rules from text, parsed by :func:`mailsim.mail.retry.parse_retry_rules`."""
    if isinstance(value, tuple) and all(isinstance(rule, RetryRule) for rule in value):
        return value
    if isinstance(value, list) and all(isinstance(rule, str) for rule in value):
        value = "; ".join(value)
    if not isinstance(value, str):
        _fail(f"must be Exim retry rules as text, like '{EXIM_DEFAULT_RULES}', got {shown(value)}")
    try:
        rules = parse_retry_rules(value)
    except ValueError as error:
        _fail(str(error))
    for rule in rules:
        if rule.interval < MIN_RETRY_WAIT:
            _fail(
                f"retry rule '{rule}': the interval must be at least "
                f"{format_duration(MIN_RETRY_WAIT)} (each try is a DNS lookup and a connection)"
            )
    return rules


RetryWait = Annotated[float, BeforeValidator(_retry_wait)]


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
    interval: RetryWait = Field(default=1800.0, description="fixed policy: the wait between tries")
    jitter: Duration = Field(default=600.0, description="fixed policy: up to this much extra wait")
    minimal_backoff_time: RetryWait = Field(
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


#: The ``servers:`` section; ``servers:`` with nothing after it means the defaults.
_ServersSection = Annotated[ServerSettings, BeforeValidator(_empty_if_null(dict))]
