"""Messages per second through the live SMTP server, against aiosmtpd measured in the same run.

One ``smtplib`` client sends small messages over one persistent connection (MAIL, RCPT, DATA per
message, no pipelining: smtplib does not pipeline) to:

- ``mailsim``: :class:`mailsim.live.server.ServerThread` (the code of ``mailsim serve``, run
  in-process on its own event loop thread), storing each message durably (Received header, a
  Maildir file fsynced, its directory fsynced) before the 250; once with the store in the thread
  pool (the default) and once inline on the event loop;
- ``aiosmtpd_maildir``: an aiosmtpd ``Controller`` (also in-process, in a thread) whose handler
  stores the message with the same :class:`~mailsim.live.storage.MaildirStore` (same fsyncs);
- ``aiosmtpd_noop``: an aiosmtpd ``Controller`` with the no-op ``Sink`` handler.

Client and servers share one process (and the GIL); since SMTP without pipelining is a ping-pong,
only one side works at a time, so this costs both servers alike. Each figure is the best of a few
rounds, the targets interleaved so that disk and CPU noise hit them alike. A second measurement
has 20 clients at once plus one client timing NOOPs, to see whether storing in the thread pool
helps the clients that wait while others are being stored.

Run: ``.venv/bin/python benchmarks/run.py smtp_live`` or ``.venv/bin/python
benchmarks/bench_smtp_live.py``.
"""

from __future__ import annotations

import shutil
import smtplib
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mailsim.live.server import ServeConfig, ServerThread
from mailsim.live.storage import MaildirStore

MESSAGES = 2000
ROUNDS = 5
CONCURRENT_CLIENTS = 20
CONCURRENT_EACH = 50
MESSAGE = (
    "From: James@USA.com\r\nTo: Steve@India.com\r\nSubject: Books\r\n"
    "Message-ID: <bench@USA.com>\r\n\r\nDo you have a Grammar Book?\r\nWhat about Atlas?\r\n"
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _send(port: int, count: int) -> float:
    """Seconds to send ``count`` messages over one connection (after EHLO)."""
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as smtp:
        smtp.ehlo("USA.com")
        started = time.perf_counter()
        for _ in range(count):
            smtp.sendmail("James@USA.com", ["Steve@India.com"], MESSAGE)
        return time.perf_counter() - started


def _send_concurrently(port: int) -> tuple[float, float, float]:
    """With CONCURRENT_CLIENTS connections at once: messages per second, and the p50 and p99
    round trip (ms) of NOOPs that one more, idle-ish client sends meanwhile (what a student at a
    telnet prompt would feel while the server is busy storing)."""
    stop = threading.Event()
    round_trips: list[float] = []

    def probe() -> None:
        with smtplib.SMTP("127.0.0.1", port, timeout=60) as smtp:
            while not stop.is_set():
                started = time.perf_counter()
                smtp.noop()
                round_trips.append(time.perf_counter() - started)
                time.sleep(0.002)

    prober = threading.Thread(target=probe)
    prober.start()
    started = time.perf_counter()
    with ThreadPoolExecutor(CONCURRENT_CLIENTS) as pool:
        jobs = [pool.submit(_send, port, CONCURRENT_EACH) for _ in range(CONCURRENT_CLIENTS)]
        for job in jobs:
            job.result()
    rate = CONCURRENT_CLIENTS * CONCURRENT_EACH / (time.perf_counter() - started)
    stop.set()
    prober.join()
    round_trips.sort()
    p50 = round_trips[len(round_trips) // 2] * 1000
    p99 = round_trips[int(len(round_trips) * 0.99)] * 1000
    return rate, p50, p99


@contextmanager
def _mailsim(root: Path, *, in_thread: bool) -> Iterator[int]:
    config = ServeConfig(
        domains=("India.com",),
        users={"Steve": "secret"},
        maildir=root / f"mailsim-{in_thread}",
        smtp_port=0,
        submission_port=None,
        pop3_port=None,
        store_in_thread=in_thread,
    )
    with ServerThread(config) as running:
        yield running.ports["smtp"]


class _MaildirHandler:
    """aiosmtpd handler that stores like mailsim does: Maildir file + fsync, directory fsync."""

    def __init__(self, root: Path) -> None:
        self.store = MaildirStore(root, ["Steve"])

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.store.deliver([("Steve", envelope.original_content)])
        return "250 OK"


@contextmanager
def _aiosmtpd(handler: Any) -> Iterator[int]:
    from aiosmtpd.controller import Controller

    port = _free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


def run() -> dict[str, Any]:
    """Measure every target; returns messages per second and the ratios to aiosmtpd."""
    from aiosmtpd.handlers import Sink

    root = Path(tempfile.mkdtemp(prefix="bench-smtp-live-"))
    targets: dict[str, Callable[[], Any]] = {
        "mailsim_store_in_thread": lambda: _mailsim(root, in_thread=True),
        "mailsim_store_inline": lambda: _mailsim(root, in_thread=False),
        "aiosmtpd_maildir": lambda: _aiosmtpd(_MaildirHandler(root / "aiosmtpd")),
        "aiosmtpd_noop": lambda: _aiosmtpd(Sink()),
    }
    best: dict[str, float] = dict.fromkeys(targets, 0.0)
    concurrent: dict[str, tuple[float, float, float]] = {}
    try:
        for _ in range(ROUNDS):
            for name, start in targets.items():
                with start() as port:
                    _send(port, 50)  # warm up
                    rate = MESSAGES / _send(port, MESSAGES)
                best[name] = max(best[name], rate)
        for name in ("mailsim_store_in_thread", "mailsim_store_inline", "aiosmtpd_maildir"):
            with targets[name]() as port:
                concurrent[name] = _send_concurrently(port)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    figures: dict[str, Any] = {"messages_per_run": MESSAGES, "rounds": ROUNDS}
    for name, rate in best.items():
        figures[f"{name}_msgs_per_s"] = rate
    for name, (rate, p50, p99) in concurrent.items():
        figures[f"{name}_{CONCURRENT_CLIENTS}_clients_msgs_per_s"] = rate
        figures[f"{name}_{CONCURRENT_CLIENTS}_clients_noop_p50_ms"] = p50
        figures[f"{name}_{CONCURRENT_CLIENTS}_clients_noop_p99_ms"] = p99
    baseline = best["aiosmtpd_maildir"]
    figures["ratio_mailsim_thread_vs_aiosmtpd_maildir"] = best["mailsim_store_in_thread"] / baseline
    figures["ratio_mailsim_inline_vs_aiosmtpd_maildir"] = best["mailsim_store_inline"] / baseline
    figures["ratio_mailsim_thread_vs_aiosmtpd_noop"] = (
        best["mailsim_store_in_thread"] / best["aiosmtpd_noop"]
    )
    figures["ratio_concurrent_mailsim_thread_vs_aiosmtpd_maildir"] = (
        concurrent["mailsim_store_in_thread"][0] / concurrent["aiosmtpd_maildir"][0]
    )
    return figures


if __name__ == "__main__":
    for key, value in run().items():
        shown = f"{value:,.3f}" if isinstance(value, float) else str(value)
        print(f"{key:<56} {shown}")
