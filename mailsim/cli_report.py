"""What ``mailsim run`` and ``mailsim demo`` print: a progress bar, a summary table, the files.

For a person (a terminal, or ``--format table``): the per-message table, at most 80 columns wide
with a footnote on what its numbers mean, the totals, what the relays between mail servers cost
(connections and round trips), and where the files went. For a program (``--format json|tsv``,
or stdout that is not a terminal): the same facts as data, see :mod:`mailsim.cli_formats`.

Kept apart from :mod:`mailsim.cli` so that ``mailsim --help`` never imports rich, simpy or
matplotlib.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.measure import Measurement
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from mailsim.cli_formats import RUN_COLUMNS, problem_record, write_json, write_tsv
from mailsim.mail.units import format_duration
from mailsim.scenario.result import Result, run_scenario, timed_progress
from mailsim.trace.connections import RelayTotals

#: Rows of the per-message table shown before it is cut short.
MAX_ROWS = 25
#: The table and the lines around it fit a classic terminal.
MAX_WIDTH = 80


def run_command(
    scenario: Any,
    source: str,
    *,
    out_dir: str | None = None,
    seed: int | None = None,
    until: float | None = None,
    pcap: bool = False,
    pcap_filter: tuple[str, ...] | None = None,
    pcap_per_node: bool = False,
    figures: bool = True,
    trace: str = "full",
    figure_size: str = "default",
    message: str | None = "auto",
    mailboxes: str | None = None,
    mailbox_format: str = "maildir",
    quiet: bool = False,
    output_format: str = "table",
    demo: bool = False,
) -> int:
    """Run, report and save; returns the exit code (0 ok, 1 books do not balance, 2 bad input).

    The trace streams into the output folder as it is recorded, so memory follows what is in
    flight however long the run; user agents keep no copies of the mail they read unless
    ``mailboxes`` asks for them.

    Args:
        scenario: the loaded scenario; its warnings are printed on stderr first.
        source: the name or path the user gave.
        trace: the trace level, ``full``, ``summary`` or ``off`` (see :func:`run_scenario`).
        mailboxes: also export every user's mailbox into this folder (:meth:`Result.
            export_mailboxes`), in ``mailbox_format``.
        output_format: "table" for people, "json" or "tsv" for programs.
    """
    pcap = pcap or scenario.trace.pcap  # --pcap, or `trace: {pcap: true}` in the scenario
    err = Console(stderr=True, highlight=False)
    if (pcap or pcap_per_node) and trace != "full":
        if pcap_per_node and not pcap:
            asked = "--pcap-per-node"
        else:
            asked = f"{source}: trace.pcap" if scenario.trace.pcap else "--pcap"
        err.print(
            f"{asked}: a pcap file needs every segment; use --trace full, not {trace}",
            markup=False,
            soft_wrap=True,
        )
        return 2
    if message not in ("auto", None) and (not figures or trace != "full"):
        why = (
            "--no-figures draws no figures; leave one of the two out"
            if not figures
            else f"--trace {trace} records no protocol lines to draw; use --trace full"
        )
        err.print(
            f"--message chooses what sequence.png shows, but {why}", markup=False, soft_wrap=True
        )
        return 2
    if not quiet:
        for warning in scenario.warnings:
            err.print(str(warning), markup=False, soft_wrap=True)  # one line each, for grep
    want_segments = True if pcap or pcap_per_node else None
    out = Path(out_dir) if out_dir else Path("runs") / scenario.slug
    options: dict[str, Any] = {
        "seed": seed,
        "until": until,
        "segments": want_segments,
        "trace": trace,
        "out": out,
        "inbox_kept": None if mailboxes is not None else 0,
    }
    if quiet or output_format != "table":
        result = run_scenario(scenario, **options)
    else:
        result = _run_with_progress(scenario, options, err)
    from mailsim.plot.sequence_story import UnknownMessage

    unknown = None
    try:
        result.save(
            out,
            figures=figures,
            pcap=pcap,
            pcap_filter=pcap_filter,
            pcap_per_node=pcap_per_node,
            figure_size=figure_size,
            message=message,
        )
    except UnknownMessage as error:  # everything else is written: report it after the rest
        unknown = error
    exported: dict[str, Path] = {}
    if mailboxes is not None:
        exported = result.export_mailboxes(mailboxes, format=mailbox_format)
    files = sorted(p.name for p in out.iterdir() if p.is_file())
    if quiet:
        pass
    elif output_format == "json":
        write_json(run_document(result, source, out, files, exported))
    elif output_format == "tsv":
        write_tsv(RUN_COLUMNS, run_rows(result))
    else:
        console = Console(highlight=False)
        print_summary(console, result)
        console.print(f"\nOutputs in [bold]{out}/[/bold]: {', '.join(files)}")
        if exported:
            where = Path(mailboxes or ".")
            paths = list(exported.values())
            example = next((path for path in paths if _holds_mail(path)), paths[0])
            console.print(
                f"Mailboxes ({mailbox_format}) in [bold]{where}/[/bold]: "
                f"{', '.join(path.name for path in paths)}; open one with mutt -f {example}",
                soft_wrap=True,  # a path cut in two cannot be pasted
            )
        if demo:
            console.print(
                f"Read the SMTP and POP3 dialogue in {out / 'transcript.txt'}, look at "
                f"{out / 'sequence.png'} and {out / 'timeline.png'}, and try other stories "
                "with 'mailsim scenarios' and 'mailsim run NAME'."
            )
    if not result.books.balanced:
        for problem in result.books.problems:
            err.print(f"[red]books do not balance:[/red] {problem}", soft_wrap=True)
        return 1
    if unknown is not None:
        err.print(
            f"--message: {unknown}; no sequence.png was drawn, "
            f"'mailsim plot {out} --message ID' draws it",
            markup=False,
            soft_wrap=True,
        )
        return 2
    return 0


def _holds_mail(path: Path) -> bool:
    """Whether an exported Maildir or mbox file holds a message."""
    if path.is_file():
        return path.stat().st_size > 0
    return any((path / "new").iterdir()) if (path / "new").is_dir() else False


def _run_with_progress(scenario: Any, options: dict[str, Any], err: Console) -> Result:
    """Run with a progress bar on stderr once the run has taken a second (transient)."""
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[now]}"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as bar:
        task = bar.add_task(f"simulating {scenario.name}", total=1.0, now="", visible=False)

        def show(now: float, end: float) -> None:
            bar.update(
                task,
                completed=now / end if end else 1.0,
                now=f"t = {format_duration(now)} of {format_duration(end)}",
                visible=True,
            )

        return run_scenario(scenario, progress=timed_progress(show), **options)


# --- for people ---------------------------------------------------------------------------------


def print_summary(console: Console, result: Result) -> None:
    """The per-(message, recipient) table, the totals and the relays, within 80 columns."""
    rows = [row for row in result.books.rows.values() if row.kind == "mail"]
    cells = [
        {
            "message": row.id,
            "from": row.sender or "<>",
            "to": row.to,
            "outcome": row.status + (f" x{row.duplicates + 1}" if row.duplicates else ""),
            "attempts": str(row.attempts),
            "latency": format_duration(row.latency) if row.latency is not None else "-",
            "status": row.status,
        }
        for row in rows[:MAX_ROWS]
    ]
    columns = ["message", "from", "to", "outcome", "attempts", "latency"]
    width = min(console.width, MAX_WIDTH)
    # Drop the sender, then the message id, rather than fold addresses over two lines: the id
    # names the sender's domain, and summary.json has everything.
    dropped: list[str] = []
    table = _table(result, columns, cells)
    for column in ("from", "message"):
        if Measurement.get(console, console.options, table).maximum <= width:
            break
        columns.remove(column)
        dropped.append(column)
        table = _table(result, columns, cells)
    console.print(table, width=width)
    _print_footnote(console, rows, dropped, width)
    totals = result.books.totals()
    core = ("submitted", "delivered", "bounced", "queued")
    shown = [f"{key} {totals[key]}" for key in core]
    shown += [f"{key} {value}" for key, value in totals.items() if key not in core and value]
    console.print("Totals: " + ", ".join(shown), width=width)
    relays = result.relays
    if relays:
        console.print("Relays between mail servers (SMTP, port 25):", width=width)
        for relay in relays:
            console.print("  " + relay_line(relay), width=width, markup=False)


def _table(result: Result, columns: list[str], cells: list[dict[str, str]]) -> Table:
    table = Table(
        title=f"{result.scenario.name} (seed {result.seed})",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        collapse_padding=True,
    )
    for column in columns:
        right = column in ("attempts", "latency")
        table.add_column(column, justify="right" if right else "left", overflow="fold")
    colour = {"delivered": "green", "bounced": "red", "queued": "yellow", "lost": "red"}
    for cell in cells:
        values = [cell[c] for c in columns]
        if "outcome" in columns:
            at = columns.index("outcome")
            values[at] = f"[{colour.get(cell['status'], 'white')}]{values[at]}[/]"
        table.add_row(*values)
    return table


def _print_footnote(console: Console, rows: list[Any], dropped: list[str], width: int) -> None:
    for note in _footnote(rows, dropped).splitlines():
        console.print(note, width=width, style="dim", markup=False)


def _footnote(rows: list[Any], dropped: list[str]) -> str:
    notes = [
        "attempts: tries to hand the message to the next mail server; "
        "latency: from submission to the recipient's mailbox."
    ]
    if any(row.attempts == 0 and row.status == "delivered" for row in rows):
        notes.append(
            "attempts 0, latency 0 s: the message was handed straight to the server that holds "
            "the mailbox (a recipient of the same domain, or a session typed at that server), "
            "so no relay was needed."
        )
    if len(rows) > MAX_ROWS:
        notes.append(f"... and {len(rows) - MAX_ROWS} more rows in summary.json.")
    if dropped:
        notes.append(
            f"Left out to fit {MAX_WIDTH} columns: {', '.join(dropped)} (in summary.json)."
        )
    return "\n".join(notes)


def relay_line(relay: RelayTotals) -> str:
    """``india-mail -> usa-mail: 1 connection, 5 messages, 14 round trips``, and failures."""
    tried = f"{relay.connections} connection{'s' if relay.connections != 1 else ''}"
    if relay.failed:
        tried += f" ({relay.failed} failed)"
    messages = f"{relay.messages} message{'s' if relay.messages != 1 else ''}"
    trips = f"{relay.round_trips} round trip{'s' if relay.round_trips != 1 else ''}"
    return f"{relay.client} -> {relay.server}: {tried}, {messages}, {trips}"


# --- for programs -------------------------------------------------------------------------------


def run_document(
    result: Result, source: str, out: Path, files: list[str], mailboxes: dict[str, Path]
) -> dict[str, Any]:
    """The JSON document of ``mailsim run`` (docs/cli-output.md): summary.json and more."""
    return {
        "source": source,
        **result.summary(),
        "out_dir": str(out),
        "files": files,
        "relays": [
            {
                "client": relay.client,
                "server": relay.server,
                "connections": relay.connections,
                "failed": relay.failed,
                "messages": relay.messages,
                "round_trips": relay.round_trips,
            }
            for relay in result.relays
        ],
        "mailboxes": {address: str(path) for address, path in mailboxes.items()},
        "warnings": [problem_record(w) for w in result.scenario.warnings],
    }


def run_rows(result: Result) -> list[list[Any]]:
    """The rows of ``mailsim run --format tsv``: summary.json's messages, columns RUN_COLUMNS."""
    return [[message.get(c) for c in RUN_COLUMNS] for message in result.summary()["messages"]]
