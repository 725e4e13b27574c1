"""Parameter studies: a grid of scenario fields, replications with derived seeds, 95% intervals.

A study varies fields of one scenario by their paths (``faults[0].down_for``,
``servers.retry.policy``), runs every combination ``replications`` times (replication r with seed
``base + r``, the same at every combination: common random numbers), measures each run
(:mod:`mailsim.study.metrics`) and aggregates the replications into means with 95% confidence
intervals. Runs are independent tasks for this process, a local process pool, or a Dask cluster
(:mod:`mailsim.study.executors`), with identical results. ``docs/studies.md`` is the guide.

- :func:`sweep`: run a study (a file, a bundled name, or a scenario and a grid); a DataFrame back.
- :func:`load_study`, :func:`build_study`: a validated :class:`Study`, every combination checked.
- :func:`aggregate`: the means and intervals of a results DataFrame.
- :func:`run_study`: what ``mailsim sweep`` runs, with files, resume and progress.
"""

from __future__ import annotations

from mailsim.study.grid import Parameter, Point, Run, Study
from mailsim.study.loader import StudyError, build_study, bundled_studies, find_study, load_study
from mailsim.study.results import aggregate
from mailsim.study.sweep import SweepReport, run_study, sweep

__all__ = [
    "Parameter",
    "Point",
    "Run",
    "Study",
    "StudyError",
    "SweepReport",
    "aggregate",
    "build_study",
    "bundled_studies",
    "find_study",
    "load_study",
    "run_study",
    "sweep",
]
