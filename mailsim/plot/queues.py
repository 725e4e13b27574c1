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

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from mailsim.plot._style import (
    OUTAGE_COLOURS,
    SLIDE_INCHES,
    STATUS_COLOURS,
    empty_note,
    human_duration,
    look_for,
    new_figure,
    set_log_time_axis,
    time_unit,
)
from mailsim.plot.timeline import journeys
from mailsim.plot.topology import read_topology

if TYPE_CHECKING:
    from matplotlib.figure import Figure

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
    """Queue length per mail server over time, with outages shaded behind.

    Each server has its own line style and marker (:data:`QUEUE_STYLES`) besides its colour, and
    the lines are drawn widest first, so two servers with the same queue at the same time are
    both seen. The time axis ends shortly after the last change of any queue.

    Args:
        records: trace records.
        size: "default" or "slide" (see :class:`mailsim.plot._style.Look`).

    Returns:
        The figure; one step line (gid ``queue``, label the node name) per server that queued mail.
    """
    look = look_for(size)
    records = list(records)
    series = queue_lengths(records)
    fig = new_figure(*SLIDE_INCHES) if look.slide else new_figure(10.0, 4.2)
    fw, fh = fig.get_size_inches()
    left, bottom, right, top = 0.8 * look.scale, 0.55 * look.scale, 0.3, 0.45 * look.scale
    ax = fig.add_axes((left / fw, bottom / fh, 1 - (left + right) / fw, 1 - (bottom + top) / fh))
    ax.set_title("Outgoing queue length per server", fontsize=look.title, loc="left")
    if not series:
        empty_note(ax, "no mail was queued in this trace")
        return fig
    t_lo = min(points[0][0] for points in series.values())
    last_change = max(points[-1][0] for points in series.values())
    t_hi = min(max(r["t"] for r in records), last_change + 0.1 * max(last_change - t_lo, 1.0))
    name, unit = time_unit(max(t_hi - t_lo, 1e-3))
    named: set[str] = set()  # each outage is named once in the legend, however often it hit
    for outage in read_topology(records).outages:
        end = outage.end if outage.end is not None else t_hi
        if end < t_lo or outage.start > t_hi:
            continue
        label = f"{outage.label} down"
        span = ax.axvspan(
            max(outage.start, t_lo) / unit,
            min(end, t_hi) / unit,
            color=OUTAGE_COLOURS[outage.kind],
            alpha=0.14,
            linewidth=0,
            label=label if label not in named else "_nolegend_",
        )
        named.add(label)
        span.set_gid("outage")
    peak = 0
    count = len(series)
    for index, (node, points) in enumerate(series.items()):
        xs = [t / unit for t, _ in points] + [t_hi / unit]
        ys = [n for _, n in points] + [points[-1][1]]
        style, marker = QUEUE_STYLES[index % len(QUEUE_STYLES)]
        # Widest first: a later, thinner line drawn over an earlier one leaves it visible.
        width = look.line(1.4 + 1.6 * (count - 1 - index) / max(count - 1, 1))
        (line,) = ax.step(
            xs,
            ys,
            where="post",
            linewidth=width,
            linestyle=style,
            marker=marker if len(points) <= MARKED_CHANGES else None,
            markevery=list(range(1, len(points))) if len(points) <= MARKED_CHANGES else None,
            markersize=4 * look.scale,
            label=node,
            zorder=2 + index,
        )
        line.set_gid("queue")
        peak = max(peak, *ys)
    pad = 0.03 * max(t_hi - t_lo, 1.0) / unit
    ax.set_xlim(t_lo / unit - pad, t_hi / unit + pad)
    ax.set_ylim(0, peak * 1.08 + 1)
    from matplotlib.ticker import MaxNLocator

    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(f"simulated time ({name})", fontsize=look.font)
    ax.set_ylabel("queued (message, recipient) pairs", fontsize=look.font)
    ax.tick_params(labelsize=look.small)
    ax.grid(color="#e5e5e5", linewidth=0.6)
    ax.legend(loc="best", fontsize=look.small, framealpha=0.9, handlelength=4)
    return fig


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
    ax = fig.add_axes((0.1, 0.15, 0.68, 0.75))
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
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=look.small, frameon=False)
    return fig
