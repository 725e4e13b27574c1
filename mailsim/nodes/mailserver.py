"""A simulated mail server: submission, MX service, the outgoing queue, delivery agents and POP3.

This is steps 2 to 6 of the tutorial from the server's side. James's user agent submits on port
587 (RFC 6409: AUTH first, then anything may be relayed); the message is written to the outgoing
queue and only then acknowledged (a durable queue, RFC 5321 4.2.5 and 6.1). The queue runner
hands what is due to delivery agents, one per destination domain: each looks up the domain's MX
hosts, tries them in preference order (RFC 5321 5.1) and carries its messages over one persistent
connection, one transaction per message with all its recipients there. Messages that fall due
while a connection to their destination is open (or opening) and can take more do not open
their own: they ride along when it falls idle, together with messages that only waited for the
destination to come back (Exim's "waiting for host", Postfix's connection reuse); when the
destination cannot be reached they are deferred with it (Postfix's "delivery temporarily
suspended"). Temporary failures (4xx, timeouts, refused connections, DNS timeouts) are retried
by the retry policy; permanent ones (5xx, NXDOMAIN) and expiry are bounced to the sender as
RFC 3464 reports. On port 25 the server accepts mail only for its own domains and files it in
local mailboxes, which POP3 on port 110 serves.

Queued messages hold no process: the queue is data (``mailsim.mail.queue``), and one runner per
server wakes when something is due (one SimPy event per wake: a kick or its single alarm).
Crash and restart come from the network's fault hooks; with ``durable=False`` a crash loses
what was queued, and the trace names each loss.
"""

from __future__ import annotations

import heapq
import math
import re
from collections import OrderedDict, defaultdict
from collections.abc import Generator, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import simpy

from mailsim.mail.dsn import RecipientStatus, make_report
from mailsim.mail.mailbox import MailStore
from mailsim.mail.message import MailItem, add_received, domain_of, with_protocol
from mailsim.mail.queue import (
    WAITING_STATES,
    DueEntry,
    OutgoingQueue,
    QueueEntry,
    RecipientState,
)
from mailsim.mail.retry import FixedRetry, RetryPolicy
from mailsim.net.dns import DnsError
from mailsim.net.tcp import ConnectError, ConnectionReset, SocketTimeout
from mailsim.nodes.wire import LineTracer, drive_client, transmit
from mailsim.protocol import pop3
from mailsim.protocol.smtp import (
    NEED_DATA,
    PAUSED,
    Accept,
    AuthResult,
    ClientState,
    ConnectionFailed,
    Envelope,
    Idle,
    MailParams,
    MessageReceived,
    Reject,
    Reply,
    ReplyTexts,
    ServerLimits,
    ServerPolicy,
    Session,
    Shutdown,
    SMTPClient,
    SMTPServer,
    TransactionResult,
    is_postmaster,
)

if TYPE_CHECKING:
    from mailsim.nodes.world import World

#: Well-known ports (RFC 5321 4.5.3, RFC 6409, RFC 1939).
SMTP_PORT, SUBMISSION_PORT, POP3_PORT = 25, 587, 110

_ACTIVE, _DEFERRED = RecipientState.ACTIVE, RecipientState.DEFERRED
#: How a failed connect reads in a deferral, in Postfix's words, by ``ConnectError.reason``.
_CONNECT_FAILURES = {
    "timeout": "Connection timed out",
    "refused": "Connection refused",
    "unreachable": "No route to host",
}
_MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*<([^>\r\n]+)>", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True)
class ReplyFault:
    """A chosen reply to a chosen command, as Mailpit's chaos mode or smtp4dev's scripts do.

    Attributes:
        command: ``CONNECT`` (the greeting), ``EHLO``, ``HELO``, ``MAIL``, ``RCPT``, ``DATA`` or
            ``DOT`` (the end of the message content).
        code: the reply code; a 421 also closes the connection.
        text: the reply text, e.g. ``"4.7.1 Greylisted, try again later"``.
        start: from this simulated time on (seconds).
        end: until this time (None: for ever).
        probability: the chance that a matching command gets the fault.
        first_attempt_only: greylisting: only the first try of each (client, sender, recipient)
            triplet gets it; a retry passes (Postfix postgrey's classic behaviour).
        port: only sessions on this port get it (25 or 587); None: every SMTP port.
    """

    command: str
    code: int
    text: str
    start: float = 0.0
    end: float | None = None
    probability: float = 1.0
    first_attempt_only: bool = False
    port: int | None = None

    def active(self, now: float) -> bool:
        """Whether the fault applies at ``now``."""
        return self.start <= now and (self.end is None or now < self.end)

    def reply(self) -> Reply:
        """The reply the fault gives."""
        return Reply.of(self.code, self.text)


@dataclass
class ServerSettings:
    """Every knob of a simulated mail server, with defaults from RFC 5321 and Postfix.

    Attributes:
        hostname: the name in greetings and Received headers (default: the first domain).
        replies: ``"modern"`` (Postfix-like, enhanced status codes) or ``"classic"`` (the
            tutorial's wording).
        durable: acknowledge a message only once it is written to the queue on disk; with
            False the 250 comes first and a crash loses what is queued.
        queue_write_time: how long writing (and fsyncing) a message to the queue takes.
        limits: the SMTP server's size and count limits.
        retry: the retry policy (default: every 30 minutes plus up to 10 minutes, give up after
            5 days, like the tutorial).
        connections_per_destination: parallel delivery connections to one domain (Postfix 20).
        messages_per_connection: how many due messages one connection carries before another
            connection is opened for the rest (when the parallel limit allows).
        recipients_per_delivery: most recipients in one SMTP transaction; a message with more
            at one destination is sent in several (Postfix's smtp_destination_recipient_limit).
        connection_reuse_time: how long after it opened a connection may take on more messages
            before it QUITs (Postfix's smtp_connection_reuse_time_limit); 0: never reused.
        connect_timeout: give up a TCP connect after this long (Postfix 30 s).
        greeting_timeout: wait this long for the 220 greeting (RFC 5321 4.5.3.2.1: 5 min).
        reply_timeout: wait this long for any other reply (RFC 5321 4.5.3.2: 5 min for most).
        data_start_timeout: wait this long for the 354 after DATA (4.5.3.2.4: 2 min).
        final_reply_timeout: wait this long for the reply to the final dot (RFC 5321 4.5.3.2.6:
            10 min).
        idle_timeout: a server session waits this long for the next command (4.5.3.2.7: 5 min).
        pop3_idle_timeout: POP3 autologout (RFC 1939 3: at least 10 minutes).
        reply_faults: replies injected into this server's SMTP sessions.
        data_lines: how many lines of a long message the trace keeps per message.
    """

    hostname: str | None = None
    replies: str = "modern"
    durable: bool = True
    queue_write_time: float = 0.002
    limits: ServerLimits = field(default_factory=ServerLimits)
    retry: RetryPolicy = field(default_factory=FixedRetry)
    connections_per_destination: int = 20
    messages_per_connection: int = 10
    recipients_per_delivery: int = 50
    connection_reuse_time: float = 300.0
    connect_timeout: float = 30.0
    greeting_timeout: float = 300.0
    reply_timeout: float = 300.0
    data_start_timeout: float = 120.0
    final_reply_timeout: float = 600.0
    idle_timeout: float = 300.0
    pop3_idle_timeout: float = 600.0
    reply_faults: tuple[ReplyFault, ...] = ()
    data_lines: int = 20


class _Agent:
    """A delivery agent's connection to one destination, as the queue runner counts it."""

    __slots__ = ("carried", "open")

    def __init__(self, carried: int) -> None:
        #: Messages given to this connection so far (its chunk and what rode along).
        self.carried = carried
        #: Whether it can still take more (connecting or in session, not yet QUITting).
        self.open = True


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
        #: Its mail domains, lower case.
        written = tuple(domains)
        self.domains = tuple(d.lower() for d in written)
        #: Local part (lower case) -> password.
        self.users = {name.lower(): password for name, password in users.items()}
        #: The knobs.
        self.settings = settings if settings is not None else ServerSettings()
        #: The name in greetings and headers.
        self.hostname = self.settings.hostname or (written[0] if written else node)
        #: The reply wording.
        self.texts = ReplyTexts.CLASSIC if self.settings.replies == "classic" else ReplyTexts.MODERN
        #: Local mailboxes, by local part.
        self.store = MailStore(self.users)
        #: The outgoing queue.
        self.queue = OutgoingQueue(node)
        #: Whether the node is up.
        self.up = True
        #: (message id, recipient) pairs already filed here, to tell RFC 1047 duplicates.
        self._filed: set[tuple[str, str]] = set()
        self._greylist: set[tuple[str, str, str]] = set()
        self._active: dict[str, int] = defaultdict(int)
        # Waiting recipients that may join any open connection to their domain, by domain:
        # PENDING ones, and ones deferred only because the destination was unreachable (see
        # _ride_along). Insertion order is arrival order.
        self._free: dict[str, dict[tuple[str, str], tuple[QueueEntry, str]]] = defaultdict(dict)
        # (message id, recipient) whose final dot went out and whose reply has not come back:
        # if the queue is lost now, the receiver may already have filed it (RFC 1047).
        self._after_dot: set[tuple[str, str]] = set()
        # Open (or opening) connections per destination, and the due messages held for them.
        self._agents: dict[str, list[_Agent]] = {}
        self._riders: dict[str, OrderedDict[int, tuple[QueueEntry, list[str]]]] = defaultdict(
            OrderedDict
        )
        self._procs: set[simpy.Process] = set()
        self._generation = 0  # bumped by each crash; work from before a crash is void
        self._wake: simpy.Event | None = None
        self._timer: simpy.Event | None = None  # the runner's pending alarm, if any
        self._timer_at = math.inf
        # Times something was scheduled for (deferrals), so a runner whose due work waits for
        # a free connection can still sleep until the next retry of anything else.
        self._alarms: list[float] = []
        self._queue_seq = 0
        self._fault_rng = world.streams.get("reply-faults", node)
        self._retry_rng = world.streams.get("retry", node)
        self._listeners: list[Any] = []
        self.resolver = world.resolver_for(node)
        world.network.on_node_down(node, self._crash)
        world.network.on_node_up(node, self._restart)

    # -- life cycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Open the ports and start the queue runner."""
        self.up = True
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
        """The node went down: every process stops; a non-durable queue is lost.

        The network has already reset the node's connections and closed its listeners.
        """
        if not self.up:
            return
        self.up = False
        self._generation += 1
        now = self.env.now
        for proc in list(self._procs):
            if proc.is_alive and proc is not self.env.active_process:
                proc.interrupt("crash")
        self._procs.clear()
        self._listeners = []
        if not self.settings.durable:
            self._free.clear()
            for entry in self.queue.lose_all(now):
                for rcpt in entry.recipients.values():
                    if rcpt.state is RecipientState.LOST and rcpt.final_time == now:
                        extra = {}
                        if (entry.item.id, rcpt.address) in self._after_dot:
                            extra["after_dot"] = True  # the next hop may have it: see books
                        self.trace.emit(
                            "mail.lost",
                            msg=entry.item.id,
                            node=self.node,
                            rcpt=rcpt.address,
                            cause="crash of a non-durable queue",
                            **extra,
                        )
        self._after_dot.clear()
        self._agents.clear()
        self._riders.clear()
        self._active.clear()

    def _restart(self, _node: str) -> None:
        """The node is back: messages that were mid-attempt are due again; ports reopen."""
        if self.up:
            return
        now = self.env.now
        for entry in list(self.queue):
            for rcpt in entry.in_state(_ACTIVE):
                self.queue.requeue(entry, rcpt.address, now)
                self._set_free(entry, rcpt.address)
        # The process memory is gone: the DNS cache must be filled again.
        self.resolver.flush()
        self.start()

    def _kick(self, domains: Iterable[str] = ()) -> None:
        """Wake the queue runner (something was queued, or a delivery agent finished).

        A message queued for ``domains`` that all have every connection busy does not wake it:
        it goes out when one of those connections ends (which kicks), and waking the runner
        for nothing costs a scan of every due message, quadratic in a long outage.
        """
        limit = self.settings.connections_per_destination
        if domains and all(self._active[domain] >= limit for domain in domains):
            return
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
            self._kick()

    def _next_alarm(self, now: float) -> float | None:
        """The first scheduled retry time after ``now``, or None."""
        alarms = self._alarms
        while alarms and alarms[0] <= now:
            heapq.heappop(alarms)
        return alarms[0] if alarms else None

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
        env = self.env
        policy = _SimPolicy(self, conn.remote_ip, submission=submission, port=conn.local_port)
        connect_fault = policy.fault("CONNECT")
        server = SMTPServer(
            self.hostname,
            peer=conn.remote_ip,
            policy=policy,
            limits=self.settings.limits,
            texts=self.texts,
            greeting=connect_fault.reply() if connect_fault is not None else None,
        )
        tracer = LineTracer(
            self.trace,
            "smtp.line",
            conn.id,
            "S",
            self.node,
            conn.remote_node,
            self.settings.data_lines,
        )
        transmit(conn, tracer, server.data_to_send())
        if server.state.name in ("CLOSED", "ERROR"):  # a 421 greeting hangs up at once
            conn.close()
            return
        while True:
            try:
                data = yield conn.recv(timeout=self.settings.idle_timeout)
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
                    fault = policy.fault("DOT")
                    refusal = fault.reply() if fault is not None else self._queue_clash(event)
                    if refusal is not None:
                        transmit(conn, tracer, server.send(Reject(refusal)))
                        continue
                    if self.settings.durable:
                        yield env.timeout(self.settings.queue_write_time)
                    queue_id = self._take_message(event, conn, policy, submission)
                    transmit(conn, tracer, server.send(Accept(queue_id)))
                    if not self.settings.durable:
                        yield env.timeout(self.settings.queue_write_time)
                elif isinstance(event, AuthResult):
                    self.trace.emit(
                        "auth.ok" if event.ok else "auth.fail",
                        node=self.node,
                        user=event.user,
                        service="submission" if submission else "smtp",
                    )
            transmit(conn, tracer, server.data_to_send())
            if not data or server.state.name in ("CLOSED", "ERROR"):
                conn.close()
                return

    # -- what arrives ----------------------------------------------------------------------------

    def is_local(self, address: str) -> bool:
        """Whether ``address`` is in one of this server's domains."""
        return domain_of(address) in self.domains

    def local_part(self, address: str) -> str:
        """The mailbox name of a local address (lower case)."""
        return address.rpartition("@")[0].lower() if "@" in address else address.lower()

    def _next_queue_id(self) -> str:
        self._queue_seq += 1
        return f"{self.node.upper().replace('-', '')}{self._queue_seq:05d}"

    def _take_message(
        self, event: MessageReceived, conn: Any, policy: _SimPolicy, submission: bool
    ) -> str:
        """Store an accepted message: local recipients to mailboxes, others to the queue."""
        now = self.env.now
        queue_id = self._next_queue_id()
        msg_id = message_id_of(event.content) or f"{queue_id}@{self.hostname}"
        content = add_received(
            event.content,
            helo=policy.session_hello or conn.remote_node,
            client_ip=conn.remote_ip,
            client_host=conn.remote_node,
            by_host=self.hostname,
            queue_id=queue_id,
            t=now,
            rcpt=event.rcpt_to[0] if len(event.rcpt_to) == 1 else None,
            protocol=with_protocol(extended=policy.extended, authenticated=policy.authenticated),
        )
        item = MailItem(
            id=msg_id,
            sender=event.mail_from,
            recipients=event.rcpt_to,
            content=content,
            ret=event.mail_params.ret or "HDRS",
            envid=event.mail_params.envid,
        )
        self.world.note_arrival(item, self.node, kind="dsn" if not item.sender else "mail")
        self.accept_item(item, queue_id=queue_id)
        return queue_id

    def _queue_clash(self, event: MessageReceived) -> Reply | None:
        """A 451 for a message whose Message-ID is queued here with other recipients, else None.

        The queue holds one entry per message id. A second copy of a queued message (a user agent
        resubmitting after a lost reply, RFC 1047) is taken and counted as a duplicate in
        :meth:`accept_item`; a copy for recipients the queued one does not have (a resubmission
        of recipients refused for a while) is put off with a temporary error until the first copy
        has left the queue, and the client simply tries again later.
        """
        msg_id = message_id_of(event.content)
        entry = self.queue.get(msg_id) if msg_id else None
        if entry is None:
            return None
        remote = [r for r in event.rcpt_to if not (self.is_local(r) or is_postmaster(r))]
        if all(r in entry.recipients for r in remote):
            return None
        return Reply.of(451, f"4.3.0 <{msg_id}> is already queued here; try again later")

    def accept_item(self, item: MailItem, queue_id: str | None = None) -> None:
        """File the local recipients of ``item`` and queue the rest."""
        now = self.env.now
        remote: list[str] = []
        for rcpt in item.recipients:
            if self.is_local(rcpt) or is_postmaster(rcpt):
                self._file(item, rcpt)
            else:
                remote.append(rcpt)
        if not remote:
            return
        queued = self.queue.get(item.id)
        if queued is not None:
            # A copy of a message already queued here (see _queue_clash): the queued one
            # delivers it; this copy is counted as an RFC 1047 duplicate and dropped.
            for rcpt in remote:
                self.trace.emit("mail.duplicate", msg=item.id, node=self.node, rcpt=rcpt)
            return
        entry = self.queue.add(
            item.with_recipients(remote), now, queue_id=queue_id or self._next_queue_id()
        )
        for rcpt in entry.recipients:
            self._set_free(entry, rcpt)
        self._kick({domain_of(rcpt) for rcpt in entry.recipients})
        self.trace.emit(
            "mail.queue",
            msg=item.id,
            node=self.node,
            rcpts=remote,
            queued=len(self.queue),
            queue_id=entry.queue_id,
        )

    def _file(self, item: MailItem, rcpt: str) -> None:
        """Put a message in a local mailbox (step 5), or count it as a duplicate (RFC 1047)."""
        box = "postmaster" if is_postmaster(rcpt) else self.local_part(rcpt)
        if self.store.get(box) is None:
            self.store.add_user(box)  # postmaster's mailbox appears on first use
        key = (item.id, rcpt.lower())
        if key in self._filed:
            self.trace.emit("mail.duplicate", msg=item.id, node=self.node, rcpt=rcpt)
        else:
            self._filed.add(key)
            self.trace.emit("mail.deliver", msg=item.id, node=self.node, rcpt=rcpt, mailbox=box)
        self.store.deliver(box, item.content, t=self.env.now, msg_id=item.id, sender=item.sender)

    # -- the queue runner and delivery agents (steps 3 and 4) ---------------------------------

    def _queue_runner(self) -> Generator[Any, Any, None]:
        env, queue, settings = self.env, self.queue, self.settings
        while True:
            now = env.now
            self._send_warnings(now)
            blocked = False
            per = max(1, settings.messages_per_connection)
            for batch in queue.due(now):
                domain = batch.domain
                fresh = self._hold_for_open_connections(domain, batch.entries, per)
                while fresh:
                    if self._active[domain] >= settings.connections_per_destination:
                        blocked = True
                        break
                    chunk, fresh = fresh[:per], fresh[per:]
                    for due in chunk:
                        self._start_attempt(due.entry, due.recipients, now)
                    agent = _Agent(carried=len(chunk))
                    self._agents.setdefault(domain, []).append(agent)
                    self._active[domain] += 1
                    self._spawn(self._deliver(domain, chunk, agent))
                if self._riders.get(domain):
                    blocked = True  # due, but waiting to join an open connection
            next_due = queue.next_due_time()
            if blocked and next_due is not None and next_due <= now:
                # What is due waits for a connection (one to end, or one to fall idle and take
                # it along; both kick); meanwhile sleep until the next retry of anything else.
                next_due = self._next_alarm(now)
            if next_due is not None:
                self._arm(next_due)
            # One event per wake: a kick (arrival, a delivery's end) or the alarm's ring.
            self._wake = env.event()
            yield self._wake
            self._wake = None

    def _hold_for_open_connections(
        self, domain: str, due: Iterable[DueEntry], per: int
    ) -> list[DueEntry]:
        """Set aside due messages that an open connection to ``domain`` can still carry.

        A mail server does not open a second connection to a destination while one that is
        being opened, or is busy there, can take the message when its current work is done:
        the message waits to ride along (see ``_ride_along``), as the tutorial's "several
        messages share one persistent connection". Returns the rest, which need connections
        of their own. Riders beyond what the open connections can still take are let go.
        """
        riders = self._riders[domain]
        room = sum(per - agent.carried for agent in self._agents.get(domain, ()) if agent.open)
        while len(riders) > max(room, 0):
            riders.popitem()  # the latest: it goes back to needing a connection of its own
        fresh: list[DueEntry] = []
        for item in due:
            entry = item.entry
            held = riders.get(entry.seq)
            if held is not None:
                held[1].extend(r for r in item.recipients if r not in held[1])
            elif len(riders) < room:
                riders[entry.seq] = (entry, list(item.recipients))
            else:
                fresh.append(item)
        return fresh

    def _start_attempt(self, entry: QueueEntry, rcpts: Iterable[str], now: float) -> None:
        """Recipients of ``entry`` go out now: ACTIVE in the queue, no longer free to ride along."""
        self.queue.start_attempt(entry, rcpts, now)
        for rcpt in rcpts:
            self._free_for(rcpt).pop((entry.item.id, rcpt), None)

    def _free_for(self, rcpt: str) -> dict[tuple[str, str], tuple[QueueEntry, str]]:
        return self._free[domain_of(rcpt)]

    def _set_free(self, entry: QueueEntry, rcpt: str) -> None:
        """``rcpt`` of ``entry`` may ride on any open connection to its domain (``_ride_along``)."""
        self._free_for(rcpt)[(entry.item.id, rcpt)] = (entry, rcpt)

    def _ride_along(self, domain: str, limit: int) -> list[DueEntry]:
        """Queued messages that may join an open connection to ``domain``: up to ``limit`` of them.

        A connection that has delivered its chunk carries on with other mail for the same
        destination before it QUITs, as Exim sends "other messages waiting for this host" down an
        open connection and Postfix reuses a cached one: first the due messages that were held
        for it (see ``_hold_for_open_connections``), then messages queued since and messages
        deferred only because the destination could not be reached (the connection shows it can
        be now), without waiting for their own retry time. Messages deferred by a reply
        (greylisting, a full mailbox) keep their retry time.
        """
        if limit <= 0:
            return []
        picked: dict[int, tuple[QueueEntry, list[str]]] = {}
        riders = self._riders.get(domain)
        while riders and len(picked) < limit:
            _seq, (entry, rcpts) = riders.popitem(last=False)
            waiting = [r for r in rcpts if entry.recipients[r].state in WAITING_STATES]
            if waiting:
                picked[entry.seq] = (entry, waiting)
        for entry, rcpt in self._free.get(domain, {}).values():
            if entry.recipients[rcpt].state not in WAITING_STATES:
                continue  # not expected: the maps follow every change of state
            group = picked.get(entry.seq)
            if group is None:
                if len(picked) >= limit:
                    break
                group = picked[entry.seq] = (entry, [])
            if rcpt not in group[1]:
                group[1].append(rcpt)
        now = self.env.now
        chosen = []
        for entry, rcpts in picked.values():
            self._start_attempt(entry, rcpts, now)
            chosen.append(DueEntry(entry, tuple(rcpts)))
        return chosen

    def _suspend_riders(self, domain: str, reply: str) -> None:
        """The destination cannot be reached: what waited to ride along is deferred with it.

        Postfix's "delivery temporarily suspended": after a failed connection the messages
        waiting for the same destination are deferred at once, without a connection each.
        """
        riders = self._riders.pop(domain, None)
        for entry, rcpts in (riders or {}).values():
            waiting = [r for r in rcpts if entry.recipients[r].state in WAITING_STATES]
            if waiting:
                self._defer(
                    entry,
                    waiting,
                    f"{reply} (delivery temporarily suspended)",
                    None,
                    None,
                    attempt=False,
                    unreachable=True,
                )

    def _deliver(
        self, domain: str, chunk: list[DueEntry], agent: _Agent
    ) -> Generator[Any, Any, None]:
        """One delivery agent: MX lookup, connect, every message of ``chunk`` over one session."""
        generation = self._generation
        try:
            yield from self._deliver_chunk(domain, chunk, agent)
        finally:
            agent.open = False
            if generation == self._generation:
                self._active[domain] -= 1
                agents = self._agents[domain]
                agents.remove(agent)
                if not agents:
                    del self._agents[domain]
                self._kick()

    def _deliver_chunk(
        self, domain: str, chunk: list[DueEntry], agent: _Agent
    ) -> Generator[Any, Any, None]:
        """Find the domain's mail exchangers and try them in order until ``chunk`` is handed over.

        RFC 5321 5.1: try each MX host in preference order until one accepts. A host that cannot
        be reached, or that refuses the whole session (a 554 or 421 greeting, a refused EHLO), is
        skipped and whatever it did not take goes to the next; what no host took is deferred.
        """
        net = self.world.network
        try:
            hosts = yield from self.resolver.resolve_mx(domain)
        except DnsError as error:
            reply = f"DNS lookup of {domain} failed: {error}"
            for due in chunk:
                if error.permanent:
                    # RFC 5321 5.1: a domain that does not exist is a permanent failure.
                    self._fail(due.entry, due.recipients, "550 5.1.2 " + reply, mx=None, conn=None)
                else:
                    self._defer(
                        due.entry,
                        due.recipients,
                        "451 4.4.3 " + reply,
                        None,
                        None,
                        unreachable=True,
                    )
            agent.open = False
            if error.permanent:
                self._riders.pop(domain, None)  # they will find out for themselves, at once
            else:
                self._suspend_riders(domain, "451 4.4.3 " + reply)
            return
        waiting = list(chunk)
        attempted: set[int] = set()  # entries already counted in a mail.attempt record
        last_error = f"451 4.4.4 no mail exchanger for {domain} could be used"
        own_ip = self.world.topology.ip_of(self.node)
        for _preference, host, address in hosts:
            if not waiting:
                break
            if host == self.node or address == own_ip:
                # RFC 5321 5.1: an MX list that leads back to ourselves is a configuration error.
                last_error = f"451 4.4.6 mail for {domain} loops back to myself ({host})"
                continue
            # An attempt starts when its SYN leaves, not when the connect succeeds or times
            # out 30 s later: record it now, one record per transaction it will need.
            announced = {due.entry.seq for due in waiting}
            attempted |= announced
            per_delivery = max(1, self.settings.recipients_per_delivery)
            for due in waiting:
                for start in range(0, len(due.recipients), per_delivery):
                    self.trace.emit(
                        "mail.attempt",
                        msg=due.entry.item.id,
                        node=self.node,
                        rcpts=list(due.recipients[start : start + per_delivery]),
                        mx=host,
                        conn=net.next_connection_id,
                    )
            try:
                conn = yield net.connect(
                    self.node, address, SMTP_PORT, timeout=self.settings.connect_timeout
                )
            except ConnectError as error:
                why = _CONNECT_FAILURES.get(error.reason, str(error))
                last_error = f"451 4.4.1 connect to {host}[{address}]:{SMTP_PORT}: {why}"
                continue
            waiting, refusal = yield from self._client_session(
                conn, host, domain, waiting, agent, announced=announced
            )
            if refusal is not None:
                last_error = refusal
        agent.open = False
        if waiting:
            self._suspend_riders(domain, last_error)
        for due in waiting:
            self._defer(
                due.entry,
                due.recipients,
                last_error,
                None,
                None,
                attempt=due.entry.seq not in attempted,
                unreachable=True,
            )

    def _client_session(
        self,
        conn: Any,
        host: str,
        domain: str,
        chunk: list[DueEntry],
        agent: _Agent,
        announced: set[int] = frozenset(),  # type: ignore[assignment]
    ) -> Generator[Any, Any, tuple[list[DueEntry], str | None]]:
        """Our SMTP client over an established connection: ``chunk``, what rides along, QUIT.

        ``announced`` holds the queue entries whose ``mail.attempt`` was already recorded when
        the connection was opened; messages that join later get theirs when they are offered.
        Returns the messages the server never started (it refused the session or hung up before
        their turn) with its reason, for the next MX host or a later try.
        """
        client = SMTPClient(self.hostname)
        tracer = LineTracer(
            self.trace, "smtp.line", conn.id, "C", self.node, host, self.settings.data_lines
        )
        by_envelope: dict[int, DueEntry] = {}
        per_connection = max(1, self.settings.messages_per_connection)
        unsent: list[DueEntry] = []
        refusal: list[str] = []

        settings = self.settings
        per_delivery = max(1, settings.recipients_per_delivery)
        reuse_until = self.env.now + settings.connection_reuse_time

        def offer(due: DueEntry) -> None:
            # One transaction per message for all its recipients at this destination
            # (RFC 5321 4.5.4.1: MAIL, RCPT..., DATA once per server, not once per recipient),
            # split only when there are more than recipients_per_delivery.
            item = due.entry.item
            rcpts = due.recipients
            for start in range(0, len(rcpts), per_delivery):
                part = rcpts[start : start + per_delivery]
                envelope = Envelope(
                    item.sender,
                    part,
                    item.content,
                    MailParams(ret=item.ret, envid=item.envid),
                )
                by_envelope[id(envelope)] = (
                    due if len(part) == len(rcpts) else DueEntry(due.entry, part)
                )
                client.send_message(envelope)
                if due.entry.seq in announced:
                    continue
                self.trace.emit(
                    "mail.attempt",
                    msg=item.id,
                    node=self.node,
                    rcpts=list(part),
                    mx=host,
                    conn=conn.id,
                )

        for due in chunk:
            offer(due)

        timeouts = {
            ClientState.AWAIT_GREETING: self.settings.greeting_timeout,
            ClientState.DATA_SENT: self.settings.data_start_timeout,
            ClientState.CONTENT_SENT: self.settings.final_reply_timeout,
        }

        def timeout_for() -> float:
            # Called before every wait. After the final dot the message in flight (the oldest
            # one not settled) may already be filed by the server: remember it until its reply.
            if client.state is ClientState.CONTENT_SENT and by_envelope:
                due = next(iter(by_envelope.values()))
                self._after_dot.update((due.entry.item.id, r) for r in due.recipients)
            # RFC 5321 4.5.3.2: each wait has its own minimum.
            return timeouts.get(client.state, self.settings.reply_timeout)

        def handle(event: Any) -> None:
            if isinstance(event, TransactionResult):
                due = by_envelope.pop(id(event.envelope))
                self._after_dot.difference_update((due.entry.item.id, r) for r in due.recipients)
                self._settle(due.entry, event, host, conn.id)
            elif isinstance(event, ConnectionFailed):
                refusal.append(reply_line(event.reply))
                unsent.extend(by_envelope.pop(id(envelope)) for envelope in event.unsent)
            elif isinstance(event, Idle):
                reusable = self.up and self.env.now < reuse_until
                more = self._ride_along(domain, per_connection - agent.carried) if reusable else []
                agent.carried += len(more)
                for due in more:
                    offer(due)
                if not more:
                    agent.open = False  # QUIT: nothing more rides on this connection
                    client.quit()

        yield from drive_client(
            conn, client, tracer, need_data=NEED_DATA, timeout_for=timeout_for, handle=handle
        )
        # Anything the machine never answered for (it should not happen) is retried, not lost.
        for due in by_envelope.values():
            self._defer(due.entry, due.recipients, "451 4.4.2 session ended", host, conn.id, False)
        return unsent, (refusal[-1] if refusal else None)

    def _settle(self, entry: QueueEntry, result: TransactionResult, host: str, conn: int) -> None:
        """Apply one transaction's per-recipient outcomes to the queue."""
        now = self.env.now
        failed: list[tuple[str, str]] = []
        for outcome in result.outcomes:
            reply = reply_line(outcome.reply)
            if outcome.status == "accepted":
                self.queue.mark_delivered(entry, outcome.address, now, reply=reply)
                self.trace.emit(
                    "mail.sent",
                    msg=entry.item.id,
                    node=self.node,
                    rcpt=outcome.address,
                    reply=reply,
                    mx=host,
                )
            elif outcome.status == "temporary":
                if result.dot_sent_no_reply:
                    # RFC 5321 4.2.5 and RFC 1047: the server may have taken it; a retry may
                    # deliver a second copy. Say so where a student will look.
                    reply += (
                        " after the final dot; the receiver may already have the message (RFC 1047)"
                    )
                self._defer(
                    entry,
                    (outcome.address,),
                    reply,
                    mx=host,
                    conn=conn,
                    attempt=False,
                    after_dot=result.dot_sent_no_reply,
                )
            else:
                failed.append((outcome.address, reply))
        if failed:
            self._bounce(entry, failed, remote_mta=host)

    def _defer(
        self,
        entry: QueueEntry,
        rcpts: Iterable[str],
        reply: str,
        mx: str | None,
        conn: int | None,
        attempt: bool = True,
        unreachable: bool = False,
        after_dot: bool = False,
    ) -> None:
        """A temporary failure: schedule the next try, or give up if the policy says so.

        ``unreachable`` says the destination itself could not be reached (DNS, connect, a
        refused session), so the recipient may ride along on the next connection that gets
        through (see ``_ride_along``) instead of waiting for its own retry time. ``after_dot``
        says the reply to the final dot never came, so the next hop may have the message already
        (RFC 1047); the record says so for the books.
        """
        now = self.env.now
        rcpts = list(rcpts)
        if attempt and conn is None:
            self.trace.emit(
                "mail.attempt", msg=entry.item.id, node=self.node, rcpts=rcpts, mx=mx, conn=None
            )
        expired: list[tuple[str, str]] = []
        extra = {"after_dot": True} if after_dot else {}
        for rcpt in rcpts:
            state = entry.recipients[rcpt]
            # A rider deferred without its own try was still free to ride along: not any more
            # (it is free again below if it waits only for the destination).
            self._free_for(rcpt).pop((entry.item.id, rcpt), None)
            next_time = self.settings.retry.schedule(
                now, entry.arrival, entry.first_failure, state.attempts, self._retry_rng
            )
            if next_time is None or math.isinf(next_time):
                self.queue.mark_expired(entry, rcpt, now, reply=reply)
                self.trace.emit(
                    "mail.expire", msg=entry.item.id, node=self.node, rcpt=rcpt, **extra
                )
                expired.append((rcpt, reply))
            else:
                self.queue.mark_deferred(entry, rcpt, reply, next_time, now)
                heapq.heappush(self._alarms, next_time)
                if unreachable:
                    self._set_free(entry, rcpt)
                self.trace.emit(
                    "mail.defer",
                    msg=entry.item.id,
                    node=self.node,
                    rcpt=rcpt,
                    reply=reply,
                    next_attempt=next_time,
                    **extra,
                )
        if expired:
            self._bounce(entry, expired, remote_mta=mx, expired=True)

    def _fail(
        self, entry: QueueEntry, rcpts: Iterable[str], reply: str, mx: str | None, conn: int | None
    ) -> None:
        """A permanent failure found before any SMTP (e.g. NXDOMAIN): bounce at once."""
        rcpts = list(rcpts)
        self.trace.emit(
            "mail.attempt", msg=entry.item.id, node=self.node, rcpts=rcpts, mx=mx, conn=conn
        )
        self._bounce(entry, [(rcpt, reply) for rcpt in rcpts], remote_mta=mx)

    def _bounce(
        self,
        entry: QueueEntry,
        failures: list[tuple[str, str]],
        remote_mta: str | None,
        expired: bool = False,
    ) -> None:
        """Mark recipients bounced and send the sender one RFC 3464 report for them."""
        now = self.env.now
        item = entry.item
        reports = [
            RecipientStatus(
                recipient=rcpt,
                action="failed",
                reply=reply,
                remote_mta=remote_mta,
                last_attempt=entry.recipients[rcpt].last_attempt,
            )
            for rcpt, reply in failures
        ]
        report = self._report(
            item,
            reports,
            report_id=f"{self._next_queue_id()}.dsn",
            reporting_mta=self.hostname,
            arrival=entry.arrival,
            now=now,
            give_up_after=self.settings.retry.give_up_after,
        )
        for rcpt, reply in failures:
            if not expired:
                self.queue.mark_bounced(entry, rcpt, reply, now)
            self.trace.emit(
                "mail.bounce",
                msg=item.id,
                node=self.node,
                rcpt=rcpt,
                reply=reply,
                dsn=report.id if report is not None else None,
            )
        if report is not None:
            self.world.note_arrival(report, self.node, kind="dsn")
            self.accept_item(report)

    def _report(
        self, original: MailItem, reports: list[RecipientStatus], **kw: Any
    ) -> MailItem | None:
        """An RFC 3464 report as a queueable item whose id is its Message-ID (None: no report)."""
        report = make_report(original, reports, **kw)
        if report is None:
            return None
        return MailItem(
            id=message_id_of(report.content) or report.id,
            sender=report.sender,
            recipients=report.recipients,
            content=report.content,
        )

    def _send_warnings(self, now: float) -> None:
        """Delay warnings (RFC 3464 ``Action: delayed``), at most one per message."""
        after = self.settings.retry.delay_warning_after
        if after is None:
            return
        for entry in self.queue.warnings_due(now, after):
            waiting = entry.in_state(_DEFERRED)
            self.queue.mark_warned(entry)
            if not waiting or not entry.item.sender:
                continue
            reports = [
                RecipientStatus(
                    recipient=r.address,
                    action="delayed",
                    reply=r.last_reply,
                    last_attempt=r.last_attempt,
                    will_retry_until=entry.arrival + self.settings.retry.give_up_after,
                )
                for r in waiting
            ]
            report = self._report(
                entry.item,
                reports,
                report_id=f"{self._next_queue_id()}.warn",
                reporting_mta=self.hostname,
                arrival=entry.arrival,
                now=now,
                give_up_after=self.settings.retry.give_up_after,
            )
            for r in waiting:
                self.trace.emit("mail.warn", msg=entry.item.id, node=self.node, rcpt=r.address)
            if report is not None:
                self.world.note_arrival(report, self.node, kind="dsn")
                self.accept_item(report)

    # -- POP3 (step 6) -----------------------------------------------------------------------------

    def _pop3_session(self, conn: Any) -> Generator[Any, Any, None]:
        server = pop3.POP3Server(_Pop3Provider(self), banner=f"{self.hostname} POP3 server ready")
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
                    self.trace.emit(
                        "auth.ok" if event.ok else "auth.fail",
                        node=self.node,
                        user=event.user,
                        service="pop3",
                    )
                elif isinstance(event, pop3.LoggedIn):
                    box = self.store.get(self.local_part(event.user))
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


def reply_line(reply: Reply) -> str:
    """A reply as one line with its code, ``'451 4.7.1 Greylisted'``, for the trace and DSNs."""
    return f"{reply.code} {reply.text}".rstrip()


def message_id_of(content: bytes) -> str | None:
    """The Message-ID of a message (without angle brackets), or None if it has none."""
    end = content.find(b"\r\n\r\n")
    match = _MESSAGE_ID.search(content, 0, end if end >= 0 else len(content))
    return match.group(1).decode("ascii", "replace") if match else None


class _SimPolicy(ServerPolicy):
    """The server's answers for one SMTP session: relay rules, users, injected faults."""

    def __init__(self, server: MailServer, peer_ip: str, *, submission: bool, port: int) -> None:
        super().__init__(
            auth_offered=submission,
            auth_required=submission,
            users=server.users,
        )
        self.server = server
        self.peer_ip = peer_ip
        self.submission = submission
        self.port = port
        self.session_hello: str | None = None
        self.extended = False
        self.authenticated = False
        self._sender = ""

    def authenticate(self, user: str, password: str) -> bool:
        ok = self.server.users.get(self.server.local_part(user)) == password
        self.authenticated = self.authenticated or ok
        return ok

    def fault(self, command: str) -> ReplyFault | None:
        """The reply fault that hits ``command`` now, if any."""
        server = self.server
        now = server.env.now
        for fault in server.settings.reply_faults:
            if fault.command != command or not fault.active(now):
                continue
            if fault.port is not None and fault.port != self.port:
                continue
            if fault.probability < 1.0 and server._fault_rng.random() >= fault.probability:
                continue
            return fault
        return None

    def before_command(self, session: Session, verb: str, arg: str) -> Reply | None:
        if verb in ("EHLO", "HELO"):
            self.session_hello = arg.split(" ")[0] if arg else None
            self.extended = verb == "EHLO"
        if verb == "MAIL":
            self._sender = arg
        fault = self.fault(verb)
        if fault is None:
            return None
        if fault.first_attempt_only:
            triplet = (self.peer_ip, self._sender.lower(), arg.lower())
            if triplet in self.server._greylist:
                return None
            self.server._greylist.add(triplet)
        return fault.reply()

    def check_recipient(self, session: Session, address: str, params: Any) -> Reply | None:
        server = self.server
        if server.is_local(address):
            if server.local_part(address) in server.users:
                return None
            return Reply.of(550, f"5.1.1 <{address}>: Recipient address rejected: User unknown")
        if self.submission and session.authenticated_user:
            return None
        # RFC 5321 7.1 / Postfix reject_unauth_destination: no open relay.
        return Reply.of(550, f"5.7.1 <{address}>: Relay access denied")

    def check_sender(self, session: Session, address: str, params: MailParams) -> Reply | None:
        return None


class _Pop3Provider(pop3.MaildropProvider):
    """POP3 logins against the server's users; maildrops are its mailboxes."""

    def __init__(self, server: MailServer) -> None:
        self.server = server

    def secret_for(self, user: str) -> str | None:
        return self.server.users.get(self.server.local_part(user))

    def open_maildrop(self, user: str) -> Any:
        server = self.server
        name = server.local_part(user)
        if server.store.get(name) is None:
            server.store.add_user(name)
        return server.store.open_maildrop(name)
