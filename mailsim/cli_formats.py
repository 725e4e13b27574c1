"""Machine-readable output of ``mailsim run``, ``validate`` and ``scenarios``: JSON and TSV.

People get boxed tables; programs (a pipe, a file, a notebook's ``!mailsim``) get data. With
``--format table|json|tsv`` the user chooses; without it, a table goes to a terminal and JSON
anywhere else. The JSON documents are described in ``docs/cli-output.md``, and a test holds the
two in step. TSV has a header row and one row per item, tabs and newlines inside values replaced
by spaces, so ``cut`` and ``awk`` can read it.

Standard library only, so ``mailsim --help`` stays fast.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

#: The values of ``--format``.
FORMATS = ("table", "json", "tsv")


def choose_format(asked: str | None, stream: TextIO | None = None) -> str:
    """``asked`` if given, else ``"table"`` for a terminal and ``"json"`` for anything else."""
    if asked is not None:
        return asked
    stream = stream if stream is not None else sys.stdout
    isatty = getattr(stream, "isatty", None)
    return "table" if isatty is not None and isatty() else "json"


def write_json(document: Any, stream: TextIO | None = None) -> None:
    """``document`` as indented JSON and a newline."""
    out = stream if stream is not None else sys.stdout
    out.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")


def write_tsv(
    header: Sequence[str], rows: Iterable[Sequence[Any]], stream: TextIO | None = None
) -> None:
    """A header row and ``rows``, tab-separated; None is written as an empty cell."""
    out = stream if stream is not None else sys.stdout
    out.write("\t".join(header) + "\n")
    for row in rows:
        out.write("\t".join(_cell(value) for value in row) + "\n")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    return text.replace("\t", " ").replace("\r", " ").replace("\n", " ")


def problem_record(problem: Any) -> dict[str, Any]:
    """A :class:`mailsim.scenario.Problem` (error or warning) as a JSON object."""
    return {
        "file": problem.path,
        "line": problem.line,
        "col": problem.col,
        "field": problem.field,
        "message": problem.message,
        "text": str(problem),
    }


#: Columns of ``mailsim validate --format tsv``.
VALIDATE_COLUMNS = ("scenario", "status", "file", "line", "col", "field", "message")


def validate_rows(checked: Sequence[dict[str, Any]]) -> list[list[Any]]:
    """One TSV row per problem and warning, and one ``ok`` row per scenario without either."""
    rows: list[list[Any]] = []
    for entry in checked:
        items = [("error", p) for p in entry["errors"]] + [
            ("warning", p) for p in entry["warnings"]
        ]
        if not items:
            rows.append([entry["scenario"], "ok", entry["file"], "", "", "", ""])
        for status, problem in items:
            rows.append(
                [
                    entry["scenario"],
                    status,
                    problem["file"],
                    problem["line"],
                    problem["col"],
                    problem["field"],
                    problem["message"],
                ]
            )
    return rows


#: Columns of ``mailsim run --format tsv``: one row per (message, recipient).
RUN_COLUMNS = (
    "id",
    "from",
    "to",
    "kind",
    "status",
    "attempts",
    "submitted_at",
    "delivered_at",
    "latency",
)
