"""The live mail server: mailsim's sans-IO SMTP and POP3 machines on real asyncio sockets.

Three listeners share one Maildir store (:mod:`mailsim.live.storage`):

- **SMTP** (the MX role, port 25 on a real host; 2525 here): accepts mail for its own domains
  from anyone, refuses other domains with ``550 5.7.1 Relay access denied`` unless the client
  authenticated (RFC 5321 7.1: no open relay).
- **Submission** (RFC 6409, port 587; 2587 here): the same, but MAIL needs AUTH first (530).
  Authenticated mail for other domains is stored in the ``_outgoing`` Maildir; a real relay
  (MX lookup, queue, retries) is what the simulation models and is out of scope here.
- **POP3** (RFC 1939, port 110; 1100 here): each user reads their own Maildir.

The adapters are thin, as DESIGN.md asks: bytes from the socket go into the machine, its output
goes back out, and only the decisions the machines leave to the application live here (which
recipients exist, storing before the 250, timeouts, connection limits, shutdown). SMTP runs as an
:class:`asyncio.Protocol` (no stream objects between the socket and the machine, the fastest path
asyncio offers); POP3 runs as a stream coroutine whose machine steps run in the thread pool,
because the machine calls the Maildir (reads, deletions, fsync) synchronously.

Storing a message costs two fsyncs (the file, then ``new/``). With ``store_in_thread`` (the
default) it runs in a small thread pool and the verdict comes back to the loop with one
``call_soon_threadsafe``; inline it would block every connection for the length of the fsyncs.
When a single client is connected there is nobody to block, so it is stored inline then.
``benchmarks/bench_smtp_live.py`` measures both. On the development VM (SSD, about 0.4 ms per
fsync) one smtplib connection got 950-1090 messages/s with the thread pool and 980-1060 inline (the
hop costs at most a few per cent, within the noise); with 20 clients at once the thread pool gave
equal or better throughput and a lower NOOP round trip for a waiting client (p50 about 4 ms versus
5-13 ms). With a slow disk (fsync + 5 ms, emulated) the difference is decisive: inline 80
messages/s and a NOOP waits 90 ms; in the pool 380-500 messages/s and 0.6 ms. Hence the default.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hmac
import itertools
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mailsim.live.storage import OUTGOING, MaildirMaildrop, MaildirStore, check_mailbox_name
from mailsim.mail.message import add_received, is_looping, with_protocol
from mailsim.protocol import pop3
from mailsim.protocol.smtp import (
    NEED_DATA,
    PAUSED,
    Accept,
    AuthResult,
    MessageReceived,
    MessageRefused,
    Quit,
    RcptParams,
    Reject,
    Reply,
    ReplyTexts,
    ServerLimits,
    ServerPolicy,
    ServerState,
    Session,
    Shutdown,
    SMTPServer,
)

__all__ = [
    "Accounts",
    "LiveServer",
    "ServeConfig",
    "ServerThread",
    "StartupError",
    "read_users_file",
]

#: Where the live server logs one line per connection and per stored message.
log = logging.getLogger("mailsim.live")

#: Wall-clock epoch for the ``Received:`` stamp (mailsim.mail counts seconds from an epoch).
_UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# A client that sends this much in command mode without finishing a single line is not speaking
# SMTP (binary garbage, a TLS handshake): 16 command lines of 512 octets (RFC 5321 4.5.3.1.4).
# Postfix gets the same effect by cutting lines at line_length_limit = 2048.
_SMTP_JUNK_LIMIT = 16 * 512
# The same for POP3: 16 command lines of 255 octets (RFC 2449 4).
_POP3_JUNK_LIMIT = 16 * pop3.COMMAND_LINE_LIMIT
# One read from the socket; a POP3 machine step handles at most this much input.
_READ_SIZE = 64 * 1024
# After its last reply the server half-closes and keeps reading (and dropping) what the client
# still sends for this long before it closes: closing with unread input would send a TCP RST,
# and the RST can destroy the client's copy of that last reply (the "lingering close").
_LINGER = 2.0
# While a message is being stored, a pipelining client may send on; past this much input the
# socket is no longer read until the verdict (the machine holds everything meanwhile).
_HOLD_LIMIT = 256 * 1024

# Threads that store messages: fsync waits on the disk, so a few run in parallel (as the default
# executor would have: min(32, CPUs + 4) on small machines).
_STORE_THREADS = 8

_SMTP_OVER = (ServerState.CLOSED, ServerState.ERROR)
_SMTP_BUSY = (ServerState.DATA, ServerState.AWAITING_DECISION)
# RFC 5322 2.2: a header field starts with printable characters other than ":", then ":".


class StartupError(Exception):
    """The server could not start (a port in use, a bad configuration); the text says why."""


# --- accounts ------------------------------------------------------------------------------------


def read_users_file(path: str | Path) -> dict[str, str]:
    """Users from a file of ``name:password`` lines; blank lines and ``#`` comments are skipped.

    Raises:
        ValueError: a line is malformed; the message is ``FILE:LINE: what is wrong``.
        OSError: the file cannot be read.
    """
    users: dict[str, str] = {}
    text = Path(path).read_text(encoding="utf-8")
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            name, password = parse_user(line)
        except ValueError as error:
            raise ValueError(f"{path}:{number}: {error}") from None
        if name.lower() in {known.lower() for known in users}:
            raise ValueError(f"{path}:{number}: user {name!r} is listed twice")
        users[name] = password
    return users


def parse_user(text: str) -> tuple[str, str]:
    """``"Steve:secret"`` -> ``("Steve", "secret")``; ValueError with a clear message otherwise."""
    name, colon, password = text.partition(":")
    name = name.strip()
    if not colon or not name or not password:
        raise ValueError(f"expected NAME:PASSWORD (like Steve:secret), got {text!r}")
    if "\r" in password or "\n" in password:
        raise ValueError("a password cannot contain a line break")
    check_mailbox_name(name)
    return name, password


class Accounts:
    """Who has a mailbox here: user names (local parts at every domain) and their passwords.

    Local parts are matched without regard to case, as most servers do (RFC 5321 2.4 leaves it to
    the server): user ``Steve`` gets ``steve@india.com`` and ``STEVE@India.COM``.

    Args:
        users: user name -> password.
        domains: the domains this server is the final destination for.
    """

    def __init__(self, users: Mapping[str, str], domains: Sequence[str]) -> None:
        #: The domains served, lower case.
        self.domains = frozenset(domain.lower().rstrip(".") for domain in domains)
        #: user name (as configured) -> password.
        self.users = dict(users)
        self._by_lower: dict[str, str] = {}
        for name in self.users:
            check_mailbox_name(name)
            if name.lower() in self._by_lower:
                raise ValueError(
                    f"users {self._by_lower[name.lower()]!r} and {name!r} differ only "
                    "in case; local parts are matched without case"
                )
            self._by_lower[name.lower()] = name

    def user(self, login: str) -> str | None:
        """The configured user for a login name (``steve`` or ``steve@india.com``), or None."""
        local, at, domain = login.rpartition("@")
        if at:
            if domain.lower() not in self.domains:
                return None
            login = local
        return self._by_lower.get(login.lower())

    def check_password(self, login: str, password: str) -> str | None:
        """The user if ``password`` is right for ``login``, else None (constant-time compare)."""
        name = self.user(login)
        expected = self.users.get(name, "") if name is not None else ""
        ok = hmac.compare_digest(expected.encode("utf-8"), password.encode("utf-8"))
        return name if ok and name is not None else None

    def is_local(self, address: str) -> bool:
        """Whether ``address`` is at one of our domains (or has no domain: ``postmaster``)."""
        _, at, domain = address.rpartition("@")
        return not at or domain.lower().rstrip(".") in self.domains

    def mailbox_for(self, address: str) -> str | None:
        """The mailbox a local ``address`` is delivered to, or None for an unknown user.

        ``postmaster`` (RFC 5321 4.5.1) goes to a user of that name if there is one, else to a
        ``postmaster`` Maildir that has no POP3 login (add ``--user postmaster:...`` to read it).
        """
        local = address.rpartition("@")[0] if "@" in address else address
        name = self._by_lower.get(local.lower())
        if name is None and local.lower() == "postmaster":
            return "postmaster"
        return name


# --- configuration -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServeConfig:
    """Everything ``mailsim serve`` can be told, with its defaults.

    Attributes:
        domains: the domains this server is the final destination for (first = default hostname).
        users: user name -> password; users are local parts at every domain.
        maildir: the directory holding one Maildir per user and ``_outgoing``.
        host: the address to listen on.
        smtp_port: the MX-role SMTP port (0 = any free port; None = do not listen).
        submission_port: the submission port, AUTH required (RFC 6409).
        pop3_port: the POP3 port.
        hostname: the name in the greeting and in ``Received:`` (default: the first domain).
        replies: the SMTP reply wording (:attr:`ReplyTexts.MODERN` or ``CLASSIC``).
        max_message_size: the SIZE limit in octets (RFC 1870).
        max_connections: open connections per listener; one more gets 421 4.7.0 and is closed.
        idle_timeout: seconds an SMTP client may stay silent (RFC 5321 4.5.3.2.7: 5 minutes).
        pop3_idle_timeout: POP3 autologout (RFC 1939 3: at least 10 minutes).
        store_in_thread: store (and fsync) in the thread pool instead of the event loop.
    """

    domains: tuple[str, ...] = ("localhost",)
    users: Mapping[str, str] = field(default_factory=dict)
    maildir: Path = Path("maildir")
    host: str = "127.0.0.1"
    smtp_port: int | None = 2525
    submission_port: int | None = 2587
    pop3_port: int | None = 1100
    hostname: str | None = None
    replies: ReplyTexts = ReplyTexts.MODERN
    max_message_size: int = 10 * 1024 * 1024
    max_connections: int = 100
    idle_timeout: float = 300.0
    pop3_idle_timeout: float = 600.0
    store_in_thread: bool = True

    def __post_init__(self) -> None:
        if not self.domains:
            raise ValueError("at least one domain is needed (--domain India.com)")
        for domain in self.domains:
            if not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?", domain):
                raise ValueError(f"domain {domain!r} is not a domain name like India.com")
        if self.hostname is not None and not re.fullmatch(r"[!-~]+", self.hostname):
            raise ValueError(f"hostname {self.hostname!r} must be printable ASCII without spaces")
        if self.max_connections < 1:
            raise ValueError(f"max connections must be at least 1, got {self.max_connections}")
        if self.max_message_size < 1024:
            raise ValueError(
                f"max message size must be at least 1024 octets, got {self.max_message_size}"
            )
        if self.idle_timeout <= 0 or self.pop3_idle_timeout <= 0:
            raise ValueError("idle timeouts must be positive numbers of seconds")

    @property
    def server_name(self) -> str:
        """The host name the server uses for itself."""
        return self.hostname or self.domains[0]


def _reply(texts: ReplyTexts, code: int, status: str, text: str) -> Reply:
    """A reply with the RFC 3463 code when the wording uses them (MODERN), without (CLASSIC)."""
    return Reply(code, (f"{status} {text}" if texts.enhanced else text,))


# --- SMTP: policy --------------------------------------------------------------------------------


class MailPolicy(ServerPolicy):
    """Who may send what to whom, for the MX and the submission listeners.

    Local users at our domains are accepted (550 5.1.1 for unknown ones); other domains only from
    an authenticated client (550 5.7.1 otherwise: RFC 5321 7.1, no open relay).

    The machine's own ``always_accept_postmaster`` is switched off because it would take
    ``postmaster@any.other.domain`` too (an open relay to every postmaster); postmaster at our
    domains is accepted here instead (RFC 5321 4.5.1).
    """

    def __init__(self, accounts: Accounts, texts: ReplyTexts, *, submission: bool) -> None:
        super().__init__(
            auth_offered=True, auth_required=submission, always_accept_postmaster=False
        )
        #: The users and domains.
        self.accounts = accounts
        self._texts = texts

    def authenticate(self, user: str, password: str) -> bool:
        """Check the password of a local user (name, or name@our.domain)."""
        return self.accounts.check_password(user, password) is not None

    def check_recipient(self, session: Session, address: str, params: RcptParams) -> Reply | None:
        """Accept local users and postmaster; others only after AUTH."""
        accounts = self.accounts
        if accounts.is_local(address):
            if accounts.mailbox_for(address) is not None:
                return None
            return _reply(
                self._texts,
                550,
                "5.1.1",
                f"<{address}>: Recipient address rejected: User unknown in local recipient table",
            )
        if session.authenticated_user is not None:
            return None  # stored in _outgoing
        return _reply(self._texts, 550, "5.7.1", f"<{address}>: Relay access denied")


# --- the server ----------------------------------------------------------------------------------


class LiveServer:
    """SMTP, submission and POP3 listeners over one Maildir store, on one asyncio loop.

    Use :meth:`start` and :meth:`stop` inside a running loop, or :class:`ServerThread` from
    ordinary (test, notebook) code.

    Args:
        config: what to serve and where.

    Raises:
        ValueError: a bad configuration (the message says what to change).
    """

    def __init__(self, config: ServeConfig) -> None:
        #: The configuration.
        self.config = config
        #: The users and domains.
        self.accounts = Accounts(config.users, config.domains)
        #: The Maildirs (created on :meth:`start`).
        self.store: MaildirStore | None = None
        #: Listener name -> actual port, once started.
        self.ports: dict[str, int] = {}
        #: Messages stored since start.
        self.stored = 0
        self._servers: list[asyncio.base_events.Server] = []
        self._smtp_sessions: dict[str, set[_SMTPSession]] = {"smtp": set(), "submission": set()}
        self._pop3_sessions: set[_POP3Session] = set()
        self._pending: set[Future[None]] = set()
        self._executor: ThreadPoolExecutor | None = None
        self._queue_ids = itertools.count(1)
        self._queue_prefix = f"{int(time.time() * 1000):X}"
        self._closing = False
        self.limits = ServerLimits(max_message_size=config.max_message_size)

    # -- life cycle -------------------------------------------------------------------------------

    async def start(self) -> dict[str, int]:
        """Create the Maildirs and listen; returns listener name -> port actually bound.

        Raises:
            StartupError: a port cannot be bound or the Maildir root cannot be created.
        """
        config = self.config
        names = [*self.accounts.users]
        try:
            self.store = MaildirStore(config.maildir, names)
        except OSError as error:
            raise StartupError(f"cannot create the Maildirs in {config.maildir}: {error}") from None
        loop = asyncio.get_running_loop()
        wanted: list[tuple[str, int | None]] = [
            ("smtp", config.smtp_port),
            ("submission", config.submission_port),
            ("pop3", config.pop3_port),
        ]
        try:
            for name, port in wanted:
                if port is None:
                    continue
                server: asyncio.base_events.Server
                if name == "pop3":
                    server = await asyncio.start_server(
                        self._pop3_connected, config.host, port, limit=_READ_SIZE
                    )
                else:
                    policy = MailPolicy(self.accounts, config.replies, submission=name != "smtp")
                    factory = functools.partial(_SMTPSession, self, name, policy)
                    server = await loop.create_server(factory, config.host, port)
                self._servers.append(server)
                self.ports[name] = server.sockets[0].getsockname()[1]
        except OSError as error:
            await self._close_listeners()
            raise StartupError(
                f"cannot listen on {config.host}:{port} for {name}: {error.strerror or error}"
                " (another server there? choose another port, or 0 for any free one)"
            ) from None
        return dict(self.ports)

    async def _close_listeners(self) -> None:
        for server in self._servers:
            server.close()
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()

    async def stop(self, grace: float = 5.0) -> None:
        """Stop listening, say 421 / -ERR to every client, finish messages being stored.

        Messages whose final dot arrived are stored and acknowledged before their session gets
        its 421 (nothing acknowledged is lost; nothing half-received is kept, RFC 5321 3.8).
        Clients get a short moment to read their last reply and close; then all is closed.

        Args:
            grace: seconds to wait for messages still being stored.
        """
        self._closing = True
        for server in self._servers:
            server.close()
        for sessions in self._smtp_sessions.values():
            for smtp in list(sessions):
                smtp.shut_down()
        for session in list(self._pop3_sessions):
            session.shut_down()
        if self._pending:
            pending = [asyncio.wrap_future(future) for future in list(self._pending)]
            await asyncio.wait(pending, timeout=grace)
        deadline = time.monotonic() + min(grace, 0.5)
        while (self._pop3_sessions or any(self._smtp_sessions.values())) and (
            time.monotonic() < deadline
        ):
            await asyncio.sleep(0.01)
        for sessions in self._smtp_sessions.values():
            for smtp in list(sessions):
                smtp.abort()
        for server in self._servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), timeout=1.0)
        self._servers.clear()
        if self._executor is not None:
            self._executor.shutdown(wait=False)

    # -- storing ----------------------------------------------------------------------------------

    def open_connections(self) -> int:
        """Client connections open right now, over every service."""
        return sum(len(sessions) for sessions in self._smtp_sessions.values()) + len(
            self._pop3_sessions
        )

    def next_queue_id(self) -> str:
        """A queue id unique to this server run: start time in ms (hex) and a counter."""
        return f"{self._queue_prefix}{next(self._queue_ids):05X}"

    def store_message(
        self, event: MessageReceived, session: Session, peer: str, queue_id: str
    ) -> list[str]:
        """Stamp ``Received:`` on the message and store a copy per mailbox, fsynced.

        Runs in a worker thread (or the loop, see ``store_in_thread``). Returns the mailboxes
        written to. Raises OSError when the disk fails.
        """
        assert self.store is not None
        accounts = self.accounts
        mailboxes: dict[str, None] = {}
        foreign: list[str] = []
        for address in event.rcpt_to:
            if accounts.is_local(address):
                box = accounts.mailbox_for(address)
                if box is not None:
                    mailboxes[box] = None
            else:
                foreign.append(address)
        content = add_received(
            event.content,
            helo=session.hello_name or "unknown",
            client_ip=peer,
            by_host=self.config.server_name,
            queue_id=queue_id,
            t=time.time(),
            rcpt=event.rcpt_to[0] if len(event.rcpt_to) == 1 else None,
            protocol=with_protocol(
                extended=session.extended, authenticated=session.authenticated_user is not None
            ),
            epoch=_UNIX_EPOCH,
        )
        sender = event.mail_from.encode("ascii", "replace")
        copies: list[tuple[str, bytes]] = []
        if mailboxes:
            # RFC 5321 4.4: final delivery records the reverse-path in Return-Path.
            local = b"Return-Path: <" + sender + b">\r\n" + content
            copies += [(box, local) for box in mailboxes]
        if foreign:
            envelope = (
                b"X-Mailsim-Envelope-From: <"
                + sender
                + b">\r\n"
                + b"".join(
                    b"X-Mailsim-Envelope-To: <" + a.encode("ascii", "replace") + b">\r\n"
                    for a in foreign
                )
            )
            copies.append((OUTGOING, envelope + content))
        self.store.deliver(copies)
        self.stored += 1
        if log.isEnabledFor(logging.INFO):
            where = ", ".join(box for box, _ in copies)
            log.info(
                "stored %s from <%s> to %s in %s (%d octets)",
                queue_id,
                event.mail_from,
                ", ".join(event.rcpt_to),
                where,
                len(content),
            )
        return [box for box, _ in copies]

    # -- POP3 -------------------------------------------------------------------------------------

    async def _pop3_connected(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        session = _POP3Session(self, reader, writer)
        await session.run()

    def _submit_store(self, job: Callable[..., None], *args: Any) -> None:
        """Run a store job in the store thread pool, remembering it until it is done."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(_STORE_THREADS, thread_name_prefix="mailsim-store")
        future = self._executor.submit(job, *args)
        self._pending.add(future)
        future.add_done_callback(self._pending.discard)


class _MaildirProvider(pop3.MaildropProvider):
    """The POP3 machine's view of the accounts and the Maildirs."""

    def __init__(self, accounts: Accounts, store: MaildirStore) -> None:
        self._accounts = accounts
        self._store = store

    def authenticate(self, user: str, password: str) -> bool:
        return self._accounts.check_password(user, password) is not None

    def secret_for(self, user: str) -> str | None:
        name = self._accounts.user(user)
        return self._accounts.users.get(name) if name is not None else None

    def open_maildrop(self, user: str) -> pop3.Maildrop | str:
        name = self._accounts.user(user)
        if name is None:
            return "[SYS/PERM] no maildrop for this user"
        opened: MaildirMaildrop | str = self._store.open_maildrop(name)
        return opened


def _peer_of(transport: asyncio.BaseTransport) -> tuple[str, str]:
    """(ip, "ip:port") of the client."""
    peer = transport.get_extra_info("peername")
    if isinstance(peer, tuple) and len(peer) >= 2:
        return str(peer[0]), f"{peer[0]}:{peer[1]}"
    return "unknown", "unknown"


# --- SMTP: the connection ------------------------------------------------------------------------


class _SMTPSession(asyncio.Protocol):
    """One SMTP connection: socket bytes in and out of an :class:`SMTPServer` machine."""

    def __init__(self, server: LiveServer, service: str, policy: MailPolicy) -> None:
        self.server = server
        self.service = service
        self.policy = policy
        self.transport: asyncio.Transport | None = None
        self.machine: SMTPServer | None = None
        self.loop = asyncio.get_running_loop()
        self.peer_ip = ""
        self.peer = ""
        self.opened = 0.0
        self.last_activity = 0.0
        self.timer: asyncio.TimerHandle | None = None
        self.storing = False  # a message is being stored; the machine is PAUSED
        self.held = 0  # octets received while storing
        self.shutdown_requested = False
        self.finishing = False  # last reply written; half-closed, draining the client's input
        self.peer_eof = False  # the client closed its sending side
        self.junk = 0  # command-mode octets since the machine last had something to say
        self.messages = 0
        self.refused = 0
        self.ending = "peer closed"

    # -- asyncio callbacks ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.peer_ip, self.peer = _peer_of(transport)
        server = self.server
        config = server.config
        sessions = server._smtp_sessions[self.service]
        self.opened = self.last_activity = self.loop.time()
        if len(sessions) >= config.max_connections or server._closing:
            why = "too many connections" if not server._closing else "shutting down"
            text = f"{config.server_name} Error: {why}, try again later"
            transport.write(_reply(config.replies, 421, "4.7.0", text).to_bytes())
            transport.close()
            log.info("%s %s refused: %s", self.service, self.peer, why)
            return
        sessions.add(self)
        self.machine = SMTPServer(
            config.server_name,
            peer=self.peer_ip,
            policy=self.policy,
            limits=server.limits,
            texts=config.replies,
        )
        transport.write(self.machine.data_to_send())
        self.timer = self.loop.call_later(config.idle_timeout, self._check_idle)

    def data_received(self, data: bytes) -> None:
        machine = self.machine
        if machine is None or self.finishing:
            return
        self.last_activity = self.loop.time()
        machine.receive_data(data)
        if self.storing:
            # The machine holds pipelined input until the verdict; bound what it may hold.
            self.held += len(data)
            if self.held > _HOLD_LIMIT and self.transport is not None:
                self.transport.pause_reading()
            return
        if machine.state not in _SMTP_BUSY:
            self.junk += len(data)
        self._pump()

    def eof_received(self) -> bool:
        if self.finishing:
            return False  # the client has read our last reply and closed: close too
        self.peer_eof = True
        if self.machine is not None:
            self.machine.receive_data(b"")
            if not self.storing:
                self._pump()
        return True  # keep our side open until the machine's last reply is written

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.machine is None:
            return
        self.server._smtp_sessions[self.service].discard(self)
        if exc is not None:
            self.ending = "connection lost"
        log.info(
            "%s %s closed after %.1f s: %d stored, %d refused (%s)",
            self.service,
            self.peer,
            self.loop.time() - self.opened,
            self.messages,
            self.refused,
            self.ending,
        )

    # -- the machine ------------------------------------------------------------------------------

    def _pump(self) -> None:
        """Run the machine until it needs data or waits for a decision; write what it says."""
        machine = self.machine
        transport = self.transport
        assert machine is not None and transport is not None
        try:
            while True:
                event = machine.next_event()
                if event is NEED_DATA:
                    out = machine.data_to_send()
                    if out:
                        transport.write(out)
                        self.junk = 0
                    if machine.state in _SMTP_OVER:
                        self._finish()
                    elif self.junk > _SMTP_JUNK_LIMIT and machine.state not in _SMTP_BUSY:
                        self._hang_up("not SMTP")
                    return
                if event is PAUSED:
                    out = machine.data_to_send()
                    if out:
                        transport.write(out)
                    self.junk = 0
                    return
                if isinstance(event, MessageReceived):
                    if not self._decide(event):
                        return  # storing in a thread; _stored() carries on
                elif isinstance(event, MessageRefused):
                    self.refused += 1
                elif isinstance(event, Quit):
                    self.ending = "quit"
                elif isinstance(event, AuthResult) and not event.ok:
                    log.info("%s %s AUTH failed for %r", self.service, self.peer, event.user)
        except Exception:  # a bug of ours must cost one connection, never the server
            log.exception("%s %s internal error; connection closed", self.service, self.peer)
            self.ending = "internal error"
            transport.abort()

    def _decide(self, event: MessageReceived) -> bool:
        """Store the message; True if decided now, False if storing went to a thread."""
        machine = self.machine
        transport = self.transport
        assert machine is not None and transport is not None
        server = self.server
        if is_looping(event.content):
            # RFC 5321 6.3: too many Received lines means a mail loop.
            reply = _reply(server.config.replies, 554, "5.4.6", "Too many hops (mail loop)")
            transport.write(machine.send(Reject(reply)))
            self.refused += 1
            return True
        queue_id = server.next_queue_id()
        session = machine.session
        if not server.config.store_in_thread or server.open_connections() == 1:
            # Inline when configured, or when this is the only client: blocking the loop for the
            # fsyncs then starves nobody, and it saves the hop to a worker thread and back.
            transport.write(self._verdict(self._store_now(event, session, queue_id), queue_id))
            return True
        self.storing = True
        self.held = 0
        server._submit_store(self._store_in_worker, event, session, queue_id)
        return False

    def _store_in_worker(self, event: MessageReceived, session: Session, queue_id: str) -> None:
        """In the thread pool: store, then hand the verdict to the loop in one wake-up."""
        problem = self._store_now(event, session, queue_id)
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody to answer
            self.loop.call_soon_threadsafe(self._stored, problem, queue_id)

    def _store_now(self, event: MessageReceived, session: Session, queue_id: str) -> str | None:
        """Store; None on success, else the error text (runs in a thread or the loop)."""
        try:
            self.server.store_message(event, session, self.peer_ip, queue_id)
        except OSError as error:
            log.error("%s %s cannot store %s: %s", self.service, self.peer, queue_id, error)
            return str(error.strerror or error)
        except Exception:  # a bug of ours: refuse with 451 rather than lose the session
            log.exception("%s %s cannot store %s", self.service, self.peer, queue_id)
            return "internal error"
        return None

    def _verdict(self, problem: str | None, queue_id: str) -> bytes:
        machine = self.machine
        assert machine is not None
        if problem is None:
            self.messages += 1
            return machine.send(Accept(queue_id))
        self.refused += 1
        reply = _reply(
            self.server.config.replies, 451, "4.3.0", "Error: cannot store the message now"
        )
        return machine.send(Reject(reply))

    def _stored(self, problem: str | None, queue_id: str) -> None:
        """Back on the loop: answer the final dot, then carry on with what the client sent."""
        transport = self.transport
        assert transport is not None
        self.storing = False
        out = self._verdict(problem, queue_id)
        if transport.is_closing():
            return  # the client left meanwhile; the message is stored anyway (RFC 1047)
        transport.write(out)
        if self.shutdown_requested:
            self.shut_down()
            return
        if self.held > _HOLD_LIMIT:
            transport.resume_reading()
        self._pump()

    def _hang_up(self, why: str) -> None:
        """Say 421 and close (the client sent junk, or the server stops)."""
        machine = self.machine
        transport = self.transport
        assert machine is not None and transport is not None
        config = self.server.config
        if why == "timeout":
            reply = machine.error_reply("timeout")  # RFC 5321 4.5.3.2.7: 421 4.4.2
        elif why == "shutdown":
            reply = machine.error_reply("shutdown")
        else:
            text = f"{config.server_name} Error: too much input without a command line"
            reply = _reply(config.replies, 421, "4.7.0", text)
        self.ending = why
        if not transport.is_closing() and not self.finishing:
            transport.write(machine.send(Shutdown(reply)))
            self._finish()

    def _finish(self) -> None:
        """Half-close after the last reply, drain the client's input a moment, then close."""
        transport = self.transport
        assert transport is not None
        if self.finishing or transport.is_closing():
            return
        self.finishing = True
        if self.timer is not None:
            self.timer.cancel()
        if transport.can_write_eof() and not self.peer_eof:
            transport.write_eof()
            transport.resume_reading()
            self.timer = self.loop.call_later(_LINGER, transport.close)
        else:
            transport.close()

    def _check_idle(self) -> None:
        timeout = self.server.config.idle_timeout
        idle = self.loop.time() - self.last_activity
        if self.storing or idle < timeout:
            self.timer = self.loop.call_later(max(timeout - idle, 0.05), self._check_idle)
            return
        self.timer = None
        log.info("%s %s idle for %.0f s", self.service, self.peer, idle)
        self._hang_up("timeout")

    # -- server shutdown --------------------------------------------------------------------------

    def shut_down(self) -> None:
        """421 now, or right after the message being stored is acknowledged."""
        if self.machine is None:
            return
        if self.finishing and self.transport is not None:
            self.transport.close()
            return
        if self.storing:
            self.shutdown_requested = True
            return
        self._hang_up("shutdown")

    def abort(self) -> None:
        """Drop the connection at once (the grace period is over)."""
        if self.transport is not None:
            self.transport.abort()


# --- POP3: the connection ------------------------------------------------------------------------


class _POP3Session:
    """One POP3 connection; the machine steps run in the thread pool (they touch the disk)."""

    def __init__(
        self, server: LiveServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.peer_ip, self.peer = _peer_of(writer.transport)
        self.stop = asyncio.get_running_loop().create_future()
        self.machine: pop3.POP3Server | None = None
        self.junk = 0
        self.retrieved = 0
        self.deleted = 0
        self.user: str | None = None
        self.ending = "peer closed"

    def shut_down(self) -> None:
        if not self.stop.done():
            self.stop.set_result(None)

    async def run(self) -> None:
        server = self.server
        config = server.config
        writer = self.writer
        started = time.monotonic()
        if len(server._pop3_sessions) >= config.max_connections or server._closing:
            writer.write(b"-ERR [SYS/TEMP] too many connections, try again later\r\n")
            await self._close()
            log.info("pop3 %s refused: too many connections", self.peer)
            return
        server._pop3_sessions.add(self)
        try:
            await self._converse()
        except Exception:  # a bug of ours must cost one connection, never the server
            log.exception("pop3 %s internal error; connection closed", self.peer)
            self.ending = "internal error"
        finally:
            machine = self.machine
            if machine is not None and machine.state not in (
                pop3.Pop3State.CLOSED,
                pop3.Pop3State.ERROR,
            ):
                # Make sure the maildrop lock is released (no UPDATE: nothing is deleted).
                with contextlib.suppress(Exception):
                    machine.send(pop3.Shutdown("closing"))
            server._pop3_sessions.discard(self)
            await self._close()
            log.info(
                "pop3 %s closed after %.1f s: user %s, %d retrieved, %d deleted (%s)",
                self.peer,
                time.monotonic() - started,
                self.user or "-",
                self.retrieved,
                self.deleted,
                self.ending,
            )

    async def _converse(self) -> None:
        assert self.server.store is not None
        provider = _MaildirProvider(self.server.accounts, self.server.store)
        banner = f"{self.server.config.server_name} POP3 server ready (mailsim)"
        machine = self.machine = pop3.POP3Server(provider, banner=banner)
        writer = self.writer
        writer.write(machine.data_to_send())
        timeout = self.server.config.pop3_idle_timeout
        loop = asyncio.get_running_loop()
        while True:
            read = asyncio.ensure_future(self.reader.read(_READ_SIZE))
            done, _ = await asyncio.wait(
                {read, self.stop}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            if read not in done:
                read.cancel()
                # RFC 1939 3: autologout; the session does not enter UPDATE (nothing deleted).
                stopping = self.stop in done
                text = "server shutting down" if stopping else "autologout; idle for too long"
                self.ending = "shutdown" if stopping else "timeout"
                writer.write(machine.send(pop3.Shutdown(text)))
                return
            try:
                data = read.result()
            except (ConnectionError, OSError):
                data = b""
            out, over = await loop.run_in_executor(None, self._step, data)
            if out:
                writer.write(out)
                with contextlib.suppress(ConnectionError, OSError):
                    await writer.drain()
            if over:
                return

    def _step(self, data: bytes) -> tuple[bytes, bool]:
        """Feed ``data`` to the machine and run it; (bytes to write, session over). In a thread."""
        machine = self.machine
        assert machine is not None
        machine.receive_data(data)
        while True:
            event = machine.next_event()
            if event is pop3.NEED_DATA:
                break
            if isinstance(event, pop3.ConnectionClosed):
                self.ending = event.reason
                return machine.data_to_send(), True
            if isinstance(event, pop3.LoggedIn):
                self.user = event.user
            elif isinstance(event, pop3.Retrieved):
                self.retrieved += 1
            elif isinstance(event, pop3.Updated):
                self.deleted += len(event.deleted)
            elif isinstance(event, pop3.AuthResult) and not event.ok:
                log.info("pop3 %s login failed for %r", self.peer, event.user)
        out = machine.data_to_send()
        self.junk = 0 if out else self.junk + len(data)
        if self.junk > _POP3_JUNK_LIMIT:
            self.ending = "not POP3"
            return out + machine.send(pop3.Shutdown("too much input without a command line")), True
        return out, False

    async def _close(self) -> None:
        """Half-close, drain what the client still sends (the lingering close), close."""
        writer = self.writer
        with contextlib.suppress(Exception):
            if writer.can_write_eof() and not writer.is_closing():
                writer.write_eof()
                await asyncio.wait_for(self._drain_input(), timeout=_LINGER)
        with contextlib.suppress(Exception):
            writer.close()
            await asyncio.wait_for(writer.wait_closed(), timeout=1.0)

    async def _drain_input(self) -> None:
        while not self.stop.done() and await self.reader.read(_READ_SIZE):
            pass


# --- running it from ordinary code ---------------------------------------------------------------


class ServerThread:
    """A :class:`LiveServer` on its own event loop in a background thread (tests, notebooks).

    Use as a context manager: ``with ServerThread(config) as running: running.ports["smtp"]``.

    Args:
        config: what to serve; ports 0 pick free ones.
    """

    def __init__(self, config: ServeConfig) -> None:
        #: The configuration.
        self.config = config
        #: The server, once started.
        self.server: LiveServer | None = None
        #: Listener name -> port, once started.
        self.ports: dict[str, int] = {}
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None

    def start(self, timeout: float = 10.0) -> dict[str, int]:
        """Start the thread and wait until the listeners are bound; returns the ports.

        Raises:
            StartupError: the server could not start.
        """
        self._thread = threading.Thread(target=self._run, name="mailsim-live", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise StartupError(f"the live server did not start within {timeout} s")
        if self._error is not None:
            raise self._error
        return dict(self.ports)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as error:  # reported to the starting thread
            self._error = error
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self.server = LiveServer(self.config)
        self.ports = await self.server.start()
        self._ready.set()
        await self._stop.wait()
        await self.server.stop()

    def stop(self, timeout: float = 10.0) -> None:
        """Shut the server down gracefully and wait for the thread."""
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout)

    def __enter__(self) -> ServerThread:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
