"""The brake on password guessing: per-client-address login failures, a delay and a lockout.

Without it, reconnecting is free and a script tries about 12,000 SMTP AUTH or 800 POP3 PASS
passwords a second. Each failure is remembered per client address for ``window`` seconds. Every
failed login is answered only after ``delay`` seconds (Dovecot's ``auth_failure_delay``, 2 s;
Postfix sleeps ``smtpd_error_sleep_time``, 1 s), and the session reads nothing meanwhile, so one
connection tries at most one password per delay. An address with ``limit`` failures inside the
window is locked out until the oldest of them is ``window`` seconds old: its logins are refused
without looking at the password, so opening many connections gains nothing either. With the
defaults (2 s, 10 failures, 300 s) an address gets at most 10 guesses in 5 minutes.

Both SMTP (AUTH) and POP3 (PASS, APOP) share one throttle per server. Loopback is not exempt: a
student's script on the same machine is exactly who trips it; the lockout lasts minutes, not
hours, and the log says when it starts.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

#: Seconds before a failed login is answered (Dovecot's auth_failure_delay default).
DEFAULT_FAILURE_DELAY = 2.0
#: Failed logins from one address within the window that lock the address out.
DEFAULT_LOCKOUT_FAILURES = 10
#: How long a failure is remembered, in seconds (and so the longest a lockout lasts).
DEFAULT_LOCKOUT_WINDOW = 300.0
# Past this many remembered addresses, every expired one is forgotten at the next failure (a
# guesser rotating through addresses must not grow the table without bound).
_PRUNE_AT = 10_000


class LoginThrottle:
    """Per-address failed-login memory (see the module docstring). Safe across threads.

    Args:
        delay: seconds before a failure is answered.
        limit: failures within ``window`` that lock an address out (0: never).
        window: seconds a failure is remembered.
        clock: the time source (tests pass a fake one).
    """

    def __init__(
        self,
        delay: float = DEFAULT_FAILURE_DELAY,
        limit: int = DEFAULT_LOCKOUT_FAILURES,
        window: float = DEFAULT_LOCKOUT_WINDOW,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        #: Seconds before a failed login is answered.
        self.delay = delay
        #: Failures that lock an address out.
        self.limit = limit
        #: Seconds a failure is remembered.
        self.window = window
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, address: str, now: float) -> deque[float] | None:
        times = self._failures.get(address)
        if times is None:
            return None
        while times and now - times[0] >= self.window:
            times.popleft()
        if not times:
            del self._failures[address]  # forget quiet addresses: the table stays small
            return None
        return times

    def locked_for(self, address: str) -> float:
        """Seconds until ``address`` may try again (0.0: not locked out)."""
        if self.limit <= 0:
            return 0.0
        with self._lock:
            now = self._clock()
            times = self._recent(address, now)
            if times is None or len(times) < self.limit:
                return 0.0
            return max(times[-self.limit] + self.window - now, 0.0)

    def failed(self, address: str) -> float:
        """Remember one failed login from ``address``; returns :meth:`locked_for` after it."""
        with self._lock:
            now = self._clock()
            if len(self._failures) >= _PRUNE_AT:
                for known in list(self._failures):
                    self._recent(known, now)
            times = self._recent(address, now)
            if times is None:
                times = self._failures[address] = deque()
            times.append(now)
            # More than the limit is never needed to decide a lockout.
            while self.limit > 0 and len(times) > self.limit:
                times.popleft()
            if self.limit <= 0 or len(times) < self.limit:
                return 0.0
            return max(times[0] + self.window - now, 0.0)

    def addresses(self) -> int:
        """How many addresses have failures remembered (for tests and the log)."""
        with self._lock:
            return len(self._failures)
