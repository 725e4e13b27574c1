"""Each bundled scenario's default sequence chart shows its lesson at slide size (issue 11)."""

from __future__ import annotations

import re
from functools import cache

import pytest
from plot_traces import artists_with_gid, keep

import mailsim
from mailsim.plot import sequence_diagram
from mailsim.plot._style import LOOKS
from mailsim.plot.placement import segment_hits


@cache
def records(name: str) -> list[dict]:
    return mailsim.load(name).run().records


def _texts(fig) -> str:
    return "\n".join(t.get_text() for t in fig.axes[0].texts)


def test_reply_codes_slide_shows_each_reply_that_decides_what_the_sender_does() -> None:
    fig = sequence_diagram(records("reply-codes"), size="slide")
    keep(fig, "lesson_reply_codes_slide")
    texts = _texts(fig)
    for code in ("451 4.7.1", "550 5.1.1", "552 5.3.4", "421 4.7.0"):
        assert code in texts, (code, texts)


def test_push_and_pull_slide_draws_the_http_pull() -> None:
    fig = sequence_diagram(records("push-and-pull"), size="slide")
    keep(fig, "lesson_push_and_pull_slide")
    drawn = artists_with_gid(fig, "http-line") or [
        t for t in artists_with_gid(fig, "connection-box-label") if "GET /" in t.get_text()
    ]
    assert drawn, _texts(fig)


def test_attachments_slide_says_how_long_each_relay_took_as_the_attachments_grow() -> None:
    # Boxes are one row high whatever they last; only their words tell the note's relay from
    # the video's. The three relays carry a note, a 2 MB photo and a 5 MB video.
    fig = sequence_diagram(records("attachments"), size="slide")
    keep(fig, "lesson_attachments_slide")
    labels = [t.get_text() for t in artists_with_gid(fig, "connection-box-label")]
    took = [
        float(m[1]) * (1e-3 if m[2] == "ms" else 1.0)
        for label in labels
        if (m := re.fullmatch(r"6 round trips, ([\d.]+) (ms|s)", label))
    ]
    assert len(took) == 3, labels
    note, photo, video = took
    assert note < 2 < 5 * note < photo < video, took


def test_a_box_line_too_long_for_a_narrow_box_loses_whole_clauses_not_half_a_number() -> None:
    fig = sequence_diagram(records("persistent-connection"), size="slide")
    labels = [t.get_text() for t in artists_with_gid(fig, "connection-box-label")]
    # Steve's fetch sits between two neighbouring lanes: "27 round trips, 163 ms" does not fit.
    assert "27 round trips" in labels, labels
    assert not [label for label in labels if label.endswith("…") and "round trips" in label]


def test_a_box_names_its_decisive_reply_with_the_command_it_answered() -> None:
    fig = sequence_diagram(records("reply-codes"), size="slide")
    labels = [t.get_text() for t in artists_with_gid(fig, "connection-box-label")]
    assert any(label.startswith("RCPT → 550 5.1.1") for label in labels), labels


@pytest.mark.parametrize("name", ["link-outage", "reply-codes", "bounce-after-days"])
def test_no_label_overlaps_a_failed_connection_mark(name: str) -> None:
    fig = sequence_diagram(records(name), size="slide")
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    ax = fig.axes[0]
    marks = []
    for cross in artists_with_gid(fig, "tcp-fail"):
        x, y = ax.transData.transform((cross.get_xdata()[0], cross.get_ydata()[0]))
        half = cross.get_markersize() / 72 * fig.dpi / 2
        marks.append((x - half, y - half, x + half, y + half))
    own = {id(t) for t in artists_with_gid(fig, "tcp-fail-label")}
    for text in ax.texts:
        if id(text) in own or not text.get_text():
            continue
        box = text.get_window_extent(renderer)
        for x0, y0, x1, y1 in marks:
            apart = box.x1 <= x0 or box.x0 >= x1 or box.y1 <= y0 or box.y0 >= y1
            assert apart, f"{text.get_text()!r} overlaps a mark"


@pytest.mark.parametrize("name", ["reply-codes", "push-and-pull"])
def test_a_slide_chart_uses_its_room_before_folding(name: str) -> None:
    fig = sequence_diagram(records(name), size="slide")
    ax = fig.axes[0]
    bottom, top = ax.get_ylim()  # rows run downward
    kept = ("gap", "connection-box")
    drawn = [p.get_y() + p.get_height() for p in ax.patches if p.get_gid() in kept]
    drawn += [max(a.xy[1], a.xyann[1]) for a in artists_with_gid(fig, "smtp-line")]
    drawn += [max(a.xy[1], a.xyann[1]) for a in artists_with_gid(fig, "http-line")]
    used = (max(drawn) - top) / (bottom - top)
    assert used > 0.75, f"{name}: only {used:.0%} of the chart's height is used"


def test_the_default_chart_is_at_most_sequence_max_rows_long() -> None:
    fig = sequence_diagram(records("reply-codes"))
    inches = fig.get_size_inches()[1]
    assert inches < 0.2 * 200  # it was 185 inches (20305 pixels) with everything drawn
    assert LOOKS["default"].dpi * inches < 4500
    everything = sequence_diagram(records("reply-codes"), max_rows=None)
    assert everything.get_size_inches()[1] > 2 * inches  # old keyword: draw everything


def _drawn_texts(fig) -> list[str]:
    return [t.get_text() for t in fig.axes[0].texts if t.get_visible()]


@pytest.mark.parametrize("size", ["default", "slide"])
def test_reply_codes_draws_the_crash_after_the_final_dot(size: str) -> None:
    # The connection lost after the final dot (451 4.4.2, RFC 1047) is what the scenario's
    # last act teaches: drawn as a box, or named in its band, never counted in "… and N more".
    fig = sequence_diagram(records("reply-codes"), size=size)
    named = [t for t in _drawn_texts(fig) if "451 4.4.2" in t]
    assert named, _drawn_texts(fig)
    assert any("Connection lost" in t for t in named), named


def test_box_texts_keep_the_meaning_of_the_decisive_reply() -> None:
    # "552 5.3.4 Message size excee…" was cut: the reply's code and the words that say what it
    # means fit (wrapped onto a second line of the box).
    fig = sequence_diagram(records("reply-codes"), size="slide")
    text = " ".join(t.get_text() for t in artists_with_gid(fig, "connection-box-label"))
    for meaning in (
        "552 5.3.4 Message size exceeds fixed maximum message size",
        "451 4.7.1 Greylisted, please try again later",
    ):
        assert meaning in text, text


@pytest.mark.parametrize("name", ["reply-codes", "james-to-steve", "link-outage"])
@pytest.mark.parametrize("size", ["default", "slide"])
def test_connection_labels_touch_no_message_label(name: str, size: str) -> None:
    # "conn 9" sat centred over india-mail's lane, where the 421 greeting's label ends.
    fig = sequence_diagram(records(name), size=size)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    texts = fig.axes[0].texts
    tags = [t.get_window_extent(renderer) for t in texts if re.fullmatch(r"conn \d+", t.get_text())]
    labels = [
        t.get_window_extent(renderer)
        for gid in ("smtp-line-label", "pop3-line-label", "http-line-label", "smtp-data-label")
        for t in artists_with_gid(fig, gid)
    ]
    for tag in tags:
        for label in labels:
            apart = (
                tag.x1 <= label.x0 or tag.x0 >= label.x1 or tag.y1 <= label.y0 or tag.y0 >= label.y1
            )
            assert apart, (name, size)


@pytest.mark.parametrize("name", ["link-outage", "persistent-connection", "james-to-steve"])
def test_a_slide_chart_spreads_out_to_use_its_height(name: str) -> None:
    # A chart whose plan fits with room to spare spreads its lines out, not its empty bottom.
    fig = sequence_diagram(records(name), size="slide")
    ax = fig.axes[0]
    bottom, top = ax.get_ylim()
    kept = ("gap", "connection-box")
    drawn = [p.get_y() + p.get_height() for p in ax.patches if p.get_gid() in kept]
    for gid in ("smtp-line", "pop3-line", "http-line", "smtp-data", "pop3-data"):
        drawn += [max(a.xy[1], a.xyann[1]) for a in artists_with_gid(fig, gid)]
    drawn += [c.get_ydata()[0] for c in artists_with_gid(fig, "tcp-fail")]
    used = (max(drawn) - top) / (bottom - top)
    assert used > 0.85, f"{name}: only {used:.0%} of the chart's height is used"


@pytest.mark.parametrize("size", ["default", "slide"])
def test_a_message_label_sits_above_its_own_arrow(size: str) -> None:
    # The label was level on the arrow's middle, so its own slanted arrow ran through it.
    fig = sequence_diagram(records("james-to-steve"), size=size)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    ax = fig.axes[0]
    checked = 0
    for gid in ("smtp-line", "pop3-line"):
        for arrow, label in zip(
            artists_with_gid(fig, gid), artists_with_gid(fig, f"{gid}-label"), strict=True
        ):
            a = ax.transData.transform(arrow.xyann)
            b = ax.transData.transform(arrow.xy)
            box = label.get_window_extent(renderer)
            assert not segment_hits(box.padded(-1), a, b), label.get_text()
            checked += 1
    assert checked > 5


def test_seed_transcript_at_slide_size_draws_the_typed_session_line_by_line() -> None:
    # The tutorial's telnet session is the lesson: it was a box while Steve's fetch was drawn.
    fig = sequence_diagram(records("seed-transcript"), size="slide")
    labels = [t.get_text() for t in artists_with_gid(fig, "smtp-line-label")]
    assert "HELO USA.com" in labels and "250 Message accepted for delivery." in labels, labels
