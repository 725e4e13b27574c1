"""The figure of a sweep: drawn from its files alone, one line per value of the second parameter,
intervals around each mean, and ``mailsim plot DIR`` redraws it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from study_helpers import write_small_study

import mailsim
from mailsim.cli import main
from mailsim.plot import PlotError, sweep_figure
from mailsim.study import aggregate, load_study, run_study


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sweep")
    study = write_small_study(tmp_path_factory.mktemp("study"))
    run_study(load_study(study), workers=1, out=out)
    return out


def lines_of(figure):  # type: ignore[no-untyped-def]
    return [line for ax in figure.axes for line in ax.lines if line.get_gid() == "sweep-line"]


def test_one_line_per_policy_in_each_panel_at_the_outage_lengths(folder: Path) -> None:
    figure = sweep_figure(folder)
    assert len(figure.axes) == 2  # the first two metrics
    lines = lines_of(figure)
    assert [line.get_label() for line in lines] == ["fixed", "postfix"] * 2
    assert list(lines[0].get_xdata()) == [3600.0, 7200.0]
    left = figure.axes[0]
    assert left.get_title() == "mean delivery delay"
    assert left.get_ylabel() == "mean delivery delay (min)"  # about 1-2.5 h: minutes
    assert [t.get_text() for t in left.get_xticklabels()] == ["1h", "2h"]
    # Three replications: every mean has an interval (a filled band) around it.
    assert len(left.collections) >= 2


def test_the_figure_reads_only_the_files(folder: Path, tmp_path: Path) -> None:
    for name in ("study.json", "aggregate.csv"):
        (tmp_path / name).write_bytes((folder / name).read_bytes())
    figure = sweep_figure(tmp_path, metrics=["relay_connections"], x="servers.retry.policy")
    lines = lines_of(figure)
    assert [line.get_label() for line in lines] == ["1h", "2h"]
    assert list(lines[0].get_xdata()) == [0.0, 1.0]  # a policy has no number: evenly spaced


def test_a_wide_numeric_range_gets_a_log_axis_and_no_interval_with_one_replication(
    tmp_path: Path,
) -> None:
    frame = mailsim.sweep(
        "link-outage",
        grid={"faults[0].down_for": ["10min", "1h", "3h"]},
        replications=1,
        metrics=["latency_mean"],
        workers=1,
    )
    figure = sweep_figure(aggregate(frame))
    [ax] = figure.axes
    assert ax.get_xscale() == "log"
    [line] = lines_of(figure)
    assert len(ax.collections) == 0 and line.get_label().startswith("_")  # no legend entry


def test_mailsim_plot_redraws_a_sweep_folder(folder: Path) -> None:
    (folder / "sweep.png").unlink(missing_ok=True)
    result = CliRunner().invoke(main, ["plot", str(folder)], catch_exceptions=False)
    assert result.exit_code == 0 and (folder / "sweep.png").stat().st_size > 10_000


def test_bad_sources_are_plot_errors(folder: Path, tmp_path: Path) -> None:
    with pytest.raises(PlotError, match=r"no study\.json here"):
        sweep_figure(tmp_path)
    with pytest.raises(PlotError, match="was not collected"):
        sweep_figure(folder, metrics=["bounced"])
    with pytest.raises(PlotError, match="is not a parameter"):
        sweep_figure(folder, x="duration")
    (tmp_path / "study.json").write_text(json.dumps({"x": 1}))
    (tmp_path / "aggregate.csv").write_text("point\n")
    result = CliRunner().invoke(main, ["plot", str(tmp_path)])
    assert result.exit_code == 2 and "not a mailsim study description" in result.stderr
    result = CliRunner().invoke(main, ["plot", str(tmp_path), "--message", "m1@india.com"])
    assert result.exit_code == 2 and "is a sweep folder; it has no sequence chart" in result.stderr


def test_slide_size_is_16_by_9_with_projector_type(folder: Path) -> None:
    figure = sweep_figure(folder, size="slide")
    assert tuple(figure.get_size_inches()) == (16.0, 9.0)
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()  # type: ignore[attr-defined]
    texts = [
        text
        for ax in figure.axes
        for text in (*ax.get_xticklabels(), *ax.get_yticklabels(), ax.title, ax.xaxis.label)
        if text.get_text() and text.get_visible()
    ]
    texts += [text for ax in figure.axes if ax.get_legend() for text in ax.get_legend().texts]
    assert texts and min(text.get_fontsize() for text in texts) >= 12
    # Everything stays inside the picture.
    box = figure.bbox
    for text in texts:
        extent = text.get_window_extent(renderer)
        assert box.x0 <= extent.x0 and extent.x1 <= box.x1, text.get_text()
    with pytest.raises(PlotError, match="size must be"):
        sweep_figure(folder, size="poster")


def test_mailsim_plot_and_sweep_draw_a_slide_figure(folder: Path, tmp_path: Path) -> None:
    from PIL import Image

    (folder / "sweep.png").unlink(missing_ok=True)
    result = CliRunner().invoke(
        main, ["plot", str(folder), "--figure-size", "slide"], catch_exceptions=False
    )
    assert result.exit_code == 0
    assert Image.open(folder / "sweep.png").size == (1920, 1080)
    study = write_small_study(tmp_path)
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main,
        ["sweep", str(study), "--workers", "1", "--out", str(out), "-q", "--figure-size", "slide"],
    )
    assert result.exit_code in (0, 3), result.output
    assert Image.open(out / "sweep.png").size == (1920, 1080)
