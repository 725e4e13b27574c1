"""Every figure renders from the traces of the ready scenarios, with the content that matters."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest
from plot_traces import artists_with_gid, keep

import mailsim
from mailsim.plot import delivery_timeline, render_all, sequence_diagram, topology_figure
from mailsim.trace.exports import transcript

STORIES = ("james-to-steve", "seed-transcript", "link-outage", "bounce-after-days")


@cache
def records(name: str) -> list[dict]:
    return mailsim.load(name).run().records


def relay_connection(recs: list[dict]) -> int:
    """The first established SMTP connection to port 25, or else the first with SMTP lines."""
    talked = {r["conn"] for r in recs if r["type"] == "smtp.line"}
    opened = [r for r in recs if r["type"] == "tcp.open" and r["conn"] in talked]
    return next((r["conn"] for r in opened if r["sport"] == 25), opened[0]["conn"])


@pytest.mark.parametrize("name", STORIES)
def test_the_sequence_diagram_has_one_arrow_per_transcript_line(name: str) -> None:
    recs = records(name)
    conn = relay_connection(recs)
    fig = sequence_diagram(recs, connection=conn)
    keep(fig, f"scenario_{name}_sequence")
    lines = [line for line in transcript(recs, conn).splitlines() if line.startswith("[")]
    lines = [line for line in lines if " -- " not in line]  # the close is not a protocol line
    assert len(artists_with_gid(fig, "smtp-line")) == len(lines)


@pytest.mark.parametrize("name", STORIES)
def test_the_timeline_has_a_row_per_delivery_and_a_marker_per_attempt(name: str) -> None:
    recs = records(name)
    fig = delivery_timeline(recs, log_time=name == "bounce-after-days")
    keep(fig, f"scenario_{name}_timeline")
    pairs = {(r["msg"], rcpt) for r in recs if r["type"] == "mail.submit" for rcpt in r["rcpts"]}
    assert len(artists_with_gid(fig, "timeline-row")) == len(pairs)
    tries = sum(len(r["rcpts"]) for r in recs if r["type"] == "mail.attempt")
    markers = sum(
        len(c.get_offsets())
        for kind in ("temporary", "accepted", "permanent")
        for c in artists_with_gid(fig, f"timeline-{kind}")
    )
    assert markers == tries


def test_the_topology_greys_the_broken_link_during_the_outage() -> None:
    recs = records("link-outage")
    during = topology_figure(recs, at=3600.0)
    after = topology_figure(recs, at=5 * 3600.0)
    keep(during, "scenario_link_outage_topology")
    assert len(artists_with_gid(during, "link-down")) == 1
    assert artists_with_gid(after, "link-down") == []


def test_render_all_writes_the_three_figures_for_every_story(tmp_path: Path) -> None:
    for name in STORIES:
        written = {p.name for p in render_all(records(name), tmp_path / name, dpi=60)}
        assert {"sequence.png", "timeline.png", "topology.png"} <= written


def test_queue_latency_and_attempt_figures_from_real_runs() -> None:
    from mailsim.plot import attempts_histogram, latency_cdf, queue_figure

    outage = records("link-outage")
    queues = queue_figure(outage)
    # india-mail queued the message during the outage; usa-mail filed it directly.
    assert [line.get_label() for line in artists_with_gid(queues, "queue")] == ["india-mail"]
    cdf = latency_cdf({name: records(name) for name in ("james-to-steve", "link-outage")})
    assert len(artists_with_gid(cdf, "cdf")) == 2
    bars = attempts_histogram(outage)
    assert artists_with_gid(bars, "attempts-delivered")


def test_the_animation_of_a_real_run_has_its_frames() -> None:
    from mailsim.plot import animate

    animation = animate(records("james-to-steve"), fps=2, duration=1)
    # The HTML player a notebook shows embeds one image per frame: fps x duration of them.
    assert animation.to_jshtml().count("data:image/png;base64") == 2
