"""Running studies: serial and process pool give the same rows, a failing combination loses no
other run, an interrupted sweep resumes, and a printed command repeats a run exactly."""

from __future__ import annotations

import csv
import json
import math
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner
from study_helpers import SMALL_STUDY, comparable, fails_after_long_outages, write_small_study

import mailsim
from mailsim.cli import main
from mailsim.study import StudyError, aggregate, load_study, run_study


def test_a_sweep_writes_its_files_with_one_row_per_run(serial_csv: str, small: Path) -> None:
    rows = list(csv.DictReader(serial_csv.splitlines()))
    assert len(rows) == 12 and [int(r["run"]) for r in rows] == list(range(12))
    assert list(rows[0])[:6] == [
        "run",
        "point",
        "replication",
        "seed",
        "faults[0].down_for",
        "servers.retry.policy",
    ]
    assert {r["status"] for r in rows} == {"ok"}
    assert [r["seed"] for r in rows[:3]] == ["40", "41", "42"]
    assert float(rows[0]["wall_time"]) > 0 and rows[0]["error"] == ""
    # A longer outage means a later delivery, replication by replication (same seeds).
    for rep in range(3):
        short = float(rows[rep]["latency_mean"])
        long = float(rows[6 + rep]["latency_mean"])
        assert 3600 < short < long


def test_the_process_pool_writes_the_same_rows_as_serial(
    serial_csv: str, small: Path, tmp_path: Path
) -> None:
    report = run_study(load_study(small), workers=2, out=tmp_path)
    assert not report.failed
    assert comparable((tmp_path / "results.csv").read_text()) == comparable(serial_csv)


def test_the_aggregate_has_a_mean_and_interval_per_point_and_metric(tmp_path: Path) -> None:
    frame = mailsim.sweep(
        "link-outage",
        grid={"faults[0].down_for": ["1h", "2h"]},
        fixed={"duration": "6h"},
        replications=4,
        metrics=["latency_mean", "attempts_mean"],
        workers=1,
        out=tmp_path,
    )
    assert len(frame) == 8 and frame.attrs["study"]["replications"] == 4
    table = aggregate(frame)
    assert len(table) == 4
    row = table[(table["point"] == 1) & (table["metric"] == "latency_mean")].iloc[0]
    values = frame[frame["point"] == 1]["latency_mean"]
    assert row["n"] == 4 and row["mean"] == pytest.approx(values.mean())
    half = 3.1824 * values.std() / 2
    assert (row["ci_low"], row["ci_high"]) == pytest.approx(
        (values.mean() - half, values.mean() + half), rel=1e-4
    )
    with open(tmp_path / "aggregate.csv", newline="") as stream:
        written = list(csv.DictReader(stream))
    assert float(written[2]["mean"]) == pytest.approx(row["mean"])
    assert (tmp_path / "results.parquet").is_file()
    document = json.loads((tmp_path / "study.json").read_text())
    assert document["parameters"][0]["numbers"] == [3600.0, 7200.0]


def test_common_random_numbers_the_same_replication_sees_the_same_traffic() -> None:
    seen = {}

    frame = mailsim.sweep(
        "scenarios/studies/outage-morning.yaml",
        grid={"servers.retry.policy": ["fixed", "exim"]},
        fixed={"duration": "6h", "faults[0].down_for": "1h"},
        replications=2,
        metrics=["delivered", "submitted"],
        workers=1,
    )
    for _, row in frame.iterrows():
        seen.setdefault(row["replication"], set()).add(row["submitted"])
    # Both policies of one replication get the same messages; the replications differ.
    assert all(len(counts) == 1 for counts in seen.values())
    assert seen[0] != seen[1]


def test_a_failing_combination_is_reported_and_every_other_run_kept(tmp_path: Path) -> None:
    frame = mailsim.sweep(
        "link-outage",
        grid={"faults[0].down_for": ["1h", "2h"]},
        fixed={"duration": "6h"},
        replications=2,
        metrics=["latency_mean", ("check", fails_after_long_outages)],
        workers=2,
        out=tmp_path,
    )
    failed = frame[frame["status"] == "failed"]
    assert list(failed["faults[0].down_for"]) == ["2h", "2h"]
    assert set(failed["error"]) == {"RuntimeError: deliberate failure after a long outage"}
    assert failed["latency_mean"].isna().all()
    good = frame[frame["status"] == "ok"]
    assert list(good["run"]) == [0, 1] and (good["latency_mean"] > 0).all()
    table = aggregate(frame)
    assert list(table[table["metric"] == "check"]["failed"]) == [0, 2]


def test_an_interrupted_sweep_resumes_where_it_stopped(
    serial_csv: str, small: Path, tmp_path: Path
) -> None:
    study = load_study(small)

    def interrupt_after_five(done: int, todo: int, failed: int) -> None:
        if done == 5:
            raise KeyboardInterrupt

    first = run_study(study, workers=1, out=tmp_path, progress=interrupt_after_five)
    assert first.interrupted and len(first.rows) == 5
    assert len((tmp_path / "results.csv").read_text().splitlines()) == 6
    calls = []
    second = run_study(
        study, workers=1, out=tmp_path, resume=True, progress=lambda *a: calls.append(a)
    )
    assert second.resumed == 5 and len(calls) == 7 and not second.interrupted
    assert comparable((tmp_path / "results.csv").read_text()) == comparable(serial_csv)


def test_resume_refuses_the_results_of_another_study(small: Path, tmp_path: Path) -> None:
    run_study(load_study(small), workers=1, out=tmp_path)
    other = small.with_name("other.yaml")
    other.write_text(small.read_text().replace("seed: 40", "seed: 7"))
    with pytest.raises(StudyError) as caught:
        run_study(load_study(other), workers=1, out=tmp_path, resume=True)
    [line] = caught.value.lines
    assert line.startswith(f"{tmp_path / 'results.csv'}:2:1: this row is not a run of this study")


def test_the_printed_command_repeats_the_run_exactly(
    serial_csv: str, small: Path, tmp_path: Path
) -> None:
    study = load_study(small)
    run = study.runs()[10]  # 2h, postfix, replication 1
    words = shlex.split(study.command(run))
    assert words[:2] == ["mailsim", "run"]
    result = CliRunner().invoke(
        main, [*words[1:], "-q", "--no-figures", "--out", str(tmp_path)], catch_exceptions=False
    )
    assert result.exit_code == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    row = list(csv.DictReader(serial_csv.splitlines()))[10]
    assert (row["faults[0].down_for"], row["servers.retry.policy"]) == ("2h", "postfix")
    [message] = summary["messages"]
    assert float(row["latency_mean"]) == message["latency"]
    assert float(row["totals.connections"]) == summary["totals"]["connections"]


# --- the command ------------------------------------------------------------------------------


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_mailsim_sweep_writes_the_files_and_the_figure(small: Path, tmp_path: Path) -> None:
    code, out, err = invoke("sweep", str(small), "--workers", "1", "--out", str(tmp_path))
    assert code == 0, err
    assert "4 combinations x 3 replications = 12 runs on this process" in out
    for name in ("results.csv", "aggregate.csv", "study.json", "sweep.png"):
        assert (tmp_path / name).is_file(), name


def test_mailsim_sweep_command_prints_how_to_repeat_a_chosen_run(small: Path) -> None:
    code, out, _ = invoke("sweep", str(small), "--command", "10")
    assert code == 0
    assert out.strip() == load_study(small).command(load_study(small).runs()[10])
    assert "--seed 41" in out and "'faults[0].down_for=2h'" in out
    code, _, err = invoke("sweep", str(small), "--command", "12")
    assert code == 2 and "the study has runs 0 to 11, got 12" in err


def test_mailsim_sweep_exits_3_and_prints_the_failed_runs(
    small: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mailsim.study import executors

    real = executors.execute

    def fail_exim_like(task: executors.RunTask) -> executors.RunOutcome:
        if task.scenario.servers.retry.policy == "postfix" and task.seed == 41:
            raise_here = executors.RunOutcome(task.index, {}, 0.0, "RuntimeError: deliberate")
            return raise_here
        return real(task)

    monkeypatch.setattr(executors, "execute", fail_exim_like)
    code, _, err = invoke("sweep", str(small), "--workers", "1", "--out", str(tmp_path))
    assert code == 3
    assert "2 runs failed" in err
    assert "run 4 (faults[0].down_for=1h, servers.retry.policy=postfix; seed 41)" in err
    assert "mailsim run link-outage --seed 41 --set duration=6h" in err
    rows = list(csv.DictReader((tmp_path / "results.csv").open()))
    assert [r["status"] for r in rows].count("ok") == 10


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["nothing-here"], "no such file, and no bundled study of that name"),
        (["link-outage"], "no such file"),
        (["scenarios/link-outage.yaml"], "this is a scenario, not a study"),
        (["outage-study", "--workers", "2", "--scheduler", "tcp://127.0.0.1:1"], "--workers"),
    ],
)
def test_mailsim_sweep_bad_input_exits_2(args: list[str], expected: str) -> None:
    code, _, err = invoke("sweep", *args)
    assert code == 2 and expected in err and "Traceback" not in err


def test_a_broken_study_exits_2_with_located_lines(tmp_path: Path) -> None:
    bad = write_small_study(tmp_path, SMALL_STUDY.replace("[1h, 2h]", "[1h, 2x]"))
    code, _, err = invoke("sweep", str(bad))
    assert code == 2
    assert err.strip() == (
        f"{bad}:10:28: faults[0].down_for: must be a duration like '120ms' or '30min', got '2x'"
    )


def test_nan_metrics_are_empty_cells_and_read_back(small: Path, tmp_path: Path) -> None:
    text = small.read_text().replace("duration: 6h", "duration: 61min")  # nothing delivered
    short = small.with_name("short.yaml")
    short.write_text(text)
    run_study(load_study(short), workers=1, out=tmp_path)
    rows = list(csv.DictReader((tmp_path / "results.csv").open()))
    assert rows[0]["latency_mean"] == "" and rows[0]["status"] == "ok"
    again = run_study(load_study(short), workers=1, out=tmp_path, resume=True)
    assert again.resumed == 12 and math.isnan(again.rows[0]["latency_mean"])
