"""Errors of the Kubernetes API, one type per failure a caller handles differently.

ApiError                 any non-2xx answer, or no answer at all
├── TransientError       worth retrying as is
│   ├── TooManyRequests  429: the apiserver sheds load
│   ├── ServerError      5xx
│   └── Unreachable      connection refused, reset, timed out
├── NotFound             404
├── Conflict             409: stale resourceVersion, or the object already exists
├── Gone                 410: a watch's resourceVersion was compacted away
├── Forbidden            403 (and 401)
├── Invalid              422 and 400: the apiserver's validation said no
└── TooLarge             413, or etcd's "request is too large" (a 500): the object or the
                         request outgrew what the apiserver stores; the same write fails
                         again, so it is never transient
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    def __init__(self, status: int, message: str, body: Any = None, retry_after: float = 0.0):
        super().__init__(f"{status}: {message}" if status else message)
        self.status = status
        self.message = message
        self.body = body
        self.retry_after = retry_after

    @property
    def reason(self) -> str:
        if isinstance(self.body, dict):
            return str(self.body.get("reason", ""))
        return ""


class TransientError(ApiError):
    pass


class TooManyRequests(TransientError):
    pass


class ServerError(TransientError):
    pass


class Unreachable(TransientError):
    pass


class NotFound(ApiError):
    pass


class Conflict(ApiError):
    @property
    def already_exists(self) -> bool:
        return self.reason == "AlreadyExists"


class Gone(ApiError):
    pass


class Forbidden(ApiError):
    pass


class Invalid(ApiError):
    pass


class TooLarge(ApiError):
    pass


class NotLeading(ApiError):
    pass


_BY_STATUS: dict[int, type[ApiError]] = {
    400: Invalid,
    401: Forbidden,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    410: Gone,
    413: TooLarge,
    422: Invalid,
    429: TooManyRequests,
}

_ETCD_TOO_LARGE = "request is too large"


def error_for_status(status: int, body: Any, retry_after: float = 0.0) -> ApiError:
    message = body.get("message", "") if isinstance(body, dict) else str(body)[:500]
    kind = _BY_STATUS.get(status) or (ServerError if status >= 500 else ApiError)
    if kind is ServerError and _ETCD_TOO_LARGE in message:
        kind = TooLarge
    return kind(status, message or f"HTTP {status}", body, retry_after)
