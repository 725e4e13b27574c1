"""Every bundled scenario, and every extra one in tests/golden_scenarios, gives at its seed the
very trace, transcript and summary pinned in tests/golden/traces.json (see tests/golden_traces.py
for when and how to regenerate them)."""

from __future__ import annotations

import json

import pytest
from golden_traces import GOLDEN, fingerprint, pinned_names

PINNED = json.loads(GOLDEN.read_text())


def test_every_bundled_and_extra_golden_scenario_is_pinned() -> None:
    assert sorted(PINNED) == sorted(pinned_names())


@pytest.mark.parametrize("name", sorted(PINNED))
def test_bundled_scenario_output_is_byte_identical_to_the_pinned_run(name: str) -> None:
    got = fingerprint(name)
    want = PINNED[name]
    # Counts first: when they differ they say what changed, which a digest cannot.
    assert got["record_types"] == want["record_types"]
    assert got == want
