"""The network as the trace describes it: nodes by site, links, outages, routes, and its figure.

Everything comes from records: ``net.node`` and ``net.link`` (written at t=0) give the graph,
``link.down``/``link.up``, ``node.down``/``node.up`` and ``service.down``/``service.up`` give the
outages, ``tcp.open`` the connections. :func:`read_topology` builds a :class:`Topology` that the
other figures share (lane order of the sequence diagram, outage shading of the timeline, routes of
the animation).

Layout rule of the figure: sites are columns from left to right in order of first appearance,
except that a site called India is always leftmost and a site called USA rightmost (the story's
geography); within a site, hosts sit at the outer edge, mail and DNS servers in the middle and
routers toward the neighbouring sites, so routers end up between the sites they join.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mailsim.plot._style import (
    ERROR_COLOUR,
    KIND_COLOURS,
    LOOKS,
    POP3_COLOUR,
    SITE_COLOURS,
    SLIDE_INCHES,
    SMTP_COLOUR,
    Look,
    PlotError,
    clock,
    empty_note,
    human_duration,
    look_for,
    new_figure,
)

if TYPE_CHECKING:
    import networkx as nx
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

Record = dict[str, Any]

#: Order of node kinds from the outer edge of a site toward its neighbours.
_KIND_RANK = {"host": 0, "dns": 1, "mailserver": 2, "router": 3}


@dataclass(frozen=True)
class NodeInfo:
    """One node of the world as ``net.node`` describes it."""

    name: str
    kind: str
    site: str
    ip: str


@dataclass(frozen=True)
class LinkInfo:
    """One link as ``net.link`` describes it (latency in seconds, bandwidth in bit/s)."""

    a: str
    b: str
    latency: float
    bandwidth: float
    loss: float

    @property
    def key(self) -> frozenset[str]:
        """The unordered pair of end nodes, how ``link.down`` records name it."""
        return frozenset((self.a, self.b))


@dataclass(frozen=True)
class Outage:
    """A span of time when a link, a node or a service (node, port) was down.

    ``end`` is None when the trace ends before it comes back up.
    """

    kind: str  #: "link", "node" or "service"
    what: tuple[Any, ...]  #: (a, b), (node,) or (node, port)
    start: float
    end: float | None

    @property
    def label(self) -> str:
        """How the outage is named on figures: ``link india-gw–usa-gw``, ``usa-mail:25``."""
        if self.kind == "link":
            return f"link {self.what[0]}–{self.what[1]}"
        if self.kind == "service":
            return f"{self.what[0]}:{self.what[1]}"
        return f"node {self.what[0]}"

    def covers(self, t: float) -> bool:
        """True when the outage is in force at time ``t``."""
        return self.start <= t and (self.end is None or t < self.end)


@dataclass
class Topology:
    """Nodes, links and outages read from a trace, with the routing questions plots ask."""

    nodes: dict[str, NodeInfo] = field(default_factory=dict)
    links: list[LinkInfo] = field(default_factory=list)
    outages: list[Outage] = field(default_factory=list)

    def sites(self) -> list[str]:
        """Site names left to right: order of appearance, India first and USA last."""
        order: list[str] = []
        for node in self.nodes.values():
            if node.site not in order:
                order.append(node.site)
        first = [s for s in order if s.lower() == "india"]
        last = [s for s in order if s.lower() == "usa"]
        middle = [s for s in order if s not in first and s not in last]
        return first + middle + last

    def lane_order(self, names: Iterable[str]) -> list[str]:
        """``names`` ordered as sequence-diagram lanes: by site, user hosts at the outer ends.

        Within the leftmost half of the sites, hosts come first and servers after them; in the
        rightmost half the other way round, so James's PC is at the far left and Steve's at the far
        right with the mail servers between. Nodes the trace never described go last.
        """
        names = list(dict.fromkeys(names))
        sites = self.sites()
        known = [n for n in self.nodes if n in names]
        unknown = [n for n in names if n not in self.nodes]
        center = (len(sites) - 1) / 2
        ordered: list[tuple[float, float, int, str]] = []
        for index, name in enumerate(known):
            node = self.nodes[name]
            site_index = sites.index(node.site)
            rank = _KIND_RANK.get(node.kind, 1)
            if site_index > center:
                rank = -rank
            elif site_index == center and node.kind == "host":
                # One site in the middle (or the only site): hosts split to both of its ends.
                hosts = [n for n in known if self.nodes[n].site == node.site]
                hosts = [n for n in hosts if self.nodes[n].kind == "host"]
                rank = 0 if hosts.index(name) < (len(hosts) + 1) // 2 else 10
            ordered.append((site_index, rank, index, name))
        ordered.sort()
        return [name for *_, name in ordered] + unknown

    def down_at(self, t: float) -> tuple[set[frozenset[str]], set[str], set[tuple[str, int]]]:
        """Links (as node pairs), nodes and services (node, port) that are down at time ``t``."""
        links: set[frozenset[str]] = set()
        nodes: set[str] = set()
        services: set[tuple[str, int]] = set()
        for outage in self.outages:
            if not outage.covers(t):
                continue
            if outage.kind == "link":
                links.add(frozenset(outage.what))
            elif outage.kind == "node":
                nodes.add(outage.what[0])
            else:
                services.add((outage.what[0], outage.what[1]))
        return links, nodes, services

    def graph(self, at: float | None = None) -> nx.Graph:
        """The networkx graph of nodes and links; with ``at``, only what is up at that time.

        Node attributes: kind, site, ip. Edge attributes: latency, bandwidth, loss.
        """
        import networkx as nx

        graph = nx.Graph()
        down_links: set[frozenset[str]] = set()
        down_nodes: set[str] = set()
        if at is not None:
            down_links, down_nodes, _ = self.down_at(at)
        for node in self.nodes.values():
            if node.name not in down_nodes:
                graph.add_node(node.name, kind=node.kind, site=node.site, ip=node.ip)
        for link in self.links:
            if link.key in down_links or link.a in down_nodes or link.b in down_nodes:
                continue
            graph.add_edge(
                link.a, link.b, latency=link.latency, bandwidth=link.bandwidth, loss=link.loss
            )
        return graph

    def route(self, a: str, b: str, at: float | None = None) -> list[str]:
        """The shortest path by latency from ``a`` to ``b`` over what is up at ``at``.

        Falls back to the whole graph when nothing is up between them at that time (a connection
        that failed still "aimed" along its usual route), and to ``[a, b]`` when the trace has no
        path at all (a live-server trace has no topology).
        """
        import networkx as nx

        # Hosts and DNS servers are end points: a route never passes through one (as in
        # mailsim.net.routing), so they are hidden unless they are an end of this route.
        ends = {name for name, node in self.nodes.items() if node.kind in ("host", "dns")} - {a, b}
        for full in (self.graph(at), self.graph(None)) if at is not None else (self.graph(),):
            graph = nx.restricted_view(full, ends, []) if ends else full
            if a in graph and b in graph:
                try:
                    path: list[str] = nx.shortest_path(graph, a, b, weight="latency")
                    return path
                except nx.NetworkXNoPath:
                    continue
        return [a, b]

    def one_way_latency(self, a: str, b: str, at: float | None = None) -> float | None:
        """Propagation delay along :meth:`route` in seconds, or None when the trace cannot tell."""
        path = self.route(a, b, at)
        by_key = {link.key: link for link in self.links}
        total = 0.0
        for u, v in itertools.pairwise(path):
            link = by_key.get(frozenset((u, v)))
            if link is None:
                return None
            total += link.latency
        return total


def read_topology(records: Iterable[Record]) -> Topology:
    """Build the :class:`Topology` of a trace from its ``net.*`` and up/down records."""
    topo = Topology()
    open_outages: dict[tuple[str, tuple[Any, ...]], float] = {}
    for rec in records:
        kind = rec["type"]
        if kind == "net.node":
            topo.nodes[rec["node"]] = NodeInfo(
                rec["node"], rec.get("kind", "host"), rec.get("site", "?"), rec.get("ip", "")
            )
        elif kind == "net.link":
            topo.links.append(
                LinkInfo(
                    rec["a"],
                    rec["b"],
                    float(rec.get("latency", 0.0)),
                    float(rec.get("bandwidth", 0.0)),
                    float(rec.get("loss", 0.0)),
                )
            )
        elif kind in _OUTAGE_TYPES:
            what_kind, going_down = _OUTAGE_TYPES[kind]
            what = _outage_key(what_kind, rec)
            key = (what_kind, what)
            if going_down:
                open_outages.setdefault(key, rec["t"])
            elif key in open_outages:
                topo.outages.append(Outage(what_kind, what, open_outages.pop(key), rec["t"]))
    for (what_kind, what), start in open_outages.items():
        topo.outages.append(Outage(what_kind, what, start, None))
    topo.outages.sort(key=lambda o: o.start)
    return topo


_OUTAGE_TYPES = {
    "link.down": ("link", True),
    "link.up": ("link", False),
    "node.down": ("node", True),
    "node.up": ("node", False),
    "service.down": ("service", True),
    "service.up": ("service", False),
}


def _outage_key(kind: str, rec: Record) -> tuple[Any, ...]:
    if kind == "link":
        a, b = sorted((rec["a"], rec["b"]))
        return (a, b)
    if kind == "service":
        return (rec["node"], rec["port"])
    return (rec["node"],)


def node_positions(topo: Topology) -> dict[str, tuple[float, float]]:
    """Where each node goes on the topology figure (and the animation), in data units.

    Columns per site: hosts outermost, then DNS and mail servers, then routers toward the middle
    of the picture (mirrored for the sites right of the centre). Kinds are also staggered
    vertically (servers above, hosts below, routers on the centre line) so that a straight link
    from a host to a router does not run through the server column.
    """
    sites = topo.sites()
    center = (len(sites) - 1) / 2
    stagger = {"host": -0.9, "dns": 1.8, "mailserver": 0.9, "router": 0.0}
    positions: dict[str, tuple[float, float]] = {}
    x0 = 0.0
    for site_index, site in enumerate(sites):
        members = [n for n in topo.nodes.values() if n.site == site]
        ranks = sorted({_column_rank(n.kind) for n in members})
        if site_index > center:
            ranks = ranks[::-1]
        columns = {rank: x0 + i for i, rank in enumerate(ranks)}
        for rank in ranks:
            stacked = [n for n in members if _column_rank(n.kind) == rank]
            by_kind: dict[str, list[NodeInfo]] = {}
            for node in stacked:
                by_kind.setdefault(node.kind, []).append(node)
            for kind, nodes in by_kind.items():
                base = stagger.get(kind, 0.0)
                spread = 1.6 if kind == "router" else 1.0
                for i, node in enumerate(nodes):
                    offset = (i - (len(nodes) - 1) / 2) * spread
                    # Several hosts fan downwards, several servers upwards, routers both ways.
                    if kind == "host":
                        offset = -i * spread
                    elif kind in ("mailserver", "dns"):
                        offset = i * spread
                    positions[node.name] = (columns[rank], base + offset)
        x0 += len(ranks) + 0.6
    return positions


def _column_rank(kind: str) -> int:
    # DNS and mail servers share a column.
    return {"host": 0, "dns": 1, "mailserver": 1, "router": 2}.get(kind, 1)


def _link_label(link: LinkInfo) -> str:
    ms = link.latency * 1000
    latency = f"{ms:.0f} ms" if ms >= 10 else f"{ms:.3g} ms"
    text = f"{latency}\n{link.bandwidth / 1e6:.4g} Mbit/s"
    if link.loss:
        text += f"\nloss {link.loss:.2%}"
    return text


def draw_network(
    ax: Axes,
    topo: Topology,
    positions: dict[str, tuple[float, float]],
    *,
    at: float | None = None,
    labels: bool = True,
    look: Look = LOOKS["default"],
) -> dict[str, Any]:
    """Draw nodes, links and site bands of ``topo`` on ``ax``; return the artists by name.

    Returned dict: ``"links"`` maps each link's node pair to its Line2D (gid ``link``),
    ``"nodes"`` maps node names to their marker Line2D (gid ``node``). Links down at ``at`` are
    grey and dashed (gid ``link-down``); nodes down at ``at`` are grey with a dashed edge. Links
    to a DNS server are thin, dotted and unlabelled (gid ``dns-link``): every mail server has
    one, and their labels would cover the links that carry the mail.
    """
    from matplotlib.patches import FancyBboxPatch

    dns_nodes = {name for name, node in topo.nodes.items() if node.kind == "dns"}

    down_links, down_nodes, down_services = (
        topo.down_at(at) if at is not None else (set(), set(), set())
    )
    sites = topo.sites()
    # Site bands behind everything.
    for index, site in enumerate(sites):
        xs = [positions[n.name][0] for n in topo.nodes.values() if n.site == site]
        ys = [positions[n.name][1] for n in topo.nodes.values() if n.site == site]
        if not xs:
            continue
        band = FancyBboxPatch(
            (min(xs) - 0.5, min(ys) - 0.75),
            max(xs) - min(xs) + 1.0,
            max(ys) - min(ys) + 1.95,
            boxstyle="round,pad=0.02,rounding_size=0.2",
            facecolor=SITE_COLOURS[index % len(SITE_COLOURS)],
            edgecolor="none",
            zorder=0,
        )
        ax.add_patch(band)
        ax.text(
            (min(xs) + max(xs)) / 2,
            max(ys) + 1.05,
            site,
            ha="center",
            va="bottom",
            fontsize=look.title + 1,
            fontweight="bold",
            color="#444444",
            zorder=1,
        )
    links: dict[frozenset[str], Any] = {}
    for link in topo.links:
        if link.a not in positions or link.b not in positions:
            continue
        (xa, ya), (xb, yb) = positions[link.a], positions[link.b]
        down = link.key in down_links
        to_dns = bool(link.key & dns_nodes)
        (line,) = ax.plot(
            [xa, xb],
            [ya, yb],
            color="#b0b0b0" if down else ("#8a8a8a" if to_dns else "#333333"),
            linestyle="--" if down else (":" if to_dns else "-"),
            linewidth=look.line(1.0 if to_dns else 1.5),
            zorder=1.5 if to_dns else 2,
        )
        line.set_gid("link-down" if down else ("dns-link" if to_dns else "link"))
        links[link.key] = line
        if labels and not to_dns:
            text = _link_label(link) + ("\nDOWN" if down else "")
            ax.text(
                (xa + xb) / 2,
                (ya + yb) / 2,
                text,
                ha="center",
                va="center",
                fontsize=look.small,
                color=ERROR_COLOUR if down else "#222222",
                linespacing=1.1,
                bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.85},
                zorder=3,
            )
    nodes: dict[str, Any] = {}
    for node in topo.nodes.values():
        x, y = positions[node.name]
        down = node.name in down_nodes
        (marker,) = ax.plot(
            [x],
            [y],
            marker="s" if node.kind in ("mailserver", "dns") else "o",
            markersize=22 * look.scale,
            markerfacecolor="#e0e0e0" if down else KIND_COLOURS.get(node.kind, "#cccccc"),
            markeredgecolor=ERROR_COLOUR if down else "#333333",
            markeredgewidth=look.line(1.5),
            linestyle="none",
            zorder=4,
        )
        marker.set_gid("node-down" if down else "node")
        nodes[node.name] = marker
        if labels:
            caption = f"{node.name}\n{node.ip}" if node.ip else node.name
            # Servers sit on top of the picture: their names go above them, clear of the links
            # that leave them downwards; other names go below.
            above = node.kind in ("mailserver", "dns")
            ax.text(
                x,
                y + 0.32 * look.scale if above else y - 0.32 * look.scale,
                caption,
                ha="center",
                va="bottom" if above else "top",
                fontsize=look.small + 0.5,
                color="#888888" if down else "#111111",
                zorder=5,
                linespacing=1.1,
            )
            notes = [f"port {port} down" for (n, port) in sorted(down_services) if n == node.name]
            if down:
                notes.insert(0, "DOWN")
            if notes:
                ax.text(
                    x,
                    y - 0.3 if above else y + 0.3,
                    ", ".join(notes),
                    ha="center",
                    va="top" if above else "bottom",
                    fontsize=look.small,
                    color=ERROR_COLOUR,
                    fontweight="bold",
                    zorder=5,
                )
    xs = [p[0] for p in positions.values()] or [0.0]
    ys = [p[1] for p in positions.values()] or [0.0]
    ax.set_xlim(min(xs) - 0.7, max(xs) + 0.7)
    ax.set_ylim(min(ys) - 1.0, max(ys) + 1.5)
    ax.set_aspect("equal", adjustable="box")
    ax.axis("off")
    return {"links": links, "nodes": nodes}


def connection_route(records: Sequence[Record], topo: Topology, conn: int) -> list[str]:
    """The node path of connection ``conn``: a ``path`` (or ``route``) field of its ``tcp.open``
    record when the simulator wrote one, else the shortest path by latency at its opening time.

    Raises:
        PlotError: when the trace has no ``tcp.open`` for ``conn``.
    """
    for rec in records:
        if rec["type"] == "tcp.open" and rec.get("conn") == conn:
            path = rec.get("path") or rec.get("route")
            if path:
                return [str(n) for n in path]
            return topo.route(rec["client"], rec["server"], rec["t"])
    known = sorted({r["conn"] for r in records if r["type"] == "tcp.open"})
    raise PlotError(
        f"connection {conn} does not appear in the trace (no tcp.open); "
        f"known connections: {_id_list(known)}"
    )


def _id_list(ids: Sequence[int]) -> str:
    if not ids:
        return "none"
    if len(ids) > 12:
        return ", ".join(map(str, ids[:12])) + f", ... ({len(ids)} in all)"
    return ", ".join(map(str, ids))


def topology_figure(
    records: Sequence[Record],
    *,
    at: float | None = None,
    connection: int | None = None,
    size: str = "default",
) -> Figure:
    """The network of the trace: sites left to right, links labelled with latency and bandwidth.

    A legend says what the shapes and lines mean (host, mail server, router, DNS server; a link,
    a link to the DNS server, a link that is down, the route of a connection).

    Args:
        records: trace records (``Recorder.records`` or ``load_events(path)``).
        at: simulated time in seconds; links and nodes down at that time are drawn grey and dashed
            and services down are noted in red. Without it, the world at the start is drawn and
            every outage of the run is listed under the picture.
        connection: a connection id (``conn`` of ``tcp.open``); its route is drawn thick in the
            colour of its protocol, with its endpoints named in the title.
        size: "default" or "slide" (see :class:`mailsim.plot._style.Look`).

    Returns:
        The figure; its links are Line2D artists with gid ``link`` / ``link-down`` / ``dns-link``,
        the route segments have gid ``route``, and the legend has gid ``legend``.
    """
    look = look_for(size)
    records = list(records)
    topo = read_topology(records)
    route: list[str] = []
    route_colour = SMTP_COLOUR
    title = "Network topology"
    if connection is not None:
        route = connection_route(records, topo, connection)
        opening = next(r for r in records if r["type"] == "tcp.open" and r["conn"] == connection)
        is_pop = any(r["type"] == "pop3.line" and r.get("conn") == connection for r in records)
        is_pop = is_pop or opening.get("sport") == 110
        route_colour = POP3_COLOUR if is_pop else SMTP_COLOUR
        protocol = "POP3" if is_pop else "SMTP"
        title += (
            f" — connection {connection} ({protocol}): {opening['client']} → "
            f"{opening['server']}:{opening['sport']} at {clock(opening['t'])}"
        )
    if at is not None:
        title += f"\nstate at t = {clock(at)}"
    positions = node_positions(topo)
    xs = [p[0] for p in positions.values()] or [0.0]
    ys = [p[1] for p in positions.values()] or [0.0]
    legend_room = 0.55 * look.scale  # inches below the picture for the legend
    notes_room = 0.35 * look.scale if at is None and topo.outages else 0.0
    if look.slide:
        fig = new_figure(*SLIDE_INCHES)
    else:
        width = max(6.0, 1.7 * (max(xs) - min(xs) + 1.4))
        height = max(3.8, 1.5 * (max(ys) - min(ys) + 2.4)) + legend_room + notes_room
        fig = new_figure(width, height)
    fh = fig.get_size_inches()[1]
    bottom = (legend_room + notes_room + 0.1) / fh
    ax = fig.add_axes((0.02, bottom, 0.96, 1 - bottom - 0.5 * look.scale / fh))
    ax.set_title(title, fontsize=look.title)
    if not topo.nodes:
        empty_note(ax, "the trace has no net.node records, so there is no topology to draw")
        return fig
    drawn = draw_network(ax, topo, positions, at=at, look=look)
    for u, v in itertools.pairwise(route):
        if u in positions and v in positions:
            (xa, ya), (xb, yb) = positions[u], positions[v]
            (seg,) = ax.plot(
                [xa, xb],
                [ya, yb],
                color=route_colour,
                linewidth=7 * look.scale,
                alpha=0.45,
                solid_capstyle="round",
                zorder=2.5,
            )
            seg.set_gid("route")
    if at is None:
        _mark_failing_links(ax, topo, positions, look)
    _legend(fig, topo, drawn, route_colour if route else None, look, (notes_room + 0.05) / fh)
    if at is None and topo.outages:
        lines = []
        for outage in topo.outages:
            end = clock(outage.end) if outage.end is not None else "end of run"
            length = f" ({human_duration(outage.end - outage.start)})" if outage.end else ""
            lines.append(f"{outage.label} down {clock(outage.start)} – {end}{length}")
        shown = lines[:4] + ([f"... and {len(lines) - 4} more"] if len(lines) > 4 else [])
        fig.text(
            0.02,
            0.02,
            "Outages during the run: " + "; ".join(shown),
            fontsize=look.small,
            color=ERROR_COLOUR,
            va="bottom",
            wrap=True,
        )
    return fig


def _mark_failing_links(
    ax: Axes, topo: Topology, positions: dict[str, tuple[float, float]], look: Look
) -> None:
    """Over each link that goes down during the run, a red dashed line (gid ``link-fails``)."""
    failing = {frozenset(o.what) for o in topo.outages if o.kind == "link"}
    for link in topo.links:
        if link.key in failing and link.a in positions and link.b in positions:
            (xa, ya), (xb, yb) = positions[link.a], positions[link.b]
            (line,) = ax.plot(
                [xa, xb],
                [ya, yb],
                color=ERROR_COLOUR,
                linestyle=(0, (4, 3)),
                linewidth=look.line(2.2),
                zorder=2.2,
            )
            line.set_gid("link-fails")


def _legend(
    fig: Figure,
    topo: Topology,
    drawn: dict[str, Any],
    route_colour: str | None,
    look: Look,
    bottom: float,
) -> None:
    """What the shapes and lines mean, for the kinds and lines this picture has."""
    from matplotlib.lines import Line2D

    names = {"host": "host", "mailserver": "mail server", "router": "router", "dns": "DNS server"}
    handles = []
    kinds = {node.kind for node in topo.nodes.values()}
    for kind, name in names.items():
        if kind in kinds:
            handles.append(
                Line2D(
                    [],
                    [],
                    marker="s" if kind in ("mailserver", "dns") else "o",
                    markersize=9 * look.scale,
                    markerfacecolor=KIND_COLOURS[kind],
                    markeredgecolor="#333333",
                    linestyle="none",
                    label=name,
                )
            )
    gids = {line.get_gid() for line in drawn["links"].values()}
    if "link" in gids:
        handles.append(
            Line2D([], [], color="#333333", linewidth=look.line(1.5), label="link (latency, rate)")
        )
    if "dns-link" in gids:
        dns_names = {name for name, node in topo.nodes.items() if node.kind == "dns"}
        latencies = {round(link.latency * 1000, 3) for link in topo.links if link.key & dns_names}
        each = f", {latencies.pop():g} ms each" if len(latencies) == 1 else ""
        handles.append(
            Line2D(
                [],
                [],
                color="#8a8a8a",
                linestyle=":",
                linewidth=look.line(1.0),
                label=f"link to the DNS server (MX lookups{each})",
            )
        )
    if any(line.get_gid() == "link-fails" for line in fig.axes[0].lines):
        handles.append(
            Line2D(
                [],
                [],
                color=ERROR_COLOUR,
                linestyle=(0, (4, 3)),
                linewidth=look.line(2.2),
                label="goes down during the run",
            )
        )
    if "link-down" in gids:
        handles.append(
            Line2D([], [], color="#b0b0b0", linestyle="--", linewidth=look.line(1.5), label="down")
        )
    if route_colour is not None:
        handles.append(
            Line2D([], [], color=route_colour, linewidth=6 * look.scale, alpha=0.45, label="route")
        )
    legend = fig.legend(
        handles=handles,
        loc="lower center",
        bbox_to_anchor=(0.5, bottom),
        ncol=len(handles),
        fontsize=look.small,
        frameon=False,
        handlelength=2.5,
        columnspacing=1.6,
    )
    legend.set_gid("legend")
