"""Plain-JSON requests through a ``kubernetes.client.ApiClient`` (``kubeio.rest.send``),
answered as ``(status, body)`` or raised as the generated client's ``ApiException``.

The generated client validates request bodies and builds response models, which costs far
more than the HTTP round trip when creating thousands of objects. These helpers send dicts
and return decoded JSON, reusing the client's connection pool, TLS and authentication.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from kubeio.rest import MERGE_PATCH, STRATEGIC_MERGE_PATCH, send

__all__ = ["MERGE_PATCH", "STRATEGIC_MERGE_PATCH", "request", "request_ok"]

JSON = "application/json"


def _send(
    api_client: ApiClient,
    method: str,
    path: str,
    body: Any,
    query: Mapping[str, str] | None,
    content_type: str,
    timeout: float,
) -> tuple[Any, bytes]:
    response = send(
        api_client,
        method,
        path,
        query=query,
        body=body,
        content_type=content_type,
        timeout=timeout,
    )
    return response, bytes(response.read() or b"")


def _decode(data: bytes) -> Any:
    if not data:
        return None
    try:
        return json.loads(data)
    except ValueError:
        return data.decode(errors="replace")


def request(
    api_client: ApiClient,
    method: str,
    path: str,
    *,
    body: Any = None,
    query: Mapping[str, str] | None = None,
    content_type: str = JSON,
    timeout: float = 30.0,
) -> tuple[int, Any]:
    """Send one request; return ``(HTTP status, decoded JSON body or None)``.

    Never raises because of an HTTP status; connection errors do raise.
    """
    response, data = _send(api_client, method, path, body, query, content_type, timeout)
    return int(response.status), _decode(data)


def request_ok(
    api_client: ApiClient,
    method: str,
    path: str,
    *,
    body: Any = None,
    query: Mapping[str, str] | None = None,
    content_type: str = JSON,
    timeout: float = 30.0,
) -> Any:
    """Like :func:`request` but return only the decoded body.

    A non-2xx status raises ``kubernetes.client.exceptions.ApiException`` (the
    status-specific subclass, e.g. ``ConflictException`` for 409), as the generated client
    does; its ``body`` is the apiserver's ``Status`` JSON.
    """
    response, data = _send(api_client, method, path, body, query, content_type, timeout)
    if not 200 <= response.status <= 299:
        raise ApiException.from_response(
            http_resp=response, body=data.decode(errors="replace"), data=None
        )
    return _decode(data)
