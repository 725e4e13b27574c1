"""Exact-time scheduling of SimPy events, and taking a scheduled event back.

The simulated network computes arrival times arithmetically and then needs exactly one SimPy event
at that time: the very event a process is waiting on (its ``recv()``, ``drain()`` or
``connect()``), triggered ahead of time and put on the queue at the arrival time. SimPy's public
``Environment.schedule`` takes a delay and adds it to ``now``, which can land one floating-point
ulp away from the computed time; :func:`fire_at` puts the event on the queue at the absolute time
instead.

A link failure or a crash can make such a prediction wrong (the segment never arrives). SimPy has
no way to cancel a scheduled event, so :func:`unschedule` removes it from the queue and makes it
pending again, so the network can trigger it later with the right outcome. That touches SimPy's
private ``_queue`` (a heap of ``(time, priority, id, event)`` since SimPy 3); it is rare (failures
only) and kept in this one module.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Any

from simpy import Environment
from simpy.events import NORMAL, PENDING, Event


def fire_at(env: Environment, event: Event, t: float, value: Any = None) -> None:
    """Trigger ``event`` with ``value`` now, to be processed at time ``t`` (>= now)."""
    event._ok = True
    event._value = value
    heapq.heappush(env._queue, (t, NORMAL, next(env._eid), event))


def fail_at(env: Environment, event: Event, t: float, exception: BaseException) -> None:
    """Fail ``event`` with ``exception``, processed at time ``t`` (>= now).

    The event is defused first: a process that yields it still gets the exception, but nobody
    waiting on it (a process killed by a crash) must not stop the whole simulation.
    """
    event._ok = False
    event._value = exception
    event._defused = True
    heapq.heappush(env._queue, (t, NORMAL, next(env._eid), event))


def call_at(env: Environment, t: float, callback: Callable[[Event], None]) -> Event:
    """Run ``callback(event)`` at time ``t``; returns the (already triggered) event."""
    event = Event(env)
    event.callbacks.append(callback)
    fire_at(env, event, t)
    return event


def unschedule(env: Environment, event: Event) -> bool:
    """Take a triggered, not yet processed ``event`` off the queue and make it pending again.

    Returns whether it was found on the queue. Its callbacks (the waiting process) stay attached,
    so triggering it again later resumes the same waiter.
    """
    queue = env._queue
    for index, item in enumerate(queue):
        if item[3] is event:
            last = queue.pop()
            if index < len(queue):
                queue[index] = last
                heapq.heapify(queue)
            event._value = PENDING
            return True
    return False


def is_waiting(event: Event | None) -> bool:
    """Whether ``event`` exists and has not been triggered yet."""
    return event is not None and event._value is PENDING


def is_scheduled(event: Event | None) -> bool:
    """Whether ``event`` has been triggered but not yet processed (it sits on the queue)."""
    return event is not None and event._value is not PENDING and event.callbacks is not None
