"""A simulated web server and a browser's downloads: HTTP's pull beside SMTP's push.

The tutorial contrasts the two: HTTP *pulls* files from a server to the client that asks for
them; SMTP *pushes* mail from the sender's server onward. This module drives the sans-IO HTTP/1.1
machine (:mod:`mailsim.protocol.http`) over the simulated network, as ``mailserver`` drives the
SMTP one, and traces it the same way: every line of a request or response head is an
``http.line`` record (side ``C`` or ``S``), a body is one ``http.line`` that says how many octets
it had (bodies are binary: HTTP sends a photo as it is, where SMTP must turn it into base64
lines), and each finished file is a ``web.download`` record. So the transcript, the sequence
chart and the step-through view show HTTP next to SMTP and POP3.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mailsim.mail.message import Attachment
from mailsim.net.tcp import ConnectError, ConnectionReset, SocketTimeout
from mailsim.nodes.wire import LineTracer
from mailsim.protocol import http

if TYPE_CHECKING:
    from mailsim.nodes.world import World

#: The well-known port of HTTP (RFC 9110 4.2.1).
HTTP_PORT = 80
#: How a download's connections are used: one for all files, one request at a time; one for all
#: files with every request written at once (RFC 9112 9.3.2); a new connection per file.
CONNECTION_MODES = ("persistent", "pipelined", "per-file")
#: A client gives up on a silent server after this long; a server drops an idle connection.
HTTP_TIMEOUT = 60.0


@dataclass(frozen=True)
class Download:
    """Someone on ``node`` fetches ``paths`` from the web server on ``server`` at time ``at``."""

    at: float
    node: str
    server: str
    paths: tuple[str, ...]
    connection: str = "persistent"


class _Tracer:
    """Traces one side of an HTTP connection: head lines as lines, a body as one line."""

    def __init__(self, world: World, conn: Any, side: str, src: str, dst: str) -> None:
        self.lines = LineTracer(world.recorder, "http.line", conn.id, side, src, dst)
        self.recorder = world.recorder
        self.fields = {"conn": conn.id, "side": side, "src": src, "dst": dst}

    def write(self, conn: Any, data: bytes, body: int = 0) -> bool:
        """Write a head (and a body of ``body`` octets at its end) to ``conn``, traced."""
        if conn.closed:
            return False
        # The head's lines (its empty last line too, as the transcript shows SMTP's), then the
        # body as one record.
        self.lines.sent(data[: len(data) - body] if body else data)
        if body:
            self.recorder.emit(
                "http.line", **self.fields, line=f"[{body:,} octets of body]", body=body
            )
        conn.send(data)
        return True


class WebServer:
    """An HTTP/1.1 server on ``node`` port 80 serving ``files`` (path -> attachment-like file)."""

    def __init__(self, world: World, node: str, files: dict[str, Attachment]) -> None:
        self.world = world
        self.node = node
        self.files = dict(files)

    def start(self) -> None:
        """Listen on port 80."""
        listener = self.world.network.listen(self.node, HTTP_PORT)
        self.world.env.process(self._accept(listener))

    def _accept(self, listener: Any) -> Generator[Any, Any, None]:
        while True:
            conn = yield listener.accept()
            self.world.env.process(self._session(conn))

    def answer(self, request: http.Request) -> http.Response:
        """The response to ``request``: the file, or 404."""
        file = self.files.get(request.target.split("?", 1)[0])
        if file is None:
            body = f"no {request.target} here\n".encode()
            return http.Response(404, (("Content-Type", "text/plain"),), body)
        return http.Response(200, (("Content-Type", file.content_type),), file.data)

    def _session(self, conn: Any) -> Generator[Any, Any, None]:
        machine = http.HTTPServer(self.node)
        tracer = _Tracer(self.world, conn, "S", self.node, conn.remote_node)
        while machine.state not in (http.HTTPState.CLOSED, http.HTTPState.ERROR):
            try:
                data = yield conn.recv(timeout=HTTP_TIMEOUT)
            except (SocketTimeout, ConnectionReset):
                data = b""
            machine.receive_data(data)
            while True:
                event = machine.next_event()
                if not isinstance(event, http.Request):
                    break
                response = self.answer(event)
                out = machine.send(response)
                body = 0 if event.method == "HEAD" else len(response.body)
                tracer.write(conn, out, body)
            tracer.write(conn, machine.data_to_send())  # an error answer, if any
            if not data:
                break
        conn.close()


class Browser:
    """Runs one :class:`Download`: connects, asks for each path, records what arrived."""

    def __init__(self, world: World, download: Download) -> None:
        self.world = world
        self.download = download
        #: path -> octets received (for notebooks and tests).
        self.received: dict[str, bytes] = {}

    def start(self) -> None:
        """Schedule the download."""
        self.world.env.process(self._run())

    def _run(self) -> Generator[Any, Any, None]:
        env, spec = self.world.env, self.download
        yield env.timeout(max(0.0, spec.at - env.now))
        batches: Sequence[tuple[str, ...]] = (
            [(path,) for path in spec.paths] if spec.connection == "per-file" else [spec.paths]
        )
        for batch in batches:
            yield from self._fetch(batch, pipelining=spec.connection == "pipelined")

    def _fetch(self, paths: tuple[str, ...], *, pipelining: bool) -> Generator[Any, Any, None]:
        world, spec = self.world, self.download
        try:
            conn = yield world.network.connect(
                spec.node, world.topology.ip_of(spec.server), HTTP_PORT, timeout=30.0
            )
        except ConnectError:
            return
        machine = http.HTTPClient(spec.server, pipelining=pipelining)
        for index, path in enumerate(paths):
            machine.request(path, close=index == len(paths) - 1)
        tracer = _Tracer(world, conn, "C", spec.node, spec.server)
        tracer.write(conn, machine.data_to_send())
        while True:
            try:
                data = yield conn.recv(timeout=HTTP_TIMEOUT)
            except (SocketTimeout, ConnectionReset):
                data = b""
            machine.receive_data(data)
            while isinstance(event := machine.next_event(), http.Response):
                assert event.request is not None
                self.received[event.request.target] = event.body
                world.recorder.emit(
                    "web.download",
                    node=spec.node,
                    server=spec.server,
                    path=event.request.target,
                    status=event.status,
                    size=len(event.body),
                    conn=conn.id,
                )
            tracer.write(conn, machine.data_to_send())
            if not data or machine.state in (http.HTTPState.CLOSED, http.HTTPState.ERROR):
                break
        conn.close()
