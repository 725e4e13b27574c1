"""A scenario's mail servers running live on 127.0.0.1: the network they pretend to cross.

``mailsim serve SCENARIO`` starts every mail server of a scenario as a real server
(:class:`~mailsim.live.mailserver.LiveMailServer`, the mail-server core on asyncio sockets). This
module is the world around them, what the SimPy network is for the simulated servers:

- **Ports.** Each server gets SMTP, submission and POP3 ports on 127.0.0.1, counted from a base
  port in the scenario's order (server *i*: base + 10 *i*, + 1, + 2); base 0 lets the system
  choose free ones. Mail between the servers is routed by the scenario's MX records to the
  right local port.
- **The network.** The scenario's nodes and links decide who can reach whom, as routing over
  what is up does in the simulation (hosts and DNS servers never forward). A server whose route
  to the next hop is cut, or whose next hop is down, sees its connection attempt time out after
  ``connect_timeout`` (on the scaled clock); a stopped service refuses at once, for real. A
  route cut during a session holds what is in flight until it heals or the session's timeout
  fires, as a stalled TCP connection would.
- **Faults.** The scenario's scheduled and random faults (links, nodes, services) apply on the
  scaled clock counted from the start of the run; its reply faults are the servers' own (their
  settings). ``mailsim ctl`` stops and starts servers and cuts and heals routes by hand through
  the control socket (:mod:`mailsim.live.ctl`).
- **The record.** Everything is written as in the simulation (:mod:`mailsim.live.recording`),
  with scenario times, so ``mailsim plot DIR`` draws the live run.

A run's folder holds ``live.json`` (the scenario, the clock's epoch and scale, how often it was
started), the trace files, and one folder per server with its Maildirs and queue. Starting again
in the same folder resumes the run: the clock carries on and the queues are read back.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import shutil
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mailsim.live.clock import ScaledClock
from mailsim.live.ctl import serve_control
from mailsim.live.recording import RunRecorder
from mailsim.net.dns import DnsError, MxHost
from mailsim.net.routing import Routing
from mailsim.net.topology import link_key

if TYPE_CHECKING:
    from mailsim.live.mailserver import LiveMailServer
    from mailsim.mail.message import MailItem
    from mailsim.nodes.world import World

#: The scenario ports of a mail server's services (what the trace and the figures show).
SMTP_PORT, SUBMISSION_PORT, POP3_PORT = 25, 587, 110
#: Ports per server in the table: SMTP, submission and POP3 at base + 10 i, + 1, + 2.
PORTS_PER_SERVER = 10
#: The node name of a client from outside the scenario (a student's smtplib, telnet, swaks).
OUTSIDE = "you"
#: What the run folder's state file is called.
STATE_FILE = "live.json"


class LiveError(Exception):
    """The live world cannot start (a port in use, a folder that is not a run); says why."""


class ConnectFailed(Exception):
    """A connection attempt between live servers failed: ``reason`` as in ``tcp.fail``."""

    def __init__(self, reason: str, text: str) -> None:
        super().__init__(text)
        #: "timeout", "refused" or "unreachable".
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Ports:
    """The local ports of one live server."""

    smtp: int
    submission: int
    pop3: int

    def by_service(self, port: int) -> int:
        """The local port of the scenario port ``port`` (25, 587 or 110)."""
        return {SMTP_PORT: self.smtp, SUBMISSION_PORT: self.submission, POP3_PORT: self.pop3}[port]


class LiveConnection:
    """One TCP connection as the trace knows it (the ``conn`` of its records)."""

    __slots__ = ("client", "closed", "cport", "id", "server", "sport")

    def __init__(self, conn: int, client: str, server: str, cport: int, sport: int) -> None:
        self.id = conn
        self.client = client
        self.server = server
        self.cport = cport
        self.sport = sport
        self.closed = False


class LiveWorld:
    """Every mail server of a scenario, live, and the network state between them.

    Args:
        world: the scenario's world, described (``build_world``) but not started.
        directory: the run folder.
        scenario: the scenario's name (for ``summary.json``).
        seed: the run's seed (random faults, retry jitter).
        time_scale: scenario seconds per real second.
        base_port: the first port of the table (0: free ports chosen by the system).
        echo: where the console log goes (None: nowhere).
        fresh: forget an earlier run in ``directory`` instead of resuming it.
    """

    def __init__(
        self,
        world: World,
        directory: Path,
        *,
        scenario: str,
        seed: int,
        time_scale: float = 1.0,
        base_port: int = 2500,
        echo: Callable[[str], None] | None = None,
        fresh: bool = False,
    ) -> None:
        world.prepare()
        #: The scenario's world (its description: topology, DNS, servers, faults).
        self.world = world
        #: The run folder.
        self.directory = directory
        #: The scenario's name.
        self.scenario = scenario
        #: The seed.
        self.seed = seed
        self.base_port = base_port
        #: Live servers by node.
        self.servers: dict[str, LiveMailServer] = {}
        #: Local ports by server node, once started.
        self.ports: dict[str, Ports] = {}
        self.echo = echo
        directory.mkdir(parents=True, exist_ok=True)
        if fresh:
            self._forget_earlier_run()
        state = self._read_state()
        #: Whether this start resumes an earlier run in the same folder.
        self.resumed = state is not None
        epoch = None
        if state is not None:
            # The same scenario time now, whatever scale the earlier run had.
            now = (time.time() - float(state["epoch"])) * float(state["time_scale"])
            epoch = time.time() - now / time_scale
        #: Scenario time.
        self.clock = ScaledClock(time_scale, epoch)
        #: How often this run has been started (1 the first time).
        self.starts = int(state["starts"]) + 1 if state is not None else 1
        #: The trace.
        self.trace = RunRecorder(directory, self.clock, echo)
        self._routing = Routing(world.topology, {})
        # What was staged by hand (kept in live.json, so a restart does not undo it): the links
        # each cut took down, by the pair of nodes it separated; the servers stopped.
        self._cuts: dict[tuple[str, ...], list[tuple[str, ...]]] = {}
        self._stopped: set[str] = set()
        self._staged = state.get("by_hand", {}) if state is not None else {}
        self._holds: dict[tuple[str, ...], int] = {}
        self._services_down: set[tuple[str, int]] = set()
        self._changed = asyncio.Event()
        self._next_conn = 1 + max(
            (r["conn"] for r in self.trace.records if r["type"] == "tcp.open"), default=0
        )
        self._by_client_port: dict[int, LiveConnection] = {}
        self._known_messages = {r["msg"] for r in self.trace.records if r["type"] == "mail.submit"}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._control: asyncio.base_events.Server | None = None
        self._mx_order = random.Random(f"{seed}/dns/mx-order")

    # -- the run folder -------------------------------------------------------------------------

    def _read_state(self) -> dict[str, Any] | None:
        path = self.directory / STATE_FILE
        if not path.exists():
            return None
        try:
            state = json.loads(path.read_text("utf-8"))
            float(state["epoch"]), float(state["time_scale"]), int(state["starts"])
        except (ValueError, KeyError, TypeError):
            raise LiveError(
                f"{path}: not the state of a live run; remove it or use --fresh"
            ) from None
        if state.get("scenario") != self.scenario:
            raise LiveError(
                f"{self.directory}: holds a live run of {state.get('scenario')!r}, not of "
                f"{self.scenario!r}; choose another --dir, or --fresh to start over there"
            )
        return dict(state)

    def _write_state(self) -> None:
        state = {
            "scenario": self.scenario,
            "seed": self.seed,
            "epoch": self.clock.epoch,
            "time_scale": self.clock.scale,
            "starts": self.starts,
            "ports": {node: vars_of(ports) for node, ports in self.ports.items()},
            "by_hand": {
                "cuts": [
                    [*pair, [list(link) for link in links]] for pair, links in self._cuts.items()
                ],
                "stopped": sorted(self._stopped),
            },
        }
        (self.directory / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n", "utf-8")

    def _forget_earlier_run(self) -> None:
        """Remove what an earlier run wrote here (only the files a run writes)."""
        for name in (STATE_FILE, "events.jsonl", "transcript.txt", "summary.json", "ctl.sock"):
            with contextlib.suppress(FileNotFoundError):
                (self.directory / name).unlink()
        for node, *_ in self.world.mail_server_specs():
            shutil.rmtree(self.directory / node, ignore_errors=True)

    # -- life cycle -----------------------------------------------------------------------------

    async def start(self) -> dict[str, Ports]:
        """Start every server, the faults and the control socket; returns the port table.

        Raises:
            LiveError: a port is taken or the folder cannot be written.
        """
        from mailsim.live.ctl import ControlError
        from mailsim.live.mailserver import LiveMailServer

        self._changed = asyncio.Event()
        for index, (node, domains, users, settings) in enumerate(self.world.mail_server_specs()):
            base = self.base_port + PORTS_PER_SERVER * index if self.base_port else 0
            server = LiveMailServer(self, node, domains, users, settings, base_port=base)
            self.servers[node] = server
        try:
            for node, server in self.servers.items():
                self.ports[node] = await server.start()
            self._control = await serve_control(self.directory, self.control)
        except (OSError, ControlError) as error:
            await self.stop()
            raise LiveError(str(error)) from None
        if not self.resumed:
            # Scenario time 0 is the moment the servers are ready: the scenario's faults count
            # from here, as from the start of a simulated run.
            self.clock.epoch = time.time()
            self._record_topology()
        self._restage()
        self._write_state()
        self._schedule_faults()
        return dict(self.ports)

    def _restage(self) -> None:
        """Stage again what was staged by hand before this run was stopped or killed."""
        for a, b, links in self._staged.get("cuts", ()):
            keys = [tuple(link) for link in links]
            for key in keys:
                self.hold(("link", *key))
            self._cuts[(a, b)] = keys
        for node in self._staged.get("stopped", ()):
            if node in self.servers:
                self._ctl_stop(node)

    async def stop(self) -> None:
        """Stop the servers (their queues stay on disk) and write the summary."""
        if self._control is not None:
            self._control.close()
            with contextlib.suppress(FileNotFoundError):
                (self.directory / "ctl.sock").unlink()
        for task in list(self._tasks):
            task.cancel()
        for server in self.servers.values():
            await server.stop()
        self.trace.close(scenario=self.scenario, seed=self.seed)

    def keep(self, task: asyncio.Task[Any]) -> None:
        """Hold a reference to ``task`` until it ends (asyncio keeps only weak ones)."""
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _record_topology(self) -> None:
        described = self.world.topology.describe()
        for node in described["nodes"]:
            self.trace.emit("net.node", **node)
        for link in described["links"]:
            self.trace.emit("net.link", **link)

    def note_arrival(self, item: MailItem, node: str, kind: str = "mail") -> None:
        """A message entered the mail system here: record ``mail.submit`` once per message."""
        if item.id in self._known_messages:
            return
        self._known_messages.add(item.id)
        self.trace.emit(
            "mail.submit",
            msg=item.id,
            node=node,
            sender=item.sender,
            rcpts=list(item.recipients),
            size=item.size,
            kind=kind,
        )

    # -- the network ----------------------------------------------------------------------------

    def path(self, a: str, b: str) -> list[str] | None:
        """The nodes of the route from ``a`` to ``b`` over what is up now, or None."""
        return self._routing.path(a, b)

    async def route_open(self, a: str, b: str, deadline: float) -> bool:
        """Wait until ``a`` can reach ``b`` (True) or the loop time ``deadline`` passes (False)."""
        loop = asyncio.get_running_loop()
        while self.path(a, b) is None:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            changed = self._changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), remaining)
        return True

    def _changed_now(self) -> None:
        self._routing.invalidate()
        self._changed.set()
        self._changed = asyncio.Event()

    def hold(self, key: tuple[str, ...]) -> None:
        """Something (a fault, a cut by hand) holds a link, node or service down."""
        count = self._holds.get(key, 0)
        self._holds[key] = count + 1
        if count == 0:
            self._apply(key, up=False)

    def release(self, key: tuple[str, ...], *, every: bool = False) -> None:
        """One hold (or ``every`` hold) on the element ends; it is up when none is left."""
        count = self._holds.get(key, 0)
        if count == 0:
            return
        self._holds[key] = 0 if every else count - 1
        if self._holds[key] == 0:
            self._apply(key, up=True)

    def _apply(self, key: tuple[str, ...], *, up: bool) -> None:
        kind = key[0]
        routing = self._routing
        if kind == "link":
            a, b = key[1], key[2]
            (routing.down_links.discard if up else routing.down_links.add)((a, b))
            self.trace.emit("link.up" if up else "link.down", a=a, b=b)
        elif kind == "node":
            node = key[1]
            (routing.down_nodes.discard if up else routing.down_nodes.add)(node)
            self.trace.emit("node.up" if up else "node.down", node=node)
            server = self.servers.get(node)
            if server is not None:
                self.keep(asyncio.ensure_future(server.restart() if up else server.crash()))
        else:
            node, port = key[1], int(key[2])
            (self._services_down.discard if up else self._services_down.add)((node, port))
            self.trace.emit("service.up" if up else "service.down", node=node, port=port)
            server = self.servers.get(node)
            if server is not None:
                self.keep(asyncio.ensure_future(server.set_service(port, up=up)))
        self._changed_now()

    def is_up(self, node: str) -> bool:
        """Whether ``node`` is running."""
        return node not in self._routing.down_nodes

    def service_is_up(self, node: str, port: int) -> bool:
        """Whether no fault holds the service on ``port`` of ``node`` down."""
        return (node, port) not in self._services_down

    # -- faults on the scaled clock ---------------------------------------------------------------

    def _schedule_faults(self) -> None:
        """Start the scenario's faults: what should be down now is taken down at once."""
        now = self.clock()
        for method, args, kwargs in self.world.scheduled_faults():
            if method in ("link_down", "node_crash", "service_down"):
                if method == "link_down":
                    a, b, at, duration = args
                    key: tuple[str, ...] = ("link", *link_key(a, b))
                elif method == "node_crash":
                    node, at, duration = args
                    key = ("node", node)
                else:
                    node, port, at, duration = args
                    key = ("service", node, str(port))
                end = None if duration is None else at + duration
                if end is not None and end <= now:
                    continue  # over before this start of the run
                self.keep(asyncio.ensure_future(self._outage(key, at, end)))
            elif method in ("random_link", "random_node"):
                self.keep(asyncio.ensure_future(self._random(method, args, kwargs)))

    async def _outage(self, key: tuple[str, ...], at: float, end: float | None) -> None:
        await asyncio.sleep(self.clock.until(at))
        self.hold(key)
        if end is not None:
            await asyncio.sleep(self.clock.until(end))
            self.release(key)

    async def _random(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if method == "random_link":
            a, b, mtbf, mttr = args
            key: tuple[str, ...] = ("link", *link_key(a, b))
        else:
            node, mtbf, mttr = args
            key = ("node", node)
        rng = random.Random(f"{self.seed}/fault/{'/'.join(key)}/{self.starts}")
        until = kwargs.get("until")
        while True:
            # Exponential up time, then exponential down time (as net.faults in the simulation).
            await asyncio.sleep(self.clock.real_seconds(rng.expovariate(1.0 / mtbf)))
            if until is not None and self.clock() > until:
                return
            self.hold(key)
            await asyncio.sleep(self.clock.real_seconds(rng.expovariate(1.0 / mttr)))
            self.release(key)

    # -- connections between the live servers -----------------------------------------------

    @property
    def next_connection_id(self) -> int:
        """The id the next connection will get (a delivery attempt names it before it starts)."""
        return self._next_conn

    def open_connection(self, client: str, server: str, sport: int, cport: int) -> LiveConnection:
        """A new connection from ``client`` to ``server``'s scenario port: ``tcp.open``."""
        conn = LiveConnection(self._next_conn, client, server, cport, sport)
        self._next_conn += 1
        self.trace.emit(
            "tcp.open", conn=conn.id, client=client, server=server, cport=cport, sport=sport
        )
        return conn

    def close(self, conn: LiveConnection, by: str, how: str = "fin") -> None:
        """The connection ended (recorded once, by the side that noticed first)."""
        if not conn.closed:
            conn.closed = True
            self._by_client_port.pop(conn.cport, None)
            self.trace.emit("tcp.close", conn=conn.id, by=by, how=how)

    def accepted(self, server: str, sport: int, peer: tuple[str, int]) -> LiveConnection:
        """A server accepted a connection: one of ours (known by its port) or from outside."""
        conn = self._by_client_port.get(peer[1]) if peer[0] == "127.0.0.1" else None
        if conn is None or conn.server != server:
            conn = self.open_connection(OUTSIDE, server, sport, peer[1])
        self.trace.emit("tcp.established", conn=conn.id)
        return conn

    async def connect(
        self, client: str, server: str, sport: int, timeout: float
    ) -> tuple[LiveConnection, asyncio.StreamReader, asyncio.StreamWriter]:
        """Open a connection from live server ``client`` to ``server``'s scenario port ``sport``.

        Args:
            timeout: scenario seconds to wait for the handshake (``connect_timeout``).

        Raises:
            ConnectFailed: the route is cut or ``server`` is down (after ``timeout``), or
                nothing listens (at once).
        """
        loop = asyncio.get_running_loop()
        # Like the simulated network, take a node name or an address (an MX host's A record).
        server = self.world.topology.resolve(server) or server
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.bind(("127.0.0.1", 0))
        conn = self.open_connection(client, server, sport, sock.getsockname()[1])
        # Nobody answers a cut route: that wait is the scenario's, on the scaled clock.
        deadline = loop.time() + self.clock.real_seconds(timeout)
        ports = self.ports.get(server)
        try:
            if ports is None:
                raise ConnectFailed("unreachable", f"{server} is not a live server")
            if not self.is_up(server) or not await self.route_open(client, server, deadline):
                # Nobody answers the SYN: the client waits out its connect timeout.
                await asyncio.sleep(max(0.0, deadline - loop.time()))
                raise ConnectFailed("timeout", f"connect to {server}:{sport} timed out")
            # Known before the SYN leaves, so the server can tell who is calling.
            self._by_client_port[conn.cport] = conn
            try:
                await asyncio.wait_for(
                    loop.sock_connect(sock, ("127.0.0.1", ports.by_service(sport))),
                    self.clock.real_wait(timeout),
                )
            except TimeoutError:
                raise ConnectFailed("timeout", f"connect to {server}:{sport} timed out") from None
            except OSError:
                raise ConnectFailed("refused", f"{server}:{sport} refused the connection") from None
            reader, writer = await asyncio.open_connection(sock=sock)
        except ConnectFailed as failure:
            self._by_client_port.pop(conn.cport, None)
            sock.close()
            conn.closed = True
            self.trace.emit("tcp.fail", conn=conn.id, reason=failure.reason)
            raise
        except BaseException:
            self._by_client_port.pop(conn.cport, None)
            sock.close()
            raise
        return conn, reader, writer

    # -- DNS ------------------------------------------------------------------------------------

    def resolve_mx(self, node: str, domain: str) -> list[MxHost]:
        """Where mail for ``domain`` goes, best first, from the scenario's DNS records.

        The same answer the simulated resolver gives (RFC 5321 5.1: MX records by preference,
        equal ones shuffled; without MX, the domain's own address), looked up at once: the live
        servers share the scenario's DNS database rather than query a server over the network.

        Raises:
            DnsError: the domain does not exist, or none of its exchangers has an address.
        """
        dns = self.world.dns
        answer = dns.lookup(domain, "MX")
        self.trace.emit(
            "dns.query",
            node=node,
            name=answer.name,
            qtype="MX",
            rcode=answer.rcode,
            answer=answer.as_trace(),
            cached=False,
            server=self.world.dns_node,
        )
        if answer.rcode != "NOERROR":
            permanent = answer.rcode == "NXDOMAIN"
            raise DnsError(domain, "MX", answer.rcode, f"{domain}: {answer.rcode}", permanent)
        records = list(answer.records)
        if not records:
            records = [(0, answer.name)]  # the implicit MX
        by_preference: dict[int, list[str]] = {}
        for preference, host in records:
            by_preference.setdefault(preference, []).append(host)
        hosts: list[MxHost] = []
        for preference in sorted(by_preference):
            names = by_preference[preference]
            if len(names) > 1:
                self._mx_order.shuffle(names)
            for host in names:
                addresses = dns.lookup(host, "A").records
                if addresses:
                    hosts.append(MxHost(preference, host, str(addresses[0])))
        if not hosts:
            raise DnsError(
                domain, "MX", "NODATA", f"no mail exchanger of {domain} could be resolved", True
            )
        return hosts

    # -- control by hand ------------------------------------------------------------------------

    async def control(self, command: str, args: list[str]) -> tuple[bool, str]:
        """Answer a ``mailsim ctl`` command (see :data:`mailsim.live.ctl.COMMANDS`)."""
        try:
            text = getattr(self, f"_ctl_{command}")(*args)
        except TypeError:
            from mailsim.live.ctl import COMMANDS

            return False, f"usage: {command} {COMMANDS[command][0]}".rstrip()
        except ValueError as error:
            return False, str(error)
        self._write_state()
        return True, text

    def _server_named(self, name: str) -> str:
        if name not in self.servers:
            raise ValueError(
                f"{name!r} is not a mail server of this run; the servers are "
                f"{', '.join(self.servers)}"
            )
        return name

    def _node_named(self, name: str) -> str:
        if name not in self.world.topology.graph:
            raise ValueError(f"{name!r} is not a node of this scenario")
        return name

    def _ctl_stop(self, name: str) -> str:
        node = self._server_named(name)
        if not self.is_up(node):
            return f"{node} is already down"
        self.hold(("node", node))
        self._stopped.add(node)
        return f"{node} is down (its queue stays on disk; 'start {node}' brings it back)"

    def _ctl_start(self, name: str) -> str:
        node = self._server_named(name)
        if self.is_up(node):
            return f"{node} is already up"
        self.release(("node", node), every=True)
        self._stopped.discard(node)
        return f"{node} is up again"

    def _ctl_cut(self, a: str, b: str) -> str:
        a, b = self._node_named(a), self._node_named(b)
        if a == b:
            raise ValueError("cut needs two different nodes")
        cut: list[tuple[str, ...]] = []
        graph = self.world.topology.graph
        while (path := self.path(a, b)) is not None:
            # The route's longest link fails (the intercontinental one, in the tutorial's
            # world); again until no route is left.
            hops = list(itertools.pairwise(path))
            longest = max(hops, key=lambda hop: graph.edges[hop]["latency"])
            key = link_key(*longest)
            self.hold(("link", *key))
            cut.append(key)
        if not cut:
            return f"{a} and {b} cannot reach each other already"
        self._cuts.setdefault(tuple(sorted((a, b))), []).extend(cut)
        links = ", ".join(f"{x} - {y}" for x, y in cut)
        return f"cut the route between {a} and {b}: link {links} down"

    def _ctl_heal(self, *names: str) -> str:
        if names and len(names) != 2:
            raise TypeError
        if names:
            pair = tuple(sorted((self._node_named(names[0]), self._node_named(names[1]))))
            links = self._cuts.pop(pair, [])
        else:
            links = [key[1:] for key, count in self._holds.items() if key[0] == "link" and count]
            self._cuts.clear()
        for a, b in links:
            self.release(("link", a, b), every=True)
        if not links:
            return "nothing to heal"
        return "healed: link " + ", ".join(f"{a} - {b}" for a, b in links) + " up"

    def _ctl_status(self) -> str:
        lines = []
        for node, server in self.servers.items():
            state = "up" if self.is_up(node) else "DOWN"
            lines.append(f"{node:<16} {state:<5} {server.describe()}")
        down = [key[1:] for key, count in self._holds.items() if key[0] == "link" and count]
        if down:
            lines.append("links down: " + ", ".join(f"{a} - {b}" for a, b in down))
        pairs = [
            (a, b)
            for i, a in enumerate(self.servers)
            for b in list(self.servers)[i + 1 :]
            if self.path(a, b) is None
        ]
        if pairs:
            lines.append("no route: " + ", ".join(f"{a} - {b}" for a, b in pairs))
        return "\n".join(lines)


def vars_of(ports: Ports) -> dict[str, int]:
    """The ports as the ``--json-ports`` document writes them."""
    return {"smtp": ports.smtp, "submission": ports.submission, "pop3": ports.pop3}
