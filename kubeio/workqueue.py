"""A de-duplicating, rate-limited work queue of keys, as controllers drive their reconciles.

Life of a key::

    add ──► queued ──get()──► processing ──done()──► (gone)
     ▲        ▲                   │
     │        └── add() while processing: marked dirty, queued again at done()
     │
    add_after(delay) / add_rate_limited() ──► waiting ──(due)──► queued

Contract:

- A key is queued at most once, however often it is added: events coalesce.
- A key is never handed to two workers at once: adding it while it is processed only marks it
  dirty, and ``done`` puts it back in the queue. Level-based reconciles therefore always see
  the newest state after their last run.
- ``add_after`` keeps the earliest due time when a key is already waiting.
- ``add_rate_limited`` waits ``base_delay * 2**failures`` (capped at ``max_delay``, or at the
  caller's ``cap`` if lower) and counts a failure; ``forget`` clears the count after a success.
- After ``shut_down``, ``get`` returns ``None`` and adds are ignored.

Lock order: one lock (``_lock``) guards everything; nothing is called while holding it.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import deque
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class WorkQueue(Generic[K]):
    def __init__(self, *, base_delay: float = 0.05, max_delay: float = 300.0) -> None:
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._lock = threading.Condition()
        self._queue: deque[K] = deque()
        self._queued: set[K] = set()
        self._processing: set[K] = set()
        self._dirty: set[K] = set()
        self._due: dict[K, float] = {}
        self._waiting: list[tuple[float, int, K]] = []
        self._sequence = itertools.count()
        self._failures: dict[K, int] = {}
        self._shutting_down = False

    def add(self, key: K) -> None:
        with self._lock:
            self._add_locked(key)

    def add_after(self, key: K, delay: float) -> None:
        """Queue ``key`` once ``delay`` seconds have passed (at once when ``delay <= 0``)."""
        if delay <= 0:
            self.add(key)
            return
        with self._lock:
            if self._shutting_down:
                return
            due = time.monotonic() + delay
            if key in self._due and self._due[key] <= due:
                return
            self._due[key] = due
            heapq.heappush(self._waiting, (due, next(self._sequence), key))
            self._lock.notify()

    def add_rate_limited(self, key: K, cap: float | None = None) -> float:
        """Queue ``key`` after its back-off delay, at most ``cap`` if given, and count a
        failure; returns the delay."""
        with self._lock:
            failures = self._failures.get(key, 0)
            self._failures[key] = failures + 1
        longest = self._max_delay if cap is None else min(cap, self._max_delay)
        delay: float = min(longest, self._base_delay * 2.0 ** min(failures, 62))
        self.add_after(key, delay)
        return delay

    def forget(self, key: K) -> None:
        """Stop counting failures of ``key``: its next back-off starts from ``base_delay``."""
        with self._lock:
            self._failures.pop(key, None)

    def failures(self, key: K) -> int:
        with self._lock:
            return self._failures.get(key, 0)

    def get(self, timeout: float | None = None) -> K | None:
        """The next key to process, blocking; ``None`` on shut-down or after ``timeout``.

        The caller owns the key until it calls ``done(key)``.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while True:
                if self._shutting_down:
                    return None
                self._promote_due_locked()
                if self._queue:
                    key = self._queue.popleft()
                    self._queued.discard(key)
                    self._processing.add(key)
                    return key
                now = time.monotonic()
                wait = None if deadline is None else deadline - now
                if wait is not None and wait <= 0:
                    return None
                if self._waiting:
                    until_due = self._waiting[0][0] - now
                    wait = until_due if wait is None else min(wait, until_due)
                self._lock.wait(wait)

    def done(self, key: K) -> None:
        """Finish processing ``key``; if it was added meanwhile, it is queued again."""
        with self._lock:
            self._processing.discard(key)
            if key in self._dirty:
                self._dirty.discard(key)
                self._add_locked(key)

    def shut_down(self) -> None:
        with self._lock:
            self._shutting_down = True
            self._lock.notify_all()

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    def __len__(self) -> int:
        """Keys queued now (not counting those processing or waiting for their delay)."""
        with self._lock:
            return len(self._queue)

    def _add_locked(self, key: K) -> None:
        if self._shutting_down or key in self._queued:
            return
        self._due.pop(key, None)  # queued now: a pending delayed add is satisfied
        if key in self._processing:
            self._dirty.add(key)
            return
        self._queue.append(key)
        self._queued.add(key)
        self._lock.notify()

    def _promote_due_locked(self) -> None:
        now = time.monotonic()
        while self._waiting and self._waiting[0][0] <= now:
            due, _, key = heapq.heappop(self._waiting)
            if self._due.get(key) == due:
                del self._due[key]
                self._add_locked(key)
