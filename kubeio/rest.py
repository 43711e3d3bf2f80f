"""Raw JSON access to the apiserver over the official client's connection pool and auth.

The generated model classes cost a deserialisation pass and several times the memory of the
JSON they came from; at tens of thousands of pods both matter, so the daemons read and write
plain dictionaries. Every request is reported to an observer (verb, resource, status) for the
metrics, with the apiserver's verbs (``LIST`` and ``WATCH`` apart from ``GET``), and every
failure is raised as a ``kubeio.errors`` type. The connection's retry and TLS policies are set
where the configuration is loaded (``kubeio.config``).

Without a proxy, POSTs and PATCHs (the writes urllib3 never retries) go over kept-alive
connections of their own (``kubeio.keepalive``), made by the same pool, at a third of the
client-side CPU per request; reads, watches and the other writes go through urllib3.

With leader election, writes pass a fence (``set_write_fence``): a write starts only while the
fence allows it, and its timeout is cut to what the fence allows (``kubeio.leader``).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any, cast

import orjson
import urllib3
from kubernetes import client
from kubernetes.client import rest

from kubeio.errors import ApiError, Gone, NotLeading, Unreachable, error_for_status
from kubeio.keepalive import Answer, KeepAlive

JSON = dict[str, Any]
RequestObserver = Callable[[str, str, int], None]
WriteFence = Callable[[], float]
"""Seconds a write starting now may take; 0 or less: it must not start."""

_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# The writes urllib3 would never retry (not idempotent), so nothing of its retry policy is
# lost when they go over ``kubeio.keepalive``.
_KEPT_ALIVE = frozenset({"POST", "PATCH"})

MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"

_CONNECTION_ERRORS = (urllib3.exceptions.HTTPError, OSError)


def loads(raw: bytes | str) -> Any:
    """JSON from the apiserver, decoded by orjson (a third of the standard library's time on
    a pod's watch event; decoding was the daemons' largest single cost under load). What
    orjson refuses and the standard library reads (NaN, a lone surrogate, an infinite
    number) goes to the standard library, so both daemons read what they read before, or fail
    as they did. One difference: an integer beyond 64 bits, which no field the apiserver
    validates can hold, comes back as a float, which every Mbps reader refuses as it would
    the integer."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(raw)


def resource_of(path: str) -> str:
    """``pods/binding`` for ``/api/v1/namespaces/ns/pods/p/binding``: a low-cardinality label."""
    segments = [s for s in path.split("?")[0].split("/") if s]
    segments = segments[2:] if segments and segments[0] == "api" else segments[3:]
    if len(segments) >= 2 and segments[0] == "namespaces" and len(segments) > 2:
        segments = segments[2:]
    if not segments:
        return ""
    return segments[0] if len(segments) < 3 else f"{segments[0]}/{segments[2]}"


def send(
    api_client: client.ApiClient,
    method: str,
    path: str,
    *,
    query: Mapping[str, Any] | None = None,
    body: Any = None,
    content_type: str = "application/json",
    timeout: float | tuple[float, float] | None = None,
    kept_alive: bool = False,
) -> Any:
    """One request with a plain-JSON body over the client's pool, TLS and auth.

    Returns the unread response (``.status``, ``.read()``, ``.response`` for streaming); an
    HTTP error status is not raised here, connection errors are.

    Without a proxy the request goes straight to the connection pool the client made for the
    apiserver (``_Direct``); through a proxy, by the client's own path. With ``kept_alive``,
    a POST or PATCH without a query is framed by hand over a kept-alive connection
    (``kubeio.keepalive``), whose failures are ``OSError``.
    """
    params = [(k, v) for k, v in (query or {}).items() if v is not None]
    direct = _Direct.of(api_client)
    if direct is not None:
        if kept_alive and method in _KEPT_ALIVE and not params and not isinstance(timeout, tuple):
            answer = direct.exchange(method, path, body, content_type, timeout)
            if answer is not None:
                return answer
        return direct.send(method, path, params, body, content_type, timeout)
    _, url, headers, _, _ = api_client.param_serialize(
        method,
        path,
        query_params=params,
        header_params={"Accept": "application/json", "Content-Type": content_type},
        auth_settings=["BearerToken"],
    )
    return api_client.call_api(
        method, url, header_params=headers, body=body, _request_timeout=timeout
    )


class _Direct:
    """The client's own request path, less what a plain-JSON caller does not need.

    The generated client parses the full URL back into a pool on every request (urllib3's
    PoolManager), sniffs the content type and serialises with the standard library: in the
    scheduler's steady benchmark that was 12 % of its CPU, above the connection pool. This
    sends to the very pool the client made (same TLS, same retry policy, ``kubeio.config``),
    with the client's own headers, auth (a rotated token is read as before) and query
    encoding, and the body encoded by orjson. Only for a plain ``urllib3.PoolManager``: a
    proxy, SOCKS or HTTP, goes the client's way."""

    def __init__(self, api_client: client.ApiClient, pool: Any, prefix: str) -> None:
        self._client = api_client
        self._pool = pool
        self._prefix = prefix
        self.keepalive = KeepAlive(pool, int(api_client.configuration.connection_pool_maxsize or 4))

    @staticmethod
    def of(api_client: client.ApiClient) -> _Direct | None:
        cached = getattr(api_client, "_vaclab_direct", False)
        if cached is not False:
            return cast(_Direct | None, cached)
        direct: _Direct | None = None
        manager = api_client.rest_client.pool_manager
        host = str(api_client.configuration.host)
        if type(manager) is urllib3.PoolManager and not api_client.configuration.proxy:
            prefix = (urllib3.util.parse_url(host).path or "").rstrip("/")
            direct = _Direct(api_client, manager.connection_from_url(host), prefix)
        api_client._vaclab_direct = direct  # type: ignore[attr-defined]
        return direct

    def _headers(self, method: str, path: str, body: Any, content_type: str) -> dict[str, str]:
        headers = dict(self._client.default_headers)
        headers["Accept"] = "application/json"
        headers["Content-Type"] = content_type
        self._client.update_params_for_auth(headers, [], ["BearerToken"], path, method, body)
        return headers

    def _target(self, path: str, params: list[tuple[str, Any]]) -> str:
        url = self._prefix + path
        if params:
            url += "?" + self._client.parameters_to_url_query(params, {})
        return url

    def send(
        self,
        method: str,
        path: str,
        params: list[tuple[str, Any]],
        body: Any,
        content_type: str,
        timeout: float | tuple[float, float] | None,
    ) -> Any:
        response = self._pool.urlopen(
            method,
            self._target(path, params),
            body=None if body is None else dumps(body),
            headers=self._headers(method, path, body, content_type),
            timeout=_timeout(timeout),
            preload_content=False,
            redirect=False,
            assert_same_host=False,
        )
        return rest.RESTResponse(response)

    def exchange(
        self, method: str, path: str, body: Any, content_type: str, timeout: float | None
    ) -> Answer | None:
        """A whole request over a kept-alive connection (``kubeio.keepalive``); None when
        this one must go through urllib3 (a target that needs encoding)."""
        target = self._target(path, [])
        if not KeepAlive.can_send(target):
            return None
        headers = self._headers(method, path, body, content_type)
        payload = None if body is None else dumps(body)
        return self.keepalive.request(method, target, headers, payload, timeout)


def _timeout(timeout: float | tuple[float, float] | None) -> urllib3.Timeout | None:
    """The client's reading of ``_request_timeout``: a number is the total, a pair is
    (connect, read)."""
    if not timeout:
        return None
    if isinstance(timeout, tuple):
        return urllib3.Timeout(connect=timeout[0], read=timeout[1])
    return urllib3.Timeout(total=timeout)


def dumps(body: Any) -> bytes:
    """A request body as JSON: orjson, or the standard library for what orjson refuses (an
    integer beyond 64 bits), so that nothing the client sent before fails now."""
    try:
        return orjson.dumps(body)
    except TypeError:
        return json.dumps(body).encode()


def _ignore_request(verb: str, resource: str, status: int) -> None:
    return None


def _unreachable(method: str, path: str, error: Exception) -> Unreachable:
    # urllib3 wraps the cause of a failed connection in MaxRetryError ("Max retries exceeded")
    # even when it was not asked to retry it: the cause is the news.
    cause = error.reason if isinstance(error, urllib3.exceptions.MaxRetryError) else None
    return Unreachable(0, f"{method} {path}: {cause or error}")


class KubeApi:
    """Thread-safe: the underlying urllib3 pool is shared by every caller."""

    def __init__(
        self,
        configuration: client.Configuration,
        *,
        user_agent: str = "vaclab-bandwidth",
        observe: RequestObserver = _ignore_request,
        timeout_seconds: float = 30.0,
    ) -> None:
        self._client = client.ApiClient(configuration)
        self._client.user_agent = user_agent
        self._observe = observe
        self._timeout = timeout_seconds
        self._fence: WriteFence | None = None

    @property
    def api_client(self) -> client.ApiClient:
        """The official client underneath, for the few typed calls (leader election)."""
        return self._client

    @property
    def host(self) -> str:
        return str(self._client.configuration.host)

    def close(self) -> None:
        direct = getattr(self._client, "_vaclab_direct", None)
        if isinstance(direct, _Direct):
            direct.keepalive.close()
        self._client.close()

    def set_write_fence(self, fence: WriteFence) -> None:
        """From now on every write (but those sent with ``fenced=False``) asks ``fence``."""
        self._fence = fence

    def _send(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        timeout: float | tuple[float, float] | None = None,
        verb: str = "",
    ) -> Any:
        verb = verb or method
        try:
            response = send(
                self._client,
                method,
                path,
                query=query,
                body=body,
                content_type=content_type,
                timeout=timeout,
                kept_alive=True,
            )
        except _CONNECTION_ERRORS as error:  # urllib3's, or OSError from a kept-alive write
            self._observe(verb, resource_of(path), 0)
            raise _unreachable(method, path, error) from error
        self._observe(verb, resource_of(path), response.status)
        return response

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        verb: str = "",
        fenced: bool = True,
        timeout: float | None = None,
        decode: bool = True,
    ) -> Any:
        """``verb`` names the request in metrics when it is not ``method`` (``LIST``); a write
        asks the fence unless ``fenced=False``; ``timeout`` can only shorten the default;
        ``decode=False`` reads a successful answer's body but returns None."""
        timeout = self._timeout if timeout is None else min(timeout, self._timeout)
        if fenced and self._fence is not None and method in _WRITES:
            allowed = self._fence()
            if allowed <= 0:
                raise NotLeading(0, f"{method} {path}: not sent, leadership is not confirmed")
            timeout = min(timeout, allowed)
        response = self._send(
            method,
            path,
            query=query,
            body=body,
            content_type=content_type,
            timeout=timeout,
            verb=verb,
        )
        try:
            raw = response.read()
        except _CONNECTION_ERRORS as error:
            raise _unreachable(method, path, error) from error
        if response.status >= 300:
            retry_after = response.headers.get("retry-after") or "0"
            raise error_for_status(
                response.status,
                _error_body(raw),
                float(retry_after) if retry_after.isdigit() else 0.0,
            )
        return loads(raw) if raw and decode else None

    def get(self, path: str, query: Mapping[str, Any] | None = None) -> JSON:
        result: JSON = self.request("GET", path, query=query)
        return result

    def create(self, path: str, body: JSON) -> JSON:
        result: JSON = self.request("POST", path, body=body)
        return result

    def replace(self, path: str, body: JSON) -> JSON:
        result: JSON = self.request("PUT", path, body=body)
        return result

    def patch(self, path: str, patch: Any, content_type: str = MERGE_PATCH) -> JSON:
        result: JSON = self.request("PATCH", path, body=patch, content_type=content_type)
        return result

    def patch_unread(self, path: str, patch: Any, content_type: str = MERGE_PATCH) -> None:
        """PATCH for a writer that knows what its write makes of the object: the answer, the
        whole object, is not decoded."""
        self.request("PATCH", path, body=patch, content_type=content_type, decode=False)

    def delete(self, path: str, *, preconditions: JSON | None = None) -> None:
        body = {"preconditions": preconditions} if preconditions else None
        self.request("DELETE", path, body=body)

    def list(
        self, path: str, query: Mapping[str, Any] | None = None, *, page_size: int = 500
    ) -> tuple[list[JSON], str]:
        """Every item, page by page, and the list's resourceVersion to watch from."""
        items: list[JSON] = []
        params = dict(query or {})
        params["limit"] = page_size
        while True:
            page: JSON = self.request("GET", path, query=params, verb="LIST")
            items.extend(page.get("items") or [])
            metadata = page.get("metadata") or {}
            token = metadata.get("continue")
            if not token:
                return items, str(metadata.get("resourceVersion", ""))
            params["continue"] = token

    def watch(
        self, path: str, query: Mapping[str, Any] | None = None, *, timeout_seconds: int = 300
    ) -> WatchStream:
        """Open a watch; iterate the stream for ``{"type", "object"}`` events.

        An ERROR event carrying 410 raises ``Gone``; other ERROR events raise ``ApiError``.
        ``close()`` from another thread ends the iteration promptly.
        """
        params = dict(query or {})
        params.update(watch="true", allowWatchBookmarks="true", timeoutSeconds=timeout_seconds)
        response = self._send(
            "GET", path, query=params, timeout=(10.0, timeout_seconds + 30.0), verb="WATCH"
        )
        if response.status >= 300:
            payload = response.read()
            raise error_for_status(response.status, _error_body(payload))
        return WatchStream(path, response.response)


class WatchStream:
    """The events of one watch request, as an iterator that can be closed from outside."""

    def __init__(self, path: str, raw: Any) -> None:
        self._path = path
        self._raw = raw
        self._closed = False

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(Exception):
            self._raw.shutdown()

    def __iter__(self) -> Iterator[JSON]:
        pending = b""
        try:
            for chunk in self._raw.stream(64 * 1024, decode_content=True):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    if line.strip():
                        yield _checked_event(loads(line))
            if pending.strip() and not self._closed:
                yield _checked_event(loads(pending))
        except _CONNECTION_ERRORS as error:
            if not self._closed:
                raise _unreachable("watch", self._path, error) from error
        finally:
            self._raw.release_conn()


def _error_body(raw: bytes | None) -> Any:
    """A failure's body: a Status object, or the plain text some paths answer with (the
    apiserver's ``404 page not found`` for a resource it does not serve)."""
    if not raw:
        return None
    try:
        return loads(raw)
    except ValueError:
        return raw.decode("utf-8", errors="replace").strip()


def _checked_event(event: JSON) -> JSON:
    if event.get("type") != "ERROR":
        return event
    status = event.get("object") or {}
    code = int(status.get("code", 0) or 0)
    if code == 410:
        raise Gone(410, str(status.get("message", "resource version too old")), status)
    raise ApiError(code, str(status.get("message", "watch error")), status)
