"""The pcap export: a simulated SMTP exchange written as trace.pcap opens cleanly in Wireshark.

The file is read back by a small libpcap/IPv4/TCP/UDP reader written here (independent of the
writer: its own checksum loop, its own parsing), and, where tshark is installed, by Wireshark's
own dissectors. CI installs tshark (see .ci/run); the tshark tests skip only when it is absent.
"""

from __future__ import annotations

import io
import ipaddress
import json
import shutil
import struct
import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from net_fixtures import Proc, india_usa, make_net, pair, run

from mailsim.mail.message import SIM_EPOCH
from mailsim.net import ConnectError, Connection, Network, Topology
from mailsim.trace.pcap import PCAP_EPOCH, pcap_bytes, write_pcap
from mailsim.trace.recorder import write_events

Record = dict[str, Any]

#: 2026-01-05 09:00:00 UTC as seconds since 1970: 20458 days * 86400 + 9 * 3600.
EPOCH_SECONDS = 1_767_603_600
MASK = 2**32
TSHARK = shutil.which("tshark")


#: CI installs tshark in .ci/run; anywhere else these tests skip when it is missing.
needs_tshark = pytest.mark.skipif(
    TSHARK is None,
    reason="tshark is not installed: `apt-get install tshark` (CI installs it in .ci/run)",
)


# --- an SMTP-like exchange over the simulated network ------------------------------------------

#: About 100 kB of message body: 1283 lines of 76 characters + CRLF = 100 074 octets.
BODY = b"".join(
    b"%05d " % i + b"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo" * 2 + b"\r\n" for i in range(1283)
)
CLIENT_LINES = [
    b"HELO india.com\r\n",
    b"MAIL FROM:<james@india.com>\r\n",
    b"RCPT TO:<steve@usa.com>\r\n",
    b"DATA\r\n",
]
REPLIES = [
    b"220 usa.com ESMTP mailsim\r\n",
    b"250 usa.com Hello india.com\r\n",
    b"250 2.1.0 Ok\r\n",
    b"250 2.1.5 Ok\r\n",
    b"354 End data with <CR><LF>.<CR><LF>\r\n",
    b"250 2.0.0 Ok: queued\r\n",
    b"221 2.0.0 Bye\r\n",
]
#: Every octet the client sends, in order, and every octet the server sends.
CLIENT_STREAM = b"".join(CLIENT_LINES) + BODY + b".\r\n" + b"QUIT\r\n"
SERVER_STREAM = b"".join(REPLIES)


def read_until(conn: Connection, buffer: bytearray, end: bytes) -> Proc:
    """Receive into ``buffer`` until it holds ``end``; return what came up to it and drop that."""
    while end not in buffer:
        data = yield conn.recv()
        assert data, f"EOF while waiting for {end!r}"
        buffer += data
    cut = buffer.index(end) + len(end)
    chunk = bytes(buffer[:cut])
    del buffer[:cut]
    return chunk


def smtp_server(net: Network, node: str) -> Proc:
    """Answers each command line (and the body's final dot) with the next reply, then closes."""
    conn = yield net.listen(node, 25).accept()
    buffer = bytearray()
    conn.send(REPLIES[0])
    for reply in REPLIES[1:5]:
        yield from read_until(conn, buffer, b"\r\n")
        conn.send(reply)
    yield from read_until(conn, buffer, b"\r\n.\r\n")
    conn.send(REPLIES[5])
    yield from read_until(conn, buffer, b"QUIT\r\n")
    conn.send(REPLIES[6])
    conn.close()


def smtp_client(net: Network, src: str, dst: str, wait_for_fin: bool = True) -> Proc:
    """Sends the dialogue; closes after the server's FIN, or (like Postfix) right after 221."""
    conn = yield net.connect(src, dst, 25)
    buffer = bytearray()
    yield from read_until(conn, buffer, b"\r\n")
    for line in CLIENT_LINES:
        conn.send(line)
        yield from read_until(conn, buffer, b"\r\n")
    conn.send(BODY + b".\r\n")
    yield from read_until(conn, buffer, b"\r\n")
    conn.send(b"QUIT\r\n")
    yield from read_until(conn, buffer, b"\r\n")
    if wait_for_fin:
        rest = yield conn.recv()
        assert rest == b""  # the server's FIN
    conn.close()


def refused_client(net: Network, src: str, dst: str, outcome: dict[str, str]) -> Proc:
    try:
        yield net.connect(src, dst, 26)  # nothing listens on port 26
    except ConnectError as error:
        outcome["reason"] = error.reason


def smtp_run(topology: Topology, seed: int = 5, wait_for_fin: bool = True) -> list[Record]:
    """The trace of one SMTP exchange (from the first node to the last) and a refused connect."""
    env, net, recorder = make_net(topology, seed=seed, segments=True)
    client, server = topology.nodes[0].name, topology.nodes[-1].name
    outcome: dict[str, str] = {}
    run(
        env,
        smtp_server(net, server),
        smtp_client(net, client, server, wait_for_fin),
        refused_client(net, client, server, outcome),
    )
    assert outcome == {"reason": "refused"}
    records: list[Record] = recorder.records
    return records


@pytest.fixture(scope="module")
def clean_trace() -> list[Record]:
    """India to the USA over two routers, no loss."""
    return smtp_run(india_usa())


@pytest.fixture(scope="module")
def lossy_trace() -> list[Record]:
    """The same exchange over one link losing 3% of segments: retransmissions in the capture."""
    records = smtp_run(pair(latency=0.05, bandwidth=2e6, loss=0.03), seed=7)
    assert any(r["type"] == "tcp.retransmit" for r in records)
    return records


# --- a small, independent libpcap reader --------------------------------------------------------


def ones_complement_sum(data: bytes) -> int:
    """RFC 1071's sum, the textbook way: add 16-bit words, fold the carries back in."""
    if len(data) % 2:
        data += b"\0"
    total = 0
    for i in range(0, len(data), 2):
        total += (data[i] << 8) | data[i + 1]
        total = (total & 0xFFFF) + (total >> 16)
    return total


#: TCP control bits (RFC 9293 3.1), in the order this reader spells them.
TCP_BITS = {"S": 0x02, "A": 0x10, "P": 0x08, "F": 0x01, "R": 0x04}


@dataclass
class Packet:
    seconds: int
    micros: int
    captured: int
    wire: int
    src: str
    dst: str
    ttl: int
    ident: int
    dont_fragment: bool
    proto: int
    ip_checksum_ok: bool
    sport: int
    dport: int
    l4_checksum_ok: bool
    payload: bytes
    # TCP only
    seq: int = 0
    ack: int = 0
    flags: str = ""
    window: int = 0
    options: bytes = b""

    @property
    def time(self) -> float:
        return self.seconds - EPOCH_SECONDS + self.micros / 1e6


def read_pcap(blob: bytes) -> tuple[dict[str, int], list[Packet]]:
    """The global header fields and the packets of a classic libpcap file of raw IPv4."""
    magic = struct.unpack("<I", blob[:4])[0]
    order = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    magic, major, minor, _zone, _sigfigs, snaplen, link = struct.unpack(
        order + "IHHiIII", blob[:24]
    )
    header = {"magic": magic, "version": major * 10 + minor, "snaplen": snaplen, "link": link}
    packets: list[Packet] = []
    at = 24
    while at < len(blob):
        seconds, micros, captured, wire = struct.unpack(order + "IIII", blob[at : at + 16])
        data = blob[at + 16 : at + 16 + captured]
        at += 16 + captured
        packets.append(parse_ipv4(seconds, micros, captured, wire, data))
    return header, packets


def parse_ipv4(seconds: int, micros: int, captured: int, wire: int, data: bytes) -> Packet:
    assert data[0] >> 4 == 4, "not IPv4"
    ihl = (data[0] & 0x0F) * 4
    total, ident, frag, ttl, proto = struct.unpack("!HHHBB", data[2:10])
    assert total == wire, "IPv4 total length is not the packet's length"
    src = str(ipaddress.IPv4Address(data[12:16]))
    dst = str(ipaddress.IPv4Address(data[16:20]))
    body = data[ihl:]
    pseudo = data[12:20] + struct.pack("!BBH", 0, proto, total - ihl)
    complete = captured == wire
    common = {
        "seconds": seconds,
        "micros": micros,
        "captured": captured,
        "wire": wire,
        "src": src,
        "dst": dst,
        "ttl": ttl,
        "ident": ident,
        "dont_fragment": bool(frag & 0x4000),
        "proto": proto,
        "ip_checksum_ok": ones_complement_sum(data[:ihl]) == 0xFFFF,
        # The checksum covers the pseudo-header and the whole segment (RFC 9293 3.1, RFC 768).
        "l4_checksum_ok": complete and ones_complement_sum(pseudo + body) == 0xFFFF,
    }
    if proto == 17:
        sport, dport, length, _ = struct.unpack("!HHHH", body[:8])
        assert length == len(body)
        return Packet(sport=sport, dport=dport, payload=body[8:], **common)
    assert proto == 6
    sport, dport, seq, ack, offset_flags, window = struct.unpack("!HHIIHH", body[:16])
    offset = (offset_flags >> 12) * 4
    flags = "".join(letter for letter, bit in TCP_BITS.items() if offset_flags & bit)
    return Packet(
        sport=sport,
        dport=dport,
        payload=body[offset:],
        seq=seq,
        ack=ack,
        flags=flags,
        window=window,
        options=body[20:offset],
        **common,
    )


def segments(records: list[Record]) -> list[Record]:
    return [r for r in records if r["type"] == "tcp.segment"]


def conversation(packets: list[Packet], port: int) -> list[Packet]:
    return [p for p in packets if port in (p.sport, p.dport)]


def stream_of(packets: list[Packet], src: str, isn: int) -> bytes:
    """The octets ``src`` sent, rebuilt from payloads by sequence number (retransmissions
    repeat octets already placed, and must repeat them exactly)."""
    placed: dict[int, int] = {}
    for packet in packets:
        if packet.src != src:
            continue
        offset = (packet.seq - isn - 1) % MASK
        for i, octet in enumerate(packet.payload):
            assert placed.setdefault(offset + i, octet) == octet, "a retransmission differs"
    assert sorted(placed) == list(range(len(placed))), "a hole in the stream"
    return bytes(placed[i] for i in range(len(placed)))


# --- the file ---------------------------------------------------------------------------------


def test_file_is_classic_libpcap_of_raw_ipv4_with_one_packet_per_segment(
    clean_trace: list[Record], tmp_path: Path
) -> None:
    path = tmp_path / "trace.pcap"
    count = write_pcap(clean_trace, path)
    blob = path.read_bytes()
    assert blob == pcap_bytes(clean_trace)
    header, packets = read_pcap(blob)
    assert header == {"magic": 0xA1B2C3D4, "version": 24, "snaplen": 65535, "link": 101}
    assert count == len(packets) == len(segments(clean_trace))
    assert all(p.captured == p.wire for p in packets)


def test_a_trace_read_back_from_events_jsonl_gives_the_same_file(
    clean_trace: list[Record],
) -> None:
    # mailsim plot DIR and notebooks rebuild everything from events.jsonl: so can the capture.
    out = io.StringIO()
    write_events(clean_trace, out)
    reread = [json.loads(line) for line in out.getvalue().splitlines()]
    assert pcap_bytes(reread) == pcap_bytes(clean_trace)


def test_packets_are_stamped_with_the_trace_time_after_the_simulation_epoch(
    clean_trace: list[Record],
) -> None:
    # The first SYN leaves at t = 0, i.e. 2026-01-05 09:00:00.000000 UTC.
    _, packets = read_pcap(pcap_bytes(clean_trace))
    assert PCAP_EPOCH == SIM_EPOCH
    assert (packets[0].seconds, packets[0].micros) == (EPOCH_SECONDS, 0)
    for packet, record in zip(packets, segments(clean_trace), strict=True):
        assert packet.time == pytest.approx(record["t"], abs=1e-6)
    stamps = [(p.seconds, p.micros) for p in packets]
    assert stamps == sorted(stamps)


def test_ipv4_headers_are_valid_with_ttl_64_df_and_an_identification_per_sender(
    clean_trace: list[Record],
) -> None:
    _, packets = read_pcap(pcap_bytes(clean_trace))
    addresses = {r["node"]: r["ip"] for r in clean_trace if r["type"] == "net.node"}
    assert {p.src for p in packets} == {addresses["india-mail"], addresses["usa-mail"]}
    assert all(p.ip_checksum_ok and p.ttl == 64 and p.dont_fragment for p in packets)
    for sender in (addresses["india-mail"], addresses["usa-mail"]):
        idents = [p.ident for p in packets if p.src == sender]
        assert idents == list(range(1, len(idents) + 1))


def test_tcp_checksums_verify_over_the_pseudo_header(clean_trace: list[Record]) -> None:
    _, packets = read_pcap(pcap_bytes(clean_trace))
    assert all(p.l4_checksum_ok for p in packets)
    # Flipping one payload octet must break exactly that packet's checksum (the check can fail).
    blob = bytearray(pcap_bytes(clean_trace))
    blob[-1] ^= 0x01
    _, tampered = read_pcap(bytes(blob))
    assert [p.l4_checksum_ok for p in tampered].count(False) == 1


def test_ports_come_from_tcp_open_and_syns_carry_mss_1460(clean_trace: list[Record]) -> None:
    _, packets = read_pcap(pcap_bytes(clean_trace))
    opens = {r["sport"]: r for r in clean_trace if r["type"] == "tcp.open"}
    assert set(opens) == {25, 26}
    for port, opened in opens.items():
        conv = conversation(packets, port)
        assert {(p.sport, p.dport) for p in conv} == {
            (opened["cport"], port),
            (port, opened["cport"]),
        }
    smtp = conversation(packets, 25)
    syns = [p for p in smtp if "S" in p.flags]
    assert [p.flags for p in syns] == ["S", "SA"]
    # MSS option: kind 2, length 4, 1500 - 40 = 1460 (RFC 9293 3.7.1).
    assert all(p.options == b"\x02\x04\x05\xb4" for p in syns)
    assert all(p.options == b"" for p in smtp if "S" not in p.flags)
    assert all(p.window == 65535 for p in packets)
    assert max(len(p.payload) for p in smtp) == 1460


def test_seq_and_ack_follow_the_handshake_and_the_fins(clean_trace: list[Record]) -> None:
    _, packets = read_pcap(pcap_bytes(clean_trace))
    smtp = conversation(packets, 25)
    client, server = smtp[0].src, smtp[0].dst
    syn, synack = smtp[0], smtp[1]
    assert (syn.flags, syn.ack) == ("S", 0)  # no ACK flag, so the field is zero
    assert synack.ack == (syn.seq + 1) % MASK
    ends = {client: (syn.seq + 1 + len(CLIENT_STREAM)) % MASK}
    ends[server] = (synack.seq + 1 + len(SERVER_STREAM)) % MASK
    # Each side's FIN comes right after its last octet, and the other side acknowledges it (+1).
    for sender, receiver in ((client, server), (server, client)):
        (fin,) = [p for p in smtp if p.src == sender and "F" in p.flags]
        assert fin.seq == ends[sender]
        assert any(p.src == receiver and p.ack == (ends[sender] + 1) % MASK for p in smtp)
    assert acks_ahead_or_seqs_behind(smtp) == []


def acks_ahead_or_seqs_behind(packets: list[Packet]) -> list[Packet]:
    """The packets Wireshark would flag as "ACKed unseen segment" (acknowledging a number the
    peer has not sent yet) or, for a pure ACK, as "keep-alive" (a sequence number below what
    its sender has already used: a pure ACK carries SND.NXT, RFC 9293 3.10.7.4)."""
    syn = packets[0]
    sent_up_to = {syn.src: syn.seq, syn.dst: packets[1].seq}
    wrong: list[Packet] = []
    checked = 0
    for packet in packets:
        peer = syn.dst if packet.src == syn.src else syn.src
        if "A" in packet.flags and "S" not in packet.flags:
            checked += 1
            if (sent_up_to[peer] - packet.ack) % MASK >= MASK // 2 or (
                packet.flags == "A" and not packet.payload and packet.seq != sent_up_to[packet.src]
            ):
                wrong.append(packet)
        used = len(packet.payload) + (1 if "S" in packet.flags or "F" in packet.flags else 0)
        nxt = (packet.seq + used) % MASK
        if (nxt - sent_up_to[packet.src]) % MASK < MASK // 2:
            sent_up_to[packet.src] = nxt
    assert checked > 20  # the check really ran
    return wrong


def test_ack_of_the_servers_fin_after_the_clients_own_fin_carries_the_fins_number() -> None:
    # The client closes right after reading 221 while the server's FIN is still on its way; the
    # ACK it then sends for that FIN must carry seq = its FIN's number + 1.
    records = smtp_run(india_usa(), wait_for_fin=False)
    _, packets = read_pcap(pcap_bytes(records))
    assert acks_ahead_or_seqs_behind(conversation(packets, 25)) == []


@pytest.mark.parametrize("trace", ["clean_trace", "lossy_trace"])
def test_payloads_concatenate_to_exactly_the_octets_sent_each_way(
    trace: str, request: pytest.FixtureRequest
) -> None:
    records = request.getfixturevalue(trace)
    _, packets = read_pcap(pcap_bytes(records))
    smtp = conversation(packets, 25)
    syn, synack = smtp[0], smtp[1]
    assert stream_of(smtp, syn.src, syn.seq) == CLIENT_STREAM
    assert stream_of(smtp, synack.src, synack.seq) == SERVER_STREAM
    assert all(p.l4_checksum_ok for p in packets)


def test_refused_connection_is_a_syn_answered_by_rst_ack(clean_trace: list[Record]) -> None:
    _, packets = read_pcap(pcap_bytes(clean_trace))
    refused = conversation(packets, 26)
    assert [p.flags for p in refused] == ["S", "AR"]
    syn, rst = refused
    # RFC 9293 3.10.7.1: a SYN to a closed port gets <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>.
    assert (rst.seq, rst.ack) == (0, (syn.seq + 1) % MASK)
    assert (rst.src, rst.dst) == (syn.dst, syn.src)


def test_mss_option_follows_the_link_mtu() -> None:
    # On 576-octet links a host advertises 576 - 40 = 536, and the simulator's segments fit it.
    records = smtp_run(pair_with_mtu(576))
    _, packets = read_pcap(pcap_bytes(records))
    smtp = conversation(packets, 25)
    assert [p.options for p in smtp if "S" in p.flags] == [b"\x02\x04\x02\x18"] * 2
    assert max(len(p.payload) for p in smtp) == 536


def pair_with_mtu(mtu: int) -> Topology:
    topology = Topology()
    topology.add_node("a", site="India")
    topology.add_node("b", site="USA")
    topology.add_link("a", "b", 0.01, 10e6, mtu=mtu)
    return topology


# --- what the trace may lack --------------------------------------------------------------------


def test_trace_without_segments_raises_and_names_the_setting_to_turn_on(tmp_path: Path) -> None:
    env, net, recorder = make_net(india_usa(), segments=False)
    run(env, smtp_server(net, "usa-mail"), smtp_client(net, "india-mail", "usa-mail"))
    path = tmp_path / "trace.pcap"
    with pytest.raises(ValueError, match=r"segments: true.*--pcap"):
        write_pcap(recorder.records, path)
    assert not path.exists()


def test_segments_without_payload_are_captured_as_headers_only(clean_trace: list[Record]) -> None:
    # A trace whose data segments lost their payloads still gives every packet, truncated
    # (captured 40 octets, on the wire 40 + length), as a capture with a small snaplen would.
    stripped = [{k: v for k, v in r.items() if k != "payload"} for r in clean_trace]
    _, packets = read_pcap(pcap_bytes(stripped))
    data = [p for p in packets if p.wire > 40 and not p.options]
    assert data and all(p.captured == 40 and p.payload == b"" for p in data)
    assert sum(p.wire - 40 for p in data) == len(CLIENT_STREAM) + len(SERVER_STREAM)
    assert all(p.ip_checksum_ok for p in packets)


def test_a_segment_of_an_unknown_connection_is_a_clear_error(clean_trace: list[Record]) -> None:
    without_opens = [r for r in clean_trace if r["type"] != "tcp.open"]
    with pytest.raises(ValueError, match=r"connection \d+ has no tcp.open"):
        pcap_bytes(without_opens)


# --- DNS -----------------------------------------------------------------------------------------


def dns_records() -> list[Record]:
    """Hand-made: a world, one SYN, and lookups carrying the proposed ``sent`` field."""

    def node(name: str, ip: str) -> Record:
        return {"t": 0.0, "type": "net.node", "node": name, "kind": "host", "site": "", "ip": ip}

    def query(
        t: float, name: str, qtype: str, rcode: str, answer: list[Any], **extra: Any
    ) -> Record:
        return {
            "t": t,
            "type": "dns.query",
            "node": "india-mail",
            "name": name,
            "qtype": qtype,
            "rcode": rcode,
            "answer": answer,
            "cached": False,
            "server": "dns",
            **extra,
        }

    return [
        node("india-mail", "192.0.2.10"),
        node("dns", "198.51.100.53"),
        node("usa-mail", "198.51.100.25"),
        # Two tries, 5 s apart (the first one lost); the answer reaches the resolver at 5.3 s.
        query(5.3, "usa.com", "MX", "NOERROR", [[10, "mail.usa.com"]], sent=[0.0, 5.0]),
        query(5.3, "usa.com", "MX", "NOERROR", [[10, "mail.usa.com"]], cached=True, sent=[]),
        query(5.6, "mail.usa.com", "A", "NOERROR", ["198.51.100.25"], sent=[5.31]),
        query(6.0, "nowhere.example", "MX", "NXDOMAIN", [], sent=[5.7]),
        query(7.0, "old.example", "A", "NOERROR", ["203.0.113.9"]),  # no 'sent': no packets
        {"t": 7.0, "type": "tcp.open", "conn": 1, "client": "india-mail", "server": "usa-mail",
         "cport": 49152, "sport": 25},
        {"t": 7.0, "type": "tcp.segment", "conn": 1, "src": "india-mail", "dst": "usa-mail",
         "flags": "S", "seq": 1000, "ack": 0, "length": 0},
    ]  # fmt: skip


def dns_fields(packet: Packet) -> tuple[int, int, int, int]:
    """DNS id, flags, question count and answer count (RFC 1035 4.1.1)."""
    dns_id, flags, questions, answers = struct.unpack("!HHHH", packet.payload[:8])
    return dns_id, flags, questions, answers


def test_dns_lookups_with_send_times_become_udp_queries_and_answers() -> None:
    _, packets = read_pcap(pcap_bytes(dns_records()))
    udp = [p for p in packets if p.proto == 17]
    # 2 tries + answer, 1 query + answer, 1 query + NXDOMAIN answer; nothing for the cached
    # lookup nor for the one without 'sent'.
    assert [(p.time, p.src, p.dport) for p in udp] == [
        (0.0, "192.0.2.10", 53),
        (5.0, "192.0.2.10", 53),
        (5.3, "198.51.100.53", 49152),
        (5.31, "192.0.2.10", 53),
        (5.6, "198.51.100.53", 49153),
        (5.7, "192.0.2.10", 53),
        (6.0, "198.51.100.53", 49154),
    ]
    assert all(p.l4_checksum_ok and p.ip_checksum_ok for p in udp)
    # The resolver's node numbers its datagrams in the order it sent them: 4 queries, 1 SYN.
    assert [p.ident for p in packets if p.src == "192.0.2.10"] == [1, 2, 3, 4, 5]
    first, retry, answer = udp[:3]
    # The retry repeats the query exactly (same id, same port); the answer echoes the id with
    # QR, RD and RA set (0x8180) and one MX record for 10 mail.usa.com.
    assert first.payload == retry.payload and first.sport == retry.sport == answer.dport
    assert dns_fields(first) == (1, 0x0100, 1, 0)
    assert dns_fields(answer) == (1, 0x8180, 1, 1)
    question = b"\x03usa\x03com\x00" + b"\x00\x0f\x00\x01"  # usa.com MX IN
    assert first.payload[12:] == question
    exchange = b"\x00\x0a" + b"\x04mail\x03usa\x03com\x00"
    assert answer.payload.endswith(struct.pack("!H", len(exchange)) + exchange)
    assert dns_fields(udp[6])[1] == 0x8183  # NXDOMAIN is rcode 3
    assert udp[4].payload.endswith(b"\x00\x04" + bytes([198, 51, 100, 25]))


# --- Wireshark itself ----------------------------------------------------------------------------


def tshark(path: Path, *args: str) -> str:
    assert TSHARK is not None
    done = subprocess.run(
        [TSHARK, "-n", "-r", str(path), "-o", "tcp.check_checksum:TRUE", "-o",
         "ip.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def clean_pcap(clean_trace: list[Record], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pcap") / "clean.pcap"
    write_pcap(clean_trace, path)
    return path


@needs_tshark
def test_tshark_verifies_every_checksum_and_finds_nothing_malformed(clean_pcap: Path) -> None:
    rows = tshark(
        clean_pcap, "-T", "fields", "-e", "ip.checksum.status", "-e", "tcp.checksum.status",
        "-e", "_ws.malformed", "-e", "tcp.flags.reset", "-e", "_ws.expert.severity",
    ).splitlines()  # fmt: skip
    assert len(rows) == len(read_pcap(clean_pcap.read_bytes())[1])
    warned = 0
    for row in rows:
        ip_ok, tcp_ok, malformed, reset, severities = (row.split("\t") + [""] * 5)[:5]
        # Checksum status 1 is "Good".
        assert (ip_ok, tcp_ok, malformed) == ("1", "1", ""), row
        # Expert severities: chat (2097152) notes SYNs and FINs; the only warning (6291456)
        # allowed is "Connection reset", on the refused connection's RST; no error (8388608).
        worst = max((int(s) for s in severities.split(",") if s), default=0)
        if worst >= 6291456:
            assert (reset, worst) in (("1", 6291456), ("True", 6291456)), row
            warned += 1
    assert warned == 1


@needs_tshark
def test_tshark_sees_no_tcp_analysis_problem_in_a_lossless_run(clean_pcap: Path) -> None:
    # No retransmission, out-of-order, lost segment, ACKed unseen, keep-alive, zero window...
    # anywhere, not even on the refused connection's RST.
    assert tshark(clean_pcap, "-Y", "tcp.analysis.flags") == ""


@needs_tshark
def test_tshark_flags_only_retransmissions_in_a_lossy_run(
    lossy_trace: list[Record], tmp_path: Path
) -> None:
    path = tmp_path / "lossy.pcap"
    write_pcap(lossy_trace, path)
    out = tshark(
        path, "-Y", "tcp.analysis.flags", "-T", "fields", "-e", "frame.number",
        "-e", "tcp.analysis.retransmission", "-e", "tcp.analysis.fast_retransmission",
        "-e", "tcp.analysis.spurious_retransmission", "-e", "tcp.analysis.duplicate_ack",
        "-e", "tcp.analysis.ack_lost_segment", "-e", "tcp.analysis.lost_segment",
        "-e", "tcp.analysis.out_of_order",
    )  # fmt: skip
    flagged = [row.split("\t") for row in out.splitlines()]
    retransmits = sum(1 for r in lossy_trace if r["type"] == "tcp.retransmit")
    # The capture is taken at the senders, so a lost segment is still in it: Wireshark sees
    # each resend as a retransmission and nothing as missing or out of order.
    kinds = Counter(
        name
        for row in flagged
        for name, value in zip(
            ["retransmission", "fast", "spurious", "dup_ack", "ack_lost", "lost", "ooo"],
            row[1:],
            strict=False,
        )
        if value
    )
    assert kinds["retransmission"] + kinds["spurious"] == retransmits
    assert kinds["ack_lost"] == kinds["lost"] == kinds["ooo"] == 0


@needs_tshark
def test_tshark_conversations_list_the_smtp_and_the_refused_connection(
    clean_trace: list[Record], clean_pcap: Path
) -> None:
    out = tshark(clean_pcap, "-q", "-z", "conv,tcp")
    # A row: "192.0.2.1:49152 <-> 198.51.100.2:25  84 3522 bytes  85 103 kB  169 107 kB  0.0 2.5",
    # frames and bytes each way, then in total (the 10th word), start and duration.
    rows = [line.split() for line in out.splitlines() if "<->" in line]
    _, packets = read_pcap(clean_pcap.read_bytes())
    opened = {r["sport"]: r for r in clean_trace if r["type"] == "tcp.open"}
    ends = {(row[0].rsplit(":")[1], row[2].rsplit(":")[1]): int(row[9]) for row in rows}
    assert ends == {
        (str(opened[port]["cport"]), str(port)): len(conversation(packets, port))
        for port in (25, 26)
    }
    assert ends[(str(opened[26]["cport"]), "26")] == 2  # SYN and RST


@needs_tshark
def test_tshark_decodes_the_smtp_dialogue_on_port_25(clean_pcap: Path) -> None:
    out = tshark(
        clean_pcap, "-Y", "smtp", "-T", "fields", "-e", "smtp.req.command",
        "-e", "smtp.response.code",
    )  # fmt: skip
    commands = [c for row in out.splitlines() for c in row.split("\t")[0].split(",") if c]
    codes = [c for row in out.splitlines() for c in row.split("\t")[1].split(",") if c]
    assert commands == ["HELO", "MAIL", "RCPT", "DATA", "QUIT"]
    assert codes == ["220", "250", "250", "250", "354", "250", "221"]


@needs_tshark
def test_tshark_decodes_dns_mx_queries_and_answers(tmp_path: Path) -> None:
    path = tmp_path / "dns.pcap"
    write_pcap(dns_records(), path)
    out = tshark(
        path, "-Y", "dns", "-T", "fields", "-e", "udp.checksum.status", "-e", "dns.flags.response",
        "-e", "dns.qry.name", "-e", "dns.mx.mail_exchange", "-e", "dns.a", "-e", "dns.flags.rcode",
        "-e", "_ws.malformed",
    )  # fmt: skip
    rows = [row.split("\t") for row in out.splitlines()]
    assert len(rows) == 7
    assert all(row[0] == "1" and row[6] == "" for row in rows)
    assert rows[2][1:6] == ["1", "usa.com", "mail.usa.com", "", "0"]
    assert rows[4][1:6] == ["1", "mail.usa.com", "", "198.51.100.25", "0"]
    assert rows[6][1:6] == ["1", "nowhere.example", "", "", "3"]


# --- a bundled story: DNS before the SYN ---------------------------------------------------------


@pytest.fixture(scope="module")
def story_pcap(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Record], Path]:
    """james-to-steve with segment tracing, written as a capture."""
    import mailsim
    from mailsim.scenario.result import run_scenario

    result = run_scenario(mailsim.load("james-to-steve"), segments=True, strict=True)
    path = tmp_path_factory.mktemp("story") / "trace.pcap"
    write_pcap(result.records, path)
    return result.records, path


def test_the_mx_lookup_of_step_3_is_in_the_capture_before_the_syn(
    story_pcap: tuple[list[Record], Path],
) -> None:
    # Tutorial step 3: india-mail finds Steve's server (usa.com MX) and then opens the TCP
    # connection to it. Before the fix the capture had no UDP packet at all.
    records, path = story_pcap
    _, packets = read_pcap(path.read_bytes())
    addresses = {r["node"]: r["ip"] for r in records if r["type"] == "net.node"}
    india, usa, dns = addresses["india-mail"], addresses["usa-mail"], addresses["dns"]
    query = next(p for p in packets if p.proto == 17 and p.src == india and p.dport == 53)
    answer = next(p for p in packets if p.proto == 17 and p.src == dns and p.sport == 53)
    syn = next(p for p in packets if p.proto == 6 and p.flags == "S" and p.dst == usa)
    assert query.time < answer.time < syn.time
    assert query.payload[12:] == b"\x03usa\x03com\x00\x00\x0f\x00\x01"  # usa.com MX IN
    # One answer (10 usa-mail.usa.com) and the glue A record in the additional section.
    assert struct.unpack("!HHHH", answer.payload[4:12]) == (1, 1, 0, 1)
    assert b"\x08usa-mail\x03usa\x03com\x00" in answer.payload
    assert answer.payload.endswith(ipaddress.IPv4Address(usa).packed)
    assert all(p.l4_checksum_ok for p in packets if p.proto == 17)


@needs_tshark
def test_tshark_dissects_the_storys_dns_without_warnings(
    story_pcap: tuple[list[Record], Path],
) -> None:
    _, path = story_pcap
    out = tshark(
        path, "-Y", "dns", "-T", "fields", "-e", "dns.flags.response", "-e", "dns.qry.name",
        "-e", "dns.mx.mail_exchange", "-e", "dns.count.add_rr", "-e", "dns.a",
        "-e", "_ws.malformed", "-e", "_ws.expert.severity", "-e", "udp.checksum.status",
    )  # fmt: skip
    rows = [(row.split("\t") + [""] * 8)[:8] for row in out.splitlines()]
    assert rows and rows[0][:2] == ["0", "usa.com"]
    answers = [row for row in rows if row[0] == "1" and row[1] == "usa.com"]
    assert answers[0][2:5] == ["usa-mail.usa.com", "1", "198.51.100.2"]
    for row in rows:
        worst = max((int(s) for s in row[6].split(",") if s), default=0)
        assert row[5] == "" and worst < 6291456 and row[7] == "1", row  # no warning, no error


def test_a_protocol_filter_keeps_only_that_applications_packets(
    story_pcap: tuple[list[Record], Path], tmp_path: Path
) -> None:
    records, _ = story_pcap
    _, everything = read_pcap(pcap_bytes(records))
    _, dns = read_pcap(pcap_bytes(records, protocols=["dns"]))
    assert dns and all(p.proto == 17 and 53 in (p.sport, p.dport) for p in dns)
    _, pop3 = read_pcap(pcap_bytes(records, protocols=["pop3"]))
    assert pop3 and all(p.proto == 6 and 110 in (p.sport, p.dport) for p in pop3)
    _, smtp = read_pcap(pcap_bytes(records, protocols=["smtp"]))
    assert smtp and all({p.sport, p.dport} & {25, 587} for p in smtp)
    # The three together are the whole capture; a comma list is the same as a list.
    assert len(dns) + len(pop3) + len(smtp) == len(everything)
    assert pcap_bytes(records, protocols=["smtp,dns"]) == pcap_bytes(
        records, protocols=["smtp", "dns"]
    )
    count = write_pcap(records, tmp_path / "dns.pcap", protocols=["DNS"])
    assert count == len(dns)
    with pytest.raises(ValueError, match=r"'http' is not a protocol.*smtp, pop3, dns"):
        pcap_bytes(records, protocols=["http"])


def test_per_node_files_are_each_hosts_own_capture(
    story_pcap: tuple[list[Record], Path], tmp_path: Path
) -> None:
    from mailsim.trace.pcap import write_pcap_per_node

    records, path = story_pcap
    _, everything = read_pcap(path.read_bytes())
    counts = write_pcap_per_node(records, tmp_path / "pcap")
    addresses = {r["node"]: r["ip"] for r in records if r["type"] == "net.node"}
    # Routers forward but send nothing of their own: no file for india-gw and usa-gw.
    assert set(counts) == {"james-pc", "india-mail", "usa-mail", "steve-pc", "dns"}
    for node, count in counts.items():
        _, packets = read_pcap((tmp_path / "pcap" / f"{node}.pcap").read_bytes())
        ip = addresses[node]
        # The same packets (nothing is lost in this story), byte for byte...
        mine = [p for p in everything if ip in (p.src, p.dst)]
        assert len(packets) == count == len(mine)
        key = lambda p: (p.src, p.ident)  # noqa: E731
        assert sorted((key(p), p.payload) for p in packets) == sorted(
            (key(p), p.payload) for p in mine
        )
        # ...what it sent at the same times, what it received later, on the way.
        sent_at = {key(p): p.time for p in mine}
        for packet in packets:
            if packet.src == ip:
                assert packet.time == sent_at[key(packet)]
            else:
                assert packet.time > sent_at[key(packet)]
        stamps = [p.time for p in packets]
        assert stamps == sorted(stamps)
    # On steve-pc the POP3 handshake looks as on a real host: SYN-ACK one round trip
    # (2 * 3.004 ms over its 3 ms, 100 Mbit/s link) after the SYN.
    _, steve = read_pcap((tmp_path / "pcap" / "steve-pc.pcap").read_bytes())
    syn = next(p for p in steve if p.flags == "S")
    synack = next(p for p in steve if p.flags == "SA")
    assert synack.time - syn.time == pytest.approx(2 * (0.003 + 40 * 8 / 100e6), abs=2e-6)
    assert (
        pcap_bytes(records, node="steve-pc") == (tmp_path / "pcap" / "steve-pc.pcap").read_bytes()
    )


def test_a_lost_segment_is_only_in_its_senders_own_capture(tmp_path: Path) -> None:
    from mailsim.trace.pcap import write_pcap_per_node

    records = lossy_smtp_records(latency=0.05)
    counts = write_pcap_per_node(records, tmp_path)
    lost = counts["a"] - counts["b"]
    assert lost == 1  # one packet sent, never arrived
    _, sender = read_pcap((tmp_path / "a.pcap").read_bytes())
    _, receiver = read_pcap((tmp_path / "b.pcap").read_bytes())
    assert {(p.src, p.ident) for p in receiver} < {(p.src, p.ident) for p in sender}


def lossy_smtp_records(latency: float) -> list[Record]:
    """The SMTP exchange over one link of ``latency`` whose 16th packet (the 5th segment of the
    message body: SYN, SYN-ACK and nine command and reply lines come first) is lost."""
    env, net, recorder = make_net(pair(latency=latency, loss=0.5), seed=1, segments=True)
    drawn = [0]

    class LoseOne:
        def random(self) -> float:
            drawn[0] += 1
            return 0.0 if drawn[0] == 16 else 1.0

    for direction in net._directions.values():
        direction.loss_rng = LoseOne()  # type: ignore[assignment]
    run(env, smtp_server(net, "b"), smtp_client(net, "a", "b"))
    records: list[Record] = recorder.records
    return records


def fast_retransmit_flags(path: Path) -> list[list[str]]:
    out = tshark(
        path, "-Y", "tcp.analysis.flags", "-T", "fields", "-e", "tcp.analysis.duplicate_ack",
        "-e", "tcp.analysis.fast_retransmission", "-e", "tcp.analysis.lost_segment",
        "-e", "tcp.analysis.ack_lost_segment", "-e", "tcp.analysis.out_of_order",
    )  # fmt: skip
    return [(row.split("\t") + [""] * 5)[:5] for row in out.splitlines()]


@needs_tshark
def test_tshark_shows_duplicate_acks_and_a_fast_retransmission(tmp_path: Path) -> None:
    # One lost body segment on a 5 ms link: the receiver's duplicate ACKs and the sender's
    # resend at the third show as in a real capture; before fast retransmit, nothing happened
    # until the RTO.
    records = lossy_smtp_records(latency=0.005)
    path = tmp_path / "fast.pcap"
    write_pcap(records, path)
    rows = fast_retransmit_flags(path)
    assert sum(1 for row in rows if row[0]) >= 3  # [TCP Dup ACK]
    assert sum(1 for row in rows if row[1]) == 1  # [TCP Fast Retransmission]
    assert not any(row[2] or row[3] or row[4] for row in rows)
    _, packets = read_pcap(path.read_bytes())
    smtp = conversation(packets, 25)
    assert stream_of(smtp, smtp[0].src, smtp[0].seq) == CLIENT_STREAM


@needs_tshark
def test_the_senders_own_capture_shows_the_fast_retransmission_on_a_long_path(
    tmp_path: Path,
) -> None:
    # 50 ms one way: in trace.pcap (stamped at each sender) the resend comes 50 ms after the
    # receiver sent its third duplicate ACK, past Wireshark's 20 ms, so it reads "Retransmission";
    # on the sender's own host the duplicate ACK arrives and the resend follows at once.
    records = lossy_smtp_records(latency=0.05)
    merged = tmp_path / "trace.pcap"
    write_pcap(records, merged)
    assert sum(1 for row in fast_retransmit_flags(merged) if row[1]) == 0
    own = tmp_path / "a.pcap"
    write_pcap(records, own, node="a")
    rows = fast_retransmit_flags(own)
    assert sum(1 for row in rows if row[0]) >= 3 and sum(1 for row in rows if row[1]) == 1
    # The receiver's own capture shows the hole as real ones do: the next segment after a
    # segment not captured, and the resend arriving out of order.
    theirs = tmp_path / "b.pcap"
    write_pcap(records, theirs, node="b")
    rows = fast_retransmit_flags(theirs)
    assert sum(1 for row in rows if row[2]) == 1  # [TCP Previous segment not captured]
    # Its ACKs repeat the hole's number until the resend arrives: none acknowledges a segment
    # it has not received yet (the duplicate ACKs once claimed the whole window too early).
    assert not any(row[3] for row in rows)  # no [TCP ACKed unseen segment]


@needs_tshark
def test_tshark_finds_no_warning_in_the_whole_story_and_decodes_james_login(
    story_pcap: tuple[list[Record], Path],
) -> None:
    # With SMTP's "decode base64 AUTH parameters" preference on (off by default, when
    # Wireshark warns on every AUTH line), the story's capture has no warning, no error and
    # nothing malformed, and shows the credentials James's user agent sent without TLS.
    _, path = story_pcap
    out = tshark(path, "-o", "smtp.decryption:TRUE", "-q", "-z", "expert,warn")
    assert "Warns" not in out and "Errors" not in out, out
    assert tshark(path, "-Y", "_ws.malformed") == ""
    login = tshark(
        path, "-o", "smtp.decryption:TRUE", "-Y", "smtp.auth.username", "-T", "fields",
        "-e", "smtp.auth.username", "-e", "smtp.auth.password",
    )  # fmt: skip
    assert login.split() == ["james", "grammar"]
