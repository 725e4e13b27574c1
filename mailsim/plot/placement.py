"""Placing text labels where they cover no other label and no marker, by their rendered boxes.

A label's size depends on its font, the figure's dpi and the renderer, so positions chosen in data
units collide as soon as the type grows (the slide look) or the markers crowd. A
:class:`LabelPlacer` instead tries each candidate position of a label in turn, measures the box
the renderer would draw (``Text.get_window_extent``), and keeps the first candidate that covers
nothing already placed and stays inside the axes; when none is free it keeps the one that covers
least. Crossing a line is allowed but avoided when a candidate without a crossing is free. Any
figure can use it: the topology places its node and link labels with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.text import Text
    from matplotlib.transforms import Bbox

HAlign = Literal["left", "center", "right"]
VAlign = Literal["bottom", "center", "top"]

#: Pixels kept clear around every placed box (a label's white background pads its text).
MARGIN_PX = 3.0


@dataclass(frozen=True)
class Spot:
    """A candidate position: data point (x, y), an offset in points, and the text's anchor."""

    x: float
    y: float
    dx: float = 0.0
    dy: float = 0.0
    ha: HAlign = "center"
    va: VAlign = "center"


class LabelPlacer:
    """Puts labels of one axes where they fit; remembers what it placed and the obstacles.

    Make it after the axes' limits (and aspect) are final: positions are measured in pixels.
    """

    def __init__(self, ax: Axes) -> None:
        ax.apply_aspect()
        self.ax = ax
        self.renderer = ax.figure.canvas.get_renderer()  # type: ignore[attr-defined]
        self.bounds = ax.get_window_extent(self.renderer)
        self.taken: list[Bbox] = []
        self.segments: list[tuple[tuple[float, float], tuple[float, float]]] = []

    def block(self, box: Bbox) -> None:
        """Keep labels off ``box`` (pixels), e.g. a marker's ``get_window_extent``."""
        self.taken.append(box)

    def block_segment(self, a: tuple[float, float], b: tuple[float, float]) -> None:
        """A line (data coordinates) that labels should rather not cross."""
        transform = self.ax.transData
        pa = tuple(transform.transform(a))
        pb = tuple(transform.transform(b))
        self.segments.append(((pa[0], pa[1]), (pb[0], pb[1])))

    def place(self, text: Text, spots: Sequence[Spot], *, own_segment: int | None = None) -> Bbox:
        """Move ``text`` to the best of ``spots`` and keep its box clear for later labels.

        ``own_segment`` is the index (in :meth:`block_segment` order) of the line the label
        belongs to, which it may cover. Returns the box it now takes, in pixels.
        """
        from matplotlib.transforms import ScaledTranslation

        fig = self.ax.figure
        best: tuple[tuple[float, int, int], Spot, Bbox] | None = None
        for index, spot in enumerate(spots):
            self._move(text, spot, ScaledTranslation, fig)
            box = text.get_window_extent(self.renderer).padded(MARGIN_PX)
            covered, crossings = self.misfit(box, own_segment=own_segment)
            cost = (covered, crossings, index)
            if best is None or cost < best[0]:
                best = (cost, spot, box)
            if covered == 0 and crossings == 0:
                break
        if best is None:
            return text.get_window_extent(self.renderer)
        _, spot, box = best
        self._move(text, spot, ScaledTranslation, fig)
        self.taken.append(box)
        return box

    def withdraw(self, box: Bbox) -> None:
        """Free the space of a box :meth:`place` returned (to try the label another way)."""
        self.taken.remove(box)

    def misfit(self, box: Bbox, *, own_segment: int | None = None) -> tuple[float, int]:
        """What ``box`` (pixels) spoils: the area it covers of the placed boxes and outside the
        axes, and how many lines cross it; ``(0, 0)`` when it is free."""
        covered = sum(_area(box, other) for other in self.taken)
        crossings = sum(
            1
            for i, (a, b) in enumerate(self.segments)
            if i != own_segment and segment_hits(box, a, b)
        )
        return covered + self.outside(box), crossings

    def _move(self, text: Text, spot: Spot, translation: type, fig: object) -> None:
        offset = translation(spot.dx / 72, spot.dy / 72, fig.dpi_scale_trans)  # type: ignore[attr-defined]
        text.set_transform(self.ax.transData + offset)
        text.set_position((spot.x, spot.y))
        text.set_horizontalalignment(spot.ha)
        text.set_verticalalignment(spot.va)

    def outside(self, box: Bbox) -> float:
        """The area of ``box`` that lies outside the axes, weighted so it counts as a collision."""
        inner = _area(box, self.bounds)
        return (box.width * box.height - inner) * 4


def _area(a: Bbox, b: Bbox) -> float:
    width = min(a.x1, b.x1) - max(a.x0, b.x0)
    height = min(a.y1, b.y1) - max(a.y0, b.y0)
    return width * height if width > 0 and height > 0 else 0.0


def segment_hits(box: Bbox, a: tuple[float, float], b: tuple[float, float]) -> bool:
    """True when the segment a-b passes through ``box`` (Liang-Barsky clipping)."""
    (x0, y0), (x1, y1) = a, b
    dx, dy = x1 - x0, y1 - y0
    lo, hi = 0.0, 1.0
    for p, q in (
        (-dx, x0 - box.x0),
        (dx, box.x1 - x0),
        (-dy, y0 - box.y0),
        (dy, box.y1 - y0),
    ):
        if p == 0:
            if q < 0:
                return False
            continue
        r = q / p
        if p < 0:
            lo = max(lo, r)
        else:
            hi = min(hi, r)
        if lo > hi:
            return False
    return True
