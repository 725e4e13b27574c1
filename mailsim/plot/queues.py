"""Queues and delivery performance: queue length per server, latency CDFs, attempts per message.

The queue length of a server at a time is the number of (message, recipient) pairs it holds: a
``mail.queue`` record adds its recipients at its node (moving a pair that another server held,
since that server has handed it on), and ``mail.deliver``, ``mail.bounce``, ``mail.expire``,
``mail.reject`` and ``mail.lost`` remove the pair from wherever it is queued (a delivery is
recorded at the receiving server, yet it empties the sender's queue entry). The ``queued`` field
of ``mail.queue`` is not needed for this.

Latency is measured from ``mail.submit`` to ``mail.deliver`` per (message, recipient), for user mail
only (bounce notices are left out); pairs never delivered keep the CDF below 1, so the height where
a curve ends is the fraction delivered.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mailsim.plot._style import (
    OUTAGE_COLOURS,
    SLIDE_INCHES,
    STATUS_COLOURS,
    Look,
    empty_note,
    human_duration,
    look_for,
    new_figure,
    set_log_time_axis,
    time_unit,
)
from mailsim.plot.timeline import journeys
from mailsim.plot.topology import Outage, read_topology

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.legend import Legend

Record = dict[str, Any]

_DEQUEUE = ("mail.deliver", "mail.bounce", "mail.expire", "mail.reject", "mail.lost")


def queue_lengths(records: Sequence[Record]) -> dict[str, list[tuple[float, int]]]:
    """Per server, the queue length after each change: ``{node: [(t, length), ...]}``.

    Each list starts with ``(t, 0)`` just before the first change, so it can be drawn as steps.
    """
    where: dict[tuple[str, str], str] = {}
    length: dict[str, int] = {}
    series: dict[str, list[tuple[float, int]]] = {}

    def change(node: str, t: float, delta: int) -> None:
        if node not in series:
            series[node] = [(t, 0)]
        length[node] = length.get(node, 0) + delta
        series[node].append((t, length[node]))

    for rec in records:
        kind = rec["type"]
        if kind == "mail.queue":
            for rcpt in rec["rcpts"]:
                key = (rec["msg"], rcpt)
                holder = where.get(key)
                if holder == rec["node"]:
                    continue
                if holder is not None:
                    change(holder, rec["t"], -1)
                where[key] = rec["node"]
                change(rec["node"], rec["t"], +1)
        elif kind in _DEQUEUE:
            holder = where.pop((rec["msg"], rec["rcpt"]), None)
            if holder is not None:
                change(holder, rec["t"], -1)
    return series


#: How servers' queue lines differ besides colour, so overlapping lines stay apart in print and
#: for colour-blind readers: (line style, marker), used in turn.
QUEUE_STYLES: tuple[tuple[Any, str], ...] = (
    ("-", "o"),
    ((0, (6, 2)), "s"),
    ((0, (1, 1.5)), "^"),
    ((0, (6, 2, 1, 2)), "D"),
    ((0, (3, 1, 1, 1, 1, 1)), "v"),
    ((0, (10, 3)), "P"),
)
#: Markers are drawn at each change only when a line has at most this many changes.
MARKED_CHANGES = 60


def queue_figure(records: Sequence[Record], *, size: str = "default") -> Figure:
    """Queue length per mail server over time, with one lane per outage above it.

    Each server has its own colour, line style and marker (:data:`QUEUE_STYLES`), and the lines
    are drawn widest first, so two servers with the same queue at the same time are both seen.
    Stretches at zero are left to one thin baseline, so idle hours do not pile four lines on top
    of each other. Each outage gets its own lane in a strip above the plot, named at its left and
    coloured like the server whose link (or node) went down, and a light band of that colour
    behind the queues; the legend of the servers sits right of the plot, off the data. The time
    axis ends shortly after the last change of any queue, and a long stretch with every queue
    empty and nothing down (:data:`IDLE_CUT_SHARE`) is cut out of it, marked with its length,
    so bursts seconds long, a minute apart, are wide enough to compare.

    Args:
        records: trace records.
        size: "default" or "slide" (see :class:`mailsim.plot._style.Look`).

    Returns:
        The figure; one line (gid ``queue``, label the node name) per server that queued mail,
        one bar per outage in the strip (gid ``outage``), its band behind the queues (gid
        ``outage-band``), a grey band (gid ``queue-cut``) and its label (``queue-cut-label``)
        per cut.
    """
    look = look_for(size)
    records = list(records)
    series = queue_lengths(records)
    fig = new_figure(*SLIDE_INCHES) if look.slide else new_figure(10.0, 4.2)
    ax = fig.add_axes((0.1, 0.1, 0.8, 0.8))
    ax.set_title("Outgoing queue length per server", fontsize=look.title, loc="left")
    if not series:
        empty_note(ax, "no mail was queued in this trace")
        return fig
    t_lo = min(points[0][0] for points in series.values())
    last_change = max(points[-1][0] for points in series.values())
    t_hi = min(max(r["t"] for r in records), last_change + 0.1 * max(last_change - t_lo, 1.0))
    colours = {node: f"C{index % 10}" for index, node in enumerate(series)}
    outages = [o for o in read_topology(records).outages if o.overlaps(t_lo, t_hi)]
    cuts = _idle_cuts(series, outages, t_lo, t_hi)
    shown = (last_change - t_lo) - sum(b - a for a, b in cuts)
    if cuts:  # the time after the last change is a tenth of what is shown, not of the whole
        t_hi = min(t_hi, last_change + 0.1 * max(shown, 1.0))
    shown += t_hi - last_change
    name, unit = time_unit(max(shown, 1e-3))
    axis = _TimeAxis(cuts, CUT_GAP_SHARE * shown, unit)
    lanes = list(dict.fromkeys(f"{o.label} down" for o in outages))
    strip = fig.add_axes((0.1, 0.9, 0.8, 0.05), sharex=ax) if lanes else None
    for outage in outages:
        colour = _outage_colour(outage, colours)
        lo = axis.x(max(outage.start, t_lo))
        hi = axis.x(min(outage.until(t_hi), t_hi))
        band = ax.axvspan(lo, hi, color=colour, alpha=0.09, linewidth=0, zorder=0)
        band.set_gid("outage-band")
        assert strip is not None
        (bar,) = strip.barh(
            lanes.index(f"{outage.label} down"), hi - lo, left=lo, height=0.7, color=colour
        )
        bar.set_gid("outage")
    peak = 0
    count = len(series)
    for index, (node, points) in enumerate(series.items()):
        xs, ys, marks = _queue_path(points, t_hi, axis.x)
        style, marker = QUEUE_STYLES[index % len(QUEUE_STYLES)]
        # Widest first: a later, thinner line drawn over an earlier one leaves it visible.
        width = look.line(0.9 + 0.8 * (count - 1 - index) / max(count - 1, 1))
        marked = len(points) <= MARKED_CHANGES
        (line,) = ax.plot(
            xs,
            ys,
            color=colours[node],
            linewidth=width,
            linestyle=style,
            marker=marker if marked else None,
            markevery=marks if marked else None,
            markersize=4 * look.scale,
            label=node,
            zorder=2 + index,
        )
        line.set_gid("queue")
        peak = max(peak, *(n for _, n in points))
    ax.axhline(0, color="#8a8a8a", linewidth=look.line(0.8), zorder=1.5)
    pad = 0.03 * max(shown, 1.0)
    ax.set_xlim(axis.x(t_lo) - pad / unit, axis.x(t_hi) + pad / unit)
    if cuts:
        _draw_cuts(ax, axis, t_lo - pad, t_hi + pad, look)
    ax.set_ylim(-0.02 * (peak + 1), peak * 1.08 + 1)
    from matplotlib.ticker import MaxNLocator

    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(
        f"simulated time ({name})"
        + ("; idle stretches (every queue empty) cut out" if cuts else ""),
        fontsize=look.font,
    )
    ax.set_ylabel("queued (message, recipient) pairs", fontsize=look.font)
    ax.tick_params(labelsize=look.small)
    ax.grid(color="#e5e5e5", linewidth=0.6)
    legend = ax.legend(
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        fontsize=look.small,
        frameon=False,
        handlelength=4,
    )
    if strip is not None:
        strip.set_ylim(len(lanes) - 0.5, -0.5)
        strip.set_yticks(range(len(lanes)), lanes, fontsize=look.small)
        for tick, lane in zip(strip.get_yticklabels(), lanes, strict=True):
            first = next(o for o in outages if f"{o.label} down" == lane)
            tick.set_color(_outage_colour(first, colours))
        strip.tick_params(axis="x", bottom=False, labelbottom=False)
        strip.tick_params(axis="y", length=0)
        for side in ("top", "right", "bottom"):
            strip.spines[side].set_visible(False)
        strip.grid(axis="x", color="#e5e5e5", linewidth=0.6)
        strip.set_axisbelow(True)
    _fit_queue_layout(fig, ax, strip, legend, len(lanes), look)
    return fig


def _outage_colour(outage: Outage, colours: Mapping[str, str]) -> str:
    """The colour of the server whose link or node went down, else the outage kind's colour."""
    for end in outage.what:
        if end in colours:
            return colours[end]
    return OUTAGE_COLOURS[outage.kind]


#: An idle stretch (every queue empty and nothing down) longer than this share of the plotted
#: time is cut out of the axis: persistent-connection's two bursts of 2 s and 5 s, 48 s apart,
#: were two spikes on a 60 s axis.
IDLE_CUT_SHARE = 0.25
#: The width a cut keeps, as a share of the time still shown.
CUT_GAP_SHARE = 0.08
#: Time kept on either side of a cut, as a share of the plotted time (at most a quarter of the
#: idle stretch), so a queue is seen to start from and fall back to zero.
CUT_MARGIN_SHARE = 0.02


@dataclass(frozen=True)
class _TimeAxis:
    """Simulated time to x, with ``cuts`` (real intervals) squeezed to ``gap`` seconds each."""

    cuts: list[tuple[float, float]]
    gap: float
    unit: float

    def x(self, t: float) -> float:
        shift = 0.0
        for a, b in self.cuts:
            if t >= b:
                shift += (b - a) - self.gap
            elif t > a:
                shift += (t - a) * (1 - self.gap / (b - a))
                break
            else:
                break
        return (t - shift) / self.unit


def _idle_cuts(
    series: Mapping[str, list[tuple[float, int]]],
    outages: Sequence[Outage],
    t_lo: float,
    t_hi: float,
) -> list[tuple[float, float]]:
    """The stretches to cut out of the time axis: every queue empty, no outage, and long."""
    changes = sorted(
        (
            (t, n - before)
            for points in series.values()
            for (_, before), (t, n) in itertools.pairwise(points)
        ),
        key=lambda change: (change[0], -change[1]),
    )
    idle: list[tuple[float, float]] = []
    total, since = 0, None
    for t, delta in changes:
        before, total = total, total + delta
        if before > 0 and total == 0:
            since = t
        elif before == 0 and total > 0 and since is not None:
            idle.append((since, t))
            since = None
    for outage in outages:  # an outage is never cut, even with every queue empty
        end = outage.until(t_hi)
        idle = [
            piece
            for a, b in idle
            for piece in ((a, min(b, outage.start)), (max(a, end), b))
            if piece[1] > piece[0]
        ]
    span = t_hi - t_lo
    cuts = []
    for a, b in idle:
        if b - a > IDLE_CUT_SHARE * span:
            margin = min(CUT_MARGIN_SHARE * span, (b - a) / 4)
            cuts.append((a + margin, b - margin))
    return cuts


def _draw_cuts(ax: Axes, axis: _TimeAxis, lo: float, hi: float, look: Look) -> None:
    """Tick each shown piece of time on its own and mark each cut with how long it was."""
    from matplotlib.ticker import FixedLocator, MaxNLocator

    edges = [lo, *(t for cut in axis.cuts for t in cut), hi]
    pieces = list(zip(edges[::2], edges[1::2], strict=True))
    width = axis.x(hi) - axis.x(lo)
    ticks: list[float] = []
    labels: list[str] = []
    for a, b in pieces:
        share = (axis.x(b) - axis.x(a)) / width
        locator = MaxNLocator(nbins=max(2, round(10 * share)))
        for value in locator.tick_values(a / axis.unit, b / axis.unit):
            if a / axis.unit <= value <= b / axis.unit:
                ticks.append(axis.x(value * axis.unit))
                labels.append(f"{value:g}")
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.set_xticks(ticks, labels)
    for a, b in axis.cuts:
        band = ax.axvspan(axis.x(a), axis.x(b), color="#eeeeee", linewidth=0, zorder=0.5)
        band.set_gid("queue-cut")
        text = ax.text(
            (axis.x(a) + axis.x(b)) / 2,
            0.5,
            f"{human_duration(b - a)} idle",
            transform=ax.get_xaxis_transform(),
            rotation=90,
            ha="center",
            va="center",
            fontsize=look.small,
            color="#555555",
        )
        text.set_gid("queue-cut-label")


def _queue_path(
    points: list[tuple[float, int]], t_hi: float, x_of: Callable[[float], float]
) -> tuple[list[float], list[float], list[int]]:
    """A queue's steps as a polyline, its stretches at zero left out (the baseline shows them).

    Returns the x and y vertices (a NaN lifts the pen over a stretch at zero) and the indices of
    the vertices where the length changes, for the markers.
    """
    nan = float("nan")
    xs: list[float] = []
    ys: list[float] = []
    marks: list[int] = []
    ends = [t for t, _ in points[1:]] + [t_hi]
    for i, ((t, n), t_next) in enumerate(zip(points, ends, strict=True)):
        if i > 0:
            if points[i - 1][1] == 0:  # the pen is up: start the rise from the baseline
                xs.append(x_of(t))
                ys.append(0.0)
            xs.append(x_of(t))
            ys.append(float(n))
            marks.append(len(xs) - 1)
        elif n:
            xs.append(x_of(t))
            ys.append(float(n))
        xs.append(x_of(t_next) if n else nan)
        ys.append(float(n) if n else nan)
    return xs, ys, marks


def _fit_queue_layout(
    fig: Figure, ax: Axes, strip: Axes | None, legend: Legend, lanes: int, look: Look
) -> None:
    """Place the plot, the outage strip and the legend from the measured sizes of their labels."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    fw, fh = fig.get_size_inches()
    axis_box = ax.yaxis.get_tightbbox(renderer)
    widths = [axis_box.width if axis_box is not None else 0.0]
    if strip is not None:
        widths += [t.get_window_extent(renderer).width for t in strip.get_yticklabels()]
    left = max(widths) / fig.dpi + 0.25 * look.scale
    right = legend.get_window_extent(renderer).width / fig.dpi + 0.35 * look.scale
    bottom, top = 0.55 * look.scale, 0.45 * look.scale
    strip_height = 0.24 * lanes * look.scale
    gap = 0.12 * look.scale if strip is not None else 0.0
    if not look.slide:
        fh += strip_height + gap  # by default the figure grows by the strip; a slide does not
        fig.set_size_inches(fw, fh)
    height = fh - bottom - top - strip_height - gap
    width = 1 - (left + right) / fw
    ax.set_position((left / fw, bottom / fh, width, height / fh))
    if strip is not None:
        strip.set_position((left / fw, (bottom + height + gap) / fh, width, strip_height / fh))
        # The title goes above the strip, the top of the figure.
        ax.set_title("", loc="left")
        strip.set_title("Outgoing queue length per server", fontsize=look.title, loc="left")


def latency_cdf(
    runs: Mapping[str, Sequence[Record]] | Sequence[Record],
    *,
    log_time: bool | None = None,
    size: str = "default",
) -> Figure:
    """Cumulative distribution of delivery latency, one curve per run, to compare scenarios.

    Args:
        runs: ``{name: records}`` for several runs (a plain list of records is one run called
            "run").
        log_time: use a log time axis; by default it is used when latencies span more than a
            factor of 100 (a few seconds next to hours of retries).
        size: "default" or "slide" (see :class:`mailsim.plot._style.Look`).

    Returns:
        The figure; one step line per run with gid ``cdf``, labelled with the run's name, its
        number of delivered pairs and the median.
    """
    import numpy as np

    if not isinstance(runs, Mapping):
        runs = {"run": runs}
    data: dict[str, tuple[list[float], int]] = {}
    for name, records in runs.items():
        pairs = [j for j in journeys(list(records)) if j.kind == "mail" and j.submitted is not None]
        latencies = sorted(j.latency for j in pairs if j.latency is not None)
        data[name] = (latencies, len(pairs))
    look = look_for(size)
    legend_rows = len(runs)
    height = 3.8 + 0.2 * legend_rows
    fig = new_figure(*SLIDE_INCHES) if look.slide else new_figure(8.0, height)
    fw, height = fig.get_size_inches()
    bottom = (0.55 + 0.2 * legend_rows) * look.scale / height
    left = 0.8 * look.scale / fw
    ax = fig.add_axes(
        (left, bottom + 0.05, 0.96 - left, 1 - bottom - 0.05 - 0.4 * look.scale / height)
    )
    ax.set_title("Delivery latency (submission to mailbox)", fontsize=look.title, loc="left")
    everything = [x for lat, _ in data.values() for x in lat]
    if not everything:
        empty_note(ax, "no message was delivered in these runs")
        return fig
    lo, hi = max(min(everything), 1e-3), max(everything)
    if log_time is None:
        log_time = hi / lo > 100
    if log_time:
        seconds, unit = 1.0, ""
    else:
        unit, seconds = time_unit(hi)
    for name, (latencies, total) in data.items():
        if not latencies:
            # Still named in the legend: "0/1 delivered" is part of the comparison.
            ax.plot([], [], label=f"{name}: 0/{total} delivered")
            continue
        xs = np.array(latencies) / seconds
        ys = np.arange(1, len(xs) + 1) / max(total, 1)
        median = latencies[len(latencies) // 2]
        label = f"{name}: {len(latencies)}/{total} delivered, median {human_duration(median)}"
        (line,) = ax.step(
            np.concatenate([[xs[0]], xs]),
            np.concatenate([[0.0], ys]),
            where="post",
            label=label,
            linewidth=look.line(1.5),
        )
        line.set_gid("cdf")
        # The median the legend names (of the delivered pairs), marked on the curve.
        middle = len(latencies) // 2
        if latencies:
            at, height = latencies[middle] / seconds, (middle + 1) / max(total, 1)
            (dot,) = ax.plot(
                [at], [height], "o", color=line.get_color(), markersize=6 * look.scale, zorder=5
            )
            dot.set_gid("cdf-median")
            if len(data) == 1:  # with several runs the legend names each median
                note = ax.annotate(
                    f"median {human_duration(median)}",
                    (at, height),
                    xytext=(-8 * look.scale, 0),
                    textcoords="offset points",
                    ha="right",
                    va="center",
                    fontsize=look.small,
                    color=line.get_color(),
                )
                note.set_gid("cdf-median-label")
    if log_time:
        set_log_time_axis(ax, lo / 3, hi * 3)
        ax.set_xlabel("latency (log scale)", fontsize=look.font)
    else:
        ax.set_xlim(0, hi / seconds * 1.05)
        ax.set_xlabel(f"latency ({unit})", fontsize=look.font)
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("fraction of (message, recipient) pairs", fontsize=look.font)
    ax.tick_params(labelsize=look.small)
    ax.grid(color="#e5e5e5", linewidth=0.6)
    fig.legend(loc="lower center", fontsize=look.small, frameon=False, ncol=1)
    return fig


def attempts_histogram(records: Sequence[Record], *, size: str = "default") -> Figure:
    """How many delivery attempts each (message, recipient) of user mail needed, by outcome.

    Bars are stacked by final status (delivered, bounced, still queued...). A pair delivered
    locally without any relay attempt counts as 0 attempts.

    Args:
        records: trace records.
        size: "default" or "slide" (see :class:`mailsim.plot._style.Look`).

    Returns:
        The figure; bars are Rectangles with gid ``attempts-<status>``.
    """
    import numpy as np

    look = look_for(size)
    pairs = [j for j in journeys(list(records)) if j.kind == "mail"]
    fig = new_figure(*SLIDE_INCHES) if look.slide else new_figure(8.0, 4.2)
    fw, fh = fig.get_size_inches()
    margin_left, margin_bottom, margin_top = 0.85 * look.scale, 0.6 * look.scale, 0.45 * look.scale
    height = 1 - (margin_bottom + margin_top) / fh
    ax = fig.add_axes((margin_left / fw, margin_bottom / fh, 0.68, height))
    ax.set_title("Delivery attempts per (message, recipient)", fontsize=look.title, loc="left")
    if not pairs:
        empty_note(ax, "no user mail in the trace")
        return fig
    counts = [len(j.attempts) for j in pairs]
    top = max(counts)
    width = max(1, int(np.ceil((top + 1) / 40)))
    edges = np.arange(0, top + width + 1, width)
    bottom = np.zeros(len(edges) - 1)
    for status, colour in STATUS_COLOURS.items():
        values = [len(j.attempts) for j in pairs if j.status == status]
        if not values:
            continue
        heights, _ = np.histogram(values, bins=edges)
        bars = ax.bar(
            edges[:-1],
            heights,
            width=width * 0.85,
            bottom=bottom,
            align="edge" if width > 1 else "center",
            color=colour,
            label=f"{status} ({len(values)})",
        )
        for bar in bars:
            bar.set_gid(f"attempts-{status}")
        bottom += heights
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("attempts" + (f" (bins of {width})" if width > 1 else ""), fontsize=look.font)
    ax.set_ylabel("(message, recipient) pairs", fontsize=look.font)
    ax.tick_params(labelsize=look.small)
    ax.grid(axis="y", color="#e5e5e5", linewidth=0.6)
    ax.set_axisbelow(True)
    # Each bar says how many pairs it holds: the tail of many tries is a few pairs, too low to
    # read off the axis next to the thousands delivered at the first try.
    for x, stack in zip(edges[:-1], bottom, strict=True):
        if stack:
            label = ax.annotate(
                f"{int(stack):,}",
                (x + (width * 0.85 / 2 if width > 1 else 0), stack),
                xytext=(0, 3 * look.scale),
                textcoords="offset points",
                ha="center",
                va="bottom",
                fontsize=look.small,
            )
            label.set_gid("attempts-count")
    ax.set_ylim(0, max(bottom) * 1.08)
    legend = ax.legend(
        loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=look.small, frameon=False
    )
    # The plot takes the width the legend leaves.
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    right = legend.get_window_extent(renderer).width / fig.dpi + 0.3 * look.scale
    ax.set_position((margin_left / fw, margin_bottom / fh, 1 - (margin_left + right) / fw, height))
    return fig
