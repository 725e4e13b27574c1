"""Small studies for the study tests: quick to run, with one deliberately failing combination."""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: A study of the bundled link-outage: 2 outage lengths x 2 policies x 3 replications = 12 runs
#: of a 6-hour day, about a second in all.
SMALL_STUDY = """\
# A small study for the tests.
name: small outage study
scenario: link-outage
seed: 40
replications: 3
set:
  duration: 6h
  servers.retry: {policy: fixed}
parameters:
  faults[0].down_for: [1h, 2h]
  servers.retry.policy: [fixed, postfix]
metrics: [latency_mean, attempts_mean, relay_connections, queue_peak, totals.connections]
"""


def write_small_study(folder: Path, text: str = SMALL_STUDY) -> Path:
    """The small study as a file in ``folder``."""
    path = folder / "small-study.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def fails_after_long_outages(result: Any) -> float:
    """A metric that raises for outages over an hour: a deliberately failing combination."""
    if result.scenario.faults[0].down_for > 3600:
        raise RuntimeError("deliberate failure after a long outage")
    return 1.0


def comparable(csv_text: str) -> list[list[str]]:
    """The rows of a results.csv without the wall_time column (the one that may differ)."""
    import csv
    import io

    rows = list(csv.reader(io.StringIO(csv_text)))
    drop = rows[0].index("wall_time")
    return [row[:drop] + row[drop + 1 :] for row in rows]
