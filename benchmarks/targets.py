"""The one table ``make bench`` ends with: every target, what was measured, met or not, by how much.

A benchmark module's ``run()`` may put a list of :class:`Target` rows (as dicts, so the results
stay plain JSON) under the key ``"targets"``; ``benchmarks/run.py`` gathers them from every
module and prints them together. Rows without a limit are yardsticks measured in the same run
(a bare SimPy timeout, a naive SimPy model) that the targets are stated against.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Target:
    """One row: ``measured`` against ``limit`` (at most, unless ``at_least``), in ``unit``."""

    name: str
    measured: float | None
    limit: float | None = None
    unit: str = ""
    at_least: bool = False
    note: str = ""

    def row(self) -> dict[str, Any]:
        """The row as plain data, for results.json."""
        return asdict(self)


def verdict(row: dict[str, Any]) -> str:
    """``met (23% under)``, ``NOT met (1.4x over)``, ``yardstick`` or ``not measured``."""
    measured, limit = row["measured"], row["limit"]
    if measured is None:
        return "not measured"
    if limit is None:
        return "yardstick"
    if row["at_least"]:
        ok = measured >= limit
        ratio = measured / limit if limit else float("inf")
    else:
        ok = measured <= limit
        ratio = limit / measured if measured else float("inf")
    if ok:
        return f"met ({(1 - 1 / ratio) * 100:.0f}% margin)" if ratio < 100 else "met"
    return f"NOT met ({1 / ratio:.2f}x {'under' if row['at_least'] else 'over'})"


def _shown(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:,.2f}"


def table(rows: list[dict[str, Any]]) -> str:
    """The rows as an aligned text table."""
    head = ("target", "measured", "limit", "unit", "verdict")
    body = [
        (
            row["name"] + (f" [{row['note']}]" if row["note"] else ""),
            _shown(row["measured"]),
            ("at least " if row["at_least"] else "at most ") + _shown(row["limit"])
            if row["limit"] is not None
            else "",
            row["unit"],
            verdict(row),
        )
        for row in rows
    ]
    widths = [max(len(line[i]) for line in (head, *body)) for i in range(len(head))]
    out = ["  ".join(cell.ljust(width) for cell, width in zip(head, widths, strict=True))]
    out.append("  ".join("-" * width for width in widths))
    for line in body:
        out.append("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)))
    return "\n".join(out)
