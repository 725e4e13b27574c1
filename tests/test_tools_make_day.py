"""tools/make_day.py writes the bundled busy day exactly, and valid benchmark days of any size."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

import mailsim

ROOT = Path(__file__).resolve().parent.parent


def _tool():
    spec = importlib.util.spec_from_file_location("make_day", ROOT / "tools" / "make_day.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_day"] = module
    spec.loader.exec_module(module)
    return module


def test_the_busy_day_preset_is_the_bundled_scenario_byte_for_byte() -> None:
    tool = _tool()
    assert tool.render(tool.BUSY_DAY) == tool.BUSY_DAY_PATH.read_text(encoding="utf-8")


def test_the_pinned_notes_day_is_what_the_tool_writes() -> None:
    tool = _tool()
    pinned = ROOT / "tests" / "golden_scenarios" / "notes-day.yaml"
    assert tool.render(tool.notes_day(300)) == pinned.read_text(encoding="utf-8")


def test_a_notes_day_scales_its_users_with_the_traffic(tmp_path: Path) -> None:
    tool = _tool()
    for messages, users in ((2_000, 50), (40_000, 1_000)):
        path = tmp_path / f"day-{messages}.yaml"
        path.write_text(tool.render(tool.notes_day(messages)), encoding="utf-8")
        scenario = mailsim.load(str(path))
        assert len(scenario.users) == users
        assert {u.address.partition("@")[2] for u in scenario.users} == {"india.com", "usa.com"}
        (traffic,) = scenario.traffic
        assert traffic.rate * 86_400 * users == messages
        assert traffic.size.size == 2_000


def test_the_command_line_refuses_a_day_too_small(tmp_path: Path, capsys) -> None:
    tool = _tool()
    with pytest.raises(SystemExit) as exit:
        tool.main(["notes", "--messages", "1", "-o", str(tmp_path / "x.yaml")])
    assert exit.value.code == 2
    assert "at least 2" in capsys.readouterr().err


def test_notes_over_several_days_keep_the_users_and_rate_of_one_day(tmp_path: Path) -> None:
    tool = _tool()
    path = tmp_path / "days.yaml"
    assert tool.main(["notes", "--messages", "8000", "--days", "4", "-o", str(path)]) == 0
    scenario = mailsim.load(str(path))
    one_day = tool.notes_day(2_000)
    assert scenario.duration == 4 * 86_400
    assert len(scenario.users) == sum(site.users for site in one_day.sites) == 50
    (traffic,) = scenario.traffic
    assert traffic.rate * scenario.duration * len(scenario.users) == 8_000
