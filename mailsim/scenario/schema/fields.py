"""Scalar field types: each parses what a person writes and fails with a sentence for a student.

Human units are parsed here, once, by :mod:`mailsim.mail.units`, so a model holds SI base units
only. ``_Section`` is the base of every section model."""

from __future__ import annotations

import contextlib
import ipaddress
import math
import re
from collections.abc import Callable
from typing import Annotated, Any, Literal, NoReturn

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    PlainSerializer,
)
from pydantic_core import PydanticCustomError

from mailsim.mail.units import (
    format_duration,
    format_rate,
    format_size,
    parse_duration,
    parse_rate,
    parse_size,
)
from mailsim.protocol.smtp_address import DOT_STRING, QUOTED_STRING
from mailsim.scenario.errors import did_you_mean, shown

# --- how far a number may go -------------------------------------------------------------------
# A value a person can write but a run cannot use (a 1 TB attachment, a link of 10**400 bit/s, a
# run of 1e308 seconds) is refused here, where it can be placed in the file, instead of
# overflowing or running for ever mid-run.

#: The longest run, and so the longest wait worth naming: a year. Mail gives up after days
#: (RFC 5321 4.5.4.1 suggests 4-5), so a year holds any retry schedule many times over, and a
#: float clock keeps sub-microsecond steps there (its 53 bits cover 2**53 us, 285 years).
MAX_DURATION = 365 * 86400.0
#: The fastest link: 10 Tbit/s, above any single link in service (800 Gbit/s Ethernet).
MAX_BANDWIDTH = 10e12
#: The largest size any field takes, as a limit: 1 TB (EHLO SIZE stays a short number).
MAX_SIZE = 10**12
#: The largest content mailsim makes up or reads for one part (an attachment, a generated text):
#: 100 MB, ten times the usual 10 MB message limit. Base64 makes it 137 MB on the wire, and a
#: run holds several copies (message, queue, mailbox) in memory.
MAX_CONTENT_SIZE = 100 * 10**6
#: The shortest time between two POP3 checks of one user: a second. A check is a TCP handshake,
#: USER, PASS, STAT and QUIT, several round trips; mail programs offer a minute at the least.
MIN_CHECK_INTERVAL = 1.0


def _fail(message: str) -> NoReturn:
    """Reject a value with ``message``; the loader puts the file, line and field in front."""
    # The message travels in the context so braces in it ('{kind: photo}') are not templates.
    raise PydanticCustomError("mailsim", "{message}", {"message": message})


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        _fail(
            "must be text, got a mapping; a ': ' inside text makes YAML read it as key: value, "
            "so put the text in quotes"
        )
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        _fail(f"must be text, got the number {value!r}; put it in quotes, like '{value}'")
    _fail(f"must be text, got {shown(value)}")


def _one_line(where: str, *, fix: str = "remove it") -> Callable[[Any], str]:
    """A validator for text that goes into a header or a command line: no control characters.

    A CR or LF there would end the line and start another (a header of the sender's making, RFC
    5322 2.2, or a second command); other control characters have no place in either.

    Args:
        where: what the text becomes, for the message ("the Subject header").
        fix: what to do about a line break.
    """

    def check(value: Any) -> str:
        text = _text(value)
        for index, char in enumerate(text):
            if char in "\r\n":
                _fail(
                    f"must be one line, as it goes into {where}; it has a line break at "
                    f"character {index + 1}: {fix}"
                )
            if (ord(char) < 0x20 and char != "\t") or ord(char) == 0x7F:
                _fail(
                    f"must not contain the control character U+{ord(char):04X} (character "
                    f"{index + 1}), as it goes into {where}"
                )
        return text

    return check


# RFC 5321 4.2: a reply's text is textstring = 1*(%d09 / %d32-126), printable US-ASCII.
_REPLY_TEXT = re.compile(r"[\t\x20-\x7e]*")
# "250-" and the CRLF leave 506 octets of a 512-octet reply line (RFC 5321 4.5.3.1.5).
_MAX_REPLY_TEXT = 512 - 4 - 2


def _reply_text(value: Any) -> str:
    text = _one_line("an SMTP reply line")(value)
    bad = _REPLY_TEXT.fullmatch(text) is None
    if bad:
        first = next(i for i, char in enumerate(text) if not _REPLY_TEXT.fullmatch(char))
        _fail(
            f"must be plain ASCII (RFC 5321 4.2: a reply is printable US-ASCII); "
            f"character {first + 1} is {text[first]!r}"
        )
    if len(text) > _MAX_REPLY_TEXT:
        _fail(
            f"must be at most {_MAX_REPLY_TEXT} characters (a reply line is at most 512 octets, "
            f"RFC 5321 4.5.3.1.5), got {len(text)}"
        )
    return text


def _nonempty_text(value: Any) -> str:
    text = _text(value)
    if not text.strip():
        _fail("must not be empty")
    return text


_NODE_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,61}[A-Za-z0-9])?")


def _node_name(value: Any) -> str:
    if isinstance(value, str) and _NODE_NAME.fullmatch(value):
        return value
    _fail(
        "must be a node name made of letters, digits, '-', '_' or '.' (like india-mail), "
        f"got {shown(value)}"
    )


# RFC 1035 2.3.1 labels (letters, digits, hyphens inside), at most 255 octets in all (RFC 5321
# 4.5.3.1.2). Underscores are let through: teachers name things 'my_school'.
_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_DOMAIN = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
# RFC 5321 4.1.2 local parts: a dot-string, or a quoted string ("john smith"); at most 64 octets as
# written (RFC 5321 4.5.3.1.1). A quoted one names at least one character: "" names no mailbox.
_MAX_LOCAL_PART = 64


def _domain(value: Any) -> str:
    if isinstance(value, str) and len(value) <= 255 and _DOMAIN.fullmatch(value):
        return value
    _fail(f"must be a domain name like usa.com, got {shown(value)}")


def _is_local_part(written: str) -> bool:
    if not 0 < len(written) <= _MAX_LOCAL_PART:
        return False
    if DOT_STRING.fullmatch(written):
        return True
    return QUOTED_STRING.fullmatch(written) is not None and len(written) > 2


def _address(value: Any) -> str:
    if isinstance(value, str) and "@" in value:
        written, _, domain = value.rpartition("@")
        if _is_local_part(written) and len(domain) <= 255 and _DOMAIN.fullmatch(domain):
            return value
        if " " in written and '"' not in written and _is_local_part(f'"{written}"'):
            _fail(
                "a local part with spaces is written in double quotes (RFC 5321 4.1.2), like "
                f"'\"{written}\"@{domain}', got {shown(value)}"
            )
    _fail(f"must be an e-mail address like steve@usa.com, got {shown(value)}")


#: The only addresses mailsim uses: the documentation ranges of RFC 5737.
DOCUMENTATION_RANGES = tuple(
    ipaddress.IPv4Network(cidr) for cidr in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")
)


def _ipv4(value: Any) -> str:
    address = None
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            address = ipaddress.IPv4Address(value.strip())
    if address is None:
        _fail(f"must be an IPv4 address like 192.0.2.10, got {shown(value)}")
    if not any(address in network for network in DOCUMENTATION_RANGES):
        _fail(
            "must be in 192.0.2.0/24, 198.51.100.0/24 or 203.0.113.0/24, the ranges kept for "
            f"examples (RFC 5737), got {shown(value)}"
        )
    if str(address).endswith((".0", ".255")):
        _fail(f"must not be a network or broadcast address (.0 or .255), got {shown(value)}")
    return str(address)


def _choice(*options: str) -> Callable[[Any], str]:
    """A validator accepting one of ``options`` in any case, returned as spelt in ``options``."""
    spelt = {option.lower(): option for option in options}

    def check(value: Any) -> str:
        if isinstance(value, str) and value.strip().lower() in spelt:
            return spelt[value.strip().lower()]
        listed = ", ".join(options)
        _fail(f"must be one of {listed}, got {shown(value)}{did_you_mean(value, options)}")

    return check


def _whole(low: int | None = None, high: int | None = None) -> Callable[[Any], int]:
    """A validator for a whole number within ``[low, high]``."""

    def check(value: Any) -> int:
        number: int
        if isinstance(value, bool):
            _fail(f"must be a whole number, got {shown(value)}")
        if isinstance(value, int):
            number = value
        elif (isinstance(value, float) and value.is_integer()) or (
            isinstance(value, str) and re.fullmatch(r"\s*[+-]?[0-9]+\s*", value)
        ):
            number = int(value)
        else:
            _fail(f"must be a whole number, got {shown(value)}")
        if low is not None and number < low:
            _fail(f"must be at least {low}, got {number}")
        if high is not None and number > high:
            _fail(f"must be at most {high}, got {number}")
        return number

    return check


def _number(low: float = 0.0, high: float = math.inf) -> Callable[[Any], float]:
    """A validator for a finite number within ``[low, high]``."""

    def check(value: Any) -> float:
        if (isinstance(value, (int, float)) and not isinstance(value, bool)) or (
            isinstance(value, str) and re.fullmatch(r"\s*[+-]?[0-9]*\.?[0-9]+\s*", value)
        ):
            number = _as_float(value)
        else:
            _fail(f"must be a number, got {shown(value)}")
        if not math.isfinite(number) or number < low:
            _fail(f"must be a number of at least {low:g}, got {shown(value)}")
        if number > high:
            _fail(f"must be at most {high:g}, got {shown(value)}")
        return number

    return check


def _as_float(value: int | float | str) -> float:
    """``float(value)``, with a number too large for a float as infinity (no OverflowError)."""
    try:
        return float(value)
    except OverflowError:
        return math.inf


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"yes", "on", "true"}:
        return True
    if isinstance(value, str) and value.strip().lower() in {"no", "off", "false"}:
        return False
    _fail(f"must be true or false, got {shown(value)}")


def _probability(value: Any) -> float:
    number: float
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = _as_float(value)
    elif isinstance(value, str) and re.fullmatch(r"\s*[0-9]*\.?[0-9]+\s*%\s*", value):
        number = float(value.strip().rstrip("%")) / 100.0
    else:
        _fail(f"must be a probability from 0 to 1 (or a percentage like '5%'), got {shown(value)}")
    if not 0.0 <= number <= 1.0:  # NaN fails this too
        _fail(f"must be a probability from 0 to 1 (or a percentage like '5%'), got {shown(value)}")
    return number


def _loss(value: Any) -> float:
    loss = _probability(value)
    if loss >= 1.0:
        _fail(
            "must be below 1; a link that loses every packet is a link that is down, "
            "so use a fault such as {link: [a, b], down_at: 0s}"
        )
    return loss


def _is_negative(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().startswith("-")
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0


def _quantity(value: Any, parse: Callable[[Any], Any], example: str) -> Any:
    """``value`` parsed by ``parse`` (a duration, size or rate), or a problem saying why not."""
    if _is_negative(value):
        _fail(f"must not be negative, got {shown(value)}")
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        _fail(f"must be {example}, got {shown(value)}")
    try:
        return parse(value)
    except ValueError as error:
        _fail(str(error))


def _duration(value: Any) -> float:
    seconds: float = _quantity(value, parse_duration, "a duration like '120ms' or '30min'")
    if seconds > MAX_DURATION:
        _fail(
            f"must be at most {format_duration(MAX_DURATION)} (a year, the longest run mailsim "
            f"simulates), got {shown(value)}"
        )
    return seconds


def _positive_duration(value: Any) -> float:
    seconds = _duration(value)
    if seconds <= 0:
        _fail(f"must be longer than zero, got {shown(value)}")
    return seconds


def _size(value: Any) -> int:
    # parse_size accepts floats too ('1.5MB' and 1.5e6 alike).
    size: int = _quantity(value, parse_size, "a size like '2MB' or '512KiB'")
    if size > MAX_SIZE:
        _fail(f"must be at most {format_size(MAX_SIZE)}, got {shown(value)}")
    return size


def _larger_than_zero(check: Callable[[Any], int]) -> Callable[[Any], int]:
    """``check`` (a size validator) that also refuses zero."""

    def positive(value: Any) -> int:
        size = check(value)
        if size <= 0:
            _fail(f"must be larger than zero, got {shown(value)}")
        return size

    return positive


_positive_size = _larger_than_zero(_size)


def _content_size(value: Any) -> int:
    size = _size(value)
    if size > MAX_CONTENT_SIZE:
        _fail(
            f"must be at most {format_size(MAX_CONTENT_SIZE)}, the largest part mailsim builds "
            f"in memory (ten times a usual 10 MB message limit), got {shown(value)}"
        )
    return size


_positive_content_size = _larger_than_zero(_content_size)


def _check_interval(value: Any) -> float:
    seconds = _positive_duration(value)
    if seconds < MIN_CHECK_INTERVAL:
        _fail(
            f"must be at least {format_duration(MIN_CHECK_INTERVAL)}: each check is a POP3 "
            "session of several round trips, and mail programs check once a minute at the most, "
            f"got {shown(value)}"
        )
    return seconds


def _bandwidth(value: Any) -> float:
    rate: float = _quantity(value, parse_rate, "a rate like '10Mbps' or '64kbps'")
    if rate > MAX_BANDWIDTH:
        _fail(
            f"must be at most {format_rate(MAX_BANDWIDTH)}, faster than any link in service, "
            f"got {shown(value)}"
        )
    return rate


# The count may carry an exponent, so that a rate written back by :func:`_rate_text` (a model
# dumped for a parameter study) reads in again as exactly the same float.
_EVENT_RATE = re.compile(r"\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(?:/|per\s)\s*(.+?)\s*")


def _event_rate(value: Any) -> float:
    """Messages per second from ``'12/h'``, ``'0.5/min'``, ``'3 per day'`` or ``'1/10min'``."""
    hint = "must be a rate like '12/h' (12 messages an hour) or '1/10min'"
    match = _EVENT_RATE.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        _fail(f"{hint}, got {shown(value)}")
    count = _as_float(match.group(1))
    per = match.group(2)
    try:
        seconds = parse_duration(per if per[0].isdigit() else "1" + per)
    except ValueError:
        _fail(f"{hint}, got {shown(value)}")
    if count <= 0 or seconds <= 0:
        _fail(f"{hint} above zero, got {shown(value)}")
    if not math.isfinite(count / seconds):
        _fail(f"{hint}, got {shown(value)}, which is too large to be used")
    return count / seconds


def _one_or_many(value: Any) -> Any:
    """A single item where a list is expected stands for a list of one (``to: steve@usa.com``)."""
    if isinstance(value, str):
        return [value]
    if value is None:
        _fail("must be an address or a list of addresses, got null")
    return value


def _pair(value: Any) -> Any:
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return value
    got = f"a list of {len(value)}" if isinstance(value, (list, tuple)) else shown(value)
    _fail(f"must be a pair of node names like [james-pc, india-mail], got {got}")


def _target(value: Any) -> str | tuple[str, str]:
    if isinstance(value, (list, tuple)):
        first, second = _pair(value)
        return (_node_name(first), _node_name(second))
    if isinstance(value, str):
        return _node_name(value)
    _fail(f"must be a node name, or a pair of node names for a link, got {shown(value)}")


def _empty_if_null(kind: type) -> Callable[[Any], Any]:
    """A section left empty in YAML (``links:`` with nothing under it) is an empty section."""

    def check(value: Any) -> Any:
        return kind() if value is None else value

    return check


Text = Annotated[str, BeforeValidator(_text)]
NonEmptyText = Annotated[str, BeforeValidator(_nonempty_text)]
#: Text that goes into the Subject header: one line, no control characters.
SubjectText = Annotated[str, BeforeValidator(_one_line("the Subject header"))]
#: A display name, in the From header.
DisplayName = Annotated[str, BeforeValidator(_one_line("the From header"))]
#: An attachment's file name, in its Content-Disposition header.
FileName = Annotated[str, BeforeValidator(_one_line("the attachment's Content-Disposition header"))]
#: A password, typed on the POP3 PASS line and sent in AUTH.
Password = Annotated[str, BeforeValidator(_one_line("the POP3 PASS command line"))]
#: A line typed in a telnet session.
TypedLine = Annotated[
    str, BeforeValidator(_one_line("a command line", fix="put each line in its own item"))
]
#: The text of an SMTP reply: printable ASCII, at most 506 characters.
ReplyText = Annotated[str, BeforeValidator(_reply_text)]
NodeName = Annotated[str, BeforeValidator(_node_name)]
Domain = Annotated[str, BeforeValidator(_domain)]
Address = Annotated[str, BeforeValidator(_address)]
IPv4 = Annotated[str, BeforeValidator(_ipv4)]
Flag = Annotated[bool, BeforeValidator(_flag)]
Probability = Annotated[float, BeforeValidator(_probability)]
#: Seconds, from '120ms', '30min', '2d' or a bare number of seconds; never negative.
Duration = Annotated[float, BeforeValidator(_duration)]
#: Seconds, as :data:`Duration`, and more than zero.
PositiveDuration = Annotated[float, BeforeValidator(_positive_duration)]
#: Bytes, from '2MB', '512KiB' or a bare number of bytes.
Size = Annotated[int, BeforeValidator(_size)]
PositiveSize = Annotated[int, BeforeValidator(_positive_size)]
#: Bytes of content mailsim builds (an attachment, a generated text): at most 100 MB.
ContentSize = Annotated[int, BeforeValidator(_content_size)]
#: As :data:`ContentSize`, and more than zero.
PositiveContentSize = Annotated[int, BeforeValidator(_positive_content_size)]
#: Seconds between POP3 checks: at least a second.
CheckInterval = Annotated[float, BeforeValidator(_check_interval)]
#: Bits per second, from '10Mbps', '64kbps', '1MB/s' or a bare number of bits per second.
Bandwidth = Annotated[float, BeforeValidator(_bandwidth)]


#: Messages per second, from '12/h'.
def _rate_text(value: float) -> str:
    """A rate in messages per second as text the validator reads back to the same float."""
    return f"{value!r}/s"


EventRate = Annotated[float, BeforeValidator(_event_rate), PlainSerializer(_rate_text)]
Port = Annotated[int, BeforeValidator(_whole(1, 65535))]
NodePair = Annotated[tuple[NodeName, NodeName], BeforeValidator(_pair)]
Recipients = Annotated[list[Address], BeforeValidator(_one_or_many)]
NodeKind = Annotated[
    Literal["host", "router", "mailserver", "dns"],
    BeforeValidator(_choice("host", "router", "mailserver", "dns")),
]
AttachmentKind = Annotated[
    Literal["photo", "video", "document", "file"],
    BeforeValidator(_choice("photo", "video", "document", "file")),
]


class _Section(BaseModel):
    """Base of every scenario mapping: unknown keys are errors, never silently ignored."""

    model_config = ConfigDict(
        extra="forbid", arbitrary_types_allowed=False, validate_assignment=True
    )
