"""The scheduling queue: priority then age, backoff, and parking until the cluster changes."""

from __future__ import annotations

from bandwidth.request import RequestPolicy
from scheduler.podfacts import PodFacts, read_pod
from scheduler.queue import SchedulingQueue


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def facts(name: str, priority: int = 0, created: str = "2026-01-01T00:00:00Z") -> PodFacts:
    body = {
        "metadata": {"name": name, "namespace": "ns", "uid": name, "creationTimestamp": created},
        "spec": {"priority": priority, "containers": []},
    }
    return read_pod(body, RequestPolicy())


def test_pops_by_priority_then_age() -> None:
    queue = SchedulingQueue()
    queue.add_or_update(facts("late", created="2026-01-01T00:00:09Z"))
    queue.add_or_update(facts("early", created="2026-01-01T00:00:01Z"))
    queue.add_or_update(facts("urgent", priority=100, created="2026-01-01T00:00:05Z"))
    order = [queue.pop(timeout=0).name for _ in range(3)]  # type: ignore[union-attr]
    assert order == ["urgent", "early", "late"]


def test_unschedulable_pods_wait_for_a_cluster_change_and_their_backoff() -> None:
    clock = FakeClock()
    queue = SchedulingQueue(clock=clock, initial_backoff=1, max_backoff=10)
    queue.add_or_update(facts("p"))
    assert queue.pop(timeout=0) is not None
    queue.retry("p", unschedulable=True)
    clock.now += 60
    assert queue.pop(timeout=0) is None, "parked pods are not polled"
    queue.cluster_changed()
    assert queue.pop(timeout=0).name == "p"  # type: ignore[union-attr]


def test_backoff_doubles_up_to_the_maximum() -> None:
    clock = FakeClock()
    queue = SchedulingQueue(clock=clock, initial_backoff=1, max_backoff=4)
    queue.add_or_update(facts("p"))
    waits = []
    assert queue.pop(timeout=0) is not None
    for _ in range(4):
        queue.retry("p", unschedulable=False)
        start = clock.now
        while queue.pop(timeout=0) is None:
            clock.now += 0.5
        waits.append(clock.now - start)
    assert waits == [1.0, 2.0, 4.0, 4.0]


def test_a_change_during_the_attempt_is_not_lost() -> None:
    clock = FakeClock()
    queue = SchedulingQueue(clock=clock, initial_backoff=1)
    queue.add_or_update(facts("p"))
    assert queue.pop(timeout=0) is not None
    queue.cluster_changed()  # a node was added while "p" was being decided
    queue.retry("p", unschedulable=True)
    clock.now += 1
    assert queue.pop(timeout=0) is not None


def test_removed_pods_are_never_popped() -> None:
    queue = SchedulingQueue()
    queue.add_or_update(facts("p"))
    queue.remove("p")
    assert queue.pop(timeout=0) is None


def test_the_watch_and_queue_stages_are_timed_on_the_queues_clock() -> None:
    clock = FakeClock()
    seen: list[tuple[str, float]] = []
    queue = SchedulingQueue(clock=clock, observe=lambda stage, s: seen.append((stage, s)))
    queue.add_or_update(facts("p"), received=clock.now - 0.25)
    queue.add_or_update(facts("p"), received=clock.now)  # an update: not a new arrival
    clock.now += 2
    assert queue.pop(timeout=0) is not None
    queue.retry("p", unschedulable=False)
    clock.now += 5  # backoff over; the wait counts from when it became active again
    assert queue.pop(timeout=0) is not None
    assert seen == [("watch", 0.25), ("queue", 2.0), ("queue", 0.0)]
