"""The top-level scenarios/ folder of a checkout holds the bundled scenarios, runnable by path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from mailsim.cli import main
from mailsim.scenario.catalog import bundled_dir

ROOT = Path(__file__).resolve().parent.parent
BUNDLED = sorted(path.name for path in bundled_dir().glob("*.yaml"))


def test_the_folder_holds_every_bundled_scenario() -> None:
    shown = sorted(path.name for path in (ROOT / "scenarios").glob("*.yaml"))
    assert shown == BUNDLED and "james-to-steve.yaml" in shown
    for name in shown:
        assert (ROOT / "scenarios" / name).read_bytes() == (bundled_dir() / name).read_bytes()


@pytest.mark.parametrize("name", BUNDLED)
def test_mailsim_run_takes_each_file_by_its_path(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    path = ROOT / "scenarios" / name
    # Two simulated minutes prove the file loads, builds and runs; the golden-trace test runs
    # each scenario to its end.
    result = CliRunner().invoke(
        main, ["run", str(path), "--until", "2min", "--no-figures", "-q"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "runs" / Path(name).stem / "summary.json").read_text())
    assert summary["end_time"] == 120.0
