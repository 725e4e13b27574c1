"""Checks of notebook 06, "Seven-bit ASCII": what base64 and quoted-printable cost.

The sizes are measured with the standard library's own encoders (the ones ``email`` uses for
the messages mailsim composes), counted as they travel: lines of at most 76 characters, each
ended by CR LF (RFC 2045 6.7 and 6.8).
"""

from __future__ import annotations

import base64
import quopri
from typing import Any

from mailsim.teach.checking import Verdict, close_to, same

ENCODINGS = ("base64", "quoted-printable")


def encoded(data: bytes, encoding: str) -> bytes:
    """``data`` in a 7-bit transfer encoding, with CR LF line ends as on the wire."""
    if encoding == "base64":
        text = base64.encodebytes(data)  # 76-character lines (RFC 2045 6.8)
    elif encoding == "quoted-printable":
        text = quopri.encodestring(data)  # =XX escapes, soft breaks before 76 (RFC 2045 6.7)
    else:
        raise ValueError(f"encoding must be one of {', '.join(ENCODINGS)}, got {encoding!r}")
    return text.replace(b"\n", b"\r\n")


def growth(data: bytes, encoding: str) -> float:
    """How many times larger ``data`` is once encoded."""
    return len(encoded(data, encoding)) / len(data)


def check_growth(answer: Any, data: bytes, encoding: str = "base64") -> Verdict:
    """The growth factor of ``data`` in ``encoding`` (encoded octets / original octets)."""
    return close_to(
        answer,
        growth(data, encoding),
        tolerance=0.005,
        hint="base64 writes 4 characters for every 3 octets, and every 76 characters a CR LF "
        "(2 more octets) ends the line: multiply the two factors",
    )


def check_smaller(answer: Any, data: bytes) -> Verdict:
    """Which encoding makes ``data`` smaller."""
    best = min(ENCODINGS, key=lambda name: len(encoded(data, name)))
    return same(
        answer,
        best,
        hint="quoted-printable leaves plain ASCII letters alone and writes every other octet "
        "as three characters (=XX); base64 grows everything by a third; compare the table",
    )


def check_extra_octets(answer: Any, data: bytes) -> Verdict:
    """How many more octets ``data`` takes on the wire in base64 than as it is."""
    return close_to(
        answer,
        len(encoded(data, "base64")) - len(data),
        tolerance=max(1.0, 0.001 * len(data)),
        unit="octets",
        hint="subtract the file's size from its size in base64 (from the table above)",
    )
