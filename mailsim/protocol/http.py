"""A small sans-IO HTTP/1.1 machine for GET: enough to pull files over the simulated network.

The tutorial sets SMTP against HTTP: HTTP *pulls* a file from a server to the client that asks,
SMTP *pushes* mail from the sender's server to the receiver's; both keep a connection open for
several transfers. This module is the HTTP side of that comparison, in the shape of the SMTP and
POP3 machines (and of h11, which it follows in miniature): bytes in with ``receive_data()``,
events out with ``next_event()``, ``send(event) -> bytes``.

What it covers (RFC 9110, RFC 9112): GET and HEAD with a request line, header fields and an
empty line; responses framed by ``Content-Length`` (RFC 9112 6.3); persistent connections by
default, closed after a response when either side says ``Connection: close`` (RFC 9112 9.6);
pipelining, where a client writes several requests before the first response and the server
answers them in order (RFC 9112 9.3.2). What it leaves out, candidly: chunked transfer coding,
request bodies, ``Expect``, upgrades; a request with a body or chunked coding gets 501. Each
machine owns its state in :class:`HTTPState`; all transitions are in :data:`TRANSITIONS`.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass, field

from mailsim.protocol._common import LocalProtocolError, RemoteProtocolError

#: RFC 9112 3: senders and recipients should support request lines of at least 8000 octets.
MAX_REQUEST_LINE = 8000
#: The header section a machine accepts (request or response), octets; larger gets 431 / error.
MAX_HEADER_SECTION = 64 * 1024
#: The methods served: both safe, neither has a request body (RFC 9110 9.3.1, 9.3.2).
METHODS = ("GET", "HEAD")

#: Reason phrases of the status codes the server sends (RFC 9110 15).
REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    431: "Request Header Fields Too Large",
    501: "Not Implemented",
    505: "HTTP Version Not Supported",
}


class _NeedData:
    def __repr__(self) -> str:
        return "NEED_DATA"


#: ``next_event()`` returns this when more bytes must arrive first.
NEED_DATA = _NeedData()


class HTTPState(enum.Enum):
    """Where one side of a connection is."""

    #: Waiting for the next request (server) or ready to send one (client).
    IDLE = "idle"
    #: A request is being answered (server) or awaited (client).
    BUSY = "busy"
    #: The connection will carry nothing more; close it once the bytes are out.
    CLOSED = "closed"
    #: A protocol error: the machine says nothing more.
    ERROR = "error"


#: (state, trigger) -> next state, for both sides. A server goes BUSY on a request and back to
#: IDLE on its response; a client goes BUSY while any response is outstanding.
TRANSITIONS: dict[HTTPState, dict[str, HTTPState]] = {
    HTTPState.IDLE: {
        "request": HTTPState.BUSY,
        "peer closed": HTTPState.CLOSED,
        "error": HTTPState.ERROR,
    },
    HTTPState.BUSY: {
        "request": HTTPState.BUSY,
        "response": HTTPState.IDLE,
        "response, more pipelined": HTTPState.BUSY,
        "response with close": HTTPState.CLOSED,
        "peer closed": HTTPState.CLOSED,
        "error": HTTPState.ERROR,
    },
    HTTPState.CLOSED: {"peer closed": HTTPState.CLOSED},
    HTTPState.ERROR: {},
}


Headers = tuple[tuple[str, str], ...]


def _header(headers: Headers, name: str) -> str | None:
    wanted = name.lower()
    return next((value for key, value in headers if key.lower() == wanted), None)


def _wants_close(headers: Headers) -> bool:
    value = _header(headers, "Connection") or ""
    return "close" in [token.strip().lower() for token in value.split(",")]


@dataclass(frozen=True, slots=True)
class Request:
    """A request: ``GET /atlas.jpg HTTP/1.1`` and its header fields."""

    method: str
    target: str
    headers: Headers = ()

    @property
    def wants_close(self) -> bool:
        """Whether the client asked to close the connection after this exchange."""
        return _wants_close(self.headers)


@dataclass(frozen=True, slots=True)
class Response:
    """A whole response: status, header fields (Content-Length is added) and body."""

    status: int
    headers: Headers = ()
    body: bytes = b""
    #: The request it answers (filled in by the client machine).
    request: Request | None = field(default=None, compare=False)

    @property
    def reason(self) -> str:
        """The reason phrase of the status code."""
        return REASONS.get(self.status, "")

    @property
    def wants_close(self) -> bool:
        """Whether the server closes the connection after this response."""
        return _wants_close(self.headers)


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """The peer closed its side; ``unanswered`` requests got no response (client only)."""

    unanswered: tuple[Request, ...] = ()


def _split_head(buffer: bytearray) -> tuple[list[str], int] | None:
    """The lines of a complete head (up to CRLF CRLF) and its length, or None if incomplete."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        if len(buffer) > MAX_HEADER_SECTION:
            raise RemoteProtocolError("header section too large", reply_hint=431)
        return None
    if end > MAX_HEADER_SECTION:
        raise RemoteProtocolError("header section too large", reply_hint=431)
    text = bytes(buffer[:end]).decode("latin-1")
    return text.split("\r\n"), end + 4


def _parse_fields(lines: list[str]) -> Headers:
    out = []
    for line in lines:
        name, colon, value = line.partition(":")
        # RFC 9112 5.1: no whitespace between the field name and the colon.
        if not colon or not name or name != name.strip() or " " in name:
            raise RemoteProtocolError(f"malformed header field {line!r}", reply_hint=400)
        out.append((name, value.strip()))
    return tuple(out)


def _head_bytes(first: str, headers: Headers) -> bytes:
    lines = [first, *(f"{name}: {value}" for name, value in headers), "", ""]
    return "\r\n".join(lines).encode("latin-1")


class _Endpoint:
    """The byte plumbing both sides share: bytes in, bytes out, the state table's moves."""

    def __init__(self) -> None:
        self.state = HTTPState.IDLE
        self._buffer = bytearray()
        self._out = bytearray()
        self._peer_closed = False

    def _go(self, trigger: str) -> None:
        self.state = TRANSITIONS[self.state][trigger]

    def receive_data(self, data: bytes) -> None:
        """Bytes from the peer; ``b""`` means it closed its side."""
        if data:
            self._buffer += data
        else:
            self._peer_closed = True

    def data_to_send(self) -> bytes:
        """The bytes to write to the peer now."""
        out, self._out = bytes(self._out), bytearray()
        return out


class HTTPServer(_Endpoint):
    """The server side: reads requests, writes the responses the application gives it.

    Feed bytes with :meth:`receive_data` (``b""`` when the client closed), take :class:`Request`
    events from :meth:`next_event`, and answer each with ``send(Response(...))``, in order.
    A malformed request is answered by the machine itself (400, 431, 501, 505) and the
    connection closes, as RFC 9112 9.6 allows.
    """

    def __init__(self, server_name: str = "mailsim") -> None:
        super().__init__()
        self.server_name = server_name
        self._pending: deque[Request] = deque()

    def next_event(self) -> Request | ConnectionClosed | _NeedData:
        """The next request, :class:`ConnectionClosed`, or NEED_DATA."""
        if self.state in (HTTPState.ERROR, HTTPState.CLOSED):
            return NEED_DATA
        try:
            request = self._read_request()
        except RemoteProtocolError as error:
            self._fail(error.reply_hint)
            return NEED_DATA
        if request is None:
            if self._peer_closed and not self._buffer:
                self._go("peer closed")
                return ConnectionClosed()
            return NEED_DATA
        self._pending.append(request)
        self._go("request")
        return request

    def _read_request(self) -> Request | None:
        head = _split_head(self._buffer)
        if head is None:
            first_end = self._buffer.find(b"\r\n")
            if (first_end < 0 and len(self._buffer) > MAX_REQUEST_LINE) or (
                first_end > MAX_REQUEST_LINE
            ):
                raise RemoteProtocolError("request line too long", reply_hint=400)
            return None
        lines, length = head
        del self._buffer[:length]
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[1]:
            raise RemoteProtocolError(f"malformed request line {lines[0]!r}", reply_hint=400)
        method, target, version = parts
        if version != "HTTP/1.1":
            raise RemoteProtocolError(f"version {version!r}", reply_hint=505)
        headers = _parse_fields(lines[1:])
        if method not in METHODS:
            raise RemoteProtocolError(f"method {method!r}", reply_hint=501)
        if (
            _header(headers, "Transfer-Encoding")
            or (_header(headers, "Content-Length") or "0") != "0"
        ):
            raise RemoteProtocolError("request bodies are not supported", reply_hint=501)
        # RFC 9112 3.2: a client MUST send Host in every HTTP/1.1 request; 400 if it is missing.
        if _header(headers, "Host") is None:
            raise RemoteProtocolError("no Host header", reply_hint=400)
        return Request(method, target, headers)

    def send(self, response: Response) -> bytes:
        """Answer the oldest unanswered request with ``response``; returns the bytes to write.

        Raises:
            LocalProtocolError: there is no request to answer.
        """
        if not self._pending:
            raise LocalProtocolError("a response needs a request to answer")
        request = self._pending.popleft()
        headers = [h for h in response.headers if h[0].lower() != "content-length"]
        headers.append(("Content-Length", str(len(response.body))))
        close = response.wants_close or request.wants_close
        if close and not _wants_close(response.headers):
            headers.append(("Connection", "close"))
        head = _head_bytes(f"HTTP/1.1 {response.status} {response.reason}", tuple(headers))
        # RFC 9110 9.3.2: HEAD gets the same header fields as GET, and no body.
        self._out += head + (b"" if request.method == "HEAD" else response.body)
        if close:
            self._go("response with close")
            self._pending.clear()
        else:
            self._go("response, more pipelined" if self._pending else "response")
        return self.data_to_send()

    def _fail(self, status: int) -> None:
        body = f"{status} {REASONS.get(status, '')}\n".encode("ascii")
        headers = (("Content-Length", str(len(body))), ("Connection", "close"))
        self._out += _head_bytes(f"HTTP/1.1 {status} {REASONS.get(status, '')}", headers) + body
        self.state = HTTPState.ERROR


class HTTPClient(_Endpoint):
    """The client side: writes requests, reads responses in the same order.

    ``request(...)`` queues a GET; with ``pipelining`` every queued request is written at once,
    otherwise the next one goes out when the previous response is complete (one round trip per
    file on top of the transfer). :meth:`next_event` returns each :class:`Response` with its
    request, then :class:`ConnectionClosed` when the server has closed.
    """

    def __init__(self, host: str, *, pipelining: bool = False) -> None:
        super().__init__()
        self.host = host
        self.pipelining = pipelining
        self._queue: deque[Request] = deque()
        self._sent: deque[Request] = deque()
        self._closing = False

    def request(self, target: str, *, method: str = "GET", close: bool = False) -> None:
        """Queue a request for ``target``; ``close`` asks the server to close afterwards."""
        if method not in METHODS:
            raise LocalProtocolError(f"only {', '.join(METHODS)} are supported, not {method}")
        if self._closing:
            raise LocalProtocolError("the connection is closing; open a new one")
        headers: list[tuple[str, str]] = [("Host", self.host), ("User-Agent", "mailsim")]
        if close:
            headers.append(("Connection", "close"))
            self._closing = True
        self._queue.append(Request(method, target, tuple(headers)))
        self._write_due()

    def _write_due(self) -> None:
        while self._queue and (self.pipelining or not self._sent):
            request = self._queue.popleft()
            self._out += _head_bytes(f"{request.method} {request.target} HTTP/1.1", request.headers)
            self._sent.append(request)
            self._go("request")

    def next_event(self) -> Response | ConnectionClosed | _NeedData:
        """The next complete response, :class:`ConnectionClosed`, or NEED_DATA."""
        if self.state is HTTPState.ERROR:
            return NEED_DATA
        if self._sent:
            try:
                response = self._read_response()
            except RemoteProtocolError:
                self._go("error")
                return ConnectionClosed(tuple(self._sent) + tuple(self._queue))
            if response is not None:
                return response
        if self._peer_closed and self.state is not HTTPState.CLOSED:
            self.state = HTTPState.CLOSED
            return ConnectionClosed(tuple(self._sent) + tuple(self._queue))
        return NEED_DATA

    def _read_response(self) -> Response | None:
        head = _split_head(self._buffer)
        if head is None:
            return None
        lines, length = head
        version, _, rest = lines[0].partition(" ")
        code = rest[:3]
        if version != "HTTP/1.1" or not code.isdigit():
            raise RemoteProtocolError(f"malformed status line {lines[0]!r}")
        headers = _parse_fields(lines[1:])
        request = self._sent[0]
        length_field = _header(headers, "Content-Length") or "0"
        if not length_field.isdigit():
            raise RemoteProtocolError(f"bad Content-Length {length_field!r}")
        size = 0 if request.method == "HEAD" else int(length_field)
        if len(self._buffer) < length + size:
            return None
        body = bytes(self._buffer[length : length + size])
        del self._buffer[: length + size]
        self._sent.popleft()
        response = Response(int(code), headers, body, request)
        if response.wants_close or request.wants_close:
            self._go("response with close")
        else:
            self._go("response, more pipelined" if self._sent or self._queue else "response")
            self._write_due()
        return response
