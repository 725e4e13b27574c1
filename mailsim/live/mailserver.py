"""One of a scenario's mail servers on real sockets: the mail-server core's asyncio adapter.

The simulated node (:mod:`mailsim.nodes.mailserver`) and this adapter drive the very same
:class:`~mailsim.mail.server.core.MailServerCore`: it decides whom to accept, what to queue, when
to try, which MX host comes next, when to warn and when to bounce. This adapter only keeps the
scaled clock, moves bytes between the protocol machines and the sockets, and stores files:

- SMTP (the MX role) and submission on their ports: one coroutine per connection feeds a
  :class:`~mailsim.protocol.smtp.SMTPServer` with the core's policy; a message is acknowledged
  once :meth:`MailServerCore.take_message` has returned, and by then it is on disk (Maildir for
  local recipients, the :class:`~mailsim.live.queue_store.DurableQueue` for the rest, both
  fsynced). A server with ``durable: false`` keeps its queue in memory, and loses it to a crash
  or a ``kill -9``, as the simulation shows.
- POP3: each user reads the Maildir of their mailbox.
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
import logging
import random
from typing import TYPE_CHECKING, Any

from mailsim.live.connection import READ_SIZE, SMTP_JUNK_LIMIT
from mailsim.live.queue_store import DurableQueue
from mailsim.live.storage import MaildirStore
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
    policy_reply,
)

if TYPE_CHECKING:
    from mailsim.live.world import LiveWorld

log = logging.getLogger("mailsim.live")

#: How long a stopping server waits for its sessions to say goodbye (real seconds).
GRACE = 1.0


class MaildirMailboxes:
    """The core's local mailboxes as Maildirs on disk (each delivery fsynced before it returns)."""

    def __init__(self, store: MaildirStore) -> None:
        self.store = store

    def get(self, user: str) -> Any:
        path = self.store.path_of(user)
        return path if path.exists() else None

    def add_user(self, user: str) -> Any:
        return self.store.folder(user)

    def deliver(
        self, user: str, content: bytes, *, t: float = 0.0, msg_id: str = "", sender: str = ""
    ) -> Any:
        return self.store.deliver([(user, content)])


class _Pop3Provider(pop3.MaildropProvider):
    """POP3 logins against the server's users; maildrops are their Maildirs."""

    def __init__(self, core: MailServerCore, store: MaildirStore) -> None:
        self.core = core
        self.store = store
        #: The maildrop this session opened (for the ``mail.fetch`` records).
        self.opened: Any = None

    def secret_for(self, user: str) -> str | None:
        return self.core.users.get(self.core.local_part(user))

    def open_maildrop(self, user: str) -> Any:
        self.opened = self.store.open_maildrop(self.core.local_part(user))
        return self.opened


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


class LiveMailServer:
    """A scenario's mail server, live.

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
        self.world = world
        self.node = node
        self.settings = settings
        self.base_port = base_port
        home = world.directory / node
        names = [name.lower() for name in users]
        #: The Maildirs.
        self.maildirs = MaildirStore(home / "maildir", names)
        queue = DurableQueue(home / "queue", node) if settings.durable else None
        seed = world.seed
        #: What the server decides.
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
        self._sessions: set[asyncio.Task[Any]] = set()
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
        def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.ensure_future(self._session(port, reader, writer))
            self._sessions.add(task)
            task.add_done_callback(self._sessions.discard)

        try:
            server = await asyncio.start_server(connected, "127.0.0.1", local, limit=READ_SIZE)
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
        tasks = [*self._sessions, *self._jobs]
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

    # -- serving -----------------------------------------------------------------------------------

    async def _session(
        self, port: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        peer = writer.get_extra_info("peername") or ("", 0)
        conn = self.world.accepted(self.node, port, (str(peer[0]), int(peer[1])))
        how = "fin"
        try:
            if port == POP3_PORT:
                await self._serve_pop3(conn, reader, writer)
            else:
                await self._serve_smtp(conn, reader, writer, submission=port == SUBMISSION_PORT)
        except asyncio.CancelledError:
            how = "reset"  # the server went down under the session
            writer.transport.abort()
            raise
        except ConnectionError:
            how = "reset"
        except Exception:  # a bug of ours must cost one connection, never the server
            log.exception("%s: internal error in a session; connection closed", self.node)
            how = "abort"
            writer.transport.abort()
        finally:
            if how == "fin":
                with contextlib.suppress(ConnectionError, OSError):
                    await writer.drain()
                writer.close()
            self.world.close(conn, self.node, how)

    def _heard(self, conn: LiveConnection, record_type: str) -> _HeardLines:
        """Where to record what the client sends: only for a client from outside."""
        if conn.client != OUTSIDE:
            return _HeardLines(None)
        tracer = LineTracer(
            self.world.trace,
            record_type,
            conn.id,
            "C",
            OUTSIDE,
            self.node,
            self.settings.data_lines,
        )
        return _HeardLines(tracer)

    def _peer(self, conn: LiveConnection) -> tuple[str, str | None]:
        """The client's address and name as the story tells it (a scenario node, or you)."""
        if conn.client == OUTSIDE:
            return "127.0.0.1", None
        return self.world.world.topology.ip_of(conn.client), conn.client

    async def _serve_smtp(
        self,
        conn: LiveConnection,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        submission: bool,
    ) -> None:
        core, settings = self.core, self.settings
        client_ip, client_host = self._peer(conn)
        policy = core.policy(client_ip, submission=submission, port=conn.sport)
        server = SMTPServer(
            core.hostname,
            peer=client_ip,
            policy=policy,
            limits=settings.limits,
            texts=core.texts,
            greeting=core.greeting(policy),
        )
        tracer = LineTracer(
            self.world.trace, "smtp.line", conn.id, "S", self.node, conn.client, settings.data_lines
        )

        def say(data: bytes) -> None:
            if data:
                tracer.sent(data)
                writer.write(data)

        heard = self._heard(conn, "smtp.line")
        say(server.data_to_send())
        junk = 0
        while server.state.name not in ("CLOSED", "ERROR"):
            try:
                data = await asyncio.wait_for(reader.read(READ_SIZE), settings.idle_timeout)
            except TimeoutError:
                say(server.send(Shutdown(server.error_reply("timeout"))))
                return
            heard.heard(data)
            server.receive_data(data)
            junk += len(data)
            while (event := server.next_event()) is not NEED_DATA:
                if event is PAUSED:
                    continue
                if isinstance(event, MessageReceived):
                    say(server.data_to_send())
                    say(server.send(self._decide(event, policy, client_ip, client_host)))
                elif isinstance(event, AuthResult):
                    core.record_auth(event, "submission" if submission else "smtp")
            out = server.data_to_send()
            if out:
                junk = 0
            say(out)
            if junk > SMTP_JUNK_LIMIT and server.state.name not in ("DATA", "AWAITING_DECISION"):
                refusal = policy_reply(core.texts, "not_smtp", hostname=core.hostname)
                say(server.send(Shutdown(refusal)))
                return
            await writer.drain()
            if not data:
                return

    def _decide(
        self, event: MessageReceived, policy: Any, client_ip: str, client_host: str | None
    ) -> Accept | Reject:
        """Refuse, or store and acknowledge (the 250 only once the message is on disk)."""
        core = self.core
        refusal = core.refusal(policy, event)
        if refusal is not None:
            return Reject(refusal)
        try:
            queue_id = core.take_message(
                event, policy, client_ip, client_host, epoch=self.world.clock.start
            )
        except OSError as error:
            log.error("%s: cannot store a message: %s", self.node, error)
            return Reject(policy_reply(core.texts, "cannot_store"))
        finally:
            self._sweep()
        return Accept(queue_id)

    async def _serve_pop3(
        self, conn: LiveConnection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        core, settings = self.core, self.settings
        provider = _Pop3Provider(core, self.maildirs)
        server = pop3.POP3Server(provider, banner=f"{core.hostname} POP3 server ready")
        tracer = LineTracer(
            self.world.trace, "pop3.line", conn.id, "S", self.node, conn.client, settings.data_lines
        )
        user = ""

        def say(data: bytes) -> None:
            if data:
                tracer.sent(data)
                writer.write(data)

        heard = self._heard(conn, "pop3.line")
        say(server.data_to_send())
        try:
            while True:
                try:
                    data = await asyncio.wait_for(
                        reader.read(READ_SIZE), settings.pop3_idle_timeout
                    )
                except TimeoutError:
                    say(server.send(pop3.Shutdown("autologout")))  # RFC 1939 3: no UPDATE
                    return
                heard.heard(data)
                server.receive_data(data)
                while (event := server.next_event()) is not pop3.NEED_DATA:
                    if isinstance(event, pop3.AuthResult):
                        user = event.user
                        core.record_auth(event, "pop3")
                    elif isinstance(event, pop3.Retrieved) and provider.opened is not None:
                        entry = provider.opened.messages[event.number - 1]
                        msg = message_id_of(entry.content) or entry.key
                        self.world.trace.emit("mail.fetch", msg=msg, node=self.node, user=user)
                    elif isinstance(event, pop3.ConnectionClosed):
                        say(server.data_to_send())
                        return
                say(server.data_to_send())
                await writer.drain()
                if not data:
                    return
        finally:
            if server.state not in (pop3.Pop3State.CLOSED, pop3.Pop3State.ERROR):
                with contextlib.suppress(Exception):  # release the lock; nothing is deleted
                    server.send(pop3.Shutdown("closing"))
