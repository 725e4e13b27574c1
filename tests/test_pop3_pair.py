"""Our POP3 client against our POP3 server through a fake wire: both sides must agree."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from mailsim.protocol.pop3 import (
    NEED_DATA,
    PAUSED,
    AuthResult,
    ClientEvent,
    ClientState,
    ConnectionClosed,
    ConnectionLost,
    Deleted,
    LoginFailed,
    Maildrop,
    MaildropProvider,
    MemoryMaildrop,
    MemoryProvider,
    MessageRetrieved,
    POP3Client,
    POP3Server,
    Pop3State,
    Retrieved,
    ServerEvent,
    SessionDone,
    Updated,
)

MSG1 = b"From: james@india.com\r\nTo: steve@usa.com\r\nSubject: Hello\r\n\r\nHi Steve!\r\n"
MSG2 = b"Subject: dots\r\n\r\n.leading\r\n.\r\n..\r\nlast\r\n"


@dataclass
class ConnectionPair:
    """A client and a server joined by a fake wire (after h11's test helper of the same name).

    ``chunk`` cuts every transfer into pieces of that many octets; ``cut`` is asked about every
    event of either side and, once it says yes, the wire breaks: bytes in flight are lost and
    both sides see the connection close.
    """

    client: POP3Client
    server: POP3Server
    chunk: int | None = None
    cut: Callable[[object], bool] = lambda event: False
    client_events: list[ClientEvent] = field(default_factory=list)
    server_events: list[ServerEvent] = field(default_factory=list)
    broken: bool = False

    def _deliver(
        self, data: bytes, receive: Callable[[bytes], None], drain: Callable[[], bool]
    ) -> bool:
        step = self.chunk or max(len(data), 1)
        for start in range(0, len(data), step):
            if self.broken:
                return True
            receive(data[start : start + step])
            drain()
        return bool(data)

    def _drain_client(self) -> bool:
        while not _closing(self.client_events):
            event = self.client.next_event()
            if event is NEED_DATA or event is PAUSED:
                return False
            self.client_events.append(event)
            if isinstance(event, (ConnectionClosed, ConnectionLost)):
                return True
            self._check_cut(event)
        return True

    def _drain_server(self) -> bool:
        while not _closing(self.server_events):
            event = self.server.next_event()
            if event is NEED_DATA:
                return False
            self.server_events.append(event)
            if isinstance(event, ConnectionClosed):
                return True
            self._check_cut(event)
        return True

    def _check_cut(self, event: object) -> None:
        if not self.broken and self.cut(event):
            self.broken = True
            for side in (self.client, self.server):
                side.receive_data(b"")

    def run(self) -> None:
        """Move bytes both ways until nothing moves; close like real peers do."""
        for _ in range(10_000):
            if self.broken:
                break
            moved = self._deliver(
                self.server.data_to_send(), self.client.receive_data, self._drain_client
            )
            moved |= self._deliver(
                self.client.data_to_send(), self.server.receive_data, self._drain_server
            )
            if moved:
                continue
            # Nothing in flight. A server that closed its session closes the socket; a client
            # whose session is done closes its socket.
            if (
                self.server.state is Pop3State.CLOSED
                and self.client.state is not ClientState.CLOSED
            ):
                self.client.receive_data(b"")
                self._drain_client()
            elif (
                self.client.state is ClientState.DONE and self.server.state is not Pop3State.CLOSED
            ):
                self.server.receive_data(b"")
                self._drain_server()
            else:
                break
        # Whatever the ending, collect the closing events (once).
        self._drain_client()
        self._drain_server()

    def retrieved(self) -> list[MessageRetrieved]:
        return [e for e in self.client_events if isinstance(e, MessageRetrieved)]


def _closing(events: list[ClientEvent] | list[ServerEvent]) -> bool:
    return bool(events) and isinstance(events[-1], (ConnectionClosed, ConnectionLost))


def world(messages: list[bytes] | None = None) -> tuple[MemoryProvider, MemoryMaildrop]:
    drop = MemoryMaildrop([MSG1, MSG2] if messages is None else messages)
    return MemoryProvider({"steve": "secret"}, {"steve": drop}), drop


@pytest.mark.parametrize("chunk", [None, 1, 2, 7, 64])
def test_client_retrieves_and_deletes_everything_and_both_sides_agree(chunk: int | None) -> None:
    provider, drop = world()
    pair = ConnectionPair(POP3Client("steve", "secret"), POP3Server(provider), chunk=chunk)
    pair.run()
    assert [(m.number, m.uid, m.content) for m in pair.retrieved()] == [
        (1, "m1", MSG1),
        (2, "m2", MSG2),
    ]
    # The server saw the same retrievals and committed the same deletions.
    assert [(e.number, e.uid) for e in pair.server_events if isinstance(e, Retrieved)] == [
        (1, "m1"),
        (2, "m2"),
    ]
    assert Updated(("m1", "m2")) in pair.server_events
    assert pair.client_events[-2:] == [SessionDone(2, 2), ConnectionClosed("peer closed")]
    assert pair.server_events[-1] == ConnectionClosed("quit")
    assert len(drop) == 0
    assert not drop.locked


def test_every_chunking_gives_the_same_events_on_both_sides() -> None:
    def run(chunk: int | None) -> tuple[list[ClientEvent], list[ServerEvent]]:
        provider, _ = world()
        pair = ConnectionPair(POP3Client("steve", "secret"), POP3Server(provider), chunk=chunk)
        pair.run()
        return pair.client_events, pair.server_events

    whole = run(None)
    assert all(run(chunk) == whole for chunk in (1, 3, 5, 11))


def test_keep_on_server_then_fetch_only_what_is_new() -> None:
    provider, drop = world()
    first = ConnectionPair(
        POP3Client("steve", "secret", delete_after_retrieve=False), POP3Server(provider)
    )
    first.run()
    assert len(drop) == 2
    assert first.client_events[-2] == SessionDone(2, 0)
    seen = {m.uid for m in first.retrieved() if m.uid is not None}
    drop.add(b"Subject: new\r\n\r\nfresh\r\n")
    second = ConnectionPair(
        POP3Client("steve", "secret", delete_after_retrieve=False, known_uids=seen),
        POP3Server(provider),
    )
    second.run()
    assert [m.uid for m in second.retrieved()] == ["m3"]


@pytest.mark.parametrize(
    "content",
    [
        b".\r\n",  # a line that is just '.'
        b"..\r\n",
        b".starts with a dot\r\n",
        b"a\r\n.\r\n.\r\nb\r\n",
        b"\r\n.\r\n",
        b"x\r\n.",  # no final CRLF: the client gets one added
        b"",
        b"bare\n.\nlf\r\n",  # a bare LF ends no line
    ],
)
def test_byte_stuffing_round_trips(content: bytes) -> None:
    provider, _ = world([content])
    pair = ConnectionPair(POP3Client("steve", "secret"), POP3Server(provider), chunk=3)
    pair.run()
    expected = content if not content or content.endswith(b"\r\n") else content + b"\r\n"
    assert [m.content for m in pair.retrieved()] == [expected]


def test_apop_login_through_the_pair() -> None:
    provider, drop = world()
    server = POP3Server(provider, apop_timestamp="<4711.1718000000@usa.com>")
    pair = ConnectionPair(POP3Client("steve", "secret", use_apop=True), server)
    pair.run()
    assert AuthResult("steve", True, "APOP") in pair.server_events
    assert pair.client_events[-2] == SessionDone(2, 2)
    assert len(drop) == 0


def test_wrong_password_through_the_pair() -> None:
    provider, drop = world()
    pair = ConnectionPair(POP3Client("steve", "guess"), POP3Server(provider))
    pair.run()
    assert LoginFailed("-ERR [AUTH] invalid user name or password", "PASS") in pair.client_events
    assert AuthResult("steve", False, "USER/PASS") in pair.server_events
    assert not any(isinstance(e, MessageRetrieved) for e in pair.client_events)
    assert pair.server_events[-1] == ConnectionClosed("quit")  # the client said QUIT
    assert len(drop) == 2
    assert not drop.locked


def test_a_second_client_is_locked_out_while_the_first_holds_the_maildrop() -> None:
    provider, drop = world()
    holder = POP3Server(provider)
    holder.receive_data(b"USER steve\r\nPASS secret\r\n")
    while holder.next_event() is not NEED_DATA:
        pass
    assert drop.locked
    pair = ConnectionPair(POP3Client("steve", "secret"), POP3Server(provider))
    pair.run()
    assert LoginFailed("-ERR [IN-USE] maildrop already locked", "PASS") in pair.client_events
    holder.receive_data(b"QUIT\r\n")
    while not isinstance(holder.next_event(), ConnectionClosed):
        pass
    again = ConnectionPair(POP3Client("steve", "secret"), POP3Server(provider))
    again.run()
    assert again.client_events[-2] == SessionDone(2, 2)


def test_a_broken_connection_deletes_nothing_so_the_next_session_fetches_again() -> None:
    provider, drop = world()
    pair = ConnectionPair(
        POP3Client("steve", "secret"),
        POP3Server(provider),
        cut=lambda event: isinstance(event, Deleted) and event.number == 2,
    )
    pair.run()
    assert len(pair.retrieved()) == 2
    assert pair.client_events[-1] == ConnectionLost("DELE")
    assert pair.server_events[-1] == ConnectionClosed("peer closed")
    assert len(drop) == 2  # RFC 1939 section 6: no QUIT, no UPDATE
    assert not drop.locked
    # So POP3 without UIDL bookkeeping delivers these messages a second time.
    again = ConnectionPair(POP3Client("steve", "secret"), POP3Server(provider))
    again.run()
    assert [m.uid for m in again.retrieved()] == ["m1", "m2"]
    assert len(drop) == 0


def test_the_mail_layers_mailstore_serves_as_maildrop_provider() -> None:
    # mailsim.mail.mailbox.Mailbox is meant to be the simulation's Maildrop; this pins that the
    # two layers agree (content as an attribute, commit_deletions returning a count).
    from mailsim.mail.mailbox import MailStore

    store = MailStore(["steve"])
    store.deliver("steve", MSG1)
    store.deliver("steve", MSG2)

    class StoreProvider(MaildropProvider):
        def secret_for(self, user: str) -> str | None:
            return "secret" if user == "steve" else None

        def open_maildrop(self, user: str) -> Maildrop | str:
            return store.open_maildrop(user)

    pair = ConnectionPair(POP3Client("steve", "secret"), POP3Server(StoreProvider()), chunk=5)
    pair.run()
    assert [m.content for m in pair.retrieved()] == [MSG1, MSG2]
    assert pair.client_events[-2] == SessionDone(2, 2)
    assert len(store.mailbox("steve")) == 0
    assert not store.mailbox("steve").locked
