"""The step-through view, driven from code: move ``index``, read ``event``, filter, highlight."""

from __future__ import annotations

import pytest

import mailsim
from mailsim.teach import EventTable, step_through
from mailsim.teach.stepper import details, nodes_of

pytest.importorskip("ipywidgets")


@pytest.fixture(scope="module")
def result():  # type: ignore[no-untyped-def]
    return mailsim.load("james-to-steve").run(segments=True)


def test_index_selects_the_event_and_event_is_that_trace_record(result) -> None:  # type: ignore[no-untyped-def]
    view = result.step_through()
    steps = [r for r in result.records if not r["type"].startswith("net.")]
    assert view.index == 0 and view.event == steps[0]
    view.index = 7
    assert view.event == steps[7] and view.slider.value == 7
    view.next()
    assert view.event == steps[8]
    view.previous()
    view.previous()
    assert view.event == steps[6]
    view.slider.value = 3  # the slider and the trait are one
    assert view.index == 3
    with pytest.raises(Exception, match="index must be from 0 to"):
        view.index = len(steps)
    assert isinstance(view.event, dict) and view.event is not steps[3]


def test_filters_narrow_the_events_and_keep_the_current_one(result) -> None:  # type: ignore[no-untyped-def]
    view = result.step_through()
    relay = next(
        r["conn"]
        for r in result.records
        if r["type"] == "tcp.open" and r["server"] == "usa-mail" and r["sport"] == 25
    )
    view.filter(connection=relay, protocol="SMTP")
    assert view.events and all(r["type"] == "smtp.line" and r["conn"] == relay for r in view.events)
    assert view.event["line"].startswith("220 ")
    greeting = view.event
    view.filter(connection=relay)  # widen: the greeting stays the current event
    assert view.event == greeting
    view.filter(protocol="TCP", connection=relay)
    segment = next(i for i, r in enumerate(view.events) if r["type"] == "tcp.segment")
    view.index = segment
    shown = dict(details(view.event))
    assert shown["TCP flags"] == view.event["flags"] == "S"
    assert {"sequence number", "acknowledgement number", "length (octets of data)"} <= set(shown)
    assert "TCP flags" in view.details_view.value
    view.filter(node="james-pc")
    assert view.events and all("james-pc" in nodes_of(r) for r in view.events)


def test_the_chart_follows_the_current_event(result) -> None:  # type: ignore[no-untyped-def]
    view = result.step_through()
    view.filter(protocol="SMTP")
    first_png = view.chart.value
    view.next()
    assert view.chart.value[:8] == b"\x89PNG\r\n\x1a\n" and view.chart.value != first_png


def test_without_a_kernel_it_shows_a_table_of_the_events(result) -> None:  # type: ignore[no-untyped-def]
    view = step_through(result.records)
    bundle = view._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert "<table" in bundle["text/html"] and "220 usa.com" in bundle["text/html"]
    assert "smtp.line" in bundle["text/plain"]
    table = EventTable(result.records)
    assert "mail.submit" in repr(table).splitlines()[1]
