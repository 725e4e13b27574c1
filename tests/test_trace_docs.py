"""docs/trace-events.md documents every record type the simulator writes, with its fields."""

from __future__ import annotations

import re
from pathlib import Path

from mailsim.trace.recorder import EVENT_FIELDS

DOC = Path(__file__).resolve().parent.parent / "docs" / "trace-events.md"


def test_every_record_type_is_documented_with_its_fields() -> None:
    rows: dict[str, list[str]] = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if len(cells) < 2 or not cells[0].startswith("`"):
            continue
        fields = re.findall(r"`([a-z_]+)`", cells[1])
        for kind in re.findall(r"`([a-z0-9]+\.[a-z]+)`", cells[0]):
            rows[kind] = fields
    assert set(rows) == set(EVENT_FIELDS)
    for kind, fields in EVENT_FIELDS.items():
        assert rows[kind] == list(fields), kind
