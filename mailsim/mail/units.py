"""Durations, sizes and rates as people write them: ``30min``, ``2MB``, ``10Mbps``.

Scenarios, retry rules (``F,2h,15m``) and notebooks speak in human units; the simulator works in
float seconds, int bytes and float bits per second. This module converts both ways and, when the
text is wrong, says what it found and what would be right, so a scenario error reads like
``must be a duration like '120ms' or '30min', got '120 millis'``.

Size prefixes follow the SI/IEC split: ``kB``, ``MB``, ``GB`` are powers of ten (``2MB`` is
2,000,000 bytes, as network people and disk makers count), ``KiB``, ``MiB``, ``GiB`` are powers of
two (``2MiB`` is 2,097,152 bytes). Rates are always decimal (``10Mbps`` is 10,000,000 bits/s).
"""

from __future__ import annotations

import math
import re

#: Seconds per duration unit; every spelling accepted after a number.
_DURATION_UNITS: dict[str, float] = {
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "msec": 1e-3,
    "s": 1.0,
    "sec": 1.0,
    "secs": 1.0,
    "second": 1.0,
    "seconds": 1.0,
    "m": 60.0,
    "min": 60.0,
    "mins": 60.0,
    "minute": 60.0,
    "minutes": 60.0,
    "h": 3600.0,
    "hr": 3600.0,
    "hrs": 3600.0,
    "hour": 3600.0,
    "hours": 3600.0,
    "d": 86400.0,
    "day": 86400.0,
    "days": 86400.0,
    "w": 604800.0,
    "week": 604800.0,
    "weeks": 604800.0,
}

#: Bytes per size unit (matched case-insensitively, see module docstring).
_SIZE_UNITS: dict[str, int] = {
    "": 1,
    "b": 1,
    "byte": 1,
    "bytes": 1,
    "k": 10**3,
    "kb": 10**3,
    "m": 10**6,
    "mb": 10**6,
    "g": 10**9,
    "gb": 10**9,
    "t": 10**12,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}

#: Multipliers of rate prefixes (decimal, any case: '10mbps' means megabits, never millibits).
_RATE_PREFIXES: dict[str, float] = {"": 1.0, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12}

_NUMBER = r"[0-9]+(?:\.[0-9]*)?|\.[0-9]+"
_DURATION_PART = re.compile(rf"\s*({_NUMBER})\s*([a-zµ]+)\s*", re.IGNORECASE)
_SIZE = re.compile(rf"\s*({_NUMBER})\s*([a-z]*)\s*", re.IGNORECASE)
# A rate: number, optional prefix, then bits ('bps', 'bit/s', 'b/s') or bytes ('Bps', 'B/s',
# 'byte/s'). Only the b/B of the unit is case-sensitive: b = bits, B = bytes.
_RATE = re.compile(
    rf"\s*({_NUMBER})\s*([kKmMgGtT]?)(bps|bit/s|bits/s|b/s|Bps|B/s|byte/s|bytes/s)\s*",
)

_DURATION_HINT = "must be a duration like '120ms' or '30min'"
_SIZE_HINT = "must be a size like '2MB' (10^6 bytes), '512KiB' (2^10 bytes) or '1500'"
_RATE_HINT = "must be a rate like '10Mbps' (bits/s), '64kbps' or '1MB/s' (bytes/s)"


def _finite(value: float | int, hint: str, text: object) -> float:
    """``value`` as a float, or a ValueError that says it is too large to use.

    Python ints have no limit and ``float('1' + '0' * 400)`` is infinity; neither can be a time
    or a rate a run can schedule, so both are refused here rather than overflowing later.
    """
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if math.isnan(number):
        raise ValueError(f"{hint}, got {text!r}, which is not a number")
    if number == -math.inf:
        raise ValueError(f"{hint}, got {text!r}, which is not a finite number")
    if not math.isfinite(number):
        shown = repr(text) if len(repr(text)) <= 40 else repr(text)[:37] + "..."
        raise ValueError(f"{hint}, got {shown}, which is too large to be used")
    return number


def parse_duration(text: str | float | int) -> float:
    """Seconds in a duration such as ``'120ms'``, ``'30min'``, ``'1.5s'``, ``'4d'``, ``'2h 5min'``.

    A bare number (``90`` or ``'90'``) counts as seconds. Several parts add up, so what
    :func:`format_duration` writes parses back. ``'m'`` means minutes, as in Exim retry rules.

    Args:
        text: the duration as written, or a number of seconds.

    Returns:
        The duration in seconds (never negative).

    Raises:
        ValueError: the text is not a duration; the message says what would be right.
    """
    if isinstance(text, bool):
        raise ValueError(f"{_DURATION_HINT}, got {text!r}")
    if isinstance(text, (int, float)):
        number = _finite(text, _DURATION_HINT, text)
        if number < 0:
            raise ValueError(f"{_DURATION_HINT} (not negative), got {text!r}")
        return number
    if not isinstance(text, str):
        raise ValueError(f"{_DURATION_HINT}, got {text!r}")
    stripped = text.strip()
    if re.fullmatch(_NUMBER, stripped):
        return _finite(float(stripped), _DURATION_HINT, text)
    total = 0.0
    pos = 0
    while pos < len(text):
        match = _DURATION_PART.match(text, pos)
        if match is None or match.end() == pos:
            raise ValueError(f"{_DURATION_HINT}, got {text!r}")
        unit = _DURATION_UNITS.get(match.group(2).lower())
        if unit is None:
            raise ValueError(f"{_DURATION_HINT}, got {text!r}")
        total += float(match.group(1)) * unit
        pos = match.end()
    if pos == 0:
        raise ValueError(f"{_DURATION_HINT}, got {text!r}")
    return _finite(total, _DURATION_HINT, text)


def format_duration(seconds: float) -> str:
    """A duration for people: ``'150 ms'``, ``'3.2 s'``, ``'12min 30s'``, ``'2h 5min'``, ``'5d'``.

    Under a minute it shows a number and a unit; from a minute up, the two largest non-zero
    units of the value rounded to whole seconds. The result parses back with
    :func:`parse_duration` (to within that rounding).

    Args:
        seconds: the duration; negative values get a leading '-'.

    Returns:
        The human text.
    """
    if math.isinf(seconds):
        return "forever" if seconds > 0 else "-forever"
    if seconds < 0:
        return "-" + format_duration(-seconds)
    if seconds == 0:
        return "0 s"
    if seconds < 1e-3:
        return f"{_trim(seconds * 1e6)} µs"
    if seconds < 1.0:
        return f"{_trim(seconds * 1e3)} ms"
    if seconds < 60.0:
        return f"{_trim(seconds)} s"
    rest = round(seconds)
    counts: list[tuple[int, str]] = []
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        count, rest = divmod(rest, size)
        counts.append((count, unit))
    first = next(i for i, (count, _) in enumerate(counts) if count)
    return " ".join(f"{count}{unit}" for count, unit in counts[first : first + 2] if count)


def _trim(value: float) -> str:
    """Three significant digits without trailing zeros: 150, 3.2, 1.25."""
    text = f"{value:.3g}"
    if "e" in text:  # 1e+03 style only happens for values rounded up to the next unit
        text = f"{value:.0f}"
    return text


def parse_size(text: str | int) -> int:
    """Bytes in a size such as ``'2MB'`` (2,000,000), ``'2MiB'`` (2,097,152), ``'1.5kB'``, ``1500``.

    Decimal prefixes (kB, MB, GB, TB) are powers of ten, binary ones (KiB, MiB, GiB, TiB) powers
    of two; see the module docstring. Units are matched case-insensitively.

    Args:
        text: the size as written, or a number of bytes.

    Returns:
        The size in whole bytes (fractions are rounded to the nearest byte).

    Raises:
        ValueError: the text is not a size; the message says what would be right.
    """
    if isinstance(text, bool):
        raise ValueError(f"{_SIZE_HINT}, got {text!r}")
    if isinstance(text, int):
        if text < 0:
            raise ValueError(f"{_SIZE_HINT} (not negative), got {text!r}")
        return text
    if isinstance(text, float):
        if _finite(text, _SIZE_HINT, text) < 0:
            raise ValueError(f"{_SIZE_HINT} (not negative), got {text!r}")
        return round(text)
    if not isinstance(text, str):
        raise ValueError(f"{_SIZE_HINT}, got {text!r}")
    match = _SIZE.fullmatch(text)
    if match is None:
        raise ValueError(f"{_SIZE_HINT}, got {text!r}")
    unit = _SIZE_UNITS.get(match.group(2).lower())
    if unit is None:
        raise ValueError(f"{_SIZE_HINT}, got {text!r}")
    return round(_finite(float(match.group(1)) * unit, _SIZE_HINT, text))


def format_size(size: int) -> str:
    """A size for people in decimal units: ``'512 B'``, ``'1.5 kB'``, ``'2 MB'``, ``'1.37 MB'``."""
    if size < 1000:
        return f"{size} B"
    for unit, scale in (("kB", 10**3), ("MB", 10**6), ("GB", 10**9)):
        if size < scale * 1000:
            return f"{_trim(size / scale)} {unit}"
    return f"{_trim(size / 10**12)} TB"


def parse_rate(text: str | float | int) -> float:
    """Bits per second in a rate such as ``'10Mbps'``, ``'64 kbit/s'`` or ``'1MB/s'`` (8e6).

    A bare number counts as bits per second. The prefix is decimal and case-insensitive;
    the unit's ``b`` means bits and ``B`` means bytes.

    Args:
        text: the rate as written, or a number of bits per second.

    Returns:
        The rate in bits per second.

    Raises:
        ValueError: the text is not a rate; the message says what would be right.
    """
    if isinstance(text, bool):
        raise ValueError(f"{_RATE_HINT}, got {text!r}")
    if isinstance(text, (int, float)):
        number = _finite(text, _RATE_HINT, text)
        if number <= 0:
            raise ValueError(f"{_RATE_HINT} (above zero), got {text!r}")
        return number
    if not isinstance(text, str):
        raise ValueError(f"{_RATE_HINT}, got {text!r}")
    stripped = text.strip()
    if re.fullmatch(_NUMBER, stripped):
        value = float(stripped)
    else:
        match = _RATE.fullmatch(text)
        if match is None:
            raise ValueError(f"{_RATE_HINT}, got {text!r}")
        per_unit = 8.0 if match.group(3).startswith("B") else 1.0
        value = float(match.group(1)) * _RATE_PREFIXES[match.group(2).lower()] * per_unit
    value = _finite(value, _RATE_HINT, text)
    if value <= 0:
        raise ValueError(f"{_RATE_HINT} (above zero), got {text!r}")
    return value


def format_rate(bits_per_second: float) -> str:
    """A rate for people: ``'56 kbps'``, ``'10 Mbps'``, ``'1.5 Gbps'``."""
    for unit, scale in (("Tbps", 1e12), ("Gbps", 1e9), ("Mbps", 1e6), ("kbps", 1e3)):
        if bits_per_second >= scale:
            return f"{_trim(bits_per_second / scale)} {unit}"
    return f"{_trim(bits_per_second)} bps"
