"""The outages on the delivery timeline: shaded bands behind the rows, named above the frame.

Split from :mod:`mailsim.plot.timeline` (which draws the rows): placing the names of many
overlapping outages (busy-day has 11) so each is told apart is a job of its own.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mailsim.plot._style import OUTAGE_COLOURS, Look
from mailsim.plot.topology import Outage

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from mailsim.plot.timeline import Journey


#: Most lanes of outage names above the timeline. Every outage gets a name on a bracket over its
#: band (busy-day's 11 take 7 lanes at slide size); only beyond this many is one left unnamed,
#: and the legend then says how many of its kind were.
OUTAGE_LANES = 8

#: Points from one lane's bracket to the next: a line of the small type (1.35 em with its
#: descenders) and 3 pt between, times the look's scale.
LANE_EMS = 1.35
LANE_GAP = 3.0
#: Points from the top of the frame to the lowest bracket, and from a bracket up to its name.
BASE_RISE = 4.0
NAME_RISE = 3.0
#: Points between two names or brackets on one lane.
NAME_GAP = 6.0


def failed_tries(outage: Outage, rows: Iterable[Journey]) -> int:
    """The tries of ``rows`` that failed while ``outage`` was in force."""
    return sum(
        a.outcome in ("temporary", "permanent") and outage.covers(a.t)
        for j in rows
        for a in j.attempts
    )


def outages_by_relevance(outages: list[Outage], rows: list[Journey], t_end: float) -> list[int]:
    """The index of each outage in ``outages``, those that explain the drawn rows first.

    First the outages during which drawn rows failed the most tries, then those a drawn row was
    waiting through, then the longest (one still down when the trace ends, at ``t_end``, lasts
    until then); busy-day's core–usa-mail, down from 19.45 h to the end and keeping m2354
    stuck, comes before a longer one that failed no drawn try.
    """

    def waiting(outage: Outage) -> int:
        return sum(outage.overlaps(j.start, math.inf if j.end is None else j.end) for j in rows)

    scored = [
        (i, failed_tries(o, rows), waiting(o), o.until(t_end) - o.start)
        for i, o in enumerate(outages)
    ]
    scored.sort(key=lambda s: (-s[1], -s[2], -s[3], outages[s[0]].start))
    return [i for i, _, _, _ in scored]


@dataclass
class OutageNames:
    """What :func:`draw_outages` drew: for the title's room and the legend."""

    #: Points the lanes of names take above the frame.
    room: float = 0.0
    #: Outages drawn but left unnamed (no lane free), by kind.
    unnamed: dict[str, int] = field(default_factory=dict)
    #: The kinds of the outages drawn (one wholly outside the axis is not).
    kinds: set[str] = field(default_factory=set)


def draw_outages(
    ax: Axes,
    outages: list[Outage],
    rows: list[Journey],
    x_of: Any,
    x_lo: float,
    x_hi: float,
    t_end: float,
    look: Look,
) -> OutageNames:
    """Shade each outage behind the rows and name it above the frame, on a bracket over its band.

    Each name sits on a thin bracket of its colour spanning exactly its band, so overlapping
    outages of one colour are told apart by their extent. The bracket ticks down where the
    outage begins and ends; where it runs on past the axis (down before it, or still down when
    the trace ends at ``t_end``) the bracket ends without a tick. Names are placed
    most relevant first (:func:`outages_by_relevance`), each on the lowest lane where it and
    its bracket run into no other one (a name that would run off the right edge moves left, its
    bracket stays). The text has gid ``outage-name:I``, the bracket ``outage-bracket:I``, where I
    is the outage's index in ``outages``.

    Returns:
        The lanes' room, the unnamed outages and the kinds drawn (:class:`OutageNames`).
    """
    from matplotlib.transforms import ScaledTranslation

    fig = ax.get_figure()
    assert fig is not None
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    frame = ax.get_window_extent(renderer)
    gap = NAME_GAP * look.scale * fig.dpi / 72
    lane = look.small * LANE_EMS + LANE_GAP * look.scale
    base = BASE_RISE * look.scale
    lanes: list[list[tuple[float, float]]] = []  # the pixel extents taken on each lane
    spans: dict[int, tuple[float, float]] = {}
    ticks: dict[int, list[int]] = {}  # the bracket's ends that are the outage's own
    drawn = OutageNames()
    for i, outage in enumerate(outages):
        start = max(x_of(outage.start), x_lo)
        end = x_hi if outage.end is None else min(x_of(outage.end), x_hi)
        if end <= start:
            continue
        spans[i] = (start, end)
        ticks[i] = [k for k, own in enumerate((start > x_lo, end < x_hi)) if own]
        drawn.kinds.add(outage.kind)
        span = ax.axvspan(
            start, end, color=OUTAGE_COLOURS[outage.kind], alpha=0.14, linewidth=0, zorder=0
        )
        span.set_gid("outage")
        span.set_label(f"_outage:{i}")  # which outage; "_" keeps it out of the legend
    for i in outages_by_relevance(outages, rows, t_end):
        if i not in spans:
            continue
        outage = outages[i]
        start, end = spans[i]
        colour = OUTAGE_COLOURS[outage.kind]
        text = ax.annotate(
            f"{outage.label} down",
            (start, 1.0),
            xycoords=ax.get_xaxis_transform(),
            xytext=(0, 0),
            textcoords="offset points",
            ha="left",
            va="bottom",
            fontsize=look.small,
            color=colour,
            fontweight="bold",
            annotation_clip=False,
        )
        box = text.get_window_extent(renderer)
        x0 = float(ax.transData.transform((start, 0.0))[0])
        x1 = float(ax.transData.transform((end, 0.0))[0])
        left = max(min(x0, frame.x1 - box.width), frame.x0)
        reach = (min(x0, left), max(x1, left + box.width))
        level = next(
            (
                k
                for k, taken in enumerate(lanes)
                if all(reach[0] >= b + gap or reach[1] + gap <= a for a, b in taken)
            ),
            None,
        )
        if level is None and len(lanes) < OUTAGE_LANES:
            lanes.append([])
            level = len(lanes) - 1
        if level is None:
            text.remove()
            drawn.unnamed[outage.kind] = drawn.unnamed.get(outage.kind, 0) + 1
            continue
        lanes[level].append(reach)
        rise = base + level * lane
        text.xyann = ((left - box.x0) * 72 / fig.dpi, rise + NAME_RISE * look.scale)
        text.set_gid(f"outage-name:{i}")
        (bracket,) = ax.plot(
            [start, end],
            [1.0, 1.0],
            transform=ax.get_xaxis_transform()
            + ScaledTranslation(0, rise / 72, fig.dpi_scale_trans),
            color=colour,
            linewidth=look.line(1.2),
            marker=3,  # TICKDOWN: the bracket's ends point at the band
            markevery=ticks[i],
            markersize=BASE_RISE * look.scale,  # the lowest bracket's ticks reach the frame
            markeredgewidth=look.line(1.2),
            clip_on=False,
            solid_capstyle="butt",
        )
        bracket.set_gid(f"outage-bracket:{i}")
    drawn.room = base + len(lanes) * lane if lanes else 0.0
    return drawn
