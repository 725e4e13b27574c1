"""The message sequence chart: who said what to whom, and when, drawn from the trace.

One vertical lane per node that takes part (order: by site, India left and USA right, user hosts at
the outer ends, mail servers inside; see :meth:`Topology.lane_order`). Time runs downward. Each
protocol line (``smtp.line``, ``pop3.line``, ``http.line``) is a slanted arrow from its sender's
lane at its send time to its receiver's lane at its arrival time, labelled with the command or
reply. SMTP arrows are blue and solid, POP3 arrows green and dashed, HTTP arrows purple and
dash-dotted, 4xx/5xx, ``-ERR`` and HTTP 4xx/5xx replies red, and a connection
that failed (``tcp.fail``) is an X on the client's lane. A thin bar on both lanes spans the
lines of each connection, headed by its id ("conn 2").

What is drawn where (arrival times, the time scale, the grey bands that cut out idle gaps and
count folded connections) is decided by :mod:`mailsim.plot.sequence_model`; this module draws it.
The time of every line, and the end of every box, is written on the left axis, so the real clock
can always be read off.

**Choosing what fits.** A chart is at most ``max_rows`` long (by default :data:`SEQUENCE_MAX_ROWS`,
as ``mailsim run``; a slide as many as it holds) and chooses by what the connections teach
(:mod:`mailsim.plot.sequence_plan`): the refusals, deferrals, bounces, HTTP downloads and the ends
of each run of failed tries first, then the connections that move mail; runs of POP3 checks that
found nothing fold into the grey bands, which say in words what they stand for, and the first band
an outage overlaps names what is down (a link on the way, a server) and when, so failed tries have
their cause on the chart; a connection that does not fit line by line is drawn as a box between its
two lanes, saying what it carried and its decisive reply (``RCPT → 550 5.1.1 …``) or, without one,
its round trips and how long it was open. It fills its room before folding. A note under the chart
says what was left out. With ``group_bursts``, the lines one side sends at one instant (a
multi-line EHLO reply, pipelined MAIL, RCPT and DATA) are one arrow.

**One message's journey.** ``message=ID`` draws only the connections that carried that message
(:mod:`mailsim.plot.sequence_story`): its submission, every try, the relay and the fetch, and
its bounce report's way back; the grey bands that cut out the waits say what it was doing
meanwhile (in a queue, in a mailbox, a link on its way down). ``render_all`` draws such a
journey for a run too busy to chart whole.

**Highlighting one event.** ``highlight=record`` (the step-through view of ``mailsim.teach`` uses
it) puts a yellow glow under the arrow that record drew: its protocol line, the run of data lines
it belongs to, or the handshake or FIN segment. A record that drew no arrow (a queue entry, a
delivery, a link failure) gets a yellow line across the chart at its time instead.
"""

from __future__ import annotations

import math
import re
import textwrap
from collections.abc import Sequence
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
from mailsim.plot.sequence_model import (
    BAND_LINE_ROWS,
    BAND_ROWS,
    Arrow,
    Box,
    Break,
    Chart,
    build_chart,
    fill,
    layout,
    one_way_delays,
    plan_chart,
    set_lanes,
    writes_tick,
)
from mailsim.plot.sequence_plan import is_decisive_sentence, without_verb
from mailsim.plot.sequence_story import message_story, outage_asides
from mailsim.plot.topology import Topology, read_topology

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["SEQUENCE_MAX_ROWS", "one_way_delays", "sequence_diagram"]

Record = dict[str, Any]

#: Rows of a chart at most when the caller does not say (``max_rows``; ``mailsim run`` too):
#: about 0.2 in each, 32 in at most; what does not fit is boxed or folded into the grey bands.
SEQUENCE_MAX_ROWS = 160
#: Vertical room per text row, inches; every line gets at least one row.
ROW_HEIGHT = 0.2
#: Rows of a slide are this much closer, relative to its larger type: a slide has few rows.
SLIDE_ROW_FACTOR = 0.72
#: Rows from row 0 up to the bottom of the lane headers, and their height in ems of the lane
#: font (two lines 1.2 apart, and the box's padding of 0.3 em above and below).
HEADER_BASE_ROWS = 1.2
HEADER_EMS = 3.0
#: Lines above the chart, in ems of their type: the title, and the legend's row below it.
TITLE_LINE_EMS = 1.6
LEGEND_LINE_EMS = 2.4
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
#: Advance of a DejaVu Sans Mono character, in ems (regular and bold alike).
MONO_EM = 0.602
#: A decisive line of a box that is a refusal (drawn red): ``RCPT → 550 …``, ``bounced: 552 …``.
_DECISIVE_ERROR = re.compile(r"→ [45]\d\d|→ -ERR|^deferred:|^bounced:|→ HTTP/\S+ [45]")


def sequence_diagram(
    records: Sequence[Record],
    *,
    message: str | None = None,
    connection: int | None = None,
    window: tuple[float, float] | None = None,
    hide_data: bool | None = None,
    show_tcp: bool = False,
    group_bursts: bool | None = None,
    max_rows: float | str | None = "auto",
    size: str = "default",
    highlight: Record | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Draw the message sequence chart of a trace (see the module docstring for the time scale).

    Args:
        records: trace records (``Recorder.records`` or ``load_events(path)``).
        message: draw only this message's journey (its id as the trace names it,
            ``m260@usa.com``): the connections that submitted, tried to relay, relayed and
            fetched it, and those of its bounce report (:mod:`mailsim.plot.sequence_story`;
            :func:`~mailsim.plot.sequence_story.telling_message` picks a telling one).
        connection: show only this connection id (``conn`` of ``tcp.open``), in full.
        window: show only records with ``t0 <= t <= t1`` (simulated seconds).
        hide_data: collapse the message lines between SMTP's 354 and the final ``.`` (and the
            body of a POP3 RETR/TOP reply) into one arrow labelled ``… N data lines …``.
            Default: when the chart chooses what to draw (below), else not.
        show_tcp: also draw the TCP handshake (SYN, SYN-ACK, ACK) and the FIN as grey arrows.
        group_bursts: draw the lines one side sent at one instant as one arrow. Default: as
            ``hide_data``.
        max_rows: choose what to draw (module docstring) so the chart is at most about this
            many text rows long; by default :data:`SEQUENCE_MAX_ROWS` (as ``mailsim run``), a
            slide as many as it holds; None draws everything (a long chart). A chart of one
            ``connection``, or inside a ``window``, draws all its lines unless ``max_rows`` is
            given.
        size: "default" (as long as the chart needs) or "slide": 16:9 with large type, choosing
            what fits (see :class:`mailsim.plot._style.Look`).
        highlight: a trace record to pick out in yellow (see the module docstring); the glow
            has gid ``highlight``. Its connection is always drawn in full.
        ax: draw into this axes (its figure is returned) instead of a new, suitably sized figure.

    Returns:
        The figure. Each protocol line is one arrow (an Annotation with gid ``smtp-line`` or
        ``pop3-line``; collapsed runs ``smtp-data``/``pop3-data``; TCP ``tcp-segment``), failed
        connections are Line2D markers with gid ``tcp-fail``, grey bands have gid ``gap``,
        connections drawn as boxes are Rectangles with gid ``connection-box``, and the note of
        what was left out is a figure text with gid ``left-out``.

    Raises:
        PlotError: ``message`` or ``connection`` is not in the trace, ``window`` is empty or
            reversed, or ``size`` is unknown.
    """
    look = look_for(size)
    records = list(records)
    topo = read_topology(records)
    story = None
    if message is not None:
        story = message_story(records, message, topo)
        records = story.records(records)
    if window is not None and not window[0] <= window[1]:
        raise PlotError(f"window must be (start, end) with start <= end, got {window!r}")
    if connection is not None and not any(
        r.get("conn") == connection
        for r in records
        if r["type"].startswith(("tcp.", "smtp.", "pop3.", "http."))
    ):
        known = sorted({r["conn"] for r in records if r["type"] == "tcp.open"})
        listed = ", ".join(map(str, known[:20])) + (" ..." if len(known) > 20 else "")
        where = f"message {message}'s journey" if story is not None else "the trace"
        raise PlotError(
            f"connection {connection} does not appear in {where}; known connections: "
            f"{listed or 'none'}"
        )
    if max_rows == "auto":
        # A chart of one connection or of a window was asked for line by line.
        auto = connection is None and window is None
        max_rows = SEQUENCE_MAX_ROWS if auto else None
    elif isinstance(max_rows, str):
        raise PlotError(f"max_rows must be a number of rows or None, got {max_rows!r}")
    choosing = connection is None and (max_rows is not None or (look.slide and ax is None))
    if hide_data is None:
        hide_data = choosing
    if group_bursts is None:
        group_bursts = choosing
    chart = build_chart(
        records,
        topo,
        connection=connection,
        window=window,
        hide_data=hide_data,
        show_tcp=show_tcp,
        group_bursts=group_bursts,
    )
    if story is not None:
        chart.asides = story.asides
    elif connection is None and chart.spans:
        # The grey bands name the outages the connections ran into: a band of failed tries
        # alone does not say why they failed.
        spans = chart.spans.values()
        chart.asides = tuple(
            outage_asides(
                topo,
                [(client, server) for client, server, *_ in spans],
                min(span[2] for span in spans),
                max(span[3] for span in spans),
            )
        )
    row_height = ROW_HEIGHT * look.scale * (SLIDE_ROW_FACTOR if look.slide else 1.0)
    # The lane headers (two lines of bold type in a box) sit inside the axes, above row 0.
    header_rows = HEADER_BASE_ROWS + HEADER_EMS * look.font / 72 / row_height + 0.3
    left, right = 1.25 * look.scale, 0.3
    # Above the axes: the title, and below it the legend, each on a line of its own.
    top = (TITLE_LINE_EMS * look.title + LEGEND_LINE_EMS * look.small) / 72 + 0.1
    bottom = 0.25
    note_room = 0.4 * look.scale  # for the note of what was left out, when there is one
    budget = math.inf if max_rows is None else max_rows
    if look.slide and ax is None:
        fitting = (SLIDE_INCHES[1] - top - bottom - note_room) / row_height - header_rows - 0.5
        budget = min(budget, fitting)
    if connection is None and math.isfinite(budget):
        pinned = highlight.get("conn") if highlight is not None else None
        chart, (breaks, total_rows, ticks) = plan_chart(
            chart, records, topo, budget, pinned, stretch=look.slide and ax is None
        )
    else:
        set_lanes(chart, topo)
        if look.slide and ax is None and math.isfinite(budget):
            breaks, total_rows, ticks = fill(chart, budget)
        else:
            breaks, total_rows, ticks = layout(chart)
    if story is not None:
        title = story.title
        # Those it has no room for are folded: the note counts what the chart draws.
        drawn = {a.conn for a in chart.arrows} | {m.conn for m in chart.marks}
        drawn |= {b.conn for b in chart.boxes}
        chart.note = " ".join(filter(None, (story.note(len(drawn & story.conns)), chart.note)))
    elif connection is None:
        title = _title(records, window)
    else:
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
    # The title sits a legend's line above the axes; the legend takes that line.
    ax.set_title(title, fontsize=look.title, loc="left", pad=LEGEND_LINE_EMS * look.small)
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
    lane_inches = ax.get_position().width * fig.get_size_inches()[0] / (len(chart.lanes) + 0.6)
    for gap in breaks:
        _draw_break(ax, gap, len(chart.lanes), look, lane_inches * (len(chart.lanes) + 0.6))
    for box in chart.boxes:
        _draw_box(ax, box, x_of, look, lane_inches)
    for arrow in chart.arrows:
        _draw_arrow(ax, arrow, x_of, look, lane_inches)
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
            bbox={"boxstyle": "square,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.85},
            zorder=6,
        ).set_gid("tcp-fail-label")
    if highlight is not None:
        _draw_highlight(ax, chart, highlight, x_of, ticks)
    _draw_ticks(ax, ticks, look)
    _draw_legend(ax, chart, look)
    if chart.note:
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


def _title(records: Sequence[Record], window: tuple[float, float] | None) -> str:
    """What the chart is of: the scenario a ``run`` record names, else how many connections
    (in the ``window``) it chose from."""
    for rec in records:
        if rec["type"] == "run" and rec.get("scenario"):
            return f"Message sequence chart of {rec['scenario']}"
    t0, t1 = window if window is not None else (-math.inf, math.inf)
    opened = sum(1 for rec in records if rec["type"] == "tcp.open" and t0 <= rec["t"] <= t1)
    if not opened:
        return "Message sequence chart"
    return f"Message sequence chart of {opened:,} connection{'s' if opened != 1 else ''}"


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
        if not ys or proto == "fail":
            continue  # a failed connect is its mark, which names it
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
        verdict = chart.verdicts.get(conn)
        if verdict and client in x_of and server in x_of:
            # What the lines did not say (the message deferred after a lost connection), in
            # the colour of error replies, under the connection's last line.
            toward = 1 if x_of[server] >= x_of[client] else -1
            ax.text(
                x_of[client] + toward * 0.06,
                max(ys) + 0.3,
                short_text(verdict, 70),
                ha="left" if toward > 0 else "right",
                va="top",
                fontsize=look.small,
                fontweight="bold",
                color=ERROR_COLOUR,
                bbox={"boxstyle": "square,pad=0.1", "fc": "white", "ec": "none"},
                zorder=6,
            ).set_gid("verdict")
        if client in x_of:
            # On the far side of the client's lane from the server: the first line's label,
            # centred between the two lanes, reaches the lane itself when it is long.
            away = -1 if x_of.get(server, x_of[client] + 1) >= x_of[client] else 1
            ax.text(
                x_of[client] + away * 0.05,
                min(ys) - 0.3,
                f"conn {conn}",
                ha="right" if away < 0 else "left",
                va="center",
                fontsize=look.small * 0.85,
                color="#666666",
                zorder=3,
            ).set_gid("connection-label")


def _draw_break(ax: Axes, gap: Break, n_lanes: int, look: Look, band_inches: float) -> None:
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
    # Cut to the band's width (DejaVu Sans averages about 0.55 em a character).
    chars = max(20, int(band_inches * 72 / (look.small * 0.55)) - 2)
    for line in gap.lines:
        decisive = is_decisive_sentence(line)
        folded = ax.text(
            (n_lanes - 1) / 2,
            y,
            short_text(line, chars),
            ha="center",
            va="center",
            fontsize=look.small,
            color=ERROR_COLOUR if decisive else "#555555",
            fontweight="bold" if decisive else "normal",
            zorder=5,
        )
        folded.set_gid("folded")
        y += BAND_LINE_ROWS


def _draw_box(ax: Axes, box: Box, x_of: dict[str, float], look: Look, lane_inches: float) -> None:
    """A whole connection: a box between its two lanes, its label cut to the box's width."""
    from matplotlib.patches import FancyBboxPatch

    xa, xb = sorted((x_of[box.client], x_of[box.server]))
    fontsize = look.small * 0.92
    # DejaVu Sans averages about 0.55 em a character.
    chars = max(12, int((xb - xa - 0.2) * lane_inches * 72 / (fontsize * 0.55)))
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
    # One row a line, from the top; refusals in the colour of error replies. A decisive line
    # too long for the box wraps onto a second row where the box has one (Box.rows).
    rows = max(len(box.label), math.floor(box.y1 - box.y0 - 0.6 + 1e-6))
    lines: list[tuple[str, bool]] = []
    for index, line in enumerate(box.label):
        if index == 0 and len(line) > chars:
            line = without_verb(line)  # the lanes say what it was for
        error = index > 0 and _DECISIVE_ERROR.search(line) is not None
        spare = rows - len(lines) - (len(box.label) - index)
        if index > 0 and not error and spare <= 0:  # no row to wrap onto
            line = _whole_clauses(line, chars)
        parts = textwrap.wrap(line, chars) if index > 0 and spare > 0 else [line]
        if len(parts) > 2:
            parts = [parts[0], " ".join(parts[1:])]
        lines += [(part, error) for part in parts[: 1 + max(spare, 0)]]
    top = (box.y0 + box.y1) / 2 - (len(lines) - 1) / 2
    for index, (line, error) in enumerate(lines):
        text = ax.text(
            (xa + xb) / 2,
            top + index,
            short_text(line, chars),
            ha="center",
            va="center",
            fontsize=fontsize,
            color=ERROR_COLOUR if error else "#111111",
            fontweight="bold" if error else "normal",
            zorder=5,
        )
        text.set_gid("connection-box-label")


def _whole_clauses(line: str, chars: int) -> str:
    """``line`` without its last comma-separated clauses until it fits ``chars``: a box that
    says ``27 round trips`` is better than one that says ``27 round trips, 163 …``."""
    while len(line) > chars and ", " in line:
        line = line.rpartition(", ")[0]
    return line


def _draw_arrow(
    ax: Axes, arrow: Arrow, x_of: dict[str, float], look: Look, lane_inches: float
) -> None:
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
    # The label is level, centred over its arrow and just above it: its lower edge is where
    # the arrow is highest under the text (the end nearer the sender), so the arrow stays
    # whole. Level labels of lines a row apart never cross, as labels turned along arrows
    # slanting opposite ways do when lines come quickly. A monospaced font: its width is
    # MONO_EM a character.
    half = (len(arrow.label) + 0.4) * MONO_EM * look.small / 72 / lane_inches / 2
    middle = (xs + xa) / 2
    dx = xa - xs
    edge = 0.0 if dx == 0 else min(max((middle - math.copysign(half, dx) - xs) / dx, 0.0), 1.0)
    label = ax.annotate(
        arrow.label,
        (middle, ys + edge * (ya - ys)),
        xytext=(0, 1.5 * look.scale),
        textcoords="offset points",
        ha="center",
        va="bottom",
        fontsize=look.small,
        fontweight="bold" if arrow.error or collapsed else "normal",
        color=ERROR_COLOUR if arrow.error else "#111111",
        fontfamily="DejaVu Sans Mono",
        # Opaque, above every arrow: no other line strikes through the text either (arrows a
        # row apart overlap in time, so the one before often passes where a label sits).
        bbox={"boxstyle": "square,pad=0.1", "fc": "white", "ec": "none", "alpha": 1.0},
        zorder=6,
    )
    label.set_gid(f"{arrow.gid}-label")


def _draw_ticks(ax: Axes, ticks: list[tuple[float, float]], look: Look) -> None:
    positions: list[float] = []
    labels: list[str] = []
    last_y, last = -math.inf, ""
    for y, t in ticks:
        text = clock(t)
        if not writes_tick(y, text, last_y, last):
            continue  # the same moment, or too close to the last label to read
        positions.append(y)
        labels.append(text)
        last_y, last = y, text
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
    legend = ax.legend(
        handles=handles,
        loc="lower right",
        bbox_to_anchor=(1.0, 1.0),
        ncol=len(handles),
        fontsize=look.small,
        frameon=False,
        borderaxespad=0.1,
        handlelength=2.2,
    )
    legend.set_gid("legend")
