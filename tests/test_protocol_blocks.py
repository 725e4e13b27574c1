"""A multi-line body read as one block gives what reading it line by line gives, when it does."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from mailsim.protocol._common import LineBuffer
from mailsim.protocol.pop3_client import _unstuffed

LIMIT = 40

LINE = st.one_of(
    st.sampled_from([b"", b".", b"..", b"...x", b".x", b"From: a", b"\n", b"a\rb", b"x" * 38]),
    st.binary(max_size=12).map(lambda b: b.replace(b"\r\n", b"")),
    st.sampled_from([b"z" * 39, b"z" * 40, b"y" * 45]),  # just over the limit, and far
)


def _line_by_line(chunks: list[bytes]) -> tuple[int, object] | None:
    """The old reading: lines until a lone '.', each un-stuffed; (chunk index, result)."""
    buffer, lines = LineBuffer(LIMIT), []
    for index, chunk in enumerate(chunks):
        buffer.feed(chunk)
        while (got := buffer.next_line()) is not None:
            line, overlong = got
            if overlong:
                return index, "too long"
            if line == b".":
                return index, b"".join(piece + b"\r\n" for piece in lines)
            lines.append(line[1:] if line.startswith(b".") else line)
    return None


def _as_block(chunks: list[bytes]) -> tuple[int, object] | None:
    buffer = LineBuffer(LIMIT)
    for index, chunk in enumerate(chunks):
        buffer.feed(chunk)
        got = buffer.next_block()
        if got is not None:
            block, overlong = got
            return index, "too long" if overlong else _unstuffed(block)
    return None


@settings(max_examples=600, deadline=None)
@given(
    lines=st.lists(LINE, max_size=12),
    terminated=st.booleans(),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=8),
    tail=st.binary(max_size=6),
)
def test_block_reading_matches_line_reading(lines, terminated, cuts, tail) -> None:
    stuffed = b"".join((b"." + line if line.startswith(b".") else line) + b"\r\n" for line in lines)
    wire = stuffed + (b".\r\n" if terminated else b"") + tail
    points = sorted({min(c, len(wire)) for c in cuts} | {0, len(wire)})
    chunks = [wire[a:b] for a, b in itertools.pairwise(points)] or [b""]
    assert _as_block(chunks) == _line_by_line(chunks)


def test_what_follows_the_block_stays_buffered_for_the_next_reply() -> None:
    buffer = LineBuffer(LIMIT)
    buffer.feed(b"..a\r\nb\r\n.\r\n+OK next\r\n")
    block, overlong = buffer.next_block()  # type: ignore[misc]
    assert (_unstuffed(block), overlong) == (b".a\r\nb\r\n", False)
    assert buffer.next_line() == (b"+OK next", False)
    buffer.feed(b".\r\n")
    assert buffer.next_block() == (b"", False)
