"""The figure of a parameter study: each metric against a parameter, with 95% intervals.

Drawn from a sweep folder's files only (``study.json`` and ``aggregate.csv``, as ``mailsim sweep``
writes them), so ``mailsim plot DIR`` redraws it long after the runs, on a machine that never ran
them. One panel per metric; along x the study's ``plot.x`` parameter (at its numeric values, like
seconds for ``3h``, labelled as the study writes them; log-spaced when they span a factor of ten
or more); one line per value of ``plot.lines``, or per combination of the other parameters. A
shaded band and error bars show each mean's 95% confidence interval (none with one replication).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mailsim.plot._style import SLIDE_INCHES, Look, PlotError, look_for, new_figure, time_unit

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["read_sweep", "save_sweep_figure", "sweep_figure"]

#: The file ``mailsim sweep`` and ``mailsim plot DIR`` write.
FIGURE_NAME = "sweep.png"
#: Width of one panel and the height of the figure, inches (two panels fill a slide at 110 dpi).
PANEL_WIDTH = 6.0
HEIGHT = 4.6
#: Lines drawn at most per panel; more would be unreadable, and the legend says what was left out.
MAX_LINES = 10
#: Colours of the lines, told apart also by their markers (for print and colour-blind readers).
LINE_COLOURS = ("#1f5fa8", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#17becf")
MARKERS = ("o", "s", "^", "D", "v", "P", "X")

Row = dict[str, Any]


def read_sweep(directory: str | Path) -> tuple[dict[str, Any], list[Row]]:
    """``study.json`` and the rows of ``aggregate.csv`` of a sweep folder.

    Raises:
        PlotError: a file is missing or not what ``mailsim sweep`` writes.
    """
    folder = Path(directory)
    try:
        document = json.loads((folder / "study.json").read_text(encoding="utf-8"))
        with open(folder / "aggregate.csv", encoding="utf-8", newline="") as stream:
            rows = list(csv.DictReader(stream))
    except FileNotFoundError as error:
        raise PlotError(
            f"no {Path(error.filename).name} here; give the folder 'mailsim sweep' wrote"
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError, csv.Error) as error:
        raise PlotError(f"not a sweep folder ({error})") from None
    if not isinstance(document, dict) or "parameters" not in document or "metrics" not in document:
        raise PlotError("study.json is not a mailsim study description")
    return document, rows


def sweep_figure(
    source: str | Path | Any,
    *,
    metrics: Sequence[str] | None = None,
    x: str | None = None,
    lines: str | None = None,
    size: str = "default",
) -> Figure:
    """Metrics against a parameter, one line per value of another, with 95% intervals.

    Args:
        source: a sweep folder, or an aggregate DataFrame (:func:`mailsim.study.aggregate`)
            whose ``attrs["study"]`` describes it.
        metrics: the panels (default: the study's ``plot.metrics``).
        x: the parameter along x (default: the study's ``plot.x``).
        lines: the parameter drawn as separate lines (default: the study's ``plot.lines``).
        size: "default" (:data:`PANEL_WIDTH` per panel) or "slide" (16:9 with large type; see
            :class:`mailsim.plot._style.Look`).

    Returns:
        The figure; each line has gid ``sweep-line`` and its label.

    Raises:
        PlotError: unknown metric or parameter, or a source that is not a sweep.
    """
    document, rows = _source(source)
    fields = [parameter["field"] for parameter in document["parameters"]]
    known = [metric["name"] for metric in document["metrics"]]
    plot = document.get("plot") or {}
    chosen = list(metrics or plot.get("metrics") or known[:2])
    for name in chosen:
        if name not in known:
            raise PlotError(f"metric '{name}' was not collected; the study has {', '.join(known)}")
    if x is None:
        x = plot.get("x")
        lines = lines if lines is not None else plot.get("lines")
    elif lines is None:
        lines = next((field for field in fields if field != x), None)
    for role, field in (("x", x), ("lines", lines)):
        if field is not None and field not in fields:
            raise PlotError(f"{role}: '{field}' is not a parameter; the study has {fields}")
    if x is not None and x == lines:
        raise PlotError("x and lines must be two different parameters")
    look = look_for(size)
    if look.slide:
        fig = new_figure(*SLIDE_INCHES, dpi=look.dpi)
    else:
        fig = new_figure(PANEL_WIDTH * len(chosen), HEIGHT, dpi=110)
    axes = fig.subplots(1, len(chosen), squeeze=False)[0]
    units = {metric["name"]: metric.get("unit", "") for metric in document["metrics"]}
    titles = {metric["name"]: metric.get("title", metric["name"]) for metric in document["metrics"]}
    for ax, name in zip(axes, chosen, strict=True):
        picked = [row for row in rows if row["metric"] == name]
        _panel(ax, document, picked, x, lines, units[name], titles[name], look)
    replications = document.get("replications")
    fig.suptitle(
        f"{document.get('name', 'parameter study')}\n"
        f"means of {replications} replications with 95% confidence intervals",
        fontsize=look.title + look.scale,
    )
    fig.tight_layout()
    return fig


def save_sweep_figure(
    directory: str | Path, *, size: str = "default", dpi: float | None = None
) -> Path:
    """Draw the figure of a sweep folder into ``sweep.png`` there; returns its path.

    ``size`` as for :func:`sweep_figure`; ``dpi`` defaults to 110, or the slide look's 120 (which
    makes a slide 1920 x 1080 pixels).
    """
    folder = Path(directory)
    look = look_for(size)
    figure = sweep_figure(folder, size=look.name)
    path = folder / FIGURE_NAME
    figure.savefig(path, dpi=dpi if dpi is not None else (look.dpi if look.slide else 110))
    return path


def _source(source: str | Path | Any) -> tuple[dict[str, Any], list[Row]]:
    if isinstance(source, (str, Path)):
        return read_sweep(source)
    document = getattr(source, "attrs", {}).get("study")
    if not document:
        raise PlotError("give a sweep folder, or the DataFrame of mailsim.study.aggregate")
    records = source.to_dict("records")
    return document, [{key: _text(value) for key, value in row.items()} for row in records]


def _text(value: Any) -> str:
    if isinstance(value, float) and math.isnan(value):
        return ""
    return str(value)


def _number(text: str) -> float:
    return float(text) if text not in ("", "nan") else math.nan


def _panel(
    ax: Axes,
    document: Mapping[str, Any],
    rows: list[Row],
    x: str | None,
    lines: str | None,
    unit: str,
    title: str,
    look: Look,
) -> None:
    parameters = {parameter["field"]: parameter for parameter in document["parameters"]}
    scale, unit_name = 1.0, ""
    if unit == "s":
        peak = max((_number(r["ci_high"]) for r in rows if r["ci_high"]), default=0.0)
        peak = max(peak, max((_number(r["mean"]) for r in rows if r["mean"]), default=0.0))
        unit_name, scale = time_unit(peak if peak > 0 else 1.0)
    if x is None:
        positions: dict[str, float] = {"": 0.0}
        tick_labels = ["all runs"]
    else:
        spec = parameters[x]
        numbers = spec.get("numbers")
        if numbers:
            positions = dict(zip(spec["labels"], numbers, strict=True))
        else:
            positions = {label: float(i) for i, label in enumerate(spec["labels"])}
        tick_labels = list(spec["labels"])
    groups = _groups(rows, x, lines, parameters)
    for index, (label, members) in enumerate(list(groups.items())[:MAX_LINES]):
        members.sort(key=lambda r: positions[r[x]] if x is not None else 0.0)
        xs = [positions[r[x]] if x is not None else 0.0 for r in members]
        means = [_number(r["mean"]) / scale for r in members]
        low = [_number(r["ci_low"]) / scale for r in members]
        high = [_number(r["ci_high"]) / scale for r in members]
        colour = LINE_COLOURS[index % len(LINE_COLOURS)]
        marker = MARKERS[index % len(MARKERS)]
        (line,) = ax.plot(
            xs,
            means,
            color=colour,
            marker=marker,
            markersize=6 * look.scale,
            label=label or None,
            lw=look.line(1.8),
        )
        line.set_gid("sweep-line")
        if any(not math.isnan(v) for v in low):
            ax.fill_between(xs, low, high, color=colour, alpha=0.15, lw=0)
            errors = [
                [m - lo if not math.isnan(lo) else 0.0 for m, lo in zip(means, low, strict=True)],
                [hi - m if not math.isnan(hi) else 0.0 for m, hi in zip(means, high, strict=True)],
            ]
            ax.errorbar(
                xs,
                means,
                yerr=errors,
                fmt="none",
                ecolor=colour,
                capsize=3 * look.scale,
                lw=look.line(1),
            )
    if len(groups) > MAX_LINES:
        ax.plot([], [], " ", label=f"({len(groups) - MAX_LINES} more lines not drawn)")
    values = sorted(positions.values())
    numeric = x is not None and bool(parameters[x].get("numbers"))
    if numeric and values[0] > 0 and values[-1] / values[0] >= 10:
        ax.set_xscale("log")
        ax.minorticks_off()
    ax.set_xticks(list(positions.values()), tick_labels, fontsize=look.small + look.scale)
    ax.set_xlabel(x or "", fontsize=look.font)
    ax.set_ylabel(f"{title} ({unit_name})" if unit_name else title, fontsize=look.font)
    ax.set_title(title, fontsize=look.title)
    ax.tick_params(axis="y", labelsize=look.small + look.scale)
    ax.grid(True, color="#dddddd", lw=0.6)
    ax.set_ylim(bottom=min(0.0, ax.get_ylim()[0]))
    if any(label for label in groups):
        ax.legend(
            title=lines if lines is not None and len(parameters) <= 2 else None,
            fontsize=look.small + look.scale,
            title_fontsize=look.small + look.scale,
            frameon=False,
        )


def _groups(
    rows: list[Row], x: str | None, lines: str | None, parameters: Mapping[str, Any]
) -> dict[str, list[Row]]:
    """The rows of each line: by the value of ``lines``, then of every other parameter."""
    others = [field for field in parameters if field not in (x, lines)]
    order = {
        field: {label: i for i, label in enumerate(spec["labels"])}
        for field, spec in parameters.items()
    }
    keys = ([lines] if lines is not None else []) + others
    groups: dict[tuple[int, ...], tuple[str, list[Row]]] = {}
    for row in rows:
        key = tuple(order[field][row[field]] for field in keys)
        if key not in groups:
            if lines is not None and not others:
                label = row[lines]
            else:
                label = ", ".join(f"{field}={row[field]}" for field in keys)
            groups[key] = (label, [])
        groups[key][1].append(row)
    return {label: members for _, (label, members) in sorted(groups.items())}
