"""The labels of a state diagram's arrows: what each says and where it goes.

:mod:`mailsim.plot.states` lays out the states and draws the arrows; :func:`place_labels` then
writes each arrow's triggers on it with a :class:`~mailsim.plot.placement.LabelPlacer`. Every
candidate place touches the label's own arrow, nearest its middle first, and the first whose
rendered box covers no state, box or label and crosses no other arrow wins; a label that finds
none is tried wrapped otherwise, then a little beside its arrow. A self-loop is drawn over its
state unless its label spoils less under it (a dead end in the bottom row, a state whose top
other arcs pass over). Geometry is in ems of the label type, as in the layout.
"""

from __future__ import annotations

import itertools
import math
import textwrap
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mailsim.plot.placement import Spot

#: A label is wrapped to this many characters a line, on a short level arc to the narrower width.
LABEL_WIDTH = 18
NARROW_LABEL_WIDTH = 10
#: The other wraps a crowded label tries, in order: narrow, wide, on one line, the usual again.
LOOSER_WIDTHS = (NARROW_LABEL_WIDTH, 30, 10_000, LABEL_WIDTH)


def triggers_text(triggers: list[str], width: int = LABEL_WIDTH) -> str:
    text = ", ".join(str(t) for t in triggers)
    return "\n".join(textwrap.wrap(text, width=width, break_long_words=False)) or text


def measure(text: str, points: float, *, bold: bool = False, italic: bool = False) -> float:
    """Width of ``text`` (its longest line) set in ``points``-point type, in points."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextPath

    font = FontProperties(
        size=points, weight="bold" if bold else "normal", style="italic" if italic else "normal"
    )
    return max(
        float(TextPath((0, 0), line, size=points, prop=font).get_extents().width)
        for line in (text.splitlines() or [text])
    )


#: arc3's rad of a self-loop: its 2-em chord on the rim bent 1.4 ems outwards (see loop_ends).
LOOP_RAD = -1.4


def loop_ends(
    position: tuple[float, float], height: float, *, side: int
) -> tuple[tuple[float, float], tuple[float, float]]:
    """A self-loop's ends: a chord of 2 ems on the ellipse's top (side 1) or bottom (side -1),
    bent 1.4 ems outwards (arc3's rad of -1.4 bends to the left of the chord's direction)."""
    x, y = position
    rim = y + side * (height / 2 - 0.25)
    return (x - side * 1.0, rim), (x + side * 1.0, rim)


def place_labels(
    fig: Any,
    ax: Any,
    arcs: list[tuple[Any, Any, float, list[str]]],
    positions: dict[Any, tuple[float, float]],
    heights: dict[Any, float],
    widths: dict[Any, float],
    patches: dict[Any, Any],
    arrows: list[Any],
    size: float,
    *,
    any_state: Any,
) -> None:
    """Write each arc's triggers with a :class:`LabelPlacer`: the nearest place along the arc
    (over or under a self-loop, or beside its state) whose rendered box covers no other label,
    state or box and crosses no other arrow; if every near place covers something, anywhere
    around it. ``heights`` has every item that arcs start from; arcs from ``any_state`` (one
    box) share a side, so the longest of their labels goes first."""
    from mailsim.plot.placement import LabelPlacer

    placer = LabelPlacer(ax)
    renderer = placer.renderer
    for item in [*patches.values(), *ax.texts]:
        placer.block(item.get_window_extent(renderer))
    # Every arrow as a chain of short segments in pixels (arcs flattened), to keep labels off.
    chains = [_chain(ax, arrow) for arrow in arrows]
    # Self-loops first (they have the fewest places), then the shortest arcs, and of two arcs
    # from one box the longer label first (it has fewer places that fit it).
    order = sorted(
        range(len(arcs)),
        key=lambda i: (
            arcs[i][0] != arcs[i][1],
            -len(", ".join(arcs[i][3])) if arcs[i][0] is any_state else 0,
            _chord(positions, arcs[i]),
        ),
    )
    for index in order:
        a, b, rad, triggers = arcs[index]
        label = ax.text(
            0,
            0,
            _label_text(a, b, triggers, positions, widths, size),
            fontsize=size,
            color="#1f3d7a",
            linespacing=1.05,
            bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.9},
            zorder=5,
            gid="label",
        )
        label.set_label(f"arc {index}")  # names its arrow (same label), for tests and readers
        arrows[index].set_label(f"arc {index}")
        placer.segments = [seg for j, chain in enumerate(chains) if j != index for seg in chain]
        spots = _candidates(a, b, rad, positions, heights[a])
        if a == b:
            chains[index], box, spots = _place_loop_label(
                placer, label, arrows[index], positions[a], heights[a], spots, triggers
            )
        else:
            box = placer.place(label, spots)
        if not any(_overlap(box, other) for other in placer.taken[:-1]):
            continue
        placer.taken.pop()
        if a == b:
            # _place_loop_label has tried every width on both sides: just beside the loop.
            placer.place(label, _beside(spots))
            continue
        # Every place on the arrow covers something: try the label wrapped otherwise.
        for width in LOOSER_WIDTHS:
            label.set_text(triggers_text(triggers, width))
            box = placer.place(label, spots)
            if not any(_overlap(box, other) for other in placer.taken[:-1]):
                break
            placer.taken.pop()
        else:
            # Nowhere on the arrow is free: just beside it, as near as will do.
            label.set_text(_label_text(a, b, triggers, positions, widths, size))
            placer.place(label, _beside(spots))


def _place_loop_label(
    placer: Any,
    label: Any,
    arrow: Any,
    position: tuple[float, float],
    height: float,
    spots: list[Spot],
    triggers: list[str],
) -> tuple[list[Any], Any, list[Spot]]:
    """Place a self-loop's label over its state, or else under it (a dead end in the bottom
    row, a state whose top other arcs pass over), wrapped as usual, narrower or on one line:
    the first that covers and crosses nothing, or the one that spoils least, the loop's own
    crossings counted too. Returns the loop's drawn chain, the label's box and its places."""
    from dataclasses import replace

    flip = {"top": "bottom", "bottom": "top", "center": "center"}
    y = position[1]
    below = [
        replace(spot, y=2 * y - spot.y, dy=-spot.dy, va=flip[spot.va])  # type: ignore[arg-type]
        for spot in spots
    ]
    tries = [
        (width, side, where)
        for width in (LABEL_WIDTH, *LOOSER_WIDTHS[:-1])
        for side, where in ((1, spots), (-1, below))
    ]
    best = None
    for width, side, where in tries:
        arrow.set_positions(*loop_ends(position, height, side=side))
        label.set_text(triggers_text(triggers, width))
        box = placer.place(label, where)
        placer.withdraw(box)  # only measured here
        covered, crossed = placer.misfit(box)
        drawn = arrow.get_window_extent(placer.renderer)  # the loop: in the axes, over no arrow
        covered += placer.outside(drawn)
        crossed += placer.misfit(drawn)[1]
        if best is None or (covered, crossed) < best[0]:
            best = ((covered, crossed), width, side, where)
        if (covered, crossed) == (0, 0):
            break
    assert best is not None
    _, width, side, where = best
    arrow.set_positions(*loop_ends(position, height, side=side))
    label.set_text(triggers_text(triggers, width))
    return _chain(placer.ax, arrow), placer.place(label, where), where


def _candidates(
    a: Any, b: Any, rad: float, positions: dict[Any, tuple[float, float]], height: float
) -> list[Spot]:
    """Places for a label that all touch its own arrow, best first: on the arrow (a quadratic
    Bezier from A over arc3's control point to B) near its middle, then just beside it, further
    along; over a self-loop's top, or beside it."""
    from mailsim.plot.placement import Spot

    (xa, ya), (xb, yb) = positions[a], positions[b]
    if a == b:
        apex = ya + height / 2 - 0.25 + 1.4  # the loop: a 2-em chord bent 1.4 ems upwards
        return [
            Spot(xa, apex, dy=1.0, va="bottom"),
            Spot(xa + 0.6, apex - 0.6, dx=1.0, ha="left"),
            Spot(xa - 0.6, apex - 0.6, dx=-1.0, ha="right"),
            Spot(xa + 0.35, apex - 0.1, dx=1.0, dy=1.0, ha="left", va="bottom"),
            Spot(xa - 0.35, apex - 0.1, dx=-1.0, dy=1.0, ha="right", va="bottom"),
            Spot(xa + 0.85, apex - 1.1, dx=1.0, dy=-1.0, ha="left", va="top"),
            Spot(xa - 0.85, apex - 1.1, dx=-1.0, dy=-1.0, ha="right", va="top"),
        ]
    cx, cy = (xa + xb) / 2 + rad * (yb - ya), (ya + yb) / 2 - rad * (xb - xa)
    spots = []
    for t in (
        0.5,
        0.46,
        0.54,
        0.42,
        0.58,
        0.38,
        0.62,
        0.34,
        0.66,
        0.3,
        0.7,
        0.27,
        0.73,
        0.2,
        0.8,
        0.14,
        0.86,
    ):
        x = (1 - t) ** 2 * xa + 2 * (1 - t) * t * cx + t**2 * xb
        y = (1 - t) ** 2 * ya + 2 * (1 - t) * t * cy + t**2 * yb
        spots += [
            Spot(x, y),
            Spot(x, y, dy=2.0, va="bottom"),
            Spot(x, y, dy=-2.0, va="top"),
            Spot(x, y, dx=3.0, ha="left"),
            Spot(x, y, dx=-3.0, ha="right"),
        ]
    return spots


def _chain(ax: Any, arrow: Any) -> list[Any]:
    """An arrow as a chain of short segments in pixels (arcs flattened)."""
    path = ax.transData.transform_path(arrow.get_path())
    return [
        (tuple(p), tuple(q))
        for polygon in path.to_polygons(closed_only=False)
        for p, q in itertools.pairwise(polygon)
    ]


def _overlap(one: Any, other: Any) -> bool:
    return bool(
        min(one.x1, other.x1) > max(one.x0, other.x0)
        and min(one.y1, other.y1) > max(one.y0, other.y0)
    )


def _label_text(
    a: Any,
    b: Any,
    triggers: list[str],
    positions: dict[Any, tuple[float, float]],
    widths: dict[Any, float],
    size: float,
) -> str:
    """The triggers wrapped to :data:`LABEL_WIDTH`, or narrower where that does not fit between
    the two states of a level arc."""
    text = triggers_text(triggers)
    (xa, ya), (xb, yb) = positions[a], positions[b]
    if a == b or abs(yb - ya) >= 1.0:
        return text
    room = abs(xb - xa) - (widths[a] + widths[b]) / 2 - 1.0
    if measure(text, size) / size <= room:
        return text
    return triggers_text(triggers, NARROW_LABEL_WIDTH)


def _beside(spots: list[Spot]) -> list[Spot]:
    """The places of ``spots`` moved 6, then 12 points to either side (up, down, left, right)."""
    from dataclasses import replace

    return [
        replace(spot, dx=spot.dx + ox, dy=spot.dy + oy)
        for step in (6.0, 12.0)
        for spot in spots
        for ox, oy in ((0, step), (0, -step), (step, 0), (-step, 0))
    ]


def _chord(positions: dict[Any, tuple[float, float]], arc: tuple[Any, Any, float, Any]) -> float:
    (xa, ya), (xb, yb) = positions[arc[0]], positions[arc[1]]
    return math.hypot(xb - xa, yb - ya)
