"""Study files: the bundled studies load, every mistake is reported at its line and column, and
the grid, seeds and commands of a study are what docs/studies.md says."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from mailsim.scenario.catalog import bundled_dir
from mailsim.study import StudyError, build_study, bundled_studies, load_study
from mailsim.study.schema import PlotSection, StudyFile

HERE = Path(__file__).parent
BROKEN = HERE / "broken_studies"
BROKEN_STUDIES = sorted(p for p in BROKEN.glob("*.yaml") if p.with_suffix(".expected").is_file())
DOCS = HERE.parent / "docs" / "studies.md"


def test_the_broken_corpus_has_an_expectation_for_each_study() -> None:
    studies = [p for p in BROKEN.glob("*.yaml") if p.name != "outage-fixed.yaml"]
    assert len(studies) >= 7
    assert all(p.with_suffix(".expected").is_file() for p in studies)


@pytest.mark.parametrize("path", BROKEN_STUDIES, ids=lambda p: p.stem)
def test_a_broken_study_reports_exactly_the_expected_lines(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(BROKEN)  # scenario files beside the studies are then shown by name
    expected = path.with_suffix(".expected").read_text().splitlines()
    with pytest.raises(StudyError) as caught:
        load_study(path.name)
    assert caught.value.lines == expected


def test_every_problem_line_has_the_file_line_column_shape() -> None:
    for path in BROKEN_STUDIES:
        for line in path.with_suffix(".expected").read_text().splitlines():
            assert re.match(r"^[\w./-]+\.yaml:\d+:\d+: ", line), line


def test_the_bundled_studies_load_with_their_grids() -> None:
    assert {"outage-study", "persistence-study"} <= set(bundled_studies())
    outage = load_study("outage-study")
    assert [p.field for p in outage.parameters] == ["faults[0].down_for", "servers.retry.policy"]
    assert len(outage.points) == 15 and outage.replications == 10
    assert outage.scenario_ref is not None and outage.scenario_ref.endswith("outage-morning.yaml")
    persistence = load_study("persistence-study")
    assert len(persistence.points) * persistence.replications == 40


def test_the_grid_varies_the_first_parameter_slowest_and_seeds_follow_the_replication() -> None:
    study = load_study("outage-study")
    first, second, sixteenth = study.points[0], study.points[1], study.points[3]
    assert first.labels == {"faults[0].down_for": "1h", "servers.retry.policy": "fixed"}
    assert second.labels == {"faults[0].down_for": "1h", "servers.retry.policy": "postfix"}
    assert sixteenth.labels == {"faults[0].down_for": "3h", "servers.retry.policy": "fixed"}
    assert first.numbers["faults[0].down_for"] == 3600.0
    assert first.numbers["servers.retry.policy"] is None
    assert second.scenario.servers.retry.policy == "postfix"
    assert sixteenth.scenario.faults[0].down_for == 3 * 3600
    runs = study.runs()
    assert [run.index for run in runs] == list(range(150))
    # Common random numbers: replication r has seed base + r at every point.
    assert {(run.replication, run.seed) for run in runs} == {(r, 1000 + r) for r in range(10)}
    assert runs[10].point == 1 and runs[10].replication == 0


def test_the_command_of_a_run_names_the_scenario_seed_and_every_override() -> None:
    study = load_study("outage-study")
    run = study.runs()[57]  # point 5 (3h, exim), replication 7
    assert study.command(run) == (
        f"mailsim run {study.scenario_ref} --seed 1007 --set 'faults[0].down_for=3h' "
        "--set servers.retry.policy=exim"
    )


def test_a_study_built_in_python_is_checked_like_a_file() -> None:
    study = build_study(
        "link-outage",
        grid={"faults[0].down_for": ["1h", "2h"]},
        fixed={"duration": "6h"},
        replications=2,
        seed=5,
    )
    assert [run.seed for run in study.runs()] == [5, 6, 5, 6]
    assert study.command(study.runs()[1]) == (
        "mailsim run link-outage --seed 6 --set duration=6h --set 'faults[0].down_for=1h'"
    )
    with pytest.raises(StudyError) as caught:
        build_study(
            "link-outage",
            grid={"faults[0].down_for": ["1h", "soon"], "faults[0]": [{}]},
            metrics=["latency_mean", "lantency_p95"],
            replications=0,
        )
    assert caught.value.lines == [
        "grid: faults[0]: overlaps 'faults[0].down_for'",
        "metrics: unknown metric 'lantency_p95'; did you mean 'latency_p95'?",
        "replications: must be a whole number from 1, got 0",
    ]
    with pytest.raises(StudyError) as caught:
        build_study("link-outage", grid={"faults[0].down_for": ["1h", "soon"]})
    assert caught.value.lines == [
        "grid: faults[0].down_for: must be a duration like '120ms' or '30min', got 'soon'"
    ]


@pytest.mark.parametrize("model", [StudyFile, PlotSection], ids=lambda m: m.__name__)
def test_every_study_key_is_documented(model: type[BaseModel]) -> None:
    text = DOCS.read_text()
    for name, info in model.model_fields.items():
        key = info.alias or name
        assert f"`{key}`" in text, f"docs/studies.md does not document {model.__name__}.{key}"


def test_the_bundled_study_scenarios_are_valid_scenarios() -> None:
    from mailsim.scenario import load_scenario

    for path in sorted((bundled_dir() / "studies").glob("*.yaml")):
        if path.stem.endswith("-study"):
            continue
        assert load_scenario(path).name


def test_the_checkout_scenarios_folder_reaches_the_studies() -> None:
    root = HERE.parent
    assert (root / "scenarios" / "studies" / "outage-study.yaml").is_file()
    assert (root / "scenarios" / "link-outage.yaml").is_file()
