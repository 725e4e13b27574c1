"""Load a study file, or build a study in Python, and check every combination before any runs.

The study file is read like a scenario (:func:`mailsim.scenario.loader.parse_yaml` keeps every
line and column), its keys checked by :class:`mailsim.study.schema.StudyFile`, and then each
combination of parameter values is applied to the scenario and validated, so a value that does
not fit its field (``down_for: 3x``) is reported at its line and column in the study file, and a
combination that makes the scenario invalid (``policy: postfix`` where the scenario sets a fixed
interval) is named, all before a minute is spent running. Nothing here raises anything but
:class:`StudyError` for what a user wrote.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from mailsim.scenario.errors import Problem, ScenarioError, did_you_mean
from mailsim.scenario.overrides import Override, in_context, parse_field_path, yaml_text
from mailsim.study.grid import Parameter, PlotChoice, Point, Study, grid_points, shown_path
from mailsim.study.metrics import DEFAULT_METRICS, MetricSpec, check_metric
from mailsim.study.schema import MAX_RUNS, StudyFile

if TYPE_CHECKING:
    from mailsim.scenario.schema import Scenario

__all__ = [
    "StudyError",
    "build_study",
    "bundled_studies",
    "find_study",
    "is_study_file",
    "load_study",
    "metric_problems",
]


class StudyError(ScenarioError):
    """A study could not be loaded; :attr:`problems` lists every reason, one line each."""


def studies_dir() -> Path:
    """The folder of the bundled studies (``scenarios/studies/`` of a checkout)."""
    return Path(str(resources.files("mailsim") / "scenarios" / "studies"))


def bundled_studies() -> list[str]:
    """The names of the bundled studies."""
    return sorted(path.stem for path in studies_dir().glob("*.yaml") if _is_study(path))


def find_study(name_or_path: str | os.PathLike[str]) -> Path:
    """The study file for a path or the name of a bundled study (``outage-study``).

    Raises:
        FileNotFoundError: neither; the message lists the bundled studies.
    """
    path = Path(name_or_path)
    if path.is_file():
        return path
    candidate = studies_dir() / f"{path.stem}.yaml"
    if len(path.parts) == 1 and candidate.is_file():
        return candidate
    raise FileNotFoundError(
        f"{os.fspath(name_or_path)}: no such file, and no bundled study of that name "
        f"(bundled: {', '.join(bundled_studies())})"
    )


def is_study_file(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` holds a study rather than a scenario: a study names its ``scenario:``."""
    return _is_study(Path(path))


def _is_study(path: Path) -> bool:
    from mailsim.scenario.loader import parse_yaml

    try:
        data, _, _ = parse_yaml(path.read_text(encoding="utf-8-sig"), str(path))
    except (OSError, UnicodeDecodeError):
        return False
    return isinstance(data, dict) and "scenario" in data


# --------------------------------------------------------------------------------------------
# From a file
# --------------------------------------------------------------------------------------------


def load_study(path: str | os.PathLike[str], *, source_name: str | None = None) -> Study:
    """Load a study file and validate every combination of its parameters.

    Args:
        path: the study file, or the name of a bundled study.
        source_name: the name shown in problems (default: the path as given).

    Raises:
        StudyError: with every problem, each at its line and column.
        FileNotFoundError: no such file and no bundled study of that name.
    """
    from mailsim.scenario.loader import parse_yaml, place, read_text, validate_document

    file = find_study(path)
    name = source_name if source_name is not None else shown_path(file)
    try:
        text = read_text(file, name)
    except ScenarioError as error:
        raise StudyError(error.problems) from None
    data, source, problems = parse_yaml(text, name)
    if not isinstance(data, dict):
        if not problems:
            line, col = source.position(())
            problems.append(
                Problem(
                    name,
                    line if isinstance(data, (list, str, int, float)) else 1,
                    col if isinstance(data, (list, str, int, float)) else 1,
                    "",
                    "a study is a mapping with at least scenario: and parameters:",
                )
            )
        raise StudyError(problems)
    model, problems = validate_document(StudyFile, data, source, name, problems)
    placer = place(problems, name, data, source)

    def where(loc: tuple[str | int, ...]) -> tuple[int, int]:
        return source.position(loc)

    def complain(loc: tuple[str | int, ...], message: str, *, at_key: bool = False) -> None:
        placer.add(loc, message, at_key=at_key)

    fixed = _overrides_of(data.get("set"), "set", name, where, complain)
    raw = data.get("parameters")
    parameters = _parameters_of(raw, name, where, complain)
    if isinstance(model, StudyFile):
        _check_consistency(model, fixed, parameters, complain)
    reference = model.scenario if isinstance(model, StudyFile) else data.get("scenario")
    if not isinstance(reference, str):
        raise StudyError(_sorted(problems))
    scenario_file, scenario_ref = _resolve_scenario(reference, file, name, where, problems)
    scenario_name = shown_path(scenario_file)

    def load_point(overrides: Sequence[Override]) -> Scenario:
        from mailsim.scenario.loader import load_scenario

        return load_scenario(scenario_file, source_name=scenario_name, overrides=overrides)

    if problems or not isinstance(model, StudyFile):
        # Before giving up, check each value alone too, so one round fixes them all.
        problems.extend(_value_problems(load_point, fixed, parameters, name))
        raise StudyError(_sorted(set(problems)))

    return _assemble(
        name=model.name or file.stem,
        description=model.description,
        source=name,
        scenario_ref=scenario_ref,
        load_point=load_point,
        seed=model.seed,
        replications=model.replications,
        fixed=fixed,
        parameters=parameters,
        metrics=tuple(model.metrics),
        plot=model.plot.x,
        lines=model.plot.lines,
        plot_metrics=model.plot.metrics,
        too_many=lambda message: Problem(name, *where(("replications",)), "replications", message),
    )


def _overrides_of(
    raw: Any,
    section: str,
    name: str,
    where: Callable[[tuple[str | int, ...]], tuple[int, int]],
    complain: Callable[..., None],
) -> tuple[Override, ...]:
    """The overrides of ``set:`` (one value each) from the raw data, placed at their values."""
    if not isinstance(raw, dict):
        return ()  # the schema has said what is wrong
    out = []
    for key, value in raw.items():
        path = _path_or_complain(key, (section, key), complain)
        if path is not None:
            out.append(Override(path, value, name, *where((section, key))))
    return tuple(out)


def _path_or_complain(
    key: Any, loc: tuple[str | int, ...], complain: Callable[..., None]
) -> tuple[str | int, ...] | None:
    try:
        return parse_field_path(str(key))
    except ValueError as error:
        complain(loc, str(error), at_key=True)
        return None


def _parameters_of(
    raw: Any,
    name: str,
    where: Callable[[tuple[str | int, ...]], tuple[int, int]],
    complain: Callable[..., None],
) -> tuple[Parameter, ...]:
    if not isinstance(raw, dict):
        return ()
    out = []
    for key, values in raw.items():
        path = _path_or_complain(key, ("parameters", key), complain)
        if not isinstance(values, list) or not values:
            complain(
                ("parameters", key),
                "must be a list of the values to try, like [1h, 3h, 6h] or [fixed, postfix]",
            )
            continue
        seen: list[Any] = []
        for index, value in enumerate(values):
            if value in seen:
                complain(("parameters", key, index), "this value is already in the list")
            seen.append(value)
        if path is not None:
            overrides = tuple(
                Override(path, value, name, *where(("parameters", key, index)))
                for index, value in enumerate(values)
            )
            out.append(Parameter(str(key), tuple(values), overrides))
    return tuple(out)


def _check_consistency(
    model: StudyFile,
    fixed: Sequence[Override],
    parameters: Sequence[Parameter],
    complain: Callable[..., None],
) -> None:
    """What no single key can know: a field both set and varied, the plot's choices, repeats."""
    varied = [parameter.overrides[0] for parameter in parameters]
    for index, override in enumerate(varied):
        for other in [*fixed, *varied[:index]]:
            if _conflict(override.field, other.field, fixed=other in fixed):
                section = "set" if other in fixed else "parameters"
                complain(
                    ("parameters", parameters[index].field),
                    f"overlaps {section} '{other.field}'; a field is either set or varied, once",
                    at_key=True,
                )
    fields = [parameter.field for parameter in parameters]
    for key in ("x", "lines"):
        chosen = getattr(model.plot, key)
        if chosen is not None and chosen not in fields:
            expected = ", ".join(fields) if fields else "none: the study has no parameters"
            complain(
                ("plot", key),
                f"'{chosen}' is not a parameter of this study (parameters: {expected})"
                f"{did_you_mean(chosen, fields)}",
            )
    if model.plot.x is not None and model.plot.x == model.plot.lines:
        complain(("plot", "lines"), "is the same parameter as plot.x; choose another one")
    for index, metric in enumerate(model.metrics):
        if metric in model.metrics[:index]:
            complain(("metrics", index), f"'{metric}' is already in the list")
    for index, metric in enumerate(model.plot.metrics or []):
        if metric not in model.metrics:
            complain(
                ("plot", "metrics", index),
                f"'{metric}' is not collected; add it to metrics: or choose one of "
                f"{', '.join(model.metrics)}",
            )


def _inside(inner: str, outer: str) -> bool:
    return inner == outer or inner.startswith((outer + ".", outer + "["))


def _conflict(varied: str, other: str, *, fixed: bool) -> bool:
    """Whether a varied field clashes with another override. A varied field may lie inside a
    fixed one (``set: {servers.retry: {policy: fixed}}`` then ``servers.retry.policy`` varied:
    parameters apply after ``set:``), but never replace it, nor overlap another varied field."""
    if fixed:
        return _inside(other, varied)
    return _inside(varied, other) or _inside(other, varied)


def _value_problems(
    load_point: Callable[[Sequence[Override]], Scenario],
    fixed: Sequence[Override],
    parameters: Sequence[Parameter],
    origin: str,
) -> list[Problem]:
    """The problems of each fixed and varied value on its own that lie in the study file."""
    found: list[Problem] = []
    singles = [(override,) for override in fixed] + [
        (override,) for parameter in parameters for override in parameter.overrides
    ]
    for overrides in singles:
        try:
            load_point(overrides)
        except ScenarioError as error:
            found.extend(problem for problem in error.problems if problem.path == origin)
    return found


def _resolve_scenario(
    ref: str,
    study: Path,
    name: str,
    where: Callable[[tuple[str | int, ...]], tuple[int, int]],
    problems: Sequence[Problem] = (),
) -> tuple[Path, str]:
    """The scenario file and the name ``mailsim run`` reaches it by from the current folder."""
    from mailsim.scenario.catalog import bundled, bundled_dir

    beside = study.parent / ref
    if beside.is_file():
        return beside, shown_path(beside)
    stem = Path(ref).stem if ref.endswith((".yaml", ".yml")) else ref
    candidate = bundled_dir() / f"{stem}.yaml"
    if len(Path(ref).parts) == 1 and candidate.is_file():
        return candidate, stem
    names = [bundled_name for bundled_name, _ in bundled()]
    suggestion = did_you_mean(stem, names)
    expected = suggestion or f"; give a path from the study's folder or one of {', '.join(names)}"
    raise StudyError(
        [
            *problems,
            Problem(
                name,
                *where(("scenario",)),
                "scenario",
                f"no file {shown_path(beside)} and no bundled scenario '{ref}'{expected}",
            ),
        ]
    )


# --------------------------------------------------------------------------------------------
# From Python
# --------------------------------------------------------------------------------------------


def build_study(
    scenario: Scenario | str | os.PathLike[str],
    *,
    grid: Mapping[str, Sequence[Any]] | None = None,
    fixed: Mapping[str, Any] | None = None,
    replications: int = 10,
    seed: int | None = None,
    metrics: Sequence[MetricSpec] | None = None,
    name: str | None = None,
) -> Study:
    """A study of ``scenario`` (a model, a scenario file, or a bundled name) built in Python.

    Args:
        scenario: what is varied.
        grid: field path -> values to try, like ``{"faults[0].down_for": ["1h", "3h"]}``.
        fixed: field path -> value, for every run.
        replications: runs per combination (seeds ``seed``, ``seed + 1``, ...).
        seed: the base seed (default: the scenario's).
        metrics: names (see :mod:`mailsim.study.metrics`) or ``(name, function)`` pairs.
        name: a title (default: the scenario's name).

    Raises:
        StudyError: a bad path, value, metric or combination; one line each, named by field.
    """
    from mailsim.scenario.catalog import find
    from mailsim.scenario.loader import load_scenario, revalidate
    from mailsim.scenario.schema import Scenario as ScenarioModel

    problems: list[Problem] = []

    def complain_at(origin: str) -> Callable[..., None]:
        def complain(loc: tuple[str | int, ...], message: str, *, at_key: bool = False) -> None:
            field = str(loc[1]) if len(loc) > 1 else ""
            problems.append(Problem(origin, 0, 0, field, message))

        return complain

    def nowhere(loc: tuple[str | int, ...]) -> tuple[int, int]:
        return (0, 0)

    fixed_overrides = _overrides_of(
        dict(fixed or {}), "fixed", "fixed", nowhere, complain_at("fixed")
    )
    grid_data = {key: list(values) for key, values in (grid or {}).items()}
    parameters = _parameters_of(grid_data, "grid", nowhere, complain_at("grid"))
    for index, parameter in enumerate(parameters):
        for other in (*fixed_overrides, *(p.overrides[0] for p in parameters[:index])):
            if _conflict(parameter.field, other.field, fixed=other in fixed_overrides):
                problems.append(Problem("grid", 0, 0, parameter.field, f"overlaps '{other.field}'"))
                break
    specs = tuple(metrics) if metrics is not None else DEFAULT_METRICS
    problems.extend(metric_problems(specs))
    if not isinstance(replications, int) or isinstance(replications, bool) or replications < 1:
        message = f"must be a whole number from 1, got {replications!r}"
        problems.append(Problem("replications", 0, 0, "", message))
    if seed is not None and (not isinstance(seed, int) or seed < 0):
        problems.append(Problem("seed", 0, 0, "", f"must be a whole number from 0, got {seed!r}"))
    if problems:
        raise StudyError(problems)

    if isinstance(scenario, ScenarioModel):
        model = scenario
        scenario_ref = None

        def load_point(overrides: Sequence[Override]) -> Scenario:
            return revalidate(model, overrides)

        title = name or model.name
    else:
        try:
            path = find(os.fspath(scenario))
        except FileNotFoundError as error:
            raise StudyError([Problem("scenario", 0, 0, "", str(error))]) from None
        bundled = not Path(os.fspath(scenario)).is_file()
        scenario_ref = path.stem if bundled else shown_path(path)
        shown = shown_path(path)

        def load_point(overrides: Sequence[Override]) -> Scenario:
            return load_scenario(path, source_name=shown, overrides=overrides)

        title = name or ""
    return _assemble(
        name=title,
        description="",
        source="<study>",
        scenario_ref=scenario_ref,
        load_point=load_point,
        seed=seed,
        replications=replications,
        fixed=fixed_overrides,
        parameters=parameters,
        metrics=specs,
        plot=None,
        lines=None,
        plot_metrics=None,
        too_many=lambda message: Problem("replications", 0, 0, "", message),
    )


# --------------------------------------------------------------------------------------------
# Both: every combination validated
# --------------------------------------------------------------------------------------------


def metric_problems(specs: Sequence[MetricSpec]) -> list[Problem]:
    """What is wrong with metrics given in Python: names, or (name, function) pairs."""
    problems = []
    names: list[str] = []
    for spec in specs:
        if isinstance(spec, str):
            message = check_metric(spec)
            if message is not None:
                problems.append(Problem("metrics", 0, 0, "", message))
            names.append(spec)
        elif isinstance(spec, tuple) and len(spec) == 2 and callable(spec[1]):
            names.append(str(spec[0]))
        else:
            problems.append(
                Problem("metrics", 0, 0, "", f"{spec!r}: expected a name or (name, function)")
            )
    if not specs:
        problems.append(Problem("metrics", 0, 0, "", "name at least one metric"))
    for index, name in enumerate(names):
        if name in names[:index]:
            problems.append(Problem("metrics", 0, 0, "", f"'{name}' is given twice"))
    return problems


def _assemble(
    *,
    name: str,
    description: str,
    source: str,
    scenario_ref: str | None,
    load_point: Callable[[Sequence[Override]], Scenario],
    seed: int | None,
    replications: int,
    fixed: tuple[Override, ...],
    parameters: tuple[Parameter, ...],
    metrics: tuple[MetricSpec, ...],
    plot: str | None,
    lines: str | None,
    plot_metrics: Sequence[str] | None,
    too_many: Callable[[str], Problem],
) -> Study:
    combinations = grid_points(parameters)
    runs = len(combinations) * replications
    if runs > MAX_RUNS:
        raise StudyError(
            [
                too_many(
                    f"{len(combinations)} combinations x {replications} replications is {runs} "
                    f"runs, more than the {MAX_RUNS} a study may ask for; try fewer"
                )
            ]
        )
    try:
        base = load_point(fixed)
    except ScenarioError as error:
        raise StudyError(error.problems) from None
    problems: list[Problem] = []
    points: list[Point] = []
    for index, combination in enumerate(combinations):
        overrides = (*fixed, *combination)
        try:
            scenario = load_point(overrides)
        except ScenarioError as error:
            problems.extend(in_context(error.problems, combination))
            continue
        points.append(
            Point(
                index=index,
                overrides=overrides,
                labels={
                    p.field: yaml_text(o.value)
                    for p, o in zip(parameters, combination, strict=True)
                },
                numbers={
                    p.field: _number_at(scenario, o.path)
                    for p, o in zip(parameters, combination, strict=True)
                },
                scenario=scenario,
            )
        )
    if problems:
        raise StudyError(_sorted(set(problems)))
    fields = [parameter.field for parameter in parameters]
    names = [spec if isinstance(spec, str) else spec[0] for spec in metrics]
    choice = PlotChoice(
        x=plot or (fields[0] if fields else None),
        lines=lines or next((f for f in fields if f != (plot or fields[0])), None),
        metrics=tuple(plot_metrics or names[:2]),
    )
    return Study(
        name=name or base.name,
        description=description,
        source=source,
        scenario_ref=scenario_ref,
        base_seed=seed if seed is not None else base.seed,
        replications=replications,
        fixed=fixed,
        parameters=parameters,
        metrics=metrics,
        points=tuple(points),
        plot=choice,
    )


def _number_at(scenario: Scenario, path: Sequence[str | int]) -> float | None:
    """The validated value at ``path`` when it is a number (seconds for ``3h``), else None."""
    value: Any = scenario
    for part in path:
        if isinstance(value, BaseModel) and isinstance(part, str):
            fields = type(value).model_fields
            name = next((key for key, info in fields.items() if part in (key, info.alias)), None)
            if name is None:
                return None
            value = getattr(value, name)
            continue
        in_mapping = isinstance(value, dict) and part in value
        in_list = isinstance(value, (list, tuple)) and isinstance(part, int) and part < len(value)
        if not (in_mapping or in_list):
            return None
        value = value[part]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _sorted(problems: Sequence[Problem] | set[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: (p.path, p.line, p.col, p.field, p.message))
