"""`mailsim run --trace full|summary|off` and the Python API's trace levels: what each writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import mailsim
from mailsim.cli import main
from mailsim.trace import load_events
from mailsim.trace.recorder import SUMMARY_TYPES, TraceLevelError


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def _summary(folder: Path) -> dict:
    return json.loads((folder / "summary.json").read_text())


@pytest.fixture(scope="module")
def full_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("full")
    code, _, _ = invoke("run", "link-outage", "--out", str(out), "--no-figures", "-q")
    assert code == 0
    return out


def test_summary_writes_the_mail_records_and_the_same_summary_without_lines(
    full_run: Path, tmp_path: Path
) -> None:
    (tmp_path / "transcript.txt").write_text("from an earlier run")
    code, _, _ = invoke("run", "link-outage", "--out", str(tmp_path), "--trace", "summary", "-q")
    assert code == 0
    assert _summary(tmp_path) == _summary(full_run)
    assert not (tmp_path / "transcript.txt").exists()  # not left to be taken for this run's
    kept = load_events(tmp_path / "events.jsonl")
    everything = load_events(full_run / "events.jsonl")
    wanted = [
        r
        for r in everything
        if any(
            r["type"].startswith(t) if t.endswith(".") else r["type"] == t for t in SUMMARY_TYPES
        )
    ]
    assert kept == wanted
    assert not any(r["type"] == "smtp.line" for r in kept)
    # The figures drawn from the mail records; no sequence chart without protocol lines.
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["timeline.png", "topology.png"]


def test_off_writes_only_the_summary(full_run: Path, tmp_path: Path) -> None:
    code, out, _ = invoke("run", "link-outage", "--out", str(tmp_path), "--trace", "off")
    assert code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.json"]
    assert _summary(tmp_path) == _summary(full_run)
    assert "delivered" in out


def test_a_pcap_needs_the_full_trace(tmp_path: Path) -> None:
    code, _, err = invoke(
        "run", "link-outage", "--out", str(tmp_path), "--trace", "summary", "--pcap"
    )
    assert code == 2
    assert "--pcap" in err and "--trace full" in err
    assert "Traceback" not in err


def test_an_unknown_level_is_bad_input() -> None:
    code, _, err = invoke("run", "link-outage", "--trace", "some")
    assert code == 2 and "full" in err and "summary" in err


def test_a_run_streamed_to_a_folder_reads_its_records_back(tmp_path: Path) -> None:
    kept = mailsim.load("james-to-steve").run()
    streamed = mailsim.load("james-to-steve").run(out=tmp_path)
    assert streamed.world.recorder.records == []  # nothing held while it ran
    assert streamed.records == kept.records
    assert streamed.transcript() == kept.transcript()
    assert streamed.transcript(1) == kept.transcript(1)
    assert streamed.summary() == kept.summary()


def test_what_a_level_did_not_keep_is_a_clear_error() -> None:
    off = mailsim.load("james-to-steve").run(trace="off")
    with pytest.raises(TraceLevelError, match="trace='summary'"):
        off.records  # noqa: B018
    assert off.books.totals()["delivered"] == 1  # the books are kept at every level
    summary = mailsim.load("james-to-steve").run(trace="summary")
    with pytest.raises(TraceLevelError, match="transcript needs the full trace"):
        summary.transcript()
    assert {r["type"] for r in summary.records} >= {"mail.submit", "mail.deliver", "net.node"}
