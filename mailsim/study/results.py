"""A sweep's files: ``results.csv`` (one row per run), ``aggregate.csv``, ``study.json``, parquet.

``results.csv`` columns: ``run, point, replication, seed``, one column per parameter (the value
as the study writes it, ``3h``), ``status`` (``ok`` or ``failed``), one column per metric,
``wall_time`` (seconds the run took, the only column that differs between two sweeps of one
study) and ``error``. Floats are written exactly (Python's shortest round-trip form); NaN is an
empty cell. Rows are appended as runs finish, so an interrupted sweep keeps what it did, and the
file is rewritten in run order at the end.

``aggregate.csv`` has one row per (point, metric): the parameters, ``metric``, ``n`` (replications
that measured it), ``mean``, ``std``, ``ci_low`` and ``ci_high`` (95%, Student's t), ``runs`` and
``failed``. ``study.json`` says what the columns are, for ``mailsim plot DIR``.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from mailsim.scenario.errors import Problem
from mailsim.study.grid import Run, Study
from mailsim.study.loader import StudyError
from mailsim.study.metrics import metric_title, metric_unit
from mailsim.study.stats import estimate

__all__ = [
    "AGGREGATE_COLUMNS",
    "ResultsFile",
    "aggregate",
    "aggregate_rows",
    "columns",
    "read_done",
    "result_row",
    "results_frame",
    "study_document",
    "write_outputs",
]

RESULTS = "results.csv"
AGGREGATE = "aggregate.csv"
STUDY = "study.json"
PARQUET = "results.parquet"
#: The statistics columns of aggregate.csv, after the point and its parameters.
AGGREGATE_COLUMNS = ("metric", "n", "mean", "std", "ci_low", "ci_high", "runs", "failed")
_INTEGERS = ("run", "point", "replication", "seed")

Row = dict[str, Any]


def columns(study: Study) -> list[str]:
    """The columns of ``results.csv``, in order."""
    return [
        *_INTEGERS,
        *(parameter.field for parameter in study.parameters),
        "status",
        *study.metric_names,
        "wall_time",
        "error",
    ]


def result_row(
    study: Study, run: Run, metrics: Mapping[str, float], wall: float, error: str | None
) -> Row:
    """One row of ``results.csv`` as typed values."""
    row: Row = {
        "run": run.index,
        "point": run.point,
        "replication": run.replication,
        "seed": run.seed,
    }
    row.update(study.points[run.point].labels)
    row["status"] = "failed" if error is not None else "ok"
    for name in study.metric_names:
        row[name] = metrics.get(name, math.nan)
    row["wall_time"] = wall
    row["error"] = error or ""
    return row


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    return str(value)


class ResultsFile:
    """``results.csv`` being written: a row appended and flushed as each run finishes."""

    def __init__(self, out: Path, study: Study, kept: Sequence[Row]) -> None:
        self.path = out / RESULTS
        self.header = columns(study)
        out.mkdir(parents=True, exist_ok=True)
        # The kept rows (of --resume) replace the file in one step, then new rows are appended.
        _write_csv(self.path, self.header, kept)
        self._stream = open(self.path, "a", encoding="utf-8", newline="")  # noqa: SIM115
        self._writer = csv.writer(self._stream, lineterminator="\n")

    def add(self, row: Row) -> None:
        """Append one run's row and flush it to disk."""
        self._writer.writerow([_cell(row[name]) for name in self.header])
        self._stream.flush()

    def close(self) -> None:
        """Close the file (the rows stay as written)."""
        self._stream.close()


def read_done(out: Path, study: Study) -> list[Row]:
    """The rows of ``results.csv`` in ``out`` whose runs succeeded, for ``--resume``.

    Failed runs are not kept: a resumed sweep tries them again. A file written by another study
    (other columns, or a run with other parameters or seed) is refused, since mixing two studies'
    rows would make every mean wrong.

    Raises:
        StudyError: the file does not belong to this study; the message says where.
    """
    path = out / RESULTS
    if not path.is_file():
        return []
    shown = os.fspath(path)
    expected = columns(study)
    runs = {run.index: run for run in study.runs()}
    kept: list[Row] = []
    with open(path, encoding="utf-8", newline="") as stream:
        reader = csv.reader(stream)
        header = next(reader, None)
        if header != expected:
            raise StudyError(
                [
                    Problem(
                        shown,
                        1,
                        1,
                        "",
                        "its columns are not this study's (another study wrote it); "
                        "choose another --out, or leave out --resume to start again",
                    )
                ]
            )
        for line, cells in enumerate(reader, start=2):
            if len(cells) != len(expected):
                continue  # the last row of an interrupted write; its run is done again
            row = _typed(dict(zip(expected, cells, strict=True)), study)
            run = runs.get(row["run"]) if row is not None else None
            if row is None or run is None or not _same_run(study, run, row):
                raise StudyError(
                    [
                        Problem(
                            shown,
                            line,
                            1,
                            "",
                            "this row is not a run of this study (its run, seed or parameters "
                            "differ); choose another --out, or leave out --resume to start again",
                        )
                    ]
                )
            if row["status"] == "ok":
                kept.append(row)
    unique = {row["run"]: row for row in kept}
    return [unique[index] for index in sorted(unique)]


def _typed(cells: dict[str, str], study: Study) -> Row | None:
    try:
        row: Row = {name: int(cells[name]) for name in _INTEGERS}
        for parameter in study.parameters:
            row[parameter.field] = cells[parameter.field]
        row["status"] = cells["status"]
        for name in (*study.metric_names, "wall_time"):
            row[name] = float(cells[name]) if cells[name] else math.nan
    except ValueError:
        return None
    row["error"] = cells["error"]
    return row


def _same_run(study: Study, run: Run, row: Row) -> bool:
    labels = study.points[run.point].labels
    return (
        row["point"] == run.point
        and row["replication"] == run.replication
        and row["seed"] == run.seed
        and all(row[name] == label for name, label in labels.items())
        and row["status"] in ("ok", "failed")
    )


def aggregate_rows(
    rows: Iterable[Row], parameters: Sequence[str], metrics: Sequence[str]
) -> list[Row]:
    """One row per (point, metric) with the mean and its 95% interval over the ok runs.

    Args:
        rows: results rows (each with ``point``, the ``parameters``, ``status``, the metrics).
        parameters: the parameter columns, copied from the first row of each point.
        metrics: the metric columns to aggregate.
    """
    by_point: dict[int, list[Row]] = {}
    for row in rows:
        by_point.setdefault(int(row["point"]), []).append(row)
    out: list[Row] = []
    for point in sorted(by_point):
        runs = by_point[point]
        good = [row for row in runs if row["status"] == "ok"]
        labels = {name: runs[0][name] for name in parameters}
        for name in metrics:
            est = estimate([float(row[name]) for row in good])
            out.append(
                {
                    "point": point,
                    **labels,
                    "metric": name,
                    "n": est.n,
                    "mean": est.mean,
                    "std": est.std,
                    "ci_low": est.ci_low,
                    "ci_high": est.ci_high,
                    "runs": len(runs),
                    "failed": len(runs) - len(good),
                }
            )
    return out


def aggregate(results: Any) -> Any:
    """Means and 95% intervals of a results DataFrame (as :func:`mailsim.sweep` returns it), one
    row per (point, metric) as ``aggregate.csv``; ``attrs["study"]`` is carried over."""
    import pandas as pd

    document = results.attrs.get("study")
    if not document:
        raise ValueError("the DataFrame has no attrs['study']; pass what mailsim.sweep returned")
    parameters = [parameter["field"] for parameter in document["parameters"]]
    metrics = [metric["name"] for metric in document["metrics"]]
    rows = aggregate_rows(results.to_dict("records"), parameters, metrics)
    frame = pd.DataFrame.from_records(rows, columns=["point", *parameters, *AGGREGATE_COLUMNS])
    frame.attrs["study"] = document
    return frame


def study_document(study: Study) -> dict[str, Any]:
    """``study.json``: what the columns of the results are, for figures drawn later."""
    from mailsim import __version__

    parameters = []
    for parameter in study.parameters:
        numbers: dict[str, float | None] = {}
        for point in study.points:
            numbers[point.labels[parameter.field]] = point.numbers[parameter.field]
        values = [numbers.get(label) for label in parameter.labels]
        parameters.append(
            {
                "field": parameter.field,
                "labels": list(parameter.labels),
                "numbers": values if all(v is not None for v in values) else None,
            }
        )
    return {
        "mailsim": __version__,
        "name": study.name,
        "description": study.description,
        "source": study.source,
        "scenario": study.scenario_ref,
        "base_seed": study.base_seed,
        "replications": study.replications,
        "runs": len(study.points) * study.replications,
        "parameters": parameters,
        "metrics": [
            {"name": name, "unit": metric_unit(name), "title": metric_title(name)}
            for name in study.metric_names
        ],
        "plot": {
            "x": study.plot.x,
            "lines": study.plot.lines,
            "metrics": list(study.plot.metrics),
        },
        "confidence": 0.95,
    }


def write_outputs(out: Path, study: Study, rows: Sequence[Row]) -> list[Path]:
    """Write every file of a finished (or interrupted) sweep; returns their paths.

    ``results.csv`` is rewritten in run order (through a temporary file, so a crash while
    writing never loses the rows already there), then ``aggregate.csv``, ``study.json`` and
    ``results.parquet`` when pyarrow is installed.
    """
    out.mkdir(parents=True, exist_ok=True)
    ordered = sorted(rows, key=lambda row: row["run"])
    written = [_write_csv(out / RESULTS, columns(study), ordered)]
    fields = [parameter.field for parameter in study.parameters]
    aggregate = aggregate_rows(ordered, fields, study.metric_names)
    header = ["point", *(p.field for p in study.parameters), *AGGREGATE_COLUMNS]
    written.append(_write_csv(out / AGGREGATE, header, aggregate))
    document = json.dumps(study_document(study), indent=2, ensure_ascii=False) + "\n"
    (out / STUDY).write_text(document, encoding="utf-8")
    written.append(out / STUDY)
    parquet = _write_parquet(out / PARQUET, columns(study), ordered)
    if parquet is not None:
        written.append(parquet)
    return written


def _write_csv(path: Path, header: Sequence[str], rows: Sequence[Row]) -> Path:
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(header)
        for row in rows:
            writer.writerow([_cell(row[name]) for name in header])
    os.replace(temporary, path)
    return path


def _write_parquet(path: Path, header: Sequence[str], rows: Sequence[Row]) -> Path | None:
    try:
        import pyarrow  # noqa: F401  (pandas needs it for parquet; without it there is no file)
    except ImportError:
        return None
    frame = results_frame(header, rows)
    frame.to_parquet(path, index=False)
    return path


def results_frame(header: Sequence[str], rows: Sequence[Row]) -> Any:
    """The rows as a pandas DataFrame with the columns of ``results.csv``."""
    import pandas as pd

    return pd.DataFrame.from_records([dict(row) for row in rows], columns=list(header))
