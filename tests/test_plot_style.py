"""Shared wording of the figures: durations as people say them."""

from __future__ import annotations

import pytest

from mailsim.plot._style import human_duration


@pytest.mark.parametrize(
    ("seconds", "said"),
    [
        (0.084, "84 ms"),
        (0.9994, "999 ms"),
        (0.9996, "1 s"),  # rounds up to a second, so it is said in seconds
        (2.529, "2.53 s"),
        (59.94, "59.9 s"),
        (59.96, "1 min"),  # not "60 s"
        (2112, "35 min 12 s"),
        (3600, "1 h"),
        (5 * 86400 + 7300, "5 d 2 h"),
    ],
)
def test_a_duration_is_said_in_at_most_two_units_and_never_as_1000_ms(
    seconds: float, said: str
) -> None:
    assert human_duration(seconds) == said
