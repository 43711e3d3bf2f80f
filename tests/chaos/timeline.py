"""When each fault was in progress, and how much calm time lies between two instants.

A fault is *in progress* from the moment the injector starts it until its last action is done
(the apiserver answers again, the new process is started, the partition is healed), and
*recovering* for ``recovery`` seconds after that: the time a standby needs to take a Lease over
and caches to relist. *Calm* time is time in which no fault is in progress or recovering. The
auditor measures its tolerances (how long a stale reservation may live, how long a node may lack
its Bandwidth) in calm seconds: a controller cannot be blamed for the seconds in which it was
dead, partitioned or talking to a dead apiserver.

Times are ``time.monotonic()`` seconds. Thread-safe.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass


@dataclass(slots=True)
class Window:
    label: str
    start: float
    end: float = math.inf


class FaultTimeline:
    def __init__(self, recovery: float) -> None:
        self.recovery = recovery
        self._lock = threading.Lock()
        self._windows: list[Window] = []

    def begin(self, label: str, at: float) -> Window:
        window = Window(label, at)
        with self._lock:
            self._windows.append(window)
        return window

    def end(self, window: Window, at: float) -> None:
        with self._lock:
            window.end = at

    def windows(self) -> list[Window]:
        with self._lock:
            return [Window(w.label, w.start, w.end) for w in self._windows]

    def in_progress(self, at: float) -> list[str]:
        """Labels of the faults in progress at ``at``, then of those recovering (marked so)."""
        now, recovering = [], []
        for window in self.windows():
            if window.start <= at < window.end:
                now.append(window.label)
            elif window.end <= at < window.end + self.recovery:
                recovering.append(f"{window.label} (recovering)")
        return now + recovering

    def calm_seconds(self, since: float, until: float) -> float:
        """Seconds of ``[since, until]`` outside every fault's window and recovery."""
        if until <= since:
            return 0.0
        spans = sorted(
            (max(w.start, since), min(w.end + self.recovery, until))
            for w in self.windows()
            if w.start < until and w.end + self.recovery > since
        )
        busy, cursor = 0.0, since
        for start, end in spans:
            start = max(start, cursor)
            if end > start:
                busy += end - start
                cursor = end
        return max(0.0, (until - since) - busy)
