"""Durations, sizes and rates as people write them, and the errors when they are wrong."""

from __future__ import annotations

import pytest

from mailsim.mail.units import (
    format_duration,
    format_rate,
    format_size,
    parse_duration,
    parse_rate,
    parse_size,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("120ms", 0.12),
        ("1.5s", 1.5),
        ("15m", 900.0),  # 'm' is minutes, as in Exim retry rules
        ("30min", 1800.0),
        ("2h", 7200.0),
        ("4d", 345600.0),
        ("2h 5min", 7500.0),
        ("1h30m", 5400.0),
        (" 90 ", 90.0),
        (45, 45.0),
        (0.25, 0.25),
    ],
)
def test_parse_duration_accepts_common_spellings(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["120 millis", "fast", "", "5 parsecs", "-3s", "2h and 5min", -1])
def test_parse_duration_error_says_what_is_expected(bad: str | int) -> None:
    with pytest.raises(ValueError, match=r"must be a duration like '120ms' or '30min'") as info:
        parse_duration(bad)
    assert repr(bad) in str(info.value)


def test_parse_duration_error_message_matches_the_conventions() -> None:
    with pytest.raises(ValueError) as info:
        parse_duration("120 millis")
    assert str(info.value) == "must be a duration like '120ms' or '30min', got '120 millis'"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.15, "150 ms"),
        (3.2, "3.2 s"),
        (750.0, "12min 30s"),
        (7500.0, "2h 5min"),
        (7200.0, "2h"),
        (432000.0, "5d"),
        (0.0, "0 s"),
    ],
)
def test_format_duration_reads_like_a_person_wrote_it(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    assert parse_duration(text) == pytest.approx(seconds)


def test_sizes_distinguish_decimal_and_binary_prefixes() -> None:
    assert parse_size("2MB") == 2_000_000
    assert parse_size("2MiB") == 2 * 1024 * 1024
    assert parse_size("1.5kB") == 1500
    assert parse_size("512 KiB") == 524_288
    assert parse_size(1500) == 1500
    assert parse_size("64") == 64
    assert format_size(1_368_424) == "1.37 MB"
    assert format_size(512) == "512 B"


def test_bad_size_says_what_is_expected() -> None:
    with pytest.raises(ValueError, match=r"must be a size like '2MB'.*got '2 megs'"):
        parse_size("2 megs")


def test_rates_are_bits_per_second() -> None:
    assert parse_rate("10Mbps") == 10_000_000
    assert parse_rate("64 kbit/s") == 64_000
    assert parse_rate("1MB/s") == 8_000_000  # bytes per second, times 8
    assert parse_rate("10mbps") == 10_000_000  # lower-case m still means mega for a rate
    assert parse_rate(56000) == 56000
    assert format_rate(10e6) == "10 Mbps"
    with pytest.raises(ValueError, match=r"must be a rate like '10Mbps'.*got '10 furlongs'"):
        parse_rate("10 furlongs")
