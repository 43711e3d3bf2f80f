"""The work queue: coalescing, one worker per key, delays, back-off, shut-down."""

from __future__ import annotations

import threading
import time

from kubeio.workqueue import WorkQueue


def test_adds_of_a_queued_key_coalesce() -> None:
    queue: WorkQueue[str] = WorkQueue()
    for key in ["a", "b", "a", "a", "b", "c"]:
        queue.add(key)
    assert len(queue) == 3
    assert [queue.get(timeout=0), queue.get(timeout=0), queue.get(timeout=0)] == ["a", "b", "c"]
    assert queue.get(timeout=0) is None


def test_a_key_added_while_processing_comes_back_only_after_done() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("node")
    assert queue.get(timeout=0) == "node"
    queue.add("node")
    queue.add("node")
    assert queue.get(timeout=0.05) is None  # never to a second worker at once
    queue.done("node")
    assert queue.get(timeout=0) == "node"
    queue.done("node")
    assert queue.get(timeout=0.05) is None


def test_done_without_new_adds_forgets_the_key() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("x")
    assert queue.get(timeout=0) == "x"
    queue.done("x")
    assert len(queue) == 0


def test_add_after_waits_and_keeps_the_earliest_due_time() -> None:
    queue: WorkQueue[str] = WorkQueue()
    started = time.monotonic()
    queue.add_after("late", 0.3)
    queue.add_after("late", 0.1)
    queue.add_after("late", 5.0)  # later than what is pending: ignored
    assert queue.get(timeout=0.02) is None
    assert queue.get(timeout=2) == "late"
    waited = time.monotonic() - started
    assert 0.09 <= waited < 0.3


def test_an_immediate_add_satisfies_a_pending_delayed_one() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add_after("k", 0.1)
    queue.add("k")
    assert queue.get(timeout=0) == "k"
    queue.done("k")
    assert queue.get(timeout=0.3) is None


def test_rate_limited_delays_double_and_forget_resets_them() -> None:
    queue: WorkQueue[str] = WorkQueue(base_delay=0.01, max_delay=0.05)
    delays = [queue.add_rate_limited("k") for _ in range(5)]
    assert delays == [0.01, 0.02, 0.04, 0.05, 0.05]
    assert queue.failures("k") == 5
    queue.forget("k")
    assert queue.failures("k") == 0
    assert queue.add_rate_limited("k") == 0.01


def test_shut_down_wakes_blocked_workers_and_ignores_adds() -> None:
    queue: WorkQueue[str] = WorkQueue()
    results: list[str | None] = []
    worker = threading.Thread(target=lambda: results.append(queue.get()))
    worker.start()
    time.sleep(0.05)
    queue.shut_down()
    worker.join(timeout=2)
    assert results == [None]
    queue.add("late")
    assert queue.get(timeout=0) is None
    assert queue.shutting_down


def test_many_workers_never_process_one_key_concurrently() -> None:
    queue: WorkQueue[int] = WorkQueue()
    active: set[int] = set()
    overlaps: list[int] = []
    processed: list[int] = []
    lock = threading.Lock()

    def work() -> None:
        while (key := queue.get(timeout=0.3)) is not None:
            with lock:
                if key in active:
                    overlaps.append(key)
                active.add(key)
            time.sleep(0.001)
            with lock:
                active.discard(key)
                processed.append(key)
            queue.done(key)

    workers = [threading.Thread(target=work) for _ in range(8)]
    for worker in workers:
        worker.start()
    for round_ in range(200):
        queue.add(round_ % 5)
    for worker in workers:
        worker.join(timeout=10)
    assert overlaps == []
    assert set(processed) == {0, 1, 2, 3, 4}
    assert len(processed) <= 200
