"""One of a scenario's mail servers on real sockets: the mail-server core's asyncio adapter.

The simulated node (:mod:`mailsim.nodes.mailserver`) and this adapter drive the very same
:class:`~mailsim.mail.server.core.MailServerCore`: it decides whom to accept, what to queue, when
to try, which MX host comes next, when to warn and when to bounce. This adapter only keeps the
scaled clock, moves bytes between the protocol machines and the sockets, and stores files:

- SMTP (the MX role) and submission on their ports, and POP3: the same live sessions as the
  single ``mailsim serve`` (:mod:`~mailsim.live.smtp_session`, :mod:`~mailsim.live.pop3_session`,
  with their flow control, idle, line and DATA deadlines, connection caps and login throttle),
  with this server as their :class:`~mailsim.live.host.SessionHost`; a message is acknowledged
  once :meth:`MailServerCore.take_message` has returned, and by then it is on disk (Maildir for
  local recipients, the :class:`~mailsim.live.queue_store.DurableQueue` for the rest, both
  fsynced). A server with ``durable: false`` keeps its queue in memory, and loses it to a crash
  or a ``kill -9``, as the simulation shows.
  Each user reads the Maildir of their mailbox over POP3.
- The queue runner wakes when something is queued or a delivery ends, and otherwise at the next
  retry time on the scaled clock; each delivery job runs as a task that resolves the MX hosts
  from the scenario's DNS, connects through the :class:`~mailsim.live.world.LiveWorld` and drives
  the core's :class:`~mailsim.mail.server.delivery.ClientSession` over the socket.

Timeouts between servers (connect, replies) run on the scaled clock, like the retries, but no
wait for a peer lasts less than :data:`~mailsim.live.clock.MIN_REAL_WAIT` real seconds. The idle
timeouts of the server side guard people typing at it, so they stay in real seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
from typing import TYPE_CHECKING, Any

from mailsim.live.accounts import Accounts
from mailsim.live.connection import READ_SIZE
from mailsim.live.host import SERVICE_PORTS, SessionHost
from mailsim.live.pop3_session import POP3Session
from mailsim.live.queue_store import DurableQueue
from mailsim.live.server import ServeConfig
from mailsim.live.smtp_session import SMTPSession
from mailsim.live.storage import MaildirMailboxes, MaildirStore
from mailsim.live.world import (
    OUTSIDE,
    POP3_PORT,
    SMTP_PORT,
    SUBMISSION_PORT,
    ConnectFailed,
    LiveConnection,
    Ports,
)
from mailsim.mail.message import message_id_of
from mailsim.mail.server import Delivery, MailServerCore, ServerSettings
from mailsim.net.dns import DnsError
from mailsim.nodes.wire import LineTracer, feed_client
from mailsim.protocol.smtp import NEED_DATA, MessageReceived, ReplyTexts, Session

if TYPE_CHECKING:
    from mailsim.live.world import LiveWorld

log = logging.getLogger("mailsim.live")

#: How long a stopping server waits for its sessions to say goodbye (real seconds).
GRACE = 1.0


class _HeardLines:
    """Records the lines a client from outside sends (our own clients record theirs).

    Only whole lines go to the trace: what a read brings may end in the middle of one.
    """

    def __init__(self, tracer: LineTracer | None) -> None:
        self._tracer = tracer
        self._partial = b""

    def heard(self, data: bytes) -> None:
        if self._tracer is None:
            return
        if not data:  # the end of the connection: what is left was a line too
            self._tracer.sent(self._partial)
            self._partial = b""
            return
        data = self._partial + data
        end = data.rfind(b"\r\n") + 2
        self._partial = data[end:] if end > 1 else data
        if end > 1:
            self._tracer.sent(data[:end])


class _Tap:
    """One accepted connection in the scenario's trace: its record, the lines it carries.

    The server's lines are always recorded; the client's only for a client from outside (our
    own clients record theirs).
    """

    def __init__(self, server: LiveMailServer, port: int, peer: tuple[str, int], kind: str):
        world = server.world
        self._world = world
        self._node = server.node
        #: The connection in the world's books.
        self.conn = conn = world.accepted(server.node, port, peer)
        outside = conn.client == OUTSIDE
        #: The client's address as the story tells it (a scenario node's, or loopback for you).
        self.client_ip = "127.0.0.1" if outside else world.world.topology.ip_of(conn.client)
        #: The client's node name, if it is one of the scenario's.
        self.client_host = None if outside else conn.client
        lines = server.settings.data_lines
        self._said = LineTracer(world.trace, kind, conn.id, "S", server.node, conn.client, lines)
        self._heard = _HeardLines(
            LineTracer(world.trace, kind, conn.id, "C", OUTSIDE, server.node, lines)
            if outside
            else None
        )

    def sent(self, data: bytes) -> None:
        self._said.sent(data)

    def heard(self, data: bytes) -> None:
        self._heard.heard(data)

    def closed(self, how: str) -> None:
        self._world.close(self.conn, self._node, how)


class LiveMailServer(SessionHost):
    """A scenario's mail server, live: the shared live sessions over the scenario's core.

    Args:
        world: the live world it belongs to.
        node: its node name.
        domains: its mail domains, as written.
        users: local part -> password.
        settings: the scenario's settings for it.
        base_port: its SMTP port; submission and POP3 follow (0: free ports).
    """

    def __init__(
        self,
        world: LiveWorld,
        node: str,
        domains: list[str],
        users: dict[str, str],
        settings: ServerSettings,
        *,
        base_port: int,
    ) -> None:
        names = {name.lower(): password for name, password in users.items()}
        config = ServeConfig(
            domains=tuple(domains),
            users=names,
            hostname=settings.hostname or (domains[0] if domains else node),
            replies=ReplyTexts.CLASSIC if settings.replies == "classic" else ReplyTexts.MODERN,
            idle_timeout=settings.idle_timeout,
            pop3_idle_timeout=settings.pop3_idle_timeout,
            store_in_thread=False,  # the core is the loop's alone
        )
        super().__init__(config, Accounts(names, domains), limits=settings.limits)
        self.world = world
        self.node = node
        self.settings = settings
        self.base_port = base_port
        home = world.directory / node
        #: The Maildirs.
        self.maildirs = self.store = MaildirStore(home / "maildir", list(names))
        queue = DurableQueue(home / "queue", node) if settings.durable else None
        seed = world.seed
        self.core = MailServerCore(
            node,
            domains,
            users,
            settings,
            clock=world.clock,
            trace=world.trace,
            store=MaildirMailboxes(self.maildirs),
            note_arrival=world.note_arrival,
            retry_rng=random.Random(f"{seed}/retry/{node}/{world.starts}"),
            fault_rng=random.Random(f"{seed}/reply-faults/{node}/{world.starts}"),
            own_address=world.world.topology.ip_of(node),
            queue=queue,
            queue_id_prefix=f"{node.upper().replace('-', '')}R{world.starts}Q",
        )
        self.core.on_wake = self._wake_runner
        self._durable = queue
        self._listeners: dict[int, asyncio.base_events.Server] = {}
        self._ports: Ports | None = None
        self._pop3_tasks: set[asyncio.Task[Any]] = set()
        self._jobs: set[asyncio.Task[Any]] = set()
        self._runner: asyncio.Task[Any] | None = None
        self._wake = asyncio.Event()

    # -- life cycle -----------------------------------------------------------------------------

    async def start(self) -> Ports:
        """Read the queue back, open the listeners and start the queue runner."""
        if self._durable is not None:
            count = self._durable.load(self.world.clock())
            if count:
                log.info("%s: %d messages read back from its queue", self.node, count)
        ports = []
        for offset, port in enumerate((SMTP_PORT, SUBMISSION_PORT, POP3_PORT)):
            wanted = self.base_port + offset if self.base_port else 0
            ports.append(await self._listen(port, wanted))
        self._ports = Ports(*ports)
        self._start_runner()
        return self._ports

    async def _listen(self, port: int, local: int) -> int:
        loop = asyncio.get_running_loop()

        def pop3_connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.ensure_future(POP3Session(self, reader, writer).run())
            self._pop3_tasks.add(task)
            task.add_done_callback(self._pop3_tasks.discard)

        try:
            if port == POP3_PORT:
                server = await asyncio.start_server(
                    pop3_connected, "127.0.0.1", local, limit=READ_SIZE
                )
            else:
                service = "submission" if port == SUBMISSION_PORT else "smtp"
                factory = functools.partial(SMTPSession, self, service)
                server = await loop.create_server(factory, "127.0.0.1", local)
        except OSError as error:
            raise OSError(
                f"{self.node}: cannot listen on 127.0.0.1:{local} for port {port}: "
                f"{error.strerror or error} (choose another --base-port, or 0 for free ports)"
            ) from None
        self._listeners[port] = server
        bound: int = server.sockets[0].getsockname()[1]
        return bound

    def _start_runner(self) -> None:
        self._runner = asyncio.ensure_future(self._run_queue())

    async def stop(self) -> None:
        """Close the listeners and end every session and job (the queue stays on disk)."""
        await self._halt()

    async def _halt(self) -> None:
        for server in self._listeners.values():
            server.close()
        self._listeners.clear()
        self.abort_sessions()  # the server went down under its sessions
        tasks = [*self._pop3_tasks, *self._jobs]
        if self._runner is not None:
            tasks.append(self._runner)
            self._runner = None
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=GRACE)

    async def crash(self) -> None:
        """The server goes down (``ctl stop``, a node fault): the core voids its jobs."""
        self.core.crash()
        await self._halt()

    async def restart(self) -> None:
        """The server is back: attempts in flight are due again; the same ports reopen."""
        self.core.restart()
        if self._ports is not None:
            for port in (SMTP_PORT, SUBMISSION_PORT, POP3_PORT):
                if self.world.service_is_up(self.node, port):
                    await self._listen(port, self._ports.by_service(port))
        self._start_runner()

    async def set_service(self, port: int, *, up: bool) -> None:
        """A service fault: the port stops listening (connections are refused) or listens again."""
        if not self.world.is_up(self.node) or self._ports is None:
            return
        if up and port not in self._listeners:
            await self._listen(port, self._ports.by_service(port))
        elif not up and port in self._listeners:
            self._listeners.pop(port).close()

    def describe(self) -> str:
        """A line for ``ctl status``: what the queue holds."""
        counts = self.core.queue.counts()
        queued = len(self.core.queue)
        if not queued:
            return "queue empty"
        states = ", ".join(f"{n} {state}" for state, n in counts.items() if n)
        return f"{queued} queued ({states})"

    # -- the queue runner and delivery jobs --------------------------------------------------------

    def _wake_runner(self) -> None:
        self._wake.set()

    async def _run_queue(self) -> None:
        core, clock = self.core, self.world.clock
        while True:
            self._wake.clear()  # before planning: a kick while planning wakes the next round
            jobs, next_due = core.plan()
            self._sweep()
            for job in jobs:
                task = asyncio.ensure_future(self._deliver(job))
                self._jobs.add(task)
                task.add_done_callback(self._jobs.discard)
            # One millisecond late rather than early: early would find nothing due and spin.
            timeout = None if next_due is None else clock.until(next_due) + 0.001
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    def _sweep(self) -> None:
        if self._durable is not None:
            self._durable.sweep()

    async def _deliver(self, job: Delivery) -> None:
        """One delivery job: the MX hosts in order, one SMTP session with the first that answers."""
        world, settings = self.world, self.settings
        try:
            try:
                hosts = world.resolve_mx(self.node, job.domain)
            except DnsError as error:
                job.dns_failed(str(error), error.permanent)
                return
            for host, address in job.candidates(hosts, lambda: world.next_connection_id):
                try:
                    conn, reader, writer = await world.connect(
                        self.node, address, SMTP_PORT, settings.connect_timeout
                    )
                except ConnectFailed as error:
                    job.connect_failed(host, address, SMTP_PORT, error.reason, str(error))
                    continue
                session = job.session(host, conn.id)
                await self._drive(session, conn, reader, writer)
                job.session_ended(session)
            job.finish()
        finally:
            self.core.delivery_ended(job)
            self._sweep()

    async def _drive(
        self,
        session: Any,
        conn: LiveConnection,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        """Our SMTP client over a live connection, held up while the route is cut.

        As the simulated adapter does: write what the machine says, wait for the reply with the
        timeout of the machine's state (a timeout aborts the connection and reads as its end),
        hand every event to the session, until the machine is done or the peer went away.
        """
        world, clock = self.world, self.world.clock
        loop = asyncio.get_running_loop()
        client = session.client
        tracer = LineTracer(
            world.trace, "smtp.line", conn.id, "C", self.node, conn.server, self.settings.data_lines
        )
        how = "fin"
        try:
            pending = client.data_to_send()
            while True:
                deadline = loop.time() + clock.real_wait(session.timeout_for())
                data: bytes | None = None
                if not pending or await world.route_open(self.node, conn.server, deadline):
                    if pending:
                        tracer.sent(pending)
                        writer.write(pending)
                    data = await self._receive(conn, reader, deadline)
                if data is None:
                    how, data = "timeout", b""
                feed_client(client, data, need_data=NEED_DATA, handle=session.handle)
                pending = client.data_to_send()
                if not data or client.state.name in ("CLOSED", "ERROR", "DONE"):
                    if pending and how == "fin" and world.path(self.node, conn.server):
                        tracer.sent(pending)
                        writer.write(pending)
                    break
        except ConnectionError:
            feed_client(client, b"", need_data=NEED_DATA, handle=session.handle)
            how = "reset"
        finally:
            if how == "fin":
                with contextlib.suppress(ConnectionError, OSError):
                    await writer.drain()
                writer.close()
            else:
                writer.transport.abort()
            world.close(conn, self.node, how)

    async def _receive(
        self, conn: LiveConnection, reader: asyncio.StreamReader, deadline: float
    ) -> bytes | None:
        """What the server said next, once the route lets it through; None at the deadline."""
        loop = asyncio.get_running_loop()
        try:
            data = await asyncio.wait_for(reader.read(READ_SIZE), max(0.0, deadline - loop.time()))
        except TimeoutError:
            return None
        except ConnectionError:
            return b""
        # Bytes that came while the route is cut are still "in the network": they arrive when
        # it heals, unless the wait for them is over first.
        if not await self.world.route_open(self.node, conn.server, deadline):
            return None
        return data

    # -- what the shared sessions ask (see SessionHost) -------------------------------------------

    def real_seconds(self, seconds: float) -> float:
        """A reply fault's ``delay`` is scenario time: on the wall clock, scaled."""
        return self.world.clock.real_seconds(seconds)

    def tap(self, session: SMTPSession | POP3Session, kind: str) -> _Tap:
        """Every accepted connection goes in the world's books and the trace."""
        transport = session.transport if isinstance(session, SMTPSession) else session.writer
        peer = transport.get_extra_info("peername") if transport is not None else None
        address = (str(peer[0]), int(peer[1])) if peer else ("", 0)
        return _Tap(self, SERVICE_PORTS[session.service], address, kind)

    def take_message(self, event: MessageReceived, session: SMTPSession, snapshot: Session) -> str:
        """The core stores it (mailboxes or the queue, on disk) before the 250."""
        tap, policy = session.tap, session.decisions
        assert isinstance(tap, _Tap) and policy is not None
        try:
            return self.core.take_message(
                event, policy, tap.client_ip, tap.client_host, epoch=self.world.clock.start
            )
        finally:
            self._sweep()

    def auth_result(self, event: Any, service: str) -> None:
        self.core.record_auth(event, service)

    def retrieved(self, session: POP3Session, number: int) -> None:
        opened = session.provider.opened if session.provider is not None else None
        if opened is None:
            return
        entry = opened.messages[number - 1]
        msg = message_id_of(entry.content) or entry.key
        self.world.trace.emit("mail.fetch", msg=msg, node=self.node, user=session.user or "")
