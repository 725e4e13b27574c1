"""The study file: which scenario, which fields to vary, how many replications, what to measure.

A study file is YAML, checked like a scenario: every mistake is reported as
``file:line:col: field: what is wrong; what is expected`` (``docs/studies.md`` documents each key;
a test keeps the two in step). Field paths and their values are checked in
:mod:`mailsim.study.loader`, against the scenario they change.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from mailsim.scenario.schema.fields import (
    NonEmptyText,
    Text,
    _empty_if_null,
    _fail,
    _whole,
)
from mailsim.study.metrics import DEFAULT_METRICS, check_metric

__all__ = ["MAX_RUNS", "PlotSection", "StudyFile"]

#: Most runs one study may ask for: a typo such as ``replications: 100000`` is caught before it
#: keeps a machine busy for a week (a whole class's hundreds of replications stay far below).
MAX_RUNS = 100_000


def _metric(value: Any) -> str:
    problem = check_metric(value)
    if problem is not None:
        _fail(problem)
    return str(value)


Metric = Annotated[str, BeforeValidator(_metric)]


class _StudySection(BaseModel):
    """Base of the study file's mappings: unknown keys are errors (the scenario's sections have
    their own base, documented in docs/scenario-language.md; these are in docs/studies.md)."""

    model_config = ConfigDict(extra="forbid")


class PlotSection(_StudySection):
    """What ``sweep.png`` shows (every key has a default)."""

    x: NonEmptyText | None = Field(
        default=None, description="the parameter along the x axis (default: the first)"
    )
    lines: NonEmptyText | None = Field(
        default=None, description="one line per value of this parameter (default: the second)"
    )
    metrics: list[Metric] | None = Field(
        default=None, description="the metrics drawn, one panel each (default: the first two)"
    )


class StudyFile(_StudySection):
    """A parameter study as written in its YAML file."""

    name: NonEmptyText | None = Field(default=None, description="a title (default: the file name)")
    description: Text = Field(default="", description="a longer text for the reader")
    scenario: NonEmptyText = Field(
        description="the scenario varied: a path from this file's folder, or a bundled name"
    )
    seed: Annotated[int | None, BeforeValidator(lambda v: v if v is None else _whole(0)(v))] = (
        Field(default=None, description="the base seed (default: the scenario's seed)")
    )
    replications: Annotated[int, BeforeValidator(_whole(1, MAX_RUNS))] = Field(
        default=10, description="runs per combination of parameter values, each with its seed"
    )
    fixed: Annotated[dict[str, Any], BeforeValidator(_empty_if_null(dict))] = Field(
        default_factory=dict,
        alias="set",
        description="fields changed for every run, by path, like {duration: 2d}",
    )
    parameters: Annotated[dict[str, Any], BeforeValidator(_empty_if_null(dict))] = Field(
        default_factory=dict,
        description="the fields varied, by path, each with a list of values to try",
    )
    metrics: Annotated[list[Metric], BeforeValidator(_empty_if_null(list))] = Field(
        default_factory=lambda: list(DEFAULT_METRICS), description="what each run measures"
    )
    plot: Annotated[PlotSection, BeforeValidator(_empty_if_null(dict))] = Field(
        default_factory=PlotSection, description="what the figure shows"
    )

    @field_validator("metrics")
    @classmethod
    def _some_metric(cls, value: list[str]) -> list[str]:
        if not value:
            _fail("must name at least one metric, like [latency_mean, attempts_mean]")
        return value
