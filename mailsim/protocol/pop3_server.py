"""Sans-IO POP3 server (RFC 1939): a maildrop's side of the session, USER/PASS and APOP logins.

The theory of operation is in :mod:`mailsim.protocol.pop3`; the state rules are
``SERVER_TRANSITIONS`` in :mod:`mailsim.protocol.pop3_states`. The machine asks the application
about users and mail only through a :class:`MaildropProvider` and the :class:`Maildrop` it returns.
"""

from __future__ import annotations

import hmac
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from mailsim.protocol._common import LineBuffer, LocalProtocolError
from mailsim.protocol.pop3_events import (
    AuthResult,
    Command,
    ConnectionClosed,
    Deleted,
    DeletionsReset,
    LoggedIn,
    MaildropUnavailable,
    Retrieved,
    ServerEvent,
    Shutdown,
    StartTLS,
    TLSStarted,
    Updated,
)
from mailsim.protocol.pop3_states import NEED_DATA, SERVER_TRANSITIONS, Pop3State, Sentinel
from mailsim.protocol.pop3_wire import (
    APOP_TIMESTAMP,
    ARGUMENT_LIMIT,
    BARE_LF_HINT,
    COMMAND_LINE_LIMIT,
    DEFAULT_MAX_ERRORS,
    MAILBOX_NAME_LIMIT,
    apop_digest,
    multiline_body,
    parse_number,
    split_args,
    status_line,
    top_of,
)

_S = Pop3State


# --- the application's side: maildrops and the provider hooks ----------------------------------


class MaildropMessage(Protocol):
    """One message of a maildrop, as the server sees it."""

    @property
    def uid(self) -> str:
        """Its unique-id for UIDL: 1 to 70 characters 0x21-0x7E, stable across sessions."""
        ...

    @property
    def size(self) -> int:
        """Its size in octets with CRLF line ends (what STAT and LIST report, RFC 1939 5)."""
        ...

    @property
    def content(self) -> bytes:
        """The message itself, lines ending in CRLF (not byte-stuffed; the server stuffs).

        A property, so a maildrop on disk can read the file only when RETR or TOP asks.
        """
        ...


class Maildrop(Protocol):
    """A locked maildrop, handed to the server by :meth:`MaildropProvider.open_maildrop`.

    The server reads :attr:`messages` once, at login: message number n is ``messages[n - 1]`` for
    the whole session (RFC 1939 section 5), whatever arrives meanwhile.
    """

    @property
    def messages(self) -> Sequence[MaildropMessage]:
        """The messages present when the maildrop was opened, oldest first."""
        ...

    def commit_deletions(self, indices: Sequence[int]) -> object:
        """Delete these messages for good (0-based indices into :attr:`messages`, ascending).

        Called only in the UPDATE state after QUIT, and only when something is marked. A
        returned ``str`` says what went wrong (the client gets ``-ERR some deleted messages not
        removed: <text>``); any other return value (None, a count) means done.
        """
        ...

    def release(self) -> None:
        """Unlock the maildrop. Called exactly once when the session ends, however it ends."""
        ...


class MaildropProvider:
    """The hooks through which a POP3Server asks its application about users and mail.

    Subclass it and override what you need. The defaults refuse everyone: :meth:`secret_for`
    knows no user, :meth:`authenticate` checks the password against :meth:`secret_for`, and
    :meth:`open_maildrop` has no maildrop to give. Overriding only ``secret_for`` and
    ``open_maildrop`` is enough for both USER/PASS and APOP.
    """

    def authenticate(self, user: str, password: str) -> bool:
        """Whether ``password`` is right for ``user`` (USER/PASS). Default: equals secret_for."""
        secret = self.secret_for(user)
        if secret is None:
            return False
        # compare_digest on bytes: constant time, and it accepts non-ASCII text once encoded.
        return hmac.compare_digest(secret.encode("utf-8"), password.encode("utf-8"))

    def secret_for(self, user: str) -> str | None:
        """The shared secret of ``user`` (needed for APOP), or None if unknown. Default: None."""
        return None

    def open_maildrop(self, user: str) -> Maildrop | str:
        """Lock and return the maildrop of an authenticated ``user``, or the reason it cannot be.

        A returned text goes after ``-ERR `` as it is; start it with an RFC 2449/3206 response
        code such as ``[IN-USE]`` (locked) or ``[SYS/TEMP]``. Default: ``[SYS/PERM]`` refusal.
        """
        return "[SYS/PERM] no maildrop for this user"


@dataclass(frozen=True, slots=True)
class MemoryMessage:
    """A message kept in memory: the reference :class:`MaildropMessage` (tests, notebooks)."""

    uid: str
    #: The message with CRLF line ends.
    content: bytes

    @property
    def size(self) -> int:
        """Its size in octets."""
        return len(self.content)


class MemoryMaildrop:
    """An in-memory maildrop with a lock: the reference :class:`Maildrop`.

    Args:
        messages: initial message contents (CRLF line ends); their UIDs are ``m1``, ``m2``, ...
    """

    def __init__(self, messages: Iterable[bytes] = ()) -> None:
        self._messages: list[MemoryMessage] = []
        self._snapshot: list[MemoryMessage] = []
        self._next_uid = 1
        #: True while a session holds the maildrop.
        self.locked = False
        for data in messages:
            self.add(data)

    def add(self, content: bytes, uid: str | None = None) -> MemoryMessage:
        """Deliver a message (also while locked: a session sees it only at its next login)."""
        if uid is None:
            uid = f"m{self._next_uid}"
            self._next_uid += 1
        message = MemoryMessage(uid, content)
        self._messages.append(message)
        return message

    @property
    def messages(self) -> list[MemoryMessage]:
        """The messages of the current session's snapshot when locked, else all of them."""
        return list(self._snapshot if self.locked else self._messages)

    def lock(self) -> bool:
        """Take the lock and the snapshot a session works on; False if already locked."""
        if self.locked:
            return False
        self.locked = True
        self._snapshot = list(self._messages)
        return True

    def commit_deletions(self, indices: Sequence[int]) -> str | None:
        """Remove the snapshot's messages at ``indices`` (messages added since stay)."""
        doomed = {id(self._snapshot[i]) for i in indices}
        self._messages = [m for m in self._messages if id(m) not in doomed]
        return None

    def release(self) -> None:
        """Drop the lock and the snapshot."""
        self.locked = False
        self._snapshot = []

    def __len__(self) -> int:
        return len(self._messages)


class MemoryProvider(MaildropProvider):
    """A provider over in-memory accounts: the reference :class:`MaildropProvider`.

    Args:
        secrets: user name -> password (also the APOP secret).
        maildrops: user name -> maildrop; a user with a secret but no maildrop gets an empty one.
    """

    def __init__(
        self,
        secrets: Mapping[str, str],
        maildrops: Mapping[str, MemoryMaildrop] | None = None,
    ) -> None:
        #: user name -> password.
        self.secrets = dict(secrets)
        #: user name -> maildrop.
        self.maildrops = dict(maildrops or {})
        for user in self.secrets:
            self.maildrops.setdefault(user, MemoryMaildrop())

    def secret_for(self, user: str) -> str | None:
        """The user's password, or None."""
        return self.secrets.get(user)

    def open_maildrop(self, user: str) -> Maildrop | str:
        """Lock the user's maildrop; ``[IN-USE]`` if another session holds it (RFC 2449 8.1.2)."""
        maildrop = self.maildrops.get(user)
        if maildrop is None:
            return "[SYS/PERM] no maildrop for this user"
        if not maildrop.lock():
            return "[IN-USE] maildrop already locked"
        return maildrop


@dataclass(frozen=True, slots=True)
class _Answer:
    ok: bool
    text: str
    body: bytes | None = None


def _err(text: str) -> _Answer:
    return _Answer(False, text)


# --- the server ---------------------------------------------------------------------------------


class POP3Server:
    """The server side of one POP3 session (RFC 1939), sans IO.

    The greeting is queued at construction: create the machine when the connection is
    established and flush :meth:`data_to_send`. Then feed bytes, drain events, flush replies.
    Every reply is produced by the machine itself from the provider's answers; the application
    only ever sends a :class:`Shutdown` (autologout, server stopping). Each complete command line
    gives a :class:`Command` event, then the events of what it caused; a line over the length
    limit gets -ERR without a Command.

    Args:
        provider: the application's hooks (users, passwords, maildrops).
        banner: greeting text after ``+OK``.
        apop_timestamp: the APOP challenge, e.g. ``"<1896.697170952@dbc.mtview.ca.us>"``; given
            by the application (process id, clock, host) so the machine stays deterministic.
            APOP is enabled exactly when it is set; it is appended to the greeting.
        max_errors: after this many -ERR replies the server says so and closes; None: no limit.
        tls_offered: offer STLS (RFC 2595) in CAPA and accept it; the adapter runs the handshake
            when the machine says :class:`StartTLS`.
        login_needs_tls: refuse USER, PASS and APOP before TLS (``-ERR [AUTH]``, as Dovecot's
            ``disable_plaintext_auth``); CAPA then lists USER only under TLS (RFC 2595 4).
        tls: the connection is under TLS from the start (implicit TLS, RFC 8314 port 995).
    """

    def __init__(
        self,
        provider: MaildropProvider,
        *,
        banner: str = "mailsim POP3 server ready",
        apop_timestamp: str | None = None,
        max_errors: int | None = DEFAULT_MAX_ERRORS,
        tls_offered: bool = False,
        login_needs_tls: bool = False,
        tls: bool = False,
    ) -> None:
        if apop_timestamp is not None and not APOP_TIMESTAMP.fullmatch(apop_timestamp):
            raise ValueError(
                f"apop_timestamp must look like '<pid.clock@host>', got {apop_timestamp!r}"
            )
        if max_errors is not None and max_errors < 1:
            raise ValueError(f"max_errors must be at least 1 or None, got {max_errors}")
        #: The application's hooks.
        self.provider = provider
        #: The APOP challenge of the greeting, or None when APOP is off.
        self.apop_timestamp = apop_timestamp
        #: -ERR replies tolerated before closing (None: unlimited).
        self.max_errors = max_errors
        #: The current state.
        self.state = Pop3State.AUTHORIZATION
        #: -ERR replies sent so far.
        self.errors = 0
        #: Offer STLS.
        self.tls_offered = tls_offered
        #: USER/PASS/APOP only under TLS.
        self.login_needs_tls = login_needs_tls
        #: The session runs under TLS.
        self.tls = tls
        #: The logged-in user (TRANSACTION), or the name USER gave (AUTHORIZATION_PASS), or None.
        self.user: str | None = None
        self._lines = LineBuffer(COMMAND_LINE_LIMIT)
        self._events: deque[ServerEvent] = deque()
        self._out = bytearray()
        self._maildrop: Maildrop | None = None
        self._listing: tuple[MaildropMessage, ...] = ()
        self._marked: set[int] = set()  # 0-based indices marked by DELE
        self._closed: ConnectionClosed | None = None
        greeting = banner if apop_timestamp is None else f"{banner} {apop_timestamp}"
        self._out += status_line(True, greeting)

    # -- the h11-shaped surface --

    def receive_data(self, data: bytes) -> None:
        """Feed bytes received from the client; ``b""`` means the client closed its side.

        Raises:
            LocalProtocolError: bytes fed after ``b""``.
        """
        if self._lines.closed:
            if data:
                raise LocalProtocolError("receive_data() got bytes after the peer closed (b'')")
            return
        if data and self.state in (Pop3State.CLOSED, Pop3State.ERROR):
            return  # nobody will read them: do not let them pile up
        self._lines.feed(data)

    def next_event(self) -> ServerEvent | Literal[Sentinel.NEED_DATA]:
        """Process buffered command lines and return the next event, or NEED_DATA.

        Replies are queued for :meth:`data_to_send` as each line is processed. Once the session
        is over the same :class:`ConnectionClosed` is returned again and again.

        Raises:
            LocalProtocolError: the machine is in ERROR after an earlier misuse.
        """
        if self.state is Pop3State.ERROR:
            raise LocalProtocolError("the POP3 server machine is in ERROR after an earlier misuse")
        while not self._events:
            if self.state is Pop3State.TLS_STARTING:
                return NEED_DATA  # nothing is read until TLSStarted
            if self.state is Pop3State.CLOSED:
                assert self._closed is not None
                return self._closed
            if self._lines.take_bare_lf_line() is not None:
                # RFC 1939 3: CRLF ends a line. Say so at once, as the SMTP server does.
                self._answer(None, _err(BARE_LF_HINT))
                continue
            got = self._lines.next_line()
            if got is None:
                if not self._lines.closed:
                    return NEED_DATA
                # RFC 1939 section 6: a session that ends without QUIT never enters UPDATE.
                self._transition("peer closed")
                continue
            self._handle_line(*got)
        return self._events.popleft()

    def send(self, event: Shutdown | TLSStarted) -> bytes:
        """Act on the application's event: :class:`Shutdown`, or :class:`TLSStarted` after STLS.

        Returns:
            The bytes to write (``-ERR <text>``); ``b""`` if the session is already over.

        Raises:
            LocalProtocolError: any other event, or TLSStarted without STLS (the machine goes to
                ERROR).
        """
        if isinstance(event, TLSStarted) and self.state is Pop3State.TLS_STARTING:
            # RFC 2595 4 / RFC 3207 5: drop what came in the clear after STLS.
            self._lines.discard()
            self.tls = True
            self._transition("TLS started")
            return b""
        if not isinstance(event, Shutdown):
            if "local error" in SERVER_TRANSITIONS[self.state]:
                self._transition("local error")
            raise LocalProtocolError(
                f"a POP3 server can only send Shutdown (or TLSStarted after STLS), "
                f"not {type(event).__name__} in {self.state.name}"
            )
        if self.state in (Pop3State.CLOSED, Pop3State.ERROR):
            return b""
        self._transition("shutdown")
        return status_line(False, event.text)

    def data_to_send(self) -> bytes:
        """The bytes the machine produced on its own (greeting, replies); clears the buffer."""
        data = bytes(self._out)
        self._out.clear()
        return data

    # -- the rules --

    def _transition(self, trigger: str) -> None:
        old = self.state
        new = SERVER_TRANSITIONS[old][trigger]
        self.state = new
        if new is Pop3State.AUTHORIZATION:
            self.user = None  # back to square one: a PASS now needs a new USER
        if new is Pop3State.UPDATE:
            self._enter_update()
        elif new in (Pop3State.CLOSED, Pop3State.ERROR) and old is not new:
            self._release()
            reason = "quit" if trigger in ("QUIT", "committed") else trigger
            self._closed = ConnectionClosed(reason)
            if new is Pop3State.CLOSED:
                self._events.append(self._closed)

    def _release(self) -> None:
        if self._maildrop is not None:
            self._maildrop.release()
            self._maildrop = None
        self._listing = ()
        self._marked = set()

    def _handle_line(self, line: bytes, overlong: bool) -> None:
        if overlong:
            self._answer(None, _err("line too long: at most 255 octets with CRLF (RFC 2449)"))
            return
        text = line.decode("utf-8", "replace")
        word, _, arg = text.partition(" ")
        verb = word.upper()
        self._events.append(Command(verb, arg))
        allowed = SERVER_TRANSITIONS[self.state]
        handler = _COMMANDS.get(verb)
        if handler is None:
            answer: _Answer | None = _err(f"unknown command {word[:8]!r}" if word else "no command")
        elif verb not in allowed:
            answer = _err(self._out_of_state(verb))
        else:
            answer = handler(self, arg)
        self._answer(verb, answer)

    def _out_of_state(self, verb: str) -> str:
        """Why a known command is refused in this state, in words a student can act on."""
        if self.state is Pop3State.TRANSACTION:
            return f"{verb} is not allowed after login (TRANSACTION state)"
        if verb == "PASS":
            return "PASS must come right after a USER that got +OK"
        return f"{verb} needs a login first (USER and PASS)"

    def _answer(self, verb: str | None, answer: _Answer | None) -> None:
        if answer is None:  # QUIT in TRANSACTION: UPDATE writes the reply
            assert verb is not None
            self._transition(verb)
            return
        if answer.ok:
            assert verb is not None
            self._out += status_line(True, answer.text)
            if answer.body is not None:
                self._out += answer.body
            self._transition(verb)
            return
        self.errors += 1
        if self.max_errors is not None and self.errors >= self.max_errors:
            self._out += status_line(False, "too many errors, closing connection")
            self._transition("too many errors")
        else:
            self._out += status_line(False, answer.text)
            self._transition("-ERR")

    def _enter_update(self) -> None:
        # RFC 1939 section 6: remove the marked messages, then reply, then close.
        assert self._maildrop is not None
        indices = sorted(self._marked)
        uids = tuple(self._listing[i].uid for i in indices)
        result = self._maildrop.commit_deletions(indices) if indices else None
        problem = result if isinstance(result, str) else None
        left = len(self._listing) - len(indices)
        if problem is None:
            status = "maildrop empty" if left == 0 else f"{left} message{'s' * (left != 1)} left"
            self._out += status_line(True, f"POP3 server signing off ({status})")
            self._events.append(Updated(uids))
        else:
            self._out += status_line(False, f"some deleted messages not removed: {problem}")
            self._events.append(Updated((), problem))
        self._transition("committed")

    # -- helpers for the TRANSACTION commands --

    def _live(self) -> list[int]:
        return [i for i in range(len(self._listing)) if i not in self._marked]

    def _drop_summary(self) -> tuple[int, int]:
        live = self._live()
        return len(live), sum(self._listing[i].size for i in live)

    def _message(self, token: str) -> int | _Answer:
        """The 0-based index of a live message named by ``token``, or the -ERR answer."""
        number = parse_number(token)
        if number is None:
            return _err(f"message number must be a decimal number, got {token[:ARGUMENT_LIMIT]!r}")
        if not 1 <= number <= len(self._listing):
            return _err(f"no such message, only {len(self._listing)} in maildrop")
        if number - 1 in self._marked:
            return _err(f"message {number} already deleted")
        return number - 1

    # -- command handlers: each returns the answer; the table does the state --

    def _plaintext_refused(self) -> _Answer | None:
        """The -ERR for a password login before TLS when ``login_needs_tls``, else None."""
        if self.login_needs_tls and not self.tls:
            return _err("[AUTH] plaintext authentication disallowed before STLS; send STLS first")
        return None

    def _user_command(self, arg: str) -> _Answer:
        refused = self._plaintext_refused()
        if refused is not None:
            return refused
        # The whole argument is the name, as PASS takes the whole password (RFC 1939 7): the
        # characters of a quoted local part may hold spaces ("john smith"@usa.com is john smith).
        name = arg.strip(" ")
        if not name:
            return _err("USER needs the mailbox name")
        if len(name) > MAILBOX_NAME_LIMIT:
            return _err(f"mailbox name longer than {MAILBOX_NAME_LIMIT} characters")
        # Say +OK to any name, so that USER cannot be used to find out which users exist.
        self.user = name
        return _Answer(True, "send PASS")

    def _pass_command(self, arg: str) -> _Answer:
        # RFC 1939 section 7: the server may take spaces as part of the password; so do we. The
        # 40-character argument limit is not applied to passwords (the line limit still is).
        user = self.user
        assert user is not None
        if not arg:
            return _err("PASS needs the password")
        ok = self.provider.authenticate(user, arg)
        self._events.append(AuthResult(user, ok, "USER/PASS"))
        if not ok:
            self.user = None
            return _err("[AUTH] invalid user name or password")
        return self._open_maildrop(user)

    def _apop_command(self, arg: str) -> _Answer:
        refused = self._plaintext_refused()
        if refused is not None:
            return refused
        if self.apop_timestamp is None:
            return _err("APOP is not enabled on this server; use USER and PASS")
        args = split_args(arg)
        if len(args) != 2:
            return _err("APOP needs two arguments: the mailbox name and the MD5 digest")
        name, digest = args
        if len(name) > ARGUMENT_LIMIT:
            return _err(f"mailbox name longer than {ARGUMENT_LIMIT} characters")
        secret = self.provider.secret_for(name)
        expected = apop_digest(self.apop_timestamp, secret or "").encode("ascii")
        ok = hmac.compare_digest(expected, digest.lower().encode("utf-8")) and secret is not None
        self._events.append(AuthResult(name, ok, "APOP"))
        if not ok:
            self.user = None
            return _err("[AUTH] invalid user name or password")
        self.user = name
        return self._open_maildrop(name)

    def _open_maildrop(self, user: str) -> _Answer:
        opened = self.provider.open_maildrop(user)
        if isinstance(opened, str):
            self.user = None
            self._events.append(MaildropUnavailable(user, opened))
            return _err(opened)
        self.user = user
        self._maildrop = opened
        self._listing = tuple(opened.messages)
        self._marked = set()
        count, octets = self._drop_summary()
        self._events.append(LoggedIn(user, count, octets))
        return _Answer(True, f"{user}'s maildrop has {count} messages ({octets} octets)")

    def _capa_command(self, arg: str) -> _Answer:
        if split_args(arg):
            return _err("CAPA takes no arguments")
        # RFC 2449 section 6; RESP-CODES for [IN-USE], AUTH-RESP-CODE for [AUTH] (RFC 3206).
        capabilities = ["TOP", "UIDL", "PIPELINING", "RESP-CODES", "AUTH-RESP-CODE"]
        if self._plaintext_refused() is None:
            capabilities.insert(0, "USER")
        if self.tls_offered and not self.tls and self.state is not Pop3State.TRANSACTION:
            capabilities.append("STLS")  # RFC 2595 4
        body = b"".join(c.encode("ascii") + b"\r\n" for c in capabilities) + b".\r\n"
        return _Answer(True, "capability list follows", body)

    def _stls_command(self, arg: str) -> _Answer:
        if not self.tls_offered:
            return _err("STLS is not offered here (start the server with TLS)")
        if split_args(arg):
            return _err("STLS takes no arguments")
        if self.tls:
            return _err("TLS is already active")  # RFC 2595 4: STLS once
        self._events.append(StartTLS())
        return _Answer(True, "Begin TLS negotiation")

    def _quit_command(self, arg: str) -> _Answer | None:
        if self.state is Pop3State.TRANSACTION:
            return None  # the UPDATE state answers
        self.user = None
        return _Answer(True, "POP3 server signing off")

    def _stat_command(self, arg: str) -> _Answer:
        if split_args(arg):
            return _err("STAT takes no arguments")
        count, octets = self._drop_summary()
        return _Answer(True, f"{count} {octets}")  # RFC 1939 section 5: exactly "nn mm"

    def _scan(self, arg: str, verb: str, column: Callable[[MaildropMessage], str]) -> _Answer:
        """LIST and UIDL: one message, or a multi-line listing of all live messages."""
        args = split_args(arg)
        if len(args) > 1:
            return _err(f"{verb} takes at most one argument: a message number")
        if args:
            index = self._message(args[0])
            if isinstance(index, _Answer):
                return index
            return _Answer(True, f"{index + 1} {column(self._listing[index])}")
        lines = [f"{i + 1} {column(self._listing[i])}\r\n" for i in self._live()]
        body = "".join(lines).encode("utf-8", "replace") + b".\r\n"
        if verb == "LIST":
            count, octets = self._drop_summary()
            return _Answer(True, f"{count} messages ({octets} octets)", body)
        return _Answer(True, "unique-id listing follows", body)

    def _list_command(self, arg: str) -> _Answer:
        return self._scan(arg, "LIST", lambda m: str(m.size))

    def _uidl_command(self, arg: str) -> _Answer:
        return self._scan(arg, "UIDL", lambda m: m.uid)

    def _retr_command(self, arg: str) -> _Answer:
        args = split_args(arg)
        if len(args) != 1:
            return _err("RETR needs exactly one argument: a message number")
        index = self._message(args[0])
        if isinstance(index, _Answer):
            return index
        message = self._listing[index]
        body = multiline_body(message.content)
        self._events.append(Retrieved(index + 1, message.uid, message.size))
        return _Answer(True, f"{message.size} octets", body)

    def _dele_command(self, arg: str) -> _Answer:
        args = split_args(arg)
        if len(args) != 1:
            return _err("DELE needs exactly one argument: a message number")
        index = self._message(args[0])
        if isinstance(index, _Answer):
            return index
        self._marked.add(index)
        self._events.append(Deleted(index + 1, self._listing[index].uid))
        return _Answer(True, f"message {index + 1} deleted")

    def _rset_command(self, arg: str) -> _Answer:
        if split_args(arg):
            return _err("RSET takes no arguments")
        uids = tuple(self._listing[i].uid for i in sorted(self._marked))
        self._marked = set()
        self._events.append(DeletionsReset(uids))
        count, octets = self._drop_summary()
        return _Answer(True, f"maildrop has {count} messages ({octets} octets)")

    def _noop_command(self, arg: str) -> _Answer:
        if split_args(arg):
            return _err("NOOP takes no arguments")
        return _Answer(True, "")

    def _top_command(self, arg: str) -> _Answer:
        args = split_args(arg)
        if len(args) != 2:
            return _err("TOP needs two arguments: a message number and a number of lines")
        index = self._message(args[0])
        if isinstance(index, _Answer):
            return index
        lines = parse_number(args[1])
        if lines is None:
            return _err(f"number of lines must be a decimal number, got {args[1][:40]!r}")
        content = self._listing[index].content
        return _Answer(True, "top of message follows", multiline_body(top_of(content, lines)))


#: POP3Server's handlers, one per verb: plain functions called with the machine,
#: so no machine holds bound methods of itself (a reference cycle per machine, which only the
#: garbage collector would free).
_COMMANDS: dict[str, Callable[[POP3Server, str], _Answer | None]] = {
    "USER": POP3Server._user_command,
    "PASS": POP3Server._pass_command,
    "APOP": POP3Server._apop_command,
    "CAPA": POP3Server._capa_command,
    "STLS": POP3Server._stls_command,
    "QUIT": POP3Server._quit_command,
    "STAT": POP3Server._stat_command,
    "LIST": POP3Server._list_command,
    "RETR": POP3Server._retr_command,
    "DELE": POP3Server._dele_command,
    "RSET": POP3Server._rset_command,
    "NOOP": POP3Server._noop_command,
    "TOP": POP3Server._top_command,
    "UIDL": POP3Server._uidl_command,
}
