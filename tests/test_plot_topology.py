"""The topology figure: sites left to right, one edge per link, outages greyed, routes drawn."""

from __future__ import annotations

import re
from functools import cache

import numpy as np
import pytest
from matplotlib.colors import to_rgb
from plot_traces import (
    LINK_DOWN_AT,
    LINK_UP_AT,
    artists_with_gid,
    bounce_after_days,
    james_to_steve,
    keep,
    link_outage,
)

import mailsim
from mailsim.plot import PlotError, read_topology, topology_figure
from mailsim.plot._style import ERROR_COLOUR
from mailsim.plot.topology import node_positions
from mailsim.scenario.catalog import bundled


def _edges(fig):
    return artists_with_gid(fig, "link") + artists_with_gid(fig, "link-down")


def test_one_edge_per_link_labelled_with_latency_and_bandwidth():
    fig = topology_figure(james_to_steve())
    keep(fig, "topology")
    assert len(_edges(fig)) == 5
    texts = {t.get_text() for t in fig.axes[0].texts}
    # india-gw-usa-gw: 0.110 s and 20e6 bit/s.
    assert "110 ms\n20 Mbit/s" in texts
    assert "2 ms\n100 Mbit/s" in texts


def test_the_down_link_is_greyed_at_a_time_inside_the_outage():
    records = link_outage()
    inside = (LINK_DOWN_AT + LINK_UP_AT) / 2
    fig = topology_figure(records, at=inside)
    keep(fig, "topology_outage")
    (down,) = artists_with_gid(fig, "link-down")
    assert down.get_linestyle() == "--"
    # The link between the two gateways, which sit on the centre line (y = 0).
    assert list(down.get_ydata()) == [0.0, 0.0]
    assert len(artists_with_gid(fig, "link")) == 4
    assert artists_with_gid(topology_figure(records, at=LINK_UP_AT + 1), "link-down") == []


def test_a_down_node_is_greyed_and_named():
    fig = topology_figure(bounce_after_days(), at=3600.0)
    assert len(artists_with_gid(fig, "node-down")) == 1
    assert "DOWN" in {t.get_text() for t in fig.axes[0].texts}


def test_the_route_of_a_connection_is_the_shortest_path_by_latency():
    fig = topology_figure(james_to_steve(), connection=2)
    # india-mail -> india-gw -> usa-gw -> usa-mail: three segments.
    assert len(artists_with_gid(fig, "route")) == 3
    assert "connection 2 (SMTP)" in fig.axes[0].get_title()
    fig = topology_figure(james_to_steve(), connection=3)
    assert len(artists_with_gid(fig, "route")) == 1  # steve-pc and usa-mail share a link
    assert "(POP3)" in fig.axes[0].get_title()


def test_a_path_written_in_the_trace_wins_over_the_computed_route():
    records = james_to_steve()
    for rec in records:
        if rec["type"] == "tcp.open" and rec["conn"] == 2:
            rec["path"] = ["india-mail", "india-gw", "usa-gw", "usa-mail", "steve-pc"]
    fig = topology_figure(records, connection=2)
    assert len(artists_with_gid(fig, "route")) == 4


def test_unknown_connection_is_a_clear_error():
    with pytest.raises(PlotError, match="connection 42 does not appear"):
        topology_figure(james_to_steve(), connection=42)


def test_india_is_left_and_usa_right_whatever_the_order_of_the_trace():
    records = james_to_steve()
    nodes = [r for r in records if r["type"] == "net.node"]
    rest = [r for r in records if r["type"] != "net.node"]
    records = list(reversed(nodes)) + rest  # USA nodes first now
    topo = read_topology(records)
    assert topo.sites() == ["India", "USA"]
    positions = node_positions(topo)
    # james-pc outermost left, then india-mail, the routers inside, steve-pc outermost right.
    order = sorted(positions, key=lambda n: positions[n][0])
    assert order[0] == "james-pc" and order[-1] == "steve-pc"
    assert positions["india-gw"][0] < positions["usa-gw"][0]


def test_lane_order_puts_hosts_at_the_ends_and_splits_them_in_a_single_site():
    topo = read_topology(james_to_steve())
    assert topo.lane_order(["usa-mail", "steve-pc", "india-mail", "james-pc"]) == [
        "james-pc",
        "india-mail",
        "usa-mail",
        "steve-pc",
    ]
    lan = read_topology(
        [
            {"t": 0.0, "type": "net.node", "node": n, "kind": k, "site": "LAN", "ip": "192.0.2.1"}
            for n, k in (("alice-pc", "host"), ("bob-pc", "host"), ("lan-mail", "mailserver"))
        ]
    )
    assert lan.lane_order(["bob-pc", "lan-mail", "alice-pc"]) == ["alice-pc", "lan-mail", "bob-pc"]


def test_outages_of_the_run_are_listed_when_no_time_is_chosen():
    fig = topology_figure(link_outage())
    notes = [t.get_text() for t in fig.texts]
    # Down at 120 s, up at 9000 s: 2 h 28 min.
    assert any(
        "link india-gw–usa-gw down 00:02:00.000 – 02:30:00.000 (2 h 28 min)" in n for n in notes
    )


def test_a_trace_without_topology_draws_a_note():
    fig = topology_figure([{"t": 1.0, "type": "node.down", "node": "x"}])
    assert any("no net.node records" in t.get_text() for t in fig.axes[0].texts)


def test_a_route_never_passes_through_a_dns_node_or_a_host() -> None:
    from mailsim.plot.topology import read_topology
    from mailsim.trace import Recorder

    rec = Recorder(strict=True)
    for node, kind in (("india-mail", "mailserver"), ("usa-mail", "mailserver"), ("dns", "dns")):
        rec.emit("net.node", node=node, kind=kind, site="", ip="192.0.2.1")
    rec.emit("net.link", a="india-mail", b="usa-mail", latency=0.110, bandwidth=1e6, loss=0.0)
    rec.emit("net.link", a="dns", b="india-mail", latency=0.001, bandwidth=1e6, loss=0.0)
    rec.emit("net.link", a="dns", b="usa-mail", latency=0.001, bandwidth=1e6, loss=0.0)
    topology = read_topology(rec.records)
    assert topology.route("india-mail", "usa-mail") == ["india-mail", "usa-mail"]
    assert topology.route("india-mail", "dns") == ["india-mail", "dns"]


# --- labels that cover nothing, for every bundled scenario --------------------------------------


@cache
def _scenario_records(name: str) -> tuple[dict, ...]:
    # The summary trace keeps net.*, link.* and node.* records: all the topology reads.
    return tuple(mailsim.load(name).run(trace="summary").records)


def _label_boxes(fig):
    """(what, bbox in pixels) of every text on the picture, and of every node marker."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    texts = [
        (repr(t.get_text()), t.get_window_extent(renderer))
        for t in ax.texts
        if t.get_visible() and t.get_text().strip()
    ]
    nodes = [
        (f"node {m.get_label()}", m.get_window_extent(renderer))
        for m in ax.lines
        if m.get_gid() in ("node", "node-down")
    ]
    return texts, nodes


def _overlap(a, b) -> bool:
    # One pixel of slack: boxes that only touch do not collide.
    return a.x0 + 1 < b.x1 and b.x0 + 1 < a.x1 and a.y0 + 1 < b.y1 and b.y0 + 1 < a.y1


@pytest.mark.parametrize("size", ["default", "slide"])
@pytest.mark.parametrize("name", [name for name, _ in bundled()])
def test_no_label_covers_another_label_or_a_node(name: str, size: str) -> None:
    fig = topology_figure(list(_scenario_records(name)), size=size)
    keep(fig, f"topology_{name}_{size}")
    texts, nodes = _label_boxes(fig)
    clashes = [
        f"{what} / {other}"
        for i, (what, box) in enumerate(texts)
        for other, other_box in texts[i + 1 :] + nodes
        if _overlap(box, other_box)
    ]
    assert not clashes, clashes
    inside = fig.bbox
    outside = [w for w, b in texts if b.x0 < inside.x0 or b.x1 > inside.x1 or b.y0 < inside.y0]
    assert not outside, outside


def test_the_links_of_a_lan_are_labelled_once_per_site() -> None:
    fig = topology_figure(list(_scenario_records("busy-day")), size="slide")
    texts = [t.get_text() for t in fig.axes[0].texts]
    # India and the USA have five office PCs on their LAN router, the UK three, Brazil two.
    assert texts.count("5 links, each\n2 ms, 100 Mbit/s") == 2
    assert texts.count("3 links, each\n2 ms, 100 Mbit/s") == 1
    assert texts.count("2 links, each\n2 ms, 100 Mbit/s") == 1
    assert "2 ms\n100 Mbit/s" not in texts


def _segment_crosses(box, a, b) -> bool:
    """True when the segment a-b (pixels) passes through ``box``: sampled finely enough."""
    steps = 200
    return any(
        box.contains(a[0] + (b[0] - a[0]) * i / steps, a[1] + (b[1] - a[1]) * i / steps)
        for i in range(1, steps)
    )


@pytest.mark.parametrize("name", ["busy-day", "persistent-connection"])
def test_no_backbone_link_runs_through_another_site(name: str) -> None:
    records = list(_scenario_records(name))
    topo = read_topology(records)
    fig = topology_figure(records, size="slide")
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    bands = {band.get_label(): band.get_window_extent(renderer) for band in
             artists_with_gid(fig, "site")}  # fmt: skip
    assert set(bands) == set(topo.sites())
    lines = artists_with_gid(fig, "link") + artists_with_gid(fig, "link-fails")
    crossings = []
    for line in lines:
        sites = {topo.nodes[n].site for n in line.get_label().split("|")}
        a, b = line.get_transform().transform(line.get_xydata())
        for site, box in bands.items():
            if site not in sites and _segment_crosses(box, a, b):
                crossings.append(f"{line.get_label()} crosses {site}")
    assert not crossings, crossings


def test_the_outage_footnote_is_a_few_legible_lines_clear_of_the_legend() -> None:
    from mailsim.plot._style import LOOKS

    for size in ("default", "slide"):
        fig = topology_figure(list(_scenario_records("busy-day")), size=size)
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        (note,) = artists_with_gid(fig, "outages")
        (legend,) = artists_with_gid(fig, "legend")
        lines = note.get_text().split("\n")
        assert 1 < len(lines) <= 4
        # busy-day's four links fail eleven times: every outage is named or counted.
        named = note.get_text().count(" – ")
        counted = sum(int(n) for n in re.findall(r"and (\d+) more", note.get_text()))
        outages = read_topology(_scenario_records("busy-day")).outages
        assert named + counted == len(outages) > named, note.get_text()
        assert note.get_fontsize() >= LOOKS[size].small
        box, legend_box = note.get_window_extent(renderer), legend.get_window_extent(renderer)
        assert box.y1 < legend_box.y0 and box.x1 <= fig.bbox.x1 and box.y0 >= 0


def test_a_node_that_goes_down_during_the_run_is_ringed_and_in_the_legend() -> None:
    fig = topology_figure(list(_scenario_records("bounce-after-days")), size="slide")
    (ring,) = artists_with_gid(fig, "node-fails")
    assert ring.get_markeredgecolor() == ERROR_COLOUR
    (legend,) = artists_with_gid(fig, "legend")
    assert "node that goes down during the run" in [t.get_text() for t in legend.get_texts()]
    fig.canvas.draw()
    assert legend.get_window_extent(fig.canvas.get_renderer()).x1 <= fig.bbox.x1


@pytest.mark.parametrize("size", ["default", "slide"])
@pytest.mark.parametrize("name", [name for name, _ in bundled()])
def test_no_link_runs_through_a_node_name(name: str, size: str) -> None:
    fig = topology_figure(list(_scenario_records(name)), size=size)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    gids = ("link", "dns-link", "link-fails", "link-down")
    segments = [line for line in ax.lines if line.get_gid() in gids]
    crossed = []
    for text in ax.texts:
        if text.get_gid() not in ("node-label", "site-label"):
            continue
        box = text.get_window_extent(renderer)
        for line in segments:
            a, b = line.get_transform().transform(line.get_xydata())
            if _segment_crosses(box, a, b):
                crossed.append(f"{line.get_label()} through {text.get_text()!r}")
    assert not crossed, crossed


def test_a_failing_link_s_dashes_do_not_show_through_its_label() -> None:
    fig = topology_figure(list(_scenario_records("link-outage")), size="slide")
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    (label,) = [t for t in fig.axes[0].texts if t.get_text() == "110 ms\n20 Mbit/s"]
    box = label.get_window_extent(renderer)
    pixels = np.asarray(fig.canvas.buffer_rgba())[:, :, :3].astype(int)
    height = pixels.shape[0]
    inside = pixels[height - int(box.y1) : height - int(box.y0), int(box.x0) : int(box.x1)].reshape(
        -1, 3
    )
    red = np.array(to_rgb(ERROR_COLOUR)) * 255
    # Red, or white tinted by red through a half-transparent box: more red than green and blue.
    tinted = (inside[:, 0] - inside[:, 1:].max(axis=1) > 12) & (
        np.abs(inside - red).sum(axis=1) < 600
    )
    assert not tinted.any(), f"{tinted.sum()} reddish pixels inside the label"
