"""What is wrong with a scenario, said as a compiler says it: ``file:line:col: field: message``.

A :class:`Problem` is one mistake, found at one place of one file. The loader collects every
problem of a file before it gives up, so a student fixes them all in one round instead of one per
run, and :class:`ScenarioError` carries the whole list. The exit code that goes with it (2, bad
input) belongs to the CLI.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["Problem", "ScenarioError", "closest", "did_you_mean", "shown"]


@dataclass(frozen=True, slots=True)
class Problem:
    """One mistake in a scenario and where it is.

    Attributes:
        path: the file as the user should see it (as given on the command line, or a name such as
            ``<scenario>`` for text that came from no file).
        line: 1-based line of the offending value (or key); 0 when the problem has no place
            (an unreadable file).
        col: 1-based column; 0 together with ``line``.
        field: where in the scenario, as ``links[0].latency``; empty for problems of the file as a
            whole (YAML syntax, an empty file).
        message: what is wrong and what would be right, e.g.
            ``must be a duration like '120ms' or '30min', got '120 millis'``.
    """

    path: str
    line: int
    col: int
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}:{self.col}" if self.line else self.path
        # One problem, one line: a line break or control character that came from the file
        # (a key, a suggested name) is shown escaped, as repr() would.
        if self.field:
            return f"{where}: {_one_line(self.field)}: {_one_line(self.message)}"
        return f"{where}: {_one_line(self.message)}"


def _one_line(text: str) -> str:
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


class ScenarioError(ValueError):
    """A scenario could not be loaded; :attr:`problems` lists every reason, in file order.

    ``str()`` gives one line per problem, ready to print for the user.
    """

    def __init__(self, problems: Iterable[Problem]) -> None:
        #: Every problem found, sorted by line and column.
        self.problems: list[Problem] = list(problems)
        super().__init__("\n".join(str(problem) for problem in self.problems))

    @property
    def lines(self) -> list[str]:
        """The problems as printable lines."""
        return [str(problem) for problem in self.problems]


def closest(word: object, candidates: Iterable[str], *, cutoff: float = 0.6) -> str | None:
    """The candidate that ``word`` most likely misspells, or None when none is close.

    Case is ignored when comparing (``India-Mail`` finds ``india-mail``), and the suggestion is
    returned as the candidate is spelt.
    """
    if not isinstance(word, str) or not word:
        return None
    spelt = {candidate.lower(): candidate for candidate in candidates}
    matches = difflib.get_close_matches(word.lower(), list(spelt), n=1, cutoff=cutoff)
    return spelt[matches[0]] if matches else None


def did_you_mean(word: object, candidates: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` when ``word`` is close to a candidate, else an empty string."""
    match = closest(word, candidates)
    return f"; did you mean '{match}'?" if match is not None else ""


def shown(value: object) -> str:
    """A value as a student wrote it in YAML, for ``got ...`` in messages.

    Text is quoted (``'120 millis'``), ``None`` is ``null``, booleans are ``true``/``false``, and
    collections are named rather than dumped.
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        text = value if len(value) <= 60 else value[:57] + "..."
        if "'" in text or not text.isprintable():
            return repr(text)
        return f"'{text}'"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    return repr(value)
