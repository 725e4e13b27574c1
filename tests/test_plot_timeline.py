"""The delivery timeline: a row per (message, recipient), a marker per attempt, outages behind."""

from __future__ import annotations

import itertools
import re
from functools import cache

import pytest
from plot_traces import (
    GIVE_UP_AFTER,
    artists_with_gid,
    bounce_after_days,
    james_to_steve,
    keep,
    link_outage,
)

from mailsim.plot import delivery_timeline, journeys
from mailsim.plot._style import look_for, time_unit
from mailsim.plot.timeline import rhythm, short_reason


def _points(fig, name):
    return sum(len(c.get_offsets()) for c in artists_with_gid(fig, f"timeline-{name}"))


def test_one_row_per_message_and_recipient():
    fig = delivery_timeline(link_outage())
    keep(fig, "timeline_outage")
    # Six messages; msg-1 goes to steve and bob: seven pairs.
    assert len(artists_with_gid(fig, "timeline-row")) == 7
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels[:2] == ["msg-1 → steve@usa.com", "msg-1 → bob@usa.com"]


def test_one_marker_per_attempt_coloured_by_its_outcome():
    records = link_outage()
    fig = delivery_timeline(records)
    tries = sum(len(r["rcpts"]) for r in records if r["type"] == "mail.attempt")
    defers = sum(1 for r in records if r["type"] == "mail.defer")
    assert _points(fig, "temporary") + _points(fig, "accepted") == tries
    assert _points(fig, "temporary") == defers
    # Every pair is delivered by exactly one accepted attempt, over the shared connection.
    assert _points(fig, "accepted") == 7
    assert _points(fig, "delivered") == 7
    assert _points(fig, "submitted") == 7


def test_repeated_failures_get_one_label_with_a_count():
    records = link_outage()
    fig = delivery_timeline(records)
    failed = sum(
        1
        for r in records
        if r["type"] == "mail.defer" and r["msg"] == "msg-1" and r["rcpt"] == "steve@usa.com"
    )
    assert failed >= 3  # retried every 30-40 min during a 2.4 h outage
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert f"connect timeout (×{failed})" in texts


def test_each_outage_is_one_shaded_span():
    fig = delivery_timeline(link_outage())
    spans = artists_with_gid(fig, "outage")
    assert len(spans) == 1
    assert any("link india-gw–usa-gw down" in t.get_text() for t in fig.axes[0].texts)
    fig = delivery_timeline(bounce_after_days(), log_time=True)
    assert len(artists_with_gid(fig, "outage")) == 1


def test_bounce_after_five_days_on_a_log_time_axis():
    records = bounce_after_days()
    fig = delivery_timeline(records, log_time=True)
    keep(fig, "timeline_bounce_log")
    assert fig.axes[0].get_xscale() == "symlog"
    # Five days of tries every 30-40 minutes: 5 * 1440 / 35 = about 206.
    assert 180 <= _points(fig, "temporary") <= 245
    assert _points(fig, "expired") == 1
    assert _points(fig, "bounced") == 1
    # The bounce notice is its own row, named for what it is, delivered to James and fetched.
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels == ["msg-1 → steve@usa.com", "bounce report (DSN) → james@india.com"]
    assert _points(fig, "fetched") == 1
    tick_labels = {t.get_text() for t in fig.axes[0].get_xticklabels()}
    assert {"1 min", "1 h", "1 d", "4 d"} <= tick_labels


def test_journeys_follow_the_tutorial_from_submission_to_steve_reading_it():
    (journey,) = journeys(james_to_steve())
    assert (journey.msg, journey.rcpt, journey.status) == ("msg-1", "steve@usa.com", "delivered")
    assert [a.outcome for a in journey.attempts] == ["accepted"]
    assert journey.mailbox == "steve"
    # Submitted at about 60 s, read by Steve at about 3 h.
    assert journey.submitted == pytest.approx(60.0, abs=0.1)
    assert journey.fetched == pytest.approx(10800.0, abs=0.1)
    assert 1.0 < journey.latency < 3.0  # the relay dialogue over the 224 ms round trip


def test_expiry_ends_the_journey_without_being_an_attempt():
    records = bounce_after_days()
    journey = next(j for j in journeys(records) if j.msg == "msg-1")
    assert journey.status == "bounced"
    assert {a.outcome for a in journey.attempts} == {"temporary"}
    assert journey.expired is not None and journey.submitted is not None
    assert journey.expired - journey.submitted > GIVE_UP_AFTER


def test_time_unit_follows_the_span():
    assert time_unit(90.0) == ("s", 1.0)
    assert time_unit(2.5 * 3600) == ("min", 60.0)  # the link-outage story
    assert time_unit(30 * 3600) == ("h", 3600.0)
    assert time_unit(5 * 86400) == ("d", 86400.0)  # the bounce story
    fig = delivery_timeline(link_outage())
    assert fig.axes[0].get_xlabel() == "simulated time (min)"


def test_short_reason_prefers_the_tcp_failure_and_drops_enhanced_codes():
    assert short_reason("451 4.4.1 connect to x: Connection timed out", "timeout") == (
        "connect timeout"
    )
    assert short_reason("451 4.4.1 connect to x: Connection timed out") == "451 timeout"
    assert short_reason("452 4.2.2 Mailbox full") == "452 Mailbox full"
    assert short_reason("421 usa.com Service not available, closing channel") == (
        "421 usa.com Service not…"
    )


def test_no_mail_draws_a_note():
    fig = delivery_timeline([{"t": 0.0, "type": "node.down", "node": "usa-mail"}])
    assert any("no mail" in t.get_text() for t in fig.axes[0].texts)


def test_max_rows_keeps_the_most_retried_pairs_and_says_so():
    records = link_outage()
    fig = delivery_timeline(records, max_rows=3)
    assert len(artists_with_gid(fig, "timeline-row")) == 3
    assert "3 of 7 (message, recipient) pairs, the most retried" in fig.axes[0].get_title(
        loc="left"
    )


def _texts(fig, gid="timeline-label"):
    return [t for t in fig.axes[0].texts if t.get_gid() == gid]


@pytest.mark.parametrize("size", ["default", "slide"])
def test_five_days_of_steady_retries_are_ticks_with_their_rhythm_then_the_bounce(size):
    records = bounce_after_days()
    fig = delivery_timeline(records, size=size)
    keep(fig, f"timeline_bounce_{size}")
    tries = sum(1 for r in records if r["type"] == "mail.attempt")
    # Too dense for triangles: one thin tick per attempt, not one solid orange bar.
    (ticks,) = artists_with_gid(fig, "timeline-temporary")
    (journey, _) = journeys(records)
    failed = [a for a in journey.attempts if a.outcome == "temporary"]
    assert len(failed) >= tries - 1  # (a last try may be the one the bounce reports)
    assert len(ticks.get_offsets()) == len(failed)
    assert set(ticks.get_paths()[0].vertices[:, 0]) == {0.0}  # a vertical tick
    labels = [t.get_text() for t in _texts(fig)]
    # Tries every 30 to 40 minutes.
    assert any(re.fullmatch(rf"connect timeout: {tries} tries, every ~3\d min", x) for x in labels)
    assert "gave up after 5 d: bounced" in labels
    # The report is named as one, and the legend names only what can be seen.
    rows = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert rows[1] == "bounce report (DSN) → james@india.com"
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == [
        "submitted",
        "queued",
        "attempt: temporary failure",
        "delivered to mailbox",
        "fetched by the user",
        "bounced",
        "node down",
    ]
    # Labels stay inside the picture and apart.
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in _texts(fig)]
    for box in boxes:
        assert fig.bbox.x0 <= box.x0 and box.x1 <= fig.bbox.x1
    assert not boxes[0].overlaps(boxes[1])


def test_a_few_tries_keep_their_triangles_and_count():
    fig = delivery_timeline(link_outage(), size="slide")
    labels = [t.get_text() for t in _texts(fig)]
    assert any(label.startswith("connect timeout (×") for label in labels), labels
    assert all("tries, every" not in label for label in labels)


def test_rhythm_is_the_usual_gap_rounded_as_people_say_it():
    assert rhythm([0.0, 2100.0, 4230.0, 6300.0]) == "every ~35 min"
    assert rhythm([0.0, 20.0, 40.0, 61.0]) == "every ~20 s"
    assert rhythm([0.0, 3900.0, 7800.0]) == "every ~1 h 5 min"


def _busy_day() -> list[dict]:
    """Three link outages in a day; in each, pairs fail 1 to 6 times; plenty of quiet mail."""
    records: list[dict] = []

    def pair(msg: str, t: float, fails: int, gap: float = 1800.0) -> None:
        records.append(
            {"t": t, "type": "mail.submit", "msg": msg, "node": "pc", "rcpts": ["x@far"]}
        )
        records.append({"t": t, "type": "mail.queue", "msg": msg, "node": "mx", "rcpts": ["x@far"]})
        for k in range(fails + 1):
            at = t + 1 + k * gap
            records.append(
                {"t": at, "type": "mail.attempt", "msg": msg, "node": "mx", "rcpts": ["x@far"]}
            )
            if k < fails:
                kind, reply = ("mail.defer", "451 4.4.1 timed out" if k % 2 else "452 full")
                records.append(
                    {
                        "t": at + 30,
                        "type": kind,
                        "msg": msg,
                        "node": "mx",
                        "rcpt": "x@far",
                        "reply": reply,
                    }
                )
        records.append(
            {
                "t": t + 2 + fails * gap,
                "type": "mail.deliver",
                "msg": msg,
                "node": "far",
                "rcpt": "x@far",
                "mailbox": "x",
            }
        )

    for i in range(40):  # quiet mail all day, delivered at once
        pair(f"q{i}", 600.0 + i * 2000.0, 0)
    for index, (down, up) in enumerate([(3600, 7200), (30000, 40000), (60000, 80000)]):
        records.append({"t": down, "type": "link.down", "a": "core", "b": f"mx{index}"})
        records.append({"t": up, "type": "link.up", "a": "core", "b": f"mx{index}"})
        for k in range(1, 7):
            pair(f"o{index}-{k}", down + 60.0 * k, k if index else min(k, 2))
    records.sort(key=lambda r: r["t"])
    return records


@pytest.mark.parametrize("size", ["default", "slide"])
def test_a_busy_day_shows_each_outages_most_retried_pair_and_a_normal_delivery(size):
    records = _busy_day()
    fig = delivery_timeline(records, max_rows=6, size=size)
    keep(fig, f"timeline_busy_{size}")
    ax = fig.axes[0]
    rows = [t.get_text().split(" →")[0] for t in ax.get_yticklabels()]
    # The most retried of each outage (India's: the first of the ties), the quiet mail's first
    # pair for contrast, then the most retried of the rest; in start order.
    assert rows == ["q0", "o0-2", "o1-5", "o1-6", "o2-5", "o2-6"]
    assert "the most retried of each outage and one delivered at once" in ax.get_title(loc="left")
    # The axis covers the whole day, not only the rows kept.
    first = min(r["t"] for r in records if r["type"] == "mail.submit")
    last = max(r["t"] for r in records)
    unit = time_unit(last - first)[1]
    lo, hi = ax.get_xlim()
    assert lo <= first / unit and hi >= last / unit
    # No label runs into another, none leaves the frame; outage names stay apart too.
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    for gid in ("timeline-label",):
        boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in _texts(fig, gid)]
        for text, box in boxes:
            assert frame.x0 <= box.x0 and box.x1 <= frame.x1 + 1, text
        for i, (a, box_a) in enumerate(boxes):
            for b, box_b in boxes[i + 1 :]:
                assert not box_a.overlaps(box_b), (a, b)
    names = [t for t in ax.texts if t.get_text().endswith(" down")]
    assert len(names) == 3
    boxes = [t.get_window_extent(renderer) for t in names]
    for i, box in enumerate(boxes):
        assert box.y0 >= frame.y1  # above the frame, not on it
        assert box.x1 <= fig.bbox.x1
        assert all(not box.overlaps(other) for other in boxes[i + 1 :])
    title = ax._left_title.get_window_extent(renderer)  # set_title(loc="left")
    assert title.x1 <= fig.bbox.x1 and all(title.y0 >= box.y1 - 1 for box in boxes)


def test_a_few_rows_on_a_slide_get_room_and_the_time_of_each_try():
    from mailsim.plot.timeline import SLIDE_ROW_INCHES

    records = [r for r in link_outage() if r.get("msg", "msg-1") == "msg-1"]
    fig = delivery_timeline(records, size="slide")
    keep(fig, "timeline_few_rows_slide")
    ax = fig.axes[0]
    rows = len(ax.get_yticks())
    assert rows == 2  # msg-1 to steve and to bob
    # The rows do not stretch over the whole slide: at most SLIDE_ROW_INCHES (x scale) apart.
    height = ax.get_position().height * fig.get_size_inches()[1]
    assert height <= SLIDE_ROW_INCHES * look_for("slide").scale * (rows + 0.35) + 1e-6
    # Each try of the first row says when it was, and the times stay apart.
    times = _texts(fig, "timeline-time")
    assert len(times) >= 4 and all(re.fullmatch(r"\d+:\d\d", t.get_text()) for t in times)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in times]
    for i, box in enumerate(boxes):
        assert all(not box.overlaps(other) for other in boxes[i + 1 :])
    # The legend is under the plot, inside the slide.
    legend = fig.legends[0].get_window_extent(renderer)
    assert legend.y0 >= 0 and legend.y1 <= ax.get_window_extent(renderer).y0
    # Not at the default size, nor with many rows.
    assert not _texts(delivery_timeline(records), "timeline-time")
    assert not _texts(delivery_timeline(link_outage(), size="slide"), "timeline-time")


def test_a_submission_under_the_first_try_still_shows():
    fig = delivery_timeline(link_outage(), size="slide")
    (submitted,) = artists_with_gid(fig, "timeline-submitted")
    tries = [
        c for name in ("temporary", "accepted") for c in artists_with_gid(fig, f"timeline-{name}")
    ]
    # Drawn over the tries, as a ring larger than a triangle with nothing inside that hides it.
    assert all(submitted.get_zorder() > c.get_zorder() for c in tries)
    assert submitted.get_facecolor().size == 0 or submitted.get_facecolor()[0][3] == 0
    assert all(submitted.get_sizes()[0] > c.get_sizes()[0] for c in tries)


def _quiet_day(pairs: int) -> list[dict]:
    """``pairs`` messages through one relay, each delivered at its first try: nothing retried."""
    records: list[dict] = []
    for i in range(pairs):
        t = 60.0 * i
        rcpts = ["x@far"]
        records += [
            {"t": t, "type": "mail.submit", "msg": f"m{i}", "node": "pc", "rcpts": rcpts},
            {"t": t + 0.1, "type": "mail.queue", "msg": f"m{i}", "node": "mx", "rcpts": rcpts},
            {"t": t + 1.0, "type": "mail.attempt", "msg": f"m{i}", "node": "mx", "rcpts": rcpts},
            {
                "t": t + 1.5,
                "type": "mail.deliver",
                "msg": f"m{i}",
                "node": "far",
                "rcpt": "x@far",
                "mailbox": "x",
            },
        ]
    return records


def test_a_slide_draws_every_row_that_fits():
    # persistent-connection: ten pairs, each delivered at its first try; ten rows fit a slide.
    import mailsim

    records = mailsim.load("persistent-connection").run().records
    fig = delivery_timeline(records, size="slide")
    ax = fig.axes[0]
    assert len(artists_with_gid(fig, "timeline-row")) == 10
    assert ax.get_title(loc="left") == "Delivery timeline, one row per (message, recipient)"
    # The ten rows are no closer together than the rows of a default timeline (x scale).
    from mailsim.plot.timeline import ROW_INCHES

    height = ax.get_position().height * fig.get_size_inches()[1]
    assert height / (10 + 0.35) >= ROW_INCHES * look_for("slide").scale - 1e-6


def test_rows_left_out_of_a_slide_are_said_to_be_the_earliest_when_none_was_retried():
    fig = delivery_timeline(_quiet_day(40), size="slide")
    title = fig.axes[0].get_title(loc="left")
    drawn = len(artists_with_gid(fig, "timeline-row"))
    assert 5 < drawn < 40
    assert title == f"Delivery timeline: {drawn} of 40 (message, recipient) pairs, the earliest"
    rows = [t.get_text().split(" →")[0] for t in fig.axes[0].get_yticklabels()]
    assert rows == [f"m{i}" for i in range(drawn)]


def _outage_names(fig):
    """``{outage index: (text, its pixel bbox)}`` of the outage names drawn above the frame."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    return {
        int(t.get_gid().split(":")[1]): (t.get_text(), t.get_window_extent(renderer))
        for t in fig.axes[0].texts
        if (t.get_gid() or "").startswith("outage-name:")
    }


@cache
def _busy_day_records() -> list[dict]:
    import mailsim

    return mailsim.load("busy-day").run(trace="summary").records


def _title_box(fig):
    fig.canvas.draw()
    return fig.axes[0]._left_title.get_window_extent(fig.canvas.get_renderer())


def test_every_outage_of_a_busy_day_is_named_over_its_own_band():
    from mailsim.plot.topology import read_topology

    records = _busy_day_records()
    outages = read_topology(records).outages
    fig = delivery_timeline(records, size="slide")
    ax = fig.axes[0]
    names = _outage_names(fig)
    # busy-day's eleven outages: each named (some went unnamed before, among them core–usa-mail
    # from 19.45 h to the end, the reason m2354 is still queued).
    assert len([t for t in ax.texts if t.get_text().endswith(" down")]) == len(outages)
    assert sorted(names) == list(range(len(outages)))
    last = max(range(len(outages)), key=lambda i: outages[i].start)
    assert outages[last].end is None and names[last][0] == f"{outages[last].label} down"
    boxes = [box for _, box in names.values()]
    for a, b in itertools.combinations(boxes, 2):
        assert not a.overlaps(b)
    # Each name has a bracket spanning exactly its band, so overlapping bands (12 to 13.5 h)
    # are told apart by extent, not by where a name happens to start.
    bands = {int(p.get_label().split(":")[1]): p for p in ax.patches if p.get_gid() == "outage"}
    brackets = {
        int(line.get_gid().split(":")[1]): line
        for line in ax.lines
        if (line.get_gid() or "").startswith("outage-bracket:")
    }
    assert sorted(brackets) == sorted(names)
    for i, line in brackets.items():
        x0, x1 = line.get_xdata()
        band = bands[i].get_extents()
        px = ax.transData.transform([(x0, 0), (x1, 0)])[:, 0]
        assert px[0] == pytest.approx(band.x0, abs=1) and px[1] == pytest.approx(band.x1, abs=1)
        # A tick down where it went down and where it came up; still down at the end: no tick
        # there (it read as "back up at the edge of the frame").
        assert list(line.get_markevery()) == ([0] if outages[i].end is None else [0, 1])
    assert not any("not named" in t.get_text() for t in fig.legends[0].get_texts())


def test_a_long_title_wraps_inside_the_figure():
    # mailsim run's 40 rows of busy-day: the title that says how they were chosen ran 300 px
    # past the right edge ("... then th").
    fig = delivery_timeline(_busy_day_records(), max_rows=40)
    assert _title_box(fig).x1 <= fig.bbox.x1
    title = fig.axes[0].get_title(loc="left")
    assert title.startswith("Delivery timeline: 40 of 2,909 (message, recipient) pairs,\n")
    assert title.endswith(", then the most retried of the rest")


def test_a_title_names_only_the_ways_rows_were_really_chosen():
    import mailsim

    # reply-codes has an outage (usa-mail at 50 min) but none of its tries failed during it.
    records = mailsim.load("reply-codes").run().records
    title = delivery_timeline(records, max_rows=1).axes[0].get_title(loc="left")
    assert "each outage" not in title and "of the rest" not in title, title


def test_an_outage_outside_the_drawn_time_is_neither_shaded_nor_in_the_legend():
    records = james_to_steve()
    last = max(r["t"] for r in records)
    later = [
        {"t": last + 3600.0, "type": "link.down", "a": "india-gw", "b": "usa-gw"},
        {"t": last + 7200.0, "type": "link.up", "a": "india-gw", "b": "usa-gw"},
    ]
    fig = delivery_timeline(records + later)
    ax = fig.axes[0]
    mail = [r["t"] for r in records if r["type"].startswith("mail.")]
    unit = time_unit(max(mail) - min(mail))[1]
    assert ax.get_xlim()[1] < (last + 3600.0) / unit  # the axis ends with the mail
    assert not artists_with_gid(fig, "outage")
    assert not any("down" in t.get_text() for t in fig.legends[0].get_texts())


def test_one_row_on_a_slide_does_not_fill_the_slide():
    import mailsim

    fig = delivery_timeline(mailsim.load("link-outage").run().records, size="slide")
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    frame = ax.get_window_extent(renderer)
    height = fig.get_size_inches()[1] * fig.dpi
    # It took 36% of the slide's height before (389 of 1080 px): rows are capped in height.
    assert frame.height < 0.2 * height
    # Still room for the run's label above the row and the times under it, inside the frame.
    labels = _texts(fig, "timeline-label") + _texts(fig, "timeline-time")
    assert labels
    for text in (t for t in ax.texts if t.get_gid() in ("timeline-label", "timeline-time")):
        box = text.get_window_extent(renderer)
        assert frame.y0 <= box.y0 and box.y1 <= frame.y1
    # The picture sits in the middle of the slide, not at its top or bottom.
    mid = (frame.y0 + frame.y1) / 2
    assert 0.35 * height < mid < 0.65 * height


def test_max_rows_below_one_is_refused_with_what_would_work():
    from mailsim.plot import PlotError

    with pytest.raises(PlotError, match=r"max_rows must be at least 1 \(None draws every row\)"):
        delivery_timeline(link_outage(), max_rows=0)
