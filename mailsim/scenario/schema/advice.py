"""Warnings: what is valid but probably not what the author meant.

A scenario that passes every check can still surprise its author at run time: a mistyped
recipient only bounces once the simulation has run, ``latency: 60`` is a minute rather than
60 ms, and a mail server that no other can reach keeps the mail for it queued until it bounces.
:func:`check_advice` finds these in a valid scenario; the loader places each one in the file like
an error, ``mailsim validate`` prints them (exit 0) and ``mailsim validate --strict`` makes them
errors (exit 2).
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Union, get_args, get_origin

from pydantic import BaseModel, BeforeValidator

from mailsim.mail.units import format_duration, format_rate, format_size
from mailsim.scenario.errors import closest
from mailsim.scenario.schema.fields import (
    _bandwidth,
    _duration,
    _positive_duration,
    _positive_size,
    _size,
)
from mailsim.scenario.schema.issues import Issue, Loc
from mailsim.scenario.schema.references import ScenarioParts, path_exists
from mailsim.scenario.schema.workload import check_workload_advice

if TYPE_CHECKING:
    from mailsim.scenario.schema.scenario import Scenario

__all__ = ["check_advice"]

#: Quantity parsers, by what a bare number given to them means.
_QUANTITIES: dict[Any, str] = {
    _duration: "duration",
    _positive_duration: "duration",
    _size: "size",
    _positive_size: "size",
    _bandwidth: "rate",
}
_BARE_NUMBER = re.compile(r"\s*[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\s*")
#: Local parts every mail server accepts without a user of that name (RFC 5321 4.5.1).
_ALWAYS_ACCEPTED = frozenset({"postmaster"})


def check_advice(scenario: Scenario, data: dict[str, Any]) -> list[Issue]:
    """The warnings of a valid ``scenario``, in the order of its sections.

    Args:
        scenario: the validated scenario.
        data: the data it was validated from (as the YAML holds it), to tell ``60`` from ``60s``.

    Returns:
        One :class:`Issue` per warning; each message starts with ``warning:``.
    """
    issues = list(_bare_numbers(scenario, data, ()))
    issues += _unreachable_servers(scenario)
    issues += _unserved_recipients(scenario, data)
    issues += check_workload_advice(ScenarioParts.of(scenario))
    return sorted(issues, key=lambda issue: _section_order(issue.loc))


def _section_order(loc: Loc) -> int:
    order = ("name", "duration", "nodes", "links", "dns", "servers", "users", "messages")
    return order.index(str(loc[0])) if loc and loc[0] in order else len(order)


# --- bare numbers -------------------------------------------------------------------------------


def _quantity_of(annotation: Any) -> str | None:
    """ "duration", "size" or "rate" when ``annotation`` is one of the quantity types."""
    if get_origin(annotation) in (Union, types.UnionType):
        kinds = {_quantity_of(member) for member in get_args(annotation)} - {None}
        return kinds.pop() if len(kinds) == 1 else None
    if get_origin(annotation) is typing.Annotated:
        for meta in annotation.__metadata__:
            if isinstance(meta, BeforeValidator) and meta.func in _QUANTITIES:
                return _QUANTITIES[meta.func]
    return None


def _is_bare_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return True
    return isinstance(value, str) and _BARE_NUMBER.fullmatch(value) is not None


def _bare_numbers(model: BaseModel, raw: Any, loc: Loc) -> Iterator[Issue]:
    """A warning for every quantity field of ``model`` written as a bare non-zero number."""
    if not isinstance(raw, dict):
        return  # a validator rewrote it (a size given as a scalar); nothing written to judge
    for name, info in type(model).model_fields.items():
        key = info.alias or name
        if key not in raw:
            continue
        written, value = raw[key], getattr(model, name)
        kind = _quantity_of(info.annotation)
        if kind is None and info.metadata:
            kind = _quantity_of(typing.Annotated[(info.annotation, *info.metadata)])
        if kind is not None:
            if _is_bare_number(written) and float(written) != 0:
                yield Issue((*loc, key), _bare_number_message(kind, float(written)))
        elif isinstance(value, BaseModel):
            yield from _bare_numbers(value, written, (*loc, key))
        elif isinstance(value, list) and isinstance(written, list):
            for index, (item, raw_item) in enumerate(zip(value, written, strict=False)):
                if isinstance(item, BaseModel):
                    yield from _bare_numbers(item, raw_item, (*loc, key, index))
        elif isinstance(value, dict) and isinstance(written, dict):
            for item_key, item in value.items():
                if isinstance(item, BaseModel) and item_key in written:
                    yield from _bare_numbers(item, written[item_key], (*loc, key, item_key))


def _bare_number_message(kind: str, number: float) -> str:
    text = f"{number:g}"
    if kind == "duration":
        unit, means, plain = "seconds", format_duration(number), f"{text}s"
        other = f", or '{text}ms' if you meant milliseconds"
    elif kind == "size":
        unit, means, plain, other = "bytes", format_size(round(number)), f"{text}B", ""
    else:
        unit, means, plain = "bits per second", format_rate(number), f"{text}bps"
        other = f", or '{text}Mbps' if you meant megabits"
    return (
        f"warning: a bare number counts as {unit}, so {text} means {means}; "
        f"write the unit, like '{plain}'{other}"
    )


# --- mail servers nobody can reach --------------------------------------------------------------


def _unreachable_servers(scenario: Scenario) -> Iterator[Issue]:
    """A warning for every mail server that some other mail server has no path to."""
    servers = scenario.mail_servers
    if len(servers) < 2:
        return
    kinds = {name: node.kind for name, node in scenario.nodes.items()}
    adjacent: dict[str, set[str]] = {}
    for link in scenario.links:
        a, b = link.between
        adjacent.setdefault(a, set()).add(b)
        adjacent.setdefault(b, set()).add(a)
    for name, node in servers.items():
        cut_off = [other for other in servers if other != name]
        cut_off = [other for other in cut_off if not path_exists(adjacent, kinds, other, name)]
        if not cut_off:
            continue
        who = "no other mail server" if len(cut_off) == len(servers) - 1 else ", ".join(cut_off)
        domains = ", ".join(node.domains)
        yield Issue(
            ("nodes", name),
            f"warning: {who} can reach {name} (there is no path through routers and mail "
            f"servers), so mail for {domains} from other domains waits in their queues until it "
            f"bounces; link {name} to the rest of the network",
            at_key=True,
        )


# --- recipients nobody serves -------------------------------------------------------------------


def _unserved_recipients(scenario: Scenario, data: dict[str, Any]) -> Iterator[Issue]:
    """A warning for every recipient whose domain no server serves, or who has no mailbox."""
    users = {user.address.lower(): user.address for user in scenario.users}
    served = {
        domain.lower(): name
        for name, node in scenario.mail_servers.items()
        for domain in node.domains
    }
    written = data.get("messages")
    raw_messages: list[Any] = written if isinstance(written, list) else []
    for index, message in enumerate(scenario.messages):
        raw = raw_messages[index] if index < len(raw_messages) else {}
        for key in ("to", "cc", "bcc"):
            listed = isinstance(raw, dict) and isinstance(raw.get(key), list)
            for number, address in enumerate(getattr(message, key)):
                loc: Loc = ("messages", index, key, number) if listed else ("messages", index, key)
                problem = _unserved(address, served, users)
                if problem:
                    yield Issue(loc, f"warning: {problem}, and {message.sender} gets a bounce")
    for index, generator in enumerate(scenario.traffic):
        for number, address in enumerate(generator.recipients or []):
            problem = _unserved(address, served, users)
            if problem:
                loc = ("traffic", index, "recipients", number)
                yield Issue(loc, f"warning: {problem}, and every message to it bounces")


def _unserved(address: str, served: dict[str, str], users: dict[str, str]) -> str:
    """Why mail to ``address`` cannot be delivered in this scenario, or an empty string."""
    local, domain = address.rsplit("@", 1)
    server = served.get(domain.lower())
    if server is None:
        match = closest(domain, served, cutoff=0.8)
        hint = f" (did you mean {match}?)" if match else ""
        return (
            f"no mail server of this scenario serves {domain}{hint}, so the MX lookup for "
            f"{address} fails"
        )
    if address.lower() in users or local.lower() in _ALWAYS_ACCEPTED:
        return ""
    colleagues = [spelt for key, spelt in users.items() if key.endswith("@" + domain.lower())]
    match = closest(address, colleagues)
    hint = f" (did you mean {match}?)" if match else ""
    return (
        f"{server} serves {domain} but has no user {address}{hint}, so {server} will refuse it "
        "(550 user unknown)"
    )
