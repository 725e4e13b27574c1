"""Figures that show the lesson: slide size for every figure, and what the sequence chart keeps."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest
from PIL import Image
from plot_traces import artists_with_gid, bounce_after_days, james_to_steve, keep, link_outage

import mailsim
from mailsim.plot import (
    PlotError,
    animate,
    attempts_histogram,
    delivery_timeline,
    latency_cdf,
    queue_figure,
    render_all,
    sequence_diagram,
    state_diagram,
    topology_figure,
)
from mailsim.plot._style import LOOKS
from mailsim.protocol.smtp import SERVER_TRANSITIONS
from mailsim.trace.connections import connections


@cache
def records(name: str) -> list[dict]:
    return mailsim.load(name).run().records


FIGURES = {
    "sequence": lambda size: sequence_diagram(james_to_steve(), hide_data=True, size=size),
    "timeline": lambda size: delivery_timeline(link_outage(), size=size),
    "topology": lambda size: topology_figure(link_outage(), size=size),
    "queues": lambda size: queue_figure(link_outage(), size=size),
    "latency": lambda size: latency_cdf(link_outage(), size=size),
    "attempts": lambda size: attempts_histogram(link_outage(), size=size),
    "states": lambda size: state_diagram(SERVER_TRANSITIONS, title="SMTP server", size=size),
    "animation": lambda size: animate(james_to_steve(), fps=1, duration=2, size=size)._fig,
}


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_every_figure_has_a_16_by_9_slide_size_with_large_type(name: str) -> None:
    fig = FIGURES[name]("slide")
    keep(fig, f"slide_{name}")
    assert tuple(fig.get_size_inches()) == (16.0, 9.0)
    if name == "states":
        return  # its type zooms with the picture to fill the slide, so the layout stays as it is
    default = FIGURES[name]("default")
    # Type at slide size is larger than by default.
    biggest = max(t.get_fontsize() for t in fig.findobj(lambda a: hasattr(a, "get_fontsize")))
    usual = max(t.get_fontsize() for t in default.findobj(lambda a: hasattr(a, "get_fontsize")))
    assert biggest > usual


def test_slide_type_is_at_least_11_points() -> None:
    fig = sequence_diagram(link_outage(), hide_data=True, group_bursts=True, size="slide")
    sizes = [t.get_fontsize() for t in fig.findobj(lambda a: hasattr(a, "get_fontsize"))]
    assert min(sizes) >= 0.85 * LOOKS["slide"].small >= 9.5


def test_an_unknown_size_is_a_clear_error() -> None:
    with pytest.raises(PlotError, match="size must be 'default' or 'slide', got 'poster'"):
        topology_figure(james_to_steve(), size="poster")


def test_render_all_at_slide_size_writes_1920_by_1080_pictures(tmp_path: Path) -> None:
    for path in render_all(link_outage(), tmp_path, size="slide"):
        with Image.open(path) as image:
            assert image.size == (1920, 1080), path.name


def test_a_default_sequence_chart_stays_short_enough_to_scroll(tmp_path: Path) -> None:
    render_all(records("link-outage"), tmp_path)
    with Image.open(tmp_path / "sequence.png") as image:
        assert image.size[1] < 4000  # it was 9888 pixels, mostly empty POP3 checks


def _drawn(fig) -> set[int]:
    """Connections drawn line by line or as a box."""
    conns = {int(t.get_text().split(":")[0].split()[1]) for t in fig.axes[0].texts
             if t.get_text().startswith("conn ")}  # fmt: skip
    return conns


@pytest.mark.parametrize("size", ["default", "slide"])
def test_link_outage_draws_the_delivery_after_the_outage_and_steves_fetch(size: str) -> None:
    recs = records("link-outage")
    fig = sequence_diagram(recs, hide_data=True, group_bursts=True, max_rows=160, size=size)
    keep(fig, f"link_outage_sequence_{size}")
    found = connections(recs).values()
    delivery = next(c.conn for c in found if c.role == "relay" and c.messages)
    fetch = next(c.conn for c in found if c.role == "mailbox" and c.messages)
    assert {delivery, fetch} <= _drawn(fig)
    # The empty checks are counted in words, not drawn.
    folded = " ".join(t.get_text() for t in artists_with_gid(fig, "folded"))
    assert "checked its mailbox on usa-mail" in folded and "nothing new" in folded
    assert artists_with_gid(fig, "tcp-fail"), "the failed tries of the story are drawn"


@pytest.mark.parametrize("size", ["default", "slide"])
def test_persistent_connection_draws_indias_one_connection_and_the_uks_five(size: str) -> None:
    recs = records("persistent-connection")
    fig = sequence_diagram(recs, hide_data=True, group_bursts=True, max_rows=160, size=size)
    keep(fig, f"persistent_sequence_{size}")
    relays = [c for c in connections(recs).values() if c.role == "relay"]
    india = [c.conn for c in relays if c.client == "india-mail"]
    uk = [c.conn for c in relays if c.client == "uk-mail"]
    assert len(india) == 1 and len(uk) == 5
    assert set(india + uk) <= _drawn(fig)


def test_a_connection_that_does_not_fit_is_a_box_saying_what_it_carried() -> None:
    fig = sequence_diagram(records("persistent-connection"), hide_data=True, size="slide")
    boxes = artists_with_gid(fig, "connection-box")
    assert boxes
    texts = [t.get_text() for t in artists_with_gid(fig, "connection-box-label")]
    assert any("5 messages" in t for t in texts), texts
    # India's one relay says its round trips and how long it took: 2.5 s for all five.
    assert any(re.fullmatch(r"14 round trips, 2\.\d+ s", t) for t in texts), texts


def test_group_bursts_joins_a_multi_line_reply_into_one_arrow() -> None:
    recs = records("james-to-steve")
    relay = next(c.conn for c in connections(recs).values() if c.role == "relay")
    apart = sequence_diagram(recs, connection=relay)
    joined = sequence_diagram(recs, connection=relay, group_bursts=True)
    assert len(artists_with_gid(joined, "smtp-line")) < len(artists_with_gid(apart, "smtp-line"))
    labels = [t.get_text() for t in artists_with_gid(joined, "smtp-line-label")]
    assert any(label.endswith("lines)") and label.startswith("250-") for label in labels), labels


def test_render_all_draws_steady_retries_on_a_linear_time_axis(tmp_path: Path) -> None:
    figure = delivery_timeline(bounce_after_days(), max_rows=40)
    assert figure.axes[0].get_xscale() == "linear"
    render_all(bounce_after_days(), tmp_path, dpi=30)  # no log axis asked for any more


def test_topology_has_a_legend_and_quiet_dns_links() -> None:
    fig = topology_figure(records("link-outage"))
    (legend,) = artists_with_gid(fig, "legend")
    labels = [t.get_text() for t in legend.get_texts()]
    assert {"host", "mail server", "router", "DNS server"} <= set(labels)
    assert "goes down during the run" in labels
    assert artists_with_gid(fig, "dns-link")  # dotted, and without labels
    assert len(artists_with_gid(fig, "link-fails")) == 1


def test_queue_lines_differ_in_style_not_only_in_colour() -> None:
    fig = queue_figure(records("persistent-connection"))
    lines = artists_with_gid(fig, "queue")
    assert len(lines) == 2
    assert lines[0].get_linestyle() != lines[1].get_linestyle()
    assert lines[0].get_marker() != lines[1].get_marker()
    assert lines[0].get_linewidth() > lines[1].get_linewidth()


@pytest.mark.parametrize("size", ["default", "slide"])
def test_queue_chart_cuts_the_idle_time_between_two_bursts(size: str) -> None:
    # India's five messages leave over one connection in ~2 s at t=10 s, the UK's over five in
    # ~5 s at t=60 s: with the 48 s in between cut out, both drains are wide enough to compare.
    fig = queue_figure(records("persistent-connection"), size=size)
    keep(fig, f"queues_persistent_{size}")
    lines = {line.get_label(): line for line in artists_with_gid(fig, "queue")}
    ax = lines["india-mail"].axes
    lo, hi = ax.get_xlim()
    for line in lines.values():
        xs = [x for x in line.get_xdata() if x == x]  # without the NaN pen lifts
        assert (max(xs) - min(xs)) / (hi - lo) > 0.15, line.get_label()  # was 4% for India
    (cut,) = [t.get_text() for t in ax.texts if t.get_gid() == "queue-cut-label"]
    assert cut.endswith(" s idle") and 40 < float(cut.split()[0]) < 50
    ticks = [float(t.get_text()) for t in ax.get_xticklabels() if t.get_text()]
    assert min(ticks) <= 12 and max(ticks) >= 60  # labelled in real simulated time
    assert "idle stretches (every queue empty) cut out" in ax.get_xlabel()
    # A queue that is never empty keeps its whole axis.
    assert "cut" not in queue_figure(link_outage(), size=size).axes[0].get_xlabel()


def test_reply_codes_timeline_shows_the_replies_and_lists_only_what_is_seen() -> None:
    fig = delivery_timeline(records("reply-codes"), size="slide")
    keep(fig, "timeline_reply_codes_slide")
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.texts if t.get_gid() == "timeline-label"]
    assert "451 Greylisted, please try again later" in labels  # was cut to "451 Greylisted, …"
    assert any(
        label.startswith("550 <stev@usa.com>: Recipient address rejected") for label in labels
    )
    rows = [t.get_text() for t in ax.get_yticklabels()]
    assert rows.count("bounce report (DSN) → james@india.com") == 2
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    # The refused tries sit under the bounce's cross, the accepted ones under the star.
    assert "attempt: permanent failure" not in legend and "attempt: accepted" not in legend
    assert {"attempt: temporary failure", "bounced", "delivered to mailbox"} <= set(legend)


@pytest.mark.parametrize("size", ["default", "slide"])
def test_persistent_connection_lanes_put_the_shared_destination_in_the_middle(size: str) -> None:
    # India's and the UK's relays both go to usa-mail: with usa-mail between the two sites no
    # connection spans a lane it has nothing to do with (india-mail's box covered ann-pc's and
    # uk-mail's lanes), and each site's lanes stay together, its host at the outer end.
    fig = sequence_diagram(records("persistent-connection"), size=size)
    lanes = [t.get_text().split("\n")[0] for t in artists_with_gid(fig, "lane")]
    servers = [lane for lane in lanes if lane != "steve-pc"]  # drawn when his fetch fits
    assert servers == ["james-pc", "india-mail", "usa-mail", "uk-mail", "ann-pc"], lanes
