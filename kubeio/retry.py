"""Retry policies for transient API failures, shared by both daemons.

Transient means the same request may succeed unchanged: 429, 5xx, a dropped connection.
Conflicts are not transient (the caller must re-read and decide again) and are retried by the
callers that know how to redo their decision.
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

from kubeio.errors import TransientError

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


def retry_transient(
    max_seconds: float = 60.0, initial: float = 0.2, maximum: float = 5.0
) -> Callable[[Callable[P, T]], Callable[P, T]]:
    """Decorator: retry on ``TransientError`` with jittered exponential backoff."""
    return retry(
        retry=retry_if_exception_type(TransientError),
        wait=wait_exponential_jitter(multiplier=initial, max=maximum),
        stop=stop_after_delay(max_seconds),
        before_sleep=_log_retry,
        reraise=True,
    )
