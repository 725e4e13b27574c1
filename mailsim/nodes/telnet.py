"""A scripted telnet session: a student typing SMTP (or POP3) lines at a server by hand.

The tutorial ends with "You can try the above script": ``telnet servername 25``, wait for the
220, then type HELO, MAIL FROM, RCPT TO, DATA, the text, a lone ".", and QUIT. This process does
exactly that over the simulated network: it waits for each reply before typing the next line
(except between 354 and the final ".", where the server says nothing), pausing ``typing_time``
per line as a person would, and records what it typed. The server records its replies, so the
transcript shows the whole dialogue in order.
"""

from __future__ import annotations

import re
from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mailsim.net.tcp import ConnectError, ConnectionReset, SocketTimeout
from mailsim.nodes.wire import LineTracer, transmit

if TYPE_CHECKING:
    from mailsim.nodes.world import World

_LAST_SMTP_LINE = re.compile(rb"(?:^|\r\n)\d{3}(?: [^\r\n]*)?\r\n$")
_POP3_MULTILINE = frozenset({"RETR", "TOP", "CAPA"})
_POP3_MULTILINE_NOARG = frozenset({"LIST", "UIDL"})


@dataclass(frozen=True)
class TelnetScript:
    """What the student types, where and when.

    Attributes:
        at: when the session starts (simulated seconds).
        node: the node the student sits at.
        server: the node to connect to; ``port`` the port (25 SMTP, 587 submission, 110 POP3).
        lines: the lines, as typed (without line ends).
        typing_time: seconds between a reply and the next line (a person typing).
        reply_timeout: how long to wait for a reply before giving up and hanging up.
        wait_for_reply: wait for the server's reply to each line (as a person does); False types
            every line without waiting (``typing_time`` apart), then reads what comes back
            until the server hangs up or is silent for ``reply_timeout``.
    """

    at: float
    node: str
    server: str
    lines: tuple[str, ...]
    port: int = 25
    typing_time: float = 2.0
    reply_timeout: float = 60.0
    wait_for_reply: bool = True


class TelnetSession:
    """Runs one :class:`TelnetScript` in a world; ``received`` holds what the server said."""

    def __init__(self, world: World, script: TelnetScript) -> None:
        self.world = world
        self.script = script
        #: Every line the server sent, in order.
        self.received: list[str] = []
        #: Why the session ended early, or None if every line was typed.
        self.failure: str | None = None

    def start(self) -> None:
        """Schedule the session."""
        self.world.env.process(self._run())

    def _run(self) -> Generator[Any, Any, None]:
        world, script = self.world, self.script
        env = world.env
        yield env.timeout(max(0.0, script.at - env.now))
        try:
            conn = yield world.network.connect(
                script.node, world.topology.ip_of(script.server), script.port, timeout=30.0
            )
        except ConnectError as error:
            self.failure = f"telnet: could not connect: {error}"
            return
        tracer = LineTracer(
            world.recorder,
            "pop3.line" if script.port == 110 else "smtp.line",
            conn.id,
            "C",
            script.node,
            script.server,
            data_lines=10_000,
        )
        if not script.wait_for_reply:
            yield from self._type_blind(conn, tracer)
            return
        pop3 = script.port == 110
        buffer = bytearray()
        ok = yield from self._await_reply(conn, buffer, multiline=False, pop3=pop3)
        in_data = False
        for line in script.lines:
            if not ok:
                break
            yield env.timeout(script.typing_time)
            data = line.encode("utf-8") + b"\r\n"
            if not transmit(conn, tracer, data):
                self.failure = "telnet: connection closed by the server"
                break
            verb = line.split(" ", 1)[0].upper()
            if in_data:
                if line != ".":
                    continue
                in_data = False
            multiline = pop3 and (
                verb in _POP3_MULTILINE or (verb in _POP3_MULTILINE_NOARG and " " not in line)
            )
            ok = yield from self._await_reply(conn, buffer, multiline=multiline, pop3=pop3)
            if ok and not pop3 and verb == "DATA" and self.received[-1].startswith("354"):
                in_data = True
        conn.close()

    def _type_blind(self, conn: Any, tracer: LineTracer) -> Generator[Any, Any, None]:
        """Type every line without waiting for replies, then collect what the server said."""
        env = self.world.env
        for line in self.script.lines:
            if self.script.typing_time > 0:
                yield env.timeout(self.script.typing_time)
            if not transmit(conn, tracer, line.encode("utf-8") + b"\r\n"):
                self.failure = "telnet: connection closed by the server"
                break
        buffer = bytearray()
        while True:
            try:
                data = yield conn.recv(timeout=self.script.reply_timeout)
            except (SocketTimeout, ConnectionReset):
                data = b""
            if not data:
                break
            buffer += data
        self.received.extend(bytes(buffer).decode("latin-1").split("\r\n")[:-1])
        conn.close()

    def _await_reply(
        self, conn: Any, buffer: bytearray, *, multiline: bool, pop3: bool
    ) -> Generator[Any, Any, bool]:
        """Read until one whole reply has arrived; False if the connection ended first."""
        while not _complete(buffer, multiline=multiline, pop3=pop3):
            try:
                data = yield conn.recv(timeout=self.script.reply_timeout)
            except SocketTimeout:
                self.failure = "telnet: no reply, gave up"
                return False
            except ConnectionReset:
                data = b""
            if not data:
                self.failure = "telnet: connection closed by the server"
                return False
            buffer += data
        self.received.extend(bytes(buffer).decode("latin-1").split("\r\n")[:-1])
        buffer.clear()
        return True


def _complete(buffer: bytearray, *, multiline: bool, pop3: bool) -> bool:
    if not buffer.endswith(b"\r\n"):
        return False
    if pop3:
        if buffer.startswith(b"-ERR") or not multiline:
            return True
        return buffer.endswith(b"\r\n.\r\n")
    return _LAST_SMTP_LINE.search(bytes(buffer)) is not None
