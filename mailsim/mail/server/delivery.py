"""The sending side of one delivery connection: the SMTP client machine and the core's books.

A :class:`ClientSession` wraps :class:`~mailsim.protocol.smtp.SMTPClient` for one established
connection of a :class:`~mailsim.mail.server.core.Delivery` job. It offers each message as one
transaction for all its recipients there (split past ``recipients_per_delivery``), settles each
:class:`~mailsim.protocol.smtp.TransactionResult` in the queue, takes on mail that may ride along
when the connection falls idle (until ``connection_reuse_time`` is up), remembers which message
is between its final dot and the reply (RFC 1047), and gives every wait its own RFC 5321 4.5.3.2
timeout. The adapter only moves bytes: it writes ``client.data_to_send()``, feeds what it reads
to ``client.receive_data``, reads with :meth:`ClientSession.timeout_for`, passes every event to
:meth:`ClientSession.handle`, and calls :meth:`Delivery.session_ended` at the end.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mailsim.mail.queue import DueEntry
from mailsim.protocol.smtp import (
    ClientState,
    ConnectionFailed,
    Envelope,
    Idle,
    MailParams,
    Reply,
    SMTPClient,
    TransactionResult,
)

if TYPE_CHECKING:
    from mailsim.mail.server.core import Delivery


def reply_line(reply: Reply) -> str:
    """A reply as one line with its code, ``'451 4.7.1 Greylisted'``, for the trace and DSNs."""
    return f"{reply.code} {reply.text}".rstrip()


class ClientSession:
    """Our SMTP client over one established connection: the job's chunk, riders, then QUIT.

    Args:
        job: the delivery job.
        host: the MX host connected to.
        conn: the connection's id (for the trace).
        chunk: the messages to send first.
        announced: entries whose ``mail.attempt`` was recorded when the connection was opened;
            messages that join later get theirs when they are offered.
    """

    __slots__ = (
        "_announced",
        "_by_envelope",
        "_per_connection",
        "_per_delivery",
        "_refusal",
        "_reuse_until",
        "_timeouts",
        "_unsent",
        "client",
        "conn",
        "host",
        "job",
    )

    def __init__(
        self, job: Delivery, host: str, conn: int, chunk: list[DueEntry], announced: set[int]
    ) -> None:
        core = job.core
        settings = core.settings
        #: The job this session works for.
        self.job = job
        #: The MX host.
        self.host = host
        #: The connection id.
        self.conn = conn
        #: The SMTP client machine.
        self.client = SMTPClient(core.hostname)
        self._announced = announced
        self._by_envelope: dict[int, DueEntry] = {}
        self._per_connection = max(1, settings.messages_per_connection)
        self._per_delivery = max(1, settings.recipients_per_delivery)
        self._reuse_until = core.clock() + settings.connection_reuse_time
        self._unsent: list[DueEntry] = []
        self._refusal: list[str] = []
        self._timeouts = {
            ClientState.AWAIT_GREETING: settings.greeting_timeout,
            ClientState.DATA_SENT: settings.data_start_timeout,
            ClientState.CONTENT_SENT: settings.final_reply_timeout,
        }
        for due in chunk:
            self._offer(due)

    def _offer(self, due: DueEntry) -> None:
        # One transaction per message for all its recipients at this destination
        # (RFC 5321 4.5.4.1: MAIL, RCPT..., DATA once per server, not once per recipient),
        # split only when there are more than recipients_per_delivery.
        core = self.job.core
        item = due.entry.item
        rcpts = due.recipients
        per_delivery = self._per_delivery
        for start in range(0, len(rcpts), per_delivery):
            part = rcpts[start : start + per_delivery]
            envelope = Envelope(
                item.sender, part, item.content, MailParams(ret=item.ret, envid=item.envid)
            )
            self._by_envelope[id(envelope)] = (
                due if len(part) == len(rcpts) else DueEntry(due.entry, part)
            )
            self.client.send_message(envelope)
            if due.entry.seq in self._announced:
                continue
            core.trace.emit(
                "mail.attempt",
                msg=item.id,
                node=core.node,
                rcpts=list(part),
                mx=self.host,
                conn=self.conn,
            )

    def timeout_for(self) -> float:
        """How long the next read may wait (call before every wait)."""
        # After the final dot the message in flight (the oldest one not settled) may already be
        # filed by the server: remember it until its reply.
        client = self.client
        if client.state is ClientState.CONTENT_SENT and self._by_envelope:
            due = next(iter(self._by_envelope.values()))
            self.job.core.after_dot.update((due.entry.item.id, r) for r in due.recipients)
        # RFC 5321 4.5.3.2: each wait has its own minimum.
        return self._timeouts.get(client.state, self.job.core.settings.reply_timeout)

    def handle(self, event: Any) -> None:
        """Act on one event of the client machine."""
        job = self.job
        core = job.core
        if isinstance(event, TransactionResult):
            due = self._by_envelope.pop(id(event.envelope))
            core.after_dot.difference_update((due.entry.item.id, r) for r in due.recipients)
            core.settle(due.entry, event, self.host, self.conn)
        elif isinstance(event, ConnectionFailed):
            self._refusal.append(reply_line(event.reply))
            self._unsent.extend(self._by_envelope.pop(id(envelope)) for envelope in event.unsent)
        elif isinstance(event, Idle):
            reusable = core.up and core.clock() < self._reuse_until
            more = (
                core.ride_along(job.domain, self._per_connection - job.carried) if reusable else []
            )
            job.carried += len(more)
            for due in more:
                self._offer(due)
            if not more:
                job.open = False  # QUIT: nothing more rides on this connection
                self.client.quit()

    def close(self) -> tuple[list[DueEntry], str | None]:
        """The connection is over: what the server never started, and why it refused (if so).

        Anything the machine never answered for (it should not happen) is retried, not lost.
        """
        core = self.job.core
        for due in self._by_envelope.values():
            core.defer(
                due.entry, due.recipients, "451 4.4.2 session ended", self.host, self.conn, False
            )
        self._by_envelope.clear()
        return self._unsent, (self._refusal[-1] if self._refusal else None)
