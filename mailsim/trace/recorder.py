"""The trace recorder: typed, timestamped records written once by every layer.

A record is a plain ``dict`` whose first two keys are ``t`` (simulated seconds, a float) and
``type`` (a dotted name such as ``smtp.line``), followed by the fields that type documents in
:data:`EVENT_FIELDS`. Plain dicts keep recording cheap on the simulator's hot path (one dict per
happening, no class construction) and serialise straight to ``events.jsonl``.

Records go, the moment they are emitted, to the *sinks* that want their type: the list of
:attr:`Recorder.records` (unless the run streams its trace instead of keeping it), an
``events.jsonl`` writer, the transcript writer, the books (see :mod:`mailsim.trace.books`). How
much is written is the trace *level*: ``full`` (everything), ``summary`` (what summary.json, the
timeline, the topology and queue figures and the books need: :data:`SUMMARY_TYPES`, not the
protocol lines) or ``off`` (nothing is written; the books still see what they need).

Determinism: records are handed on in the order they were emitted, and :func:`dumps_event` writes
keys in insertion order with a fixed float format, so the same world and seed give a
byte-identical ``events.jsonl``, kept or streamed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from mailsim.trace.events_file import EventsWriter, dumps_event, load_events, write_events

#: The documented fields of each record type, after ``t`` and ``type``. Emitting a type that is
#: not listed here, or leaving out a listed field, is a programming error caught by
#: ``Recorder(strict=True)`` (the tests run strict). Optional fields may follow the listed ones.
EVENT_FIELDS: dict[str, tuple[str, ...]] = {
    # --- the world, written once at t=0 so plots need nothing but the trace ----------------------
    # kind: "host", "router", "mailserver", "dns"; site: e.g. "India"; ip: dotted quad.
    "net.node": ("node", "kind", "site", "ip"),
    # latency: seconds (one way); bandwidth: bits per second; loss: probability per segment.
    "net.link": ("a", "b", "latency", "bandwidth", "loss"),
    # --- network -----------------------------------------------------------------------------
    # conn: connection id (int, unique per run); client/server: node names; ports: ints.
    "tcp.open": ("conn", "client", "server", "cport", "sport"),
    "tcp.established": ("conn",),
    # reason: "refused" (RST, host up, nothing listening), "timeout" (SYN retries exhausted),
    # "unreachable" (unknown destination, or every link of the client down: nothing sent).
    "tcp.fail": ("conn", "reason"),
    # by: the node that closed; how: "fin" (orderly), "reset" (RST, e.g. a crash), "abort",
    # "timeout" (retransmissions gave up).
    "tcp.close": ("conn", "by", "how"),
    # One TCP segment on the wire (only when segment tracing is on). src/dst: node names;
    # flags: e.g. "S", "SA", "A", "PA", "FA", "R"; seq/ack: ints; length: payload octets;
    # payload: the octets as latin-1 text (optional, only when pcap capture wants them).
    "tcp.segment": ("conn", "src", "dst", "flags", "seq", "ack", "length"),
    "tcp.retransmit": ("conn", "src", "dst", "seq", "length"),
    "link.down": ("a", "b"),
    "link.up": ("a", "b"),
    "node.down": ("node",),
    "node.up": ("node",),
    "service.down": ("node", "port"),
    "service.up": ("node", "port"),
    # rcode: "NOERROR", "NXDOMAIN", "SERVFAIL", "TIMEOUT"; answer: [preference, host] or addresses.
    "dns.query": ("node", "name", "qtype", "rcode", "answer"),
    # --- protocol lines ------------------------------------------------------------------------
    # side: "C" (client to server) or "S" (server to client); src/dst: node names;
    # line: the text as on the wire, without its CRLF (data lines still dot-stuffed).
    "smtp.line": ("conn", "side", "src", "dst", "line"),
    "pop3.line": ("conn", "side", "src", "dst", "line"),
    # HTTP heads line by line; a body is one line "[N octets of body]" with the field body=N.
    "http.line": ("conn", "side", "src", "dst", "line"),
    "auth.ok": ("node", "user", "service"),
    "auth.fail": ("node", "user", "service"),
    # --- mail ------------------------------------------------------------------------------------
    # msg: message id (str); rcpt: one recipient address; node: where it happened.
    # Optional: mail.defer, mail.expire and mail.lost carry after_dot=True when the final dot
    # went out but its reply never came back, so the next hop may hold the message already
    # (RFC 1047); the books then accept that the pair was also delivered.
    "mail.submit": ("msg", "node", "sender", "rcpts", "size"),
    "mail.queue": ("msg", "node", "rcpts", "queued"),
    "mail.attempt": ("msg", "node", "rcpts", "mx", "conn"),
    "mail.defer": ("msg", "node", "rcpt", "reply", "next_attempt"),
    # The next hop answered 250 to the final dot: it owns the message now (RFC 5321 6.1).
    "mail.sent": ("msg", "node", "rcpt", "reply", "mx"),
    "mail.deliver": ("msg", "node", "rcpt", "mailbox"),
    "mail.bounce": ("msg", "node", "rcpt", "reply"),
    "mail.expire": ("msg", "node", "rcpt"),
    "mail.fetch": ("msg", "node", "user"),
    "mail.reject": ("msg", "node", "rcpt", "reply"),
    "mail.lost": ("msg", "node", "rcpt", "cause"),
    "mail.duplicate": ("msg", "node", "rcpt"),
    "mail.warn": ("msg", "node", "rcpt"),
    # --- the web -----------------------------------------------------------------------------
    # A browser on node received the whole response for path from server (status, body size).
    "web.download": ("node", "server", "path", "status", "size", "conn"),
}


#: How much of the trace a run writes: everything, what the summary and its figures need, nothing.
TRACE_LEVELS = ("full", "summary", "off")

#: The record types (a trailing '.' is a prefix) that ``trace: summary`` writes: the world, faults,
#: the mail records, and one record per connection opened or failed (the books count connections,
#: the timeline shows failed ones). Protocol lines, segments, DNS and AUTH records are left out.
SUMMARY_TYPES = ("net.", "link.", "node.", "service.", "mail.", "tcp.open", "tcp.fail")

Record = dict[str, Any]
Sink = Callable[[Record], None]


class TraceLevelError(LookupError):
    """What was asked for needs records that this run's trace level did not keep."""


def _matches(kind: str, types: Sequence[str]) -> bool:
    return any(kind.startswith(t) if t.endswith(".") else kind == t for t in types)


class Recorder:
    """Stamps trace records and hands each to the sinks that want its type.

    Args:
        clock: returns the current simulated time in seconds (``lambda: env.now`` in a simulation,
            a wall clock in live servers).
        segments: whether per-segment ``tcp.segment`` records are wanted (they cost time and space,
            so the network checks :attr:`segments` before building them).
        strict: check every record against :data:`EVENT_FIELDS` (tests turn this on).
        level: one of :data:`TRACE_LEVELS`: which records are kept and written.
        keep: keep the written records in :attr:`records` (False when a run streams them to a
            file instead, so memory follows what is in flight, not the length of the run).
    """

    __slots__ = (
        "_clock",
        "_routes",
        "_sinks",
        "keep",
        "level",
        "lines",
        "records",
        "segments",
        "strict",
    )

    def __init__(
        self,
        clock: Callable[[], float] = lambda: 0.0,
        *,
        segments: bool = False,
        strict: bool = False,
        level: str = "full",
        keep: bool = True,
    ) -> None:
        if level not in TRACE_LEVELS:
            raise ValueError(f"trace level must be one of {', '.join(TRACE_LEVELS)}, got {level!r}")
        self._clock = clock
        #: The records written at this level, in the order they were emitted (empty unless kept).
        self.records: list[Record] = []
        #: True when per-segment records should be emitted.
        self.segments = segments
        #: True when records are checked against EVENT_FIELDS.
        self.strict = strict
        #: The trace level (see TRACE_LEVELS).
        self.level = level
        #: Whether written records are kept in :attr:`records`.
        self.keep = keep
        #: True when protocol lines are written (``full``): tracers skip even decoding them if not.
        self.lines = level == "full"
        self._sinks: list[tuple[Sink, Callable[[str], bool]]] = []
        self._routes: dict[str, tuple[Sink, ...]] = {}
        if keep:
            self.subscribe(self._keep, self.writes)

    def _keep(self, record: Record) -> None:
        # Looked up on every record, not bound once: a subclass may replace the list (the live
        # recorder's writes each record it is given).
        self.records.append(record)

    def writes(self, kind: str) -> bool:
        """Whether records of type ``kind`` are written (kept, streamed) at this level."""
        if self.level == "full":
            return True
        return self.level == "summary" and _matches(kind, SUMMARY_TYPES)

    def subscribe(self, sink: Sink, wants: Callable[[str], bool] | Sequence[str]) -> None:
        """Hand ``sink`` every record whose type ``wants`` (a predicate, or types as for
        :data:`SUMMARY_TYPES`) from now on, in emission order."""
        if callable(wants):
            predicate = wants
        else:
            types = tuple(wants)

            def predicate(kind: str) -> bool:
                return _matches(kind, types)

        self._sinks.append((sink, predicate))
        self._routes.clear()

    def stream_to(self, path: str | Path) -> EventsWriter:
        """Write every record this level writes to ``path`` (events.jsonl) as it is emitted;
        returns the writer, to close at the end of the run."""
        writer = EventsWriter(path)
        self.subscribe(writer, self.writes)
        return writer

    def _route(self, kind: str) -> tuple[Sink, ...]:
        route = tuple(sink for sink, wants in self._sinks if wants(kind))
        self._routes[kind] = route
        return route

    def emit(self, type: str, **fields: Any) -> Record:
        """Record that ``type`` happened now, with ``fields``; returns the record."""
        record: Record = {"t": float(self._clock()), "type": type}
        record.update(fields)
        if self.strict:
            _check(record)
        route = self._routes.get(type)
        if route is None:
            route = self._route(type)
        for sink in route:
            sink(record)
        return record

    def emit_lines(
        self, type: str, fields: dict[str, Any], lines: Sequence[str], **extra: Any
    ) -> None:
        """One record per line, all stamped now: ``fields``, then ``line``, then ``extra``.

        Copying the first record for the others keeps a transcript of many short lines cheap.
        """
        if not lines:
            return
        first = self.emit(type, **fields, line=lines[0], **extra)
        if len(lines) == 1:
            return
        if self.strict:
            for line in lines[1:]:
                self.emit(type, **fields, line=line, **extra)
            return
        route = self._routes[type]
        for line in lines[1:]:
            record = first.copy()
            record["line"] = line
            for sink in route:
                sink(record)

    def of_type(self, *types: str) -> Iterator[Record]:
        """The kept records of the given types; a type ending in '.' (``"mail."``) is a prefix."""
        exact = {t for t in types if not t.endswith(".")}
        prefixes = tuple(t for t in types if t.endswith("."))
        for record in self.records:
            kind = record["type"]
            if kind in exact or (prefixes and kind.startswith(prefixes)):
                yield record

    def write_jsonl(self, path: str | Path) -> None:
        """Write every kept record as one JSON object per line (the ``events.jsonl`` contract)."""
        with open(path, "w", encoding="utf-8", newline="\n") as out:
            write_events(self.records, out)

    def __len__(self) -> int:
        return len(self.records)


def _check(record: Record) -> None:
    kind = record["type"]
    wanted = EVENT_FIELDS.get(kind)
    if wanted is None:
        raise ValueError(f"unknown trace record type {kind!r}; add it to EVENT_FIELDS")
    missing = [name for name in wanted if name not in record]
    if missing:
        raise ValueError(f"trace record {kind!r} lacks field(s) {', '.join(missing)}")


__all__ = [
    "EVENT_FIELDS",
    "SUMMARY_TYPES",
    "TRACE_LEVELS",
    "EventsWriter",
    "Recorder",
    "TraceLevelError",
    "dumps_event",
    "load_events",
    "write_events",
]
