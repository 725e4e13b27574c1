"""Where each node of a topology goes on the figure (and the animation), in data units.

Two layouts. A chain of sites (India - USA, perhaps with an Internet site holding the DNS server)
is a row of site columns from left to right, India first and USA last: hosts at the outer edge,
mail and DNS servers in the middle, routers toward the neighbouring sites. When one site joins
three or more others (a core router, as in busy-day), a row would make the backbone links of the
outer sites run through the boxes of the inner ones; that site goes in the middle instead, and the
others are stacked in a column on each side of it, each with its gateway next to the core, so
every backbone link is short and crosses no other site.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mailsim.plot.topology import NodeInfo, Topology

Positions = dict[str, tuple[float, float]]

#: Sites joined to at least this many other sites are drawn as the hub in the middle.
HUB_NEIGHBOURS = 3
#: Distance between the columns of a site (data units); the last, the hosts, gets more room.
COLUMN = 2.6
HOST_COLUMN = 1.8
#: Vertical distance between hosts stacked in one column, and the most hosts in one column.
HOST_ROW = 0.85
MAX_ROWS = 5
#: From the hub's centre to the gateway column of a site beside it.
HUB_GAP = 3.4
#: Vertical room between two sites stacked on one side (band padding and the site's title).
SITE_GAP = 3.0


def node_positions(topo: Topology) -> Positions:
    """Where each node goes: the hub layout when one site joins three or more, else a row."""
    hub = _hub_site(topo)
    if hub is None:
        return _row_layout(topo)
    return _hub_layout(topo, hub)


def _site_links(topo: Topology) -> dict[str, set[str]]:
    """For each site, the sites it has a link to (links to DNS servers left out)."""
    neighbours: dict[str, set[str]] = {site: set() for site in topo.sites()}
    for link in topo.links:
        a, b = topo.nodes.get(link.a), topo.nodes.get(link.b)
        if a is None or b is None or "dns" in (a.kind, b.kind) or a.site == b.site:
            continue
        neighbours[a.site].add(b.site)
        neighbours[b.site].add(a.site)
    return neighbours


def _hub_site(topo: Topology) -> str | None:
    neighbours = _site_links(topo)
    if not neighbours:
        return None
    site = max(neighbours, key=lambda s: len(neighbours[s]))
    return site if len(neighbours[site]) >= HUB_NEIGHBOURS else None


def _row_layout(topo: Topology) -> Positions:
    """Columns per site: hosts outermost, then DNS and mail servers, then routers toward the
    middle of the picture (mirrored for the sites right of the centre). Kinds are also staggered
    vertically (servers above, hosts below, routers on the centre line) so that a straight link
    from a host to a router does not run through the server column.
    """
    sites = topo.sites()
    center = (len(sites) - 1) / 2
    stagger = {"host": -0.9, "dns": 1.8, "mailserver": 0.9, "router": 0.0}
    positions: Positions = {}
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


def _hub_layout(topo: Topology, hub: str) -> Positions:
    """The hub site at the centre, the other sites stacked on its left and right.

    Sites keep the order of :meth:`Topology.sites` (India first, USA last): the first half goes
    left, top to bottom, the rest right. Within a site, columns go outwards by the number of
    links from the site's gateway (the node linked to another site).
    """
    positions: Positions = {}
    members = [n for n in topo.nodes.values() if n.site == hub]
    routers = [n for n in members if n.kind == "router"] or members[:1]
    for i, node in enumerate(routers):
        positions[node.name] = (0.0, (i - (len(routers) - 1) / 2) * 1.6)
    servers = [n for n in members if n.kind in ("dns", "mailserver") and n.name not in positions]
    for i, node in enumerate(servers):
        positions[node.name] = ((i - (len(servers) - 1) / 2) * 1.2, 1.8)
    others = [n for n in members if n.name not in positions]
    for i, node in enumerate(others):
        positions[node.name] = ((i - (len(others) - 1) / 2) * 1.2, -1.8)

    spokes = [s for s in topo.sites() if s != hub]
    left = spokes[: (len(spokes) + 1) // 2]
    right = spokes[len(left) :]
    for side, sites in ((-1, left), (1, right)):
        blocks = [_site_block(topo, site) for site in sites]
        heights = [_height(block) for block in blocks]
        total = sum(heights) + SITE_GAP * (len(blocks) - 1)
        top = total / 2
        for block, height in zip(blocks, heights, strict=True):
            # Each block is centred on its own y = 0; put its top at ``top``.
            ys = [y for _, y in block.values()]
            shift = top - max(ys)
            for name, (x, y) in block.items():
                positions[name] = (side * (HUB_GAP + x), y + shift)
            top -= height + SITE_GAP
    return positions


def _height(block: Positions) -> float:
    ys = [y for _, y in block.values()]
    return max(ys) - min(ys)


def _site_block(topo: Topology, site: str) -> Positions:
    """One spoke site on its own: x grows outwards from the gateway (x = 0), y centred on 0."""
    members = [n for n in topo.nodes.values() if n.site == site]
    names = {n.name for n in members}
    inside: dict[str, set[str]] = {n: set() for n in names}
    gateways: list[str] = []
    for link in topo.links:
        a, b = topo.nodes.get(link.a), topo.nodes.get(link.b)
        if a is None or b is None or "dns" in (a.kind, b.kind):
            continue
        if a.name in names and b.name in names:
            inside[a.name].add(b.name)
            inside[b.name].add(a.name)
        elif a.name in names:
            gateways.append(a.name)
        elif b.name in names:
            gateways.append(b.name)
    depth = _depths(inside, gateways or [min(members, key=lambda n: -_column_rank(n.kind)).name])
    columns: dict[int, list[str]] = {}
    for node in members:
        columns.setdefault(depth.get(node.name, max(depth.values(), default=0) + 1), []).append(
            node.name
        )
    block: Positions = {}
    x = 0.0
    for column in sorted(columns):
        nodes = columns[column]
        hosts = all(topo.nodes[n].kind == "host" for n in nodes)
        if column:
            x += HOST_COLUMN if hosts else COLUMN
        row = HOST_ROW if hosts else 1.2
        # Long columns wrap outwards into more columns of at most MAX_ROWS.
        for start in range(0, len(nodes), MAX_ROWS):
            part = nodes[start : start + MAX_ROWS]
            if start:
                x += HOST_COLUMN
            for i, name in enumerate(part):
                block[name] = (x, ((len(part) - 1) / 2 - i) * row)
    return block


def _depths(inside: dict[str, set[str]], starts: list[str]) -> dict[str, int]:
    """Links from the nearest of ``starts`` to every node reachable inside the site."""
    depth = {name: 0 for name in starts}
    queue = deque(starts)
    while queue:
        name = queue.popleft()
        for other in sorted(inside.get(name, ())):
            if other not in depth:
                depth[other] = depth[name] + 1
                queue.append(other)
    return depth
