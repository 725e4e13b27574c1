"""Sans-IO POP3 client (RFC 1939): a user agent logging in, listing, retrieving and deleting.

The theory of operation is in :mod:`mailsim.protocol.pop3`; the state rules are
``CLIENT_TRANSITIONS`` in :mod:`mailsim.protocol.pop3_states`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final, NoReturn

from mailsim.protocol._common import LineBuffer, LocalProtocolError, RemoteProtocolError
from mailsim.protocol.pop3_events import (
    ClientEvent,
    Command,
    ConnectionClosed,
    ConnectionLost,
    Greeting,
    LoginFailed,
    MaildropStatus,
    MessageRetrieved,
    Reply,
    RetrieveFailed,
    SessionDone,
)
from mailsim.protocol.pop3_states import (
    CLIENT_TRANSITIONS,
    NEED_DATA,
    PAUSED,
    ClientState,
    Sentinel,
)
from mailsim.protocol.pop3_wire import (
    APOP_TIMESTAMP,
    ARGUMENT_LIMIT,
    CLIENT_LINE_LIMIT,
    COMMAND_LINE_LIMIT,
    MAILBOX_NAME_LIMIT,
    VERB,
    apop_digest,
    parse_number,
    split_args,
)

_C = ClientState


# --- the client ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _ServerReply:
    ok: bool
    line: str  # the status line as received
    text: str  # after "+OK " / "-ERR "
    lines: tuple[bytes, ...]
    body: bytes = b""  # a multi-line body un-stuffed, every line ending in CRLF


def _unstuffed(block: bytes) -> bytes:
    """A multi-line body without its byte-stuffing: the first '.' of each line that starts with
    one goes (RFC 1939 section 3), by one bytes operation over the whole block."""
    content = block.replace(b"\r\n.", b"\r\n")
    return content[1:] if content.startswith(b".") else content


# Verbs whose +OK reply is multi-line; LIST and UIDL only without an argument (RFC 1939 5, 7).
_MULTILINE_VERBS: Final = frozenset({"RETR", "TOP", "CAPA"})
_MULTILINE_WITHOUT_ARG: Final = frozenset({"LIST", "UIDL"})


class POP3Client:
    """The client side of one POP3 session (RFC 1939), sans IO, as a user agent runs it.

    By default it drives itself: after the greeting it logs in (USER/PASS, or APOP when asked),
    asks STAT, lists UIDL (LIST if the server refuses UIDL), retrieves every message whose UID is
    not in ``known_uids``, deletes each retrieved one when asked to, and sends QUIT; its commands
    go to :meth:`data_to_send`. With ``auto=False`` it is a step-by-step client: after the
    greeting :meth:`next_event` answers PAUSED until the application sends a
    :class:`Command`, whose reply comes back as a :class:`Reply`.

    Args:
        user: the mailbox name (USER/APOP).
        password: the password (PASS) or shared secret (APOP).
        delete_after_retrieve: DELE each retrieved message (deleted for good at QUIT).
        use_apop: log in with APOP; fails (LoginFailed, stage "APOP") if the greeting has no
            timestamp rather than sending the password in the clear.
        known_uids: UIDs already fetched in earlier sessions ("leave mail on server"); skipped.
        auto: drive the session; False for step-by-step use.

    Raises:
        LocalProtocolError: a user name or password that cannot be sent on a command line.
    """

    def __init__(
        self,
        user: str,
        password: str,
        *,
        delete_after_retrieve: bool = True,
        use_apop: bool = False,
        known_uids: Iterable[str] = (),
        auto: bool = True,
    ) -> None:
        if auto:
            limit = ARGUMENT_LIMIT if use_apop else MAILBOX_NAME_LIMIT
            spaces_ok = not use_apop  # APOP separates the name from the digest by a space
            if (
                not user
                or user != user.strip(" ")
                or any(ch.isspace() and not (ch == " " and spaces_ok) for ch in user)
                or not (user.isascii() and user.isprintable())
                or len(user) > limit
            ):
                what = "printable ASCII" if spaces_ok else "printable ASCII without spaces"
                raise LocalProtocolError(
                    f"user name must be 1-{limit} characters of {what}, got {user!r}"
                )
            if not password or "\r" in password or "\n" in password:
                raise LocalProtocolError("password must be non-empty and without CR or LF")
        #: The mailbox name.
        self.user = user
        self._password = password
        #: Whether retrieved messages are marked for deletion.
        self.delete_after_retrieve = delete_after_retrieve
        #: Whether to log in with APOP.
        self.use_apop = use_apop
        #: UIDs not to retrieve again.
        self.known_uids = frozenset(known_uids)
        #: Whether the client drives the session itself.
        self.auto = auto
        #: The current state.
        self.state = ClientState.GREETING
        #: The APOP timestamp of the greeting, once seen.
        self.timestamp: str | None = None
        #: True once PASS or APOP got +OK.
        self.logged_in = False
        #: Messages in the maildrop according to STAT.
        self.message_count = 0
        #: Messages retrieved so far.
        self.retrieved = 0
        #: Messages marked for deletion and acknowledged by +OK to DELE.
        self.marked = 0
        self._lines = LineBuffer(CLIENT_LINE_LIMIT)
        self._events: deque[ClientEvent] = deque()
        self._out = bytearray()
        self._status: _ServerReply | None = None  # a +OK whose multi-line body is being read
        self._plan: list[tuple[int, str | None]] = []  # (message number, uid) to retrieve
        self._position = 0
        self._pending: Command | None = None  # step-by-step: the command awaiting its reply
        self._closed: ConnectionLost | ConnectionClosed | None = None
        self._error: Exception | None = None

    # -- the h11-shaped surface --

    def receive_data(self, data: bytes) -> None:
        """Feed bytes received from the server; ``b""`` means the server closed its side.

        Raises:
            LocalProtocolError: bytes fed after ``b""``.
        """
        if self._lines.closed:
            if data:
                raise LocalProtocolError("receive_data() got bytes after the peer closed (b'')")
            return
        if data and self.state in (_C.DONE, _C.CLOSED, _C.ERROR):
            return  # nothing more is expected; do not buffer it
        self._lines.feed(data)

    def next_event(self) -> ClientEvent | Sentinel:
        """Process buffered reply lines and return the next event, NEED_DATA or PAUSED.

        Once the connection is closed the same closing event (ConnectionLost or
        ConnectionClosed) is returned again and again.

        Raises:
            RemoteProtocolError: the server broke the protocol (the machine is now in ERROR).
            LocalProtocolError: the machine was already in ERROR.
        """
        if self.state is _C.ERROR:
            raise LocalProtocolError(f"the POP3 client machine is in ERROR after: {self._error}")
        while not self._events:
            if self.state is _C.CLOSED:
                assert self._closed is not None
                return self._closed
            if self.state is _C.READY and not self._lines.closed:
                return PAUSED
            # READY and DONE expect no reply: leave any line buffered, only notice the close.
            reply = None if self.state in (_C.READY, _C.DONE) else self._read_reply()
            if reply is not None:
                trigger = _REPLY_HANDLERS[self.state](self, reply)
                self._transition(trigger)
            elif self._lines.closed:
                self._connection_ended()
            else:
                return NEED_DATA
        return self._events.popleft()

    def send(self, event: Command) -> bytes:
        """Send the application's command (step-by-step mode only, in the READY state).

        Returns:
            The command line to write.

        Raises:
            LocalProtocolError: not in step-by-step mode, not READY, or a malformed command
                (the machine goes to ERROR).
        """
        if self.auto:
            self._local_error("this client drives itself (auto=True); send() needs auto=False")
        if self.state is not _C.READY:
            self._local_error(f"send() needs the READY state, the client is {self.state.name}")
        if not isinstance(event, Command) or not VERB.fullmatch(event.verb):
            self._local_error(f"send() takes a Command with a verb of letters, got {event!r}")
        if "\r" in event.arg or "\n" in event.arg:
            self._local_error("a command argument cannot contain CR or LF")
        verb = event.verb.upper()
        line = (f"{verb} {event.arg}" if event.arg else verb).encode("utf-8") + b"\r\n"
        if len(line) > COMMAND_LINE_LIMIT:
            self._local_error(f"command line longer than {COMMAND_LINE_LIMIT} octets (RFC 2449)")
        self._pending = Command(verb, event.arg)
        self._transition("command")
        return line

    def data_to_send(self) -> bytes:
        """The commands the automatic client decided to send; clears the buffer."""
        data = bytes(self._out)
        self._out.clear()
        return data

    # -- the rules --

    def _transition(self, trigger: str) -> None:
        old = self.state
        new = CLIENT_TRANSITIONS[old][trigger]
        self.state = new
        command = self._command_for(new)
        if command is not None:
            self._out += command.encode("utf-8") + b"\r\n"

    def _command_for(self, state: ClientState) -> str | None:
        """The command that entering ``state`` sends (None for the other states)."""
        if state is _C.USER:
            return f"USER {self.user}"
        if state is _C.PASS:
            return f"PASS {self._password}"
        if state is _C.APOP:
            assert self.timestamp is not None
            return f"APOP {self.user} {apop_digest(self.timestamp, self._password)}"
        if state in (_C.STAT, _C.UIDL, _C.LIST, _C.QUIT):
            return state.name
        if state in (_C.RETR, _C.DELE):
            return f"{state.name} {self._plan[self._position][0]}"
        return None

    def _local_error(self, message: str) -> NoReturn:
        error = LocalProtocolError(message)
        self._fail(error)
        raise error

    def _remote_error(self, message: str) -> RemoteProtocolError:
        error = RemoteProtocolError(message)
        self._fail(error)
        return error

    def _fail(self, error: Exception) -> None:
        self._error = error
        if "protocol error" in CLIENT_TRANSITIONS[self.state]:
            self._transition("protocol error")

    def _connection_ended(self) -> None:
        if self.state is _C.DONE:
            self._closed = ConnectionClosed("peer closed")
        else:
            self._closed = ConnectionLost(self.state.name)
        self._transition("peer closed")
        self._events.append(self._closed)

    def _expects_multiline(self) -> bool:
        if self.state in (_C.UIDL, _C.LIST, _C.RETR):
            return True
        if self.state is _C.COMMAND and self._pending is not None:
            verb = self._pending.verb
            return verb in _MULTILINE_VERBS or (
                verb in _MULTILINE_WITHOUT_ARG and not split_args(self._pending.arg)
            )
        return False

    def _read_reply(self) -> _ServerReply | None:
        """The next complete reply (status line and any multi-line body), or None for now."""
        if self._status is not None:
            return self._read_body()
        got = self._lines.next_line()
        if got is None:
            return None
        line, overlong = got
        if overlong:
            raise self._remote_error(
                f"server line longer than {CLIENT_LINE_LIMIT} octets in state {self.state.name}"
            )
        status = self._parse_status(line)
        if not (status.ok and self._expects_multiline()):
            return status
        self._status = status
        return self._read_body()

    def _read_body(self) -> _ServerReply | None:
        """The multi-line body of the reply whose status line came, or None for now."""
        got = self._lines.next_block()
        if got is None:
            return None
        block, overlong = got
        if overlong:
            raise self._remote_error(
                f"server line longer than {CLIENT_LINE_LIMIT} octets in state {self.state.name}"
            )
        status, self._status = self._status, None
        assert status is not None
        body = _unstuffed(block)
        return _ServerReply(
            status.ok, status.line, status.text, tuple(body.split(b"\r\n")[:-1]), body
        )

    def _parse_status(self, line: bytes) -> _ServerReply:
        text = line.decode("utf-8", "replace")
        for indicator, ok in (("+OK", True), ("-ERR", False)):
            if text == indicator or text.startswith(indicator + " "):
                return _ServerReply(ok, text, text[len(indicator) + 1 :], ())
        raise self._remote_error(
            f"expected a reply starting with +OK or -ERR in state {self.state.name}, "
            f"got {text[:60]!r}"
        )

    def _numbered_lines(self, reply: _ServerReply, what: str) -> list[tuple[int, str]]:
        """Parse "n value" lines of a LIST or UIDL listing."""
        entries: list[tuple[int, str]] = []
        for raw in reply.lines:
            fields = raw.decode("utf-8", "replace").split()
            number = parse_number(fields[0]) if len(fields) == 2 else None
            if number is None:
                raise self._remote_error(f"malformed {what} line {raw[:60]!r}")
            entries.append((number, fields[1]))
        return entries

    def _next_message(self, outcome: str) -> str:
        self._position += 1
        return f"{outcome} next" if self._position < len(self._plan) else f"{outcome} last"

    # -- reply handlers: each returns the trigger; the table does the state --

    def _on_greeting(self, reply: _ServerReply) -> str:
        if not reply.ok:
            self._events.append(LoginFailed(reply.line, "greeting"))
            return "-ERR"
        found = APOP_TIMESTAMP.search(reply.text)
        self.timestamp = found.group(0) if found else None
        self._events.append(Greeting(reply.text, self.timestamp))
        if not self.auto:
            return "+OK manual"
        if self.use_apop:
            if self.timestamp is None:
                self._events.append(LoginFailed(reply.line, "APOP"))
                return "+OK no timestamp"
            return "+OK apop"
        return "+OK"

    def _on_login_step(self, reply: _ServerReply) -> str:
        if not reply.ok:
            self._events.append(LoginFailed(reply.line, self.state.name))
            return "-ERR"
        if self.state is not _C.USER:
            self.logged_in = True
        return "+OK"

    def _on_stat(self, reply: _ServerReply) -> str:
        if not reply.ok:
            return "-ERR"
        fields = reply.text.split()
        count = parse_number(fields[0]) if len(fields) >= 2 else None
        octets = parse_number(fields[1]) if len(fields) >= 2 else None
        if count is None or octets is None:
            raise self._remote_error(f"STAT reply is not '+OK count octets': {reply.line[:60]!r}")
        self.message_count = count
        self._events.append(MaildropStatus(count, octets))
        return "+OK" if count else "+OK empty"

    def _on_uidl(self, reply: _ServerReply) -> str:
        if not reply.ok:
            return "-ERR"  # fall back to LIST: no UIDs, every message is new
        self._plan = [
            (n, uid) for n, uid in self._numbered_lines(reply, "UIDL") if uid not in self.known_uids
        ]
        return "+OK" if self._plan else "+OK nothing new"

    def _on_list(self, reply: _ServerReply) -> str:
        if not reply.ok:
            # No listing at all: message numbers 1..STAT count are all there is (RFC 1939 5).
            self._plan = [(n, None) for n in range(1, self.message_count + 1)]
            return "-ERR"
        self._plan = [(n, None) for n, _size in self._numbered_lines(reply, "LIST")]
        return "+OK" if self._plan else "+OK nothing new"

    def _on_retr(self, reply: _ServerReply) -> str:
        number, uid = self._plan[self._position]
        if not reply.ok:
            self._events.append(RetrieveFailed(number, uid, reply.line))
            return self._next_message("-ERR")
        content = reply.body
        self.retrieved += 1
        self._events.append(MessageRetrieved(number, uid, content))
        if self.delete_after_retrieve:
            return "+OK delete"
        return self._next_message("+OK")

    def _on_dele(self, reply: _ServerReply) -> str:
        if reply.ok:
            self.marked += 1
        return self._next_message("+OK" if reply.ok else "-ERR")

    def _on_quit(self, reply: _ServerReply) -> str:
        if self.logged_in:
            # +OK to QUIT means UPDATE removed every marked message (RFC 1939 section 6).
            self._events.append(SessionDone(self.retrieved, self.marked if reply.ok else 0))
        return "+OK" if reply.ok else "-ERR"

    def _on_command_reply(self, reply: _ServerReply) -> str:
        assert self._pending is not None
        verb = self._pending.verb
        self._pending = None
        self._events.append(Reply(reply.ok, reply.text, reply.lines))
        outcome = "+OK" if reply.ok else "-ERR"
        return f"{outcome} QUIT" if verb == "QUIT" else outcome


#: POP3Client's handlers, one per state: plain functions called with the machine,
#: so no machine holds bound methods of itself (a reference cycle per machine, which only the
#: garbage collector would free).
_REPLY_HANDLERS: dict[ClientState, Callable[[POP3Client, _ServerReply], str]] = {
    _C.GREETING: POP3Client._on_greeting,
    _C.USER: POP3Client._on_login_step,
    _C.PASS: POP3Client._on_login_step,
    _C.APOP: POP3Client._on_login_step,
    _C.STAT: POP3Client._on_stat,
    _C.UIDL: POP3Client._on_uidl,
    _C.LIST: POP3Client._on_list,
    _C.RETR: POP3Client._on_retr,
    _C.DELE: POP3Client._on_dele,
    _C.QUIT: POP3Client._on_quit,
    _C.COMMAND: POP3Client._on_command_reply,
}
