"""Where a run's files go (runs/NAME/ or runs/<file stem>/) and what a Result keeps."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

import mailsim
from mailsim.cli import main
from mailsim.scenario.catalog import bundled_dir


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_a_bundled_scenario_writes_runs_name_not_its_title(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, _ = invoke("run", "james-to-steve", "--no-figures", "-q")
    assert code == 0
    assert (tmp_path / "runs" / "james-to-steve" / "summary.json").is_file()
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["james-to-steve"]


def test_a_file_writes_runs_stem_whatever_its_name_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    story = tmp_path / "stories" / "my-story.yaml"
    story.parent.mkdir()
    text = (bundled_dir() / "james-to-steve.yaml").read_text(encoding="utf-8")
    story.write_text(text.replace("name: James in India", "name: Totally Different"), "utf-8")
    code, _, _ = invoke("run", str(story), "--no-figures", "-q")
    assert code == 0
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["my-story"]


def test_result_save_without_a_folder_uses_the_same_rule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = mailsim.load("james-to-steve").run()
    assert result.slug == "james-to-steve"
    assert result.save(figures=False) == Path("runs") / "james-to-steve"
    assert (tmp_path / "runs" / "james-to-steve" / "events.jsonl").is_file()


def test_a_scenario_from_text_is_named_after_its_title() -> None:
    from mailsim.scenario import load_scenario

    text = (bundled_dir() / "james-to-steve.yaml").read_text(encoding="utf-8")
    assert load_scenario(text).slug == "james-in-india-mails-steve-in-the-usa"


def test_events_and_deliveries_are_built_once() -> None:
    result = mailsim.load("james-to-steve").run()
    assert result.events is result.events
    assert result.deliveries is result.deliveries
    assert list(result.deliveries["status"]) == ["delivered"]
