"""A list+watch cache of raw objects of one kind, with change handlers.

Life of a cache::

    start ─► LIST (paged) ─► synced ─► WATCH from the list's resourceVersion
                 ▲                        │ stream ends or the connection drops:
                 │                        │   resume WATCH from the last resourceVersion seen
                 └──── 410 Gone ◄─────────┘   (BOOKMARK events keep it fresh)

A relist diffs the new list against the cache, so handlers see the deletions that happened
while the watch was away. An object is its UID, not its key: when the object under a key has
another UID than the one cached (deleted and created again while the watch was away, as a
StatefulSet does with its pods), handlers see DELETED of the old one, then ADDED of the new
one, never a MODIFIED that would carry one object's state over to another.

Handlers receive ``(event_type, old, new)`` and run on the cache's own thread, one event at a
time, after the store is updated; they must be quick (enqueue work, never call the API). A
handler that raises is a bug: it is logged once per object and error (``watch_handler_failed``
with the object's key and the stack), and the cache, and the other handlers, go on.

Failures back off exponentially from 0.5 s, to 30 s for an error the apiserver answered and
to 4 s while it cannot be reached (``kubeio.retry.longest_wait``): a cache that waited out
30 s after an outage ended would serve what it had before it (a controller that took the
lease meanwhile would not see a Bandwidth deleted during it). A kind the apiserver does not
serve (a CRD not installed) is logged once per back-off step with what to install, never as
a stack trace.

The cache's thread reports progress to ``heartbeat`` (``kubeio.liveness``) on every event,
reconnection and back-off, so ``/healthz`` fails if it ends, or stays stuck (in a handler,
say) for longer than a watch lasts.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Mapping
from typing import Any

import structlog

from kubeio.errors import ApiError, Gone, NotFound
from kubeio.liveness import Heartbeat
from kubeio.resources import Resource
from kubeio.rest import JSON, KubeApi, WatchStream
from kubeio.retry import longest_wait

ADDED = "ADDED"
MODIFIED = "MODIFIED"
DELETED = "DELETED"

Handler = Callable[[str, JSON | None, JSON | None], None]
"""``handler(event_type, old, new)``: ``old`` is None for ADDED, ``new`` is None for DELETED."""

log = structlog.get_logger("kubeio.watchcache")


def object_key(obj: Mapping[str, Any]) -> str:
    metadata = obj.get("metadata") or {}
    namespace = metadata.get("namespace")
    name = str(metadata.get("name", ""))
    return f"{namespace}/{name}" if namespace else name


def without_managed_fields(obj: JSON) -> JSON:
    """Drop what no decision reads and what costs the most memory at scale."""
    metadata = obj.get("metadata")
    if isinstance(metadata, dict):
        metadata.pop("managedFields", None)
    return obj


class WatchCache:
    def __init__(
        self,
        api: KubeApi,
        resource: Resource,
        *,
        field_selector: str | None = None,
        label_selector: str | None = None,
        transform: Callable[[JSON], JSON] = without_managed_fields,
        watch_timeout_seconds: int = 300,
        missing_hint: str = "",
    ) -> None:
        self._api = api
        self._resource = resource
        self._query = {"fieldSelector": field_selector, "labelSelector": label_selector}
        self._transform = transform
        self._watch_timeout = watch_timeout_seconds
        self._missing_hint = missing_hint
        self._store: dict[str, JSON] = {}
        self._lock = threading.Lock()
        self._handlers: list[Handler] = []
        self._synced = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._resource_version = ""
        self._stream: WatchStream | None = None
        self.last_error: str = ""
        self.relists = 0
        self._handler_failures: set[tuple[str, str]] = set()
        # The apiserver ends a quiet watch after watch_timeout_seconds; then it is resumed.
        self.heartbeat = Heartbeat(
            f"watch-{resource.plural}", stall_after=watch_timeout_seconds + 90.0
        )

    @property
    def kind(self) -> str:
        return self._resource.plural

    def add_handler(self, handler: Handler) -> None:
        """Register before ``start`` so the handler sees the initial list as ADDED events."""
        self._handlers.append(handler)

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(
            target=self._run, name=f"watch-{self._resource.plural}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self.heartbeat.retire()
        self._stopping.set()
        stream = self._stream
        if stream is not None:
            stream.close()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def synced(self) -> bool:
        return self._synced.is_set()

    def wait_synced(self, timeout: float | None = None) -> bool:
        return self._synced.wait(timeout)

    def get(self, key: str) -> JSON | None:
        with self._lock:
            return self._store.get(key)

    def items(self) -> list[JSON]:
        with self._lock:
            return list(self._store.values())

    def __len__(self) -> int:
        return len(self._store)

    def _run(self) -> None:
        with self.heartbeat.running():
            self._loop()

    def _loop(self) -> None:
        delay = 0.5
        while not self._stopping.is_set():
            self.heartbeat.beat("listing" if not self._resource_version else "watching")
            try:
                if not self._resource_version:
                    self._relist()
                self._watch()
                delay = 0.5
            except Gone:
                log.info("watch_expired", kind=self.kind, action="relist")
                self._resource_version = ""
            except ApiError as error:
                self.last_error = str(error)
                delay = min(delay, longest_wait(error))
                self._log_failure(error, delay)
                self._stopping.wait(delay * random.uniform(0.8, 1.2))
                delay = min(delay * 2, longest_wait(error))
            except Exception as error:  # a handler bug must not kill the cache
                self.last_error = repr(error)
                log.exception("watch_cache_failure", kind=self.kind)
                self._stopping.wait(delay)
                delay = min(delay * 2, 30.0)

    def _log_failure(self, error: ApiError, delay: float) -> None:
        if isinstance(error, NotFound) and not self._resource_version:
            log.error(
                "resource_not_served",
                kind=self.kind,
                api_version=self._resource.api_version,
                hint=self._missing_hint or "is the CustomResourceDefinition installed?",
                retry_in_seconds=round(delay, 1),
            )
        else:
            log.warning(
                "watch_failed", kind=self.kind, error=str(error), retry_in_seconds=round(delay, 1)
            )

    def _relist(self) -> None:
        items, resource_version = self._api.list(self._resource.path(), self._query)
        fresh = {object_key(obj): self._transform(obj) for obj in items}
        with self._lock:
            previous = self._store
            self._store = fresh
        self._resource_version = resource_version
        self.relists += 1
        for key, gone in previous.items():
            if key not in fresh:
                self._notify(DELETED, gone, None)
        for key, new in fresh.items():
            old = previous.get(key)
            if old is None:
                self._notify(ADDED, None, new)
            elif _uid(old) != _uid(new):
                self._notify(DELETED, old, None)
                self._notify(ADDED, None, new)
            elif _version(old) != _version(new):
                self._notify(MODIFIED, old, new)
        self.last_error = ""
        self._synced.set()

    def _watch(self) -> None:
        query = dict(self._query, resourceVersion=self._resource_version)
        self._stream = self._api.watch(
            self._resource.path(), query, timeout_seconds=self._watch_timeout
        )
        if self._stopping.is_set():
            self._stream.close()
        for event in self._stream:
            if self._stopping.is_set():
                return
            self.heartbeat.beat("in a handler")
            kind = event.get("type")
            obj = event.get("object") or {}
            version = _version(obj)
            if kind == "BOOKMARK":
                self._resource_version = version or self._resource_version
                continue
            obj = self._transform(obj)
            key = object_key(obj)
            with self._lock:
                old = self._store.get(key)
                if kind == DELETED:
                    self._store.pop(key, None)
                else:
                    self._store[key] = obj
            self._resource_version = version or self._resource_version
            if kind == DELETED:
                self._notify(DELETED, old, None)
            elif kind in (ADDED, MODIFIED):
                if old is not None and _uid(old) != _uid(obj):
                    self._notify(DELETED, old, None)
                    old = None
                self._notify(ADDED if old is None else MODIFIED, old, obj)

    def _notify(self, kind: str, old: JSON | None, new: JSON | None) -> None:
        for handler in self._handlers:
            try:
                handler(kind, old, new)
            except Exception as error:
                self._handler_failed(kind, new if new is not None else old, error)

    def _handler_failed(self, event_type: str, obj: JSON | None, error: Exception) -> None:
        key = object_key(obj or {})
        failure = (key, f"{type(error).__name__}: {error}")
        if failure in self._handler_failures:
            return
        if len(self._handler_failures) > 10_000:
            self._handler_failures.clear()
        self._handler_failures.add(failure)
        log.exception(
            "watch_handler_failed",
            kind=self.kind,
            key=key,
            uid=_uid(obj or {}),
            event_type=event_type,
            error=failure[1],
        )


def _version(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion", ""))


def _uid(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("uid", ""))
