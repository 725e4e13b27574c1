"""The step-through view: a run's trace one event at a time, like a network simulator's
"simulation mode".

:class:`StepThrough` is an ipywidgets box: filters (node, protocol, connection), previous and next
buttons and a slider, the list of events around the current one, the current event's details
(time, nodes, the SMTP/POP3/HTTP line, a TCP segment's flags, sequence and acknowledgement
numbers and length), and the sequence chart with the current event in yellow. Its ``index``
trait is the position of the current event in the filtered list and ``event`` is that trace
record as a dict, so code (and the tests) can drive it exactly as the buttons do.

Without a live kernel (a notebook rendered statically, nbconvert to HTML) a widget cannot run;
the view then falls back to its HTML and text forms, a table of the events, which every
renderer shows. Without ipywidgets installed, :func:`step_through` returns that table alone.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

from mailsim.trace.clock import format_time

Record = dict[str, Any]

#: Events shown in the list around the current one.
LIST_ROWS = 11
#: Protocol lines at most in the chart of the whole selection; beyond that the chart shows the
#: current event's connection (or the lines sent around its moment) instead.
CHART_LINES = 70
#: Rows at most in the static table.
TABLE_ROWS = 400

#: Protocol filter choices: label -> record type prefixes.
PROTOCOLS: dict[str, tuple[str, ...]] = {
    "all": (),
    "SMTP": ("smtp.",),
    "POP3": ("pop3.",),
    "HTTP": ("http.",),
    "TCP": ("tcp.",),
    "DNS": ("dns.",),
    "mail": ("mail.", "auth."),
    "faults": ("link.", "node.", "service."),
}

_NODE_FIELDS = ("node", "src", "dst", "client", "server", "a", "b")
_SKIP_IN_DETAILS = {"t", "type", "payload"}


def steppable(records: Sequence[Record]) -> list[Record]:
    """The records worth stepping through: all but the world's description (``net.*`` at t=0)."""
    return [r for r in records if not r["type"].startswith("net.")]


def nodes_of(rec: Record) -> list[str]:
    """The node names a record mentions, in field order."""
    return [str(rec[f]) for f in _NODE_FIELDS if isinstance(rec.get(f), str)]


def one_line(rec: Record) -> str:
    """A record as one line of the event list: what happened, between whom."""
    kind = rec["type"]
    if kind.endswith(".line"):
        return f"{rec['src']} → {rec['dst']}  {rec['side']}: {rec['line']}"
    if kind == "tcp.segment":
        return (
            f"{rec['src']} → {rec['dst']}  [{rec['flags']}] seq={rec['seq']} "
            f"ack={rec['ack']} len={rec['length']}"
        )
    if kind == "tcp.open":
        return f"{rec['client']} → {rec['server']}:{rec['sport']}  SYN (connect)"
    if kind == "dns.query":
        return f"{rec['node']} asks {rec['qtype']} {rec['name']}: {rec['rcode']} {rec['answer']}"
    shown = [f"{k}={v}" for k, v in rec.items() if k not in _SKIP_IN_DETAILS]
    return " ".join(shown)


def details(rec: Record) -> list[tuple[str, str]]:
    """The current event's details as (label, value) rows, most telling first."""
    rows = [("time", format_time(rec["t"])), ("event", rec["type"])]
    nodes = nodes_of(rec)
    if "src" in rec and "dst" in rec:
        rows.append(("from → to", f"{rec['src']} → {rec['dst']}"))
    elif nodes:
        rows.append(("nodes", ", ".join(nodes)))
    if rec["type"].endswith(".line"):
        proto = rec["type"].split(".")[0].upper()
        who = "client" if rec["side"] == "C" else "server"
        rows.append((f"{proto} line ({who})", rec["line"]))
    if rec["type"] == "tcp.segment":
        rows += [
            ("TCP flags", rec["flags"]),
            ("sequence number", str(rec["seq"])),
            ("acknowledgement number", str(rec["ack"])),
            ("length (octets of data)", str(rec["length"])),
        ]
    shown = {"src", "dst", "side", "line", "flags", "seq", "ack", "length", *_NODE_FIELDS}
    for key, value in rec.items():
        if key not in _SKIP_IN_DETAILS and key not in shown:
            rows.append((key, str(value)))
    return rows


def _table_html(records: Sequence[Record], current: int | None = None, start: int = 0) -> str:
    cells = []
    for offset, rec in enumerate(records):
        index = start + offset
        style = ' style="background:#fff3b0;font-weight:bold"' if index == current else ""
        cells.append(
            f"<tr{style}><td>{index}</td><td>{format_time(rec['t'])}</td>"
            f"<td>{html.escape(rec['type'])}</td>"
            f"<td style='text-align:left'>{html.escape(one_line(rec))}</td></tr>"
        )
    return (
        "<table style='font-family:monospace;font-size:12px'>"
        "<tr><th>#</th><th>time</th><th>event</th><th style='text-align:left'>what</th></tr>"
        + "".join(cells)
        + "</table>"
    )


def _table_text(records: Sequence[Record]) -> str:
    lines = [f"{'#':>5}  {'time':<12}  {'event':<16}  what"]
    for index, rec in enumerate(records[:TABLE_ROWS]):
        lines.append(f"{index:>5}  {format_time(rec['t']):<12}  {rec['type']:<16}  {one_line(rec)}")
    if len(records) > TABLE_ROWS:
        lines.append(f"... {len(records) - TABLE_ROWS} more events")
    return "\n".join(lines)


class EventTable:
    """The events as a table: what the step-through view degrades to without a live kernel."""

    def __init__(self, records: Sequence[Record]) -> None:
        #: The events listed.
        self.events = steppable(records)

    def _repr_html_(self) -> str:
        shown = self.events[:TABLE_ROWS]
        more = len(self.events) - len(shown)
        tail = f"<p>... {more} more events</p>" if more > 0 else ""
        return _table_html(shown) + tail

    def __repr__(self) -> str:
        return _table_text(self.events)


def step_through(records: Sequence[Record]) -> Any:
    """The step-through view of ``records``: a :class:`StepThrough` widget, or, without
    ipywidgets installed, an :class:`EventTable` (``pip install ipywidgets`` for the widget)."""
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        return EventTable(records)
    return _widget_class()(records)


_WIDGET: Any = None


def _widget_class() -> Any:
    """Define :class:`StepThrough` on first use, so importing this module needs no ipywidgets."""
    global _WIDGET
    if _WIDGET is None:
        _WIDGET = _define_widget()
    return _WIDGET


def _define_widget() -> Any:
    import ipywidgets as widgets
    import traitlets

    class StepThrough(widgets.VBox):  # type: ignore[misc]
        """Step through a trace one event at a time (module docstring).

        Attributes:
            index: position of the current event in the filtered list (a traitlet: observe it,
                set it, link it to other widgets).
            event: the current trace record, a dict.
            events: the filtered list of records.
        """

        index = traitlets.Int(0)

        def __init__(self, records: Sequence[Record]) -> None:
            self.records = list(records)
            self._all = steppable(self.records)
            self._world = [r for r in self.records if r["type"].startswith("net.")]
            self.events: list[Record] = list(self._all)
            self._chart_key: Any = None
            self._chart_png = b""
            self._build_controls()
            super().__init__(
                [
                    widgets.HBox([self.node_filter, self.protocol_filter, self.connection_filter]),
                    widgets.HBox([self.previous_button, self.next_button, self.slider]),
                    widgets.HBox([self.listing, self.details_view]),
                    self.chart,
                ]
            )
            self._show()

        # -- the controls -------------------------------------------------------------------

        def _build_controls(self) -> None:
            nodes = sorted({n for r in self._all for n in nodes_of(r)})
            conns = {}
            for rec in self.records:
                if rec["type"] == "tcp.open":
                    conns[rec["conn"]] = (
                        f"conn {rec['conn']}: {rec['client']} → {rec['server']}:{rec['sport']}"
                    )
            layout = widgets.Layout(width="auto")
            self.node_filter = widgets.Dropdown(
                description="node", options=["all", *nodes], value="all", layout=layout
            )
            self.protocol_filter = widgets.Dropdown(
                description="protocol", options=list(PROTOCOLS), value="all", layout=layout
            )
            self.connection_filter = widgets.Dropdown(
                description="connection",
                options=[("all", None)] + [(label, c) for c, label in conns.items()],
                value=None,
                layout=layout,
            )
            for control in (self.node_filter, self.protocol_filter, self.connection_filter):
                control.observe(self._refilter, names="value")
            self.previous_button = widgets.Button(description="◀ previous")
            self.next_button = widgets.Button(description="next ▶")
            self.previous_button.on_click(lambda _: self.previous())
            self.next_button.on_click(lambda _: self.next())
            self.slider = widgets.IntSlider(
                min=0, max=max(len(self.events) - 1, 0), description="event"
            )
            traitlets.link((self.slider, "value"), (self, "index"))
            self.listing = widgets.HTML(layout=widgets.Layout(width="55%"))
            self.details_view = widgets.HTML(layout=widgets.Layout(width="45%"))
            self.chart = widgets.Image(format="png")

        # -- driving it from code -----------------------------------------------------------

        @property
        def event(self) -> Record:
            """The current trace record, as a dict (empty when the filters leave nothing)."""
            if not self.events:
                return {}
            return dict(self.events[self.index])

        def next(self) -> None:
            """Step to the next event (stays on the last)."""
            self.index = min(self.index + 1, max(len(self.events) - 1, 0))

        def previous(self) -> None:
            """Step back to the previous event (stays on the first)."""
            self.index = max(self.index - 1, 0)

        def filter(
            self, node: str = "all", protocol: str = "all", connection: int | None = None
        ) -> None:
            """Set the three filters at once, as the drop-downs do."""
            with self.hold_trait_notifications():
                self.node_filter.value = node
                self.protocol_filter.value = protocol
                self.connection_filter.value = connection

        @traitlets.validate("index")
        def _valid_index(self, proposal: Any) -> int:
            value = int(proposal["value"])
            if self.events and not 0 <= value < len(self.events):
                raise traitlets.TraitError(
                    f"index must be from 0 to {len(self.events) - 1} (the events shown), "
                    f"got {value}"
                )
            return value

        @traitlets.observe("index")
        def _moved(self, _change: Any) -> None:
            self._show()

        def _refilter(self, _change: Any) -> None:
            current = self.event
            node = self.node_filter.value
            prefixes = PROTOCOLS[self.protocol_filter.value]
            conn = self.connection_filter.value
            self.events = [
                r
                for r in self._all
                if (node == "all" or node in nodes_of(r))
                and (not prefixes or r["type"].startswith(prefixes))
                and (conn is None or r.get("conn") == conn)
            ]
            # Stay on the same event if it is still shown, else on the first one after it.
            target = 0
            if current:
                later = [i for i, r in enumerate(self.events) if r["t"] >= current["t"]]
                same = [i for i, r in enumerate(self.events) if r == current]
                target = same[0] if same else (later[0] if later else len(self.events) - 1)
            self.slider.max = max(len(self.events) - 1, 0)
            target = max(target, 0)
            if target == self.index:
                self._show()
            else:
                self.index = target

        # -- what is shown ------------------------------------------------------------------

        def _show(self) -> None:
            if not self.events:
                self.listing.value = "<i>no event passes these filters</i>"
                self.details_view.value = ""
                self.chart.value = b""
                return
            start = max(0, min(self.index - LIST_ROWS // 2, len(self.events) - LIST_ROWS))
            window = self.events[start : start + LIST_ROWS]
            self.listing.value = _table_html(window, self.index, start)
            rows = "".join(
                f"<tr><th style='text-align:right;padding-right:8px'>{html.escape(k)}</th>"
                f"<td style='font-family:monospace'>{html.escape(v)}</td></tr>"
                for k, v in details(self.events[self.index])
            )
            self.details_view.value = (
                f"<b>event {self.index} of {len(self.events)}</b><table>{rows}</table>"
            )
            self.chart.value = self.chart_png()

        def chart_records(self) -> tuple[list[Record], dict[str, Any]]:
            """What the chart draws for the current event: records and sequence_diagram options.

            The whole selection while it is short enough; otherwise the current event's
            connection, or, for an event outside any connection, the lines around its moment.
            """
            rec = self.events[self.index]
            conn = self.connection_filter.value
            node = self.node_filter.value
            options: dict[str, Any] = {"hide_data": True, "show_tcp": True}
            if conn is not None:
                return self.records, {**options, "connection": conn}
            lines = [r for r in self.records if r["type"].endswith(".line")]
            if node != "all":
                conns = {r["conn"] for r in lines if node in (r["src"], r["dst"])}
                lines = [r for r in lines if r["conn"] in conns]
            if len(lines) <= CHART_LINES:
                wanted = {r["conn"] for r in lines}
                chosen = [r for r in self.records if r.get("conn") in wanted or "conn" not in r]
                return chosen, options
            if "conn" in rec:
                return self.records, {**options, "connection": rec["conn"]}
            times = sorted(r["t"] for r in lines)
            import bisect

            at = bisect.bisect_left(times, rec["t"])
            lo = times[max(0, at - CHART_LINES // 2)]
            hi = times[min(len(times) - 1, at + CHART_LINES // 2)]
            return self.records, {**options, "window": (min(lo, rec["t"]), max(hi, rec["t"]))}

        def chart_png(self) -> bytes:
            """The sequence chart with the current event highlighted, as PNG bytes."""
            import io

            from mailsim.plot import sequence_diagram

            records, options = self.chart_records()
            figure = sequence_diagram(records, highlight=self.events[self.index], **options)
            buffer = io.BytesIO()
            figure.savefig(buffer, format="png", dpi=72)
            return buffer.getvalue()

        # -- without a kernel ---------------------------------------------------------------

        def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
            # A live front end renders the widget view; a static one (nbconvert, GitHub) shows
            # the HTML table, and a terminal the text table.
            bundle = dict(super()._repr_mimebundle_(**kwargs) or {})
            table = EventTable(self.events)
            bundle["text/html"] = table._repr_html_()
            bundle["text/plain"] = repr(table)
            return bundle

    return StepThrough
