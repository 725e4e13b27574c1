"""A live run in the background of ordinary code: a notebook, a test, a Python session.

:class:`BackgroundRun` runs a :class:`~mailsim.live.world.LiveWorld` on its own event loop in a
daemon thread, so the calling code can talk to the servers with smtplib and poplib, stage outages
(:meth:`BackgroundRun.control`), wait for what it expects to happen (:meth:`BackgroundRun.wait_for`)
and stop it cleanly (:meth:`BackgroundRun.stop`, or a ``with`` block). ``mailsim.serve(...)`` makes
one from a scenario.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mailsim.live.world import LiveError, LiveWorld, Ports

if TYPE_CHECKING:
    from mailsim.nodes.world import World

Record = dict[str, Any]


class BackgroundRun:
    """A scenario's servers live, in a background thread.

    Args:
        world: the scenario's world, described but not started (``build_world``).
        directory: the run's folder.
        scenario: the scenario's name.
        seed: the run's seed.
        time_scale: scenario seconds per real second.
        base_port: the port table's base (0, the default here: free ports).
        fresh: start over instead of resuming ``directory``.
        echo: where the console log goes (default: nowhere).
    """

    def __init__(
        self,
        world: World,
        directory: str | Path,
        *,
        scenario: str,
        seed: int = 1,
        time_scale: float = 60.0,
        base_port: int = 0,
        fresh: bool = False,
        echo: Callable[[str], None] | None = None,
    ) -> None:
        #: The run's folder.
        self.directory = Path(directory)
        self._make: Callable[[], LiveWorld] = lambda: LiveWorld(
            world,
            self.directory,
            scenario=scenario,
            seed=seed,
            time_scale=time_scale,
            base_port=base_port,
            fresh=fresh,
            echo=echo,
        )
        #: The live world, once started.
        self.live: LiveWorld | None = None
        #: Local ports by server, once started.
        self.ports: dict[str, Ports] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._done = threading.Event()
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    # -- life cycle -----------------------------------------------------------------------------

    def start(self, timeout: float = 20.0) -> BackgroundRun:
        """Start the servers; returns when they listen.

        Raises:
            LiveError: they could not start (the text says why).
        """
        self._thread = threading.Thread(target=self._main, name="mailsim-live-run", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise LiveError(f"the live servers did not start within {timeout} s")
        if self._error is not None:
            raise self._error
        return self

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as error:  # reported to the thread that started us
            self._error = error
        finally:
            self._ready.set()
            self._done.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        live = self._make()
        self.ports = await live.start()
        self.live = live
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await live.stop()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the servers (their queues stay on disk) and wait for the thread to end."""
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop has already ended
                loop.call_soon_threadsafe(stop.set)
        if self._thread is not None:
            self._thread.join(timeout)

    def __enter__(self) -> BackgroundRun:
        return self.start() if self._thread is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- talking to it ----------------------------------------------------------------------------

    def control(self, command: str, *args: str, timeout: float = 10.0) -> str:
        """Run a ``mailsim ctl`` command (``"cut", "india-mail", "usa-mail"``); returns its answer.

        Raises:
            LiveError: the run refused the command, or is not running.
        """
        live, loop = self.live, self._loop
        if live is None or loop is None or self._done.is_set():
            raise LiveError("the live run is not running")
        future = asyncio.run_coroutine_threadsafe(live.control(command, list(args)), loop)
        ok, text = future.result(timeout)
        if not ok:
            raise LiveError(text)
        return text

    @property
    def records(self) -> list[Record]:
        """A copy of the trace so far (scenario times)."""
        live = self.live
        return list(live.trace.records) if live is not None else []

    def now(self) -> float:
        """The scenario time now."""
        return self.live.clock() if self.live is not None else 0.0

    def wait_for(
        self, predicate: Callable[[list[Record]], Any], timeout: float = 30.0, poll: float = 0.05
    ) -> Any:
        """Wait until ``predicate(records)`` is true (real seconds); returns its value.

        Raises:
            TimeoutError: it did not happen in time (the message shows the last records).
        """
        deadline = time.monotonic() + timeout
        while True:
            records = self.records
            value = predicate(records)
            if value:
                return value
            if time.monotonic() > deadline or self._done.is_set():
                tail = "\n".join(str(r) for r in records[-8:])
                raise TimeoutError(f"not seen within {timeout} s; the trace ends with:\n{tail}")
            time.sleep(poll)
