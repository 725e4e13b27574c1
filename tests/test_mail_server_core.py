"""The mail-server core on its own: no simulator, no sockets, a clock that is a number.

Two cores, india-mail and usa-mail, are joined by their protocol machines in memory, the way both
adapters (nodes.mailserver on SimPy, live on asyncio) drive them. The tests walk through what a
mail server decides: queue a message, fail to connect and defer it by the retry policy, deliver it
over SMTP on the retry, bounce what expires, lose a non-durable queue in a crash.
"""

from __future__ import annotations

import random
import subprocess
import sys
from typing import Any

from mailsim.mail.mailbox import MailStore
from mailsim.mail.message import MailItem
from mailsim.mail.retry import FixedRetry
from mailsim.mail.server import ClientSession, MailServerCore, ServerSettings
from mailsim.protocol.smtp import (
    NEED_DATA,
    PAUSED,
    Accept,
    ClientState,
    MessageReceived,
    Reject,
    SMTPServer,
)
from mailsim.trace.recorder import Recorder

INDIA_IP, USA_IP = "192.0.2.1", "198.51.100.1"


class Clock:
    """Simulated seconds that a test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def make_core(
    node: str, domain: str, users: dict[str, str], clock: Clock, trace: Recorder, **settings: Any
) -> MailServerCore:
    return MailServerCore(
        node,
        [domain],
        users,
        ServerSettings(**settings),
        clock=clock,
        trace=trace,
        store=MailStore(users),
        note_arrival=lambda item, node, kind: None,
        retry_rng=random.Random(1),
        fault_rng=random.Random(2),
        own_address=INDIA_IP if node == "india-mail" else USA_IP,
    )


def converse(session: ClientSession, receiver: MailServerCore, peer_ip: str) -> list[str]:
    """Run ``session`` against ``receiver``'s MX port in memory; returns the lines sent."""
    policy = receiver.policy(peer_ip, submission=False, port=25)
    server = SMTPServer(
        receiver.hostname, peer=peer_ip, policy=policy, greeting=receiver.greeting(policy)
    )
    client = session.client
    lines: list[str] = []
    for _ in range(1000):
        moved = False
        out = b""
        while (event := server.next_event()) is not NEED_DATA:
            if event is PAUSED:
                break
            if isinstance(event, MessageReceived):
                out += server.data_to_send()
                refusal = receiver.refusal(policy, event)
                if refusal is not None:
                    out += server.send(Reject(refusal))
                else:
                    out += server.send(Accept(receiver.take_message(event, policy, peer_ip, None)))
        out += server.data_to_send()
        if out:
            lines += [f"S: {line}" for line in out.decode().splitlines()]
            client.receive_data(out)
            moved = True
        while (client_event := client.next_event()) is not NEED_DATA:
            session.handle(client_event)
        out = client.data_to_send()
        if out:
            lines += [f"C: {line}" for line in out.decode().splitlines()]
            server.receive_data(out)
            moved = True
        if client.state in (ClientState.CLOSED, ClientState.ERROR) or not moved:
            break
    return lines


def types(trace: Recorder, *kinds: str) -> list[dict[str, Any]]:
    return list(trace.of_type(*kinds))


def test_a_failed_connect_defers_by_the_policy_and_the_retry_delivers_over_smtp() -> None:
    clock = Clock()
    trace = Recorder(clock, strict=True)
    india = make_core("india-mail", "india.com", {"james": "grammar"}, clock, trace)
    usa = make_core("usa-mail", "usa.com", {"steve": "atlas"}, clock, trace)
    wakes: list[float] = []
    india.on_wake = lambda: wakes.append(clock.now)
    clock.now = 60.0
    india.accept_item(
        MailItem(
            "m1@india.com",
            "james@india.com",
            ("steve@usa.com",),
            b"Subject: Books\r\n\r\nAtlas?\r\n",
        )
    )
    assert wakes == [60.0]  # the runner is woken for the new message

    (job,), _ = india.plan()
    assert job.domain == "usa.com"
    job.announce("usa-mail", conn=1)
    clock.now = 90.0  # the connect times out 30 s later
    job.connect_failed("usa-mail", USA_IP, 25, "timeout", "")
    job.finish()
    india.delivery_ended(job)
    (defer,) = types(trace, "mail.defer")
    assert defer["reply"] == f"451 4.4.1 connect to usa-mail[{USA_IP}]:25: Connection timed out"
    # The tutorial's policy: 30 minutes plus up to 10 minutes of jitter.
    assert 90 + 1800 <= defer["next_attempt"] <= 90 + 2400
    assert india.plan() == ([], defer["next_attempt"])  # nothing due; wake at the retry

    clock.now = defer["next_attempt"]
    (job,), _ = india.plan()
    job.announce("usa-mail", conn=2)
    session = job.session("usa-mail", conn=2)
    lines = converse(session, usa, INDIA_IP)
    job.session_ended(session)
    job.finish()
    india.delivery_ended(job)

    assert lines[0] == "S: 220 usa.com ESMTP mailsim" and lines[-1] == "S: 221 2.0.0 Bye"
    assert "C: RCPT TO:<steve@usa.com>" in lines
    (sent,) = types(trace, "mail.sent")
    assert sent["msg"] == "m1@india.com" and sent["mx"] == "usa-mail"
    assert len(india.queue) == 0
    (stored,) = usa.store.get("steve").messages  # type: ignore[attr-defined]
    # Final delivery records the reverse-path and the recipient (RFC 5321 4.4), above the stamp.
    assert stored.content.startswith(
        b"Return-Path: <james@india.com>\r\nDelivered-To: steve@usa.com\r\n"
        b"Received: from india.com ([192.0.2.1])"
    )
    assert [r["conn"] for r in types(trace, "mail.attempt")] == [1, 2]


def test_a_message_past_the_give_up_age_bounces_into_the_senders_mailbox() -> None:
    clock = Clock()
    trace = Recorder(clock, strict=True)
    policy = FixedRetry(interval=600, jitter=0, give_up_after=1500)
    india = make_core("india-mail", "india.com", {"james": "grammar"}, clock, trace, retry=policy)
    india.accept_item(
        MailItem("m1@india.com", "james@india.com", ("steve@usa.com",), b"Subject: x\r\n\r\nx\r\n")
    )
    for _ in range(10):
        jobs, next_due = india.plan()
        for job in jobs:
            job.announce("usa-mail", conn=0)
            job.connect_failed("usa-mail", USA_IP, 25, "refused", "")
            job.finish()
            india.delivery_ended(job)  # kicks the runner, which plans again at once
        if jobs:
            continue
        if next_due is None:
            break
        clock.now = next_due
    assert [r["t"] for r in types(trace, "mail.defer")] == [0.0, 600.0, 1200.0]
    (expire,) = types(trace, "mail.expire")
    assert expire["t"] == 1800.0  # the first try past 1500 s gives up
    (bounce,) = types(trace, "mail.bounce")
    assert bounce["reply"].endswith("Connection refused")
    (report,) = india.store.get("james").messages  # type: ignore[attr-defined]
    assert b"Action: failed" in report.content and b"steve@usa.com" in report.content


def test_a_crash_loses_a_non_durable_queue_and_says_so_for_each_recipient() -> None:
    clock = Clock()
    trace = Recorder(clock, strict=True)
    india = make_core("india-mail", "india.com", {"james": "grammar"}, clock, trace, durable=False)
    item = MailItem("m1@india.com", "james@india.com", ("a@usa.com", "b@uk.com"), b"\r\nx\r\n")
    india.accept_item(item)
    jobs, _ = india.plan()
    assert sorted(job.domain for job in jobs) == ["uk.com", "usa.com"]
    india.crash()
    assert [r["rcpt"] for r in types(trace, "mail.lost")] == ["a@usa.com", "b@uk.com"]
    for job in jobs:  # the jobs end after the crash: they no longer count
        india.delivery_ended(job)
    india.restart()
    assert india.plan() == ([], None)


def test_a_durable_queue_survives_a_crash_and_attempts_in_flight_are_due_again() -> None:
    clock = Clock()
    trace = Recorder(clock, strict=True)
    india = make_core("india-mail", "india.com", {"james": "grammar"}, clock, trace)
    india.accept_item(MailItem("m1@india.com", "james@india.com", ("a@usa.com",), b"\r\nx\r\n"))
    (job,), _ = india.plan()
    india.crash()
    india.delivery_ended(job)
    clock.now = 100.0
    india.restart()
    (again,), _ = india.plan()
    assert again.waiting[0].entry.item.id == "m1@india.com"
    assert not types(trace, "mail.lost")


def test_the_mx_port_refuses_relaying_and_unknown_users() -> None:
    clock = Clock()
    trace = Recorder(clock)
    usa = make_core("usa-mail", "usa.com", {"steve": "atlas"}, clock, trace)
    policy = usa.policy(INDIA_IP, submission=False, port=25)
    session: Any = None
    assert policy.check_recipient(session, "steve@USA.com", None) is None
    unknown = policy.check_recipient(session, "nobody@usa.com", None)
    relay = policy.check_recipient(session, "ravi@india.com", None)
    assert unknown is not None and unknown.code == 550 and "User unknown" in unknown.text
    assert relay is not None and relay.code == 550 and "Relay access denied" in relay.text


def test_the_core_imports_no_simulator_and_no_event_loop() -> None:
    code = (
        "import sys, mailsim.mail.server; "
        "bad = {'simpy', 'asyncio', 'networkx', 'matplotlib'} & set(sys.modules); "
        "assert not bad, sorted(bad)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
