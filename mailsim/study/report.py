"""What ``mailsim sweep`` prints: a progress bar, the failed runs with their commands, the files.

Kept out of :mod:`mailsim.cli` so ``mailsim --help`` never imports rich, pandas or Dask.

Exit codes of ``mailsim sweep`` (docs/studies.md): 0 every run succeeded; 2 bad input (the study,
its scenario, the arguments, a scheduler that cannot be reached); 3 the sweep finished but some
runs failed (each is listed with its parameters, seed and the command that repeats it; the other
runs' rows are all kept); 130 interrupted (what was done is written; ``--resume`` goes on); 1 an
internal error.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from mailsim.study.grid import Study
from mailsim.study.sweep import SweepReport, run_study

#: Exit code when some runs failed and the rest were kept.
EXIT_RUNS_FAILED = 3
#: Exit code of an interrupted sweep (128 + SIGINT, as a shell reports it).
EXIT_INTERRUPTED = 130
#: Failed runs listed in full before the rest are only counted.
MAX_FAILED_SHOWN = 10
#: Seconds a Dask client waits for the scheduler before the address is called unreachable.
CONNECT_TIMEOUT = 10.0


class SchedulerError(Exception):
    """The Dask scheduler cannot be used; the message says why and what to do."""


def connect(address: str) -> Any:
    """A ``distributed.Client`` for ``address``, or :class:`SchedulerError`."""
    try:
        from distributed import Client
    except ImportError:
        raise SchedulerError(
            "--scheduler needs Dask: pip install 'mailsim[dask]' (dask[distributed])"
        ) from None
    try:
        return Client(address, timeout=CONNECT_TIMEOUT)  # type: ignore[no-untyped-call]
    except (OSError, TimeoutError, ValueError, TypeError) as error:
        raise SchedulerError(
            f"--scheduler {address}: no Dask scheduler answers there ({error}); start one with "
            "'dask scheduler' and give the tcp://host:port it prints"
        ) from None


def sweep_command(
    study: Study,
    out: Path,
    *,
    workers: int | None,
    client: Any,
    resume: bool,
    figure: Callable[[Path], object] | None,
    quiet: bool,
) -> int:
    """Run ``study`` into ``out`` with a progress bar; print what happened; the exit code.

    ``figure`` draws the figure of the folder once the files are written (the CLI passes the
    plot layer's function, which this layer does not import).
    """
    # soft_wrap: a path or a command is never broken across lines, so it can be copied.
    console = Console(quiet=quiet, highlight=False, soft_wrap=True)
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    runs = len(study.points) * study.replications
    where = "the Dask cluster" if client is not None else _local(workers)
    console.print(
        f"[bold]{escape(study.name)}[/bold]: {len(study.points)} combinations x "
        f"{study.replications} replications = {runs} runs on {where}"
    )
    started = time.perf_counter()
    with Progress(
        TextColumn("sweeping"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[failed]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("sweep", total=runs, failed="")

        def show(done: int, todo: int, failed: int) -> None:
            bar.update(
                task,
                completed=runs - todo + done,
                failed=f"[red]{failed} failed[/red]" if failed else "",
            )

        report = run_study(
            study, workers=workers, client=client, out=out, resume=resume, progress=show
        )
    elapsed = time.perf_counter() - started
    if report.resumed:
        console.print(f"kept {report.resumed} runs already in {out / 'results.csv'}")
    done = len(report.rows)
    console.print(f"{done} of {runs} runs in {elapsed:.1f} s")
    _print_failed(err, report)
    if figure is not None and report.rows:
        figure(out)
    files = sorted(path.name for path in out.iterdir() if path.is_file())
    console.print(f"Outputs in [bold]{out}/[/bold]: {', '.join(files)}")
    if report.interrupted:
        err.print(
            f"interrupted after {done} of {runs} runs; go on with the same command and --resume"
        )
        return EXIT_INTERRUPTED
    return EXIT_RUNS_FAILED if report.failed else 0


def _local(workers: int | None) -> str:
    from mailsim.study.executors import default_workers

    count = workers or default_workers()
    return "this process" if count == 1 else f"{count} local processes"


def _print_failed(err: Console, report: SweepReport) -> None:
    if not report.failed:
        return
    study = report.study
    errors = {row["run"]: row["error"] for row in report.rows}
    err.print(
        f"[red]{len(report.failed)} runs failed[/red]; the other runs are kept. Repeat one with:"
    )
    for run in report.failed[:MAX_FAILED_SHOWN]:
        labels = ", ".join(f"{k}={v}" for k, v in study.points[run.point].labels.items())
        what = f"{labels or 'no parameters'}; seed {run.seed}"
        err.print(escape(f"  run {run.index} ({what}): {errors[run.index]}"))
        err.print(escape(f"    {study.command(run)}"))
    if len(report.failed) > MAX_FAILED_SHOWN:
        err.print(f"  ... and {len(report.failed) - MAX_FAILED_SHOWN} more: see results.csv")
