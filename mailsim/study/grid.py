"""A study as data: its parameter grid, its replications, their seeds, and every run's command.

The grid is the full factorial of the parameters' values, in the order the study lists them (the
first parameter changes slowest). Every combination (a :class:`Point`) runs once per replication,
so run ``index = point * replications + replication``.

Seeds: replication ``r`` runs with seed ``base_seed + r``, whatever the point. Every combination
of one replication therefore sees the same random draws (common random numbers, as OMNeT++'s
``seed-set = ${repetition}``): the same messages at the same times, the same link failures, so a
difference between two parameter values is the parameters' doing, not the luck of the draw. The
replications differ from each other, and are independent: mailsim derives each named random
stream from the SHA-256 of the seed and the stream's name (:mod:`mailsim.rng`), so neighbouring
seeds give unrelated streams. Any run is repeated by hand with :meth:`Study.command`.
"""

from __future__ import annotations

import itertools
import os
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mailsim.scenario.overrides import Override, yaml_text
from mailsim.study.metrics import MetricSpec

if TYPE_CHECKING:
    from mailsim.scenario.schema import Scenario

__all__ = ["Parameter", "PlotChoice", "Point", "Run", "Study", "grid_points"]


@dataclass(frozen=True)
class Parameter:
    """One varied field: its path and the values to try, as written (plain YAML data)."""

    #: The field path, like ``faults[0].down_for``.
    field: str
    #: The values, as YAML data (``"3h"``, ``"exim"``, ``5``).
    values: tuple[Any, ...]
    #: One :class:`Override` per value, placed where the value was written.
    overrides: tuple[Override, ...]

    @property
    def labels(self) -> tuple[str, ...]:
        """The values as the study file writes them, for tables and figures: ``3h``, ``exim``."""
        return tuple(yaml_text(value) for value in self.values)


@dataclass(frozen=True)
class Point:
    """One combination of parameter values, with the scenario it makes (validated)."""

    index: int
    #: The overrides of this combination, fixed ones (``set:``) first.
    overrides: tuple[Override, ...]
    #: Parameter field -> value as written (``{"faults[0].down_for": "3h"}``).
    labels: dict[str, str]
    #: Parameter field -> the value in the validated scenario when it is a number (seconds for
    #: ``3h``), else None: where the point sits on a figure's axis.
    numbers: dict[str, float | None]
    scenario: Scenario = field(repr=False)


@dataclass(frozen=True)
class Run:
    """One simulation of a study: a point, a replication, and the seed they give."""

    index: int
    point: int
    replication: int
    seed: int


@dataclass(frozen=True)
class PlotChoice:
    """What ``sweep.png`` draws: metrics against parameter ``x``, one line per value of
    ``lines`` (None: a single line, or one per combination of the other parameters)."""

    x: str | None
    lines: str | None
    metrics: tuple[str, ...]


@dataclass(frozen=True)
class Study:
    """A validated parameter study, ready to run.

    Attributes:
        name: the title.
        source: the study file as given (``<study>`` for one built in Python).
        scenario_ref: how ``mailsim run`` reaches the scenario from here: a bundled name or a
            path (``None`` for a scenario object built in Python).
        base_seed: replication ``r`` runs with ``base_seed + r``.
        replications: runs per point.
        fixed: overrides applied to every run (the study's ``set:``).
        parameters: the varied fields, in grid order.
        metrics: what each run measures.
        points: every combination, each with its validated scenario.
        plot: what the figure shows.
    """

    name: str
    source: str
    scenario_ref: str | None
    base_seed: int
    replications: int
    fixed: tuple[Override, ...]
    parameters: tuple[Parameter, ...]
    metrics: tuple[MetricSpec, ...]
    points: tuple[Point, ...]
    plot: PlotChoice
    description: str = ""

    @property
    def metric_names(self) -> list[str]:
        """The metrics' names, in the order of the results' columns."""
        return [spec if isinstance(spec, str) else spec[0] for spec in self.metrics]

    def seed_of(self, replication: int) -> int:
        """The seed of replication ``replication`` (the same at every point: see the module)."""
        return self.base_seed + replication

    def runs(self) -> list[Run]:
        """Every run, by index."""
        return [
            Run(
                index=point.index * self.replications + replication,
                point=point.index,
                replication=replication,
                seed=self.seed_of(replication),
            )
            for point in self.points
            for replication in range(self.replications)
        ]

    def command(self, run: Run) -> str:
        """The ``mailsim run`` command line that repeats ``run`` by hand."""
        scenario = self.scenario_ref if self.scenario_ref is not None else "SCENARIO.yaml"
        words = ["mailsim", "run", scenario, "--seed", str(run.seed)]
        for override in self.points[run.point].overrides:
            words += ["--set", override.assignment()]
        return shlex.join(words)


def grid_points(parameters: Sequence[Parameter]) -> list[tuple[Override, ...]]:
    """The overrides of every combination, the first parameter changing slowest."""
    return list(itertools.product(*(parameter.overrides for parameter in parameters)))


def shown_path(path: str | os.PathLike[str]) -> str:
    """A path as short as it can be shown from the current folder (relative when inside it)."""
    text = os.fspath(path)
    try:
        relative = os.path.relpath(text)
    except ValueError:  # another drive on Windows
        return text
    return text if relative.startswith("..") else relative
