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

**Choosing what fits.** With ``max_rows`` (``mailsim run`` uses :data:`mailsim.plot.
SEQUENCE_MAX_ROWS`) or at slide size, the chart chooses by what the connections carry
(:mod:`mailsim.plot.sequence_plan`): connections that move mail first, then the failed tries of
the story; runs of POP3 checks that found nothing fold into the grey bands, which say in words
what they stand for; a connection that does not fit line by line is drawn as a box between its
two lanes, saying what it carried. A note under the chart says what was left out. With
``group_bursts``, the lines one side sends at one instant (a multi-line EHLO reply, pipelined
MAIL, RCPT and DATA) are one arrow.

**Highlighting one event.** ``highlight=record`` (the step-through view of ``mailsim.teach`` uses
it) puts a yellow glow under the arrow that record drew: its protocol line, the run of data lines
it belongs to, or the handshake or FIN segment. A record that drew no arrow (a queue entry, a
delivery, a link failure) gets a yellow line across the chart at its time instead.
"""

from __future__ import annotations

import bisect
import itertools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mailsim.plot._style import (
    ERROR_COLOUR,
    HTTP_COLOUR,
    HTTP_STYLE,
    POP3_COLOUR,
    POP3_STYLE,
    SITE_COLOURS,
    SLIDE_INCHES,
    SMTP_COLOUR,
    SMTP_STYLE,
    TCP_COLOUR,
    TCP_STYLE,
    Look,
    PlotError,
    clock,
    empty_note,
    human_duration,
    look_for,
    new_figure,
    short_text,
)
from mailsim.plot.sequence_plan import (
    BOX,
    FOLDED,
    FULL,
    Plan,
    box_label,
    estimate,
    fold_key,
    sentence,
    steps,
)
from mailsim.plot.topology import Topology, read_topology
from mailsim.trace.connections import Connection, connections

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

Record = dict[str, Any]

#: Vertical room per text row, inches; every line gets at least one row.
ROW_HEIGHT = 0.2
#: Average rows per line the time scale aims at.
ROWS_PER_LINE = 1.6
#: Rows of a slide are this much closer, relative to its larger type: a slide has few rows.
SLIDE_ROW_FACTOR = 0.78
#: An idle gap longer than this many rows (at the chosen scale) is cut out.
BREAK_AFTER_ROWS = 10.0
#: The longest one-way flight is drawn over at most this many rows.
MAX_FLIGHT_ROWS = 3.5
#: (rows per line, rows of the longest flight) tried in turn before a chart that does not fit
#: draws less: lines closer together, and flatter arrows so that their labels stay apart.
SQUEEZE = ((ROWS_PER_LINE, MAX_FLIGHT_ROWS), (1.25, 2.5), (1.0, 1.8), (0.8, 1.4))
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
class Box:
    """A whole connection drawn as one box between its two lanes (``sequence_plan.BOX``)."""

    conn: int
    client: str
    server: str
    t0: float
    t1: float
    label: str
    proto: str
    y0: float = 0.0
    y1: float = 0.0


@dataclass
class Fold:
    """A connection that is not drawn but counted in the band at its time."""

    t: float
    connection: Connection


@dataclass
class Chart:
    """Everything the chart shows, in time order, before layout."""

    arrows: list[Arrow] = field(default_factory=list)
    marks: list[Mark] = field(default_factory=list)
    boxes: list[Box] = field(default_factory=list)
    folds: list[Fold] = field(default_factory=list)
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
    group_bursts: bool,
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
    if group_bursts:
        chart.arrows = _group_bursts(chart.arrows)
    return chart


def _set_lanes(chart: Chart, topo: Topology) -> None:
    names: list[str] = []
    for arrow in chart.arrows:
        names += [arrow.src, arrow.dst]
    for mark in chart.marks:
        names.append(mark.node)
        _, server, *_ = chart.spans[mark.conn]
        names.append(server)
    for box in chart.boxes:
        names += [box.client, box.server]
    chart.lanes = topo.lane_order(names)


def _group_bursts(arrows: list[Arrow]) -> list[Arrow]:
    """Join the lines one side of a connection sent at one instant into one arrow.

    A multi-line reply (``250-india.com`` ... ``250 DSN``) becomes ``250-india.com … (7 lines)``;
    pipelined commands (RFC 2920) become ``MAIL FROM:<...> · RCPT TO:<...> · DATA``. Runs of
    collapsed data lines stay apart, as do error replies from the lines before them.
    """
    grouped: list[Arrow] = []
    last: dict[int, Arrow] = {}
    members: dict[int, list[str]] = {}
    for arrow in arrows:
        previous = last.get(arrow.conn)
        joinable = (
            previous is not None
            and previous.gid.endswith("-line")
            and arrow.gid.endswith("-line")
            and previous.src == arrow.src
            and math.isclose(previous.t_send, arrow.t_send, abs_tol=1e-9)
            and previous.error == arrow.error
        )
        if previous is not None and joinable:
            previous.count += 1
            previous.t_arrive = max(previous.t_arrive, arrow.t_arrive)
            members[id(previous)].append(arrow.label)
            continue
        grouped.append(arrow)
        last[arrow.conn] = arrow
        members[id(arrow)] = [arrow.label]
    for arrow in grouped:
        labels = members[id(arrow)]
        if len(labels) == 1:
            continue
        if (
            all(_REPLY_CODE.match(label + " ") for label in labels)
            and len({label[:3] for label in labels}) == 1
        ):
            arrow.label = f"{short_text(labels[0], LABEL_CHARS - 12)} … ({len(labels)} lines)"
        elif _REPLY_CODE.match(labels[0] + " "):
            # Replies to pipelined commands: the codes, then the last reply in full.
            codes = [" ".join(label.split(" ")[:2]) for label in labels[:-1]]
            arrow.label = short_text(" · ".join([*codes, labels[-1]]), LABEL_CHARS)
        else:
            # Pipelined commands: the first in full (without ESMTP parameters), then verbs.
            first = re.sub(r"(<[^>]*>) .*$", r"\1", labels[0])
            verbs = [label.split(":", 1)[0] for label in labels[1:]]
            arrow.label = short_text(" · ".join([first, *verbs]), LABEL_CHARS)
    return grouped


def _connection_costs(chart: Chart) -> dict[int, float]:
    """Rows each connection takes in full: its arrows, and a cut-out gap for a failed try."""
    costs: dict[int, float] = {}
    for arrow in chart.arrows:
        costs[arrow.conn] = costs.get(arrow.conn, 0.0) + ROWS_PER_LINE
    for mark in chart.marks:
        costs[mark.conn] = costs.get(mark.conn, 0.0) + 4.0
    return costs


def _apply(chart: Chart, plan: Plan, found: dict[int, Connection]) -> Chart:
    """The chart as ``plan`` draws it: arrows and marks of FULL connections, boxes, folds."""
    full = set(plan.at(FULL))
    boxes = []
    for conn in plan.at(BOX):
        connection = found[conn]
        boxes.append(
            Box(
                conn,
                connection.client,
                connection.server,
                connection.opened,
                connection.end,
                box_label(connection),
                connection.protocol,
            )
        )
    folds = [Fold(found[conn].opened, found[conn]) for conn in plan.at(FOLDED)]
    return Chart(
        arrows=[a for a in chart.arrows if a.conn in full],
        marks=[m for m in chart.marks if m.conn in full],
        boxes=boxes,
        folds=sorted(folds, key=lambda f: f.t),
        spans={c: span for c, span in chart.spans.items() if c in full},
        note=plan.note,
    )


@dataclass
class _Break:
    """A grey band between rows ``y0`` and ``y1``: a cut-out idle gap standing for ``t1 - t0``
    (``idle``), or a place where folded connections happened; ``lines`` says what they were."""

    y0: float
    y1: float
    t0: float
    t1: float
    idle: bool = True
    lines: list[str] = field(default_factory=list)


#: Rows of a band's first line (the gap's length), and of each sentence below it.
BAND_ROWS = 1.8
BAND_LINE_ROWS = 1.0
#: Rows kept free above a band (for labels of what is still in flight) and below it (for the
#: "conn N" label of what comes next).
BAND_ABOVE = 0.7
BAND_BELOW = 1.0
#: A box is at least this many rows high, to hold its label; while only boxes are open, the
#: rows advance this much from one box's start or end to the next.
BOX_MIN_ROWS = 2.0
BOX_STEP_ROWS = 0.5


#: Sentences a band holds at most; the rest are counted in one last line.
BAND_MAX_LINES = 4


def _sentences(folds: list[Fold]) -> list[str]:
    """The folded connections of one band, counted together by kind, in order of first time."""
    groups: dict[tuple[str, ...], list[Connection]] = {}
    for fold in folds:
        groups.setdefault(fold_key(fold.connection), []).append(fold.connection)
    lines = [sentence(group) for group in groups.values()]
    if len(lines) > BAND_MAX_LINES:
        rest = sum(len(group) for group in list(groups.values())[BAND_MAX_LINES - 1 :])
        lines = [*lines[: BAND_MAX_LINES - 1], f"… and {rest:,} more connections"]
    return lines


def _layout(
    chart: Chart, rows_per_line: float = ROWS_PER_LINE, max_flight_rows: float = MAX_FLIGHT_ROWS
) -> tuple[list[_Break], float, list[tuple[float, float]]]:
    """Give every arrow, mark and box its rows; returns the bands, the total rows and the ticks.

    The rows of an anchor (a send, a mark, a box's start or end) follow the previous one by
    ``dt * scale`` rows, at least one row, or by a band when ``dt`` is an idle gap (module
    docstring) or folded connections happened in between.
    """
    anchors: list[tuple[float, int, Any]] = []
    for index, arrow in enumerate(chart.arrows):
        anchors.append((arrow.t_send, index, arrow))
    offset = len(chart.arrows)
    for index, mark in enumerate(chart.marks):
        anchors.append((mark.t, offset + index, mark))
    offset += len(chart.marks)
    for index, box in enumerate(chart.boxes):
        anchors.append((box.t0, offset + 2 * index, ("start", box)))
        anchors.append((box.t1, offset + 2 * index + 1, ("end", box)))
    anchors.sort(key=lambda a: (a[0], a[1]))
    if not anchors:
        return [], 0.0, []
    times = [a[0] for a in anchors]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    flights = [a.t_arrive - a.t_send for a in chart.arrows] or [0.0]
    max_flight = max(flights)
    # However few rows the chart has, a wait much longer than any flight or any boxed
    # connection is idle (a chart of boxes has no flights to go by).
    idle_cap = max(3 * max_flight, 3 * max([b.t1 - b.t0 for b in chart.boxes] + [0.0]), 5.0)
    # Find the scale: rows per second such that the active (non-idle) time fills the target
    # number of rows; a gap is idle when it would take more than BREAK_AFTER_ROWS rows. Iterate,
    # since the scale decides which gaps are idle and the idle gaps decide the scale.
    target = rows_per_line * len(anchors)
    scale = target / max(sum(gaps), 1e-9)
    for _ in range(12):
        limit = min(max(BREAK_AFTER_ROWS / scale, 3 * max_flight), idle_cap)
        active = sum(g for g in gaps if g <= limit)
        new_scale = target / active if active > 0 else scale
        # Never stretch so much that the longest flight fills more than MAX_FLIGHT_ROWS rows (a
        # slow intercontinental dialogue next to fast LAN sessions would take all the room).
        if max_flight > 0:
            new_scale = min(new_scale, max_flight_rows / max_flight)
        if math.isclose(new_scale, scale, rel_tol=1e-6):
            break
        scale = new_scale
    limit = min(max(BREAK_AFTER_ROWS / scale, 3 * max_flight), idle_cap)
    breaks: list[_Break] = []
    ticks: list[tuple[float, float]] = []
    folds = list(chart.folds)
    y = 0.0
    lowest = 0.0  # the lowest row anything drawn so far reaches

    def band(start: float, t0: float, t1: float, idle: bool, folded: list[Fold]) -> float:
        lines = _sentences(folded)
        height = (BAND_ROWS if idle else 0.6) + BAND_LINE_ROWS * len(lines)
        breaks.append(_Break(start, start + height, t0, t1, idle, lines))
        return start + height

    # While only boxes are open, time inside them is not to scale: a box is as high as its
    # label, so a chart of boxes shows how many connections there were in a few rows.
    by_conn: dict[int, list[float]] = {}
    for arrow in chart.arrows:
        by_conn.setdefault(arrow.conn, []).extend((arrow.t_send, arrow.t_arrive))
    talking: list[list[float]] = []  # merged, sorted spans of the connections drawn in full
    for a, b in sorted((min(ts), max(ts)) for ts in by_conn.values()):
        if talking and a <= talking[-1][1]:
            talking[-1][1] = max(talking[-1][1], b)
        else:
            talking.append([a, b])
    starts = [span[0] for span in talking]

    def only_boxes(t0: float, t1: float) -> bool:
        index = bisect.bisect_left(starts, t1) - 1  # the last span starting before t1
        return index < 0 or talking[index][1] <= t0

    previous_t: float | None = None
    open_boxes = 0
    for t, _, item in anchors:
        # Folded connections wait for a band until no box is open, so no band cuts through one.
        folded = [f for f in folds if f.t < t] if not open_boxes else []
        folds = folds[len(folded) :]
        if previous_t is None:
            if folded:  # what happened before the first thing drawn
                y = band(-0.4, folded[0].t, t, False, folded) + BAND_BELOW
        else:
            dt = t - previous_t
            if dt > limit or folded:
                # The band starts below everything still in flight and leaves a row after it
                # for the connection labels. A band for folded connections cuts the time it
                # covers out, too, so it says how long that was unless it was a moment.
                start = max(y, lowest) + BAND_ABOVE
                cut = dt > limit or dt > 3 * max_flight + 1.0
                y = band(start, previous_t, t, cut, folded) + BAND_BELOW
            elif (open_boxes or isinstance(item, tuple)) and only_boxes(previous_t, t):
                y += BOX_STEP_ROWS
            else:
                y += max(dt * scale, 1.0)
        if isinstance(item, Arrow):
            item.y_send = y
            item.y_arrive = y + (item.t_arrive - item.t_send) * scale
            lowest = max(lowest, item.y_arrive)
        elif isinstance(item, Mark):
            item.y = y
            lowest = max(lowest, y)
        else:
            end, box = item
            if end == "start":
                box.y0 = y
                open_boxes += 1
            else:
                open_boxes -= 1
                y = max(y, box.y0 + BOX_MIN_ROWS)
                box.y1 = y
                lowest = max(lowest, y)
        ticks.append((y, t))
        previous_t = t
    if folds:  # what happened after the last thing drawn
        band(max(y, lowest) + BAND_ABOVE, folds[0].t, folds[-1].t, False, folds)
    ends = [y] + [a.y_arrive for a in chart.arrows] + [b.y1 for b in chart.boxes]
    total = max(ends + [gap.y1 for gap in breaks]) + 1.0
    return breaks, total, ticks


def sequence_diagram(
    records: Sequence[Record],
    *,
    connection: int | None = None,
    window: tuple[float, float] | None = None,
    hide_data: bool = False,
    show_tcp: bool = False,
    group_bursts: bool = False,
    max_rows: float | None = None,
    size: str = "default",
    highlight: Record | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Draw the message sequence chart of a trace (see the module docstring for the time scale).

    Args:
        records: trace records (``Recorder.records`` or ``load_events(path)``).
        connection: show only this connection id (``conn`` of ``tcp.open``), in full.
        window: show only records with ``t0 <= t <= t1`` (simulated seconds).
        hide_data: collapse the message lines between SMTP's 354 and the final ``.`` (and the
            body of a POP3 RETR/TOP reply) into one arrow labelled ``… N data lines …``.
        show_tcp: also draw the TCP handshake (SYN, SYN-ACK, ACK) and the FIN as grey arrows.
        group_bursts: draw the lines one side sent at one instant as one arrow.
        max_rows: choose what to draw (module docstring) so the chart is at most about this
            many text rows long; ``render_all`` uses :data:`mailsim.plot.SEQUENCE_MAX_ROWS`.
            None draws everything, unless ``size`` is "slide".
        size: "default" (as long as the chart needs) or "slide": 16:9 with large type, choosing
            what fits (see :class:`mailsim.plot._style.Look`).
        highlight: a trace record to pick out in yellow (see the module docstring); the glow
            has gid ``highlight``.
        ax: draw into this axes (its figure is returned) instead of a new, suitably sized figure.

    Returns:
        The figure. Each protocol line is one arrow (an Annotation with gid ``smtp-line`` or
        ``pop3-line``; collapsed runs ``smtp-data``/``pop3-data``; TCP ``tcp-segment``), failed
        connections are Line2D markers with gid ``tcp-fail``, grey bands have gid ``gap``,
        connections drawn as boxes are Rectangles with gid ``connection-box``, and the note of
        what was left out is a figure text with gid ``left-out``.

    Raises:
        PlotError: ``connection`` is not in the trace, ``window`` is empty or reversed, or
            ``size`` is unknown.
    """
    look = look_for(size)
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
        group_bursts=group_bursts,
    )
    row_height = ROW_HEIGHT * look.scale * (SLIDE_ROW_FACTOR if look.slide else 1.0)
    header_rows = 3.2
    left, right, top = 1.25 * look.scale, 0.3, 0.55 * look.scale
    bottom = 0.25
    note_room = 0.4 * look.scale  # for the note of what was left out, when there is one
    budget = math.inf if max_rows is None else max_rows
    if look.slide and ax is None:
        fitting = (SLIDE_INCHES[1] - top - bottom - note_room) / row_height - header_rows - 0.5
        budget = min(budget, fitting)
    if connection is None and math.isfinite(budget):
        chart, (breaks, total_rows, ticks) = _choose(chart, records, topo, budget)
    else:
        _set_lanes(chart, topo)
        breaks, total_rows, ticks = _layout(chart)
    title = "Message sequence chart"
    if connection is not None:
        title += f" — connection {connection}"
    if window is not None:
        title += f" — {clock(window[0])} to {clock(window[1])}"
    n_lanes = max(len(chart.lanes), 2)
    if chart.note:
        bottom += note_room
    if ax is None:
        if look.slide:
            fig = new_figure(*SLIDE_INCHES)
        else:
            longest = max([len(a.label) for a in chart.arrows] + [20])
            lane_gap = min(max(2.0, 0.066 * longest + 0.4), 3.8)
            # The x range is -0.8 .. n - 0.2 lane units: n + 0.6 units of lane_gap inches each.
            width = left + right + lane_gap * (n_lanes + 0.6)
            height = top + bottom + (total_rows + header_rows) * row_height
            fig = new_figure(width, max(height, 3.0))
        fw, fh = fig.get_size_inches()
        ax = fig.add_axes(
            (left / fw, bottom / fh, 1 - (left + right) / fw, 1 - (top + bottom) / fh)
        )
        if look.slide:
            # Keep rows their size; a short chart leaves room at the bottom, never stretches.
            total_rows = max(total_rows, (fh - top - bottom) / row_height - header_rows - 0.5)
    else:
        fig = ax.get_figure()  # type: ignore[assignment]
    ax.set_title(title, fontsize=look.title, loc="left")
    if not chart.arrows and not chart.marks and not chart.boxes:
        empty_note(
            ax,
            "no SMTP or POP3 lines in the trace"
            + (" for this selection" if connection or window else ""),
        )
        return fig
    x_of = {name: float(i) for i, name in enumerate(chart.lanes)}
    ax.set_xlim(-0.8, len(chart.lanes) - 0.2)
    ax.set_ylim(total_rows + 0.5, -header_rows)
    _draw_lanes(ax, chart.lanes, topo, total_rows, header_rows, look)
    _draw_spans(ax, chart, x_of, look)
    for gap in breaks:
        _draw_break(ax, gap, len(chart.lanes), look)
    for box in chart.boxes:
        _draw_box(ax, box, x_of, look)
    for arrow in chart.arrows:
        _draw_arrow(ax, arrow, x_of, look)
    for mark in chart.marks:
        (cross,) = ax.plot(
            [x_of[mark.node]],
            [mark.y],
            marker="X",
            markersize=11 * look.scale,
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
            xytext=(toward * 9 * look.scale, 0),
            textcoords="offset points",
            ha="left" if toward > 0 else "right",
            va="center",
            fontsize=look.small,
            color=ERROR_COLOUR,
            zorder=6,
        )
    if highlight is not None:
        _draw_highlight(ax, chart, highlight, x_of, ticks)
    _draw_ticks(ax, ticks, look)
    _draw_legend(ax, chart, look)
    if chart.note:
        import textwrap

        width_chars = int(fig.get_size_inches()[0] * 72 / (look.small * 0.55))
        note = fig.text(
            0.01,
            0.01,
            textwrap.fill(chart.note, width_chars),
            fontsize=look.small,
            color="#333333",
            va="bottom",
            ha="left",
        )
        note.set_gid("left-out")
    return fig


def _choose(
    chart: Chart, records: Sequence[Record], topo: Topology, budget: float
) -> tuple[Chart, tuple[list[_Break], float, list[tuple[float, float]]]]:
    """The richest plan (sequence_plan.steps) whose layout is at most ``budget`` rows long."""
    drawn = {a.conn for a in chart.arrows} | {m.conn for m in chart.marks}
    found = {conn: c for conn, c in connections(records).items() if conn in drawn}
    costs = _connection_costs(chart)
    arrows: dict[int, int] = {}
    for arrow in chart.arrows:
        arrows[arrow.conn] = arrows.get(arrow.conn, 0) + 1
    chosen: Chart | None = None
    layout: tuple[list[_Break], float, list[tuple[float, float]]] = ([], 0.0, [])
    fits = False
    plans = list(steps(found, costs))
    for index, plan in enumerate(plans):
        if index < len(plans) - 1 and estimate(plan, found, arrows) > budget:
            continue  # cannot fit however tightly drawn: do not lay it out
        chosen = _apply(chart, plan, found)
        _set_lanes(chosen, topo)
        # Before drawing less, try drawing it tighter: time runs slower, lines stay a row apart.
        for rows_per_line, flight_rows in SQUEEZE:
            layout = _layout(chosen, rows_per_line, flight_rows)
            fits = layout[1] <= budget
            if fits:
                break
        if fits:
            break
    if chosen is None:  # nothing to choose from
        _set_lanes(chart, topo)
        return chart, _layout(chart)
    return chosen, layout


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
    ax: Axes, lanes: list[str], topo: Topology, total_rows: float, header_rows: float, look: Look
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
            linewidth=look.line(0.8),
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
            fontsize=look.font,
            fontweight="bold",
            linespacing=1.2,
            bbox={"boxstyle": "round,pad=0.3", "fc": "white", "ec": "#555555", "lw": 0.8},
            zorder=7,
        )
        header.set_gid("lane")


def _draw_spans(ax: Axes, chart: Chart, x_of: dict[str, float], look: Look) -> None:
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
                fontsize=look.small * 0.85,
                color="#666666",
                zorder=3,
            )


def _draw_break(ax: Axes, gap: _Break, n_lanes: int, look: Look) -> None:
    import numpy as np
    from matplotlib.patches import Rectangle

    x0, x1 = -0.8, n_lanes - 0.2
    band = Rectangle(
        (x0, gap.y0), x1 - x0, gap.y1 - gap.y0, facecolor="#eeeeee", edgecolor="none", zorder=4
    )
    band.set_gid("gap")
    ax.add_patch(band)
    edges = (gap.y0, gap.y1) if gap.idle else ()
    xs = np.linspace(x0, x1, int((x1 - x0) * 16) + 1)
    wiggle = 0.25 * np.where(np.arange(len(xs)) % 2 == 0, 1.0, -1.0)
    for y in edges:
        ax.plot(xs, y + wiggle, color="#888888", linewidth=look.line(0.8), zorder=4.5)
    y = gap.y0 + (BAND_ROWS / 2 if gap.idle else 0.3 + BAND_LINE_ROWS / 2)
    if gap.idle:
        ax.text(
            (n_lanes - 1) / 2,
            y,
            f"… {human_duration(gap.t1 - gap.t0)} later …",
            ha="center",
            va="center",
            fontsize=look.small * 1.05,
            style="italic",
            color="#444444",
            zorder=5,
        )
        y += BAND_ROWS / 2 + BAND_LINE_ROWS / 2 - 0.4
    for line in gap.lines:
        folded = ax.text(
            (n_lanes - 1) / 2,
            y,
            line,
            ha="center",
            va="center",
            fontsize=look.small,
            color="#555555",
            zorder=5,
        )
        folded.set_gid("folded")
        y += BAND_LINE_ROWS


def _draw_box(ax: Axes, box: Box, x_of: dict[str, float], look: Look) -> None:
    """A whole connection: a box between its two lanes, as high as the connection lasted."""
    from matplotlib.patches import FancyBboxPatch

    xa, xb = sorted((x_of[box.client], x_of[box.server]))
    colour = _PROTO_COLOUR.get(box.proto, SMTP_COLOUR)
    patch = FancyBboxPatch(
        (xa + 0.06, box.y0 - 0.2),
        xb - xa - 0.12,
        box.y1 - box.y0 + 0.4,
        boxstyle="round,pad=0,rounding_size=0.08",
        facecolor=colour,
        edgecolor=colour,
        alpha=0.16,
        linewidth=look.line(1.2),
        zorder=3,
    )
    patch.set_gid("connection-box")
    ax.add_patch(patch)
    ax.text(
        (xa + xb) / 2,
        (box.y0 + box.y1) / 2,
        box.label,
        ha="center",
        va="center",
        fontsize=look.small * 0.92,
        color="#111111",
        linespacing=1.15,
        zorder=5,
    )


def _draw_arrow(ax: Axes, arrow: Arrow, x_of: dict[str, float], look: Look) -> None:
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
            "linewidth": look.line(3.0 if collapsed else 1.1),
            "linestyle": _PROTO_STYLE[arrow.proto],
            "shrinkA": 0,
            "shrinkB": 0,
            "mutation_scale": 9 * look.scale,
            "alpha": 0.6 if collapsed else 1.0,
        },
        zorder=5,
    )
    annotation.set_gid(arrow.gid)
    # The label sits level on the middle of its arrow: level labels of lines one row apart never
    # cross, as labels turned along arrows slanting opposite ways do when lines come quickly.
    label = ax.annotate(
        arrow.label,
        ((xs + xa) / 2, (ys + ya) / 2),
        xytext=(0, 1.0 * look.scale),
        textcoords="offset points",
        ha="center",
        va="bottom",
        fontsize=look.small,
        fontweight="bold" if arrow.error or collapsed else "normal",
        color=ERROR_COLOUR if arrow.error else "#111111",
        fontfamily="DejaVu Sans Mono",
        bbox={"boxstyle": "square,pad=0.05", "fc": "white", "ec": "none", "alpha": 0.7},
        zorder=6,
    )
    label.set_gid(f"{arrow.gid}-label")


def _draw_ticks(ax: Axes, ticks: list[tuple[float, float]], look: Look) -> None:
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
    ax.set_yticklabels(labels, fontsize=look.small * 0.93, fontfamily="DejaVu Sans Mono")
    ax.set_xticks([])
    ax.tick_params(axis="y", length=2, pad=2)
    ax.set_ylabel("simulated time (hh:mm:ss.mmm), running downward", fontsize=look.small)
    for spine in ("top", "right", "bottom"):
        ax.spines[spine].set_visible(False)


def _draw_legend(ax: Axes, chart: Chart, look: Look) -> None:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    protos = {a.proto for a in chart.arrows}
    handles: list[Any] = []
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
    if chart.boxes:
        handles.append(
            Patch(facecolor=SMTP_COLOUR, alpha=0.25, label="a whole connection, not line by line")
        )
    for handle in handles:
        if isinstance(handle, Line2D):
            handle.set_linewidth(look.line(1.5))
            handle.set_markersize(7 * look.scale)
    ax.legend(
        handles=handles,
        loc="lower right",
        bbox_to_anchor=(1.0, 1.0),
        ncol=len(handles),
        fontsize=look.small,
        frameon=False,
        borderaxespad=0.1,
        handlelength=2.2,
    )
