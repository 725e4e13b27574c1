"""How much a run is asked to do: refuse what no run can finish, warn about what takes long.

A scenario can be valid field by field and still never finish. What a run does grows with its
duration divided by some period: a POP3 check every second for a year is 31.5 million sessions;
traffic at a thousand messages a second is built up front, message by message; a link that fails
at random every millisecond changes state millions of times. :func:`workload` counts these
happenings from the scenario's numbers, without running it, and estimates the run time from
costs measured per happening; the reference checks refuse a scenario estimated to take more than
a day (or to build more than :data:`MAX_MESSAGES`), and :func:`check_workload_advice` warns of one
that takes more than a minute, so a legitimately large study still runs, knowingly.

Each count is an upper estimate of what the scenario schedules, not of every event the network
adds (segments, retries): it is what grows without bound, which those do not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from mailsim.mail.units import format_duration
from mailsim.scenario.schema.issues import Issue, Loc

if TYPE_CHECKING:
    from mailsim.scenario.schema.references import ScenarioParts

__all__ = [
    "MAX_MESSAGES",
    "MAX_RUN_TIME",
    "WARN_RUN_TIME",
    "Workload",
    "check_workload",
    "check_workload_advice",
    "workload",
]

#: Run time each happening costs, in seconds, measured on the 2-core development machine (a POP3
#: check of an empty mailbox: 3,600 in 1.7 s; a message submitted, relayed or queued and polled
#: for: 7,281 in 16.8 s; a random failure or repair of a link: 360,000 in 2.2 s). Estimates to
#: judge a scenario by, not promises: a faster machine or mailsim runs faster.
COST_OF_CHECK = 0.5e-3
COST_OF_MESSAGE = 2.3e-3
COST_OF_FAILURE = 6e-6
#: A run estimated to take longer than this (seconds) gets a warning.
WARN_RUN_TIME = 60.0
#: A run estimated to take longer than a day is refused: almost always a slip of the unit
#: (1ms for 1min, 1000/s for 1000/h).
MAX_RUN_TIME = 86400.0
#: Generated messages are built before the run starts, each with its text: ten million, ten
#: times the million-message day mailsim is built to run, is past what a laptop's memory holds.
MAX_MESSAGES = 10_000_000


@dataclass(frozen=True)
class Share:
    """One source of happenings: where it is written, what it is, how many, at what cost each."""

    loc: Loc
    what: str
    count: float
    cost: float

    @property
    def run_time(self) -> float:
        """Estimated seconds of run time."""
        return self.count * self.cost


@dataclass(frozen=True)
class Workload:
    """The happenings a scenario schedules, by source."""

    shares: tuple[Share, ...]

    @property
    def run_time(self) -> float:
        """Estimated seconds of run time, all sources together."""
        return sum(share.run_time for share in self.shares)

    @property
    def messages(self) -> float:
        """The messages sent, written and generated."""
        return sum(share.count for share in self.shares if share.cost == COST_OF_MESSAGE)

    @property
    def largest(self) -> Share | None:
        """The source that costs the most, or None for a scenario that schedules nothing."""
        return max(self.shares, key=lambda share: share.run_time, default=None)


def workload(parts: ScenarioParts) -> Workload:
    """Count what ``parts`` schedule over the run: POP3 checks, messages, random failures."""
    end = parts.duration
    if end is None:
        return Workload(())
    shares: list[Share] = []
    for index, user in parts.users:
        every = user.check_mail_every
        if every is not None:
            what = f"POP3 checks ({format_duration(end)} / {format_duration(every)})"
            loc = ("users", index, "check_mail_every")
            shares.append(Share(loc, what, end / every, COST_OF_CHECK))
    if parts.messages:
        shares.append(Share(("messages",), "messages", len(parts.messages), COST_OF_MESSAGE))
    everyone = len(parts.users)
    for index, generator in parts.traffic:
        stop = end if generator.stop is None else min(generator.stop, end)
        senders = len(generator.senders) if generator.senders is not None else everyone
        span = max(0.0, stop - generator.start)
        count = generator.rate * span * senders
        loc = ("traffic", index, "rate")
        shares.append(Share(loc, "generated messages", count, COST_OF_MESSAGE))
    for index, fault in parts.faults:
        mtbf, mttr = getattr(fault, "mtbf", None), getattr(fault, "mttr", None)
        if mtbf is not None and mttr is not None:
            cycle = mtbf + mttr
            shares.append(
                Share(
                    ("faults", index, "mtbf"),
                    f"random failures and repairs (every {format_duration(cycle)} on average)",
                    2 * end / cycle,
                    COST_OF_FAILURE,
                )
            )
    return Workload(tuple(shares))


def check_workload(parts: ScenarioParts) -> list[Issue]:
    """A problem where a scenario asks more than a run can finish (see the module docstring)."""
    load = workload(parts)
    top = load.largest
    if top is None:
        return []
    generated = [share for share in load.shares if share.what == "generated messages"]
    if load.messages > MAX_MESSAGES and generated:
        most = max(generated, key=lambda share: share.count)
        message = (
            f"makes about {_count(load.messages)} messages in all, more than the "
            f"{MAX_MESSAGES:,} a run can build; lower the rate or shorten the run"
        )
        return [Issue(most.loc, message)]
    if load.run_time > MAX_RUN_TIME:
        message = (
            f"makes about {_count(top.count)} {top.what}, and the run would take "
            f"{_time(load.run_time)} in all; check the unit (1min, not 1ms) or shorten the run"
        )
        return [Issue(top.loc, message)]
    return []


def check_workload_advice(parts: ScenarioParts) -> list[Issue]:
    """A warning for a scenario that schedules enough to take minutes or hours to run."""
    load = workload(parts)
    top = load.largest
    if top is None or load.run_time <= WARN_RUN_TIME or check_workload(parts):
        return []
    message = (
        f"warning: makes about {_count(top.count)} {top.what}, and the run takes "
        f"{_time(load.run_time)} in all"
    )
    return [Issue(top.loc, message)]


def _time(seconds: float) -> str:
    """'about 3 minutes', 'about 5 hours', 'more than a year' (estimates, so rounded)."""
    if seconds >= 365 * 86400:
        return "more than a year"
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = round(seconds / size)
            return f"about {count} {unit}{'' if count == 1 else 's'}"
    return "about a minute"


def _count(number: float) -> str:
    """A large count for people: 31,536,000; huge ones in powers of ten (1.0e+30)."""
    return f"{number:,.0f}" if number < 1e15 else f"{number:.1e}"
