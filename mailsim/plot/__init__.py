"""Figures drawn from a trace, and nothing but the trace (DESIGN.md, principle 2).

Every function takes trace records, as ``Recorder.records`` holds them or as
``mailsim.trace.load_events(path)`` reads them back from ``events.jsonl``, and returns a
:class:`matplotlib.figure.Figure` drawn without pyplot (Agg canvas), so the same call works in a
notebook, in ``mailsim run`` on a server and in tests.

- :func:`sequence_diagram`: the message sequence chart of the SMTP and POP3 dialogues.
- :func:`delivery_timeline`: one row per (message, recipient), attempts, outages behind.
- :func:`topology_figure`: the network by site, links with latency and bandwidth, outages, routes.
- :func:`queue_figure`, :func:`latency_cdf`, :func:`attempts_histogram`: queues and performance.
- :func:`state_diagram`: a protocol machine's transition table as a diagram.
- :func:`animate`, :func:`save_animation`: messages moving over the topology.
- :func:`render_all`: the standard PNG files of a run directory.

Importing this package is cheap: matplotlib, numpy and networkx load when a figure is drawn.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mailsim.plot._style import PlotError
from mailsim.plot.animation import animate, save_animation
from mailsim.plot.queues import attempts_histogram, latency_cdf, queue_figure, queue_lengths
from mailsim.plot.sequence import sequence_diagram
from mailsim.plot.states import state_diagram
from mailsim.plot.timeline import Journey, delivery_timeline, journeys
from mailsim.plot.topology import Topology, read_topology, topology_figure

__all__ = [
    "Journey",
    "PlotError",
    "Topology",
    "animate",
    "attempts_histogram",
    "delivery_timeline",
    "journeys",
    "latency_cdf",
    "queue_figure",
    "queue_lengths",
    "read_topology",
    "render_all",
    "save_animation",
    "sequence_diagram",
    "state_diagram",
    "topology_figure",
]

#: Lines drawn at most in ``sequence.png`` (whole connections are kept, first opened first).
SEQUENCE_MAX_LINES = 200
#: ``queues.png`` is written when the trace has more messages than this.
QUEUE_FIGURE_AFTER = 5
#: Rows of ``timeline.png`` at most: the most retried pairs of a busy run (all of them in Python).
TIMELINE_MAX_ROWS = 40


def render_all(
    records: Sequence[dict[str, Any]],
    out_dir: str | Path,
    *,
    dpi: float = 110,
    sequence: bool = True,
) -> list[Path]:
    """Write the standard figures of a run into ``out_dir`` and return their paths.

    Always ``sequence.png`` (data lines collapsed, at most :data:`SEQUENCE_MAX_LINES` lines),
    ``timeline.png`` (log time when the story spans more than a day; at most
    :data:`TIMELINE_MAX_ROWS` rows, the most retried) and ``topology.png``; also
    ``queues.png`` when more than :data:`QUEUE_FIGURE_AFTER` messages were submitted. Used by
    ``mailsim run`` and ``mailsim plot DIR``. ``sequence=False`` leaves out the sequence chart
    (a summary trace has no protocol lines to draw).
    """
    records = list(records)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    mail_times = [r["t"] for r in records if r["type"].startswith("mail.")]
    long_story = bool(mail_times) and max(mail_times) - min(mail_times) > 86400
    figures = {}
    if sequence:
        figures["sequence.png"] = sequence_diagram(
            records, hide_data=True, max_lines=SEQUENCE_MAX_LINES
        )
    figures["timeline.png"] = delivery_timeline(
        records, log_time=long_story, max_rows=TIMELINE_MAX_ROWS
    )
    figures["topology.png"] = topology_figure(records)
    messages = {r["msg"] for r in records if r["type"] in ("mail.submit", "mail.queue")}
    if len(messages) > QUEUE_FIGURE_AFTER:
        figures["queues.png"] = queue_figure(records)
    written = []
    for name, figure in figures.items():
        path = out / name
        figure.savefig(path, dpi=dpi)
        written.append(path)
    return written
