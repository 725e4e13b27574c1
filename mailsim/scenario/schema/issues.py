"""A problem in a scenario, placed by its path in the YAML data (``links[0].between[1]``)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    pass


Loc = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Issue:
    """A problem found by :func:`check_references`, placed by its path in the scenario data.

    Attributes:
        loc: keys and indices from the top of the YAML, like ``("links", 0, "between", 1)``.
        message: what is wrong and what would be right.
        at_key: point at the key rather than at its value (a key that should not be there).
    """

    loc: Loc
    message: str
    at_key: bool = False

    def __str__(self) -> str:
        return f"{dotted(self.loc)}: {self.message}"


def dotted(loc: Iterable[str | int]) -> str:
    """A path as a student reads it: ``links[0].between[1]``."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text
