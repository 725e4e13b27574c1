"""Where a study's runs execute: in this process, on a local process pool, or on a Dask cluster.

Every run is an independent task: :func:`execute` builds the world of one validated scenario,
runs it with one seed and returns only its metrics (a few floats, small to pickle), so no worker
keeps a trace alive after its run. A run that raises, or whose books do not balance, comes back
as a failed :class:`RunOutcome` carrying the error, and every other run goes on. The three
executors yield outcomes as runs finish, in any order; the caller sorts them by run index, which
is why serial, pool and cluster give the same ``results.csv`` rows.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mailsim.study.metrics import MetricSpec, measure

if TYPE_CHECKING:
    from mailsim.scenario.schema import Scenario

__all__ = [
    "RunOutcome",
    "RunTask",
    "default_workers",
    "execute",
    "run_dask",
    "run_pool",
    "run_serial",
]

#: How many of a failed run's books problems its error text quotes.
_PROBLEMS_QUOTED = 2


@dataclass(frozen=True)
class RunTask:
    """What a worker needs for one run: the scenario of its point, its seed, the metrics."""

    index: int
    scenario: Scenario = field(repr=False)
    seed: int
    metrics: tuple[MetricSpec, ...]


@dataclass(frozen=True)
class RunOutcome:
    """What one run gave back: its metrics, its wall time, and its error (None when it ran)."""

    index: int
    metrics: dict[str, float]
    wall_time: float
    error: str | None = None


def execute(task: RunTask) -> RunOutcome:
    """Run one task and measure it; a failure is returned, never raised."""
    from mailsim.scenario.result import run_scenario

    started = time.perf_counter()
    try:
        result = run_scenario(task.scenario, seed=task.seed)
        books = result.books
        if not books.balanced:
            quoted = "; ".join(books.problems[:_PROBLEMS_QUOTED])
            more = len(books.problems) - _PROBLEMS_QUOTED
            error = f"books do not balance: {quoted}" + (f" (and {more} more)" if more > 0 else "")
            return RunOutcome(task.index, {}, time.perf_counter() - started, error)
        values = measure(result, task.metrics)
    except Exception as error:  # one run's failure is a result of the study, not its end
        return RunOutcome(
            task.index, {}, time.perf_counter() - started, f"{type(error).__name__}: {error}"
        )
    return RunOutcome(task.index, values, time.perf_counter() - started)


def default_workers() -> int:
    """The cores this process may use (``--workers`` default)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def run_serial(tasks: Iterable[RunTask]) -> Iterator[RunOutcome]:
    """Each run in turn, in this process."""
    for task in tasks:
        yield execute(task)


def _ignore_interrupt() -> None:
    # Ctrl-C reaches the whole process group: the parent stops the sweep and keeps what is done;
    # workers left to handle it would each print a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def run_pool(tasks: Sequence[RunTask], workers: int) -> Iterator[RunOutcome]:
    """The runs on a pool of ``workers`` local processes.

    Workers are forked when this process has a single thread: quick, and it needs no
    ``if __name__ == "__main__"`` guard in a student's script. Beside other threads (a notebook
    kernel, an in-process Dask cluster) they are spawned as fresh interpreters instead, since
    forking a process that has threads can leave a lock held forever in the child.
    """
    import multiprocessing
    import threading
    from concurrent.futures import ProcessPoolExecutor, as_completed

    method = "fork" if threading.active_count() == 1 and os.name == "posix" else "spawn"
    pool = ProcessPoolExecutor(
        max_workers=max(1, min(workers, len(tasks))),
        mp_context=multiprocessing.get_context(method),
        initializer=_ignore_interrupt,
    )
    try:
        futures = {pool.submit(execute, task): task for task in tasks}
        for future in as_completed(futures):
            task = futures[future]
            try:
                yield future.result()
            except Exception as error:  # the worker process died (killed, out of memory)
                yield RunOutcome(task.index, {}, 0.0, f"the worker failed: {error!r}")
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def run_dask(tasks: Sequence[RunTask], client: Any) -> Iterator[RunOutcome]:
    """The runs as tasks of a Dask ``distributed.Client`` (used as given, never closed here)."""
    from distributed import as_completed

    batch = uuid.uuid4().hex[:8]  # keys unique per sweep, so a cluster never reuses old results
    futures = {
        client.submit(execute, task, key=f"mailsim-run-{batch}-{task.index}", pure=False): task
        for task in tasks
    }
    try:
        for future in as_completed(list(futures)):  # type: ignore[no-untyped-call]
            task = futures[future]
            try:
                outcome = future.result()
            except Exception as error:  # the worker died, or the task could not be sent
                outcome = RunOutcome(task.index, {}, 0.0, f"the Dask task failed: {error!r}")
            future.release()
            yield outcome
    finally:
        client.cancel(list(futures))
