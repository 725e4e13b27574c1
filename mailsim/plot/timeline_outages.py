"""The outages on the delivery timeline: shaded bands behind the rows, named above the frame.

Split from :mod:`mailsim.plot.timeline` (which draws the rows): placing the names of many
overlapping outages (busy-day has 11) so each is told apart is a job of its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mailsim.plot._style import OUTAGE_COLOURS, Look
from mailsim.plot.topology import Outage

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from mailsim.plot.timeline import Journey


#: Most lanes of outage names above the timeline. Every outage gets a name on a bracket over its
#: band (busy-day needs 6 lanes for its 21 outages); only beyond this many is one left unnamed,
#: and the legend then says how many of its kind were.
OUTAGE_LANES = 8


def outages_by_relevance(outages: list[Outage], rows: list[Journey], t_end: float) -> list[int]:
    """The index of each outage in ``outages``, those that explain the drawn rows first.

    First the outages during which drawn rows failed the most tries, then those a drawn row was
    waiting through, then the longest; busy-day's core–usa-mail, down from 19.45 h to the end
    and keeping m2354 stuck, comes before a longer one that failed no drawn try.
    """

    def failed(outage: Outage) -> int:
        return sum(a.outcome != "accepted" and outage.covers(a.t) for j in rows for a in j.attempts)

    def waiting(outage: Outage) -> int:
        end = t_end if outage.end is None else outage.end
        return sum(j.start < end and (j.end is None or j.end > outage.start) for j in rows)

    scored = [
        (i, failed(o), waiting(o), (t_end if o.end is None else o.end) - o.start)
        for i, o in enumerate(outages)
    ]
    scored.sort(key=lambda s: (-s[1], -s[2], -s[3], outages[s[0]].start))
    return [i for i, _, _, _ in scored]


def draw_outages(
    ax: Axes,
    outages: list[Outage],
    rows: list[Journey],
    x_of: Any,
    x_lo: float,
    x_hi: float,
    look: Look,
) -> tuple[float, dict[str, int]]:
    """Shade each outage behind the rows and name it above the frame, on a bracket over its band.

    Each name sits on a thin bracket of its colour spanning exactly its band (ticks down at both
    ends), so overlapping outages of one colour are told apart by their extent. Names are placed
    most relevant first (:func:`outages_by_relevance`), each on the lowest lane where it and
    its bracket run into no other one (a name that would run off the right edge moves left, its
    bracket stays). The text has gid ``outage-name:I``, the bracket ``outage-bracket:I``, where I
    is the outage's index in ``outages``.

    Returns:
        The points the lanes take above the frame, and the number of unnamed outages by kind.
    """
    from matplotlib.transforms import ScaledTranslation

    fig = ax.get_figure()
    assert fig is not None
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    frame = ax.get_window_extent(renderer)
    gap = 6 * look.scale * fig.dpi / 72
    lane = look.small * 1.35 + 3 * look.scale  # points from one lane's bracket to the next
    base = 4 * look.scale  # points from the frame to the lowest bracket
    lanes: list[list[tuple[float, float]]] = []  # the pixel extents taken on each lane
    spans: dict[int, tuple[float, float]] = {}
    for i, outage in enumerate(outages):
        start = max(x_of(outage.start), x_lo)
        end = x_hi if outage.end is None else min(x_of(outage.end), x_hi)
        if end <= start:
            continue
        spans[i] = (start, end)
        span = ax.axvspan(
            start, end, color=OUTAGE_COLOURS[outage.kind], alpha=0.14, linewidth=0, zorder=0
        )
        span.set_gid("outage")
    unnamed: dict[str, int] = {}
    t_last = max((o.end or o.start for o in outages), default=0.0)
    t_last = max([t_last, *(j.end or j.start for j in rows)])
    for i in outages_by_relevance(outages, rows, t_last):
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
            unnamed[outage.kind] = unnamed.get(outage.kind, 0) + 1
            continue
        lanes[level].append(reach)
        rise = base + level * lane
        text.xyann = ((left - box.x0) * 72 / fig.dpi, rise + 3 * look.scale)
        text.set_gid(f"outage-name:{i}")
        (bracket,) = ax.plot(
            [start, end],
            [1.0, 1.0],
            transform=ax.get_xaxis_transform()
            + ScaledTranslation(0, rise / 72, fig.dpi_scale_trans),
            color=colour,
            linewidth=look.line(1.2),
            marker=3,  # TICKDOWN: the bracket's ends point at the band
            markersize=4 * look.scale,
            markeredgewidth=look.line(1.2),
            clip_on=False,
            solid_capstyle="butt",
        )
        bracket.set_gid(f"outage-bracket:{i}")
    room = base + len(lanes) * lane if lanes else 0.0
    return room, unnamed
