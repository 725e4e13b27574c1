"""The single record of what happened in a run (docs/design.md, principle 2).

Every layer writes observable happenings to a :class:`Recorder`; transcripts, summaries, plots and
pcap files are all derived from its records, never from a server's internals.
"""

from mailsim.trace.recorder import EVENT_FIELDS, Recorder, dumps_event, load_events, write_events

__all__ = ["EVENT_FIELDS", "Recorder", "dumps_event", "load_events", "write_events"]
