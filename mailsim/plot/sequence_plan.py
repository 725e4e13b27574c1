"""What the sequence chart draws when not everything fits: connections chosen by what they teach.

A story's connections are not equally telling. First come those whose replies the story turns
on: a refused command and its reply (``RCPT → 550 5.1.1 …``), a greeting of 421, a message
deferred or bounced (``552 5.3.4`` for one too big to send, ``451 4.4.2`` for a connection lost
after the final dot), an HTTP download, and the first and the last failed try of each run of
connect timeouts. Then the connections that move mail (relays, typed sessions, the fetches
that retrieve it, submissions); then the failed tries in the middle of a run; then connections
that carried nothing; the many POP3 checks that found no new mail come last. Each connection is
drawn at one of three levels:

- ``full``: every protocol line an arrow (the usual chart);
- ``box``: one box between its client's and its server's lanes, saying what it carried and its
  decisive replies (``conn 4: 0 messages, 6 round trips`` / ``RCPT → 550 5.1.1 …``);
- ``folded``: not drawn, but counted in plain words in a grey band at its place in time
  (``steve-pc checked its mailbox on usa-mail 12 times: nothing new``).

:func:`choose` fills the chart it is given: if everything fits line by line it draws
everything; otherwise it starts from nothing drawn and, in the order above, draws each
connection as a box where it still fits (one left out is tried again once something drawn
after it has taken a band away), then in full where it still fits. So the chart uses its room
before it folds, and what it folds is what teaches least.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from mailsim.plot._style import human_duration
from mailsim.trace.connections import Connection

#: Levels of drawing.
FULL, BOX, FOLDED = "full", "box", "folded"
#: Connections the planner tries to draw at all (a busy day's thousands past these are folded
#: without a try: each try lays the chart out once).
MAX_TRIES = 240
#: Decisive lines a box names at most.
BOX_LINES = 2

_VERBS = {"submission": "submitted", "relay": "relayed", "session": "typed", "mailbox": "fetched"}
_ROLE_NOUNS = {
    "submission": ("submission", "submissions"),
    "relay": ("relay connection", "relay connections"),
    "session": ("typed session", "typed sessions"),
    "mailbox": ("POP3 fetch that retrieved mail", "POP3 fetches that retrieved mail"),
}
#: Moving connections in the order they teach: the relay is the story, a typed session the
#: tutorial's exercise, the submission its start.
_ROLE_ORDER = ("relay", "session", "mailbox", "submission")
#: A command as a box names it: ``RCPT TO:<stev@usa.com>`` without its ESMTP parameters.
_COMMAND = re.compile(r"^(\S+(?: [^ ]*<[^>]*>)?) .*$")
_HTTP_REQUEST = re.compile(r"^[A-Z]+ \S+ HTTP/\d")
#: A band's sentence for one folded connection whose replies decide the story.
_DECISIVE_SENTENCE = re.compile(r"^conn \d+, \S+ → \S+: ")

Record = dict[str, Any]

_REASONS = {
    "timeout": "connect timeout",
    "refused": "connection refused",
    "unreachable": "no route",
}


@dataclass(frozen=True)
class Story:
    """What one connection teaches, read from its lines by the chart: its decisive lines
    (``RCPT → 550 5.1.1 …``, ``GET /a.txt → HTTP/1.1 200 OK``) and whether it spoke HTTP."""

    decisive: tuple[str, ...] = ()
    http: bool = False


def category(connection: Connection, story: Story | None = None) -> str:
    """``moving``, ``http``, ``failed``, ``empty`` (a POP3 check that found nothing) or
    ``other``."""
    if connection.messages:
        return "moving"
    if story is not None and story.http:
        return "http"
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


def ranked(found: dict[int, Connection], stories: dict[int, Story]) -> list[int]:
    """The connections worth drawing, most telling first (module docstring); the empty POP3
    checks only when there is nothing else."""
    failed_runs: dict[tuple[str, str], list[int]] = {}
    for conn, connection in found.items():
        if connection.failed:
            failed_runs.setdefault((connection.client, connection.server), []).append(conn)
    run_ends = {conn for run in failed_runs.values() for conn in (run[0], run[-1])}

    def tier(conn: int) -> int:
        connection, story = found[conn], stories.get(conn, Story())
        kind = category(connection, story)
        # A failed connect's deferral says only that it failed: its run's ends tell the story.
        if (story.decisive and not connection.failed) or story.http or conn in run_ends:
            return 0
        if kind == "moving":
            return 1 + _ROLE_ORDER.index(connection.role)
        return {"failed": 5, "other": 6}.get(kind, 7)

    tiers = {conn: tier(conn) for conn in found}
    if any(level < 7 for level in tiers.values()):
        tiers = {conn: level for conn, level in tiers.items() if level < 7}
    return sorted(tiers, key=lambda conn: (tiers[conn], found[conn].opened))


def choose(
    found: dict[int, Connection],
    stories: dict[int, Story],
    fits: Callable[[dict[int, str]], bool],
    pinned: int | None = None,
) -> Plan:
    """The plan the chart draws: everything in full if that ``fits``, else filled greedily.

    Args:
        found: the connections the chart's selection holds, by id.
        stories: what each teaches (:class:`Story`), by id.
        fits: whether a chart that draws these connections at these levels (FULL or BOX; the
            rest folded) fits its rows (the caller lays it out). Each try names only what it
            draws, so a try costs what it draws, not the thousands of connections of a busy day.
        pinned: a connection always drawn in full (the highlighted event's).
    """
    order = ranked(found, stories)
    everything = dict.fromkeys(order, FULL)
    if fits(everything):
        return _plan(found, stories, everything)
    drawn: dict[int, str] = {}
    if pinned in found:
        drawn[pinned] = FULL
    tries = [conn for conn in order if conn != pinned][:MAX_TRIES]
    # A failed connect is one mark, no smaller as a box: it is drawn in full or not at all.
    # First the connections whose replies the story turns on, each alone, so that none is
    # crowded out by the neighbours an earlier one brought along (a crash connection late in
    # the day behind the submissions beside each refusal).
    for conn in tries:
        if _decisive(found[conn], stories.get(conn)):
            drawn[conn] = FULL if found[conn].failed else BOX
            if not fits(drawn):
                del drawn[conn]
    left_out: list[int] = []  # tried and not drawn, until something after them was drawn
    retry: list[int] = []
    for conn in tries:
        if conn in drawn:
            continue
        # A folded neighbour costs a band's sentence: try the connection with the connections
        # open at the same time (James's submission beside the relay it starts) drawn too.
        for group in ([conn], [conn, *_beside(found, drawn, tries, conn)]):
            if _draw_if_it_fits(found, drawn, group, fits):
                retry += left_out
                left_out = []
                break
        else:
            left_out.append(conn)
    # What was drawn after a connection was left out may have made room for it: drawn, a
    # connection no longer costs the band's sentence it had folded (the submissions beside
    # the relays, drawn after Steve's fetch was tried, took their band away).
    for conn in retry:
        if conn not in drawn:
            _draw_if_it_fits(found, drawn, [conn], fits)
    for conn in tries:
        if drawn.get(conn) == BOX:
            drawn[conn] = FULL
            if not fits(drawn):
                drawn[conn] = BOX
    return _plan(found, stories, drawn)


def _draw_if_it_fits(
    found: dict[int, Connection],
    drawn: dict[int, str],
    group: list[int],
    fits: Callable[[dict[int, str]], bool],
) -> bool:
    """Add ``group`` to ``drawn`` (a failed connect in full, the rest as boxes) if the chart
    still ``fits``; whether it did."""
    for c in group:
        drawn[c] = FULL if found[c].failed else BOX
    if fits(drawn):
        return True
    for c in group:
        del drawn[c]
    return False


def _decisive(connection: Connection, story: Story | None) -> bool:
    """Whether a connection's replies are what the story turns on (a refusal, a deferral, a
    bounce, an HTTP download; not a failed connect, whose run's ends tell that story)."""
    return story is not None and (story.http or (bool(story.decisive) and not connection.failed))


def _beside(
    found: dict[int, Connection], drawn: dict[int, str], tries: list[int], conn: int
) -> list[int]:
    """The folded connections among ``tries`` open while ``conn`` is, give or take a second."""
    t0, t1 = found[conn].opened - 1.0, found[conn].end + 1.0
    return [
        c
        for c in tries
        if c != conn and c not in drawn and found[c].opened <= t1 and found[c].end >= t0
    ]


def _plan(found: dict[int, Connection], stories: dict[int, Story], drawn: dict[int, str]) -> Plan:
    """The plan of every connection in ``found``: as ``drawn`` says, else folded."""
    levels = {conn: drawn.get(conn, FOLDED) for conn in found}
    return Plan(levels, note=describe(found, stories, levels))


def estimate(
    levels: dict[int, str], found: dict[int, Connection], arrows: dict[int, int], box_rows: float
) -> float:
    """The fewest rows ``levels`` can take: a row per arrow of a FULL connection, one per
    failed try, and ``box_rows`` per box. Levels above the budget by this count need not be
    laid out."""
    rows = 0.0
    for conn, level in levels.items():
        if level == FULL:
            rows += arrows.get(conn, 0) + (1.0 if found[conn].failed else 0.0)
        elif level == BOX:
            rows += box_rows
    return rows


# --- words --------------------------------------------------------------------------------------


def fold_key(connection: Connection, story: Story | None = None) -> tuple[str, ...]:
    """Folded connections with the same key are counted together in one sentence."""
    if _decisive(connection, story):
        return ("decisive", str(connection.conn))  # a sentence of its own, never counted in
    kind = category(connection, story)
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


def sentence(group: list[Connection], stories: dict[int, Story] | None = None) -> str:
    """One sentence for folded connections that share a :func:`fold_key`."""
    first = group[0]
    n = len(group)
    times = f"{n} times" if n > 1 else "once"
    story = (stories or {}).get(first.conn)
    if story is not None and _decisive(first, story):
        # A folded refusal or deferral still says what decided it: the lesson stays on the
        # chart when its box does not fit.
        return f"conn {first.conn}, {first.client} → {first.server}: {story.decisive[0]}"
    kind = category(first, story)
    if kind == "empty":
        return f"{first.client} checked its mailbox on {first.server} {times}: nothing new"
    if kind == "failed":
        tries = "a try" if n == 1 else f"{n} tries"
        return f"{first.client} → {first.server}: {tries} failed ({failure(first)})"
    if kind == "moving":
        return box_text(group)
    if kind == "http":
        return f"{first.client} → {first.server}: {n} HTTP connection{'s' if n > 1 else ''}"
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


def box_label(connection: Connection, story: Story | None = None) -> list[str]:
    """The lines inside a connection's box: which it is, the messages it carried, its round
    trips and how long it was open (its lanes say what kind of connection it is), then its
    decisive lines.

    Boxes are drawn one row high whatever they last, so the duration is what shows that a 6.8 MB
    video's relay costs 25 s and a note's 1.3 s (``attachments``), or that one connection for
    five messages beats five (``persistent-connection``). A box with decisive lines leaves it
    out: the reply is its lesson, and a third item would wrap its first line.
    """
    story = story or Story()
    if story.http and not connection.messages:
        head = f"conn {connection.conn}: HTTP"
    else:
        mail = f"{connection.messages} message{'s' if connection.messages != 1 else ''}"
        if connection.messages:  # the lanes say who; the verb says what for
            mail = f"{_VERBS[connection.role]} {mail}"
        trips = f"{connection.round_trips} round trips"
        if not story.decisive:  # two short lines fit a narrow box
            took = human_duration(connection.end - connection.opened)
            return [f"conn {connection.conn}: {mail}", f"{trips}, {took}"]
        head = f"conn {connection.conn}: {mail}, {trips}"
    # The first refusal decides; later ones follow from it (a DATA refused after its RCPT
    # was), except what the lines did not say (a message deferred or bounced without a reply).
    first, *rest = story.decisive or ("",)
    decisive = [first, *(line for line in rest if line.startswith(("deferred:", "bounced:")))]
    return [head, *[line for line in decisive if line][:BOX_LINES]]


def without_verb(head: str) -> str:
    """A box's first line without the verb :func:`box_label` gave it, for a narrow box:
    ``conn 2: relayed 5 messages`` becomes ``conn 2: 5 messages``."""
    conn, _, rest = head.partition(": ")
    verb, _, mail = rest.partition(" ")
    return f"{conn}: {mail}" if mail and verb in _VERBS.values() else head


def describe(
    found: dict[int, Connection], stories: dict[int, Story], levels: dict[int, str]
) -> str:
    """What a plan leaves out or boxes, in words a student reads under the chart."""
    parts = []
    folded = [found[c] for c, level in levels.items() if level == FOLDED]
    counts: dict[str, int] = {}
    for connection in folded:
        kind = category(connection, stories.get(connection.conn))
        counts[kind] = counts.get(kind, 0) + 1
    if counts.get("empty"):
        n = counts["empty"]
        parts.append(f"{n} POP3 check{'s' if n > 1 else ''} that found no new mail")
    if counts.get("failed"):
        n = counts["failed"]
        total = sum(1 for c in found.values() if category(c, stories.get(c.conn)) == "failed")
        parts.append(f"{n} of {total} failed tries")
    if counts.get("http"):
        n = counts["http"]
        parts.append(f"{n} HTTP connection{'s' if n > 1 else ''}")
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
            f"{boxed} connection{'s' if boxed > 1 else ''} drawn as a box (what it carried and "
            "its decisive replies, not each line); draw one in full with connection=N."
        )
    return note


# --- reading what each connection teaches ------------------------------------------------------


def is_decisive_sentence(line: str) -> bool:
    """Whether a band's sentence names a decisive reply (drawn like an error reply)."""
    return _DECISIVE_SENTENCE.match(line) is not None


def stories(records: Iterable[Record]) -> dict[int, Story]:
    """Per connection, its decisive lines: each 4xx/5xx reply (``-ERR`` in POP3) with the
    command it answered, the reply a message was deferred or bounced with when no line of the
    connection said it (``552 5.3.4`` for a message too big to try), and each HTTP request with
    its status line."""
    decisive: dict[int, list[str]] = {}
    http: set[int] = set()
    pending: dict[int, deque[str]] = {}
    in_data: set[int] = set()
    attempts: dict[tuple[str, str], int] = {}
    for rec in records:
        kind = rec["type"]
        if kind == "mail.attempt" and "conn" in rec:
            attempts[(rec["node"], rec["msg"])] = rec["conn"]
        elif kind in ("mail.defer", "mail.bounce"):
            conn = attempts.get((rec["node"], rec["msg"]))
            reply = str(rec.get("reply", ""))
            said = decisive.setdefault(conn, []) if conn is not None else []
            if conn is not None and reply and not any(reply in line for line in said):
                verb = "deferred" if kind == "mail.defer" else "bounced"
                said.append(f"{verb}: {reply}")
        elif kind in ("smtp.line", "pop3.line", "http.line"):
            conn, side, line = rec["conn"], rec["side"], rec["line"]
            waiting = pending.setdefault(conn, deque(["greeting"] if kind != "http.line" else []))
            if kind == "http.line":
                http.add(conn)
            if side == "C":
                if conn in in_data:
                    if line == ".":
                        in_data.discard(conn)
                        waiting.append("final dot")
                    continue
                if kind != "http.line":
                    waiting.append(_COMMAND.sub(r"\1", line))
                elif _HTTP_REQUEST.match(line):
                    waiting.append(line.rsplit(" ", 1)[0])  # without its HTTP version
                continue
            if kind == "http.line":
                if line.startswith("HTTP/") and waiting:
                    decisive.setdefault(conn, []).append(f"{waiting.popleft()} → {line}")
                continue
            if kind == "pop3.line" and not line.startswith(("+OK", "-ERR")):
                continue  # a line of a multi-line answer
            if kind == "smtp.line" and line[3:4] == "-":
                continue  # not the last line of a reply
            command = waiting.popleft() if waiting else "?"
            if line.startswith("354"):
                in_data.add(conn)
            if line.startswith("-ERR") or (kind == "smtp.line" and line[:1] in ("4", "5")):
                decisive.setdefault(conn, []).append(f"{command} → {line}")
    return {
        conn: Story(tuple(decisive.get(conn, ())), conn in http)
        for conn in set(decisive) | http
        if conn is not None
    }
