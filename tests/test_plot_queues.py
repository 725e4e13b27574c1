"""Queue lengths, latency CDFs and attempt histograms, from the trace's mail records."""

from __future__ import annotations

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
