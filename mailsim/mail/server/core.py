"""What a mail server decides, without a clock, a socket or a disk of its own: the sans-IO core.

Theory of operation. A mail server does four things, and this module holds every decision in
them; the SimPy node (:mod:`mailsim.nodes.mailserver`) and the asyncio servers
(:mod:`mailsim.live`) are adapters that only move bytes, keep time and store files, as the h11
machines are driven by whatever does the I/O.

1. **Taking mail** (steps 2 and 4 of the tutorial). An SMTP session asks a
   :class:`~mailsim.mail.server.policy.SessionPolicy` about each recipient (local users yes,
   unknown ones 550, other domains only after AUTH on submission) and, at the final dot,
   :meth:`MailServerCore.refusal` (an injected fault, or a copy of a message already queued with
   other recipients, or a mail loop). :meth:`MailServerCore.take_message` then completes a
   submitted message's ``Date:`` and ``Message-ID:`` (RFC 6409 8), stamps ``Received:``, files
   the local recipients in their mailboxes (with ``Return-Path:`` and ``Delivered-To:``, RFC 5321
   4.4) and queues the rest; the adapter acknowledges with the queue id it returns (only after
   it returned: a durable queue has stored it by then).
2. **Planning** (the queue runner). :meth:`MailServerCore.plan` sends due delay warnings, takes
   what is due from the :class:`~mailsim.mail.queue.OutgoingQueue` by destination domain, holds
   back what an open connection to that domain can still carry, and hands out the rest as
   :class:`Delivery` jobs of at most ``messages_per_connection`` messages, within
   ``connections_per_destination``; it says when to wake next. The adapter runs each job and
   calls :meth:`MailServerCore.delivery_ended` when it is over.
3. **Delivering** (step 3). A :class:`Delivery` is told what happened: the MX lookup failed, an
   MX host is ourselves, a connect failed, or a :class:`~mailsim.mail.server.delivery.ClientSession`
   (the SMTP client machine with the core's bookkeeping) ran to its end. It records each attempt
   when its SYN leaves, settles per-recipient outcomes (delivered, deferred by the retry policy,
   bounced), lets waiting mail ride along on a connection that falls idle, and defers what no
   MX host took.
4. **Failing** (the retry policy). A temporary failure is deferred to the policy's next time, or
   expires past the give-up age; a permanent one bounces. Bounces and delay warnings are RFC 3464
   reports queued like any message, from the null sender.

Time comes from ``clock()`` (simulated seconds, or the live servers' scaled wall clock), randomness
from the streams given, and every happening goes to ``trace`` as the records of
:mod:`mailsim.trace.recorder`. Crash and restart are :meth:`MailServerCore.crash` and
:meth:`MailServerCore.restart`: a non-durable queue is lost (each loss is recorded); attempts in
flight in a durable one are due again.
"""

from __future__ import annotations

import heapq
import math
import random
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

from mailsim.mail.dsn import RecipientStatus, make_report
from mailsim.mail.message import (
    MailItem,
    add_delivery_headers,
    add_missing_headers,
    add_received,
    domain_of,
    is_looping,
    message_id_of,
    with_protocol,
)
from mailsim.mail.queue import (
    WAITING_STATES,
    DueEntry,
    OutgoingQueue,
    QueueEntry,
    RecipientState,
)
from mailsim.mail.server.delivery import ClientSession, reply_line
from mailsim.mail.server.policy import SessionPolicy
from mailsim.mail.server.settings import ServerSettings
from mailsim.protocol.smtp import (
    MessageReceived,
    Reply,
    ReplyTexts,
    TransactionResult,
    is_postmaster,
    policy_reply,
)
from mailsim.protocol.smtp import local_part as mailbox_name

_ACTIVE, _DEFERRED = RecipientState.ACTIVE, RecipientState.DEFERRED
#: How a failed connect reads in a deferral, in Postfix's words, by the connect failure's reason.
CONNECT_FAILURES = {
    "timeout": "Connection timed out",
    "refused": "Connection refused",
    "unreachable": "No route to host",
}


class Trace(Protocol):
    """Where the core records what happens (a :class:`mailsim.trace.recorder.Recorder`)."""

    def emit(self, type: str, **fields: Any) -> dict[str, Any]: ...


class Mailboxes(Protocol):
    """The local mailboxes (a :class:`mailsim.mail.mailbox.MailStore`, or Maildirs on disk)."""

    def get(self, user: str) -> Any: ...

    def add_user(self, user: str) -> Any: ...

    def deliver(
        self, user: str, content: bytes, *, t: float = 0.0, msg_id: str = "", sender: str = ""
    ) -> Any: ...


class MailServerCore:
    """The decisions of one mail server: what to accept, queue, try, retry, warn and bounce.

    Args:
        node: the server's name (its node in the world, and in every trace record).
        domains: the mail domains it is final destination for.
        users: local part -> password (local parts are shared by all its domains, as Postfix's
            local delivery does).
        settings: the knobs.
        clock: the current time in seconds.
        trace: where happenings are recorded.
        store: the local mailboxes.
        note_arrival: called with ``(item, node, kind)`` for a message no user agent submitted
            (one typed by hand, a bounce), so the world records its ``mail.submit`` once.
        retry_rng: the random stream of the retry policy's jitter.
        fault_rng: the random stream of probabilistic reply faults.
        own_address: this server's IP address (an MX host with it is ourselves).
        queue: the outgoing queue (default: a new in-memory one; a live server passes one that
            writes through to disk).
        queue_id_prefix: what queue ids start with (default: the node's name in capitals
            without dashes, ``INDIAMAIL``); a live server that restarts makes them unique.
    """

    def __init__(
        self,
        node: str,
        domains: Iterable[str],
        users: dict[str, str],
        settings: ServerSettings,
        *,
        clock: Callable[[], float],
        trace: Trace,
        store: Mailboxes,
        note_arrival: Callable[[MailItem, str, str], None],
        retry_rng: random.Random,
        fault_rng: random.Random,
        own_address: str | None = None,
        queue: OutgoingQueue | None = None,
        queue_id_prefix: str | None = None,
    ) -> None:
        #: The server's node name.
        self.node = node
        written = tuple(domains)
        #: Its mail domains, lower case.
        self.domains = tuple(d.lower() for d in written)
        #: Local part (lower case) -> password.
        self.users = {name.lower(): password for name, password in users.items()}
        #: The knobs.
        self.settings = settings
        #: The name in greetings and headers.
        self.hostname = settings.hostname or (written[0] if written else node)
        #: The reply wording.
        self.texts = ReplyTexts.CLASSIC if settings.replies == "classic" else ReplyTexts.MODERN
        #: The current time.
        self.clock = clock
        #: Where happenings are recorded.
        self.trace = trace
        #: Local mailboxes, by local part.
        self.store = store
        #: The outgoing queue.
        self.queue = queue if queue is not None else OutgoingQueue(node)
        #: This server's address (for the MX loop check).
        self.own_address = own_address
        #: Whether the server is up.
        self.up = True
        #: Bumped by each crash: deliveries started before it no longer count.
        self.generation = 0
        #: The random stream of probabilistic reply faults.
        self.fault_rng = fault_rng
        #: Greylisting's memory: (client address, sender, recipient) triplets seen once.
        self.greylist: set[tuple[str, str, str]] = set()
        #: Called when the queue runner should wake (something was queued or a job ended).
        self.on_wake: Callable[[], None] = lambda: None
        self._note_arrival = note_arrival
        self._retry_rng = retry_rng
        # (message id, recipient) pairs already filed here, to tell RFC 1047 duplicates.
        self._filed: set[tuple[str, str]] = set()
        self._active: dict[str, int] = defaultdict(int)
        # Waiting recipients that may join any open connection to their domain, by domain:
        # PENDING ones, and ones deferred only because the destination was unreachable (see
        # _ride_along). Insertion order is arrival order.
        self._free: dict[str, dict[tuple[str, str], tuple[QueueEntry, str]]] = defaultdict(dict)
        # (message id, recipient) whose final dot went out and whose reply has not come back:
        # if the queue is lost now, the receiver may already have filed it (RFC 1047).
        self.after_dot: set[tuple[str, str]] = set()
        # Open (or opening) connections per destination, and the due messages held for them.
        self._agents: dict[str, list[Delivery]] = {}
        self._riders: dict[str, OrderedDict[int, tuple[QueueEntry, list[str]]]] = defaultdict(
            OrderedDict
        )
        # Times something was scheduled for (deferrals), so a runner whose due work waits for
        # a free connection can still sleep until the next retry of anything else.
        self._alarms: list[float] = []
        self._queue_seq = 0
        self._queue_prefix = (
            queue_id_prefix if queue_id_prefix is not None else node.upper().replace("-", "")
        )

    # -- addresses --------------------------------------------------------------------------------

    def is_local(self, address: str) -> bool:
        """Whether ``address`` is in one of this server's domains."""
        return domain_of(address) in self.domains

    def local_part(self, address: str) -> str:
        """The mailbox name of a local address (lower case; ``"john smith"`` is ``john smith``)."""
        return mailbox_name(address).lower()

    def next_queue_id(self) -> str:
        """A new queue id, ``INDIAMAIL00001``: the prefix and a serial number."""
        self._queue_seq += 1
        return f"{self._queue_prefix}{self._queue_seq:05d}"

    # -- life cycle -------------------------------------------------------------------------------

    def crash(self) -> None:
        """The server went down: jobs in flight are void; a non-durable queue is lost."""
        if not self.up:
            return
        self.up = False
        self.generation += 1
        now = self.clock()
        if not self.settings.durable:
            self._free.clear()
            for entry in self.queue.lose_all(now):
                for rcpt in entry.recipients.values():
                    if rcpt.state is RecipientState.LOST and rcpt.final_time == now:
                        extra = {}
                        if (entry.item.id, rcpt.address) in self.after_dot:
                            extra["after_dot"] = True  # the next hop may have it: see books
                        self.trace.emit(
                            "mail.lost",
                            msg=entry.item.id,
                            node=self.node,
                            rcpt=rcpt.address,
                            cause="crash of a non-durable queue",
                            **extra,
                        )
        self.after_dot.clear()
        self._agents.clear()
        self._riders.clear()
        self._active.clear()

    def restart(self) -> None:
        """The server is back: messages that were mid-attempt are due again."""
        if self.up:
            return
        now = self.clock()
        for entry in list(self.queue):
            for rcpt in entry.in_state(_ACTIVE):
                self.queue.requeue(entry, rcpt.address, now)
                self._set_free(entry, rcpt.address)
        self.up = True

    def _kick(self, domains: Iterable[str] = ()) -> None:
        """Wake the queue runner (something was queued, or a delivery job finished).

        A message queued for ``domains`` that all have every connection busy does not wake it:
        it goes out when one of those connections ends (which kicks), and waking the runner
        for nothing costs a scan of every due message, quadratic in a long outage.
        """
        limit = self.settings.connections_per_destination
        if domains and all(self._active[domain] >= limit for domain in domains):
            return
        self.on_wake()

    # -- taking mail (steps 2 and 4) --------------------------------------------------------------

    def policy(self, peer_ip: str, *, submission: bool, port: int) -> SessionPolicy:
        """The policy of a new SMTP session from ``peer_ip`` on ``port``."""
        return SessionPolicy(self, peer_ip, submission=submission, port=port)

    def greeting(self, policy: SessionPolicy) -> Reply | None:
        """The greeting a ``CONNECT`` reply fault gives this session, or None for the usual."""
        fault = policy.fault("CONNECT")
        return fault.reply() if fault is not None else None

    def refusal(self, policy: SessionPolicy, event: MessageReceived) -> Reply | None:
        """The reply that refuses a message at its final dot, or None to take it."""
        fault = policy.fault("DOT")
        if fault is not None:
            return fault.reply()
        if is_looping(event.content):
            return policy_reply(self.texts, "mail_loop")  # RFC 5321 6.3
        return self._queue_clash(event)

    def record_auth(self, event: Any, service: str) -> None:
        """Record an SMTP AUTH or a POP3 login outcome (an ``AuthResult`` of either machine)."""
        self.trace.emit(
            "auth.ok" if event.ok else "auth.fail", node=self.node, user=event.user, service=service
        )

    def take_message(
        self,
        event: MessageReceived,
        policy: SessionPolicy,
        client_ip: str,
        client_host: str | None,
        *,
        epoch: Any = None,
    ) -> str:
        """Store an accepted message: local recipients to mailboxes, others to the queue.

        Args:
            event: the message as the SMTP server machine received it.
            policy: its session's policy (HELO name, EHLO, AUTH for the Received stamp).
            client_ip: the client's address; ``client_host`` its name, if known.
            epoch: wall-clock time of t = 0 for the Received date (default: the simulation's).

        Returns:
            The queue id for the 250 reply.
        """
        now = self.clock()
        queue_id = self.next_queue_id()
        stamp: dict[str, Any] = {} if epoch is None else {"epoch": epoch}
        content = event.content
        if policy.submission:
            # RFC 6409 8.2, 8.3: a submission server completes what the user agent left out.
            own_id = f"{queue_id}@{self.hostname}"
            content = add_missing_headers(content, t=now, message_id=own_id, **stamp)
        msg_id = message_id_of(content) or f"{queue_id}@{self.hostname}"
        content = add_received(
            content,
            helo=policy.session_hello or client_host or client_ip,
            client_ip=client_ip,
            client_host=client_host,
            by_host=self.hostname,
            queue_id=queue_id,
            t=now,
            rcpt=event.rcpt_to[0] if len(event.rcpt_to) == 1 else None,
            protocol=with_protocol(extended=policy.extended, authenticated=policy.authenticated),
            **stamp,
        )
        item = MailItem(
            id=msg_id,
            sender=event.mail_from,
            recipients=event.rcpt_to,
            content=content,
            ret=event.mail_params.ret or "HDRS",
            envid=event.mail_params.envid,
        )
        self._note_arrival(item, self.node, "dsn" if not item.sender else "mail")
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
        if entry is None or msg_id is None:
            return None
        remote = [r for r in event.rcpt_to if not (self.is_local(r) or is_postmaster(r))]
        if all(r in entry.recipients for r in remote):
            return None
        return policy_reply(self.texts, "already_queued", msg_id=msg_id)

    def accept_item(self, item: MailItem, queue_id: str | None = None) -> None:
        """File the local recipients of ``item`` and queue the rest."""
        now = self.clock()
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
            item.with_recipients(remote), now, queue_id=queue_id or self.next_queue_id()
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
        # RFC 5321 4.4: final delivery records the reverse-path (and, as Postfix does, for whom).
        content = add_delivery_headers(item.content, item.sender, rcpt)
        self.store.deliver(box, content, t=self.clock(), msg_id=item.id, sender=item.sender)

    # -- planning (the queue runner) --------------------------------------------------------------

    def plan(self) -> tuple[list[Delivery], float | None]:
        """What the queue runner starts now, and when it should wake next (None: when kicked).

        Sends the delay warnings that are due, then hands out the due messages as delivery jobs
        (see the module's theory of operation). The adapter starts each job, in order.
        """
        now = self.clock()
        queue, settings = self.queue, self.settings
        self._send_warnings(now)
        started: list[Delivery] = []
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
                job = Delivery(self, domain, chunk)
                self._agents.setdefault(domain, []).append(job)
                self._active[domain] += 1
                started.append(job)
            if self._riders.get(domain):
                blocked = True  # due, but waiting to join an open connection
        next_due = queue.next_due_time()
        if blocked and next_due is not None and next_due <= now:
            # What is due waits for a connection (one to end, or one to fall idle and take
            # it along; both kick); meanwhile sleep until the next retry of anything else.
            next_due = self._next_alarm(now)
        return started, next_due

    def delivery_ended(self, job: Delivery) -> None:
        """A delivery job is over (however it ended): its connection slot is free again."""
        job.open = False
        if job.generation == self.generation:
            domain = job.domain
            self._active[domain] -= 1
            agents = self._agents[domain]
            agents.remove(job)
            if not agents:
                del self._agents[domain]
            self._kick()

    def _next_alarm(self, now: float) -> float | None:
        """The first scheduled retry time after ``now``, or None."""
        alarms = self._alarms
        while alarms and alarms[0] <= now:
            heapq.heappop(alarms)
        return alarms[0] if alarms else None

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

    def ride_along(self, domain: str, limit: int) -> list[DueEntry]:
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
        now = self.clock()
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
                self.defer(
                    entry,
                    waiting,
                    f"{reply} (delivery temporarily suspended)",
                    None,
                    None,
                    attempt=False,
                    unreachable=True,
                )

    # -- outcomes ---------------------------------------------------------------------------------

    def settle(self, entry: QueueEntry, result: TransactionResult, host: str, conn: int) -> None:
        """Apply one transaction's per-recipient outcomes to the queue."""
        now = self.clock()
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
                self.defer(
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

    def defer(
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
        through (see ``ride_along``) instead of waiting for its own retry time. ``after_dot``
        says the reply to the final dot never came, so the next hop may have the message already
        (RFC 1047); the record says so for the books.
        """
        now = self.clock()
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
        now = self.clock()
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
        report = self._report(entry, reports, "dsn", now)
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
        self._send_report(report)

    def _report(
        self, entry: QueueEntry, reports: list[RecipientStatus], kind: str, now: float
    ) -> MailItem | None:
        """An RFC 3464 report on ``entry`` (``kind`` "dsn" or "warn") as a queueable item whose
        id is its Message-ID; None when none may be sent (the original was a bounce)."""
        report = make_report(
            entry.item,
            reports,
            report_id=f"{self.next_queue_id()}.{kind}",
            reporting_mta=self.hostname,
            arrival=entry.arrival,
            now=now,
            give_up_after=self.settings.retry.give_up_after,
        )
        if report is None:
            return None
        return MailItem(
            id=message_id_of(report.content) or report.id,
            sender=report.sender,
            recipients=report.recipients,
            content=report.content,
        )

    def _send_report(self, report: MailItem | None) -> None:
        """Queue a report from this server (it enters the mail system here)."""
        if report is not None:
            self._note_arrival(report, self.node, "dsn")
            self.accept_item(report)

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
            report = self._report(entry, reports, "warn", now)
            for r in waiting:
                self.trace.emit("mail.warn", msg=entry.item.id, node=self.node, rcpt=r.address)
            self._send_report(report)


class Delivery:
    """One delivery job: a chunk of due messages for one domain, carried over one connection.

    The adapter resolves the domain's MX hosts and tells the job what happens, in order:
    :meth:`dns_failed`, or for each host :meth:`candidates` gives (announced as its SYN leaves)
    :meth:`connect_failed`, or :meth:`session` and :meth:`session_ended`; finally :meth:`finish`.
    Then :meth:`MailServerCore.delivery_ended`.
    """

    __slots__ = (
        "announced",
        "attempted",
        "carried",
        "core",
        "domain",
        "generation",
        "last_error",
        "open",
        "waiting",
    )

    def __init__(self, core: MailServerCore, domain: str, chunk: list[DueEntry]) -> None:
        self.core = core
        #: The destination domain.
        self.domain = domain
        #: Messages given to this connection so far (its chunk and what rode along).
        self.carried = len(chunk)
        #: Whether it can still take more (connecting or in session, not yet QUITting).
        self.open = True
        #: The core's generation when it started (a crash voids it).
        self.generation = core.generation
        #: What no MX host has taken yet.
        self.waiting = list(chunk)
        #: Entries already counted in a mail.attempt record.
        self.attempted: set[int] = set()
        #: Entries whose attempt on the current host was recorded when its SYN left.
        self.announced: set[int] = set()
        #: Why the last host did not take them, for the deferral.
        self.last_error = f"451 4.4.4 no mail exchanger for {domain} could be used"

    def dns_failed(self, error: str, permanent: bool) -> None:
        """The MX lookup failed: NXDOMAIN bounces (RFC 5321 5.1), anything else is retried."""
        core, domain = self.core, self.domain
        reply = f"DNS lookup of {domain} failed: {error}"
        for due in self.waiting:
            if permanent:
                # RFC 5321 5.1: a domain that does not exist is a permanent failure.
                core._fail(due.entry, due.recipients, "550 5.1.2 " + reply, mx=None, conn=None)
            else:
                core.defer(
                    due.entry, due.recipients, "451 4.4.3 " + reply, None, None, unreachable=True
                )
        self.waiting = []
        self.open = False
        if permanent:
            core._riders.pop(domain, None)  # they will find out for themselves, at once
        else:
            core._suspend_riders(domain, "451 4.4.3 " + reply)

    def candidates(
        self, hosts: Iterable[tuple[int, str, str]], next_connection: Callable[[], int]
    ) -> Iterator[tuple[str, str]]:
        """The MX hosts to try, in order, as (host, address), while anything is left to send.

        RFC 5321 5.1: each host in preference order until one accepts; a host that is this server
        is skipped. Each host's attempt is announced (:meth:`announce`) with the id
        ``next_connection()`` gives, just before the adapter's connect, when the SYN leaves.
        """
        for _preference, host, address in hosts:
            if not self.waiting:
                return
            if self.loops_back(host, address):
                continue
            self.announce(host, next_connection())
            yield host, address

    def loops_back(self, host: str, address: str) -> bool:
        """Whether MX ``host`` is this server itself (RFC 5321 5.1: a configuration error)."""
        if host == self.core.node or address == self.core.own_address:
            self.last_error = f"451 4.4.6 mail for {self.domain} loops back to myself ({host})"
            return True
        return False

    def announce(self, host: str, conn: int) -> None:
        """The SYN to ``host`` leaves now: one ``mail.attempt`` per transaction it will need.

        An attempt starts when its SYN leaves, not when the connect succeeds or times out 30 s
        later.
        """
        core = self.core
        self.announced = {due.entry.seq for due in self.waiting}
        self.attempted |= self.announced
        per_delivery = max(1, core.settings.recipients_per_delivery)
        for due in self.waiting:
            for start in range(0, len(due.recipients), per_delivery):
                core.trace.emit(
                    "mail.attempt",
                    msg=due.entry.item.id,
                    node=core.node,
                    rcpts=list(due.recipients[start : start + per_delivery]),
                    mx=host,
                    conn=conn,
                )

    def connect_failed(self, host: str, address: str, port: int, reason: str, detail: str) -> None:
        """The connection to ``host`` failed: ``reason`` as in :data:`CONNECT_FAILURES`, else
        ``detail`` says what happened."""
        why = CONNECT_FAILURES.get(reason, detail)
        self.last_error = f"451 4.4.1 connect to {host}[{address}]:{port}: {why}"

    def session(self, host: str, conn: int) -> ClientSession:
        """The SMTP client for an established connection to ``host`` (id ``conn``)."""
        return ClientSession(self, host, conn, self.waiting, self.announced)

    def session_ended(self, session: ClientSession) -> None:
        """The session is over: what it never started goes to the next MX host."""
        self.waiting, refusal = session.close()
        if refusal is not None:
            self.last_error = refusal

    def finish(self) -> None:
        """No more hosts to try: what none took is deferred, with what waited to ride along."""
        core = self.core
        self.open = False
        if self.waiting:
            core._suspend_riders(self.domain, self.last_error)
        for due in self.waiting:
            core.defer(
                due.entry,
                due.recipients,
                self.last_error,
                None,
                None,
                attempt=due.entry.seq not in self.attempted,
                unreachable=True,
            )
