"""``events.jsonl``: one JSON object per trace record, written as recorded or read back.

The format is a contract (docs/trace-events.md): keys in insertion order (``t`` and ``type``
first), compact separators, non-ASCII text as is. :class:`EventsWriter` is a recorder sink
that appends each record the moment it is emitted, so a run of any length holds none of its
trace in memory, and the file it writes is byte-identical to :func:`write_events` over the same
records.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any


def _default(value: Any) -> Any:
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    if isinstance(value, bytes):
        return value.decode("latin-1")
    raise TypeError(f"cannot write {type(value).__name__} to the trace")


# One encoder for every record: json.dumps with keyword arguments builds a new one per call,
# which cost more than the encoding itself on a busy run.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=_default)
_encode = _ENCODER.encode


def dumps_event(record: dict[str, Any]) -> str:
    """One record as a compact, deterministic JSON line (no newline)."""
    return _encode(record)


def write_events(records: Iterable[dict[str, Any]], out: IO[str]) -> None:
    """Write ``records`` to ``out`` as JSON lines."""
    write = out.write
    for record in records:
        write(_encode(record) + "\n")


def load_events(path: str | Path) -> list[dict[str, Any]]:
    """Read an ``events.jsonl`` file back into records."""
    return list(iter_events(path))


def iter_events(path: str | Path) -> Iterator[dict[str, Any]]:
    """The records of an ``events.jsonl`` file one by one, for a pass that keeps none of them."""
    decode = json.JSONDecoder().decode
    with open(path, encoding="utf-8") as src:
        for line in src:
            if line.strip():
                yield decode(line)


class EventsWriter:
    """A recorder sink appending every record it is given to an ``events.jsonl`` file.

    Args:
        path: the file (created or truncated).
    """

    __slots__ = ("_file", "_write", "path")

    def __init__(self, path: str | Path) -> None:
        #: Where the records go.
        self.path = Path(path)
        self._file = open(self.path, "w", encoding="utf-8", newline="\n")  # noqa: SIM115
        self._write = self._file.write

    def __call__(self, record: dict[str, Any]) -> None:
        """Append ``record`` as one line."""
        self._write(_encode(record) + "\n")

    def close(self) -> None:
        """Flush and close the file (records given afterwards are an error)."""
        self._file.close()
