"""The sequence diagram draws one arrow per protocol line, to scale, with idle gaps cut out."""

from __future__ import annotations

import re
from functools import cache

import pytest
from matplotlib.colors import to_rgba
from matplotlib.text import Text
from plot_traces import (
    TUTORIAL_DATA_LINES,
    TUTORIAL_DIALOGUE,
    TraceWriter,
    artists_with_gid,
    bounce_after_days,
    james_to_steve,
    keep,
    link_outage,
)

import mailsim
from mailsim.plot import PlotError, read_topology, sequence_diagram
from mailsim.plot._style import ERROR_COLOUR, clock
from mailsim.plot.sequence import SEQUENCE_MAX_ROWS, one_way_delays
from mailsim.trace import load_events
from mailsim.trace.connections import connections

# Connections of james_to_steve(): 1 submission, 2 the tutorial relay, 3 Steve's POP3 session.


def _labels(fig, gid):
    return [a.get_text() for a in artists_with_gid(fig, gid)]


def test_one_arrow_per_line_of_the_tutorial_dialogue():
    fig = sequence_diagram(james_to_steve(), connection=2)
    keep(fig, "sequence_tutorial")
    assert len(artists_with_gid(fig, "smtp-line")) == len(TUTORIAL_DIALOGUE) == 15
    assert artists_with_gid(fig, "pop3-line") == []
    # Every line of the tutorial is written on the chart.
    texts = {t.get_text() for t in fig.axes[0].texts}
    assert {line for _, line in TUTORIAL_DIALOGUE} <= texts


def test_hide_data_collapses_the_lines_between_354_and_the_dot_into_one_arrow():
    fig = sequence_diagram(james_to_steve(), connection=2, hide_data=True)
    keep(fig, "sequence_tutorial_hide_data")
    # 15 lines, of which the 2 message lines become one arrow; the "." stays its own arrow.
    assert len(artists_with_gid(fig, "smtp-line")) == 15 - TUTORIAL_DATA_LINES
    assert len(artists_with_gid(fig, "smtp-data")) == 1
    texts = {t.get_text() for t in fig.axes[0].texts}
    assert "… 2 data lines …" in texts
    assert "." in texts


def test_hide_data_also_collapses_the_body_of_a_pop3_retr_reply():
    fig = sequence_diagram(james_to_steve(), connection=3, hide_data=True)
    # The RETR body: 5 header lines (From, To, Subject, Message-ID, blank) and 2 body lines.
    assert len(artists_with_gid(fig, "pop3-data")) == 1
    assert "… 7 message lines …" in {t.get_text() for t in fig.axes[0].texts}


def test_lanes_go_by_site_with_the_user_hosts_at_the_outer_ends():
    fig = sequence_diagram(james_to_steve(), hide_data=True)
    keep(fig, "sequence_james_to_steve")
    headers = sorted(artists_with_gid(fig, "lane"), key=lambda t: t.get_position()[0])
    names = [h.get_text().split("\n")[0] for h in headers]
    assert names == ["james-pc", "india-mail", "usa-mail", "steve-pc"]


def test_the_three_hour_wait_for_steve_is_cut_out_and_labelled():
    fig = sequence_diagram(james_to_steve(), hide_data=True)
    gaps = artists_with_gid(fig, "gap")
    assert gaps, "the idle gap must be drawn as a band"
    texts = [t.get_text() for t in fig.axes[0].texts]
    # The relay's 221 is sent at about 61.8 s; Steve connects at 3 h = 10800 s: 2 h 58 min idle.
    assert any(text.startswith("… 2 h 58 min") for text in texts), texts
    # Drawn to scale, three hours would be tens of thousands of rows; cut, the chart stays short.
    assert fig.get_size_inches()[1] < 40


def test_arrival_is_half_the_handshake_round_trip_after_sending():
    records = james_to_steve()
    delays = one_way_delays(records, read_topology(records))
    # Link latencies: james-pc-india-mail 2 ms; india-mail-india-gw 1 + india-gw-usa-gw 110 +
    # usa-gw-usa-mail 1 = 112 ms; usa-mail-steve-pc 3 ms.
    assert delays == pytest.approx({1: 0.002, 2: 0.112, 3: 0.003})


def test_arrows_slant_down_to_scale_within_a_dialogue():
    fig = sequence_diagram(james_to_steve(), connection=2)
    arrows = artists_with_gid(fig, "smtp-line")
    # Each arrow ends lower than it starts (time runs downward): xy is the head, xyann the tail.
    drops = [a.xy[1] - a.xyann[1] for a in arrows]
    assert all(drop > 0 for drop in drops)
    # Every line flies 112 ms, so every arrow drops by the same amount.
    assert max(drops) == pytest.approx(min(drops))


def _bad_recipient_trace():
    w = TraceWriter()
    w.world()
    w.at(10.0)
    conn, delay = w.open("india-mail", "usa-mail", 25)
    lines = [
        ("S", "220 usa.com ESMTP"),
        ("C", "HELO india.com"),
        ("S", "250 usa.com"),
        ("C", "MAIL FROM:<james@india.com>"),
        ("S", "250 2.1.0 Ok"),
        ("C", "RCPT TO:<nobody@usa.com>"),
        ("S", "550 5.1.1 <nobody@usa.com>: Recipient address rejected"),
        ("C", "QUIT"),
        ("S", "221 2.0.0 Bye"),
    ]
    w.dialogue("smtp", conn, "india-mail", "usa-mail", lines, delay)
    w.close(conn, "india-mail")
    return w.records


def test_error_replies_are_drawn_red_and_other_lines_are_not():
    fig = sequence_diagram(_bad_recipient_trace())
    red = to_rgba(ERROR_COLOUR)
    colours = {
        a.get_text() or "arrow": a.arrow_patch.get_edgecolor()
        for a in artists_with_gid(fig, "smtp-line")
    }
    arrows = artists_with_gid(fig, "smtp-line")
    reds = [a for a in arrows if tuple(a.arrow_patch.get_edgecolor()) == red]
    assert len(reds) == 1, colours
    assert reds[0].xy[0] < reds[0].xyann[0]  # the 550 goes from usa-mail (right) to india-mail


def test_failed_connections_are_crosses_on_the_client_lane():
    records = link_outage()
    fig = sequence_diagram(records, window=(0.0, 3000.0), show_tcp=True)
    keep(fig, "sequence_outage_window")
    fails = [r for r in records if r["type"] == "tcp.fail" and r["t"] <= 3000.0]
    # msg-1 at 5 min and 41 min, msg-2 at 15 min, msg-3 at 25 min, msg-4 at 40 min: the tries
    # made before t = 3000 s (50 min), each failing 30 s later.
    assert len(fails) >= 4
    assert len(artists_with_gid(fig, "tcp-fail")) == len(fails)
    # With show_tcp the handshakes of the established connections are drawn: 3 segments each.
    established = [r for r in records if r["type"] == "tcp.established" and r["t"] <= 3000.0]
    fins = [r for r in records if r["type"] == "tcp.close" and r["t"] <= 3000.0]
    segments = artists_with_gid(fig, "tcp-segment")
    assert len(segments) == 3 * len(established) + len(fins) + len(fails)


def test_window_keeps_only_the_lines_sent_inside_it():
    records = james_to_steve()
    fig = sequence_diagram(records, window=(0.0, 100.0))
    inside = [r for r in records if r["type"] == "smtp.line" and r["t"] <= 100.0]
    assert len(artists_with_gid(fig, "smtp-line")) == len(inside)
    assert artists_with_gid(fig, "pop3-line") == []


def test_max_rows_keeps_the_story_and_folds_the_empty_checks_and_middle_tries():
    fig = sequence_diagram(bounce_after_days(), hide_data=True, max_rows=60)
    keep(fig, "sequence_bounce_limited")
    crosses = artists_with_gid(fig, "tcp-fail")
    assert 0 < len(crosses) < 205
    # The submission (start) and James's POP3 session fetching the bounce (end) are both kept,
    # in full or as a box.
    assert artists_with_gid(fig, "smtp-line") or artists_with_gid(fig, "connection-box")
    kept_pop = artists_with_gid(fig, "pop3-line") or artists_with_gid(fig, "connection-box")
    assert kept_pop
    # What was left out is said in words, in the bands and under the chart.
    folded = [t.get_text() for t in artists_with_gid(fig, "folded")]
    assert any("tries failed (connect timeout)" in text for text in folded), folded
    (note,) = artists_with_gid(fig, "left-out")
    assert "failed tries" in note.get_text()
    assert "Not drawn" in note.get_text()


def test_a_trace_read_back_from_events_jsonl_draws_the_same(tmp_path):
    from mailsim.trace import Recorder

    recorder = Recorder()
    recorder.records.extend(james_to_steve())
    recorder.write_jsonl(tmp_path / "events.jsonl")
    fig = sequence_diagram(load_events(tmp_path / "events.jsonl"), connection=2)
    assert len(artists_with_gid(fig, "smtp-line")) == 15


def test_unknown_connection_is_a_clear_error():
    with pytest.raises(
        PlotError, match=r"connection 9 does not appear.*known connections: 1, 2, 3"
    ):
        sequence_diagram(james_to_steve(), connection=9)


def test_reversed_window_is_a_clear_error():
    with pytest.raises(PlotError, match="start <= end"):
        sequence_diagram(james_to_steve(), window=(100.0, 10.0))


def test_a_trace_without_protocol_lines_draws_a_note():
    fig = sequence_diagram([{"t": 0.0, "type": "node.down", "node": "usa-mail"}])
    assert any("no SMTP or POP3 lines" in t.get_text() for t in fig.axes[0].texts)


def test_draws_into_a_given_axes():
    from mailsim.plot._style import new_figure

    fig = new_figure(8, 6)
    ax = fig.add_subplot()
    assert sequence_diagram(james_to_steve(), connection=3, ax=ax) is fig
    # Greeting, USER, +OK, PASS, +OK, STAT, +OK (7); RETR, +OK (2); 7 message lines and "." (8);
    # DELE, +OK, QUIT, +OK (4): 21 lines.
    assert len(artists_with_gid(fig, "pop3-line")) == 21


def _extent(artist, fig):
    return artist.get_window_extent(fig.canvas.get_renderer())


def _overlap(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


@pytest.mark.parametrize("size", ["default", "slide"])
def test_title_and_legend_have_their_own_lines_above_the_lane_headers(size):
    fig = sequence_diagram(james_to_steve(), size=size)
    fig.canvas.draw()
    ax = fig.axes[0]
    (title_text,) = [
        t for t in ax.get_children() if isinstance(t, Text) and t.get_text() == ax.get_title("left")
    ]
    title = _extent(title_text, fig)
    legend_box = _extent(ax.get_legend(), fig)
    headers = [_extent(h.get_bbox_patch(), fig) for h in artists_with_gid(fig, "lane")]
    assert headers
    for header in headers:
        assert not _overlap(header, title)
        assert not _overlap(header, legend_box)
        # Every header is inside the axes, below the legend's line.
        assert header.y1 <= legend_box.y0 + 0.5
    assert title.y0 >= legend_box.y1 - 0.5  # the title on a line above the legend
    # The title says what the chart is of, not only what kind of chart it is.
    assert ax.get_title(loc="left") == "Message sequence chart of 3 connections"


def test_a_run_record_names_the_scenario_in_the_title():
    records = [{"t": 0.0, "type": "run", "scenario": "james-to-steve"}, *james_to_steve()]
    fig = sequence_diagram(records)
    assert fig.axes[0].get_title(loc="left") == "Message sequence chart of james-to-steve"


@pytest.mark.parametrize("size", ["default", "slide"])
def test_no_line_strikes_through_a_message_label(size):
    # Slanted arrows one row apart overlap in time, so some line passes where each level label
    # sits: the label's background is opaque and drawn above every arrow, so none crosses it.
    fig = sequence_diagram(james_to_steve(), size=size)
    arrows = [*artists_with_gid(fig, "smtp-line"), *artists_with_gid(fig, "pop3-line")]
    labels = [*artists_with_gid(fig, "smtp-line-label"), *artists_with_gid(fig, "pop3-line-label")]
    assert arrows and len(labels) == len(arrows)
    for label in labels:
        patch = label.get_bbox_patch()
        assert patch is not None
        assert to_rgba(patch.get_facecolor())[3] == 1.0
        assert patch.get_alpha() in (None, 1.0)
        assert label.get_zorder() > max(a.get_zorder() for a in arrows)


@cache
def _scenario(name: str) -> list[dict]:
    return mailsim.load(name).run().records


def _as_run_draws_it(records, size):
    """The chart as ``mailsim run`` draws it (``render_all``)."""
    return sequence_diagram(
        records, hide_data=True, group_bursts=True, max_rows=SEQUENCE_MAX_ROWS, size=size
    )


_CONN = re.compile(r"^conn (\d+)\b")


def _drawn(fig) -> set[int]:
    """The connections drawn line by line (their "conn N" label), as a box or as a failed try."""
    gids = ("connection-label", "connection-box-label", "tcp-fail-label")
    return {
        int(match.group(1))
        for gid in gids
        for text in artists_with_gid(fig, gid)
        if (match := _CONN.match(text.get_text()))
    }


@pytest.mark.parametrize("size", ["default", "slide"])
def test_the_pop3_fetch_that_retrieves_the_mail_is_drawn_not_folded(size):
    # Steve's fetch of the ten messages was tried before the submissions were drawn, when
    # their folded bands left it no room; drawn beside the relays they cost no rows. At slide
    # size it fits only if the last band, under a box, keeps just the box's edge of room.
    recs = _scenario("persistent-connection")
    fig = _as_run_draws_it(recs, size)
    keep(fig, f"persistent_connection_{size}")
    fetch = next(c.conn for c in connections(recs).values() if c.role == "mailbox" and c.messages)
    assert fetch in _drawn(fig)
    folded = " ".join(t.get_text() for t in artists_with_gid(fig, "folded"))
    assert "fetched" not in folded, folded
    assert "fetch that retrieved mail" not in artists_with_gid(fig, "left-out")[0].get_text()


@pytest.mark.parametrize("size", ["default", "slide"])
def test_the_time_axis_states_when_each_box_ends(size):
    # conn 2 (five messages over one connection, 2.5 s) ended half a row below conn 1 (70 ms),
    # too close for its time label: the axis read 10.000 to 10.070 for both.
    recs = _scenario("persistent-connection")
    fig = _as_run_draws_it(recs, size)
    ax = fig.axes[0]
    ticks = [label.get_text() for label in ax.get_yticklabels()]
    found = connections(recs)
    boxed = {
        int(match.group(1))
        for text in artists_with_gid(fig, "connection-box-label")
        if (match := _CONN.match(text.get_text()))
    }
    assert boxed
    for conn in boxed:
        assert clock(found[conn].end) in ticks, (conn, clock(found[conn].end), ticks)


@pytest.mark.parametrize("size", ["default", "slide"])
def test_a_grey_band_names_the_link_that_is_down_before_the_tries_fail(size):
    # The bands said only "india-mail → usa-mail: 2 tries failed (connect timeout)": nothing on
    # the chart said why they failed.
    recs = _scenario("link-outage")
    (outage,) = read_topology(recs).outages
    fig = _as_run_draws_it(recs, size)
    keep(fig, f"link_outage_{size}")
    said = f"the {outage.label} is down from {clock(outage.start)[:-4]} to {clock(outage.end)[:-4]}"
    folded = artists_with_gid(fig, "folded")
    named = [t for t in folded if t.get_text() == said]
    assert len(named) == 1, [t.get_text() for t in folded]  # said once
    first_failure = min(cross.get_ydata()[0] for cross in artists_with_gid(fig, "tcp-fail"))
    assert named[0].get_position()[1] < first_failure  # rows run downward
