"""Waiting, in tests of live servers, for what another thread or process does in its own time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(check: Callable[[], T], timeout: float = 30.0) -> T:
    """Call ``check`` until it returns something true, and return that; fail after ``timeout`` s.

    A client may exit as soon as it reads the server's last reply, before the server has noted
    the end of the session: a test that looks at the server's side waits for it."""
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, f"timed out after {timeout} s"
        time.sleep(0.02)
    return value
