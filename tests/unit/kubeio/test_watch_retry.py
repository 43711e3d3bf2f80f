"""How long a watch waits before trying again: briefly while the apiserver is away, longer
when it answered with an error."""

from __future__ import annotations

from kubeio.errors import ApiError, TooManyRequests, Unreachable, error_for_status
from kubeio.watchcache import ANSWERED_MAX_DELAY, UNREACHABLE_MAX_DELAY, retry_delay


def test_an_unreachable_apiserver_is_tried_again_within_seconds() -> None:
    assert retry_delay(Unreachable(0, "GET /api/v1/pods: connection refused")) == 4.0
    assert UNREACHABLE_MAX_DELAY < ANSWERED_MAX_DELAY


def test_an_answered_error_backs_off_to_thirty_seconds() -> None:
    answered: list[ApiError] = [
        error_for_status(500, {"message": "etcdserver: leader changed"}),
        error_for_status(403, {"message": "forbidden"}),
        TooManyRequests(429, "slow down"),
    ]
    assert {retry_delay(error) for error in answered} == {ANSWERED_MAX_DELAY}
