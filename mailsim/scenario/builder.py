"""From a validated scenario to a world ready to run.

The scenario models hold values in SI units already (seconds, bytes, bits per second), so building
is a straight translation into :class:`mailsim.nodes.world.World` calls. The random parts (the
Poisson traffic, the made-up attachments) draw from named streams of the run's seed, so the same
scenario and seed give the same messages, byte for byte.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import overload

from mailsim.mail.message import Attachment, attachment_from_file, synthetic_attachment
from mailsim.mail.server import ReplyFault, ServerSettings
from mailsim.nodes.telnet import TelnetScript
from mailsim.nodes.useragent import Draft, PlannedDraft
from mailsim.nodes.web import Download
from mailsim.nodes.world import World
from mailsim.protocol.smtp import ServerLimits, address_key
from mailsim.scenario import schema

#: Words for generated message bodies (deterministic filler of a requested size).
_FILLER = tuple(
    "mail travels from the user agent to the server and waits in the queue until the next "
    "attempt succeeds across the link to the other side where the mailbox keeps it safe".split(" ")
)


def build_world(
    scenario: schema.Scenario,
    *,
    seed: int | None = None,
    segments: bool | None = None,
    strict: bool = False,
    trace: str = "full",
    keep_trace: bool = True,
    inbox_kept: int | None = None,
) -> World:
    """The world a scenario describes, not yet started.

    Args:
        scenario: a validated scenario.
        seed: overrides the scenario's seed.
        segments: overrides ``trace.segments`` (a pcap export needs them).
        strict: check every trace record against its documented fields.
        trace, keep_trace, inbox_kept: as for :class:`World`.
    """
    options = scenario.trace
    want_segments = options.segments or options.pcap if segments is None else segments
    world = World(
        seed=scenario.seed if seed is None else seed,
        segments=want_segments,
        strict=strict,
        data_lines=options.data_lines if options.data_lines is not None else 10**9,
        dns_node=scenario.dns_node,
        trace=trace,
        keep_trace=keep_trace,
        inbox_kept=inbox_kept,
    )
    world.dns_timeout = scenario.dns.timeout
    for name, node in scenario.nodes.items():
        world.add_node(name, kind=node.kind, site=node.site or "", ip=node.ip)
    # Without a DNS node, the world adds one when it starts (World._add_dns_node).
    for link in scenario.links:
        a, b = link.between
        world.add_link(
            a,
            b,
            latency=link.latency,
            bandwidth=link.bandwidth,
            loss=link.loss,
            jitter=link.jitter,
            mtu=link.mtu,
        )
    _add_servers(world, scenario)
    _add_dns(world, scenario)
    for user in scenario.users:
        world.add_user(
            user.address,
            user.password,
            user.host,
            check_every=user.check_mail_every,
            server=user.submission_server,
            name=user.name,
        )
    scripted: dict[str, list[_ScriptedMessage]] = {}
    for index, message in enumerate(scenario.messages):
        scripted.setdefault(address_key(message.sender), []).append(
            _ScriptedMessage(world, index, message)
        )
    for messages in scripted.values():
        # In order of time, and in the scenario's order at equal times (a stable sort).
        in_order: list[PlannedDraft] = sorted(messages, key=_at)
        world.plan(messages[0].message.sender, iter(in_order))
    for index, generator in enumerate(scenario.traffic):
        _add_traffic(world, scenario, index, generator)
    for fault in scenario.faults:
        _add_fault(world, fault)
    for session in scenario.telnet:
        world.telnet(
            TelnetScript(
                at=session.at,
                node=session.client,
                server=session.server,
                lines=tuple(session.lines),
                port=session.port,
                typing_time=session.pause,
                wait_for_reply=session.wait_for_reply,
            )
        )
    for index, spec in enumerate(scenario.web_servers):
        rng = world.streams.get("web", index)
        world.add_web_server(
            spec.node,
            {
                file.path: synthetic_attachment(
                    file.kind, file.size, rng, filename=file.path.rsplit("/", 1)[-1] or None
                )
                for file in spec.files
            },
        )
    for download in scenario.downloads:
        world.download(
            Download(
                at=download.at,
                node=download.client,
                server=download.server,
                paths=tuple(download.paths),
                connection=download.connection,
            )
        )
    return world


def _add_servers(world: World, scenario: schema.Scenario) -> None:
    faults: dict[str, list[ReplyFault]] = {}
    for fault in scenario.faults:
        if isinstance(fault, schema.ReplyFault):
            spec = fault.reply
            faults.setdefault(spec.server, []).append(reply_fault(spec, port=spec.port))
    for name, node in scenario.mail_servers.items():
        settings = scenario.settings_for(name)
        timeouts = settings.command_timeouts
        world.add_mail_server(
            name,
            node.domains,
            ServerSettings(
                replies=settings.replies,
                durable=settings.durable,
                limits=ServerLimits(
                    max_recipients=settings.max_recipients,
                    max_message_size=settings.max_message_size,
                ),
                retry=settings.retry.to_policy(),
                connections_per_destination=settings.connections_per_destination,
                messages_per_connection=settings.messages_per_connection,
                recipients_per_delivery=settings.recipients_per_delivery,
                connection_reuse_time=settings.connection_reuse_time,
                connect_timeout=settings.connect_timeout,
                greeting_timeout=timeouts.greeting,
                reply_timeout=max(timeouts.helo, timeouts.mail, timeouts.rcpt),
                data_start_timeout=timeouts.data_start,
                final_reply_timeout=timeouts.data_end,
                idle_timeout=settings.idle_timeout,
                reply_faults=tuple(faults.get(name, ())),
            ),
        )


def reply_fault(spec: schema.ReplySpec, *, port: int | None) -> ReplyFault:
    """The core's reply fault for a scenario's (or ``serve --fault``'s) ``reply:`` spec."""
    return ReplyFault(
        command="DOT" if spec.command == "dot" else spec.command,
        code=spec.code,
        text=spec.reply_lines(),
        start=spec.start,
        end=spec.until,
        probability=spec.probability,
        first_attempt_only=spec.first_attempt_only,
        port=port,
        address=spec.address,
        delay=spec.delay,
    )


def _add_dns(world: World, scenario: schema.Scenario) -> None:
    dns = world.dns
    dns.default_ttl = scenario.dns.ttl
    world.generate_dns = scenario.dns.generate
    for record in scenario.dns.records:
        if isinstance(record, schema.MxRecord):
            dns.add_mx(record.name, record.preference, record.exchange, record.ttl)
            world.explicit_mx.add(record.name.lower())
        else:
            world.a_records.append((record.name, record.address, record.node, record.ttl))


def _attachment(
    spec: schema.GeneratedAttachment | schema.FileAttachment, rng: random.Random
) -> Attachment:
    if isinstance(spec, schema.FileAttachment):
        attachment = attachment_from_file(spec.file)
        if spec.name:
            attachment = type(attachment)(spec.name, attachment.content_type, attachment.data)
        return attachment
    return synthetic_attachment(spec.kind, spec.size, rng, filename=spec.name)


def _filler_lines() -> tuple[str, ...]:
    """About 64 KB of filler text in lines of at most 72 characters, the same in every run."""
    words = random.Random(0).choices(_FILLER, k=12_000)
    lines: list[str] = []
    line: list[str] = []
    length = 0
    for word in words:
        if length + len(word) + 1 > 72:
            lines.append(" ".join(line))
            line, length = [], 0
        line.append(word)
        length += len(word) + 1
    return tuple(lines)


_FILLER_LINES = _filler_lines()


def _filler_text(size: int, rng: random.Random) -> str:
    """Readable filler of about ``size`` octets: lines of the shared text from a random start.

    One draw per message (where the text starts) instead of one per word keeps a busy day of
    traffic cheap to generate.
    """
    lines = _FILLER_LINES
    index = rng.randrange(len(lines))
    out: list[str] = []
    total = 0
    while total < size:
        line = lines[index % len(lines)]
        out.append(line)
        total += len(line) + 1
        index += 1
    return "\n".join(out)


def _draw_size(
    spec: schema.FixedSize | schema.LognormalSize | schema.UniformSize, rng: random.Random
) -> int:
    if isinstance(spec, schema.FixedSize):
        return int(spec.size)
    if isinstance(spec, schema.UniformSize):
        return int(rng.uniform(spec.min, spec.max))
    size = rng.lognormvariate(math.log(spec.median), spec.sigma)
    if spec.max is not None:
        size = min(size, spec.max)
    return max(1, int(size))


@dataclass(frozen=True, slots=True)
class _ScriptedMessage:
    """One of the scenario's ``messages``, written (its attachments made) when it is sent."""

    world: World
    index: int
    message: schema.Message

    @property
    def at(self) -> float:
        return self.message.at

    def written(self) -> Draft:
        message = self.message
        rng = self.world.streams.get("attachment", "message", self.index)
        return Draft(
            at=message.at,
            to=tuple(message.to),
            cc=tuple(message.cc),
            bcc=tuple(message.bcc),
            subject=message.subject,
            body=message.body,
            html=message.html,
            attachments=tuple(_attachment(spec, rng) for spec in message.attachments),
        )


def _at(planned: PlannedDraft) -> float:
    return planned.at


class _AllBut(Sequence[str]):
    """``addresses`` without the one at ``skip``, as a view (no copy of a long list per sender).

    ``random.sample`` draws the same from it as from the list it stands for.
    """

    __slots__ = ("_addresses", "_skip")

    def __init__(self, addresses: Sequence[str], skip: int) -> None:
        self._addresses = addresses
        self._skip = skip

    def __len__(self) -> int:
        return len(self._addresses) - 1

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[str]: ...
    def __getitem__(self, index: int | slice) -> str | Sequence[str]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        return self._addresses[index + (index >= self._skip)]


@dataclass(frozen=True, slots=True)
class _PlannedNote:
    """A generated message whose time is drawn; the rest is drawn when it is written."""

    at: float
    source: _TrafficOfOneSender

    def written(self) -> Draft:
        return self.source.write(self.at)


class _TrafficOfOneSender:
    """One sender's Poisson traffic, drawn message by message as the simulation reaches it.

    The draws are those the builder once made all at once, in the same order on the sender's
    own stream (gap, recipients, size, text, attachment for each message, then the next gap),
    so the messages are the same, byte for byte; only now a day of a million messages is never
    held in memory. The stream is drawn at most one message ahead: the next time is drawn only
    after the message before it was written (the user agent writes each before it looks further).
    """

    __slots__ = ("_count", "_pending", "_pool", "_rng", "_spec", "_stop", "_t", "sender")

    def __init__(
        self,
        rng: random.Random,
        spec: schema.TrafficGenerator,
        sender: str,
        pool: Sequence[str],
        stop: float,
    ) -> None:
        self.sender = sender
        self._rng = rng
        self._spec = spec
        self._pool = pool
        self._stop = stop
        self._t = spec.start
        self._count = 0
        self._pending: _PlannedNote | None = None

    def __iter__(self) -> Iterator[_PlannedNote]:
        return self

    def __next__(self) -> _PlannedNote:
        if self._pending is not None:
            self.write(self._pending.at)  # keep the stream's order if a note was skipped
        self._t += self._rng.expovariate(self._spec.rate)
        if self._t >= self._stop:
            raise StopIteration
        self._count += 1
        self._pending = _PlannedNote(self._t, self)
        return self._pending

    def write(self, at: float) -> Draft:
        """The pending note in full: its recipients, text and attachment drawn now."""
        self._pending = None
        rng, spec, pool = self._rng, self._spec, self._pool
        rcpts = rng.sample(pool, min(spec.recipients_per_message, len(pool)))
        body = _filler_text(_draw_size(spec.size, rng), rng)
        attachments: tuple[Attachment, ...] = ()
        if spec.attachment_probability and rng.random() < spec.attachment_probability:
            size = _draw_size(spec.attachment_size, rng)
            attachments = (synthetic_attachment(spec.attachment_kind, size, rng),)
        return Draft(
            at=at,
            to=tuple(rcpts),
            subject=f"Note {self._count} from {self.sender.partition('@')[0]}",
            body=body,
            attachments=attachments,
        )


def _pool_without(addresses: list[str], by_key: dict[str, list[int]], sender: str) -> Sequence[str]:
    """``addresses`` without ``sender``'s mailbox (by :func:`address_key`), as a view when it is
    there once."""
    key = address_key(sender)
    where = by_key.get(key, [])
    if not where:
        return addresses
    if len(where) == 1:
        return _AllBut(addresses, where[0])
    return [a for a in addresses if address_key(a) != key]


def _add_traffic(
    world: World, scenario: schema.Scenario, index: int, spec: schema.TrafficGenerator
) -> None:
    """Poisson traffic: each sender's gaps are exponential with mean 1/rate (one stream each)."""
    everyone = [user.address for user in scenario.users]
    senders = spec.senders or everyone
    recipients = list(spec.recipients or everyone)
    by_key: dict[str, list[int]] = {}  # where each mailbox is in the recipient list
    for position, address in enumerate(recipients):
        by_key.setdefault(address_key(address), []).append(position)
    stop = scenario.duration if spec.stop is None else min(spec.stop, scenario.duration)
    for sender in senders:
        pool = _pool_without(recipients, by_key, sender)
        if not pool:
            continue
        rng = world.streams.get("traffic", index, sender.lower())
        world.plan(sender, _TrafficOfOneSender(rng, spec, sender, pool, stop))


def _add_fault(world: World, fault: object) -> None:
    if isinstance(fault, schema.LinkOutage):
        world.link_down(*fault.link, at=fault.down_at, duration=fault.down_for)
    elif isinstance(fault, schema.NodeCrash):
        world.crash(fault.node, at=fault.crash_at, restart_after=fault.restart_after)
    elif isinstance(fault, schema.ServiceStop):
        world.stop_service(
            fault.service.node, fault.service.port, at=fault.stop_at, duration=fault.stop_for
        )
    elif isinstance(fault, schema.RandomFault):
        if fault.random == "link" and isinstance(fault.target, tuple):
            a, b = fault.target
            world.random_faults("link", a, b, fault.mtbf, fault.mttr)
        else:
            world.random_faults("node", fault.target, fault.mtbf, fault.mttr)
    # Reply faults belong to their server's settings (see _add_servers).
