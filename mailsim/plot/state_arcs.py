"""How the arrows of a state diagram bend: arc3's ``rad`` for each edge.

:mod:`mailsim.plot.states` places the states; the functions here say how each arrow between two
of them bows, so that back edges, pairs of opposite edges and edges that skip a column do not run
over one another. Geometry is in ems of the label type, as in the layout.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

from mailsim.plot.state_labels import LOOP_RAD, loop_ends

#: An arc as the layout keeps it: (from, to, arc3's rad, triggers).
Arc = tuple[Any, Any, float, list[str]]

#: arc3's rad of an edge whose opposite is a back edge: a gentle bow (the back edge bends deeper).
PAIR_RAD = 0.15
#: Clearance (ems) of the middles of two opposite arcs, where their labels go, from every other
#: arrow and state. A one-line label (1.2 ems high) on an arc reaches 0.6 ems from it: under
#: CROWDED it covers the other arrow, ROOMY leaves it clear.
CROWDED = 0.5
ROOMY = 1.0
#: The stretch of an arc that counts as its middle (Bezier parameter t), and how many pieces an
#: arc or a state's rim is measured in.
MIDDLE = (0.25, 0.75)
PIECES = 24


def back_depth(span: float) -> float:
    """How far a back edge spanning ``span`` ems bends from its chord: longer ones deeper, so
    nested arcs stay apart, but slowly, so a long one does not reach far down the page."""
    return min(0.175 * span, 2.5 + 0.08 * span)


def bend(
    a: Any,
    b: Any,
    positions: dict[Any, tuple[float, float]],
    back: set[tuple[Any, Any]],
    pairs: set[tuple[Any, Any]],
    layer: dict[Any, int],
    slot: dict[Any, int],
) -> float:
    """arc3's ``rad`` for the edge a -> b.

    arc3 puts its control point at (mid.x + rad * dy, mid.y - rad * dx): with rad of the sign of
    dx the arc bends below the chord, with the opposite sign above. Back edges bend below the
    spine (above it between states above it); the other edge of such a pair bends a little, to
    the same side on the spine (:func:`bow_to_room` may mirror both), to the other side above it;
    an edge that skips a column on one row arcs over the states between.
    """
    (xa, ya), (xb, yb) = positions[a], positions[b]
    direction = 1.0 if xb >= xa else -1.0
    if (a, b) in back:
        above = (slot.get(a, 0) + slot.get(b, 0)) / 2 >= 0.5
        rad = 2 * back_depth(abs(xb - xa)) / max(abs(xb - xa), 1.0)
        return rad * direction * (-1.0 if above else 1.0)
    if (b, a) in pairs:
        return PAIR_RAD
    if math.isclose(ya, yb) and abs(layer[b] - layer[a]) > 1:
        return -min(0.3, 6.0 / math.hypot(xb - xa, yb - ya)) * direction
    return 0.0


def bow_to_room(
    arcs: list[Arc],
    positions: dict[Any, tuple[float, float]],
    widths: dict[Any, float],
    heights: dict[Any, float],
) -> None:
    """Mirror two opposite arcs that bow to one side of their chord over to the other side, when
    other arrows or states crowd their middles (where their labels go) and the other side has
    room. ``arcs`` is changed in place; ``widths`` and ``heights`` have every item placed.

    A back edge and its partner between neighbours on the spine both bend below it, which reads
    well unless arrows into the bottom row leave from under them: POP3's DELE -> QUIT ran just
    under DELE -> RETR and RETR -> DELE, and left their labels no place of their own.
    """
    at = {(a, b): i for i, (a, b, _, _) in enumerate(arcs) if a != b}
    for (a, b), i in at.items():
        j = at.get((b, a))
        # Opposite arcs (chords of opposite directions) bow to one side when their rads differ
        # in sign; each pair once.
        if j is None or i > j or arcs[i][2] * arcs[j][2] >= 0:
            continue
        obstacles = [
            _drawn(arc, positions, widths, heights) for k, arc in enumerate(arcs) if k not in (i, j)
        ]
        obstacles += [
            _rim(positions[item], widths[item], heights[item])
            for item in positions
            if item not in (a, b)
        ]
        pair = [arcs[i], arcs[j]]
        mirrored = [(source, target, -rad, triggers) for source, target, rad, triggers in pair]
        if (
            _clearance(pair, positions, heights, obstacles) < CROWDED
            and _clearance(mirrored, positions, heights, obstacles) >= ROOMY
        ):
            arcs[i], arcs[j] = mirrored


def _clearance(
    pair: list[Arc],
    positions: dict[Any, tuple[float, float]],
    heights: dict[Any, float],
    obstacles: list[list[tuple[float, float]]],
) -> float:
    """Ems from the middles of the arcs to the nearest obstacle (a chain of points)."""
    return min(
        _to_chain(point, chain)
        for arc in pair
        for point in _arc_points(arc, positions, heights, MIDDLE)
        for chain in obstacles
    )


def _arc_points(
    arc: Arc,
    positions: dict[Any, tuple[float, float]],
    heights: dict[Any, float],
    stretch: tuple[float, float],
) -> list[tuple[float, float]]:
    """Points along a stretch of an arc: arc3's quadratic Bezier from one centre to the other (a
    self-loop's over its state's top, where it is drawn first)."""
    a, b, rad, _ = arc
    if a == b:
        (xa, ya), (xb, yb) = loop_ends(positions[a], heights[a], side=1)
        rad = LOOP_RAD
    else:
        (xa, ya), (xb, yb) = positions[a], positions[b]
    cx, cy = (xa + xb) / 2 + rad * (yb - ya), (ya + yb) / 2 - rad * (xb - xa)
    lo, hi = stretch
    points = []
    for k in range(PIECES + 1):
        t = lo + (hi - lo) * k / PIECES
        x = (1 - t) ** 2 * xa + 2 * (1 - t) * t * cx + t**2 * xb
        y = (1 - t) ** 2 * ya + 2 * (1 - t) * t * cy + t**2 * yb
        points.append((x, y))
    return points


def _drawn(
    arc: Arc,
    positions: dict[Any, tuple[float, float]],
    widths: dict[Any, float],
    heights: dict[Any, float],
) -> list[tuple[float, float]]:
    """An arc's points outside the two states it joins: the part that is drawn."""

    def inside(point: tuple[float, float], item: Any) -> bool:
        (x, y), (cx, cy) = point, positions[item]
        return ((x - cx) / (widths[item] / 2)) ** 2 + ((y - cy) / (heights[item] / 2)) ** 2 < 1

    points = _arc_points(arc, positions, heights, (0.0, 1.0))
    if arc[0] == arc[1]:
        return points
    return [p for p in points if not inside(p, arc[0]) and not inside(p, arc[1])]


def _rim(centre: tuple[float, float], width: float, height: float) -> list[tuple[float, float]]:
    """A state's ellipse (a box's, near enough) as a closed chain of points."""
    x, y = centre
    return [
        (
            x + width / 2 * math.cos(2 * math.pi * k / PIECES),
            y + height / 2 * math.sin(2 * math.pi * k / PIECES),
        )
        for k in range(PIECES + 1)
    ]


def _to_chain(point: tuple[float, float], chain: list[tuple[float, float]]) -> float:
    """Distance from a point to a chain of segments (infinite for an empty chain)."""
    px, py = point
    best = math.inf
    for (x0, y0), (x1, y1) in itertools.pairwise(chain):
        dx, dy = x1 - x0, y1 - y0
        t = min(1.0, max(0.0, ((px - x0) * dx + (py - y0) * dy) / (dx * dx + dy * dy or 1.0)))
        best = min(best, math.hypot(px - x0 - t * dx, py - y0 - t * dy))
    return best
