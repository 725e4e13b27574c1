"""Explaining a list item whose shape (which kind of fault, attachment, size) could not be told."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mailsim.scenario.errors import closest, did_you_mean, shown

if TYPE_CHECKING:
    pass

from mailsim.scenario.schema.faults import FAULT_KINDS
from mailsim.scenario.schema.issues import Issue
from mailsim.scenario.schema.people import _SIZE_TAGS


def explain_shape(kind: str, value: Any) -> list[Issue]:
    """Why ``value`` fits none of the shapes of a union (``kind`` is the error type).

    The issues' ``loc`` is relative to ``value``. Used by the loader for the errors
    ``fault_shape``, ``attachment_shape``, ``record_shape`` and ``size_shape``.
    """
    examples = {
        "fault_shape": "{link: [a, b], down_at: 2min, down_for: 3h}",
        "attachment_shape": "{kind: photo, size: 2MB} or {file: path}",
        "record_shape": "{type: MX, name: usa.com, exchange: usa-mail}",
        "size_shape": "20KB or {distribution: lognormal, median: 20KB, sigma: 1}",
    }
    if not isinstance(value, dict):
        return [Issue((), f"must be a mapping like {examples[kind]}, got {shown(value)}")]
    if kind == "fault_shape":
        present = [key for key in FAULT_KINDS if key in value]
        if len(present) > 1:
            return [
                Issue(
                    (present[1],),
                    f"a fault has one of link, node, service, random or reply, but this one has "
                    f"both {present[0]} and {present[1]}; split it into two faults",
                    at_key=True,
                )
            ]
        return _unknown_keys(
            value,
            list(FAULT_KINDS),
            "does not say what fails; a fault has one of link, node, service, random or reply",
        )
    if kind == "attachment_shape":
        if "file" in value:
            return [
                Issue(
                    ("file",),
                    "an attachment is either made up ({kind: photo, size: 2MB}) or a real file "
                    "({file: path}), not both",
                    at_key=True,
                )
            ]
        return _unknown_keys(
            value,
            ["kind", "size", "file"],
            "does not say what it is; expected {kind: photo, size: 2MB} or {file: path}",
        )
    if kind == "record_shape":
        if "type" not in value:
            return [Issue(("type",), "missing; expected MX or A")]
        kind_text = value["type"]
        return [Issue(("type",), f"must be MX or A, got {shown(kind_text)}")]
    # size_shape
    if "distribution" in value:
        got = value["distribution"]
        options = list(_SIZE_TAGS)
        return [
            Issue(
                ("distribution",),
                f"must be one of fixed, lognormal, uniform, got {shown(got)}"
                f"{did_you_mean(got, options)}",
            )
        ]
    return _unknown_keys(
        value,
        ["size", "median", "min", "distribution"],
        f"does not say what distribution it is; expected {examples[kind]}",
    )


def _unknown_keys(value: dict[Any, Any], wanted: list[str], otherwise: str) -> list[Issue]:
    issues = [
        Issue((key,), f"unknown key; did you mean '{match}'?", at_key=True)
        for key in value
        if (match := closest(key, wanted)) is not None
    ]
    return issues or [Issue((), otherwise)]
