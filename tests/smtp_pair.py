"""ConnectionPair: our SMTP client and server joined by a fake wire (after h11's test helper).

The pair pumps bytes both ways until neither side has anything more to say, answers the
server's MessageReceived with a decision callback, hangs up the other side when one side closes
(as the adapters will), keeps a ``C:``/``S:`` transcript, and checks that both sides agree on
what was delivered.
"""

from __future__ import annotations

from collections.abc import Callable

from mailsim.protocol.smtp import (
    NEED_DATA,
    PAUSED,
    Accept,
    ClientEvent,
    ClientState,
    MessageReceived,
    Reject,
    ServerEvent,
    ServerState,
    SMTPClient,
    SMTPServer,
    TransactionResult,
    canonical_content,
    split_lines,
)

Decision = Callable[[MessageReceived], Accept | Reject]


class ConnectionPair:
    """One SMTP client talking to one SMTP server through memory.

    Args:
        client: the client machine.
        server: the server machine (its greeting is still queued).
        decide: answers each MessageReceived; default: accept with queue ids Q1, Q2, ...
    """

    def __init__(
        self, client: SMTPClient, server: SMTPServer, decide: Decision | None = None
    ) -> None:
        self.client = client
        self.server = server
        self.decide = decide if decide is not None else self._accept_all
        self.client_events: list[ClientEvent] = []
        self.server_events: list[ServerEvent] = []
        #: MessageReceived events with the decision the application took for each.
        self.decisions: list[tuple[MessageReceived, Accept | Reject]] = []
        self.transcript: list[str] = []
        self.client_bytes = 0
        self._client_hung_up = False
        self._server_hung_up = False
        self._cut = False

    def _accept_all(self, message: MessageReceived) -> Accept:
        return Accept(f"Q{len(self.decisions) + 1}")

    def _to_client(self, data: bytes) -> None:
        if data and not self._cut:
            self.transcript += [f"S: {line}" for line in split_lines(data)]
            self.client.receive_data(data)

    def _to_server(self, data: bytes) -> None:
        if data and not self._cut:
            self.transcript += [f"C: {line}" for line in split_lines(data)]
            self.client_bytes += len(data)
            self.server.receive_data(data)

    def pump(self, *, hold_decision: bool = False, until: Callable[[], bool] | None = None) -> None:
        """Move bytes until both sides are quiet.

        Args:
            hold_decision: stop when the server waits for the application's decision.
            until: stop as soon as this returns True (checked before each round).
        """
        for _ in range(100_000):
            if until is not None and until():
                return
            moved = False
            while True:
                event = self.server.next_event()
                if event is NEED_DATA:
                    break
                if event is PAUSED:
                    if hold_decision:
                        return
                    message = self.server_events[-1]
                    assert isinstance(message, MessageReceived)
                    decision = self.decide(message)
                    self.decisions.append((message, decision))
                    self._to_client(self.server.send(decision))
                    moved = True
                    continue
                self.server_events.append(event)
            out = self.server.data_to_send()
            if out:
                self._to_client(out)
                moved = True
            if self.server.state in (ServerState.CLOSED, ServerState.ERROR):
                self.hang_up_server()
            while True:
                client_event = self.client.next_event()
                if client_event is NEED_DATA:
                    break
                self.client_events.append(client_event)
            out = self.client.data_to_send()
            if out:
                self._to_server(out)
                moved = True
            if self.client.state in (ClientState.CLOSED, ClientState.ERROR):
                self.hang_up_client()
            if not moved:
                return
        raise AssertionError("the pair never went quiet")

    def hang_up_server(self) -> None:
        """The server's adapter closes the socket: the client sees EOF."""
        if not self._server_hung_up:
            self._server_hung_up = True
            self.client.receive_data(b"")

    def hang_up_client(self) -> None:
        """The client's adapter closes the socket: the server sees EOF."""
        if not self._client_hung_up:
            self._client_hung_up = True
            self.server.receive_data(b"")

    def cut(self) -> None:
        """The wire breaks: both sides see EOF; nothing in flight or written later arrives."""
        self._cut = True
        self.hang_up_server()
        self.hang_up_client()
        self.pump()

    @property
    def results(self) -> list[TransactionResult]:
        """The client's TransactionResult events, in order."""
        return [e for e in self.client_events if isinstance(e, TransactionResult)]

    def check_agreement(self) -> None:
        """Both sides agree: every message the client counts as delivered was accepted by the
        server with the same sender, the accepted recipients, and the content as canonicalised,
        in the same order; and nothing else was accepted."""
        accepted_by_server = [m for m, d in self.decisions if isinstance(d, Accept)]
        delivered = [
            r
            for r in self.results
            if r.data_reply is not None and r.data_reply.is_positive and not r.dot_sent_no_reply
        ]
        # A message whose 250 was lost is on the server but not "delivered" for the client.
        lost_replies = [r for r in self.results if r.dot_sent_no_reply]
        assert len(accepted_by_server) - len(delivered) <= len(lost_replies)
        for result, message in zip(delivered, accepted_by_server, strict=False):
            envelope = result.envelope
            assert message.mail_from == envelope.mail_from
            assert message.content == canonical_content(envelope.content)
            accepted = tuple(o.address for o in result.outcomes if o.status == "accepted")
            assert message.rcpt_to == accepted
        for result in self.results:
            statuses = {o.status for o in result.outcomes}
            if result.data_reply is None or not result.data_reply.is_positive:
                assert "accepted" not in statuses
