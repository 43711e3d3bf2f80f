"""The queue of our pods that wait for a node.

Three places a pod can wait, as in kube-scheduler::

    active         ready now; popped by priority (highest first), then age (oldest first)
    backoff        failed recently; moves to active when its backoff (1 s doubling to 10 s) ends
    unschedulable  no node fits; moves back on a cluster change that could make one fit
                   (node added or changed, capacity raised, reservation released, pod deleted;
                   a pod placed, for pods whose inter-pod terms or hard spread count placed
                   pods), or after ``flush_after`` seconds at the latest — never by busy polling

A pod being decided or written is "in flight" and in none of them; ``done`` or ``retry``
ends that. Lock order: this queue's lock is taken alone, never while holding another.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from scheduler.podfacts import PodFacts


@dataclass(order=True, slots=True)
class _Entry:
    sort_key: tuple[int, str, int]
    uid: str = field(compare=False)


@dataclass(slots=True)
class _Waiting:
    pod: PodFacts
    attempts: int = 0
    backoff_until: float = 0.0
    unschedulable_since: float = 0.0
    place: str = ""  # "active", "backoff", "unschedulable", "in-flight"
    moved_while_in_flight: bool = False
    active_since: float = 0.0


class SchedulingQueue:
    def __init__(
        self,
        *,
        initial_backoff: float = 1.0,
        max_backoff: float = 10.0,
        flush_after: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        observe: Callable[[str, float], None] = lambda stage, seconds: None,
    ) -> None:
        self._initial_backoff = initial_backoff
        self._max_backoff = max_backoff
        self._flush_after = flush_after
        self._clock = clock
        self._observe = observe
        self._lock = threading.Condition()
        self._pods: dict[str, _Waiting] = {}
        self._active: list[_Entry] = []
        self._backoff: list[tuple[float, str]] = []
        self._sequence = itertools.count()
        self._closed = False

    def _push_active(self, waiting: _Waiting) -> None:
        pod = waiting.pod
        waiting.place = "active"
        waiting.active_since = self._clock()
        heapq.heappush(
            self._active,
            _Entry((-pod.priority, pod.created, next(self._sequence)), pod.uid),
        )
        self._lock.notify()

    def add_or_update(self, pod: PodFacts, received: float | None = None) -> None:
        """A pending pod of ours appeared or changed: it is (again) worth a try. ``received``:
        when its watch event arrived (on this queue's clock), for the ``watch`` stage."""
        queued = None
        with self._lock:
            waiting = self._pods.get(pod.uid)
            if waiting is None:
                waiting = self._pods[pod.uid] = _Waiting(pod)
                self._push_active(waiting)
                queued = waiting.active_since
            else:
                waiting.pod = pod
                if waiting.place == "unschedulable":
                    self._push_active(waiting)
                elif waiting.place == "in-flight":
                    waiting.moved_while_in_flight = True
        if queued is not None and received is not None:  # observed outside the lock
            self._observe("watch", queued - received)

    def remove(self, uid: str) -> None:
        with self._lock:
            self._pods.pop(uid, None)

    def pop(self, timeout: float | None = None) -> PodFacts | None:
        """The next pod to decide, marked in flight; None on timeout or close."""
        popped = self._pop(timeout)
        if popped is None:
            return None
        pod, waited = popped
        self._observe("queue", waited)  # outside the lock
        return pod

    def _pop(self, timeout: float | None) -> tuple[PodFacts, float] | None:
        deadline = None if timeout is None else self._clock() + timeout
        with self._lock:
            while not self._closed:
                self._release_backoff()
                while self._active:
                    entry = heapq.heappop(self._active)
                    waiting = self._pods.get(entry.uid)
                    if waiting is not None and waiting.place == "active":
                        waiting.place = "in-flight"
                        waiting.moved_while_in_flight = False
                        return waiting.pod, self._clock() - waiting.active_since
                wait = self._next_wake(deadline)
                if wait is not None and wait <= 0:
                    return None
                self._lock.wait(wait)
            return None

    def _next_wake(self, deadline: float | None) -> float | None:
        now = self._clock()
        candidates = []
        if deadline is not None:
            candidates.append(deadline - now)
        if self._backoff:
            candidates.append(max(0.001, self._backoff[0][0] - now))
        return min(candidates) if candidates else None

    def _release_backoff(self) -> None:
        now = self._clock()
        while self._backoff and self._backoff[0][0] <= now:
            _, uid = heapq.heappop(self._backoff)
            waiting = self._pods.get(uid)
            if waiting is not None and waiting.place == "backoff":
                self._push_active(waiting)

    def done(self, uid: str) -> None:
        """Scheduled (or gone): forget the pod."""
        with self._lock:
            self._pods.pop(uid, None)

    def retry(self, uid: str, *, unschedulable: bool) -> None:
        """The attempt failed: back off, and park the pod if no node fits it."""
        with self._lock:
            waiting = self._pods.get(uid)
            if waiting is None:
                return
            waiting.attempts += 1
            backoff = min(self._max_backoff, self._initial_backoff * 2 ** (waiting.attempts - 1))
            waiting.backoff_until = self._clock() + backoff
            if unschedulable and not waiting.moved_while_in_flight:
                waiting.place = "unschedulable"
                waiting.unschedulable_since = self._clock()
            else:
                self._to_backoff(waiting)

    def _to_backoff(self, waiting: _Waiting) -> None:
        waiting.place = "backoff"
        heapq.heappush(self._backoff, (waiting.backoff_until, waiting.pod.uid))
        self._lock.notify()

    def cluster_changed(self, helps: Callable[[PodFacts], bool] | None = None) -> None:
        """Something that may make parked pods fit happened: give them another try (only
        those ``helps`` accepts, when given)."""
        with self._lock:
            for waiting in self._pods.values():
                if helps is not None and not helps(waiting.pod):
                    continue
                if waiting.place == "unschedulable":
                    self._to_backoff(waiting)
                elif waiting.place == "in-flight":
                    waiting.moved_while_in_flight = True

    def flush_stale_unschedulable(self) -> None:
        with self._lock:
            now = self._clock()
            for waiting in self._pods.values():
                if (
                    waiting.place == "unschedulable"
                    and now - waiting.unschedulable_since >= self._flush_after
                ):
                    self._to_backoff(waiting)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._lock.notify_all()

    def depth(self) -> dict[str, int]:
        with self._lock:
            counts = {"active": 0, "backoff": 0, "unschedulable": 0, "in-flight": 0}
            for waiting in self._pods.values():
                counts[waiting.place] = counts.get(waiting.place, 0) + 1
            return counts

    def __contains__(self, uid: str) -> bool:
        with self._lock:
            return uid in self._pods
