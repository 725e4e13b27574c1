"""Overrides by field path (``faults[0].down_for=3h``): parsed, applied before validation, and
every problem placed where the override was given; ``mailsim run --set`` uses them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import mailsim
from mailsim.cli import main
from mailsim.scenario import ScenarioError
from mailsim.scenario.catalog import bundled
from mailsim.scenario.catalog import load as load_bundled
from mailsim.scenario.loader import load_scenario, revalidate
from mailsim.scenario.overrides import (
    Override,
    apply_overrides,
    parse_assignment,
    parse_field_path,
    yaml_text,
)

GOOD = Path(__file__).parent / "good_scenarios" / "james-mails-steve.yaml"


def problems_of(name: str, *assignments: str) -> list[str]:
    with pytest.raises(ScenarioError) as caught:
        load_bundled(name, [parse_assignment(text) for text in assignments])
    return caught.value.lines


# --- paths and assignments ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ("duration", ("duration",)),
        ("faults[0].down_for", ("faults", 0, "down_for")),
        ("servers.retry.policy", ("servers", "retry", "policy")),
        ("nodes.usa-mail.settings.retry", ("nodes", "usa-mail", "settings", "retry")),
        ('nodes["mail.example"].kind', ("nodes", "mail.example", "kind")),
        ("links[10].between[1]", ("links", 10, "between", 1)),
    ],
)
def test_field_paths_read_as_error_messages_write_them(text: str, path: tuple) -> None:
    assert parse_field_path(text) == path


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("", "empty"),
        ("faults[0.down_for", "unexpected '['"),
        ("a..b", "expected a name at '.'"),
        ("faults[-1]", "unexpected '['"),
        (".duration", "expected a name"),
    ],
)
def test_a_bad_field_path_says_what_is_wrong(text: str, hint: str) -> None:
    with pytest.raises(ValueError, match="field path") as caught:
        parse_field_path(text)
    assert hint in str(caught.value)


def test_an_assignment_reads_its_value_as_yaml() -> None:
    assert parse_assignment("faults[0].down_for=3h").value == "3h"
    assert parse_assignment("servers.max_recipients=5").value == 5
    assert parse_assignment("servers.durable=false").value is False
    assert parse_assignment("servers.retry={policy: exim}").value == {"policy": "exim"}
    assert parse_assignment("links[0].between=[a, b]").value == ["a", "b"]
    assert parse_assignment("messages[0].subject=a=b").value == "a=b"  # the first '=' splits


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("duration", "expected PATH=VALUE"),
        ("duration=", "no value after '='"),
        ("duration=[1", "the value cannot be read"),
    ],
)
def test_a_bad_assignment_says_what_is_wrong(text: str, hint: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_assignment(text)
    assert hint in str(caught.value)


@pytest.mark.parametrize(
    "value", ["3h", "exim", "yes", "1", "", "a: b", 5, 2.5, True, None, [1, "x"]]
)
def test_yaml_text_reads_back_as_the_same_value(value: object) -> None:
    assert parse_assignment(f"x={yaml_text(value)}").value == value


# --- applying ------------------------------------------------------------------------------


def test_overrides_change_a_copy_and_create_missing_mappings() -> None:
    data = {"faults": [{"link": ["a", "b"], "down_at": "30s"}], "servers": None}
    changed, problems = apply_overrides(
        data,
        [
            Override(("faults", 0, "down_for"), "3h"),
            Override(("servers", "retry", "policy"), "exim"),
        ],
    )
    assert problems == []
    assert changed["faults"][0]["down_for"] == "3h"
    assert changed["servers"] == {"retry": {"policy": "exim"}}
    assert "down_for" not in data["faults"][0] and data["servers"] is None


def test_an_override_changes_a_list_item_that_exists_and_never_adds_one() -> None:
    assert problems_of("link-outage", "faults[1].down_for=1h") == [
        "--set: faults[1]: faults has 1 item, numbered from 0; an override changes an item that "
        "the scenario has"
    ]


def test_a_field_inside_a_plain_value_is_refused() -> None:
    assert problems_of("link-outage", "duration.hours=3") == [
        "--set: duration.hours: duration is '12h', not a mapping, so it has no field 'hours'"
    ]


def test_a_bad_value_is_reported_at_the_override_not_in_the_scenario_file() -> None:
    assert problems_of("link-outage", "faults[0].down_for=3x") == [
        "--set: faults[0].down_for: must be a duration like '120ms' or '30min', got '3x'"
    ]


def test_a_misspelt_key_that_only_the_override_made_is_reported_at_the_override() -> None:
    assert problems_of("link-outage", "serverz.retry.policy=exim") == [
        "--set: serverz: unknown key; did you mean 'servers'?"
    ]


def test_a_combination_the_scenario_forbids_stays_at_the_scenario_line_that_conflicts() -> None:
    lines = problems_of("link-outage", "servers.retry.policy=exim")
    assert len(lines) == 2
    assert all(":27:" in line and "applies only to policy fixed" in line for line in lines)
    # Replacing the whole mapping instead is allowed: the fixed fields go with it.
    scenario = load_bundled("link-outage", [parse_assignment("servers.retry={policy: exim}")])
    assert scenario.servers.retry.policy == "exim"


def test_overrides_placed_in_a_file_keep_its_line_and_column() -> None:
    override = Override(("links", 0, "latency"), "fast", origin="study.yaml", line=7, col=12)
    with pytest.raises(ScenarioError) as caught:
        load_scenario(GOOD, overrides=[override])
    [problem] = caught.value.problems
    assert (problem.path, problem.line, problem.col, problem.field) == (
        "study.yaml",
        7,
        12,
        "links[0].latency",
    )


def test_an_override_gives_the_same_scenario_as_the_edited_file(tmp_path: Path) -> None:
    text = GOOD.read_text()
    edited = tmp_path / "edited.yaml"
    edited.write_text(text.replace("latency: 110ms", "latency: 300ms"))
    assert "latency: 110ms" in text
    index = next(
        i for i, link in enumerate(load_scenario(GOOD).links) if abs(link.latency - 0.110) < 1e-12
    )
    overridden = load_scenario(GOOD, overrides=[parse_assignment(f"links[{index}].latency=300ms")])
    assert overridden == load_scenario(edited)


# --- models built in Python ------------------------------------------------------------------


@pytest.mark.parametrize("name", [name for name, _ in bundled()])
def test_every_bundled_scenario_survives_a_dump_and_revalidation(name: str) -> None:
    scenario = mailsim.load(name)
    assert revalidate(scenario) == scenario


def test_revalidating_a_model_applies_overrides_and_names_problems_by_field() -> None:
    scenario = mailsim.load("link-outage")
    changed = revalidate(scenario, [Override(("faults", 0, "down_for"), "6h")])
    assert changed.faults[0].down_for == 6 * 3600 and scenario.faults[0].down_for == 3 * 3600
    with pytest.raises(ScenarioError) as caught:
        revalidate(scenario, [Override(("faults", 0, "down_for"), "soon", origin="grid")])
    assert caught.value.lines == [
        "grid: faults[0].down_for: must be a duration like '120ms' or '30min', got 'soon'"
    ]


# --- mailsim run --set -------------------------------------------------------------------------


def test_mailsim_run_set_changes_the_run(tmp_path: Path) -> None:
    runner = CliRunner()
    args = ["run", "link-outage", "-q", "--no-figures"]
    base = runner.invoke(main, [*args, "--out", str(tmp_path / "a")], catch_exceptions=False)
    longer = runner.invoke(
        main,
        [*args, "--out", str(tmp_path / "b"), "--set", "faults[0].down_for=10h"],
        catch_exceptions=False,
    )
    assert base.exit_code == longer.exit_code == 0
    [short_row] = json.loads((tmp_path / "a" / "summary.json").read_text())["messages"]
    [long_row] = json.loads((tmp_path / "b" / "summary.json").read_text())["messages"]
    assert short_row["latency"] < 4 * 3600 < 10 * 3600 < long_row["latency"]


def test_mailsim_run_set_reports_bad_input_with_exit_2() -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["run", "link-outage", "--set", "faults[0].down_for=3x"])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "--set: faults[0].down_for: must be a duration like '120ms' or '30min', got '3x'"
    )
    result = runner.invoke(main, ["run", "link-outage", "--set", "faults[0]"])
    assert result.exit_code == 2
    assert "expected PATH=VALUE" in result.stderr and "Traceback" not in result.stderr


def test_mailsim_run_set_names_itself_in_the_problems_it_causes_elsewhere_in_the_file() -> None:
    result = CliRunner().invoke(main, ["run", "link-outage", "--set", "servers.retry.policy=exim"])
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 2
    for line in lines:
        assert ":27:" in line and line.endswith("(with --set servers.retry.policy=exim)"), line
