"""Scalar field types: each parses what a person writes and fails with a sentence for a student.

Human units are parsed here, once, by :mod:`mailsim.mail.units`, so a model holds SI base units
only. ``_Section`` is the base of every section model."""

from __future__ import annotations

import contextlib
import ipaddress
import math
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, Literal, NoReturn

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    PlainSerializer,
)
from pydantic_core import PydanticCustomError

from mailsim.scenario.errors import did_you_mean, shown

if TYPE_CHECKING:
    pass

from mailsim.mail.units import parse_duration, parse_rate, parse_size


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
# RFC 5322 3.2.3 dot-atom local part; quoted local parts are not supported. At most 64 octets
# (RFC 5321 4.5.3.1.1).
_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")


def _domain(value: Any) -> str:
    if isinstance(value, str) and len(value) <= 255 and _DOMAIN.fullmatch(value):
        return value
    _fail(f"must be a domain name like usa.com, got {shown(value)}")


def _address(value: Any) -> str:
    if isinstance(value, str) and value.count("@") == 1:
        local, domain = value.split("@")
        if (
            0 < len(local) <= 64
            and _LOCAL.fullmatch(local)
            and len(domain) <= 255
            and _DOMAIN.fullmatch(domain)
        ):
            return value
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


def _number(low: float = 0.0) -> Callable[[Any], float]:
    """A validator for a finite number of at least ``low``."""

    def check(value: Any) -> float:
        if (isinstance(value, (int, float)) and not isinstance(value, bool)) or (
            isinstance(value, str) and re.fullmatch(r"\s*[+-]?[0-9]*\.?[0-9]+\s*", value)
        ):
            number = float(value)
        else:
            _fail(f"must be a number, got {shown(value)}")
        if not math.isfinite(number) or number < low:
            _fail(f"must be a number of at least {low:g}, got {shown(value)}")
        return number

    return check


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
        number = float(value)
    elif isinstance(value, str) and re.fullmatch(r"\s*[0-9]*\.?[0-9]+\s*%\s*", value):
        number = float(value.strip().rstrip("%")) / 100.0
    else:
        _fail(f"must be a probability from 0 to 1 (or a percentage like '5%'), got {shown(value)}")
    if not 0.0 <= number <= 1.0:
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
    return seconds


def _positive_duration(value: Any) -> float:
    seconds = _duration(value)
    if seconds <= 0:
        _fail(f"must be longer than zero, got {shown(value)}")
    return seconds


def _size(value: Any) -> int:
    # parse_size accepts floats too ('1.5MB' and 1.5e6 alike).
    size: int = _quantity(value, parse_size, "a size like '2MB' or '512KiB'")
    return size


def _positive_size(value: Any) -> int:
    size = _size(value)
    if size <= 0:
        _fail(f"must be larger than zero, got {shown(value)}")
    return size


def _bandwidth(value: Any) -> float:
    rate: float = _quantity(value, parse_rate, "a rate like '10Mbps' or '64kbps'")
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
    count = float(match.group(1))
    per = match.group(2)
    try:
        seconds = parse_duration(per if per[0].isdigit() else "1" + per)
    except ValueError:
        _fail(f"{hint}, got {shown(value)}")
    if count <= 0 or seconds <= 0:
        _fail(f"{hint} above zero, got {shown(value)}")
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
