"""An animation of a trace: messages and protocol lines moving across the topology over time.

Each frame shows the network at one simulated moment: links and nodes that are down are grey and
dashed (a link also says DOWN in red), protocol lines in flight are dots travelling along their
route (blue SMTP, green POP3), links that carried lines since the previous frame glow in the
protocol's colour, and every message is a labelled envelope sitting in a queue, travelling during
a delivery attempt (a failed attempt turns back half-way), resting in a mailbox, or arriving at
the user's PC when fetched.
Envelopes that would cover one another or a label are moved up until they are clear.

Time is warped so a story of seconds of dialogue and days of waiting fits in a few seconds of
video: gaps between happenings up to ``c0`` (ten times the median gap, and at least three times
the longest one-way delay) run at the real pace, except that none lasts less than ``c0 / 10``
(so a LAN session of lines a few milliseconds apart still spans several frames); a longer gap
``g`` takes ``c0 * (1 + log10(g / c0))``, so three hours pass in about five times ``c0``. The
clock in the corner always shows real simulated time and says "fast-forward" while a gap is
being compressed.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mailsim.plot._style import (
    ERROR_COLOUR,
    HTTP_COLOUR,
    POP3_COLOUR,
    SLIDE_INCHES,
    SLIDE_MIN_FONT,
    SMTP_COLOUR,
    PlotError,
    clock,
    look_for,
    new_figure,
)
from mailsim.plot.timeline import journeys
from mailsim.plot.topology import (
    LinkInfo,
    NodeInfo,
    Topology,
    draw_network,
    node_positions,
    read_topology,
)

if TYPE_CHECKING:
    from matplotlib.animation import Animation

Record = dict[str, Any]


@dataclass
class _Flight:
    """One protocol line on its way."""

    t0: float
    t1: float
    path: list[str]
    colour: str


class TimeWarp:
    """Maps real simulated time to animation time and back (see the module docstring)."""

    def __init__(self, times: Sequence[float], min_gap: float = 0.0) -> None:
        self.times = sorted(set(times)) or [0.0]
        gaps = [b - a for a, b in itertools.pairwise(self.times)]
        positive = sorted(g for g in gaps if g > 0)
        median = positive[len(positive) // 2] if positive else 1.0
        #: Gaps up to this many seconds play at the real pace.
        self.c0 = max(10 * median, min_gap, 1e-3)
        self.warped = [0.0]
        for gap in gaps:
            self.warped.append(self.warped[-1] + self._squash(gap))

    def _squash(self, gap: float) -> float:
        if gap <= 0:
            return 0.0
        if gap <= self.c0:
            # A burst of LAN lines (a few ms apart) still gets a few frames.
            return max(gap, self.c0 / 10)
        return self.c0 * (1 + math.log10(gap / self.c0))

    @property
    def total(self) -> float:
        """Length of the whole story in warped time."""
        return self.warped[-1]

    def real(self, warped: float) -> tuple[float, bool]:
        """The real time at a warped time, and whether that moment is being fast-forwarded."""
        if len(self.times) == 1:
            return self.times[0], False
        index = min(max(bisect.bisect_right(self.warped, warped) - 1, 0), len(self.times) - 2)
        w0, w1 = self.warped[index], self.warped[index + 1]
        t0, t1 = self.times[index], self.times[index + 1]
        fraction = 0.0 if w1 == w0 else min(max((warped - w0) / (w1 - w0), 0.0), 1.0)
        return t0 + fraction * (t1 - t0), (t1 - t0) > self.c0


def _topology_for(records: Sequence[Record]) -> Topology:
    """The trace's topology, or one made up from the connections when it has none (live traces)."""
    topo = read_topology(records)
    if topo.nodes:
        return topo
    for rec in records:
        if rec["type"] == "tcp.open":
            for name in (rec["client"], rec["server"]):
                topo.nodes.setdefault(name, NodeInfo(name, "host", "?", ""))
            key = frozenset((rec["client"], rec["server"]))
            if all(link.key != key for link in topo.links):
                topo.links.append(LinkInfo(rec["client"], rec["server"], 0.0, 0.0, 0.0))
    return topo


def _point_on(
    path: list[str], positions: dict[str, tuple[float, float]], fraction: float
) -> tuple[float, float]:
    points = [positions[n] for n in path if n in positions]
    if not points:
        return (math.nan, math.nan)
    if len(points) == 1:
        return points[0]
    lengths = [math.dist(a, b) for a, b in itertools.pairwise(points)]
    target = max(0.0, min(1.0, fraction)) * sum(lengths)
    for (a, b), length in zip(itertools.pairwise(points), lengths, strict=False):
        if target <= length and length > 0:
            f = target / length
            return (a[0] + f * (b[0] - a[0]), a[1] + f * (b[1] - a[1]))
        target -= length
    return points[-1]


def animate(
    records: Sequence[Record], *, fps: int = 10, duration: float = 10, size: str = "default"
) -> Animation:
    """Animate a trace over its topology (see the module docstring for what moves and the clock).

    Args:
        records: trace records (``Recorder.records`` or ``load_events(path)``).
        fps: frames per second of the result.
        duration: length of the animation in seconds; the frames are ``fps * duration``.
        size: "default" or "slide" (16:9 frames with large type; see
            :class:`mailsim.plot._style.Look`).

    Returns:
        A :class:`matplotlib.animation.FuncAnimation`. In a notebook show it with
        ``IPython.display.HTML(anim.to_jshtml())``; write it with :func:`save_animation`.

    Raises:
        PlotError: ``fps`` or ``duration`` is not positive, or the trace has nothing to animate.
    """
    from matplotlib.animation import FuncAnimation

    if fps <= 0 or duration <= 0:
        raise PlotError(f"fps and duration must be positive, got fps={fps}, duration={duration}")
    look = look_for(size)
    records = list(records)
    topo = _topology_for(records)
    if not topo.nodes:
        raise PlotError("the trace has no nodes and no connections: there is nothing to animate")
    positions = node_positions(topo)
    events = [r for r in records if not r["type"].startswith("net.")]
    if not events:
        raise PlotError("the trace has only its topology (net.* records): nothing happens in it")
    flights = _flights(records, topo)
    max_flight = max((f.t1 - f.t0 for f in flights), default=0.0)
    warp = TimeWarp([r["t"] for r in events] + [f.t1 for f in flights], min_gap=3 * max_flight)
    tokens = _tokens(records, topo)
    frames = max(2, round(fps * duration))

    xs = [p[0] for p in positions.values()]
    ys = [p[1] for p in positions.values()]
    width = max(6.0, 1.5 * (max(xs) - min(xs) + 1.4))
    height = max(4.0, 1.4 * (max(ys) - min(ys) + 2.6)) + 0.6
    fig = new_figure(*SLIDE_INCHES) if look.slide else new_figure(width, height)
    ax = fig.add_axes((0.02, 0.1, 0.96, 0.82))
    base = draw_network(ax, topo, positions, at=None, labels=True, look=look)
    link_lines = base["links"]
    node_markers = base["nodes"]
    glow = {}
    for key, line in link_lines.items():
        (overlay,) = ax.plot(
            *line.get_data(),
            linewidth=7 * look.scale,
            alpha=0.0,
            solid_capstyle="round",
            zorder=2.4,
        )
        glow[key] = overlay
    area = look.scale**2
    dots = ax.scatter([], [], s=28 * area, zorder=8, edgecolors="white", linewidths=0.5)
    envelopes = ax.scatter(
        [], [], s=90 * area, marker="s", zorder=9, edgecolors="black", linewidths=0.8
    )
    if look.slide:
        # The network's own labels are set for a still figure; a film shown on a projector
        # needs every label at least the slide minimum too.
        for text in ax.texts:
            text.set_fontsize(max(text.get_fontsize(), SLIDE_MIN_FONT))
    label_size = max(look.small, SLIDE_MIN_FONT) if look.slide else look.small
    # A link that is down says so in red under its label, as the still figure does.
    down_tags = {}
    for key, line in link_lines.items():
        if line.get_gid() == "dns-link":
            continue
        (xa, xb), (ya, yb) = line.get_data()
        down_tags[key] = ax.annotate(
            "DOWN",
            ((xa + xb) / 2, (ya + yb) / 2),
            xytext=(0, -2.4 * label_size),
            textcoords="offset points",
            ha="center",
            va="top",
            fontsize=label_size,
            fontweight="bold",
            color=ERROR_COLOUR,
            zorder=10,
            visible=False,
        )
    static_texts = list(ax.texts)
    envelope_labels = [
        ax.text(0, 0, name, fontsize=label_size, ha="left", va="center", zorder=10, visible=False)
        for name in tokens
    ]
    clock_text = fig.text(
        0.02, 0.96, "", fontsize=look.title + 1, fontfamily="DejaVu Sans Mono", va="top"
    )
    caption = fig.text(0.02, 0.03, "", fontsize=look.font, va="bottom", color="#333333")
    captions = _captions(records)
    caption_times = [t for t, _ in captions]
    link_base_colour = {key: line.get_color() for key, line in link_lines.items()}
    previous: list[float] = [warp.real(0.0)[0]]

    def update(frame: int) -> list[Any]:
        w = warp.total * frame / (frames - 1)
        now, fast = warp.real(w)
        before = previous[0] if frame else now - 1e-9
        previous[0] = now
        down_links, down_nodes, _ = topo.down_at(now)
        for key, line in link_lines.items():
            down = key in down_links
            line.set_color("#c8c8c8" if down else link_base_colour[key])
            line.set_linestyle("--" if down else "-")
            if key in down_tags:
                down_tags[key].set_visible(down)
        for name, marker in node_markers.items():
            marker.set_alpha(0.35 if name in down_nodes else 1.0)
        # Links that carried lines since the previous frame glow.
        for overlay in glow.values():
            overlay.set_alpha(0.0)
        points, colours = [], []
        for flight in flights:
            if flight.t1 < before or flight.t0 > now:
                continue
            for u, v in itertools.pairwise(flight.path):
                lit = glow.get(frozenset((u, v)))
                if lit is not None:
                    lit.set_color(flight.colour)
                    lit.set_alpha(0.35)
            if flight.t0 <= now <= flight.t1:
                span = flight.t1 - flight.t0
                fraction = 1.0 if span <= 0 else (now - flight.t0) / span
                points.append(_point_on(flight.path, positions, fraction))
                colours.append(flight.colour)
        dots.set_offsets(points if points else [(math.nan, math.nan)])
        dots.set_color(colours if colours else ["none"])
        places, faces = [], []
        clear = _Clearance(fig, ax, [*static_texts, *node_markers.values()], label_size)
        for index, token in enumerate(tokens.values()):
            where, face = token.where(now, positions)
            label = envelope_labels[index]
            if where is None:
                label.set_visible(False)
                continue
            # Envelopes that would cover one another or a label move up until they are clear.
            x, y = clear.spot(where[0] + 0.38, where[1] + 0.05, len(label.get_text()))
            places.append((x, y))
            faces.append(face)
            label.set_position((x + 0.12, y))
            label.set_visible(True)
        envelopes.set_offsets(places if places else [(math.nan, math.nan)])
        envelopes.set_facecolor(faces if faces else ["none"])
        clock_text.set_text(f"t = {clock(now)}" + ("   ▶▶ fast-forward" if fast else ""))
        index = bisect.bisect_right(caption_times, now) - 1
        caption.set_text(captions[index][1] if index >= 0 else "")
        return []

    update(0)
    animation = FuncAnimation(
        fig, update, frames=frames, interval=1000 / fps, blit=False, repeat=False
    )
    return animation


class _Clearance:
    """Where envelopes go in one frame: each at its place, or as far above it as it must be so
    that it and its name cover no label, no node and no envelope placed before it."""

    def __init__(self, fig: Any, ax: Any, obstacles: Sequence[Any], size: float) -> None:
        renderer = fig.canvas.get_renderer()
        self.ax = ax
        self.taken = [o.get_window_extent(renderer) for o in obstacles if o.get_visible()]
        self.point = size * fig.dpi / 72  # pixels per point of the envelope labels' type
        self.row = 1.5 * size * fig.dpi / 72

    def spot(self, x: float, y: float, characters: int) -> tuple[float, float]:
        from matplotlib.transforms import Bbox

        px, py = self.ax.transData.transform((x, y))
        width = 1.2 * self.point + 0.65 * self.point * characters  # the square and the name
        for _ in range(12):
            box = Bbox.from_extents(
                px - 0.6 * self.point, py - self.row / 2, px + width, py + self.row / 2
            )
            if not any(box.overlaps(other) for other in self.taken):
                break
            py += self.row
        self.taken.append(box)
        fx, fy = self.ax.transData.inverted().transform((px, py))
        return float(fx), float(fy)


def _flights(records: Sequence[Record], topo: Topology) -> list[_Flight]:
    """Protocol lines with their route and flight time (arrival as in the sequence diagram)."""
    from mailsim.plot.sequence import one_way_delays

    delays = one_way_delays(records, topo)
    routes: dict[tuple[str, str, int], list[str]] = {}
    flights = []
    for rec in records:
        if rec["type"] not in ("smtp.line", "pop3.line", "http.line"):
            continue
        key = (rec["src"], rec["dst"], rec["conn"])
        if key not in routes:
            routes[key] = topo.route(rec["src"], rec["dst"], rec["t"])
        colour = {"smtp.line": SMTP_COLOUR, "http.line": HTTP_COLOUR}.get(rec["type"], POP3_COLOUR)
        delay = delays.get(rec["conn"], 0.0)
        flights.append(_Flight(rec["t"], rec["t"] + delay, routes[key], colour))
    return flights


@dataclass
class _Leg:
    """A part of a message's trip: resting at a node, or moving along a path."""

    t0: float
    t1: float
    path: list[str]
    reach: float  #: how far along the path the move gets (0.5 for a failed attempt)
    colour: str


class _Token:
    """Where one message is over time."""

    def __init__(self) -> None:
        self.legs: list[_Leg] = []
        self.starts: list[float] = []

    def add(self, leg: _Leg) -> None:
        self.legs.append(leg)
        self.starts.append(leg.t0)

    def where(
        self, now: float, positions: dict[str, tuple[float, float]]
    ) -> tuple[tuple[float, float] | None, str]:
        index = bisect.bisect_right(self.starts, now) - 1
        if index < 0:
            return None, "none"
        leg = self.legs[index]
        if not leg.path:
            return None, "none"
        if len(leg.path) == 1 or leg.t1 <= leg.t0:
            point = positions.get(leg.path[-1] if leg.reach >= 1 else leg.path[0])
            return point, leg.colour
        fraction = min(max((now - leg.t0) / (leg.t1 - leg.t0), 0.0), 1.0)
        # A failed attempt goes out to `reach` and comes back in the same time.
        if leg.reach < 1:
            fraction = leg.reach * (1 - abs(1 - 2 * fraction))
        return _point_on(leg.path, positions, fraction), leg.colour


def _tokens(records: Sequence[Record], topo: Topology) -> dict[str, _Token]:
    """The legs of every message's trip, from its journeys and the connections."""
    opened = {r["conn"]: r for r in records if r["type"] == "tcp.open"}
    pop_sessions = [r for r in opened.values() if r["sport"] == 110]
    tokens: dict[str, _Token] = {}
    for journey in journeys(records):
        if journey.msg in tokens:
            continue  # one envelope per message: its first recipient's story
        token = _Token()
        tokens[journey.msg] = token
        moments: list[tuple[float, int, _Leg]] = []
        for t, node in journey.queued:
            moments.append((t, 0, _Leg(t, t, [node], 1.0, "#fff7bc")))
        ends = sorted(
            [a.t for a in journey.attempts]
            + [t for t in (journey.delivered, journey.bounced, journey.expired) if t is not None]
        )
        for attempt in journey.attempts:
            later = [t for t in ends if t > attempt.t]
            t1 = later[0] if later else attempt.t + 1.0
            server = opened[attempt.conn]["server"] if attempt.conn in opened else None
            path = topo.route(attempt.node, server, attempt.t) if server else [attempt.node]
            ok = attempt.outcome == "accepted"
            if ok and journey.delivered is not None:
                t1 = journey.delivered
            colour = "#fff7bc" if ok else "#fdd0a2"
            moments.append((attempt.t, 1, _Leg(attempt.t, t1, path, 1.0 if ok else 0.5, colour)))
            if not ok:
                moments.append((t1, 0, _Leg(t1, t1, [attempt.node], 1.0, "#fff7bc")))
        if journey.delivered is not None:
            node = journey.delivered_at_node
            moments.append(
                (
                    journey.delivered,
                    2,
                    _Leg(journey.delivered, journey.delivered, [node], 1.0, "#a1d99b"),
                )
            )
        if journey.fetched is not None:
            server = journey.delivered_at_node
            session = [
                s for s in pop_sessions if s["server"] == server and s["t"] <= journey.fetched
            ]
            if session:
                client = session[-1]["client"]
                moments.append(
                    (
                        journey.fetched,
                        3,
                        _Leg(journey.fetched, journey.fetched, [client], 1.0, "#6baed6"),
                    )
                )
        if journey.bounced is not None:
            moments.append(
                (journey.bounced, 4, _Leg(journey.bounced, journey.bounced, [], 1.0, ERROR_COLOUR))
            )
        for _, _, leg in sorted(moments, key=lambda m: (m[0], m[1])):
            token.add(leg)
    return tokens


def _captions(records: Sequence[Record]) -> list[tuple[float, str]]:
    """One sentence per mail event, for the caption under the picture."""
    words = {
        "mail.submit": "submitted at {node}",
        "mail.queue": "queued at {node}",
        "mail.attempt": "{node} tries to deliver it",
        "mail.defer": "deferred at {node}: {reply}",
        "mail.deliver": "delivered into mailbox '{mailbox}' at {node}",
        "mail.bounce": "bounced by {node}: {reply}",
        "mail.expire": "expired at {node}: giving up",
        "mail.fetch": "fetched by {user} from {node}",
        "mail.reject": "rejected by {node}: {reply}",
        "mail.lost": "lost at {node}: {cause}",
    }
    out = []
    for rec in records:
        pattern = words.get(rec["type"])
        if pattern is None:
            if rec["type"] in ("link.down", "link.up"):
                out.append((rec["t"], f"link {rec['a']}–{rec['b']} {rec['type'].split('.')[1]}"))
            elif rec["type"] in ("node.down", "node.up"):
                out.append((rec["t"], f"{rec['node']} {rec['type'].split('.')[1]}"))
            continue
        fields = {k: rec.get(k, "") for k in ("node", "reply", "mailbox", "user", "cause")}
        out.append((rec["t"], f"{rec['msg']}: " + pattern.format(**fields)))
    return out


def save_animation(
    animation: Animation, path: str | Path, *, fps: int | None = None, dpi: float = 100
) -> Path:
    """Write an animation to ``path``: ``.gif`` with Pillow, ``.mp4`` with ffmpeg.

    Args:
        animation: what :func:`animate` returned.
        path: the file to write; its suffix picks the format.
        fps: frames per second; by default the animation's own.
        dpi: resolution of the frames.

    Returns:
        The path written.

    Raises:
        PlotError: the suffix is neither .gif nor .mp4, or .mp4 is asked and ffmpeg is missing.
    """
    from matplotlib.animation import FFMpegWriter, PillowWriter, writers

    path = Path(path)
    if fps is None:
        interval = getattr(animation, "_interval", 100)
        fps = round(1000.0 / interval) if interval else 10
    suffix = path.suffix.lower()
    if suffix == ".gif":
        writer: Any = PillowWriter(fps=fps)
    elif suffix == ".mp4":
        if not writers.is_available("ffmpeg"):
            raise PlotError(
                f"cannot write {path}: MP4 needs the ffmpeg program, which is not on the PATH; "
                "install it (e.g. 'apt install ffmpeg') or save as .gif"
            )
        writer = FFMpegWriter(fps=fps)
    else:
        raise PlotError(f"cannot write {path}: use a .gif or .mp4 file name, got '{path.suffix}'")
    path.parent.mkdir(parents=True, exist_ok=True)
    animation.save(str(path), writer=writer, dpi=dpi)
    return path
