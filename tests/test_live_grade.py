"""mailsim grade against real clients: the example, smtplib, a blaster, a client ignoring 550."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mailsim.live.grade import grade, report_card
from mailsim.live.situations import SITUATIONS

pytestmark = pytest.mark.live

ROOT = Path(__file__).parent.parent
CLIENTS = Path(__file__).parent / "lab_clients"


def verdicts(script: Path) -> dict[str, tuple[bool, str]]:
    results = grade([sys.executable, str(script), "{host}", "{port}"], timeout=15)
    return {r.situation: (r.passed, r.reason) for r in results}


def test_the_example_client_passes_every_situation() -> None:
    got = verdicts(ROOT / "examples" / "student_client.py")
    assert got == {name: (True, "") for name in SITUATIONS}


def test_the_example_client_really_uses_starttls() -> None:
    [result] = grade(
        [sys.executable, str(ROOT / "examples" / "student_client.py"), "{host}", "{port}"],
        ["starttls"],
    )
    session = result.transcript[0]
    assert [m["what"] for m in session["marks"]] == ["TLS started"]
    assert session["verdicts"]["tls"] is True
    commands = session["commands"]
    assert commands[:3] == ["EHLO student.example", "STARTTLS", "EHLO student.example"]


def test_an_smtplib_client_passes_every_situation() -> None:
    got = verdicts(CLIENTS / "smtplib_client.py")
    assert got == {name: (True, "") for name in SITUATIONS}


def test_a_blasting_client_fails_only_the_synchronisation_situation() -> None:
    got = verdicts(CLIENTS / "blaster.py")
    failed = {name: reason for name, (ok, reason) in got.items() if not ok}
    assert list(failed) == ["no-pipelining"]
    assert "before the reply to the previous one" in failed["no-pipelining"]


def test_a_client_that_ignores_refusals_fails_where_it_ignored_them() -> None:
    got = verdicts(CLIENTS / "ignorer.py")
    failed = {name: reason for name, (ok, reason) in got.items() if not ok}
    assert set(failed) == {"greylisting", "too-big", "service-closing"}
    assert failed["greylisting"] == "DATA was sent after every recipient had been refused"
    assert failed["too-big"].startswith("message text was sent although DATA was refused")
    assert failed["service-closing"].startswith("the client went on after 421")


def test_a_client_that_does_not_dot_stuff_fails_the_dot_line_situation(tmp_path: Path) -> None:
    source = (ROOT / "examples" / "student_client.py").read_text()
    careless = source.replace('("." + line if line.startswith(".") else line)', "line")
    assert careless != source
    script = tmp_path / "no_stuffing.py"
    script.write_text(careless)
    [result] = grade([sys.executable, str(script), "{host}", "{port}"], ["dot-line"])
    assert not result.passed
    assert "a line of a single '.' ended it" in result.reason


def test_a_client_that_reads_one_line_of_ehlo_fails_the_multiline_situation(
    tmp_path: Path,
) -> None:
    source = (ROOT / "examples" / "student_client.py").read_text()
    careless = source.replace(
        'if len(text) < 4 or text[3] != "-":  # "250 " ends the reply, "250-" goes on', "if True:"
    )
    assert careless != source
    script = tmp_path / "one_line.py"
    script.write_text(careless)
    [result] = grade([sys.executable, str(script), "{host}", "{port}"], ["multiline-ehlo"])
    assert not result.passed
    assert result.reason.startswith("the client sent its next command before the whole multi")


def test_mailsim_grade_prints_the_card_writes_json_and_exits_4(tmp_path: Path) -> None:
    out = tmp_path / "card.json"
    command = [
        sys.executable,
        "-m",
        "mailsim.cli",
        "grade",
        "--situations",
        "plain,no-pipelining",
        "--json",
        str(out),
        "--",
        sys.executable,
        str(CLIENTS / "blaster.py"),
        "{host}",
        "{port}",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 4, done.stderr
    assert "plain delivery" in done.stdout and "score: 1/2 situations passed" in done.stdout
    assert "C: MAIL FROM:<james@india.com>" in done.stdout
    document = json.loads(out.read_text())
    assert [s["verdict"] for s in document["situations"]] == ["pass", "fail"]


def test_mailsim_grade_exits_0_when_all_pass_and_2_on_bad_arguments() -> None:
    client = [sys.executable, str(ROOT / "examples" / "student_client.py"), "{host}", "{port}"]
    base = [sys.executable, "-m", "mailsim.cli", "grade"]
    done = subprocess.run([*base, "--situations", "plain", "--", *client], capture_output=True)
    assert done.returncode == 0
    done = subprocess.run(
        [*base, "--situations", "nope", "--", *client], capture_output=True, text=True
    )
    assert done.returncode == 2
    assert "--situations: unknown 'nope'; expected some of plain" in done.stderr


def test_report_card_lists_the_evidence_of_a_failure() -> None:
    results = grade([sys.executable, str(CLIENTS / "ignorer.py"), "{host}", "{port}"], ["too-big"])
    card = report_card(results, ["ignorer"])
    assert "FAIL" in card and "S: 552 5.3.4" in card and "score: 0/1" in card
