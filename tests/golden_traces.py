"""Digests of the pinned scenarios' outputs at their seeds: the determinism contract.

A refactor that must not change behaviour (a faster composer, the mail-server core shared with the
live servers) keeps these digests. A change that is meant to alter what a run does (a new TCP
behaviour, an edited scenario) regenerates them on purpose, in the same commit, with

    .venv/bin/python tests/golden_traces.py --update

and says why in the commit message. ``--show NAME`` prints the counts for one scenario.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

GOLDEN = Path(__file__).with_name("golden") / "traces.json"
#: Scenarios written only to reach paths the bundled ones do not (delay warnings, bounces,
#: crashes with and without a durable queue, greylisting, riders, a lost final reply, every way
#: the builder makes traffic, a small day of ``tools/make_day.py notes``), pinned under the key
#: ``golden_scenarios/<file stem>``.
EXTRA = Path(__file__).with_name("golden_scenarios")


def _source(name: str) -> str:
    return str(EXTRA / f"{name.partition('/')[2]}.yaml") if name.startswith("golden_") else name


def _digests(result: Any, events: str, transcript: str) -> dict[str, Any]:
    summary = json.dumps(result.summary(), sort_keys=True)
    counts = Counter(record["type"] for record in result.records)
    return {
        "events_sha256": hashlib.sha256(events.encode()).hexdigest(),
        "transcript_sha256": hashlib.sha256(transcript.encode()).hexdigest(),
        "summary_sha256": hashlib.sha256(summary.encode()).hexdigest(),
        "records": len(result.records),
        "record_types": dict(sorted(counts.items())),
    }


def fingerprint(name: str) -> dict[str, Any]:
    """Digests of the events, transcript and summary of bundled scenario ``name`` at its seed."""
    import mailsim
    from mailsim.trace.recorder import write_events

    result = mailsim.load(_source(name)).run()
    events = io.StringIO()
    write_events(result.records, events)
    return _digests(result, events.getvalue(), result.transcript())


def streamed_fingerprint(name: str) -> dict[str, Any]:
    """The same digests of a run that streamed its trace to files as it went, as ``mailsim
    run`` does: the files must be the very bytes of a run that kept its trace in memory."""
    import mailsim

    out = Path(tempfile.mkdtemp(prefix="golden-stream-"))
    result = mailsim.load(_source(name)).run(out=out)
    events = (out / "events.jsonl").read_text(encoding="utf-8")
    transcript = (out / "transcript.txt").read_text(encoding="utf-8")
    return _digests(result, events, transcript)


def bundled_names() -> list[str]:
    from mailsim.scenario.catalog import bundled

    return [name for name, _ in bundled()]


def pinned_names() -> list[str]:
    """Every pinned run: the bundled scenarios, then the extra ones of tests/golden_scenarios."""
    extra = [f"{EXTRA.name}/{path.stem}" for path in sorted(EXTRA.glob("*.yaml"))]
    return bundled_names() + extra


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--update", action="store_true", help="rewrite tests/golden/traces.json")
    parser.add_argument("--show", metavar="NAME", help="print one scenario's fingerprint")
    args = parser.parse_args(argv)
    if args.show:
        print(json.dumps(fingerprint(args.show), indent=2))
        return 0
    if args.update:
        GOLDEN.parent.mkdir(exist_ok=True)
        table = {name: fingerprint(name) for name in pinned_names()}
        GOLDEN.write_text(json.dumps(table, indent=2, sort_keys=True) + "\n")
        print(f"wrote {GOLDEN} ({len(table)} scenarios)")
        return 0
    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
