"""What the simulated TCP raises, and its settings (:class:`TcpConfig`, with realistic defaults).

The bottom of the TCP modules: everything else in ``mailsim.net`` may import from here.
"""

from __future__ import annotations

from dataclasses import dataclass


class NetError(Exception):
    """Base class of what the simulated network raises."""


class _ReasonedError(NetError):
    """A network error with a machine-readable ``reason`` and a sentence for people."""

    def __init__(self, reason: str, message: str) -> None:
        # Both in args, so copies made with type(e)(*e.args) (SimPy does that) work.
        super().__init__(reason, message)
        self.reason = reason
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConnectError(_ReasonedError):
    """A connection could not be opened.

    Attributes:
        reason: "refused" (the host answered RST: nothing listens on the port), "timeout" (no
            answer to any SYN before the connect timeout: host or path down, even when the
            host that is down is the client's only neighbour) or "unreachable" (the destination
            is not a node of the network, or every link of the client is down: then no packet
            leaves, as with ENETUNREACH).
    """


class ConnectionReset(_ReasonedError):
    """The connection is gone: reset by the peer, crashed, or timed out retransmitting.

    Attributes:
        reason: "reset" (a RST arrived), "crash" (this node crashed), "timeout" (retransmissions
            exhausted) or "abort" (this side aborted it).
    """


class SocketTimeout(NetError):
    """``recv(timeout=...)`` waited that long without data."""


class ListenerClosed(NetError):
    """``accept()`` on a listener that was closed (by the application or a crash)."""


@dataclass(frozen=True, slots=True)
class TcpConfig:
    """The TCP knobs of a network, with realistic defaults.

    Attributes:
        rwnd: receive window in octets (default 65536, 64 KiB; larger needs window scaling,
            RFC 7323, which is assumed).
        initial_window: initial congestion window in octets (default None: RFC 6928's
            min(10 MSS, max(2 MSS, 14600)), 14600 octets for MSS 1460).
        initial_rto: retransmission timeout before any RTT sample, also the first SYN timeout
            (default 1.0 s, RFC 6298 2.1).
        min_rto: lower bound of the RTO (default 1.0 s, RFC 6298 2.4; Linux uses 0.2 s).
        max_rto: upper bound of the RTO (default 120 s, as Linux; RFC 6298 2.5 asks >= 60 s).
        clock_granularity: G of RFC 6298 2.3 (default 0.001 s).
        syn_retries: SYN retransmissions before connect gives up (default 6, as Linux: about
            127 s), unless ``connect_timeout`` ends it first.
        connect_timeout: default timeout of ``connect()`` (default 30 s, Postfix's
            smtp_connect_timeout).
        max_retries: consecutive retransmission timeouts of one segment before the connection is
            dropped (default 15, Linux's tcp_retries2; RFC 1122 4.2.3.5 R2).
        first_port: first ephemeral client port (default 49152, RFC 6335 dynamic range).
    """

    rwnd: int = 65536
    initial_window: int | None = None
    initial_rto: float = 1.0
    min_rto: float = 1.0
    max_rto: float = 120.0
    clock_granularity: float = 0.001
    syn_retries: int = 6
    connect_timeout: float = 30.0
    max_retries: int = 15
    first_port: int = 49152

    def initial_cwnd(self, mss: int) -> int:
        """The initial congestion window for ``mss`` (RFC 6928 2, unless set)."""
        if self.initial_window is not None:
            return max(self.initial_window, mss)
        return min(10 * mss, max(2 * mss, 14600))
