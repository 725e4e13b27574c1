"""Lossy and lossless transfer times of mailsim's TCP against ns-3's, printed as ratios.

The reference is ns-3 3.44 (PyPI ``ns3``), TcpNewReno with SACK, on the same world: two nodes on
one point-to-point link (10 Mbit/s, 50 ms one way, a queue long enough never to drop), MSS 1460,
initial window 10 segments, 64 KiB receive window, no delayed ACKs, RTO at least 1 s, SYN
timeout 1 s, and a per-packet loss rate on the data direction only (mailsim never loses pure
ACKs). Each run sends SIZE octets from connect() and stops when the receiver has the last one;
the time of that is what is compared, averaged over seeds (the two simulators draw different
losses, so only averages can agree).

Not a test and not part of ``make bench``: ns-3 is a large download that CI does not need. Run
it with an interpreter that has ns3 installed (``pip install ns3==3.44.post0`` into a separate
virtual environment), either as that interpreter itself (with mailsim importable) or with
``--ns3-python``, which runs only the ns-3 side there::

    .venv/bin/python benchmarks/ns3_compare.py --ns3-python /path/to/ns3-venv/bin/python
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from collections.abc import Generator
from typing import Any

#: (octets, loss per data packet) of each comparison.
CASES = [
    (100_000, 0.0),
    (1_000_000, 0.0),
    (10_000_000, 0.0),
    (1_000_000, 0.01),
    (4_000_000, 0.01),
    (4_000_000, 0.02),
]
RATE, DELAY = 10e6, 0.05
MSS, INITIAL_SEGMENTS, RWND = 1460, 10, 65536


def mailsim_time(size: int, loss: float, seed: int) -> float:
    """Seconds from connect() to the receiver holding the last octet, in mailsim."""
    import simpy

    from mailsim.net import Network, TcpConfig, Topology
    from mailsim.rng import RandomStreams
    from mailsim.trace.recorder import Recorder

    env = simpy.Environment()
    topology = Topology()
    topology.add_node("a", site="India")
    topology.add_node("b", site="USA")
    topology.add_link("a", "b", DELAY, RATE, loss=loss)
    config = TcpConfig(rwnd=RWND, initial_window=INITIAL_SEGMENTS * MSS)
    net = Network(env, topology, Recorder(lambda: env.now), RandomStreams(seed), tcp=config)
    listener = net.listen("b", 25)
    done: dict[str, float] = {}

    def receiver() -> Generator[Any, Any, None]:
        conn = yield listener.accept()
        got = 0
        while got < size:
            got += len((yield conn.recv()))
        done["t"] = env.now

    def sender() -> Generator[Any, Any, None]:
        conn = yield net.connect("a", "b", 25, timeout=600)
        conn.send(bytes(size))

    env.process(receiver())
    env.process(sender())
    env.run()
    return done["t"]


def ns3_time(size: int, loss: float, seed: int) -> float:
    """The same in ns-3 (needs ``from ns import ns``)."""
    from ns import ns  # type: ignore[import-not-found]

    ns.RngSeedManager.SetSeed(1)
    ns.RngSeedManager.SetRun(seed)
    for name, value in [
        ("ns3::TcpL4Protocol::SocketType", ns.StringValue("ns3::TcpNewReno")),
        ("ns3::TcpSocket::SegmentSize", ns.UintegerValue(MSS)),
        ("ns3::TcpSocket::InitialCwnd", ns.UintegerValue(INITIAL_SEGMENTS)),
        ("ns3::TcpSocket::SndBufSize", ns.UintegerValue(1 << 26)),
        ("ns3::TcpSocket::RcvBufSize", ns.UintegerValue(RWND)),
        ("ns3::TcpSocket::DelAckCount", ns.UintegerValue(1)),
        ("ns3::TcpSocket::ConnTimeout", ns.TimeValue(ns.Seconds(1.0))),
        ("ns3::TcpSocketBase::Sack", ns.BooleanValue(True)),
        ("ns3::TcpSocketBase::MinRto", ns.TimeValue(ns.Seconds(1.0))),
        ("ns3::TcpSocketBase::Timestamp", ns.BooleanValue(False)),
    ]:
        ns.Config.SetDefault(name, value)
    nodes = ns.NodeContainer()
    nodes.Create(2)
    link = ns.PointToPointHelper()
    link.SetDeviceAttribute("DataRate", ns.StringValue(f"{RATE:.0f}bps"))
    link.SetChannelAttribute("Delay", ns.StringValue(f"{DELAY * 1000:.0f}ms"))
    link.SetQueue("ns3::DropTailQueue", "MaxSize", ns.StringValue("100000p"))
    devices = link.Install(nodes)
    errors = ns.CreateObject[ns.RateErrorModel]()
    errors.SetAttribute("ErrorRate", ns.DoubleValue(loss))
    errors.SetAttribute("ErrorUnit", ns.StringValue("ERROR_UNIT_PACKET"))
    devices.Get(1).SetAttribute("ReceiveErrorModel", ns.PointerValue(errors))
    ns.InternetStackHelper().Install(nodes)
    addresses = ns.Ipv4AddressHelper()
    addresses.SetBase(ns.Ipv4Address("192.0.2.0"), ns.Ipv4Mask("255.255.255.0"))
    interfaces = addresses.Assign(devices)
    target = ns.InetSocketAddress(interfaces.GetAddress(1), 25).ConvertTo()
    bulk = ns.BulkSendHelper("ns3::TcpSocketFactory", target)
    bulk.SetAttribute("MaxBytes", ns.UintegerValue(size))
    bulk.Install(nodes.Get(0)).Start(ns.Seconds(0.0))
    anywhere = ns.InetSocketAddress(ns.Ipv4Address.GetAny(), 25).ConvertTo()
    sinks = ns.PacketSinkHelper("ns3::TcpSocketFactory", anywhere).Install(nodes.Get(1))
    sink = sinks.Get(0).GetObject[ns.PacketSink]()
    # Advance in 1 ms steps (Stop takes a delay from now) until the sink has everything.
    while sink.GetTotalRx() < size and ns.Simulator.Now().GetSeconds() < 600:
        ns.Simulator.Stop(ns.MilliSeconds(1))
        ns.Simulator.Run()
    finished: float = ns.Simulator.Now().GetSeconds()
    ns.Simulator.Destroy()
    return finished


def measure(side: str, seeds: int) -> dict[str, list[float]]:
    timer = mailsim_time if side == "mailsim" else ns3_time
    return {
        f"{size}/{loss}": [timer(size, loss, seed) for seed in range(1, (seeds if loss else 1) + 1)]
        for size, loss in CASES
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=10, help="runs per lossy case (default 10)")
    parser.add_argument("--ns3-python", help="an interpreter with ns3 installed, for that side")
    parser.add_argument("--side", choices=["mailsim", "ns3"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        print(json.dumps(measure(args.side, args.seeds)))
        return 0
    ours = measure("mailsim", args.seeds)
    if args.ns3_python:
        done = subprocess.run(
            [args.ns3_python, __file__, "--side", "ns3", "--seeds", str(args.seeds)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            print(f"ns-3 side failed:\n{done.stderr[-2000:]}", file=sys.stderr)
            return 1
        theirs = json.loads(done.stdout.strip().splitlines()[-1])
    else:
        try:
            theirs = measure("ns3", args.seeds)
        except ImportError as error:
            print(f"ns-3 is not importable here ({error}); give --ns3-python", file=sys.stderr)
            return 1
    print(f"{'octets':>10} {'loss':>5} {'mailsim s':>10} {'ns-3 s':>8} {'ratio':>6}  (means)")
    for key in ours:
        size, loss = key.split("/")
        a, b = statistics.mean(ours[key]), statistics.mean(theirs[key])
        spread = ""
        if len(ours[key]) > 1:
            spread = (
                f"  sd mailsim {statistics.stdev(ours[key]):.2f} s, "
                f"ns-3 {statistics.stdev(theirs[key]):.2f} s, {len(ours[key])} seeds"
            )
        print(f"{int(size):>10} {float(loss):>5.0%} {a:>10.3f} {b:>8.3f} {a / b:>6.3f}{spread}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
