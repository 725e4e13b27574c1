"""``mailsim serve --fault SPEC``: a scenario's reply fault, written on the command line.

One spec language serves the simulation and the live server: a ``--fault`` is the ``reply:``
mapping of a scenario's ``faults:`` item (:class:`~mailsim.scenario.schema.ReplySpec`, the same
fields, validators and messages), without ``server`` (``mailsim serve`` is one server), in YAML
flow style::

    --fault '{command: RCPT, code: 451, text: 4.7.1 Greylisted, first_attempt_only: true}'

or, for the common case, as ``COMMAND CODE [TEXT]``::

    --fault 'RCPT 550 5.1.1 User unknown'

A lab needs three things a scenario has not needed yet, so :class:`LabReplySpec` adds them:
``for`` (only the MAIL or RCPT naming this address), ``delay`` (a slow server: the reply comes
this long after the command, each line of a multi-line reply this long after the one before;
with no ``code`` the normal reply is delayed) and a ``text`` that may be a list of lines (a
multi-line reply). ``port`` names the role (25 MX, 587 submission, 465 implicit TLS); left out,
the fault hits every SMTP listener. ``from``/``until`` count from the server's start.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field, ValidationError, model_validator

from mailsim.scenario.builder import _default_fault_text
from mailsim.scenario.errors import Problem, ScenarioError, closest
from mailsim.scenario.loader import _EMPTY, _FAILED, _message, parse_yaml
from mailsim.scenario.schema.faults import ReplySpec
from mailsim.scenario.schema.fields import Address, Duration, Port, _fail, _text, _whole

#: The SMTP roles a live fault may name by their standard port.
LIVE_ROLES = {25: "smtp", 587: "submission", 465: "smtps"}


def _lines(value: Any) -> tuple[str, ...] | None:
    """A reply text: one line, or a list of lines (a multi-line reply, RFC 5321 4.2.1)."""
    if value is None:
        return None
    items = value if isinstance(value, list) else [value]
    if not items:
        _fail("needs at least one line of text, like '4.7.1 Greylisted'")
    lines = tuple(_text(item) if not isinstance(item, int | float) else str(item) for item in items)
    for line in lines:
        if "\r" in line or "\n" in line:
            _fail("a reply line cannot contain a line break; give a list of lines instead")
    return lines


def _optional_code(value: Any) -> int | None:
    return None if value is None else _whole(400, 599)(value)


class LabReplySpec(ReplySpec):
    """A reply fault for ``mailsim serve``: a :class:`ReplySpec` without ``server``, plus more."""

    server: None = Field(  # type: ignore[assignment]
        default=None, description="not used: mailsim serve is one server"
    )
    port: Port | None = Field(  # type: ignore[assignment]
        default=None, description="25 (MX), 587 (submission) or 465 (TLS); null: every SMTP port"
    )
    code: Annotated[int | None, BeforeValidator(_optional_code)] = Field(  # type: ignore[assignment]
        default=None, description="the reply code, 4xx or 5xx, like 451; null: the normal reply"
    )
    text: Annotated[tuple[str, ...] | None, BeforeValidator(_lines)] = Field(  # type: ignore[assignment]
        default=None, description="the reply text, or a list of lines for a multi-line reply"
    )
    address: Address | None = Field(
        default=None, alias="for", description="only the MAIL FROM or RCPT TO naming this address"
    )
    delay: Duration = Field(
        default=0.0, description="wait this long before the reply (and between its lines)"
    )

    @model_validator(mode="after")
    def _check(self) -> LabReplySpec:
        if self.code is None and self.delay <= 0:
            raise ValueError("a fault needs a code (like 451), or a delay (a slow server)")
        if self.code is None and self.text is not None:
            raise ValueError("a text needs a code to go with it")
        if self.port is not None and self.port not in LIVE_ROLES:
            raise ValueError(f"port must be 25, 587 or 465 (the SMTP roles), got {self.port}")
        if self.address is not None and self.command not in ("MAIL", "RCPT"):
            raise ValueError("for: applies to MAIL or RCPT only (the command naming an address)")
        if self.until is not None and self.until <= self.start:
            raise ValueError("until must be after from")
        return self

    def reply_lines(self) -> tuple[str, ...]:
        """The reply's lines: the text given, or the scenario language's default for the code."""
        if self.text is not None:
            return self.text
        return (_default_fault_text(self.code),) if self.code is not None else ()


_KEYS = sorted(
    (info.alias or name) for name, info in LabReplySpec.model_fields.items() if name != "server"
)


def _short_form(text: str) -> dict[str, Any] | None:
    """``RCPT 550 5.1.1 User unknown`` -> a mapping; None when it is not of that shape."""
    parts = text.split(None, 2)
    if len(parts) < 2 or not parts[1].isdigit():
        return None
    data: dict[str, Any] = {"command": parts[0], "code": int(parts[1])}
    if len(parts) == 3:
        data["text"] = parts[2]
    return data


def parse_fault(text: str, name: str = "--fault") -> LabReplySpec:
    """Parse one ``--fault`` value into a validated :class:`LabReplySpec`.

    Args:
        text: ``COMMAND CODE [TEXT]`` or a YAML flow mapping ``{command: ..., code: ...}``.
        name: what problems are reported against, like ``--fault[2]``.

    Raises:
        ScenarioError: one problem per mistake, as ``NAME:LINE:COL: field: what; expected``.
    """
    stripped = text.strip()
    if not stripped.startswith("{"):
        data = _short_form(stripped)
        if data is None:
            raise ScenarioError(
                [
                    Problem(
                        name,
                        1,
                        1,
                        "",
                        f"expected COMMAND CODE [TEXT] (like 'RCPT 550 5.1.1 User unknown') or a "
                        f"mapping (like '{{command: dot, code: 552}}'), got {text!r}",
                    )
                ]
            )
        return _validate(data, name, None)
    data, source, problems = parse_yaml(stripped, name)
    if data is _FAILED or problems:
        raise ScenarioError(problems)
    if data is _EMPTY or not isinstance(data, dict):
        raise ScenarioError([Problem(name, 1, 1, "", "expected a mapping like {command: RCPT}")])
    return _validate(data, name, source)


def _validate(data: dict[str, Any], name: str, source: Any) -> LabReplySpec:
    try:
        return LabReplySpec.model_validate(data)
    except ValidationError as error:
        problems = []
        details = error.errors()
        # A misspelt key is reported once, as unknown with its suggestion (as the loader does).
        meant = {
            closest(str(d["loc"][-1]), _KEYS) for d in details if d["type"] == "extra_forbidden"
        }
        for detail in details:
            loc = tuple(detail["loc"])
            if detail["type"] == "missing" and loc and loc[-1] in meant:
                continue
            line, col = 1, 1
            if source is not None:
                consumed, _ = source.locate(loc, data)
                line, col = source.position(consumed, at_key=detail["type"] == "extra_forbidden")
            field = ".".join(str(part) for part in loc)
            kind = detail["type"]
            if kind == "extra_forbidden":
                match = closest(str(loc[-1]), _KEYS)
                hint = (
                    f"did you mean '{match}'?" if match else f"expected one of {', '.join(_KEYS)}"
                )
                message = f"unknown key; {hint}"
            elif kind == "missing":
                message = "missing; expected the command whose reply is replaced, like RCPT"
            elif kind == "value_error":
                message = str(detail["msg"]).removeprefix("Value error, ")
            else:
                message = _message(
                    kind, detail.get("ctx") or {}, detail.get("input"), detail["msg"]
                )
            problems.append(Problem(name, line, col, field, message))
        raise ScenarioError(problems) from None
