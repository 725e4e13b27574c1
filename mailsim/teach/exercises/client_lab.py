"""Checks of notebook 09, "The Mail Client lab": what the grader found, read from its results."""

from __future__ import annotations

import re
from typing import Any

from mailsim.teach.checking import Verdict, same, same_set


def failed_situations(results: Any, student: str) -> set[str]:
    """The situations one student's client failed, from the grading's DataFrame."""
    mine = results[(results["student"] == student) & ~results["passed"]]
    return set(mine["situation"])


def check_failed_situations(answer: Any, results: Any, student: str) -> Verdict:
    """Which situations a student's client failed."""
    return same_set(
        answer,
        failed_situations(results, student),
        hint=f"read {student}'s column of the table: False marks a failed situation; a client "
        "that forgets dot-stuffing fails where the message holds a line of a single '.'",
    )


def refusal_code(result: Any) -> int:
    """The reply code of the server's line in a failed situation's evidence."""
    for line in result.evidence:
        found = re.match(r"S: (\d{3})", line)
        if found:
            return int(found.group(1))
    raise ValueError(f"no server reply in the evidence of {result.situation}")


def check_refusal_code(answer: Any, result: Any) -> Verdict:
    """The code the server answered a command sent too early with."""
    return same(
        answer,
        refusal_code(result),
        hint="the S: line of the evidence is the server's answer to the command sent too early; "
        "give its three digits as a number (its first digit 5 says: failed for good, the "
        "server will not go on with this session)",
    )
