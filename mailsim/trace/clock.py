"""The clock every output of a run shares: simulated seconds after one fixed wall-clock instant.

Simulated t = 0 is :data:`SIM_EPOCH`. The ``Date:`` headers of simulated messages, the packet
times of ``trace.pcap`` and the times of ``transcript.txt`` all count from it, so a student can
match a line of the transcript with a packet in Wireshark and with the message's headers.
"""

from __future__ import annotations

from datetime import UTC, datetime

#: Simulated time 0: 2026-01-05 09:00:00 UTC, a Monday morning. The same instant as
#: ``mailsim.mail.message.SIM_EPOCH`` (written out here because trace/ sits below mail/; a test
#: keeps the two equal).
SIM_EPOCH = datetime(2026, 1, 5, 9, 0, 0, tzinfo=UTC)


def format_time(seconds: float) -> str:
    """Simulated seconds as ``[Nd ]HH:MM:SS.mmm``, the transcript's clock."""
    millis = round(seconds * 1000)
    days, millis = divmod(millis, 86_400_000)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    clock = f"{hours:02d}:{minutes:02d}:{secs:02d}.{millis:03d}"
    return f"{days}d {clock}" if days else clock


def epoch_text(epoch: datetime = SIM_EPOCH) -> str:
    """The epoch as people read it: ``2026-01-05 09:00:00 UTC``."""
    return epoch.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
