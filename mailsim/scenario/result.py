"""Running a scenario, and what a run gives back.

:func:`run_scenario` builds the world, runs its clock and returns a :class:`Result`: the trace,
the books (every message's fate), DataFrames for notebooks, the transcript, the summary, the
figures, and :meth:`Result.save` which writes the output files of ``mailsim run``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mailsim.trace.exports import Books, reconcile, summary, transcript, write_summary
from mailsim.trace.recorder import write_events

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from mailsim.nodes.world import World
    from mailsim.scenario.schema import Scenario
    from mailsim.trace.connections import Connection, RelayTotals

#: A progress callback: (simulated now, simulated end) -> None.
Progress = Callable[[float, float], None]


def run_scenario(
    scenario: Scenario,
    *,
    seed: int | None = None,
    until: float | None = None,
    segments: bool | None = None,
    progress: Progress | None = None,
    strict: bool = False,
) -> Result:
    """Build and run ``scenario``; returns its :class:`Result`.

    Args:
        seed: overrides the scenario's seed.
        until: run until this simulated time instead of the scenario's ``duration``.
        segments: record every TCP segment (needed for pcap; default: the scenario's trace options).
        progress: called now and then with the simulated time, for a progress bar.
        strict: check every trace record against its documented fields (tests).
    """
    from mailsim.scenario.builder import build_world

    world = build_world(scenario, seed=seed, segments=segments, strict=strict)
    end = scenario.duration if until is None else until
    world.start()
    env = world.env
    if progress is None:
        world.run(end)
    else:
        # Advance in slices so a progress bar can follow simulated time.
        slices = 200
        for step in range(1, slices + 1):
            env.run(until=end * step / slices)
            progress(env.now, end)
    return Result(scenario, world, end_time=end, seed=world.seed)


class Result:
    """One run of a scenario: its trace and everything derived from it.

    Attributes:
        scenario: the scenario that ran.
        slug: the folder name of its outputs, ``runs/<slug>/`` (see :attr:`Scenario.slug`).
        world: the world after the run (servers, queues, mailboxes, user agents' inboxes).
        records: the trace records.
        end_time: the simulated time the run stopped at.
        seed: the seed used.
    """

    def __init__(self, scenario: Scenario, world: World, *, end_time: float, seed: int) -> None:
        self.scenario = scenario
        self.world = world
        self.records = world.recorder.records
        self.end_time = end_time
        self.seed = seed
        self.slug = scenario.slug

    def __repr__(self) -> str:
        totals = self.books.totals()
        return (
            f"<Result {self.scenario.name!r} seed={self.seed}: {totals['submitted']} submitted, "
            f"{totals['delivered']} delivered, {totals['bounced']} bounced, "
            f"{totals['queued']} queued>"
        )

    @cached_property
    def books(self) -> Books:
        """Every (message, recipient)'s fate, and whether the books balance."""
        return reconcile(self.records)

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
        from mailsim.trace.exports import deliveries_frame

        return deliveries_frame(self.records)

    def transcript(self, connection: int | None = None) -> str:
        """The protocol dialogue of every connection, or of one (connections still open at the
        end of the run are marked so)."""
        return transcript(self.records, connection, end_time=self.end_time)

    def summary(self) -> dict[str, Any]:
        """The ``summary.json`` document."""
        return summary(
            self.records, scenario=self.scenario.name, seed=self.seed, end_time=self.end_time
        )

    # -- figures ------------------------------------------------------------------------------

    def plot_sequence(self, **options: Any) -> Figure:
        """The message sequence chart (see :func:`mailsim.plot.sequence_diagram`)."""
        from mailsim.plot import sequence_diagram

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
        """Per (sending, receiving) mail server: connections, messages and round trips."""
        from mailsim.trace.connections import relay_totals

        return relay_totals(self.connections)

    def export_mailboxes(self, directory: str | Path, format: str = "maildir") -> dict[str, Path]:
        """Write every user's mail (fetched by the user agent, or still on the server) for a real
        mail client: a Maildir ``<address>/`` each, or with ``format="mbox"`` a file
        ``<address>.mbox``; returns the path of each address. ``mutt -f DIR/steve@usa.com``.

        Raises:
            MailboxExportError: a bad format, or ``directory`` holds files mailsim did not write.
        """
        from mailsim.scenario.mailboxes import export_mailboxes

        return export_mailboxes(self.world, self.records, directory, format)

    def save(
        self,
        directory: str | Path | None = None,
        *,
        figures: bool = True,
        pcap: bool = False,
        pcap_filter: Iterable[str] | None = None,
        pcap_per_node: bool = False,
        figure_size: str = "default",
    ) -> Path:
        """Write the run's outputs (DESIGN.md contract) into ``directory``; returns it.

        Without ``directory``, into ``runs/<slug>/`` as ``mailsim run`` does. ``figure_size``
        is ``"default"`` or ``"slide"`` (16:9, for a projector; see :mod:`mailsim.plot`).

        ``events.jsonl``, ``summary.json``, ``transcript.txt``, and unless ``figures`` is False
        ``sequence.png``, ``timeline.png``, ``topology.png`` (``queues.png`` with more than a
        handful of messages); ``trace.pcap`` when ``pcap`` is true (needs segment tracing),
        holding only the protocols of ``pcap_filter`` if given (see :meth:`write_pcap`), and
        with ``pcap_per_node`` also ``pcap/<node>.pcap`` for every node that sent or was sent a
        packet.

        Raises:
            ValueError: ``pcap_filter`` names an unknown protocol (checked before anything is
                written), or a pcap was asked for but the run had no segment tracing.
        """
        protocols = None
        if pcap_filter is not None:
            from mailsim.trace.pcap import check_protocols

            protocols = sorted(check_protocols(pcap_filter))
        out = Path(directory) if directory is not None else Path("runs") / self.slug
        out.mkdir(parents=True, exist_ok=True)
        with open(out / "events.jsonl", "w", encoding="utf-8", newline="\n") as stream:
            write_events(self.records, stream)
        write_summary(out / "summary.json", self.summary())
        (out / "transcript.txt").write_text(self.transcript(), encoding="utf-8")
        if figures:
            from mailsim.plot import render_all

            render_all(self.records, out, size=figure_size)
        if pcap:
            self.write_pcap(out / "trace.pcap", protocols=protocols)
        if pcap_per_node:
            from mailsim.trace.pcap import write_pcap_per_node

            write_pcap_per_node(self.records, out / "pcap", protocols=protocols)
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
