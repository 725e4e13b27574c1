"""Checking a student's answer: the verdict, and the few ways an answer can be compared.

An exercise's check computes the expected value from the simulation (a trace, a run, a message)
and hands it, with the student's answer, to one of the comparisons here. Each returns a
:class:`Verdict`, which a notebook shows as ``right`` or ``not yet, hint: ...``. The hint says
where to look, never the value itself, so a student learns from a wrong answer.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

#: What a student's answer cell holds before the student writes anything.
PLACEHOLDER = Ellipsis

_FILL_IN = "replace the ... in the answer cell above with your answer, run that cell, then this one"


@dataclass(frozen=True)
class Verdict:
    """The outcome of one check: right, or not yet with a hint.

    Attributes:
        right: whether the answer is right.
        hint: what to look at again (empty when right).
    """

    right: bool
    hint: str = ""

    def __str__(self) -> str:
        return "right" if self.right else f"not yet, hint: {self.hint}"

    def __repr__(self) -> str:
        # A check cell's last expression: Jupyter shows this text, and the tests read it.
        return str(self)

    def __bool__(self) -> bool:
        return self.right


def _missing(answer: Any) -> bool:
    return answer is PLACEHOLDER or answer is None


def close_to(
    answer: Any, expected: float, *, tolerance: float, hint: str, unit: str = ""
) -> Verdict:
    """Right when ``answer`` is a number within ``tolerance`` of ``expected``.

    Args:
        answer: the student's number (int or float; a bool is not a number here).
        expected: the value computed from the simulation.
        tolerance: how far off an answer may be (in the answer's unit), for rounding.
        hint: what to look at when the answer is off.
        unit: the unit the answer is asked in, named in the hint when the answer is not a number.
    """
    if _missing(answer):
        return Verdict(False, _FILL_IN)
    if isinstance(answer, bool) or not isinstance(answer, (int, float)) or math.isnan(answer):
        wanted = f"a number{f' in {unit}' if unit else ''}"
        return Verdict(False, f"the answer should be {wanted}, got {answer!r}; {hint}")
    if abs(answer - expected) <= tolerance:
        return Verdict(True)
    direction = "too small" if answer < expected else "too large"
    return Verdict(False, f"{answer:g}{f' {unit}' if unit else ''} is {direction}; {hint}")


def same(
    answer: Any,
    expected: Any,
    *,
    hint: str,
    normalise: Callable[[Any], Any] | None = None,
) -> Verdict:
    """Right when ``answer`` equals ``expected`` (texts compared without case or outer spaces).

    Args:
        answer: the student's answer.
        expected: the value computed from the simulation.
        hint: what to look at when the answer differs.
        normalise: applied to both before comparing (default: texts are stripped and lowered,
            anything else is compared as it is).
    """
    if _missing(answer):
        return Verdict(False, _FILL_IN)
    norm = normalise or _plain
    try:
        if norm(answer) == norm(expected):
            return Verdict(True)
    except (TypeError, ValueError, AttributeError):
        pass
    return Verdict(False, hint)


def same_set(answer: Any, expected: Iterable[Any], *, hint: str) -> Verdict:
    """Right when ``answer`` (any collection) holds exactly the items of ``expected``, in any order.

    Texts are compared without case; the hint says how many items were missing or extra.
    """
    if _missing(answer):
        return Verdict(False, _FILL_IN)
    if isinstance(answer, (str, bytes)) or not isinstance(answer, Iterable):
        return Verdict(False, f"the answer should be a list or set, got {answer!r}; {hint}")
    given = {_plain(item) for item in answer}
    wanted = {_plain(item) for item in expected}
    if given == wanted:
        return Verdict(True)
    missing, extra = len(wanted - given), len(given - wanted)
    parts = []
    if missing:
        parts.append(f"{missing} missing")
    if extra:
        parts.append(f"{extra} that should not be there")
    return Verdict(False, f"{' and '.join(parts)}; {hint}")


def same_mapping(answer: Any, expected: dict[Any, Any], *, hint: str) -> Verdict:
    """Right when ``answer`` maps exactly the keys of ``expected`` to the same values.

    Keys and values that are texts are compared without case; the hint names the first key
    whose value is wrong (keys come from the question, so naming one gives nothing away).
    """
    if _missing(answer):
        return Verdict(False, _FILL_IN)
    if not isinstance(answer, dict):
        return Verdict(False, f"the answer should be a dict like {{key: value}}, got {answer!r}")
    given = {_plain(k): _plain(v) for k, v in answer.items()}
    wanted = {_plain(k): _plain(v) for k, v in expected.items()}
    if given == wanted:
        return Verdict(True)
    absent = [k for k in wanted if k not in given]
    if absent:
        return Verdict(False, f"no answer for {absent[0]!r}; {hint}")
    for key, value in wanted.items():
        if given[key] != value:
            return Verdict(False, f"look again at {key!r}; {hint}")
    extra = next(k for k in given if k not in wanted)
    return Verdict(False, f"{extra!r} is not one of the keys asked for; {hint}")


def _plain(value: Any) -> Any:
    if isinstance(value, str):
        return value.strip().lower()
    return value
