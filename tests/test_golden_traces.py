"""Every bundled scenario, and every extra one in tests/golden_scenarios, gives at its seed the
very trace, transcript and summary pinned in tests/golden/traces.json (see tests/golden_traces.py
for when and how to regenerate them); a run that streams its trace to files as it goes, as
``mailsim run`` does, writes the very same bytes."""

from __future__ import annotations

import json

import pytest
from golden_traces import GOLDEN, fingerprint, pinned_names, streamed_fingerprint

PINNED = json.loads(GOLDEN.read_text())
#: Also checked streamed: the busiest bundled run, the telnet one, the longest, crashes (resets
#: end connections), and the generated traffic.
STREAMED = (
    "busy-day",
    "seed-transcript",
    "bounce-after-days",
    "golden_scenarios/crash-and-greylisting",
    "golden_scenarios/traffic-mix",
    "golden_scenarios/notes-day",
)


def test_every_bundled_and_extra_golden_scenario_is_pinned() -> None:
    assert sorted(PINNED) == sorted(pinned_names())


def _same(got: dict, want: dict) -> None:
    # Counts first: when they differ they say what changed, which a digest cannot.
    assert got["record_types"] == want["record_types"]
    assert got == want


@pytest.mark.parametrize("name", sorted(PINNED))
def test_bundled_scenario_output_is_byte_identical_to_the_pinned_run(name: str) -> None:
    _same(fingerprint(name), PINNED[name])


@pytest.mark.parametrize("name", STREAMED)
def test_a_streamed_run_writes_the_pinned_bytes(name: str) -> None:
    _same(streamed_fingerprint(name), PINNED[name])
