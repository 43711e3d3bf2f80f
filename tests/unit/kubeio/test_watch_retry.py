"""How long a watch or a reconcile waits before trying again: briefly while the apiserver is
away, longer when it answered with an error."""

from __future__ import annotations

from kubeio.errors import ApiError, TooManyRequests, Unreachable, error_for_status
from kubeio.retry import ANSWERED_MAX_DELAY, UNREACHABLE_MAX_DELAY, longest_wait
from kubeio.workqueue import WorkQueue


def test_an_unreachable_apiserver_is_tried_again_within_seconds() -> None:
    assert longest_wait(Unreachable(0, "GET /api/v1/pods: connection refused")) == 4.0
    assert UNREACHABLE_MAX_DELAY < ANSWERED_MAX_DELAY


def test_an_answered_error_backs_off_to_thirty_seconds() -> None:
    answered: list[ApiError] = [
        error_for_status(500, {"message": "etcdserver: leader changed"}),
        error_for_status(403, {"message": "forbidden"}),
        TooManyRequests(429, "slow down"),
    ]
    assert {longest_wait(error) for error in answered} == {ANSWERED_MAX_DELAY}


def test_a_reconcile_that_cannot_reach_the_apiserver_is_queued_again_within_the_cap() -> None:
    # The accounting controller's queue backs off to 120 s; an unreachable apiserver caps it.
    queue: WorkQueue[str] = WorkQueue(base_delay=0.1, max_delay=120.0)
    unreachable = Unreachable(0, "PATCH /apis/...: connection refused")
    delays = [queue.add_rate_limited("node-1", longest_wait(unreachable)) for _ in range(12)]
    assert max(delays) == UNREACHABLE_MAX_DELAY
    assert queue.add_rate_limited("node-2") == 0.1  # uncapped callers are unchanged
    queue.shut_down()
