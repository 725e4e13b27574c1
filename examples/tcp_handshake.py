"""James's mail server in India opens a TCP connection to Steve's in the USA.

The network: india-mail -- india-router ==== usa-router -- usa-mail, with 1 ms on each local link
and 120 ms on the long-haul link (one way), all at 1 Gbit/s so that serialisation (0.3 us for a
40-octet segment) is invisible at millisecond resolution. One way is therefore 1 + 120 + 1 =
122 ms and a round trip 244 ms:

* the SYN leaves at 0 ms; the SYN-ACK is back at 244 ms (1 RTT), when ``connect()`` returns;
* the client's ACK reaches usa-mail at 366 ms, ``accept()`` returns, and the server sends its
  220 greeting, which arrives at 488 ms (2 RTT);
* the client answers HELO at once and the 250 reply arrives one more RTT later, at 732 ms.

Run it with ``python examples/tcp_handshake.py``.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import simpy

from mailsim.net import Network, Topology
from mailsim.rng import RandomStreams
from mailsim.trace.recorder import Recorder


def build() -> Topology:
    """The two-site network of the story."""
    topology = Topology()
    topology.add_node("india-mail", kind="mailserver", site="India")
    topology.add_node("india-router", kind="router", site="India")
    topology.add_node("usa-router", kind="router", site="USA")
    topology.add_node("usa-mail", kind="mailserver", site="USA")
    topology.add_link("india-mail", "india-router", latency=0.001, bandwidth=1e9)
    topology.add_link("india-router", "usa-router", latency=0.120, bandwidth=1e9)
    topology.add_link("usa-router", "usa-mail", latency=0.001, bandwidth=1e9)
    return topology


def main() -> dict[str, float]:
    """Run the exchange, print when each step happened, and return the times in seconds."""
    env = simpy.Environment()
    recorder = Recorder(lambda: env.now)
    net = Network(env, build(), recorder, RandomStreams(seed=1))
    times: dict[str, float] = {}

    def steve_server() -> Generator[Any, Any, None]:
        listener = net.listen("usa-mail", 25)
        conn = yield listener.accept()
        conn.send(b"220 usa.com ESMTP\r\n")
        yield conn.recv()  # HELO
        conn.send(b"250 usa.com\r\n")
        yield conn.recv()  # b"" when the client closes
        conn.close()

    def james_client() -> Generator[Any, Any, None]:
        times["SYN sent"] = env.now
        conn = yield net.connect("india-mail", "usa-mail", 25)
        times["connected (SYN-ACK in)"] = env.now
        yield conn.recv()
        times["greeting 220 arrived"] = env.now
        conn.send(b"HELO india.com\r\n")
        yield conn.recv()
        times["reply 250 arrived"] = env.now
        conn.close()

    env.process(steve_server())
    env.process(james_client())
    env.run()
    for what, t in times.items():
        print(f"{what:<24} at {t * 1000:6.1f} ms")
    return times


if __name__ == "__main__":
    main()
