"""Running a scenario, and what a run gives back.

:func:`run_scenario` builds the world, runs its clock and returns a :class:`Result`: the trace,
the books (every message's fate), DataFrames for notebooks, the transcript, the summary, the
figures, and :meth:`Result.save` which writes the output files of ``mailsim run``. The trace is
kept in memory, or streamed to its files as it is recorded (``out=``), at the level asked for
(``trace='full'``, ``'summary'`` or ``'off'``).
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mailsim.trace.books import Books, summary_head, write_summary_stream
from mailsim.trace.events_file import iter_events, load_events, write_events
from mailsim.trace.recorder import Recorder, TraceLevelError
from mailsim.trace.transcript import TRANSCRIPT_TYPES, TranscriptWriter, transcript

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from mailsim.nodes.world import World
    from mailsim.scenario.schema import Scenario
    from mailsim.trace.connections import Connection, RelayTotals

#: A progress callback: (simulated now, simulated end) -> None.
Progress = Callable[[float, float], None]

#: Worlds with more user agents than this have their heap frozen (``gc.freeze``) while they
#: run: the garbage collector then no longer walks the world's many long-lived objects.
LARGE_WORLD_AGENTS = 500

#: The files a streamed run writes as it goes, by the trace level that writes them.
EVENTS_FILE = "events.jsonl"
TRANSCRIPT_FILE = "transcript.txt"


def run_scenario(
    scenario: Scenario,
    *,
    seed: int | None = None,
    until: float | None = None,
    segments: bool | None = None,
    progress: Progress | None = None,
    strict: bool = False,
    trace: str = "full",
    out: str | Path | None = None,
    inbox_kept: int | None = None,
) -> Result:
    """Build and run ``scenario``; returns its :class:`Result`.

    Args:
        seed: overrides the scenario's seed.
        until: run until this simulated time instead of the scenario's ``duration``.
        segments: record every TCP segment (needed for pcap; default: the scenario's trace options).
        progress: called now and then with the simulated time, for a progress bar.
        strict: check every trace record against its documented fields (tests).
        trace: ``full`` (every record), ``summary`` (what summary.json and the timeline need, no
            protocol lines) or ``off`` (no records kept or written; the books are still kept).
        out: stream the trace into this folder as it is recorded (``events.jsonl``, and
            ``transcript.txt`` with the full trace) instead of keeping it in memory; the
            result then reads the records back from the file when asked.
        inbox_kept: how many retrieved messages each user agent keeps (None: all).
    """
    from mailsim.scenario.builder import build_world

    streamed = out is not None
    world = build_world(
        scenario,
        seed=seed,
        segments=segments,
        strict=strict,
        trace=trace,
        keep_trace=not streamed,
        inbox_kept=inbox_kept,
    )
    end = scenario.duration if until is None else until
    writers = _stream_trace(world.recorder, Path(out), end) if out is not None else []
    try:
        world.start()
        with _frozen_heap(len(world.agents) > LARGE_WORLD_AGENTS):
            if progress is None:
                world.run(end)
            else:
                # Advance in slices so a progress bar can follow simulated time.
                slices = 200
                for step in range(1, slices + 1):
                    world.env.run(until=end * step / slices)
                    progress(world.env.now, end)
    finally:
        for writer in writers:
            writer.close()
    return Result(scenario, world, end_time=end, seed=world.seed, out=out)


def _stream_trace(recorder: Recorder, out: Path, end_time: float) -> list[Any]:
    """Open the trace files of ``recorder``'s level in ``out``; remove those it does not write,
    so no file of an earlier run is taken for this one's."""
    out.mkdir(parents=True, exist_ok=True)
    writers: list[Any] = []
    if recorder.level == "off":
        (out / EVENTS_FILE).unlink(missing_ok=True)
    else:
        writers.append(recorder.stream_to(out / EVENTS_FILE))
    if recorder.level == "full":
        writer = TranscriptWriter(out / TRANSCRIPT_FILE, end_time=end_time)
        recorder.subscribe(writer, TRANSCRIPT_TYPES)
        writers.append(writer)
    else:
        (out / TRANSCRIPT_FILE).unlink(missing_ok=True)
    return writers


@contextmanager
def _frozen_heap(freeze: bool) -> Iterator[None]:
    """Move everything alive now out of the garbage collector's sight while the block runs."""
    if not freeze:
        yield
        return
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


class Result:
    """One run of a scenario: its trace and everything derived from it.

    Attributes:
        scenario: the scenario that ran.
        slug: the folder name of its outputs, ``runs/<slug>/`` (see :attr:`Scenario.slug`).
        world: the world after the run (servers, queues, mailboxes, user agents' inboxes).
        end_time: the simulated time the run stopped at.
        seed: the seed used.
        trace: the trace level of the run (``full``, ``summary`` or ``off``).
        out: the folder the trace was streamed to, or None when it was kept in memory.
    """

    def __init__(
        self,
        scenario: Scenario,
        world: World,
        *,
        end_time: float,
        seed: int,
        out: str | Path | None = None,
    ) -> None:
        self.scenario = scenario
        self.world = world
        self.end_time = end_time
        self.seed = seed
        self.slug = scenario.slug
        self.trace = world.recorder.level
        self.out = Path(out) if out is not None else None

    def __repr__(self) -> str:
        totals = self.books.totals()
        return (
            f"<Result {self.scenario.name!r} seed={self.seed}: {totals['submitted']} submitted, "
            f"{totals['delivered']} delivered, {totals['bounced']} bounced, "
            f"{totals['queued']} queued>"
        )

    def _needs(self, level: str, what: str) -> None:
        wanted = ("full",) if level == "full" else ("full", "summary")
        if self.trace not in wanted:
            raise TraceLevelError(
                f"{what} needs the {level} trace, and this run was made with trace={self.trace!r};"
                f" run it again with trace={level!r}"
            )

    @cached_property
    def records(self) -> list[dict[str, Any]]:
        """The trace records, as a list of dicts (read back from ``events.jsonl`` when the run
        streamed them there; with ``trace='summary'`` only the summary's records)."""
        self._needs("summary", "the trace records")
        recorder = self.world.recorder
        if recorder.keep or self.out is None:
            return recorder.records
        return load_events(self.out / EVENTS_FILE)

    @cached_property
    def books(self) -> Books:
        """Every (message, recipient)'s fate, and whether the books balance."""
        return self.world.books()

    @cached_property
    def events(self) -> Any:
        """The trace as a pandas DataFrame (one row per record), built once."""
        from mailsim.trace.exports import events_frame

        return events_frame(self.records)

    @cached_property
    def deliveries(self) -> Any:
        """One row per (message, recipient) as a pandas DataFrame: outcome, attempts, latency.

        Built once; edit a copy (``result.deliveries.copy()``) to keep the original intact.
        """
        from mailsim.trace.exports import books_frame

        return books_frame(self.books)

    def transcript(self, connection: int | None = None) -> str:
        """The protocol dialogue of every connection, or of one (connections still open at the
        end of the run are marked so)."""
        self._needs("full", "the transcript")
        if connection is None and self.out is not None and not self.world.recorder.keep:
            return (self.out / TRANSCRIPT_FILE).read_text(encoding="utf-8")
        return transcript(self.records, connection, end_time=self.end_time)

    def summary(self) -> dict[str, Any]:
        """The ``summary.json`` document."""
        head = summary_head(
            self.books, scenario=self.scenario.name, seed=self.seed, end_time=self.end_time
        )
        return {**head, "messages": [row.as_json() for row in self.books.rows.values()]}

    # -- figures ------------------------------------------------------------------------------

    def plot_sequence(self, **options: Any) -> Figure:
        """The message sequence chart (see :func:`mailsim.plot.sequence_diagram`)."""
        from mailsim.plot import sequence_diagram

        self._needs("full", "the sequence diagram")
        return sequence_diagram(self.records, **options)

    def plot_timeline(self, **options: Any) -> Figure:
        """The delivery timeline (see :func:`mailsim.plot.delivery_timeline`)."""
        from mailsim.plot import delivery_timeline

        return delivery_timeline(self.records, **options)

    def plot_topology(self, **options: Any) -> Figure:
        """The network (see :func:`mailsim.plot.topology_figure`)."""
        from mailsim.plot import topology_figure

        return topology_figure(self.records, **options)

    def plot_queues(self, **options: Any) -> Figure:
        """Queue length per server over time (see :func:`mailsim.plot.queue_figure`)."""
        from mailsim.plot import queue_figure

        return queue_figure(self.records, **options)

    def animate(self, **options: Any) -> Any:
        """Messages moving across the topology (see :func:`mailsim.plot.animate`)."""
        from mailsim.plot import animate

        return animate(self.records, **options)

    def step_through(self) -> Any:
        """The trace one event at a time: filters, previous/next, the current event's details
        and the sequence chart with it highlighted (see :mod:`mailsim.teach.stepper`).

        Returns an ipywidgets widget whose ``index`` trait selects the event and whose ``event``
        is that trace record as a dict; without ipywidgets, a table of the events. Record TCP
        segments (``scenario.run(segments=True)``) to step through flags and sequence numbers.
        """
        from mailsim.teach import step_through

        return step_through(self.records)

    # -- files --------------------------------------------------------------------------------

    @cached_property
    def connections(self) -> dict[int, Connection]:
        """What each TCP connection carried (see :mod:`mailsim.trace.connections`), by id."""
        from mailsim.trace.connections import connections

        return connections(self.records)

    @property
    def relays(self) -> list[RelayTotals]:
        """Per (sending, receiving) mail server: connections, messages and round trips.

        Counted from the protocol lines, so empty unless the run kept the full trace; a
        streamed run's are counted in one pass over its file, holding no records.
        """
        from mailsim.trace.connections import connections, relay_totals

        if self.trace != "full":
            return []
        if "connections" in self.__dict__ or self.world.recorder.keep or self.out is None:
            return relay_totals(self.connections)
        return relay_totals(connections(iter_events(self.out / EVENTS_FILE)))

    def export_mailboxes(self, directory: str | Path, format: str = "maildir") -> dict[str, Path]:
        """Write every user's mail (fetched by the user agent, or still on the server) for a real
        mail client: a Maildir ``<address>/`` each, or with ``format="mbox"`` a file
        ``<address>.mbox``; returns the path of each address. ``mutt -f DIR/steve@usa.com``.

        Raises:
            MailboxExportError: a bad format, or ``directory`` holds files mailsim did not write.
        """
        from mailsim.scenario.mailboxes import export_mailboxes

        records = self.records if self.trace != "off" else []  # times and senders, if kept
        return export_mailboxes(self.world, records, directory, format)

    def save(
        self,
        directory: str | Path | None = None,
        *,
        figures: bool = True,
        pcap: bool = False,
        pcap_filter: Iterable[str] | None = None,
        pcap_per_node: bool = False,
        figure_size: str = "default",
        message: str | None = "auto",
    ) -> Path:
        """Write the run's outputs (docs/design.md contract) into ``directory``; returns it.

        Without ``directory``, into ``runs/<slug>/`` as ``mailsim run`` does. ``figure_size``
        is ``"default"`` or ``"slide"`` (16:9, for a projector; see :mod:`mailsim.plot`);
        ``message`` what ``sequence.png`` shows (see :func:`mailsim.plot.render_all`).

        ``events.jsonl``, ``summary.json``, ``transcript.txt``, and unless ``figures`` is False
        ``sequence.png``, ``timeline.png``, ``topology.png`` (``queues.png`` with more than a
        handful of messages); ``trace.pcap`` when ``pcap`` is true (needs segment tracing),
        holding only the protocols of ``pcap_filter`` if given (see :meth:`write_pcap`), and
        with ``pcap_per_node`` also ``pcap/<node>.pcap`` for every node that sent or was sent a
        packet. A run that streamed its trace into ``directory`` has written its events and
        transcript there already. With ``trace='summary'`` there is no transcript and no
        sequence diagram; with ``trace='off'``, only ``summary.json``.

        Raises:
            ValueError: ``pcap_filter`` names an unknown protocol (checked before anything is
                written), or a pcap was asked for but the run had no segment tracing.
            UnknownMessage: ``message`` names no message of the run; raised once everything
                else is written (the other figures, the pcap files).
        """
        protocols = None
        if pcap_filter is not None:
            from mailsim.trace.pcap import check_protocols

            protocols = sorted(check_protocols(pcap_filter))
        out = Path(directory) if directory is not None else Path("runs") / self.slug
        out.mkdir(parents=True, exist_ok=True)
        if pcap or pcap_per_node:
            self._needs("full", "a pcap file")
        streamed_here = self.out is not None and out.resolve() == self.out.resolve()
        if not streamed_here and self.trace != "off":
            with open(out / EVENTS_FILE, "w", encoding="utf-8", newline="\n") as stream:
                write_events(self.records, stream)
            if self.trace == "full":
                (out / TRANSCRIPT_FILE).write_text(self.transcript(), encoding="utf-8")
        head = summary_head(
            self.books, scenario=self.scenario.name, seed=self.seed, end_time=self.end_time
        )
        write_summary_stream(out / "summary.json", head, self.books.rows.values())
        unknown = None
        if figures and self.trace != "off":
            from mailsim.plot import UnknownMessage, render_all

            try:
                render_all(
                    self.records,
                    out,
                    size=figure_size,
                    sequence=self.trace == "full",
                    message=message,
                )
            except UnknownMessage as error:
                unknown = error
                (out / "sequence.png").unlink(missing_ok=True)  # not an earlier run's chart
            if self.trace != "full":
                (out / "sequence.png").unlink(missing_ok=True)  # not an earlier run's chart
        if pcap:
            self.write_pcap(out / "trace.pcap", protocols=protocols)
        if pcap_per_node:
            from mailsim.trace.pcap import write_pcap_per_node

            write_pcap_per_node(self.records, out / "pcap", protocols=protocols)
        if unknown is not None:
            raise unknown
        return out

    def write_pcap(
        self,
        path: str | Path,
        *,
        protocols: Iterable[str] | None = None,
        node: str | None = None,
    ) -> int:
        """Write the run's packets to ``path`` for Wireshark; returns how many.

        Args:
            protocols: keep only these of ``smtp``, ``pop3``, ``dns`` (default: every packet).
            node: keep only the packets this node sent or was sent.

        Raises:
            ValueError: the run had no segment tracing (``run(segments=True)``, or
                ``trace: {pcap: true}`` in the scenario), or an unknown protocol name.
        """
        from mailsim.trace.pcap import write_pcap

        return write_pcap(self.records, path, protocols=protocols, node=node)


def timed_progress(callback: Progress, delay: float = 1.0) -> Progress:
    """Wrap ``callback`` so it starts only once the run has taken ``delay`` seconds of wall time."""
    started = time.perf_counter()

    def report(now: float, end: float) -> None:
        if time.perf_counter() - started >= delay:
            callback(now, end)

    return report
