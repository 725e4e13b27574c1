"""What is derived from a trace: the transcript, the summary with its books, and DataFrames.

Everything here reads records only (docs/design.md, 2), so ``mailsim plot DIR`` and a notebook
can rebuild any of it from an ``events.jsonl`` file long after the run. The transcript lives in
:mod:`mailsim.trace.transcript` and the books and summary in :mod:`mailsim.trace.books`; both are
re-exported here, where the DataFrames are made.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mailsim.trace.books import (
    OUTCOMES,
    Books,
    DeliveryRow,
    Ledger,
    reconcile,
    summary,
    summary_document,
    write_summary,
    write_summary_stream,
)
from mailsim.trace.clock import format_time
from mailsim.trace.transcript import TranscriptWriter, transcript

Record = dict[str, Any]

__all__ = [
    "OUTCOMES",
    "Books",
    "DeliveryRow",
    "Ledger",
    "TranscriptWriter",
    "books_frame",
    "deliveries_frame",
    "events_frame",
    "format_time",
    "reconcile",
    "summary",
    "summary_document",
    "transcript",
    "write_summary",
    "write_summary_stream",
]


def events_frame(records: Sequence[Record]) -> Any:
    """All records as a pandas DataFrame (columns: t, type, then the union of fields)."""
    import pandas as pd

    return pd.DataFrame.from_records(list(records))


def books_frame(books: Books) -> Any:
    """One row per (message, recipient) of ``books`` with outcome, attempts and latency."""
    import pandas as pd

    rows = [row.as_json() for row in books.rows.values()]
    columns = list(DeliveryRow("", "", "").as_json())
    return pd.DataFrame.from_records(rows, columns=columns)


def deliveries_frame(records: Sequence[Record]) -> Any:
    """One row per (message, recipient) with outcome, attempts and latency, as a DataFrame."""
    return books_frame(reconcile(records))
