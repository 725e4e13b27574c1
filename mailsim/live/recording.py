"""What a live run writes as it goes: ``events.jsonl``, ``transcript.txt`` and the console log.

The live servers record the very records the simulation does (:mod:`mailsim.trace.recorder`),
stamped with scenario time from the scaled clock, so ``mailsim plot DIR`` draws a live run's
sequence chart and timeline as it draws a simulated one. :class:`RunRecorder` writes each record
to ``events.jsonl`` the moment it is emitted (line-buffered: a ``kill -9`` loses nothing already
recorded), appends each connection's block to ``transcript.txt`` when the connection ends, and
echoes what a teacher watches for (mail queued, tried, deferred, delivered, bounced; links and
servers going down and up) as one line each. A run started again in the same folder reads the
earlier records back and appends, so its books and figures cover the whole run.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from mailsim.trace.clock import format_time
from mailsim.trace.exports import summary, transcript, write_summary
from mailsim.trace.recorder import Recorder, dumps_event, load_events

Record = dict[str, Any]

#: The trace records a console line is printed for, and how each reads.
_SAID: dict[str, Callable[[Record], str]] = {
    "mail.queue": lambda r: f"{r['msg']} queued for {', '.join(r['rcpts'])}",
    "mail.attempt": lambda r: f"{r['msg']} tried for {', '.join(r['rcpts'])} via {r['mx']}",
    "mail.defer": lambda r: (
        f"{r['msg']} deferred for {r['rcpt']}: {r['reply']} "
        f"(next try at {format_time(r['next_attempt'])})"
    ),
    "mail.sent": lambda r: f"{r['msg']} sent to {r['mx']} for {r['rcpt']}: {r['reply']}",
    "mail.deliver": lambda r: f"{r['msg']} delivered to the mailbox of {r['mailbox']}",
    "mail.bounce": lambda r: f"{r['msg']} bounced for {r['rcpt']}: {r['reply']}",
    "mail.expire": lambda r: f"{r['msg']} given up for {r['rcpt']}",
    "mail.warn": lambda r: f"{r['msg']} delayed: warning sent for {r['rcpt']}",
    "mail.duplicate": lambda r: f"{r['msg']} arrived again for {r['rcpt']} (a duplicate)",
    "mail.lost": lambda r: f"{r['msg']} lost for {r['rcpt']}: {r['cause']}",
    "link.down": lambda r: f"link {r['a']} - {r['b']} is down",
    "link.up": lambda r: f"link {r['a']} - {r['b']} is up again",
    "node.down": lambda r: f"{r['node']} is down",
    "node.up": lambda r: f"{r['node']} is up again",
    "service.down": lambda r: f"{r['node']} port {r['port']} stopped",
    "service.up": lambda r: f"{r['node']} port {r['port']} listens again",
}


class _Streamed(list[Record]):
    """The records list: every record appended (by ``emit`` or a line tracer) is also written."""

    def __init__(self, records: list[Record], sink: Callable[[Record], None]) -> None:
        super().__init__(records)
        self._sink = sink

    def append(self, record: Record) -> None:
        super().append(record)
        self._sink(record)


class RunRecorder(Recorder):
    """A :class:`Recorder` that keeps a live run's folder up to date as records arrive.

    Args:
        directory: the run's folder.
        clock: the scenario time now.
        echo: where console lines go (None: nowhere).
    """

    def __init__(
        self, directory: Path, clock: Callable[[], float], echo: Callable[[str], None] | None
    ) -> None:
        super().__init__(clock)
        self._directory = directory
        self._echo = echo
        events = directory / "events.jsonl"
        earlier = load_events(events) if events.exists() else []
        # Open for the run's whole life (closed by close()), line-buffered.
        self._events: TextIO = open(  # noqa: SIM115
            events, "a", encoding="utf-8", newline="\n", buffering=1
        )
        self._transcript: TextIO = open(  # noqa: SIM115
            directory / "transcript.txt", "a", encoding="utf-8", newline="\n", buffering=1
        )
        self._open: dict[int, list[Record]] = {}
        self.records = _Streamed(earlier, self._write)

    def _write(self, record: Record) -> None:
        self._events.write(dumps_event(record) + "\n")
        kind = record["type"]
        conn = record.get("conn")
        if isinstance(conn, int):
            lines = self._open.setdefault(conn, [])
            lines.append(record)
            if kind in ("tcp.close", "tcp.fail"):
                del self._open[conn]
                block = transcript(lines)
                if block:
                    self._transcript.write(block + "\n")
        said = _SAID.get(kind)
        if said is not None and self._echo is not None:
            where = record.get("node", "")
            self._echo(
                f"[{format_time(record['t'])}] {where + ': ' if where else ''}{said(record)}"
            )

    def close(self, *, scenario: str, seed: int) -> Path:
        """Write the blocks of connections still open and ``summary.json``; close the files.

        Returns:
            The summary's path.
        """
        for lines in self._open.values():
            block = transcript(lines)
            if block:
                self._transcript.write(block + "\n")
        self._open.clear()
        end = self.records[-1]["t"] if self.records else 0.0
        path = self._directory / "summary.json"
        write_summary(path, summary(self.records, scenario=scenario, seed=seed, end_time=end))
        self._events.close()
        self._transcript.close()
        return path
