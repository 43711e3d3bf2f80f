"""Waiting between retries of transient API failures, shared by both daemons.

Transient means the same request may succeed unchanged: 429, 5xx, a dropped connection.
Conflicts are not transient (the caller must re-read and decide again) and are retried by the
callers that know how to redo their decision.

Every wait is at least what the apiserver asked for in ``Retry-After`` (``wait_retry_after``):
it sends one with 429 when it sheds load, and urllib3 honours it by itself only for GET, PUT
and DELETE, not for the POSTs and PATCHes that bind and reserve.

A loop that backs off between tries of a watch or a reconcile waits at most ``longest_wait``:
4 s while the apiserver cannot be reached (a failed connection costs it nothing, and a loop
that waits out 30 s after an outage ends serves what it had before the outage for that
long), 30 s after an error the apiserver answered.
"""

from __future__ import annotations

from tenacity import RetryCallState
from tenacity.wait import wait_base

from kubeio.errors import ApiError, Unreachable

UNREACHABLE_MAX_DELAY = 4.0
ANSWERED_MAX_DELAY = 30.0


def longest_wait(error: ApiError) -> float:
    """The longest a backing-off loop waits before trying again after ``error``."""
    return UNREACHABLE_MAX_DELAY if isinstance(error, Unreachable) else ANSWERED_MAX_DELAY


class wait_retry_after(wait_base):
    """Wait as ``fallback`` says, but never less than the failure's ``Retry-After``."""

    def __init__(self, fallback: wait_base) -> None:
        self._fallback = fallback

    def __call__(self, retry_state: RetryCallState) -> float:
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None and outcome.failed else None
        asked = error.retry_after if isinstance(error, ApiError) else 0.0
        return max(self._fallback(retry_state), asked)
