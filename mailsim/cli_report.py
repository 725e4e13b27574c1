"""What ``mailsim run`` and ``mailsim demo`` print: a progress bar, a summary table, the files.

Kept apart from :mod:`mailsim.cli` so that ``mailsim --help`` never imports rich, simpy or
matplotlib.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from mailsim.mail.units import format_duration
from mailsim.scenario.result import Result, run_scenario, timed_progress

#: Rows of the per-message table shown before it is cut short.
MAX_ROWS = 25


def default_out_dir(name: str) -> Path:
    """``runs/<scenario name>/``, the name made safe for a folder."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-").lower() or "run"
    return Path("runs") / slug


def run_command(
    scenario: Any,
    source: str,
    *,
    out_dir: str | None = None,
    seed: int | None = None,
    until: float | None = None,
    pcap: bool = False,
    figures: bool = True,
    trace: str = "full",
    quiet: bool = False,
    demo: bool = False,
) -> int:
    """Run, report and save; returns the exit code (0 ok, 1 books do not balance, 2 bad input).

    The trace streams into the output folder as it is recorded, so memory follows what is in
    flight however long the run; user agents keep no copies of the mail they read.
    """
    pcap = pcap or scenario.trace.pcap  # --pcap, or `trace: {pcap: true}` in the scenario
    console = Console(stderr=False, quiet=quiet)
    err = Console(stderr=True)
    if pcap and trace != "full":
        where = "--pcap" if not scenario.trace.pcap else f"{source}: trace.pcap"
        err.print(f"{where}: a pcap file needs every segment; use --trace full, not {trace}")
        return 2
    want_segments = True if pcap else None
    out = Path(out_dir) if out_dir else default_out_dir(scenario.name)
    options: dict[str, Any] = {
        "seed": seed,
        "until": until,
        "segments": want_segments,
        "trace": trace,
        "out": out,
        "inbox_kept": 0,
    }
    if quiet:
        result = run_scenario(scenario, **options)
    else:
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[now]}"),
            TimeElapsedColumn(),
            console=console,
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

            result = run_scenario(scenario, progress=timed_progress(show), **options)
    result.save(out, figures=figures, pcap=pcap)
    if not quiet:
        print_summary(console, result)
        files = sorted(p.name for p in out.iterdir() if p.is_file())
        console.print(f"\nOutputs in [bold]{out}/[/bold]: {', '.join(files)}")
        if demo:
            console.print(
                f"Read the SMTP and POP3 dialogue in {out / 'transcript.txt'}, look at "
                f"{out / 'sequence.png'} and {out / 'timeline.png'}, and try other stories "
                "with 'mailsim scenarios' and 'mailsim run NAME'."
            )
    if not result.books.balanced:
        for problem in result.books.problems:
            err.print(f"[red]books do not balance:[/red] {problem}")
        return 1
    return 0


def print_summary(console: Console, result: Result) -> None:
    """The per-(message, recipient) table and the totals."""
    rows = [row for row in result.books.rows.values() if row.kind == "mail"]
    table = Table(title=f"{result.scenario.name} (seed {result.seed})", title_justify="left")
    for column in ("message", "from", "to", "outcome", "attempts", "latency"):
        right = column in ("attempts", "latency")
        # Addresses wrap rather than being cut short with an ellipsis in a narrow terminal.
        table.add_column(column, justify="right" if right else "left", overflow="fold")
    colour = {"delivered": "green", "bounced": "red", "queued": "yellow", "lost": "red"}
    for row in rows[:MAX_ROWS]:
        latency = format_duration(row.latency) if row.latency is not None else "-"
        status = row.status + (f" x{row.duplicates + 1}" if row.duplicates else "")
        table.add_row(
            row.id,
            row.sender or "<>",
            row.to,
            f"[{colour.get(row.status, 'white')}]{status}[/]",
            str(row.attempts),
            latency,
        )
    if len(rows) > MAX_ROWS:
        table.caption = f"... and {len(rows) - MAX_ROWS} more in summary.json"
    console.print(table)
    totals = result.books.totals()
    console.print(
        "  ".join(f"{key}: {value}" for key, value in totals.items()),
        highlight=False,
    )
