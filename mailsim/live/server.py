"""The live mail server: mailsim's sans-IO SMTP and POP3 machines on real asyncio sockets.

Up to five listeners share one Maildir store (:mod:`mailsim.live.storage`):

- **SMTP** (the MX role, port 25 on a real host; 2525 here): accepts mail for its own domains
  from anyone, refuses other domains with ``550 5.7.1 Relay access denied`` unless the client
  authenticated (RFC 5321 7.1: no open relay).
- **Submission** (RFC 6409, port 587; 2587 here): the same, but MAIL needs AUTH first (530).
  Authenticated mail for other domains is stored in the ``_outgoing`` Maildir; a real relay
  (MX lookup, queue, retries) is what the simulation models and is out of scope here.
- **POP3** (RFC 1939, port 110; 1100 here): each user reads their own Maildir.
- With ``tls``: STARTTLS on both SMTP ports (RFC 3207) and STLS on POP3 (RFC 2595), plus
  implicit TLS for submission (RFC 8314, port 465; 2465 here) and POP3 (port 995; 1995 here).
  Passwords then travel only under TLS. The certificate is made on first use
  (:mod:`mailsim.live.tls`).

The pieces: :mod:`~mailsim.live.accounts` (users), :mod:`~mailsim.live.smtp_session` and
:mod:`~mailsim.live.pop3_session` (one connection each), :mod:`~mailsim.live.tls`,
:mod:`~mailsim.live.faults` (``--fault``), :mod:`~mailsim.live.session_report` (``--report``).
This module holds the configuration, the listeners and the store they share.

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
import itertools
import json
import logging
import re
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mailsim.live.accounts import Accounts, parse_user, read_users_file
from mailsim.live.connection import DEFAULT_LINE_TIMEOUT, READ_SIZE
from mailsim.live.faults import FaultBook, LiveFault
from mailsim.live.pop3_session import POP3Session
from mailsim.live.smtp_session import MailPolicy, SMTPSession
from mailsim.live.storage import OUTGOING, MaildirStore
from mailsim.live.throttle import (
    DEFAULT_FAILURE_DELAY,
    DEFAULT_LOCKOUT_FAILURES,
    DEFAULT_LOCKOUT_WINDOW,
    LoginThrottle,
)
from mailsim.mail.message import (
    add_delivery_headers,
    add_missing_headers,
    add_received,
    with_protocol,
)
from mailsim.protocol.smtp import MessageReceived, ReplyTexts, ServerLimits, Session

__all__ = [
    "Accounts",
    "LiveServer",
    "ServeConfig",
    "ServerThread",
    "StartupError",
    "parse_user",
    "read_users_file",
]

#: Where the live server logs one line per connection and per stored message.
log = logging.getLogger("mailsim.live")

#: Wall-clock epoch for the ``Received:`` stamp (mailsim.mail counts seconds from an epoch).
_UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Threads that store messages: fsync waits on the disk, so a few run in parallel (as the default
# executor would have: min(32, CPUs + 4) on small machines).
_STORE_THREADS = 8

#: The directory under the Maildir root that keeps the TLS certificate and its CA.
TLS_DIR = "_tls"


class StartupError(Exception):
    """The server could not start (a port in use, a bad configuration); the text says why."""


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
        max_per_address: open connections from one client address, over all listeners (Postfix's
            smtpd_client_connection_count_limit, 50); one more is refused the same way.
        idle_timeout: seconds an SMTP client may stay silent (RFC 5321 4.5.3.2.7: 5 minutes).
        pop3_idle_timeout: POP3 autologout (RFC 1939 3: at least 10 minutes); it applies to
            writes too: a client that stops reading a reply for this long is cut off.
        line_timeout: seconds a command line may take from its first byte to its end, so that
            one byte a second cannot hold a session (the idle timers restart on every byte).
        auth_failure_delay: seconds before a failed SMTP AUTH or POP3 login is answered.
        auth_lockout_failures: failed logins from one address within ``auth_lockout_window``
            after which its logins are refused unchecked (0: no lockout).
        auth_lockout_window: seconds a failed login is remembered (the longest lockout).
        store_in_thread: store (and fsync) in the thread pool instead of the event loop.
        tls: offer STARTTLS / STLS, listen with implicit TLS too, and take passwords only under
            TLS; the certificate is made in ``<maildir>/_tls/`` on first use.
        smtps_port: submission with implicit TLS (RFC 8314, port 465), with ``tls`` only.
        pop3s_port: POP3 with implicit TLS (port 995), with ``tls`` only.
        strict: refuse improper pipelining with 554 5.5.0 (RFC 5321 4.3; Postfix's
            smtpd_forbid_unauth_pipelining).
        pipelining: advertise PIPELINING (RFC 2920) in the EHLO reply.
        faults: scripted SMTP replies (``--fault``), the first that matches wins.
        fault_seed: seeds the faults' ``probability`` draws (None: unpredictable).
        report: append one JSON record per SMTP session to this file (``--report``).
        record_sessions: keep those records in :attr:`LiveServer.records` too (the grader).
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
    max_per_address: int = 50
    idle_timeout: float = 300.0
    pop3_idle_timeout: float = 600.0
    line_timeout: float = DEFAULT_LINE_TIMEOUT
    auth_failure_delay: float = DEFAULT_FAILURE_DELAY
    auth_lockout_failures: int = DEFAULT_LOCKOUT_FAILURES
    auth_lockout_window: float = DEFAULT_LOCKOUT_WINDOW
    store_in_thread: bool = True
    tls: bool = False
    smtps_port: int | None = 2465
    pop3s_port: int | None = 1995
    strict: bool = False
    pipelining: bool = True
    faults: tuple[LiveFault, ...] = ()
    fault_seed: int | None = None
    report: Path | None = None
    record_sessions: bool = False

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
        if self.max_per_address < 1:
            raise ValueError(
                f"max connections per address must be at least 1, got {self.max_per_address}"
            )
        if self.idle_timeout <= 0 or self.pop3_idle_timeout <= 0 or self.line_timeout <= 0:
            raise ValueError("idle and line timeouts must be positive numbers of seconds")
        if self.auth_failure_delay < 0 or self.auth_lockout_window <= 0:
            raise ValueError(
                "the AUTH failure delay must be 0 or more seconds and the lockout window positive"
            )
        if self.auth_lockout_failures < 0:
            raise ValueError(
                f"AUTH lockout failures must be 0 (off) or more, got {self.auth_lockout_failures}"
            )

    @property
    def server_name(self) -> str:
        """The host name the server uses for itself."""
        return self.hostname or self.domains[0]


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
        #: Open SMTP sessions by listener (the connection limit counts them).
        self.smtp_sessions: dict[str, set[SMTPSession]] = {
            "smtp": set(),
            "submission": set(),
            "smtps": set(),
        }
        #: Open POP3 sessions, over both POP3 listeners.
        self.pop3_sessions: set[POP3Session] = set()
        #: The scripted replies (``--fault``) and their greylisting memory.
        self.faults = FaultBook(config.faults, config.fault_seed)
        #: One record per finished SMTP session, when recording (``record_sessions``).
        self.records: list[dict[str, Any]] | None = (
            [] if config.record_sessions or config.report is not None else None
        )
        #: The server-side TLS context, with ``tls``, once started.
        self.tls_context: ssl.SSLContext | None = None
        #: The CA certificate a client trusts, with ``tls``, once started.
        self.tls_ca: Path | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._report_lock = threading.Lock()
        self._pending: set[Future[None]] = set()
        self._executor: ThreadPoolExecutor | None = None
        self._queue_ids = itertools.count(1)
        self._queue_prefix = f"{int(time.time() * 1000):X}"
        #: True once :meth:`stop` began: new connections get 421.
        self.closing = False
        #: Failed logins per client address (the AUTH/PASS brake).
        self.throttle = LoginThrottle(
            config.auth_failure_delay, config.auth_lockout_failures, config.auth_lockout_window
        )
        self._per_address: dict[str, int] = {}
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
        if config.tls:
            from mailsim.live.tls import ensure_certificate, server_context

            try:
                files = ensure_certificate(config.maildir / TLS_DIR)
                self.tls_context = server_context(files)
            except (OSError, ssl.SSLError) as error:
                raise StartupError(f"cannot make or load the TLS certificate: {error}") from None
            self.tls_ca = files.ca
        loop = asyncio.get_running_loop()
        wanted: list[tuple[str, int | None]] = [
            ("smtp", config.smtp_port),
            ("submission", config.submission_port),
            ("pop3", config.pop3_port),
        ]
        if config.tls:
            wanted += [("smtps", config.smtps_port), ("pop3s", config.pop3s_port)]
        try:
            for name, port in wanted:
                if port is None:
                    continue
                server: asyncio.base_events.Server
                implicit = self.tls_context if name in ("smtps", "pop3s") else None
                if name in ("pop3", "pop3s"):
                    connected = functools.partial(self._pop3_connected, name, implicit is not None)
                    server = await asyncio.start_server(
                        connected, config.host, port, limit=READ_SIZE, ssl=implicit
                    )
                else:
                    policy = MailPolicy(
                        self.accounts,
                        config.replies,
                        submission=name != "smtp",
                        tls=config.tls,
                        pipelining=config.pipelining,
                    )
                    factory = functools.partial(
                        SMTPSession, self, name, policy, implicit is not None
                    )
                    server = await loop.create_server(factory, config.host, port, ssl=implicit)
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
        self.closing = True
        for server in self._servers:
            server.close()
        for sessions in self.smtp_sessions.values():
            for smtp in list(sessions):
                smtp.shut_down()
        for session in list(self.pop3_sessions):
            session.shut_down()
        if self._pending:
            pending = [asyncio.wrap_future(future) for future in list(self._pending)]
            await asyncio.wait(pending, timeout=grace)
        deadline = time.monotonic() + min(grace, 0.5)
        while (self.pop3_sessions or any(self.smtp_sessions.values())) and (
            time.monotonic() < deadline
        ):
            await asyncio.sleep(0.01)
        for sessions in self.smtp_sessions.values():
            for smtp in list(sessions):
                smtp.abort()
        for server in self._servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), timeout=1.0)
        self._servers.clear()
        if self._executor is not None:
            self._executor.shutdown(wait=False)

    # -- storing ----------------------------------------------------------------------------------

    def admit(self, address: str) -> str | None:
        """Count a new connection from ``address``; None, or why it is refused (then uncounted).

        Every admitted connection is given back with :meth:`dismiss` once, when it ends.
        """
        if self.closing:
            return "shutting down"
        count = self._per_address.get(address, 0)
        if count >= self.config.max_per_address:
            return "too many connections from your address"
        self._per_address[address] = count + 1
        return None

    def dismiss(self, address: str) -> None:
        """An admitted connection from ``address`` ended."""
        count = self._per_address.get(address, 0) - 1
        if count > 0:
            self._per_address[address] = count
        else:
            self._per_address.pop(address, None)

    def open_connections(self) -> int:
        """Client connections open right now, over every service."""
        return sum(len(sessions) for sessions in self.smtp_sessions.values()) + len(
            self.pop3_sessions
        )

    def next_queue_id(self) -> str:
        """A queue id unique to this server run: start time in ms (hex) and a counter."""
        return f"{self._queue_prefix}{next(self._queue_ids):05X}"

    def store_message(
        self,
        event: MessageReceived,
        session: Session,
        peer: str,
        queue_id: str,
        *,
        submission: bool = False,
    ) -> list[str]:
        """Stamp ``Received:`` on the message and store a copy per mailbox, fsynced.

        As the mail-server core does for the simulated and the scenario's live servers: a
        message submitted (``submission``) gets the ``Date:`` and ``Message-ID:`` it lacks
        (RFC 6409 8.2, 8.3), and each local copy ``Return-Path:`` and ``Delivered-To:``
        (RFC 5321 4.4). Runs in a worker thread (or the loop, see ``store_in_thread``). Returns
        the mailboxes written to. Raises OSError when the disk fails.
        """
        assert self.store is not None
        accounts = self.accounts
        mailboxes: dict[str, str] = {}  # mailbox -> the first recipient address filed there
        foreign: list[str] = []
        for address in event.rcpt_to:
            if accounts.is_local(address):
                box = accounts.mailbox_for(address)
                if box is not None:
                    mailboxes.setdefault(box, address)
            else:
                foreign.append(address)
        content = event.content
        if submission:
            own_id = f"{queue_id}@{self.config.server_name}"
            content = add_missing_headers(
                content, t=time.time(), message_id=own_id, epoch=_UNIX_EPOCH
            )
        content = add_received(
            content,
            helo=session.hello_name or "unknown",
            client_ip=peer,
            by_host=self.config.server_name,
            queue_id=queue_id,
            t=time.time(),
            rcpt=event.rcpt_to[0] if len(event.rcpt_to) == 1 else None,
            protocol=with_protocol(
                extended=session.extended,
                authenticated=session.authenticated_user is not None,
                tls=session.tls,
            ),
            epoch=_UNIX_EPOCH,
        )
        sender = event.mail_from.encode("ascii", "replace")
        copies: list[tuple[str, bytes]] = [
            (box, add_delivery_headers(content, event.mail_from, address))
            for box, address in mailboxes.items()
        ]
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
        self,
        service: str,
        implicit_tls: bool,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        session = POP3Session(self, reader, writer, service, implicit_tls)
        await session.run()

    # -- what sessions ask of the server ----------------------------------------------------------

    def keep_task(self, task: asyncio.Task[None]) -> None:
        """Hold a session's background task (a TLS handshake) until it is done."""
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def session_finished(self, record: dict[str, Any]) -> None:
        """A recorded SMTP session ended: keep its record, append it to ``report``."""
        if self.records is None:
            return
        self.records.append(record)
        path = self.config.report
        if path is None:
            return
        line = json.dumps(record, ensure_ascii=False) + "\n"
        try:
            with self._report_lock, path.open("a", encoding="utf-8") as out:
                out.write(line)
        except OSError as error:
            log.error("cannot write the session report %s: %s", path, error)

    def submit_store(self, job: Callable[..., None], *args: Any) -> None:
        """Run a store job in the store thread pool, remembering it until it is done."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(_STORE_THREADS, thread_name_prefix="mailsim-store")
        future = self._executor.submit(job, *args)
        self._pending.add(future)
        future.add_done_callback(self._pending.discard)


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
