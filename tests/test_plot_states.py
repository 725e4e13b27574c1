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
    # Pairs: CONNECTED->GREETED, CONNECTED->CLOSED, GREETED->READY (EHLO and HELO share it),
    # READY->MAIL, READY->CLOSED, MAIL->RCPT, MAIL->READY, MAIL->CLOSED, RCPT->DATA,
    # RCPT->READY, DATA->READY: 11. Self-loops: GREETED (NOOP), READY (NOOP), RCPT (RCPT): 3.
    assert len(artists_with_gid(fig, "transition")) == 11
    assert len(artists_with_gid(fig, "self-loop")) == 3
    texts = {t.get_text() for t in fig.axes[0].texts}
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
    # The per-state arrows are unchanged: the same 11 pairs as without the shared rule.
    assert len(artists_with_gid(fig, "transition")) == 11


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
