"""What run, validate and scenarios print: warnings, the 80-column table, JSON and TSV."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from mailsim.cli import main
from mailsim.scenario import load_scenario, validate_file
from mailsim.scenario.catalog import bundled_dir

DOCS = Path(__file__).resolve().parent.parent / "docs" / "cli-output.md"
STORY = (bundled_dir() / "james-to-steve.yaml").read_text(encoding="utf-8")


def invoke(*args: str, columns: int = 80) -> tuple[int, str, str]:
    result = CliRunner().invoke(
        main, list(args), catch_exceptions=False, env={"COLUMNS": str(columns)}
    )
    return result.exit_code, result.stdout, result.stderr


def story(tmp_path: Path, name: str, *changes: tuple[str, str]) -> Path:
    text = STORY
    for old, new in changes:
        assert old in text
        text = text.replace(old, new)
    path = tmp_path / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


MISTAKES = (
    ("latency: 110ms", "latency: 110"),
    ("    to: steve@usa.com", "    to: [stve@usa.com, steve@usa.co]"),
)


# --- validate: warnings -------------------------------------------------------------------------


def test_validate_warns_about_unserved_recipients_and_bare_numbers_and_exits_0(tmp_path):
    path = story(tmp_path, "oops", *MISTAKES)
    code, out, err = invoke("validate", "--format", "table", str(path))
    assert code == 0
    assert out.strip() == f"{path}: ok (3 warnings)"
    lines = err.splitlines()
    assert len(lines) == 3
    for line in lines:
        assert re.match(rf"{re.escape(str(path))}:\d+:\d+: [\w.\[\]]+: warning: ", line), line
    latency, unknown_user, unknown_domain = lines
    assert "links[2].latency: warning: a bare number counts as seconds, so 110 means" in latency
    assert "'110ms' if you meant milliseconds" in latency
    assert "messages[0].to[0]" in unknown_user
    assert "no user stve@usa.com (did you mean steve@usa.com?)" in unknown_user
    assert "550 user unknown" in unknown_user
    assert "messages[0].to[1]" in unknown_domain and "serves usa.co (did you mean usa.com?)" in (
        unknown_domain
    )


def test_run_prints_each_warning_on_one_line_too(tmp_path):
    path = story(tmp_path, "oops", *MISTAKES)
    code, _, err = invoke("run", str(path), "--out", str(tmp_path / "out"), "--no-figures")
    assert code == 0
    warned = [line for line in err.splitlines() if ": warning: " in line]
    assert len(warned) == 3
    for line in warned:
        assert line.startswith(f"{path}:") and len(line) > 80, line


def test_strict_makes_the_warnings_errors(tmp_path):
    path = story(tmp_path, "oops", *MISTAKES)
    code, out, err = invoke("validate", "--strict", "--format", "table", str(path))
    assert code == 2
    assert out.strip() == f"{path}: fails under --strict (3 warnings)"
    assert len(err.splitlines()) == 3
    assert len(validate_file(path, strict=True)) == 3 and validate_file(path) == []


def test_a_mail_server_others_cannot_reach_is_a_warning(tmp_path):
    # usa-mail keeps its link to Steve's PC only: india-mail has no path to it.
    path = story(
        tmp_path,
        "island",
        ("  - {between: [usa-gw, usa-mail], latency: 1ms, bandwidth: 1Gbps}\n", ""),
    )
    warnings = [str(w) for w in load_scenario(path).warnings]
    assert any(
        "nodes.usa-mail: warning: no other mail server can reach usa-mail" in w for w in warnings
    ), warnings


def test_zero_and_written_units_are_not_warned_about(tmp_path):
    path = story(
        tmp_path, "fine", ("duration: 30min", "duration: 30min\nservers: {retry: {jitter: 0}}")
    )
    assert load_scenario(path).warnings == []


# The one warning a bundled scenario means to raise: reply-codes sends to a misspelt mailbox on
# purpose, to show the 550 and the bounce, and validate says so before it runs.
MEANT_WARNINGS = {"reply-codes": {"messages[1].to"}}


def test_every_bundled_scenario_validates_without_warnings_but_those_it_means():
    names = sorted(p.stem for p in bundled_dir().glob("*.yaml"))
    code, out, err = invoke("validate", "--format", "json", *names)
    assert code == 0, err
    report = json.loads(out)
    warned = {
        entry["scenario"]: {warning["field"] for warning in entry["warnings"]}
        for entry in report["scenarios"]
        if entry["warnings"]
    }
    assert report["ok"] is True and warned == MEANT_WARNINGS


# --- validate, scenarios: JSON and TSV ----------------------------------------------------------


def test_validate_json_lists_errors_and_warnings_per_scenario(tmp_path):
    path = story(tmp_path, "oops", *MISTAKES)
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: x\nnodes: {a: {kind: hots}}\n", encoding="utf-8")
    code, out, _ = invoke("validate", str(path), str(broken))  # not a terminal: JSON by itself
    assert code == 2
    document = json.loads(out)
    assert document["ok"] is False and document["strict"] is False
    first, second = document["scenarios"]
    assert first["ok"] is True and len(first["warnings"]) == 3 and first["errors"] == []
    assert second["ok"] is False and second["errors"][0]["field"] == "nodes.a.kind"
    assert set(first["warnings"][0]) == {"file", "line", "col", "field", "message", "text"}


def test_validate_tsv_has_one_row_per_problem(tmp_path):
    path = story(tmp_path, "oops", *MISTAKES)
    code, out, _ = invoke("validate", "--format", "tsv", str(path), "link-outage")
    assert code == 0
    header, *rows = [line.split("\t") for line in out.splitlines()]
    assert header == ["scenario", "status", "file", "line", "col", "field", "message"]
    assert [row[1] for row in rows] == ["warning", "warning", "warning", "ok"]
    assert rows[0][5] == "links[2].latency"


def test_scenarios_prints_json_or_tsv_for_programs():
    code, out, _ = invoke("scenarios")
    listed = json.loads(out)["scenarios"]
    assert [entry["name"] for entry in listed][:2] == ["attachments", "bounce-after-days"]
    assert all(Path(entry["file"]).is_file() for entry in listed)
    code, out, _ = invoke("scenarios", "--format", "tsv")
    assert code == 0
    assert out.splitlines()[0] == "name\tteaches\tfile"
    assert len(out.splitlines()) == 1 + len(listed)


# --- run: the table, JSON, TSV ------------------------------------------------------------------


def test_the_run_table_fits_80_columns_and_explains_zero_attempts(tmp_path):
    code, out, _ = invoke(
        "run", "seed-transcript", "--out", str(tmp_path), "--no-figures", "--format", "table",
        columns=200,
    )  # fmt: skip
    assert code == 0
    widths = [len(line) for line in out.splitlines() if not line.startswith("Outputs in")]
    assert max(widths) <= 80, out
    assert "attempts 0, latency 0 s: the message was handed straight to the server" in (
        " ".join(out.split())
    )


def test_the_run_table_keeps_every_column_when_they_fit(tmp_path):
    code, out, _ = invoke(
        "run", "link-outage", "--out", str(tmp_path), "--no-figures", "--format", "table"
    )
    assert code == 0
    header = next(line for line in out.splitlines() if line.startswith("message"))
    assert header.split() == ["message", "from", "to", "outcome", "attempts", "latency"]
    assert "india-mail -> usa-mail: 6 connections (5 failed), 1 message, 6 round trips" in out


def test_persistent_connection_prints_connections_and_round_trips_per_side(tmp_path):
    code, out, _ = invoke(
        "run", "persistent-connection", "--out", str(tmp_path), "--no-figures", "--format", "table"
    )
    assert code == 0
    assert "india-mail -> usa-mail: 1 connection, 5 messages, 14 round trips" in out
    assert "uk-mail -> usa-mail: 5 connections, 5 messages, 30 round trips" in out


def test_run_json_is_the_summary_with_the_relays_and_files(tmp_path):
    code, out, _ = invoke("run", "james-to-steve", "--out", str(tmp_path), "--no-figures")
    assert code == 0
    document = json.loads(out)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert {key: document[key] for key in summary} == summary
    assert document["source"] == "james-to-steve" and document["out_dir"] == str(tmp_path)
    assert "events.jsonl" in document["files"]
    (relay,) = document["relays"]
    assert relay == {
        "client": "india-mail",
        "server": "usa-mail",
        "connections": 1,
        "failed": 0,
        "messages": 1,
        "round_trips": 6,
    }


def test_run_tsv_has_a_row_per_message_and_recipient(tmp_path):
    code, out, _ = invoke(
        "run", "persistent-connection", "--out", str(tmp_path), "--no-figures", "--format", "tsv"
    )
    assert code == 0
    header, *rows = [line.split("\t") for line in out.splitlines()]
    assert header[:5] == ["id", "from", "to", "kind", "status"]
    assert len(rows) == 10 and {row[4] for row in rows} == {"delivered"}


# --- the documented JSON shapes -----------------------------------------------------------------


def _documented(command: str) -> dict:
    text = DOCS.read_text(encoding="utf-8")
    block = re.search(rf"## `mailsim {command}`.*?```json\n(.*?)```", text, re.S)
    assert block, f"docs/cli-output.md shows no JSON for mailsim {command}"
    return json.loads(block.group(1))


def _same_shape(documented, actual, where="") -> None:
    if isinstance(documented, dict):
        assert isinstance(actual, dict), where
        assert set(documented) == set(actual), (where, set(documented) ^ set(actual))
        for key, value in documented.items():
            _same_shape(value, actual[key], f"{where}.{key}")
    elif isinstance(documented, list) and documented and actual:
        _same_shape(documented[0], actual[0], f"{where}[0]")


@pytest.mark.parametrize("command", ["run", "validate", "scenarios"])
def test_the_docs_show_the_json_each_command_prints(command: str, tmp_path: Path) -> None:
    args = {
        "run": ["run", "link-outage", "--out", str(tmp_path), "--no-figures"],
        "validate": ["validate", str(story(tmp_path, "oops", *MISTAKES))],
        "scenarios": ["scenarios"],
    }[command]
    _, out, _ = invoke(*args, "--format", "json")
    _same_shape(_documented(command), json.loads(out))
