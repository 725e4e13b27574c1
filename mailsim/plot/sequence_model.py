"""The message sequence chart's model: what it shows and where, read from the trace, not drawn.

:func:`build_chart` turns the trace into arrows (one per protocol line, ``smtp.line``,
``pop3.line``, ``http.line``; optionally the TCP handshake and FIN), marks (a failed connect,
``tcp.fail``) and connection spans; :func:`plan_chart` chooses what fits; :func:`layout` gives
each its rows. :mod:`mailsim.plot.sequence` draws the result.

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
zig-zag edge that says how long the gap was. DNS queries are not drawn.

**Choosing what fits.** :func:`plan_chart` asks :func:`mailsim.plot.sequence_plan.choose` for
the plan whose layout fills at most the rows it has: the connections that teach most in full,
the next as boxes between their two lanes, the rest folded into the grey bands, which say in
words what they stand for. With ``group_bursts``, the lines one side sends at one instant (a
multi-line EHLO reply, pipelined MAIL, RCPT and DATA) are one arrow.
"""

from __future__ import annotations

import bisect
import itertools
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from mailsim.plot._style import clock, short_text
from mailsim.plot.sequence_plan import (
    BOX,
    FOLDED,
    FULL,
    Plan,
    Story,
    box_label,
    choose,
    estimate,
    fold_key,
    sentence,
    stories,
)
from mailsim.plot.topology import Topology
from mailsim.trace.connections import Connection, connections

Record = dict[str, Any]

#: Average rows per line the time scale aims at.
ROWS_PER_LINE = 1.6
#: An idle gap longer than this many rows (at the chosen scale) is cut out.
BREAK_AFTER_ROWS = 10.0
#: The longest one-way flight is drawn over at most this many rows.
MAX_FLIGHT_ROWS = 3.5
#: (rows per line, rows of the longest flight, sentences a band holds) tried in turn before a
#: chart that does not fit draws less: lines closer together, flatter arrows so that their
#: labels stay apart, and grey bands that count more of what they stand for in one line.
SQUEEZE = (
    (ROWS_PER_LINE, MAX_FLIGHT_ROWS, 4),
    (1.25, 2.5, 4),
    (1.0, 1.8, 3),
    (0.8, 1.4, 2),
)
#: How much further apart than usual a slide's lines may be drawn to use its height (tried
#: largest first, down to 1: the usual spacing); flights grow by at most MAX_FLIGHT_STRETCH,
#: so that the arrows do not get steep.
STRETCH = (2.2, 1.8, 1.5, 1.3, 1.2, 1.1, 1.0)
MAX_FLIGHT_STRETCH = 1.4
#: What is left of a slide's height after that is shared out evenly, up to this factor.
MAX_EVEN_STRETCH = 1.5
#: Labels are cut to this many characters.
LABEL_CHARS = 52

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
    label: list[str]
    proto: str
    y0: float = 0.0
    y1: float = 0.0

    @property
    def rows(self) -> float:
        """Rows it takes at least: one per line of its label (two for a decisive line too long
        for one line of a box one lane wide), and a little room."""
        long = sum(1 for line in self.label[1:] if len(line) > BOX_LINE_CHARS)
        return max(BOX_MIN_ROWS, len(self.label) + long + 0.6)


@dataclass
class Fold:
    """A connection that is not drawn but counted in the band at its time."""

    t: float
    connection: Connection
    story: Story | None = None
    #: Folds with the same key are counted in one sentence (:func:`sequence_plan.fold_key`).
    key: tuple[str, ...] = ()


class Folds:
    """The folded connections in time order: every candidate, less those a plan draws.

    The planner tries hundreds of plans of a busy day's thousands of connections; each trial
    shares the one sorted list and names only the few it draws, so a trial's layout costs what
    it draws, not what it folds.
    """

    def __init__(self, every: Sequence[Fold] = (), drawn: frozenset[int] = frozenset()):
        self.every = list(every)
        self.times = [fold.t for fold in self.every]
        self.drawn = drawn

    def without(self, drawn: Iterable[int]) -> Folds:
        """The same candidates, less ``drawn``."""
        other = Folds.__new__(Folds)
        other.every, other.times, other.drawn = self.every, self.times, frozenset(drawn)
        return other

    def before(self, t: float, lo: int) -> int:
        """The index past the last candidate from ``lo`` on that happened before ``t``."""
        return bisect.bisect_left(self.times, t, lo)

    def between(self, lo: int, hi: int) -> list[Fold]:
        """The folded connections among candidates ``lo`` to ``hi``."""
        return [f for f in self.every[lo:hi] if f.connection.conn not in self.drawn]

    def span(self, lo: int, hi: int) -> tuple[float, float] | None:
        """When the first and the last folded connection among candidates ``lo`` to ``hi``
        opened; None when all of them are drawn."""
        every, drawn = self.every, self.drawn
        first = next((i for i in range(lo, hi) if every[i].connection.conn not in drawn), None)
        if first is None:
            return None
        last = next(
            i for i in range(hi - 1, first - 1, -1) if every[i].connection.conn not in drawn
        )
        return self.times[first], self.times[last]

    def lines_between(self, lo: int, hi: int, most: int) -> int:
        """How many sentences a band of candidates ``lo`` to ``hi`` has (:func:`_sentences`),
        counted without writing them: one a kind, at most ``most``."""
        keys: set[tuple[str, ...]] = set()
        for i in range(lo, hi):
            fold = self.every[i]
            if fold.connection.conn not in self.drawn:
                keys.add(fold.key)
                if len(keys) >= most:
                    break
        return len(keys)


@dataclass(frozen=True)
class Aside:
    """A line for the grey band of an idle gap between ``t0`` and ``t1``: what a message is
    doing meanwhile (``waits in india-mail's queue for its next try``), written in each band it
    mostly covers, or, ``once``, only in the first band it overlaps (a link outage)."""

    t0: float
    t1: float
    text: str
    once: bool = False


@dataclass
class Chart:
    """Everything the chart shows, in time order, before layout."""

    arrows: list[Arrow] = field(default_factory=list)
    marks: list[Mark] = field(default_factory=list)
    boxes: list[Box] = field(default_factory=list)
    folds: Folds = field(default_factory=Folds)
    #: conn -> (client, server, open time, end time, protocol)
    spans: dict[int, tuple[str, str, float, float, str]] = field(default_factory=dict)
    lanes: list[str] = field(default_factory=list)
    note: str = ""
    #: conn -> what became of its message when no line of a connection drawn in full said it
    #: (``deferred: 451 4.4.2 …`` for a connection lost after the final dot).
    verdicts: dict[int, str] = field(default_factory=dict)
    #: Said in the bands of idle gaps (a message's story, :mod:`mailsim.plot.sequence_story`).
    asides: tuple[Aside, ...] = ()


def _is_error(proto: str, side: str, line: str) -> bool:
    if side != "S":
        return False
    if proto == "pop3":
        return line.startswith("-ERR")
    if proto == "http":
        return line.startswith("HTTP/") and line[9:10] in ("4", "5")
    match = _REPLY_CODE.match(line + " ")
    return match is not None and str(match.group(1)) in "45"


class _Latencies:
    """Path delays from the topology, each worked out once per pair of nodes and state of the
    network (what is down): a busy day's thousand failed connects share a handful of routes."""

    def __init__(self, topo: Topology) -> None:
        self.topo = topo
        self.known: dict[tuple[Any, ...], float | None] = {}

    def __call__(self, a: str, b: str, t: float) -> float | None:
        links, nodes, services = self.topo.down_at(t)
        key = (a, b, frozenset(links), frozenset(nodes), frozenset(services))
        if key not in self.known:
            self.known[key] = self.topo.one_way_latency(a, b, t)
        return self.known[key]


def one_way_delays(
    records: Sequence[Record], topo: Topology, latency: _Latencies | None = None
) -> dict[int, float]:
    """Per connection: half the handshake round trip, or the path delay from the topology."""
    latency = latency or _Latencies(topo)
    opened: dict[int, Record] = {}
    delays: dict[int, float] = {}
    for rec in records:
        if rec["type"] == "tcp.open":
            opened[rec["conn"]] = rec
        elif rec["type"] == "tcp.established" and rec["conn"] in opened:
            delays[rec["conn"]] = max(0.0, (rec["t"] - opened[rec["conn"]]["t"]) / 2)
    for conn, rec in opened.items():
        if conn not in delays:
            path_delay = latency(rec["client"], rec["server"], rec["t"])
            if path_delay is not None:
                delays[conn] = path_delay
    return delays


def build_chart(
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
    latency = _Latencies(topo)
    delays = one_way_delays(records, topo, latency)
    t0, t1 = window if window is not None else (-math.inf, math.inf)

    def wanted(rec: Record) -> bool:
        if connection is not None and rec.get("conn") != connection:
            return False
        return bool(t0 <= rec["t"] <= t1)

    def delay_of(conn: int, src: str, dst: str, t: float) -> float:
        if conn in delays:
            return delays[conn]
        path_delay = latency(src, dst, t)
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
                    f"conn {conn}: connect to {opening['server']}:{opening['sport']} failed"
                    f" ({reason})",
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
    talked = {a.conn for a in chart.arrows}
    for conn, opening in opened.items():
        if conn in chart.spans or conn not in talked:
            continue
        proto = protocol.get(conn, "smtp")
        chart.spans[conn] = (opening["client"], opening["server"], opening["t"], last_t, proto)
    chart.arrows.sort(key=lambda a: a.t_send)
    if group_bursts:
        chart.arrows = _group_bursts(chart.arrows)
    return chart


def set_lanes(chart: Chart, topo: Topology) -> None:
    names: list[str] = []
    for arrow in chart.arrows:
        names += [arrow.src, arrow.dst]
    for mark in chart.marks:
        names.append(mark.node)
        _, server, *_ = chart.spans[mark.conn]
        names.append(server)
    for box in chart.boxes:
        names += [box.client, box.server]
    pairs = [(client, server) for client, server, *_ in chart.spans.values()]
    pairs += [(box.client, box.server) for box in chart.boxes]
    chart.lanes = lane_order(topo, names, pairs)


#: Sites whose orders :func:`lane_order` tries, at most (5! = 120 orders).
MAX_SITE_ORDERS = 5


def lane_order(topo: Topology, names: list[str], pairs: list[tuple[str, str]]) -> list[str]:
    """The lanes: :meth:`Topology.lane_order` (by site, India left and USA right, user hosts at
    the outer ends), unless another order of the sites makes the connections (``pairs``,
    client and server, one a connection) span fewer other lanes: a box or an arrow across two
    lanes it has nothing to do with reads as if they took part. Each site's lanes stay together,
    hosts at the outer end of the sites on either side."""
    best = topo.lane_order(names)
    sites = list(dict.fromkeys(topo.nodes[n].site for n in best if n in topo.nodes))
    if len(sites) < 3 or len(sites) > MAX_SITE_ORDERS:
        return best  # two sites: the usual order is the only one (or its mirror)
    best_cost = _lanes_crossed(best, pairs)
    for order in itertools.permutations(sites):
        if best_cost == 0:
            break
        lanes = topo.lane_order(best, sites=list(order))
        cost = _lanes_crossed(lanes, pairs)
        if cost < best_cost:
            best, best_cost = lanes, cost
    return best


def _lanes_crossed(lanes: list[str], pairs: list[tuple[str, str]]) -> int:
    """How many lanes lie between the two ends of each pair, summed."""
    where = {name: i for i, name in enumerate(lanes)}
    return sum(
        abs(where[a] - where[b]) - 1 for a, b in pairs if a in where and b in where and a != b
    )


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


@dataclass
class _Parts:
    """The chart's arrows, marks and spans by connection, and every connection as a fold, so
    that a trial plan picks out what it draws without a pass over everything."""

    arrows: dict[int, list[Arrow]]
    marks: dict[int, list[tuple[int, Mark]]]  #: with each mark's place in the chart's order
    spans: dict[int, int]  #: each span's place in the chart's order
    folds: Folds

    @classmethod
    def of(cls, chart: Chart, found: dict[int, Connection], told: dict[int, Story]) -> _Parts:
        arrows: dict[int, list[Arrow]] = {}
        for arrow in chart.arrows:
            arrows.setdefault(arrow.conn, []).append(arrow)
        marks: dict[int, list[tuple[int, Mark]]] = {}
        for index, mark in enumerate(chart.marks):
            marks.setdefault(mark.conn, []).append((index, mark))
        spans = {conn: index for index, conn in enumerate(chart.spans)}
        every = [Fold(c.opened, c, told.get(n), fold_key(c, told.get(n))) for n, c in found.items()]
        every.sort(key=lambda f: f.t)
        return cls(arrows, marks, spans, Folds(every))


def _apply(
    chart: Chart,
    plan: Plan,
    found: dict[int, Connection],
    told: dict[int, Story],
    parts: _Parts,
) -> Chart:
    """The chart as ``plan`` draws it: arrows and marks of FULL connections, boxes, folds.

    ``plan.levels`` need name only the connections drawn (FULL or BOX): the rest are folded.
    """
    full = set(plan.at(FULL))
    arrows = sorted(
        (a for conn in full for a in parts.arrows.get(conn, ())), key=lambda a: a.t_send
    )
    marks = [m for _, m in sorted(pair for conn in full for pair in parts.marks.get(conn, ()))]
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
                box_label(connection, told.get(conn)),
                "http" if conn in told and told[conn].http else connection.protocol,
            )
        )
    drawn = [conn for conn, level in plan.levels.items() if level != FOLDED]
    return Chart(
        arrows=arrows,
        marks=marks,
        boxes=boxes,
        folds=parts.folds.without(drawn),
        spans={
            c: chart.spans[c]
            for c in sorted(full & parts.spans.keys(), key=parts.spans.__getitem__)
        },
        note=plan.note,
        verdicts={
            conn: line
            for conn in sorted(full)
            for line in told.get(conn, Story()).decisive
            if line.startswith(("deferred:", "bounced:"))
        },
        asides=chart.asides,
    )


@dataclass
class Break:
    """A grey band between rows ``y0`` and ``y1``: a cut-out idle gap standing for ``t1 - t0``
    (``idle``), or a place where folded connections happened; ``lines`` says what they were."""

    y0: float
    y1: float
    t0: float
    t1: float
    idle: bool = True
    lines: list[str] = field(default_factory=list)


#: Rows of a band's first line (the gap's length), and of each sentence below it.
BAND_ROWS = 1.5
BAND_LINE_ROWS = 1.0
#: Rows kept free above a band (for labels of what is still in flight) and below it (for the
#: "conn N" label of what comes next).
BAND_ABOVE = 0.7
BAND_BELOW = 1.0
#: The same beside a box, whose edge is all that needs room.
BAND_BY_BOX = 0.4
#: Rows kept under a connection drawn in full for what its lines did not say (its verdict).
VERDICT_ROWS = 1.2
#: A box is at least this many rows high, to hold its label; while only boxes are open, the
#: rows advance this much from one box's start or end to the next.
BOX_MIN_ROWS = 2.0
#: A decisive line longer than this is given a second row (a box one lane wide holds about
#: 40 characters at slide size); the drawing wraps it there.
BOX_LINE_CHARS = 36
BOX_STEP_ROWS = 0.5
#: Time labels on the left axis are at least this many rows apart (a closer one is not
#: written); a box's end is put at least this far below the last one written, so that the axis
#: says when it ended.
TICK_ROWS = 0.9


def writes_tick(y: float, text: str, last_y: float, last_text: str) -> bool:
    """Whether the time axis writes ``text`` at row ``y``, its last label ``last_text`` at
    ``last_y``: a new moment, far enough below the last to be read. The layout asks it to keep
    a box's end labelled; the drawing asks it to choose the labels."""
    return text != last_text and y - last_y >= TICK_ROWS


def _sentences(folds: list[Fold], most: int) -> list[str]:
    """The folded connections of one band, counted together by kind, in order of first time."""
    groups: dict[tuple[str, ...], list[Connection]] = {}
    told: dict[int, Story] = {}
    for fold in folds:
        groups.setdefault(fold.key, []).append(fold.connection)
        if fold.story is not None:
            told[fold.connection.conn] = fold.story
    # The sentences naming a decisive reply first, so the last line never counts one in.
    ordered = sorted(groups.items(), key=lambda item: item[0][0] != "decisive")
    lines = [sentence(group, told) for _, group in ordered]
    if len(lines) > most:  # the rest counted in one last line
        rest = sum(len(group) for _, group in ordered[most - 1 :])
        lines = [*lines[: most - 1], f"… and {rest:,} more connections"]
    return lines


def _aside_lines(asides: Iterable[Aside], t0: float, t1: float, said: set[Aside]) -> list[str]:
    """The asides of a band cutting out ``t0`` to ``t1``: those covering most of it, and those
    said once that overlap it and were not said yet (added to ``said``)."""
    lines = []
    for aside in asides:
        covered = min(aside.t1, t1) - max(aside.t0, t0)
        if aside.once:
            # A moment belongs to the band it starts (what happened then is drawn above it).
            moment = aside.t0 == aside.t1 and t0 <= aside.t0 < t1
            if (covered > 0 or moment) and aside not in said:
                said.add(aside)
                lines.append(aside.text)
        elif covered > (t1 - t0) / 2:
            lines.append(aside.text)
    return lines


def layout(
    chart: Chart,
    rows_per_line: float = ROWS_PER_LINE,
    max_flight_rows: float = MAX_FLIGHT_ROWS,
    band_lines: int = SQUEEZE[0][2],
    *,
    spread: float = 1.0,
    words: bool = True,
) -> tuple[list[Break], float, list[tuple[float, float]]]:
    """Give every arrow, mark and box its rows; returns the bands, the total rows and the ticks.

    The rows of an anchor (a send, a mark, a box's start or end) follow the previous one by
    ``dt * scale`` rows, at least one row, or by a band when ``dt`` is an idle gap (module
    docstring) or folded connections happened in between; lines are at least ``spread`` rows
    apart (more than one on a slide with room to spare, :func:`fill`). Without ``words`` (a
    trial of the planner, which needs only the rows) the bands' sentences are counted, not
    written.
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
    breaks: list[Break] = []
    ticks: list[tuple[float, float]] = []
    folds = chart.folds
    next_fold = 0  # the first candidate fold not yet in a band
    said: set[Aside] = set()  # the asides said once that are said
    y = 0.0
    lowest = 0.0  # the lowest row anything drawn so far reaches

    def band(start: float, t0: float, t1: float, idle: bool, lo: int, hi: int) -> float:
        # A trial needs only how many sentences there are: writing them is most of its cost.
        count = None if words else folds.lines_between(lo, hi, band_lines)
        lines = _sentences(folds.between(lo, hi), band_lines) if count is None else [""] * count
        if idle:
            lines = _aside_lines(chart.asides, t0, t1, said) + lines
        height = (BAND_ROWS if idle else 0.6) + BAND_LINE_ROWS * len(lines)
        breaks.append(Break(start, start + height, t0, t1, idle, lines))
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
    previous_item: Any = None
    open_boxes = 0
    # The last time label the axis will write (writes_tick, as sequence._draw_ticks asks).
    label_y, label_text = -math.inf, ""
    for index, (t, _, item) in enumerate(anchors):
        # Folded connections wait for a band until no box is open, so no band cuts through one.
        lo = hi = next_fold
        if not open_boxes:
            hi = next_fold = folds.before(t, lo)
        folded = folds.span(lo, hi)
        if previous_t is None:
            if folded:  # what happened before the first thing drawn
                y = band(-0.4, folded[0], t, False, lo, hi) + BAND_BELOW
        else:
            dt = t - previous_t
            boxed = (open_boxes or isinstance(item, tuple)) and only_boxes(previous_t, t)
            if open_boxes and boxed and not folded:
                y += BOX_STEP_ROWS  # never cut a gap out of an open box
            elif dt > limit or folded:
                # The band starts below everything still in flight and leaves a row after it
                # for the connection labels. A band for folded connections cuts the time it
                # covers out, too, so it says how long that was unless it was a moment.
                above = BAND_BY_BOX if isinstance(previous_item, tuple) else BAND_ABOVE
                below = BAND_BY_BOX if isinstance(item, tuple) else BAND_BELOW
                start = max(y, lowest) + above
                cut = dt > limit or dt > 3 * max_flight + 1.0
                y = band(start, previous_t, t, cut, lo, hi) + below
            elif boxed:
                y += BOX_STEP_ROWS
            else:
                y += max(dt * scale, spread)
        if isinstance(item, Arrow):
            item.y_send = y
            item.y_arrive = y + (item.t_arrive - item.t_send) * scale
            room = VERDICT_ROWS if item.conn in chart.verdicts else 0.0
            lowest = max(lowest, item.y_arrive + room)
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
                y = max(y, box.y0 + box.rows)
                # Ending too close under the last time label, a box's end would have none: the
                # axis would give a 2.5 s connection the end of the 70 ms one beside it. Unless
                # what comes next starts at that moment (its label says it).
                text = clock(t)
                follows = index + 1 < len(anchors) and clock(anchors[index + 1][0]) == text
                if text != label_text and not follows:
                    y = max(y, label_y + TICK_ROWS)
                box.y1 = y
                lowest = max(lowest, y)
        ticks.append((y, t))
        text = clock(t)
        if writes_tick(y, text, label_y, label_text):
            label_y, label_text = y, text
        previous_t, previous_item = t, item
    rest = folds.span(next_fold, len(folds.every))
    if rest:  # what happened after the last thing drawn
        # Under a box only its edge needs room, as for a band between two things drawn.
        above = BAND_BY_BOX if isinstance(previous_item, tuple) else BAND_ABOVE
        band(max(y, lowest) + above, *rest, False, next_fold, len(folds.every))
    ends = [y, lowest] + [a.y_arrive for a in chart.arrows] + [b.y1 for b in chart.boxes]
    total = max(ends + [gap.y1 for gap in breaks]) + 1.0
    return breaks, total, ticks


def fill(chart: Chart, budget: float) -> tuple[list[Break], float, list[tuple[float, float]]]:
    """The layout of ``chart`` spread as far as still fits ``budget`` rows (:data:`STRETCH`): a
    slide has a fixed height, and a short chart should use it, not leave its bottom empty.
    A chart that needs squeezing to fit is laid out as tightly as :data:`SQUEEZE` says."""
    for factor in STRETCH:
        flight = MAX_FLIGHT_ROWS * min(factor, MAX_FLIGHT_STRETCH)
        laid_out = layout(chart, ROWS_PER_LINE * factor, flight, spread=factor)
        if laid_out[1] <= budget:
            # What is still left (boxes and bands do not spread): everything moved apart
            # evenly, boxes and bands growing with it.
            return _spread_evenly(chart, laid_out, min(budget / laid_out[1], MAX_EVEN_STRETCH))
    for rows_per_line, flight_rows, band_lines in SQUEEZE[1:]:
        laid_out = layout(chart, rows_per_line, flight_rows, band_lines)
        if laid_out[1] <= budget:
            break
    return _spread_evenly(chart, laid_out, min(budget / laid_out[1], MAX_EVEN_STRETCH))


def _spread_evenly(
    chart: Chart, laid_out: tuple[list[Break], float, list[tuple[float, float]]], factor: float
) -> tuple[list[Break], float, list[tuple[float, float]]]:
    """``laid_out`` with every row ``factor`` times further from the top."""
    breaks, total, ticks = laid_out
    if factor <= 1.0:
        return laid_out
    for arrow in chart.arrows:
        arrow.y_send *= factor
        arrow.y_arrive *= factor
    for mark in chart.marks:
        mark.y *= factor
    for box in chart.boxes:
        box.y0 *= factor
        box.y1 *= factor
    for gap in breaks:
        # A band keeps its own height (its lines are type); it moves down with the rest.
        height = gap.y1 - gap.y0
        gap.y0 *= factor
        gap.y1 = gap.y0 + height
    return breaks, total * factor, [(y * factor, t) for y, t in ticks]


def plan_chart(
    chart: Chart,
    records: Sequence[Record],
    topo: Topology,
    budget: float,
    pinned: int | None,
    *,
    stretch: bool = False,
) -> tuple[Chart, tuple[list[Break], float, list[tuple[float, float]]]]:
    """The plan (:func:`sequence_plan.choose`) whose layout fills at most ``budget`` rows;
    with ``stretch`` (a slide) spread out to use them (:func:`fill`)."""
    drawn = {a.conn for a in chart.arrows} | {m.conn for m in chart.marks}
    found = {conn: c for conn, c in connections(records).items() if conn in drawn}
    told = stories(records)
    parts = _Parts.of(chart, found, told)
    counts = {conn: len(arrows) for conn, arrows in parts.arrows.items()}
    tightest = SQUEEZE[-1]

    def fits(levels: dict[int, str]) -> bool:
        if estimate(levels, found, counts, BOX_MIN_ROWS) > budget:
            return False  # cannot fit however tightly drawn: do not lay it out
        trial = _apply(chart, Plan(levels), found, told, parts)
        return layout(trial, *tightest, words=False)[1] <= budget

    plan = choose(found, told, fits, pinned)
    chosen = _apply(chart, plan, found, told, parts)
    set_lanes(chosen, topo)
    if stretch:
        return chosen, fill(chosen, budget)
    # Drawn as loosely as still fits: time runs slower where it must, lines stay a row apart.
    for rows_per_line, flight_rows, band_lines in SQUEEZE:
        laid_out = layout(chosen, rows_per_line, flight_rows, band_lines)
        if laid_out[1] <= budget:
            break
    return chosen, laid_out
