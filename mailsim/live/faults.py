"""Scripted replies for the live server (``mailsim serve --fault``): which command gets what.

A :class:`LiveFault` is a validated ``--fault`` spec (:mod:`mailsim.scenario.fault_spec`) in
the live server's terms: times in seconds since the server started, the role it applies to.
:class:`FaultBook` holds them for one server and answers, for each command of each session,
whether a fault hits it; it remembers the greylisting triplets (client address, sender,
recipient) across sessions, as postgrey does, so a retry passes.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

from mailsim.protocol.smtp import Reply

__all__ = ["FaultBook", "LiveFault"]

#: A fault's ``command`` names the greeting ``CONNECT`` and the end of the message ``DOT``.
COMMANDS = frozenset({"CONNECT", "HELO", "EHLO", "MAIL", "RCPT", "DATA", "DOT"})


@dataclass(frozen=True)
class LiveFault:
    """One scripted reply.

    Attributes:
        command: ``CONNECT``, ``HELO``, ``EHLO``, ``MAIL``, ``RCPT``, ``DATA`` or ``DOT``.
        code: the reply code, or None to keep the normal reply (with ``delay``: a slow server).
        lines: the reply's text lines (several: a multi-line reply); the CLI fills in the
            scenario language's default text for the code when none is given.
        address: only a MAIL FROM / RCPT TO naming this address (any case); None: any.
        delay: seconds to wait before the reply, and between the lines of a multi-line one.
        start: seconds after the server's start from which it applies.
        until: seconds after the start until which it applies (None: for ever).
        probability: the chance that a matching command is hit.
        first_attempt_only: greylisting: only the first (client, sender, recipient) try.
        role: ``smtp``, ``submission`` or ``smtps``; None: every SMTP listener.
    """

    command: str
    code: int | None = None
    lines: tuple[str, ...] = ()
    address: str | None = None
    delay: float = 0.0
    start: float = 0.0
    until: float | None = None
    probability: float = 1.0
    first_attempt_only: bool = False
    role: str | None = None

    def __post_init__(self) -> None:
        if self.command not in COMMANDS:
            raise ValueError(
                f"a fault's command is one of {sorted(COMMANDS)}, got {self.command!r}"
            )
        if self.code is None and self.delay <= 0:
            raise ValueError("a fault needs a code or a delay")

    def reply(self) -> Reply | None:
        """The reply that replaces the normal one, or None (only a delay)."""
        if self.code is None:
            return None
        return Reply(self.code, self.lines or ("",))


def _address_of(arg: str) -> str:
    """The address of ``FROM:<a@b> SIZE=1`` or ``TO:<a@b>``, lower case ("" if none)."""
    start, end = arg.find("<"), arg.find(">")
    return arg[start + 1 : end].lower() if 0 <= start < end else ""


class FaultBook:
    """The faults of one live server, and the greylisting memory they share.

    Args:
        faults: the scripted replies, in the order given (the first that matches wins).
        seed: seeds the draws of ``probability`` (None: unpredictable).
    """

    def __init__(self, faults: tuple[LiveFault, ...], seed: int | None = None) -> None:
        #: The faults.
        self.faults = faults
        self._started = time.monotonic()
        self._random = random.Random(seed)
        self._greylist: set[tuple[str, str, str]] = set()

    def __bool__(self) -> bool:
        return bool(self.faults)

    def match(
        self, role: str, command: str, arg: str = "", *, peer: str = "", sender: str = ""
    ) -> LiveFault | None:
        """The fault that hits ``command`` (with ``arg``) in a session of ``role`` now, or None.

        Args:
            role: the listener (``smtp``, ``submission``, ``smtps``).
            command: the upper-case verb, or ``CONNECT`` / ``DOT``.
            arg: the command's argument (MAIL/RCPT name their address in it).
            peer: the client's address (greylisting).
            sender: the session's MAIL FROM argument so far (greylisting).
        """
        now = time.monotonic() - self._started
        for fault in self.faults:
            if fault.command != command or (fault.role is not None and fault.role != role):
                continue
            if now < fault.start or (fault.until is not None and now >= fault.until):
                continue
            if fault.address is not None and _address_of(arg) != fault.address.lower():
                continue
            if fault.probability < 1.0 and self._random.random() >= fault.probability:
                continue
            if fault.first_attempt_only:
                triplet = (peer, _address_of(sender), _address_of(arg))
                if triplet in self._greylist:
                    continue
                self._greylist.add(triplet)
            return fault
        return None
