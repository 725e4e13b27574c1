"""The delivery timeline: one row per (message, recipient), from submission to the user's inbox.

Each row shows when the message was submitted and queued, every delivery attempt coloured by its
outcome (accepted, temporary failure with a short reason, permanent failure), the delivery into
the mailbox, the user fetching it, and the bounce or expiry when it never arrived. Outages of
links, nodes and services (``link.down``/``up``, ``node.down``/``up``, ``service.down``/``up``)
are shaded behind the rows and each named above the frame on a bracket spanning its band
(:mod:`mailsim.plot.timeline_outages`), so "the link was down, so the tries failed" can be seen
at a glance.

:func:`journeys` is the reading of the trace behind it (also used by :mod:`mailsim.plot.queues`):
a :class:`Journey` per (message, recipient) with its attempts and their outcomes. An attempt's
outcome is the first ``mail.defer`` (temporary), ``mail.bounce``/``mail.reject`` (permanent) or
``mail.deliver``/``mail.queue`` at another node (accepted) of that pair after it; an expiry ends a
journey without being an attempt.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mailsim.plot._style import (
    ERROR_COLOUR,
    LOG_TICKS,
    OUTAGE_COLOURS,
    SLIDE_INCHES,
    STATUS_COLOURS,
    Look,
    PlotError,
    empty_note,
    human_duration,
    look_for,
    new_figure,
    short_text,
    time_unit,
)
from mailsim.plot.timeline_outages import OutageNames, draw_outages, failed_tries
from mailsim.plot.topology import Outage, read_topology

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.text import Text

Record = dict[str, Any]

#: Attempt outcome -> marker colour.
OUTCOME_COLOURS = {
    "accepted": "#2ca02c",
    "temporary": "#ff7f0e",
    "permanent": ERROR_COLOUR,
    "pending": "#9a9a9a",
}


@dataclass
class Attempt:
    """One try to hand a (message, recipient) to the next server."""

    t: float
    node: str
    conn: int | None
    outcome: str = "pending"  #: "accepted", "temporary", "permanent" or "pending"
    reason: str = ""  #: short reason of a failure ("connect timeout", "451 ...")
    reply: str = ""  #: the full reply text of a failure, when the trace gives one


@dataclass
class Journey:
    """What happened to one (message, recipient) pair, read from the trace."""

    msg: str
    rcpt: str
    sender: str = ""
    kind: str = "mail"  #: "mail" or "dsn" (a delivery status notification)
    #: What a DSN reports: "bounce" (a ``mail.bounce`` names it), "delay" (sent with a
    #: ``mail.warn``) or "" (not known, or not a DSN).
    report: str = ""
    submitted: float | None = None
    queued: list[tuple[float, str]] = field(default_factory=list)
    attempts: list[Attempt] = field(default_factory=list)
    delivered: float | None = None
    mailbox: str = ""
    delivered_at_node: str = ""
    fetched: float | None = None
    bounced: float | None = None
    bounce_reply: str = ""
    expired: float | None = None
    rejected: float | None = None
    reject_reply: str = ""
    lost: float | None = None
    lost_cause: str = ""
    warned: list[float] = field(default_factory=list)
    duplicates: list[float] = field(default_factory=list)

    @property
    def status(self) -> str:
        """delivered, bounced, rejected, lost or queued (the summary's words)."""
        if self.delivered is not None:
            return "delivered"
        if self.bounced is not None:
            return "bounced"
        if self.rejected is not None:
            return "rejected"
        if self.lost is not None:
            return "lost"
        return "queued"

    @property
    def start(self) -> float:
        """Time of the first thing that happened to the pair."""
        times = [self.submitted, *(t for t, _ in self.queued), *(a.t for a in self.attempts)]
        return min(t for t in times if t is not None) if any(t is not None for t in times) else 0.0

    @property
    def end(self) -> float | None:
        """Time the pair reached its final state (None while queued)."""
        finals = [self.delivered, self.bounced, self.rejected, self.lost]
        done = [t for t in finals if t is not None]
        return min(done) if done else None

    @property
    def latency(self) -> float | None:
        """Seconds from submission to delivery, or None when not delivered."""
        if self.delivered is None or self.submitted is None:
            return None
        return self.delivered - self.submitted


_CODE = re.compile(r"^\s*(\d{3})[ -]?(?:\d\.\d{1,3}\.\d{1,3}\s+)?(.*)$")


def short_reason(reply: str, tcp_reason: str | None = None, limit: int = 24) -> str:
    """A few words on why an attempt failed: ``connect timeout``, ``refused``, ``452 Mailbox full``.

    The connection's ``tcp.fail`` reason wins when there is one; otherwise the reply is read: its
    code and the start of its text, without the enhanced status code (RFC 3463).
    """
    if tcp_reason:
        return {
            "timeout": "connect timeout",
            "refused": "connection refused",
            "unreachable": "no route",
        }.get(tcp_reason, tcp_reason)
    lowered = reply.lower()
    for needle, words in (
        ("timed out", "timeout"),
        ("timeout", "timeout"),
        ("refused", "refused"),
        ("no route", "no route"),
        ("unreachable", "unreachable"),
        ("expired", "expired"),
    ):
        if needle in lowered:
            code = _CODE.match(reply)
            return f"{code.group(1)} {words}" if code else words
    match = _CODE.match(reply)
    if match:
        return short_text(f"{match.group(1)} {match.group(2)}".strip(), limit)
    return short_text(reply, limit) if reply else "failed"


def journeys(records: Sequence[Record]) -> list[Journey]:
    """One :class:`Journey` per (message, recipient), in the order they first appear."""
    pairs: dict[tuple[str, str], Journey] = {}
    open_attempt: dict[tuple[str, str], Attempt] = {}
    tcp_fail: dict[int, str] = {}
    where_queued: dict[tuple[str, str], str] = {}
    bounce_reports: set[str] = set()
    warned_at: set[float] = set()

    def pair(msg: str, rcpt: str) -> Journey:
        key = (msg, rcpt)
        if key not in pairs:
            pairs[key] = Journey(msg, rcpt)
        return pairs[key]

    def resolve(key: tuple[str, str], outcome: str, reply: str = "") -> bool:
        attempt = open_attempt.pop(key, None)
        if attempt is None:
            return False
        attempt.outcome = outcome
        attempt.reply = reply
        if outcome != "accepted":
            fail = tcp_fail.get(attempt.conn) if attempt.conn is not None else None
            attempt.reason = short_reason(reply, fail)
        return True

    for rec in records:
        kind = rec["type"]
        if kind == "tcp.fail":
            tcp_fail[rec["conn"]] = rec.get("reason", "")
            continue
        if not kind.startswith("mail."):
            continue
        msg, t = rec["msg"], rec["t"]
        if kind == "mail.submit":
            for rcpt in rec["rcpts"]:
                journey = pair(msg, rcpt)
                journey.sender = rec.get("sender", "")
                journey.kind = rec.get("kind", "dsn" if rec.get("sender") == "" else "mail")
                if journey.submitted is None:
                    journey.submitted = t
        elif kind == "mail.queue":
            for rcpt in rec["rcpts"]:
                key = (msg, rcpt)
                journey = pair(msg, rcpt)
                previous = where_queued.get(key)
                if previous is not None and previous != rec["node"]:
                    resolve(key, "accepted")  # the next server took it over
                where_queued[key] = rec["node"]
                journey.queued.append((t, rec["node"]))
        elif kind == "mail.attempt":
            for rcpt in rec["rcpts"]:
                key = (msg, rcpt)
                # A new attempt while one is unresolved: the earlier one's fate is unknown.
                open_attempt.pop(key, None)
                attempt = Attempt(t, rec["node"], rec.get("conn"))
                pair(msg, rcpt).attempts.append(attempt)
                open_attempt[key] = attempt
        elif kind == "mail.fetch":
            _attach_fetch(pairs, rec)
        else:
            key = (msg, rec["rcpt"])
            journey = pair(msg, rec["rcpt"])
            if kind == "mail.defer":
                if not resolve(key, "temporary", rec.get("reply", "")):
                    # A deferral without a recorded try (a DNS failure, say) still is one.
                    attempt = Attempt(t, rec["node"], None, "temporary")
                    attempt.reply = rec.get("reply", "")
                    attempt.reason = short_reason(attempt.reply)
                    journey.attempts.append(attempt)
            elif kind == "mail.deliver":
                resolve(key, "accepted")
                if journey.delivered is None:
                    journey.delivered = t
                    journey.mailbox = str(rec.get("mailbox", ""))
                    journey.delivered_at_node = rec["node"]
                else:
                    journey.duplicates.append(t)
            elif kind == "mail.bounce":
                resolve(key, "permanent", rec.get("reply", ""))
                journey.bounced = t
                if rec.get("dsn"):
                    bounce_reports.add(str(rec["dsn"]))
                journey.bounce_reply = rec.get("reply", "")
            elif kind == "mail.reject":
                resolve(key, "permanent", rec.get("reply", ""))
                journey.rejected = t
                journey.reject_reply = rec.get("reply", "")
            elif kind == "mail.expire":
                journey.expired = t
            elif kind == "mail.lost":
                journey.lost = t
                journey.lost_cause = str(rec.get("cause", ""))
            elif kind == "mail.warn":
                journey.warned.append(t)
                warned_at.add(t)
            elif kind == "mail.duplicate":
                journey.duplicates.append(t)
    for journey in pairs.values():
        if journey.kind != "dsn":
            continue
        if journey.msg in bounce_reports:
            journey.report = "bounce"
        elif journey.submitted in warned_at:  # a warning is submitted when it is decided
            journey.report = "delay"
    return list(pairs.values())


def _attach_fetch(pairs: dict[tuple[str, str], Journey], rec: Record) -> None:
    """Give a ``mail.fetch`` (which names a user, not a recipient) to the right pair.

    The pair of that message delivered at that node into the mailbox named like the user;
    failing that, whose recipient's local part is the user; failing that, the only delivered
    pair of the message.
    """
    user = str(rec.get("user", ""))
    candidates = [j for j in pairs.values() if j.msg == rec["msg"] and j.delivered is not None]
    same_box = [j for j in candidates if j.mailbox == user]
    chosen = [j for j in same_box if j.delivered_at_node == rec["node"]] or same_box
    if not chosen:
        chosen = [j for j in candidates if j.rcpt.split("@")[0].lower() == user.lower()]
    if not chosen and len(candidates) == 1:
        chosen = candidates
    for journey in chosen[:1]:
        if journey.fetched is None:
            journey.fetched = rec["t"]


# --- the figure ---------------------------------------------------------------------------------

_MARKERS: dict[str, dict[str, Any]] = {
    # A ring larger than a triangle, drawn over the tries: the first try usually follows the
    # submission within a second, at the same place on an axis of hours (link-outage).
    "submitted": {
        "marker": "o",
        "s": 110,
        "facecolors": "none",
        "edgecolors": "black",
        "linewidths": 1.3,
        "zorder": 8.5,
    },
    "queued": {"marker": "|", "s": 90, "color": "#555555", "linewidths": 1.5, "zorder": 5},
    "accepted": {"marker": ">", "s": 46, "color": OUTCOME_COLOURS["accepted"], "zorder": 6},
    "temporary": {"marker": ">", "s": 40, "color": OUTCOME_COLOURS["temporary"], "zorder": 6},
    "permanent": {"marker": ">", "s": 46, "color": OUTCOME_COLOURS["permanent"], "zorder": 6},
    "pending": {"marker": ">", "s": 40, "color": OUTCOME_COLOURS["pending"], "zorder": 6},
    # Tries too close together for triangles: one thin tick each (see DENSE_GAP).
    "temporary-tick": {
        "marker": "|",
        "s": 70,
        "color": OUTCOME_COLOURS["temporary"],
        "linewidths": 0.9,
        "zorder": 6,
    },
    "permanent-tick": {
        "marker": "|",
        "s": 70,
        "color": OUTCOME_COLOURS["permanent"],
        "linewidths": 0.9,
        "zorder": 6,
    },
    "delivered": {"marker": "*", "s": 150, "color": STATUS_COLOURS["delivered"], "zorder": 7},
    "fetched": {"marker": "D", "s": 46, "color": "#1f5fa8", "zorder": 7},
    "expired": {"marker": "d", "s": 60, "color": "#8c564b", "zorder": 7},
    "bounced": {"marker": "X", "s": 90, "color": ERROR_COLOUR, "zorder": 8},
    "rejected": {"marker": "X", "s": 90, "color": STATUS_COLOURS["rejected"], "zorder": 8},
    "lost": {"marker": "X", "s": 90, "color": STATUS_COLOURS["lost"], "zorder": 8},
    "warned": {"marker": "$!$", "s": 60, "color": "#bcbd22", "zorder": 7},
    "duplicate": {"marker": "P", "s": 60, "color": "#e377c2", "zorder": 7},
}

_LEGEND_NAMES = {
    "submitted": "submitted",
    "queued": "queued",
    "accepted": "attempt: accepted",
    "temporary": "attempt: temporary failure",
    "permanent": "attempt: permanent failure",
    "pending": "attempt: no outcome yet",
    "temporary-tick": "attempt: temporary failure",
    "permanent-tick": "attempt: permanent failure",
    "delivered": "delivered to mailbox",
    "fetched": "fetched by the user",
    "expired": "expired (gave up)",
    "bounced": "bounced",
    "rejected": "rejected",
    "lost": "lost",
    "warned": "delay warning",
    "duplicate": "duplicate",
}


#: How :func:`_most_eventful` says it chose, by the part of its sort key that did.
_CHOSEN_BY = ("the most retried", "the undelivered", "the earliest")


def _most_eventful(rows: list[Journey], keep: int) -> tuple[list[Journey], str]:
    """The ``keep`` journeys with the most attempts (undelivered first on ties), by start time,
    and how they were chosen, naming only what set them apart from the rows left out.

    Ten pairs delivered at their first try are ``the earliest``, not ``the most retried``.
    """

    def key(i: int) -> tuple[int, bool, float]:
        return (-len(rows[i].attempts), rows[i].delivered is not None, rows[i].start)

    order = sorted(range(len(rows)), key=key)
    chosen, left = order[:keep], order[keep:]
    used: set[int] = set()
    if left:
        first_left = key(left[0])
        for i in chosen:
            own = key(i)
            used.add(next((c for c in range(3) if own[c] != first_left[c]), 2))
    how = ", then ".join(_CHOSEN_BY[c] for c in sorted(used)) or "the earliest"
    return [rows[i] for i in sorted(chosen)], how


def _rows_that_tell_the_day(
    rows: list[Journey], outages: list[Outage], keep: int
) -> tuple[list[Journey], str]:
    """``keep`` journeys that tell a long trace's story, in start order, and how they were chosen.

    With outages: the most retried pair that failed during each outage (the outages that failed
    the most tries first, when there are more than rows), then one pair delivered at its first
    try for contrast, then the most retried of the rest. Without: the most retried
    (:func:`_most_eventful`).
    """
    if not outages:
        return _most_eventful(rows, keep)

    impact = {id(o): failed_tries(o, rows) for o in outages}
    chosen: list[Journey] = []
    for outage in sorted(outages, key=lambda o: -impact[id(o)])[: max(keep - 1, 1)]:
        hit = [j for j in rows if j not in chosen and failed_tries(outage, [j])]
        if hit:
            chosen.append(max(hit, key=lambda j: (len(j.attempts), -j.start)))
    ways = ["the most retried of each outage"] if chosen else []
    straight = next(
        (
            j
            for j in rows
            if j.kind == "mail"
            and j.delivered is not None
            and all(a.outcome == "accepted" for a in j.attempts)
            and j not in chosen
        ),
        None,
    )
    if straight is not None and len(chosen) < keep:
        chosen.append(straight)
        ways.append("one delivered at once")
    how = " and ".join(ways)
    rest = [j for j in rows if j not in chosen]
    if len(chosen) < keep and rest:
        more, more_how = _most_eventful(rest, keep - len(chosen))
        chosen += more
        # Only what set the rest apart first: "then the most retried, then the earliest of the
        # rest" does not say which "of the rest" belongs to.
        first_way = more_how.split(", then ")[0]
        how = f"{how}, then {first_way} of the rest" if how else more_how
    return sorted(chosen, key=lambda j: j.start), how


#: Characters of a reply a run's label shows (``451 4.7.1 Greylisted, please try again later``
#: loses its enhanced code, RFC 3463); the shorter reason (24) groups the runs.
REASON_LABEL_CHARS = 56

#: A run of failed tries whose usual gap is under this many triangle widths is drawn as thin
#: ticks: triangles that close melt into one solid bar (bounce-after-days: 204 in 5 days).
DENSE_GAP = 1.5

#: Most inches between two rows on a slide (times the look's scale): room for a row's labels
#: above and times below, but one row is a band in the middle, not a third of the slide.
SLIDE_ROW_INCHES = 0.8
#: Rows on a slide up to which each try is also labelled with its time, under the row.
TIMED_ROWS = 3

#: Inches of one row of the timeline in the default look (the slide look scales it).
ROW_INCHES = 0.42
#: Rows of room the y limits leave beyond the rows: 0.75 above the first (its run label) and 0.6
#: below the last (its try times); n rows span n + ROW_MARGINS (n - 1 between first and last).
ROW_ABOVE = 0.75
ROW_BELOW = 0.6
ROW_MARGINS = ROW_ABOVE + ROW_BELOW - 1.0
#: Inches (times the look's scale) of a slide that are not rows, for the first guess of how many
#: fit: title, axis label and a two-row legend. The drawn figure then says how many really do.
SLIDE_CHROME_INCHES = 2.9
#: Drawings of a slide at most, looking for the number of rows that fits (it settles in two).
SLIDE_DRAWINGS = 4


def delivery_timeline(
    records: Sequence[Record],
    *,
    log_time: bool = False,
    max_rows: int | None = None,
    ax: Axes | None = None,
    size: str = "default",
) -> Figure:
    """Draw one row per (message, recipient) with its whole story over time.

    Args:
        records: trace records (``Recorder.records`` or ``load_events(path)``).
        log_time: plot time since the first submission on a logarithmic axis (linear below 1 s),
            so seconds-long dialogues and days-long retry stories fit on one figure. It squeezes
            later times together, so steady retries look as if they sped up: keep the default
            linear axis (simulated time in s, min, h or d) when the lesson is the retry rhythm.
        max_rows: draw at most this many rows, still in submission order, and say in the
            title how they were chosen: with outages, the most retried row that failed during
            each outage and one delivered at once, then the most retried of the rest; without,
            those with the most attempts (then the ones that did not end delivered, then the
            earliest). None draws every row (a busy day has thousands), or at slide size as
            many as fit, measured on the drawn figure.
        ax: draw into this axes instead of a new figure.
        size: "default" or "slide" (see :class:`mailsim.plot._style.Look`).

    Returns:
        The figure. Markers are scatter collections with gid ``timeline-<event>`` (``timeline-
        temporary`` holds one point per temporarily failed attempt, and so on); rows are Line2D
        with gid ``timeline-row``; outages are spans with gid ``outage`` and label ``_outage:I``,
        their names texts with gid ``outage-name:I`` on Line2D brackets with gid
        ``outage-bracket:I``, I the outage's index in the trace's order.
    """
    look = look_for(size)
    if max_rows is not None and max_rows < 1:
        raise PlotError(f"max_rows must be at least 1 (None draws every row), got {max_rows}")
    records = list(records)
    every = sorted(journeys(records), key=lambda j: j.start)
    outages = read_topology(records).outages
    if not look.slide or ax is not None:
        return _draw_timeline(records, every, outages, max_rows, log_time, ax, look).figure
    # A slide does not grow: it draws as many rows as fit. What fits is measured on the drawn
    # figure (the legend's rows and the lines of outage names take their share of the height,
    # and both depend on the rows drawn), so it is drawn again with the rows that fit, until a
    # count is drawn a second time; the most rows that fitted win.
    cap = len(every) if max_rows is None else min(max_rows, len(every))
    first_guess = int(
        (SLIDE_INCHES[1] - SLIDE_CHROME_INCHES * look.scale) / (ROW_INCHES * look.scale)
    )
    keep = max(min(cap, first_guess), 1)
    drawn: dict[int, _Drawn] = {}
    while keep not in drawn and len(drawn) < SLIDE_DRAWINGS:
        drawn[keep] = _draw_timeline(records, every, outages, keep, log_time, None, look)
        keep = max(min(cap, drawn[keep].fitting), 1)
    fitted = [k for k, result in drawn.items() if result.fitting >= k]
    return drawn[max(fitted) if fitted else min(drawn)].figure


@dataclass
class _Drawn:
    """A drawn timeline and how many rows its frame has room for at :data:`ROW_INCHES`."""

    figure: Figure
    fitting: int


def _draw_timeline(
    records: list[Record],
    every: list[Journey],
    outages: list[Outage],
    max_rows: int | None,
    log_time: bool,
    ax: Axes | None,
    look: Look,
) -> _Drawn:
    """:func:`delivery_timeline` with its rows (``every``, in start order) and outages read."""
    rows = every
    total = len(rows)
    own_figure = ax is None
    row_inches = ROW_INCHES * look.scale
    top = 0.45 * look.scale
    how = ""
    if max_rows is not None and total > max_rows:
        rows, how = _rows_that_tell_the_day(rows, outages, max_rows)
    n = max(len(rows), 1)
    label_room = 0.0
    if ax is None:
        # Inches: room for the row labels at the left, the title above, and the axis label and
        # a legend of up to three rows below.
        label_room = (0.4 + 0.062 * max([len(_row_label(j)) for j in rows] + [10])) * look.scale
        if look.slide:
            fig = new_figure(*SLIDE_INCHES)
        else:
            fig = new_figure(11.0, top + 1.25 + 0.4 + row_inches * n)
        fw, fh = fig.get_size_inches()
        ax = fig.add_axes((label_room / fw, 1.25 / fh, 1 - (label_room + 0.3) / fw, 0.5))
    else:
        fig = ax.get_figure()  # type: ignore[assignment]
    title = "Delivery timeline, one row per (message, recipient)"
    if len(rows) < total:
        title = f"Delivery timeline: {len(rows)} of {total:,} (message, recipient) pairs, {how}"
    ax.set_title(title, fontsize=look.title, loc="left")
    if not rows:
        empty_note(ax, "no mail in the trace (no mail.* records)")
        return _Drawn(fig, 0)
    times = [r["t"] for r in records if r["type"].startswith("mail.")]
    t_first = min(j.start for j in every)  # the axis covers the whole trace, not the rows kept
    t_last = max(times)
    if log_time:
        origin = t_first

        def x_of(t: float) -> float:
            return t - origin

        span_hi = max(x_of(t_last) * 1.6, 10.0)
        _log_axis(ax, span_hi)
        ax.set_xlabel(
            "time since the first submission (log scale, linear below 1 s)", fontsize=look.font
        )
        x_lo, x_hi = 0.0, span_hi
    else:
        name, unit = time_unit(max(t_last - t_first, 1e-3))

        def x_of(t: float) -> float:
            return t / unit

        pad = 0.03 * max(t_last - t_first, 1.0)
        x_lo, x_hi = x_of(t_first - pad), x_of(t_last + pad)
        ax.set_xlim(x_lo, x_hi)
        ax.set_xlabel(f"simulated time ({name})", fontsize=look.font)
    # The outages' names sit between the title and the frame.
    t_end = max(r["t"] for r in records)
    names = draw_outages(ax, outages, rows, x_of, x_lo, x_hi, t_end, look)
    heading = ax.set_title(title, fontsize=look.title, loc="left", pad=6 * look.scale + names.room)
    top += names.room / 72
    if own_figure and _wrap_title(heading):
        top += look.title * TITLE_LINE_EMS / 72
    points: dict[str, list[tuple[float, float]]] = {}
    dpi = fig.dpi

    def pt_of(x: float) -> float:
        """Points from the figure's left edge (the x limits and the axes' width are final)."""
        return float(ax.transData.transform((x, 0.0))[0]) * 72.0 / dpi

    run_labels: list[_RunLabel] = []
    # A slide with a few rows has room to say when each try was (the retry rhythm); not on a
    # log axis, where the times would crowd at the right.
    timed = look.slide and own_figure and len(rows) <= TIMED_ROWS and not log_time
    for row, journey in enumerate(rows):
        _draw_row(ax, row, journey, x_of, x_hi, points, look, pt_of, run_labels, timed)
    for name, pts in points.items():
        style = dict(_MARKERS[name.removesuffix("-covered")])
        style["s"] = style["s"] * look.scale**2
        if "linewidths" in style:
            style["linewidths"] = look.line(style["linewidths"])
        label = _LEGEND_NAMES.get(name, "_covered")  # hidden under a cross: not in the legend
        collection = ax.scatter([p[0] for p in pts], [p[1] for p in pts], label=label, **style)
        collection.set_gid(f"timeline-{name.split('-')[0]}")
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([_row_label(j) for j in rows], fontsize=look.small)
    for tick, journey in zip(ax.get_yticklabels(), rows, strict=False):
        tick.set_color(STATUS_COLOURS.get(journey.status, "black"))
    ax.set_ylim(len(rows) - 1 + ROW_BELOW, -ROW_ABOVE)
    ax.tick_params(axis="x", labelsize=look.small)
    ax.grid(axis="x", color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)
    _fit_run_labels(ax, run_labels, look)
    legend_rows = _legend(ax, names, own_figure, look)
    if own_figure:
        # Now that the legend's size is known, fit the bottom margin to it.
        bottom = (0.75 + 0.2 * legend_rows) * look.scale
        shift = 0.0
        if look.slide:
            width, height = SLIDE_INCHES
            # A few rows do not stretch over the whole slide: rows at most SLIDE_ROW_INCHES
            # apart, the picture (title, rows, legend) in the middle of the slide.
            rows_span = len(rows) + ROW_MARGINS  # the y limits above
            plot = min(height - top - bottom, SLIDE_ROW_INCHES * look.scale * rows_span)
            shift = (height - top - bottom - plot) / 2
        else:
            width, height = 11.0, top + 0.4 + row_inches * n + bottom
            fig.set_size_inches(width, height)
            plot = height - top - bottom
        ax.set_position(
            (
                label_room / width,
                (bottom + shift) / height,
                1 - (label_room + 0.3) / width,
                plot / height,
            )
        )
        if shift and fig.legends:
            fig.legends[0].set_bbox_to_anchor((0.5, shift / height), transform=fig.transFigure)
        # Rows the frame has room for, no closer together than row_inches.
        fitting = int((height - top - bottom) / row_inches - ROW_MARGINS + 1e-9)
        return _Drawn(fig, fitting)
    return _Drawn(fig, len(rows))


#: Height of a title line in ems of the title type, for a title wrapped onto a second line.
TITLE_LINE_EMS = 1.25


def _wrap_title(title: Text) -> bool:
    """Wrap a title that runs past the figure's right edge after its ``pairs,``: busy-day's
    says how its rows were chosen on a line of its own. True when it wrapped."""
    fig = title.get_figure()
    assert fig is not None
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    head, sep, how = title.get_text().partition(" pairs, ")
    if not sep or title.get_window_extent(renderer).x1 <= fig.bbox.x1 - 0.1 * fig.dpi:
        return False
    title.set_text(f"{head} pairs,\n{how}")
    return True


def _log_axis(ax: Axes, hi: float) -> None:
    """Symmetric log x axis in seconds: linear from 0 to 1 s, logarithmic above, human ticks."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    ax.set_xscale("symlog", linthresh=1.0, linscale=0.4)
    ax.set_xlim(0.0, hi)
    ticks = [0.0] + [s for s, _ in LOG_TICKS if 1.0 <= s <= hi]
    labels = {0.0: "0"} | dict(LOG_TICKS)
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: labels.get(v, "")))
    ax.xaxis.set_minor_locator(NullLocator())


#: How a DSN row is named, by what it reports: its queue id says nothing to a reader.
_REPORT_NAMES = {"bounce": "bounce report (DSN)", "delay": "delay warning (DSN)", "": "DSN"}


def _row_label(journey: Journey) -> str:
    if journey.kind == "dsn":
        return f"{_REPORT_NAMES[journey.report]} → {short_text(journey.rcpt, 22)}"
    return f"{short_text(journey.msg, 16)} → {short_text(journey.rcpt, 22)}"


@dataclass
class _RunLabel:
    """The label over one run of failed tries, and the reasons and counts it stands for."""

    row: int
    text: Any  #: the Annotation
    counts: dict[str, int]


def _fit_run_labels(ax: Axes, labels: list[_RunLabel], look: Look) -> None:
    """Keep run labels apart and inside the frame: move one that runs off the right edge left,
    and fold one that would run into the label before it into that label (``connect timeout
    (×7), 451 timeout (×3)``), so a crowded row says its reasons once, in order.
    """
    fig = ax.get_figure()
    assert fig is not None
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    right = ax.get_window_extent(renderer).x1
    gap = 6 * look.scale * fig.dpi / 72
    for row in sorted({label.row for label in labels}):
        kept: list[tuple[_RunLabel, float]] = []  # with its right end, pixels
        for label in (lab for lab in labels if lab.row == row):
            current = label
            while True:
                anchor = float(ax.transData.transform((current.text.xy[0], 0.0))[0])
                width = current.text.get_window_extent(renderer).width
                left = min(anchor, right - width)
                current.text.xyann = ((left - anchor) * 72 / fig.dpi, current.text.xyann[1])
                if not kept or left >= kept[-1][1] + gap:
                    kept.append((current, left + width))
                    break
                previous, _ = kept.pop()
                for reason, count in current.counts.items():
                    previous.counts[reason] = previous.counts.get(reason, 0) + count
                previous.text.set_text(
                    ", ".join(
                        reason + (f" (×{count})" if count > 1 else "")
                        for reason, count in previous.counts.items()
                    )
                )
                current.text.remove()
                current = previous


def _short_clock(t: float) -> str:
    """Simulated time as ``h:mm`` (``1 d 3:05`` after a day): short enough to go under a try."""
    minutes = round(t / 60)
    days, minutes = divmod(minutes, 1440)
    text = f"{minutes // 60}:{minutes % 60:02d}"
    return f"{days} d {text}" if days else text


def _time_labels(
    ax: Axes, row: int, journey: Journey, x_of: Any, look: Look, pt_of: Any, dense: set[int]
) -> None:
    """Write under each try when it was (``0:40``), those far enough apart to be read."""
    tries = [a.t for a in journey.attempts if id(a) not in dense]
    room = max((len(_short_clock(t)) for t in tries), default=0) * look.small * 0.65
    room += 4 * look.scale
    moments: list[float] = []
    for t in tries:  # a try just after another one (a second MX, say) goes unlabelled
        if not moments or pt_of(x_of(t)) - pt_of(x_of(moments[-1])) >= room:
            moments.append(t)
    if len(moments) < 2:
        return
    for t in moments:
        text = _short_clock(t)
        label = ax.annotate(
            text,
            (x_of(t), row),
            xytext=(0, -9 * look.scale),
            textcoords="offset points",
            ha="center",
            va="top",
            fontsize=look.small,
            color="#555555",
            zorder=9,
        )
        label.set_gid("timeline-time")


def _marker_width(name: str, look: Look) -> float:
    """The width in points of the ``name`` marker in ``look`` (scatter sizes are areas)."""
    return math.sqrt(_MARKERS[name]["s"]) * look.scale


def _runs(attempts: list[Attempt]) -> list[list[Attempt]]:
    """The failed attempts in runs of one reason each, in time order."""
    runs: list[list[Attempt]] = []
    previous: Attempt | None = None
    for attempt in attempts:
        if attempt.outcome not in ("temporary", "permanent"):
            previous = None
            continue
        if previous is not None and attempt.reason == previous.reason:
            runs[-1].append(attempt)
        else:
            runs.append([attempt])
        previous = attempt
    return runs


def rhythm(times: Sequence[float]) -> str:
    """How often tries came, as people say it: ``every ~35 min`` (the median gap, rounded)."""
    gaps = sorted(b - a for a, b in itertools.pairwise(times))
    gap = gaps[len(gaps) // 2]
    if gap >= 60:
        gap = round(gap / 60) * 60.0
    return f"every ~{human_duration(gap)}"


def _draw_row(
    ax: Axes,
    row: int,
    journey: Journey,
    x_of: Any,
    x_hi: float,
    points: dict[str, list[tuple[float, float]]],
    look: Look,
    pt_of: Any,
    run_labels: list[_RunLabel],
    timed: bool = False,
) -> None:
    """Draw one journey's bar, markers (into ``points``) and labels on row ``row``.

    ``pt_of`` turns an x value into points across the figure, to see what markers would melt
    together: a run of failed tries closer than :data:`DENSE_GAP` marker widths is drawn as thin
    ticks and labelled with its count and rhythm; the failed try the final cross (bounced,
    rejected, lost) reports, an expiry, and the accepted try under the delivery's star, when
    covered, are drawn under it but not named in the legend (the expiry is said in the cross's
    label instead).
    """

    def add(name: str, t: float | None) -> None:
        if t is not None:
            points.setdefault(name, []).append((x_of(t), row))

    start = journey.start
    end = journey.end
    colour = STATUS_COLOURS.get(journey.status, "#7f7f7f")
    x_end = x_of(end) if end is not None else x_hi
    (bar,) = ax.plot(
        [x_of(start), x_end],
        [row, row],
        color=colour,
        linewidth=look.line(2.2),
        alpha=0.5,
        linestyle="-" if end is not None else (0, (3, 2)),
        zorder=2,
        solid_capstyle="butt",
    )
    bar.set_gid("timeline-row")
    if journey.delivered is not None and journey.fetched is not None:
        ax.plot(
            [x_of(journey.delivered), x_of(journey.fetched)],
            [row, row],
            color=STATUS_COLOURS["delivered"],
            linewidth=look.line(1.2),
            linestyle=":",
            zorder=2,
        )
    add("submitted", journey.submitted)
    for t, _ in journey.queued:
        add("queued", t)
    ends = {"bounced": journey.bounced, "rejected": journey.rejected, "lost": journey.lost}
    final = next(((name, t) for name, t in ends.items() if t is not None), None)

    def covered(t: float, by: tuple[str, float] | None = final) -> bool:
        if by is None:
            return False
        reach = (_marker_width(by[0], look) + _marker_width("temporary", look)) / 2
        return bool(abs(pt_of(x_of(t)) - pt_of(x_of(by[1]))) < 0.8 * reach)

    star = ("delivered", journey.delivered) if journey.delivered is not None else None

    dense: set[int] = set()
    for run in _runs(journey.attempts):
        first = run[0]
        # The label has room for more of the reply than the reason that groups the run.
        longer = short_reason(first.reply, limit=REASON_LABEL_CHARS) if first.reply else ""
        label = (
            longer if first.reply and first.reason == short_reason(first.reply) else first.reason
        )
        gaps = sorted(pt_of(x_of(b.t)) - pt_of(x_of(a.t)) for a, b in itertools.pairwise(run))
        if len(run) >= 3 and gaps[len(gaps) // 2] < DENSE_GAP * _marker_width("temporary", look):
            dense.update(id(attempt) for attempt in run)
            label += f": {len(run)} tries, {rhythm([a.t for a in run])}"
        elif len(run) > 1:
            label += f" (×{len(run)})"
        text = ax.annotate(
            label,
            (x_of(first.t), row),
            xytext=(0, 6 * look.scale),
            textcoords="offset points",
            ha="left",
            va="bottom",
            fontsize=look.small,
            color=OUTCOME_COLOURS[first.outcome],
            zorder=9,
        )
        text.set_gid("timeline-label")
        run_labels.append(_RunLabel(row, text, {first.reason: len(run)}))
    for attempt in journey.attempts:
        if attempt.outcome == "permanent" and covered(attempt.t):
            # The try the cross reports, hidden under it: drawn, but not named in the legend.
            add("permanent-covered", attempt.t)
        elif attempt.outcome == "accepted" and covered(attempt.t, star):
            add("accepted-covered", attempt.t)  # the try that delivered, under the star
        else:
            add(attempt.outcome + ("-tick" if id(attempt) in dense else ""), attempt.t)
    if timed:
        _time_labels(ax, row, journey, x_of, look, pt_of, dense)
    add("delivered", journey.delivered)
    add("fetched", journey.fetched)
    if journey.expired is not None and final is not None and covered(journey.expired):
        name, t = final
        since = journey.submitted if journey.submitted is not None else journey.start
        text = ax.annotate(
            f"gave up after {human_duration(journey.expired - since)}: {name}",
            (x_of(t), row),
            xytext=(-_marker_width(name, look) / 2, 6 * look.scale),
            textcoords="offset points",
            ha="right",
            va="bottom",
            fontsize=look.small,
            color=STATUS_COLOURS[name],
            fontweight="bold",
            zorder=9,
        )
        text.set_gid("timeline-label")
        add("expired-covered", journey.expired)
    else:
        add("expired", journey.expired)
    if final is not None:
        add(*final)
    for t in journey.warned:
        add("warned", t)
    for t in journey.duplicates:
        add("duplicate", t)


def _legend(ax: Axes, names: OutageNames, own_figure: bool, look: Look) -> int:
    """Put the legend under the figure (or right of a given axes); returns its number of rows.

    It names the kinds of outage drawn, and how many of a kind found no room for their names.
    """
    from matplotlib.patches import Patch

    handles, labels = ax.get_legend_handles_labels()
    order = list(_LEGEND_NAMES.values())
    # One entry per meaning: triangles and ticks of the same outcome are named once.
    unique = dict(zip(labels, handles, strict=True))
    pairs = sorted(((h, lab) for lab, h in unique.items()), key=lambda p: order.index(p[1]))
    handles = [h for h, _ in pairs]
    labels = [lab for _, lab in pairs]
    unnamed = names.unnamed
    for kind in sorted(names.kinds):
        handles.append(Patch(color=OUTAGE_COLOURS[kind], alpha=0.25))
        labels.append(f"{kind} down" + (f" ({unnamed[kind]} not named)" if kind in unnamed else ""))
    if not own_figure:
        ax.legend(
            handles,
            labels,
            loc="upper left",
            bbox_to_anchor=(1.01, 1.0),
            fontsize=look.small,
            frameon=False,
            scatterpoints=1,
        )
        return 0
    fig = ax.get_figure()
    assert fig is not None
    fig.legend(
        handles,
        labels,
        loc="lower center",
        bbox_to_anchor=(0.5, 0.0),
        ncol=min(6 if not look.slide else 4, len(handles)),
        fontsize=look.small,
        frameon=False,
        scatterpoints=1,
    )
    return -(-len(handles) // (6 if not look.slide else 4))
