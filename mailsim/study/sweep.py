"""Running a study: every run on an executor, rows kept as they come, the files at the end.

:func:`run_study` is what ``mailsim sweep`` and :func:`sweep` share. It takes the runs not done
yet (all of them, or those ``--resume`` did not find in ``results.csv``), sends them to the
serial, process-pool or Dask executor, appends each row to ``results.csv`` as it arrives, and
writes the aggregate and the figure's metadata once all are in, or once the sweep is interrupted.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mailsim.study.executors import (
    RunOutcome,
    RunTask,
    default_workers,
    run_dask,
    run_pool,
    run_serial,
)
from mailsim.study.grid import Run, Study
from mailsim.study.loader import StudyError, build_study, is_study_file, load_study, metric_problems
from mailsim.study.metrics import MetricSpec
from mailsim.study.results import (
    ResultsFile,
    columns,
    read_done,
    result_row,
    results_frame,
    study_document,
    write_outputs,
)

if TYPE_CHECKING:
    from mailsim.scenario.schema import Scenario

__all__ = ["SweepReport", "run_study", "sweep"]

#: (runs finished, runs to do, runs failed so far) after each run.
Progress = Callable[[int, int, int], None]


@dataclass
class SweepReport:
    """What a sweep did: every row (run order), the failed runs, and whether it was cut short."""

    study: Study
    rows: list[dict[str, Any]]
    failed: list[Run]
    resumed: int
    interrupted: bool = False
    files: tuple[Path, ...] = ()

    def frame(self) -> Any:
        """The rows as a DataFrame, ``attrs["study"]`` holding what ``study.json`` holds."""
        frame = results_frame(columns(self.study), self.rows)
        frame.attrs["study"] = study_document(self.study)
        return frame


def run_study(
    study: Study,
    *,
    workers: int | None = None,
    client: Any = None,
    out: str | os.PathLike[str] | None = None,
    resume: bool = False,
    progress: Progress | None = None,
) -> SweepReport:
    """Run every run of ``study`` not done yet; returns the :class:`SweepReport`.

    Args:
        workers: local processes (default: the cores); 1 runs in this process.
        client: a ``distributed.Client``: the runs go to its cluster (``workers`` is ignored).
        out: the folder for the files; None writes nothing.
        resume: keep the successful runs that ``out/results.csv`` already holds.
        progress: called after each run.

    Raises:
        StudyError: ``resume`` found a results.csv of another study.
        KeyboardInterrupt: never; an interrupt ends the sweep with what is done
            (``interrupted`` is then true).
    """
    folder = Path(out) if out is not None else None
    kept = read_done(folder, study) if (resume and folder is not None) else []
    done = {row["run"] for row in kept}
    todo = [run for run in study.runs() if run.index not in done]
    runs = {run.index: run for run in todo}
    tasks = [
        RunTask(run.index, study.points[run.point].scenario, run.seed, study.metrics)
        for run in todo
    ]
    if client is not None:
        outcomes = run_dask(tasks, client)
    elif (workers or default_workers()) > 1 and len(tasks) > 1:
        outcomes = run_pool(tasks, workers or default_workers())
    else:
        outcomes = run_serial(tasks)
    report = SweepReport(study, list(kept), [], resumed=len(kept))
    writer = ResultsFile(folder, study, kept) if folder is not None else None
    try:
        for finished, outcome in enumerate(outcomes, start=1):
            row = _row(study, runs[outcome.index], outcome)
            report.rows.append(row)
            if outcome.error is not None:
                report.failed.append(runs[outcome.index])
            if writer is not None:
                writer.add(row)
            if progress is not None:
                progress(finished, len(tasks), len(report.failed))
    except KeyboardInterrupt:
        report.interrupted = True
    finally:
        close = getattr(outcomes, "close", None)
        if close is not None:
            close()  # stops the pool or cancels the cluster's remaining tasks
        if writer is not None:
            writer.close()
    report.rows.sort(key=lambda row: row["run"])
    report.failed.sort(key=lambda run: run.index)
    if folder is not None:
        report.files = tuple(write_outputs(folder, study, report.rows))
    return report


def _row(study: Study, run: Run, outcome: RunOutcome) -> dict[str, Any]:
    return result_row(study, run, outcome.metrics, outcome.wall_time, outcome.error)


def sweep(
    study_or_scenario: Study | Scenario | str | os.PathLike[str],
    grid: Mapping[str, Sequence[Any]] | None = None,
    *,
    replications: int | None = None,
    seed: int | None = None,
    metrics: Sequence[MetricSpec] | None = None,
    fixed: Mapping[str, Any] | None = None,
    client: Any = None,
    workers: int | None = None,
    out: str | os.PathLike[str] | None = None,
    resume: bool = False,
) -> Any:
    """Run a parameter study and return one row per run as a pandas DataFrame.

    Args:
        study_or_scenario: a :class:`Study`, a study file or bundled study name
            (``"outage-study"``), or a scenario (a model, a file, a bundled name) to vary by
            ``grid``.
        grid: field path -> values to try, like ``{"servers.retry.policy": ["fixed", "exim"]}``;
            only with a scenario (a study has its own parameters).
        replications: runs per combination (default: the study's, or 10 for a scenario).
        seed: the base seed; replication r runs with ``seed + r`` (default: the study's or the
            scenario's seed).
        metrics: names or ``(name, function of the Result)`` pairs (default: the study's, or
            :data:`mailsim.study.metrics.DEFAULT_METRICS`).
        fixed: field path -> value for every run; only with a scenario.
        client: a ``distributed.Client``; the runs go to its cluster, and it is used as is.
        workers: local processes when there is no client (default: the cores; 1: this process).
        out: also write results.csv, aggregate.csv, study.json (and results.parquet) here.
        resume: with ``out``, keep the runs its results.csv already holds.

    Returns:
        The results DataFrame (columns as ``results.csv``); ``.attrs["study"]`` describes them,
        and :func:`mailsim.study.aggregate` turns it into means with 95% intervals.

    Raises:
        StudyError: bad input, every problem on its own line.
    """
    study = _study_of(study_or_scenario, grid, fixed, replications, seed, metrics)
    report = run_study(study, workers=workers, client=client, out=out, resume=resume)
    if report.interrupted:
        raise KeyboardInterrupt
    return report.frame()


def _study_of(
    given: Study | Scenario | str | os.PathLike[str],
    grid: Mapping[str, Sequence[Any]] | None,
    fixed: Mapping[str, Any] | None,
    replications: int | None,
    seed: int | None,
    metrics: Sequence[MetricSpec] | None,
) -> Study:
    from mailsim.scenario.errors import Problem
    from mailsim.study.loader import find_study

    study: Study | None = given if isinstance(given, Study) else None
    if study is None and isinstance(given, (str, os.PathLike)):
        try:
            path = find_study(given)
        except FileNotFoundError:
            path = None
        if path is not None and is_study_file(path):
            study = load_study(path)
    if study is None:
        return build_study(
            given,  # type: ignore[arg-type]  # a scenario model, file or name
            grid=grid,
            fixed=fixed,
            replications=10 if replications is None else replications,
            seed=seed,
            metrics=metrics,
        )
    if grid is not None or fixed is not None:
        message = "a study has its own parameters; give grid= and fixed= with a scenario"
        raise StudyError([Problem("grid", 0, 0, "", message)])
    changes: dict[str, Any] = {}
    if replications is not None:
        if isinstance(replications, bool) or not isinstance(replications, int) or replications < 1:
            raise StudyError(
                [Problem("replications", 0, 0, "", f"must be at least 1, got {replications!r}")]
            )
        changes["replications"] = replications
    if seed is not None:
        changes["base_seed"] = seed
    if metrics is not None:
        problems = metric_problems(metrics)
        if problems:
            raise StudyError(problems)
        names = [spec if isinstance(spec, str) else spec[0] for spec in metrics]
        changes["metrics"] = tuple(metrics)
        changes["plot"] = replace(study.plot, metrics=tuple(names[:2]))
    return replace(study, **changes) if changes else study
