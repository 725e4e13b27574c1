"""State diagrams are drawn from any {state: {trigger: new_state}} table."""

from __future__ import annotations

import enum

import pytest
from plot_traces import artists_with_gid, keep

from mailsim.plot import PlotError, state_diagram


class Session(enum.Enum):
    CONNECTED = enum.auto()
    GREETED = enum.auto()
    READY = enum.auto()
    MAIL = enum.auto()
    RCPT = enum.auto()
    DATA = enum.auto()
    CLOSED = enum.auto()


#: A hand-written SMTP server table in the shape the protocol machines export.
SMTP_LIKE = {
    Session.CONNECTED: {"220": Session.GREETED, "QUIT": Session.CLOSED},
    Session.GREETED: {"EHLO": Session.READY, "HELO": Session.READY, "NOOP": Session.GREETED},
    Session.READY: {"MAIL": Session.MAIL, "NOOP": Session.READY, "QUIT": Session.CLOSED},
    Session.MAIL: {"RCPT": Session.RCPT, "RSET": Session.READY, "QUIT": Session.CLOSED},
    Session.RCPT: {"RCPT": Session.RCPT, "DATA": Session.DATA, "RSET": Session.READY},
    Session.DATA: {"end of data": Session.READY},
}


def _state_patches(fig):
    return [a for a in fig.findobj(lambda a: str(a.get_gid() or "").startswith("state:"))]


def test_one_node_per_state_and_one_arrow_per_pair_of_states():
    fig = state_diagram(SMTP_LIKE, title="SMTP server (hand-written)")
    keep(fig, "states_smtp_like")
    names = sorted(p.get_gid() for p in _state_patches(fig))
    assert names == sorted(f"state:{s.name}" for s in Session)
    # Pairs: CONNECTED->GREETED, GREETED->READY (EHLO and HELO share it), READY->MAIL,
    # MAIL->RCPT, MAIL->READY, RCPT->DATA, RCPT->READY, DATA->READY: 8. QUIT -> CLOSED, which
    # CONNECTED, READY and MAIL share, is one arrow from a box naming the three.
    # Self-loops: GREETED (NOOP), READY (NOOP), RCPT (RCPT): 3.
    assert len(artists_with_gid(fig, "transition")) == 8
    assert len(artists_with_gid(fig, "transition-family")) == 1
    assert [t.get_text() for t in fig.axes[0].texts].count("QUIT") == 1
    assert len(artists_with_gid(fig, "self-loop")) == 3
    texts = {t.get_text().replace("\n", " ") for t in fig.axes[0].texts}  # wrapping aside
    assert "EHLO, HELO" in texts


def test_flow_runs_left_to_right_and_the_dead_end_sits_below():
    fig = state_diagram(SMTP_LIKE, title="SMTP")
    centre = {p.get_gid()[6:]: p.center for p in _state_patches(fig)}
    chain = ["CONNECTED", "GREETED", "READY", "MAIL", "RCPT", "DATA"]
    xs = [centre[name][0] for name in chain]
    assert xs == sorted(xs) and len(set(xs)) == len(xs)
    # CLOSED is reached from three states and leads nowhere: below the flow line.
    assert centre["CLOSED"][1] < min(centre[name][1] for name in chain)


def test_plain_strings_work_as_states():
    table = {"AUTHORIZATION": {"PASS": "TRANSACTION", "USER": "AUTHORIZATION"}}
    fig = state_diagram(table, title="POP3")
    assert sorted(p.get_gid() for p in _state_patches(fig)) == [
        "state:AUTHORIZATION",
        "state:TRANSACTION",
    ]


def test_an_empty_table_is_a_clear_error():
    with pytest.raises(PlotError, match="empty"):
        state_diagram({}, title="nothing")


def test_rules_shared_by_most_states_are_drawn_once_from_an_any_state_box():
    table = {state: {**rules, "peer closed": Session.CLOSED} for state, rules in SMTP_LIKE.items()}
    fig = state_diagram(table, title="with peer closed everywhere")
    # Six states have "peer closed" -> CLOSED (all that lead anywhere): one box, one arrow.
    assert len(artists_with_gid(fig, "any-state")) == 1
    assert len(artists_with_gid(fig, "transition-any")) == 1
    labels = [t.get_text() for t in fig.axes[0].texts]
    assert labels.count("peer closed") == 1
    # The per-state arrows are unchanged: the same 8 pairs as without the shared rule.
    assert len(artists_with_gid(fig, "transition")) == 8


def _every_state(table):
    return {s for source, row in table.items() for s in (source, *row.values())}


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("mailsim.protocol.smtp", "SERVER_TRANSITIONS"),
        ("mailsim.protocol.smtp", "CLIENT_TRANSITIONS"),
        ("mailsim.protocol.pop3", "SERVER_TRANSITIONS"),
        ("mailsim.protocol.pop3", "CLIENT_TRANSITIONS"),
    ],
)
def test_the_protocol_machines_own_tables_are_drawn_whole(module, name):
    import importlib

    table = getattr(importlib.import_module(module), name)
    fig = state_diagram(table, title=f"{module} {name}")
    keep(fig, f"states_{module.rsplit('.', 1)[1]}_{name.split('_')[0].lower()}")
    assert len(_state_patches(fig)) == len(_every_state(table))
    # Every trigger of the table is written on some arrow.
    written = " ".join(t.get_text().replace("\n", " ") for t in fig.axes[0].texts)
    for row in table.values():
        for trigger in row:
            assert str(trigger) in written, trigger


def _bundled_tables():
    from mailsim.protocol import pop3_states
    from mailsim.protocol.http import TRANSITIONS
    from mailsim.protocol.smtp_states import CLIENT_TRANSITIONS, SERVER_TRANSITIONS

    # Notebook 08's diagram: the rows on the way from the greeting to the message.
    on_the_way = {
        "greeting 220",
        "EHLO",
        "AUTH PLAIN",
        "AUTH LOGIN",
        "AUTH LOGIN with user",
        "auth response",
        "auth cancelled",
        "MAIL",
        "RCPT",
        "DATA",
    }
    keep_states = {
        "CONNECTED",
        "GREETED",
        "READY",
        "AUTH_PLAIN",
        "AUTH_LOGIN_USER",
        "AUTH_LOGIN_PASSWORD",
        "MAIL",
        "RCPT",
        "DATA",
    }
    login_rows = {
        state: {
            t: target for t, target in row.items() if t in on_the_way and target.name in keep_states
        }
        for state, row in SERVER_TRANSITIONS.items()
        if state.name in keep_states
    }
    return {
        "smtp-client": CLIENT_TRANSITIONS,
        "smtp-server": SERVER_TRANSITIONS,
        "pop3-server": pop3_states.SERVER_TRANSITIONS,
        "pop3-client": pop3_states.CLIENT_TRANSITIONS,
        "http": TRANSITIONS,
        "login-rows": login_rows,
    }


@pytest.mark.parametrize("name", sorted(_bundled_tables()))
def test_at_slide_size_no_two_texts_overlap_and_all_type_is_at_least_12_pt(name):
    import itertools

    fig = state_diagram(_bundled_tables()[name], title=name, size="slide")
    keep(fig, f"states_slide_{name}")
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    assert tuple(fig.get_size_inches()) == (16.0, 9.0)
    small = [(t.get_text(), t.get_fontsize()) for t in ax.texts if t.get_fontsize() < 12]
    assert not small
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in ax.texts]
    clashes = [(a, b) for (a, ea), (b, eb) in itertools.combinations(boxes, 2) if ea.overlaps(eb)]
    assert not clashes
    # No edge label covers a state.
    states = [p.get_window_extent(renderer) for p in _state_patches(fig)]
    labels = [
        (t.get_text(), t.get_window_extent(renderer)) for t in ax.texts if t.get_gid() == "label"
    ]
    assert not [text for text, e in labels if any(e.overlaps(s) for s in states)]


def test_a_rule_several_states_share_into_the_bottom_row_is_one_arrow_from_a_box():
    from mailsim.protocol.smtp_states import CLIENT_TRANSITIONS

    fig = state_diagram(CLIENT_TRANSITIONS, title="SMTP client", size="slide")
    texts = [t.get_text() for t in fig.axes[0].texts]
    # Seven states answer 4xx/5xx with QUIT: one arrow, one label, from one box naming them.
    assert texts.count("4xx/5xx") == 3  # the family's, MAIL_SENT's and DATA_SENT's (to RSET)
    assert len(artists_with_gid(fig, "family")) == 1
    assert len(artists_with_gid(fig, "transition-family")) == 1
    box_text = next(t for t in texts if "AUTH_*_SENT" in t)
    assert "AWAIT_GREETING" in box_text and "HELO_SENT" in box_text


def _box_to_segment(box, p, q):
    """Pixels between a box and the segment p-q (0 when the segment enters the box)."""
    import math

    def inside(x, y):
        return box.x0 <= x <= box.x1 and box.y0 <= y <= box.y1

    # Sample the segment finely: labels are tens of pixels, arrows' pieces a few.
    best = math.inf
    for k in range(21):
        x, y = p[0] + (q[0] - p[0]) * k / 20, p[1] + (q[1] - p[1]) * k / 20
        if inside(x, y):
            return 0.0
        dx = max(box.x0 - x, 0.0, x - box.x1)
        dy = max(box.y0 - y, 0.0, y - box.y1)
        best = min(best, math.hypot(dx, dy))
    return best


@pytest.mark.parametrize("name", sorted(_bundled_tables()))
def test_at_slide_size_every_label_touches_its_own_arrow_and_no_other_is_nearer(name):
    import itertools

    fig = state_diagram(_bundled_tables()[name], title=name, size="slide")
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    paths = {}
    for arrow in ax.patches:
        if arrow.get_label().startswith("arc "):
            drawn = ax.transData.transform_path(arrow.get_path())
            paths[arrow.get_label()] = [
                seg
                for polygon in drawn.to_polygons(closed_only=False)
                for seg in itertools.pairwise(polygon)
            ]
    labels = [t for t in ax.texts if t.get_gid() == "label"]
    assert labels and len(labels) == len(paths)
    for label in labels:
        box = label.get_window_extent(renderer)
        near = {
            arc: min(_box_to_segment(box, p, q) for p, q in segments)
            for arc, segments in paths.items()
        }
        own = near.pop(label.get_label())
        assert own <= 8, (label.get_text(), own)
        assert all(own <= other for other in near.values()), label.get_text()


def test_a_self_loop_whose_top_other_arrows_crowd_is_drawn_under_its_state():
    # HTTP's CLOSED (bottom row) has IDLE -> CLOSED and BUSY -> CLOSED coming into its top.
    fig = state_diagram(_bundled_tables()["http"], title="http", size="slide")
    fig.canvas.draw()
    ax = fig.axes[0]
    closed = next(p for p in ax.patches if p.get_gid() == "state:CLOSED")
    loops = [p for p in ax.patches if p.get_gid() == "self-loop"]
    renderer = fig.canvas.get_renderer()
    below = [
        loop
        for loop in loops
        if loop.get_window_extent(renderer).y1 < closed.get_window_extent(renderer).y1
        and loop.get_window_extent(renderer).overlaps(closed.get_window_extent(renderer))
    ]
    assert len(below) == 1
    # BUSY's loop has nothing over it and stays on top.
    busy = next(p for p in ax.patches if p.get_gid() == "state:BUSY")
    assert any(
        loop.get_window_extent(renderer).y1 > busy.get_window_extent(renderer).y1 for loop in loops
    )
