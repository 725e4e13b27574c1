"""Property tests: whatever the bytes and however they are split, the SMTP machines behave."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st
from smtp_pair import ConnectionPair

from mailsim.protocol.smtp import (
    NEED_DATA,
    PAUSED,
    Accept,
    ClientEvent,
    Closed,
    ConnectionFailed,
    Envelope,
    ProtocolError,
    RcptParams,
    Reply,
    ServerEvent,
    ServerLimits,
    ServerPolicy,
    Session,
    SMTPClient,
    SMTPServer,
    TransactionResult,
)

FUZZ = settings(max_examples=200, deadline=None)
REPLY_LINE = re.compile(rb"[2-5][0-9][0-9][ -][\x20-\x7e]*")

SERVER_PIECES = st.sampled_from(
    [
        b"EHLO c.example\r\n",
        b"HELO c.example\r\n",
        b"ehlo\r\n",
        b"MAIL FROM:<a@b.example>\r\n",
        b"MAIL FROM:<> SIZE=20 BODY=8BITMIME\r\n",
        b"MAIL FROM:<a@b.example> SIZE=999\r\n",
        b"MAIL FROM:<a@b.example> FOO=1\r\n",
        b"RCPT TO:<x@y.example>\r\n",
        b"RCPT TO:<postmaster> NOTIFY=NEVER\r\n",
        b"RCPT TO:<nobody@y.example>\r\n",
        b"DATA\r\n",
        b".\r\n",
        b"..dot\r\n",
        b"text line\r\n",
        b"\r\n",
        b"\n.\n",
        b"\r.\r",
        b"RSET\r\n",
        b"NOOP\r\n",
        b"QUIT\r\n",
        b"AUTH PLAIN\r\n",
        b"AUTH LOGIN\r\n",
        b"amFtZXM=\r\n",
        b"c2VjcmV0\r\n",
        b"*\r\n",
        b"AUTH PLAIN AGphbWVzAHNlY3JldA==\r\n",
        b"VRFY x\r\n",
        b"HELP\r\n",
        b"x" * 600,
        b"y" * 1100 + b"\r\n",
        b"\r",
        b"\n",
        b"\xff\xfe\x00",
    ]
)
STREAMS = st.lists(st.one_of(SERVER_PIECES, st.binary(max_size=30)), max_size=30).map(b"".join)


class FuzzPolicy(ServerPolicy):
    def check_recipient(self, session: Session, address: str, params: RcptParams) -> Reply | None:
        return Reply(550, ("5.1.1 No such user",)) if address.startswith("nobody") else None


def make_server() -> SMTPServer:
    return SMTPServer(
        "mx.example",
        policy=FuzzPolicy(auth_offered=True, users={"james": "secret"}),
        limits=ServerLimits(max_message_size=64, max_recipients=3, max_errors=8),
    )


def drive_server(chunks: list[bytes]) -> tuple[list[ServerEvent], bytes]:
    """Feed the chunks then EOF, accepting every message; the events and every byte written."""
    server = make_server()
    out = server.data_to_send()
    events: list[ServerEvent] = []
    for chunk in [*chunks, b""]:
        server.receive_data(chunk)
        while (event := server.next_event()) is not NEED_DATA:
            if event is PAUSED:
                out += server.send(Accept("Q1"))
            else:
                events.append(event)
        out += server.data_to_send()
    return events, out


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    return [p for p in pieces if p]  # b"" would mean "the peer closed"


@FUZZ
@given(data=STREAMS, cuts=st.lists(st.integers(0, 10_000), max_size=12))
def test_server_never_raises_and_chunking_changes_nothing(data: bytes, cuts: list[int]) -> None:
    whole = drive_server([data])
    assert drive_server(split(data, cuts)) == whole
    assert drive_server([data[i : i + 1] for i in range(len(data))]) == whole


@FUZZ
@given(data=STREAMS)
def test_every_server_output_line_is_a_valid_reply_line(data: bytes) -> None:
    _, out = drive_server([data])
    assert out.endswith(b"\r\n")
    for line in out[:-2].split(b"\r\n"):
        # RFC 5321 4.2 and 4.5.3.1.5: code, separator, printable text; at most 512 with CRLF.
        assert REPLY_LINE.fullmatch(line), line
        assert len(line) + 2 <= 512


REPLY_PIECES = st.sampled_from(
    [
        b"220 mx ESMTP\r\n",
        b"250-mx\r\n",
        b"250-PIPELINING\r\n",
        b"250-8BITMIME\r\n",
        b"250-SIZE 100\r\n",
        b"250-AUTH PLAIN LOGIN\r\n",
        b"250 ok\r\n",
        b"251 forwarded\r\n",
        b"235 ok\r\n",
        b"334 VXNlcm5hbWU6\r\n",
        b"354 go\r\n",
        b"421 closing\r\n",
        b"450 busy\r\n",
        b"500 what\r\n",
        b"502 no\r\n",
        b"550 no\r\n",
        b"221 bye\r\n",
        b"hello\r\n",
        b"\r\n",
    ]
)


def envelopes(count: int) -> list[Envelope]:
    return [
        Envelope("a@usa.example", tuple(f"r{i}{j}@i.example" for j in range(i % 3 + 1)), b"x\n")
        for i in range(count)
    ]


@FUZZ
@given(
    data=st.lists(st.one_of(REPLY_PIECES, st.binary(max_size=20)), max_size=25).map(b"".join),
    cuts=st.lists(st.integers(0, 10_000), max_size=8),
    count=st.integers(0, 3),
    auth=st.booleans(),
)
def test_client_raises_only_protocol_errors_and_settles_every_envelope(
    data: bytes, cuts: list[int], count: int, auth: bool
) -> None:
    client = SMTPClient("c.example", auth=("james", "secret") if auth else None)
    queued = envelopes(count)
    for envelope in queued:
        client.send_message(envelope)
    client.quit()
    events: list[ClientEvent] = []
    for chunk in [*split(data, cuts), b""]:
        client.receive_data(chunk)
        while True:
            try:
                event = client.next_event()
            except ProtocolError:
                continue
            if event is NEED_DATA:
                break
            events.append(event)
        client.data_to_send()
    # After EOF the session is over and every envelope got exactly one answer.
    assert events[-1] == Closed()
    answered = [e.envelope for e in events if isinstance(e, TransactionResult)]
    for event in events:
        if isinstance(event, ConnectionFailed):
            answered += event.unsent
    assert sorted(answered, key=repr) == sorted(queued, key=repr)


ADDRESSES = st.sampled_from(["steve@i.example", "ann@i.example", "nobody@i.example", "postmaster"])


@FUZZ
@given(
    messages=st.lists(
        st.tuples(st.lists(ADDRESSES, min_size=1, max_size=4), st.binary(max_size=200)),
        min_size=1,
        max_size=4,
    ),
    pipelining=st.booleans(),
    max_recipients=st.integers(1, 4),
    max_size=st.integers(50, 400),
)
def test_client_and_server_agree(
    messages: list[tuple[list[str], bytes]], pipelining: bool, max_recipients: int, max_size: int
) -> None:
    client = SMTPClient("c.example", pipelining=pipelining)
    queued = [Envelope("a@usa.example", tuple(rcpts), content) for rcpts, content in messages]
    for envelope in queued:
        client.send_message(envelope)
    client.quit()
    server = SMTPServer(
        "mx",
        policy=FuzzPolicy(),
        limits=ServerLimits(max_recipients=max_recipients, max_message_size=max_size),
    )
    pair = ConnectionPair(client, server)
    pair.pump()
    assert pair.client_events[-1] == Closed()
    assert [r.envelope for r in pair.results] == queued
    pair.check_agreement()
    for result in pair.results:
        for outcome in result.outcomes:
            if outcome.address.startswith("nobody"):
                assert outcome.status != "accepted"  # 550, or 452 past max_recipients
