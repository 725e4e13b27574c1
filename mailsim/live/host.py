"""What the live SMTP and POP3 sessions of one server share, and whom they ask for decisions.

Both live servers, the single ``mailsim serve`` (:class:`~mailsim.live.server.LiveServer`) and
each server of ``mailsim serve SCENARIO`` (:class:`~mailsim.live.mailserver.LiveMailServer`),
run the same session classes (:mod:`~mailsim.live.smtp_session`,
:mod:`~mailsim.live.pop3_session`) over a :class:`SessionHost`. The host holds what guards the
sockets: the connection caps, the login throttle, the session records, the TLS context and the
store thread pool. Who may send to whom, which reply fault hits (a scenario's or ``--fault``),
and what happens to an accepted message are the mail-server core's decisions
(:class:`~mailsim.mail.server.core.MailServerCore`), the same ones the simulation makes; a host
subclass only says where an accepted message goes and what to record.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Protocol

from mailsim.live.accounts import Accounts
from mailsim.live.throttle import LoginThrottle
from mailsim.protocol.smtp import MessageReceived, Reply, ServerLimits, Session

if TYPE_CHECKING:
    from mailsim.live.pop3_session import POP3Session
    from mailsim.live.server import ServeConfig
    from mailsim.live.smtp_session import SMTPSession
    from mailsim.live.storage import MaildirStore
    from mailsim.mail.server import MailServerCore, SessionPolicy

log = logging.getLogger("mailsim.live")

# Threads that store messages: fsync waits on the disk, so a few run in parallel (as the default
# executor would have: min(32, CPUs + 4) on small machines).
_STORE_THREADS = 8

#: The port each listener stands for (reply faults name 25, 587 or, live, 465).
SERVICE_PORTS = {"smtp": 25, "submission": 587, "smtps": 465, "pop3": 110, "pop3s": 110}


class Tap(Protocol):
    """Where a host records one connection's traffic (the scenario trace), if it does."""

    #: The client's address as the host's story tells it (greylisting and caps use it).
    client_ip: str

    def sent(self, data: bytes) -> None: ...

    def heard(self, data: bytes) -> None: ...

    def closed(self, how: str) -> None: ...


class SessionHost:
    """The shared state and the decisions behind one server's live sessions.

    A subclass sets :attr:`core` (at the latest when it starts listening) and says where an
    accepted message goes (:meth:`take_message`).

    Args:
        config: the bounds, timeouts, faults and TLS switch (:class:`ServeConfig`).
        accounts: the users and domains (POP3 logins, mailbox names).
        limits: the SMTP size and count limits (default: from ``config``).
    """

    #: What decides.
    core: MailServerCore

    def __init__(
        self,
        config: ServeConfig,
        accounts: Accounts,
        *,
        limits: ServerLimits | None = None,
    ) -> None:
        #: The bounds and switches.
        self.config = config
        #: The users and domains.
        self.accounts = accounts
        #: The Maildirs (set once the server starts).
        self.store: MaildirStore | None = None
        #: The SMTP machine's limits.
        self.limits = limits or ServerLimits(max_message_size=config.max_message_size)
        #: Open SMTP sessions by listener (the connection limit counts them).
        self.smtp_sessions: dict[str, set[SMTPSession]] = {
            "smtp": set(),
            "submission": set(),
            "smtps": set(),
        }
        #: Open POP3 sessions, over both POP3 listeners.
        self.pop3_sessions: set[POP3Session] = set()
        #: One record per finished SMTP session, when recording (``record_sessions``).
        self.records: list[dict[str, Any]] | None = (
            [] if config.record_sessions or config.report is not None else None
        )
        #: The server-side TLS context, with ``tls``, once started.
        self.tls_context: ssl.SSLContext | None = None
        #: Failed logins per client address (the AUTH/PASS brake).
        self.throttle = LoginThrottle(
            config.auth_failure_delay, config.auth_lockout_failures, config.auth_lockout_window
        )
        #: True once the server stops: new connections get 421.
        self.closing = False
        self._per_address: dict[str, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._report_lock = threading.Lock()
        self._pending: set[Future[None]] = set()
        self._executor: ThreadPoolExecutor | None = None

    # -- decisions (the core's) -------------------------------------------------------------------

    def smtp_policy(self, session: SMTPSession) -> SessionPolicy:
        """The core's policy for a new SMTP session."""
        return self.core.policy(
            session.peer_ip,
            submission=session.service != "smtp",
            port=SERVICE_PORTS.get(session.service, 25),
        )

    def real_seconds(self, seconds: float) -> float:
        """Real seconds for ``seconds`` on the core's clock (a fault's ``delay``)."""
        return seconds

    def greeting(self, policy: SessionPolicy) -> Reply | None:
        """The greeting a ``CONNECT`` reply fault gives, or None for the usual 220."""
        return self.core.greeting(policy)

    def refusal(self, policy: SessionPolicy, event: MessageReceived) -> Reply | None:
        """The reply refusing a message at its final dot (a fault, a loop), or None to take it."""
        return self.core.refusal(policy, event)

    #: Whether :meth:`take_message` may run in the store thread pool.
    stores_in_thread = False

    def take_message(self, event: MessageReceived, session: SMTPSession, snapshot: Session) -> str:
        """Store an accepted message (fsynced); returns its queue id. Raises OSError.

        ``snapshot`` is the SMTP session as it was at the final dot (HELO name, AUTH, TLS).
        """
        raise NotImplementedError

    def tap(self, session: SMTPSession | POP3Session, kind: str) -> Tap | None:
        """Where to record a new connection's traffic (``kind``: smtp.line, pop3.line)."""
        return None

    def auth_result(self, event: Any, service: str) -> None:
        """An SMTP AUTH or POP3 login ended (the scenario trace records it)."""

    def retrieved(self, session: POP3Session, number: int) -> None:
        """A POP3 client retrieved message ``number`` of its maildrop."""

    # -- what guards the sockets ------------------------------------------------------------------

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

    # -- stopping ---------------------------------------------------------------------------------

    async def end_sessions(self, grace: float) -> None:
        """Say 421 / -ERR to every client, finish messages being stored, then close them all.

        Messages whose final dot arrived are stored and acknowledged before their session gets
        its 421 (nothing acknowledged is lost; nothing half-received is kept, RFC 5321 3.8).
        Clients get a short moment to read their last reply and close; then all is closed.
        """
        self.closing = True
        for sessions in self.smtp_sessions.values():
            for smtp in list(sessions):
                smtp.shut_down()
        for session in list(self.pop3_sessions):
            session.shut_down()
        if self._pending:
            pending = [asyncio.wrap_future(future) for future in list(self._pending)]
            await asyncio.wait(pending, timeout=grace)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + min(grace, 0.5)
        while (self.pop3_sessions or any(self.smtp_sessions.values())) and loop.time() < deadline:
            await asyncio.sleep(0.01)
        self.abort_sessions()
        if self._executor is not None:
            self._executor.shutdown(wait=False)
            self._executor = None

    def abort_sessions(self) -> None:
        """Drop every connection at once (the grace is over, or the server crashed)."""
        for sessions in self.smtp_sessions.values():
            for smtp in list(sessions):
                smtp.abort()
        for session in list(self.pop3_sessions):
            session.abort()
