"""Scenario errors: every mistake of a file, one line each, at its line and column, no traceback.

The corpus in ``broken_scenarios/`` holds one file per kind of mistake; beside each, a
``.expected`` file holds the exact lines ``mailsim validate`` must print (with the path shown as
the file name). Regenerate them only on purpose, after reading every changed line.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailsim.scenario import Problem, ScenarioError, load_scenario, validate_file, validate_text

HERE = Path(__file__).parent
BROKEN = sorted((HERE / "broken_scenarios").glob("*.yaml"))
GOOD_TEXT = (HERE / "good_scenarios" / "james-mails-steve.yaml").read_text()


def test_the_corpus_covers_at_least_thirty_mistakes_each_with_its_expectation() -> None:
    assert len(BROKEN) >= 30
    for path in BROKEN:
        assert path.with_suffix(".expected").is_file(), path.name


@pytest.mark.parametrize("path", BROKEN, ids=lambda p: p.stem)
def test_broken_scenario_reports_exactly_the_expected_lines(path: Path) -> None:
    expected = path.with_suffix(".expected").read_text().splitlines()
    assert validate_file(path, source_name=path.name) == expected


def test_problems_carry_their_place_and_str_gives_the_lines() -> None:
    text = GOOD_TEXT.replace("latency: 110ms", "latency: 120 millis")
    with pytest.raises(ScenarioError) as caught:
        load_scenario(text, source_name="x.yaml")
    (problem,) = caught.value.problems
    # Line 11 is the second link; its latency value starts in column 48.
    assert problem == Problem(
        "x.yaml",
        11,
        48,
        "links[1].latency",
        "must be a duration like '120ms' or '30min', got '120 millis'",
    )
    assert str(caught.value) == (
        "x.yaml:11:48: links[1].latency: must be a duration like '120ms' or '30min', "
        "got '120 millis'"
    )
    assert caught.value.lines == [str(problem)]


def test_a_problem_without_a_field_or_a_place_leaves_them_out() -> None:
    assert str(Problem("x.yaml", 3, 1, "", "YAML syntax error: oops")) == (
        "x.yaml:3:1: YAML syntax error: oops"
    )
    assert (
        str(Problem("x.yaml", 0, 0, "", "cannot read the file")) == "x.yaml: cannot read the file"
    )


def test_every_problem_of_a_file_is_reported_in_file_order() -> None:
    lines = validate_file(
        HERE / "broken_scenarios" / "many-problems-at-once.yaml", source_name="many.yaml"
    )
    assert len(lines) == 12
    places = [tuple(int(n) for n in line.split(":")[1:3]) for line in lines]
    assert places == sorted(places)


def test_a_good_file_has_no_problems() -> None:
    assert validate_file(HERE / "good_scenarios" / "james-mails-steve.yaml") == []
    assert validate_text(GOOD_TEXT) == []


def test_the_path_is_shown_as_given_unless_named(tmp_path: Path) -> None:
    path = tmp_path / "lesson.yaml"
    path.write_text("name: x\n")
    assert validate_file(path)[0].startswith(f"{path}:1:1: nodes: missing")
    assert validate_file(path, source_name="lesson.yaml")[0].startswith("lesson.yaml:1:1:")
    assert validate_text("name: x\n")[0].startswith("<scenario>:1:1:")


def test_a_missing_file_is_a_problem_not_a_traceback(tmp_path: Path) -> None:
    lines = validate_file(tmp_path / "nowhere.yaml", source_name="nowhere.yaml")
    assert lines == ["nowhere.yaml: cannot read the file: No such file or directory"]


def test_a_file_that_is_not_utf8_is_placed_at_the_bad_byte(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"name: x\ndescription: caf\xe9\n")
    assert validate_file(path, source_name="latin1.yaml") == [
        "latin1.yaml:2:17: the file is not UTF-8 text; save it as UTF-8"
    ]


def test_a_control_character_is_placed_and_named() -> None:
    assert validate_text("name: x\nseed: \x07\n", source_name="x.yaml") == [
        "x.yaml:2:7: the control character U+0007 is not allowed in YAML; remove it"
    ]


def test_an_alias_that_contains_itself_is_a_problem() -> None:
    lines = validate_text("name: &a [*a]\nnodes: {a: {kind: host}}\n", source_name="x.yaml")
    assert lines == [
        "x.yaml:1:7: name: must be text, got a list",
        "x.yaml:1:7: name[0]: an alias refers to a value that contains it",
    ]


def test_yaml_nested_too_deeply_is_a_problem_not_a_recursion_error() -> None:
    text = "name: " + "[" * 3000 + "]" * 3000 + "\n"
    assert validate_text(text, source_name="x.yaml") == [
        "x.yaml:1:1: the YAML is nested too deeply to be a scenario"
    ]


def test_keys_stay_the_text_written_so_numbers_can_name_nodes() -> None:
    text = (
        "name: x\nnodes: {1: {kind: host}, true: {kind: host}}\nlinks: [{between: ['1', 'true']}]\n"
    )
    assert validate_text(text) == []


def test_a_misspelt_required_key_is_reported_once_as_unknown() -> None:
    lines = validate_text(
        GOOD_TEXT.replace("password: atlas", "pasword: atlas"), source_name="x.yaml"
    )
    # Line 15 is steve's user; "  - {address: steve@usa.com, " is 29 characters.
    assert lines == ["x.yaml:15:30: users[1].pasword: unknown key; did you mean 'password'?"]


def test_an_unknown_key_far_from_any_lists_the_keys_there_are() -> None:
    lines = validate_text(GOOD_TEXT.replace("seed: 1", "colour: blue"), source_name="x.yaml")
    assert lines == [
        "x.yaml:2:1: colour: unknown key; expected one of name, description, seed, duration, "
        "nodes, links, dns, servers, users, messages, traffic, faults, telnet, web_servers, "
        "downloads, trace"
    ]


def test_a_problem_in_a_broken_item_does_not_hide_its_dangling_names() -> None:
    # The link has a bad latency (so it fails to validate) and a misspelt end: both are reported,
    # and the outage of that link is not also blamed for naming a link that does not exist.
    lines = validate_text(
        GOOD_TEXT.replace(
            "[india-mail, usa-mail], latency: 110ms", "[india-mail, usa-mial], latency: x"
        ),
        source_name="x.yaml",
    )
    assert [line.split(": ")[1] for line in lines] == ["links[1].between[1]", "links[1].latency"]


def test_a_node_whose_kind_is_broken_is_not_also_called_unknown() -> None:
    lines = validate_text(GOOD_TEXT.replace("{kind: host, site: USA}", "{kind: pc}"))
    assert len(lines) == 1
    assert "nodes.steve-pc.kind" in lines[0]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=200))
def test_any_text_gives_a_scenario_or_problems_never_a_traceback(text: str) -> None:
    try:
        load_scenario(text, source_name="fuzz.yaml")
    except ScenarioError as error:
        assert error.problems
        assert all(str(problem).startswith("fuzz.yaml") for problem in error.problems)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(min_value=0, max_value=len(GOOD_TEXT) - 1),
    st.integers(min_value=0, max_value=8),
    st.text(alphabet="-:[]{},'\" \n\tax0129@.&*!%", max_size=4),
)
def test_a_damaged_good_scenario_gives_problems_never_a_traceback(
    start: int, length: int, insert: str
) -> None:
    text = GOOD_TEXT[:start] + insert + GOOD_TEXT[start + length :]
    try:
        load_scenario(text, source_name="damaged.yaml")
    except ScenarioError as error:
        assert error.problems
        for problem in error.problems:
            assert problem.line >= 1 and problem.col >= 1
            assert problem.message


def test_a_problem_is_one_line_even_when_the_file_put_a_line_break_in_it() -> None:
    # Found by the mutation corpus: a domain 'india.com\n' was suggested as "did you mean".
    problem = Problem("x.yaml", 3, 4, "users[0].address", "did you mean 'india.com\n'?")
    assert str(problem) == "x.yaml:3:4: users[0].address: did you mean 'india.com\\n'?"
    text = GOOD_TEXT.replace("domains: [india.com]", 'domains: ["india.com\\n"]')
    lines = validate_text(text, source_name="x.yaml")
    assert lines and all("\n" not in line for line in lines)
    assert any("did you mean 'india.com\\n'?" in line for line in lines)
