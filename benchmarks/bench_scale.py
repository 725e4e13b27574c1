"""Issue 16's targets: whole ``mailsim run`` days at 10k to 1M messages, memory, busy-day.

Every figure here is a whole command as a user runs it, in a fresh process: ``mailsim run DAY
--no-figures`` on a day that ``tools/make_day.py notes`` generates (India and the USA, 2 KB
notes, users scaling with the traffic, every protocol line real), building the world, simulating
and writing the outputs included. Its cost per delivered message is given in units of one bare
SimPy timeout (a process that only does ``yield env.timeout(1)``), measured just before and just
after each run in this process and averaged, so the figure means the same on a busy machine and
on a quiet one. Both are CPU time (the child's user and system time from ``wait4``, this
process's ``time.process_time``): the development machine is shared by several engineers, and
CPU time is what a run takes as wall time on a machine of its own; wall time is reported beside
it. Peak memory is the child's peak resident set size (``wait4``).

* 10k messages with the full trace (target: at most 1,000 bare timeouts per delivered message)
  and with ``--trace summary`` (at most 600; stretch 400).
* 40k and 100k (1M with ``--million``) with the full trace: the cost per message at most 1.15x
  that at 10k (no hidden growth), and peak RSS at 40k at most 1.3x that at 10k. A generated day
  has users in proportion to its messages, so the 40k day also has four times as much in flight;
  the same 40k notes over four days between the 10k day's users (as much in flight as the 10k
  day) are measured too, which is what "memory follows what is in flight" asks.
* 1M messages (``--million``, some 10 to 30 minutes): under 10 minutes with ``--trace summary``,
  under 20 with the full trace.
* A long outage: 10,000 short notes queued behind a failed link, the memory each holds
  (target: at most 4 KiB).
* ``mailsim run busy-day`` with its figures: under 5 seconds.
* The yardsticks of the same run: the bare SimPy timeout, and a naive SimPy model of the same
  10k day (``naive_peer.py``).

Run ``python benchmarks/run.py scale`` (``--million`` adds the 1M day, ``--sizes 10000,40000``
picks the days).
"""

from __future__ import annotations

import gc
import importlib.util
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import naive_peer
from targets import Target

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SIZES = (10_000, 40_000, 100_000)
MILLION = 1_000_000
#: Messages queued behind the failed link in the outage measurement.
QUEUED = 10_000
#: When the outage's memory is read (simulated seconds): the notes were submitted in the first
#: 100 s, and by now the timers of their finished submission sessions (TCP receive timers of up
#: to 600 s, which hold their connections) have run out; what is left is the queue.
OUTAGE_READ_AT = 1_000.0


def _make_day():
    spec = importlib.util.spec_from_file_location("make_day", ROOT / "tools" / "make_day.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_day"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _bare() -> float:
    return min(naive_peer.bare_timeout_seconds() for _ in range(3))


def whole_run(scenario: str | Path, out: Path, *extra: str) -> dict[str, Any] | None:
    """``mailsim run`` in a fresh process: CPU and wall time, peak RSS, what was delivered.

    None, and a line saying why, if the command failed."""
    command = [sys.executable, "-m", "mailsim.cli", "run", str(scenario), "-q", "--out", str(out)]
    bare_before = _bare()
    started = time.perf_counter()
    child = subprocess.Popen([*command, *extra], cwd=ROOT)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    bare = (bare_before + _bare()) / 2
    if child.returncode != 0:
        print(f"   {' '.join(command + list(extra))} exited {child.returncode}", flush=True)
        return None
    totals = json.loads((out / "summary.json").read_text())["totals"]
    delivered = totals["delivered"]
    cpu = usage.ru_utime + usage.ru_stime
    return {
        "cpu_s": cpu,
        "wall_s": wall,
        "peak_rss_mb": usage.ru_maxrss / 1024,  # kilobytes on Linux
        "delivered": delivered,
        "bare_us": bare * 1e6,
        "bare_per_message": cpu / delivered / bare,
        "cpu_us_per_message": cpu / delivered * 1e6,
    }


def outage_memory(count: int = QUEUED) -> dict[str, Any]:
    """Memory held per message queued behind a failed link (short notes, as bench_mail).

    The world records its full trace as ``mailsim run`` does, straight to an events.jsonl file,
    so what is measured is what the queued messages themselves hold, at :data:`OUTAGE_READ_AT`;
    the peak, during the burst of submissions, is reported beside it.
    """
    import bench_mail

    world = bench_mail.established_world(check_every=None, keep_trace=False)
    events = world.recorder.stream_to(Path(tempfile.mkdtemp(prefix="bench-outage-")) / "e.jsonl")
    world.link_down("india-mail", "usa-mail", at=0)
    rng = random.Random(11)
    for n in range(count):
        world.send(
            round(rng.uniform(0, 100), 6),
            f"user{n % bench_mail.USERS}@india.com",
            [f"user{rng.randrange(bench_mail.USERS)}@usa.com"],
            f"Note {n}",
            bench_mail.BODY,
        )
    world.start()
    gc.collect()
    tracemalloc.start()
    base, _ = tracemalloc.get_traced_memory()
    world.run(until=OUTAGE_READ_AT)
    gc.collect()
    held, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    events.close()
    queued = len(world.servers["india-mail"].queue)
    return {
        "queued": queued,
        "held_kib_per_queued": (held - base) / 1024 / queued,
        "peak_kib_per_queued": (peak - base) / 1024 / queued,
    }


def run(argv: list[str] | None = None) -> dict[str, Any]:
    """Every measurement; ``argv`` may hold ``--million`` and ``--sizes N,N,...``."""
    argv = list(argv or ())
    sizes = list(SIZES)
    if "--sizes" in argv:
        sizes = [int(n) for n in argv[argv.index("--sizes") + 1].split(",")]
    if "--million" in argv and MILLION not in sizes:
        sizes.append(MILLION)
    make_day = _make_day()
    work = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    figures: dict[str, Any] = {}
    runs: dict[str, dict[str, Any]] = {}
    for size in sizes:
        day = work / f"day-{size}.yaml"
        day.write_text(make_day.render(make_day.notes_day(size)), encoding="utf-8")
        modes = ("full", "summary") if size in (sizes[0], MILLION) else ("full",)
        for mode in modes:
            extra = ("--no-figures",) if mode == "full" else ("--no-figures", "--trace", mode)
            key = f"{size // 1000}k {mode}"
            print(f"   running the {key} day", flush=True)
            got = whole_run(day, work / key.replace(" ", "-"), *extra)
            if got is not None:
                runs[key] = got
                figures.update({f"{key}: {name}": value for name, value in got.items()})
    if 40_000 in sizes and sizes[0] == 10_000:
        # The same 40k notes over four days between the 10k day's users: as much in flight at
        # any moment as the 10k day, four times the total. Memory that grew here would grow
        # with the day's total; the 40k day above also has four times the users and the rate.
        day = work / "days-4-40000.yaml"
        day.write_text(make_day.render(make_day.notes_day(40_000, days=4)), encoding="utf-8")
        print("   running the 40k notes over 4 days", flush=True)
        got = whole_run(day, work / "40k-4d", "--no-figures")
        if got is not None:
            runs["40k 4d full"] = got
            figures.update({f"40k over 4 days: {name}": value for name, value in got.items()})
    bare_now = _bare()
    naive = naive_peer.run_day(sizes[0])
    naive_cost = naive["cpu_s"] / naive["delivered"] / ((bare_now + _bare()) / 2)
    figures["naive peer: bare timeouts per delivered message"] = naive_cost
    busy = whole_run("busy-day", work / "busy-day")
    if busy is not None:
        figures.update({f"busy-day with figures: {name}": value for name, value in busy.items()})
    memory = outage_memory()
    figures.update({f"outage: {name}": value for name, value in memory.items()})

    first = f"{sizes[0] // 1000}k"

    def measured(key: str, field: str, per: float | None = 1.0) -> float | None:
        got = runs.get(key)
        return None if got is None or per is None else got[field] / per

    base_cost = measured(f"{first} full", "bare_per_message")
    base_rss = measured(f"{first} full", "peak_rss_mb")
    rows = [
        Target("bare SimPy timeout", measured(f"{first} full", "bare_us"), unit="us"),
        Target(f"naive SimPy peer, {first} day", naive_cost, unit="bare timeouts/msg"),
        Target(f"{first} day, full trace", base_cost, 1000, "bare timeouts/msg"),
        Target(
            f"{first} day, --trace summary",
            measured(f"{first} summary", "bare_per_message"),
            600,
            "bare timeouts/msg",
            note="stretch 400",
        ),
    ]
    for size in sizes[1:]:
        key = f"{size // 1000}k full"
        rows.append(
            Target(
                f"{size // 1000}k day per message / {first}",
                measured(key, "bare_per_message", base_cost),
                1.15,
                "x",
            )
        )
        if size == 40_000:
            rows.append(
                Target(
                    f"peak RSS 40k / {first}",
                    measured(key, "peak_rss_mb", base_rss),
                    1.3,
                    "x",
                    note="4x users and rate: 4x in flight",
                )
            )
            rows.append(
                Target(
                    f"peak RSS 40k over 4 days / {first}",
                    measured("40k 4d full", "peak_rss_mb", base_rss),
                    1.3,
                    "x",
                    note="same users, same in flight",
                )
            )
    if MILLION in sizes:
        summary_1m = measured("1000k summary", "cpu_s", 60)
        full_1m = measured("1000k full", "cpu_s", 60)
        rows.append(Target("1M day, --trace summary (CPU)", summary_1m, 10, "min"))
        rows.append(Target("1M day, full trace (CPU)", full_1m, 20, "min"))
    rows.append(
        Target("outage: memory per queued message", memory["held_kib_per_queued"], 4, "KiB")
    )
    rows.append(Target("busy-day with figures (CPU)", busy and busy["cpu_s"], 5, "s"))
    figures["targets"] = [row.row() for row in rows]
    return figures


if __name__ == "__main__":
    for key, value in run(sys.argv[1:]).items():
        print(f"{key:<52} {value}")
