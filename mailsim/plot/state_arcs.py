"""How the arrows of a state diagram bend: arc3's ``rad`` for each edge.

:mod:`mailsim.plot.states` places the states; the functions here say how each arrow between two
of them bows, so that back edges, pairs of opposite edges and edges that skip a column do not run
over one another. Geometry is in ems of the label type, as in the layout.
"""

from __future__ import annotations

import math
from typing import Any


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
    spine (above it between states above it); a pair of opposite edges bends both a little, to
    either side; an edge that skips a column on one row arcs over the states between.
    """
    (xa, ya), (xb, yb) = positions[a], positions[b]
    direction = 1.0 if xb >= xa else -1.0
    if (a, b) in back:
        above = (slot.get(a, 0) + slot.get(b, 0)) / 2 >= 0.5
        rad = 2 * back_depth(abs(xb - xa)) / max(abs(xb - xa), 1.0)
        return rad * direction * (-1.0 if above else 1.0)
    if (b, a) in pairs:
        return 0.15
    if math.isclose(ya, yb) and abs(layer[b] - layer[a]) > 1:
        return -min(0.3, 6.0 / math.hypot(xb - xa, yb - ya)) * direction
    return 0.0
