"""The comparisons exercise checks are made of: right, not yet with a hint, and "answer first"."""

from __future__ import annotations

from mailsim.teach import Verdict, close_to, same, same_mapping, same_set


def test_a_verdict_shows_right_or_not_yet_with_its_hint() -> None:
    assert repr(Verdict(True)) == "right"
    assert repr(Verdict(False, "count the crossings")) == "not yet, hint: count the crossings"
    assert Verdict(True) and not Verdict(False, "x")


def test_the_placeholder_asks_for_an_answer_instead_of_judging_it() -> None:
    for check in (
        close_to(..., 1.0, tolerance=0.1, hint="h"),
        same(..., "x", hint="h"),
        same_set(..., ["a"], hint="h"),
        same_mapping(..., {"a": 1}, hint="h"),
    ):
        assert not check and "replace the ..." in check.hint


def test_close_to_accepts_rounding_and_says_which_way_an_answer_is_off() -> None:
    assert close_to(0.45, 0.448, tolerance=0.005, hint="h")
    low = close_to(0.3, 0.448, tolerance=0.005, hint="count again", unit="s")
    assert not low and low.hint == "0.3 s is too small; count again"
    assert "too large" in close_to(9, 0.448, tolerance=0.005, hint="h").hint
    assert "should be a number" in close_to("0.448", 0.448, tolerance=0.005, hint="h").hint
    assert not close_to(True, 1, tolerance=0.5, hint="h")  # a bool is not a number


def test_same_compares_texts_without_case_or_outer_spaces() -> None:
    assert same(" Pipelining ", "PIPELINING", hint="h")
    assert same(354, 354, hint="h")
    assert not same(250, 354, hint="look at the reply to DATA")
    assert same(["a"], ["a"], hint="h") and not same({"a"}, 3, hint="h")


def test_same_set_counts_what_is_missing_and_what_is_extra() -> None:
    assert same_set(["EHLO", "mail"], {"MAIL", "ehlo"}, hint="h")
    verdict = same_set(["a", "z"], ["a", "b", "c"], hint="h")
    assert verdict.hint == "2 missing and 1 that should not be there; h"
    assert not same_set("abc", ["a", "b", "c"], hint="h")


def test_same_mapping_names_the_first_wrong_key_without_its_value() -> None:
    expected = {"m1": "temporary", "m2": "permanent"}
    assert same_mapping({"M1": "Temporary", "m2": "permanent"}, expected, hint="h")
    verdict = same_mapping({"m1": "temporary", "m2": "temporary"}, expected, hint="h")
    assert verdict.hint == "look again at 'm2'; h" and "permanent" not in verdict.hint
    assert "no answer for 'm2'" in same_mapping({"m1": "temporary"}, expected, hint="h").hint
    assert "not one of the keys" in same_mapping({**expected, "m9": "x"}, expected, hint="h").hint
