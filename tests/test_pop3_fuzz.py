"""Hypothesis against the POP3 machines: any bytes, any chunking, never a crash, same output."""

from __future__ import annotations

import itertools
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from mailsim.protocol._common import ProtocolError
from mailsim.protocol.pop3 import (
    NEED_DATA,
    PAUSED,
    RESPONSE_LINE_LIMIT,
    ClientEvent,
    ConnectionClosed,
    ConnectionLost,
    MemoryMaildrop,
    MemoryProvider,
    POP3Client,
    POP3Server,
    ServerEvent,
    Updated,
    apop_digest,
)

TIMESTAMP = "<77.1718000000@usa.com>"
# Message lines chosen so that none starts with +OK or -ERR: in the server's output such a line
# can then only be a status line, which lets the test parse replies without knowing commands.
MESSAGES = [
    b"Subject: a\r\n\r\n.dot\r\n.\r\n..\r\nplain\r\n",
    b"Subject: b\r\n\r\nno final line end",
]
CONTENT_LINES = {line for m in MESSAGES for line in (m + b"\r\n").split(b"\r\n")}

COMMANDS = [
    b"USER steve",
    b"PASS secret",
    b"PASS wrong",
    f"APOP steve {apop_digest(TIMESTAMP, 'secret')}".encode(),
    b"APOP steve 0123",
    b"STAT",
    b"LIST",
    b"LIST 1",
    b"LIST 2",
    b"LIST 3",
    b"RETR 1",
    b"RETR 2",
    b"RETR 0",
    b"DELE 1",
    b"DELE 2",
    b"RSET",
    b"NOOP",
    b"TOP 1 0",
    b"TOP 2 1",
    b"TOP 1 99999999999999999999",
    b"UIDL",
    b"UIDL 2",
    b"CAPA",
    b"QUIT",
    b"",
    b"user STEVE",
]

NOISE = st.one_of(
    st.binary(max_size=40),
    st.sampled_from([b"\r", b"\n", b"\r\n", b".", b" ", b"\x00", b"\xff", b"A" * 300]),
)


@st.composite
def mutated(draw: st.DrawFn, stream: st.SearchStrategy[bytes]) -> bytes:
    """A mostly well-formed byte stream with noise inserted at a few places, maybe cut short.

    Pure random bytes rarely get past the first line; this keeps most sessions going deep into
    TRANSACTION, RETR and QUIT while still feeding the machines garbage at every stage.
    """
    data = draw(stream)
    for _ in range(draw(st.sampled_from([0, 0, 1, 1, 2, 3]))):
        at = draw(st.integers(min_value=0, max_value=len(data)))
        data = data[:at] + draw(NOISE) + data[at:]
    if draw(st.sampled_from([False, False, False, True])):
        data = data[: draw(st.integers(min_value=0, max_value=len(data)))]
    return data


# Half the sessions start with a login and half end with QUIT, so TRANSACTION and UPDATE get
# their share; in between, mostly mail commands.
command_lines = st.tuples(
    st.sampled_from([[], [b"USER steve", b"PASS secret"]]),
    st.lists(st.sampled_from(COMMANDS[5:] * 2 + COMMANDS[:5]), min_size=2, max_size=20),
    st.sampled_from([[], [b"QUIT"]]),
).map(lambda t: b"".join(c + b"\r\n" for c in t[0] + t[1] + t[2]))
session_bytes = mutated(command_lines)


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds) if b > a]


def run_server(chunks: list[bytes], close: bool) -> tuple[bytes, list[ServerEvent], MemoryMaildrop]:
    drop = MemoryMaildrop(MESSAGES)
    server = POP3Server(
        MemoryProvider({"steve": "secret"}, {"steve": drop}),
        apop_timestamp=TIMESTAMP,
        max_errors=8,
    )
    out = bytearray(server.data_to_send())
    events: list[ServerEvent] = []
    for chunk in [*chunks, b""] if close else chunks:
        server.receive_data(chunk)
        while not (events and isinstance(events[-1], ConnectionClosed)):
            event = server.next_event()
            if event is NEED_DATA:
                break
            events.append(event)
        out += server.data_to_send()
    return bytes(out), events, drop


def check_server_output(out: bytes) -> None:
    """Every line is a status line of at most 512 octets, or content inside a +OK block."""
    assert out == b"" or out.endswith(b"\r\n")
    lines = out.split(b"\r\n")[:-1]
    open_ok = False  # the last status was +OK: content or the terminating '.' may follow
    in_block = False  # content lines have followed that +OK: a '.' must close them
    for line in lines:
        if line.startswith((b"+OK", b"-ERR")):
            assert not in_block, f"status line {line!r} inside an unterminated block"
            assert len(line) + 2 <= RESPONSE_LINE_LIMIT
            open_ok, in_block = line.startswith(b"+OK"), False
        elif line == b".":
            assert open_ok, "terminator without a +OK before it"
            open_ok = in_block = False
        else:
            assert open_ok, f"content line {line!r} outside a multi-line reply"
            unstuffed = line[1:] if line.startswith(b".") else line
            assert (
                unstuffed in CONTENT_LINES  # RETR, TOP
                or re.fullmatch(rb"[0-9]+ [!-~]+", line)  # LIST, UIDL
                or re.fullmatch(rb"[A-Z-]+", line)  # CAPA
            ), f"unexpected content line {line!r}"
            in_block = True
    assert not in_block


@settings(max_examples=200, deadline=None)
@given(
    data=session_bytes, cuts=st.lists(st.integers(min_value=0), max_size=12), close=st.booleans()
)
def test_server_never_raises_and_chunking_does_not_matter(
    data: bytes, cuts: list[int], close: bool
) -> None:
    # The server answers anything a client sends with -ERR: it raises nothing at all (stricter
    # than "only ProtocolError").
    whole = run_server([data] if data else [], close)
    split = run_server(split_at(data, cuts), close)
    assert split[0] == whole[0]
    assert split[1] == whole[1]
    check_server_output(whole[0])
    _, events, drop = whole
    if close or (events and isinstance(events[-1], ConnectionClosed)):
        assert not drop.locked
    # Deletions happen only in UPDATE, i.e. after a QUIT in TRANSACTION.
    updates = [e for e in events if isinstance(e, Updated)]
    assert len(drop) == len(MESSAGES) - sum(len(u.deleted) for u in updates)


BODY_LINES = [b"Subject: x", b"", b".", b"..", b".dot", b"plain", b"+OK in a body", b"-ERR too"]


@st.composite
def server_dialogue(draw: st.DrawFn) -> bytes:
    """What a well-behaved server says to our automatic client (UIDL, RETR, DELE, QUIT)."""
    greeting = draw(st.sampled_from([b"+OK ready\r\n", f"+OK ready {TIMESTAMP}\r\n".encode()]))
    count = draw(st.integers(min_value=0, max_value=3))
    out = greeting + b"+OK\r\n+OK\r\n" + f"+OK {count} {count * 20}\r\n".encode()
    if count:
        out += b"+OK\r\n" + b"".join(f"{n} m{n}\r\n".encode() for n in range(1, count + 1))
        out += b".\r\n"
        for _ in range(count):
            lines = draw(st.lists(st.sampled_from(BODY_LINES), max_size=5))
            stuffed = [b"." + line if line.startswith(b".") else line for line in lines]
            out += b"+OK\r\n" + b"".join(line + b"\r\n" for line in stuffed) + b".\r\n"
            out += b"+OK\r\n"  # DELE
    return out + b"+OK bye\r\n"


client_bytes = mutated(server_dialogue())


def run_client(
    chunks: list[bytes], close: bool, use_apop: bool
) -> tuple[bytes, list[ClientEvent], str | None]:
    client = POP3Client("steve", "secret", use_apop=use_apop, delete_after_retrieve=True)
    out = bytearray()
    events: list[ClientEvent] = []
    try:
        for chunk in [*chunks, b""] if close else chunks:
            client.receive_data(chunk)
            while not (events and isinstance(events[-1], (ConnectionClosed, ConnectionLost))):
                event = client.next_event()
                if event is NEED_DATA or event is PAUSED:
                    break
                events.append(event)
            out += client.data_to_send()
    except ProtocolError as error:
        return bytes(out), events, type(error).__name__
    return bytes(out), events, None


@settings(max_examples=200, deadline=None)
@given(
    data=client_bytes,
    cuts=st.lists(st.integers(min_value=0), max_size=12),
    close=st.booleans(),
    use_apop=st.booleans(),
)
def test_client_raises_only_protocol_errors_and_chunking_does_not_matter(
    data: bytes, cuts: list[int], close: bool, use_apop: bool
) -> None:
    whole = run_client([data] if data else [], close, use_apop)
    split = run_client(split_at(data, cuts), close, use_apop)
    if whole[2] is None:
        assert split == whole
    else:
        # An error is found at the same line however the bytes came; what was sent and seen
        # before it is the same.
        assert split[2] == whole[2]
        assert split[1] == whole[1]
    for line in whole[0].split(b"\r\n")[:-1]:
        assert line.split(b" ")[0] in {
            b"USER",
            b"PASS",
            b"APOP",
            b"STAT",
            b"UIDL",
            b"LIST",
            b"RETR",
            b"DELE",
            b"QUIT",
        }
