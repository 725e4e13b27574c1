"""The `mailsim` command: exit codes, messages, and the files it writes (docs/design.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from mailsim import __version__
from mailsim.cli import main

BROKEN = Path(__file__).parent / "broken_scenarios"


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_version_is_printed() -> None:
    code, out, _ = invoke("--version")
    assert code == 0 and __version__ in out


def test_help_starts_without_importing_the_heavy_libraries() -> None:
    code = (
        "import sys, mailsim.cli; "
        "heavy = {'simpy', 'matplotlib', 'pandas', 'networkx', 'pydantic', 'rich'}; "
        "heavy &= set(sys.modules); "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


CORPUS = sorted(path.stem for path in BROKEN.glob("*.yaml"))


@pytest.mark.parametrize("name", CORPUS)
def test_validate_prints_the_corpus_message_and_exits_2(name: str) -> None:
    path = BROKEN / f"{name}.yaml"
    expected = (BROKEN / f"{name}.expected").read_text().splitlines()
    code, _, err = invoke("validate", str(path))
    assert code == 2
    # The corpus writes the bare file name; the CLI shows the path as given.
    assert err.splitlines() == [line.replace(f"{name}.yaml", str(path), 1) for line in expected]
    assert "Traceback" not in err


def test_validate_accepts_every_bundled_scenario() -> None:
    from mailsim.scenario.catalog import bundled

    names = [name for name, _ in bundled()]
    code, out, _ = invoke("validate", "--format", "table", *names)
    assert code == 0
    assert out.count(": ok") == len(names) == 9


def test_an_unknown_scenario_name_lists_the_bundled_ones() -> None:
    code, _, err = invoke("run", "james-to-stve")
    assert code == 2
    assert "no bundled scenario" in err and "did you mean 'james-to-steve'?" in err


def test_a_folder_given_as_a_scenario_lists_its_scenario_files(tmp_path: Path) -> None:
    (tmp_path / "mine.yaml").write_text("name: mine\n", encoding="utf-8")
    code, _, err = invoke("run", str(tmp_path))
    assert code == 2
    expected = f"{tmp_path}: a folder, not a scenario file; its scenario files: mine.yaml"
    assert err.strip() == expected


def test_a_study_file_given_as_a_scenario_says_to_sweep_it() -> None:
    study = Path(__file__).resolve().parent.parent / "scenarios" / "studies" / "outage-study.yaml"
    for command in ("run", "validate"):
        code, _, err = invoke(command, str(study))
        assert code == 2
        (line,) = err.splitlines()
        assert "this is a study file" in line and line.endswith(f"mailsim sweep {study}")


def test_run_rejects_a_bad_until_with_exit_2() -> None:
    code, _, err = invoke("run", "james-to-steve", "--until", "soon")
    assert code == 2 and err.startswith("--until: must be a duration")


def test_new_writes_a_starter_that_validates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, _ = invoke("new", "my-story")
    assert code == 0 and "my-story.yaml" in out
    assert invoke("validate", "my-story.yaml")[0] == 0
    code, _, err = invoke("new", "my-story")
    assert code == 2 and "already exists" in err


def test_plot_without_a_trace_says_what_folder_is_wanted(tmp_path: Path) -> None:
    code, _, err = invoke("plot", str(tmp_path))
    assert code == 2 and "no events.jsonl" in err


def test_scenarios_lists_what_each_shows() -> None:
    code, out, _ = invoke("scenarios")
    assert code == 0
    assert "james-to-steve" in out and "six steps" in out


def test_run_writes_the_contract_files_and_a_byte_identical_trace(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    for out in (first, second):
        code, stdout, _ = invoke("run", "james-to-steve", "--out", str(out), "--seed", "3")
        assert code == 0, stdout
    for name in (
        "events.jsonl",
        "summary.json",
        "transcript.txt",
        "sequence.png",
        "timeline.png",
        "topology.png",
    ):
        assert (first / name).is_file(), name
    assert (first / "events.jsonl").read_bytes() == (second / "events.jsonl").read_bytes()
    assert (first / "summary.json").read_bytes() == (second / "summary.json").read_bytes()
    summary = json.loads((first / "summary.json").read_text())
    assert summary["seed"] == 3 and summary["balanced"]
    assert [m["status"] for m in summary["messages"]] == ["delivered"]
    assert "delivered" in stdout


def test_plot_redraws_the_figures_of_a_run(tmp_path: Path) -> None:
    assert invoke("run", "james-to-steve", "--out", str(tmp_path), "--no-figures", "-q")[0] == 0
    assert not (tmp_path / "sequence.png").exists()
    code, out, _ = invoke("plot", str(tmp_path))
    assert code == 0 and (tmp_path / "sequence.png").is_file() and "timeline.png" in out


def test_run_with_pcap_writes_a_capture(tmp_path: Path) -> None:
    code, _, _ = invoke(
        "run", "james-to-steve", "--out", str(tmp_path), "--pcap", "--no-figures", "-q"
    )
    assert code == 0
    magic = (tmp_path / "trace.pcap").read_bytes()[:4]
    assert magic in (bytes.fromhex("a1b2c3d4"), bytes.fromhex("d4c3b2a1"))  # libpcap, either order


def test_run_writes_a_filtered_pcap_and_one_file_per_node(tmp_path: Path) -> None:
    out = tmp_path / "run"
    code, stdout, _ = invoke(
        "run", "james-to-steve", "--out", str(out), "--no-figures", "--pcap-filter", "pop3",
        "--pcap-filter", "dns", "--pcap-per-node",
    )  # fmt: skip
    assert code == 0, stdout
    blob = (out / "trace.pcap").read_bytes()
    assert len(blob) > 24  # a header and packets (the filter implies --pcap)
    # james-pc only submits (SMTP), so with pop3 and dns it has no packet and no file;
    # steve-pc polls over POP3, the dns node answers india-mail's MX query.
    assert sorted(p.name for p in (out / "pcap").iterdir()) == [
        "dns.pcap",
        "india-mail.pcap",
        "steve-pc.pcap",
        "usa-mail.pcap",
    ]


def test_run_rejects_an_unknown_pcap_filter_with_exit_2(tmp_path: Path) -> None:
    code, _, err = invoke("run", "james-to-steve", "--out", str(tmp_path), "--pcap-filter", "http")
    assert code == 2
    assert "--pcap-filter: 'http' is not a protocol" in err and "smtp, pop3, dns" in err
    assert not any(tmp_path.iterdir())  # nothing was run or written


def test_run_rejects_an_until_no_run_could_reach_with_exit_2() -> None:
    code, _, err = invoke("run", "james-to-steve", "--until", "100000000000d")
    assert code == 2
    assert err.strip() == (
        "--until: must be at most 365d, the longest run mailsim simulates, got '100000000000d'"
    )
    code, _, err = invoke("run", "james-to-steve", "--until", "1" + "0" * 400)
    assert code == 2 and "too large to be used" in err
