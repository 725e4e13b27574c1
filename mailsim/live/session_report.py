"""What one live SMTP session said, line by line and timed (``mailsim serve --report``, grader).

The adapter hands every chunk it reads (``received``) and writes (``sent``) to a
:class:`SessionRecorder` with the time; nothing is parsed while the session runs. At the end
:meth:`SessionRecorder.record` splits the client's stream the way the server machine reads it
(command lines end at LF, RFC 5321 2.3.8 bare LFs included; after a DATA that got 354 the
message text runs to CRLF.CRLF), pairs each command with the reply the server gave it (replies
come in order, one per command line, RFC 5321 4.3 and RFC 2920 3.1), and measures the wait:
how long after the previous reply was complete the command arrived. A negative wait is a
command sent before the reply it had to wait for, which is what ``--strict`` refuses.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = ["Exchange", "SessionRecorder"]

#: Verbs a client may send after a refused DATA; anything else there is message text.
SMTP_VERBS = frozenset(
    {"EHLO", "HELO", "MAIL", "RCPT", "DATA", "RSET", "NOOP", "QUIT", "VRFY", "EXPN", "HELP"}
    | {"AUTH", "STARTTLS"}
)


@dataclass
class Exchange:
    """One client line (or one message text) and the server's reply to it.

    Attributes:
        t: seconds since the connection opened when the line was complete.
        client: the line as sent (without CRLF), or ``[message text: ...]``.
        wait: seconds between the previous reply's last line and this line (negative: sent
            before that reply was written); None for the first line of a session.
        reply: the reply's lines, or () if the server did not answer it.
        t_reply: when the reply's last line was written, or None.
        t_reply_first: when its first line was written, or None.
        kind: ``command``, ``text`` (message content), ``auth`` (an AUTH continuation line),
            ``after close`` (sent after the server's last reply, read during the close).
        text: the message text (un-stuffed) when ``kind`` is ``text``.
    """

    t: float
    client: str
    wait: float | None
    reply: tuple[str, ...] = ()
    t_reply: float | None = None
    t_reply_first: float | None = None
    kind: str = "command"
    text: bytes = b""

    def as_json(self) -> dict[str, Any]:
        """The exchange as a JSON-ready mapping (the report's ``dialogue`` items)."""
        out: dict[str, Any] = {"t": round(self.t, 6), "C": self.client, "kind": self.kind}
        out["wait"] = None if self.wait is None else round(self.wait, 6)
        out["S"] = list(self.reply)
        out["t_reply"] = None if self.t_reply is None else round(self.t_reply, 6)
        first = self.t_reply_first
        out["t_reply_first"] = None if first is None else round(first, 6)
        if self.kind == "text":
            out["text"] = self.text.decode("latin-1")  # un-stuffed, as the server read it
        return out


@dataclass
class SessionRecorder:
    """Collects one SMTP session's traffic with its times; :meth:`record` makes the report.

    Args:
        service: the listener (``smtp``, ``submission``, ``smtps``).
        peer: the client's ``ip:port``.
    """

    service: str
    peer: str
    #: Wall-clock start (for the report), and the monotonic start the times count from.
    started: float = field(default_factory=time.time)
    _zero: float = field(default_factory=time.monotonic)
    _in: list[tuple[float, bytes]] = field(default_factory=list)
    _out: list[tuple[float, bytes]] = field(default_factory=list)
    _marks: list[tuple[float, str]] = field(default_factory=list)
    _closed_at: float | None = None
    #: Facts the adapter adds: tls, strict, improper pipelining, messages stored, ending.
    facts: dict[str, Any] = field(default_factory=dict)

    def now(self) -> float:
        """Seconds since the connection opened."""
        return time.monotonic() - self._zero

    def received(self, data: bytes) -> None:
        """The adapter read ``data`` from the client (after TLS: the decrypted bytes)."""
        if data:
            self._in.append((self.now(), bytes(data)))

    def sent(self, data: bytes) -> None:
        """The adapter wrote ``data`` to the client."""
        if data:
            self._out.append((self.now(), bytes(data)))

    def mark(self, what: str) -> None:
        """Note a happening between lines (``TLS started``)."""
        self._marks.append((self.now(), what))

    def last_reply_done(self) -> None:
        """The server wrote its last reply; what the client sends from now on is after close."""
        if self._closed_at is None:
            self._closed_at = self.now()

    # -- the report -------------------------------------------------------------------------------

    def replies(self) -> list[tuple[float, float, tuple[str, ...]]]:
        """The server's replies: (first line written, last line written, lines)."""
        stream = b"".join(chunk for _, chunk in self._out)
        times = _TimeIndex(self._out)
        replies: list[tuple[float, float, tuple[str, ...]]] = []
        lines: list[str] = []
        first = 0.0
        pos = 0
        while (end := stream.find(b"\r\n", pos)) >= 0:
            line = stream[pos:end].decode("latin-1")
            if not lines:
                first = times.at(pos)
            lines.append(line)
            if len(line) < 4 or line[3] != "-":  # RFC 5321 4.2.1: "250 " ends, "250-" goes on
                replies.append((first, times.at(end + 1), tuple(lines)))
                lines = []
            pos = end + 2
        return replies

    def exchanges(self) -> list[Exchange]:
        """The client's lines paired with their replies, in order (see the module docstring)."""
        replies = self.replies()
        greeting_done = replies[0][1] if replies else 0.0
        answers = iter(replies[1:])
        out: list[Exchange] = []
        previous_done: float | None = greeting_done
        mode = ["command"]  # read by _client_lines as it splits the stream
        for t, line, text in self._client_lines(mode):
            after_close = self._closed_at is not None and t > self._closed_at
            answer = None if after_close else next(answers, None)
            kind = "after close" if after_close else ("text" if mode[0] == "text" else "command")
            if mode[0] == "auth" and not after_close:
                kind = "auth"
            wait = None if previous_done is None else t - previous_done
            exchange = Exchange(t, line, wait, kind=kind, text=text)
            if answer is not None:
                exchange.reply, exchange.t_reply = answer[2], answer[1]
                exchange.t_reply_first = answer[0]
                previous_done = answer[1]
                code = answer[2][-1][:3]
                verb = line.split(" ", 1)[0].upper()
                if kind == "text":
                    mode[0] = "command"
                elif verb == "DATA" and code == "354":
                    mode[0] = "text"
                elif code == "334":
                    mode[0] = "auth"  # RFC 4954 4: the next line answers the challenge
                elif mode[0] == "auth":
                    mode[0] = "command"
            out.append(exchange)
        return out

    def _client_lines(self, mode: list[str]) -> Iterator[tuple[float, str, bytes]]:
        """(time complete, shown line, text) for each line, read as the server machine reads."""
        stream = b"".join(chunk for _, chunk in self._in)
        times = _TimeIndex(self._in)
        pos = 0
        while pos < len(stream):
            if mode[0] == "text":
                end = stream.find(b"\r\n.\r\n", pos - 2 if pos >= 2 else pos)
                if end < 0:
                    return
                body = stream[pos : end + 2] if end + 2 > pos else b""
                text = body.replace(b"\r\n.", b"\r\n")
                if text.startswith(b"."):
                    text = text[1:]
                lines = body.count(b"\r\n")
                shown = f"[message text: {lines} lines, {len(body)} octets, then .]"
                stop = end + 5
                yield times.at(stop - 1), shown, text
                pos = stop
                continue
            end = stream.find(b"\n", pos)
            if end < 0:
                return
            line = stream[pos:end].rstrip(b"\r").decode("latin-1")
            yield times.at(end), line, b""
            pos = end + 1

    def record(self) -> dict[str, Any]:
        """The session as one JSON-ready mapping: one line of ``--report FILE.jsonl``."""
        exchanges = self.exchanges()
        replies = self.replies()
        waits = [e.wait for e in exchanges if e.kind == "command" and e.wait is not None]
        return {
            "service": self.service,
            "client": self.peer,
            "started": datetime.fromtimestamp(self.started, UTC).isoformat(timespec="milliseconds"),
            "duration": round(self.now(), 6),
            "greeting": list(replies[0][2]) if replies else [],
            "dialogue": [e.as_json() for e in exchanges],
            "commands": [e.client for e in exchanges if e.kind == "command"],
            "marks": [{"t": round(t, 6), "what": what} for t, what in self._marks],
            "verdicts": {
                "synchronised": all(w >= 0 for w in waits),
                "earliest_wait": round(min(waits), 6) if waits else None,
                **self.facts,
            },
        }


class _TimeIndex:
    """Maps an offset in the joined stream to the arrival time of the chunk holding it."""

    def __init__(self, chunks: list[tuple[float, bytes]]) -> None:
        self._ends: list[int] = []
        self._times: list[float] = []
        total = 0
        for t, chunk in chunks:
            total += len(chunk)
            self._ends.append(total)
            self._times.append(t)

    def at(self, offset: int) -> float:
        index = bisect.bisect_right(self._ends, offset)
        return self._times[min(index, len(self._times) - 1)] if self._times else 0.0
