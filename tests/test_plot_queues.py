"""Queue lengths, latency CDFs and attempt histograms, from the trace's mail records."""

from __future__ import annotations

import itertools

from plot_traces import (
    OUTAGE_MESSAGES,
    artists_with_gid,
    bounce_after_days,
    james_to_steve,
    keep,
    link_outage,
)

from mailsim.plot import attempts_histogram, latency_cdf, queue_figure, queue_lengths


def test_queue_fills_during_the_outage_and_drains_over_the_shared_connection():
    series = queue_lengths(link_outage())
    assert list(series) == ["india-mail"]
    lengths = [n for _, n in series["india-mail"]]
    # Six messages, seven (message, recipient) pairs, all queued before the link comes back.
    assert max(lengths) == 7
    assert lengths[-1] == 0
    fig = queue_figure(link_outage())
    keep(fig, "queues_outage")
    (line,) = artists_with_gid(fig, "queue")
    assert line.get_label() == "india-mail"
    assert len(artists_with_gid(fig, "outage")) == 1


def test_a_delivery_recorded_at_the_receiver_empties_the_senders_queue():
    series = queue_lengths(james_to_steve())
    # mail.queue at india-mail, then mail.deliver at usa-mail: india-mail goes 0 -> 1 -> 0.
    assert [n for _, n in series["india-mail"]] == [0, 1, 0]


def test_a_pair_queued_at_the_next_server_moves_there():
    records = [
        {"t": 1.0, "type": "mail.queue", "msg": "m", "node": "a", "rcpts": ["x@y"], "queued": 1},
        {"t": 2.0, "type": "mail.queue", "msg": "m", "node": "b", "rcpts": ["x@y"], "queued": 1},
        {"t": 3.0, "type": "mail.deliver", "msg": "m", "node": "b", "rcpt": "x@y", "mailbox": "x"},
    ]
    series = queue_lengths(records)
    assert series == {"a": [(1.0, 0), (1.0, 1), (2.0, 0)], "b": [(2.0, 0), (2.0, 1), (3.0, 0)]}


def test_latency_cdf_compares_runs_and_names_the_undelivered_ones():
    fig = latency_cdf(
        {"link outage": link_outage(), "tutorial": james_to_steve(), "bounce": bounce_after_days()}
    )
    keep(fig, "latency_cdf")
    curves = artists_with_gid(fig, "cdf")
    assert len(curves) == 2  # the bounce run delivered nothing
    outage = next(c for c in curves if c.get_label().startswith("link outage"))
    assert outage.get_label().startswith("link outage: 7/7 delivered, median 2 h")
    assert outage.get_ydata()[-1] == 1.0
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "bounce: 0/1 delivered" in labels
    # 1.5 s next to 2.5 h: the axis goes logarithmic by itself.
    assert fig.axes[0].get_xscale() == "log"


def test_attempts_histogram_counts_each_pair_once_by_outcome():
    records = link_outage()
    fig = attempts_histogram(records)
    keep(fig, "attempts_histogram")
    bars = artists_with_gid(fig, "attempts-delivered")
    pairs = sum(len(rcpts) for _, rcpts, _ in OUTAGE_MESSAGES)
    assert sum(bar.get_height() for bar in bars) == pairs == 7
    fig = attempts_histogram(bounce_after_days())
    bounced = [b for b in artists_with_gid(fig, "attempts-bounced") if b.get_height() > 0]
    assert len(bounced) == 1  # one pair, in one (wide) bin


def _two_servers_two_outages() -> list[dict]:
    """india-mail and uk-mail each queue mail while their own link is down (twice for India)."""

    def queue(t: float, msg: str, node: str) -> dict:
        return {"t": t, "type": "mail.queue", "msg": msg, "node": node, "rcpts": ["x@y"]}

    def deliver(t: float, msg: str) -> dict:
        return {"t": t, "type": "mail.deliver", "msg": msg, "node": "far", "rcpt": "x@y"}

    records = [
        {"t": 100.0, "type": "link.down", "a": "core", "b": "india-mail"},
        queue(110.0, "a", "india-mail"),
        queue(120.0, "b", "india-mail"),
        {"t": 300.0, "type": "link.up", "a": "core", "b": "india-mail"},
        deliver(310.0, "a"),
        deliver(311.0, "b"),
        {"t": 5000.0, "type": "link.down", "a": "core", "b": "uk-mail"},
        queue(5010.0, "c", "uk-mail"),
        {"t": 5200.0, "type": "link.down", "a": "core", "b": "india-mail"},
        queue(5210.0, "d", "india-mail"),
        {"t": 5500.0, "type": "link.up", "a": "core", "b": "india-mail"},
        deliver(5510.0, "d"),
        {"t": 6000.0, "type": "link.up", "a": "core", "b": "uk-mail"},
        deliver(6010.0, "c"),
    ]
    return records


def test_each_link_down_has_its_own_lane_in_its_servers_colour_and_the_legend_is_off_the_data():
    from matplotlib.colors import to_hex

    for size in ("default", "slide"):
        fig = queue_figure(_two_servers_two_outages(), size=size)
        keep(fig, f"queues_two_outages_{size}")
        lines = {line.get_label(): line for line in artists_with_gid(fig, "queue")}
        assert set(lines) == {"india-mail", "uk-mail"}
        bars = artists_with_gid(fig, "outage")
        assert len(bars) == 3  # India's link twice, the UK's once
        strip = bars[0].axes
        lanes = [t.get_text() for t in strip.get_yticklabels()]
        assert lanes == ["link core–india-mail down", "link core–uk-mail down"]
        for bar in bars:
            lane = lanes[round(bar.get_y() + bar.get_height() / 2)]
            server = lane.split("–")[1].removesuffix(" down")
            assert to_hex(bar.get_facecolor()) == to_hex(lines[server].get_color())
        # One legend entry per server, nothing else, and it covers no data.
        ax = lines["india-mail"].axes
        legend = ax.get_legend()
        assert [t.get_text() for t in legend.get_texts()] == ["india-mail", "uk-mail"]
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        plot_box = ax.get_window_extent(renderer)
        assert legend.get_window_extent(renderer).x0 >= plot_box.x1
        # The lane names and the title stay inside the picture, above the plot.
        for text in [*strip.get_yticklabels(), strip.title]:
            box = text.get_window_extent(renderer)
            assert box.x0 >= 0 and box.x1 <= fig.bbox.x1 and box.y0 >= plot_box.y1


def test_idle_stretches_at_zero_are_one_thin_baseline_not_four_thick_lines():
    fig = queue_figure(_two_servers_two_outages())
    for line in artists_with_gid(fig, "queue"):
        vertices = list(zip(line.get_xdata(), line.get_ydata(), strict=True))
        for (x0, y0), (x1, y1) in itertools.pairwise(vertices):
            assert not (y0 == 0 and y1 == 0 and x1 > x0), (line.get_label(), x0, x1)
    ax = artists_with_gid(fig, "queue")[0].axes
    assert any(list(line.get_ydata()) == [0, 0] for line in ax.lines)  # the baseline


def test_attempt_bars_say_their_counts_and_the_plot_fills_the_slide():
    fig = attempts_histogram(link_outage(), size="slide")
    ax = fig.axes[0]
    counts = [t for t in ax.texts if t.get_gid() == "attempts-count"]
    assert sum(int(t.get_text().replace(",", "")) for t in counts) == 7
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    legend = ax.get_legend().get_window_extent(renderer)
    plot = ax.get_window_extent(renderer)
    assert legend.x0 >= plot.x1 and legend.x1 <= fig.bbox.x1
    assert fig.bbox.x1 - legend.x1 < fig.dpi  # no empty band right of the legend
    for text in counts:
        assert text.get_window_extent(renderer).y1 <= plot.y1  # inside the frame


def test_a_single_latency_curve_marks_its_median_on_the_curve():
    fig = latency_cdf(link_outage(), size="slide")
    ax = fig.axes[0]
    (dot,) = artists_with_gid(fig, "cdf-median")
    (curve,) = artists_with_gid(fig, "cdf")
    median = curve.get_label().split("median ")[1]
    (note,) = [t for t in ax.texts if t.get_gid() == "cdf-median-label"]
    assert note.get_text() == f"median {median}"
    assert dot.get_ydata()[0] == 4 / 7  # the 4th of 7 delivered pairs
    # With several runs each median is marked, and named in the legend only.
    fig = latency_cdf({"a": link_outage(), "b": james_to_steve()})
    assert len(artists_with_gid(fig, "cdf-median")) == 2
    assert not [t for t in fig.axes[0].texts if t.get_gid() == "cdf-median-label"]
