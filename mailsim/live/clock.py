"""The live servers' clock: scenario time on the wall clock, sped up by the time scale.

A live run counts scenario seconds from the moment it started: ``t = (now - epoch) * scale``, so
with ``--time-scale 60`` one real second is a simulated minute and a 30-minute retry comes round
in 30 seconds. The epoch is a wall-clock (Unix) time kept in the run's folder, so a server that is
stopped and started again, or killed, carries on with the same clock: its queue's retry times
stay meaningful, and the time it was down counts, as it would for a real server.

Only machine-to-machine waits run on this clock (retry times, connect and reply timeouts between
the live servers, scheduled faults), and a wait for a peer that is really there never lasts less
than :data:`MIN_REAL_WAIT`; a person typing at a server keeps the real idle timeouts.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

#: The fastest the clock may run: at a million, one real microsecond is a scenario second, and
#: asyncio's timers (about a millisecond) could no longer keep the order of events.
MAX_TIME_SCALE = 1_000_000.0
#: The shortest a wait for another server lasts, in real seconds, however fast the clock runs:
#: at a time scale of 600 a 10-minute wait for the final reply is one real second, and a server
#: busy with its disk would pass for a dead one (and a retry would deliver a second copy).
MIN_REAL_WAIT = 10.0


class ScaledClock:
    """Scenario seconds since ``epoch``, ``scale`` times faster than the wall clock.

    Args:
        scale: scenario seconds per real second (1: real time).
        epoch: the Unix time of scenario time 0 (default: now).

    Raises:
        ValueError: a scale that is not positive, or above :data:`MAX_TIME_SCALE`.
    """

    def __init__(self, scale: float = 1.0, epoch: float | None = None) -> None:
        if not 0 < scale <= MAX_TIME_SCALE:
            raise ValueError(
                f"the time scale must be above 0 and at most {MAX_TIME_SCALE:,.0f}, got {scale:g}"
            )
        #: Scenario seconds per real second.
        self.scale = float(scale)
        #: Unix time of scenario time 0.
        self.epoch = time.time() if epoch is None else float(epoch)

    def __call__(self) -> float:
        """The scenario time now."""
        return (time.time() - self.epoch) * self.scale

    def real_seconds(self, scenario_seconds: float) -> float:
        """How long ``scenario_seconds`` of scenario time last on the wall clock."""
        return scenario_seconds / self.scale

    def real_wait(self, scenario_seconds: float) -> float:
        """Real seconds to wait for a peer whose timeout is ``scenario_seconds``: the scaled
        time, but at least :data:`MIN_REAL_WAIT`."""
        return max(scenario_seconds / self.scale, MIN_REAL_WAIT)

    def until(self, t: float) -> float:
        """Real seconds from now until scenario time ``t`` (0 if it has passed)."""
        return max(0.0, (t - self()) / self.scale)

    @property
    def start(self) -> datetime:
        """Scenario time 0 as a date (what ``Date:`` and ``Received:`` headers count from)."""
        return datetime.fromtimestamp(self.epoch, UTC).replace(microsecond=0)
