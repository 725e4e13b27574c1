"""Many clients at once, and a crash: every acknowledged message is kept, exactly once.

100 smtplib clients send 20 messages each over their own persistent connection (2,000 in all,
spread over four users), then POP3 fetches them. Every Message-ID must come back exactly once.
The second test does the same against the real ``mailsim serve`` command and kills it with
SIGKILL before fetching: a 250 is sent only after the fsyncs, so a restarted server has them all.
"""

from __future__ import annotations

import email
import email.policy
import poplib
import signal
import smtplib
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from test_live_tutorial import start_serve

from mailsim.live.server import ServeConfig, ServerThread

pytestmark = [pytest.mark.live, pytest.mark.slow]

USERS = {"Steve": "secret", "Anna": "pw-anna", "Ravi": "pw-ravi", "Mei": "pw-mei"}
CLIENTS = 100
PER_CLIENT = 20


def send_batch(port: int, client: int) -> list[str]:
    """One client's 20 messages over one connection; returns their Message-IDs."""
    ids = []
    names = list(USERS)
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
        for n in range(PER_CLIENT):
            message_id = f"<c{client}-m{n}@USA.com>"
            rcpt = f"{names[(client + n) % len(names)]}@India.com"
            content = (
                f"From: James@USA.com\r\nTo: {rcpt}\r\nSubject: {client}/{n}\r\n"
                f"Message-ID: {message_id}\r\n\r\nmessage {n} of client {client}\r\n"
            )
            assert smtp.sendmail("James@USA.com", [rcpt], content) == {}
            ids.append(message_id)
    return ids


def send_all(port: int) -> list[str]:
    with ThreadPoolExecutor(CLIENTS) as pool:
        batches = [pool.submit(send_batch, port, client) for client in range(CLIENTS)]
        return [mid for batch in batches for mid in batch.result(timeout=120)]


def fetch_ids(port: int) -> Counter[str]:
    found: Counter[str] = Counter()
    for user, password in USERS.items():
        pop = poplib.POP3("127.0.0.1", port, timeout=30)
        pop.user(user)
        pop.pass_(password)
        count, _ = pop.stat()
        for number in range(1, count + 1):
            _, lines, _ = pop.retr(number)
            parsed = email.message_from_bytes(b"\r\n".join(lines), policy=email.policy.default)
            found[parsed["Message-ID"]] += 1
        pop.quit()
    return found


def test_100_concurrent_clients_20_messages_each_all_retrievable_once(tmp_path):
    config = ServeConfig(
        domains=("India.com",),
        users=USERS,
        maildir=tmp_path / "maildir",
        smtp_port=0,
        submission_port=0,
        pop3_port=0,
        max_per_address=CLIENTS,  # every client here comes from 127.0.0.1 (default cap: 50)
    )
    with ServerThread(config) as running:
        sent = send_all(running.ports["smtp"])
        found = fetch_ids(running.ports["pop3"])
    assert len(sent) == len(set(sent)) == CLIENTS * PER_CLIENT
    assert found == Counter(sent)  # each exactly once, none lost, none duplicated


def test_every_acknowledged_message_survives_sigkill_and_restart(tmp_path):
    maildir = tmp_path / "maildir"
    args = ["--domain", "India.com", f"--max-per-address={CLIENTS}"]
    args += [f"--user={u}:{p}" for u, p in USERS.items()]
    process, ports = start_serve(maildir, *args)
    try:
        sent = send_all(ports["smtp"])
    finally:
        process.send_signal(signal.SIGKILL)  # no chance to flush anything
        process.communicate(timeout=10)
    assert process.returncode == -signal.SIGKILL

    process, ports = start_serve(maildir, *args)
    try:
        found = fetch_ids(ports["pop3"])
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=15)
    assert found == Counter(sent)
