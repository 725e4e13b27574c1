"""Change one field of a scenario by its path: ``faults[0].down_for=3h``, ``servers.retry=...``.

An :class:`Override` names a field the way an error message does (``links[1].latency``) and gives
it a value as YAML would (``3h``, ``exim``, ``[1, 2]``, ``{interval: 5min}``). Overrides are applied
to the plain data read from the YAML, before validation, so an overridden value is checked exactly
as if it had been written in the file. A problem with an overridden field is reported where the
override was given (``--set``, or the line and column of a study file), never at the scenario's
line that no longer holds the value. This is how ``mailsim run --set`` re-runs one run of a
parameter study by hand.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from mailsim.scenario.errors import Problem, shown
from mailsim.scenario.schema.issues import Loc, dotted

__all__ = [
    "Override",
    "apply_overrides",
    "in_context",
    "parse_assignment",
    "parse_field_path",
    "relocate",
    "yaml_text",
]

#: A key in a field path: what node names and field names are made of (no dots: they separate).
_KEY = re.compile(r"[A-Za-z0-9_-]+")
#: A key in brackets and quotes, for a node name that has dots in it: ``nodes["mail.example"]``.
_QUOTED_KEY = re.compile(r"\[(?:\"([^\"]+)\"|'([^']+)')\]")
_INDEX = re.compile(r"\[([0-9]+)\]")
_PATH_HINT = "a field path like faults[0].down_for or servers.retry.policy"


@dataclass(frozen=True, slots=True)
class Override:
    """A new value for the scenario field at ``path``, and where it was asked for.

    Attributes:
        path: keys and list indices from the top, like ``("faults", 0, "down_for")``.
        value: the value as plain YAML data (``"3h"``, ``5``, ``{"interval": "5min"}``).
        origin: the file that gave it (a study file), or ``--set`` for the command line.
        line: 1-based line of the value in ``origin``; 0 when it has no place (``--set``).
        col: 1-based column; 0 together with ``line``.
    """

    path: Loc
    value: Any
    origin: str = "--set"
    line: int = 0
    col: int = 0

    @property
    def field(self) -> str:
        """The path as a student writes it: ``faults[0].down_for``."""
        return dotted(self.path)

    def assignment(self) -> str:
        """``PATH=VALUE`` as ``mailsim run --set`` takes it back."""
        return f"{self.field}={yaml_text(self.value)}"

    def problem(self, field: str, message: str) -> Problem:
        """A problem placed where this override was given."""
        return Problem(self.origin, self.line, self.col, field, message)


def parse_field_path(text: str) -> Loc:
    """``faults[0].down_for`` as ``("faults", 0, "down_for")``.

    Keys are separated by dots, list items are numbered in brackets from 0, and a key with dots
    in it (a node called ``mail.example``) is written in brackets and quotes.

    Raises:
        ValueError: the text is not such a path; the message says what is wrong.
    """
    parts: list[str | int] = []
    position = 0
    expect_key = True
    while position < len(text):
        if expect_key or text[position] == ".":
            if not expect_key:
                position += 1
            match = _KEY.match(text, position)
            if match is None:
                found = text[position] if position < len(text) else "the end"
                raise ValueError(
                    f"{text!r} is not {_PATH_HINT}: expected a name at {found!r} "
                    f"(character {position + 1})"
                )
            parts.append(match.group())
            position = match.end()
            expect_key = False
            continue
        quoted = _QUOTED_KEY.match(text, position)
        index = _INDEX.match(text, position)
        if quoted is not None:
            parts.append(quoted.group(1) or quoted.group(2))
            position = quoted.end()
        elif index is not None:
            parts.append(int(index.group(1)))
            position = index.end()
        else:
            raise ValueError(
                f"{text!r} is not {_PATH_HINT}: unexpected {text[position]!r} "
                f"(character {position + 1}); list items are numbered like [0]"
            )
    if not parts:
        raise ValueError(f"the field path is empty; expected {_PATH_HINT}")
    return tuple(parts)


def parse_assignment(text: str, *, origin: str = "--set") -> Override:
    """``PATH=VALUE`` from the command line, the value read as YAML (``3h``, ``[1, 2]``).

    Raises:
        ValueError: no ``=``, a bad path, or a value YAML cannot read; the message says which.
    """
    from mailsim.scenario.loader import parse_yaml

    path_text, equals, value_text = text.partition("=")
    if not equals:
        raise ValueError(
            f"{text!r}: expected PATH=VALUE, like faults[0].down_for=3h or "
            "servers.retry.policy=exim"
        )
    path = parse_field_path(path_text.strip())
    if not value_text.strip():
        raise ValueError(f"{text!r}: no value after '='; write null to clear a field")
    value, _, problems = parse_yaml(value_text, origin)
    if problems or not isinstance(value, (str, int, float, bool, list, dict, type(None))):
        reason = problems[0].message if problems else "it is not a YAML value"
        raise ValueError(f"{text!r}: the value cannot be read ({reason})")
    return Override(path, value, origin)


def yaml_text(value: Any) -> str:
    """A value written so that YAML reads it back the same: ``3h``, ``exim``, ``true``, ``[1, 2]``.

    Text stays bare when YAML would read the bare word as the same text; anything else is
    written as JSON, which is YAML too.
    """
    if isinstance(value, str):
        from mailsim.scenario.loader import parse_yaml

        data, _, problems = parse_yaml(value, "<value>")
        if not problems and data == value and value == value.strip() and "," not in value:
            return value
    return json.dumps(value, ensure_ascii=False)


def apply_overrides(data: Any, overrides: Sequence[Override]) -> tuple[Any, list[Problem]]:
    """A copy of scenario ``data`` with every override applied, and the overrides that could not be.

    A missing mapping key on the way is created (``servers.retry.policy`` in a scenario without
    a ``servers:`` section), so validation can say what is wrong with it; a list item must exist
    already, since an override changes a scenario rather than growing it.
    """
    result = copy.deepcopy(data)
    problems: list[Problem] = []
    for override in overrides:
        try:
            result = _assign(result, override.path, copy.deepcopy(override.value), ())
        except _PathError as error:
            problems.append(override.problem(dotted(error.loc), error.message))
    return result, problems


class _PathError(Exception):
    def __init__(self, loc: Loc, message: str) -> None:
        super().__init__(message)
        self.loc = loc
        self.message = message


def _assign(container: Any, path: Loc, value: Any, done: Loc) -> Any:
    """``container`` with ``value`` put at ``path`` below it (``done`` is the path above)."""
    head, rest = path[0], path[1:]
    here = (*done, head)
    if isinstance(head, int):
        if not isinstance(container, list):
            raise _PathError(
                here,
                f"{dotted(done) or 'the scenario'} is {shown(container)}, not a list; "
                "a number in brackets picks an item of a list",
            )
        if head >= len(container):
            items = f"{len(container)} item{'s' if len(container) != 1 else ''}"
            raise _PathError(
                here,
                f"{dotted(done)} has {items}, numbered from 0; an override changes an item "
                "that the scenario has",
            )
        container[head] = value if not rest else _assign(container[head], rest, value, here)
        return container
    if container is None:
        container = {}  # `servers:` with nothing after it is an empty mapping
    if not isinstance(container, dict):
        raise _PathError(
            here,
            f"{dotted(done) or 'the scenario'} is {shown(container)}, not a mapping, "
            f"so it has no field '{head}'",
        )
    if not rest:
        container[head] = value
    else:
        container[head] = _assign(container.get(head), rest, value, here)
    return container


def relocate(
    problems: Iterable[Problem], overrides: Sequence[Override], original: Any = None
) -> list[Problem]:
    """Problems with an overridden field moved to where its override was given.

    A problem belongs to an override when its field is the overridden one or lies inside it
    (``servers.retry.policy`` for an override of ``servers.retry``), or when it is a key that
    only the override brought in (``serverz`` of ``serverz.retry.policy``, absent from the
    ``original`` data); the most specific override wins. Other problems stay where they were.
    """
    moved: list[Problem] = []
    for problem in problems:
        owner = _owner(problem.field, overrides, original)
        moved.append(problem if owner is None else owner.problem(problem.field, problem.message))
    return moved


def _owner(field: str, overrides: Sequence[Override], original: Any) -> Override | None:
    best: Override | None = None
    for override in overrides:
        name = override.field
        inside = field == name or field.startswith((name + ".", name + "["))
        created = any(
            dotted(override.path[:end]) == field and not _exists(original, override.path[:end])
            for end in range(1, len(override.path))
        )
        if (inside or created) and (best is None or len(name) > len(best.field)):
            best = override
    return best


def _exists(data: Any, loc: Loc) -> bool:
    for part in loc:
        in_list = isinstance(part, int) and isinstance(data, list) and part < len(data)
        in_mapping = isinstance(part, str) and isinstance(data, dict) and part in data
        if not (in_list or in_mapping):
            return False
        data = data[part]
    return True


def in_context(problems: Sequence[Problem], combination: Sequence[Override]) -> list[Problem]:
    """The problems of a scenario changed by ``combination``; those found in the scenario file
    (a field the overrides left, now in conflict with one they set) end by naming them."""
    origins = {override.origin for override in combination}
    context = ", ".join(
        f"--set {override.assignment()}" if override.origin == "--set" else override.assignment()
        for override in combination
    )
    return [
        problem
        if problem.path in origins or not context
        else Problem(
            problem.path,
            problem.line,
            problem.col,
            problem.field,
            f"{problem.message} (with {context})",
        )
        for problem in problems
    ]
