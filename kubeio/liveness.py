"""Signs of life of a daemon's vital loops, for ``/healthz``.

Every loop a daemon cannot work without (leader election, each watch cache, the scheduling
loop, the binder's workers, the accounting workers, the event recorder) owns a check here and
reports progress to it. ``/healthz`` fails, naming the loop, when one has stopped or stalled,
so that the kubelet restarts a process that still answers HTTP but no longer works — the way
controller-runtime's health checks and kube-scheduler's ``/healthz`` do.

A ``Heartbeat`` is for a loop on its own thread::

    idle ──start()──► running ──beat()──► running ...        (ok while beats are recent)
                         │ no beat for ``stall_after`` s ──► stalled (fails)
                         └──end()──► ended (fails), unless retire()d first: an orderly stop

``Tasks`` is for work on a pool: each task is timed from start to end, and the oldest one
still running must be younger than ``stall_after``.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol

Clock = Callable[[], float]


class Check(Protocol):
    name: str

    def check(self) -> tuple[bool, str]:
        """``(ok, detail)``; the detail says what is wrong, for the ``/healthz`` body."""


class Heartbeat:
    def __init__(self, name: str, stall_after: float, clock: Clock = time.monotonic) -> None:
        self.name = name
        self._stall_after = stall_after
        self._clock = clock
        self._lock = threading.Lock()
        self._state = "idle"
        self._last = 0.0
        self._doing = ""

    def start(self) -> None:
        with self._lock:
            self._state = "running"
            self._last = self._clock()
            self._doing = ""

    def beat(self, doing: str = "") -> None:
        """Progress; ``doing`` names what comes next, for the message if it stalls there."""
        now = self._clock()
        with self._lock:
            self._last = now
            self._doing = doing

    def end(self, why: str = "") -> None:
        with self._lock:
            if self._state != "retired":
                self._state = "ended"
                self._doing = why

    def retire(self) -> None:
        """The daemon is stopping: the loop's end is expected."""
        with self._lock:
            self._state = "retired"

    @contextmanager
    def running(self) -> Iterator[Heartbeat]:
        """``start`` now, ``end`` when the block is left, however."""
        self.start()
        try:
            yield self
        except BaseException as error:
            self.end(f"{type(error).__name__}: {error}")
            raise
        self.end()

    def check(self) -> tuple[bool, str]:
        with self._lock:
            state, last, doing = self._state, self._last, self._doing
        if state == "ended":
            return False, f"stopped{': ' + doing if doing else ''}"
        if state != "running":
            return True, state
        quiet = self._clock() - last
        if quiet > self._stall_after:
            where = f" ({doing})" if doing else ""
            return False, f"no progress for {quiet:.0f}s{where}"
        return True, "ok"


class Tasks:
    """The tasks of a worker pool in flight, each timed."""

    def __init__(self, name: str, stall_after: float, clock: Clock = time.monotonic) -> None:
        self.name = name
        self._stall_after = stall_after
        self._clock = clock
        self._lock = threading.Lock()
        self._ids = itertools.count()
        self._started: dict[int, tuple[float, str]] = {}

    @contextmanager
    def task(self, what: str) -> Iterator[None]:
        number = next(self._ids)
        with self._lock:
            self._started[number] = (self._clock(), what)
        try:
            yield
        finally:
            with self._lock:
                self._started.pop(number, None)

    def check(self) -> tuple[bool, str]:
        with self._lock:
            oldest = min(self._started.values(), default=None)
        if oldest is None:
            return True, "idle"
        age = self._clock() - oldest[0]
        if age > self._stall_after:
            return False, f"a task running for {age:.0f}s ({oldest[1]})"
        return True, "ok"
