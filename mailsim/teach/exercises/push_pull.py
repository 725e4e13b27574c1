"""Checks of notebook 07, "Push and pull": round trips, octets on the wire, polling."""

from __future__ import annotations

from typing import Any

from mailsim.teach import lookup
from mailsim.teach.checking import Verdict, close_to, same


def waits_per_message(result: Any, conn: int) -> float:
    """Round trips the client waited for per message on an SMTP connection: the bursts of
    server replies between the first MAIL FROM and QUIT, divided by the messages carried."""
    lines = lookup.protocol_lines(result, conn)
    first_mail = next(i for i, r in enumerate(lines) if r["line"].startswith("MAIL FROM"))
    quit_at = next(i for i, r in enumerate(lines) if r["line"] == "QUIT")
    bursts = {r["t"] for r in lines[first_mail:quit_at] if r["side"] == "S"}
    messages = sum(1 for r in lines if r["line"].startswith("MAIL FROM"))
    return len(bursts) / messages


def check_waits_per_message(answer: Any, result: Any, conn: int) -> Verdict:
    """Round trips per message once the connection is open."""
    return close_to(
        answer,
        waits_per_message(result, conn),
        tolerance=0.01,
        hint="with PIPELINING, MAIL, RCPT and DATA go together and their replies come back "
        "together; then the text and the dot go, and the client waits once more",
    )


def extra_smtp_octets(result: Any, path: str, msg: str) -> int:
    """Octets the message ``msg`` took on SMTP beyond the file ``path`` on HTTP."""
    pushed = lookup.first(result, "mail.submit", msg=msg)["size"]
    pulled = lookup.first(result, "web.download", path=path)["size"]
    return int(pushed - pulled)


def check_extra_octets(answer: Any, result: Any, path: str, msg: str) -> Verdict:
    """How many more octets SMTP carried than HTTP for the same file."""
    return close_to(
        answer,
        extra_smtp_octets(result, path, msg),
        tolerance=1,
        unit="octets",
        hint="subtract the web.download size of the file from the mail.submit size of the "
        "message that carried it (base64, plus the message's headers)",
    )


def first_read(interval: float) -> float:
    """Minutes from the start until Steve's user agent first fetches mail in push-and-pull,
    when it checks every ``interval`` seconds (a run of the scenario)."""
    import mailsim

    scenario = mailsim.load("push-and-pull")
    scenario.users[1].check_mail_every = interval
    run = scenario.run()
    return float(lookup.first(run, "mail.fetch", user="steve")["t"]) / 60


def check_first_read(answer: Any, interval: float) -> Verdict:
    """When Steve first reads his mail if his agent checks every ``interval`` seconds."""
    return close_to(
        answer,
        first_read(interval),
        tolerance=0.1,
        unit="min",
        hint="the mail is in his mailbox after about a minute, but his user agent looks only "
        "at multiples of the interval (the first check is one interval after the start)",
    )


def check_fastest_mode(answer: Any, times: dict[str, float]) -> Verdict:
    """Which HTTP connection mode fetched the three files soonest."""
    return same(
        answer,
        min(times, key=lambda mode: times[mode]),
        hint="compare the seconds in the table; answer with the mode's name",
    )
