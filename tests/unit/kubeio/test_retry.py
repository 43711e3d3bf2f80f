"""Retry waits honour the apiserver's Retry-After."""

from __future__ import annotations

from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt
from tenacity.wait import wait_fixed

from kubeio.errors import ApiError, ServerError, TooManyRequests, TransientError
from kubeio.retry import wait_retry_after


def _waits(*errors: ApiError) -> list[float]:
    """The waits a ``Retrying`` with ``wait_retry_after(wait_fixed(0.05))`` sleeps through."""
    slept: list[float] = []
    failures = list(errors)

    def call() -> str:
        if failures:
            raise failures.pop(0)
        return "done"

    retrying = Retrying(
        retry=retry_if_exception_type(TransientError),
        wait=wait_retry_after(wait_fixed(0.05)),
        stop=stop_after_attempt(5),
        sleep=slept.append,
        reraise=True,
    )
    assert retrying(call) == "done"
    return slept


def test_a_429_with_retry_after_waits_at_least_that_long() -> None:
    assert _waits(TooManyRequests(429, "slow down", retry_after=1.0)) == [1.0]


def test_without_retry_after_the_fallback_decides() -> None:
    assert _waits(ServerError(500, "oops"), TooManyRequests(429, "no header")) == [0.05, 0.05]


def test_a_longer_fallback_wins_over_a_shorter_retry_after() -> None:
    wait = wait_retry_after(wait_fixed(3.0))
    state = RetryCallState(Retrying(), None, (), {})
    state.set_exception((TooManyRequests, TooManyRequests(429, "x", retry_after=1.0), None))
    assert wait(state) == 3.0
