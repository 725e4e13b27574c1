"""What a study measures in each run: numbers taken from a run's books, summary and trace.

A metric is named in the study file (``latency_mean``, ``latency_p95``, ``queue_peak``) or is any
number of ``summary.json`` by its path (``totals.dsn_sent``, ``end_time``). Each run yields one
float per metric, NaN where the run has nothing to measure (no message delivered, so no latency).
Latencies are seconds, from submission to filing in the mailbox, over user mail only (bounce
notices are left out), as the summary's ``latency`` column.

From Python a metric can also be a function of the :class:`mailsim.scenario.result.Result`; it
must be a module-level function so that a worker process can receive it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from mailsim.scenario.errors import did_you_mean

if TYPE_CHECKING:
    from mailsim.scenario.result import Result

__all__ = [
    "DEFAULT_METRICS",
    "METRIC_DOCS",
    "MetricSpec",
    "check_metric",
    "measure",
    "metric_title",
    "metric_unit",
    "percentile",
]

#: A metric: its name, or (name, function of a Result returning a number).
MetricSpec = str | tuple[str, Callable[["Result"], float]]

#: What a study collects when its file names no metrics.
DEFAULT_METRICS = (
    "latency_mean",
    "latency_p95",
    "attempts_mean",
    "delivered",
    "bounced",
    "connections",
    "queue_peak",
)

#: The named metrics and what each is (``latency_p<N>`` stands for any percentile 1-99).
METRIC_DOCS: dict[str, str] = {
    "latency_mean": "mean seconds from submission to delivery, over delivered user mail",
    "latency_median": "median of the same latencies",
    "latency_p<N>": "the N-th percentile of the same latencies (N from 1 to 99), like latency_p95",
    "latency_max": "the longest latency",
    "attempts_mean": "mean delivery attempts per (message, recipient) of user mail",
    "attempts_max": "the most attempts any (message, recipient) needed",
    "attempts_total": "all delivery attempts of user mail",
    "delivered_fraction": "delivered (message, recipient) pairs over all submitted",
    "queue_peak": "the longest outgoing queue any mail server had (entries)",
    "relay_connections": "TCP connections opened to port 25 (mail server to mail server)",
    "submitted, delivered, bounced, queued, rejected, lost, duplicated, dsn_sent, "
    "dsn_delivered, connections": "the counts of the summary's totals",
    "<summary path>": "any number in summary.json by its path, like totals.dsn_sent or end_time",
}

_TOTALS = (
    "submitted",
    "delivered",
    "bounced",
    "queued",
    "rejected",
    "lost",
    "duplicated",
    "dsn_sent",
    "dsn_delivered",
    "connections",
)
_NAMED = (
    "latency_mean",
    "latency_median",
    "latency_max",
    "attempts_mean",
    "attempts_max",
    "attempts_total",
    "delivered_fraction",
    "queue_peak",
    "relay_connections",
)
_PERCENTILE = re.compile(r"latency_p([1-9][0-9]?)")
#: Top-level keys of summary.json that hold numbers (for ``end_time``, ``totals.x``).
_SUMMARY_NUMBERS = ("end_time", "seed", "totals")


def check_metric(name: object) -> str | None:
    """Why ``name`` is not a metric a study file can ask for, or None when it is one."""
    if not isinstance(name, str) or not name:
        return "must be a metric name like latency_mean or queue_peak"
    if name in _NAMED or name in _TOTALS or _PERCENTILE.fullmatch(name):
        return None
    head = name.split(".", 1)[0]
    if head in _SUMMARY_NUMBERS and (head == "totals" or name == head):
        if head == "totals" and name.removeprefix("totals.") not in _TOTALS:
            return (
                f"unknown total '{name}'; the totals are {', '.join(_TOTALS)}"
                f"{did_you_mean(name.removeprefix('totals.'), _TOTALS)}"
            )
        return None
    known = [*_NAMED, *_TOTALS, "latency_p95"]
    suggestion = did_you_mean(name, known)
    if suggestion:
        return f"unknown metric '{name}'{suggestion}"
    return (
        f"unknown metric '{name}'; expected one of {', '.join(known)}, latency_p<N>, "
        "or a number of summary.json like totals.dsn_sent"
    )


#: Short titles for figures (a metric without one is titled by its name).
METRIC_TITLES: dict[str, str] = {
    "latency_mean": "mean delivery delay",
    "latency_median": "median delivery delay",
    "latency_max": "longest delivery delay",
    "attempts_mean": "delivery attempts per message",
    "attempts_max": "most attempts of a message",
    "attempts_total": "delivery attempts",
    "delivered_fraction": "fraction delivered",
    "queue_peak": "longest outgoing queue",
    "relay_connections": "connections between mail servers",
    "connections": "TCP connections",
    "delivered": "messages delivered",
    "bounced": "messages bounced",
    "queued": "messages still queued",
}


def metric_title(name: str) -> str:
    """A short title for ``name`` on a figure: ``mean delivery delay``."""
    match = _PERCENTILE.fullmatch(name)
    if match is not None:
        number = int(match.group(1))
        suffix = (
            "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
        )
        return f"delivery delay, {number}{suffix} percentile"
    return METRIC_TITLES.get(name, name)


def metric_unit(name: str) -> str:
    """``"s"`` for a metric in seconds, else an empty string (a count or a fraction)."""
    return "s" if name.startswith("latency_") or name == "end_time" else ""


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by linear interpolation between order statistics (the
    usual definition, numpy's default); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def measure(result: Result, metrics: Sequence[MetricSpec]) -> dict[str, float]:
    """Every metric of one run, by name, as floats (NaN where there is nothing to measure)."""
    books = result.books
    mail = [row for row in books.rows.values() if row.kind == "mail"]
    latencies = [row.latency for row in mail if row.latency is not None]
    attempts = [row.attempts for row in mail]
    totals = books.totals()
    summary: dict[str, Any] | None = None
    values: dict[str, float] = {}
    for spec in metrics:
        if not isinstance(spec, str):
            name, function = spec
            values[name] = float(function(result))
            continue
        name = spec
        match = _PERCENTILE.fullmatch(name)
        if match is not None:
            values[name] = percentile(latencies, float(match.group(1)))
        elif name in _TOTALS:
            values[name] = float(totals[name])
        elif name in _NAMED:
            values[name] = _named(name, latencies, attempts, totals, result)
        else:
            if summary is None:
                summary = result.summary()
            values[name] = _summary_number(summary, name)
    return values


def _named(
    name: str,
    latencies: list[float],
    attempts: list[int],
    totals: Mapping[str, int],
    result: Result,
) -> float:
    if name == "latency_mean":
        return math.fsum(latencies) / len(latencies) if latencies else math.nan
    if name == "latency_median":
        return percentile(latencies, 50.0)
    if name == "latency_max":
        return max(latencies) if latencies else math.nan
    if name == "attempts_mean":
        return sum(attempts) / len(attempts) if attempts else math.nan
    if name == "attempts_max":
        return float(max(attempts)) if attempts else math.nan
    if name == "attempts_total":
        return float(sum(attempts))
    if name == "delivered_fraction":
        submitted = totals["submitted"]
        return totals["delivered"] / submitted if submitted else math.nan
    if name == "relay_connections":
        return float(sum(1 for r in result.records if r["type"] == "tcp.open" and r["sport"] == 25))
    # queue_peak: each mail.queue record carries its server's queue length after the addition.
    return float(max((r["queued"] for r in result.records if r["type"] == "mail.queue"), default=0))


def _summary_number(summary: Mapping[str, Any], path: str) -> float:
    value: Any = summary
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            raise KeyError(f"summary.json has no {path!r}")
        value = value[part]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"summary.json's {path!r} is not a number")
    return float(value)
