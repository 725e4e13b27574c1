"""The message sequence chart: who said what to whom, and when, drawn from the trace.

One vertical lane per node that takes part (order: by site, India left and USA right, user hosts at
the outer ends, mail servers inside; see :meth:`Topology.lane_order`). Time runs downward. Each
protocol line (``smtp.line``, ``pop3.line``, ``http.line``) is a slanted arrow from its sender's
lane at its send time to its receiver's lane at its arrival time, labelled with the command or
reply. SMTP arrows are blue and solid, POP3 arrows green and dashed, HTTP arrows purple and
dash-dotted, 4xx/5xx, ``-ERR`` and HTTP 4xx/5xx replies red, and a connection
that failed (``tcp.fail``) is an X on the client's lane. A thin bar on both lanes spans the
lines of each connection, headed by its id ("conn 2").

**Arrival times.** The trace records when a line was sent, not when it arrived. The arrival is
approximated as send time + half the connection's handshake round trip, measured from its
``tcp.open`` to its ``tcp.established``; without a handshake in the trace, the propagation delay of
the shortest path from ``net.link`` is used, and without a topology the arrow is drawn flat.
Serialisation time of long lines is not shown.

**The time scale.** Within a stretch of activity time is to scale: one scale for the whole chart,
chosen so the chart has about 1.6 text rows per line, but never so large that the longest
one-way flight spans more than 3.5 rows (an intercontinental dialogue next to LAN sessions).
Two rules keep the chart readable, and both are visible on it. First, lines sent closer together
than one text row (a burst of data lines, a multi-line reply written at once, a LAN session) are
spread one row apart, so there the chart runs slower than the clock. Second, an idle gap longer
than ten rows, and longer than three times the longest flight (Steve reading his mail three
hours later, a 35-minute retry wait), is cut out and replaced by a short grey band with a
zig-zag edge that says how long the gap was. The time of every line is written on the left axis,
so the real clock can always be read off. DNS queries are not drawn.

**Highlighting one event.** ``highlight=record`` (the step-through view of ``mailsim.teach`` uses
it) puts a yellow glow under the arrow that record drew: its protocol line, the run of data lines
it belongs to, or the handshake or FIN segment. A record that drew no arrow (a queue entry, a
delivery, a link failure) gets a yellow line across the chart at its time instead.
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
    FONT,
    HTTP_COLOUR,
    HTTP_STYLE,
    POP3_COLOUR,
    POP3_STYLE,
    SITE_COLOURS,
    SMALL_FONT,
    SMTP_COLOUR,
    SMTP_STYLE,
    TCP_COLOUR,
    TCP_STYLE,
    PlotError,
    clock,
    empty_note,
    human_duration,
    new_figure,
    short_text,
)
from mailsim.plot.topology import Topology, read_topology

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

Record = dict[str, Any]

#: Vertical room per text row, inches; every line gets at least one row.
ROW_HEIGHT = 0.2
#: Average rows per line the time scale aims at.
ROWS_PER_LINE = 1.6
#: An idle gap longer than this many rows (at the chosen scale) is cut out.
BREAK_AFTER_ROWS = 10.0
#: The longest one-way flight is drawn over at most this many rows.
MAX_FLIGHT_ROWS = 3.5
#: Labels are cut to this many characters.
LABEL_CHARS = 52
#: The glow under a highlighted arrow or across the chart at a highlighted moment.
HIGHLIGHT_COLOUR = "#ffd21f"

_PROTO_COLOUR = {
    "smtp": SMTP_COLOUR,
    "pop3": POP3_COLOUR,
    "http": HTTP_COLOUR,
    "tcp": TCP_COLOUR,
}
_PROTO_STYLE: dict[str, Any] = {
    "smtp": SMTP_STYLE,
    "pop3": POP3_STYLE,
    "http": HTTP_STYLE,
    "tcp": TCP_STYLE,
}
_REPLY_CODE = re.compile(r"^([2-5])\d\d[ -]")


@dataclass
class Arrow:
    """One arrow of the chart: a protocol line, a run of collapsed data lines, or a TCP segment."""

    t_send: float
    t_arrive: float
    src: str
    dst: str
    label: str
    proto: str  #: "smtp", "pop3" or "tcp"
    gid: str  #: "smtp-line", "pop3-line", "smtp-data", "pop3-data" or "tcp-segment"
    conn: int
    error: bool = False
    count: int = 1  #: protocol lines this arrow stands for
    y_send: float = 0.0
    y_arrive: float = 0.0


@dataclass
class Mark:
    """A point on a lane: a failed connection (X)."""

    t: float
    node: str
    label: str
    conn: int
    y: float = 0.0


@dataclass
class Chart:
    """Everything the chart shows, in time order, before layout."""

    arrows: list[Arrow] = field(default_factory=list)
    marks: list[Mark] = field(default_factory=list)
    #: conn -> (client, server, open time, end time, protocol)
    spans: dict[int, tuple[str, str, float, float, str]] = field(default_factory=dict)
    lanes: list[str] = field(default_factory=list)
    note: str = ""


def _is_error(proto: str, side: str, line: str) -> bool:
    if side != "S":
        return False
    if proto == "pop3":
        return line.startswith("-ERR")
    if proto == "http":
        return line.startswith("HTTP/") and line[9:10] in ("4", "5")
    match = _REPLY_CODE.match(line + " ")
    return match is not None and str(match.group(1)) in "45"


def one_way_delays(records: Sequence[Record], topo: Topology) -> dict[int, float]:
    """Per connection: half the handshake round trip, or the path delay from the topology."""
    opened: dict[int, Record] = {}
    delays: dict[int, float] = {}
    for rec in records:
        if rec["type"] == "tcp.open":
            opened[rec["conn"]] = rec
        elif rec["type"] == "tcp.established" and rec["conn"] in opened:
            delays[rec["conn"]] = max(0.0, (rec["t"] - opened[rec["conn"]]["t"]) / 2)
    for conn, rec in opened.items():
        if conn not in delays:
            path_delay = topo.one_way_latency(rec["client"], rec["server"], rec["t"])
            if path_delay is not None:
                delays[conn] = path_delay
    return delays


def _build_chart(
    records: Sequence[Record],
    topo: Topology,
    *,
    connection: int | None,
    window: tuple[float, float] | None,
    hide_data: bool,
    show_tcp: bool,
    max_lines: int | None,
) -> Chart:
    chart = Chart()
    delays = one_way_delays(records, topo)
    t0, t1 = window if window is not None else (-math.inf, math.inf)

    def wanted(rec: Record) -> bool:
        if connection is not None and rec.get("conn") != connection:
            return False
        return bool(t0 <= rec["t"] <= t1)

    def delay_of(conn: int, src: str, dst: str, t: float) -> float:
        if conn in delays:
            return delays[conn]
        path_delay = topo.one_way_latency(src, dst, t)
        delays[conn] = path_delay or 0.0
        return delays[conn]

    opened: dict[int, Record] = {}
    established: dict[int, float] = {}
    # Per connection: is the client sending SMTP data / is the server sending a POP3 message?
    in_data: dict[int, bool] = {}
    pop_verb: dict[int, str] = {}
    in_body: dict[int, bool] = {}
    pending_run: dict[int, Arrow] = {}
    protocol: dict[int, str] = {}

    def flush_run(conn: int) -> None:
        run = pending_run.pop(conn, None)
        if run is not None:
            noun = "data" if run.proto == "smtp" else "message"
            run.label = f"… {run.count} {noun} line{'s' if run.count != 1 else ''} …"
            chart.arrows.append(run)

    for rec in records:
        kind = rec["type"]
        if kind == "tcp.open":
            opened[rec["conn"]] = rec
        if kind == "tcp.established":
            established[rec["conn"]] = rec["t"]
        if not kind.startswith(("smtp.", "pop3.", "http.", "tcp.")) or not wanted(rec):
            continue
        conn = rec["conn"]
        if kind in ("smtp.line", "pop3.line", "http.line"):
            proto = kind.split(".")[0]
            protocol.setdefault(conn, proto)
            # Folded header lines start with a tab, which fonts cannot draw: show spaces.
            side, line = rec["side"], rec["line"].expandtabs(4)
            delay = delay_of(conn, rec["src"], rec["dst"], rec["t"])
            body = False
            if proto == "smtp":
                if side == "C" and in_data.get(conn):
                    if line == ".":
                        in_data[conn] = False
                    else:
                        body = True
                elif side == "S" and line.startswith("354"):
                    in_data[conn] = True
            elif proto == "pop3":
                if side == "C":
                    pop_verb[conn] = line.split(" ", 1)[0].upper()
                elif in_body.get(conn):
                    if line == ".":
                        in_body[conn] = False
                    else:
                        body = True
                elif line.startswith("+OK") and pop_verb.get(conn) in ("RETR", "TOP"):
                    in_body[conn] = True
            if body and hide_data:
                run = pending_run.get(conn)
                if run is None:
                    pending_run[conn] = Arrow(
                        rec["t"],
                        rec["t"] + delay,
                        rec["src"],
                        rec["dst"],
                        "",
                        proto,
                        f"{proto}-data",
                        conn,
                    )
                else:
                    run.count += 1
                    run.t_arrive = rec["t"] + delay
                continue
            flush_run(conn)
            chart.arrows.append(
                Arrow(
                    rec["t"],
                    rec["t"] + delay,
                    rec["src"],
                    rec["dst"],
                    short_text(line, LABEL_CHARS) if line else "(empty line)",
                    proto,
                    f"{proto}-line",
                    conn,
                    error=_is_error(proto, side, line),
                )
            )
        elif kind == "tcp.fail":
            opening = opened.get(conn)
            if opening is None:
                continue
            reason = rec.get("reason", "failed")
            chart.marks.append(
                Mark(
                    rec["t"],
                    opening["client"],
                    f"connect to {opening['server']}:{opening['sport']} failed: {reason}",
                    conn,
                )
            )
            chart.spans[conn] = (
                opening["client"],
                opening["server"],
                opening["t"],
                rec["t"],
                "fail",
            )
            if show_tcp:
                delay = delay_of(conn, opening["client"], opening["server"], opening["t"])
                chart.arrows.append(
                    Arrow(
                        opening["t"],
                        opening["t"] + max(delay, 1e-3),
                        opening["client"],
                        opening["server"],
                        "SYN (no answer)" if reason == "timeout" else "SYN",
                        "tcp",
                        "tcp-segment",
                        conn,
                        error=True,
                    )
                )
        elif kind == "tcp.close":
            flush_run(conn)
            opening = opened.get(conn)
            if opening is None:
                continue
            start = opening["t"]
            proto = protocol.get(conn) or {110: "pop3", 80: "http"}.get(opening["sport"], "smtp")
            chart.spans[conn] = (opening["client"], opening["server"], start, rec["t"], proto)
            if show_tcp:
                closer = rec["by"]
                other = opening["server"] if closer == opening["client"] else opening["client"]
                delay = delay_of(conn, closer, other, rec["t"])
                chart.arrows.append(
                    Arrow(
                        rec["t"],
                        rec["t"] + delay,
                        closer,
                        other,
                        "FIN" if rec.get("how") == "fin" else "RST",
                        "tcp",
                        "tcp-segment",
                        conn,
                        error=rec.get("how") != "fin",
                    )
                )
        elif kind == "tcp.established" and show_tcp and conn in opened:
            opening = opened[conn]
            client, server, t_open = opening["client"], opening["server"], opening["t"]
            delay = (rec["t"] - t_open) / 2
            for t_send, src, dst, label in (
                (t_open, client, server, "SYN"),
                (t_open + delay, server, client, "SYN-ACK"),
                (rec["t"], client, server, "ACK"),
            ):
                chart.arrows.append(
                    Arrow(t_send, t_send + delay, src, dst, label, "tcp", "tcp-segment", conn)
                )
    for conn in list(pending_run):
        flush_run(conn)
    # Connections still open at the end of the trace (or of the window).
    last_t = max((a.t_arrive for a in chart.arrows), default=0.0)
    for conn, opening in opened.items():
        if conn in chart.spans or not any(a.conn == conn for a in chart.arrows):
            continue
        proto = protocol.get(conn, "smtp")
        chart.spans[conn] = (opening["client"], opening["server"], opening["t"], last_t, proto)
    chart.arrows.sort(key=lambda a: a.t_send)
    if max_lines is not None:
        _limit(chart, max_lines)
    names: list[str] = []
    for arrow in chart.arrows:
        names += [arrow.src, arrow.dst]
    for mark in chart.marks:
        names.append(mark.node)
        client, server, *_ = chart.spans[mark.conn]
        names.append(server)
    chart.lanes = topo.lane_order(names)
    return chart


def _limit(chart: Chart, max_lines: int) -> None:
    """Keep whole connections from the start and from the end of the story, ``max_lines`` in all.

    Half the budget goes to the first connections and half to the last, so a long story still
    shows how it began and how it ended; a failed connection counts as three lines (it costs a
    cut-out gap). The title then says which connections were left out.
    """
    # Connections by first appearance (a dict keeps insertion order and finds in O(1)).
    first_seen: dict[int, None] = {}
    for _, conn in sorted(
        [(a.t_send, a.conn) for a in chart.arrows] + [(m.t, m.conn) for m in chart.marks]
    ):
        first_seen.setdefault(conn, None)
    order = list(first_seen)
    cost = dict.fromkeys(order, 0)
    for arrow in chart.arrows:
        cost[arrow.conn] += 1
    for mark in chart.marks:
        cost[mark.conn] += 3
    if sum(cost.values()) <= max_lines:
        return
    head: list[int] = []
    spent = 0
    for conn in order:
        if head and spent + cost[conn] > max_lines / 2:
            break
        head.append(conn)
        spent += cost[conn]
    tail: list[int] = []
    for conn in reversed(order[len(head) :]):
        if spent + cost[conn] > max_lines:
            break
        tail.insert(0, conn)
        spent += cost[conn]
    kept = set(head) | set(tail)
    dropped = [c for c in order if c not in kept]
    chart.note = (
        f"{len(dropped)} of {len(order)} connections left out, "
        f"conn {dropped[0]} to conn {dropped[-1]}"
    )
    chart.arrows = [a for a in chart.arrows if a.conn in kept]
    chart.marks = [m for m in chart.marks if m.conn in kept]
    chart.spans = {c: s for c, s in chart.spans.items() if c in kept}


@dataclass
class _Break:
    """A cut-out idle gap: drawn between rows ``y0`` and ``y1``, standing for ``t1 - t0``."""

    y0: float
    y1: float
    t0: float
    t1: float


def _layout(chart: Chart) -> tuple[list[_Break], float, list[tuple[float, float]]]:
    """Give every arrow and mark its rows; returns the breaks, the total rows and the ticks.

    The rows of an anchor (a send or a mark) follow the previous one by ``dt * scale`` rows,
    at least one row, or by a short break when ``dt`` is an idle gap (module docstring).
    """
    anchors: list[tuple[float, int, Any]] = []
    for index, arrow in enumerate(chart.arrows):
        anchors.append((arrow.t_send, index, arrow))
    for index, mark in enumerate(chart.marks):
        anchors.append((mark.t, len(chart.arrows) + index, mark))
    anchors.sort(key=lambda a: (a[0], a[1]))
    if not anchors:
        return [], 0.0, []
    times = [a[0] for a in anchors]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    flights = [a.t_arrive - a.t_send for a in chart.arrows] or [0.0]
    max_flight = max(flights)
    # Find the scale: rows per second such that the active (non-idle) time fills the target
    # number of rows; a gap is idle when it would take more than BREAK_AFTER_ROWS rows. Iterate,
    # since the scale decides which gaps are idle and the idle gaps decide the scale.
    target = ROWS_PER_LINE * len(anchors)
    scale = target / max(sum(gaps), 1e-9)
    for _ in range(12):
        limit = max(BREAK_AFTER_ROWS / scale, 3 * max_flight)
        active = sum(g for g in gaps if g <= limit)
        new_scale = target / active if active > 0 else scale
        # Never stretch so much that the longest flight fills more than MAX_FLIGHT_ROWS rows (a
        # slow intercontinental dialogue next to fast LAN sessions would take all the room).
        if max_flight > 0:
            new_scale = min(new_scale, MAX_FLIGHT_ROWS / max_flight)
        if math.isclose(new_scale, scale, rel_tol=1e-6):
            break
        scale = new_scale
    limit = max(BREAK_AFTER_ROWS / scale, 3 * max_flight)
    breaks: list[_Break] = []
    ticks: list[tuple[float, float]] = []
    y = 0.0
    lowest = 0.0  # the lowest row any arrow so far reaches
    previous_t: float | None = None
    for t, _, item in anchors:
        if previous_t is not None:
            dt = t - previous_t
            if dt > limit:
                # The band starts below every arrow still in flight and leaves a row after it
                # for the connection labels.
                start = max(y, lowest) + 1.0
                breaks.append(_Break(start, start + 2.0, previous_t, t))
                y = start + 3.2
            else:
                y += max(dt * scale, 1.0)
        if isinstance(item, Arrow):
            item.y_send = y
            item.y_arrive = y + (item.t_arrive - item.t_send) * scale
            lowest = max(lowest, item.y_arrive)
        else:
            item.y = y
            lowest = max(lowest, y)
        ticks.append((y, t))
        previous_t = t
    total = max([y] + [a.y_arrive for a in chart.arrows]) + 1.0
    return breaks, total, ticks


def sequence_diagram(
    records: Sequence[Record],
    *,
    connection: int | None = None,
    window: tuple[float, float] | None = None,
    hide_data: bool = False,
    show_tcp: bool = False,
    max_lines: int | None = None,
    highlight: Record | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Draw the message sequence chart of a trace (see the module docstring for the time scale).

    Args:
        records: trace records (``Recorder.records`` or ``load_events(path)``).
        connection: show only this connection id (``conn`` of ``tcp.open``).
        window: show only records with ``t0 <= t <= t1`` (simulated seconds).
        hide_data: collapse the message lines between SMTP's 354 and the final ``.`` (and the
            body of a POP3 RETR/TOP reply) into one arrow labelled ``… N data lines …``.
        show_tcp: also draw the TCP handshake (SYN, SYN-ACK, ACK) and the FIN as grey arrows.
        max_lines: when more lines than this would be drawn, keep whole connections in the order
            they opened until the limit and say so in the title (``render_all`` uses 300).
        highlight: a trace record to pick out in yellow (see the module docstring); the glow
            has gid ``highlight``.
        ax: draw into this axes (its figure is returned) instead of a new, suitably sized figure.

    Returns:
        The figure. Each protocol line is one arrow (an Annotation with gid ``smtp-line`` or
        ``pop3-line``; collapsed runs ``smtp-data``/``pop3-data``; TCP ``tcp-segment``), failed
        connections are Line2D markers with gid ``tcp-fail``, idle-gap bands have gid ``gap``.

    Raises:
        PlotError: ``connection`` is not in the trace, or ``window`` is empty or reversed.
    """
    records = list(records)
    if window is not None and not window[0] <= window[1]:
        raise PlotError(f"window must be (start, end) with start <= end, got {window!r}")
    if connection is not None and not any(
        r.get("conn") == connection
        for r in records
        if r["type"].startswith(("tcp.", "smtp.", "pop3.", "http."))
    ):
        known = sorted({r["conn"] for r in records if r["type"] == "tcp.open"})
        listed = ", ".join(map(str, known[:20])) + (" ..." if len(known) > 20 else "")
        raise PlotError(
            f"connection {connection} does not appear in the trace; known connections: "
            f"{listed or 'none'}"
        )
    topo = read_topology(records)
    chart = _build_chart(
        records,
        topo,
        connection=connection,
        window=window,
        hide_data=hide_data,
        show_tcp=show_tcp,
        max_lines=max_lines,
    )
    breaks, total_rows, ticks = _layout(chart)
    title = "Message sequence chart"
    if connection is not None:
        title += f" — connection {connection}"
    if window is not None:
        title += f" — {clock(window[0])} to {clock(window[1])}"
    if chart.note:
        title += f" ({chart.note})"
    n_lanes = max(len(chart.lanes), 2)
    longest = max([len(a.label) for a in chart.arrows] + [20])
    lane_gap = min(max(2.0, 0.066 * longest + 0.4), 3.8)
    header_rows = 3.2
    left, right, top, bottom = 1.25, 0.3, 0.55, 0.25
    if ax is None:
        # The x range is -0.8 .. n - 0.2 lane units: n + 0.6 units of lane_gap inches each.
        width = left + right + lane_gap * (n_lanes + 0.6)
        height = top + bottom + (total_rows + header_rows) * ROW_HEIGHT
        fig = new_figure(width, max(height, 3.0))
        fw, fh = fig.get_size_inches()
        ax = fig.add_axes(
            (left / fw, bottom / fh, 1 - (left + right) / fw, 1 - (top + bottom) / fh)
        )
    else:
        fig = ax.get_figure()  # type: ignore[assignment]
    ax.set_title(title, fontsize=FONT + 1, loc="left")
    if not chart.arrows and not chart.marks:
        empty_note(
            ax,
            "no SMTP or POP3 lines in the trace"
            + (" for this selection" if connection or window else ""),
        )
        return fig
    x_of = {name: float(i) for i, name in enumerate(chart.lanes)}
    ax.set_xlim(-0.8, len(chart.lanes) - 0.2)
    ax.set_ylim(total_rows + 0.5, -header_rows)
    _draw_lanes(ax, chart.lanes, topo, total_rows, header_rows)
    _draw_spans(ax, chart, x_of)
    for gap in breaks:
        _draw_break(ax, gap, len(chart.lanes))
    for arrow in chart.arrows:
        _draw_arrow(ax, arrow, x_of)
    for mark in chart.marks:
        (cross,) = ax.plot(
            [x_of[mark.node]],
            [mark.y],
            marker="X",
            markersize=11,
            color=ERROR_COLOUR,
            linestyle="none",
            zorder=6,
        )
        cross.set_gid("tcp-fail")
        server = chart.spans[mark.conn][1]
        toward = 1 if x_of.get(server, 0.0) >= x_of[mark.node] else -1
        ax.annotate(
            mark.label,
            (x_of[mark.node], mark.y),
            xytext=(toward * 9, 0),
            textcoords="offset points",
            ha="left" if toward > 0 else "right",
            va="center",
            fontsize=SMALL_FONT,
            color=ERROR_COLOUR,
            zorder=6,
        )
    if highlight is not None:
        _draw_highlight(ax, chart, highlight, x_of, ticks)
    _draw_ticks(ax, ticks)
    _draw_legend(ax, chart)
    return fig


def _highlighted_arrow(chart: Chart, rec: Record) -> Arrow | None:
    """The arrow ``rec`` drew: same connection and sender, sent at its time (or in its run)."""
    conn, src, t = rec.get("conn"), rec.get("src"), rec["t"]
    if rec["type"] == "tcp.open":
        src = None  # the SYN: sent by the client at the open
    for arrow in chart.arrows:
        if arrow.conn != conn or (src is not None and arrow.src != src):
            continue
        if rec["type"] == "tcp.segment" and arrow.proto != "tcp" and "P" not in rec["flags"]:
            continue  # a bare ACK drew nothing; a data segment carries a protocol line
        if math.isclose(arrow.t_send, t, abs_tol=1e-9) or (
            arrow.count > 1 and arrow.t_send <= t <= arrow.t_arrive
        ):
            return arrow
    return None


def _draw_highlight(
    ax: Axes, chart: Chart, rec: Record, x_of: dict[str, float], ticks: list[tuple[float, float]]
) -> None:
    arrow = _highlighted_arrow(chart, rec)
    if arrow is not None:
        (glow,) = ax.plot(
            [x_of[arrow.src], x_of[arrow.dst]],
            [arrow.y_send, arrow.y_arrive],
            color=HIGHLIGHT_COLOUR,
            linewidth=9,
            alpha=0.75,
            solid_capstyle="round",
            zorder=4.8,
        )
        glow.set_gid("highlight")
        return
    if not ticks:
        return
    # No arrow of its own: a line across the chart at its moment, rows interpolated from the
    # ticks (time is monotonic in rows, so this lands between the lines sent before and after).
    import numpy as np

    rows, times = zip(*ticks, strict=True)
    y = float(np.interp(rec["t"], times, rows))
    (line,) = ax.plot(
        [-0.6, len(chart.lanes) - 0.4],
        [y, y],
        color=HIGHLIGHT_COLOUR,
        linewidth=4,
        alpha=0.85,
        zorder=4.8,
    )
    line.set_gid("highlight")


def _draw_lanes(
    ax: Axes, lanes: list[str], topo: Topology, total_rows: float, header_rows: float
) -> None:
    from matplotlib.patches import Rectangle

    sites = topo.sites()
    for i, name in enumerate(lanes):
        node = topo.nodes.get(name)
        if node is not None:
            colour = SITE_COLOURS[sites.index(node.site) % len(SITE_COLOURS)]
            ax.add_patch(
                Rectangle(
                    (i - 0.5, -header_rows + 0.2),
                    1.0,
                    total_rows + header_rows,
                    facecolor=colour,
                    edgecolor="none",
                    alpha=0.35,
                    zorder=0,
                )
            )
        ax.plot(
            [i, i],
            [-0.8, total_rows + 0.5],
            color="#9a9a9a",
            linewidth=0.8,
            linestyle=(0, (4, 3)),
            zorder=1,
        )
        caption = name
        if node is not None:
            detail = (
                f"{node.kind}, {node.site}"
                if node.kind != "mailserver"
                else f"mail server, {node.site}"
            )
            caption = f"{name}\n{detail}"
        header = ax.text(
            i,
            -1.2,
            caption,
            ha="center",
            va="bottom",
            fontsize=FONT,
            fontweight="bold",
            linespacing=1.2,
            bbox={"boxstyle": "round,pad=0.3", "fc": "white", "ec": "#555555", "lw": 0.8},
            zorder=7,
        )
        header.set_gid("lane")


def _draw_spans(ax: Axes, chart: Chart, x_of: dict[str, float]) -> None:
    """Thin bars on both lanes for the lifetime of each connection."""
    from matplotlib.patches import Rectangle

    by_conn: dict[int, list[float]] = {}
    for arrow in chart.arrows:
        by_conn.setdefault(arrow.conn, []).extend([arrow.y_send, arrow.y_arrive])
    for mark in chart.marks:
        by_conn.setdefault(mark.conn, []).append(mark.y)
    for conn, (client, server, _, _, proto) in chart.spans.items():
        ys = by_conn.get(conn)
        if not ys:
            continue
        colour = _PROTO_COLOUR.get(proto, ERROR_COLOUR)
        for node in (client, server):
            if node not in x_of:
                continue
            ax.add_patch(
                Rectangle(
                    (x_of[node] - 0.025, min(ys) - 0.4),
                    0.05,
                    max(ys) - min(ys) + 0.8,
                    facecolor=colour,
                    edgecolor="none",
                    alpha=0.22,
                    zorder=2,
                )
            )
        if client in x_of:
            ax.text(
                x_of[client],
                min(ys) - 0.45,
                f"conn {conn}",
                ha="center",
                va="bottom",
                fontsize=SMALL_FONT - 1,
                color="#666666",
                zorder=3,
            )


def _draw_break(ax: Axes, gap: _Break, n_lanes: int) -> None:
    import numpy as np
    from matplotlib.patches import Rectangle

    x0, x1 = -0.8, n_lanes - 0.2
    band = Rectangle(
        (x0, gap.y0), x1 - x0, gap.y1 - gap.y0, facecolor="#eeeeee", edgecolor="none", zorder=4
    )
    band.set_gid("gap")
    ax.add_patch(band)
    xs = np.linspace(x0, x1, int((x1 - x0) * 16) + 1)
    wiggle = 0.25 * np.where(np.arange(len(xs)) % 2 == 0, 1.0, -1.0)
    for y in (gap.y0, gap.y1):
        ax.plot(xs, y + wiggle, color="#888888", linewidth=0.8, zorder=4.5)
    ax.text(
        (n_lanes - 1) / 2,
        (gap.y0 + gap.y1) / 2,
        f"… {human_duration(gap.t1 - gap.t0)} later …",
        ha="center",
        va="center",
        fontsize=SMALL_FONT + 0.5,
        style="italic",
        color="#444444",
        zorder=5,
    )


def _draw_arrow(ax: Axes, arrow: Arrow, x_of: dict[str, float]) -> None:
    colour = ERROR_COLOUR if arrow.error else _PROTO_COLOUR[arrow.proto]
    xs, xa = x_of[arrow.src], x_of[arrow.dst]
    ys, ya = arrow.y_send, arrow.y_arrive
    collapsed = arrow.gid.endswith("-data")
    annotation = ax.annotate(
        "",
        xy=(xa, ya),
        xytext=(xs, ys),
        arrowprops={
            "arrowstyle": "-|>",
            "color": colour,
            "linewidth": 3.0 if collapsed else 1.1,
            "linestyle": _PROTO_STYLE[arrow.proto],
            "shrinkA": 0,
            "shrinkB": 0,
            "mutation_scale": 9,
            "alpha": 0.6 if collapsed else 1.0,
        },
        zorder=5,
    )
    annotation.set_gid(arrow.gid)
    # The label sits on the arrow, rotated with it, readable left to right. The angle is taken
    # on screen (limits and figure size are fixed before arrows are drawn).
    (px0, py0), (px1, py1) = ax.transData.transform([(xs, ys), (xa, ya)])
    dx, dy = px1 - px0, py1 - py0
    if dx < 0:
        dx, dy = -dx, -dy
    angle = math.degrees(math.atan2(dy, dx)) if dx else 0.0
    ax.annotate(
        arrow.label,
        ((xs + xa) / 2, (ys + ya) / 2),
        xytext=(0, 1.5),
        textcoords="offset points",
        ha="center",
        va="bottom",
        rotation=angle,
        rotation_mode="anchor",
        fontsize=SMALL_FONT,
        fontweight="bold" if arrow.error or collapsed else "normal",
        color=ERROR_COLOUR if arrow.error else "#111111",
        fontfamily="DejaVu Sans Mono",
        zorder=6,
    )


def _draw_ticks(ax: Axes, ticks: list[tuple[float, float]]) -> None:
    positions: list[float] = []
    labels: list[str] = []
    last = ""
    for y, t in ticks:
        text = clock(t)
        if text == last:
            continue
        positions.append(y)
        labels.append(text)
        last = text
    ax.set_yticks(positions)
    ax.set_yticklabels(labels, fontsize=SMALL_FONT - 0.5, fontfamily="DejaVu Sans Mono")
    ax.set_xticks([])
    ax.tick_params(axis="y", length=2, pad=2)
    ax.set_ylabel("simulated time (hh:mm:ss.mmm), running downward", fontsize=SMALL_FONT)
    for spine in ("top", "right", "bottom"):
        ax.spines[spine].set_visible(False)


def _draw_legend(ax: Axes, chart: Chart) -> None:
    from matplotlib.lines import Line2D

    protos = {a.proto for a in chart.arrows}
    handles = []
    if "smtp" in protos:
        handles.append(Line2D([], [], color=SMTP_COLOUR, linestyle=SMTP_STYLE, label="SMTP line"))
    if "pop3" in protos:
        handles.append(Line2D([], [], color=POP3_COLOUR, linestyle=POP3_STYLE, label="POP3 line"))
    if "http" in protos:
        handles.append(Line2D([], [], color=HTTP_COLOUR, linestyle=HTTP_STYLE, label="HTTP line"))
    if "tcp" in protos:
        handles.append(Line2D([], [], color=TCP_COLOUR, linestyle=TCP_STYLE, label="TCP segment"))
    if any(a.error for a in chart.arrows):
        handles.append(Line2D([], [], color=ERROR_COLOUR, label="error reply (4xx, 5xx, -ERR)"))
    if chart.marks:
        handles.append(
            Line2D(
                [], [], color=ERROR_COLOUR, marker="X", linestyle="none", label="connection failed"
            )
        )
    ax.legend(
        handles=handles,
        loc="lower right",
        bbox_to_anchor=(1.0, 1.0),
        ncol=len(handles),
        fontsize=SMALL_FONT,
        frameon=False,
        borderaxespad=0.1,
        handlelength=2.2,
    )
