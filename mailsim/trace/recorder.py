"""The trace recorder: typed, timestamped records written once by every layer.

A record is a plain ``dict`` whose first two keys are ``t`` (simulated seconds, a float) and
``type`` (a dotted name such as ``smtp.line``), followed by the fields that type documents in
:data:`EVENT_FIELDS`. Plain dicts keep recording cheap on the simulator's hot path (one dict per
happening, no class construction) and serialise straight to ``events.jsonl``.

Determinism: records are kept in the order they were emitted, and :func:`dumps_event` writes keys
in insertion order with a fixed float format, so the same world and seed give a byte-identical
``events.jsonl``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

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


class Recorder:
    """Collects trace records in emission order.

    Args:
        clock: returns the current simulated time in seconds (``lambda: env.now`` in a simulation,
            a wall clock in live servers).
        segments: whether per-segment ``tcp.segment`` records are wanted (they cost time and space,
            so the network checks :attr:`segments` before building them).
        strict: check every record against :data:`EVENT_FIELDS` (tests turn this on).
    """

    __slots__ = ("_clock", "records", "segments", "strict")

    def __init__(
        self,
        clock: Callable[[], float] = lambda: 0.0,
        *,
        segments: bool = False,
        strict: bool = False,
    ) -> None:
        self._clock = clock
        #: The records, in the order they were emitted.
        self.records: list[dict[str, Any]] = []
        #: True when per-segment records should be emitted.
        self.segments = segments
        #: True when records are checked against EVENT_FIELDS.
        self.strict = strict

    def emit(self, type: str, **fields: Any) -> dict[str, Any]:
        """Record that ``type`` happened now, with ``fields``; returns the record."""
        record: dict[str, Any] = {"t": float(self._clock()), "type": type}
        record.update(fields)
        if self.strict:
            _check(record)
        self.records.append(record)
        return record

    def of_type(self, *types: str) -> Iterator[dict[str, Any]]:
        """The records of the given types; a type ending in '.' (``"mail."``) is a prefix."""
        exact = {t for t in types if not t.endswith(".")}
        prefixes = tuple(t for t in types if t.endswith("."))
        for record in self.records:
            kind = record["type"]
            if kind in exact or (prefixes and kind.startswith(prefixes)):
                yield record

    def write_jsonl(self, path: str | Path) -> None:
        """Write every record as one JSON object per line (the ``events.jsonl`` contract)."""
        with open(path, "w", encoding="utf-8", newline="\n") as out:
            write_events(self.records, out)

    def __len__(self) -> int:
        return len(self.records)


def _check(record: dict[str, Any]) -> None:
    kind = record["type"]
    wanted = EVENT_FIELDS.get(kind)
    if wanted is None:
        raise ValueError(f"unknown trace record type {kind!r}; add it to EVENT_FIELDS")
    missing = [name for name in wanted if name not in record]
    if missing:
        raise ValueError(f"trace record {kind!r} lacks field(s) {', '.join(missing)}")


def _default(value: Any) -> Any:
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    if isinstance(value, bytes):
        return value.decode("latin-1")
    raise TypeError(f"cannot write {type(value).__name__} to the trace")


def dumps_event(record: dict[str, Any]) -> str:
    """One record as a compact, deterministic JSON line (no newline)."""
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False, default=_default)


def write_events(records: Iterable[dict[str, Any]], out: IO[str]) -> None:
    """Write ``records`` to ``out`` as JSON lines."""
    for record in records:
        out.write(dumps_event(record))
        out.write("\n")


def load_events(path: str | Path) -> list[dict[str, Any]]:
    """Read an ``events.jsonl`` file back into records."""
    with open(path, encoding="utf-8") as src:
        return [json.loads(line) for line in src if line.strip()]
