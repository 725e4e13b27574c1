"""What the simulated nodes share: tracing protocol lines as they are sent.

Each side of a connection records the lines it *sends*, at the moment it sends them, so every
protocol line appears in the trace exactly once, stamped with its send time (the sequence diagram
adds the travel time from the network's records). Long runs of message content (a base64 photo is
thousands of lines) are shortened to the first ``data_lines`` lines, one marker saying how many
were left out, and the last line; the bytes on the wire are not shortened, only their record.

Lines are traced only through :func:`transmit`, and only while the sending end is open; the
streaming transcript (``trace.transcript.TranscriptWriter``) relies on it to write a
connection's block as soon as both ends have closed.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

from mailsim.protocol._common import ProtocolError
from mailsim.protocol.smtp import split_lines
from mailsim.trace.recorder import Recorder


class LineTracer:
    """Records the lines one side of one connection sends.

    Args:
        recorder: the trace.
        record_type: ``"smtp.line"`` or ``"pop3.line"``.
        conn: the connection id.
        side: ``"C"`` (client) or ``"S"`` (server).
        src: the sending node; ``dst``: the receiving node.
        data_lines: how many lines of a long block are kept before the rest is summarised.
    """

    __slots__ = ("_fields", "data_lines", "record_type", "recorder")

    def __init__(
        self,
        recorder: Recorder,
        record_type: str,
        conn: int,
        side: str,
        src: str,
        dst: str,
        data_lines: int = 20,
    ) -> None:
        self.recorder = recorder
        self.record_type = record_type
        self.data_lines = data_lines
        self._fields: dict[str, Any] = {"conn": conn, "side": side, "src": src, "dst": dst}

    def sent(self, data: bytes) -> None:
        """Record the lines of ``data`` (bytes just written to the connection).

        Nothing is decoded or split when the trace level writes no protocol lines.
        """
        if not data or not self.recorder.lines:
            return
        keep = self.data_lines
        count = data.count(b"\r\n") + (0 if data.endswith(b"\r\n") else 1)
        emit_lines = self.recorder.emit_lines
        kind, fields = self.record_type, self._fields
        if count > keep + 2:
            # A long block (message content): decode only the lines that are kept, the first
            # ``keep`` and the last, not the megabytes in between.
            end = 0
            for _ in range(keep):
                end = data.find(b"\r\n", end) + 2
            lines = data[:end].decode("latin-1").split("\r\n")[:-1]
            body = data[:-2] if data.endswith(b"\r\n") else data
            last = body[body.rfind(b"\r\n") + 2 :].decode("latin-1")
            skipped = count - keep - 1
            emit_lines(kind, fields, lines)
            emit_lines(kind, fields, [f"[... {skipped:,} more lines ...]"], elided=skipped)
            emit_lines(kind, fields, [last])
            return
        emit_lines(kind, fields, split_lines(data))


def transmit(conn: Any, tracer: LineTracer, data: bytes) -> bool:
    """Write ``data`` to ``conn`` and trace its lines; False if the connection is already gone.

    A connection can be reset (the peer crashed, its service stopped) while a process was busy
    elsewhere, e.g. writing a message to its queue; ``Connection.send`` would then raise. Lines
    that cannot be sent are not traced, since they never went on the wire.
    """
    if not data:
        return True
    if conn.closed:
        return False
    tracer.sent(data)
    conn.send(data)
    return True


def feed_client(
    machine: Any, data: bytes, *, need_data: object, handle: Callable[[Any], None]
) -> None:
    """Give ``data`` (b"" for the end of the connection) to a self-driving client machine and
    hand each event it produces to ``handle``, until it needs more data.

    Shared by the simulated and the live adapters, so both read a broken reply the same way.
    """
    machine.receive_data(data)
    errors = 0
    while errors < 2:
        try:
            event = machine.next_event()
        except ProtocolError:
            # The peer broke the protocol; the machine is in ERROR and reports what is left.
            errors += 1
            continue
        if event is need_data or getattr(event, "name", None) == "PAUSED":
            break
        handle(event)


def drive_client(
    conn: Any,
    machine: Any,
    tracer: LineTracer,
    *,
    need_data: object,
    timeout_for: Callable[[], float],
    handle: Callable[[Any], None],
) -> Generator[Any, Any, None]:
    """Run a self-driving client machine (SMTP or POP3) over a simulated connection to its end.

    Writes what the machine wants to send, reads with the timeout ``timeout_for()`` gives for the
    current state (a timeout or a reset counts as the connection closing, which the machines turn
    into per-transaction results), and hands every event to ``handle``. Closes the connection
    when the machine is done or the peer went away.
    """
    from mailsim.net.tcp import ConnectionReset, SocketTimeout

    transmit(conn, tracer, machine.data_to_send())
    while True:
        try:
            data = yield conn.recv(timeout=timeout_for())
        except SocketTimeout:
            conn.abort()
            data = b""
        except ConnectionReset:
            data = b""
        feed_client(machine, data, need_data=need_data, handle=handle)
        transmit(conn, tracer, machine.data_to_send())
        if not data or machine.state.name in ("CLOSED", "ERROR", "DONE"):
            break
    conn.close()
