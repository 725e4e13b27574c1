"""Retry policies: when a mail server tries a deferred message again, and when it gives up.

RFC 5321 4.5.4.1 asks a sender to wait at least 30 minutes between tries and to give up after
4-5 days; the details are left to the implementation, and real servers differ:

- :class:`FixedRetry` (the default) retries every 30 minutes plus up to 10 minutes of random
  jitter: the tutorial's "every 30 or 40 min", and classic Sendmail's ``-q30m`` queue runs.
- :class:`PostfixRetry` backs off with the message's age, clamped between 300 and 4000 seconds,
  and only looks at the deferred queue every 300 seconds: tries at about 5, 10, 20, 40 minutes,
  then every 67-70 minutes.
- :class:`EximRetry` follows rule strings such as ``F,2h,15m; G,16h,1h,1.5; F,4d,6h``.

Every policy answers the same question, :meth:`RetryPolicy.next_attempt`, with the simulated time
of the next try, and carries ``give_up_after`` (age at which a failing message is bounced) and
``delay_warning_after`` (age at which the sender is told of the delay; None = never). Policies
hold no per-message state; the queue keeps arrival, first failure and attempt counts.
"""

from __future__ import annotations

import math
import random
from abc import ABC, abstractmethod
from dataclasses import dataclass, fields
from typing import Any, ClassVar

from mailsim.mail.units import format_duration, parse_duration

#: RFC 5321 4.5.4.1: give up after "at least 4-5 days"; Postfix's maximal_queue_lifetime is 5d.
DEFAULT_GIVE_UP_AFTER = 5 * 86400.0

#: Exim's default retry rule (its shipped configure file).
EXIM_DEFAULT_RULES = "F,2h,15m; G,16h,1h,1.5; F,4d,6h"

# Float slack when aligning a time to a scan grid (so 4800.0000000001 still meets the 4800 scan).
_GRID_SLACK = 1e-6


class RetryPolicy(ABC):
    """What every retry policy offers a mail server's queue manager.

    Attributes:
        give_up_after: seconds after arrival at which a message that still fails is bounced.
        delay_warning_after: seconds after arrival at which the sender is told the message is
            delayed (RFC 3464 ``Action: delayed``); None means no warnings.
    """

    __slots__ = ()

    #: The name :func:`make_retry_policy` knows this policy by.
    name: ClassVar[str]
    give_up_after: float
    delay_warning_after: float | None

    @abstractmethod
    def next_attempt(
        self,
        now: float,
        arrival: float,
        first_failure: float | None,
        attempts: int,
        rng: random.Random,
    ) -> float:
        """When to try again after a temporary failure at ``now``.

        Args:
            now: simulated time of the failure just seen.
            arrival: when the message entered the queue.
            first_failure: when it first failed (None or ``now`` for the first failure).
            attempts: how many attempts have been made so far, the failed one included.
            rng: the random stream for jitter (drawn from only by policies that jitter).

        Returns:
            The simulated time of the next attempt (later than ``now``), or ``math.inf`` when the
            policy itself says no more tries (Exim past its last cutoff).
        """

    def gives_up(self, now: float, arrival: float) -> bool:
        """True if a message that arrived at ``arrival`` and fails at ``now`` should be bounced.

        The check is made at a failure, as Postfix and Sendmail do: a message is never dropped
        between attempts, so the last try may come a little after ``give_up_after``.
        """
        return now - arrival >= self.give_up_after - _GRID_SLACK

    def schedule(
        self,
        now: float,
        arrival: float,
        first_failure: float | None,
        attempts: int,
        rng: random.Random,
    ) -> float | None:
        """The next attempt after a temporary failure at ``now``, or None to give up (bounce).

        Combines :meth:`gives_up` and :meth:`next_attempt`; the queue manager needs nothing else.
        """
        if self.gives_up(now, arrival):
            return None
        when = self.next_attempt(now, arrival, first_failure, attempts, rng)
        return None if math.isinf(when) else when

    def warning_due(self, now: float, arrival: float) -> bool:
        """True if a delay warning for a message that arrived at ``arrival`` is due at ``now``."""
        return self.delay_warning_after is not None and now - arrival >= self.delay_warning_after

    def describe(self) -> str:
        """One line for summaries and notebooks, e.g. ``'fixed: every 30min + 0-10min jitter'``."""
        warn = (
            f", warn after {format_duration(self.delay_warning_after)}"
            if self.delay_warning_after is not None
            else ""
        )
        return f"{self.name}: {self._describe_schedule()}; give up after " + (
            f"{format_duration(self.give_up_after)}{warn}"
        )

    @abstractmethod
    def _describe_schedule(self) -> str: ...


def _next_scan(ready: float, interval: float, phase: float = 0.0) -> float:
    """The first queue scan at or after ``ready`` when scans happen at ``phase + k * interval``."""
    k = math.ceil((ready - phase) / interval - _GRID_SLACK)
    return phase + k * interval


@dataclass(frozen=True, slots=True)
class FixedRetry(RetryPolicy):
    """Retry at a fixed interval plus uniform jitter: ``next = now + interval + U(0, jitter)``.

    With the defaults the gaps are 30-40 minutes, the tutorial's "every 30 or 40 min", and never
    under RFC 5321's 30-minute minimum. Jitter keeps many deferred messages from all retrying in
    the same instant.

    Attributes:
        interval: the fixed part of the gap, seconds.
        jitter: the random extra, uniform in [0, jitter] seconds.
    """

    name: ClassVar[str] = "fixed"
    interval: float = 1800.0
    jitter: float = 600.0
    give_up_after: float = DEFAULT_GIVE_UP_AFTER
    delay_warning_after: float | None = None

    def __post_init__(self) -> None:
        _check_positive("interval", self.interval)
        _check_not_negative("jitter", self.jitter)
        _check_common(self)

    def next_attempt(
        self,
        now: float,
        arrival: float,
        first_failure: float | None,
        attempts: int,
        rng: random.Random,
    ) -> float:
        """``now + interval + uniform(0, jitter)`` (one draw from ``rng`` when jitter > 0)."""
        extra = rng.uniform(0.0, self.jitter) if self.jitter > 0 else 0.0
        return now + self.interval + extra

    def _describe_schedule(self) -> str:
        if self.jitter > 0:
            return (
                f"every {format_duration(self.interval)} + 0-{format_duration(self.jitter)} jitter"
            )
        return f"every {format_duration(self.interval)}"


@dataclass(frozen=True, slots=True)
class PostfixRetry(RetryPolicy):
    """Postfix's back-off: wait as long as the message is old, within [300 s, 4000 s], then wait
    for the next deferred-queue scan.

    After a failure at ``now`` Postfix sets the message's next-try time to
    ``now + clamp(now - arrival, minimal_backoff_time, maximal_backoff_time)``; the queue manager
    scans the deferred queue every ``queue_run_delay`` (scans at t = 0, 300, 600, ... here), and
    the try happens at the first scan at or after that time. A message failing at once on arrival
    at t = 0 is thus tried at 0, 300, 600, 1200, 2400, 4800, 9000, 13200, ...

    Attributes:
        minimal_backoff_time: the shortest wait, seconds (Postfix default 300 s).
        maximal_backoff_time: the longest wait, seconds (Postfix default 4000 s).
        queue_run_delay: the interval between deferred-queue scans, seconds (default 300 s).
    """

    name: ClassVar[str] = "postfix"
    minimal_backoff_time: float = 300.0
    maximal_backoff_time: float = 4000.0
    queue_run_delay: float = 300.0
    give_up_after: float = DEFAULT_GIVE_UP_AFTER
    delay_warning_after: float | None = None

    def __post_init__(self) -> None:
        _check_positive("minimal_backoff_time", self.minimal_backoff_time)
        _check_positive("maximal_backoff_time", self.maximal_backoff_time)
        _check_positive("queue_run_delay", self.queue_run_delay)
        if self.maximal_backoff_time < self.minimal_backoff_time:
            raise ValueError(
                "maximal_backoff_time must be at least minimal_backoff_time, got "
                f"{format_duration(self.maximal_backoff_time)} < "
                f"{format_duration(self.minimal_backoff_time)}"
            )
        _check_common(self)

    def backoff(self, now: float, arrival: float) -> float:
        """The wait Postfix sets after a failure at ``now``: the age, clamped to the two limits."""
        return min(max(now - arrival, self.minimal_backoff_time), self.maximal_backoff_time)

    def next_attempt(
        self,
        now: float,
        arrival: float,
        first_failure: float | None,
        attempts: int,
        rng: random.Random,
    ) -> float:
        """The first queue scan at or after ``now + backoff(now, arrival)``."""
        return _next_scan(now + self.backoff(now, arrival), self.queue_run_delay)

    def _describe_schedule(self) -> str:
        return (
            f"back off by message age within {format_duration(self.minimal_backoff_time)}"
            f"-{format_duration(self.maximal_backoff_time)}, queue scan every "
            f"{format_duration(self.queue_run_delay)}"
        )


@dataclass(frozen=True, slots=True)
class RetryRule:
    """One Exim retry rule: fixed (``F,cutoff,interval``) or geometric (``G,cutoff,initial,mult``).

    Attributes:
        kind: ``'F'`` or ``'G'``.
        cutoff: seconds after the first failure up to which this rule applies.
        interval: the fixed interval (F) or the initial interval (G), seconds.
        multiplier: the growth factor of a G rule (1.0 for F).
    """

    kind: str
    cutoff: float
    interval: float
    multiplier: float = 1.0

    def gap(self, last_gap: float) -> float:
        """The wait after a failure, given the previous gap (Exim's retry.c rule)."""
        if self.kind == "F":
            return self.interval
        # G: start at the initial interval; once the previous gap has reached it, grow it.
        return self.interval if last_gap < self.interval else last_gap * self.multiplier

    def __str__(self) -> str:
        text = f"{self.kind},{format_duration(self.cutoff)},{format_duration(self.interval)}"
        return text.replace(" ", "") + (f",{self.multiplier:g}" if self.kind == "G" else "")


def parse_retry_rules(text: str) -> tuple[RetryRule, ...]:
    """Exim retry rules from text such as ``'F,2h,15m; G,16h,1h,1.5; F,4d,6h'``.

    Rules are separated by ';', fields by ','. Durations use :func:`parse_duration` units.

    Args:
        text: the rules.

    Returns:
        The rules, cutoffs increasing.

    Raises:
        ValueError: a rule is malformed; the message quotes it and shows the expected form.
    """
    example = f"like '{EXIM_DEFAULT_RULES}'"
    parts = [part.strip() for part in text.split(";")]
    if not any(parts):
        raise ValueError(f"retry rules are empty; expected rules {example}")
    rules: list[RetryRule] = []
    for part in parts:
        if not part:
            raise ValueError(
                f"retry rules {text!r} have an empty rule between ';'; expected {example}"
            )
        fields_ = [f.strip() for f in part.split(",")]
        kind = fields_[0].upper()
        where = f"retry rule {part!r}"
        if kind == "F":
            if len(fields_) != 3:
                raise ValueError(
                    f"{where}: fixed rule needs a cutoff and an interval like 'F,2h,15m'"
                )
            cutoff = _rule_duration(where, "cutoff", fields_[1])
            interval = _rule_duration(where, "interval", fields_[2])
            multiplier = 1.0
        elif kind == "G":
            if len(fields_) == 3:
                raise ValueError(f"{where}: geometric rule needs a multiplier like 'G,16h,1h,1.5'")
            if len(fields_) != 4:
                raise ValueError(
                    f"{where}: geometric rule needs a cutoff, an initial interval and a "
                    "multiplier like 'G,16h,1h,1.5'"
                )
            cutoff = _rule_duration(where, "cutoff", fields_[1])
            interval = _rule_duration(where, "initial interval", fields_[2])
            try:
                multiplier = float(fields_[3])
            except ValueError:
                multiplier = math.nan
            if not multiplier >= 1.0 or math.isinf(multiplier):
                raise ValueError(
                    f"{where}: multiplier must be a number of at least 1 like '1.5', "
                    f"got {fields_[3]!r}"
                )
        else:
            hint = " (Exim's H rule is not modelled)" if kind == "H" else ""
            raise ValueError(
                f"{where}: rule type must be F (fixed) or G (geometric){hint}, got {fields_[0]!r}"
            )
        if interval <= 0:
            raise ValueError(f"{where}: the interval must be longer than zero")
        if rules and cutoff <= rules[-1].cutoff:
            raise ValueError(
                f"{where}: cutoffs must increase from rule to rule, but "
                f"{format_duration(cutoff)} follows {format_duration(rules[-1].cutoff)}"
            )
        rules.append(RetryRule(kind, cutoff, interval, multiplier))
    return tuple(rules)


def _rule_duration(where: str, what: str, text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise ValueError(f"{where}: {what} {exc}") from None


@dataclass(frozen=True, slots=True)
class EximRetry(RetryPolicy):
    """Exim's rule-driven retries, e.g. ``F,2h,15m; G,16h,1h,1.5; F,4d,6h``.

    Each rule applies while the time since the first failure is at most its cutoff (Exim's
    retry.c compares with ``<=``). F rules wait a fixed interval; G rules start at their initial
    interval and multiply the previous gap. Past the last cutoff there are no more tries.

    Exim computes a G gap from the previous gap, which it stores per host. A policy here holds no
    per-message state, so the previous gap is recovered from the ideal schedule (tries exactly
    when due, counted from the first failure). When tries happen on time (the default,
    ``queue_run_interval=None``) this is exactly Exim's sequence; when they happen late the next
    gap is counted from the late try, as Exim does with its predicted gap.

    Attributes:
        rules: the parsed rules (give a string to :func:`make_retry_policy` or use
            :meth:`from_text`).
        queue_run_interval: if set, a try happens only at the next queue run (``exim -q30m``),
            runs at t = 0, interval, 2 * interval, ...
        give_up_after: defaults to the last rule's cutoff.
    """

    name: ClassVar[str] = "exim"
    rules: tuple[RetryRule, ...] = ()
    queue_run_interval: float | None = None
    give_up_after: float = math.nan
    delay_warning_after: float | None = None

    def __post_init__(self) -> None:
        if not self.rules:
            object.__setattr__(self, "rules", parse_retry_rules(EXIM_DEFAULT_RULES))
        if math.isnan(self.give_up_after):
            object.__setattr__(self, "give_up_after", self.rules[-1].cutoff)
        if self.queue_run_interval is not None:
            _check_positive("queue_run_interval", self.queue_run_interval)
        _check_common(self)

    @classmethod
    def from_text(cls, rules: str, **settings: Any) -> EximRetry:
        """A policy from a rule string (see :func:`parse_retry_rules`)."""
        return cls(rules=parse_retry_rules(rules), **settings)

    def rule_at(self, failing_for: float) -> RetryRule | None:
        """The rule in force ``failing_for`` seconds after the first failure; None past the end."""
        for rule in self.rules:
            if failing_for <= rule.cutoff + _GRID_SLACK:
                return rule
        return None

    def next_attempt(
        self,
        now: float,
        arrival: float,
        first_failure: float | None,
        attempts: int,
        rng: random.Random,
    ) -> float:
        """The next try after a failure at ``now``, or ``math.inf`` past the last cutoff."""
        start = now if first_failure is None else first_failure
        # Walk the ideal schedule up to now to learn the gap that led to the latest due try.
        due, last_gap = start, 0.0
        while True:
            rule = self.rule_at(due - start)
            if rule is None:
                break
            gap = rule.gap(last_gap)
            if due + gap > now + _GRID_SLACK:
                break
            due, last_gap = due + gap, gap
        rule = self.rule_at(now - start)
        if rule is None:
            return math.inf
        when = now + rule.gap(last_gap)
        if self.queue_run_interval is not None:
            when = _next_scan(when, self.queue_run_interval)
        return when

    def _describe_schedule(self) -> str:
        text = "; ".join(str(rule) for rule in self.rules)
        if self.queue_run_interval is not None:
            text += f", queue run every {format_duration(self.queue_run_interval)}"
        return text


def _check_positive(name: str, value: float) -> None:
    if not value > 0 or math.isinf(value):
        raise ValueError(f"{name} must be a duration longer than zero, got {value!r}")


def _check_not_negative(name: str, value: float) -> None:
    if not value >= 0 or math.isinf(value):
        raise ValueError(f"{name} must be a duration of zero or more, got {value!r}")


def _check_common(policy: RetryPolicy) -> None:
    _check_positive("give_up_after", policy.give_up_after)
    if policy.delay_warning_after is not None:
        _check_positive("delay_warning_after", policy.delay_warning_after)


#: The policies :func:`make_retry_policy` knows, by name.
RETRY_POLICIES: dict[str, type[RetryPolicy]] = {
    FixedRetry.name: FixedRetry,
    PostfixRetry.name: PostfixRetry,
    EximRetry.name: EximRetry,
}

# Settings given as text that are not durations.
_NOT_DURATIONS = {"rules"}
# Settings that may be switched off, and the words that do it.
_OPTIONAL = {"delay_warning_after", "queue_run_interval"}
_OFF = ("off", "none", "never")


def make_retry_policy(name: str = "fixed", **settings: Any) -> RetryPolicy:
    """A retry policy by name, as a scenario names it: ``make_retry_policy('postfix')``.

    Durations may be numbers of seconds or text (``interval='30min'``); ``delay_warning_after``
    may be None, ``'off'`` or ``False`` for no warnings; Exim's ``rules`` is a rule string.

    Args:
        name: ``'fixed'``, ``'postfix'`` or ``'exim'`` (any case).
        settings: the policy's fields (see each class).

    Returns:
        The policy.

    Raises:
        ValueError: unknown name or setting, or a bad value; the message says what is expected.
    """
    cls = RETRY_POLICIES.get(str(name).strip().lower())
    if cls is None:
        known = ", ".join(repr(n) for n in RETRY_POLICIES)
        raise ValueError(f"retry policy must be one of {known}, got {name!r}")
    known_fields = [f.name for f in fields(cls)]  # type: ignore[arg-type]
    values: dict[str, Any] = {}
    for key, value in settings.items():
        if key not in known_fields:
            raise ValueError(
                f"retry policy {cls.name!r} has no setting {key!r}; "
                f"known settings: {', '.join(known_fields)}"
            )
        if key == "rules":
            values[key] = parse_retry_rules(value) if isinstance(value, str) else tuple(value)
        elif key in _OPTIONAL and (value is None or value is False or value in _OFF):
            values[key] = None
        elif key not in _NOT_DURATIONS:
            try:
                values[key] = parse_duration(value)
            except ValueError as exc:
                raise ValueError(f"{key} {exc}") from None
    return cls(**values)
