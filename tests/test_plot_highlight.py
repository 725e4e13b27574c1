"""The sequence chart picks out one event in yellow: its arrow, or its moment."""

from __future__ import annotations

import pytest

import mailsim
from mailsim.plot import sequence_diagram


@pytest.fixture(scope="module")
def records():  # type: ignore[no-untyped-def]
    return mailsim.load("james-to-steve").run().records


def _glow(fig):  # type: ignore[no-untyped-def]
    return [a for ax in fig.axes for a in ax.get_children() if a.get_gid() == "highlight"]


def test_a_protocol_line_glows_along_its_own_arrow(records) -> None:  # type: ignore[no-untyped-def]
    line = next(r for r in records if r["type"] == "smtp.line" and r["line"].startswith("EHLO"))
    fig = sequence_diagram(records, connection=line["conn"], highlight=line)
    [glow] = _glow(fig)
    xs, _ = glow.get_data()
    assert xs[0] != xs[1]  # it runs from one lane to the other, like the arrow
    assert not _glow(sequence_diagram(records, connection=line["conn"]))


def test_an_event_without_an_arrow_gets_a_line_across_the_chart(records) -> None:  # type: ignore[no-untyped-def]
    deliver = next(r for r in records if r["type"] == "mail.deliver")
    [glow] = _glow(sequence_diagram(records, highlight=deliver))
    _, ys = glow.get_data()
    assert ys[0] == ys[1]
