"""A simulated user agent: James composing and sending, Steve checking his mailbox.

Step 1 of the tutorial happens here: the user agent composes a MIME message (7-bit, attachments
in base64) and submits it to its own mail server on port 587 with AUTH (RFC 6409), which is
step 2. Step 6 happens here too: at a set interval the agent logs in over POP3 (USER/PASS),
retrieves every message and deletes what it read (RFC 1939).

A submission that fails temporarily (server down, connection lost) stays in the agent's outbox
and is tried again, as a real mail program does; a permanent refusal is reported to the user
(``mail.reject``) and the message is not sent.
"""

from __future__ import annotations

import heapq
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass, field
from email.headerregistry import Address as HeaderAddress
from typing import TYPE_CHECKING, Any, Protocol

from mailsim.mail.message import Attachment, addresses_of, compose, make_message_id
from mailsim.net.tcp import ConnectError
from mailsim.nodes.mailserver import POP3_PORT, SUBMISSION_PORT, reply_line
from mailsim.nodes.wire import LineTracer, drive_client
from mailsim.protocol import pop3
from mailsim.protocol.smtp import (
    NEED_DATA,
    ClientState,
    ConnectionFailed,
    Envelope,
    SMTPClient,
    TransactionResult,
    address_key,
    local_part,
)

if TYPE_CHECKING:
    from mailsim.nodes.world import World


def _draft_time(draft: PlannedDraft) -> float:
    return draft.at


@dataclass(frozen=True)
class Draft:
    """A message the user will write and send at time ``at``.

    Attributes:
        at: when the user presses Send (simulated seconds).
        to: the To recipients; ``cc`` the Cc recipients (both become envelope recipients);
            ``bcc`` the blind copies (envelope recipients only, in no header).
        subject, body: the text; ``html`` an optional HTML alternative.
        attachments: files to attach.
        local_id: a name for the message, unique in the world (the Message-ID is derived from it).
    """

    at: float
    to: tuple[str, ...]
    subject: str = ""
    body: str = ""
    cc: tuple[str, ...] = ()
    bcc: tuple[str, ...] = ()
    html: str | None = None
    attachments: tuple[Attachment, ...] = ()
    local_id: str | None = None

    def written(self) -> Draft:
        """The draft itself: it is written in full already (see :class:`PlannedDraft`)."""
        return self


class PlannedDraft(Protocol):
    """A message planned for time ``at`` whose text is made only when it is sent.

    Generated traffic draws each message's recipients, text and attachments when the sender
    gets to it, so a long day holds only the next message of each sender. A stream of planned
    drafts may draw message k+1's time only after message k was written; the agent keeps to
    that order (it writes each draft before it looks at the next).
    """

    @property
    def at(self) -> float:
        """When the user presses Send (simulated seconds)."""
        ...

    def written(self) -> Draft:
        """The message in full."""
        ...


@dataclass(slots=True)
class _Outgoing:
    msg: str
    envelope: Envelope
    tries: int = 0


@dataclass(slots=True)
class UserAgent:
    """One user's mail program on a host node.

    Attributes:
        world: the world.
        node: the host it runs on.
        address: the user's address.
        password: for AUTH and POP3.
        server: the node of the user's mail server (submission and POP3).
        check_every: POP3 polling interval in seconds, or None to never check.
        resubmit_every: how long a failed submission waits in the outbox before the next try.
        keep_on_server: leave retrieved messages on the server (no DELE).
        name: the display name in the From header (``James <james@india.com>``), or None.
        inbox_kept: how many retrieved messages :attr:`inbox` keeps, the latest (None: all).
        inbox: the messages retrieved so far, as bytes, oldest first (for notebooks and tests).
    """

    world: World
    node: str
    address: str
    password: str
    server: str
    check_every: float | None = None
    resubmit_every: float = 300.0
    keep_on_server: bool = False
    name: str | None = None
    inbox_kept: int | None = None
    inbox: list[bytes] = field(default_factory=list)
    _drafts: list[Draft] = field(default_factory=list)
    _planned: list[Iterator[PlannedDraft]] = field(default_factory=list)
    _outbox: list[_Outgoing] = field(default_factory=list)
    _seen_uids: set[str] = field(default_factory=set)

    @property
    def login(self) -> str:
        """The user name for AUTH and POP3: the local part of the address, quotes undone."""
        return local_part(self.address)

    @property
    def domain(self) -> str:
        """The domain of the user's address."""
        return self.address.rpartition("@")[2].lower()

    def write(self, drafts: Sequence[Draft]) -> None:
        """Add messages the user will send (before the world starts)."""
        self._drafts.extend(drafts)
        self._drafts.sort(key=lambda d: d.at)

    def plan(self, drafts: Iterator[PlannedDraft]) -> None:
        """Add a stream of planned messages, in order of time (before the world starts)."""
        self._planned.append(drafts)

    def start(self) -> None:
        """Start the sending and the mailbox-checking processes."""
        env = self.world.env
        if self._drafts or self._planned:
            env.process(self._send_loop())
        if self.check_every:
            env.process(self._check_loop())

    # -- sending (steps 1 and 2) ---------------------------------------------------------------

    def _upcoming(self) -> Iterator[PlannedDraft]:
        """Every draft in order of time; on equal times, written ones before planned ones and
        planned streams in the order they were added (a stable merge)."""
        sources: list[Iterator[PlannedDraft]] = [iter(self._drafts), *self._planned]
        self._drafts, self._planned = [], []
        if len(sources) == 1:
            return sources[0]
        return heapq.merge(*sources, key=_draft_time)

    def _send_loop(self) -> Generator[Any, Any, None]:
        env = self.world.env
        upcoming = self._upcoming()
        draft = next(upcoming, None)
        next_retry: float | None = None
        while draft is not None or self._outbox:
            fresh = False
            while draft is not None and draft.at <= env.now:
                # Written before the next is looked at: a planned stream draws in that order.
                self._outbox.append(self._compose(draft.written()))
                draft = next(upcoming, None)
                fresh = True
            retry_due = next_retry is not None and env.now >= next_retry
            if self._outbox and (fresh or retry_due):
                # Everything due now goes out in one submission session.
                yield from self._submit()
                next_retry = env.now + self.resubmit_every if self._outbox else None
                continue
            wake = [t for t in (next_retry, draft.at if draft is not None else None)]
            yield env.timeout(max(0.0, min(t for t in wake if t is not None) - env.now))

    def _compose(self, draft: Draft) -> _Outgoing:
        """Step 1: James writes the message; his user agent encodes it for 7-bit transport."""
        world = self.world
        local_id = draft.local_id or world.new_message_name()
        message_id = make_message_id(local_id, self.domain)
        sender = self.address
        if self.name:
            sender = str(HeaderAddress(display_name=self.name, addr_spec=self.address))
        content = compose(
            sender,
            list(draft.to),
            draft.subject,
            draft.body,
            cc=list(draft.cc),
            html=draft.html,
            attachments=draft.attachments,
            message_id=message_id,
            date_t=world.env.now,
        )
        msg = message_id.strip("<>")
        # One envelope recipient per mailbox, as mail programs do: Steve@USA.com, steve@usa.com
        # and "steve"@usa.com are one (RFC 5321 4.1.2; local parts matched without case).
        by_mailbox: dict[str, str] = {}
        for rcpt in addresses_of(list(draft.to), list(draft.cc), list(draft.bcc)):
            by_mailbox.setdefault(address_key(rcpt), rcpt)
        rcpts = tuple(by_mailbox.values())
        world.note_submit(msg, self.node, self.address, rcpts, len(content))
        return _Outgoing(msg, Envelope(self.address, rcpts, content))

    def _submit(self) -> Generator[Any, Any, None]:
        """Step 2: hand the outbox to the mail server on port 587, with AUTH."""
        world = self.world
        net = world.network
        batch, self._outbox = self._outbox, []
        try:
            conn = yield net.connect(
                self.node, world.topology.ip_of(self.server), SUBMISSION_PORT, timeout=30.0
            )
        except ConnectError:
            self._outbox.extend(batch)
            return
        client = SMTPClient(self.node, auth=(self.login, self.password))
        tracer = LineTracer(
            world.recorder, "smtp.line", conn.id, "C", self.node, self.server, world.data_lines
        )
        by_envelope = {id(item.envelope): item for item in batch}
        for item in batch:
            item.tries += 1
            client.send_message(item.envelope)
        client.quit()
        retry: list[_Outgoing] = []

        def handle(event: Any) -> None:
            if isinstance(event, TransactionResult):
                item = by_envelope.pop(id(event.envelope))
                temporary = [o for o in event.outcomes if o.status == "temporary"]
                for outcome in event.outcomes:
                    if outcome.status == "permanent":
                        world.recorder.emit(
                            "mail.reject",
                            msg=item.msg,
                            node=self.node,
                            rcpt=outcome.address,
                            reply=reply_line(outcome.reply),
                        )
                if temporary:
                    rcpts = tuple(o.address for o in temporary)
                    envelope = Envelope(item.envelope.mail_from, rcpts, item.envelope.content)
                    retry.append(_Outgoing(item.msg, envelope, item.tries))
            elif isinstance(event, ConnectionFailed):
                for envelope in event.unsent:
                    retry.append(by_envelope.pop(id(envelope)))

        yield from drive_client(
            conn,
            client,
            tracer,
            need_data=NEED_DATA,
            timeout_for=lambda: 600.0 if client.state is ClientState.CONTENT_SENT else 300.0,
            handle=handle,
        )
        retry.extend(by_envelope.values())
        self._outbox.extend(retry)

    # -- reading (step 6) ------------------------------------------------------------------------

    def _check_loop(self) -> Generator[Any, Any, None]:
        env = self.world.env
        assert self.check_every
        checks = 0
        while True:
            # A regular cadence (every 10 minutes on the clock), however long a check took.
            checks += 1
            yield env.timeout(max(0.0, checks * self.check_every - env.now))
            yield from self.check_mail()

    def _keep(self, content: bytes) -> None:
        """Keep a retrieved message in :attr:`inbox`, the oldest going beyond ``inbox_kept``."""
        kept = self.inbox_kept
        if kept is None or kept > 0:
            self.inbox.append(content)
            if kept is not None and len(self.inbox) > kept:
                del self.inbox[0]

    def check_mail(self) -> Generator[Any, Any, None]:
        """Log in over POP3, retrieve everything new, delete it (unless kept), and QUIT."""
        world = self.world
        try:
            conn = yield world.network.connect(
                self.node, world.topology.ip_of(self.server), POP3_PORT, timeout=30.0
            )
        except ConnectError:
            return
        client = pop3.POP3Client(
            self.login,
            self.password,
            delete_after_retrieve=not self.keep_on_server,
            known_uids=tuple(self._seen_uids) if self.keep_on_server else (),
        )
        tracer = LineTracer(
            world.recorder, "pop3.line", conn.id, "C", self.node, self.server, world.data_lines
        )

        def handle(event: Any) -> None:
            if isinstance(event, pop3.MessageRetrieved):
                self._keep(event.content)
                if event.uid is not None and self.keep_on_server:
                    # Only a user who leaves mail on the server needs to know what was read;
                    # otherwise it was deleted, and the set would grow with the day's mail.
                    self._seen_uids.add(event.uid)

        yield from drive_client(
            conn, client, tracer, need_data=pop3.NEED_DATA, timeout_for=lambda: 600.0, handle=handle
        )
