"""What the sequence chart draws when not everything fits: connections chosen by what they carry.

A story's connections are not equally telling. Those that move mail (James's submission, the
relay that delivers, Steve's fetch that retrieves it) come first; then the failed attempts of the
story (a connect timeout while the link is down); then connections that carried nothing; and
the many POP3 checks that found no new mail come last. Each connection is drawn at one of three
levels:

- ``full``: every protocol line an arrow (the usual chart);
- ``box``: one box between its client's and its server's lanes, as long as the connection lasted,
  saying what it carried (``india-mail → usa-mail: 5 messages, 14 round trips``);
- ``folded``: not drawn, but counted in plain words in a grey band at its place in time
  (``steve-pc checked its mailbox on usa-mail 12 times: nothing new``).

:func:`steps` yields ever smaller plans; the chart lays each out and takes the first that fits.
Runs of empty checks are always folded when anything else is drawn. The order of the steps:
fold connections that carried nothing, box the submissions, box the fetches, fold the failed
tries between the first and the last of each run, box the relays (the longest first), fold
the other failed tries, and last fold the boxes: submissions, fetches, then relays, the latest
of each first.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from mailsim.trace.connections import Connection

#: Levels of drawing.
FULL, BOX, FOLDED = "full", "box", "folded"

_VERBS = {"submission": "submitted", "relay": "relayed", "session": "typed", "mailbox": "fetched"}
_ROLE_NOUNS = {
    "submission": ("submission", "submissions"),
    "relay": ("relay connection", "relay connections"),
    "session": ("typed session", "typed sessions"),
    "mailbox": ("POP3 fetch that retrieved mail", "POP3 fetches that retrieved mail"),
}
_REASONS = {
    "timeout": "connect timeout",
    "refused": "connection refused",
    "unreachable": "no route",
}


def category(connection: Connection) -> str:
    """``moving``, ``failed``, ``empty`` (a POP3 check that found nothing) or ``other``."""
    if connection.messages:
        return "moving"
    if connection.failed or connection.refused:
        return "failed"
    if connection.role == "mailbox":
        return "empty"
    return "other"


@dataclass
class Plan:
    """How each connection is drawn: ``levels[conn]`` is FULL, BOX or FOLDED."""

    levels: dict[int, str]
    #: What the chart left out or boxed, in plain words, for the note under it.
    note: str = ""

    def at(self, level: str) -> list[int]:
        """The connections drawn at ``level``, in order."""
        return [conn for conn, drawn in self.levels.items() if drawn == level]


@dataclass
class _Planner:
    found: dict[int, Connection]
    costs: dict[int, float]
    levels: dict[int, str] = field(default_factory=dict)

    def snapshot(self) -> Plan:
        return Plan(dict(self.levels), note=describe(self.found, self.levels))

    def set_level(self, conns: list[int], level: str) -> bool:
        changed = [c for c in conns if self.levels.get(c) != level]
        for conn in changed:
            self.levels[conn] = level
        return bool(changed)


def steps(found: dict[int, Connection], costs: dict[int, float]) -> Iterator[Plan]:
    """Plans from the richest to the leanest; each differs from the one before.

    Args:
        found: the connections to draw (those the selection of the chart holds), by id.
        costs: rows each connection takes when drawn in full (its arrows), by id.
    """
    planner = _Planner(found, costs, dict.fromkeys(found, FULL))
    by_kind: dict[str, list[int]] = {}
    for conn, connection in found.items():
        by_kind.setdefault(category(connection), []).append(conn)
    if len(by_kind.get("empty", [])) < len(found):
        planner.set_level(by_kind.get("empty", []), FOLDED)
    yield planner.snapshot()
    moving = by_kind.get("moving", [])
    roles = {conn: found[conn].role for conn in moving}
    failed = by_kind.get("failed", [])
    middles = _middles(found, failed)
    plan_steps: list[tuple[list[int], str]] = [
        (by_kind.get("other", []), FOLDED),
        ([c for c in moving if roles[c] == "submission"], BOX),
        ([c for c in moving if roles[c] == "mailbox"], BOX),
        (middles, FOLDED),
    ]
    relays = [c for c in moving if roles[c] in ("relay", "session")]
    longest_first = sorted(relays, key=lambda c: -costs.get(c, 0.0))
    plan_steps += [(batch, BOX) for batch in _doubling(longest_first)]
    folded = set(middles)
    ends = [c for c in reversed(failed) if c not in folded]  # the last tries first
    plan_steps += [(batch, FOLDED) for batch in _halving(ends)]
    # Boxes go last, submissions first and relays last, the latest of each first.
    for role in ("submission", "mailbox", "relay", "session"):
        latest_first = [c for c in reversed(moving) if roles[c] == role]
        plan_steps += [(batch, FOLDED) for batch in _halving(latest_first)]
    for conns, level in plan_steps:
        if planner.set_level(conns, level):
            yield planner.snapshot()


def _doubling(conns: list[int]) -> Iterator[list[int]]:
    """``conns`` in batches of 1, 1, 2, 4, 8...: a few connections are changed one by one, a
    busy day's thousands in a dozen steps."""
    start, size = 0, 1
    while start < len(conns):
        yield conns[start : start + size]
        start += size
        size = max(1, start)


def _halving(conns: list[int]) -> Iterator[list[int]]:
    """``conns`` in batches that leave half, a quarter, ... of them, then 4, 2, 1, none: the
    last few are changed one by one."""
    start = 0
    while start < len(conns):
        left = len(conns) - start
        size = left - left // 2 if left > 4 else 1
        yield conns[start : start + size]
        start += size


def estimate(plan: Plan, found: dict[int, Connection], arrows: dict[int, int]) -> float:
    """The fewest rows ``plan`` can take: a row per arrow of a FULL connection, two per failed
    try (its mark and a band), and a box's height per box. A plan above the budget by this
    count need not be laid out."""
    rows = 0.0
    for conn, level in plan.levels.items():
        if level == FULL:
            rows += arrows.get(conn, 0) + (2.0 if found[conn].failed else 0.0)
        elif level == BOX:
            rows += 2.5
    return rows


def _middles(found: dict[int, Connection], failed: list[int]) -> list[int]:
    """The failed tries between the first and the last of each run of tries between the same
    client and server (a retry story keeps its beginning and its end)."""
    runs: dict[tuple[str, str], list[int]] = {}
    for conn in failed:
        runs.setdefault((found[conn].client, found[conn].server), []).append(conn)
    return [conn for run in runs.values() for conn in run[1:-1]]


# --- words --------------------------------------------------------------------------------------


def fold_key(connection: Connection) -> tuple[str, ...]:
    """Folded connections with the same key are counted together in one sentence."""
    kind = category(connection)
    if kind == "failed":
        return ("failed", connection.client, connection.server, failure(connection))
    if kind == "moving":
        return ("moving", connection.role, connection.client, connection.server)
    return (kind, connection.client, connection.server)


def failure(connection: Connection) -> str:
    """Why a connection failed, in words: ``connect timeout``, ``refused with 4xx/5xx``."""
    if connection.failed:
        return _REASONS.get(connection.failed, connection.failed)
    return "refused with an error reply"


def sentence(group: list[Connection]) -> str:
    """One sentence for folded connections that share a :func:`fold_key`."""
    first = group[0]
    n = len(group)
    times = f"{n} times" if n > 1 else "once"
    kind = category(first)
    if kind == "empty":
        return f"{first.client} checked its mailbox on {first.server} {times}: nothing new"
    if kind == "failed":
        tries = "a try" if n == 1 else f"{n} tries"
        return f"{first.client} → {first.server}: {tries} failed ({failure(first)})"
    if kind == "moving":
        return box_text(group)
    return f"{first.client} → {first.server}: {n} connection{'s' if n > 1 else ''}, no mail"


def box_text(group: list[Connection]) -> str:
    """What connections moved, as a box or a band says it."""
    first = group[0]
    messages = sum(c.messages for c in group)
    trips = sum(c.round_trips for c in group)
    mail = f"{messages} message{'s' if messages != 1 else ''}"
    verb = _VERBS[first.role]
    over = f" over {len(group)} connections" if len(group) > 1 else ""
    return f"{first.client} {verb} {mail}{over} ({trips} round trips)"


def box_label(connection: Connection) -> str:
    """The lines inside a connection's box: which it is, the messages it carried (its lanes say
    what kind of connection it is), and its round trips."""
    mail = f"{connection.messages} message{'s' if connection.messages != 1 else ''}"
    return f"conn {connection.conn}: {mail}\n{connection.round_trips} round trips"


def describe(found: dict[int, Connection], levels: dict[int, str]) -> str:
    """What a plan leaves out or boxes, in words a student reads under the chart."""
    parts = []
    folded = [found[c] for c, level in levels.items() if level == FOLDED]
    counts: dict[str, int] = {}
    for connection in folded:
        kind = category(connection)
        counts[kind] = counts.get(kind, 0) + 1
    if counts.get("empty"):
        n = counts["empty"]
        parts.append(f"{n} POP3 check{'s' if n > 1 else ''} that found no new mail")
    if counts.get("failed"):
        n = counts["failed"]
        total = sum(1 for c in found.values() if category(c) == "failed")
        parts.append(f"{n} of {total} failed tries")
    if counts.get("other"):
        n = counts["other"]
        parts.append(f"{n} connection{'s' if n > 1 else ''} that carried no mail")
    roles: dict[str, int] = {}
    for connection in folded:
        if category(connection) == "moving":
            roles[connection.role] = roles.get(connection.role, 0) + 1
    for role, (one, many) in _ROLE_NOUNS.items():
        n = roles.get(role, 0)
        if n:
            parts.append(f"{n} {one if n == 1 else many}")
    note = ""
    if parts:
        note = "Not drawn, but counted in the grey bands: " + "; ".join(parts) + "."
    boxed = sum(1 for level in levels.values() if level == BOX)
    if boxed:
        note += (" " if note else "") + (
            f"{boxed} connection{'s' if boxed > 1 else ''} drawn as a box (what it carried, "
            "not each line); draw one in full with connection=N."
        )
    return note
