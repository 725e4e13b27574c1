"""Wireshark captures of a simulated run: ``trace.pcap`` built from the trace's segment records.

Theory of operation
-------------------
The simulated network writes one ``tcp.segment`` record per TCP segment when segment tracing is
on (``trace: {segments: true}`` or ``mailsim run --pcap``). This module turns each of them into
one packet of a classic libpcap file (microsecond timestamps, link type RAW, so every packet
starts with its IPv4 header) that Wireshark and tshark open like any capture:

* time: the record's ``t`` (simulated seconds) after :data:`PCAP_EPOCH`, the instant at which
  the simulated clock starts (the same as the ``Date:`` headers of simulated messages);
* IPv4 (RFC 791): addresses from the ``net.node`` records, TTL 64, Don't Fragment (RFC 1191
  path MTU discovery, as every modern stack), an identification counter per sending node, and a
  correct header checksum;
* TCP (RFC 9293 3.1): the connection's ports from its ``tcp.open`` record, ``seq``, ``ack`` and
  the flag letters of the record, the window 65535 (the trace does not record the receive
  window, and the simulator's fixed 64 KiB window never closes), the MSS option on SYN and
  SYN-ACK (each end advertising its link MTU - 40, RFC 9293 3.7.1), the payload octets, and a
  correct checksum over the pseudo-header;
* DNS (RFC 1035) over UDP port 53, for ``dns.query`` records that say when their queries were
  sent (``sent``, one time per try, written by :mod:`mailsim.net.dns`): each try's query at its
  time, and the answer when the server sent it (``answered``), with the MX exchanges' A records
  (``additional``) in the additional section. Answers from the resolver's cache sent nothing and
  give no packets; a lookup that timed out gives its queries only.

The capture point of ``trace.pcap`` is every sender at once: a packet appears when its sender
puts it on the wire (so the gap between a segment and its ACK is one way, and a segment lost on
the way is still there); retransmissions appear as the sender repeated them. The capture on one
node (:func:`write_pcap_per_node`, ``node=``) is that host's own view instead: what it sent,
when it sent it, and what reached it, when it arrived.

Either can be cut down to some applications (``protocols``: smtp, pop3, dns).
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from mailsim.trace.clock import SIM_EPOCH

Record = dict[str, Any]

#: Simulated time 0 on the capture's clock: 2026-01-05 09:00:00 UTC, the run's epoch
#: (:data:`mailsim.trace.clock.SIM_EPOCH`), also that of the transcript and the Date: headers.
PCAP_EPOCH = SIM_EPOCH

#: libpcap file magic for microsecond timestamps, written big-endian ("!" formats below) so the
#: file is the same on every machine; readers accept either byte order.
PCAP_MAGIC = 0xA1B2C3D4
#: Packets start with the IPv4 header, no link-layer header (tcpdump.org's LINKTYPE_RAW).
LINKTYPE_RAW = 101
#: Largest packet the file may hold (an IPv4 datagram is at most 65535 octets, RFC 791).
SNAPLEN = 65535

#: Initial TTL of every packet: Linux's default; the capture is taken at the sender.
TTL = 64
#: The window field of every segment (the trace has none; RFC 9293 3.1 gives it 16 bits).
WINDOW = 65535
#: Link MTU assumed for a node whose ``net.link`` records carry no ``mtu`` (Ethernet).
DEFAULT_MTU = 1500
#: The well-known DNS server port (RFC 1035 4.2.1).
DNS_PORT = 53
#: First UDP source port of a node's resolver (the dynamic range, RFC 6335 6).
FIRST_RESOLVER_PORT = 49152
#: How long DNS answers say they may be cached: the trace does not carry the TTL.
DNS_ANSWER_TTL = 3600

_IP_HEADER = struct.Struct("!BBHHHBBH4s4s")
_TCP_HEADER = struct.Struct("!HHIIHHHH")
_UDP_HEADER = struct.Struct("!HHHH")
_PCAP_FILE_HEADER = struct.Struct("!IHHiIII")
_PCAP_PACKET_HEADER = struct.Struct("!IIII")

_PROTO_TCP = 6
_PROTO_UDP = 17
#: The Don't Fragment bit of the IPv4 flags field (RFC 791 3.1).
_DF = 0x4000
#: TCP control bits by the letters the trace uses (RFC 9293 3.1).
_TCP_FLAGS = {"F": 0x01, "S": 0x02, "R": 0x04, "P": 0x08, "A": 0x10, "U": 0x20}
#: Header octets before the payload: IPv4 20 + TCP 20 (no options).
_HEADERS = 40
#: DNS query types and response codes by name (RFC 1035 3.2.2, 4.1.1).
_QTYPES = {"A": 1, "MX": 15}
_RCODES = {"NOERROR": 0, "SERVFAIL": 2, "NXDOMAIN": 3}

_SEGMENTS_NEEDED = (
    "the trace has no tcp.segment records, so there are no packets to write: run the scenario "
    "with segment tracing on (`trace: {segments: true}` in the scenario, or `mailsim run "
    "SCENARIO --pcap`)"
)


#: What ``protocols`` may name: the application each packet belongs to.
PROTOCOLS = ("smtp", "pop3", "dns")
#: Well-known server ports, for a connection whose dialogue the trace does not show (a refused
#: or timed-out connect): SMTP (RFC 5321), submission (RFC 6409), submissions (RFC 8314), POP3
#: (RFC 1939) and POP3S (RFC 8314).
_PORT_PROTOCOLS = {25: "smtp", 587: "smtp", 465: "smtp", 110: "pop3", 995: "pop3"}


def pcap_bytes(
    records: Iterable[Record],
    *,
    epoch: datetime = PCAP_EPOCH,
    protocols: Iterable[str] | None = None,
    node: str | None = None,
) -> bytes:
    """The libpcap file of a trace, as bytes (see the module docstring for what it holds).

    Args:
        records: the trace records of a run with segment tracing on, in emission order.
        epoch: the wall-clock instant of simulated time 0 (default :data:`PCAP_EPOCH`).
        protocols: keep only the packets of these applications (names from
            :data:`PROTOCOLS`); default all packets.
        node: the capture on this node instead (see :func:`write_pcap_per_node`).

    Returns:
        The whole file: the global header, then one packet per ``tcp.segment`` record (and the
        DNS packets of ``dns.query`` records that carry ``sent``), in time order.

    Raises:
        ValueError: the trace has no ``tcp.segment`` record (segment tracing was off), a
            protocol name is unknown, or a record cannot be turned into a packet (the message
            says which and why).
    """
    return b"".join([_file_header(), *_frames(records, epoch, protocols, node)])


def write_pcap(
    records: Iterable[Record],
    path: str | Path,
    *,
    epoch: datetime = PCAP_EPOCH,
    protocols: Iterable[str] | None = None,
    node: str | None = None,
) -> int:
    """Write the trace's packets to ``path`` as a libpcap file for Wireshark; returns their number.

    One packet per ``tcp.segment`` record, plus the DNS queries and answers of ``dns.query``
    records that carry ``sent`` (the simulated times at which the resolver sent its query, one
    per try). The file is not created when the trace cannot give one.

    Args:
        records: the trace records of a run with segment tracing on, in emission order.
        path: where to write (``trace.pcap`` in a run's directory).
        epoch: the wall-clock instant of simulated time 0 (default :data:`PCAP_EPOCH`).
        protocols: keep only the packets of these applications (``smtp``: ports 25, 587, 465
            or a connection with SMTP lines; ``pop3``: 110, 995 or POP3 lines; ``dns``: UDP
            port 53), like Wireshark's display filter ``smtp or pop or dns``; default all.
        node: the capture on this node instead: what it sent, when it sent it, and what
            reached it, when it arrived (see :func:`write_pcap_per_node`).

    Raises:
        ValueError: as :func:`pcap_bytes`.
    """
    frames = _frames(records, epoch, protocols, node)  # every check done before the file
    _write(path, frames)
    return len(frames)


def write_pcap_per_node(
    records: Iterable[Record],
    directory: str | Path,
    *,
    epoch: datetime = PCAP_EPOCH,
    protocols: Iterable[str] | None = None,
) -> dict[str, int]:
    """Write one capture per node that sent or received a packet: ``directory/<node>.pcap``.

    Each file is what Wireshark on that host would record: the packets it sent, stamped when it
    sent them, and those that reached it, stamped when they arrived (from the records'
    ``arrive`` field); a packet lost on the way is only in its sender's file. So the gap
    between a segment and its ACK is the full round trip, and a resend follows the third
    duplicate ACK at once (Wireshark's "fast retransmission"). Its IP identification numbers
    are the same as in ``trace.pcap``. Routers forward and send nothing of their own, so they
    get no file. A compromise: a packet that a link or node failure destroyed after it was
    sent may still show as arrived.

    Returns:
        Node name -> number of packets written, for the files written.

    Raises:
        ValueError: as :func:`pcap_bytes`.
    """
    capture = _Capture(records)
    keep = _selection(protocols)
    nodes: dict[str, None] = {}
    for packet, _data in capture.datagrams():
        if keep(packet):
            nodes.setdefault(packet.node)
            nodes.setdefault(packet.peer)
    files = {name: capture.host_frames(epoch, name, keep) for name in nodes}
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    for name, frames in files.items():
        if frames:
            _write(out / f"{_file_name(name)}.pcap", frames)
    return {name: len(frames) for name, frames in files.items() if frames}


def _frames(
    records: Iterable[Record],
    epoch: datetime,
    protocols: Iterable[str] | None,
    node: str | None,
) -> list[bytes]:
    """The packet records of a capture: every sender's, or the one on ``node``."""
    capture = _Capture(records)
    keep = _selection(protocols)
    if node is not None:
        return capture.host_frames(epoch, node, keep)
    return [data for packet, data in capture.frames(epoch) if keep(packet)]


def _write(path: str | Path, frames: list[bytes]) -> None:
    with open(path, "wb") as out:
        out.write(_file_header())
        out.writelines(frames)


def _file_name(node: str) -> str:
    """A node name made safe as a file name (node names are usually safe already)."""
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in node).lstrip(".")
    return safe or "node"


def check_protocols(names: Iterable[str]) -> frozenset[str]:
    """The protocol names of a pcap filter, lower-cased; each may be a comma list.

    Raises:
        ValueError: a name is not one of :data:`PROTOCOLS` (the message lists them).
    """
    wanted = frozenset(
        part.strip().lower() for name in names for part in name.split(",") if part.strip()
    )
    unknown = sorted(wanted - set(PROTOCOLS))
    if unknown:
        raise ValueError(
            f"{', '.join(repr(name) for name in unknown)} is not a protocol mailsim captures; "
            f"choose from {', '.join(PROTOCOLS)} (several: smtp,dns)"
        )
    if not wanted:
        raise ValueError(f"no protocol given; choose from {', '.join(PROTOCOLS)}")
    return wanted


def _selection(protocols: Iterable[str] | None) -> Callable[[_Packet], bool]:
    """The test a packet must pass to be kept, after checking the protocol names."""
    wanted = None if protocols is None else check_protocols(protocols)

    def keep(packet: _Packet) -> bool:
        return wanted is None or packet.app in wanted

    return keep


# --- reading the trace ------------------------------------------------------------------------


@dataclass(slots=True)
class _Packet:
    """One packet to write, before its IPv4 header: when, the sending and receiving nodes, the
    addresses, the protocol, the transport segment as captured, the datagram's length on the
    wire, the application it belongs to (one of :data:`PROTOCOLS`, or "tcp"), and when it
    arrived."""

    t: float
    node: str
    peer: str
    src: bytes
    dst: bytes
    proto: int
    segment: bytes
    wire_length: int
    app: str
    #: When it reached ``peer`` (None: lost, or not recorded).
    arrive: float | None = None


class _Capture:
    """What the trace says about the world, and the packets built from it."""

    def __init__(self, records: Iterable[Record]) -> None:
        # A stable sort: records are emitted in time order already, this only protects a trace
        # that was merged or edited by hand.
        self.records = sorted(records, key=lambda record: float(record["t"]))
        #: Node name -> IPv4 address (packed), from ``net.node``.
        self.addresses: dict[str, bytes] = {}
        #: Node name -> smallest MTU of the links it sits on, from ``net.link``.
        self.mtus: dict[str, int] = {}
        #: Connection id -> its ``tcp.open`` record.
        self.opened: dict[int, Record] = {}
        #: Node name -> how many lookups its resolver sent (gives UDP source port and DNS id).
        self.lookups: dict[str, int] = {}
        #: Connection id -> the application its dialogue shows (from smtp.line / pop3.line).
        self.apps: dict[int, str] = {}
        #: Whether the segment records say when each packet arrived (``arrive``).
        self.has_arrivals = False
        has_segments = False
        for record in self.records:
            kind = record["type"]
            if kind == "net.node":
                self._learn_node(record)
            elif kind == "net.link":
                mtu = int(record.get("mtu") or DEFAULT_MTU)
                for end in (record["a"], record["b"]):
                    self.mtus[end] = min(mtu, self.mtus.get(end, mtu))
            elif kind == "tcp.open":
                self.opened[record["conn"]] = record
            elif kind == "tcp.segment":
                has_segments = True
                if "arrive" in record:
                    self.has_arrivals = True
            elif kind in ("smtp.line", "pop3.line"):
                self.apps.setdefault(record["conn"], kind.split(".")[0])
        if not has_segments:
            raise ValueError(_SEGMENTS_NEEDED)

    def _learn_node(self, record: Record) -> None:
        ip = record.get("ip")
        if ip is None:
            return  # a node without an address sends nothing
        try:
            self.addresses[record["node"]] = ipaddress.IPv4Address(ip).packed
        except ValueError:
            raise ValueError(
                f"net.node record of {record['node']!r}: ip {ip!r} is not an IPv4 address"
            ) from None

    def frames(self, epoch: datetime) -> Iterator[tuple[_Packet, bytes]]:
        """Each packet with its pcap packet record (header and data), stamped when its sender
        sent it, in time order."""
        base = round(epoch.timestamp() * 1_000_000)
        for packet, data in self.datagrams():
            yield packet, _stamp(base, packet.t, data, packet.wire_length)

    def host_frames(
        self, epoch: datetime, node: str, keep: Callable[[_Packet], bool]
    ) -> list[bytes]:
        """The capture on ``node`` itself: what it sent, stamped when it sent it, and what
        reached it, stamped when it arrived (a packet lost on the way is not there).

        A trace from before arrival times were recorded (no ``arrive`` field anywhere) gives
        the received packets at their send times instead.
        """
        base = round(epoch.timestamp() * 1_000_000)
        stamped: list[tuple[float, bytes]] = []
        for packet, data in self.datagrams():
            if not keep(packet):
                continue
            if packet.node == node:
                stamped.append((packet.t, _stamp(base, packet.t, data, packet.wire_length)))
            elif packet.peer == node:
                at = packet.arrive if self.has_arrivals else packet.t
                if at is not None:
                    stamped.append((at, _stamp(base, at, data, packet.wire_length)))
        stamped.sort(key=lambda item: item[0])  # stable: same-time packets keep their order
        return [frame for _t, frame in stamped]

    def datagrams(self) -> Iterator[tuple[_Packet, bytes]]:
        """Each packet with its IPv4 datagram, in the order of its send time."""
        self.lookups = {}
        packets: list[_Packet] = []
        for record in self.records:
            kind = record["type"]
            if kind == "tcp.segment":
                packets.append(self._segment(record))
            elif kind == "dns.query":
                packets.extend(self._lookup(record))
        # Queries are dated before their answer record: bring them into place (stable), then
        # number each node's datagrams in the order it sent them.
        packets.sort(key=lambda packet: packet.t)
        idents: dict[str, int] = {}
        for packet in packets:
            ident = idents[packet.node] = (idents.get(packet.node, 0) + 1) & 0xFFFF
            yield packet, _ipv4(packet, ident)

    # --- TCP ----------------------------------------------------------------------------------

    def _segment(self, record: Record) -> _Packet:
        conn = record["conn"]
        opened = self.opened.get(conn)
        if opened is None:
            raise ValueError(f"tcp.segment at t={record['t']}: connection {conn} has no tcp.open")
        src, dst = record["src"], record["dst"]
        if (src, dst) == (opened["client"], opened["server"]):
            sport, dport = opened["cport"], opened["sport"]
        elif (src, dst) == (opened["server"], opened["client"]):
            sport, dport = opened["sport"], opened["cport"]
        else:
            raise ValueError(
                f"tcp.segment at t={record['t']}: {src} -> {dst} is not an end of connection "
                f"{conn} ({opened['client']} -> {opened['server']})"
            )
        flags = _tcp_flags(record)
        options = b""
        if flags & _TCP_FLAGS["S"]:
            # RFC 9293 3.7.1: each end advertises the largest segment it can take, its link
            # MTU less the 40 octets of IPv4 and TCP headers (RFC 6691).
            mss = self.mtus.get(src, DEFAULT_MTU) - _HEADERS
            options = struct.pack("!BBH", 2, 4, min(max(mss, 0), 0xFFFF))
        length = int(record["length"])
        payload = _payload(record, length)
        # RFC 9293 3.1: the acknowledgment number is significant only with ACK; zero otherwise.
        ack = int(record["ack"]) if flags & _TCP_FLAGS["A"] else 0
        offset_words = (20 + len(options)) // 4
        header = (
            _TCP_HEADER.pack(
                sport,
                dport,
                int(record["seq"]) & 0xFFFFFFFF,
                ack & 0xFFFFFFFF,
                (offset_words << 12) | flags,
                WINDOW,
                0,
                0,
            )
            + options
        )
        tcp_length = len(header) + length
        if 20 + tcp_length > 0xFFFF:
            raise ValueError(
                f"tcp.segment at t={record['t']}: {length} payload octets do not fit in one IPv4 "
                "datagram (65535 octets at most, RFC 791)"
            )
        ip_src, ip_dst = self._address(src, record), self._address(dst, record)
        if payload is None:
            # Payload not in the trace: capture the headers only (pcap's caplen < len, shown by
            # Wireshark as "packet size limited during capture"). Without the octets there is no
            # checksum to compute, so it stays 0.
            segment = header
        else:
            segment = header + payload
            checksum = _internet_checksum(
                ip_src + ip_dst + struct.pack("!BBH", 0, _PROTO_TCP, tcp_length) + segment
            )
            segment = segment[:16] + struct.pack("!H", checksum) + segment[18:]
        app = self.apps.get(conn) or _PORT_PROTOCOLS.get(int(opened["sport"]), "tcp")
        arrive = record.get("arrive")
        return _Packet(
            float(record["t"]),
            src,
            dst,
            ip_src,
            ip_dst,
            _PROTO_TCP,
            segment,
            20 + tcp_length,
            app,
            None if arrive is None else float(arrive),
        )

    # --- DNS ----------------------------------------------------------------------------------

    def _lookup(self, record: Record) -> list[_Packet]:
        """The UDP packets of one resolver lookup: its queries and, unless it timed out, the
        answer. Needs the optional field ``sent``; cached answers never left the node."""
        sent = record.get("sent")
        if sent is None or record.get("cached"):
            return []
        times = [float(sent)] if isinstance(sent, (int, float)) else [float(s) for s in sent]
        if not times:
            return []
        client, server = record["node"], record.get("server")
        if server is None:
            raise ValueError(f"dns.query at t={record['t']}: 'sent' given but no 'server'")
        qtype = _QTYPES.get(record["qtype"])
        if qtype is None:
            raise ValueError(
                f"dns.query at t={record['t']}: query type {record['qtype']!r} unknown"
            )
        # Each lookup gets the node's next source port and query id; its tries repeat both,
        # as a stub resolver does (Wireshark then marks them as retransmissions).
        n = self.lookups.get(client, 0) + 1
        self.lookups[client] = n
        cport = FIRST_RESOLVER_PORT + (n - 1) % (65536 - FIRST_RESOLVER_PORT)
        dns_id = n & 0xFFFF
        port = int(record.get("port", DNS_PORT))
        question = _dns_name(record["name"]) + struct.pack("!HH", qtype, 1)  # class IN
        # RFC 1035 4.1.1: a query with RD (recursion desired), one question.
        query = struct.pack("!HHHHHH", dns_id, 0x0100, 1, 0, 0, 0) + question
        packets = [self._udp(t, client, server, cport, port, query, record) for t in times]
        if "answered" in record:
            # The try that was answered is the last one; when the others arrived (if they
            # did) the trace does not say, so the server's own capture leaves them out.
            packets[-1].arrive = float(record["answered"])
        rcode = _RCODES.get(record["rcode"])
        if rcode is not None:
            answers = [_dns_answer(record["qtype"], item) for item in record.get("answer") or ()]
            # The glue: the exchanges' A records in the additional section (RFC 1035 4.1,
            # RFC 5321 5.1), owned by their full names.
            glue = [
                _dns_name(str(host)) + _dns_rr("A", ipaddress.IPv4Address(ip).packed)
                for host, ip in record.get("additional") or ()
            ]
            # QR (response), RD copied, RA (recursion available), and the response code.
            flags = 0x8180 | rcode
            reply = (
                struct.pack("!HHHHHH", dns_id, flags, 1, len(answers), 0, len(glue))
                + question
                + b"".join(answers)
                + b"".join(glue)
            )
            # Stamped when the server sent it (the capture is at every sender), else, in a
            # trace without ``answered``, when it reached the resolver.
            at = float(record["answered"] if "answered" in record else record["t"])
            answer = self._udp(at, server, client, port, cport, reply, record)
            answer.arrive = float(record["t"])
            packets.append(answer)
        return packets

    def _udp(
        self, t: float, src: str, dst: str, sport: int, dport: int, data: bytes, record: Record
    ) -> _Packet:
        ip_src, ip_dst = self._address(src, record), self._address(dst, record)
        length = 8 + len(data)
        checksum = _internet_checksum(
            ip_src
            + ip_dst
            + struct.pack("!BBH", 0, _PROTO_UDP, length)
            + _UDP_HEADER.pack(sport, dport, length, 0)
            + data
        )
        # RFC 768: a computed checksum of zero is sent as all ones (zero means "none").
        datagram = _UDP_HEADER.pack(sport, dport, length, checksum or 0xFFFF) + data
        return _Packet(t, src, dst, ip_src, ip_dst, _PROTO_UDP, datagram, 20 + length, "dns")

    # --- IPv4 ---------------------------------------------------------------------------------

    def _address(self, node: str, record: Record) -> bytes:
        address = self.addresses.get(node)
        if address is None:
            raise ValueError(
                f"{record['type']} at t={record['t']}: no net.node record gives the address of "
                f"{node!r} (the records of the run must be passed whole)"
            )
        return address


# --- encoding helpers -----------------------------------------------------------------------


def _ipv4(packet: _Packet, ident: int) -> bytes:
    """The IPv4 datagram (RFC 791 3.1): header with ``ident`` and checksum, then the segment.
    The total length is the one on the wire (more than captured when a payload is missing)."""
    header = _IP_HEADER.pack(
        0x45, 0, packet.wire_length, ident, _DF, TTL, packet.proto, 0, packet.src, packet.dst
    )
    checksum = _internet_checksum(header)
    return header[:10] + struct.pack("!H", checksum) + header[12:] + packet.segment


def _stamp(base: int, t: float, data: bytes, wire_length: int) -> bytes:
    """One pcap packet record: the time (``base`` microseconds + ``t`` seconds), the captured
    and the original length, then the data."""
    seconds, micros = divmod(base + round(t * 1_000_000), 1_000_000)
    return _PCAP_PACKET_HEADER.pack(seconds, micros, len(data), wire_length) + data


def _file_header() -> bytes:
    """The libpcap global header: magic, version 2.4, GMT offset 0, accuracy 0, snaplen, link."""
    return _PCAP_FILE_HEADER.pack(PCAP_MAGIC, 2, 4, 0, 0, SNAPLEN, LINKTYPE_RAW)


def _internet_checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071): the one's complement of the one's complement sum of
    16-bit words. The sum is taken as the number the octets spell modulo 0xFFFF, since
    2**16 = 1 (mod 0xFFFF) makes that the end-around-carry sum, computed in C."""
    if len(data) % 2:
        data += b"\0"
    total = int.from_bytes(data, "big") % 0xFFFF
    if total == 0 and any(data):
        total = 0xFFFF  # end-around carry never turns a nonzero sum into +0
    return ~total & 0xFFFF


def _tcp_flags(record: Record) -> int:
    bits = 0
    for letter in record["flags"]:
        bit = _TCP_FLAGS.get(letter)
        if bit is None:
            raise ValueError(
                f"tcp.segment at t={record['t']}: flag {letter!r} in {record['flags']!r} is not "
                f"one of {''.join(_TCP_FLAGS)}"
            )
        bits |= bit
    return bits


def _payload(record: Record, length: int) -> bytes | None:
    """The segment's payload octets; None when the trace left them out."""
    if length == 0:
        return b""
    text = record.get("payload")
    if text is None:
        return None
    data = text if isinstance(text, bytes) else str(text).encode("latin-1")
    if len(data) != length:
        raise ValueError(
            f"tcp.segment at t={record['t']}: length is {length} but the payload has "
            f"{len(data)} octets"
        )
    return data


def _dns_name(name: str) -> bytes:
    """A domain name as DNS labels (RFC 1035 3.1), ending with the root's empty label."""
    out = bytearray()
    for label in name.strip().rstrip(".").split("."):
        if not label:
            continue
        encoded = label.encode("ascii")
        if len(encoded) > 63:
            raise ValueError(f"DNS name {name!r}: label {label!r} is longer than 63 octets")
        out += bytes([len(encoded)]) + encoded
    return bytes(out) + b"\0"


def _dns_answer(qtype: str, item: Any) -> bytes:
    """One answer record owned by the question's name (a pointer to offset 12, RFC 1035
    4.1.4), with the rdata of an MX (preference, exchange) or an A (address)."""
    if qtype == "MX":
        preference, host = item
        rdata = struct.pack("!H", int(preference)) + _dns_name(str(host))
    else:
        rdata = ipaddress.IPv4Address(item).packed
    return struct.pack("!H", 0xC00C) + _dns_rr(qtype, rdata)


def _dns_rr(qtype: str, rdata: bytes) -> bytes:
    """A resource record after its owner name (RFC 1035 4.1.3): type, class IN, TTL, rdata."""
    return struct.pack("!HHIH", _QTYPES[qtype], 1, DNS_ANSWER_TTL, len(rdata)) + rdata


__all__ = [
    "LINKTYPE_RAW",
    "PCAP_EPOCH",
    "PROTOCOLS",
    "check_protocols",
    "pcap_bytes",
    "write_pcap",
    "write_pcap_per_node",
]
