"""Retry policies for transient API failures, shared by both daemons.

Transient means the same request may succeed unchanged: 429, 5xx, a dropped connection.
Conflicts are not transient (the caller must re-read and decide again) and are retried by the
callers that know how to redo their decision.

Every wait is at least what the apiserver asked for in ``Retry-After`` (``wait_retry_after``):
it sends one with 429 when it sheds load, and urllib3 honours it by itself only for GET, PUT
and DELETE, not for the POSTs and PATCHes that bind and reserve.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ParamSpec, TypeVar

import structlog
from tenacity import (
    RetryCallState,
    retry,
    retry_if_exception_type,
    stop_after_delay,
    wait_exponential_jitter,
)
from tenacity.wait import wait_base

from kubeio.errors import ApiError, TransientError

P = ParamSpec("P")
T = TypeVar("T")

log = structlog.get_logger("kubeio.retry")


def _log_retry(state: RetryCallState) -> None:
    outcome = state.outcome
    error = outcome.exception() if outcome is not None else None
    log.info(
        "api_retry",
        call=getattr(state.fn, "__qualname__", "?"),
        attempt=state.attempt_number,
        error=str(error),
    )


class wait_retry_after(wait_base):
    """Wait as ``fallback`` says, but never less than the failure's ``Retry-After``."""

    def __init__(self, fallback: wait_base) -> None:
        self._fallback = fallback

    def __call__(self, retry_state: RetryCallState) -> float:
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None and outcome.failed else None
        asked = error.retry_after if isinstance(error, ApiError) else 0.0
        return max(self._fallback(retry_state), asked)


def retry_transient(
    max_seconds: float = 60.0, initial: float = 0.2, maximum: float = 5.0
) -> Callable[[Callable[P, T]], Callable[P, T]]:
    """Decorator: retry on ``TransientError`` with jittered exponential backoff."""
    return retry(
        retry=retry_if_exception_type(TransientError),
        wait=wait_retry_after(wait_exponential_jitter(multiplier=initial, max=maximum)),
        stop=stop_after_delay(max_seconds),
        before_sleep=_log_retry,
        reraise=True,
    )
