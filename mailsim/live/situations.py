"""The situations ``mailsim grade`` puts a student's SMTP client in, and how each is judged.

Each :class:`Situation` is a fresh live server set up one way (scripted faults, TLS, no
PIPELINING) and a message for the client to send. The judges look only at what is observable:
the session records of :mod:`mailsim.live.session_report` (every line, its reply, and how long
after that reply the next line came) and the Maildir. A judge returns None when the client did
right, or a :class:`Finding`: the reason in a sentence and the transcript lines that prove it.

The client's contract (the grader's help says it too): connect to ``{host}``:``{port}`` (also
``SMTP_HOST``/``SMTP_PORT``), send the message in the file ``{message}`` (``MAIL_FILE``; its
lines end in LF, send them with CRLF) from ``{from}`` (``MAIL_FROM``) to each address of ``{to}``
(``MAIL_TO``, comma-separated), then QUIT. ``SMTP_CAFILE`` is the CA to trust for STARTTLS.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mailsim.live.session_report import SMTP_VERBS
from mailsim.mail.server import ReplyFault

__all__ = ["SITUATIONS", "Finding", "Outcome", "Situation"]

SENDER = "james@india.com"
RECIPIENT = "steve@usa.com"
UNKNOWN = "nobody@usa.com"

_PLAIN = """From: James <james@india.com>
To: Steve <steve@usa.com>
Subject: Hello from the lab

Hi Steve,
I love computer networks!
James
"""

# RFC 5321 4.5.2: a line that is a single dot would end the message; the client must double it.
_DOTS = """From: James <james@india.com>
To: Steve <steve@usa.com>
Subject: Dots

The next line is a single dot:
.
..and this one starts with two, this with one:
.signature
.
The end.
"""


@dataclass(frozen=True)
class Finding:
    """Why a situation failed: a sentence and the transcript lines that show it."""

    reason: str
    evidence: tuple[str, ...] = ()


@dataclass
class Outcome:
    """What the grader observed in one run: the client's exit and the server's side.

    Attributes:
        sessions: one session record per SMTP connection (see ``SessionRecorder.record``).
        delivered: how many messages each mailbox got.
        exit_code: the client's exit status, or None if it was killed at the timeout.
        timed_out: the client did not exit within its time.
        output: the last lines the client printed (stdout and stderr).
    """

    sessions: list[dict[str, Any]]
    delivered: dict[str, int]
    exit_code: int | None
    timed_out: bool
    output: str = ""


Judge = Callable[["Situation", Outcome], Finding | None]


@dataclass(frozen=True)
class Situation:
    """One way the server behaves, the message to send, and the judges that apply.

    Attributes:
        name: the short name (``--situations``).
        title: the report card's words.
        recipients: the addresses given to the client.
        message: the message file's text (LF line ends).
        faults: the server's scripted replies.
        tls: offer STARTTLS.
        pipelining: advertise PIPELINING.
        strict: refuse improper pipelining (554 5.5.0).
        deliver_to: mailboxes that must get the message intact (empty: nothing may arrive).
        judges: the checks, in order; the first that finds a fault decides the reason.
    """

    name: str
    title: str
    recipients: tuple[str, ...] = (RECIPIENT,)
    message: str = _PLAIN
    faults: tuple[ReplyFault, ...] = ()
    tls: bool = False
    pipelining: bool = True
    strict: bool = False
    deliver_to: tuple[str, ...] = ("steve",)
    judges: tuple[Judge, ...] = field(default_factory=tuple)

    def expected_content(self) -> bytes:
        """The message as it must arrive: the file's lines with CRLF."""
        return self.message.replace("\n", "\r\n").encode("ascii")


# --- reading the records -------------------------------------------------------------------------


def _lines(session: dict[str, Any]) -> list[dict[str, Any]]:
    return list(session["dialogue"])


def _shown(item: dict[str, Any], *, reply: bool = True) -> list[str]:
    """An exchange as transcript lines: ``C: ...`` and its ``S: ...``, with the wait."""
    wait = item.get("wait")
    timing = ""
    if wait is not None:
        timing = (
            f"   ({wait * 1000:.1f} ms after the previous reply)"
            if wait >= 0
            else f"   (sent {-wait * 1000:.1f} ms BEFORE the previous reply was complete)"
        )
    out = [f"C: {item['C']}{timing}"]
    if reply:
        out += [f"S: {line}" for line in item["S"]] or ["S: (no reply)"]
    return out


def _code(item: dict[str, Any]) -> str:
    return item["S"][-1][:3] if item["S"] else ""


def _verb(item: dict[str, Any]) -> str:
    return str(item["C"]).split(" ", 1)[0].upper()


# --- judges --------------------------------------------------------------------------------------


def connected(situation: Situation, outcome: Outcome) -> Finding | None:
    """The client connected and said something."""
    if not outcome.sessions:
        tail = outcome.output.strip().splitlines()[-3:]
        return Finding("the client never connected to the server", tuple(tail))
    if not any(_lines(s) for s in outcome.sessions):
        return Finding(
            "the client connected but sent nothing", tuple(outcome.sessions[0]["greeting"])
        )
    return None


def exited_in_time(situation: Situation, outcome: Outcome) -> Finding | None:
    """The client ended by itself within its time."""
    if outcome.timed_out:
        last = [line for s in outcome.sessions for item in _lines(s)[-2:] for line in _shown(item)]
        return Finding("the client did not exit within its time (killed)", tuple(last[-4:]))
    return None


def delivered_intact(situation: Situation, outcome: Outcome) -> Finding | None:
    """The message arrived in every expected mailbox byte for byte (CRLF, dot-stuffing)."""
    expected = situation.expected_content()
    accepted = [
        item
        for s in outcome.sessions
        for item in _lines(s)
        if item["kind"] == "text" and _code(item).startswith("2")
    ]
    for box in situation.deliver_to:
        if not outcome.delivered.get(box):
            rcpts = [
                line
                for s in outcome.sessions
                for item in _lines(s)
                if _verb(item) in ("RCPT", "DATA") or item["kind"] == "text"
                for line in _shown(item)
            ]
            return Finding(f"no message was delivered to {box}", tuple(rcpts[-6:]))
        sent = [item["text"].encode("latin-1") for item in accepted]
        if sent and expected not in sent:
            return Finding(*_difference(expected, sent[-1]))
    if not situation.deliver_to:
        stored = sum(outcome.delivered.values())
        if stored:
            return Finding(f"{stored} message(s) were stored though the server refused them")
    return None


def _difference(expected: bytes, got: bytes) -> tuple[str, tuple[str, ...]]:
    """Why ``got`` is not ``expected``: the first line that differs, in words."""
    if b"\n" in got.replace(b"\r\n", b""):
        return "the message's lines do not end in CRLF (RFC 5321 2.3.8)", (repr(got[:80]),)
    want, have = expected.split(b"\r\n")[:-1], got.split(b"\r\n")[:-1]
    for number, (a, b) in enumerate(zip(want, have, strict=False), 1):
        if a != b:
            reason = f"line {number} of the message arrived changed"
            if a.startswith(b".") and b == a[1:]:
                reason += " (a leading '.' must be doubled: dot-stuffing, RFC 5321 4.5.2)"
            return reason, (f"expected: {a!r}", f"stored:   {b!r}")
    if len(have) < len(want):
        missing = want[len(have)]
        reason = "the message arrived cut short"
        if missing == b".":
            reason += ": a line of a single '.' ended it (not dot-stuffed, RFC 5321 4.5.2)"
        return reason, (f"first missing line: {missing!r}",)
    return "the message arrived with extra lines", (f"first extra line: {have[len(want)]!r}",)


def waited_for_replies(situation: Situation, outcome: Outcome) -> Finding | None:
    """Every command came after the reply to the one before (no PIPELINING: RFC 5321 4.3)."""
    for session in outcome.sessions:
        improper = session["verdicts"].get("improper_pipelining")
        for item in _lines(session):
            if (
                item["kind"] in ("command", "text")
                and item["wait"] is not None
                and item["wait"] < 0
            ):
                return Finding(
                    "a command was sent before the reply to the previous one (PIPELINING was not "
                    "offered; RFC 5321 4.3)",
                    tuple(_shown(item)),
                )
        if improper:
            return Finding(
                f"the server saw input before its reply to {improper['after']} and answered "
                "554 5.5.0 (improper pipelining)",
                (
                    f"C: {improper['unexpected']}",
                    "S: 554 5.5.0 Error: SMTP protocol synchronization",
                ),
            )
    return None


def read_multiline_whole(situation: Situation, outcome: Outcome) -> Finding | None:
    """No command came while a multi-line reply was still arriving (RFC 5321 4.2.1)."""
    for session in outcome.sessions:
        items = _lines(session)
        for before, item in itertools.pairwise(items):
            if len(before["S"]) < 2 or item["wait"] is None or item["wait"] >= 0:
                continue
            first = before["t_reply_first"]
            if first is not None and item["t"] > first:
                # It came after the reply began and before it ended: read in part.
                return Finding(
                    "the client sent its next command before the whole multi-line reply had "
                    "arrived (a reply ends at the line with a space after the code)",
                    tuple(_shown(before) + _shown(item, reply=False)),
                )
    return None


def sent_every_recipient(situation: Situation, outcome: Outcome) -> Finding | None:
    """The client gave a RCPT TO for each address it was told to send to."""
    named = {
        str(item["C"]).lower()
        for s in outcome.sessions
        for item in _lines(s)
        if _verb(item) == "RCPT"
    }
    for address in situation.recipients:
        if not any(address.lower() in line for line in named):
            return Finding(f"no RCPT TO for {address} (MAIL_TO lists it)", tuple(sorted(named)))
    return None


def no_data_after_all_refused(situation: Situation, outcome: Outcome) -> Finding | None:
    """No DATA once every RCPT of the transaction was refused (RFC 5321 3.3)."""
    for session in outcome.sessions:
        accepted = 0
        refused: list[dict[str, Any]] = []
        for item in _lines(session):
            verb = _verb(item)
            if verb in ("MAIL", "RSET", "EHLO", "HELO"):
                accepted, refused = 0, []
            elif verb == "RCPT":
                if _code(item).startswith("2"):
                    accepted += 1
                else:
                    refused.append(item)
            elif verb == "DATA" and refused and not accepted:
                last = refused[-1]
                if last["t_reply"] is not None and item["t"] > last["t_reply"]:
                    return Finding(
                        "DATA was sent after every recipient had been refused",
                        tuple(_shown(last) + _shown(item)),
                    )
    return None


def no_text_after_refused_data(situation: Situation, outcome: Outcome) -> Finding | None:
    """No message text after DATA got a 4xx/5xx instead of 354 (RFC 5321 4.1.1.4)."""
    for session in outcome.sessions:
        items = _lines(session)
        for index, item in enumerate(items):
            if _verb(item) != "DATA" or _code(item) in ("354", "") or item["t_reply"] is None:
                continue
            for later in items[index + 1 :]:
                if later["t"] <= item["t_reply"]:
                    continue  # sent before it could read the refusal: the sync judge's business
                if _verb(later) in SMTP_VERBS or later["kind"] == "after close":
                    break
                return Finding(
                    "message text was sent although DATA was refused (a 4xx/5xx is not 354)",
                    tuple(_shown(item) + _shown(later)),
                )
    return None


def quit_sent(situation: Situation, outcome: Outcome) -> Finding | None:
    """The client ended its last session with QUIT (RFC 5321 4.1.1.10)."""
    last = outcome.sessions[-1] if outcome.sessions else None
    if last is None:
        return None
    commands = [item for item in _lines(last) if item["kind"] in ("command", "after close")]
    if last["verdicts"].get("ending") == "421 greeting":
        return None
    if not commands or _verb(commands[-1]) != "QUIT":
        shown = _shown(commands[-1]) if commands else []
        return Finding("the session did not end with QUIT", tuple(shown))
    return None


def nothing_after_421(situation: Situation, outcome: Outcome) -> Finding | None:
    """After a 421 the client stops: the server is closing (RFC 5321 3.8)."""
    for session in outcome.sessions:
        items = _lines(session)
        for index, item in enumerate(items):
            if _code(item) != "421" or item["t_reply"] is None:
                continue
            for later in items[index + 1 :]:
                if later["t"] > item["t_reply"] and _verb(later) != "QUIT":
                    return Finding(
                        "the client went on after 421 (the server had closed the session)",
                        tuple(_shown(item) + _shown(later, reply=False)),
                    )
    return None


def ehlo_after_starttls(situation: Situation, outcome: Outcome) -> Finding | None:
    """After STARTTLS the client starts over with EHLO (RFC 3207 4.2)."""
    for session in outcome.sessions:
        marks = [m["t"] for m in session["marks"] if m["what"] == "TLS started"]
        if not marks:
            continue
        after = [item for item in _lines(session) if item["t"] > marks[0]]
        if after and _verb(after[0]) not in ("EHLO", "QUIT"):
            return Finding(
                "after STARTTLS the client did not say EHLO again (RFC 3207 4.2)",
                tuple(_shown(after[0])),
            )
    return None


_COMMON = (connected, exited_in_time)

#: Every situation, in the order of the report card.
SITUATIONS: dict[str, Situation] = {
    s.name: s
    for s in (
        Situation(
            "plain",
            "plain delivery",
            judges=(*_COMMON, delivered_intact, quit_sent),
        ),
        Situation(
            "dot-line",
            "a body with a line of a single dot",
            message=_DOTS,
            judges=(*_COMMON, delivered_intact, quit_sent),
        ),
        Situation(
            "multiline-ehlo",
            "multi-line EHLO reply, written slowly",
            faults=(ReplyFault("EHLO", delay=0.25),),
            judges=(*_COMMON, read_multiline_whole, delivered_intact, quit_sent),
        ),
        Situation(
            "unknown-recipient",
            "unknown recipient among two",
            recipients=(RECIPIENT, UNKNOWN),
            judges=(*_COMMON, sent_every_recipient, delivered_intact, quit_sent),
        ),
        Situation(
            "greylisting",
            "greylisting (451 4.7.1 on the first try)",
            faults=(
                ReplyFault(
                    "RCPT",
                    451,
                    ("4.7.1 <steve@usa.com>: Recipient address rejected: Greylisted",),
                    first_attempt_only=True,
                ),
            ),
            deliver_to=(),
            judges=(*_COMMON, no_data_after_all_refused, no_text_after_refused_data, quit_sent),
        ),
        Situation(
            "too-big",
            "message too big (552 on DATA)",
            faults=(ReplyFault("DATA", 552, ("5.3.4 Message size exceeds fixed maximum size",)),),
            deliver_to=(),
            judges=(*_COMMON, no_text_after_refused_data, delivered_intact, quit_sent),
        ),
        Situation(
            "service-closing",
            "service closing (421 after MAIL)",
            faults=(ReplyFault("MAIL", 421, ("4.3.2 Service shutting down, closing channel",)),),
            deliver_to=(),
            judges=(*_COMMON, nothing_after_421, delivered_intact),
        ),
        Situation(
            "no-pipelining",
            "no PIPELINING advertised (strict synchronisation)",
            pipelining=False,
            strict=True,
            judges=(*_COMMON, waited_for_replies, delivered_intact, quit_sent),
        ),
        Situation(
            "starttls",
            "STARTTLS offered",
            tls=True,
            judges=(*_COMMON, ehlo_after_starttls, delivered_intact, quit_sent),
        ),
    )
}
