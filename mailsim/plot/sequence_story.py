"""One message's story: the connections that carried it, for a run too busy to chart whole.

A day of thousands of connections cannot be drawn line by line, and bands that count them say
little. What teaches is one message followed from end to end: the submission that handed it to
its user's server, each try to pass it on (the connects that time out while a link is down, the
waits in the queue between them), the relay that succeeded, and the POP3 session that took it
out of the recipient's mailbox; for a bounced message, the bounce report's way back as well.

:func:`message_story` finds those connections in the trace:

- the submission: the connection whose reply to the final dot names the queue id the message
  got (``250 2.0.0 Ok: queued as USAMAIL00148``, ``mail.queue``'s ``queue_id``), or, for mail
  delivered where it was handed in (no queue id), the server's 250 at ``mail.submit``'s moment;
- every try: the ``conn`` of each ``mail.attempt`` of the message, failed connects included;
- the fetch: the POP3 connection to the server a ``mail.fetch`` names, open at its moment, in
  which that user logged in (``USER uma`` or ``APOP uma …``).

:func:`telling_message` picks the message whose story teaches most: one that was retrieved
by its recipient (or whose bounce report was) after the most failed tries, up to
:data:`TELLING_TRIES`, the earliest of those; failing that, one delivered or bounced, ranked
the same way; failing that, the earliest message.
``render_all`` draws that story as ``sequence.png`` when a run has more than
:data:`STORY_AFTER` connections.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from mailsim.plot._style import PlotError, clock, human_duration
from mailsim.plot.sequence_model import Aside
from mailsim.plot.topology import Topology, read_topology

Record = dict[str, Any]

#: A run with more connections than this gets one message's story as its sequence chart: a
#: 160-row chart holds a few dozen connections line by line, and the bundled scenarios other
#: than busy-day open at most 60.
STORY_AFTER = 200
#: Failed tries a telling message needs at most: more only fold into a band.
TELLING_TRIES = 3
#: Messages an unknown id's error names.
LISTED = 8


class UnknownMessage(PlotError):
    """A message id (``--message``, ``message=``) that no message of the trace has."""


_QUEUED_AS = re.compile(r"queued as (\S+)")
_LOGIN = re.compile(r"^(?:USER|APOP) (\S+)", re.IGNORECASE)
#: Records that say where and when, kept for every story: the topology and the link outages.
_SETTING = (
    "net.node",
    "net.link",
    "link.down",
    "link.up",
    "node.down",
    "node.up",
    "service.down",
    "service.up",
    "run",
)


@dataclass(frozen=True)
class MessageStory:
    """The connections one message travelled by, and how to say so."""

    msg: str
    sender: str
    rcpts: tuple[str, ...]
    conns: frozenset[int]
    #: Of the whole run, for the note.
    messages: int
    connections: int
    #: What the message is doing while nothing is drawn, for the grey bands that cut out the
    #: waits (:class:`mailsim.plot.sequence_model.Aside`).
    asides: tuple[Aside, ...] = ()

    def records(self, records: Sequence[Record]) -> list[Record]:
        """The trace as the story's chart sees it: the setting and its connections' records."""
        return [rec for rec in records if rec.get("conn") in self.conns or rec["type"] in _SETTING]

    @property
    def title(self) -> str:
        to = ", ".join(self.rcpts[:2]) + (" …" if len(self.rcpts) > 2 else "")
        return f"One message's journey: {self.sender or 'a bounce report'} → {to} ({self.msg})"

    def note(self, drawn: int) -> str:
        """The note under its chart, which draws ``drawn`` of its connections (the rest are
        counted in the grey bands when the chart has no room for them)."""
        carried = len(self.conns)
        which = f"{drawn} of the" if drawn < carried else "the"
        return (
            f"Drawn: {which} {carried} connection{'s' if carried != 1 else ''} that carried "
            f"{self.msg}, "
            + (f"one of {self.messages:,} messages" if self.messages > 1 else "the only message")
            + f"; the run's {self.connections - carried:,} other connections are not drawn."
        )


def message_story(
    records: Sequence[Record], msg: str, topo: Topology | None = None
) -> MessageStory:
    """The story of message ``msg`` (its id as the trace names it, ``m260@usa.com``);
    ``topo`` is the trace's :class:`~mailsim.plot.topology.Topology` when the caller has it.

    Raises:
        UnknownMessage: no ``mail.submit`` or ``mail.queue`` of the trace names ``msg``.
    """
    found = _Index(records)
    if msg not in found.messages:
        known = list(found.messages)
        listed = ", ".join(known[:LISTED]) + (" …" if len(known) > LISTED else "")
        raise UnknownMessage(
            f"message {msg!r} is not in the trace; its messages are {listed or 'none'}"
        )
    conns: set[int] = set()
    sender, rcpts = found.messages[msg]
    todo = [msg]
    while todo:  # the message, and the bounce reports it caused
        current = todo.pop()
        conns |= found.carried(current)
        todo.extend(found.reports.get(current, ()))
    return MessageStory(
        msg,
        sender,
        rcpts,
        frozenset(conns),
        len(found.messages),
        found.connections,
        tuple(found.asides(msg, conns, topo or read_topology(records))),
    )


def telling_message(records: Sequence[Record]) -> str | None:
    """The message whose story teaches most (module docstring); None without messages."""
    order: dict[str, int] = {}  # the messages people sent, not bounce reports
    failed: dict[str, int] = {}
    settled: set[str] = set()  # delivered or bounced
    fetched: set[str] = set()
    reports: dict[str, list[str]] = {}
    for rec in records:
        kind, msg = rec["type"], rec.get("msg")
        if msg is None:
            continue
        if kind == "mail.submit" and rec.get("kind", "mail") != "dsn":
            order.setdefault(msg, len(order))
        elif kind == "mail.defer":
            failed[msg] = failed.get(msg, 0) + 1
        elif kind in ("mail.deliver", "mail.bounce"):
            settled.add(msg)
            if rec.get("dsn"):
                reports.setdefault(msg, []).append(str(rec["dsn"]))
        elif kind == "mail.fetch":
            fetched.add(msg)
    if not order:
        return None

    def teaches(msg: str) -> tuple[bool, bool, int, int]:
        told = msg in fetched or any(dsn in fetched for dsn in reports.get(msg, ()))
        return (told, msg in settled, min(failed.get(msg, 0), TELLING_TRIES), -order[msg])

    return max(order, key=teaches)


def _seconds(t: float) -> str:
    """The clock to the second: an outage's ends need no milliseconds."""
    return clock(t).rsplit(".", 1)[0]


class _Index:
    """What :func:`message_story` looks up, read from the trace in one pass."""

    def __init__(self, records: Sequence[Record]) -> None:
        #: msg -> (sender, recipients), in the order they first appear.
        self.messages: dict[str, tuple[str, tuple[str, ...]]] = {}
        self.connections = 0
        self.queue_ids: dict[str, list[str]] = {}
        self.attempts: dict[str, list[int]] = {}
        self.fetches: dict[str, list[tuple[float, str, str]]] = {}
        #: msg -> the bounce reports (DSN messages) sent about it.
        self.reports: dict[str, list[str]] = {}
        self.queued_by: dict[str, int] = {}  #: queue id -> the connection that was told it
        self.submitted_by: dict[str, int] = {}  #: msg -> the connection that handed it in
        awaiting: dict[str, tuple[float, str]] = {}  # server -> (when, msg) of a mail.submit
        self.logins: dict[int, str] = {}  #: POP3 connection -> the user who logged in
        self.opened: dict[int, tuple[float, str]] = {}  #: conn -> (open time, server)
        self.ends: dict[int, float] = {}
        self.failed: dict[int, str] = {}  #: conn -> its tcp.fail reason
        self.clients: dict[int, str] = {}
        #: msg -> its own records in time order (queue, attempts, deferrals, delivery, fetch).
        self.steps: dict[str, list[Record]] = {}
        for rec in records:
            kind = rec["type"]
            if "msg" in rec and kind.startswith("mail."):
                self.steps.setdefault(rec["msg"], []).append(rec)
            if kind == "tcp.open":
                self.connections += 1
                self.clients[rec["conn"]] = rec["client"]
                self.opened[rec["conn"]] = (rec["t"], rec["server"])
                self.ends[rec["conn"]] = rec["t"]
            elif kind in ("smtp.line", "pop3.line"):
                conn = rec["conn"]
                self.ends[conn] = rec["t"]
                if rec["side"] == "S":
                    queued = _QUEUED_AS.search(rec["line"])
                    if queued:
                        self.queued_by.setdefault(queued.group(1), conn)
                    submit = awaiting.get(rec.get("src", ""))
                    if submit and submit[0] == rec["t"] and rec["line"].startswith("250"):
                        self.submitted_by.setdefault(submit[1], conn)
                        del awaiting[rec["src"]]
                elif kind == "pop3.line":
                    login = _LOGIN.match(rec["line"])
                    if login:
                        self.logins[conn] = login.group(1)
            elif kind in ("tcp.close", "tcp.fail"):
                self.ends[rec["conn"]] = rec["t"]
                if kind == "tcp.fail":
                    self.failed[rec["conn"]] = rec.get("reason", "")
            elif kind == "mail.submit":
                if rec.get("kind", "mail") != "dsn":
                    awaiting[rec.get("node", "")] = (rec["t"], rec["msg"])
                rcpts = tuple(rec.get("rcpts", ()))
                self.messages.setdefault(rec["msg"], (rec.get("sender", ""), rcpts))
            elif kind == "mail.queue":
                self.messages.setdefault(rec["msg"], ("", tuple(rec.get("rcpts", ()))))
                if rec.get("queue_id"):
                    self.queue_ids.setdefault(rec["msg"], []).append(rec["queue_id"])
            elif kind == "mail.attempt" and rec.get("conn") is not None:
                self.attempts.setdefault(rec["msg"], []).append(rec["conn"])
            elif kind == "mail.fetch":
                self.fetches.setdefault(rec["msg"], []).append((rec["t"], rec["node"], rec["user"]))
            elif kind == "mail.bounce" and rec.get("dsn"):
                self.reports.setdefault(rec["msg"], []).append(str(rec["dsn"]))

    def carried(self, msg: str) -> set[int]:
        """The connections that carried ``msg`` or tried to (those the trace saw open)."""
        conns = set(self.attempts.get(msg, ()))
        if msg in self.submitted_by:
            conns.add(self.submitted_by[msg])
        for queue_id in self.queue_ids.get(msg, ()):
            if queue_id in self.queued_by:
                conns.add(self.queued_by[queue_id])
        for t, server, user in self.fetches.get(msg, ()):
            session = [
                conn
                for conn, login in self.logins.items()
                if login == user
                and conn in self.opened
                and self.opened[conn][1] == server
                and self.opened[conn][0] <= t <= self.ends[conn]
            ]
            conns.update(session[:1])
        return {conn for conn in conns if conn in self.opened}

    def asides(self, msg: str, conns: set[int], topo: Topology) -> list[Aside]:
        """What ``msg`` is doing between the connections drawn: a connect waiting for an answer,
        a wait in a queue before the next try, a wait in a mailbox; and the outages of links
        meanwhile, said once."""
        found: list[Aside] = []
        for conn in sorted(conns):
            if conn in self.failed and conn in self.opened:
                t0, server = self.opened[conn]
                reason = {"timeout": "no answer", "refused": "refused"}.get(
                    self.failed[conn], self.failed[conn] or "failed"
                )
                text = f"{self.clients[conn]} connects to {server}: {reason}"
                found.append(Aside(t0, self.ends[conn], text))
        for current in (msg, *self.reports.get(msg, ())):
            who = "it" if current == msg else "the bounce report"
            deferred: dict[str, float] = {}  # node -> since when it waits for another try
            queued: dict[str, float] = {}  # node -> when it was queued there
            for rec in self.steps.get(current, ()):
                kind, node = rec["type"], rec.get("node", "")
                if kind == "mail.queue":
                    queued.setdefault(node, rec["t"])
                elif kind == "mail.defer":
                    deferred.setdefault(node, rec["t"])
                if kind in ("mail.sent", "mail.bounce") and node in deferred:
                    text = f"{who} waits in {node}'s queue for the next try"
                    found.append(Aside(deferred.pop(node), rec["t"], text))
                if kind == "mail.bounce":
                    after = human_duration(rec["t"] - queued.get(node, rec["t"]))
                    text = f"{node} gives up after {after} and bounces it: a report goes back"
                    found.append(Aside(rec["t"], rec["t"], text, once=True))
                elif kind == "mail.deliver":
                    mailbox = rec.get("mailbox", rec.get("rcpt"))
                    fetched = (  # by the owner of this mailbox, from this server
                        later["t"]
                        for later in self.steps[current]
                        if later["type"] == "mail.fetch"
                        and later["t"] >= rec["t"]
                        and later.get("node") == node
                        and later.get("user") == mailbox
                    )
                    text = f"{who} waits in {mailbox}'s mailbox on {node} until it is fetched"
                    found.append(Aside(rec["t"], next(fetched, math.inf), text))
        # The outages on the way of its connections, while it lasts.
        if found:
            t0, t1 = min(a.t0 for a in found), max(a.t1 for a in found)
            pairs = [(self.clients[c], self.opened[c][1]) for c in conns]
            found += outage_asides(topo, pairs, t0, t1)
        return found


def outage_asides(
    topo: Topology, pairs: Iterable[tuple[str, str]], t0: float, t1: float
) -> list[Aside]:
    """The outages between ``t0`` and ``t1`` on the way of connections between ``pairs``
    (client, server; their usual routes) or of their ends, each an aside said once: ``the link
    india-gw–usa-gw is down from 00:00:30 to 03:00:30``."""
    pairs = list(pairs)
    nodes = {node for pair in pairs for node in pair}
    on_the_way = {
        frozenset(hop) for a, b in set(pairs) for hop in itertools.pairwise(topo.route(a, b))
    }
    found = []
    for outage in topo.outages:
        if not outage.overlaps(t0, t1):
            continue
        if outage.kind == "link" and frozenset(outage.what) not in on_the_way:
            continue
        if outage.kind != "link" and outage.what[0] not in nodes:
            continue
        until = "and stays down" if outage.end is None else f"to {_seconds(outage.end)}"
        what = {"link": f"the {outage.label}", "node": outage.what[0]}.get(
            outage.kind, outage.label
        )
        text = f"{what} is down from {_seconds(outage.start)} {until}"
        found.append(Aside(outage.start, outage.until(math.inf), text, once=True))
    return found
