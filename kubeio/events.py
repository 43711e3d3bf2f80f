"""Events on objects, as ``kubectl describe`` shows them, posted off the caller's thread.

Repeats of the same (object, type, reason, message) within the series window become one Event
whose ``count`` grows, as kubelet and kube-scheduler do, so a pod retried a hundred times does
not flood etcd. A full queue drops the newest Event and counts it: explaining must never slow
or block scheduling.
"""

from __future__ import annotations

import queue
import socket
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog

from kubeio.errors import ApiError, NotFound
from kubeio.liveness import Heartbeat
from kubeio.resources import EVENTS
from kubeio.rest import JSON, KubeApi

NORMAL = "Normal"
WARNING = "Warning"

log = structlog.get_logger("kubeio.events")


@dataclass(frozen=True, slots=True)
class ObjectRef:
    kind: str
    api_version: str
    name: str
    uid: str
    namespace: str = ""
    resource_version: str = ""

    @classmethod
    def of(cls, obj: Mapping[str, Any], kind: str, api_version: str) -> ObjectRef:
        metadata = obj.get("metadata") or {}
        return cls(
            kind=kind,
            api_version=api_version,
            name=str(metadata.get("name", "")),
            uid=str(metadata.get("uid", "")),
            namespace=str(metadata.get("namespace", "") or ""),
            resource_version=str(metadata.get("resourceVersion", "")),
        )


@dataclass(frozen=True, slots=True)
class _Pending:
    ref: ObjectRef
    event_type: str
    reason: str
    message: str


@dataclass(slots=True)
class _Series:
    name: str
    namespace: str
    count: int
    first: str
    last_posted: float


class EventRecorder:
    def __init__(
        self,
        api: KubeApi,
        component: str,
        *,
        events_namespace: str = "default",
        series_window_seconds: float = 600.0,
        max_queued: int = 10_000,
    ) -> None:
        self._api = api
        self._component = component
        self._host = socket.gethostname()
        self._events_namespace = events_namespace
        self._window = series_window_seconds
        self._queue: queue.Queue[_Pending | None] = queue.Queue(max_queued)
        self._series: dict[tuple[str, str, str, str], _Series] = {}
        self._thread: threading.Thread | None = None
        self.dropped = 0
        self.heartbeat = Heartbeat("events", stall_after=120.0)

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="events", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Post what is queued, then stop."""
        self.heartbeat.retire()
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout)
            self._thread = None

    def record(self, ref: ObjectRef, event_type: str, reason: str, message: str) -> None:
        try:
            self._queue.put_nowait(_Pending(ref, event_type, reason, message[:1024]))
        except queue.Full:
            self.dropped += 1

    def _run(self) -> None:
        with self.heartbeat.running():
            self._loop()

    def _loop(self) -> None:
        while True:
            self.heartbeat.beat()
            try:
                pending = self._queue.get(timeout=10.0)
            except queue.Empty:
                continue
            if pending is None:
                return
            self.heartbeat.beat(f"posting {pending.reason}")
            try:
                self._post(pending)
            except ApiError as error:
                log.warning("event_not_recorded", reason=pending.reason, error=str(error))
            except Exception:
                log.exception("event_not_recorded", reason=pending.reason)

    def _post(self, pending: _Pending) -> None:
        ref = pending.ref
        namespace = ref.namespace or self._events_namespace
        key = (ref.uid, pending.event_type, pending.reason, pending.message)
        now = time.monotonic()
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        series = self._series.get(key)
        if series is not None and now - series.last_posted < self._window:
            series.count += 1
            series.last_posted = now
            try:
                self._api.patch(
                    EVENTS.path(namespace=series.namespace, name=series.name),
                    {"count": series.count, "lastTimestamp": stamp},
                )
                return
            except NotFound:
                del self._series[key]
        name = f"{ref.name}.{uuid.uuid4().hex[:16]}"
        body: JSON = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": namespace},
            "involvedObject": {
                "kind": ref.kind,
                "apiVersion": ref.api_version,
                "name": ref.name,
                "namespace": ref.namespace or None,
                "uid": ref.uid,
                "resourceVersion": ref.resource_version or None,
            },
            "type": pending.event_type,
            "reason": pending.reason,
            "message": pending.message,
            "source": {"component": self._component, "host": self._host},
            "reportingComponent": self._component,
            "reportingInstance": self._host,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
        self._api.create(EVENTS.path(namespace=namespace), body)
        if len(self._series) > 50_000:
            self._series.clear()
        self._series[key] = _Series(name, namespace, 1, stamp, now)
