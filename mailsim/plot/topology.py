"""The network as the trace describes it: nodes by site, links, outages, routes, and its figure.

Everything comes from records: ``net.node`` and ``net.link`` (written at t=0) give the graph,
``link.down``/``link.up``, ``node.down``/``node.up`` and ``service.down``/``service.up`` give the
outages, ``tcp.open`` the connections. :func:`read_topology` builds a :class:`Topology` that the
other figures share (lane order of the sequence diagram, outage shading of the timeline, routes of
the animation).

Where the nodes go is :mod:`mailsim.plot.topology_layout` (sites in a row, or around a hub
site); where the labels go is :mod:`mailsim.plot.placement` (measured, so none covers another
label or a node); this module reads the trace and draws.
"""

from __future__ import annotations

import itertools
import math
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
from mailsim.plot.placement import LabelPlacer, Spot
from mailsim.plot.topology_layout import node_positions as node_positions

if TYPE_CHECKING:
    import networkx as nx
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.text import Text

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

    def until(self, t_end: float) -> float:
        """When it is over: its end, or ``t_end`` (the end of the trace) if it never came up."""
        return t_end if self.end is None else self.end

    def overlaps(self, t0: float, t1: float) -> bool:
        """True when the outage is in force at some time between ``t0`` and ``t1``."""
        return self.start < t1 and self.until(math.inf) > t0


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

    def lane_order(self, names: Iterable[str], sites: list[str] | None = None) -> list[str]:
        """``names`` ordered as sequence-diagram lanes: by site, user hosts at the outer ends.

        Within the leftmost half of the sites, hosts come first and servers after them; in the
        rightmost half the other way round, so James's PC is at the far left and Steve's at the far
        right with the mail servers between. ``sites`` gives another order of the sites (default:
        :meth:`sites`). Nodes the trace never described go last.
        """
        names = list(dict.fromkeys(names))
        sites = self.sites() if sites is None else sites
        known = [n for n in self.nodes if n in names]
        unknown = [n for n in names if n not in self.nodes]
        # The middle of the sites that have lanes: a chart of India and the UK out of four
        # sites still has the UK's hosts at its right end.
        present = {self.nodes[n].site for n in known}
        sites = [site for site in sites if site in present]
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


def _latency_text(link: LinkInfo) -> str:
    ms = link.latency * 1000
    return f"{ms:.0f} ms" if ms >= 10 else f"{ms:.3g} ms"


def _link_label(link: LinkInfo) -> str:
    text = f"{_latency_text(link)}\n{link.bandwidth / 1e6:.4g} Mbit/s"
    if link.loss:
        text += f"\nloss {link.loss:.2%}"
    return text


def _group_label(group: Sequence[LinkInfo]) -> str:
    """One label for links of a site that are all alike (a LAN): said once, not on every link."""
    link = group[0]
    text = f"{len(group)} links, each\n{_latency_text(link)}, {link.bandwidth / 1e6:.4g} Mbit/s"
    if link.loss:
        text += f", loss {link.loss:.2%}"
    return text


def _alike_groups(topo: Topology, links: Iterable[LinkInfo]) -> list[list[LinkInfo]]:
    """Links inside one site that share an end node and their latency, rate and loss.

    A router with five office PCs on it has five such links; labelling each would stack five
    equal labels on each other, so the figure labels the group once.
    """
    groups: dict[tuple[str, str, float, float, float], list[LinkInfo]] = {}
    for link in links:
        a, b = topo.nodes.get(link.a), topo.nodes.get(link.b)
        if a is None or b is None or a.site != b.site:
            continue
        for end in (link.a, link.b):
            key = (a.site, end, link.latency, link.bandwidth, link.loss)
            groups.setdefault(key, []).append(link)
    chosen: list[list[LinkInfo]] = []
    used: set[frozenset[str]] = set()
    for group in sorted(groups.values(), key=len, reverse=True):
        group = [link for link in group if link.key not in used]
        if len(group) >= 2:
            chosen.append(group)
            used.update(link.key for link in group)
    return chosen


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

    Returned dict: ``"links"`` maps each link's node pair to its Line2D (gid ``link``, label
    ``a|b``; each site's band is a patch with gid ``site`` and the site as label),
    ``"nodes"`` maps node names to their marker Line2D (gid ``node``, label the node's name).
    Links down at ``at`` are grey and dashed (gid ``link-down``); nodes down at ``at`` are grey
    with a dashed edge. Links to a DNS server are thin, dotted and unlabelled (gid ``dns-link``):
    every mail server has one, and their labels would cover the links that carry the mail. Links
    of a site that are all alike (a LAN) get one label for the group (gid ``link-group-label``).
    Every label is placed where it covers no other label and no node (:mod:`placement`).
    """
    dns_nodes = {name for name, node in topo.nodes.items() if node.kind == "dns"}
    down_links, down_nodes, down_services = (
        topo.down_at(at) if at is not None else (set(), set(), set())
    )
    drawn = [link for link in topo.links if link.a in positions and link.b in positions]
    links: dict[frozenset[str], Any] = {}
    for link in drawn:
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
        line.set_label(f"{link.a}|{link.b}")
        links[link.key] = line
    nodes: dict[str, Any] = {}
    for node in topo.nodes.values():
        x, y = positions[node.name]
        down = node.name in down_nodes
        (marker,) = ax.plot(
            [x],
            [y],
            marker="s" if node.kind in ("mailserver", "dns") else "o",
            markersize=NODE_SIZE * look.scale,
            markerfacecolor="#e0e0e0" if down else KIND_COLOURS.get(node.kind, "#cccccc"),
            markeredgecolor=ERROR_COLOUR if down else "#333333",
            markeredgewidth=look.line(1.5),
            linestyle="none",
            zorder=4,
            label=node.name,
        )
        marker.set_gid("node-down" if down else "node")
        nodes[node.name] = marker
    _set_limits(ax, positions, labels)
    placer = LabelPlacer(ax) if labels else None
    if placer is not None:
        for marker in nodes.values():
            placer.block(marker.get_window_extent(placer.renderer))
        for link in drawn:
            placer.block_segment(positions[link.a], positions[link.b])
        owned = _node_labels(ax, topo, positions, placer, look, down_nodes, down_services)
        owned += _link_labels(ax, topo, positions, placer, look, drawn, down_links, dns_nodes)
    else:
        owned = []
    _site_bands(ax, topo, positions, placer, look, owned)
    return {"links": links, "nodes": nodes}


#: Size of a node marker in points in the default look.
NODE_SIZE = 22.0


#: Data units left beside a column of stacked nodes at the picture's edge, for their labels.
SIDE_ROOM = 2.6


def _limits(
    positions: dict[str, tuple[float, float]], labels: bool = True
) -> tuple[float, float, float, float]:
    """Data limits (x0, x1, y0, y1) with room for the labels beside the outermost nodes."""
    xs = [p[0] for p in positions.values()] or [0.0]
    ys = [p[1] for p in positions.values()] or [0.0]
    # Nodes stacked in one column get their labels beside them: leave room for those outside.
    columns = [x for x in xs if sum(1 for other in xs if abs(other - x) < 1e-9) > 1]
    edge = labels and columns and (min(columns) == min(xs) or max(columns) == max(xs))
    side = SIDE_ROOM if edge else 0.0
    return min(xs) - 0.7 - side, max(xs) + 0.7 + side, min(ys) - 1.0, max(ys) + 1.5


def _set_limits(ax: Axes, positions: dict[str, tuple[float, float]], labels: bool) -> None:
    x0, x1, y0, y1 = _limits(positions, labels)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal", adjustable="box")
    ax.axis("off")


def _node_labels(
    ax: Axes,
    topo: Topology,
    positions: dict[str, tuple[float, float]],
    placer: LabelPlacer,
    look: Look,
    down_nodes: set[str],
    down_services: set[tuple[str, int]],
) -> list[tuple[str, Text]]:
    """Name and address of every node: above a server, below the others, beside when crowded.

    Returns (site, label) pairs, so the site's band can be drawn around its labels too.
    """
    owned: list[tuple[str, Text]] = []
    xs = [p[0] for p in positions.values()]
    middle = (min(xs) + max(xs)) / 2
    gap = NODE_SIZE * look.scale / 2 + 6  # points from the node's centre to its label (and ring)
    # Servers and routers first: their labels matter more than those of the many hosts.
    order = sorted(topo.nodes.values(), key=lambda n: n.kind == "host")
    for node in order:
        x, y = positions[node.name]
        down = node.name in down_nodes
        caption = f"{node.name}\n{node.ip}" if node.ip else node.name
        text = ax.text(
            x,
            y,
            caption,
            fontsize=look.small + 0.5,
            color="#888888" if down else "#111111",
            zorder=5,
            linespacing=1.1,
        )
        text.set_gid("node-label")
        above = Spot(x, y, 0, gap, "center", "bottom")
        below = Spot(x, y, 0, -gap, "center", "top")
        outer = -1 if x < middle else 1
        outside = Spot(x, y, outer * gap, 0, "left" if outer > 0 else "right", "center")
        inside = Spot(x, y, -outer * gap, 0, "right" if outer > 0 else "left", "center")
        # A node with a neighbour right under or over it (a column of hosts) is named beside.
        stacked = any(
            other != node.name and abs(ox - x) < 1e-9 and abs(oy - y) < 1.5
            for other, (ox, oy) in positions.items()
        )
        if stacked:
            spots = [outside, inside, below, above]
        elif node.kind in ("mailserver", "dns"):
            spots = [above, below, outside, inside]
        else:
            spots = [below, above, outside, inside]
        # Corners last, for a node with links on every side (a core router, a LAN router).
        corner = gap * 0.75
        spots += [
            Spot(
                x,
                y,
                sx * corner,
                sy * corner,
                "left" if sx > 0 else "right",
                "top" if sy < 0 else "bottom",
            )
            for sy in (-1, 1)
            for sx in (outer, -outer)
        ]
        # Then further away, where the links leaving the node have spread apart.
        spots += [
            Spot(x, y, 0, -2 * gap, "center", "top"),
            Spot(x, y, 0, 2 * gap, "center", "bottom"),
        ]
        placer.place(text, spots)
        owned.append((node.site, text))
        notes = [f"port {port} down" for (n, port) in sorted(down_services) if n == node.name]
        if down:
            notes.insert(0, "DOWN")
        if notes:
            note = ax.text(
                x,
                y,
                ", ".join(notes),
                fontsize=look.small,
                color=ERROR_COLOUR,
                fontweight="bold",
                zorder=5,
            )
            note.set_gid("node-note")
            placer.place(note, [below, above, inside, outside])
            owned.append((node.site, note))
    return owned


def _link_labels(
    ax: Axes,
    topo: Topology,
    positions: dict[str, tuple[float, float]],
    placer: LabelPlacer,
    look: Look,
    drawn: Sequence[LinkInfo],
    down_links: set[frozenset[str]],
    dns_nodes: set[str],
) -> list[tuple[str, Text]]:
    """Latency and rate on each link (once for a group of alike links), on the line if it fits.

    Returns (site, label) pairs for the labels of links inside one site.
    """
    owned: list[tuple[str, Text]] = []
    labelled = [link for link in drawn if not link.key & dns_nodes]
    groups = _alike_groups(topo, [link for link in labelled if link.key not in down_links])
    grouped = {link.key for group in groups for link in group}
    index = {link.key: i for i, link in enumerate(drawn)}
    style: dict[str, Any] = {
        "fontsize": look.small,
        "linespacing": 1.1,
        # Opaque: through a see-through box a failing link's red dashes tint the figures.
        "bbox": {"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none"},
        "zorder": 3,
    }
    for link in labelled:
        if link.key in grouped:
            continue
        down = link.key in down_links
        text = ax.text(
            0,
            0,
            _link_label(link) + ("\nDOWN" if down else ""),
            color=ERROR_COLOUR if down else "#222222",
            **style,
        )
        text.set_gid("link-label")
        placer.place(text, _along(positions, link, look), own_segment=index[link.key])
        a, b = topo.nodes.get(link.a), topo.nodes.get(link.b)
        if a is not None and b is not None and a.site == b.site:
            owned.append((a.site, text))
    for group in groups:
        text = ax.text(0, 0, _group_label(group), color="#222222", **style)
        text.set_gid("link-group-label")
        middle = sorted(group, key=lambda link: positions[link.a][1] + positions[link.b][1])
        middle = middle[len(middle) // 2 :] + middle[: len(middle) // 2][::-1]
        spots = [spot for link in middle for spot in _along(positions, link, look)]
        ends = [positions[n] for link in group for n in (link.a, link.b)]
        gap = NODE_SIZE * look.scale / 2 + 3
        cx = sum(x for x, _ in ends) / len(ends)
        for extra in (0, 12, 24, 36):
            spots.append(Spot(cx, min(y for _, y in ends), 0, -gap - extra, "center", "top"))
            spots.append(Spot(cx, max(y for _, y in ends), 0, gap + extra, "center", "bottom"))
        placer.place(text, spots)
        owned.append((topo.nodes[group[0].a].site, text))
    return owned


def _along(positions: dict[str, tuple[float, float]], link: LinkInfo, look: Look) -> list[Spot]:
    """Candidate spots for a link's label: on the line from its middle outwards, then beside."""
    (xa, ya), (xb, yb) = positions[link.a], positions[link.b]
    spots = [
        Spot(xa + (xb - xa) * f, ya + (yb - ya) * f) for f in (0.5, 0.4, 0.6, 0.3, 0.7, 0.25, 0.75)
    ]
    gap = NODE_SIZE * look.scale / 2 + 2  # clear of the markers at the link's ends
    mx, my = (xa + xb) / 2, (ya + yb) / 2
    spots += [Spot(mx, my, 0, gap, "center", "bottom"), Spot(mx, my, 0, -gap, "center", "top")]
    return spots


def _site_bands(
    ax: Axes,
    topo: Topology,
    positions: dict[str, tuple[float, float]],
    placer: LabelPlacer | None,
    look: Look,
    owned: Sequence[tuple[str, Text]],
) -> None:
    """A coloured band behind each site's nodes and their labels, with the site's name on top."""
    from matplotlib.patches import FancyBboxPatch

    to_data = ax.transData.inverted()
    label_boxes: dict[str, list[Any]] = {}
    if placer is not None:
        for site, text in owned:
            label_boxes.setdefault(site, []).append(text.get_window_extent(placer.renderer))
    for index, site in enumerate(topo.sites()):
        members = [n.name for n in topo.nodes.values() if n.site == site]
        if not members:
            continue
        xs = [positions[n][0] for n in members]
        ys = [positions[n][1] for n in members]
        x0, x1, y0, y1 = min(xs) - 0.5, max(xs) + 0.5, min(ys) - 0.6, max(ys) + 0.6
        for box in label_boxes.get(site, []):
            if box is not None:
                (bx0, by0), (bx1, by1) = to_data.transform([(box.x0, box.y0), (box.x1, box.y1)])
                x0, x1 = min(x0, bx0 - 0.1), max(x1, bx1 + 0.1)
                y0, y1 = min(y0, by0 - 0.1), max(y1, by1 + 0.1)
        mid = (x0 + x1) / 2
        title = ax.text(
            mid,
            y1,
            site,
            ha="center",
            va="bottom",
            fontsize=look.title + 1,
            fontweight="bold",
            color="#444444",
            zorder=1,
        )
        title.set_gid("site-label")
        if placer is not None:
            box = placer.place(
                title,
                [
                    Spot(mid, y1, 0, 0, "center", "bottom"),
                    Spot(x0, y1, 4, 0, "left", "bottom"),
                    Spot(x1, y1, -4, 0, "right", "bottom"),
                ],
            )
            y1 = max(y1, to_data.transform([(box.x1, box.y1)])[0][1])
        else:
            y1 += 0.4
        band = FancyBboxPatch(
            (x0, y0),
            x1 - x0,
            y1 - y0,
            boxstyle="round,pad=0.02,rounding_size=0.2",
            facecolor=SITE_COLOURS[index % len(SITE_COLOURS)],
            edgecolor="none",
            zorder=0,
        )
        band.set_gid("site")
        band.set_label(site)
        ax.add_patch(band)


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

    A site joined to three or more others (a core router) sits in the middle with the others on
    both sides; alike links of a site (a LAN) are labelled once; no label covers another or a
    node. A legend says what the shapes and lines mean (host, mail server, router, DNS server; a
    link, a link to the DNS server, a link or node that goes down during the run, a link that is
    down, the route of a connection).

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
    x0, x1, y0, y1 = _limits(positions)
    legend_room = 0.55 * look.scale  # inches below the picture for the legend
    notes = _outage_notes(topo) if at is None else []
    # Inches for the lines of the footnote, from their type size.
    notes_room = len(notes) * look.small * NOTE_SPACING * 1.2 / 72 + 0.1 if notes else 0.0
    if look.slide:
        fig = new_figure(*SLIDE_INCHES)
    else:
        # Inches per data unit; a big network is drawn smaller, so it stays a screen wide.
        per_unit = min(1.0, DEFAULT_MAX_WIDTH / (1.7 * (x1 - x0)))
        width = max(6.0, 1.7 * per_unit * (x1 - x0))
        height = max(3.8, 1.5 * per_unit * (y1 - y0 - 0.1)) + legend_room + notes_room
        fig = new_figure(width, height)
    fh = fig.get_size_inches()[1]
    if topo.nodes:
        route_shown = route_colour if route else None
        legend_room = _legend(fig, topo, at, route_shown, look, (notes_room + 0.1) / fh)
    bottom = (legend_room + notes_room + 0.2) / fh
    ax = fig.add_axes((0.02, bottom, 0.96, 1 - bottom - 0.5 * look.scale / fh))
    ax.set_title(title, fontsize=look.title)
    if not topo.nodes:
        empty_note(ax, "the trace has no net.node records, so there is no topology to draw")
        return fig
    draw_network(ax, topo, positions, at=at, look=look)
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
        _mark_failing_nodes(ax, topo, positions, look)
    if notes:
        footnote = fig.text(
            0.02,
            0.1 / fh,
            "\n".join(notes),
            fontsize=look.small,
            color=ERROR_COLOUR,
            va="bottom",
            linespacing=NOTE_SPACING,
        )
        footnote.set_gid("outages")
    return fig


#: Widest default-size topology figure, inches: a network wider than this is drawn smaller.
DEFAULT_MAX_WIDTH = 18.0

#: Lines of the outage footnote at most (the last one counts the outages it leaves out), the
#: outage spans named on one line at most, and the footnote's line spacing.
OUTAGE_LINES = 4
SPANS_PER_LINE = 2
NOTE_SPACING = 1.3


def _outage_notes(topo: Topology) -> list[str]:
    """The footnote: one line per link or node that went down, at most :data:`OUTAGE_LINES`.

    A line names the first spans and counts the rest; when more links and nodes failed than
    there are lines, the last line says how many outages of how many others it leaves out.
    """
    by_what: dict[str, list[Outage]] = {}
    for outage in topo.outages:
        by_what.setdefault(outage.label, []).append(outage)
    lines = []
    for label, outages in by_what.items():
        spans = [_span(o) for o in outages[:SPANS_PER_LINE]]
        more = len(outages) - len(spans)
        times = f" {len(outages)} times" if len(outages) > 1 else ""
        lines.append(
            f"{label} down{times} " + "; ".join(spans) + (f"; and {more} more" if more else "")
        )
    if len(lines) > OUTAGE_LINES:
        rest = list(by_what.values())[OUTAGE_LINES - 1 :]
        count = sum(len(outages) for outages in rest)
        lines = [
            *lines[: OUTAGE_LINES - 1],
            f"... and {count} more outage{'s' if count > 1 else ''} of {len(rest)} more "
            "links and nodes (the timeline shows them all)",
        ]
    if lines:
        lines[0] = "Outages during the run: " + lines[0]
    return lines


def _span(outage: Outage) -> str:
    end = clock(outage.end) if outage.end is not None else "end of run"
    length = f" ({human_duration(outage.end - outage.start)})" if outage.end is not None else ""
    return f"{clock(outage.start)} – {end}{length}"


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
            line.set_label(f"{link.a}|{link.b}")


def _mark_failing_nodes(
    ax: Axes, topo: Topology, positions: dict[str, tuple[float, float]], look: Look
) -> None:
    """Around each node that goes down during the run, a red ring (gid ``node-fails``)."""
    failing = {o.what[0] for o in topo.outages if o.kind == "node"}
    for name in sorted(failing & positions.keys()):
        x, y = positions[name]
        (ring,) = ax.plot(
            [x],
            [y],
            marker="s" if topo.nodes[name].kind in ("mailserver", "dns") else "o",
            markersize=(NODE_SIZE + 7) * look.scale,
            markerfacecolor="none",
            markeredgecolor=ERROR_COLOUR,
            markeredgewidth=look.line(2.2),
            linestyle="none",
            zorder=3.9,
        )
        ring.set_gid("node-fails")


def _lines_shown(topo: Topology, at: float | None) -> set[str]:
    """The kinds of line the picture will have (the gids draw_network and the markers give)."""
    dns_nodes = {name for name, node in topo.nodes.items() if node.kind == "dns"}
    down_links = topo.down_at(at)[0] if at is not None else set()
    shown = set()
    for link in topo.links:
        if link.key in down_links:
            shown.add("link-down")
        else:
            shown.add("dns-link" if link.key & dns_nodes else "link")
    if at is None:
        keys = {link.key for link in topo.links}
        if any(o.kind == "link" and frozenset(o.what) in keys for o in topo.outages):
            shown.add("link-fails")
        if any(o.kind == "node" and o.what[0] in topo.nodes for o in topo.outages):
            shown.add("node-fails")
    return shown


def _legend(
    fig: Figure,
    topo: Topology,
    at: float | None,
    route_colour: str | None,
    look: Look,
    bottom: float,
) -> float:
    """What the shapes and lines mean, for the kinds and lines this picture has.

    Drawn before the network, at ``bottom`` (a fraction of the figure's height), in one row or,
    when that is wider than the figure, in two. Returns the height it takes, in inches.
    """
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
    gids = _lines_shown(topo, at)
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
    if "link-fails" in gids:
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
    if "node-fails" in gids:
        handles.append(
            Line2D(
                [],
                [],
                marker="o",
                markersize=11 * look.scale,
                markerfacecolor="none",
                markeredgecolor=ERROR_COLOUR,
                markeredgewidth=look.line(2.2),
                linestyle="none",
                label="node that goes down during the run",
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
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    for rows in (1, 2):
        legend = fig.legend(
            handles=handles,
            loc="lower center",
            bbox_to_anchor=(0.5, bottom),
            ncol=-(-len(handles) // rows),
            fontsize=look.small,
            frameon=False,
            handlelength=2.5,
            columnspacing=1.6,
        )
        legend.set_gid("legend")
        box = legend.get_window_extent(renderer)
        if box.width <= 0.98 * fig.bbox.width or rows == 2:
            break
        legend.remove()
    return float(box.height / fig.dpi)
