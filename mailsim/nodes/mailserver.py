"""A simulated mail server: the mail-server core driven by SimPy processes over the network.

This is steps 2 to 6 of the tutorial from the server's side. James's user agent submits on port
587 (RFC 6409: AUTH first, then anything may be relayed); the message is written to the outgoing
queue and only then acknowledged (a durable queue, RFC 5321 4.2.5 and 6.1). One delivery job per
destination looks up the domain's MX hosts, tries them in preference order (RFC 5321 5.1) and
carries its messages, and whatever rides along, over one persistent connection. On port 25 the
server accepts mail only for its own domains and files it in local mailboxes, which POP3 on port
110 serves.

Every decision (who may send what, what is queued, what goes out on which connection, when to
retry, warn or bounce) is the sans-IO :class:`~mailsim.mail.server.core.MailServerCore`, the same
one the live servers drive on real sockets. This module is its SimPy adapter: it keeps the
simulated clock, moves bytes between the protocol machines and the simulated connections, and
runs one process per session and per delivery job. Queued messages hold no process: one runner
per server wakes when something is due (one SimPy event per wake: a kick or its single alarm).
Crash and restart come from the network's fault hooks.
"""

from __future__ import annotations

import math
from collections.abc import Generator, Iterable
from typing import TYPE_CHECKING, Any

import simpy

from mailsim.mail.mailbox import MailStore
from mailsim.mail.message import message_id_of
from mailsim.mail.server import (
    Delivery,
    MailServerCore,
    ReplyFault,
    ServerSettings,
    SessionPolicy,
    reply_line,
)
from mailsim.net.dns import DnsError
from mailsim.net.tcp import ConnectError, ConnectionReset, SocketTimeout
from mailsim.nodes.wire import LineTracer, drive_client, transmit
from mailsim.protocol import pop3
from mailsim.protocol.smtp import (
    NEED_DATA,
    PAUSED,
    Accept,
    AuthResult,
    MessageReceived,
    Reject,
    Shutdown,
    SMTPServer,
)

if TYPE_CHECKING:
    from mailsim.nodes.world import World

__all__ = [
    "POP3_PORT",
    "SMTP_PORT",
    "SUBMISSION_PORT",
    "MailServer",
    "ReplyFault",
    "ServerSettings",
    "message_id_of",
    "reply_line",
]

#: Well-known ports (RFC 5321 4.5.3, RFC 6409, RFC 1939).
SMTP_PORT, SUBMISSION_PORT, POP3_PORT = 25, 587, 110


class _Crashed(Exception):
    """Raised inside a server process whose node went down."""


class MailServer:
    """One mail server node of the simulated world.

    Args:
        world: the world it lives in (environment, network, DNS, trace, random streams).
        node: the node name it runs on.
        domains: the mail domains it is final destination for.
        users: local part -> password of its users (local parts are shared by all its domains,
            as Postfix's local delivery does).
        settings: the knobs (see :class:`ServerSettings`).
    """

    def __init__(
        self,
        world: World,
        node: str,
        domains: Iterable[str],
        users: dict[str, str],
        settings: ServerSettings | None = None,
    ) -> None:
        self.world = world
        self.env: simpy.Environment = world.env
        self.trace = world.recorder
        #: The node this server runs on.
        self.node = node
        settings = settings if settings is not None else ServerSettings()
        env = self.env
        #: What the server decides (accept, queue, deliver, retry, bounce).
        self.core = MailServerCore(
            node,
            domains,
            users,
            settings,
            clock=lambda: env.now,
            trace=world.recorder,
            store=MailStore(dict.fromkeys(name.lower() for name in users)),
            note_arrival=world.note_arrival,
            retry_rng=world.streams.get("retry", node),
            fault_rng=world.streams.get("reply-faults", node),
            own_address=world.topology.ip_of(node),
        )
        self.core.on_wake = self._wake_runner
        #: The knobs.
        self.settings = settings
        #: The name in greetings and headers.
        self.hostname = self.core.hostname
        #: Local mailboxes, by local part.
        self.store: MailStore = self.core.store  # type: ignore[assignment]
        #: The outgoing queue.
        self.queue = self.core.queue
        self._procs: set[simpy.Process] = set()
        self._wake: simpy.Event | None = None
        self._timer: simpy.Event | None = None  # the runner's pending alarm, if any
        self._timer_at = math.inf
        self._listeners: list[Any] = []
        self.resolver = world.resolver_for(node)
        world.network.on_node_down(node, self._crash)
        world.network.on_node_up(node, self._restart)

    @property
    def up(self) -> bool:
        """Whether the node is up."""
        return self.core.up

    # -- life cycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Open the ports and start the queue runner."""
        net = self.world.network
        self._listeners = [
            net.listen(self.node, SMTP_PORT),
            net.listen(self.node, SUBMISSION_PORT),
            net.listen(self.node, POP3_PORT),
        ]
        for listener, handler in zip(
            self._listeners,
            (self._smtp_session, self._submission_session, self._pop3_session),
            strict=True,
        ):
            self._spawn(self._accept_loop(listener, handler))
        self._spawn(self._queue_runner())

    def _spawn(self, generator: Generator[Any, Any, Any]) -> simpy.Process:
        proc = self.env.process(self._guarded(generator))
        self._procs.add(proc)
        proc.callbacks.append(lambda _event: self._procs.discard(proc))
        return proc

    def _guarded(self, generator: Generator[Any, Any, Any]) -> Generator[Any, Any, Any]:
        # A crash interrupts every process of the server; each simply ends.
        try:
            yield from generator
        except (simpy.Interrupt, _Crashed):
            return

    def _crash(self, _node: str) -> None:
        """The node went down: every process stops; the core voids its jobs (and a non-durable
        queue). The network has already reset the node's connections and closed its listeners.
        """
        if not self.core.up:
            return
        for proc in list(self._procs):
            if proc.is_alive and proc is not self.env.active_process:
                proc.interrupt("crash")
        self._procs.clear()
        self._listeners = []
        self.core.crash()

    def _restart(self, _node: str) -> None:
        """The node is back: attempts that were in flight are due again; ports reopen."""
        if self.core.up:
            return
        self.core.restart()
        # The process memory is gone: the DNS cache must be filled again.
        self.resolver.flush()
        self.start()

    def _wake_runner(self) -> None:
        if self._wake is not None and not self._wake.triggered:
            self._wake.succeed()

    def _arm(self, when: float) -> None:
        """Make sure the runner wakes at ``when`` (one alarm at a time: the earliest)."""
        if when >= self._timer_at:
            return
        now = self.env.now
        timer = self.env.timeout(max(0.0, when - now))
        timer.callbacks.append(self._ring)
        self._timer, self._timer_at = timer, when

    def _ring(self, timer: simpy.Event) -> None:
        if timer is self._timer:
            self._timer, self._timer_at = None, math.inf
            self._wake_runner()

    # -- accepting connections -----------------------------------------------------------------

    def _accept_loop(self, listener: Any, handler: Any) -> Generator[Any, Any, None]:
        while True:
            conn = yield listener.accept()
            self._spawn(handler(conn))

    def _smtp_session(self, conn: Any) -> Generator[Any, Any, None]:
        yield from self._serve_smtp(conn, submission=False)

    def _submission_session(self, conn: Any) -> Generator[Any, Any, None]:
        yield from self._serve_smtp(conn, submission=True)

    def _serve_smtp(self, conn: Any, *, submission: bool) -> Generator[Any, Any, None]:
        """One SMTP server session: the machine, fed from the connection."""
        env, core, settings = self.env, self.core, self.settings
        policy = core.policy(conn.remote_ip, submission=submission, port=conn.local_port)
        server = SMTPServer(
            core.hostname,
            peer=conn.remote_ip,
            policy=policy,
            limits=settings.limits,
            texts=core.texts,
            greeting=core.greeting(policy),
        )
        tracer = LineTracer(
            self.trace, "smtp.line", conn.id, "S", self.node, conn.remote_node, settings.data_lines
        )
        transmit(conn, tracer, server.data_to_send())
        if server.state.name in ("CLOSED", "ERROR"):  # a 421 greeting hangs up at once
            conn.close()
            return
        while True:
            try:
                data = yield conn.recv(timeout=settings.idle_timeout)
            except SocketTimeout:
                transmit(conn, tracer, server.send(Shutdown(server.error_reply("timeout"))))
                conn.close()
                return
            except ConnectionReset:
                data = b""
            server.receive_data(data)
            while True:
                event = server.next_event()
                if event is NEED_DATA:
                    break
                if event is PAUSED:
                    continue
                if isinstance(event, MessageReceived):
                    transmit(conn, tracer, server.data_to_send())
                    refusal = core.refusal(policy, event)
                    if refusal is not None:
                        transmit(conn, tracer, server.send(Reject(refusal)))
                        continue
                    if settings.durable:
                        yield env.timeout(settings.queue_write_time)
                    queue_id = self._take(event, conn, policy)
                    transmit(conn, tracer, server.send(Accept(queue_id)))
                    if not settings.durable:
                        yield env.timeout(settings.queue_write_time)
                elif isinstance(event, AuthResult):
                    core.record_auth(event, "submission" if submission else "smtp")
            transmit(conn, tracer, server.data_to_send())
            if not data or server.state.name in ("CLOSED", "ERROR"):
                conn.close()
                return

    def _take(self, event: MessageReceived, conn: Any, policy: SessionPolicy) -> str:
        return self.core.take_message(event, policy, conn.remote_ip, conn.remote_node)

    # -- the queue runner and delivery jobs (steps 3 and 4) -----------------------------------

    def _queue_runner(self) -> Generator[Any, Any, None]:
        env, core = self.env, self.core
        while True:
            jobs, next_due = core.plan()
            for job in jobs:
                self._spawn(self._deliver(job))
            if next_due is not None:
                self._arm(next_due)
            # One event per wake: a kick (arrival, a delivery's end) or the alarm's ring.
            self._wake = env.event()
            yield self._wake
            self._wake = None

    def _deliver(self, job: Delivery) -> Generator[Any, Any, None]:
        """One delivery job: MX lookup, connect, every message of its chunk over one session."""
        try:
            yield from self._deliver_chunk(job)
        finally:
            self.core.delivery_ended(job)

    def _deliver_chunk(self, job: Delivery) -> Generator[Any, Any, None]:
        """Find the domain's mail exchangers and try them in order until the chunk is handed over.

        RFC 5321 5.1: try each MX host in preference order until one accepts. A host that cannot
        be reached, or that refuses the whole session (a 554 or 421 greeting, a refused EHLO), is
        skipped and whatever it did not take goes to the next; what no host took is deferred.
        """
        net = self.world.network
        try:
            hosts = yield from self.resolver.resolve_mx(job.domain)
        except DnsError as error:
            job.dns_failed(str(error), error.permanent)
            return
        for host, address in job.candidates(hosts, lambda: net.next_connection_id):
            try:
                conn = yield net.connect(
                    self.node, address, SMTP_PORT, timeout=self.settings.connect_timeout
                )
            except ConnectError as error:
                job.connect_failed(host, address, SMTP_PORT, error.reason, str(error))
                continue
            session = job.session(host, conn.id)
            tracer = LineTracer(
                self.trace,
                "smtp.line",
                conn.id,
                "C",
                self.node,
                conn.remote_node,
                self.settings.data_lines,
            )
            yield from drive_client(
                conn,
                session.client,
                tracer,
                need_data=NEED_DATA,
                timeout_for=session.timeout_for,
                handle=session.handle,
            )
            job.session_ended(session)
        job.finish()

    # -- POP3 (step 6) -----------------------------------------------------------------------------

    def _pop3_session(self, conn: Any) -> Generator[Any, Any, None]:
        core = self.core
        server = pop3.POP3Server(_Pop3Provider(core), banner=f"{core.hostname} POP3 server ready")
        tracer = LineTracer(
            self.trace,
            "pop3.line",
            conn.id,
            "S",
            self.node,
            conn.remote_node,
            self.settings.data_lines,
        )
        transmit(conn, tracer, server.data_to_send())
        user = ""
        box = None
        while True:
            try:
                data = yield conn.recv(timeout=self.settings.pop3_idle_timeout)
            except SocketTimeout:
                transmit(conn, tracer, server.send(pop3.Shutdown("autologout")))
                conn.close()
                return
            except ConnectionReset:
                data = b""
            server.receive_data(data)
            done = False
            while True:
                event = server.next_event()
                if event is pop3.NEED_DATA:
                    break
                if isinstance(event, pop3.AuthResult):
                    user = event.user
                    core.record_auth(event, "pop3")
                elif isinstance(event, pop3.LoggedIn):
                    box = self.store.get(core.local_part(event.user))
                elif isinstance(event, pop3.Retrieved) and box is not None:
                    stored = box.messages[event.number - 1]
                    self.trace.emit("mail.fetch", msg=stored.msg_id, node=self.node, user=user)
                elif isinstance(event, pop3.ConnectionClosed):
                    done = True
                    break
            transmit(conn, tracer, server.data_to_send())
            if done or not data:
                conn.close()
                return


class _Pop3Provider(pop3.MaildropProvider):
    """POP3 logins against the server's users; maildrops are its mailboxes."""

    def __init__(self, core: MailServerCore) -> None:
        self.core = core

    def secret_for(self, user: str) -> str | None:
        return self.core.users.get(self.core.local_part(user))

    def open_maildrop(self, user: str) -> Any:
        core = self.core
        store: MailStore = core.store  # type: ignore[assignment]
        name = core.local_part(user)
        if store.get(name) is None:
            store.add_user(name)
        return store.open_maildrop(name)
