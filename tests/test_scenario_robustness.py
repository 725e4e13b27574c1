"""Scenarios that pass validation must run, and those that do not must say where: a seeded corpus.

360 mutants of a small scenario that uses every section (``scenario_corpus.mutants``) and 40
random worlds with faults of every kind (``scenario_corpus.random_worlds``). Each mutant is either
refused with problems placed at a line and column (``mailsim validate`` exits 2 with them), or
valid, and then it runs to its end with the books balanced. Every world is valid and runs with
the books balanced. The corpus found what the issue lists (a CR/LF subject, a 1 TB attachment, a
bandwidth of 10**400, a greeting fault of 451, an alias bomb, a run of 1e308 seconds); the
regression tests for those are in ``test_scenario_limits.py``.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from scenario_corpus import mutants, random_worlds

from mailsim.cli import main
from mailsim.scenario import Scenario, ScenarioError, load_scenario

MUTANTS = mutants()
WORLDS = random_worlds()
#: Simulated seconds a valid mutant runs at most: the base scenario's hour (a mutant that asks
#: for a year is checked by the workload estimate instead, see test_scenario_limits.py).
HORIZON = 3600.0
PROBLEM = re.compile(r"[^:]+:[1-9][0-9]*:[1-9][0-9]*: .+")


@functools.cache
def loaded(index: int) -> Scenario | ScenarioError:
    """Mutant ``index`` loaded (once per test session), or the error that refused it."""
    try:
        return load_scenario(MUTANTS[index], source_name=f"mutant-{index:03}.yaml")
    except ScenarioError as error:
        return error


def test_the_corpora_are_what_the_issue_asks_for() -> None:
    assert len(MUTANTS) == 360 and len(set(MUTANTS)) > 340
    assert len(WORLDS) == 40
    assert mutants(count=30) == MUTANTS[:30]  # seeded: a failing mutant can be regenerated


def test_both_outcomes_occur_so_the_corpus_tests_both_paths() -> None:
    valid = sum(isinstance(loaded(index), Scenario) for index in range(len(MUTANTS)))
    assert 20 <= valid <= 120, valid  # most mutants are refused, some still run


@pytest.mark.parametrize("chunk", range(8))
def test_every_mutant_is_refused_in_place_or_runs_with_balanced_books(chunk: int) -> None:
    for index in range(chunk, len(MUTANTS), 8):
        scenario = loaded(index)
        if isinstance(scenario, ScenarioError):
            assert scenario.problems
            for line in scenario.lines:
                assert PROBLEM.fullmatch(line), line
            continue
        result = scenario.run(until=min(scenario.duration, HORIZON))
        assert result.books.balanced, (index, result.books.problems)


@pytest.mark.parametrize("index", range(40))
def test_every_random_world_runs_with_balanced_books(index: int) -> None:
    scenario = load_scenario(WORLDS[index], source_name=f"world-{index:02}.yaml")
    result = scenario.run()
    assert result.books.balanced, result.books.problems
    assert result.books.totals()["submitted"] >= 1


def test_the_cli_exits_2_with_the_problems_of_a_refused_mutant(tmp_path: Path) -> None:
    index = next(i for i in range(len(MUTANTS)) if isinstance(loaded(i), ScenarioError))
    path = tmp_path / "mutant.yaml"
    path.write_text(MUTANTS[index], encoding="utf-8")
    result = CliRunner().invoke(main, ["validate", "--format", "table", str(path)])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line]
    assert lines and all(PROBLEM.fullmatch(line) for line in lines)
