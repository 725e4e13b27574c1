"""Figures drawn from a trace, and nothing but the trace (docs/design.md, principle 2).

Every function takes trace records, as ``Recorder.records`` holds them or as
``mailsim.trace.load_events(path)`` reads them back from ``events.jsonl``, and returns a
:class:`matplotlib.figure.Figure` drawn without pyplot (Agg canvas), so the same call works in a
notebook, in ``mailsim run`` on a server and in tests.

- :func:`sequence_diagram`: the message sequence chart of the SMTP and POP3 dialogues, or of
  one message's journey (:func:`message_story`, :func:`telling_message`).
- :func:`delivery_timeline`: one row per (message, recipient), attempts, outages behind.
- :func:`topology_figure`: the network by site, links with latency and bandwidth, outages, routes.
- :func:`queue_figure`, :func:`latency_cdf`, :func:`attempts_histogram`: queues and performance.
- :func:`state_diagram`: a protocol machine's transition table as a diagram.
- :func:`animate`, :func:`save_animation`: messages moving over the topology.
- :func:`sweep_figure`: a parameter study's metrics with 95% intervals (from its results files).
- :func:`render_all`: the standard PNG files of a run directory.

Importing this package is cheap: matplotlib, numpy and networkx load when a figure is drawn.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mailsim.plot._style import LOOKS, Look, PlotError, look_for
from mailsim.plot.animation import animate, save_animation
from mailsim.plot.queues import attempts_histogram, latency_cdf, queue_figure, queue_lengths
from mailsim.plot.sequence import SEQUENCE_MAX_ROWS, sequence_diagram
from mailsim.plot.sequence_story import (
    STORY_AFTER,
    UnknownMessage,
    message_story,
    telling_message,
)
from mailsim.plot.states import state_diagram
from mailsim.plot.sweep import save_sweep_figure, sweep_figure
from mailsim.plot.timeline import Journey, delivery_timeline, journeys
from mailsim.plot.topology import Topology, read_topology, topology_figure

__all__ = [
    "LOOKS",
    "SEQUENCE_MAX_ROWS",
    "Journey",
    "Look",
    "PlotError",
    "Topology",
    "UnknownMessage",
    "animate",
    "attempts_histogram",
    "delivery_timeline",
    "journeys",
    "latency_cdf",
    "message_story",
    "queue_figure",
    "queue_lengths",
    "read_topology",
    "render_all",
    "save_animation",
    "save_sweep_figure",
    "sequence_diagram",
    "state_diagram",
    "sweep_figure",
    "telling_message",
    "topology_figure",
]

#: ``queues.png`` is written when the trace has more messages than this.
QUEUE_FIGURE_AFTER = 5
#: Rows of ``timeline.png`` at most: the most retried pairs of a busy run (all of them in Python).
TIMELINE_MAX_ROWS = 40


def render_all(
    records: Sequence[dict[str, Any]],
    out_dir: str | Path,
    *,
    dpi: float | None = None,
    size: str = "default",
    sequence: bool = True,
    message: str | None = "auto",
) -> list[Path]:
    """Write the standard figures of a run into ``out_dir`` and return their paths.

    Always ``sequence.png`` (data lines collapsed, bursts of lines joined, at most
    :data:`SEQUENCE_MAX_ROWS` rows: connections that move mail first, empty POP3 checks folded;
    for a run of more than :data:`~mailsim.plot.sequence_story.STORY_AFTER` connections, one
    message's journey, see ``message``),
    ``timeline.png`` (a linear time axis, so steady retries look steady; at most
    :data:`TIMELINE_MAX_ROWS` rows, the most retried) and ``topology.png``; also ``queues.png``
    when more than :data:`QUEUE_FIGURE_AFTER` messages were submitted. Used by ``mailsim run``
    and ``mailsim plot DIR``.

    Args:
        records: trace records.
        out_dir: the folder (created if missing).
        dpi: resolution; default: the look's (110 for "default", 120 for "slide", which makes
            the 16 x 9 in slide figures 1920 x 1080 pixels).
        size: "default" or "slide" (see :class:`mailsim.plot._style.Look`).
        sequence: False leaves out the sequence chart (a summary trace has no protocol lines
            to draw).
        message: what the sequence chart shows: "auto" (the whole run, or for a busy run the
            journey of the message :func:`~mailsim.plot.sequence_story.telling_message`
            picks), a message id (that message's journey) or None (the whole run, however
            busy).

    Raises:
        UnknownMessage: ``message`` names no message of the trace (the other figures are
            written by then).
    """
    look = look_for(size)
    records = list(records)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figures = {
        "timeline.png": delivery_timeline(records, max_rows=TIMELINE_MAX_ROWS, size=size),
        "topology.png": topology_figure(records, size=size),
    }
    messages = {r["msg"] for r in records if r["type"] in ("mail.submit", "mail.queue")}
    if len(messages) > QUEUE_FIGURE_AFTER:
        figures["queues.png"] = queue_figure(records, size=size)
    written = []
    for name, figure in figures.items():
        path = out / name
        figure.savefig(path, dpi=dpi if dpi is not None else look.dpi)
        written.append(path)
    if sequence:  # last: a message id that is not in the trace costs only this chart
        if message == "auto":
            busy = sum(1 for r in records if r["type"] == "tcp.open") > STORY_AFTER
            message = telling_message(records) if busy else None
        chart = sequence_diagram(
            records,
            message=message,
            hide_data=True,
            group_bursts=True,
            max_rows=SEQUENCE_MAX_ROWS,
            size=size,
        )
        path = out / "sequence.png"
        chart.savefig(path, dpi=dpi if dpi is not None else look.dpi)
        written.insert(0, path)  # listed first, as it is read first
    return written
