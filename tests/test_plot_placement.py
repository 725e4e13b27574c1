"""LabelPlacer: a label goes to the first candidate spot that covers nothing, measured in pixels."""

from __future__ import annotations

from matplotlib.transforms import Bbox

from mailsim.plot._style import new_figure
from mailsim.plot.placement import LabelPlacer, Spot, segment_hits


def _axes():
    fig = new_figure(4.0, 4.0)
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    ax.set_xlim(0, 10)
    ax.set_ylim(0, 10)
    return ax


def _centre(box: Bbox, ax) -> tuple[float, float]:
    x, y = ax.transData.inverted().transform(((box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2))
    return float(x), float(y)


def test_a_label_skips_a_spot_that_covers_a_blocked_box() -> None:
    ax = _axes()
    placer = LabelPlacer(ax)
    (marker,) = ax.plot([5], [5], marker="o", markersize=30)
    placer.block(marker.get_window_extent(placer.renderer))
    text = ax.text(0, 0, "label")
    box = placer.place(text, [Spot(5, 5), Spot(5, 8)])
    assert text.get_position() == (5, 8)
    assert abs(_centre(box, ax)[1] - 8) < 0.5


def test_a_second_label_does_not_cover_the_first() -> None:
    ax = _axes()
    placer = LabelPlacer(ax)
    placer.place(ax.text(0, 0, "first label"), [Spot(5, 5)])
    second = ax.text(0, 0, "second label")
    placer.place(second, [Spot(5, 5), Spot(5, 5, dy=-30, va="top"), Spot(5, 2)])
    # The offset in points is kept with the spot: the label is 30 pt under (5, 5).
    assert second.get_position() == (5, 5)
    assert second.get_verticalalignment() == "top"
    a, b = (t.get_window_extent(placer.renderer) for t in ax.texts)
    assert not a.overlaps(b)


def test_a_spot_outside_the_axes_counts_as_covered() -> None:
    ax = _axes()
    placer = LabelPlacer(ax)
    text = ax.text(0, 0, "a long label near the edge")
    placer.place(text, [Spot(10, 5, ha="left"), Spot(10, 5, ha="right")])
    assert text.get_horizontalalignment() == "right"


def test_a_free_spot_without_a_crossing_wins_over_one_a_line_crosses() -> None:
    ax = _axes()
    placer = LabelPlacer(ax)
    placer.block_segment((0, 5), (10, 5))
    text = ax.text(0, 0, "label")
    placer.place(text, [Spot(5, 5), Spot(5, 7)])
    assert text.get_position() == (5, 7)
    # A label may sit on its own line.
    own = ax.text(0, 0, "on its line")
    placer.place(own, [Spot(2, 5), Spot(2, 9)], own_segment=0)
    assert own.get_position() == (2, 5)


def test_when_no_spot_is_free_the_least_covering_one_is_kept() -> None:
    ax = _axes()
    placer = LabelPlacer(ax)
    placer.block(Bbox.from_extents(0, 0, 400, 400))  # the whole axes
    text = ax.text(0, 0, "label")
    placer.place(text, [Spot(5, 5), Spot(5, 9.9, va="bottom")])
    # The second spot sticks out of the axes as well: both cover, the first covers less.
    assert text.get_position() == (5, 5)


def test_segment_hits() -> None:
    box = Bbox.from_extents(0, 0, 10, 10)
    assert segment_hits(box, (-5, 5), (15, 5))  # straight through
    assert segment_hits(box, (5, 5), (50, 50))  # starts inside
    assert not segment_hits(box, (-5, 15), (15, 15))  # passes above
    assert not segment_hits(box, (11, -5), (30, 20))  # passes beside
